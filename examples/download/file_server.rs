//! `FileServer`: a loopback HTTP server (HTTP/1.1 and h2c, or HTTPS with
//! ALPN h2; hyper on a tokio runtime in a background thread) that serves a
//! table of files, with `Range: bytes=FIRST-[LAST]`, `ETag`s, redirects,
//! `Content-Disposition`, scripted faults, and counters of what it served.
//!
//! `--demo` serves its generated files with it; the downloader's end-to-end
//! tests (tests/it/download.rs) include this file too and script faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, LOCATION};
use hyper::header::{ETAG, RANGE, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::oneshot;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// What the server does to one request for a route instead of answering it,
/// by attempt: the first request for the path gets `faults[0]`, and so on.
// The demo serves no faults; the tests do.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answers as if there were no fault (to fault a later request).
    Pass,
    /// Sends the headers and half the body (of the range asked for), then
    /// closes the connection.
    DropMidBody,
    /// Sends the headers and half the body, then nothing more for a minute
    /// (a transfer to kill while it is under way), then closes.
    StallMidBody,
    /// Answers a range request with a `206` whose `Content-Range` starts one
    /// byte later than asked (with the bytes it claims).
    WrongRange,
    /// Answers as usual, but sends the body 32 KiB every 50 ms (640 KiB/s).
    Slow,
    /// Answers as usual, but with another `ETag` (`"other"`).
    OtherEtag,
    /// Answers 503, with `Retry-After: 0` when the flag is set.
    Unavailable(bool),
    /// Answers 503 with `Retry-After` as an HTTP date this many seconds ahead.
    UnavailableUntil(u64),
}

/// One path the server answers.
#[derive(Debug, Clone, Default)]
pub struct Route {
    pub body: Bytes,
    /// `Content-Disposition` value, sent as is.
    pub disposition: Option<String>,
    /// Status to answer instead of the body (e.g. 404).
    pub status: Option<u16>,
    /// A 302 to this location instead of the body.
    pub redirect: Option<String>,
    /// Faults of the first attempts, in order; later attempts succeed.
    pub faults: Vec<Fault>,
    /// `ETag` value, sent as is.
    pub etag: Option<String>,
}

impl Route {
    /// The file `body`, served with a 200 (or a 206 for a range).
    pub fn file(body: impl Into<Bytes>) -> Route {
        Route {
            body: body.into(),
            ..Route::default()
        }
    }
}

/// The routes and what the server saw, shared by its connections.
struct State {
    routes: Mutex<HashMap<String, Route>>,
    /// Whether `Range: bytes=N-` gets a 206 (else the full body, 200).
    honour_range: bool,
    /// Body bytes of the file responses made (200 and 206).
    served: AtomicU64,
    /// Connections accepted.
    connections: AtomicU64,
    /// Requests that came over HTTP/2.
    http2_requests: AtomicU64,
    /// Requests seen per path.
    hits: Mutex<HashMap<String, u32>>,
    /// `(path, Range value)` of every request that had one.
    ranges: Mutex<Vec<(String, String)>>,
}

/// Locks `m`, ignoring poisoning.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The loopback server; dropping it stops the server and its thread.
pub struct FileServer {
    scheme: &'static str,
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Listens on 127.0.0.1 (a free port) and serves `routes` (keyed by
    /// path, without the query) from a background thread running a
    /// single-threaded tokio runtime.
    pub fn start(routes: HashMap<String, Route>, honour_range: bool) -> io::Result<FileServer> {
        FileServer::start_with(routes, honour_range, None)
    }

    /// Like [`start`](FileServer::start), over TLS with `tls` (whose ALPN
    /// list decides between HTTP/2 and HTTP/1.1).
    // The demo serves no TLS; the tests do.
    #[allow(dead_code)]
    pub fn start_tls(
        routes: HashMap<String, Route>,
        honour_range: bool,
        tls: Arc<ServerConfig>,
    ) -> io::Result<FileServer> {
        FileServer::start_with(routes, honour_range, Some(TlsAcceptor::from(tls)))
    }

    fn start_with(
        routes: HashMap<String, Route>,
        honour_range: bool,
        tls: Option<TlsAcceptor>,
    ) -> io::Result<FileServer> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let state = Arc::new(State {
            routes: Mutex::new(routes),
            honour_range,
            served: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            http2_requests: AtomicU64::new(0),
            hits: Mutex::default(),
            ranges: Mutex::default(),
        });
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("file-server".to_owned())
            .spawn(move || runtime.block_on(serve(listener, shared, tls, stopped)))?;
        Ok(FileServer {
            scheme,
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://`) followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }
}

// The demo reads no counters; the tests do.
#[allow(dead_code)]
impl FileServer {
    /// Requests seen for `path` so far.
    pub fn hits(&self, path: &str) -> u32 {
        lock(&self.state.hits).get(path).copied().unwrap_or(0)
    }

    /// `(path, Range value)` of every request so far that had a range.
    pub fn ranges(&self) -> Vec<(String, String)> {
        lock(&self.state.ranges).clone()
    }

    /// Body bytes of the file responses made so far (all paths).
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Requests so far that came over HTTP/2.
    pub fn http2_requests(&self) -> u64 {
        self.state.http2_requests.load(Ordering::SeqCst)
    }

    /// Serves `route` at `path` from now on (the file changed).
    pub fn set_route(&self, path: &str, route: Route) {
        lock(&self.state.routes).insert(path.to_owned(), route);
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped` fires; each is served (HTTP/1.1 or
/// h2c) on a task of its own.
async fn serve(
    listener: std::net::TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors, say: give connections time to close.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        state.connections.fetch_add(1, Ordering::SeqCst);
        let state = Arc::clone(&state);
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&state, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            // A client that goes away mid-response is not the server's problem.
            match tls {
                None => {
                    let io = TokioIo::new(stream);
                    let _ = builder.serve_connection(io, service).await;
                }
                Some(tls) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), tls.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        let io = TokioIo::new(stream);
                        let _ = builder.serve_connection(io, service).await;
                    }
                }
            }
        });
    }
}

/// Response body type of every answer.
type Answer = Response<BoxBody<Bytes, io::Error>>;

/// The answer to `request`.
fn respond(state: &State, request: &Request<Incoming>) -> Answer {
    let path = request.uri().path().to_owned();
    let range = request
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned());
    let attempt = {
        let mut hits = lock(&state.hits);
        let count = hits.entry(path.clone()).or_insert(0);
        *count += 1;
        *count as usize - 1
    };
    if let Some(range) = &range {
        lock(&state.ranges).push((path.clone(), range.clone()));
    }
    if request.version() == hyper::Version::HTTP_2 {
        state.http2_requests.fetch_add(1, Ordering::SeqCst);
    }
    let Some(route) = lock(&state.routes).get(&path).cloned() else {
        return plain(StatusCode::NOT_FOUND, "no such file\n");
    };
    let asked = range
        .as_deref()
        .and_then(|v| parse_range(v, route.body.len()))
        .filter(|_| state.honour_range);
    match route.faults.get(attempt) {
        Some(Fault::Unavailable(retry_now)) => {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "busy\n");
            if *retry_now {
                let zero = HeaderValue::from_static("0");
                response.headers_mut().insert(RETRY_AFTER, zero);
            }
            return response;
        }
        Some(Fault::UnavailableUntil(seconds)) => {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "busy\n");
            let at = std::time::SystemTime::now() + std::time::Duration::from_secs(*seconds);
            let date = HeaderValue::from_str(&httpdate::fmt_http_date(at)).expect("an HTTP date");
            response.headers_mut().insert(RETRY_AFTER, date);
            return response;
        }
        Some(fault @ (Fault::DropMidBody | Fault::StallMidBody)) => {
            let (first, last) = asked.unwrap_or((0, route.body.len().saturating_sub(1)));
            let len = (last + 1).saturating_sub(first);
            let half = route.body.slice(first..first + len / 2);
            state.served.fetch_add(half.len() as u64, Ordering::SeqCst);
            let wait = match fault {
                Fault::StallMidBody => Duration::from_secs(60),
                _ => Duration::from_millis(50),
            };
            let body = Truncated::new(half, len, wait);
            let status = if asked.is_some() {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            let mut response = with_length(reply(status, body.boxed()), len);
            if asked.is_some() {
                let value = format!("bytes {first}-{last}/{}", route.body.len());
                if let Ok(value) = HeaderValue::from_str(&value) {
                    response.headers_mut().insert(CONTENT_RANGE, value);
                }
            }
            return response;
        }
        Some(Fault::WrongRange) => {
            if let Some((first, last)) = asked.filter(|(f, l)| f < l) {
                return serve_range(state, &route.body, Some((first + 1, last)));
            }
        }
        Some(Fault::Slow) => {
            let mut response = serve_range(state, &route.body, asked);
            let body = std::mem::replace(
                response.body_mut(),
                Full::default().map_err(|n| match n {}).boxed(),
            );
            *response.body_mut() = Trickle::new(body).boxed();
            return response;
        }
        Some(Fault::Pass | Fault::OtherEtag) | None => {}
    }
    if let Some(location) = &route.redirect {
        let mut response = plain(StatusCode::FOUND, "");
        if let Ok(value) = HeaderValue::from_str(location) {
            response.headers_mut().insert(LOCATION, value);
        }
        return response;
    }
    if let Some(status) = route.status {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return plain(status, "nope\n");
    }
    let mut response = serve_range(state, &route.body, asked);
    let etag = match route.faults.get(attempt) {
        Some(Fault::OtherEtag) => Some("\"other\""),
        _ => route.etag.as_deref(),
    };
    for (name, value) in [
        (CONTENT_DISPOSITION, route.disposition.as_deref()),
        (ETAG, etag),
    ] {
        if let Some(Ok(value)) = value.map(HeaderValue::from_str) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The `(first, last)` bytes of `bytes=FIRST-` or `bytes=FIRST-LAST` in a
/// body of `len` bytes (LAST clamped to the end); `(len, len)` for a FIRST
/// at or past the end (unsatisfiable); `None` if it does not parse.
fn parse_range(value: &str, len: usize) -> Option<(usize, usize)> {
    let (first, last) = value.strip_prefix("bytes=")?.split_once('-')?;
    let first: usize = first.trim().parse().ok()?;
    if first >= len {
        return Some((len, len));
    }
    let last = match last.trim() {
        "" => len - 1,
        last => last.parse::<usize>().ok()?.min(len - 1),
    };
    (first <= last).then_some((first, last))
}

/// A 200 with the whole body, or a 206 of bytes `first..=last`, or a 416.
fn serve_range(state: &State, body: &Bytes, asked: Option<(usize, usize)>) -> Answer {
    let len = body.len();
    let (status, range, data) = match asked {
        None => (StatusCode::OK, None, body.clone()),
        Some((first, last)) if first < len => (
            StatusCode::PARTIAL_CONTENT,
            Some(format!("bytes {first}-{last}/{len}")),
            body.slice(first..=last),
        ),
        Some(_) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            Some(format!("bytes */{len}")),
            Bytes::new(),
        ),
    };
    state.served.fetch_add(data.len() as u64, Ordering::SeqCst);
    let mut response = full(status, data);
    if let Some(value) = range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        response.headers_mut().insert(CONTENT_RANGE, value);
    }
    response
}

/// A response with `status` and `body`.
fn reply(status: StatusCode, body: BoxBody<Bytes, io::Error>) -> Answer {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("accept-ranges", HeaderValue::from_static("bytes"));
    response
}

/// `response` with `Content-Length: len`.
fn with_length(mut response: Answer, len: usize) -> Answer {
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// A complete response with `status` and `data`.
fn full(status: StatusCode, data: Bytes) -> Answer {
    let len = data.len();
    let body = Full::new(data).map_err(|never| match never {}).boxed();
    with_length(reply(status, body), len)
}

/// A short text response.
fn plain(status: StatusCode, text: &'static str) -> Answer {
    full(status, Bytes::from_static(text.as_bytes()))
}

/// A body passed on 32 KiB every 50 ms.
struct Trickle {
    inner: BoxBody<Bytes, io::Error>,
    held: Bytes,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Trickle {
    const CHUNK: usize = 32 * 1024;
    const EVERY: Duration = Duration::from_millis(50);

    fn new(inner: BoxBody<Bytes, io::Error>) -> Trickle {
        Trickle {
            inner,
            held: Bytes::new(),
            pause: Box::pin(tokio::time::sleep(Trickle::EVERY)),
        }
    }
}

impl Body for Trickle {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.held.is_empty() {
            match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => self.held = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return other,
            }
            if self.held.is_empty() {
                return Poll::Ready(None);
            }
        }
        if self.pause.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let deadline = tokio::time::Instant::now() + Trickle::EVERY;
        self.pause.as_mut().reset(deadline);
        let n = self.held.len().min(Trickle::CHUNK);
        let chunk = self.held.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let held = self.held.len() as u64;
        let mut hint = SizeHint::new();
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + held);
        }
        hint.set_lower(inner.lower() + held);
        hint
    }
}

/// A body that yields `data` and then, after `wait` (time for the server to
/// send it, or a stall), fails, so that the connection is closed with the
/// announced `len` bytes not all sent. (Failing at once could drop the
/// unsent headers too: libcurl would then quietly repeat a request made on
/// a reused connection.)
struct Truncated {
    data: Option<Bytes>,
    len: u64,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Truncated {
    fn new(data: Bytes, len: usize, wait: Duration) -> Truncated {
        Truncated {
            data: Some(data),
            len: len as u64,
            pause: Box::pin(tokio::time::sleep(wait)),
        }
    }
}

impl Body for Truncated {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        self.pause.as_mut().poll(cx).map(|()| {
            let fault = io::Error::new(io::ErrorKind::ConnectionAborted, "fault");
            Some(Err(fault))
        })
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}
