//! End-to-end tests of `examples/download`: the built example binary runs
//! against the demo's loopback `FileServer` (examples/download/file_server.rs,
//! with scripted faults), and the files it leaves are checked byte for byte.
//! Every run is bounded in time.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Once};
use std::thread;
use std::time::Duration;

use crate::support::cargo::cargo;
use crate::support::files::{Fault, FileServer, Route};
use crate::support::harness::shared;
use crate::support::{body_bytes, sha256_hex, wait_until, ProxyServer, RawServer, TempDir};

/// Longest any one downloader run may take.
const RUN_LIMIT: Duration = Duration::from_secs(180);

// ---- the example binary ------------------------------------------------------

/// The path of the `download` example, built once per test process.
pub(crate) fn downloader() -> PathBuf {
    static BUILD: Once = Once::new();
    // target/<profile>/deps/it-<hash> -> target/<profile>
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory")
        .to_path_buf();
    BUILD.call_once(|| {
        let mut build = cargo(&["build", "--example", "download"]);
        // The downloader links the libcurl this test binary links: the
        // system's in the suite's second pass.
        if !cfg!(feature = "bundled") {
            build.arg("--no-default-features");
        }
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        if let Some(target_dir) = profile_dir.parent() {
            build.env("CARGO_TARGET_DIR", target_dir);
        }
        let output = build.output().expect("run cargo build");
        assert!(
            output.status.success(),
            "cargo build --example download failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    });
    profile_dir
        .join("examples")
        .join(format!("download{}", std::env::consts::EXE_SUFFIX))
}

/// What a downloader run left behind.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the downloader with `args`, killing it if it outlives [`RUN_LIMIT`].
fn run(args: &[&str]) -> Run {
    finish(start(args, None), args)
}

/// Runs the downloader with `args` and these environment variables added.
fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    finish(start_with_env(args, None, env), args)
}

/// Starts the downloader with `args`; `stdin` (if any) is written to it.
pub(crate) fn start(args: &[&str], stdin: Option<&str>) -> Child {
    start_with_env(args, stdin, &[])
}

/// [`start`] with environment variables added (none of the proxy
/// variables of the test's own environment is passed on).
fn start_with_env(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(downloader());
    for name in [
        "http_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let mut child = command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the downloader");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).expect("write stdin");
    }
    child
}

/// Waits for `child` at most [`RUN_LIMIT`] (then kills it) and collects
/// its exit status and output.
pub(crate) fn finish(child: Child, args: &[&str]) -> Run {
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(RUN_LIMIT) {
        Ok(output) => output.expect("wait for the downloader"),
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("download {args:?} ran longer than {RUN_LIMIT:?}");
        }
    };
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Sends `signal` to the downloader process `pid` that this test started.
pub(crate) fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our child.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

// ---- output directories -------------------------------------------------

/// Fails, naming them, if there is any file under `dir`.
fn assert_no_files(dir: &Path) {
    assert_eq!(files_under(dir), Vec::<PathBuf>::new(), "files left");
}

/// Every file under `dir`, recursively, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).expect("under dir").to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// Paths and bodies of files served.
type Files = Vec<(String, Vec<u8>)>;

/// `count` files `/f/NNNN.bin` of 1–`max_len` bytes.
fn numbered_files(count: usize, max_len: usize) -> Files {
    (0..count)
        .map(|i| {
            let seed = i as u64 + 7;
            let len = 1 + (body_bytes(8, seed)[0] as usize * 131 + i * 977) % max_len;
            (format!("/f/{i:04}.bin"), body_bytes(len, seed))
        })
        .collect()
}

/// Writes `urls` into `dir/urls.txt` and returns its path.
fn url_file(dir: &TempDir, urls: &[String]) -> String {
    let path = dir.join("urls.txt");
    let mut text = String::from("# generated by tests/it/download.rs\n\n");
    for url in urls {
        text.push_str(url);
        text.push('\n');
    }
    fs::write(&path, text).expect("write URL file");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// The final name of `/f/NNNN.bin`.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().expect("a name")
}

// ---- tests ---------------------------------------------------------------------

#[test]
fn demo_downloads_and_verifies_every_file() {
    let _fds = shared();
    let out = TempDir::new("uvcurl-download-demo");
    let result = run(&["--demo", "-o", out.str(), "-q"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert!(
        result.stdout.contains("demo: 300 files verified"),
        "{result:#?}"
    );
    let files = files_under(out.path());
    assert_eq!(files.len(), 300, "{files:?}");
    assert!(files
        .iter()
        .all(|f| !f.to_string_lossy().ends_with(".part")));
}

#[test]
fn five_hundred_urls_at_32_in_parallel_are_byte_exact() {
    let _fds = shared();
    let files = numbered_files(500, 24 * 1024);
    let routes = files
        .iter()
        .map(|(path, body)| (path.clone(), Route::file(body.clone())))
        .collect();
    let server = FileServer::start(routes, true).expect("start the file server");
    let work = TempDir::new("uvcurl-download-many");
    let out = work.join("out");
    let urls: Vec<String> = files.iter().map(|(path, _)| server.url(path)).collect();
    let list = url_file(&work, &urls);
    let out_str = out.to_str().expect("UTF-8");
    let result = run(&[
        "-i",
        &list,
        "-j",
        "32",
        "-o",
        out_str,
        "-q",
        "--timeout",
        "60",
    ]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_eq!(files_under(&out).len(), 500);
    for (path, body) in &files {
        let saved = fs::read(out.join(file_name(path))).expect("saved file");
        assert!(saved == *body, "{path} differs");
    }
}

/// Routes for the fault tests: every third file drops its connection on
/// the first attempt, every fifth answers 503 twice (some with
/// `Retry-After: 0`); the rest are healthy. Returns the routes and which
/// paths are faulty.
fn faulty_routes() -> (Files, HashMap<String, Route>, Vec<String>) {
    let files = numbered_files(60, 256 * 1024);
    let mut routes = HashMap::new();
    let mut faulty = Vec::new();
    for (i, (path, body)) in files.iter().enumerate() {
        let mut route = Route::file(body.clone());
        if i % 5 == 0 {
            route.faults = vec![Fault::Unavailable(i % 10 == 0), Fault::Unavailable(true)];
        } else if i % 3 == 0 {
            route.faults = vec![Fault::DropMidBody];
        }
        if !route.faults.is_empty() {
            faulty.push(path.clone());
        }
        routes.insert(path.clone(), route);
    }
    (files, routes, faulty)
}

#[test]
fn faults_are_retried_until_every_file_is_correct() {
    let _fds = shared();
    let (files, routes, faulty) = faulty_routes();
    let server = FileServer::start(routes, true).expect("start the file server");
    let work = TempDir::new("uvcurl-download-faults-retry");
    let out = work.join("out");
    let urls: Vec<String> = files.iter().map(|(path, _)| server.url(path)).collect();
    let list = url_file(&work, &urls);
    let out_str = out.to_str().expect("UTF-8");
    let result = run(&[
        "-i",
        &list,
        "-j",
        "8",
        "-o",
        out_str,
        "--retries",
        "3",
        "-v",
    ]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert!(result.stderr.contains("retry 1/3"), "{}", result.stderr);
    for (path, body) in &files {
        let saved = fs::read(out.join(file_name(path))).expect("saved file");
        assert!(saved == *body, "{path} differs");
    }
    assert_eq!(files_under(&out).len(), files.len(), "stray files");
    for path in &faulty {
        assert!(server.hits(path) >= 2, "{path} was not retried");
    }
}

/// A `Retry-After` given as an HTTP date is honoured: the server asks for
/// a retry 5 s from now (a date has whole seconds, so at least 4 s after the
/// first request; the backoff alone would retry within about 2 s), and the
/// file arrives on the second request.
#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let _fds = shared();
    let body = body_bytes(5000, 17);
    let mut route = Route::file(body.clone());
    route.faults = vec![Fault::UnavailableUntil(5)];
    let routes = HashMap::from([("/later.bin".to_owned(), route)]);
    let server = FileServer::start(routes, true).expect("start the file server");
    let work = TempDir::new("uvcurl-download-retry-date");
    let out = work.join("out");
    let out_str = out.to_str().expect("UTF-8");
    let started = std::time::Instant::now();
    let result = run(&[
        &server.url("/later.bin"),
        "-o",
        out_str,
        "--retries",
        "2",
        "-v",
    ]);
    let took = started.elapsed();
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert_eq!(server.hits("/later.bin"), 2);
    assert!(
        took >= std::time::Duration::from_secs(2),
        "retried after {took:?}"
    );
    assert_eq!(fs::read(out.join("later.bin")).expect("saved file"), body);
}

/// Serves 10 small files and returns the server, their paths and bodies.
fn ten_files() -> (FileServer, Vec<(String, Vec<u8>)>) {
    let files: Vec<(String, Vec<u8>)> = (0..10u64)
        .map(|i| (format!("/p/{i}.bin"), body_bytes(1000 + i as usize, 60 + i)))
        .collect();
    let routes = files
        .iter()
        .map(|(path, body)| (path.clone(), Route::file(body.clone())))
        .collect();
    let server = FileServer::start(routes, true).expect("start the file server");
    (server, files)
}

/// Downloads `files` from `server` with `args` and `env` into a fresh
/// directory, and checks every file.
fn fetch_ten(
    server: &FileServer,
    files: &[(String, Vec<u8>)],
    args: &[&str],
    env: &[(&str, &str)],
) {
    let work = TempDir::new("uvcurl-download-proxy");
    let out = work.join("out");
    let out_str = out.to_str().expect("UTF-8");
    let urls: Vec<String> = files.iter().map(|(path, _)| server.url(path)).collect();
    let mut all: Vec<&str> = urls.iter().map(String::as_str).collect();
    all.extend(["-o", out_str]);
    all.extend(args);
    let result = run_with_env(&all, env);
    assert_eq!(result.code, Some(0), "{result:#?}");
    for (path, body) in files {
        assert!(
            fs::read(out.join(file_name(path))).expect("saved file") == *body,
            "{path}"
        );
    }
}

/// `--proxy` sends every request through the proxy (absolute-form, as
/// libcurl speaks to an HTTP proxy), and so does `http_proxy` from the
/// environment, as with curl and wget; `no_proxy` sends them direct.
#[test]
fn proxies_from_the_command_line_and_the_environment() {
    let _fds = shared();
    let (server, files) = ten_files();
    let expected: Vec<String> = files
        .iter()
        .map(|(path, _)| format!("GET {} HTTP/1.1", server.url(path)))
        .collect();
    let sorted = |mut lines: Vec<String>| {
        lines.sort();
        lines
    };
    let proxy = ProxyServer::start();
    fetch_ten(&server, &files, &["--proxy", &proxy.url()], &[]);
    assert_eq!(sorted(proxy.requests()), sorted(expected.clone()));

    let proxy = ProxyServer::start();
    fetch_ten(&server, &files, &[], &[("http_proxy", &proxy.url())]);
    assert_eq!(sorted(proxy.requests()), sorted(expected));

    let proxy = ProxyServer::start();
    let env = [
        ("http_proxy", proxy.url()),
        ("no_proxy", "127.0.0.1".to_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fetch_ten(&server, &files, &[], &env);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    let bad = run(&[&server.url("/p/0.bin"), "--proxy", "ftp://127.0.0.1:1"]);
    assert_eq!(bad.code, Some(2), "{bad:#?}");
    assert!(bad.stderr.contains("proxy"), "{}", bad.stderr);
}

#[test]
fn without_retries_faults_fail_and_leave_no_final_file() {
    let _fds = shared();
    let (files, routes, faulty) = faulty_routes();
    let server = FileServer::start(routes, true).expect("start the file server");
    let work = TempDir::new("uvcurl-download-faults-none");
    let out = work.join("out");
    let urls: Vec<String> = files.iter().map(|(path, _)| server.url(path)).collect();
    let list = url_file(&work, &urls);
    let out_str = out.to_str().expect("UTF-8");
    let result = run(&["-i", &list, "-o", out_str, "--retries", "0", "--json"]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    let summary: serde_json::Value =
        serde_json::from_str(result.stdout.trim()).expect("JSON summary on stdout");
    assert_eq!(summary["failed"], faulty.len(), "{summary}");
    assert_eq!(summary["ok"], files.len() - faulty.len(), "{summary}");
    let failed_urls: Vec<&str> = summary["failures"]
        .as_array()
        .expect("failures array")
        .iter()
        .map(|f| f["url"].as_str().expect("url"))
        .collect();
    for (path, body) in &files {
        let dest = out.join(file_name(path));
        if faulty.contains(path) {
            assert!(failed_urls.contains(&server.url(path).as_str()), "{path}");
            assert!(!dest.exists(), "{path} left a final file");
            assert_eq!(server.hits(path), 1, "{path} was retried");
        } else {
            assert!(
                fs::read(&dest).expect("saved file") == *body,
                "{path} differs"
            );
        }
    }
    // Without --continue no .part file is kept either.
    assert_eq!(files_under(&out).len(), files.len() - faulty.len());
}

#[test]
fn client_errors_are_not_retried() {
    let _fds = shared();
    let mut routes = HashMap::new();
    routes.insert(
        "/gone".to_owned(),
        Route {
            status: Some(404),
            ..Route::default()
        },
    );
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-404");
    let result = run(&[&server.url("/gone"), "-o", out.str(), "--retries", "3"]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    assert!(result.stderr.contains("HTTP 404"), "{}", result.stderr);
    assert_eq!(server.hits("/gone"), 1);
    assert_no_files(out.path());
}

/// Pre-creates `big.bin.part` with the first 40% of the body, runs with
/// `--continue`, and checks the result; returns the server for more checks.
fn resume_against(honour_range: bool) -> (FileServer, usize) {
    let body = body_bytes(3 * 1024 * 1024 + 17, 42);
    let mut routes = HashMap::new();
    routes.insert("/big.bin".to_owned(), Route::file(body.clone()));
    let server = FileServer::start(routes, honour_range).expect("start the file server");
    let out = TempDir::new("uvcurl-download-resume");
    let already = body.len() * 2 / 5;
    fs::write(out.join("big.bin.part"), &body[..already]).expect("write part");
    let result = run(&[&server.url("/big.bin"), "-o", out.str(), "-c", "-v"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    let saved = fs::read(out.join("big.bin")).expect("saved file");
    assert!(saved == body, "big.bin differs ({} bytes)", saved.len());
    assert_eq!(files_under(out.path()), vec![PathBuf::from("big.bin")]);
    (server, already)
}

#[test]
fn continue_resumes_a_part_file_with_a_range_request() {
    let _fds = shared();
    let (server, already) = resume_against(true);
    let expected = ("/big.bin".to_owned(), format!("bytes={already}-"));
    assert_eq!(server.ranges(), vec![expected]);
    assert_eq!(server.hits("/big.bin"), 1);
}

#[test]
fn continue_starts_over_when_the_server_ignores_range() {
    let _fds = shared();
    let (server, already) = resume_against(false);
    let expected = ("/big.bin".to_owned(), format!("bytes={already}-"));
    assert_eq!(server.ranges(), vec![expected]);
}

/// Rerun with `--continue` after an interrupted run, a file that run saved
/// is not fetched again: a `Range` request from its length gets a `416`
/// saying it is complete, and it stays as it is (no `NAME.1` copy). One
/// that grew on the server since is completed in place, as with `wget -c`.
#[test]
fn continue_keeps_files_saved_by_an_earlier_run() {
    let _fds = shared();
    let done = body_bytes(300_000, 5);
    let grown = body_bytes(200_000, 6);
    let mut routes = HashMap::new();
    routes.insert("/done.bin".to_owned(), Route::file(done.clone()));
    routes.insert("/grown.bin".to_owned(), Route::file(grown.clone()));
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-saved");
    fs::write(out.join("done.bin"), &done).expect("write saved file");
    fs::write(out.join("grown.bin"), &grown[..50_000]).expect("write saved file");
    let urls = [server.url("/done.bin"), server.url("/grown.bin")];
    let result = run(&[&urls[0], &urls[1], "-o", out.str(), "-c", "-v"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    let mut ranges = server.ranges();
    ranges.sort();
    assert_eq!(
        ranges,
        vec![
            ("/done.bin".to_owned(), "bytes=300000-".to_owned()),
            ("/grown.bin".to_owned(), "bytes=50000-".to_owned()),
        ]
    );
    assert_eq!(
        (server.hits("/done.bin"), server.hits("/grown.bin")),
        (1, 1)
    );
    assert!(fs::read(out.join("done.bin")).expect("kept") == done);
    assert!(fs::read(out.join("grown.bin")).expect("completed") == grown);
    let names = vec![PathBuf::from("done.bin"), PathBuf::from("grown.bin")];
    assert_eq!(files_under(out.path()), names);
}

#[test]
fn hostile_names_stay_inside_the_output_directory() {
    let _fds = shared();
    // The output directory is nested three deep in the work directory and
    // the absolute path points into the work directory too, so that even a
    // broken downloader could only write where this test looks.
    let work = TempDir::new("uvcurl-download-hostile");
    let absolute = format!("attachment; filename=\"{}/etc/passwd\"", work.str());
    let body = |seed| body_bytes(1000 + seed as usize, seed);
    let disposition = |value: &str| Route {
        body: body(value.len() as u64).into(),
        disposition: Some(value.to_owned()),
        ..Route::default()
    };
    let mut routes = HashMap::new();
    routes.insert("/..%2F..%2Fevil".to_owned(), Route::file(body(1)));
    routes.insert(
        "/%2E%2E%5C%2E%2E%5Cwin.ini".to_owned(),
        Route::file(body(2)),
    );
    routes.insert("/nul%00name".to_owned(), Route::file(body(3)));
    routes.insert(
        "/cd1".to_owned(),
        disposition("attachment; filename=\"../../evil\""),
    );
    routes.insert("/cd2".to_owned(), disposition(&absolute));
    routes.insert(
        "/cd4".to_owned(),
        disposition("attachment; filename*=UTF-8''..%2F..%2Fescape"),
    );
    routes.insert(
        "/cd5".to_owned(),
        disposition("attachment; filename=\"..\""),
    );
    let server = FileServer::start(routes.clone(), true).expect("start the file server");
    // Control characters in a header value: no HTTP library sends them, so
    // this one comes from a raw server, byte for byte.
    let control = b"attachment; filename=\"ctl\x01\x1b[2J\x7f.txt\"";
    let control_body = body(control.len() as u64);
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\nContent-Disposition: ",
        control_body.len()
    )
    .into_bytes();
    response.extend_from_slice(control);
    response.extend_from_slice(b"\r\n\r\n");
    response.extend_from_slice(&control_body);
    let raw = RawServer::script(response);
    let mut urls: Vec<String> = routes.keys().map(|path| server.url(path)).collect();
    urls.push(raw.url("/cd3"));
    let out = work.join("a").join("b").join("out");
    let list = url_file(&work, &urls);
    let out_str = out.to_str().expect("UTF-8");
    let result = run(&["-i", &list, "-o", out_str, "-q"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    // Nothing but the URL list was written outside the output directory...
    let outside: Vec<PathBuf> = files_under(work.path())
        .into_iter()
        .filter(|f| !f.starts_with("a/b/out"))
        .collect();
    assert_eq!(outside, vec![PathBuf::from("urls.txt")]);
    // ...and inside it every file sits directly in it, under a tame name.
    let inside = files_under(&out);
    assert_eq!(inside.len(), urls.len(), "{inside:?}");
    for file in &inside {
        assert_eq!(
            file.components().count(),
            1,
            "{file:?} is in a subdirectory"
        );
        let name = file.to_str().expect("UTF-8 name");
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(!name.contains(".."), "{name:?}");
    }
    let names: Vec<&str> = inside.iter().filter_map(|f| f.to_str()).collect();
    for expected in [
        "evil",
        "evil.1",
        "win.ini",
        "nulname",
        "passwd",
        "ctl[2J.txt",
        "escape",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

/// What is on disk before a run is never replaced or written through
/// without `--overwrite`: an existing file keeps its name (the download
/// takes `NAME.1`, then `NAME.2`), another `.part` file is left alone, a
/// `.part` that is a symbolic link is never followed, and a directory is
/// never a target. With `--overwrite` files are replaced, and a `.part`
/// link is removed, not followed. Files of more than 64 KiB go through
/// `NAME.part`, whose name another `.part` file takes too.
#[test]
fn existing_files_are_never_replaced_or_written_through() {
    existing_files_case(100_000, &[], Via::Part);
}

/// As above for small files, which are written whole once complete and
/// linked in under their final names (no `.part` name is used, so another
/// `.part` file does not take a name).
#[test]
fn small_files_never_replace_existing_ones() {
    existing_files_case(3000, &[], Via::Whole);
}

/// As above, with publishing whole files turned off (as on a filesystem
/// without `O_TMPFILE`): small files go through `.part` files too.
#[test]
fn small_files_fall_back_to_part_files() {
    existing_files_case(3000, &[("DOWNLOAD_NO_TMPFILE", "1")], Via::Part);
}

/// How a file reaches its final name.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    /// Through `NAME.part`.
    Part,
    /// Written whole and linked in.
    Whole,
}

/// Runs the existing-files scenario with bodies of about `size` bytes.
fn existing_files_case(size: usize, env: &[(&str, &str)], via: Via) {
    let _fds = shared();
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| body_bytes(size + i, 90 + i as u64))
        .collect();
    let names = ["a.bin", "b.bin", "c.bin", "d.bin"];
    let routes: Vec<(String, &[u8])> = names
        .iter()
        .zip(&bodies)
        .map(|(name, body)| (format!("/n/{name}"), body.as_slice()))
        .collect();
    let routes: Vec<(&str, &[u8])> = routes.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    let server = serve(&routes);
    let work = TempDir::new("uvcurl-download-existing");
    let out = work.join("out");
    fs::create_dir_all(out.join("d.bin")).expect("mkdir d.bin");
    fs::write(out.join("a.bin"), b"old a").expect("write a.bin");
    fs::write(out.join("b.bin.part"), b"someone else's part").expect("write b.bin.part");
    let victim = work.join("victim");
    fs::write(&victim, b"victim").expect("write victim");
    std::os::unix::fs::symlink(&victim, out.join("c.bin.part")).expect("symlink");
    let urls: Vec<String> = names
        .iter()
        .map(|n| server.url(&format!("/n/{n}")))
        .collect();
    let out_str = out.to_str().expect("UTF-8");
    let mut args: Vec<&str> = urls.iter().map(String::as_str).collect();
    args.extend(["-o", out_str, "-q"]);
    // Where each file lands in the first and the second run: b and c are
    // kept from their names by the `.part` files only on the `.part` route.
    let (first, second) = match via {
        Via::Part => (["a.bin.1", "b.bin.1", "c.bin.1", "d.bin.1"], [".2"; 4]),
        Via::Whole => (
            ["a.bin.1", "b.bin", "c.bin", "d.bin.1"],
            [".2", ".1", ".1", ".2"],
        ),
    };

    let result = run_with_env(&args, env);
    assert_eq!(result.code, Some(0), "{result:#?}");
    let read = |name: &str| fs::read(out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("a.bin"), b"old a");
    assert_eq!(read("b.bin.part"), b"someone else's part");
    assert_eq!(fs::read(&victim).expect("victim"), b"victim");
    assert!(out.join("c.bin.part").is_symlink(), "the link was replaced");
    assert!(out.join("d.bin").is_dir());
    for (name, body) in first.iter().zip(&bodies) {
        assert!(read(name) == *body, "{name}");
    }
    // Again: the next free names.
    let result = run_with_env(&args, env);
    assert_eq!(result.code, Some(0), "{result:#?}");
    for ((name, suffix), body) in names.iter().zip(second).zip(&bodies) {
        assert!(read(&format!("{name}{suffix}")) == *body, "{name}{suffix}");
    }
    assert_eq!(read("a.bin"), b"old a");
    assert_eq!(read("b.bin.part"), b"someone else's part");
    assert_eq!(fs::read(&victim).expect("victim"), b"victim");
    assert!(out.join("c.bin.part").is_symlink(), "the link was replaced");

    // --overwrite replaces files, and removes another part file and the
    // link (not its target); a directory still is not a target.
    args.push("--overwrite");
    let result = run_with_env(&args, env);
    assert_eq!(result.code, Some(0), "{result:#?}");
    assert!(read("a.bin") == bodies[0]);
    assert!(read("b.bin") == bodies[1]);
    assert!(read("c.bin") == bodies[2]);
    assert!(out.join("d.bin").is_dir());
    assert!(read("d.bin.1") == bodies[3]);
    assert_eq!(fs::read(&victim).expect("victim"), b"victim");
    assert!(!out.join("c.bin.part").exists() && !out.join("c.bin.part").is_symlink());
    let parts: Vec<PathBuf> = files_under(&out)
        .into_iter()
        .filter(|f| f.to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
}

/// A small file is on disk only once it is complete: while its body is
/// under way there is neither `NAME` nor `NAME.part`, and a `kill -9` then
/// leaves nothing of it (with publishing whole files off, it is a
/// `NAME.part` meanwhile, which the same wait finds written).
#[test]
fn a_small_file_is_on_disk_only_once_complete() {
    small_file_killed_mid_body(&[("DOWNLOAD_NO_TMPFILE", "1")], Via::Part);
    small_file_killed_mid_body(&[], Via::Whole);
}

/// Downloads a small file and one that stalls after half its body, kills
/// the downloader with SIGKILL during the stall, and checks what is left.
fn small_file_killed_mid_body(env: &[(&str, &str)], via: Via) {
    let _fds = shared();
    let done = body_bytes(3000, 7);
    let stalled = body_bytes(40_000, 8);
    let half = stalled.len() / 2;
    let mut routes = HashMap::new();
    routes.insert("/k/done.bin".to_owned(), Route::file(done.clone()));
    let stall = Route {
        faults: vec![Fault::StallMidBody],
        ..Route::file(stalled.clone())
    };
    routes.insert("/k/stall.bin".to_owned(), stall);
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-kill-small");
    let urls = [server.url("/k/done.bin"), server.url("/k/stall.bin")];
    let args = [
        urls[0].as_str(),
        &urls[1],
        "-o",
        out.str(),
        "--retries",
        "0",
        "-q",
    ];
    let child = start_with_env(&args, None, env);
    let sent = wait_until(Duration::from_secs(60), || {
        out.join("done.bin").exists() && server.served() >= (done.len() + half) as u64
    });
    assert!(sent, "the server never sent done.bin and half of stall.bin");
    let part = out.join("stall.bin.part");
    let part_len = || fs::metadata(&part).map_or(0, |m| m.len());
    match via {
        // The half body reaches the .part file...
        Via::Part => assert!(
            wait_until(Duration::from_secs(30), || part_len() == half as u64),
            "stall.bin.part has {} bytes, not {half}",
            part_len()
        ),
        // ...and in the same time, nothing appears.
        Via::Whole => {
            let appeared = wait_until(Duration::from_millis(500), || {
                out.join("stall.bin").exists() || part.exists()
            });
            assert!(
                !appeared,
                "stall.bin or its .part is on disk while incomplete"
            );
        }
    }
    signal(child.id(), libc::SIGKILL);
    let result = finish(child, &args);
    assert_eq!(result.code, None, "{result:#?}");
    assert_eq!(fs::read(out.join("done.bin")).expect("done.bin"), done);
    let expected: Vec<PathBuf> = match via {
        Via::Part => vec!["done.bin".into(), "stall.bin.part".into()],
        Via::Whole => vec!["done.bin".into()],
    };
    assert_eq!(files_under(out.path()), expected);
}

#[test]
fn an_invalid_url_in_the_input_file_is_a_usage_error_naming_its_line() {
    let _fds = shared();
    let work = TempDir::new("uvcurl-download-invalid");
    for bad in ["ftp://x/file", "not a url"] {
        let list = work.join("list.txt");
        fs::write(&list, format!("http://127.0.0.1:9/ok\n# comment\n{bad}\n")).expect("write");
        let list = list.to_str().expect("UTF-8");
        let result = run(&["-i", list, "-o", work.str()]);
        assert_eq!(result.code, Some(2), "{result:#?}");
        assert!(
            result.stderr.contains(&format!("{list}:3")),
            "{}",
            result.stderr
        );
    }
}

#[test]
fn usage_errors_exit_with_status_2() {
    let _fds = shared();
    let work = TempDir::new("uvcurl-download-usage");
    let unknown = run(&["--no-such-option", "http://127.0.0.1:9/"]);
    assert_eq!(unknown.code, Some(2), "{unknown:#?}");
    let missing = work.join("missing.txt");
    let unreadable = run(&["-i", missing.to_str().expect("UTF-8")]);
    assert_eq!(unreadable.code, Some(2), "{unreadable:#?}");
    assert!(unreadable.stderr.contains("missing.txt"), "{unreadable:#?}");
    let bad_rate = run(&["--max-speed", "fast", "http://127.0.0.1:9/"]);
    assert_eq!(bad_rate.code, Some(2), "{bad_rate:#?}");
}

#[test]
fn urls_from_stdin_and_the_command_line_combine() {
    let _fds = shared();
    let files = numbered_files(4, 4096);
    let routes = files
        .iter()
        .map(|(path, body)| (path.clone(), Route::file(body.clone())))
        .collect();
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-stdin");
    let listed: String = files[..3]
        .iter()
        .map(|(path, _)| format!("{}\n# a comment\n\n", server.url(path)))
        .collect();
    let last = server.url(&files[3].0);
    let args = ["-i", "-", &last, "-o", out.str(), "-q"];
    let result = finish(start(&args, Some(&listed)), &args);
    assert_eq!(result.code, Some(0), "{result:#?}");
    for (path, body) in &files {
        let saved = fs::read(out.join(file_name(path))).expect("saved file");
        assert!(saved == *body, "{path} differs");
    }
}

#[test]
fn ctrl_c_stops_the_run_and_keeps_part_files_with_continue() {
    let _fds = shared();
    let body = body_bytes(4 * 1024 * 1024, 9);
    let mut routes = HashMap::new();
    routes.insert("/slow.bin".to_owned(), Route::file(body));
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = TempDir::new("uvcurl-download-ctrl-c");
    let url = server.url("/slow.bin");
    // 4 MiB at 256 KiB/s takes 16 s: long enough to be interrupted.
    let args = [url.as_str(), "-o", out.str(), "-c", "--max-speed", "256K"];
    let child = start(&args, None);
    let part = out.join("slow.bin.part");
    let waited = std::time::Instant::now();
    while fs::metadata(&part).map_or(0, |m| m.len()) == 0 {
        assert!(waited.elapsed() < Duration::from_secs(30), "no part file");
        thread::sleep(Duration::from_millis(50));
    }
    signal(child.id(), libc::SIGINT);
    let result = finish(child, &args);
    assert_eq!(result.code, Some(130), "{result:#?}");
    assert!(result.stderr.contains("interrupted"), "{}", result.stderr);
    assert!(!out.join("slow.bin").exists(), "a final file after Ctrl-C");
    let kept = fs::metadata(&part).expect("the part file is kept").len();
    assert!(kept > 0 && kept < 4 * 1024 * 1024, "{kept} bytes kept");
}

// ---- checksums and per-URL options ------------------------------------------

/// Lower-case hex SHA-512 of `data`.
fn sha512_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha512};
    Sha512::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serves `files` (path, body) from a fresh FileServer.
fn serve(files: &[(&str, &[u8])]) -> FileServer {
    let routes = files
        .iter()
        .map(|(path, body)| ((*path).to_owned(), Route::file(body.to_vec())))
        .collect();
    FileServer::start(routes, true).expect("start the file server")
}

#[test]
fn a_matching_checksum_saves_the_file() {
    let _fds = shared();
    let body = body_bytes(70_000, 31);
    let server = serve(&[("/sum.bin", &body)]);
    let out = TempDir::new("uvcurl-download-checksum-ok");
    // aria2c's spelling, and the sha256 spelling with upper-case hex.
    for (i, sum) in [
        format!("sha-256={}", sha256_hex(&body)),
        format!("SHA256={}", sha256_hex(&body).to_uppercase()),
    ]
    .iter()
    .enumerate()
    {
        let dir = out.join(&format!("{i}"));
        let dir_str = dir.to_str().expect("UTF-8");
        let result = run(&[
            &server.url("/sum.bin"),
            "-o",
            dir_str,
            "--checksum",
            sum,
            "-v",
        ]);
        assert_eq!(result.code, Some(0), "{result:#?}");
        assert!(
            result
                .stderr
                .contains("sha-256 checksum of sum.bin verified"),
            "{}",
            result.stderr
        );
        assert!(fs::read(dir.join("sum.bin")).expect("saved file") == body);
        assert_eq!(files_under(&dir), vec![PathBuf::from("sum.bin")]);
    }
}

#[test]
fn a_mismatching_checksum_fails_once_and_leaves_no_file() {
    let _fds = shared();
    let body = body_bytes(70_000, 32);
    let server = serve(&[("/sum.bin", &body)]);
    let out = TempDir::new("uvcurl-download-checksum-bad");
    let wrong = sha256_hex(b"something else");
    let sum = format!("sha-256={wrong}");
    let result = run(&[
        &server.url("/sum.bin"),
        "-o",
        out.str(),
        "--checksum",
        &sum,
        "--retries",
        "3",
    ]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    let message = format!(
        "sha-256 checksum mismatch: expected {wrong}, got {}",
        sha256_hex(&body)
    );
    assert!(result.stderr.contains(&message), "{}", result.stderr);
    assert_eq!(server.hits("/sum.bin"), 1, "a mismatch was retried");
    assert_no_files(out.path());
}

/// With `--continue` the digest covers the whole file, resumed bytes
/// included: a good prefix verifies, a corrupted one fails, and its `.part`
/// file is deleted even though `--continue` keeps failed ones otherwise.
#[test]
fn checksums_cover_resumed_bytes() {
    let _fds = shared();
    let body = body_bytes(300_000, 33);
    let server = serve(&[("/big.bin", &body)]);
    let sum = format!("sha-256={}", sha256_hex(&body));
    let already = body.len() / 3;
    for corrupt in [false, true] {
        let out = TempDir::new("uvcurl-download-checksum-resume");
        let mut prefix = body[..already].to_vec();
        if corrupt {
            prefix[already / 2] ^= 0xff;
        }
        fs::write(out.join("big.bin.part"), &prefix).expect("write part");
        let url = server.url("/big.bin");
        let args = [
            url.as_str(),
            "-o",
            out.str(),
            "-c",
            "-v",
            "--checksum",
            &sum,
        ];
        let result = run(&args);
        if corrupt {
            assert_eq!(result.code, Some(1), "{result:#?}");
            assert!(
                result.stderr.contains("checksum mismatch"),
                "{}",
                result.stderr
            );
            assert_no_files(out.path());
        } else {
            assert_eq!(result.code, Some(0), "{result:#?}");
            assert!(
                result.stderr.contains("resumed big.bin"),
                "{}",
                result.stderr
            );
            assert!(fs::read(out.join("big.bin")).expect("saved file") == body);
            assert_eq!(files_under(out.path()), vec![PathBuf::from("big.bin")]);
        }
    }
    assert_eq!(server.ranges().len(), 2, "{:?}", server.ranges());
}

#[test]
fn input_file_options_name_and_verify_each_url() {
    let _fds = shared();
    let bodies: Vec<Vec<u8>> = (0..4)
        .map(|i| body_bytes(5000 + i * 100, 40 + i as u64))
        .collect();
    let mut routes: HashMap<String, Route> = (0..3)
        .map(|i| (format!("/o/{i}"), Route::file(bodies[i].clone())))
        .collect();
    // out= wins over Content-Disposition.
    routes.insert(
        "/o/3".to_owned(),
        Route {
            body: bodies[3].clone().into(),
            disposition: Some("attachment; filename=\"server.bin\"".to_owned()),
            ..Route::default()
        },
    );
    let server = FileServer::start(routes, true).expect("start the file server");
    let work = TempDir::new("uvcurl-download-options");
    let out = work.join("out");
    let list = work.join("list.txt");
    let text = format!(
        "# per-URL options\n\
         {}\n  out=one.bin\n  checksum=sha-256={}\n\n\
         {}\n\tchecksum=sha512={}\n\tout=two.bin\n\
         {}\n  out=three.bin\n  checksum=sha-256={}\n\
         {}\n  out=four.bin\n",
        server.url("/o/0"),
        sha256_hex(&bodies[0]),
        server.url("/o/1"),
        sha512_hex(&bodies[1]),
        server.url("/o/2"),
        sha256_hex(&bodies[0]), // the wrong file's digest
        server.url("/o/3"),
    );
    fs::write(&list, text).expect("write list");
    let list = list.to_str().expect("UTF-8");
    let out_str = out.to_str().expect("UTF-8");
    let result = run(&["-i", list, "-o", out_str, "--json", "--retries", "2"]);
    assert_eq!(result.code, Some(1), "{result:#?}");
    let summary: serde_json::Value =
        serde_json::from_str(result.stdout.trim()).expect("JSON summary on stdout");
    assert_eq!(summary["ok"], 3, "{summary}");
    assert_eq!(summary["failed"], 1, "{summary}");
    assert_eq!(
        summary["failures"][0]["url"],
        server.url("/o/2"),
        "{summary}"
    );
    let error = summary["failures"][0]["error"].as_str().expect("error");
    assert!(
        error.contains(&sha256_hex(&bodies[0])) && error.contains(&sha256_hex(&bodies[2])),
        "{error}"
    );
    assert_eq!(server.hits("/o/2"), 1);
    for (name, body) in [("one.bin", 0), ("two.bin", 1), ("four.bin", 3)] {
        assert!(
            fs::read(out.join(name)).expect(name) == bodies[body],
            "{name}"
        );
    }
    let names = ["four.bin", "one.bin", "two.bin"].map(PathBuf::from);
    assert_eq!(files_under(&out), names);
}

#[test]
fn hostile_out_names_stay_inside_the_output_directory() {
    let _fds = shared();
    let work = TempDir::new("uvcurl-download-hostile-out");
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| body_bytes(900 + i, 50 + i as u64)).collect();
    let routes = (0..5)
        .map(|i| (format!("/h/{i}"), Route::file(bodies[i].clone())))
        .collect();
    let server = FileServer::start(routes, true).expect("start the file server");
    let out = work.join("a").join("b").join("out");
    let out_str = out.to_str().expect("UTF-8");
    let list = work.join("list.txt");
    // The absolute path points into the work directory, so that even a
    // broken downloader could only write where this test looks.
    let outs = [
        "../x".to_owned(),
        format!("{}/etc/passwd", work.str()),
        "..\\..\\y".to_owned(),
        "CON".to_owned(),
        "../../../../../..".to_owned() + "/z/..",
    ];
    let text: String = outs
        .iter()
        .enumerate()
        .map(|(i, out)| format!("{}\n  out={out}\n", server.url(&format!("/h/{i}"))))
        .collect();
    fs::write(&list, text).expect("write list");
    let list_str = list.to_str().expect("UTF-8");
    let result = run(&["-i", list_str, "-o", out_str, "-q"]);
    assert_eq!(result.code, Some(0), "{result:#?}");
    let outside: Vec<PathBuf> = files_under(work.path())
        .into_iter()
        .filter(|f| !f.starts_with("a/b/out"))
        .collect();
    assert_eq!(outside, vec![PathBuf::from("list.txt")]);
    let expected = ["x", "passwd", "y", "_CON", "z"];
    for (i, name) in expected.iter().enumerate() {
        assert!(fs::read(out.join(name)).expect(name) == bodies[i], "{name}");
    }
    assert_eq!(
        files_under(&out).len(),
        expected.len(),
        "{:?}",
        files_under(&out)
    );

    // Names that leave nothing usable are usage errors naming their line;
    // nothing is downloaded.
    for bad in ["", ".", "..", "/", "../.."] {
        let text = format!("{}\n  out={bad}\n", server.url("/h/0"));
        fs::write(&list, text).expect("write list");
        let empty = work.join("empty");
        let empty_str = empty.to_str().expect("UTF-8");
        let result = run(&["-i", list_str, "-o", empty_str]);
        assert_eq!(result.code, Some(2), "out={bad:?}: {result:#?}");
        assert!(
            result.stderr.contains(&format!("{list_str}:2: ")),
            "{}",
            result.stderr
        );
        assert!(!empty.exists(), "out={bad:?} created the output directory");
    }
    assert_eq!(server.hits("/h/0"), 1);
}

#[test]
fn malformed_options_are_usage_errors() {
    let _fds = shared();
    let work = TempDir::new("uvcurl-download-bad-options");
    let list = work.join("list.txt");
    let list_str = list.to_str().expect("UTF-8");
    let url = "http://127.0.0.1:9/a";
    let good = format!("sha-256={}", sha256_hex(b"a"));
    for (text, line, why) in [
        (format!("  out=x\n{url}\n"), 1, "before any URL"),
        (format!("{url}\n  dir=/tmp\n"), 2, "unknown option"),
        (format!("{url}\n\n  out\n"), 3, "name=value"),
        (
            format!("{url}\n  checksum=sha-256=abc\n"),
            4 - 2,
            "hex digits",
        ),
        (format!("{url}\n  checksum=crc32=abcd\n"), 2, "algorithm"),
        (
            format!("{url}\n  checksum={good}\n  checksum={good}\n"),
            3,
            "twice",
        ),
    ] {
        fs::write(&list, &text).expect("write list");
        let result = run(&["-i", list_str, "-o", work.str()]);
        assert_eq!(result.code, Some(2), "{text:?}: {result:#?}");
        let at = format!("{list_str}:{line}: ");
        assert!(result.stderr.contains(&at), "{text:?}: {}", result.stderr);
        assert!(result.stderr.contains(why), "{text:?}: {}", result.stderr);
    }
    // --checksum goes with exactly one command-line URL and no -i.
    fs::write(&list, format!("{url}\n")).expect("write list");
    for args in [
        vec![url, url, "--checksum", &good],
        vec!["-i", list_str, "--checksum", &good],
        vec!["-i", list_str, url, "--checksum", &good],
    ] {
        let mut args = args;
        args.extend(["-o", work.str()]);
        let result = run(&args);
        assert_eq!(result.code, Some(2), "{args:?}: {result:#?}");
        assert!(result.stderr.contains("--checksum"), "{}", result.stderr);
    }
    // Bad digests on the command line.
    let short = format!("sha-256={}", &sha256_hex(b"a")[1..]);
    let not_hex = format!("sha-256=g{}", &sha256_hex(b"a")[1..]);
    for sum in [
        short.as_str(),
        &not_hex,
        "md5=0cc175b9c0f1b6a831c399e269772661",
        "sha-256",
    ] {
        let result = run(&[url, "--checksum", sum, "-o", work.str()]);
        assert_eq!(result.code, Some(2), "{sum}: {result:#?}");
        assert!(
            result.stderr.contains("--checksum"),
            "{sum}: {}",
            result.stderr
        );
    }
}

mod split;
