//! [`Hook`]: a `uv_prepare_t` or `uv_check_t`, whose callback runs once per
//! loop iteration, just before (prepare) or just after (check) the loop polls
//! for I/O.

use super::handle::HandleBox;
use super::{check, Loop};
use crate::error::Error;
use libuv_sys2 as uv;
use std::marker::PhantomData;
use std::ptr::NonNull;

type HookCallback = dyn FnMut();
type HookBox = HandleBox<uv::uv_handle_t, HookCallback>;

/// When in the loop iteration a [`Hook`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Right before the loop polls for I/O (`uv_prepare_t`).
    BeforePoll,
    /// Right after the I/O callbacks of that poll (`uv_check_t`).
    AfterPoll,
}

/// A started, unreferenced prepare or check handle: it runs its callback on
/// every loop iteration but never keeps the loop alive. Dropping it closes
/// the handle; its memory and closure are freed in libuv's close callback.
pub struct Hook {
    ptr: NonNull<HookBox>,
    _not_send: PhantomData<*mut ()>,
}

impl Hook {
    /// Initialises and starts the hook on `uv`.
    ///
    /// # Errors
    /// libuv's error from `uv_prepare_init` / `uv_check_init`.
    pub fn start(uv: &Loop, phase: Phase, callback: impl FnMut() + 'static) -> Result<Hook, Error> {
        let kind = match phase {
            Phase::BeforePoll => uv::uv_handle_type_UV_PREPARE,
            Phase::AfterPoll => uv::uv_handle_type_UV_CHECK,
        };
        let ptr = HookBox::new(kind, uv.inner().clone(), Box::new(callback));
        // SAFETY: zeroed handle of uv_handle_size(kind) bytes at a stable
        // address, of the type the init function expects; valid loop.
        let rc = unsafe {
            let raw = (*ptr.as_ptr()).raw;
            match phase {
                Phase::BeforePoll => uv::uv_prepare_init(uv.as_raw(), raw.cast()),
                Phase::AfterPoll => uv::uv_check_init(uv.as_raw(), raw.cast()),
            }
        };
        if let Err(e) = check(rc, "uv_prepare_init/uv_check_init") {
            // SAFETY: init failed; libuv holds no reference.
            unsafe { HookBox::free_uninitialised(ptr) };
            return Err(e);
        }
        // SAFETY: initialised handle we own; `data` is its first field.
        let raw = unsafe {
            let raw = (*ptr.as_ptr()).raw;
            (*raw).data = ptr.as_ptr().cast();
            raw
        };
        let hook = Hook {
            ptr,
            _not_send: PhantomData,
        };
        // SAFETY: initialised, open handle of this type; the start functions
        // only fail for a null callback.
        unsafe {
            match phase {
                Phase::BeforePoll => uv::uv_prepare_start(raw.cast(), Some(on_prepare)),
                Phase::AfterPoll => uv::uv_check_start(raw.cast(), Some(on_check)),
            };
            uv::uv_unref(raw);
        }
        Ok(hook)
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        // SAFETY: the box lives until the close callback; closed exactly once,
        // here (closing stops the handle); freed in on_close.
        unsafe { uv::uv_close((*self.ptr.as_ptr()).raw, Some(HookBox::on_close)) };
    }
}

/// Runs the hook's callback; `handle` is its raw handle.
///
/// # Safety
/// `handle` is an open hook handle whose `data` points at its live box.
unsafe fn run(handle: *mut uv::uv_handle_t) {
    // SAFETY: per the contract, `data` points at the live box.
    let boxed = unsafe { (*handle).data as *mut HookBox };
    // SAFETY: only the callback field is borrowed mutably (see timer.rs).
    let callback = unsafe { &mut (*boxed).callback };
    // SAFETY: the box is still live; shared access to a field.
    let loop_inner = unsafe { &(*boxed).loop_inner };
    crate::panic::trampoline(loop_inner, "a loop hook", (), callback);
}

unsafe extern "C" fn on_prepare(handle: *mut uv::uv_prepare_t) {
    // SAFETY: libuv calls this only for our started prepare handle.
    unsafe { run(handle.cast()) }
}

unsafe extern "C" fn on_check(handle: *mut uv::uv_check_t) {
    // SAFETY: libuv calls this only for our started check handle.
    unsafe { run(handle.cast()) }
}
