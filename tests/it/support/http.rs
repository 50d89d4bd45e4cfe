//! `HttpServer` (HTTP/1.1 + h2c prior knowledge) and its router, which
//! `HttpsServer` (https.rs) serves over TLS.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::background::{accept_backoff, Background};
use super::{body_bytes, hex};

/// Response body type used by every route.
type RespBody = BoxBody<Bytes, Infallible>;

/// Largest `/bytes/{n}` or `/drip/{n}` body served (1 GiB).
const MAX_BODY: usize = 1 << 30;

/// Chunk size of `/bytes/{n}?chunked=1`.
const CHUNK: usize = 16 * 1024;

/// Most pieces a `/drip/{n}` body is split into.
const DRIP_PIECES: usize = 10;

/// Longest delay accepted by `/drip` and `/slow-headers` (60 s).
const MAX_DELAY_MS: u64 = 60_000;

/// Generated bodies kept per server (keyed by seed), so that many requests
/// for the same large body do not regenerate it.
const BODY_CACHE_SEEDS: usize = 8;

/// Counters and recorded state shared by a server's connections.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) connections: AtomicUsize,
    pub(crate) requests: AtomicUsize,
    pub(crate) last_headers: Mutex<Vec<(String, String)>>,
    body_cache: Mutex<HashMap<u64, Bytes>>,
}

impl Stats {
    /// `body_bytes(n, seed)` as `Bytes`, served from the cache when a long
    /// enough body for `seed` was generated before.
    fn body(&self, n: usize, seed: u64) -> Bytes {
        if let Some(cached) = lock(&self.body_cache).get(&seed) {
            if cached.len() >= n {
                return cached.slice(..n);
            }
        }
        let fresh = Bytes::from(body_bytes(n, seed));
        let mut cache = lock(&self.body_cache);
        if cache.len() >= BODY_CACHE_SEEDS && !cache.contains_key(&seed) {
            cache.clear();
        }
        let longer = cache.get(&seed).is_some_and(|c| c.len() >= n);
        if !longer {
            cache.insert(seed, fresh.clone());
        }
        fresh
    }
}

/// Locks `m`, ignoring poisoning (a panicking test must not break others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Plain-HTTP loopback server: HTTP/1.1 and h2c prior knowledge on one port.
pub struct HttpServer {
    background: Background,
    // (tests/c_api.rs, which includes this file too, reads no counters.)
    #[allow(dead_code)]
    stats: Arc<Stats>,
}

impl HttpServer {
    /// Binds 127.0.0.1:0 and serves the test routes until dropped.
    pub fn start() -> HttpServer {
        HttpServer::start_at(IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    /// `http://127.0.0.1:PORT` followed by `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port(), path_and_query)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.background.port()
    }
}

// The counters, for tests/it; tests/c_api.rs, which includes this file too,
// reads none of them.
#[allow(dead_code)]
impl HttpServer {
    /// Binds `ip` (port 0) and serves the test routes until dropped; `url`
    /// still names 127.0.0.1 (tests/it/links.rs reaches it through a proxy).
    pub fn start_at(ip: IpAddr) -> HttpServer {
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        let background = Background::spawn_at("support-http", ip, 2, move |listener| {
            accept_loop(listener, shared, |tcp| async move { Some(tcp) })
        });
        HttpServer { background, stats }
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (counted when the request head is handled).
    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// Headers of the most recent request, names in lower case, in the
    /// order hyper reports them (h2 pseudo-headers are not included).
    pub fn last_request_headers(&self) -> Vec<(String, String)> {
        lock(&self.stats.last_headers).clone()
    }
}

/// Accepts connections until the task is dropped, serving each on its own
/// task once `handshake` has turned the TCP stream into the stream to serve
/// (the TCP stream itself, or a TLS session over it; `None` drops it).
pub(crate) async fn accept_loop<H, Fut, I>(listener: TcpListener, stats: Arc<Stats>, handshake: H)
where
    H: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<I>> + Send + 'static,
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).header_read_timeout(None);
    builder
        .http2()
        .max_concurrent_streams(1024)
        .initial_stream_window_size(2 * 1024 * 1024)
        .initial_connection_window_size(8 * 1024 * 1024);
    let builder = Arc::new(builder);
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _peer)) => tcp,
            Err(_) => {
                accept_backoff().await;
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
        let stats = Arc::clone(&stats);
        let builder = Arc::clone(&builder);
        let stream = handshake(tcp);
        tokio::spawn(async move {
            if let Some(stream) = stream.await {
                serve_io(stream, stats, &builder).await;
            }
        });
    }
}

/// Serves HTTP/1.1 or HTTP/2 (detected from the preface) on `io`.
async fn serve_io<I>(io: I, stats: Arc<Stats>, builder: &auto::Builder<TokioExecutor>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(req, Arc::clone(&stats)));
    // Errors (peer resets, protocol errors) just end the connection.
    let _ = builder.serve_connection(TokioIo::new(io), service).await;
}

/// Records the request and dispatches it to its route.
async fn handle(
    req: Request<Incoming>,
    stats: Arc<Stats>,
) -> Result<Response<RespBody>, Infallible> {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    *lock(&stats.last_headers) = header_list(req.headers());
    Ok(route(req, &stats).await)
}

/// The shared router.
async fn route(req: Request<Incoming>, stats: &Stats) -> Response<RespBody> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let is_get = method == Method::GET || method == Method::HEAD;
    let http1 = req.version() < Version::HTTP_2;

    if is_get {
        if let Some(n) = path.strip_prefix("/bytes/") {
            return bytes_route(stats, n, &query, http1);
        }
        if let Some(n) = path.strip_prefix("/redirect/") {
            return match n.parse::<u64>() {
                Ok(0) => text(StatusCode::OK, "done"),
                Ok(n) => redirect(&format!("/redirect/{}", n - 1)),
                Err(_) => text(StatusCode::BAD_REQUEST, "bad redirect count"),
            };
        }
        if path == "/loop" {
            return redirect("/loop");
        }
        if path == "/redirect-to" {
            return match query_param(&query, "url") {
                Some(url) => redirect(&url),
                None => text(StatusCode::BAD_REQUEST, "missing url"),
            };
        }
        if let Some(code) = path.strip_prefix("/status/") {
            return status_route(code);
        }
        if path == "/headers" {
            return headers_route(req.headers());
        }
        if let Some(n) = path.strip_prefix("/drip/") {
            return drip_route(stats, n, &query);
        }
        if path == "/slow-headers" {
            let ms = match number_param(&query, "ms", 1000u64) {
                Some(ms) => ms.min(MAX_DELAY_MS),
                None => return text(StatusCode::BAD_REQUEST, "bad ms"),
            };
            tokio::time::sleep(Duration::from_millis(ms)).await;
            return text(StatusCode::OK, "ok");
        }
    }
    if (method == Method::POST || method == Method::PUT) && path == "/upload" {
        return upload_route(req.into_body()).await;
    }
    text(StatusCode::NOT_FOUND, "not found")
}

/// `GET /bytes/{n}?seed=S&close=1&chunked=1`.
fn bytes_route(stats: &Stats, n: &str, query: &str, http1: bool) -> Response<RespBody> {
    let n = match n.parse::<usize>() {
        Ok(n) if n <= MAX_BODY => n,
        _ => return text(StatusCode::BAD_REQUEST, "bad length"),
    };
    let Some(seed) = number_param(query, "seed", 0u64) else {
        return text(StatusCode::BAD_REQUEST, "bad seed");
    };
    let close = query_param(query, "close").as_deref() == Some("1");
    let chunked = query_param(query, "chunked").as_deref() == Some("1");
    let data = stats.body(n, seed);
    let mut response = if chunked {
        // No Content-Length and an inexact size hint: chunked on HTTP/1.1,
        // plain DATA frames on HTTP/2.
        let mut r = Response::new(ChunkedBody { data, chunk: CHUNK }.boxed());
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r
    } else {
        let len = data.len();
        let mut r = Response::new(Full::new(data).boxed());
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(len));
        r
    };
    if close && http1 {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// `GET /status/{code}`: codes 200..=999 only (1xx cannot be a final status).
fn status_route(code: &str) -> Response<RespBody> {
    let status = code
        .parse::<u16>()
        .ok()
        .filter(|c| *c >= 200)
        .and_then(|c| StatusCode::from_u16(c).ok());
    match status {
        Some(status) => text(status, &format!("status {}", status.as_u16())),
        None => text(StatusCode::BAD_REQUEST, "bad status"),
    }
}

/// `GET /headers`: the request headers as sorted `name: value` lines.
fn headers_route(headers: &HeaderMap) -> Response<RespBody> {
    let mut list = header_list(headers);
    list.sort();
    let mut body = String::new();
    for (name, value) in list {
        body.push_str(&name);
        body.push_str(": ");
        body.push_str(&value);
        body.push('\n');
    }
    text(StatusCode::OK, &body)
}

/// `GET /drip/{n}?ms=M`: Content-Length n, body sent in up to 10 pieces
/// with M ms (default 100) between them.
fn drip_route(stats: &Stats, n: &str, query: &str) -> Response<RespBody> {
    let n = match n.parse::<usize>() {
        Ok(n) if n <= MAX_BODY => n,
        _ => return text(StatusCode::BAD_REQUEST, "bad length"),
    };
    let ms = match number_param(query, "ms", 100u64) {
        Some(ms) => ms.min(MAX_DELAY_MS),
        None => return text(StatusCode::BAD_REQUEST, "bad ms"),
    };
    let data = stats.body(n, 0);
    let pieces = n.min(DRIP_PIECES);
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    tokio::spawn(async move {
        let mut start = 0;
        for i in 0..pieces {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let end = n * (i + 1) / pieces;
            if tx.send(data.slice(start..end)).await.is_err() {
                return; // response dropped (client gone or HEAD)
            }
            start = end;
        }
    });
    let mut response = Response::new(ChannelBody { rx }.boxed());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(n));
    response
}

/// `POST|PUT /upload`: reads the whole body, answers `"{len} {sha256hex}"`.
async fn upload_route(mut body: Incoming) -> Response<RespBody> {
    let mut hasher = Sha256::new();
    let mut len: u64 = 0;
    // Ends when the body does (or fails).
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    len += data.len() as u64;
                    hasher.update(&data);
                }
            }
            Err(_) => return text(StatusCode::BAD_REQUEST, "upload failed"),
        }
    }
    text(
        StatusCode::OK,
        &format!("{len} {}", hex(&hasher.finalize())),
    )
}

/// A 302 to `location` with an empty body.
fn redirect(location: &str) -> Response<RespBody> {
    let mut response = text(StatusCode::FOUND, "");
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
            response
        }
        Err(_) => text(StatusCode::BAD_REQUEST, "bad location"),
    }
}

/// A complete `text/plain` response (Content-Length unless 204/304).
fn text(status: StatusCode, body: &str) -> Response<RespBody> {
    let body = Bytes::copy_from_slice(body.as_bytes());
    let len = body.len();
    let mut response = Response::new(Full::new(body).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    response
}

/// Header (name, value) pairs; names are lower case already in hyper.
fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The percent-decoded value of the first `key=` parameter in `query`
/// (`+` is kept literally, as in a URL).
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

/// Parses parameter `key` as a number: `default` when absent, `None` when
/// present but malformed.
fn number_param<T: std::str::FromStr>(query: &str, key: &str, default: T) -> Option<T> {
    match query_param(query, key) {
        None => Some(default),
        Some(v) => v.parse().ok(),
    }
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hi = (bytes[i + 1] as char).to_digit(16);
            let lo = (bytes[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A body yielding `data` in frames of `chunk` bytes, with no size hint.
struct ChunkedBody {
    data: Bytes,
    chunk: usize,
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        let n = self.chunk.min(self.data.len());
        let piece = self.data.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }
}

/// A body fed by a channel; ends when the sender is dropped.
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|piece| piece.map(|data| Ok(Frame::data(data))))
    }
}
