//! [`Task`]: one submission — its [`Ticket`], how to build its request, and
//! where its result goes — in one allocation shared by the submitting side
//! and the loop thread.
//!
//! The submitting thread allocates it, and normally frees it too: the loop
//! thread lets go of it when the transfer completes, before the awaiting
//! side takes the result. (A block allocated on one thread and freed on
//! another misses glibc's per-thread caches twice.)

use super::ticket::Ticket;
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;
use crate::sync::{Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Waker;

/// A submission; `J` says how to build the request and hand over the result.
pub(crate) struct Task<J: ?Sized> {
    pub ticket: Ticket,
    pub job: J,
}

impl<J> Task<J> {
    pub fn new(job: J) -> Task<J> {
        Task {
            ticket: Ticket::default(),
            job,
        }
    }
}

/// What the loop thread does with a submission.
pub(crate) trait Job: Send + Sync {
    /// Builds the request; `None` if called again.
    fn make(&self) -> Option<Request>;
    /// Hands over the result (the first call only) and returns the waker of
    /// whoever awaits it, for the loop to wake.
    fn done(&self, result: Result<Response, Error>) -> Option<Waker>;
}

/// The request builder, taken once (on the loop thread).
pub(crate) trait Make: Send + Sync {
    fn make(&self) -> Option<Request>;
    /// The transfer's result was handed over (on the loop thread).
    fn finished(&self) {}
}

/// A closure that builds a request, called at most once.
pub(crate) struct MakeOnce<M>(Mutex<Option<M>>);

impl<M> MakeOnce<M> {
    pub fn new(make: M) -> MakeOnce<M> {
        MakeOnce(Mutex::new(Some(make)))
    }
}

impl<M: FnOnce() -> Request + Send> Make for MakeOnce<M> {
    fn make(&self) -> Option<Request> {
        let make = self.0.lock().take();
        make.map(|make| make())
    }
}

/// A [`MakeOnce`] that counts its transfer in a loop's `load` (a
/// [`Client`](crate::Client)'s) from submission until the result is handed
/// over, or the submission is dropped unfinished. (Counted here rather than
/// by a value the request keeps alive: that costs the transfer three
/// allocations.)
pub(crate) struct Counted<M> {
    make: MakeOnce<M>,
    load: Arc<AtomicUsize>,
    counting: AtomicBool,
}

impl<M> Counted<M> {
    /// Adds the transfer to `load`.
    pub fn new(make: M, load: Arc<AtomicUsize>) -> Counted<M> {
        load.fetch_add(1, Ordering::Relaxed);
        Counted {
            make: MakeOnce::new(make),
            load,
            counting: AtomicBool::new(true),
        }
    }
}

impl<M: FnOnce() -> Request + Send> Make for Counted<M> {
    fn make(&self) -> Option<Request> {
        self.make.make()
    }

    fn finished(&self) {
        if self.counting.swap(false, Ordering::Relaxed) {
            self.load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<M> Drop for Counted<M> {
    fn drop(&mut self) {
        if *self.counting.get_mut() {
            self.load.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A request nobody builds (a future that failed before it was submitted).
pub(crate) struct Unmade;

impl Make for Unmade {
    fn make(&self) -> Option<Request> {
        None
    }
}

/// A submission whose result a callback receives (`submit_with`, streams).
pub(crate) struct Callback<M, D> {
    make: MakeOnce<M>,
    done: Mutex<Option<D>>,
}

impl<M, D> Callback<M, D> {
    pub fn new(make: M, done: D) -> Callback<M, D> {
        Callback {
            make: MakeOnce::new(make),
            done: Mutex::new(Some(done)),
        }
    }
}

impl<M, D> Job for Callback<M, D>
where
    M: FnOnce() -> Request + Send,
    D: FnOnce(Result<Response, Error>) -> Option<Waker> + Send,
{
    fn make(&self) -> Option<Request> {
        self.make.make()
    }

    fn done(&self, result: Result<Response, Error>) -> Option<Waker> {
        let done = self.done.lock().take();
        done.and_then(|done| done(result))
    }
}

/// A submission awaited as a future: the result waits in the slot.
pub(crate) struct Awaited<M: ?Sized> {
    pub slot: Slot,
    pub make: M,
}

impl<M: Make> Job for Awaited<M> {
    fn make(&self) -> Option<Request> {
        self.make.make()
    }

    fn done(&self, result: Result<Response, Error>) -> Option<Waker> {
        let waker = self.slot.fill(result);
        self.make.finished();
        waker
    }
}

#[derive(Default)]
pub(crate) struct SlotState {
    pub result: Option<Result<Response, Error>>,
    pub waker: Option<Waker>,
    /// A result was stored (a later one is ignored).
    pub filled: bool,
    /// The result was taken by the awaiting side.
    pub taken: bool,
}

/// Where the loop thread leaves the result for the awaiting thread.
///
/// One mutex and no condition variable: a blocked `ResponseFuture::wait`
/// registers a waker that unparks its thread, so filling the slot makes a
/// system call only when somebody is actually asleep on it (std's futex
/// `Condvar::notify_all` makes one every time).
#[derive(Default)]
pub(crate) struct Slot {
    state: Mutex<SlotState>,
}

impl Slot {
    pub fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock()
    }

    /// Stores the result (the first one only) and hands back the waker to
    /// wake (the caller may wake it later, e.g. once per loop iteration for
    /// a batch of results).
    #[must_use = "the waker must be woken"]
    pub fn fill(&self, result: Result<Response, Error>) -> Option<Waker> {
        let mut state = self.lock();
        if state.filled {
            return None;
        }
        state.filled = true;
        state.result = Some(result);
        state.waker.take()
    }
}
