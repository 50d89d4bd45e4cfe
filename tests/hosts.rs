//! uvcurl inside hosts that already run libuv: a C program linked with `-luv`,
//! LuaJIT + luv, and Node.js. Each builds on the system-libuv flavour of the C
//! library (`vendor/install-c --system-libuv`, built once per test binary into
//! `target/c-host` and installed under `target/<profile>/hosts-tests`), runs
//! uvcurl on the host's own loop beside the host's own server and timer, and
//! checks that the process runs one libuv: the version the host sees is the
//! version uvcurl's calls reach.
//!
//! The tools (cc, pkg-config, valgrind, luajit + lua-luv, node + its headers,
//! openssl, libuv1-dev) are installed by `vendor/bootstrap`; a missing one
//! fails the test with a message saying so. Everything talks to 127.0.0.1
//! only, and every child process runs under a time limit.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

#[path = "native/mod.rs"]
mod native;
use native::{check_success, profile_dir, repo, require, run_limited, valgrind_command};

/// Where this test binary builds its programs and installs the library.
fn work_dir() -> PathBuf {
    native::work_dir("hosts-tests")
}

/// The system-libuv C library, built and installed once per test binary.
fn prefix() -> &'static Path {
    static PREFIX: OnceLock<PathBuf> = OnceLock::new();
    PREFIX.get_or_init(|| {
        require("pkg-config", &["pkg-config", "--version"]);
        require(
            "libuv1-dev (the system libuv)",
            &["pkg-config", "--atleast-version=1.44", "libuv"],
        );
        let prefix = work_dir().join("prefix");
        let _ = fs::remove_dir_all(&prefix);
        // The build goes to <target>/c-host, beside the default build.
        let target = profile_dir().parent().expect("target dir").to_path_buf();
        let output = run_limited(
            Command::new("bash")
                .arg(repo().join("vendor/install-c"))
                .args(["--system-libuv", "--debug", "--prefix"])
                .arg(&prefix)
                .env("CARGO_TARGET_DIR", &target)
                .env_remove("PKG_CONFIG_PATH"),
            Duration::from_secs(1500),
        );
        check_success("vendor/install-c --system-libuv", &output);
        prefix
    })
}

fn lib_dir() -> PathBuf {
    prefix().join("lib")
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let output = run_limited(
        Command::new("pkg-config")
            .args(args)
            .arg("uvcurl")
            .env("PKG_CONFIG_PATH", lib_dir().join("pkgconfig")),
        Duration::from_secs(30),
    );
    check_success("pkg-config uvcurl", &output);
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `exe args` under valgrind's memcheck: definite leaks and invalid
/// accesses fail (exit code 99).
fn valgrind(extra: &[&str], exe: &Path, args: &[&str], limit: Duration) -> Output {
    run_limited(&mut valgrind_command(extra, exe, args), limit)
}

// ---- a C program linked with -luv -------------------------------------------

/// Builds tests/hosts/host.c with the documented link line:
/// `cc host.c $(pkg-config --cflags --libs uvcurl)`.
fn c_host() -> PathBuf {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        require("cc", &["cc", "--version"]);
        let exe = work_dir().join("host");
        let flags = pkg_config(&["--cflags", "--libs"]);
        assert!(
            flags.iter().any(|f| f == "-luv"),
            "pkg-config --libs uvcurl names the host's libuv: {flags:?}"
        );
        let output = run_limited(
            Command::new("cc")
                .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g"])
                .arg(repo().join("tests/hosts/host.c"))
                .args(&flags)
                .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
                .arg("-o")
                .arg(&exe),
            Duration::from_secs(120),
        );
        check_success("cc tests/hosts/host.c", &output);
        exe
    })
    .clone()
}

fn check_c_host(output: &Output) {
    check_success("tests/hosts/host.c", output);
    let text = stdout_of(output);
    assert!(
        text.contains("transfers 1000 ok 1000 failed 0"),
        "all 1000 transfers byte-exact: {text}"
    );
    assert!(text.contains("libuv_files 1 "), "one libuv mapped: {text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}

#[test]
fn c_host_with_system_libuv_runs_1000_transfers_beside_its_server_and_timer() {
    let exe = c_host();
    // The library itself: no libuv inside, libuv.so.1 needed, only the
    // public uvcurl_* and curl_* exported.
    let so = lib_dir().join("libuvcurl.so");
    let dynamic = run_limited(
        Command::new("readelf").arg("-d").arg(&so),
        Duration::from_secs(30),
    );
    check_success("readelf -d", &dynamic);
    assert!(
        stdout_of(&dynamic).contains("[libuv.so.1]"),
        "libuvcurl.so needs libuv.so.1"
    );
    let symbols = run_limited(
        Command::new("nm").args(["-D", "--defined-only"]).arg(&so),
        Duration::from_secs(30),
    );
    check_success("nm -D", &symbols);
    let names: Vec<String> = stdout_of(&symbols)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    let foreign: Vec<&String> = names
        .iter()
        .filter(|n| !n.starts_with("uvcurl_") && !n.starts_with("curl_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "only uvcurl_* and curl_* exported: {foreign:?}"
    );
    assert!(names.iter().any(|n| n == "uvcurl_multi_new"));
    // Nor does the archive define any uv_* function.
    let archive = run_limited(
        Command::new("nm")
            .args(["--defined-only"])
            .arg(lib_dir().join("libuvcurl.a")),
        Duration::from_secs(60),
    );
    let defined_uv: Vec<&str> = std::str::from_utf8(&archive.stdout)
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|n| n.starts_with("uv_"))
        .collect();
    assert!(defined_uv.is_empty(), "libuvcurl.a defines {defined_uv:?}");

    check_c_host(&run_limited(
        Command::new(&exe).arg("1000"),
        Duration::from_secs(120),
    ));
}

#[test]
fn c_host_linking_the_static_library_and_its_own_libuv_runs_1000_transfers() {
    // libuvcurl.a has no libuv: the link line names the host's (-luv).
    let flags = pkg_config(&["--static", "--libs-only-l"]);
    assert!(flags.iter().any(|f| f == "-luv"), "{flags:?}");
    let exe = work_dir().join("host-static");
    let output = run_limited(
        Command::new("cc")
            .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-g"])
            .arg(repo().join("tests/hosts/host.c"))
            .args(pkg_config(&["--cflags"]))
            .arg(lib_dir().join("libuvcurl.a"))
            .args(flags.iter().filter(|f| *f != "-luvcurl"))
            .arg("-o")
            .arg(&exe),
        Duration::from_secs(120),
    );
    check_success("cc tests/hosts/host.c (static)", &output);
    check_c_host(&run_limited(
        Command::new(&exe).arg("1000"),
        Duration::from_secs(120),
    ));
}

#[test]
fn uvcurl_multi_new_refuses_a_libuv_older_than_1_44() {
    let exe = c_host();
    let shim = work_dir().join("old_libuv.so");
    let output = run_limited(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
            .arg(&shim)
            .arg(repo().join("tests/hosts/old_libuv.c")),
        Duration::from_secs(60),
    );
    check_success("cc tests/hosts/old_libuv.c", &output);
    let output = run_limited(
        Command::new(&exe)
            .arg("version-check")
            .env("LD_PRELOAD", &shim),
        Duration::from_secs(60),
    );
    check_success("host version-check", &output);
    let text = stdout_of(&output);
    assert!(
        text.contains(
            "uv_version 12b00 multi_new -11 (the libuv in this process is older than 1.44.0"
        ),
        "{text}"
    );
}

#[test]
fn c_host_with_system_libuv_is_clean_under_valgrind() {
    let exe = c_host();
    let output = valgrind(&[], &exe, &["1000"], Duration::from_secs(600));
    check_c_host(&output);
}

// ---- LuaJIT + luv --------------------------------------------------------------

/// `luajit SCRIPT ARGS` with the module on `LUA_PATH` and the system-libuv
/// library as `UVCURL_LIB`; `valgrind_args` runs it under valgrind.
fn luajit(script: &Path, args: &[&str], valgrind_args: Option<&[&str]>, limit: Duration) -> Output {
    require("luajit", &["luajit", "-v"]);
    require("luv", &["luajit", "-e", "require 'luv'"]);
    let lua_path = format!("{}/?.lua;;", repo().join("examples/lua").display());
    let lib = lib_dir().join("libuvcurl.so");
    let mut command = match valgrind_args {
        None => Command::new("luajit"),
        Some(extra) => {
            // Symbols of libuvcurl.so stay readable after lua_close unloads
            // it (where a leak would then be reported).
            let extra: Vec<&str> = extra
                .iter()
                .copied()
                .chain(["--keep-debuginfo=yes"])
                .collect();
            valgrind_command(&extra, Path::new("luajit"), &[])
        }
    };
    command
        .arg(script)
        .args(args)
        .env("LUA_PATH", lua_path)
        .env("UVCURL_LIB", lib)
        .current_dir(work_dir());
    run_limited(&mut command, limit)
}

fn check_lua_host(output: &Output) {
    check_success("tests/hosts/lua_host.lua", output);
    let text = stdout_of(output);
    assert!(
        text.contains("transfers 1000 ok 1000 failures 0"),
        "all 1000 bodies verified: {text}"
    );
    assert!(
        text.contains("cancelled 5 closed 5 closed_cb true echo true"),
        "cancels, close with transfers in flight, POST echo: {text}"
    );
    assert!(text.contains("libuv_files 1"), "one libuv mapped: {text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}

#[test]
fn luajit_luv_module_fetches_1000_urls_cancels_and_closes_on_luvs_loop() {
    let script = repo().join("tests/hosts/lua_host.lua");
    check_lua_host(&luajit(&script, &["1000"], None, Duration::from_secs(120)));
}

#[test]
fn luajit_luv_module_is_clean_under_valgrind() {
    // LuaJIT writes machine code at run time: valgrind must re-check every
    // code write (--smc-check=all) to run its traces correctly.
    let script = repo().join("tests/hosts/lua_host.lua");
    let output = luajit(
        &script,
        &["1000"],
        Some(&["--smc-check=all"]),
        Duration::from_secs(900),
    );
    check_lua_host(&output);
}

#[test]
fn luajit_fetch_example_runs_beside_a_luv_server_and_timer() {
    let script = repo().join("examples/lua/fetch.lua");
    let output = luajit(&script, &[], None, Duration::from_secs(60));
    check_success("examples/lua/fetch.lua", &output);
    let text = stdout_of(&output);
    assert_eq!(
        text.lines().filter(|l| l.starts_with("200 ")).count(),
        20,
        "{text}"
    );
    assert!(text.contains("failed 0"), "{text}");
}

#[test]
fn luajit_module_refuses_a_library_that_carries_its_own_libuv() {
    // The default build of libuvcurl.so contains libuv 1.53: on luv's 1.44
    // loop that crashed (two libuvs acting on one loop). The module now
    // compares versions first and fails with a message instead.
    let bundled = profile_dir().join("deps/libuvcurl.so");
    assert!(
        bundled.is_file(),
        "{} was not built by cargo test",
        bundled.display()
    );
    let script = work_dir().join("refuse_bundled.lua");
    fs::write(
        &script,
        format!(
            "local uv = require 'luv'\n\
             local ok, err = pcall(require('uvcurl').new, uv, {{ lib = '{}' }})\n\
             print(ok, err)\n\
             os.exit(ok and 1 or 0)\n",
            bundled.display()
        ),
    )
    .expect("write refuse_bundled.lua");
    let output = luajit(&script, &[], None, Duration::from_secs(60));
    check_success("refuse_bundled.lua", &output);
    assert!(
        stdout_of(&output).contains("use the system-libuv build"),
        "{}",
        stdout_of(&output)
    );
}

// ---- Node.js -----------------------------------------------------------------

/// The N-API addon, compiled with cc against Node's headers and linked with
/// `-luvcurl` only: napi_* and uv_* resolve to the node executable at load.
fn node_addon() -> PathBuf {
    require("node", &["node", "--version"]);
    assert!(
        Path::new("/usr/include/node/node_api.h").is_file(),
        "Node's headers (/usr/include/node/node_api.h) are missing: run vendor/bootstrap (nodejs)"
    );
    require("cc", &["cc", "--version"]);
    let addon = work_dir().join("uvcurl_test.node");
    let include = prefix().join("include");
    let output = run_limited(
        Command::new("cc")
            .args([
                "-std=gnu11",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-g",
                "-shared",
                "-fPIC",
            ])
            .arg("-I/usr/include/node")
            .arg(format!("-I{}", include.display()))
            .arg(format!("-I{}", include.join("uvcurl").display()))
            .arg(repo().join("tests/hosts/node_addon.c"))
            .arg(format!("-L{}", lib_dir().display()))
            .arg("-luvcurl")
            .arg(format!("-Wl,-rpath,{}", lib_dir().display()))
            .arg("-o")
            .arg(&addon),
        Duration::from_secs(120),
    );
    check_success("cc tests/hosts/node_addon.c", &output);
    addon
}

/// A self-signed certificate for 127.0.0.1, made with openssl.
fn cert_dir() -> PathBuf {
    require("openssl", &["openssl", "version"]);
    let dir = work_dir().join("certs");
    fs::create_dir_all(&dir).expect("create certs");
    let output = run_limited(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem")),
        Duration::from_secs(60),
    );
    check_success("openssl req", &output);
    dir
}

#[test]
fn node_addon_fetches_1000_urls_from_nodes_own_http_server_on_nodes_loop() {
    let addon = node_addon();
    let certs = cert_dir();
    // LD_DEBUG=bindings: the dynamic linker reports, for every symbol it
    // binds, which object it took it from.
    let output = run_limited(
        Command::new("node")
            .arg(repo().join("tests/hosts/node_host.js"))
            .arg(&addon)
            .arg("1000")
            .arg(&certs)
            .env("LD_DEBUG", "bindings")
            .current_dir(work_dir()),
        Duration::from_secs(120),
    );
    check_success("tests/hosts/node_host.js", &output);
    let text = stdout_of(&output);
    assert!(
        text.contains("transfers 1000 ok 1000 failures 0 https 5"),
        "1000 bodies over HTTP and 5 over HTTPS verified: {text}"
    );
    assert!(text.trim_end().ends_with("ok"), "{text}");

    // One libuv in use: every uv_* that libuvcurl calls is bound to the node
    // executable's copy (libuv.so.1, a NEEDED of libuvcurl.so, is loaded
    // but nothing of uvcurl's binds to it). The same goes for OpenSSL.
    let bindings = String::from_utf8_lossy(&output.stderr);
    let mut to_node = 0;
    let mut elsewhere = Vec::new();
    for line in bindings.lines() {
        if !line.contains("libuvcurl.so") || !line.contains("symbol `uv_") {
            continue;
        }
        let target = line
            .split(" to ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("");
        if target.ends_with("/node") || target == "node" {
            to_node += 1;
        } else {
            elsewhere.push(line.to_owned());
        }
    }
    assert!(to_node >= 10, "libuvcurl's uv_* bound to node: {to_node}");
    assert!(elsewhere.is_empty(), "uv_* bound elsewhere: {elsewhere:?}");
}
