//! Loopback test servers and helpers shared by the integration tests.
//!
//! Every server binds `127.0.0.1:0`, runs on its own background thread (a
//! small tokio runtime) and stops when the value returned by its constructor
//! is dropped: the listener is closed and every open connection is dropped
//! before `drop` returns.
//!
//! The downloader's tests use the demo's own server, `files::FileServer`.

pub mod cargo;
pub mod chaos;
#[path = "../../../examples/download/file_server.rs"]
pub mod files;
pub mod harness;
mod http1_exchange;
mod https;
pub mod link_proxy;
// (`#[path]`: its submodules are files beside it, as tests/c_api.rs sees them.)
#[path = "loopback.rs"]
mod loopback;
pub mod netns;
mod proxy;
mod raw;
mod temp;
mod throttled;
pub(crate) mod tls;
mod tls_faults;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use https::HttpsServer;
use loopback::{background, hex, http};
pub use loopback::{body_bytes, fill_body_bytes, HttpServer};
pub use proxy::ProxyServer;
pub use raw::RawServer;
pub use temp::TempDir;
pub use throttled::{Served, ThrottledFiles};
pub(crate) use tls::Leaf;
pub use tls_faults::{ServerHelloThenSilence, Tls10Server};

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Number of entries in `/proc/self/fd` (the descriptor used to list the
/// directory is counted too, consistently on every call).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// A `127.0.0.1` port with nothing listening on it (an ephemeral port that
/// was bound and released again).
pub fn refused_port() -> u16 {
    let listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    port
}

/// Raises the soft RLIMIT_NOFILE to at least `want` (capped by the hard
/// limit), for a test that holds thousands of sockets in this process.
pub fn raise_nofile_limit(want: libc::rlim_t) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write one properly sized struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Polls `cond` every 5 ms until it returns true or `timeout` elapses;
/// returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs test `name` of the module `module` (pass `module_path!()`) again,
/// alone, in a child process of this test binary with `env` set, for a test
/// that changes process-wide state (descriptor limits). Asserts that the
/// child ran exactly that test and that it passed; returns its output.
pub fn run_alone(module: &str, name: &str, env: (&str, &str)) -> String {
    // `module_path!()` starts with the crate (`it::`); test names do not.
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    let test = format!("{module}::{name}");
    let output = Command::new(std::env::current_exe().expect("current_exe"))
        .args(["--exact", &test, "--nocapture", "--test-threads=1"])
        .env(env.0, env.1)
        .output()
        .expect("run this test binary again");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child did not run {test}:\n{stdout}"
    );
    stdout
}
