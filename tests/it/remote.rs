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

/// A completed transfer and its error kind, if any.
type Delivery = (usize, Option<ErrorKind>);

/// `Remote::cancel` with a `submit_with` token cancels that transfer and no
/// other, from another thread; a token of a completed transfer cancels
/// nothing. Tokens equal their clones only.
#[test]
fn a_token_cancels_its_own_transfer_only() {
    let _fds = shared();
    let server = RawServer::silent();
    let uv = Loop::new().unwrap();
    let multi = Multi::new(&uv).unwrap();
    let remote = multi.remote().unwrap();
    // (which transfer, its error kind) in completion order
    let results: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let submit = |which: usize| {
        let results = results.clone();
        remote
            .submit_with(
                {
                    let url = server.url("/");
                    move || Request::get(url)
                },
                move |result| {
                    let kind = result.err().map(|e| e.kind());
                    results.lock().unwrap().push((which, kind));
                },
            )
            .unwrap()
    };
    let (first, second) = (submit(1), submit(2));
    assert_eq!(first, first.clone());
    assert_ne!(first, second);
    let counted = results.clone();
    std::thread::scope(|scope| {
        let (remote, results, server) = (remote.clone(), results.clone(), &server);
        scope.spawn(move || {
            assert!(crate::support::wait_until(Duration::from_secs(10), || {
                server.connections() == 2
            }));
            assert!(remote.cancel(&first));
            assert!(crate::support::wait_until(Duration::from_secs(10), || {
                results.lock().unwrap().len() == 1
            }));
            // Completed: cancelling again reaches nothing.
            assert!(remote.cancel(&first));
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(results.lock().unwrap().len(), 1, "the second is untouched");
            assert!(remote.cancel(&second));
        });
        run_until(&uv, multi, Duration::from_secs(30), move || {
            counted.lock().unwrap().len() == 2
        });
    });
    uv.run().unwrap();
    let results = results.lock().unwrap();
    assert_eq!(
        *results,
        [
            (1, Some(ErrorKind::Cancelled)),
            (2, Some(ErrorKind::Cancelled))
        ]
    );
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

/// A small xorshift generator, for the stress test's jitter.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Now and then a yield or a sleep of up to 200 µs, so that submissions
    /// land while the loop is draining, idle, or just done.
    fn pause(&mut self) {
        match self.next() % 8 {
            0 => std::thread::yield_now(),
            1 => std::thread::sleep(Duration::from_micros(self.next() % 200)),
            _ => {}
        }
    }
}

/// The hand-over under stress: 8 threads submit 2,000 transfers each to a
/// two-loop client, with random yields and sleeps, as futures (a window of
/// up to 8 in flight, then blocking `wait`s, so each mailbox keeps going from
/// empty to non-empty) and as `submit_with` callbacks. Every submission
/// completes exactly once, byte-exact, within the time limit: a wake-up lost
/// between "the loop drained the mailbox" and "a thread posts" would strand
/// a submission and miss it.
#[test]
fn eight_threads_stress_the_hand_over_and_every_submission_completes_once() {
    const THREADS: usize = 8;
    const EACH: usize = 2_000;
    let _fds = shared();
    let server = HttpServer::start();
    let client = Client::builder().loops(2).build().unwrap();
    let completions: Arc<Mutex<HashMap<(usize, usize), usize>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (client, completions, done) = (client.clone(), completions.clone(), done.clone());
            let base = server.url("/bytes/");
            std::thread::spawn(move || {
                let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
                let mut window = std::collections::VecDeque::new();
                let record = move |i: usize, body: Vec<u8>| {
                    let (n, seed) = (1 + (t * EACH + i) % 700, (t * EACH + i) as u64);
                    assert_eq!(body, body_bytes(n, seed), "thread {t} transfer {i}");
                    *completions.lock().unwrap().entry((t, i)).or_default() += 1;
                    done.fetch_add(1, Ordering::SeqCst);
                };
                for i in 0..EACH {
                    let (n, seed) = (1 + (t * EACH + i) % 700, (t * EACH + i) as u64);
                    let url = format!("{base}{n}?seed={seed}");
                    if jitter.next() % 4 == 0 {
                        let record = record.clone();
                        client
                            .remote_of_least_busy_loop()
                            .submit_with(
                                move || Request::get(url),
                                move |result| record(i, result.expect("transfer").into_body()),
                            )
                            .unwrap();
                    } else {
                        window.push_back((i, client.get(url)));
                        if window.len() > (jitter.next() % 8) as usize {
                            let (i, future) = window.pop_front().unwrap();
                            record(i, future.wait().expect("transfer").into_body());
                        }
                    }
                    jitter.pause();
                }
                for (i, future) in window {
                    record(i, future.wait().expect("transfer").into_body());
                }
            })
        })
        .collect();
    let limit = Duration::from_secs(120);
    assert!(
        crate::support::wait_until(limit, || done.load(Ordering::SeqCst) >= THREADS * EACH),
        "{} of {} completed after {limit:?}: a submission was stranded",
        done.load(Ordering::SeqCst),
        THREADS * EACH
    );
    for thread in threads {
        thread.join().unwrap();
    }
    let completions = completions.lock().unwrap();
    assert_eq!(completions.len(), THREADS * EACH);
    assert!(
        completions.values().all(|&n| n == 1),
        "a result was delivered twice"
    );
    assert_eq!(done.load(Ordering::SeqCst), THREADS * EACH);
    assert!(crate::support::wait_until(Duration::from_secs(5), || {
        client.loads().iter().all(|&n| n == 0)
    }));
    eprintln!("{} submissions in {:?}", THREADS * EACH, started.elapsed());
}

/// Dropping the last `Client` with futures still pending resolves every one
/// of them (cancelled, or closed if never started), both a blocking `wait`
/// on another thread and futures awaited on tokio, in bounded time.
#[test]
fn dropping_the_client_resolves_pending_futures() {
    let _fds = shared();
    let server = RawServer::silent();
    let client = Client::builder().loops(2).build().unwrap();
    let waited = client.get(server.url("/"));
    let waiter = std::thread::spawn(move || waited.wait());
    let futures: Vec<_> = (0..20).map(|_| client.get(server.url("/"))).collect();
    assert!(crate::support::wait_until(
        Duration::from_secs(10),
        || server.connections() == 21
    ));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let results = runtime.block_on(async move {
        let all = tokio::spawn(async move {
            let mut results = Vec::new();
            for future in futures {
                results.push(future.await);
            }
            results
        });
        tokio::task::yield_now().await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(20), all)
            .await
            .expect("every pending future resolved")
            .unwrap()
    });
    for result in results.into_iter().chain([waiter.join().unwrap()]) {
        let kind = result.unwrap_err().kind();
        assert!(
            matches!(kind, ErrorKind::Cancelled | ErrorKind::Closed),
            "{kind:?}"
        );
    }
}

/// Records that it was woken.
#[derive(Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A loop wakes one future per batch of results and leaves the others'
/// wake-ups for that one to pass on when it is polled. Here no executor
/// polls anything: 64 futures are polled once each, with a waker of their
/// own, and then left alone (or, in the second round, each dropped unpolled
/// as soon as it is woken). Every waker must still be woken, in bounded
/// time (by a dropped future passing the batch on, or the loop's fallback
/// tick), and each future left is then ready with its body.
#[test]
fn every_future_is_woken_though_no_woken_future_is_polled() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let _fds = shared();
    let server = HttpServer::start();
    let client = Client::new().unwrap();
    for drop_woken in [false, true] {
        let flags: Vec<Arc<Flag>> = (0..64).map(|_| Arc::default()).collect();
        let mut futures: Vec<Option<uvcurl::ResponseFuture>> = (0..64)
            .map(|i| Some(client.get(server.url(&format!("/bytes/{}?seed={i}", 100 + i)))))
            .collect();
        let mut early = HashMap::new();
        for (i, (future, flag)) in futures.iter_mut().zip(&flags).enumerate() {
            let waker = Waker::from(flag.clone());
            let mut cx = Context::from_waker(&waker);
            if let Poll::Ready(result) = std::pin::Pin::new(future.as_mut().unwrap()).poll(&mut cx)
            {
                // Done before its first poll: nothing to wake.
                early.insert(i, result);
                flag.0.store(true, Ordering::SeqCst);
                *future = None;
            }
        }
        let all_woken = crate::support::wait_until(Duration::from_secs(20), || {
            if drop_woken {
                for (future, flag) in futures.iter_mut().zip(&flags) {
                    if flag.is_set() {
                        drop(future.take());
                    }
                }
            }
            flags.iter().all(|flag| flag.is_set())
        });
        let asleep = flags.iter().filter(|flag| !flag.is_set()).count();
        assert!(
            all_woken,
            "{asleep} of 64 futures never woken (drop_woken {drop_woken})"
        );
        let noop = Waker::from(Arc::new(Flag::default()));
        for (i, future) in futures.iter_mut().enumerate() {
            let result = match future.as_mut() {
                Some(future) => {
                    match std::pin::Pin::new(future).poll(&mut Context::from_waker(&noop)) {
                        Poll::Ready(result) => result,
                        Poll::Pending => panic!("future {i} woken but not ready"),
                    }
                }
                None if drop_woken => continue,
                None => early.remove(&i).unwrap(),
            };
            assert_eq!(result.unwrap().into_body(), body_bytes(100 + i, i as u64));
        }
    }
}

/// Futures of one loop awaited on two current-thread runtimes on two
/// threads (so a batch's wake-ups are passed on across runtimes), while a
/// third runtime with futures of the same loop is shut down mid-way: every
/// future of the two completes, byte-exact, in bounded time.
#[test]
fn futures_on_two_runtimes_complete_while_a_third_shuts_down() {
    let _fds = shared();
    let server = HttpServer::start();
    let client = Client::new().unwrap();
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let doomed = {
        let client = client.clone();
        let urls: Vec<String> = (0..100)
            .map(|i| match i % 2 {
                0 => server.url(&format!("/bytes/{}", 10 + i)),
                _ => server.url("/drip/2000?ms=20"),
            })
            .collect();
        std::thread::spawn(move || {
            let doomed = runtime();
            for url in urls {
                let future = client.get(url);
                drop(doomed.spawn(async move { drop(future.await) }));
            }
            doomed.block_on(async { tokio::time::sleep(Duration::from_millis(30)).await });
            // Shut down with futures pending: its tasks are dropped.
        })
    };
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let client = client.clone();
            let urls: Vec<(usize, String)> = (0..300)
                .map(|i| {
                    let n = 1 + (t * 300 + i) * 7 % 3000;
                    (n, server.url(&format!("/bytes/{n}?seed={t}{i}")))
                })
                .collect();
            std::thread::spawn(move || {
                runtime().block_on(async move {
                    let mut set = tokio::task::JoinSet::new();
                    for (i, (n, url)) in urls.into_iter().enumerate() {
                        let future = client.get(url);
                        set.spawn(async move { (i, n, future.await) });
                    }
                    let all = async {
                        let mut done = 0;
                        while let Some(joined) = set.join_next().await {
                            let (i, n, result) = joined.unwrap();
                            let seed: u64 = format!("{t}{i}").parse().unwrap();
                            assert_eq!(result.unwrap().into_body(), body_bytes(n, seed));
                            done += 1;
                        }
                        done
                    };
                    tokio::time::timeout(Duration::from_secs(30), all)
                        .await
                        .expect("every future completes")
                })
            })
        })
        .collect();
    doomed.join().unwrap();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 300);
    }
}

/// A `Client` response's buffers go back to its loop when it is dropped, and
/// the next transfer fills them: each body still holds exactly its own bytes
/// (a small one after a large one included), whichever thread dropped the
/// previous response, and clones, bodies taken out with `into_body`, and
/// responses that outlive the `Client` stay intact. (Under memcheck, see
/// tests/memcheck.rs, a buffer used after it was freed or never freed fails.)
#[test]
fn client_responses_give_their_buffers_back_to_the_loop() {
    let _fds = shared();
    let server = HttpServer::start();
    let client = Client::new().unwrap();
    let get = |n: usize, seed: u64| {
        let response = client
            .get(server.url(&format!("/bytes/{n}?seed={seed}")))
            .wait()
            .expect("transfer");
        assert_eq!(
            response.body(),
            body_bytes(n, seed),
            "{n} bytes, seed {seed}"
        );
        let length = response.header("content-length").map(str::to_owned);
        assert_eq!(length, Some(n.to_string()));
        response
    };
    // Dropped here: the next transfer reuses the very same body buffer.
    let first = get(3000, 1);
    let reused = first.body().as_ptr() as usize;
    drop(first);
    let second = get(2000, 2);
    assert_eq!(
        second.body().as_ptr() as usize,
        reused,
        "the buffer came back"
    );
    // Dropped on another thread; a much smaller body does not take that
    // 3000-byte buffer (it would keep it): it is allocated to size.
    std::thread::spawn(move || drop(second)).join().unwrap();
    let small = get(100, 3).into_body();
    assert!(small.capacity() < 1000, "{} bytes kept", small.capacity());
    for (i, n) in [2000, 10, 0, 4000, 1].into_iter().enumerate() {
        drop(get(n, 10 + i as u64));
    }
    // A clone owns its buffers; the original's go back.
    let original = get(1500, 20);
    let clone = original.clone();
    drop(original);
    let next = get(700, 21);
    assert_eq!(clone.body(), body_bytes(1500, 20));
    assert_eq!(clone.header("content-length"), Some("1500"));
    drop(clone);
    // A body taken out is the caller's; the rest of its response goes back.
    let body = next.into_body();
    let taken_from = body.as_ptr() as usize;
    let after = get(700, 22);
    assert_ne!(after.body().as_ptr() as usize, taken_from);
    assert_eq!(body, body_bytes(700, 21));
    // Responses outliving the client, dropped on two threads after it.
    let mut here: Vec<_> = (0..6).map(|i| get(300 * i, 30 + i as u64)).collect();
    drop(client);
    let there = here.split_off(3);
    let dropper = std::thread::spawn(move || {
        for (i, response) in there.into_iter().enumerate() {
            assert_eq!(response.body(), body_bytes(300 * (i + 3), 33 + i as u64));
        }
    });
    for (i, response) in here.iter().enumerate() {
        assert_eq!(response.body(), body_bytes(300 * i, 30 + i as u64));
    }
    dropper.join().unwrap();
    drop(here);
    drop(after);
    drop(body);
}

/// `connection_cache(1)`: of three connections used at once, one stays open
/// once they are idle, so the next three transfers at once open two new
/// ones; libcurl's own guess (the default) keeps all three for reuse.
#[test]
fn a_client_connection_cache_bounds_the_connections_kept() {
    let _fds = shared();
    let opened_by = |cache: usize| {
        let server = HttpServer::start();
        let client = Client::builder().connection_cache(cache).build().unwrap();
        for _ in 0..2 {
            // Each answers after 200 ms: the three run at once.
            let futures: Vec<_> = (0..3)
                .map(|_| client.get(server.url("/slow-headers?ms=200")))
                .collect();
            for future in futures {
                assert_eq!(future.wait().expect("transfer").status(), 200);
            }
        }
        server.connections()
    };
    assert_eq!(opened_by(0), 3, "libcurl's guess keeps them all");
    assert_eq!(opened_by(1), 5, "one kept, two opened again");
}
