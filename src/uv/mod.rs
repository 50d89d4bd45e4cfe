//! Safe wrappers over the parts of libuv the driver needs: a [`Loop`], and
//! [`Poll`], [`Timer`] and [`Async`] handles.
//!
//! Handles live in a heap box whose address never changes; dropping the owner
//! calls `uv_close`, and the box (with the callback closure in it) is freed only
//! in the close callback, as libuv requires. None of these types is `Send`.

mod handle;
mod poll;
mod run_loop;
mod timer;
mod wakeup;

pub use poll::{Poll, PollEvents, PollResult};
pub use run_loop::Loop;
pub(crate) use run_loop::LoopInner;
pub use timer::Timer;
pub use wakeup::{Async, AsyncSender};

use crate::error::Error;
use libc::c_int;

/// Turns a libuv return code into a `Result`, naming the call on failure.
pub(crate) fn check(rc: c_int, call: &str) -> Result<c_int, Error> {
    if rc < 0 {
        Err(Error::from_uv(rc, call))
    } else {
        Ok(rc)
    }
}
