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
use uvcurl::Request;

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

/// With 1,100 spare descriptors open, 200 transfers (each on a new
/// connection, so on sockets numbered above 1,100) all succeed, and
/// `version()` finds libcurl able to wait on such descriptors.
#[test]
fn two_hundred_transfers_on_sockets_above_1024() {
    if std::env::var_os(CHILD).is_none() {
        let _fds = crate::support::harness::shared();
        crate::support::run_alone(
            module_path!(),
            "two_hundred_transfers_on_sockets_above_1024",
            (CHILD, "1"),
        );
        return;
    }
    raise_nofile_limit(4096);
    let spare: Vec<File> = (0..1100)
        .map(|_| File::open("/dev/null").expect("open /dev/null"))
        .collect();
    assert!(spare.last().unwrap().as_raw_fd() > 1024);
    assert_eq!(
        uvcurl::version().high_fds,
        Some(true),
        "libcurl uses select()"
    );

    let h = Harness::new();
    let server = HttpServer::start();
    let results = h.start_all((0..200).map(|i| {
        let url = server.url(&format!("/bytes/2000?seed={i}&close=1"));
        (i, Request::get(url).timeout(Duration::from_secs(30)))
    }));
    h.run();
    let results = results.borrow();
    assert_eq!(results.len(), 200);
    for (i, result) in results.iter() {
        let response = result
            .as_ref()
            .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
        assert_eq!(response.body(), &body_bytes(2000, *i as u64)[..]);
    }
    assert_eq!(server.connections(), 200);
    drop(server);
    h.finish();
    drop(spare);
}
