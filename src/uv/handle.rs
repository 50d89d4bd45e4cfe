//! The heap box shared by every handle type: the raw uv handle first, then the
//! loop it belongs to and the user's callback.

use super::LoopInner;
use libuv_sys2::uv_handle_t;
use std::ptr::NonNull;
use std::rc::Rc;

/// A raw libuv handle plus what its callbacks need. `repr(C)` with the handle
/// first, so a `*mut uv_handle_t` from libuv points at the whole box.
#[repr(C)]
pub(super) struct HandleBox<H, F: ?Sized> {
    pub raw: H,
    /// Keeps the loop's memory alive while libuv may still touch this handle,
    /// and receives panics caught in callbacks.
    pub loop_inner: Rc<LoopInner>,
    pub callback: Box<F>,
}

impl<H, F: ?Sized> HandleBox<H, F> {
    /// Boxes a zeroed raw handle with its loop and callback; `raw.data` is set
    /// to the box's own address by the caller after `uv_*_init` succeeded.
    pub fn new(loop_inner: Rc<LoopInner>, callback: Box<F>) -> NonNull<Self> {
        let boxed = Box::new(HandleBox {
            // SAFETY: libuv handle structs are plain C data; all-zero is a valid
            // "not yet initialised" value that uv_*_init overwrites.
            raw: unsafe { std::mem::zeroed::<H>() },
            loop_inner,
            callback,
        });
        NonNull::from(Box::leak(boxed))
    }

    /// Frees a box whose handle was never successfully initialised (no `uv_close`).
    ///
    /// # Safety
    /// `ptr` came from [`HandleBox::new`] and libuv holds no reference to it.
    pub unsafe fn free_uninitialised(ptr: NonNull<Self>) {
        // SAFETY: per the contract, we are the only owner of the allocation.
        drop(unsafe { Box::from_raw(ptr.as_ptr()) });
    }

    /// `uv_close` callback that frees the box.
    pub unsafe extern "C" fn on_close(handle: *mut uv_handle_t) {
        // SAFETY: `handle` is the first field of a HandleBox<H, F> leaked by `new`;
        // libuv calls this exactly once, after which it never touches the handle.
        drop(unsafe { Box::from_raw(handle as *mut Self) });
    }
}
