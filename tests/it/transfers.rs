//! Transfers that succeed: many at once over keep-alive and over fresh
//! connections, HTTP/2 multiplexing, uploads, redirects, streaming.

use crate::support::harness::{collector, h2c_reuse_works, Harness};
use crate::support::{body_bytes, sha256_hex, HttpServer, HttpsServer};
use std::io::Cursor;
use std::rc::Rc;
use std::time::Duration;
use uvcurl::{ErrorKind, Flow, HttpVersion, HttpVersionPref, MultiHandle, Request, Response};

/// Outcomes by transfer number.
type Results = Rc<std::cell::RefCell<Vec<(usize, Result<Response, uvcurl::Error>)>>>;

/// Size of the i-th body in the load tests: 1 byte to ~64 KiB.
fn size_of(i: usize) -> usize {
    1 + (i * 7919) % 65_536
}

/// Starts transfer `i` of `total`; its completion records the outcome and
/// starts the next one not yet started, so `in_flight` stay running.
fn start_chain(
    multi: &MultiHandle,
    server: &Rc<String>,
    next: &Rc<std::cell::Cell<usize>>,
    total: usize,
    results: &Results,
) {
    let i = next.get();
    if i >= total {
        return;
    }
    next.set(i + 1);
    let url = server
        .replace("{n}", &size_of(i).to_string())
        .replace("{i}", &i.to_string());
    let (m, s, n, r) = (multi.clone(), server.clone(), next.clone(), results.clone());
    multi
        .start(
            Request::get(url).timeout(Duration::from_secs(30)),
            move |result| {
                r.borrow_mut().push((i, result));
                start_chain(&m, &s, &n, total, &r);
            },
        )
        .expect("start");
}

fn run_load(close_each: bool) {
    let h = Harness::new();
    let server = HttpServer::start();
    let total = 1000;
    let in_flight = 100;
    let close = if close_each { "&close=1" } else { "" };
    let pattern = Rc::new(server.url(&format!("/bytes/{{n}}?seed={{i}}{close}")));
    let next = Rc::new(std::cell::Cell::new(0));
    let results = collector();
    let handle = h.multi().handle();
    for _ in 0..in_flight {
        start_chain(&handle, &pattern, &next, total, &results);
    }
    assert_eq!(h.multi().active_transfers(), in_flight);
    h.run();
    // The chained transfers were started from completions during the
    // loop's I/O: held back and started together, at most 16 at a time.
    let stats = h.multi().stats();
    let chained = (total - in_flight) as u64;
    assert!(
        stats.batched_starts > 0 && stats.batched_starts <= chained,
        "{stats:?}"
    );
    assert!(
        stats.batched_starts <= 16 * stats.start_batches,
        "{stats:?}"
    );
    let results = results.borrow();
    assert_eq!(
        results.len(),
        total,
        "every transfer completes exactly once"
    );
    let mut seen = vec![false; total];
    for (i, result) in results.iter() {
        assert!(!seen[*i], "transfer {i} completed twice");
        seen[*i] = true;
        let response = result
            .as_ref()
            .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
        assert_eq!(response.status(), 200);
        let expected = body_bytes(size_of(*i), *i as u64);
        assert_eq!(response.body().len(), expected.len(), "transfer {i} length");
        assert_eq!(
            sha256_hex(response.body()),
            sha256_hex(&expected),
            "transfer {i} hash"
        );
    }
    if close_each {
        assert_eq!(server.connections(), total, "one connection per response");
    } else {
        assert!(
            server.connections() <= 2 * in_flight,
            "keep-alive connections were reused ({} for {total} transfers)",
            server.connections()
        );
    }
    drop(server);
    h.finish();
}

/// 1,000 transfers at 100 in flight over keep-alive: every body byte-exact,
/// connections reused, nothing leaked.
#[test]
fn thousand_keep_alive_transfers_are_byte_exact() {
    run_load(false);
}

/// The same with `Connection: close` on every response, so socket numbers are
/// closed and reused at once while old poll handles may still be closing.
#[test]
fn thousand_transfers_with_connection_close_reuse_socket_numbers() {
    run_load(true);
}

/// 200 transfers over HTTP/2 share one or two connections (one uv_poll_t per
/// socket, not per transfer) and arrive byte-exact: over h2c with prior
/// knowledge, or — on a libcurl too old to reuse h2c connections — over TLS
/// with ALPN. With at most 100 streams per connection (libcurl's default)
/// that is two connections; allowing 256 streams, one.
#[test]
fn two_hundred_http2_transfers_multiplex_over_few_connections() {
    multiplex_200(256, 1);
    // libcurl 7.x does not wait for a stream to free up once a connection is
    // at its limit: every transfer beyond it opens a connection of its own.
    if h2c_reuse_works() {
        multiplex_200(100, 2);
    }
}

fn multiplex_200(max_streams: usize, expected_connections: usize) {
    let h = Harness::with(uvcurl::Multi::builder().max_concurrent_streams(max_streams));
    // The TLS server only where needed: its ring crypto confuses valgrind.
    let plain = HttpServer::start();
    let tls = (!h2c_reuse_works()).then(HttpsServer::start);
    let request = |i: usize| {
        let path = format!("/bytes/{}?seed={i}", size_of(i));
        let request = match &tls {
            None => {
                Request::get(plain.url(&path)).http_version(HttpVersionPref::Http2PriorKnowledge)
            }
            Some(tls) => Request::get(tls.url(&path)).ca_file(tls.ca_file()),
        };
        (i, request.timeout(Duration::from_secs(30)))
    };
    // libcurl 7.x assumes 100 streams until the server's SETTINGS arrive and
    // opens a connection for every transfer beyond that meanwhile; there the
    // first transfer sets the connection up before the other 199 start.
    let first = if tls.is_some() { 1 } else { 0 };
    let warm_up = h.start_all((0..first).map(request));
    h.run();
    let rest = h.start_all((first..200).map(request));
    h.run();
    let mut results = warm_up.borrow_mut();
    results.append(&mut rest.borrow_mut());
    assert_eq!(results.len(), 200);
    for (i, result) in results.iter() {
        let response = result
            .as_ref()
            .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
        assert_eq!(response.http_version(), HttpVersion::Http2);
        assert_eq!(response.body(), &body_bytes(size_of(*i), *i as u64)[..]);
    }
    let connections = plain.connections() + tls.as_ref().map_or(0, |s| s.connections());
    assert_eq!(
        connections, expected_connections,
        "connections for 200 transfers multiplexed {max_streams} per connection"
    );
    drop((plain, tls));
    h.finish();
}

/// 10 MiB uploads — from memory, streamed with a known length, and streamed
/// chunked — reach the server intact (it answers length and SHA-256).
#[test]
fn ten_mib_uploads_arrive_intact() {
    let h = Harness::new();
    let server = HttpServer::start();
    let data = body_bytes(10 << 20, 42);
    let expected = format!("{} {}", data.len(), sha256_hex(&data));
    let requests = [
        Request::post(server.url("/upload"), data.clone()),
        Request::new("PUT", server.url("/upload"))
            .body_reader(Cursor::new(data.clone()), Some(data.len() as u64)),
        Request::new("POST", server.url("/upload")).body_reader(Cursor::new(data.clone()), None),
    ];
    let results = h.start_all(
        requests
            .into_iter()
            .map(|r| r.timeout(Duration::from_secs(60)))
            .enumerate(),
    );
    h.run();
    let results = results.borrow();
    assert_eq!(results.len(), 3);
    for (i, result) in results.iter() {
        let response = result
            .as_ref()
            .unwrap_or_else(|e| panic!("upload {i}: {e}"));
        assert_eq!(response.status(), 200, "upload {i}");
        assert_eq!(
            String::from_utf8_lossy(response.body()),
            expected,
            "upload {i}"
        );
        // libcurl counts chunked framing in the bytes sent of upload 2.
        assert!(response.bytes_sent() >= data.len() as u64, "upload {i}");
    }
    drop(server);
    h.finish();
}

/// A redirect chain is followed to the end; a loop stops at the limit; a
/// redirect to a scheme other than http(s) is refused.
#[test]
fn redirects_are_followed_limited_and_restricted_to_http() {
    let h = Harness::new();
    let server = HttpServer::start();
    let ftp = "ftp%3A%2F%2F127.0.0.1%2Fx";
    let file = "file%3A%2F%2F%2Fetc%2Fpasswd";
    let cases = [
        ("chain", Request::get(server.url("/redirect/5"))),
        ("loop", Request::get(server.url("/loop")).max_redirects(5)),
        (
            "ftp",
            Request::get(server.url(&format!("/redirect-to?url={ftp}"))),
        ),
        (
            "file",
            Request::get(server.url(&format!("/redirect-to?url={file}"))),
        ),
        (
            "off",
            Request::get(server.url("/redirect/1")).follow_redirects(false),
        ),
    ];
    let results = h.start_all(
        cases
            .into_iter()
            .map(|(name, request)| (name, request.timeout(Duration::from_secs(10)))),
    );
    h.run();
    let results = results.borrow();
    let get = |name: &str| &results.iter().find(|(n, _)| *n == name).unwrap().1;
    let chain = get("chain").as_ref().expect("chain");
    assert_eq!(
        (chain.status(), chain.body(), chain.redirects()),
        (200, &b"done"[..], 5)
    );
    assert!(chain.effective_url().ends_with("/redirect/0"));
    assert_eq!(
        get("loop").as_ref().unwrap_err().kind(),
        ErrorKind::TooManyRedirects
    );
    assert_eq!(
        get("ftp").as_ref().unwrap_err().kind(),
        ErrorKind::UnsupportedProtocol
    );
    assert_eq!(
        get("file").as_ref().unwrap_err().kind(),
        ErrorKind::UnsupportedProtocol
    );
    let off = get("off").as_ref().expect("not followed");
    assert_eq!((off.status(), off.redirects()), (302, 0));
    assert_eq!(off.header("location"), Some("/redirect/0"));
    drop(server);
    h.finish();
}

/// A streamed body reaches the data callback whole, after the head callback
/// saw the final status; the response then carries no body of its own.
#[test]
fn streamed_body_reaches_the_data_callback_whole() {
    let h = Harness::new();
    let server = HttpServer::start();
    let received = Rc::new(std::cell::RefCell::new(Vec::new()));
    let heads = collector();
    let results = collector();
    let (rx, hd, rs) = (received.clone(), heads.clone(), results.clone());
    let request = Request::get(server.url("/bytes/3000000?seed=9&chunked=1"))
        .on_head(move |head| {
            hd.borrow_mut().push(head.status());
            Flow::Continue
        })
        .on_data(move |chunk| {
            rx.borrow_mut().extend_from_slice(chunk);
            Flow::Continue
        });
    h.multi()
        .start(request, move |result| rs.borrow_mut().push(result))
        .unwrap();
    h.run();
    let response = results
        .borrow_mut()
        .pop()
        .unwrap()
        .expect("streamed transfer");
    assert!(response.body().is_empty());
    assert_eq!(response.bytes_received(), 3_000_000);
    assert_eq!(*heads.borrow(), vec![200]);
    assert_eq!(
        sha256_hex(&received.borrow()),
        sha256_hex(&body_bytes(3_000_000, 9))
    );
    drop(server);
    h.finish();
}

/// Request headers, method and user agent reach the server as given.
#[test]
fn headers_method_and_user_agent_are_sent() {
    let h = Harness::new();
    let server = HttpServer::start();
    let results = collector();
    let r = results.clone();
    let request = Request::get(server.url("/headers"))
        .header("X-Test", "one")
        .header_line("X-Other:  two ")
        .user_agent("uvcurl-test/1");
    h.multi()
        .start(request, move |result| r.borrow_mut().push(result))
        .unwrap();
    h.run();
    let response = results.borrow_mut().pop().unwrap().unwrap();
    let text = String::from_utf8_lossy(response.body()).into_owned();
    assert!(text.contains("x-test: one"), "{text}");
    assert!(text.contains("x-other: two"), "{text}");
    assert!(text.contains("user-agent: uvcurl-test/1"), "{text}");
    assert!(response.timings().total >= response.timings().first_byte);
    drop(server);
    h.finish();
}

/// Handles configured alike share one option set, its header list
/// included, built once. Round 0: 20 transfers in flight on fresh handles
/// make one set. Round 1: 30 with the same options, 20 on handles kept
/// configured and 10 on fresh ones given that same set, make none. Round 2:
/// 30 with another header make a second set, which the handles that held
/// the first take up. Every response shows its headers were sent; the
/// first set's list lives as long as a handle points at it (this suite also
/// runs under memcheck, which reports a list freed under a handle).
#[test]
fn transfers_configured_alike_share_one_option_set() {
    let h = Harness::new();
    let server = HttpServer::start();
    let results = collector();
    for (round, (count, tag)) in [(20, 0), (30, 0), (30, 1)].into_iter().enumerate() {
        for i in 0..count {
            let r = results.clone();
            let request = Request::get(server.url("/headers"))
                .header("X-Shared", "yes")
                .header("X-Tag", &tag.to_string());
            h.multi()
                .start(request, move |result| {
                    r.borrow_mut().push((round, tag, i, result))
                })
                .unwrap();
        }
        h.run();
    }
    let results = results.borrow();
    assert_eq!(results.len(), 80);
    for (round, tag, i, result) in results.iter() {
        let response = result
            .as_ref()
            .unwrap_or_else(|e| panic!("round {round}, transfer {i}: {e}"));
        let text = String::from_utf8_lossy(response.body());
        assert!(text.contains("x-shared: yes"), "{text}");
        assert!(text.contains(&format!("x-tag: {tag}")), "{text}");
    }
    let stats = h.multi().stats();
    assert_eq!(stats.option_sets_made, 2, "{stats:?}");
    assert!(stats.reused_configured_handles >= 20, "{stats:?}");
    drop(server);
    h.finish();
}

/// `on_head` also fires for a response without a body, before the completion.
#[test]
fn head_callback_fires_for_empty_bodies() {
    let h = Harness::new();
    let server = HttpServer::start();
    let events = collector();
    let (e1, e2) = (events.clone(), events.clone());
    let request = Request::get(server.url("/bytes/0"))
        .on_head(move |head| {
            e1.borrow_mut().push(format!("head {}", head.status()));
            Flow::Continue
        })
        .on_data(|_| Flow::Continue);
    h.multi()
        .start(request, move |result| {
            e2.borrow_mut()
                .push(format!("done {}", result.unwrap().status()))
        })
        .unwrap();
    assert!(events.borrow().is_empty(), "start runs no callback");
    h.run();
    assert_eq!(*events.borrow(), vec!["head 200", "done 200"]);
    drop(server);
    h.finish();
}

/// Sequential transfers over one keep-alive connection: between transfers
/// the pooled socket's watch lingers (kept, unreferenced: the loop still
/// finishes), and the next transfer takes it up again.
#[test]
fn pooled_connection_keeps_its_watch_between_transfers() {
    fn next(handle: uvcurl::MultiHandle, url: String, left: Rc<std::cell::Cell<u32>>) {
        let h2 = handle.clone();
        handle
            .start(Request::get(url.clone()), move |result| {
                assert_eq!(result.unwrap().body(), &body_bytes(100, 0)[..]);
                left.set(left.get() - 1);
                if left.get() > 0 {
                    next(h2, url, left);
                }
            })
            .unwrap();
    }
    let h = Harness::new();
    let server = HttpServer::start();
    let left = Rc::new(std::cell::Cell::new(50));
    next(h.multi().handle(), server.url("/bytes/100"), left.clone());
    h.run(); // returns although the pooled socket is still watched
    assert_eq!(left.get(), 0);
    assert_eq!(server.connections(), 1);
    assert_eq!(h.multi().stats().watched_sockets, 0);
    // Before libcurl 8.10 uvcurl uses the plain scheme: nothing lingers.
    let version = uvcurl::version().curl;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    let lingers = usize::from((major, minor) >= (8, 10));
    assert_eq!(h.multi().stats().lingering_sockets, lingers);
    drop(server);
    h.finish();
}

/// A pooled connection that the server closes while its watch lingers: the
/// watch is stopped on that event, and the next transfer reconnects.
#[test]
fn pooled_connection_closed_by_the_server_is_replaced() {
    let h = Harness::new();
    // Answers as if keeping the connection alive, then closes it.
    let server = crate::support::RawServer::script(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    );
    let results = collector();
    let r = results.clone();
    h.multi()
        .start(Request::get(server.url("/")), move |res| {
            r.borrow_mut().push(res.map(|x| x.into_body()))
        })
        .unwrap();
    h.run();
    // Let the server's close arrive while the socket lingers in the pool.
    let pause = uvcurl::uv::Timer::new(&h.uv, || {}).unwrap();
    pause.start(200);
    h.run();
    drop(pause);
    let r = results.clone();
    h.multi()
        .start(Request::get(server.url("/")), move |res| {
            r.borrow_mut().push(res.map(|x| x.into_body()))
        })
        .unwrap();
    h.run();
    let results = results.borrow();
    assert_eq!(results.len(), 2);
    for result in results.iter() {
        assert_eq!(result.as_ref().unwrap(), b"ok");
    }
    assert_eq!(server.connections(), 2);
    drop(server);
    h.finish();
}

/// Counts the body bytes of a caller-configured easy handle.
extern "C" fn count_bytes(
    _data: *mut std::ffi::c_char,
    size: usize,
    n: usize,
    total: *mut std::ffi::c_void,
) -> usize {
    // SAFETY: WRITEDATA is the `usize` the test keeps for this handle.
    unsafe { *(total as *mut usize) += size * n };
    size * n
}

/// Caller-configured easy handles (`start_raw`, what the C ABI uses) get the
/// pooled-socket watches that requests get: 10 handles × 20 rounds over
/// keep-alive reuse their 10 connections, whose watches linger between
/// rounds (with libcurl 8.10+). Once a handle is done, none of uvcurl's
/// options is left on it: it runs again with `curl_easy_perform` after the
/// `Multi` is gone (memcheck runs this test too).
#[test]
fn caller_configured_easy_handles_keep_pooled_watches() {
    use uvcurl::ffi::curl;
    let h = Harness::new();
    let server = HttpServer::start();
    let url = std::ffi::CString::new(server.url("/bytes/1000?seed=3")).unwrap();
    let mut totals = vec![0usize; 10];
    // SAFETY: plain easy handles, configured with valid options and pointers
    // that outlive them (the URL string and `totals`, which does not move).
    let easies: Vec<*mut curl::CURL> = totals
        .iter_mut()
        .map(|total| unsafe {
            let easy = curl::curl_easy_init();
            assert!(!easy.is_null());
            curl::curl_easy_setopt(easy, curl::CURLOPT_URL, url.as_ptr());
            let write: curl::curl_write_callback = count_bytes;
            curl::curl_easy_setopt(easy, curl::CURLOPT_WRITEFUNCTION, write);
            curl::curl_easy_setopt(easy, curl::CURLOPT_WRITEDATA, total as *mut usize);
            easy
        })
        .collect();
    let done = Rc::new(std::cell::Cell::new(0));
    for round in 0..20 {
        for &easy in &easies {
            let d = done.clone();
            // SAFETY: a valid handle, not in any multi, untouched until done.
            unsafe {
                h.multi().start_raw(easy, move |result| {
                    result.unwrap();
                    d.set(d.get() + 1);
                })
            }
            .unwrap();
        }
        h.run();
        assert_eq!(done.get(), (round + 1) * 10);
    }
    assert!(totals.iter().all(|&t| t == 20 * 1000), "{totals:?}");
    // libcurl 8.10+ (where pooled watches linger) keeps the 10 connections
    // across rounds; 7.88 prunes its connection cache as handles leave.
    let version = uvcurl::version().curl;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    if (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (8, 10) {
        assert!(
            server.connections() <= 10,
            "{} connections",
            server.connections()
        );
        assert!(
            h.multi().stats().lingering_sockets > 0,
            "no pooled watch kept"
        );
    }
    // The Multi goes; the handles are the caller's and work on their own.
    drop(h.take_multi());
    h.uv.run().unwrap();
    for &easy in &easies {
        // SAFETY: the caller's handle, out of every multi; cleaned up once.
        unsafe {
            assert_eq!(curl::curl_easy_perform(easy), curl::CURLE_OK);
            curl::curl_easy_cleanup(easy);
        }
    }
    assert!(totals.iter().all(|&t| t == 21 * 1000), "{totals:?}");
    drop(server);
    h.finish();
}

/// Easy handles are kept configured between transfers of one `Multi` and
/// reused without a reset when the next request asks for exactly the same
/// options; no option of one request reaches the next that did not ask for
/// it. Requests run one at a time, so each takes the handle the previous
/// one left behind.
#[test]
fn reused_easy_handles_carry_no_option_into_the_next_request() {
    let h = Harness::new();
    let server = HttpServer::start();
    let multi = h.multi();
    let reused = || multi.stats().reused_configured_handles;
    let fetch = |request: Request| multi.fetch(request).expect("transfer");
    let header_names = || -> Vec<String> {
        server
            .last_request_headers()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };

    // Same options twice: the second reuses the handle, with its own URL.
    let first = fetch(Request::get(server.url("/bytes/10?seed=1")));
    let second = fetch(Request::get(server.url("/bytes/20?seed=2")));
    assert_eq!(first.body(), body_bytes(10, 1));
    assert_eq!(second.body(), body_bytes(20, 2));
    assert_eq!(reused(), 1);

    // Without a head callback, then with one (whose handle needs the header
    // callback), then without again: each head callback sees its fields.
    for with_head in [false, true, true, false, true] {
        let seen = Rc::new(std::cell::Cell::new(None));
        let mut request = Request::get(server.url("/bytes/30?seed=3"));
        if with_head {
            let seen = seen.clone();
            request = request.on_head(move |head| {
                seen.set(head.header("content-length").map(str::to_owned));
                uvcurl::Flow::Continue
            });
        }
        let response = fetch(request);
        assert_eq!(response.header("content-length"), Some("30"));
        let expected = with_head.then(|| "30".to_owned());
        assert_eq!(seen.take(), expected, "head callback: {with_head}");
    }

    // POST with a body, then GET: no method, body or length carried over.
    let upload = fetch(Request::post(server.url("/upload"), b"abc".to_vec()));
    assert_eq!(upload.status(), 200);
    assert!(upload.text().starts_with("3 "), "{}", upload.text());
    let after_post = fetch(Request::get(server.url("/headers")));
    assert_eq!(after_post.status(), 200, "the GET went out as a POST");
    let names = header_names();
    assert!(!names.iter().any(|n| n == "content-length"), "{names:?}");
    assert!(!names.iter().any(|n| n == "content-type"), "{names:?}");

    // A body-less POST is kept configured; the GET after it is a GET.
    let empty_post = fetch(Request::new("POST", server.url("/upload")));
    assert_eq!(empty_post.text(), format!("0 {}", sha256_hex(b"")));
    assert_eq!(fetch(Request::get(server.url("/headers"))).status(), 200);

    // Custom method, then GET.
    let deleted = fetch(Request::new("DELETE", server.url("/headers")));
    assert_eq!(deleted.status(), 404);
    assert_eq!(fetch(Request::get(server.url("/headers"))).status(), 200);

    // Custom header and user agent, twice (the second reuses the handle and
    // sets its own header list), then another value, then neither.
    let before = reused();
    for value in ["one", "one", "two"] {
        let with = fetch(
            Request::get(server.url("/headers"))
                .header("X-Leak", value)
                .user_agent("leaky-agent/1"),
        );
        let text = with.text();
        assert!(text.contains(&format!("x-leak: {value}\n")), "{text}");
        assert_eq!(text.matches("x-leak").count(), 1, "{text}");
        assert!(text.contains("user-agent: leaky-agent/1"));
    }
    assert_eq!(reused(), before + 1);
    let without = fetch(Request::get(server.url("/headers")));
    assert!(!without.text().contains("x-leak"), "{}", without.text());
    assert!(
        !without.text().contains("leaky-agent"),
        "{}",
        without.text()
    );

    // HEAD, then GET: the GET gets its body.
    let head = fetch(Request::head(server.url("/bytes/100")));
    assert!(head.body().is_empty());
    assert_eq!(head.header("content-length"), Some("100"));
    let get = fetch(Request::get(server.url("/bytes/100")));
    assert_eq!(get.body(), body_bytes(100, 0));

    // A short timeout, then a slow response without one.
    let quick = fetch(Request::get(server.url("/bytes/1")).timeout(Duration::from_millis(300)));
    assert_eq!(quick.status(), 200);
    let slow = fetch(Request::get(server.url("/slow-headers?ms=600")));
    assert_eq!(slow.status(), 200, "the previous request's timeout applied");

    // No redirects followed, then the default (followed).
    let stopped = fetch(Request::get(server.url("/redirect/1")).follow_redirects(false));
    assert_eq!(stopped.status(), 302);
    let followed = fetch(Request::get(server.url("/redirect/1")));
    assert_eq!(followed.status(), 200);
    assert_eq!(followed.redirects(), 1);

    // h2c prior knowledge, then HTTP/1.1 (libcurl 7.x mishandles h2c on a
    // host it already holds HTTP/1.1 connections to; see h2c_reuse_works).
    if h2c_reuse_works() {
        let h2 = fetch(
            Request::get(server.url("/bytes/10"))
                .http_version(HttpVersionPref::Http2PriorKnowledge),
        );
        assert_eq!(h2.http_version(), HttpVersion::Http2);
    }
    let h1 = fetch(Request::get(server.url("/bytes/10")).http_version(HttpVersionPref::Http1_1));
    assert_eq!(h1.http_version(), HttpVersion::Http1_1);

    // A receive rate limit, then none: 256 KiB arrive in well under the
    // 128 s the limit would take.
    let limited = fetch(Request::get(server.url("/bytes/10")).max_recv_speed(2048));
    assert_eq!(limited.body().len(), 10);
    let started = std::time::Instant::now();
    let big = fetch(Request::get(server.url("/bytes/262144")));
    assert_eq!(big.body().len(), 262_144);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the previous request's rate limit applied"
    );

    // A failure on a reused handle reports its own error text.
    let refused = multi
        .fetch(Request::get("http://127.0.0.1:1/"))
        .expect_err("nothing listens on port 1");
    assert_eq!(refused.kind(), ErrorKind::Connect, "{refused}");
    assert_eq!(fetch(Request::get(server.url("/headers"))).status(), 200);

    drop(multi);
    drop(server);
    h.finish();
}

/// A `Share` used by transfers is freed with the `Multi`s that used it, in
/// an order that never leaves libcurl a handle pointing into it: every
/// transfer's easy handle (kept idle for reuse) lets go of the share before
/// `curl_share_cleanup` runs. (Under memcheck, tests/memcheck.rs, a handle
/// still linked to a freed share shows up as an invalid read and a leak.)
/// `fresh_connection`: a new connection although an idle one would do,
/// kept for reuse afterwards; the option is not carried over to the next
/// request on the same easy handle.
#[test]
fn a_fresh_connection_is_opened_only_when_asked() {
    let h = Harness::new();
    let server = HttpServer::start();
    let multi = h.multi();
    let fetch = |fresh: bool| {
        let request = Request::get(server.url("/bytes/10")).fresh_connection(fresh);
        let response = multi.fetch(request).expect("transfer");
        assert_eq!(response.body(), body_bytes(10, 0));
        server.connections()
    };
    assert_eq!(fetch(false), 1);
    assert_eq!(fetch(false), 1, "the idle connection is reused");
    assert_eq!(fetch(true), 2, "a fresh connection");
    assert_eq!(fetch(true), 3, "on a handle kept configured, fresh again");
    assert_eq!(fetch(false), 3, "an idle connection is reused");
    drop(multi);
    drop(server);
    h.finish();
}

#[test]
fn a_share_is_freed_after_every_handle_that_used_it() {
    let _fds = crate::support::harness::shared();
    let server = HttpServer::start();
    for share_dropped_first in [true, false] {
        let uv = uvcurl::Loop::new().unwrap();
        let share = uvcurl::Share::new().unwrap();
        let multi = uvcurl::Multi::builder().share(&share).build(&uv).unwrap();
        for i in 0..3 {
            let response = multi
                .fetch(Request::get(server.url(&format!("/bytes/100?seed={i}"))))
                .unwrap();
            assert_eq!(response.body(), &body_bytes(100, i)[..]);
        }
        if share_dropped_first {
            drop(share);
            drop(multi);
        } else {
            drop(multi);
            drop(share);
        }
        uv.run().unwrap();
        uv.close().unwrap();
    }
}
