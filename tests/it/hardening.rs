//! Long-lived use and resource exhaustion.

use crate::support::harness::{collector, Harness};
use crate::support::HttpServer;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use uvcurl::uv::Timer;
use uvcurl::{ErrorKind, MultiHandle, Request};

/// State of the idle/burst rounds.
struct Rounds {
    handle: MultiHandle,
    url: String,
    round: Cell<u32>,
    pending: Cell<u32>,
    idle_timer: RefCell<Option<Timer>>,
    fires_at_idle_start: Cell<u64>,
    /// Timer firings seen during idle periods, and idle periods with a timer armed.
    idle_fires: Cell<u64>,
    armed_while_idle: Cell<u32>,
    failures: Cell<u32>,
}

const ROUNDS: u32 = 100;
const BURST: u32 = 20;

fn start_burst(state: &Rc<Rounds>) {
    state.pending.set(BURST);
    for _ in 0..BURST {
        let s = state.clone();
        state
            .handle
            .start(Request::get(state.url.clone()), move |result| {
                if result.is_err() {
                    s.failures.set(s.failures.get() + 1);
                }
                s.pending.set(s.pending.get() - 1);
                if s.pending.get() == 0 {
                    s.fires_at_idle_start.set(s.handle.stats().timer_fires);
                    let timer = s.idle_timer.borrow();
                    timer.as_ref().unwrap().start(30);
                }
            })
            .unwrap();
    }
}

/// One `Multi` kept across 100 rounds of burst → idle: while idle, libcurl's
/// timer is stopped and never fires (no busy wake-ups), and every burst
/// succeeds.
#[test]
fn idle_multi_has_no_timer_and_no_wakeups_across_100_rounds() {
    let h = Harness::new();
    let server = HttpServer::start();
    let multi = h.multi();
    let state = Rc::new(Rounds {
        handle: multi.handle(),
        url: server.url("/bytes/1000"),
        round: Cell::new(0),
        pending: Cell::new(0),
        idle_timer: RefCell::new(None),
        fires_at_idle_start: Cell::new(0),
        idle_fires: Cell::new(0),
        armed_while_idle: Cell::new(0),
        failures: Cell::new(0),
    });
    let s = state.clone();
    let idle = Timer::new(&h.uv, move || {
        // End of an idle period: nothing may have woken libcurl meanwhile.
        s.idle_fires
            .set(s.idle_fires.get() + s.handle.stats().timer_fires - s.fires_at_idle_start.get());
        if s.handle.stats().timer_pending {
            s.armed_while_idle.set(s.armed_while_idle.get() + 1);
        }
        s.round.set(s.round.get() + 1);
        if s.round.get() < ROUNDS {
            start_burst(&s);
        }
    })
    .unwrap();
    *state.idle_timer.borrow_mut() = Some(idle);
    drop(multi);
    start_burst(&state);
    h.run_for(Duration::from_secs(60));
    drop(state.idle_timer.borrow_mut().take());
    assert_eq!(state.round.get(), ROUNDS);
    assert_eq!(state.failures.get(), 0);
    assert_eq!(
        state.armed_while_idle.get(),
        0,
        "libcurl's timer stayed armed while idle"
    );
    assert_eq!(state.idle_fires.get(), 0, "timer fired while idle");
    assert!(h.multi().stats().timer_fires > 0);
    drop(server);
    h.finish();
}

/// Runs out of descriptors on purpose — in a child process, since it lowers
/// RLIMIT_NOFILE: transfers that cannot get a socket fail with a clear
/// `Connect` error, the process neither crashes nor spins (CPU time stays far
/// below wall time), and once descriptors are available again new transfers
/// succeed.
#[test]
fn running_out_of_descriptors_fails_cleanly_and_recovers() {
    if let Ok(url) = std::env::var("UVCURL_NOFILE_CHILD_URL") {
        return nofile_child(&url);
    }
    let _fds = crate::support::harness::shared();
    let server = HttpServer::start();
    let stdout = crate::support::run_alone(
        module_path!(),
        "running_out_of_descriptors_fails_cleanly_and_recovers",
        ("UVCURL_NOFILE_CHILD_URL", &server.url("/drip/2000?ms=100")),
    );
    println!("{stdout}");
    assert!(stdout.contains("exhausted:"), "{stdout}");
    assert!(stdout.contains("recovered: 50 ok"), "{stdout}");
}

fn set_nofile(soft: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer, then a limit within the hard limit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = soft.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

fn cpu_time() -> Duration {
    // SAFETY: valid out pointer.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn run_batch(h: &Harness, url: &str, n: usize) -> Vec<Result<(), uvcurl::Error>> {
    let results = collector();
    for _ in 0..n {
        let r = results.clone();
        let request = Request::get(url).timeout(Duration::from_secs(20));
        match h
            .multi()
            .start(request, move |res| r.borrow_mut().push(res.map(|_| ())))
        {
            Ok(_) => {}
            Err(e) => results.borrow_mut().push(Err(e)),
        }
    }
    h.run_for(Duration::from_secs(30));
    let out = results.borrow_mut().drain(..).collect();
    out
}

fn nofile_child(url: &str) {
    let h = Harness::new();
    // Room for a handful of sockets only.
    let limit = crate::support::fd_count() as u64 + 6;
    set_nofile(limit);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let results = run_batch(&h, url, 50);
    let (cpu, wall) = (cpu_time() - cpu0, wall0.elapsed());
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(results.len(), 50, "each transfer completes once");
    assert!(
        !failed.is_empty(),
        "descriptors never ran out (limit {limit})"
    );
    assert!(failed.len() < 50, "not even one transfer got a socket");
    for error in &failed {
        assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
        assert!(!error.message().is_empty(), "{error}");
    }
    assert!(cpu < wall / 2, "spinning: {cpu:?} CPU in {wall:?}");
    println!(
        "exhausted: {} of 50 failed ({}), {cpu:?} CPU in {wall:?}",
        failed.len(),
        failed[0]
    );
    set_nofile(4096);
    let results = run_batch(&h, url, 50);
    let ok = results.iter().filter(|r| r.is_ok()).count();
    println!("recovered: {ok} ok");
    assert_eq!(ok, 50);
    h.finish();
}

/// The libcurl linked is the one the build chose: the bundled 8.22 with the
/// default `bundled` feature, the system's (Debian 12: 7.88) without it — a
/// machine that happens to have libcurl4-openssl-dev installed does not switch
/// silently.
#[test]
fn linked_libcurl_is_the_chosen_one() {
    let info = uvcurl::version();
    if cfg!(feature = "bundled") {
        assert!(
            info.curl.starts_with("8.22."),
            "bundled build linked {}",
            info.curl
        );
        assert!(
            info.http2 && info.async_dns && info.high_fds != Some(false),
            "{info:?}"
        );
    } else {
        assert!(
            !info.curl.starts_with("8.22."),
            "system build linked {}",
            info.curl
        );
    }
    println!("libcurl {} / libuv {}: {info:?}", info.curl, info.uv);
}
