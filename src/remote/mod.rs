//! [`Remote`]: hands work to a [`Multi`](crate::Multi) from any thread.
//!
//! Commands go into a mailbox and a `uv_async_t` wakes the loop, which runs
//! them in order. The async handle is unref'd, so an idle `Multi` does not keep
//! its loop alive (a background [`Client`](crate::Client) keeps it referenced).
//! When the `Multi` closes, the mailbox closes with it: queued and later
//! commands fail with [`ErrorKind::Closed`](crate::ErrorKind::Closed).
//!
//! Results come back in batches, one per loop iteration: the loop wakes one
//! awaiting future and leaves the batch's other wake-ups for it to pass on
//! from the awaiting thread ([`relay`]). A submission travels as one
//! allocation ([`task`]), made and normally freed by the submitting thread.

#[cfg(all(test, not(uvcurl_loom)))]
mod counting_waker;
mod endpoint;
mod future;
mod mailbox;
mod recycle;
mod relay;
mod stream;
mod task;
mod ticket;

pub use future::ResponseFuture;
pub use stream::BodyStream;

pub(crate) use recycle::Recycler;
pub(crate) use task::Counted;

use crate::error::Error;
use crate::multi::driver::Driver;
use crate::multi::Multi;
use crate::request::Request;
use crate::response::Response;
use crate::uv::AsyncSender;
use endpoint::Endpoint;
use mailbox::Mailbox;
use relay::Relay;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use task::{Callback, Job, Task};

/// A submission as the loop thread sees it: it builds its request there (a
/// `Request` may hold non-`Send` callbacks), then receives the result.
type Submission = Arc<Task<dyn Job>>;

enum Command {
    Start(Submission),
    Cancel(Submission),
    Resume(Submission),
    /// Crate-internal work for the loop thread (the C ABI's submissions).
    Run(Box<dyn FnOnce() + Send>),
    Close,
}

/// A command the closed mailbox refused; dropping it drops its contents.
pub(crate) struct Refused(#[allow(dead_code)] Command);

/// Names a transfer submitted through a [`Remote`], for
/// [`Remote::cancel`]. Clones name the same transfer; tokens compare equal
/// only to their own clones.
#[derive(Clone)]
pub struct Token(Submission);

impl Token {
    fn address(&self) -> *const () {
        Arc::as_ptr(&self.0).cast()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Token").field(&self.address()).finish()
    }
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        self.address() == other.address()
    }
}

impl Eq for Token {}

impl std::hash::Hash for Token {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.address().hash(state);
    }
}

/// A `Send + Sync + Clone` handle to a [`Multi`](crate::Multi): submit,
/// cancel and close from any thread.
///
/// ```no_run
/// let uv = uvcurl::Loop::new()?;
/// let multi = uvcurl::Multi::new(&uv)?;
/// let remote = multi.remote()?;
/// let worker = std::thread::spawn(move || {
///     let response = remote.get("http://127.0.0.1:8080/").wait();
///     println!("{:?}", response.map(|r| r.status()));
/// });
/// # drop(worker);
/// # Ok::<(), uvcurl::Error>(())
/// ```
#[derive(Clone)]
pub struct Remote {
    mailbox: Arc<Mailbox>,
    sender: AsyncSender,
    /// Wakers the loop left for the awaiting side: every poll and drop of
    /// a future or stream of this `Remote` wakes them.
    relay: Arc<Relay>,
}

impl Remote {
    /// Submits the request that `make` builds (on the loop thread); `done`
    /// runs there, exactly once, with the result — `Closed` if the `Multi`
    /// closed first.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) when the `Multi` is
    /// already closed (then `done` is not called).
    pub fn submit_with(
        &self,
        make: impl FnOnce() -> Request + Send + 'static,
        done: impl FnOnce(Result<Response, Error>) + Send + 'static,
    ) -> Result<Token, Error> {
        let done = move |result| {
            done(result);
            None
        };
        self.submit_job(make, done)
    }

    fn submit_job(
        &self,
        make: impl FnOnce() -> Request + Send + 'static,
        done: impl FnOnce(Result<Response, Error>) -> Option<Waker> + Send + 'static,
    ) -> Result<Token, Error> {
        self.start(Arc::new(Task::new(Callback::new(make, done))))
    }

    /// Posts the start of `submission`; its token, or `Closed`.
    fn start(&self, submission: Submission) -> Result<Token, Error> {
        match self.post(Command::Start(submission.clone())) {
            Ok(()) => Ok(Token(submission)),
            Err(_) => Err(Error::closed()),
        }
    }

    /// Submits the request that `make` builds; the future resolves to its
    /// result. Dropping the future cancels the transfer.
    pub fn submit(&self, make: impl FnOnce() -> Request + Send + 'static) -> ResponseFuture {
        ResponseFuture::submit(self, make)
    }

    /// `GET url`, as a future.
    pub fn get(&self, url: impl Into<String>) -> ResponseFuture {
        let url = url.into();
        self.submit(move || Request::get(url))
    }

    /// Submits the request and streams its body: see [`BodyStream`].
    pub fn stream(&self, make: impl FnOnce() -> Request + Send + 'static) -> BodyStream {
        BodyStream::submit(self, make)
    }

    /// Cancels a submitted transfer (its result is `Cancelled`, unless it had
    /// already completed). Returns false if the `Multi` is closed.
    pub fn cancel(&self, token: &Token) -> bool {
        self.post(Command::Cancel(token.0.clone())).is_ok()
    }

    /// Closes the `Multi` (as [`Multi::close`](crate::Multi::close)): every
    /// transfer completes as cancelled. Returns false if already closed.
    pub fn close(&self) -> bool {
        self.post(Command::Close).is_ok()
    }

    /// Whether the `Multi` is closed (commands are refused).
    pub fn is_closed(&self) -> bool {
        self.mailbox.is_closed()
    }

    /// Runs `job` on the loop thread. Refused once the `Multi` is closed; a
    /// job still queued at the close is dropped unrun (on the loop thread).
    pub(crate) fn run_on_loop(&self, job: impl FnOnce() + Send + 'static) -> Result<(), Refused> {
        self.post(Command::Run(Box::new(job))).map_err(Refused)
    }

    fn resume(&self, token: &Token) {
        let _ = self.post(Command::Resume(token.0.clone()));
    }

    /// Queues a command and, if the mailbox was empty, wakes the loop (one
    /// `uv_async_send` per batch, no lock); gives the command back if closed.
    /// Why no command is stranded: see the `mailbox` module.
    fn post(&self, command: Command) -> Result<(), Command> {
        if self.mailbox.push(command)? {
            self.sender.send();
        }
        Ok(())
    }
}

impl Multi {
    /// A `Send + Sync + Clone` handle for other threads: submit (with a
    /// callback or as a `Future`), cancel and close. Commands reach the loop
    /// through a `uv_async_t` that does not keep the loop alive.
    ///
    /// # Errors
    /// [`ErrorKind::Closed`](crate::ErrorKind::Closed) on a closed `Multi`;
    /// libuv's error if the async handle cannot be created.
    pub fn remote(&self) -> Result<crate::Remote, Error> {
        remote(self.driver(), false)
    }

    /// Like [`remote`](Multi::remote), but the async handle keeps the loop
    /// alive until the `Multi` closes: for a loop on a thread of its own.
    pub(crate) fn remote_keeping_loop_alive(&self) -> Result<crate::Remote, Error> {
        remote(self.driver(), true)
    }
}

/// The remote handle of `driver`, opening its mailbox on first use.
fn remote(driver: &Rc<Driver>, keep_alive: bool) -> Result<Remote, Error> {
    driver.attachment(|| Endpoint::open(driver, keep_alive), Endpoint::remote)
}

#[cfg(test)]
mod tests {
    use crate::{Loop, Multi, Request};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    /// A `submit_with` completion that panics is resumed from `Loop::run`,
    /// as a `Multi::start` completion is (here on the path where the
    /// request is refused at start, which needs no server).
    #[test]
    fn a_panicking_remote_completion_is_resumed_from_loop_run() {
        let uv = Loop::new().unwrap();
        let multi = Multi::new(&uv).unwrap();
        let remote = multi.remote_keeping_loop_alive().unwrap();
        remote
            .submit_with(
                || Request::get("no-scheme-here"),
                |result| {
                    assert!(result.is_err());
                    panic!("boom in a remote completion")
                },
            )
            .unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| uv.run_once()));
        let payload = caught.expect_err("the completion panic is resumed by Loop::run_once");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"boom in a remote completion")
        );
        drop(multi);
        uv.run().unwrap();
        uv.close().unwrap();
    }
}
