//! [`BodyStream`]: a body streamed to another thread, with backpressure.

use super::{Remote, Token};
use crate::error::Error;
use crate::request::{Flow, Request};
use crate::response::Head;
use crate::sync::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Bytes buffered before the transfer is paused, and the level below which a
/// paused transfer resumes.
const HIGH_WATER: usize = 1 << 20;
const LOW_WATER: usize = 256 << 10;

#[derive(Default)]
struct StreamState {
    chunks: VecDeque<Vec<u8>>,
    buffered: usize,
    paused: bool,
    head: Option<Head>,
    end: Option<Result<(), Error>>,
    waker: Option<Waker>,
}

/// The body of a transfer submitted with [`Remote::stream`], read chunk by
/// chunk with [`chunk`](BodyStream::chunk) from any thread or executor. A
/// consumer that stops reading pauses the transfer once about 1 MiB is
/// buffered; reading on resumes it. Dropping the stream cancels the transfer.
pub struct BodyStream {
    state: Arc<Mutex<StreamState>>,
    remote: Remote,
    started: Option<Token>,
    /// The `Stream` implementation yielded its last item.
    #[cfg(feature = "stream")]
    finished: bool,
}

impl BodyStream {
    pub(super) fn submit(remote: &Remote, make: impl FnOnce() -> Request + Send + 'static) -> Self {
        let state: Arc<Mutex<StreamState>> = Arc::default();
        let (on_data, on_head, on_done) = (state.clone(), state.clone(), state.clone());
        let make = move || {
            make()
                .on_head(move |head| {
                    lock(&on_head).head = Some(head.clone());
                    Flow::Continue
                })
                .on_data(move |chunk| {
                    let waker = {
                        let mut s = lock(&on_data);
                        if s.buffered >= HIGH_WATER {
                            s.paused = true;
                            return Flow::Pause; // delivered again after resume
                        }
                        s.buffered += chunk.len();
                        s.chunks.push_back(chunk.to_vec());
                        s.waker.take()
                    };
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                    Flow::Continue
                })
        };
        let done = move |result: Result<crate::Response, Error>| {
            let mut s = lock(&on_done);
            s.end = Some(result.map(|_| ()));
            s.waker.take()
        };
        let started = match remote.submit_job(make, done) {
            Ok(started) => Some(started),
            Err(error) => {
                lock(&state).end = Some(Err(error));
                None
            }
        };
        BodyStream {
            state,
            remote: remote.clone(),
            started,
            #[cfg(feature = "stream")]
            finished: false,
        }
    }

    /// The next chunk of the body; `Ok(None)` at its successful end, the
    /// transfer's error if it failed.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        poll_fn(|cx| self.poll_chunk(cx)).await
    }

    /// [`chunk`](BodyStream::chunk) as a poll function, for hand-written futures.
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Vec<u8>>, Error>> {
        // Wakes the futures whose wake-ups the loop left to this side.
        self.remote.relay.wake_all();
        let mut s = lock(&self.state);
        if let Some(chunk) = s.chunks.pop_front() {
            s.buffered -= chunk.len();
            if s.paused && s.buffered < LOW_WATER {
                s.paused = false;
                drop(s);
                if let Some(token) = &self.started {
                    self.remote.resume(token);
                }
            }
            return Poll::Ready(Ok(Some(chunk)));
        }
        match &s.end {
            Some(Ok(())) => Poll::Ready(Ok(None)),
            Some(Err(e)) => Poll::Ready(Err(e.clone())),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Body bytes received and not yet read with [`chunk`](BodyStream::chunk).
    pub fn buffered(&self) -> usize {
        lock(&self.state).buffered
    }

    /// Status and headers, once they arrived (before the first chunk).
    pub fn head(&self) -> Option<Head> {
        lock(&self.state).head.clone()
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        self.remote.relay.wake_all();
        let finished = {
            let mut s = lock(&self.state);
            // Never polled again: not a waker to relay a batch's wake-ups.
            s.waker = None;
            s.end.is_some()
        };
        if let (false, Some(token)) = (finished, self.started.take()) {
            self.remote.cancel(&token);
        }
    }
}

/// With the `stream` feature: the body as a `futures_core::Stream` of chunks,
/// ending after the last chunk, or with the transfer's error as the last item.
#[cfg(feature = "stream")]
impl futures_core::Stream for BodyStream {
    type Item = Result<Vec<u8>, Error>;

    fn poll_next(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        this.poll_chunk(cx).map(|next| match next {
            Ok(Some(chunk)) => Some(Ok(chunk)),
            Ok(None) => {
                this.finished = true;
                None
            }
            Err(error) => {
                this.finished = true;
                Some(Err(error))
            }
        })
    }
}

fn lock(state: &Mutex<StreamState>) -> MutexGuard<'_, StreamState> {
    state.lock()
}
