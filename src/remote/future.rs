//! [`ResponseFuture`]: a transfer submitted through a [`Remote`], awaited
//! from any executor (or blocked on with [`ResponseFuture::wait`]).

use super::task::{Awaited, Make, MakeOnce, Task, Unmade};
use super::{Remote, Submission, Token};
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes a thread blocked in [`ResponseFuture::wait`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
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
    /// The submission, seen from here: its result slot. (The same
    /// allocation as the token's.)
    task: Arc<Task<Awaited<dyn Make>>>,
    remote: Option<Remote>,
    token: Option<Token>,
}

impl ResponseFuture {
    pub(super) fn submit(remote: &Remote, make: impl FnOnce() -> Request + Send + 'static) -> Self {
        ResponseFuture::submit_made(remote, MakeOnce::new(make))
    }

    /// Submits the request that `make` builds.
    pub(crate) fn submit_made(remote: &Remote, make: impl Make + 'static) -> Self {
        let task = Arc::new(Task::new(Awaited {
            slot: Default::default(),
            make,
        }));
        let submission: Submission = task.clone();
        match remote.start(submission) {
            Ok(token) => ResponseFuture {
                task,
                remote: Some(remote.clone()),
                token: Some(token),
            },
            Err(error) => {
                let _nobody_waits_yet = task.job.slot.fill(Err(error));
                ResponseFuture {
                    task,
                    remote: None,
                    token: None,
                }
            }
        }
    }

    /// A future that is already resolved to `error`.
    pub(crate) fn failed(error: Error) -> Self {
        let task = Arc::new(Task::new(Awaited {
            slot: Default::default(),
            make: Unmade,
        }));
        let _nobody_waits_yet = task.job.slot.fill(Err(error));
        ResponseFuture {
            task,
            remote: None,
            token: None,
        }
    }

    /// Blocks the calling thread until the result is there. Must not be
    /// called on the loop's own thread (it would wait for itself).
    pub fn wait(mut self) -> Result<Response, Error> {
        let mut unpark: Option<Waker> = None;
        let result = loop {
            self.relay();
            let mut state = self.task.job.slot.lock();
            if let Some(result) = state.result.take() {
                state.taken = true;
                break result;
            }
            if state.taken {
                break Err(Error::new(
                    crate::ErrorKind::InvalidState,
                    "ResponseFuture waited for after it completed",
                ));
            }
            let waker =
                unpark.get_or_insert_with(|| Waker::from(Arc::new(Unpark(thread::current()))));
            if !state.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                state.waker = Some(waker.clone());
            }
            drop(state);
            // A wake between the unlock and here leaves the park token set:
            // park returns at once. Spurious returns just loop.
            thread::park();
        };
        self.token = None;
        result
    }

    /// Wakes the futures whose wake-ups the loop left to this one's side.
    fn relay(&self) {
        if let Some(remote) = &self.remote {
            remote.relay.wake_all();
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.relay();
        let mut state = self.task.job.slot.lock();
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
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        self.relay();
        let finished = {
            let mut state = self.task.job.slot.lock();
            // Never to be polled again: the loop must not pick this waker as
            // the one that relays a batch's wake-ups.
            state.waker = None;
            state.taken || state.result.is_some()
        };
        if !finished {
            if let (Some(remote), Some(token)) = (&self.remote, self.token.take()) {
                remote.cancel(&token);
            }
        }
    }
}
