//! [`Async`]: a `uv_async_t` that other threads can wake through an
//! [`AsyncSender`].

use super::handle::HandleBox;
use super::{check, Loop};
use crate::error::Error;
use crate::sync::Mutex;
use libuv_sys2 as uv;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

type AsyncCallback = dyn FnMut();
type AsyncBox = HandleBox<uv::uv_async_t, AsyncCallback>;

/// The raw handle, shared with senders while it is open.
struct Target(*mut uv::uv_async_t);

// SAFETY: the pointer is only used for uv_async_send, which libuv documents as
// callable from any thread, and only while the handle is open (checked under
// the mutex that `Async::drop` takes before closing it).
unsafe impl Send for Target {}

/// A `uv_async_t`: its callback runs on the loop thread after one or more
/// [`AsyncSender::send`] calls from any thread. Dropping it closes the handle;
/// senders then report that nobody listens any more.
pub struct Async {
    ptr: NonNull<AsyncBox>,
    target: Arc<Mutex<Option<Target>>>,
    _not_send: PhantomData<*mut ()>,
}

/// Wakes an [`Async`] from any thread. Cheap to clone.
#[derive(Clone)]
pub struct AsyncSender {
    target: Arc<Mutex<Option<Target>>>,
}

impl Async {
    /// Initialises the handle on `uv` with `callback`.
    ///
    /// # Errors
    /// libuv's error from `uv_async_init`.
    pub fn new(uv: &Loop, callback: impl FnMut() + 'static) -> Result<Async, Error> {
        let ptr = AsyncBox::new(
            uv::uv_handle_type_UV_ASYNC,
            uv.inner().clone(),
            Box::new(callback),
        );
        // SAFETY: zeroed handle of uv_handle_size(UV_ASYNC) bytes at a stable
        // address; valid loop; callback set.
        let rc = unsafe { uv::uv_async_init(uv.as_raw(), (*ptr.as_ptr()).raw, Some(on_async)) };
        if let Err(e) = check(rc, "uv_async_init") {
            // SAFETY: init failed; libuv holds no reference.
            unsafe { AsyncBox::free_uninitialised(ptr) };
            return Err(e);
        }
        // SAFETY: initialised handle we own.
        let raw = unsafe {
            let raw = (*ptr.as_ptr()).raw;
            (*raw).data = ptr.as_ptr().cast();
            raw
        };
        Ok(Async {
            ptr,
            target: Arc::new(Mutex::new(Some(Target(raw)))),
            _not_send: PhantomData,
        })
    }

    /// A sender for other threads.
    pub fn sender(&self) -> AsyncSender {
        AsyncSender {
            target: self.target.clone(),
        }
    }

    /// Stops the handle from keeping the loop alive.
    pub fn unref(&self) {
        // SAFETY: initialised, open handle.
        unsafe { uv::uv_unref(self.raw().cast()) };
    }

    fn raw(&self) -> *mut uv::uv_async_t {
        // SAFETY: the box lives until the close callback, after Drop.
        unsafe { (*self.ptr.as_ptr()).raw }
    }
}

impl Drop for Async {
    fn drop(&mut self) {
        // No sender can be inside uv_async_send once we hold the lock and the
        // target is gone.
        let mut target = self.target.lock();
        *target = None;
        drop(target);
        // SAFETY: closed exactly once, here; freed in on_close.
        unsafe { uv::uv_close(self.raw().cast(), Some(AsyncBox::on_close)) };
    }
}

impl AsyncSender {
    /// Wakes the loop; returns false if the handle is closed.
    pub fn send(&self) -> bool {
        let target = self.target.lock();
        match target.as_ref() {
            // SAFETY: the handle is open while the target is set (see Drop).
            Some(t) => unsafe { uv::uv_async_send(t.0) == 0 },
            None => false,
        }
    }
}

unsafe extern "C" fn on_async(handle: *mut uv::uv_async_t) {
    // SAFETY: `data` points at the live box (freed only in the close callback).
    let boxed = unsafe { (*handle).data as *mut AsyncBox };
    // SAFETY: only the callback field is borrowed mutably (see poll.rs).
    let callback = unsafe { &mut (*boxed).callback };
    // SAFETY: the box is still live; shared access to a field.
    let loop_inner = unsafe { &(*boxed).loop_inner };
    crate::panic::trampoline(loop_inner, "an async callback", (), callback);
}
