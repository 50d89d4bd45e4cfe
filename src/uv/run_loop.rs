//! [`Loop`]: an owned or borrowed `uv_loop_t`.

use super::check;
use crate::error::{Error, ErrorKind};
use libuv_sys2 as uv;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic;
use std::rc::Rc;

/// A libuv event loop: either created and owned by uvcurl ([`Loop::new`]) or
/// borrowed from a host that runs it ([`Loop::from_raw`]).
///
/// Cloning is cheap and yields another reference to the same loop. Every
/// `Multi` and handle keeps the loop's memory alive, so it cannot dangle.
///
/// ```
/// let uv = uvcurl::Loop::new().unwrap();
/// uv.run().unwrap();          // nothing to do: returns at once
/// uv.close().unwrap();        // no handles left open
/// ```
///
/// A loop belongs to its thread:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// send(uvcurl::Loop::new().unwrap());
/// ```
#[derive(Clone)]
pub struct Loop {
    inner: Rc<LoopInner>,
}

/// The shared part of a [`Loop`].
pub(crate) struct LoopInner {
    raw: *mut uv::uv_loop_t,
    owned: bool,
    closed: Cell<bool>,
    running: Cell<bool>,
    /// Panics caught in callbacks that had no transfer to fail; re-raised by `run`.
    panics: RefCell<Vec<Box<dyn Any + Send>>>,
}

impl Loop {
    /// Creates and initialises a new loop owned by this value.
    ///
    /// # Errors
    /// libuv's error if `uv_loop_init` fails.
    pub fn new() -> Result<Loop, Error> {
        // The size comes from the running libuv (uv_loop_size), not from the
        // headers uvcurl was compiled against.
        // SAFETY: uv_loop_size has no preconditions.
        let size = unsafe { uv::uv_loop_size() };
        // SAFETY: plain zeroed allocation, which uv_loop_init expects to fill;
        // malloc's alignment suits any C struct.
        let raw = unsafe { libc::calloc(1, size as libc::size_t) } as *mut uv::uv_loop_t;
        if raw.is_null() {
            return Err(Error::from_uv(
                uv::uv_errno_t_UV_ENOMEM,
                "calloc(uv_loop_size())",
            ));
        }
        // SAFETY: `raw` points to a zeroed, writable uv_loop_t of libuv's size.
        let rc = unsafe { uv::uv_loop_init(raw) };
        if let Err(e) = check(rc, "uv_loop_init") {
            // SAFETY: init failed, libuv holds nothing; we own the allocation.
            unsafe { libc::free(raw.cast()) };
            return Err(e);
        }
        Ok(Loop::wrap(raw, true))
    }

    /// Borrows a loop that the host owns and runs. uvcurl never closes or frees it.
    ///
    /// # Safety
    /// `raw` must point to an initialised `uv_loop_t` that stays valid (not
    /// closed, not freed) until every uvcurl object using it has been dropped and
    /// the loop has run once more so their close callbacks could run. It must only
    /// be used from the thread that runs it.
    pub unsafe fn from_raw(raw: *mut uv::uv_loop_t) -> Loop {
        Loop::wrap(raw, false)
    }

    fn wrap(raw: *mut uv::uv_loop_t, owned: bool) -> Loop {
        Loop {
            inner: Rc::new(LoopInner {
                raw,
                owned,
                closed: Cell::new(false),
                running: Cell::new(false),
                panics: RefCell::new(Vec::new()),
            }),
        }
    }

    /// The raw loop, for use with other libuv code on the same thread.
    pub fn as_raw(&self) -> *mut uv::uv_loop_t {
        self.inner.raw
    }

    pub(crate) fn inner(&self) -> &Rc<LoopInner> {
        &self.inner
    }

    /// Runs the loop until nothing keeps it alive (`UV_RUN_DEFAULT`).
    ///
    /// If a callback panicked where no transfer could take the failure (a
    /// completion callback, say), the loop still finishes and the first such
    /// panic is then resumed here.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] when called from inside the loop's own
    /// callbacks, [`ErrorKind::Closed`] after [`Loop::close`].
    pub fn run(&self) -> Result<(), Error> {
        self.run_mode(uv::uv_run_mode_UV_RUN_DEFAULT).map(|_| ())
    }

    /// Runs one iteration, blocking for I/O if there is nothing ready
    /// (`UV_RUN_ONCE`). Returns whether the loop still has work.
    ///
    /// # Errors
    /// As for [`Loop::run`].
    pub fn run_once(&self) -> Result<bool, Error> {
        self.run_mode(uv::uv_run_mode_UV_RUN_ONCE)
    }

    /// Runs one iteration without blocking (`UV_RUN_NOWAIT`). Returns whether
    /// the loop still has work.
    ///
    /// # Errors
    /// As for [`Loop::run`].
    pub fn run_nowait(&self) -> Result<bool, Error> {
        self.run_mode(uv::uv_run_mode_UV_RUN_NOWAIT)
    }

    fn run_mode(&self, mode: uv::uv_run_mode) -> Result<bool, Error> {
        if self.inner.closed.get() {
            return Err(Error::new(ErrorKind::Closed, "the loop is closed"));
        }
        if self.inner.running.replace(true) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "the loop is already running (run called from one of its callbacks)",
            ));
        }
        // SAFETY: the loop is initialised and not closed; we are on its thread
        // (Loop is !Send) and not inside uv_run (checked above).
        let more = unsafe { uv::uv_run(self.inner.raw, mode) } != 0;
        self.inner.running.set(false);
        if let Some(payload) = self.inner.take_panic() {
            panic::resume_unwind(payload);
        }
        Ok(more)
    }

    /// Whether `run`, `run_once` or `run_nowait` is executing (so the caller
    /// is inside one of the loop's callbacks).
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Whether the loop has active, referenced handles or requests.
    pub fn is_alive(&self) -> bool {
        // SAFETY: the loop pointer is valid for as long as `inner` lives.
        !self.inner.closed.get() && unsafe { uv::uv_loop_alive(self.inner.raw) } != 0
    }

    /// How many handles the loop still knows about, closing ones included.
    pub fn handle_count(&self) -> usize {
        self.inner.handle_count()
    }

    /// Closes an owned loop with `uv_loop_close`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidState`] naming the number of handles still open if
    /// any are (drop them and [`run`](Loop::run) the loop once more first); on a
    /// borrowed loop, or a second time, [`ErrorKind::InvalidState`] too.
    pub fn close(&self) -> Result<(), Error> {
        if !self.inner.owned {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "a borrowed loop is closed by its owner, not by uvcurl",
            ));
        }
        if self.inner.closed.get() {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "the loop is already closed",
            ));
        }
        if self.inner.running.get() {
            return Err(Error::new(ErrorKind::InvalidState, "the loop is running"));
        }
        // SAFETY: owned, initialised, not running, not yet closed.
        let rc = unsafe { uv::uv_loop_close(self.inner.raw) };
        if rc == uv::uv_errno_t_UV_EBUSY {
            return Err(Error::new(
                ErrorKind::InvalidState,
                format!(
                    "uv_loop_close: {} handle(s) still open",
                    self.inner.handle_count()
                ),
            ));
        }
        check(rc, "uv_loop_close")?;
        self.inner.closed.set(true);
        Ok(())
    }
}

impl LoopInner {
    /// The raw loop, valid while this value lives.
    pub(crate) fn raw(&self) -> *mut uv::uv_loop_t {
        self.raw
    }

    /// Keeps a caught panic for `Loop::run` to resume, and logs it now.
    pub(crate) fn stash_panic(&self, payload: Box<dyn Any + Send>, place: &str) {
        log::error!(
            "uvcurl: panic in {place}: {} (resumed when Loop::run returns)",
            crate::panic::message(payload.as_ref())
        );
        self.panics.borrow_mut().push(payload);
    }

    fn take_panic(&self) -> Option<Box<dyn Any + Send>> {
        let mut panics = self.panics.borrow_mut();
        if panics.is_empty() {
            None
        } else {
            Some(panics.remove(0))
        }
    }

    fn handle_count(&self) -> usize {
        unsafe extern "C" fn count(_h: *mut uv::uv_handle_t, arg: *mut libc::c_void) {
            // SAFETY: `arg` is the &mut usize passed to uv_walk below.
            unsafe { *(arg as *mut usize) += 1 };
        }
        if self.closed.get() {
            return 0;
        }
        let mut n: usize = 0;
        // SAFETY: valid loop; the callback only increments the counter.
        unsafe {
            uv::uv_walk(
                self.raw,
                Some(count),
                &mut n as *mut usize as *mut libc::c_void,
            )
        };
        n
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let rc = if self.closed.get() {
            0
        } else {
            // SAFETY: owned and not closed; nothing else references the loop any
            // more (every handle box holds an Rc to us).
            unsafe { uv::uv_loop_close(self.raw) }
        };
        if rc == 0 {
            // SAFETY: closed; allocated with calloc in Loop::new.
            unsafe { libc::free(self.raw.cast()) };
        } else {
            // Handles created by other code are still registered: freeing the
            // memory would leave them dangling, so it is leaked on purpose.
            log::warn!("uvcurl: Loop dropped with handles still open; leaking it");
        }
    }
}
