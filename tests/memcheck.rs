//! Memory checking: representative integration suites run again under
//! valgrind memcheck, and any invalid read or write, use of uninitialised
//! memory or definite leak fails the test. (The C examples are checked under
//! valgrind in tests/c_api.rs.) No suppressions are needed: libcurl's and
//! OpenSSL's one-time global allocations stay reachable, which memcheck does
//! not count as a definite leak.
//!
//! Tests with an HTTPS *server* are left out here: the test server's TLS
//! (rustls on ring's assembly) makes memcheck report uninitialised values
//! inside ring — false positives in test-only code, not in uvcurl.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest sibling test executable built from `tests/{name}.rs`.
fn test_binary(name: &str) -> PathBuf {
    let me = std::env::current_exe().unwrap();
    let dir = me.parent().unwrap();
    let prefix = format!("{name}-");
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.strip_prefix(&prefix)
                .is_some_and(|hash| hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .unwrap_or_else(|| panic!("no test binary for tests/{name}.rs in {}", dir.display()))
}

fn ensure_valgrind() {
    let bootstrap = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/bootstrap");
    let status = Command::new(bootstrap).arg("valgrind").status().unwrap();
    assert!(status.success(), "vendor/bootstrap valgrind failed");
}

/// One valgrind run at a time: the suites check timings of their own.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn memcheck(suite: &str, args: &[&str]) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ensure_valgrind();
    let binary = test_binary(suite);
    let output = Command::new("valgrind")
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "-q",
        ])
        .arg(&binary)
        .args(["--test-threads=1"])
        .args(args)
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
    memcheck("failures", &["--skip", "https", "--skip", "timeouts"]);
}

/// HTTP/2 multiplexing, redirects, streaming and headers (the 1,000-transfer
/// and 10 MiB cases are left to the plain run: too slow under valgrind).
#[test]
fn transfer_suite_is_clean_under_memcheck() {
    let mut skip = vec!["--skip", "thousand", "--skip", "ten_mib"];
    if !uvcurl::version().curl.starts_with("8.") {
        // On libcurl 7.x that test multiplexes over an HTTPS test server.
        skip.extend(["--skip", "two_hundred"]);
    }
    memcheck("transfers", &skip);
}
