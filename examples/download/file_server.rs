//! `FileServer`: a loopback HTTP server (HTTP/1.1 and h2c, hyper on a tokio
//! runtime in a background thread) that serves a fixed table of files, with
//! `Range: bytes=N-`, redirects, `Content-Disposition` and scripted faults.
//!
//! `--demo` serves its generated files with it; the downloader's end-to-end
//! tests (tests/it/download.rs) include this file too and script faults.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, LOCATION};
use hyper::header::{RANGE, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::oneshot;

/// What the server does to one request for a route instead of answering it,
/// by attempt: the first request for the path gets `faults[0]`, and so on.
// The demo serves no faults; the tests do.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Sends the headers and half the body, then closes the connection.
    DropMidBody,
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
    routes: HashMap<String, Route>,
    /// Whether `Range: bytes=N-` gets a 206 (else the full body, 200).
    honour_range: bool,
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
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let state = Arc::new(State {
            routes,
            honour_range,
            hits: Mutex::default(),
            ranges: Mutex::default(),
        });
        let (stop, stopped) = oneshot::channel();
        let shared = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name("file-server".to_owned())
            .spawn(move || runtime.block_on(serve(listener, shared, stopped)))?;
        Ok(FileServer {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = respond(&state, &request);
                async move { Ok::<_, Infallible>(response) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            // A client that goes away mid-response is not the server's problem.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
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
    let Some(route) = state.routes.get(&path) else {
        return plain(StatusCode::NOT_FOUND, "no such file\n");
    };
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
        Some(Fault::DropMidBody) => {
            let half = route.body.slice(..route.body.len() / 2);
            let body = Truncated::new(half, route.body.len());
            return with_length(reply(StatusCode::OK, body.boxed()), route.body.len());
        }
        None => {}
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
    let start = range
        .as_deref()
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|_| state.honour_range);
    let mut response = serve_range(&route.body, start);
    if let Some(value) = route.disposition.as_deref() {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.headers_mut().insert(CONTENT_DISPOSITION, value);
        }
    }
    response
}

/// A 200 with the whole body, or a 206 from byte `start`, or a 416.
fn serve_range(body: &Bytes, start: Option<usize>) -> Answer {
    let len = body.len();
    let (status, range, data) = match start {
        None => (StatusCode::OK, None, body.clone()),
        Some(start) if start < len => (
            StatusCode::PARTIAL_CONTENT,
            Some(format!("bytes {start}-{}/{len}", len - 1)),
            body.slice(start..),
        ),
        Some(_) => (
            StatusCode::RANGE_NOT_SATISFIABLE,
            Some(format!("bytes */{len}")),
            Bytes::new(),
        ),
    };
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

/// A body that yields `data` and then, once the server has had time to send
/// it, fails, so that the connection is closed with the announced `len`
/// bytes not all sent. (Failing at once could drop the unsent headers too:
/// libcurl would then quietly repeat a request made on a reused connection.)
struct Truncated {
    data: Option<Bytes>,
    len: u64,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl Truncated {
    fn new(data: Bytes, len: usize) -> Truncated {
        Truncated {
            data: Some(data),
            len: len as u64,
            pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
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
