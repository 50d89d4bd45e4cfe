//! Transfers that fail: each failure arrives once, promptly, with the right
//! kind — and a broken body is never reported as a success.

use crate::support::harness::{collector, Harness};
use crate::support::{body_bytes, refused_port, sha256_hex, HttpServer, HttpsServer, RawServer};
use std::time::{Duration, Instant};
use uvcurl::{ErrorKind, HttpVersion, Request, Response};

type Outcome = (&'static str, Result<Response, uvcurl::Error>, Duration);

fn run_cases(h: &Harness, cases: Vec<(&'static str, Request)>) -> Vec<Outcome> {
    let results = collector();
    let started = Instant::now();
    for (name, request) in cases {
        let r = results.clone();
        h.multi()
            .start(request, move |result| {
                r.borrow_mut().push((name, result, started.elapsed()))
            })
            .unwrap();
    }
    h.run_for(Duration::from_secs(30));
    let out = results.borrow_mut().drain(..).collect::<Vec<_>>();
    out
}

fn find<'a>(outcomes: &'a [Outcome], name: &str) -> &'a Outcome {
    let matching: Vec<_> = outcomes.iter().filter(|o| o.0 == name).collect();
    assert_eq!(
        matching.len(),
        1,
        "{name} completed {} times",
        matching.len()
    );
    matching[0]
}

/// HTTPS with a certificate made in the test: verified with its CA given
/// (and HTTP/2 negotiated through ALPN), a TLS error without it.
#[test]
fn https_verifies_against_the_given_ca_and_fails_without_it() {
    let h = Harness::new();
    let server = HttpsServer::start();
    let outcomes = run_cases(
        &h,
        vec![
            (
                "with-ca",
                Request::get(server.url("/bytes/100000?seed=3")).ca_file(server.ca_file()),
            ),
            ("without-ca", Request::get(server.url("/bytes/10"))),
            (
                "insecure",
                Request::get(server.url("/bytes/10")).verify_tls(false),
            ),
        ],
    );
    let ok = find(&outcomes, "with-ca").1.as_ref().expect("with the CA");
    assert_eq!(ok.body(), &body_bytes(100_000, 3)[..]);
    assert_eq!(ok.http_version(), HttpVersion::Http2);
    assert!(ok.timings().tls > Duration::ZERO);
    let err = find(&outcomes, "without-ca").1.as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(find(&outcomes, "insecure").1.is_ok());
    drop(server);
    h.finish();
}

/// A server that accepts and never answers: the timeout error arrives after
/// the timeout and well before a second one — the uv timer drives curl's
/// timeouts. A body dripping slower than the low-speed limit times out too.
/// Refused connections fail promptly with `Connect`.
#[test]
fn timeouts_fire_on_time_and_refused_connections_fail_fast() {
    let h = Harness::new();
    let silent = RawServer::silent();
    let slow = HttpServer::start();
    let outcomes = run_cases(
        &h,
        vec![
            (
                "silent",
                Request::get(silent.url("/")).timeout(Duration::from_millis(700)),
            ),
            (
                "low-speed",
                Request::get(slow.url("/drip/100?ms=1500")).low_speed(1000, Duration::from_secs(1)),
            ),
            (
                "refused",
                Request::get(format!("http://127.0.0.1:{}/", refused_port())),
            ),
        ],
    );
    let (_, result, elapsed) = find(&outcomes, "silent");
    assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Timeout);
    assert!(
        *elapsed >= Duration::from_millis(690) && *elapsed < Duration::from_millis(1700),
        "timeout after {elapsed:?}"
    );
    let (_, result, elapsed) = find(&outcomes, "low-speed");
    assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Timeout);
    assert!(
        *elapsed < Duration::from_secs(4),
        "low-speed after {elapsed:?}"
    );
    let (_, result, elapsed) = find(&outcomes, "refused");
    assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Connect);
    assert!(
        *elapsed < Duration::from_secs(1),
        "refused after {elapsed:?}"
    );
    drop((silent, slow));
    h.finish();
}

/// An unresolvable `.invalid` host gives a `Dns` error promptly. The lookup
/// runs in a private network namespace when the test may create one, so no
/// query leaves the machine.
#[test]
fn unresolvable_host_is_a_dns_error() {
    let outcome = std::thread::spawn(|| {
        // SAFETY: unshare affects only this thread (and the resolver threads
        // libcurl starts from it); failure just leaves the namespace as it is.
        let isolated = unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0;
        if !isolated {
            eprintln!("note: no private network namespace; using the system resolver");
        }
        let h = Harness::new();
        let outcomes = run_cases(
            &h,
            vec![(
                "dns",
                Request::get("http://no-such-host.invalid/").timeout(Duration::from_secs(20)),
            )],
        );
        let (_, result, elapsed) = find(&outcomes, "dns");
        let kind = result.as_ref().unwrap_err().kind();
        h.finish();
        (kind, *elapsed)
    })
    .join()
    .expect("dns thread");
    assert_eq!(outcome.0, ErrorKind::Dns);
    assert!(
        outcome.1 < Duration::from_secs(5),
        "dns failure after {:?}",
        outcome.1
    );
}

/// A connection reset mid-body, a close before any header, and a malformed
/// status line: each an error of the right kind, never a short success.
#[test]
fn broken_responses_are_errors_never_short_bodies() {
    let h = Harness::new();
    let reset = RawServer::reset_mid_body(1 << 20, 300_000);
    let closed = RawServer::close_before_headers();
    let garbage =
        RawServer::script(b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nbody".to_vec());
    let truncated = RawServer::script(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\nonly this".to_vec(),
    );
    let outcomes = run_cases(
        &h,
        vec![
            ("reset", Request::get(reset.url("/"))),
            ("closed", Request::get(closed.url("/"))),
            ("garbage", Request::get(garbage.url("/"))),
            ("truncated", Request::get(truncated.url("/"))),
        ],
    );
    for (name, kind) in [
        ("reset", ErrorKind::ConnectionReset),
        ("closed", ErrorKind::EmptyReply),
        ("garbage", ErrorKind::Protocol),
        ("truncated", ErrorKind::PartialBody),
    ] {
        let error = find(&outcomes, name).1.as_ref().expect_err(name);
        assert_eq!(error.kind(), kind, "{name}: {error}");
        assert!(error.curl_code().is_some(), "{name}");
        assert!(!error.message().is_empty(), "{name}");
    }
    drop((reset, closed, garbage, truncated));
    h.finish();
}

/// A streamed transfer that is reset mid-body still ends in an error after
/// delivering only the bytes that arrived.
#[test]
fn streamed_reset_ends_in_error() {
    let h = Harness::new();
    let reset = RawServer::reset_mid_body(1 << 20, 200_000);
    let received = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let rx = received.clone();
    let results = collector();
    let r = results.clone();
    let request = Request::get(reset.url("/")).on_data(move |chunk| {
        rx.borrow_mut().extend_from_slice(chunk);
        uvcurl::Flow::Continue
    });
    h.multi()
        .start(request, move |result| r.borrow_mut().push(result))
        .unwrap();
    h.run_for(Duration::from_secs(30));
    let error = results.borrow_mut().pop().unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error}");
    assert!(error.is_connection_lost());
    let got = received.borrow();
    assert_eq!(got.len(), 200_000);
    assert_eq!(
        sha256_hex(&got),
        sha256_hex(&body_bytes(1 << 20, 0)[..200_000])
    );
    drop(reset);
    h.finish();
}

/// The server's connection count once it has stopped changing (unchanged
/// for 300 ms; at most 5 s).
fn settled_connections(server: &RawServer) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = server.connections();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = server.connections();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A body streamed from a `Read`, sent on a kept-alive connection that the
/// server closes under it: libcurl would resend the request on a new
/// connection but cannot read the body again. That is a lost connection
/// (`ConnectionReset`, which a retry with a fresh reader can cure), not
/// `Other`. Found by tests/it/links.rs. A body in memory is resent and
/// succeeds.
#[test]
fn streamed_upload_on_a_connection_closed_under_it_is_a_lost_connection() {
    let h = Harness::new();
    let server = RawServer::hang_up_on_second_request();
    let body = body_bytes(200_000, 5);
    let put = |request: Request| {
        request
            .header("Expect", "")
            .timeout(Duration::from_secs(20))
    };
    // Each upload comes second on a connection opened by a GET.
    let warm_up = || {
        let response = h.multi().fetch(Request::get(server.url("/"))).unwrap();
        assert_eq!(response.status(), 200);
    };
    warm_up();
    let streamed = Request::new("PUT", server.url("/upload"))
        .body_reader(std::io::Cursor::new(body.clone()), Some(body.len() as u64));
    let error = h.multi().fetch(put(streamed)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConnectionReset, "{error:?}");
    assert!(error.is_connection_lost());

    // (libcurl 7.x opens the new connection before it finds that it cannot
    // rewind, 8.x does not: count from here, once the server has accepted
    // that connection, which under valgrind can come after `fetch` returned.)
    let before = settled_connections(&server);
    warm_up();
    let in_memory = Request::new("PUT", server.url("/upload")).body(body);
    let response = h.multi().fetch(put(in_memory)).unwrap();
    assert_eq!(response.status(), 200, "resent on a new connection");
    assert_eq!(server.connections(), before + 2);
    drop(server);
    h.finish();
}
