//! The cross-thread workloads that tests/memcheck.rs runs again under
//! valgrind's race detectors. Each is an ordinary test too (natively it
//! starts its own loopback server); under the detector the parent passes the
//! server it started outside valgrind in [`SERVER_VAR`], so only uvcurl and
//! this workload are instrumented.
//!
//! Small and bounded (valgrind runs them 20-50 times slower). The workloads
//! synchronise their own bookkeeping only through what the detectors see —
//! thread join and uvcurl itself — so any report is about uvcurl.

use crate::support::{body_bytes, HttpServer};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uvcurl::uv::Timer;
use uvcurl::{Client, ErrorKind, Loop, Multi, Request};

/// The base URL (`http://127.0.0.1:PORT`) of a server started outside valgrind.
pub const SERVER_VAR: &str = "UVCURL_RACE_SERVER";

/// The server's base URL, and the server when this process started it.
fn server() -> (String, Option<HttpServer>) {
    match std::env::var(SERVER_VAR) {
        Ok(base) => (base, None),
        Err(_) => {
            let server = HttpServer::start();
            (server.url(""), Some(server))
        }
    }
}

/// `/bytes/N?seed=S` for transfer `i` of thread `t`, and its size and seed.
fn bytes_url(base: &str, t: usize, i: usize) -> (String, usize, u64) {
    let (size, seed) = (100 + 997 * (t * 10 + i) % 20_000, (t * 100 + i) as u64);
    (format!("{base}/bytes/{size}?seed={seed}"), size, seed)
}

/// Runs `uv` until `done()` holds (checked every 5 ms by a timer that also
/// keeps the loop alive while other threads submit), then closes `multi`.
fn run_until(uv: &Loop, multi: Multi, limit: Duration, done: impl Fn() -> bool + 'static) {
    let started = Instant::now();
    let holder = Rc::new(RefCell::new(Some(multi)));
    let timer: Rc<RefCell<Option<Timer>>> = Rc::default();
    let (multi, again) = (holder.clone(), timer.clone());
    let tick = Timer::new(uv, move || {
        if done() || started.elapsed() > limit {
            drop(multi.borrow_mut().take());
            drop(again.borrow_mut().take());
        } else if let Some(timer) = again.borrow().as_ref() {
            timer.start(5);
        }
    })
    .unwrap();
    tick.start(5);
    *timer.borrow_mut() = Some(tick);
    uv.run().unwrap();
    assert!(started.elapsed() <= limit, "gave up after {limit:?}");
}

/// 8 threads share one `Remote` of a `Multi` whose loop runs on this thread:
/// each submits with a callback, awaits futures with `wait`, cancels one
/// and streams one body, then submits a last callback, after which the loop
/// may close. Every result arrives once, byte-exact.
#[test]
fn remote_from_eight_threads() {
    const THREADS: usize = 8;
    const EACH: usize = 3;
    let (base, _server) = server();
    let uv = Loop::new().unwrap();
    let multi = Multi::new(&uv).unwrap();
    let remote = multi.remote().unwrap();
    // Touched only on this (the loop) thread, by the `submit_with` callbacks.
    let called = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (remote, base, called) = (remote.clone(), base.clone(), called.clone());
            std::thread::spawn(move || {
                for i in 0..EACH {
                    let (url, size, seed) = bytes_url(&base, t, i);
                    let called = called.clone();
                    remote
                        .submit_with(
                            move || Request::get(url),
                            move |result| {
                                let body = result.unwrap().body().to_vec();
                                assert_eq!(body, body_bytes(size, seed));
                                called.fetch_add(1, Ordering::Relaxed);
                            },
                        )
                        .unwrap();
                }
                let futures: Vec<_> = (EACH..2 * EACH)
                    .map(|i| {
                        let (url, size, seed) = bytes_url(&base, t, i);
                        (remote.get(url), size, seed)
                    })
                    .collect();
                // Dropped before it resolved: cancelled (or already done).
                drop(remote.get(format!("{base}/slow-headers?ms=20000")));
                let streamed_url = format!("{base}/bytes/70000?seed={t}");
                let mut stream = remote.stream(move || Request::get(streamed_url));
                let streamed = pollster(async move {
                    let mut all = Vec::new();
                    while let Some(chunk) = stream.chunk().await.unwrap() {
                        all.extend_from_slice(&chunk);
                    }
                    all
                });
                assert_eq!(streamed, body_bytes(70_000, t as u64));
                for (future, size, seed) in futures {
                    let response = future.wait().unwrap();
                    assert_eq!(response.body(), body_bytes(size, seed));
                }
                // The last callback: this thread needs the loop no more.
                let (url, ..) = bytes_url(&base, t, 2 * EACH);
                remote
                    .submit_with(
                        move || Request::get(url),
                        move |_| {
                            called.fetch_add(1, Ordering::Relaxed);
                        },
                    )
                    .unwrap();
            })
        })
        .collect();
    let expected = THREADS * (EACH + 1);
    let seen = called.clone();
    run_until(&uv, multi, Duration::from_secs(120), move || {
        seen.load(Ordering::Relaxed) == expected
    });
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(called.load(Ordering::Relaxed), expected);
    // After the close every submission is refused.
    assert!(remote.is_closed());
    assert_eq!(
        remote
            .get(format!("{base}/bytes/1"))
            .wait()
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
    drop(remote);
    uv.run().unwrap();
    uv.close().unwrap();
}

/// A close from one thread races with submissions from 4 others: each
/// submission is accepted (its callback then runs once, done, cancelled or
/// closed) or refused with `Closed`; none is lost.
#[test]
fn remote_close_races_with_submissions() {
    const THREADS: usize = 4;
    const EACH: usize = 12;
    let (base, _server) = server();
    let uv = Loop::new().unwrap();
    let multi = Multi::new(&uv).unwrap();
    let remote = multi.remote().unwrap();
    // Touched only on this (the loop) thread, by the callbacks.
    let called = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..THREADS)
        .map(|t| {
            let (remote, base, called) = (remote.clone(), base.clone(), called.clone());
            std::thread::spawn(move || {
                let mut accepted = 0;
                for i in 0..EACH {
                    let (url, ..) = bytes_url(&base, t, i);
                    let called = called.clone();
                    let submitted = remote.submit_with(
                        move || Request::get(url),
                        move |result| {
                            if let Err(error) = result {
                                let kind = error.kind();
                                assert!(
                                    matches!(kind, ErrorKind::Cancelled | ErrorKind::Closed),
                                    "{error}"
                                );
                            }
                            called.fetch_add(1, Ordering::Relaxed);
                        },
                    );
                    match submitted {
                        Ok(_) => accepted += 1,
                        Err(error) => assert_eq!(error.kind(), ErrorKind::Closed),
                    }
                }
                accepted
            })
        })
        .collect();
    let closer = {
        let remote = remote.clone();
        std::thread::spawn(move || {
            std::thread::yield_now();
            remote.close()
        })
    };
    let closed = remote.clone();
    run_until(&uv, multi, Duration::from_secs(120), move || {
        closed.is_closed()
    });
    let accepted: usize = submitters.into_iter().map(|s| s.join().unwrap()).sum();
    assert!(closer.join().unwrap(), "the close was refused");
    // Completions of the cancelled transfers run as the loop winds down.
    uv.run().unwrap();
    assert_eq!(called.load(Ordering::Relaxed), accepted);
    uv.close().unwrap();
}

/// A `Client` with 2 loops: 4 threads submit and wait. Then the drop races:
/// the last clone dropped on another thread while this one waits on pending
/// futures, and dropped here while another thread waits on them. Every
/// future resolves: done, or `Cancelled`/`Closed`.
#[test]
fn client_with_two_loops_and_drop_races() {
    let (base, _server) = server();
    let client = Client::builder().loops(2).build().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let (client, base) = (client.clone(), base.clone());
            std::thread::spawn(move || {
                let futures: Vec<_> = (0..4)
                    .map(|i| {
                        let (url, size, seed) = bytes_url(&base, t, i);
                        (client.get(url), size, seed)
                    })
                    .collect();
                for (future, size, seed) in futures {
                    assert_eq!(future.wait().unwrap().body(), body_bytes(size, seed));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }

    // Dropped on another thread while this one waits.
    let slow = |client: &Client| {
        (0..4)
            .map(|i| client.get(format!("{base}/slow-headers?ms={}", 30_000 + i)))
            .collect::<Vec<_>>()
    };
    let pending = slow(&client);
    let dropper = std::thread::spawn(move || drop(client));
    for future in pending {
        let error = future.wait().expect_err("dropping the client ends it");
        assert!(
            matches!(error.kind(), ErrorKind::Cancelled | ErrorKind::Closed),
            "{error}"
        );
    }
    dropper.join().unwrap();

    // Dropped here while another thread waits.
    let client = Client::builder().loops(2).build().unwrap();
    let pending = slow(&client);
    let waiter = std::thread::spawn(move || {
        pending
            .into_iter()
            .map(|future| future.wait().map(|_| ()).map_err(|e| e.kind()))
            .collect::<Vec<_>>()
    });
    drop(client);
    let results = waiter.join().unwrap();
    assert_eq!(results.len(), 4);
    for result in results {
        assert!(
            matches!(result, Err(ErrorKind::Cancelled | ErrorKind::Closed)),
            "{result:?}"
        );
    }
}

/// The last clone of a 2-loop `Client` dropped inside a completion, on one
/// of its own loop threads: that loop finishes on its own, the other is
/// joined from it, and pending futures resolve. Not run under the race
/// detectors: the thread it was dropped on is never joined (by design), so
/// nothing orders its last steps before what the process does later, and
/// the detectors report the reuse of memory it freed.
#[test]
fn client_dropped_inside_its_own_completion() {
    let (base, _server) = server();
    let client = Client::builder().loops(2).build().unwrap();
    let pending: Vec<_> = (0..4)
        .map(|i| client.get(format!("{base}/slow-headers?ms={}", 30_000 + i)))
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let remote = client.remote_of_least_busy_loop();
    let (url, size, seed) = bytes_url(&base, 9, 0);
    remote
        .submit_with(
            move || Request::get(url),
            move |result| {
                assert_eq!(result.unwrap().body(), body_bytes(size, seed));
                drop(client);
                let _ = tx.send(());
            },
        )
        .unwrap();
    drop(remote);
    rx.recv_timeout(Duration::from_secs(120))
        .expect("the completion that drops the client ran");
    for future in pending {
        let error = future.wait().expect_err("dropping the client ends it");
        assert!(
            matches!(error.kind(), ErrorKind::Cancelled | ErrorKind::Closed),
            "{error}"
        );
    }
}

/// Runs `future` to completion on this thread (parking between polls).
fn pollster<T>(future: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

/// Futures of one `Client` loop awaited together on two threads: a batch
/// of results wakes one of them, whose poll (on either thread) wakes the
/// rest, so wake-ups, results and the relay's lists cross threads both
/// ways; and futures dropped while others of their batch are still listed.
/// Every awaited future resolves once, byte-exact.
#[test]
fn client_futures_relayed_across_threads() {
    use std::future::Future;
    use std::task::Poll;
    let (base, _server) = server();
    let client = Client::new().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|t| {
            let (client, base) = (client.clone(), base.clone());
            std::thread::spawn(move || {
                for round in 0..3 {
                    let mut pending: Vec<_> = (0..8)
                        .map(|i| {
                            let (url, size, seed) = bytes_url(&base, t, round * 8 + i);
                            Some((client.get(url), size, seed))
                        })
                        .collect();
                    // Two are dropped after their first poll, whatever came.
                    let mut polls = 0;
                    pollster(std::future::poll_fn(|cx| {
                        polls += 1;
                        for (i, slot) in pending.iter_mut().enumerate() {
                            let Some((future, size, seed)) = slot else {
                                continue;
                            };
                            if polls > 1 && i < 2 {
                                *slot = None;
                                continue;
                            }
                            if let Poll::Ready(result) = std::pin::Pin::new(future).poll(cx) {
                                assert_eq!(result.unwrap().body(), body_bytes(*size, *seed));
                                *slot = None;
                            }
                        }
                        match pending.iter().all(Option::is_none) {
                            true => Poll::Ready(()),
                            false => Poll::Pending,
                        }
                    }));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
