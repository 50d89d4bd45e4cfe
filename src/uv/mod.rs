//! Safe wrappers over the parts of libuv uvcurl needs. Public: the [`Loop`]
//! and a [`Timer`] (handy beside transfers, e.g. to resume a paused one);
//! the poll and async handles the driver uses are crate-private.
//!
//! Handles live in a heap box whose address never changes; dropping the owner
//! calls `uv_close`, and the box (with the callback closure in it) is freed only
//! in the close callback, as libuv requires. None of these types is `Send`.

mod handle;
mod hook;
mod poll;
mod run_loop;
mod timer;
mod wakeup;

pub(crate) use hook::{Hook, Phase};
pub(crate) use poll::{Poll, PollEvents, PollResult};
pub use run_loop::Loop;
pub(crate) use run_loop::LoopInner;
pub use timer::Timer;
pub(crate) use wakeup::{Async, AsyncSender};

use crate::error::Error;
use libc::c_int;

/// The oldest libuv uvcurl runs on, as `uv_version()` encodes it: 1.44.0
/// (Debian 12's `libuv1`; Node 20 carries 1.46, the bundled copy is 1.53).
///
/// uvcurl calls only libuv functions that 1.44 has -- `uv_async_init`,
/// `uv_async_send`, `uv_check_init`, `uv_check_start`, `uv_close`,
/// `uv_handle_size`, `uv_is_active`,
/// `uv_loop_alive`, `uv_loop_close`, `uv_loop_init`, `uv_loop_size`,
/// `uv_poll_init_socket`, `uv_poll_start`, `uv_poll_stop`,
/// `uv_prepare_init`, `uv_prepare_start`, `uv_ref`,
/// `uv_run`, `uv_strerror`, `uv_timer_init`, `uv_timer_start`,
/// `uv_timer_stop`, `uv_unref`, `uv_update_time`, `uv_version`, `uv_version_string`,
/// `uv_walk` (all present since 1.0; `grep -rn 'uv_[a-z_]*(' src` lists the
/// calls) -- never reads or writes a field of `uv_loop_t`, touches only the
/// `data` field of its own handles (the first field of every handle in every
/// libuv 1.x), and allocates loops and handles with the sizes the running
/// libuv reports (`uv_loop_size`, `uv_handle_size`). That is what makes it
/// safe to run on a libuv other than the one whose headers it was compiled
/// with (the system-libuv build, see the README's "Using it from C").
pub const MIN_LIBUV_VERSION: u32 = 0x01_2c_00;

/// The version of the libuv running in this process (`uv_version()`, as
/// called from uvcurl: with a system libuv, the host's copy).
pub fn running_libuv_version() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libuv_sys2::uv_version() }
}

/// Turns a libuv return code into a `Result`, naming the call on failure.
pub(crate) fn check(rc: c_int, call: &str) -> Result<c_int, Error> {
    if rc < 0 {
        Err(Error::from_uv(rc, call))
    } else {
        Ok(rc)
    }
}
