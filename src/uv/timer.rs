//! [`Timer`]: a one-shot `uv_timer_t`.

use super::handle::HandleBox;
use super::{check, Loop};
use crate::error::Error;
use libuv_sys2 as uv;
use std::marker::PhantomData;
use std::ptr::NonNull;

type TimerCallback = dyn FnMut();
type TimerBox = HandleBox<uv::uv_timer_t, TimerCallback>;

/// A `uv_timer_t` used as a one-shot timer. Dropping it closes the handle; its
/// memory and closure are freed in libuv's close callback.
pub struct Timer {
    ptr: NonNull<TimerBox>,
    _not_send: PhantomData<*mut ()>,
}

impl Timer {
    /// Initialises a timer on `uv` that calls `callback` when it expires.
    ///
    /// # Errors
    /// libuv's error from `uv_timer_init`.
    pub fn new(uv: &Loop, callback: impl FnMut() + 'static) -> Result<Timer, Error> {
        let ptr = TimerBox::new(
            uv::uv_handle_type_UV_TIMER,
            uv.inner().clone(),
            Box::new(callback),
        );
        // SAFETY: zeroed handle of uv_handle_size(UV_TIMER) bytes at a stable address; valid loop.
        let rc = unsafe { uv::uv_timer_init(uv.as_raw(), (*ptr.as_ptr()).raw) };
        if let Err(e) = check(rc, "uv_timer_init") {
            // SAFETY: init failed; libuv holds no reference.
            unsafe { TimerBox::free_uninitialised(ptr) };
            return Err(e);
        }
        // SAFETY: initialised handle we own.
        unsafe { (*(*ptr.as_ptr()).raw).data = ptr.as_ptr().cast() };
        Ok(Timer {
            ptr,
            _not_send: PhantomData,
        })
    }

    /// (Re)starts the timer to fire once `timeout_ms` milliseconds from now
    /// (0: on the next loop iteration).
    ///
    /// "Now" is the current time, not libuv's cached loop time (which stands
    /// still while callbacks run): the loop's clock is updated first
    /// (`uv_update_time`), so a timer started at the end of a long callback
    /// still waits the whole `timeout_ms`.
    pub fn start(&self, timeout_ms: u64) {
        // (A timer due now needs no clock reading.)
        if timeout_ms > 0 {
            // SAFETY: the box keeps the loop alive; we are on the loop's thread.
            unsafe {
                let raw_loop = (*self.ptr.as_ptr()).loop_inner.raw();
                uv::uv_update_time(raw_loop);
            }
        }
        self.start_from_loop_time(timeout_ms);
    }

    /// [`Timer::start`] counting from libuv's cached loop time, which may be
    /// behind by the time callbacks have run in this loop turn: the timer may
    /// fire that much early. For libcurl's long timeouts, which it
    /// re-announces when fired early, where reading the clock would cost more
    /// than the difference.
    pub(crate) fn start_from_loop_time(&self, timeout_ms: u64) {
        // SAFETY: initialised, not closing. uv_timer_start only fails for a
        // closing handle or a null callback, neither possible here.
        unsafe { uv::uv_timer_start(self.raw(), Some(on_timer), timeout_ms, 0) };
    }

    /// Stops the timer if it is pending.
    pub fn stop(&self) {
        // SAFETY: initialised, not closing.
        unsafe { uv::uv_timer_stop(self.raw()) };
    }

    /// Whether the timer is pending.
    pub fn is_active(&self) -> bool {
        // SAFETY: initialised handle.
        unsafe { uv::uv_is_active(self.raw().cast()) != 0 }
    }

    /// Stops the timer from keeping the loop alive.
    pub fn unref(&self) {
        // SAFETY: initialised handle.
        unsafe { uv::uv_unref(self.raw().cast()) };
    }

    fn raw(&self) -> *mut uv::uv_timer_t {
        // SAFETY: the box lives until the close callback, after Drop.
        unsafe { (*self.ptr.as_ptr()).raw }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: closed exactly once, here; freed in on_close.
        unsafe { uv::uv_close(self.raw().cast(), Some(TimerBox::on_close)) };
    }
}

unsafe extern "C" fn on_timer(handle: *mut uv::uv_timer_t) {
    // SAFETY: `data` points at the live box (freed only in the close callback).
    let boxed = unsafe { (*handle).data as *mut TimerBox };
    // SAFETY: only the callback field is borrowed mutably; the raw handle (its own
    // allocation) may be closed, and so written by libuv, from inside the callback.
    let callback = unsafe { &mut (*boxed).callback };
    // SAFETY: the box is still live (see above); shared access to a field.
    let loop_inner = unsafe { &(*boxed).loop_inner };
    crate::panic::trampoline(loop_inner, "a timer callback", (), callback);
}
