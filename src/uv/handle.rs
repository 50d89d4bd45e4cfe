//! The heap box shared by every handle type: a pointer to the raw uv handle
//! (allocated with libuv's run-time size), the loop it belongs to and the
//! user's callback.

use super::LoopInner;
use libuv_sys2::{self as uv, uv_handle_t};
use std::ptr::NonNull;
use std::rc::Rc;

/// A raw libuv handle plus what its callbacks need. The raw handle is a
/// separate allocation of `uv_handle_size(kind)` bytes -- the size the libuv
/// running in the process reports, not the size of the struct in the headers
/// uvcurl was compiled against (a host may bring a different libuv) -- and its
/// `data` field (the first field of every handle in every libuv 1.x) points
/// back at this box.
pub(super) struct HandleBox<H, F: ?Sized> {
    pub raw: *mut H,
    /// Keeps the loop's memory alive while libuv may still touch this handle,
    /// and receives panics caught in callbacks.
    pub loop_inner: Rc<LoopInner>,
    pub callback: Box<F>,
}

impl<H, F: ?Sized> HandleBox<H, F> {
    /// Boxes a zeroed raw handle of `kind` with its loop and callback; the raw
    /// handle's `data` is set to the box's address by the caller after
    /// `uv_*_init` succeeded.
    pub fn new(
        kind: uv::uv_handle_type,
        loop_inner: Rc<LoopInner>,
        callback: Box<F>,
    ) -> NonNull<Self> {
        // SAFETY: uv_handle_size has no preconditions (unknown kinds give -1 as size_t).
        let size = unsafe { uv::uv_handle_size(kind) };
        // SAFETY: plain allocation; all-zero is a valid "not yet initialised"
        // handle that uv_*_init overwrites. malloc's alignment suits any C struct.
        let raw = unsafe { libc::calloc(1, size as libc::size_t) } as *mut H;
        if raw.is_null() {
            let layout = std::alloc::Layout::from_size_align(size as usize, 16)
                .unwrap_or(std::alloc::Layout::new::<u128>());
            std::alloc::handle_alloc_error(layout);
        }
        let boxed = Box::new(HandleBox {
            raw,
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
        // SAFETY: per the contract, we are the only owner of both allocations.
        let boxed = unsafe { Box::from_raw(ptr.as_ptr()) };
        // SAFETY: allocated with calloc in `new`, not referenced by libuv.
        unsafe { libc::free(boxed.raw.cast()) };
    }

    /// `uv_close` callback that frees the box and the raw handle.
    pub unsafe extern "C" fn on_close(handle: *mut uv_handle_t) {
        // SAFETY: `data` was set to the box leaked by `new`; libuv calls this
        // exactly once, after which it never touches the handle.
        let boxed = unsafe { Box::from_raw((*handle).data as *mut Self) };
        drop(boxed);
        // SAFETY: the handle's memory came from calloc in `new`; libuv is done with it.
        unsafe { libc::free(handle.cast()) };
    }
}
