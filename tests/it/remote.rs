//! Cross-thread use: the `Remote` handle, futures on tokio, streamed bodies
//! with backpressure, the background `Client` with one and two loops.

use crate::support::harness::{assert_fds_back_to, serial, shared, warm_up};
use crate::support::{body_bytes, fd_count, sha256_hex, HttpServer, RawServer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uvcurl::uv::Timer;
use uvcurl::{Client, ErrorKind, Loop, Multi, Request};

/// Runs `uv` until `done()` holds (checked every 10 ms by a referenced
/// timer, which also keeps the loop alive while other threads submit), then
/// closes the Multi; bounded by `limit`.
fn run_until(uv: &Loop, multi: Multi, limit: Duration, done: impl Fn() -> bool + 'static) {
    let started = Instant::now();
    let holder = std::rc::Rc::new(std::cell::RefCell::new(Some(multi)));
    let timer: std::rc::Rc<std::cell::RefCell<Option<Timer>>> = Default::default();
    let (h, t) = (holder.clone(), timer.clone());
    let tick = Timer::new(uv, move || {
        if done() || started.elapsed() > limit {
            drop(h.borrow_mut().take()); // closes the Multi
            drop(t.borrow_mut().take());
        } else if let Some(timer) = t.borrow().as_ref() {
            timer.start(10);
        }
    })
    .unwrap();
    tick.start(10);
    *timer.borrow_mut() = Some(tick);
    uv.run().unwrap();
    assert!(started.elapsed() <= limit, "gave up after {limit:?}");
}

/// 8 threads submit 1,000 transfers each through one Remote; every result
/// is delivered exactly once and byte-exact.
#[test]
fn eight_threads_submit_8000_transfers_through_one_remote() {
    let _serial = serial();
    warm_up();
    let server = HttpServer::start();
    let fds = fd_count();
    let uv = Loop::new().unwrap();
    let multi = Multi::new(&uv).unwrap();
    let remote = multi.remote().unwrap();
    let results: Arc<Mutex<HashMap<(usize, usize), usize>>> = Arc::default();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (remote, results) = (remote.clone(), results.clone());
            let base = server.url("/bytes/");
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let (n, seed) = (100 + (t * 1000 + i) % 3000, (t * 1000 + i) as u64);
                    let url = format!("{base}{n}?seed={seed}");
                    let results = results.clone();
                    remote
                        .submit_with(
                            move || Request::get(url),
                            move |result| {
                                let body = result.expect("transfer").into_body();
                                assert_eq!(body, body_bytes(n, seed));
                                *results.lock().unwrap().entry((t, i)).or_default() += 1;
                            },
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    let counted = results.clone();
    run_until(&uv, multi, Duration::from_secs(120), move || {
        counted.lock().unwrap().len() == 8000
    });
    for thread in threads {
        thread.join().unwrap();
    }
    let results = results.lock().unwrap();
    assert_eq!(results.len(), 8000);
    assert!(
        results.values().all(|&n| n == 1),
        "a result was delivered twice"
    );
    uv.run().unwrap();
    uv.close().unwrap();
    drop(server);
    assert_fds_back_to(fds);
}

/// 1,000 futures awaited concurrently on tokio, through the background client.
#[test]
fn tokio_awaits_1000_futures() {
    let _fds = shared();
    let server = HttpServer::start();
    let client = Client::new().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..1000)
        .map(|i| server.url(&format!("/bytes/{}?seed={i}", 1 + i % 5000)))
        .collect();
    let bodies = runtime.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (i, url) in urls.into_iter().enumerate() {
            let future = client.get(url);
            set.spawn(async move { (i, future.await) });
        }
        let mut bodies = HashMap::new();
        while let Some(joined) = set.join_next().await {
            let (i, result) = joined.unwrap();
            bodies.insert(i, result.unwrap().into_body());
        }
        bodies
    });
    assert_eq!(bodies.len(), 1000);
    for (i, body) in bodies {
        assert_eq!(body, body_bytes(1 + i % 5000, i as u64));
    }
}

/// Dropping a future before it resolved cancels its transfer: the server
/// sees every connection closed, and nothing is left running.
#[test]
fn dropping_futures_cancels_the_transfers() {
    let _fds = shared();
    let server = RawServer::silent();
    let client = Client::new().unwrap();
    let futures: Vec<_> = (0..20).map(|_| client.get(server.url("/"))).collect();
    assert!(crate::support::wait_until(
        Duration::from_secs(10),
        || server.connections() == 20
    ));
    drop(futures);
    assert!(
        crate::support::wait_until(Duration::from_secs(10), || server.hangups() == 20),
        "{} of 20 connections closed",
        server.hangups()
    );
    assert!(crate::support::wait_until(
        Duration::from_secs(5),
        || client.loads() == [0]
    ));
}

/// Per submission: how often its result came, and the error kind if any.
type Deliveries = HashMap<usize, (usize, Option<ErrorKind>)>;

/// Closing while other threads keep submitting: every accepted submission
/// gets exactly one result (done, cancelled or closed), later submissions
/// are refused with `Closed`, nothing crashes or leaks.
#[test]
fn close_races_with_submissions_from_other_threads() {
    let _serial = serial();
    warm_up();
    let server = HttpServer::start();
    let fds = fd_count();
    let uv = Loop::new().unwrap();
    let multi = Multi::new(&uv).unwrap();
    let remote = multi.remote().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let delivered: Arc<Mutex<Deliveries>> = Arc::default();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (remote, accepted, refused, delivered) = (
                remote.clone(),
                accepted.clone(),
                refused.clone(),
                delivered.clone(),
            );
            let url = server.url("/drip/100?ms=20");
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let key = t * 10_000 + i;
                    let (url, delivered) = (url.clone(), delivered.clone());
                    let submitted = remote.submit_with(
                        move || Request::get(url),
                        move |result| {
                            let mut map = delivered.lock().unwrap();
                            let entry = map.entry(key).or_insert((0, None));
                            entry.0 += 1;
                            entry.1 = result.err().map(|e| e.kind());
                        },
                    );
                    match submitted {
                        Ok(_) => accepted.fetch_add(1, Ordering::SeqCst),
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::Closed);
                            refused.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                    if i == 1500 {
                        // Let the close land while the rest is still to come.
                        crate::support::wait_until(Duration::from_secs(20), || remote.is_closed());
                    }
                }
            })
        })
        .collect();
    let (closer, seen) = (remote.clone(), accepted.clone());
    run_until(&uv, multi, Duration::from_secs(60), move || {
        if seen.load(Ordering::SeqCst) >= 1000 {
            closer.close(); // queued behind the submissions before it
        }
        closer.is_closed()
    });
    for thread in threads {
        thread.join().unwrap();
    }
    uv.run().unwrap();
    let delivered = delivered.lock().unwrap();
    let accepted = accepted.load(Ordering::SeqCst);
    assert_eq!(accepted + refused.load(Ordering::SeqCst), 8000);
    assert!(
        refused.load(Ordering::SeqCst) > 0,
        "the close came after every submission"
    );
    assert_eq!(
        delivered.len(),
        accepted,
        "every accepted submission got a result"
    );
    for (count, kind) in delivered.values() {
        assert_eq!(*count, 1);
        assert!(
            matches!(
                kind,
                None | Some(ErrorKind::Cancelled) | Some(ErrorKind::Closed)
            ),
            "{kind:?}"
        );
    }
    assert!(remote.is_closed());
    assert_eq!(
        remote
            .submit_with(|| Request::get("http://127.0.0.1/"), |_| {})
            .unwrap_err()
            .kind(),
        ErrorKind::Closed
    );
    uv.close().unwrap();
    drop(server);
    assert_fds_back_to(fds);
}

/// A streamed body read slowly from another thread: the transfer pauses at
/// about 1 MiB buffered, resumes as the reader catches up, and the body
/// arrives whole.
#[test]
fn streamed_body_has_backpressure() {
    let _fds = shared();
    let server = HttpServer::start();
    let client = Client::new().unwrap();
    let url = server.url("/bytes/8000000?seed=4");
    let mut stream = client
        .remote_of_least_busy_loop()
        .stream(move || Request::get(url));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = runtime.block_on(async {
        let mut body = Vec::new();
        let mut max_buffered = 0;
        while let Some(chunk) = stream.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
            if body.len() < 4_000_000 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            max_buffered = max_buffered.max(stream.buffered());
        }
        assert!(
            max_buffered <= (1 << 20) + (512 << 10),
            "buffered {max_buffered}"
        );
        assert_eq!(stream.head().unwrap().status(), 200);
        body
    });
    assert_eq!(sha256_hex(&body), sha256_hex(&body_bytes(8_000_000, 4)));
}

/// The client with one loop and with two loops gives the same results, and
/// two loops both get work.
#[test]
fn one_and_two_loop_clients_agree() {
    let _fds = shared();
    let server = HttpServer::start();
    let mut outcomes = Vec::new();
    for loops in [1, 2] {
        let client = Client::builder().loops(loops).build().unwrap();
        assert_eq!(client.loops(), loops);
        let futures: Vec<_> = (0..400)
            .map(|i| client.get(server.url(&format!("/bytes/{}?seed={i}", 1 + i * 13 % 9000))))
            .collect();
        if loops == 2 {
            let loads = client.loads();
            assert!(
                loads.iter().all(|&n| n > 0),
                "work spread over both loops: {loads:?}"
            );
        }
        let bodies: Vec<Vec<u8>> = futures
            .into_iter()
            .map(|f| f.wait().unwrap().into_body())
            .collect();
        outcomes.push(bodies);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    for (i, body) in outcomes[0].iter().enumerate() {
        assert_eq!(body, &body_bytes(1 + i * 13 % 9000, i as u64));
    }
}
