//! Memory checking: representative parts of the integration tests (the `it`
//! binary, tests/it) run again under valgrind memcheck, and any invalid read
//! or write, use of uninitialised memory or definite leak fails the test.
//! A separate test binary: it runs the `it` binary, under valgrind. (The C
//! examples are checked under valgrind in tests/c_api.rs.) No suppressions
//! are needed: libcurl's and OpenSSL's one-time global allocations stay
//! reachable, which memcheck does not count as a definite leak.
//!
//! Tests with an HTTPS *server* are left out here: the test server's TLS
//! (rustls on ring's assembly) makes memcheck report uninitialised values
//! inside ring — false positives in test-only code, not in uvcurl.
//!
//! Race detection: the cross-thread workloads of `races` (a `Remote` shared
//! by 8 threads, a close racing submissions, a 2-loop `Client` and the races
//! of dropping it) run again under valgrind's DRD and helgrind, this binary
//! re-running itself with `--exact races::NAME` against a server started
//! outside valgrind; any report fails the test. They live here, beside the
//! memcheck runs, because they are valgrind runs too and need none of the
//! `it` binary's support. The C ABI's `uvcurl_multi_submit` from pthreads
//! runs under both in tests/c_api.rs, which builds the C programs.
//! tests/races.supp lists the few suppressions, each with its reason;
//! `UVCURL_VALGRIND_ARGS=--gen-suppressions=all` shows a new report's.
//!
//! valgrind comes from vendor/bootstrap (`vendor/cargo test` runs it); this
//! test does not install anything and fails when valgrind is missing.

// Only the plain-HTTP loopback server of tests/it/support, with its bodies.
#[path = "it/support/loopback.rs"]
mod support;

#[path = "memcheck/races.rs"]
mod races;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The newest sibling test executable built from `tests/it/main.rs`.
fn it_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let dir = me.parent().unwrap();
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_prefix("it-")
                .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| panic!("no test binary for tests/it in {}", dir.display()))
}

fn ensure_valgrind() {
    let found = Command::new("valgrind").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "valgrind is missing: run `vendor/bootstrap test` (or the tests through `vendor/cargo test`)"
    );
}

/// One valgrind run at a time: the suites check timings of their own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the tests of module `suite` of the `it` binary (`suite::…`), minus
/// those whose names contain one of `skip`, under valgrind.
fn memcheck(suite: &str, skip: &[&str]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ensure_valgrind();
    let binary = it_binary();
    let output = Command::new("valgrind")
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "-q",
        ])
        .arg(&binary)
        .args(["--test-threads=1", &format!("{suite}::")])
        .args(skip.iter().flat_map(|s| ["--skip", s]))
        .output()
        .expect("run valgrind");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{suite} under valgrind: {:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("test result: ok"), "{stdout}");
    // Every test that ran belongs to the suite, and at least one ran.
    let ran: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test ")?.split_once(" ... ").map(|(n, _)| n))
        .collect();
    assert!(!ran.is_empty(), "no {suite} test ran:\n{stdout}");
    assert!(
        ran.iter()
            .all(|name| name.starts_with(&format!("{suite}::"))),
        "{ran:?}"
    );
    println!(
        "{suite}: {}",
        stdout
            .lines()
            .find(|l| l.starts_with("test result"))
            .unwrap()
    );
}

/// Callbacks that start, cancel, pause, resume, panic and drop the Multi.
#[test]
fn control_suite_is_clean_under_memcheck() {
    memcheck("control", &[]);
}

/// Timeouts, DNS failure, resets and malformed replies.
#[test]
fn failure_suite_is_clean_under_memcheck() {
    // The timing test's windows are for native speed, not valgrind's.
    memcheck("failures", &["https", "timeouts"]);
}

/// HTTP/2 multiplexing, redirects, streaming and headers (the 1,000-transfer
/// and 10 MiB cases are left to the plain run: too slow under valgrind).
#[test]
fn transfer_suite_is_clean_under_memcheck() {
    let mut skip = vec!["thousand", "ten_mib"];
    if !uvcurl::version().curl.starts_with("8.") {
        // On libcurl 7.x that test multiplexes over an HTTPS test server.
        skip.push("two_hundred");
    }
    memcheck("transfers", &skip);
}

/// The cross-thread paths: `Remote` tokens and futures, `Client`s with one
/// and two loops sharing a share handle, and dropping them with transfers
/// pending (the thousands-of-transfers and the 8 MiB streaming tests are
/// left to the plain run: too slow under valgrind). This found pooled easy handles still linked to a freed
/// share handle after a `Client` was dropped.
#[test]
fn remote_suite_is_clean_under_memcheck() {
    memcheck(
        "remote",
        &[
            "eight_threads",
            "tokio_awaits_1000",
            "close_races",
            "streamed_body",
        ],
    );
}

/// Runs the `races::NAME` workload of this very binary under valgrind's
/// `tool` (`drd` or `helgrind`), against a server started here, outside
/// valgrind; fails on any reported race (or lock-order violation).
fn race_check(tool: &str, name: &str) {
    // One valgrind run at a time (as for memcheck): they are slow enough.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ensure_valgrind();
    let server = support::HttpServer::start();
    let supp = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/races.supp");
    let test = format!("races::{name}");
    let mut command = Command::new("valgrind");
    command
        .arg(format!("--tool={tool}"))
        .args(["--error-exitcode=99", "-q"])
        .arg(format!("--suppressions={}", supp.display()))
        // E.g. `--gen-suppressions=all` when a new report needs studying.
        .args(extra_valgrind_args())
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", &test, "--test-threads=1", "--nocapture"])
        .env(races::SERVER_VAR, server.url(""));
    let output = run_limited(&mut command, Duration::from_secs(240));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{test} under {tool}: {:?}\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "{test} did not run:\n{stdout}"
    );
    if !extra_valgrind_args().is_empty() {
        println!("{stderr}");
    }
    println!("{test} under {tool}: no race reported");
}

/// Options from `UVCURL_VALGRIND_ARGS` (split at spaces) for the detectors.
fn extra_valgrind_args() -> Vec<String> {
    std::env::var("UVCURL_VALGRIND_ARGS")
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Runs `command`, killing it after `limit`.
fn run_limited(command: &mut Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run valgrind");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let output = child.wait_with_output();
        let _ = tx.send(());
        output
    });
    if rx.recv_timeout(limit).is_err() {
        // SAFETY: kill(2) on our own child's pid (not yet reaped: the waiter
        // is still in wait_with_output).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        panic!("{command:?} did not finish within {limit:?}");
    }
    waiter.join().unwrap().expect("valgrind output")
}

#[test]
fn remote_from_eight_threads_has_no_race_under_drd() {
    race_check("drd", "remote_from_eight_threads");
}

#[test]
fn remote_from_eight_threads_has_no_race_under_helgrind() {
    race_check("helgrind", "remote_from_eight_threads");
}

#[test]
fn client_drop_races_have_no_race_under_drd() {
    race_check("drd", "client_with_two_loops_and_drop_races");
}

#[test]
fn client_drop_races_have_no_race_under_helgrind() {
    race_check("helgrind", "client_with_two_loops_and_drop_races");
}

#[test]
fn relayed_wake_ups_have_no_race_under_drd() {
    race_check("drd", "client_futures_relayed_across_threads");
}

#[test]
fn relayed_wake_ups_have_no_race_under_helgrind() {
    race_check("helgrind", "client_futures_relayed_across_threads");
}

#[test]
fn remote_close_racing_submissions_has_no_race_under_drd() {
    race_check("drd", "remote_close_races_with_submissions");
}

#[test]
fn remote_close_racing_submissions_has_no_race_under_helgrind() {
    race_check("helgrind", "remote_close_races_with_submissions");
}
