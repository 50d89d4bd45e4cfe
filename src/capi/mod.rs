//! The C ABI: `uvcurl_*` functions over [`Multi`](crate::Multi), declared in
//! `include/uvcurl.h` (generated from this module by cbindgen; the overview
//! at the top of the header is `preamble.h` beside this file).
//!
//! Every function runs behind the panic boundary ([`handles::guard`]), checks
//! its pointers, and looks the multi up in the handle table, which also checks
//! the calling thread. Nothing here drives libcurl itself: transfers run on
//! [`Multi::start_raw`](crate::Multi::start_raw), cancellation is
//! [`Transfer::cancel`](crate::Transfer::cancel), and the memory is freed from
//! [`Multi::on_released`](crate::Multi::on_released).

/// Returns `UVCURL_EINVAL` from the enclosing function when any of the
/// given pointers is NULL: the one null check of every export.
macro_rules! reject_null {
    ($($pointer:expr),+ $(,)?) => {
        if $($pointer.is_null())||+ {
            return UVCURL_EINVAL;
        }
    };
}

mod codes;
mod handles;

pub use codes::*;

use crate::uv::Loop;
use crate::Multi;
use curl_sys::{CURL, CURLM};
use handles::{guard, guard_code, with_state};
use libc::{c_char, c_int, c_void};
use libuv_sys2::uv_loop_t;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A set of concurrent transfers driven by one libuv loop: a libcurl multi
/// handle plus the `uv_poll_t` and `uv_timer_t` handles that drive it.
/// Opaque; created by `uvcurl_multi_new`, released after `uvcurl_multi_close`.
#[allow(non_camel_case_types)]
pub struct uvcurl_multi {
    _opaque: [u8; 0],
}

/// Called exactly once for every easy handle that `uvcurl_multi_add` accepted,
/// on the loop's thread.
///
/// - `multi`: the multi the handle was added to.
/// - `easy`: the easy handle. It has already been removed from the multi and
///   is the caller's again: it may be inspected (`curl_easy_getinfo`),
///   reconfigured and added again, or freed with `curl_easy_cleanup`, here or
///   later. One exception: with `result` `UVCURL_EEXIST` (only from
///   `uvcurl_multi_submit`) this submission was refused because `easy` is
///   still running from an earlier add or submit; it is NOT the caller's:
///   free or reconfigure it only after that earlier transfer's `done` ran.
/// - `result`: libcurl's `CURLcode` for the transfer (`CURLE_OK`, 0, on
///   success; an HTTP error status is still `CURLE_OK` unless
///   `CURLOPT_FAILONERROR` is set) when it ran to its end, or a negative
///   uvcurl code: `UVCURL_ECANCELED` if it was cancelled or its multi was
///   closed first, `UVCURL_EUV` or `UVCURL_ECURLM` if the driver failed.
/// - `userdata`: the pointer given to `uvcurl_multi_add`.
///
/// The callback may call `uvcurl_multi_add`, `uvcurl_multi_cancel`,
/// `uvcurl_multi_active`, `uvcurl_multi_curlm` and `uvcurl_multi_close` on
/// this or any other multi of the thread, and any libuv function except
/// `uv_run` and `uv_loop_close`. Inside it, `uvcurl_multi_active` no longer
/// counts this transfer (0 in the `done` of the last running one).
#[allow(non_camel_case_types)]
pub type uvcurl_done_cb = Option<
    unsafe extern "C" fn(
        multi: *mut uvcurl_multi,
        easy: *mut CURL,
        result: c_int,
        userdata: *mut c_void,
    ),
>;

/// Called once, on the loop's thread, when a multi closed with
/// `uvcurl_multi_close` has released everything it held: every libuv handle
/// is closed and freed, the libcurl multi handle is cleaned up, and the
/// `uvcurl_multi` is freed (do not use the pointer any more; calls with it
/// return `UVCURL_ECLOSED`). The loop no longer has anything of uvcurl's, so
/// once the host's own handles are closed `uv_run` returns and
/// `uv_loop_close` succeeds.
///
/// `userdata` is the pointer given to `uvcurl_multi_close`.
#[allow(non_camel_case_types)]
pub type uvcurl_closed_cb = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

fn to_handle(handle: usize) -> *mut uvcurl_multi {
    handle as *mut uvcurl_multi
}

fn of_handle(multi: *const uvcurl_multi) -> usize {
    multi as usize
}

/// Creates a multi that runs its transfers on `loop`, and writes it to `*out`.
///
/// - `loop`: an initialised loop, owned and run by the caller. uvcurl adds its
///   handles to it (one timer, one poll handle per socket libcurl uses, and
///   a check handle once transfers are started from callbacks) and never runs, closes or frees it. The loop must outlive the multi:
///   keep running it until the `uvcurl_closed_cb` of `uvcurl_multi_close` ran.
/// - `out`: where the new multi is written, only on success.
///
/// The multi belongs to the calling thread, which must be the thread that
/// runs `loop`: every other `uvcurl_multi_*` call on it must come from this
/// thread (others get `UVCURL_EWRONGTHREAD`). The multi must eventually be
/// passed to `uvcurl_multi_close`.
///
/// The first call also runs `curl_global_init(CURL_GLOBAL_ALL)` once for the
/// process (which is not thread-safe if the host calls it concurrently).
///
/// uvcurl cannot tell which thread runs a loop (it never reads a field of
/// `uv_loop_t`), so creating the multi on another thread is not detected
/// here; it is the caller's to avoid, and every later call from a thread
/// other than the creating one returns `UVCURL_EWRONGTHREAD`.
///
/// Returns `UVCURL_OK`, `UVCURL_EINVAL` if `loop` or `out` is NULL,
/// `UVCURL_EUVVERSION` if the libuv running in the process is older than
/// 1.44.0, `UVCURL_ENOMEM`, `UVCURL_ECURLM` or `UVCURL_EUV` if libcurl or
/// libuv cannot create their handles, `UVCURL_EPANIC`.
///
/// # Safety
/// `loop` must point to an initialised `uv_loop_t` of the libuv that uvcurl
/// calls (the one in the process: see "Which libcurl and libuv" above), and
/// `out` (if not null) to writable memory for a pointer.
#[no_mangle]
pub unsafe extern "C" fn uvcurl_multi_new(
    r#loop: *mut uv_loop_t,
    out: *mut *mut uvcurl_multi,
) -> c_int {
    guard_code(|| {
        reject_null!(r#loop, out);
        if crate::uv::running_libuv_version() < crate::uv::MIN_LIBUV_VERSION {
            return UVCURL_EUVVERSION;
        }
        // SAFETY: the caller guarantees an initialised loop run on this thread
        // that outlives the multi.
        let uv = unsafe { Loop::from_raw(r#loop) };
        match Multi::new(&uv) {
            Ok(multi) => {
                let handle = handles::register(multi);
                // SAFETY: non-null (checked), writable per the contract.
                unsafe { *out = to_handle(handle) };
                UVCURL_OK
            }
            Err(error) => codes::of_error(&error),
        }
    })
}

/// The libcurl multi handle (`CURLM *`) inside `multi`, for
/// `curl_multi_setopt` options uvcurl does not set itself (connection limits,
/// `CURLMOPT_PIPELINING`, ...).
///
/// The handle stays owned by `multi`: do not clean it up, do not add or remove
/// easy handles with it, and do not set `CURLMOPT_SOCKETFUNCTION`,
/// `CURLMOPT_SOCKETDATA`, `CURLMOPT_TIMERFUNCTION` or `CURLMOPT_TIMERDATA`,
/// and do not call `curl_multi_perform`, `curl_multi_socket_action` or
/// `curl_multi_info_read` on it; uvcurl does all of that.
///
/// Returns NULL if `multi` is NULL, closed or not from this thread.
#[no_mangle]
pub extern "C" fn uvcurl_multi_curlm(multi: *const uvcurl_multi) -> *mut CURLM {
    guard(std::ptr::null_mut(), || {
        let mut raw = std::ptr::null_mut();
        with_state(of_handle(multi), |state| {
            if !state.closing.get() {
                raw = state.multi.as_raw();
            }
            UVCURL_OK
        });
        raw
    })
}

/// Starts the transfer configured on `easy`: adds it to `multi`, and calls
/// `done` exactly once when it ends (see `uvcurl_done_cb`).
///
/// The easy handle stays the caller's: uvcurl never frees it, and of its
/// options takes over only `CURLOPT_OPENSOCKETFUNCTION`/`CURLOPT_OPENSOCKETDATA`
/// and `CURLOPT_CLOSESOCKETFUNCTION`/`CURLOPT_CLOSESOCKETDATA` while it runs
/// (so that a pooled connection's socket stays watched between transfers and
/// reusing it costs no `epoll_ctl`; a caller's own values for these four are
/// replaced), resetting them to libcurl's defaults before `done` runs. Until
/// `done` ran, the caller must not free it, reconfigure it, add it to another
/// multi, or call `curl_easy_perform` on it.
///
/// - `multi`: an open multi of this thread.
/// - `easy`: a configured easy handle from `curl_easy_init` (of the libcurl
///   linked into uvcurl). Its own callbacks (`CURLOPT_WRITEFUNCTION`, ...) run
///   on the loop thread and may call `uvcurl_multi_add`, `uvcurl_multi_cancel`
///   and `uvcurl_multi_close`: what they ask for is done as soon as libcurl
///   returns.
/// - `done`: the completion callback; required.
/// - `userdata`: passed to `done` untouched.
///
/// May be called from any uvcurl or libcurl callback on the loop thread,
/// including `done` callbacks (to start the next transfer, or to add `easy`
/// again). Completion callbacks of other, already finished transfers may run
/// before this returns.
///
/// Returns `UVCURL_OK` (and `done` will be called), or, without calling
/// `done`: `UVCURL_EINVAL` if `multi`, `easy` or `done` is NULL,
/// `UVCURL_ECLOSED`, `UVCURL_EWRONGTHREAD`, `UVCURL_EEXIST` if `easy` is
/// already running in this multi (the running transfer goes on and `easy`
/// stays in use until its own `done`: do not free it), `UVCURL_ECURLM` if
/// libcurl refuses it (for example because it is in another multi handle),
/// `UVCURL_EPANIC`.
///
/// # Safety
/// `easy` must be a valid easy handle, kept valid as described above.
#[no_mangle]
pub unsafe extern "C" fn uvcurl_multi_add(
    multi: *mut uvcurl_multi,
    easy: *mut CURL,
    done: uvcurl_done_cb,
    userdata: *mut c_void,
) -> c_int {
    guard_code(|| {
        let (handle, done) = match checked_args(multi, easy, done) {
            Ok(args) => args,
            Err(code) => return code,
        };
        // SAFETY: forwarded contract.
        unsafe { add_on_loop(handle, easy, done, userdata) }
    })
}

/// A non-null `uvcurl_done_cb`.
type DoneFn = unsafe extern "C" fn(*mut uvcurl_multi, *mut CURL, c_int, *mut c_void);

/// The null checks shared by `uvcurl_multi_add` and `uvcurl_multi_submit`:
/// the multi's handle value and the callback, or `UVCURL_EINVAL`.
fn checked_args(
    multi: *mut uvcurl_multi,
    easy: *mut CURL,
    done: uvcurl_done_cb,
) -> Result<(usize, DoneFn), c_int> {
    let checked = || {
        reject_null!(multi, easy);
        UVCURL_OK
    };
    match (checked(), done) {
        (UVCURL_OK, Some(done)) => Ok((of_handle(multi), done)),
        _ => Err(UVCURL_EINVAL),
    }
}

/// The body of `uvcurl_multi_add`, also run on the loop thread for
/// `uvcurl_multi_submit`.
///
/// # Safety
/// As for `uvcurl_multi_add`.
unsafe fn add_on_loop(
    handle: usize,
    easy: *mut CURL,
    done: DoneFn,
    userdata: *mut c_void,
) -> c_int {
    with_state(handle, |state| {
        if state.closing.get() {
            return UVCURL_ECLOSED;
        }
        let key = easy as usize;
        let handle = to_handle(state.handle);
        let on_done = move |outcome| {
            let result = codes::of_outcome(&outcome);
            // SAFETY: a C function pointer the caller gave us with the
            // uvcurl_done_cb signature; the easy handle is out of the multi.
            unsafe { done(handle, key as *mut CURL, result, userdata) };
        };
        // SAFETY: the caller keeps `easy` valid and untouched until `done` ran.
        // The driver refuses an easy handle it already runs (InvalidState,
        // which is UVCURL_EEXIST).
        match unsafe { state.multi.start_raw(easy, on_done) } {
            Ok(_) => UVCURL_OK,
            Err(error) => codes::of_error(&error),
        }
    })
}

/// A submission on its way to the loop thread. Whatever becomes of it, its
/// `done` callback runs exactly once there: with the transfer's result, with
/// the error that kept it from starting, or — if the multi closed before the
/// loop got to it — with `UVCURL_ECLOSED`.
struct Submission {
    handle: usize,
    easy: usize,
    done: DoneFn,
    userdata: usize,
    /// Cleared when the submission was handed to `add_on_loop`.
    pending: bool,
    /// Cleared when it was refused synchronously (its caller got the error).
    armed: Arc<AtomicBool>,
}

impl Submission {
    fn run(mut self) {
        self.pending = false;
        let (easy, userdata) = (self.easy as *mut CURL, self.userdata as *mut c_void);
        // SAFETY: the contract of uvcurl_multi_submit (as uvcurl_multi_add's).
        let code = unsafe { add_on_loop(self.handle, easy, self.done, userdata) };
        if code != UVCURL_OK {
            // SAFETY: the caller's callback, on the loop thread.
            unsafe { (self.done)(to_handle(self.handle), easy, code, userdata) };
        }
    }
}

impl Drop for Submission {
    fn drop(&mut self) {
        if self.pending && self.armed.load(Ordering::SeqCst) {
            // Dropped unrun by a closing multi, on its loop thread.
            let (easy, userdata) = (self.easy as *mut CURL, self.userdata as *mut c_void);
            // SAFETY: the caller's callback, on the loop thread.
            unsafe { (self.done)(to_handle(self.handle), easy, UVCURL_ECLOSED, userdata) };
        }
    }
}

/// Like `uvcurl_multi_add`, but callable from **any thread**: the easy handle
/// is handed to the loop thread (through a `uv_async_t`) and added there.
///
/// `done` then runs exactly once, on the loop thread: with the transfer's
/// result as for `uvcurl_multi_add`, or with the error that kept the handle
/// from being added there (`UVCURL_ECURLM`, ...; `UVCURL_EEXIST` if `easy`
/// was still running from an earlier add or submit -- then it is not the
/// caller's to free until that transfer's own `done`), or with
/// `UVCURL_ECLOSED` if the multi was closed before the loop got to it.
///
/// The loop must be running (`uv_run`) for submissions to be picked up; the
/// async handle behind this does not keep the loop alive by itself.
///
/// Returns `UVCURL_OK` (and `done` will be called), or, without calling
/// `done`: `UVCURL_EINVAL` if `multi`, `easy` or `done` is NULL,
/// `UVCURL_ECLOSED` if `uvcurl_multi_close` was called on the multi (even
/// from inside a callback still running on the loop thread) or it is
/// released, `UVCURL_EPANIC`.
///
/// # Safety
/// `easy` must be a valid easy handle, kept valid and untouched until `done`
/// ran; `userdata` is passed to `done` on the loop thread.
#[no_mangle]
pub unsafe extern "C" fn uvcurl_multi_submit(
    multi: *mut uvcurl_multi,
    easy: *mut CURL,
    done: uvcurl_done_cb,
    userdata: *mut c_void,
) -> c_int {
    guard_code(|| {
        let (handle, done) = match checked_args(multi, easy, done) {
            Ok(args) => args,
            Err(code) => return code,
        };
        let Some(remote) = handles::remote_of(handle) else {
            return UVCURL_ECLOSED;
        };
        let armed = Arc::new(AtomicBool::new(true));
        let submission = Submission {
            handle,
            easy: easy as usize,
            done,
            userdata: userdata as usize,
            pending: true,
            armed: Arc::clone(&armed),
        };
        match remote.run_on_loop(move || submission.run()) {
            Ok(()) => UVCURL_OK,
            Err(refused) => {
                armed.store(false, Ordering::SeqCst);
                drop(refused);
                UVCURL_ECLOSED
            }
        }
    })
}

/// Cancels the transfer running on `easy`: libcurl stops it and its `done`
/// callback runs once, with `UVCURL_ECANCELED` -- before this function returns,
/// or, when called from inside a libcurl callback (such as the easy handle's
/// own `CURLOPT_WRITEFUNCTION`), right after libcurl returned. Cancelling a
/// transfer whose cancellation is already under way does nothing more and
/// returns `UVCURL_OK`.
///
/// May be called from any uvcurl or libcurl callback on the loop thread.
///
/// Returns `UVCURL_OK`, `UVCURL_EINVAL` if `multi` or `easy` is NULL,
/// `UVCURL_ECLOSED`, `UVCURL_EWRONGTHREAD`, `UVCURL_ENOTFOUND` if `easy` is
/// not running in `multi` (never added, or its `done` already ran),
/// `UVCURL_EPANIC`.
#[no_mangle]
pub extern "C" fn uvcurl_multi_cancel(multi: *mut uvcurl_multi, easy: *mut CURL) -> c_int {
    guard_code(|| {
        reject_null!(multi, easy);
        with_state(of_handle(multi), |state| {
            if state.closing.get() {
                return UVCURL_ECLOSED;
            }
            match state.multi.transfer_running_on(easy) {
                Some(transfer) if transfer.cancel() => UVCURL_OK,
                _ => UVCURL_ENOTFOUND,
            }
        })
    })
}

/// How many transfers of `multi` are running: added, and their `done`
/// callback not run yet (inside a `done` callback, its own transfer is no
/// longer counted). Submissions from other threads that the loop has not
/// picked up yet are not counted. Returns that number (>= 0), or `UVCURL_EINVAL`,
/// `UVCURL_ECLOSED`, `UVCURL_EWRONGTHREAD`, `UVCURL_EPANIC`.
#[no_mangle]
pub extern "C" fn uvcurl_multi_active(multi: *const uvcurl_multi) -> c_int {
    guard_code(|| {
        reject_null!(multi);
        with_state(of_handle(multi), |state| {
            if state.closing.get() {
                return UVCURL_ECLOSED;
            }
            c_int::try_from(state.multi.active_transfers()).unwrap_or(c_int::MAX)
        })
    })
}

/// Closes `multi`, asynchronously. Every running transfer is cancelled: each
/// `done` callback runs once with `UVCURL_ECANCELED`, before this function
/// returns (or, called from inside a libcurl callback, right after libcurl
/// returned). Then the libcurl multi handle is cleaned up and uvcurl's libuv
/// handles are closed; when libuv has run their close callbacks (during a
/// later iteration of the host's `uv_run`), `multi` is freed and `closed` runs.
///
/// From this call on, every call with `multi` returns `UVCURL_ECLOSED` (a
/// second `uvcurl_multi_close` too, and its `closed` is never called);
/// `uvcurl_multi_curlm` returns NULL. Keep running the loop until `closed` ran.
///
/// - `closed`: may be NULL.
/// - `userdata`: passed to `closed` untouched.
///
/// May be called from any uvcurl or libcurl callback on the loop thread,
/// including a `done` callback of this multi.
///
/// Returns `UVCURL_OK` (and `closed`, if given, will be called),
/// `UVCURL_EINVAL` if `multi` is NULL, `UVCURL_ECLOSED`,
/// `UVCURL_EWRONGTHREAD`, `UVCURL_EPANIC`.
#[no_mangle]
pub extern "C" fn uvcurl_multi_close(
    multi: *mut uvcurl_multi,
    closed: uvcurl_closed_cb,
    userdata: *mut c_void,
) -> c_int {
    guard_code(|| {
        reject_null!(multi);
        with_state(of_handle(multi), |state| {
            if state.closing.replace(true) {
                return UVCURL_ECLOSED;
            }
            let handle = state.handle;
            // Even when called inside a libcurl callback, where the close
            // itself waits until libcurl returns, later submits are refused.
            handles::stop_submissions(handle);
            state.multi.on_released(move || {
                handles::release(handle);
                if let Some(closed) = closed {
                    // SAFETY: a C function pointer with the uvcurl_closed_cb signature.
                    unsafe { closed(userdata) };
                }
            });
            state.multi.close();
            UVCURL_OK
        })
    })
}

/// A static, NUL-terminated English description of `code`: a `UVCURL_*` code
/// (for `CURLcode` values use `curl_easy_strerror`). Never NULL; unknown codes
/// get a generic text. Any thread.
#[no_mangle]
pub extern "C" fn uvcurl_strerror(code: c_int) -> *const c_char {
    guard(codes::text_ptr(UVCURL_EPANIC), || codes::text_ptr(code))
}

/// uvcurl's version, a static NUL-terminated string such as "0.1.0". The
/// version of the libcurl inside it is `curl_version()`; that of the libuv
/// it calls is `uvcurl_libuv_version()`. Any thread.
#[no_mangle]
pub extern "C" fn uvcurl_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The version of the libuv that uvcurl's own calls reach, as `uv_version()`
/// encodes it (`major << 16 | minor << 8 | patch`), called from inside uvcurl.
/// With the system-libuv build this is the host's libuv (Node's, luv's, the
/// program's `-luv`); a host can compare it with its own `uv_version()` to
/// check that the process runs one libuv. `uvcurl_multi_new` refuses
/// versions below 1.44.0 (0x012c00). Any thread.
#[no_mangle]
pub extern "C" fn uvcurl_libuv_version() -> libc::c_uint {
    guard(0, crate::uv::running_libuv_version)
}
