//! [`ResponseFuture`]: a transfer submitted through a [`Remote`], awaited
//! from any executor (or blocked on with [`ResponseFuture::wait`]).

use super::{Remote, Token};
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct SlotState {
    result: Option<Result<Response, Error>>,
    waker: Option<Waker>,
    taken: bool,
}

/// Where the loop thread leaves the result for the awaiting thread.
#[derive(Default)]
pub(super) struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

impl Slot {
    pub(super) fn fill(&self, result: Result<Response, Error>) {
        let waker = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.result = Some(result);
            state.waker.take()
        };
        self.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The result of a transfer submitted through a [`Remote`]: a
/// `Future<Output = Result<Response, Error>>`, woken through the standard
/// `Waker`, so it works on any executor. Dropping it before it resolved
/// cancels the transfer.
///
/// The transfer starts when the future is created, not when it is first
/// polled — like a spawned task: a request handed to the loop makes progress
/// while the caller does other work, and a `Vec` of futures runs concurrently
/// under any join. To bound concurrency (e.g. with `buffer_unordered`), create
/// the futures lazily: map an iterator of URLs to `async move` blocks that
/// call `submit` inside.
#[must_use = "a dropped ResponseFuture cancels its transfer"]
pub struct ResponseFuture {
    slot: Arc<Slot>,
    remote: Option<Remote>,
    token: Option<Token>,
}

impl ResponseFuture {
    pub(super) fn submit(remote: &Remote, make: impl FnOnce() -> Request + Send + 'static) -> Self {
        let slot = Arc::new(Slot::default());
        let filler = slot.clone();
        match remote.submit_with(make, move |result| filler.fill(result)) {
            Ok(token) => ResponseFuture {
                slot,
                remote: Some(remote.clone()),
                token: Some(token),
            },
            Err(error) => {
                slot.fill(Err(error));
                ResponseFuture {
                    slot,
                    remote: None,
                    token: None,
                }
            }
        }
    }

    /// A future that is already resolved to `error`.
    pub(crate) fn failed(error: Error) -> Self {
        let slot = Arc::new(Slot::default());
        slot.fill(Err(error));
        ResponseFuture {
            slot,
            remote: None,
            token: None,
        }
    }

    /// Blocks the calling thread until the result is there. Must not be
    /// called on the loop's own thread (it would wait for itself).
    pub fn wait(mut self) -> Result<Response, Error> {
        let mut state = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.result.is_none() {
            state = self
                .slot
                .ready
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
        state.taken = true;
        let result = state.result.take().unwrap_or_else(|| Err(Error::closed()));
        drop(state);
        self.token = None;
        result
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(result) = state.result.take() {
            state.taken = true;
            return Poll::Ready(result);
        }
        if state.taken {
            return Poll::Ready(Err(Error::new(
                crate::ErrorKind::InvalidState,
                "ResponseFuture polled after it completed",
            )));
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        let finished = {
            let state = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
            state.taken || state.result.is_some()
        };
        if !finished {
            if let (Some(remote), Some(token)) = (&self.remote, self.token) {
                remote.cancel(token);
            }
        }
    }
}
