//! Sockets numbered above 1024: a libcurl built on `select()` fails them
//! (`select()` cannot wait on a descriptor numbered FD_SETSIZE, 1024, or
//! above); ours must not. The test runs in a child process of its own,
//! because it raises the process's descriptor limit and holds 1,100
//! descriptors, which would disturb the descriptor counts of other tests.

use crate::support::harness::Harness;
use crate::support::{body_bytes, HttpServer};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::time::Duration;
use uvcurl::{ErrorKind, Request};

/// Set in the child process that runs the test.
const CHILD: &str = "UVCURL_HIGH_FDS_CHILD";

fn raise_nofile_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    assert!(
        limit.rlim_max >= wanted,
        "hard RLIMIT_NOFILE {} is below {wanted}",
        limit.rlim_max
    );
    if limit.rlim_cur < wanted {
        limit.rlim_cur = wanted;
        // SAFETY: valid limit struct, within the hard limit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    }
}

/// Set by `.ci/run`'s pass that builds the bundled libcurl without
/// `-DHAVE_POLL`, as a dependent without uvcurl's `.cargo/config.toml` would.
const EXPECT_SELECT_ONLY: &str = "UVCURL_EXPECT_SELECT_ONLY";

/// Whether this is the child process a test of this module runs in; in the
/// parent, runs test `name` in such a child (and the caller returns).
fn in_own_process(name: &str) -> bool {
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let _fds = crate::support::harness::shared();
    crate::support::run_alone(module_path!(), name, (CHILD, "1"));
    false
}

/// Whether `.ci/run`'s pass without poll() runs this.
fn select_only() -> bool {
    std::env::var_os(EXPECT_SELECT_ONLY).is_some_and(|v| v == "1")
}

/// `count` descriptors of `/dev/null`, held open so that the next ones are
/// numbered above `above` (the descriptor limit raised to `limit` first).
fn hold_descriptors(count: usize, limit: u64, above: i32) -> Vec<File> {
    raise_nofile_limit(limit);
    let held: Vec<File> = (0..count)
        .map(|_| File::open("/dev/null").expect("open /dev/null"))
        .collect();
    assert!(held.last().unwrap().as_raw_fd() > above);
    held
}

/// Each result is the body asked for, or (without poll()) `SocketLimit`.
fn check_results(results: &[(usize, Result<uvcurl::Response, uvcurl::Error>)], size: usize) {
    for (i, result) in results {
        if select_only() {
            let error = result.as_ref().unwrap_err();
            assert_eq!(
                error.kind(),
                ErrorKind::SocketLimit,
                "transfer {i}: {error}"
            );
            assert!(error.message().contains("HAVE_POLL"), "{error}");
            continue;
        }
        let response = result
            .as_ref()
            .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
        assert_eq!(response.body(), &body_bytes(size, *i as u64)[..]);
    }
}

/// With 1,100 spare descriptors open, 200 transfers (each on a new
/// connection, so on sockets numbered above 1,100) all succeed, and
/// `version()` finds libcurl able to wait on such descriptors. On a libcurl
/// built without poll() (`UVCURL_EXPECT_SELECT_ONLY=1`), each of them fails
/// with `ErrorKind::SocketLimit` and a message naming the fix — never
/// `Connect` — and `require_high_fds` refuses to build a `Multi`.
#[test]
fn two_hundred_transfers_on_sockets_above_1024() {
    if !in_own_process("two_hundred_transfers_on_sockets_above_1024") {
        return;
    }
    let select_only = select_only();
    let spare = hold_descriptors(1100, 4096, 1024);
    assert_eq!(
        uvcurl::version().high_fds,
        Some(!select_only),
        "whether libcurl waits with poll() (UVCURL_EXPECT_SELECT_ONLY={select_only})"
    );
    let strict = uvcurl::Loop::new().unwrap();
    let refused = uvcurl::Multi::builder()
        .require_high_fds(true)
        .build(&strict)
        .map(drop);
    if select_only {
        let error = refused.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::SocketLimit);
        assert!(error.message().contains("HAVE_POLL"), "{error}");
    } else {
        refused.unwrap();
    }
    strict.run().unwrap();
    strict.close().unwrap();

    let h = Harness::new();
    let server = HttpServer::start();
    let results = h.start_all((0..200).map(|i| {
        let url = server.url(&format!("/bytes/2000?seed={i}&close=1"));
        (i, Request::get(url).timeout(Duration::from_secs(30)))
    }));
    h.run();
    let results = results.borrow();
    assert_eq!(results.len(), 200);
    check_results(&results, 2000);
    if !select_only {
        assert_eq!(server.connections(), 200);
    }
    drop(results);
    drop(server);
    h.finish();
    drop(spare);
}

/// Sockets numbered 16,384 and above go to the hashed part of the driver's
/// socket table (below, it is indexed by number): with 16,400 spare
/// descriptors open, 100 transfers, every other one on a connection of its
/// own and the rest on pooled ones, all succeed and leave no libuv handle
/// or descriptor behind. (On a libcurl built without poll(), each fails
/// with `ErrorKind::SocketLimit`, as above.)
#[test]
fn transfers_on_sockets_above_16384() {
    if !in_own_process("transfers_on_sockets_above_16384") {
        return;
    }
    let spare = hold_descriptors(16_400, 20_000, 16_384);
    let h = Harness::new();
    let server = HttpServer::start();
    let results = h.start_all((0..100).map(|i| {
        let close = if i % 2 == 0 { "&close=1" } else { "" };
        let url = server.url(&format!("/bytes/3000?seed={i}{close}"));
        (i, Request::get(url).timeout(Duration::from_secs(30)))
    }));
    h.run();
    let results = results.borrow();
    assert_eq!(results.len(), 100);
    check_results(&results, 3000);
    drop(results);
    drop(server);
    h.finish();
    drop(spare);
}
