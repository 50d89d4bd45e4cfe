//! TLS failure modes against loopback servers with certificates made in the
//! test (expired, for another name, from an unknown CA), a server that
//! stalls mid-handshake, a TLS 1.0-only server; and TLS session resumption
//! through a `Share`, across the loops of a `Client`.
//!
//! Each failure must be `ErrorKind::Tls` (or `Timeout` for a stall) with
//! libcurl's reason in the message. Both libcurls the CI tests (bundled
//! 8.22, Debian's 7.88) use the system's OpenSSL 3, whose reasons are
//! matched here.

use crate::support::harness::shared;
use crate::support::{
    wait_until, HttpsServer, Leaf, RawServer, ServerHelloThenSilence, Tls10Server,
};
use std::time::{Duration, Instant};
use uvcurl::{Client, Error, ErrorKind, Loop, Multi, Request, Share};

/// Runs `request` on a fresh loop and returns its error.
fn error_of(request: Request) -> Error {
    let uv = Loop::new().unwrap();
    let multi = Multi::new(&uv).unwrap();
    let outcome = multi.fetch(request);
    drop(multi);
    uv.run().unwrap();
    uv.close().unwrap();
    match outcome {
        Ok(response) => panic!("succeeded with {}", response.status()),
        Err(error) => error,
    }
}

/// Asserts `error` is of `kind` and its message contains one of `reasons`.
fn assert_reason(error: &Error, kind: ErrorKind, reasons: &[&str]) {
    assert_eq!(error.kind(), kind, "{error}");
    let message = error.to_string();
    assert!(
        reasons.iter().any(|r| message.contains(r)),
        "none of {reasons:?} in: {message}"
    );
}

#[test]
fn an_expired_certificate_is_a_tls_error_saying_so() {
    let _fds = shared();
    let server = HttpsServer::start_for(Leaf {
        expired: true,
        ..Leaf::default()
    });
    let error = error_of(Request::get(server.url("/bytes/10")).ca_file(server.ca_file()));
    assert_reason(&error, ErrorKind::Tls, &["certificate has expired"]);
    assert_eq!(server.requests(), 0);
}

#[test]
fn a_certificate_for_another_host_is_a_tls_error_naming_the_mismatch() {
    let _fds = shared();
    let server = HttpsServer::start_for(Leaf {
        names: vec!["other.example".to_string()],
        ..Leaf::default()
    });
    let error = error_of(Request::get(server.url("/bytes/10")).ca_file(server.ca_file()));
    // 8.x: "... matches target ipv4 address '127.0.0.1'"; 7.88: "... target host name".
    assert_reason(
        &error,
        ErrorKind::Tls,
        &["no alternative certificate subject name matches target"],
    );
    assert!(error.to_string().contains("127.0.0.1"), "{error}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn an_unknown_ca_is_a_tls_error_naming_the_chain_problem() {
    let _fds = shared();
    let server = HttpsServer::start();
    let stranger = HttpsServer::start(); // its CA did not sign `server`'s leaf
    let error = error_of(Request::get(server.url("/bytes/10")).ca_file(stranger.ca_file()));
    assert_reason(
        &error,
        ErrorKind::Tls,
        &[
            "self-signed certificate in certificate chain",
            "self signed certificate in certificate chain",
        ],
    );
    assert_eq!(server.requests(), 0);
}

/// How long a stalled handshake may take (the connect timeout covers the
/// TLS handshake).
const STALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs `url` with [`STALL_TIMEOUT`] and checks the timeout error arrived
/// after it and well before 10 times it.
fn assert_times_out(url: String) -> Error {
    let started = Instant::now();
    let error = error_of(Request::get(url).connect_timeout(STALL_TIMEOUT));
    let took = started.elapsed();
    assert!(
        took >= STALL_TIMEOUT && took < STALL_TIMEOUT * 10,
        "timed out after {took:?}"
    );
    error
}

#[test]
fn a_server_that_never_answers_the_client_hello_times_out() {
    let _fds = shared();
    let silent = RawServer::silent();
    let error = assert_times_out(format!("https://127.0.0.1:{}/", silent.port()));
    // 8.x: "Connection timed out after 500 milliseconds"; 7.88: "SSL connection timeout".
    assert_reason(
        &error,
        ErrorKind::Timeout,
        &["Connection timed out after", "SSL connection timeout"],
    );
    assert_eq!(silent.connections(), 1);
}

#[test]
fn a_server_that_stops_after_its_server_hello_times_out() {
    let _fds = shared();
    let server = ServerHelloThenSilence::start();
    let error = assert_times_out(server.url("/bytes/10"));
    assert_reason(
        &error,
        ErrorKind::Timeout,
        &["Connection timed out after", "SSL connection timeout"],
    );
    assert_eq!(
        server.server_hellos(),
        1,
        "the stall came after the ServerHello"
    );
}

/// OpenSSL 3 refuses TLS 1.0 at its default security level; which step
/// notices first depends on the libcurl: 8.x asks for TLS 1.2 at least and
/// gets "tlsv1 alert protocol version", 7.88 fails on the server's
/// signature ("legacy sigalg disallowed or unsupported").
#[test]
fn a_tls_1_0_only_server_is_refused() {
    let _fds = shared();
    let server = Tls10Server::start();
    let error = error_of(Request::get(server.url("/")).ca_file(server.ca_file()));
    assert_reason(
        &error,
        ErrorKind::Tls,
        &[
            "unsupported protocol",
            "protocol version",
            "legacy sigalg disallowed or unsupported",
            "no protocols available",
        ],
    );
}

/// The counters tell a full handshake from a resumed one: two `Multi`s
/// without a share each make a full handshake; two that share one resume
/// the first one's session in the second.
#[test]
fn a_share_resumes_tls_sessions_between_multis_and_without_one_nothing_is_resumed() {
    let _fds = shared();
    for shared_cache in [false, true] {
        let server = HttpsServer::start();
        let uv = Loop::new().unwrap();
        let share = Share::new().unwrap();
        let build = || {
            let builder = Multi::builder();
            let builder = if shared_cache {
                builder.share(&share)
            } else {
                builder
            };
            builder.build(&uv).unwrap()
        };
        let (first, second) = (build(), build());
        for multi in [&first, &second] {
            let response = multi
                .fetch(Request::get(server.url("/bytes/10")).ca_file(server.ca_file()))
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        drop((first, second));
        uv.run().unwrap();
        uv.close().unwrap();
        let counts = (server.full_handshakes(), server.resumed_handshakes());
        let expected = if shared_cache { (1, 1) } else { (2, 0) };
        assert_eq!(
            counts, expected,
            "(full, resumed) with a share: {shared_cache}"
        );
    }
}

/// A `Client` with two loops: the first loop's handshake is full, the
/// second loop's connection resumes its session (the loops share libcurl's
/// TLS session cache through the client's `Share`).
#[test]
fn tls_sessions_are_resumed_across_the_loops_of_a_client() {
    let _fds = shared();
    let server = HttpsServer::start();
    let client = Client::builder().loops(2).build().unwrap();
    let get = |path: &str| {
        let (url, ca) = (server.url(path), server.ca_file());
        client.submit(move || Request::get(url).ca_file(ca))
    };
    assert_eq!(get("/bytes/10").wait().unwrap().status(), 200);
    assert_eq!(
        (server.full_handshakes(), server.resumed_handshakes()),
        (1, 0)
    );
    // Both loops idle again; then one slow and one quick request, which the
    // client puts on different loops (the least busy first, then the other):
    // the slow one reuses the first loop's connection, the quick one needs a
    // connection on the other loop.
    assert!(wait_until(Duration::from_secs(5), || client.loads() == [0, 0]));
    let slow = get("/slow-headers?ms=500");
    let quick = get("/bytes/20");
    assert_eq!(quick.wait().unwrap().status(), 200);
    assert_eq!(slow.wait().unwrap().status(), 200);
    assert_eq!(server.connections(), 2);
    assert_eq!(
        (server.full_handshakes(), server.resumed_handshakes()),
        (1, 1),
        "(full, resumed) handshakes"
    );
    drop(client);
}
