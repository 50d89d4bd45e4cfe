//! Smoke test of the benchmark runner (benches/compare.rs): builds it, the
//! downloader and the uvcurl-own client (dev profile, reusing this test build's dependencies), runs
//! `compare --quick` — nginx on 127.0.0.1 (installed by vendor/bootstrap,
//! which `vendor/cargo test` runs; without it the runner fails saying so), a
//! few hundred 1 KiB transfers with every client — and checks that it exits
//! 0 and prints a table. The figures of a debug build mean nothing;
//! `vendor/cargo bench --bench compare` gives real ones. A separate test
//! binary: it needs none of the test support, and runs cargo and the
//! runner as child processes.

// Only the helper that runs cargo, from tests/it/support.
#[path = "it/support/cargo.rs"]
mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Waits for `child` at most `limit`, killing it past that.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> (bool, String, String) {
    let deadline = Instant::now() + limit;
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    // Drain both pipes on threads so a chatty child never blocks.
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => break Some(status),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    match status {
        Some(status) => (status.success(), out, err),
        None => panic!("{what} still running after {limit:?}, killed\n{out}\n{err}"),
    }
}

fn cargo(args: &[&str]) -> Command {
    let mut command = support::cargo(args);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Builds the bench target and returns its executable, from cargo's JSON.
fn build_runner() -> PathBuf {
    let child = cargo(&["build", "--bench", "compare", "--message-format=json"])
        .spawn()
        .expect("run cargo");
    let (ok, out, err) = wait_bounded(child, Duration::from_secs(900), "cargo build --bench");
    assert!(ok, "cargo build --bench compare failed:\n{err}");
    out.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == "compare")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no executable for the compare bench")
}

#[test]
fn quick_benchmark_runs_every_client_and_prints_a_table() {
    let child = cargo(&["build", "--example", "download", "--example", "bench_multi"])
        .spawn()
        .expect("run cargo");
    let (ok, _, err) = wait_bounded(child, Duration::from_secs(900), "cargo build --example");
    assert!(
        ok,
        "cargo build --example download/bench_multi failed:\n{err}"
    );
    let runner = build_runner();
    assert!(Path::new(&runner).is_file());

    let started = Instant::now();
    let child = Command::new(&runner)
        .arg("--quick")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the benchmark runner");
    let (ok, out, err) = wait_bounded(child, Duration::from_secs(120), "compare --quick");
    assert!(ok, "compare --quick failed:\n{out}\n{err}");
    eprintln!("compare --quick took {:?}:\n{out}", started.elapsed());

    assert!(
        out.contains("## quick: 300 x 1 KiB"),
        "no table heading:\n{out}"
    );
    assert!(
        out.contains("| client | wall s |"),
        "no table header:\n{out}"
    );
    for client in ["libcurl", "uvcurl", "uvcurl-own", "reqwest", "download"] {
        let row = out
            .lines()
            .find(|line| line.starts_with(&format!("| {client} |")))
            .unwrap_or_else(|| panic!("no row for {client}:\n{out}"));
        // wall, req/s, MB/s, CPU, CPU/req, RSS, wall ratio, CPU ratio
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), 9, "malformed row {row}");
        let requests_per_second: f64 = cells[2].parse().expect("req/s is a number");
        assert!(requests_per_second > 0.0, "no throughput in {row}");
    }
}
