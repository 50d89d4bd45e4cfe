//! [`Poll`]: a `uv_poll_t` watching one socket.

use super::handle::HandleBox;
use super::{check, Loop};
use crate::error::Error;
use libuv_sys2 as uv;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Which readiness a [`Poll`] waits for, or reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PollEvents {
    /// Readable.
    pub readable: bool,
    /// Writable.
    pub writable: bool,
}

impl PollEvents {
    fn to_uv(self) -> libc::c_int {
        let mut bits = 0;
        if self.readable {
            bits |= uv::uv_poll_event_UV_READABLE;
        }
        if self.writable {
            bits |= uv::uv_poll_event_UV_WRITABLE;
        }
        bits as libc::c_int
    }

    fn from_uv(bits: libc::c_int) -> PollEvents {
        let bits = bits as uv::uv_poll_event;
        PollEvents {
            readable: bits & uv::uv_poll_event_UV_READABLE != 0,
            writable: bits & uv::uv_poll_event_UV_WRITABLE != 0,
        }
    }
}

/// What the callback of a [`Poll`] receives: readiness, or libuv's error
/// (`UV_EBADF` after `POLLERR`, in which case libuv has stopped the handle).
pub type PollResult = Result<PollEvents, i32>;

type PollCallback = dyn FnMut(PollResult);
type PollBox = HandleBox<uv::uv_poll_t, PollCallback>;

/// A `uv_poll_t` watching a socket. Dropping it stops and closes the handle
/// at once (so the socket may be closed right after); its memory and closure
/// are freed in libuv's close callback.
pub struct Poll {
    ptr: NonNull<PollBox>,
    _not_send: PhantomData<*mut ()>,
}

impl Poll {
    /// Initialises a poll handle for `socket` on `uv` with `callback`; it is not
    /// started yet.
    ///
    /// # Errors
    /// libuv's error from `uv_poll_init_socket` (`UV_EEXIST` if another poll
    /// handle watches the socket on this loop).
    pub fn new(
        uv: &Loop,
        socket: uv::uv_os_sock_t,
        callback: impl FnMut(PollResult) + 'static,
    ) -> Result<Poll, Error> {
        let ptr = PollBox::new(
            uv::uv_handle_type_UV_POLL,
            uv.inner().clone(),
            Box::new(callback),
        );
        // SAFETY: the box points at a zeroed handle of uv_handle_size(UV_POLL)
        // bytes at a stable address; the loop is valid.
        let rc = unsafe { uv::uv_poll_init_socket(uv.as_raw(), (*ptr.as_ptr()).raw, socket) };
        if let Err(e) = check(rc, "uv_poll_init_socket") {
            // SAFETY: init failed, so libuv never linked the handle: it is freed
            // directly, never passed to uv_close.
            unsafe { PollBox::free_uninitialised(ptr) };
            return Err(e);
        }
        // SAFETY: initialised handle we own; `data` is ours to set.
        unsafe { (*(*ptr.as_ptr()).raw).data = ptr.as_ptr().cast() };
        Ok(Poll {
            ptr,
            _not_send: PhantomData,
        })
    }

    /// Starts (or changes) watching for `events`.
    ///
    /// # Errors
    /// libuv's error from `uv_poll_start`.
    pub fn start(&self, events: PollEvents) -> Result<(), Error> {
        // SAFETY: the handle is initialised and not closing (only Drop closes it).
        let rc = unsafe { uv::uv_poll_start(self.raw(), events.to_uv(), Some(on_poll)) };
        check(rc, "uv_poll_start").map(|_| ())
    }

    /// Stops watching; the handle stays open and can be started again.
    pub fn stop(&self) {
        // SAFETY: as in `start`; uv_poll_stop on an initialised handle cannot fail.
        unsafe { uv::uv_poll_stop(self.raw()) };
    }

    /// Whether the handle, while active, keeps the loop alive (`uv_ref` /
    /// `uv_unref`; handles start referenced).
    pub fn set_ref(&self, referenced: bool) {
        // SAFETY: initialised handle; both calls are idempotent.
        unsafe {
            if referenced {
                uv::uv_ref(self.raw().cast());
            } else {
                uv::uv_unref(self.raw().cast());
            }
        }
    }

    fn raw(&self) -> *mut uv::uv_poll_t {
        // SAFETY: `ptr` is live until the close callback, which runs after Drop.
        unsafe { (*self.ptr.as_ptr()).raw }
    }
}

impl Drop for Poll {
    fn drop(&mut self) {
        // SAFETY: we own the handle and close it exactly once; uv_close on a poll
        // handle stops it synchronously, and the box is freed in on_close.
        unsafe { uv::uv_close(self.raw().cast(), Some(PollBox::on_close)) };
    }
}

unsafe extern "C" fn on_poll(handle: *mut uv::uv_poll_t, status: libc::c_int, events: libc::c_int) {
    // SAFETY: `data` was set to the box in Poll::new, and the box outlives every
    // callback of its handle (it is freed only in the close callback).
    let boxed = unsafe { (*handle).data as *mut PollBox };
    // SAFETY: only the callback field is borrowed mutably; the raw handle (its own
    // allocation) may be closed, and so written by libuv, from inside the callback.
    let callback = unsafe { &mut (*boxed).callback };
    let result = if status < 0 {
        Err(status)
    } else {
        Ok(PollEvents::from_uv(events))
    };
    // SAFETY: the box is still live (see above); shared access to a field.
    let loop_inner = unsafe { &(*boxed).loop_inner };
    crate::panic::trampoline(loop_inner, "a poll callback", (), || callback(result));
}
