//! The table of live `uvcurl_multi` handles, the thread check and the panic
//! boundary every exported function goes through.
//!
//! A `uvcurl_multi *` given to C is not an address but a number that is never
//! reused, looked up here on every call. So a call with a closed (even freed)
//! multi, a double close, or a pointer that was never a multi is answered with
//! `UVCURL_ECLOSED` instead of touching freed memory, and a call from another
//! thread with `UVCURL_EWRONGTHREAD` before anything thread-bound is touched.
//! This table is the C API's only global state besides libcurl's global init.

use super::codes::{UVCURL_ECLOSED, UVCURL_EPANIC, UVCURL_EWRONGTHREAD};
use crate::sync::{Mutex, MutexGuard};
use crate::Multi;
use libc::c_int;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{self, ThreadId};

/// What the C wrapper keeps per multi. Lives in a `Box` owned by [`TABLE`]
/// (as a raw pointer) and is only touched on `thread`.
pub(super) struct State {
    /// The handle value C knows this multi by.
    pub handle: usize,
    /// Its transfers are the driver's (looked up by easy-handle address).
    pub multi: Multi,
    /// `uvcurl_multi_close` was called.
    pub closing: Cell<bool>,
}

struct Entry {
    thread: ThreadId,
    /// For submissions from other threads (`uvcurl_multi_submit`).
    remote: Option<crate::Remote>,
    /// `Box<State>` turned into a raw pointer; dereferenced only on `thread`.
    state: usize,
}

static TABLE: Mutex<BTreeMap<usize, Entry>> = Mutex::new(BTreeMap::new());
static NEXT_HANDLE: AtomicUsize = AtomicUsize::new(1);

fn table() -> MutexGuard<'static, BTreeMap<usize, Entry>> {
    TABLE.lock()
}

/// Registers a new multi created on this thread; returns its handle value.
pub(super) fn register(multi: Multi) -> usize {
    // Multiples of 16 look like (aligned) pointers in debuggers; never 0.
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) * 16;
    let state = Box::new(State {
        handle,
        multi,
        closing: Cell::new(false),
    });
    let remote = state.multi.remote().ok();
    let entry = Entry {
        thread: thread::current().id(),
        remote,
        state: Box::into_raw(state) as usize,
    };
    table().insert(handle, entry);
    handle
}

/// Runs `f` with the state of `handle`, if it is live and this is its thread.
///
/// The state is freed only by [`release`], which runs from a libuv close
/// callback on this thread -- never while one of our calls is on the stack
/// (a callback that ran `uv_run` recursively would break libuv itself first).
pub(super) fn with_state(handle: usize, f: impl FnOnce(&State) -> c_int) -> c_int {
    let state = {
        let table = table();
        let Some(entry) = table.get(&handle) else {
            return UVCURL_ECLOSED;
        };
        if entry.thread != thread::current().id() {
            return UVCURL_EWRONGTHREAD;
        }
        entry.state
    };
    // SAFETY: live entry on its own thread (checked above); see the doc comment
    // for why it cannot be freed while `f` runs.
    f(unsafe { &*(state as *const State) })
}

/// The remote of `handle`, from any thread; `None` once it is released.
pub(super) fn remote_of(handle: usize) -> Option<crate::Remote> {
    table().get(&handle).and_then(|entry| entry.remote.clone())
}

/// Stops accepting submissions from other threads for `handle`
/// (`uvcurl_multi_close` was called): from now on `remote_of` gives `None`,
/// so `uvcurl_multi_submit` returns `UVCURL_ECLOSED` at once.
pub(super) fn stop_submissions(handle: usize) {
    if let Some(entry) = table().get_mut(&handle) {
        entry.remote = None;
    }
}

/// Forgets `handle` and frees its state (dropping the `Multi`).
pub(super) fn release(handle: usize) {
    let entry = {
        let mut table = table();
        let entry = table.remove(&handle);
        if table.is_empty() {
            // An empty BTreeMap still holds its root node; a fresh one holds
            // nothing. So once every multi is released nothing of the table
            // stays allocated -- which matters when libuvcurl.so is unloaded
            // (LuaJIT unloads ffi.load libraries at lua_close): the node would
            // be left without a reference, a leak valgrind reports.
            *table = BTreeMap::new();
        }
        entry
    };
    if let Some(entry) = entry {
        // SAFETY: created by Box::into_raw in `register`, removed from the
        // table just now, so this is the only owner left.
        drop(unsafe { Box::from_raw(entry.state as *mut State) });
    }
}

/// The panic boundary: runs `f`, and returns `fallback` if it panicked.
pub(super) fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    crate::panic::c_export(fallback, f)
}

/// [`guard`] for functions returning a code.
pub(super) fn guard_code(f: impl FnOnce() -> c_int) -> c_int {
    guard(UVCURL_EPANIC, f)
}
