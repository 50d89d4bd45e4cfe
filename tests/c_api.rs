//! The C API as a C programmer meets it: the checked-in header is what the
//! Rust source generates, the C examples build against the fresh static and
//! shared libraries (the latter through `vendor/install-c` and pkg-config)
//! and fetch byte-exact bodies from a loopback server, the boundary cases
//! return codes instead of crashing, and valgrind finds no leak or invalid
//! access, nor DRD and helgrind a race between the threads that submit. A
//! separate test binary: it builds and runs C programs against the crate's
//! static and shared libraries.

// Only the plain-HTTP loopback server of tests/it/support, with its bodies.
#[path = "it/support/loopback.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use support::HttpServer;

#[path = "native/mod.rs"]
mod native;
#[path = "native/uv_headers.rs"]
mod uv_headers;
use native::{check_success, profile_dir, repo, valgrind_command};

/// Where cargo puts the libraries it builds for this very test run:
/// `target/<profile>/deps/libuvcurl.{a,so}`, beside this test's executable
/// (the copies in `target/<profile>` are refreshed only by `cargo build`).
fn lib_dir() -> PathBuf {
    profile_dir().join("deps")
}

/// Where this test binary builds and installs its C programs.
fn work_dir() -> PathBuf {
    native::work_dir("c-api-tests")
}

/// The file build.rs wrote: header directories and native libraries.
fn c_env_file() -> PathBuf {
    PathBuf::from(concat!(env!("OUT_DIR"), "/uvcurl-c.env"))
}

/// The bundled libuv's headers (once per test binary).
fn libuv_include() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| uv_headers::libuv_include().unwrap_or_else(|e| panic!("libuv headers: {e}")))
        .clone()
}

fn c_env() -> BTreeMap<String, String> {
    let text = fs::read_to_string(c_env_file()).expect("read uvcurl-c.env");
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// C builds and runs share `work_dir`; one at a time keeps them simple.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn command_output(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    output
}

const WARNINGS: &[&str] = &["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g"];

/// Compiles `source` against `target/<profile>/libuvcurl.a`.
fn build_static(source: &str) -> PathBuf {
    let env = c_env();
    let lib = lib_dir().join("libuvcurl.a");
    assert!(
        lib.is_file(),
        "{} was not built by cargo test",
        lib.display()
    );
    let name = Path::new(source).file_stem().unwrap().to_string_lossy();
    let exe = work_dir().join(format!("{name}-static"));
    // Built under a name of its own, then renamed into place: tests that build
    // the same program at once never write a file another one is running.
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let building = work_dir().join(format!("{name}-static.{n}.building"));
    let mut cc = Command::new("cc");
    cc.args(WARNINGS)
        .arg("-I")
        .arg(repo().join("include"))
        .arg("-I")
        .arg(&env["CURL_INCLUDE"])
        .arg("-I")
        .arg(libuv_include())
        .arg(repo().join(source))
        .arg(&lib)
        .args(env["NATIVE_STATIC_LIBS"].split_whitespace())
        .arg("-o")
        .arg(&building);
    check_success(&format!("cc {source} (static)"), &command_output(&mut cc));
    fs::rename(&building, &exe).expect("rename the built program into place");
    exe
}

/// Installs the fresh build with `vendor/install-c` into a prefix under
/// `work_dir` (once per test binary) and returns the prefix.
fn installed_prefix() -> PathBuf {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            let prefix = work_dir().join("prefix");
            let _ = fs::remove_dir_all(&prefix);
            let output = command_output(
                Command::new("bash")
                    .arg(repo().join("vendor/install-c"))
                    .arg("--prefix")
                    .arg(&prefix)
                    .arg("--from")
                    .arg(lib_dir())
                    .arg("--env")
                    .arg(c_env_file())
                    .arg("--uv-include")
                    .arg(libuv_include()),
            );
            check_success("vendor/install-c", &output);
            prefix
        })
        .clone()
}

/// `pkg-config ARGS uvcurl` against the installed prefix.
fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let output = command_output(
        Command::new("pkg-config")
            .args(args)
            .arg("uvcurl")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
    );
    check_success("pkg-config", &output);
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Compiles `source` the README's way, `cc host.c $(pkg-config --cflags
/// --libs uvcurl)`, against the installed shared library.
fn build_shared(source: &str) -> PathBuf {
    let prefix = installed_prefix();
    let name = Path::new(source).file_stem().unwrap().to_string_lossy();
    let exe = work_dir().join(format!("{name}-shared"));
    let mut cc = Command::new("cc");
    cc.args(WARNINGS)
        .arg(repo().join(source))
        .args(pkg_config(&prefix, &["--cflags", "--libs"]))
        .arg("-lpthread")
        .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
        .arg("-o")
        .arg(&exe);
    check_success(&format!("cc {source} (shared)"), &command_output(&mut cc));
    exe
}

fn run(exe: &Path, args: &[String]) -> Output {
    command_output(Command::new(exe).args(args))
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// FNV-1a 64, as the C examples compute it over each body.
fn fnv1a(data: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The URLs for `n` transfers of varied sizes, with the line `fetch.c`
/// prints for each when its body arrived byte-exact.
fn fetch_plan(server: &HttpServer, n: usize) -> (Vec<String>, Vec<String>) {
    let mut urls = Vec::new();
    let mut expected = Vec::new();
    for i in 0..n {
        let size = [0, 1, 1000, 65_536, 300_000][i % 5] + i;
        let seed = i as u64;
        urls.push(server.url(&format!("/bytes/{size}?seed={seed}")));
        let body = support::body_bytes(size, seed);
        expected.push(format!("done {i} 0 200 {size} {}", fnv1a(&body)));
    }
    (urls, expected)
}

/// Runs `fetch` on `n` URLs and checks every line, the counts and the exit status.
fn check_fetch(exe: &Path, n: usize, max_in_flight: usize) {
    let server = HttpServer::start();
    let (urls, mut expected) = fetch_plan(&server, n);
    let mut args = vec!["-j".to_owned(), max_in_flight.to_string()];
    args.extend(urls);
    let output = run(exe, &args);
    check_success("fetch", &output);
    let lines = stdout_lines(&output);
    let mut done: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("done "))
        .cloned()
        .collect();
    let index = |l: &String| l.split(' ').nth(1).unwrap().parse::<usize>().unwrap();
    done.sort_by_key(index);
    expected.sort_by_key(index);
    assert_eq!(done.len(), n, "one completion per URL");
    assert_eq!(done, expected);
    let tail: Vec<&str> = lines
        .iter()
        .filter(|l| !l.starts_with("done "))
        .map(String::as_str)
        .collect();
    assert_eq!(tail, ["closed".to_owned(), format!("completed {n}")]);
}

// ---- the header -------------------------------------------------------------

fn generate_header() -> String {
    let preamble = fs::read_to_string(repo().join("src/capi/preamble.h")).expect("preamble.h");
    let mut config =
        cbindgen::Config::from_file(repo().join("cbindgen.toml")).expect("cbindgen.toml");
    config.header = Some(preamble.trim_end().to_owned());
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(repo().join("src/capi/mod.rs"))
        .generate()
        .expect("cbindgen");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("utf-8 header")
}

#[test]
fn checked_in_header_matches_the_rust_source() {
    let fresh = generate_header();
    let path = repo().join("include/uvcurl.h");
    if std::env::var_os("UVCURL_BLESS").is_some() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &fresh).expect("write include/uvcurl.h");
    }
    let checked_in = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == fresh,
        "include/uvcurl.h is out of date with src/capi/; regenerate it with \
         `UVCURL_BLESS=1 cargo test --test c_api checked_in_header`"
    );
    for function in [
        "uvcurl_multi_new",
        "uvcurl_multi_curlm",
        "uvcurl_multi_add",
        "uvcurl_multi_cancel",
        "uvcurl_multi_active",
        "uvcurl_multi_close",
        "uvcurl_strerror",
        "uvcurl_version",
    ] {
        assert!(
            fresh.contains(&format!("{function}(")),
            "{function} missing"
        );
    }
}

// ---- the libraries ----------------------------------------------------------

#[test]
fn shared_library_has_a_soname_and_exports_only_the_public_api() {
    let lib = lib_dir().join("libuvcurl.so");
    assert!(lib.is_file(), "{} was not built", lib.display());
    let dynamic = command_output(Command::new("readelf").arg("-d").arg(&lib));
    check_success("readelf", &dynamic);
    assert!(
        String::from_utf8_lossy(&dynamic.stdout).contains("Library soname: [libuvcurl.so.0]"),
        "no soname"
    );
    let nm = command_output(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib));
    check_success("nm", &nm);
    let symbols: Vec<String> = String::from_utf8_lossy(&nm.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    let strays: Vec<&String> = symbols
        .iter()
        .filter(|s| {
            !(s.starts_with("uvcurl_")
                || (s.starts_with("uv_") && !s.starts_with("uv__"))
                || s.starts_with("curl_"))
        })
        .collect();
    assert!(
        strays.is_empty(),
        "symbols exported beyond the API: {strays:?}"
    );
    let mut exported_uv: Vec<&str> = symbols
        .iter()
        .map(String::as_str)
        .filter(|s| s.starts_with("uv_"))
        .collect();
    exported_uv.sort_unstable();
    assert_eq!(
        exported_uv,
        listed_libuv_exports(),
        "libuvcurl.so exports exactly the functions in {LIBUV_EXPORTS}"
    );
    for needed in [
        "uvcurl_multi_new",
        "uvcurl_multi_add",
        "uvcurl_multi_close",
        "curl_easy_init",
        "curl_easy_setopt",
        "curl_easy_getinfo",
        "curl_easy_cleanup",
        "curl_multi_setopt",
        "uv_loop_init",
        "uv_run",
        "uv_tcp_init",
        "uv_timer_start",
    ] {
        assert!(symbols.iter().any(|s| s == needed), "{needed} not exported");
    }
}

/// The list of libuv's public functions that build.rs exports.
const LIBUV_EXPORTS: &str = "src/capi/libuv_exports.txt";

fn listed_libuv_exports() -> Vec<&'static str> {
    static LIST: OnceLock<String> = OnceLock::new();
    let text = LIST.get_or_init(|| {
        fs::read_to_string(repo().join(LIBUV_EXPORTS)).expect("read the libuv export list")
    });
    let mut names: Vec<&str> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|name| !name.is_empty())
        .collect();
    names.sort_unstable();
    names
}

/// build.rs exports libuv's functions from a checked-in list (it cannot find
/// libuv-sys2's headers without parsing `cargo metadata`); the list must be
/// exactly the `UV_EXTERN` functions of the `uv.h` libuv-sys2 builds.
/// `UVCURL_BLESS=1` rewrites it after a libuv-sys2 update.
#[test]
fn libuv_export_list_matches_the_bundled_uv_h() {
    let header = libuv_include().join("uv.h");
    let source = fs::read_to_string(&header).expect("read uv.h");
    let mut declared = uv_extern_functions(&source);
    declared.sort_unstable();
    declared.dedup();
    assert!(
        declared.len() > 250,
        "only {} functions found in uv.h",
        declared.len()
    );
    if std::env::var_os("UVCURL_BLESS").is_some() {
        let path = repo().join(LIBUV_EXPORTS);
        let text = fs::read_to_string(&path).expect("read the libuv export list");
        let comments: String = text
            .lines()
            .filter(|line| line.starts_with('#'))
            .map(|line| format!("{line}\n"))
            .collect();
        let names: String = declared.iter().map(|name| format!("{name}\n")).collect();
        fs::write(&path, comments + &names).expect("write the libuv export list");
        return;
    }
    assert_eq!(
        listed_libuv_exports(),
        declared.iter().map(String::as_str).collect::<Vec<_>>(),
        "{LIBUV_EXPORTS} differs from {}; UVCURL_BLESS=1 cargo test --test c_api libuv_export_list rewrites it",
        header.display()
    );
}

/// The names of the functions declared `UV_EXTERN ... uv_name(` in `source`.
fn uv_extern_functions(source: &str) -> Vec<String> {
    let identifier = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut names = Vec::new();
    for declaration in source.split("UV_EXTERN").skip(1) {
        let declaration = declaration.split(';').next().unwrap_or("");
        let bytes = declaration.as_bytes();
        // The first `uv_name(` at an identifier boundary; the return type
        // (`uv_loop_t*`, say) is not followed by a parenthesis.
        let mut from = 0;
        while let Some(found) = declaration[from..].find("uv_") {
            let start = from + found;
            let mut end = start;
            while end < bytes.len() && identifier(bytes[end]) {
                end += 1;
            }
            let at_boundary = start == 0 || !identifier(bytes[start - 1]);
            if at_boundary && declaration[end..].trim_start().starts_with('(') {
                names.push(declaration[start..end].to_owned());
                break;
            }
            from = end.max(start + 1);
        }
    }
    names
}

// ---- the examples -----------------------------------------------------------

#[test]
fn fetch_example_static_downloads_bodies_byte_exact() {
    let _serial = serial();
    check_fetch(&build_static("examples/c/fetch.c"), 25, 8);
}

#[test]
fn fetch_example_through_pkg_config_and_the_shared_library() {
    let _serial = serial();
    check_fetch(&build_shared("examples/c/fetch.c"), 25, 8);
}

#[test]
fn fetch_example_drives_1000_transfers_on_its_own_loop() {
    let _serial = serial();
    check_fetch(&build_static("examples/c/fetch.c"), 1000, 64);
}

#[test]
fn host_example_serves_and_ticks_beside_uvcurl() {
    let _serial = serial();
    let server = HttpServer::start();
    for exe in [
        build_static("examples/c/host.c"),
        build_shared("examples/c/host.c"),
    ] {
        // A dripping body keeps transfers running across several timer ticks.
        let urls = vec![
            server.url("/drip/1000?ms=20"),
            server.url("/bytes/100000?seed=7"),
        ];
        let output = run(&exe, &urls);
        check_success("host", &output);
        let lines = stdout_lines(&output);
        let drip = fnv1a(&support::body_bytes(1000, 0));
        let bytes = fnv1a(&support::body_bytes(100_000, 7));
        let own = fnv1a(b"hello from the host's own server\n");
        assert!(
            lines.contains(&format!("done 0 0 200 1000 {drip}")),
            "{lines:?}"
        );
        assert!(
            lines.contains(&format!("done 1 0 200 100000 {bytes}")),
            "{lines:?}"
        );
        let own_line = format!("done self 0 200 33 {own}");
        assert_eq!(
            lines.iter().filter(|l| **l == own_line).count(),
            20,
            "{lines:?}"
        );
        let tail: Vec<&str> = lines
            .iter()
            .filter(|l| !l.starts_with("done "))
            .map(String::as_str)
            .collect();
        assert_eq!(tail, ["served 20", "ticks-ok", "closed", "completed 22"]);
    }
}

/// The README's C program, compiled and run as a reader would.
#[test]
fn readme_c_program_builds_and_fetches() {
    let _serial = serial();
    let readme = fs::read_to_string(repo().join("README.md")).expect("README.md");
    let section = readme
        .split("## Using it from C")
        .nth(1)
        .expect("README section \"Using it from C\"");
    let program = section
        .split("```c\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a C program in the README");
    fs::write(work_dir().join("readme.c"), program).expect("write readme.c");
    let exe = build_static(work_dir().join("readme.c").to_str().unwrap());
    let server = HttpServer::start();
    let urls = vec![server.url("/bytes/1234?seed=1"), server.url("/status/404")];
    let output = run(&exe, &urls);
    check_success("README program", &output);
    let mut lines = stdout_lines(&output);
    lines.sort();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        format!("{}: No error, HTTP 200, 1234 bytes", urls[0])
    );
    // A 404 is a finished transfer (CURLE_OK) with its status.
    assert!(
        lines[1].starts_with(&format!("{}: No error, HTTP 404, ", urls[1])),
        "{lines:?}"
    );
}

// ---- the boundary -----------------------------------------------------------

fn boundary_args(server: &HttpServer) -> Vec<String> {
    vec![
        server.url("/bytes/5000?seed=3"),
        server.url("/slow-headers?ms=30000"),
        server.url("/drip/1000?ms=50"),
    ]
}

fn check_boundary_output(output: &Output) {
    let lines = stdout_lines(output);
    let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failed.is_empty(),
        "{failed:#?}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    check_success("boundary", output);
    assert_eq!(lines.last().map(String::as_str), Some("all passed"));
    assert!(lines.len() > 50, "{lines:?}");
}

#[test]
fn boundary_cases_return_codes_and_never_crash() {
    let _serial = serial();
    let server = HttpServer::start();
    let exe = build_static("tests/c/boundary.c");
    check_boundary_output(&run(&exe, &boundary_args(&server)));
}

/// Runs `exe args` under valgrind's memcheck (at most five minutes).
fn under_valgrind(exe: &Path, args: &[String]) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    native::run_limited(
        &mut valgrind_command(&[], exe, &args),
        std::time::Duration::from_secs(300),
    )
}

#[test]
fn boundary_and_fetch_are_clean_under_valgrind() {
    let _serial = serial();
    let server = HttpServer::start();
    let boundary = build_static("tests/c/boundary.c");
    check_boundary_output(&under_valgrind(&boundary, &boundary_args(&server)));
    let fetch = build_static("examples/c/fetch.c");
    let (urls, _) = fetch_plan(&server, 10);
    let mut args = vec!["-j".to_owned(), "4".to_owned()];
    args.extend(urls);
    let output = under_valgrind(&fetch, &args);
    check_success("fetch under valgrind", &output);
}

// ---- submissions from other threads ----------------------------------------

/// 4 pthreads submit 250 transfers each with `uvcurl_multi_submit` while the
/// main thread runs the loop: every done callback runs once, on the loop
/// thread, with the whole body; after the close a submission is refused.
#[test]
fn c_threads_submit_through_uvcurl_multi_submit() {
    let server = HttpServer::start();
    let exe = build_static("tests/c/threads.c");
    let url = server.url("/bytes/3000?seed=2");
    let output = run(&exe, &["4".into(), "250".into(), url]);
    check_success("threads", &output);
    let lines = stdout_lines(&output);
    let done: Vec<_> = lines.iter().filter(|l| l.starts_with("done ")).collect();
    assert_eq!(done.len(), 1000);
    assert!(done.iter().all(|l| *l == "done 0 3000"), "{done:?}");
    assert!(lines.contains(&"completed 1000".to_owned()));
    assert!(lines.contains(&"wrong-thread 0".to_owned()));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("late ") && l.contains("closed")),
        "{lines:?}"
    );
    assert!(lines.contains(&"closed".to_owned()));
}

/// The same under valgrind's race detectors, DRD and helgrind (4 pthreads,
/// 20 submissions each): neither reports a race. tests/races.supp says what
/// is suppressed and why (nothing of uvcurl's: its hand-overs are announced
/// to the detectors, see src/sync/annotate.rs).
#[test]
fn c_threads_submit_has_no_race_under_drd_and_helgrind() {
    let _serial = serial();
    native::require("valgrind", &["valgrind", "--version"]);
    let server = HttpServer::start();
    let exe = build_static("tests/c/threads.c");
    let url = server.url("/bytes/3000?seed=2");
    let supp = repo().join("tests/races.supp");
    for tool in ["drd", "helgrind"] {
        let mut command = Command::new("valgrind");
        command
            .arg(format!("--tool={tool}"))
            .args(["--error-exitcode=99", "-q"])
            .arg(format!("--suppressions={}", supp.display()))
            .arg(&exe)
            .args(["4", "20", &url]);
        let output = native::run_limited(&mut command, std::time::Duration::from_secs(240));
        check_success(&format!("threads under {tool}"), &output);
        let lines = stdout_lines(&output);
        let done = lines.iter().filter(|l| *l == "done 0 3000").count();
        assert_eq!(done, 80, "{tool}: {lines:?}");
        assert!(
            lines.contains(&"completed 80".to_owned()),
            "{tool}: {lines:?}"
        );
    }
}

// ---- regressions found by a new C user ---------------------------------------

fn regressions_args(server: &HttpServer) -> Vec<String> {
    vec![
        server.url("/slow-headers?ms=300"),
        server.url("/drip/1000?ms=20"),
    ]
}

fn check_regressions(output: &Output) {
    check_success("regressions", output);
    let lines = stdout_lines(output);
    // UVCURL_ECLOSED is -2, UVCURL_ECANCELED -6, UVCURL_EEXIST -3.
    assert!(
        lines.contains(&"submit-after-close -2 done-calls 0 first -6 closed 1".to_owned()),
        "uvcurl_multi_submit after uvcurl_multi_close inside a write callback: {lines:?}"
    );
    assert!(
        lines.contains(
            &"eexist add -3 refused-done -3 active 1 first 0 active-in-done 0".to_owned()
        ),
        "a running easy added or submitted again: {lines:?}"
    );
    assert!(
        lines.contains(&"cancel-in-write -6 cancel-rc 0".to_owned()),
        "{lines:?}"
    );
    assert!(lines.contains(&"all ok".to_owned()), "{lines:?}");
}

/// Submit after close (inside a write callback) is refused at once; a
/// running easy handle added or submitted again is refused with
/// `UVCURL_EEXIST` and keeps running; cancelling inside the write callback.
#[test]
fn c_abi_regressions_submit_after_close_eexist_and_cancel_in_write() {
    let server = HttpServer::start();
    let exe = build_static("tests/c/regressions.c");
    check_regressions(&run(&exe, &regressions_args(&server)));
}

#[test]
fn c_abi_regressions_are_clean_under_valgrind() {
    let _serial = serial();
    let server = HttpServer::start();
    let exe = build_static("tests/c/regressions.c");
    check_regressions(&under_valgrind(&exe, &regressions_args(&server)));
}

#[test]
fn install_c_help_prints_its_usage_only() {
    let output = command_output(
        Command::new("bash")
            .arg(repo().join("vendor/install-c"))
            .arg("--help"),
    );
    check_success("vendor/install-c --help", &output);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("--system-libuv"), "{text}");
    assert!(
        !text.contains("set -euo"),
        "the help ends before the code: {text}"
    );
    assert!(!text.contains("#!/"), "{text}");
}
