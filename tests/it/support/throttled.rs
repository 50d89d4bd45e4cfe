//! `ThrottledFiles`: a loopback HTTP/1.1 file server that sends each body
//! at a fixed rate, honours `Range: bytes=N-`, and logs every request with
//! the range start it asked for and the body bytes it was sent — for the
//! kill -9 test of the downloader, which must never fetch twice what it
//! already has on disk.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, Sleep};

use super::background::{accept_backoff, Background};

/// Bytes per body frame.
const CHUNK: usize = 16 * 1024;

/// One request the server answered.
#[derive(Debug, Clone)]
pub struct Served {
    pub path: String,
    /// The `Range: bytes=N-` start (0 without one).
    pub start: u64,
    pub status: u16,
    /// Body bytes handed to the connection so far.
    pub sent: Arc<AtomicU64>,
}

/// What the connections share.
struct State {
    files: HashMap<String, Bytes>,
    /// Delay between two frames of one body, in nanoseconds.
    frame_delay: AtomicU64,
    log: Mutex<Vec<Served>>,
    /// Bodies not yet dropped.
    active: AtomicUsize,
}

/// The server; stops (dropping every connection) when dropped.
pub struct ThrottledFiles {
    background: Background,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ThrottledFiles {
    /// Serves `files` (path → body), each body at `bytes_per_sec`.
    pub fn start(files: HashMap<String, Bytes>, bytes_per_sec: u64) -> ThrottledFiles {
        let state = Arc::new(State {
            files,
            frame_delay: AtomicU64::new(frame_delay(bytes_per_sec)),
            log: Mutex::default(),
            active: AtomicUsize::new(0),
        });
        let shared = Arc::clone(&state);
        let background = Background::spawn("support-throttled", 2, move |listener| async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    accept_backoff().await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let response = respond(&state, &request);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        ThrottledFiles { background, state }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.background.port())
    }

    /// Sends the bodies of later frames at `bytes_per_sec`.
    pub fn set_rate(&self, bytes_per_sec: u64) {
        let delay = frame_delay(bytes_per_sec);
        self.state.frame_delay.store(delay, Ordering::SeqCst);
    }

    /// Requests logged and not yet taken.
    pub fn logged(&self) -> usize {
        lock(&self.state.log).len()
    }

    /// Takes the requests logged so far.
    pub fn take_log(&self) -> Vec<Served> {
        std::mem::take(&mut *lock(&self.state.log))
    }

    /// Bodies still being sent (or not yet dropped by their connection).
    pub fn active_bodies(&self) -> usize {
        self.state.active.load(Ordering::SeqCst)
    }
}

/// Nanoseconds between frames of [`CHUNK`] bytes at `bytes_per_sec`.
fn frame_delay(bytes_per_sec: u64) -> u64 {
    CHUNK as u64 * 1_000_000_000 / bytes_per_sec.max(1)
}

/// The answer to `request`: the file from the range start (a 206), all of
/// it (200), a 416 for a start at or past its end, or a 404.
fn respond(state: &Arc<State>, request: &Request<Incoming>) -> Response<Throttled> {
    let path = request.uri().path().to_owned();
    let start = request
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok());
    let Some(body) = state.files.get(&path) else {
        return answer(state, &path, 0, StatusCode::NOT_FOUND, Bytes::new());
    };
    let len = body.len() as u64;
    let mut response = match start {
        None => answer(state, &path, 0, StatusCode::OK, body.clone()),
        Some(start) if start < len => {
            let mut response = answer(
                state,
                &path,
                start,
                StatusCode::PARTIAL_CONTENT,
                body.slice(start as usize..),
            );
            let range = format!("bytes {start}-{}/{len}", len - 1);
            response
                .headers_mut()
                .insert(CONTENT_RANGE, HeaderValue::from_str(&range).expect("ASCII"));
            response
        }
        Some(start) => {
            let mut response = answer(
                state,
                &path,
                start,
                StatusCode::RANGE_NOT_SATISFIABLE,
                Bytes::new(),
            );
            let range = format!("bytes */{len}");
            response
                .headers_mut()
                .insert(CONTENT_RANGE, HeaderValue::from_str(&range).expect("ASCII"));
            response
        }
    };
    response
        .headers_mut()
        .insert("accept-ranges", HeaderValue::from_static("bytes"));
    response
}

/// A response with `status` and the throttled `data`, logged.
fn answer(
    state: &Arc<State>,
    path: &str,
    start: u64,
    status: StatusCode,
    data: Bytes,
) -> Response<Throttled> {
    let sent = Arc::new(AtomicU64::new(0));
    lock(&state.log).push(Served {
        path: path.to_owned(),
        start,
        status: status.as_u16(),
        sent: Arc::clone(&sent),
    });
    state.active.fetch_add(1, Ordering::SeqCst);
    let len = data.len();
    let mut response = Response::new(Throttled {
        data,
        pos: 0,
        pause: Box::pin(tokio::time::sleep(Duration::ZERO)),
        sent,
        state: Arc::clone(state),
    });
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// A body sent a frame of [`CHUNK`] bytes at a time, at the server's rate.
pub struct Throttled {
    data: Bytes,
    pos: usize,
    pause: Pin<Box<Sleep>>,
    sent: Arc<AtomicU64>,
    state: Arc<State>,
}

impl Body for Throttled {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.pos >= self.data.len() {
            return Poll::Ready(None);
        }
        if self.pause.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let end = (self.pos + CHUNK).min(self.data.len());
        let frame = self.data.slice(self.pos..end);
        self.pos = end;
        self.sent.fetch_add(frame.len() as u64, Ordering::SeqCst);
        let delay = Duration::from_nanos(self.state.frame_delay.load(Ordering::SeqCst));
        let next = Instant::now() + delay;
        self.pause.as_mut().reset(next);
        Poll::Ready(Some(Ok(Frame::data(frame))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.pos) as u64)
    }
}

impl Drop for Throttled {
    fn drop(&mut self) {
        self.state.active.fetch_sub(1, Ordering::SeqCst);
    }
}
