//! Self-test of the loopback servers in `tests/it/support`, using plain std
//! TCP clients (and rustls for HTTPS) over 127.0.0.1.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::harness::{serial, settled_fd_count, shared};
use crate::support::{
    body_bytes, fd_count, raise_nofile_limit, refused_port, sha256_hex, wait_until, HttpServer,
    HttpsServer, RawServer,
};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Socket read/write timeout of every client in this file.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// A minimal blocking HTTP/1.1 client.

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect 127.0.0.1");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Sizes of the chunks when the body was chunked.
    chunks: Vec<usize>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("utf-8 body")
    }
}

struct Client<S> {
    stream: S,
    buf: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    fn new(stream: S) -> Self {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Reads more bytes into the buffer; returns how many (0 at EOF).
    fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk).expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill() > 0, "EOF inside a message");
        }
        self.buf.drain(..n).collect()
    }

    fn line(&mut self) -> String {
        loop {
            if let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(pos + 2);
                return String::from_utf8(line[..pos].to_vec()).expect("ascii line");
            }
            assert!(self.fill() > 0, "EOF inside a line");
        }
    }

    fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            req.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.stream.write_all(&bytes).expect("write request");
        self.stream.flush().unwrap();
    }

    fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let status_line = self.line();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(
            parts.next(),
            Some("HTTP/1.1"),
            "status line {status_line:?}"
        );
        let status = parts.next().unwrap().parse().unwrap();
        let mut headers = Vec::new();
        for _ in 0..200 {
            let line = self.line();
            if line.is_empty() {
                return (status, headers);
            }
            let (name, value) = line.split_once(':').expect("header line");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        panic!("too many header lines");
    }

    fn read_response(&mut self, head_request: bool) -> Response {
        let (status, headers) = self.read_head();
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
            chunks: Vec::new(),
        };
        if head_request || status == 204 || status == 304 {
            return response;
        }
        if response.header("transfer-encoding") == Some("chunked") {
            for _ in 0..1_000_000 {
                let size = usize::from_str_radix(self.line().trim(), 16).expect("chunk size");
                if size == 0 {
                    while !self.line().is_empty() {}
                    return response;
                }
                response.chunks.push(size);
                let data = self.take(size);
                response.body.extend_from_slice(&data);
                assert_eq!(self.line(), "", "chunk terminator");
            }
            panic!("too many chunks");
        } else if let Some(len) = response.header("content-length") {
            let len = len.parse().expect("content-length");
            response.body = self.take(len);
        } else {
            while self.fill() > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        response
    }

    fn request(&mut self, method: &str, path: &str) -> Response {
        self.send(method, path, &[], None);
        self.read_response(method == "HEAD")
    }

    fn get(&mut self, path: &str) -> Response {
        self.request("GET", path)
    }

    /// True when the peer has closed (EOF or reset) with no bytes pending.
    fn at_eof(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() == ErrorKind::ConnectionReset,
        }
    }
}

fn get_once(port: u16, path: &str) -> Response {
    Client::new(connect(port)).get(path)
}

// ---------------------------------------------------------------------------
// A minimal blocking HTTP/2 client (prior knowledge; literal HPACK only).

const H2_DATA: u8 = 0;
const H2_HEADERS: u8 = 1;
const H2_RST_STREAM: u8 = 3;
const H2_SETTINGS: u8 = 4;
const H2_PING: u8 = 6;
const H2_GOAWAY: u8 = 7;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_ACK: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn hpack_int(out: &mut Vec<u8>, mut value: usize, prefix_bits: u32, first: u8) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// Literal header field without indexing, new name, no Huffman.
fn hpack_literal(out: &mut Vec<u8>, name: &str, value: &str) {
    out.push(0);
    hpack_int(out, name.len(), 7, 0);
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, value.len(), 7, 0);
    out.extend_from_slice(value.as_bytes());
}

/// `:status` from the first field of a response header block, when it is
/// an indexed static entry (as h2 encodes the common statuses).
fn hpack_status(block: &[u8]) -> u16 {
    match block.first().map(|b| b & 0x7f) {
        Some(8) => 200,
        Some(9) => 204,
        Some(10) => 206,
        Some(11) => 304,
        Some(12) => 400,
        Some(13) => 404,
        Some(14) => 500,
        _ => 0,
    }
}

fn read_frame<S: Read>(s: &mut S) -> (u8, u8, u32, Vec<u8>) {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("h2 frame header");
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).expect("h2 frame payload");
    (head[3], head[4], stream, payload)
}

/// Strips the padding (and priority fields) of a DATA or HEADERS payload.
fn unpad(flags: u8, payload: &[u8], priority: bool) -> &[u8] {
    let mut p = payload;
    let mut pad = 0;
    if flags & FLAG_PADDED != 0 {
        pad = usize::from(p[0]);
        p = &p[1..];
    }
    if priority && flags & FLAG_PRIORITY != 0 {
        p = &p[5..];
    }
    &p[..p.len() - pad]
}

struct H2Outcome {
    max_concurrent_streams: Option<u32>,
    /// (status, body) per requested path, in order.
    responses: Vec<(u16, Vec<u8>)>,
}

/// Opens all `paths` as concurrent GET streams and collects the responses.
fn h2_get_all<S: Read + Write>(
    s: &mut S,
    scheme: &str,
    authority: &str,
    paths: &[String],
) -> H2Outcome {
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
    // ENABLE_PUSH = 0, INITIAL_WINDOW_SIZE = 2^31-1; then open the
    // connection window fully, so no WINDOW_UPDATE is ever needed.
    let mut settings = Vec::new();
    settings.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
    settings.extend_from_slice(&[0, 4, 0x7f, 0xff, 0xff, 0xff]);
    s.write_all(&h2_frame(H2_SETTINGS, 0, 0, &settings))
        .unwrap();
    s.write_all(&h2_frame(8, 0, 0, &(0x7fff_ffffu32 - 65_535).to_be_bytes()))
        .unwrap();
    s.flush().unwrap();

    // Wait for the server's SETTINGS, acknowledge them, then send requests.
    let mut max_concurrent_streams = None;
    for _ in 0..100 {
        let (kind, flags, _, payload) = read_frame(s);
        if kind == H2_SETTINGS && flags & FLAG_ACK == 0 {
            for param in payload.chunks_exact(6) {
                let id = u16::from_be_bytes([param[0], param[1]]);
                let value = u32::from_be_bytes([param[2], param[3], param[4], param[5]]);
                if id == 3 {
                    max_concurrent_streams = Some(value);
                }
            }
            break;
        }
    }
    let mut out = h2_frame(H2_SETTINGS, FLAG_ACK, 0, &[]);
    let mut ids = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let id = 1 + 2 * i as u32;
        ids.push(id);
        let mut block = Vec::new();
        hpack_literal(&mut block, ":method", "GET");
        hpack_literal(&mut block, ":scheme", scheme);
        hpack_literal(&mut block, ":authority", authority);
        hpack_literal(&mut block, ":path", path);
        hpack_literal(&mut block, "x-h2-test", "1");
        out.extend(h2_frame(
            H2_HEADERS,
            FLAG_END_STREAM | FLAG_END_HEADERS,
            id,
            &block,
        ));
    }
    s.write_all(&out).unwrap();
    s.flush().unwrap();

    let mut state: HashMap<u32, (u16, Vec<u8>, bool)> =
        ids.iter().map(|id| (*id, (0, Vec::new(), false))).collect();
    let mut open = ids.len();
    for _ in 0..10_000_000 {
        if open == 0 {
            break;
        }
        let (kind, flags, stream, payload) = read_frame(s);
        match kind {
            H2_DATA | H2_HEADERS => {
                let entry = state.get_mut(&stream).expect("frame for unknown stream");
                if kind == H2_HEADERS {
                    entry.0 = hpack_status(unpad(flags, &payload, true));
                } else {
                    entry.1.extend_from_slice(unpad(flags, &payload, false));
                }
                if flags & FLAG_END_STREAM != 0 {
                    entry.2 = true;
                    open -= 1;
                }
            }
            H2_RST_STREAM => panic!("stream {stream} reset: {payload:?}"),
            H2_GOAWAY => panic!("GOAWAY: {payload:?}"),
            H2_SETTINGS if flags & FLAG_ACK == 0 => {
                s.write_all(&h2_frame(H2_SETTINGS, FLAG_ACK, 0, &[]))
                    .unwrap();
            }
            H2_PING if flags & FLAG_ACK == 0 => {
                s.write_all(&h2_frame(H2_PING, FLAG_ACK, 0, &payload))
                    .unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(open, 0, "streams left open");
    let responses = ids
        .iter()
        .map(|id| {
            let (status, body, _) = state.remove(id).unwrap();
            (status, body)
        })
        .collect();
    H2Outcome {
        max_concurrent_streams,
        responses,
    }
}

// ---------------------------------------------------------------------------
// TLS client.

fn tls_connect(
    server: &HttpsServer,
    server_name: &str,
    alpn: &[&[u8]],
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(server.ca_file()).expect("read CA file") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from(server_name.to_string()).expect("server name");
    let conn = ClientConnection::new(Arc::new(config), name).unwrap();
    let mut stream = StreamOwned::new(conn, connect(server.port()));
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

// ---------------------------------------------------------------------------
// Tests.

#[test]
fn helpers_are_deterministic() {
    let _g = shared();
    assert_eq!(body_bytes(1000, 1), body_bytes(1000, 1));
    assert_ne!(body_bytes(1000, 1), body_bytes(1000, 2));
    assert_eq!(body_bytes(0, 3), Vec::<u8>::new());
    // Shorter bodies are prefixes of longer ones (any length, not just x8).
    let long = body_bytes(1001, 0);
    assert_eq!(&long[..13], &body_bytes(13, 0)[..]);
    assert!(long.iter().any(|b| *b != 0));
    let started = Instant::now();
    let big = body_bytes(16 << 20, 42);
    assert_eq!(big.len(), 16 << 20);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "body_bytes too slow"
    );
    // Roughly uniform: every byte value shows up.
    let mut seen = [false; 256];
    big[..1 << 16]
        .iter()
        .for_each(|b| seen[usize::from(*b)] = true);
    assert!(seen.iter().all(|s| *s));

    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn fd_count_tracks_descriptors_and_servers_leak_none() {
    let _g = serial();
    // Earlier tests of this process may still be closing descriptors on
    // threads of their own (a server's connection, a client's loop).
    let before = settled_fd_count();
    assert!(before >= 3);
    let file = std::fs::File::open("/proc/self/status").unwrap();
    assert_eq!(fd_count(), before + 1);
    drop(file);
    assert_eq!(fd_count(), before);

    {
        let http = HttpServer::start();
        let https = HttpsServer::start();
        let raw = RawServer::script(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec());
        let mut c = Client::new(connect(http.port()));
        assert_eq!(c.get("/bytes/10").status, 200);
        let mut t = Client::new(tls_connect(&https, "127.0.0.1", &[b"http/1.1"]).unwrap());
        assert_eq!(t.get("/bytes/10").status, 200);
        assert_eq!(get_once(raw.port(), "/").status, 204);
        assert!(fd_count() > before);
    }
    assert_eq!(fd_count(), before, "descriptors leaked by the servers");
}

#[test]
fn refused_port_refuses() {
    let _g = shared();
    let port = refused_port();
    assert_ne!(port, 0);
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn http_bytes_route() {
    let _g = shared();
    let server = HttpServer::start();
    assert_eq!(
        server.url("/x?y=1"),
        format!("http://127.0.0.1:{}/x?y=1", server.port())
    );
    let mut c = Client::new(connect(server.port()));

    let r = c.get("/bytes/100000?seed=5");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.body, body_bytes(100_000, 5));

    let r = c.get("/bytes/777");
    assert_eq!(r.body, body_bytes(777, 0), "seed defaults to 0");
    let r = c.get("/bytes/0");
    assert_eq!((r.status, r.body.len()), (200, 0));

    let r = c.request("HEAD", "/bytes/1234");
    assert_eq!((r.status, r.header("content-length")), (200, Some("1234")));

    // Chunked: no Content-Length, 16 KiB chunks.
    let r = c.get("/bytes/50000?seed=1&chunked=1");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(r.chunks, vec![16384, 16384, 16384, 848]);
    assert_eq!(r.body, body_bytes(50_000, 1));

    // Still the same keep-alive connection.
    assert_eq!(server.connections(), 1);
    assert_eq!(server.requests(), 5);

    // close=1: Connection: close, then the server closes.
    let r = c.get("/bytes/10?seed=9&close=1");
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, body_bytes(10, 9));
    assert!(c.at_eof(), "connection not closed after close=1");

    let mut c = Client::new(connect(server.port()));
    let r = c.get("/bytes/40000?chunked=1&close=1");
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, body_bytes(40_000, 0));
    assert!(c.at_eof());
    assert_eq!(server.connections(), 2);

    assert_eq!(get_once(server.port(), "/bytes/abc").status, 400);
}

#[test]
fn http_redirect_status_headers_and_404_routes() {
    let _g = shared();
    let server = HttpServer::start();
    let mut c = Client::new(connect(server.port()));

    let r = c.get("/redirect/3");
    assert_eq!((r.status, r.header("location")), (302, Some("/redirect/2")));
    let r = c.get("/redirect/1");
    assert_eq!((r.status, r.header("location")), (302, Some("/redirect/0")));
    let r = c.get("/redirect/0");
    assert_eq!((r.status, r.text()), (200, "done"));
    let r = c.get("/loop");
    assert_eq!((r.status, r.header("location")), (302, Some("/loop")));
    let r = c.get("/redirect-to?url=http%3A%2F%2F127.0.0.1%3A1%2Fx%3Fa%3D1%26b%3D2");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://127.0.0.1:1/x?a=1&b=2"));

    let r = c.get("/status/418");
    assert_eq!((r.status, r.text()), (418, "status 418"));
    let r = c.get("/status/503");
    assert_eq!((r.status, r.text()), (503, "status 503"));
    let r = c.get("/status/204");
    assert_eq!(r.status, 204);
    // No stray body bytes after the 204: the next response parses.
    let r = c.get("/status/200");
    assert_eq!((r.status, r.text()), (200, "status 200"));

    c.send(
        "GET",
        "/headers",
        &[
            ("X-Zeta", "last"),
            ("X-Alpha", "first one"),
            ("Accept", "*/*"),
        ],
        None,
    );
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    let lines: Vec<&str> = r.text().lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "header lines not sorted");
    assert!(lines.contains(&"x-alpha: first one"), "{lines:?}");
    assert!(lines.contains(&"x-zeta: last"));
    assert!(lines.contains(&"host: 127.0.0.1"));
    assert!(r.text().ends_with('\n'));
    let last = server.last_request_headers();
    assert!(
        last.contains(&("x-zeta".to_string(), "last".to_string())),
        "{last:?}"
    );
    assert!(last.contains(&("accept".to_string(), "*/*".to_string())));

    assert_eq!(c.get("/nothing-here").status, 404);
    assert_eq!(c.request("POST", "/bytes/10").status, 404);
    assert_eq!(c.get("/upload").status, 404);
    assert_eq!(server.requests(), 13);
    assert_eq!(server.connections(), 1);
}

#[test]
fn http_upload_route() {
    let _g = shared();
    let server = HttpServer::start();
    let mut c = Client::new(connect(server.port()));

    let data = body_bytes(3 << 20, 9);
    c.send("POST", "/upload", &[], Some(&data));
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("{} {}", data.len(), sha256_hex(&data)));

    c.send("PUT", "/upload", &[], Some(b""));
    let r = c.read_response(false);
    assert_eq!(r.text(), format!("0 {}", sha256_hex(b"")));

    // A chunked request body.
    let parts: [&[u8]; 3] = [b"hello ", b"chunked ", b"world"];
    let mut raw = b"PUT /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in parts {
        raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        raw.extend_from_slice(part);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    c.stream.write_all(&raw).unwrap();
    let r = c.read_response(false);
    assert_eq!(
        r.text(),
        format!("19 {}", sha256_hex(b"hello chunked world"))
    );

    // Expect: 100-continue is honoured.
    let mut c2 = Client::new(connect(server.port()));
    c2.stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let (status, _) = c2.read_head();
    assert_eq!(status, 100);
    c2.stream.write_all(b"abc").unwrap();
    let r = c2.read_response(false);
    assert_eq!(r.text(), format!("3 {}", sha256_hex(b"abc")));
}

#[test]
fn http_drip_and_slow_headers_routes() {
    let _g = shared();
    let server = HttpServer::start();
    let mut c = Client::new(connect(server.port()));

    let started = Instant::now();
    c.send("GET", "/drip/1000?ms=40", &[], None);
    let (status, headers) = c.read_head();
    let head_at = started.elapsed();
    assert_eq!(status, 200);
    assert!(headers.contains(&("content-length".to_string(), "1000".to_string())));
    let body = c.take(1000);
    let total = started.elapsed();
    assert_eq!(body, body_bytes(1000, 0));
    assert!(
        total >= Duration::from_millis(360),
        "drip too fast: {total:?}"
    );
    assert!(
        head_at + Duration::from_millis(200) < total,
        "head not sent first: {head_at:?}"
    );

    // Fewer bytes than pieces.
    let r = c.get("/drip/3?ms=1");
    assert_eq!(r.body, body_bytes(3, 0));
    let r = c.get("/drip/0?ms=1");
    assert_eq!((r.status, r.body.len()), (200, 0));

    let started = Instant::now();
    let r = c.get("/slow-headers?ms=300");
    assert_eq!((r.status, r.text()), (200, "ok"));
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[test]
fn h2c_prior_knowledge_with_200_concurrent_streams() {
    let _g = shared();
    let server = HttpServer::start();
    let authority = format!("127.0.0.1:{}", server.port());

    let mut s = connect(server.port());
    let paths = vec![
        "/bytes/100000?seed=7".to_string(),
        "/redirect/0".to_string(),
    ];
    let outcome = h2_get_all(&mut s, "http", &authority, &paths);
    assert!(outcome.max_concurrent_streams.unwrap_or(u32::MAX) >= 256);
    assert_eq!(outcome.responses[0], (200, body_bytes(100_000, 7)));
    assert_eq!(outcome.responses[1], (200, b"done".to_vec()));
    assert!(server
        .last_request_headers()
        .contains(&("x-h2-test".to_string(), "1".to_string())));

    // 200 streams that each take 300 ms: only concurrent service finishes
    // quickly, and a refused stream would fail the client.
    let mut s = connect(server.port());
    let paths: Vec<String> = (0..200)
        .map(|_| "/slow-headers?ms=300".to_string())
        .collect();
    let started = Instant::now();
    let outcome = h2_get_all(&mut s, "http", &authority, &paths);
    let elapsed = started.elapsed();
    assert!(outcome
        .responses
        .iter()
        .all(|r| *r == (200, b"ok".to_vec())));
    assert!(
        elapsed < Duration::from_secs(3),
        "streams not concurrent: {elapsed:?}"
    );
    assert_eq!(server.connections(), 2);
    assert_eq!(server.requests(), 202);
}

#[test]
fn thousand_concurrent_keep_alive_connections() {
    let _g = shared();
    raise_nofile_limit(4096);
    let server = HttpServer::start();
    let started = Instant::now();
    let mut clients: Vec<Client<TcpStream>> = (0..1000)
        .map(|_| Client::new(connect(server.port())))
        .collect();
    for c in &mut clients {
        c.send("GET", "/slow-headers?ms=300", &[], None);
    }
    for c in &mut clients {
        let r = c.read_response(false);
        assert_eq!((r.status, r.text()), (200, "ok"));
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.get(&format!("/bytes/64?seed={i}"));
        assert_eq!(r.body, body_bytes(64, i as u64));
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(8), "too slow: {elapsed:?}");
    assert_eq!(server.connections(), 1000);
    assert_eq!(server.requests(), 2000);
}

#[test]
fn http_server_stops_on_drop() {
    let _g = shared();
    let server = HttpServer::start();
    let port = server.port();
    let mut idle = Client::new(connect(port));
    assert_eq!(idle.get("/bytes/5").status, 200);
    let mut busy = Client::new(connect(port));
    busy.send("GET", "/slow-headers?ms=5000", &[], None);
    assert!(wait_until(Duration::from_secs(5), || server.requests() == 2));

    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(2), "drop too slow");
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(idle.at_eof(), "idle connection survived drop");
    assert!(busy.at_eof(), "busy connection survived drop");
}

#[test]
fn https_http1_and_h2_with_generated_ca() {
    let _g = shared();
    let server = HttpsServer::start();
    let ca_file = server.ca_file();
    let pem = std::fs::read_to_string(&ca_file).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(pem, server.ca_pem());
    assert_eq!(
        server.url("/a"),
        format!("https://127.0.0.1:{}/a", server.port())
    );

    // HTTP/1.1 over TLS, verifying the IP address SAN.
    let tls = tls_connect(&server, "127.0.0.1", &[b"http/1.1"]).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let mut c = Client::new(tls);
    let r = c.get("/bytes/200000?seed=2");
    assert_eq!(r.body, body_bytes(200_000, 2));
    let data = body_bytes(100_000, 3);
    c.send("POST", "/upload", &[], Some(&data));
    assert_eq!(
        c.read_response(false).text(),
        format!("100000 {}", sha256_hex(&data))
    );
    let r = c.get("/redirect/2");
    assert_eq!(r.header("location"), Some("/redirect/1"));

    // HTTP/2 over TLS via ALPN, verifying the DNS SAN.
    let mut tls = tls_connect(&server, "localhost", &[b"h2", b"http/1.1"]).unwrap();
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
    let paths = vec!["/bytes/70000?seed=4".to_string(), "/nope".to_string()];
    let outcome = h2_get_all(&mut tls, "https", "localhost", &paths);
    assert_eq!(outcome.responses[0], (200, body_bytes(70_000, 4)));
    assert_eq!(outcome.responses[1].0, 404);

    // A name the certificate does not cover is rejected.
    assert!(tls_connect(&server, "example.invalid", &[b"http/1.1"]).is_err());

    assert_eq!(server.connections(), 3);
    assert_eq!(server.requests(), 5);
    drop(server);
    assert!(!ca_file.exists(), "CA file not removed on drop");
}

#[test]
fn raw_silent_server() {
    let _g = shared();
    let server = RawServer::silent();
    assert_eq!(
        server.url("/p"),
        format!("http://127.0.0.1:{}/p", server.port())
    );
    let mut s = connect(server.port());
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    assert!(wait_until(Duration::from_secs(2), || server.connections() == 1));
    // Half-closing our side does not make it close its side.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let err = s.read(&mut buf).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    drop(server);
    let mut c = Client::new(s);
    assert!(c.at_eof(), "socket still open after drop");
}

#[test]
fn raw_reset_mid_body() {
    let _g = shared();
    for (total, sent, delay_ms) in [(100_000, 30_000, 0), (8 << 20, 2 << 20, 200)] {
        let server = RawServer::reset_mid_body(total, sent);
        let mut s = connect(server.port());
        s.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        // Let the send queue fill before reading: the bytes must still all
        // arrive before the reset.
        std::thread::sleep(Duration::from_millis(delay_ms));
        let mut received = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let err = loop {
            match s.read(&mut chunk) {
                Ok(0) => panic!("clean EOF instead of a reset"),
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
        assert!(received.starts_with(head.as_bytes()));
        assert_eq!(received[head.len()..], body_bytes(sent, 0)[..]);
        assert_eq!(server.connections(), 1);
    }
}

#[test]
fn raw_close_before_headers() {
    let _g = shared();
    let server = RawServer::close_before_headers();
    let mut c = Client::new(connect(server.port()));
    c.send("GET", "/", &[], None);
    let mut buf = Vec::new();
    let n = c.stream.read_to_end(&mut buf).expect("clean EOF");
    assert_eq!(n, 0);
    // With a request body too: still a clean close, not a reset.
    let mut c = Client::new(connect(server.port()));
    c.send("POST", "/", &[], Some(&body_bytes(200_000, 1)));
    let n = c.stream.read_to_end(&mut buf).expect("clean EOF");
    assert_eq!(n, 0);
    assert_eq!(server.connections(), 2);
}

#[test]
fn raw_script_server() {
    let _g = shared();
    let script = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Script: 1\r\n\r\nhello".to_vec();
    let server = RawServer::script(script.clone());
    for _ in 0..2 {
        let mut s = connect(server.port());
        s.write_all(b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, script);
    }
    let r = get_once(server.port(), "/");
    assert_eq!(
        (r.status, r.header("x-script"), r.text()),
        (200, Some("1"), "hello")
    );
    assert_eq!(server.connections(), 3);
}
