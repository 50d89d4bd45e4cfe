//! The Rust API's promises, as a reqwest or curl-rust user reads them: a
//! cancel or a close from any callback stops that transfer's data at once,
//! an empty header value removes libcurl's default, `Multi::fetch`,
//! `Response::text`/`error_for_status`/trailers, `Flow::Cancel`, `Client::stream`.

use crate::support::harness::{collector, Harness};
use crate::support::{body_bytes, HttpServer, RawServer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use uvcurl::{ErrorKind, Flow, MultiHandle, Request, Transfer};

/// `Transfer::cancel()` called in `on_head`: the chunk that triggered
/// `on_head` never reaches `on_data`, and the completion is `Cancelled`.
#[test]
fn cancel_in_on_head_delivers_no_data() {
    let h = Harness::new();
    let server = HttpServer::start();
    let chunks = Rc::new(Cell::new(0usize));
    let results = collector();
    for i in 0..100u64 {
        let me: Rc<RefCell<Option<Transfer>>> = Rc::default();
        let (m, c) = (me.clone(), chunks.clone());
        let request = Request::get(server.url(&format!("/bytes/20000?seed={i}")))
            .on_head(move |_| {
                assert!(m.borrow().as_ref().unwrap().cancel());
                Flow::Continue
            })
            .on_data(move |_| {
                c.set(c.get() + 1);
                Flow::Continue
            });
        let r = results.clone();
        let transfer = h
            .multi()
            .start(request, move |result| r.borrow_mut().push(result))
            .unwrap();
        *me.borrow_mut() = Some(transfer);
    }
    h.run();
    assert_eq!(chunks.get(), 0, "data callbacks after a cancel in on_head");
    let results = results.borrow();
    assert_eq!(results.len(), 100);
    for result in results.iter() {
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Cancelled);
    }
    drop(results);
    drop(server);
    h.finish();
}

/// `Flow::Cancel` from `on_head` and from `on_data`: no further data, the
/// completion is `Cancelled` (not `Aborted`).
#[test]
fn flow_cancel_from_head_and_data() {
    let h = Harness::new();
    let server = HttpServer::start();
    let after = Rc::new(Cell::new(0usize));
    let results = collector();
    for i in 0..20u64 {
        let a = after.clone();
        let seen = Cell::new(false);
        let mut request = Request::get(server.url(&format!("/bytes/200000?seed={i}")));
        request = if i % 2 == 0 {
            request.on_head(|_| Flow::Cancel).on_data(move |_| {
                a.set(a.get() + 1);
                Flow::Continue
            })
        } else {
            request.on_data(move |_| {
                if seen.replace(true) {
                    a.set(a.get() + 1);
                }
                Flow::Cancel
            })
        };
        let r = results.clone();
        h.multi()
            .start(request, move |result| r.borrow_mut().push(result))
            .unwrap();
    }
    h.run();
    assert_eq!(after.get(), 0, "data callbacks after Flow::Cancel");
    let results = results.borrow();
    assert_eq!(results.len(), 20);
    for result in results.iter() {
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Cancelled);
    }
    drop(results);
    drop(server);
    h.finish();
}

/// Closing the `Multi` from inside a data callback, with 100 others in
/// flight: that transfer gets no further data callback, and every transfer
/// still running completes `Cancelled` — none `Ok`.
#[test]
fn closing_the_multi_from_on_data_cancels_that_transfer_too() {
    for round in 0..3u64 {
        let h = Harness::new();
        let server = HttpServer::start();
        let handle: Rc<RefCell<Option<MultiHandle>>> = Rc::default();
        *handle.borrow_mut() = Some(h.multi().handle());
        let closed = Rc::new(Cell::new(false));
        let after_close = Rc::new(Cell::new(0usize));
        let results = collector();
        for i in 0..101u64 {
            let (hd, cl, ac) = (handle.clone(), closed.clone(), after_close.clone());
            let request =
                Request::get(server.url(&format!("/bytes/65536?seed={}", round * 1000 + i)))
                    .on_data(move |_| {
                        if cl.get() {
                            ac.set(ac.get() + 1);
                        } else if i == 0 {
                            cl.set(true);
                            hd.borrow().as_ref().unwrap().close();
                        }
                        Flow::Continue
                    });
            let r = results.clone();
            h.multi()
                .start(request, move |result| r.borrow_mut().push((i, result)))
                .unwrap();
        }
        h.run();
        assert!(closed.get());
        assert_eq!(after_close.get(), 0, "data callbacks after the close");
        let results = results.borrow();
        assert_eq!(results.len(), 101);
        let first = results.iter().find(|(i, _)| *i == 0).unwrap();
        assert_eq!(first.1.as_ref().unwrap_err().kind(), ErrorKind::Cancelled);
        drop(results);
        drop(server);
        h.finish();
    }
}

/// An empty value removes libcurl's own header of that name.
#[test]
fn empty_header_value_removes_the_default() {
    let h = Harness::new();
    let server = HttpServer::start();
    let response = h
        .multi()
        .fetch(Request::get(server.url("/headers")).header("Accept", ""))
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = server.last_request_headers();
    assert!(
        !sent
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("accept")),
        "Accept was sent: {sent:?}"
    );
    let response = h
        .multi()
        .fetch(Request::get(server.url("/headers")).header("X-Kept", "1"))
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent = server.last_request_headers();
    assert!(sent
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("accept")));
    assert!(sent
        .iter()
        .any(|(name, v)| name.eq_ignore_ascii_case("x-kept") && v == "1"));
    drop(server);
    h.finish();
}

/// `Multi::fetch` runs one transfer to completion, sequentially, with the
/// loop's other transfers progressing meanwhile; inside a callback it is
/// refused with `InvalidState`.
#[test]
fn fetch_runs_sequentially_and_is_refused_inside_callbacks() {
    let h = Harness::new();
    let server = HttpServer::start();
    let background = collector();
    let r = background.clone();
    h.multi()
        .start(
            Request::get(server.url("/bytes/100000?seed=9")),
            move |result| r.borrow_mut().push(result),
        )
        .unwrap();
    for i in 0..5u64 {
        let response = h
            .multi()
            .fetch(Request::get(server.url(&format!("/bytes/3000?seed={i}"))))
            .unwrap();
        assert_eq!(response.body(), &body_bytes(3000, i)[..]);
    }
    let error = h.multi().fetch(Request::get("not a url")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);

    // Inside a loop callback: a second Multi on the same loop refuses.
    let second = Rc::new(RefCell::new(Some(uvcurl::Multi::new(&h.uv).unwrap())));
    let refused = Rc::new(RefCell::new(None));
    let (m, slot, url) = (second.clone(), refused.clone(), server.url("/bytes/10"));
    h.multi()
        .start(Request::get(server.url("/bytes/10")), move |_| {
            let outcome = m.borrow().as_ref().unwrap().fetch(Request::get(url));
            *slot.borrow_mut() = Some(outcome.map(|r| r.status()));
            m.borrow_mut().take(); // closes the second Multi
        })
        .unwrap();
    h.run();
    let refused = refused.borrow_mut().take().expect("the completion ran");
    assert_eq!(refused.unwrap_err().kind(), ErrorKind::InvalidState);
    assert_eq!(background.borrow().len(), 1);
    assert!(background.borrow()[0].is_ok());
    drop(server);
    h.finish();
}

/// `text()` decodes by the Content-Type charset; `error_for_status()` turns
/// a 404 into `HttpStatus`; chunked trailers are kept apart from headers.
#[test]
fn text_status_errors_and_trailers() {
    let h = Harness::new();
    let server = RawServer::script(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\
          Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
          4\r\ncaf\xe9\r\n0\r\nX-Checksum: 1234\r\n\r\n"
            .to_vec(),
    );
    let response = h.multi().fetch(Request::get(server.url("/"))).unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(response.text(), "caf\u{e9}");
    assert_eq!(response.header("x-checksum"), None);
    assert_eq!(response.trailer("X-Checksum"), Some("1234"));
    let error = response.error_for_status().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::HttpStatus);
    assert!(error.is_status());
    assert_eq!(error.http_status(), Some(404));
    drop(server);
    h.finish();
}

/// `Client::stream` yields the whole body, chunk by chunk.
#[test]
fn client_stream_yields_the_body() {
    let _fds = crate::support::harness::shared();
    let server = HttpServer::start();
    let client = uvcurl::Client::new().unwrap();
    let url = server.url("/bytes/3000000?seed=4");
    let mut stream = client.stream(move || Request::get(url));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let body = runtime.block_on(async {
        let mut body = Vec::new();
        while let Some(chunk) = stream.chunk().await.unwrap() {
            body.extend_from_slice(&chunk);
        }
        body
    });
    assert_eq!(body, body_bytes(3_000_000, 4));
    drop(client);
}

/// A `SendRequest` is built on one thread, moved to another and run by a
/// `Client` (and a `Remote`), its `Send` data callback on the loop thread.
#[test]
fn send_request_is_built_on_one_thread_and_run_from_another() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let _fds = crate::support::harness::shared();
    let server = HttpServer::start();
    let client = uvcurl::Client::new().unwrap();
    let streamed = Arc::new(AtomicUsize::new(0));
    let counter = streamed.clone();
    let url = server.url("/bytes/50000?seed=8");
    let request = std::thread::spawn(move || {
        uvcurl::SendRequest::get(url)
            .header("X-Built", "elsewhere")
            .on_data(move |chunk| {
                counter.fetch_add(chunk.len(), Ordering::SeqCst);
                Flow::Continue
            })
    })
    .join()
    .unwrap();
    let response = std::thread::spawn({
        let client = client.clone();
        move || client.send(request).wait()
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(streamed.load(Ordering::SeqCst), 50_000);
    let sent = server.last_request_headers();
    assert!(sent
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("x-built") && v == "elsewhere"));
    let plain = client
        .send(uvcurl::SendRequest::get(server.url("/bytes/10?seed=1")))
        .wait()
        .unwrap();
    assert_eq!(plain.body(), &body_bytes(10, 1)[..]);
    drop(client);
}

/// With the optional `stream` feature, a `BodyStream` is a
/// `futures_core::Stream`: the chunks make the whole body, then `None`; a
/// failed transfer ends with its error. (`.ci/run` builds one pass with the
/// feature on.)
#[cfg(feature = "stream")]
#[test]
fn body_stream_is_a_futures_stream() {
    use futures_core::Stream;
    use std::pin::Pin;
    let _fds = crate::support::harness::shared();
    let server = HttpServer::start();
    let client = uvcurl::Client::new().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let next = |stream: &mut uvcurl::BodyStream| {
        runtime.block_on(std::future::poll_fn(|cx| {
            Pin::new(&mut *stream).poll_next(cx)
        }))
    };
    let url = server.url("/bytes/2000000?seed=6");
    let mut stream = client.stream(move || Request::get(url));
    let mut body = Vec::new();
    while let Some(chunk) = next(&mut stream) {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(body, body_bytes(2_000_000, 6));
    assert!(
        next(&mut stream).is_none(),
        "a finished stream stays finished"
    );

    let mut failing = client.stream(|| Request::get("http://127.0.0.1:1/refused"));
    let last = next(&mut failing).expect("the error is the last item");
    assert!(last.unwrap_err().is_connect());
    assert!(next(&mut failing).is_none());
    drop(client);
}

/// Hostile header lines and values: `Request::header_line` and `header`
/// either build a request that starts, or one that `start` refuses with
/// `InvalidInput`; nothing panics, and what starts sends no CR, LF or NUL
/// (checked at a real server for the accepted ones).
#[test]
fn hostile_header_lines_are_refused_or_sent_intact() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let h = Harness::new();
    let server = HttpServer::start();
    // Deterministic unless UVCURL_PROPTEST_SEED (a number) asks for others.
    let seed: u64 = std::env::var("UVCURL_PROPTEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    println!("hostile header lines: UVCURL_PROPTEST_SEED={seed}");
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    let line = "(\\PC|[\r\n\0:;]){0,40}";
    runner
        .run(&(line, "(\\PC|[\r\n\0]){0,20}"), |(line, value)| {
            for request in [
                Request::get(server.url("/headers")).header_line(&line),
                Request::get(server.url("/headers")).header("X-Test", &value),
            ] {
                match h.multi().fetch(request) {
                    Ok(response) => prop_assert_eq!(response.status(), 200),
                    Err(error) => prop_assert_eq!(error.kind(), ErrorKind::InvalidInput),
                }
                for (name, value) in server.last_request_headers() {
                    let bad = |s: &str| s.contains(['\r', '\n', '\0']);
                    prop_assert!(!bad(&name) && !bad(&value), "{name:?}: {value:?}");
                }
            }
            Ok(())
        })
        .unwrap();
    drop(server);
    h.finish();
}

/// What a `Response` reports beyond status and body, as one snapshot.
type Details = (
    u16,
    Vec<(String, String)>,
    Vec<(String, String)>,
    String,
    u32,
    uvcurl::HttpVersion,
    u64,
);

fn details_of(response: &uvcurl::Response) -> Details {
    let pairs = |fields: &mut dyn Iterator<Item = (&str, &str)>| {
        fields
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    };
    (
        response.status(),
        pairs(&mut response.head().headers()),
        pairs(&mut response.trailers()),
        response.effective_url().to_owned(),
        response.redirects(),
        response.http_version(),
        response.bytes_received(),
    )
}

/// A response's details (read from libcurl only when asked) are the same
/// whether they are read inside the completion, after it returned (the
/// response kept), on another thread it was sent to from the completion, or
/// collected by a header callback (a request with `on_head`): over a
/// redirect chain, and with chunked trailers.
#[test]
fn response_details_are_the_same_however_and_whenever_they_are_read() {
    let h = Harness::new();
    let server = HttpServer::start();
    let raw = RawServer::script(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Twice: 1\r\nX-Twice: 2\r\n\
          Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n\
          5\r\nhello\r\n0\r\nX-Checksum: 1234\r\n\r\n"
            .to_vec(),
    );
    let urls = [server.url("/redirect/2"), raw.url("/")];
    let inside: Rc<RefCell<Vec<Details>>> = Rc::default();
    let kept: Rc<RefCell<Vec<uvcurl::Response>>> = Rc::default();
    let (to_thread, from_loop) = std::sync::mpsc::channel::<uvcurl::Response>();
    let reader = std::thread::spawn(move || from_loop.iter().map(|r| details_of(&r)).collect());
    for url in &urls {
        let i = inside.clone();
        h.multi()
            .start(Request::get(url), move |r| {
                i.borrow_mut().push(details_of(&r.unwrap()))
            })
            .unwrap();
        let k = kept.clone();
        h.multi()
            .start(Request::get(url), move |r| k.borrow_mut().push(r.unwrap()))
            .unwrap();
        let k = kept.clone();
        let with_head = Request::get(url).on_head(|head| {
            assert_ne!(head.status(), 0);
            Flow::Continue
        });
        h.multi()
            .start(with_head, move |r| k.borrow_mut().push(r.unwrap()))
            .unwrap();
        let sender = to_thread.clone();
        h.multi()
            .start(Request::get(url), move |r| sender.send(r.unwrap()).unwrap())
            .unwrap();
    }
    drop(to_thread);
    h.run();
    let on_thread: Vec<Details> = reader.join().unwrap();
    let mut inside = inside.borrow().clone();
    let mut kept: Vec<Details> = kept.borrow().iter().map(details_of).collect();
    let mut on_thread = on_thread;
    for list in [&mut inside, &mut kept, &mut on_thread] {
        list.sort_by(|a, b| a.3.cmp(&b.3));
    }
    assert_eq!(inside.len(), 2);
    let redirected = inside
        .iter()
        .find(|d| d.3.ends_with("/redirect/0"))
        .unwrap();
    assert_eq!((redirected.0, redirected.4), (200, 2));
    assert!(redirected
        .1
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length")));
    let chunked = inside.iter().find(|d| d.3 == urls[1]).unwrap();
    let fields = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        chunked.1,
        fields(&[
            ("Content-Type", "text/plain"),
            ("X-Twice", "1"),
            ("X-Twice", "2"),
            ("Transfer-Encoding", "chunked"),
            ("Trailer", "X-Checksum"),
        ])
    );
    assert_eq!(chunked.2, fields(&[("X-Checksum", "1234")]));
    assert_eq!((chunked.4, chunked.6), (0, 5));
    assert_eq!(chunked.5, uvcurl::HttpVersion::Http1_1);
    // Kept: with and without a header callback, in either order.
    assert_eq!(kept.len(), 4);
    for pair in kept.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    kept.dedup();
    assert_eq!(kept, inside);
    assert_eq!(on_thread, inside);
    drop((server, raw));
    h.finish();
}
