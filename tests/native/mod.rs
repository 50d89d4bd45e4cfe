//! What the test binaries that build and run native programs share
//! (`tests/c_api.rs`, `tests/hosts.rs`): where things are, running a child
//! with a time limit, and valgrind with the project's settings.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `target/<profile>`: test binaries run as `target/<profile>/deps/NAME-*`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .to_path_buf()
}

/// `target/<profile>/NAME`, created: where a test binary builds its programs.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = profile_dir().join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Fails naming `vendor/bootstrap` unless `check` (a command line) succeeds.
pub fn require(tool: &str, check: &[&str]) {
    let found = Command::new(check[0])
        .args(&check[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{tool} is missing (`{}` failed): run `vendor/bootstrap test` (or the tests \
         through `vendor/cargo test`), which installs the test packages",
        check.join(" ")
    );
}

/// Panics with the output of `what` unless it succeeded.
pub fn check_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `command` with a time limit, killing it when the limit passes.
pub fn run_limited(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on them.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// `valgrind` (memcheck) with the project's settings before `exe args`:
/// definite leaks and invalid accesses fail with exit code 99; `extra`
/// options go before the program.
pub fn valgrind_command(extra: &[&str], exe: &Path, args: &[&str]) -> Command {
    require("valgrind", &["valgrind", "--version"]);
    let mut command = Command::new("valgrind");
    command
        .args([
            "--quiet",
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--track-fds=no",
        ])
        .arg(format!(
            "--suppressions={}",
            repo().join("tests/c/valgrind.supp").display()
        ))
        .args(extra)
        .arg(exe)
        .args(args);
    command
}
