//! What a panic in a callback does: one policy per kind of callback, applied
//! at every `catch_unwind` of the crate. No panic unwinds across `extern "C"`.
//!
//! 1. **User completion callbacks** — the completion of [`Multi::start`],
//!    [`Multi::start_raw`] and [`Remote::submit_with`] alike, and the
//!    [`Multi::on_released`] notification: [`completion`] catches the panic,
//!    the loop carries on with its other work, and [`Loop::run`] resumes the
//!    first such panic when it returns. (The transfer is over: there is
//!    nothing left to fail.) On a [`Client`](crate::Client)'s own loop
//!    threads nobody called `run` to receive it: there it is logged and the
//!    loop goes on.
//! 2. **User callbacks during a transfer** — the data, head and upload-reader
//!    callbacks of a [`Request`], and a [`Remote`]'s request builder:
//!    [`in_transfer`] turns the panic into that transfer's failure, an error
//!    of kind [`ErrorKind::CallbackPanic`] carrying the panic message; other
//!    transfers go on.
//! 3. **Trampolines** — uvcurl's own `extern "C"` functions that libuv or
//!    libcurl call (and loop work queued by uvcurl itself): [`trampoline`]
//!    wraps the whole body, not only the user code in it. A panic there is a
//!    bug in uvcurl: it is recorded on the loop and resumed from
//!    [`Loop::run`], and the trampoline returns a benign value (0 to the
//!    socket and timer callbacks, which must never answer -1 for a local
//!    failure since that fails every transfer of the multi).
//! 4. **C ABI exports** (`src/capi/`): [`c_export`] logs the panic and the
//!    function returns its written-down fallback, `UVCURL_EPANIC` for
//!    functions returning a code.
//!
//! [`Multi::start`]: crate::Multi::start
//! [`Multi::start_raw`]: crate::Multi::start_raw
//! [`Multi::on_released`]: crate::Multi::on_released
//! [`Remote::submit_with`]: crate::Remote::submit_with
//! [`Remote`]: crate::Remote
//! [`Request`]: crate::Request
//! [`Loop::run`]: crate::Loop::run
//! [`ErrorKind::CallbackPanic`]: crate::ErrorKind::CallbackPanic

use crate::error::{Error, ErrorKind};
use crate::uv::{Loop, LoopInner};
use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

/// The text of a panic payload, for messages.
pub(crate) fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Policy 1: runs a user completion callback; a panic is resumed from
/// `Loop::run` of `uv`.
pub(crate) fn completion(uv: &Loop, place: &str, f: impl FnOnce()) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
        uv.inner().stash_panic(payload, place);
    }
}

/// Policy 2: runs a user callback of a running transfer; a panic becomes the
/// `CallbackPanic` error the transfer fails with.
pub(crate) fn in_transfer<T>(place: &str, f: impl FnOnce() -> T) -> Result<T, Error> {
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let text = message(payload.as_ref());
        log::error!("uvcurl: {place} callback panicked: {text}");
        Error::new(
            ErrorKind::CallbackPanic,
            format!("{place} callback panicked: {text}"),
        )
    })
}

/// Policy 3: runs the body of a trampoline; a panic is recorded on the
/// loop (resumed from `Loop::run`) and `fallback` returned instead.
pub(crate) fn trampoline<T>(uv: &LoopInner, place: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            uv.stash_panic(payload, place);
            fallback
        }
    }
}

/// Policy 4: runs the body of a C ABI function; a panic is logged and
/// `fallback` returned instead.
pub(crate) fn c_export<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            log::error!(
                "uvcurl: panic at the C API boundary: {}",
                message(payload.as_ref())
            );
            fallback
        }
    }
}
