//! Control from callbacks: pause and resume, start, cancel and drop from
//! inside completion and data callbacks, mass cancellation, panics, bad input.

use crate::support::harness::{collector, Harness};
use crate::support::{body_bytes, sha256_hex, HttpServer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use uvcurl::uv::Timer;
use uvcurl::{ErrorKind, Flow, Request, Transfer};

/// Pausing inside the data callback and resuming from a uv timer 200 ms later
/// delivers the whole body, and the pause really lasted.
#[test]
fn pause_in_data_callback_and_resume_from_timer() {
    let h = Harness::new();
    let server = HttpServer::start();
    let body = Rc::new(RefCell::new(Vec::new()));
    let transfer: Rc<RefCell<Option<Transfer>>> = Rc::default();
    let timer: Rc<RefCell<Option<Timer>>> = Rc::default();
    let paused_at: Rc<Cell<Option<Instant>>> = Rc::default();
    let resumed_after: Rc<Cell<Option<Duration>>> = Rc::default();
    let (b, t, tm, p, ra) = (
        body.clone(),
        transfer.clone(),
        timer.clone(),
        paused_at.clone(),
        resumed_after.clone(),
    );
    let uv = h.uv.clone();
    let request = Request::get(server.url("/bytes/2000000?seed=5")).on_data(move |chunk| {
        if let Some(at) = p.get() {
            if ra.get().is_none() {
                ra.set(Some(at.elapsed()));
            }
        } else if b.borrow().len() > 100_000 {
            // Pause once, mid-body: this chunk comes again after resume.
            p.set(Some(Instant::now()));
            let t = t.clone();
            let timer = Timer::new(&uv, move || {
                t.borrow().as_ref().unwrap().resume().unwrap();
            })
            .unwrap();
            timer.start(200);
            *tm.borrow_mut() = Some(timer);
            return Flow::Pause;
        }
        b.borrow_mut().extend_from_slice(chunk);
        Flow::Continue
    });
    let results = collector();
    let r = results.clone();
    let handle = h
        .multi()
        .start(request, move |result| r.borrow_mut().push(result))
        .unwrap();
    *transfer.borrow_mut() = Some(handle);
    let timer_done = timer.clone();
    h.run();
    drop(timer_done.borrow_mut().take());
    assert!(results.borrow_mut().pop().unwrap().is_ok());
    assert_eq!(
        sha256_hex(&body.borrow()),
        sha256_hex(&body_bytes(2_000_000, 5))
    );
    let waited = resumed_after.get().expect("data resumed after the pause");
    assert!(
        waited >= Duration::from_millis(195),
        "resumed after {waited:?}"
    );
    drop(server);
    h.finish();
}

/// A chain of 100 transfers, each started from the previous one's completion.
#[test]
fn completion_callbacks_start_a_chain_of_100() {
    fn start_next(handle: uvcurl::MultiHandle, url: String, count: Rc<Cell<u32>>) {
        let h2 = handle.clone();
        handle
            .start(Request::get(url.clone()), move |result| {
                assert_eq!(result.unwrap().body(), &body_bytes(500, 1)[..]);
                count.set(count.get() + 1);
                if count.get() < 100 {
                    start_next(h2, url, count);
                }
            })
            .unwrap();
    }
    let h = Harness::new();
    let server = HttpServer::start();
    let count = Rc::new(Cell::new(0));
    start_next(
        h.multi().handle(),
        server.url("/bytes/500?seed=1"),
        count.clone(),
    );
    h.run();
    assert_eq!(count.get(), 100);
    drop(server);
    h.finish();
}

/// A completion callback cancels another running transfer, which then
/// completes exactly once, as cancelled.
#[test]
fn completion_callback_cancels_another_transfer() {
    let h = Harness::new();
    let server = HttpServer::start();
    let results = collector();
    let r = results.clone();
    let slow = h
        .multi()
        .start(
            Request::get(server.url("/drip/100?ms=500")),
            move |result| r.borrow_mut().push(("slow", result.map(|_| ()))),
        )
        .unwrap();
    let r = results.clone();
    h.multi()
        .start(Request::get(server.url("/bytes/10")), move |result| {
            assert!(slow.cancel(), "the slow transfer was still running");
            assert!(!slow.cancel(), "cancelling twice reports it is gone");
            r.borrow_mut().push(("fast", result.map(|_| ())));
        })
        .unwrap();
    h.run_for(Duration::from_secs(10));
    let results = results.borrow();
    assert_eq!(results.len(), 2);
    assert_eq!(
        results[0].0, "slow",
        "cancelled inside the fast one's callback"
    );
    assert_eq!(
        results[0].1.as_ref().unwrap_err().kind(),
        ErrorKind::Cancelled
    );
    assert!(results[1].1.is_ok());
    drop(server);
    h.finish();
}

/// Transfers started from a completion wait for the end of the loop turn's
/// I/O, in a batch. One cancelled while it waits completes once, as
/// cancelled, and never reaches the server; closing the `Multi` while others
/// wait completes each of them once, as cancelled.
#[test]
fn transfers_waiting_in_a_batch_complete_once_when_cancelled_or_closed() {
    let h = Harness::new();
    let server = HttpServer::start();
    let results = collector();
    let url = server.url("/bytes/10");
    let (handle, r) = (h.multi().handle(), results.clone());
    let chained = url.clone();
    h.multi()
        .start(Request::get(url.clone()), move |first| {
            r.borrow_mut().push(("first", first.map(|_| ())));
            let r1 = r.clone();
            let waiting = handle
                .start(Request::get(chained.clone()), move |result| {
                    r1.borrow_mut().push(("cancelled", result.map(|_| ())))
                })
                .unwrap();
            assert!(waiting.cancel(), "it was waiting, not completed");
            let r2 = r.clone();
            handle
                .start(Request::get(chained.clone()), move |result| {
                    r2.borrow_mut().push(("next", result.map(|_| ())))
                })
                .unwrap();
        })
        .unwrap();
    h.run_for(Duration::from_secs(10));
    {
        let results = results.borrow();
        let names: Vec<_> = results.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["first", "cancelled", "next"]);
        assert!(results[0].1.is_ok() && results[2].1.is_ok());
        let error = results[1].1.as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Cancelled);
    }
    assert_eq!(server.requests(), 2, "the cancelled one was never sent");
    // (Both chained ones went through the batch, the path under test: the
    // first transfer completes on its socket's event, as a response read
    // whole from a loopback server does, not on a timeout.)
    let stats = h.multi().stats();
    assert_eq!(
        (stats.start_batches, stats.batched_starts),
        (1, 2),
        "{stats:?}"
    );

    // Now a completion starts three and closes the Multi while they wait.
    results.borrow_mut().clear();
    let (handle, r) = (h.multi().handle(), results.clone());
    let chained = url.clone();
    h.multi()
        .start(Request::get(url), move |first| {
            r.borrow_mut().push(("first", first.map(|_| ())));
            for _ in 0..3 {
                let r = r.clone();
                handle
                    .start(Request::get(chained.clone()), move |result| {
                        r.borrow_mut().push(("closed", result.map(|_| ())))
                    })
                    .unwrap();
            }
            handle.close();
        })
        .unwrap();
    h.run_for(Duration::from_secs(10));
    let results = results.borrow();
    assert_eq!(results.len(), 4, "each completes exactly once");
    assert!(results[0].1.is_ok());
    for (name, result) in &results[1..] {
        assert_eq!(*name, "closed");
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Cancelled);
    }
    assert_eq!(server.requests(), 3, "none of the three was sent");
    drop(server);
    h.finish();
}

/// Dropping the Multi inside a completion callback cancels the rest, each
/// exactly once, and lets the loop finish.
#[test]
fn completion_callback_drops_the_multi() {
    let h = Harness::new();
    let server = HttpServer::start();
    let owner = Rc::new(RefCell::new(None));
    let results = collector();
    let multi = h.take_multi();
    multi
        .start(Request::get(server.url("/bytes/10")), {
            let (o, r) = (owner.clone(), results.clone());
            move |result| {
                r.borrow_mut().push(result.is_ok());
                drop(o.borrow_mut().take()); // the Multi goes here
            }
        })
        .unwrap();
    for _ in 0..20 {
        let r = results.clone();
        multi
            .start(
                Request::get(server.url("/drip/100?ms=300")),
                move |result| {
                    let error = result.unwrap_err();
                    assert_eq!(error.kind(), ErrorKind::Cancelled);
                    r.borrow_mut().push(false);
                },
            )
            .unwrap();
    }
    *owner.borrow_mut() = Some(multi);
    h.run_for(Duration::from_secs(10));
    assert!(owner.borrow().is_none());
    let results = results.borrow();
    assert_eq!(results.len(), 21);
    assert_eq!(results.iter().filter(|ok| **ok).count(), 1);
    drop(server);
    h.finish();
}

/// Cancelling a transfer from inside its own data callback, and dropping the
/// Multi from inside a data callback (deferred until libcurl returns).
#[test]
fn data_callbacks_cancel_their_transfer_and_drop_the_multi() {
    let h = Harness::new();
    let server = HttpServer::start();
    let results = collector();
    let me: Rc<RefCell<Option<Transfer>>> = Rc::default();
    let chunks = Rc::new(Cell::new(0));
    let (m, c, r) = (me.clone(), chunks.clone(), results.clone());
    let request = Request::get(server.url("/bytes/4000000")).on_data(move |_| {
        c.set(c.get() + 1);
        assert!(m.borrow().as_ref().unwrap().cancel());
        Flow::Continue
    });
    let transfer = h
        .multi()
        .start(request, move |result| {
            r.borrow_mut().push(result.map(|_| ()))
        })
        .unwrap();
    *me.borrow_mut() = Some(transfer);
    h.run();
    assert_eq!(chunks.get(), 1, "no data after the cancel");
    assert_eq!(
        results.borrow()[0].as_ref().unwrap_err().kind(),
        ErrorKind::Cancelled
    );

    let owner = Rc::new(RefCell::new(Some(h.take_multi())));
    let o = owner.clone();
    let r = results.clone();
    let request = Request::get(server.url("/bytes/4000000")).on_data(move |_| {
        drop(o.borrow_mut().take());
        Flow::Continue
    });
    owner
        .borrow()
        .as_ref()
        .unwrap()
        .start(request, move |result| {
            r.borrow_mut().push(result.map(|_| ()))
        })
        .unwrap();
    h.run();
    assert!(owner.borrow().is_none());
    assert_eq!(results.borrow().len(), 2);
    assert_eq!(
        results.borrow()[1].as_ref().unwrap_err().kind(),
        ErrorKind::Cancelled
    );
    drop(server);
    h.finish();
}

/// 500 transfers in flight, all cancelled: each completion fires exactly once.
#[test]
fn cancelling_500_in_flight_completes_each_once() {
    let h = Harness::new();
    let server = HttpServer::start();
    let counts = Rc::new(RefCell::new(vec![0u32; 500]));
    let mut transfers = Vec::new();
    for i in 0..500 {
        let c = counts.clone();
        let t = h
            .multi()
            .start(
                Request::get(server.url("/drip/1000?ms=200")),
                move |result| {
                    assert_eq!(result.unwrap_err().kind(), ErrorKind::Cancelled);
                    c.borrow_mut()[i] += 1;
                },
            )
            .unwrap();
        transfers.push(t);
    }
    // Let them connect and start receiving, then cancel them all from a timer.
    let timer = Timer::new(&h.uv, move || {
        for t in &transfers {
            assert!(t.cancel());
        }
    })
    .unwrap();
    timer.start(300);
    h.run_for(Duration::from_secs(20));
    drop(timer);
    assert!(
        counts.borrow().iter().all(|&n| n == 1),
        "{:?}",
        counts.borrow()
    );
    assert_eq!(h.multi().active_transfers(), 0);
    assert_eq!(h.multi().stats().watched_sockets, 0);
    drop(server);
    h.finish();
}

/// A panicking data callback fails only its transfer, with `CallbackPanic`;
/// a panicking completion callback is resumed from `Loop::run` after the
/// other transfers finished.
#[test]
fn panics_in_callbacks_are_caught_and_reported() {
    let h = Harness::new();
    let server = HttpServer::start();
    let results = collector();
    let r = results.clone();
    h.multi()
        .start(
            Request::get(server.url("/bytes/100000")).on_data(|_| panic!("boom in data")),
            move |result| r.borrow_mut().push(result.map(|_| ())),
        )
        .unwrap();
    h.multi()
        .start(Request::get(server.url("/bytes/10")), |_| {
            panic!("boom in completion")
        })
        .unwrap();
    for _ in 0..10 {
        let r = results.clone();
        h.multi()
            .start(Request::get(server.url("/bytes/50000")), move |result| {
                r.borrow_mut().push(result.map(|_| ()))
            })
            .unwrap();
    }
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h.uv.run()));
    let payload = caught.expect_err("the completion panic is resumed by Loop::run");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in completion"));
    let results = results.borrow();
    assert_eq!(results.len(), 11);
    let error = results[..].iter().find_map(|r| r.as_ref().err()).unwrap();
    assert_eq!(error.kind(), ErrorKind::CallbackPanic);
    assert!(error.message().contains("boom in data"), "{error}");
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 10);
    drop(server);
    h.finish();
}

/// Bad input is an error at start, never a failed transfer later: the
/// callback does not run and nothing panics.
#[test]
fn bad_input_is_rejected_at_start() {
    let h = Harness::new();
    let calls = Rc::new(Cell::new(0));
    let cases: Vec<(Request, ErrorKind)> = vec![
        (
            Request::get("http://127.0.0.1/\0x"),
            ErrorKind::InvalidInput,
        ),
        (Request::get("not a url"), ErrorKind::InvalidInput),
        (Request::get(""), ErrorKind::InvalidInput),
        (Request::get("http://"), ErrorKind::InvalidInput),
        (
            Request::get("ftp://127.0.0.1/file"),
            ErrorKind::UnsupportedProtocol,
        ),
        (
            Request::get("file:///etc/passwd"),
            ErrorKind::UnsupportedProtocol,
        ),
        (
            Request::get("http://127.0.0.1/").header_line("no colon"),
            ErrorKind::InvalidInput,
        ),
        (
            Request::get("http://127.0.0.1/").header("bad name", "v"),
            ErrorKind::InvalidInput,
        ),
        (
            Request::get("http://127.0.0.1/").header("", "v"),
            ErrorKind::InvalidInput,
        ),
        (
            Request::get("http://127.0.0.1/").header("X", "a\r\nInjected: 1"),
            ErrorKind::InvalidInput,
        ),
        (
            Request::new("GE T", "http://127.0.0.1/"),
            ErrorKind::InvalidInput,
        ),
        (
            Request::get("http://127.0.0.1/").user_agent("a\0b"),
            ErrorKind::InvalidInput,
        ),
        (
            Request::get("http://127.0.0.1/").proxy("http://\0"),
            ErrorKind::InvalidInput,
        ),
    ];
    for (request, kind) in cases {
        let c = calls.clone();
        let debug = format!("{request:?}");
        let error = h
            .multi()
            .start(request, move |_| c.set(c.get() + 1))
            .expect_err(&debug);
        assert_eq!(error.kind(), kind, "{debug}: {error}");
        assert!(!error.message().is_empty());
    }
    assert_eq!(h.multi().active_transfers(), 0);
    h.run();
    assert_eq!(calls.get(), 0);

    // Misuse after close: errors, not crashes.
    let multi = h.take_multi();
    let handle = multi.handle();
    multi.close();
    multi.close();
    let error = multi
        .start(Request::get("http://127.0.0.1/"), |_| {})
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    drop(multi);
    let error = handle
        .start(Request::get("http://127.0.0.1/"), |_| {})
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    h.finish();
}

/// A finished transfer's handle reports it is gone; pause/resume fail cleanly.
#[test]
fn transfer_handles_after_completion() {
    let h = Harness::new();
    let server = HttpServer::start();
    let t = h
        .multi()
        .start(
            Request::get(server.url("/bytes/10")),
            |r| assert!(r.is_ok()),
        )
        .unwrap();
    assert!(t.is_active());
    h.run();
    assert!(!t.is_active());
    assert!(!t.cancel());
    assert_eq!(t.pause().unwrap_err().kind(), ErrorKind::InvalidState);
    assert_eq!(t.resume().unwrap_err().kind(), ErrorKind::InvalidState);
    drop(server);
    h.finish();
}

/// The escape hatch: a caller-configured easy handle is driven to completion
/// and stays the caller's; adding it twice is refused.
#[test]
fn raw_easy_handles_are_driven_and_stay_the_callers() {
    use std::ffi::CString;
    use uvcurl::ffi::curl;
    let h = Harness::new();
    let server = HttpServer::start();
    let url = CString::new(server.url("/bytes/1000")).unwrap();
    // SAFETY: a fresh easy handle configured with valid options; cleaned up below.
    let easy = unsafe {
        let easy = curl::curl_easy_init();
        curl::curl_easy_setopt(easy, curl::CURLOPT_URL, url.as_ptr());
        curl::curl_easy_setopt(easy, curl::CURLOPT_NOBODY, 1 as libc::c_long);
        easy
    };
    let results = collector();
    let r = results.clone();
    // SAFETY: `easy` is valid until the cleanup after the loop ran.
    let error = unsafe {
        h.multi()
            .start_raw(easy, move |result| r.borrow_mut().push(result))
            .unwrap();
        h.multi().start_raw(easy, |_| {}).unwrap_err()
    };
    assert_eq!(error.kind(), ErrorKind::InvalidState);
    // SAFETY: null is rejected before use.
    let error = unsafe {
        h.multi()
            .start_raw(std::ptr::null_mut(), |_| {})
            .unwrap_err()
    };
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    h.run();
    assert_eq!(results.borrow().len(), 1);
    assert!(results.borrow()[0].is_ok());
    let mut code: libc::c_long = 0;
    // SAFETY: the handle is still ours and valid.
    unsafe {
        curl::curl_easy_getinfo(easy, curl::CURLINFO_RESPONSE_CODE, &mut code);
        curl::curl_easy_cleanup(easy);
    }
    assert_eq!(code, 200);
    drop(server);
    h.finish();
}

/// Closing a loop that still has handles reports how many; after the Multi
/// is dropped and the loop ran once more, it closes.
#[test]
fn loop_close_reports_open_handles() {
    let _serial = crate::support::harness::serial();
    let uv = uvcurl::Loop::new().unwrap();
    let multi = uvcurl::Multi::new(&uv).unwrap();
    let error = uv.close().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidState);
    assert!(error.message().contains("1 handle"), "{error}");
    drop(multi);
    uv.run().unwrap();
    uv.close().unwrap();
    assert_eq!(uv.close().unwrap_err().kind(), ErrorKind::InvalidState);
    assert_eq!(uv.run().unwrap_err().kind(), ErrorKind::Closed);
}

/// `on_released` fires once, only after the Multi was closed and the loop ran
/// the close callbacks of its handles; set afterwards, it fires at once.
#[test]
fn on_released_fires_after_the_last_handle_is_freed() {
    let h = Harness::new();
    let server = HttpServer::start();
    let fired = Rc::new(Cell::new(0));
    let f = fired.clone();
    let multi = h.take_multi();
    multi.on_released(move || f.set(f.get() + 1));
    multi
        .start(Request::get(server.url("/drip/100?ms=300")), |r| {
            assert_eq!(r.unwrap_err().kind(), ErrorKind::Cancelled)
        })
        .unwrap();
    h.uv.run_nowait().unwrap();
    multi.close();
    assert_eq!(fired.get(), 0, "handles are still closing");
    h.uv.run().unwrap();
    assert_eq!(fired.get(), 1);
    let f = fired.clone();
    multi.on_released(move || f.set(f.get() + 10));
    assert_eq!(fired.get(), 11);
    drop(multi);
    assert_eq!(fired.get(), 11);
    drop(server);
    h.finish();
}
