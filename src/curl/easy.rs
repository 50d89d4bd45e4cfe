//! [`Easy`]: a `CURL` handle, owned (back to its [`EasyPool`] when dropped)
//! or external (a caller's handle that uvcurl drives but never frees).
//!
//! An owned handle may go back to the pool still configured, tagged with a
//! description `C` of every option its owner set (opaque here: the transfer
//! layer's option set). The next [`EasyPool::take`] whose request that
//! description fits gets it without `curl_easy_reset`; any other gets it reset.

use super::{check_easy, sys, EasyInfo};
use crate::error::{Error, ErrorKind};
use curl_sys::{self as curl, CURL};
use libc::{c_char, c_long, c_void};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::CString;
use std::ptr::NonNull;
use std::rc::Rc;

/// `CURLOPT_ERRORBUFFER`: libcurl writes the text of a failure there.
/// What stays with a handle (in the pool too), at an address that never
/// changes while the handle lives: its error buffer, and the slot its
/// callbacks' user data point at.
pub(crate) struct HandleBox {
    errbuf: UnsafeCell<[u8; curl::CURL_ERROR_SIZE]>,
    /// The transfer running on the handle (null between transfers). The
    /// write, header, read and open-socket options point here, once per
    /// handle, so a reused handle needs no `curl_easy_setopt` for them: each
    /// transfer only stores its own address.
    user: Cell<*const c_void>,
}

impl HandleBox {
    fn new() -> Box<HandleBox> {
        Box::new(HandleBox {
            errbuf: UnsafeCell::new([0; curl::CURL_ERROR_SIZE]),
            user: Cell::new(std::ptr::null()),
        })
    }

    /// The transfer running on the handle, null between transfers.
    pub fn user(&self) -> *const c_void {
        self.user.get()
    }
}

type ErrorBuffer = HandleBox;

/// String options shorter than this are passed from a stack buffer.
const STACK_STRING: usize = 512;

/// An easy handle.
pub(crate) struct Easy<C = ()> {
    raw: NonNull<CURL>,
    /// The handle's box (error buffer, user-data slot), which stays with an
    /// owned handle (in the pool too), so the options' pointers stay valid as
    /// long as the handle; an external handle gets one for the transfer
    /// (libcurl is never told about its error buffer). `None` only once given
    /// back to the pool.
    errbuf: Option<Box<ErrorBuffer>>,
    /// Where an owned handle goes when dropped; `None`: an external handle.
    pool: Option<Rc<EasyPool<C>>>,
    /// Taken from the pool still configured with the options asked for.
    reused: bool,
}

impl<C> Easy<C> {
    /// Wraps a caller's easy handle; dropping the wrapper leaves it alone.
    ///
    /// # Safety
    /// `raw` is a valid easy handle that stays valid while the wrapper lives.
    pub unsafe fn external(raw: NonNull<CURL>) -> Easy<C> {
        Easy {
            raw,
            errbuf: Some(HandleBox::new()),
            pool: None,
            reused: false,
        }
    }

    /// The error buffer for `CURLOPT_ERRORBUFFER`: valid while the handle
    /// is, emptied when the pool hands the handle out.
    pub fn error_buffer(&self) -> *mut c_char {
        self.errbuf
            .as_ref()
            .map_or(std::ptr::null_mut(), |buffer| buffer.errbuf.get().cast())
    }

    /// The text libcurl left in the error buffer (empty if none, or for an
    /// external handle). Only while libcurl is not running this handle.
    pub fn error_text(&self) -> String {
        let Some(buffer) = &self.errbuf else {
            return String::new();
        };
        // SAFETY: libcurl writes a NUL-terminated string (or nothing: emptied)
        // into the buffer, and is not running this handle (see above).
        let bytes = unsafe { &*buffer.errbuf.get() };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).trim_end().to_owned()
    }

    /// Whether the pool handed this handle out still configured with the
    /// option set [`EasyPool::take`] was asked for (nothing was reset).
    /// The slot the callbacks' user data options point at (set with
    /// [`set_user`](Easy::set_user)); stable while the handle lives.
    pub fn user_slot(&self) -> *mut c_void {
        self.errbuf.as_deref().map_or(std::ptr::null_mut(), |b| {
            b as *const HandleBox as *mut c_void
        })
    }

    /// Names the transfer now running on the handle (null: none).
    pub fn set_user(&self, user: *const c_void) {
        if let Some(b) = &self.errbuf {
            b.user.set(user);
        }
    }

    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Gives the handle back to its pool now, configured as `options` says,
    /// instead of reset (the handle itself stays in `self` only as a number;
    /// it must not be used afterwards). The caller vouches that the handle is
    /// out of the multi, that `options` describes every option set on it, and
    /// that no option points at anything libcurl may read while the handle is
    /// idle or being cleaned up (see [`EasyPool::take`]). No effect on an
    /// external handle. (The options are not stored in `Easy` meanwhile: a
    /// running transfer does not pay their size twice.)
    pub fn release_configured(&mut self, options: C) {
        if let Some(pool) = self.pool.take() {
            // SAFETY: an owned handle out of the multi (per the contract).
            unsafe { pool.give(self.raw, self.errbuf.take(), Some(options)) };
        }
    }

    /// The raw handle.
    pub fn raw(&self) -> *mut CURL {
        self.raw.as_ptr()
    }

    /// `curl_easy_setopt` with a long.
    pub fn set_long(&self, option: curl::CURLoption, value: c_long) -> Result<(), Error> {
        // SAFETY: a live easy handle and a long-typed option.
        setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.raw(), option, value)
        })
    }

    /// `curl_easy_setopt` with a `curl_off_t`.
    pub fn set_off_t(&self, option: curl::CURLoption, value: i64) -> Result<(), Error> {
        // SAFETY: a live easy handle and a curl_off_t-typed option.
        setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.raw(), option, value as curl::curl_off_t)
        })
    }

    /// `curl_easy_setopt` with a function or data pointer.
    ///
    /// # Safety
    /// `value` has the type `option` expects and stays valid as long as the
    /// handle may use it (until it is reset or cleaned up).
    pub unsafe fn set_ptr(
        &self,
        option: curl::CURLoption,
        value: *mut c_void,
    ) -> Result<(), Error> {
        // SAFETY: a live easy handle; the pointer per the contract.
        setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.raw(), option, value)
        })
    }

    /// `curl_easy_setopt` with a string, which libcurl copies.
    pub fn set_str(&self, option: curl::CURLoption, value: &str) -> Result<(), Error> {
        if value.as_bytes().contains(&0) {
            return Err(Error::invalid("string with a NUL byte"));
        }
        self.set_nul_free_str(option, value)
    }

    /// [`set_str`](Easy::set_str) for a string already known to hold no NUL
    /// byte (a plain URL, see `url::plain_origin_end`), which is not scanned again.
    /// (A NUL would only cut the string short where libcurl reads it.)
    pub fn set_nul_free_str(&self, option: curl::CURLoption, value: &str) -> Result<(), Error> {
        debug_assert!(!value.as_bytes().contains(&0));
        // Short strings are NUL-terminated in a stack buffer: no allocation,
        // and only the bytes used are written.
        let mut stack = [std::mem::MaybeUninit::<u8>::uninit(); STACK_STRING];
        let heap;
        let c_value: *const c_char = if value.len() < STACK_STRING {
            stack[value.len()].write(0);
            // SAFETY: `value.len()` bytes fit before the NUL just written,
            // and the two buffers do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    value.as_ptr(),
                    stack.as_mut_ptr().cast::<u8>(),
                    value.len(),
                )
            };
            stack.as_ptr().cast()
        } else {
            heap = CString::new(value).map_err(|_| Error::invalid("string with a NUL byte"))?;
            heap.as_ptr()
        };
        // SAFETY: a NUL-terminated string (its first NUL ends it); string
        // options are copied by libcurl (since 7.17).
        setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.raw(), option, c_value)
        })
    }

    /// What libcurl recorded about this handle's transfer; only while
    /// libcurl is not running it (in its callbacks, or once it is done).
    pub fn info(&self) -> EasyInfo<'_> {
        // SAFETY: a live handle while `self` is borrowed, on this thread.
        unsafe { EasyInfo::new(self.raw) }
    }

    /// [`Easy::info`] to keep beyond this borrow, for another thread too.
    ///
    /// # Safety
    /// The caller keeps the handle alive, and out of libcurl's and any other
    /// thread's use, while the value (or a copy) is used.
    pub unsafe fn info_for_later(&self) -> EasyInfo<'static> {
        // SAFETY: per the contract.
        unsafe { EasyInfo::new(self.raw) }
    }

    /// `curl_easy_getinfo` for a long (0 if unavailable).
    pub fn info_long(&self, info: curl::CURLINFO) -> c_long {
        self.info().long(info)
    }

    /// `curl_easy_getinfo` for a `curl_off_t` (0 if unavailable).
    pub fn info_off_t(&self, info: curl::CURLINFO) -> i64 {
        self.info().off_t(info)
    }

    /// `curl_easy_pause`. Allowed inside this handle's read/write callbacks,
    /// not inside the multi's socket or timer callback; unpausing may call
    /// the write callback before it returns.
    pub fn pause(&self, bitmask: libc::c_int) -> Result<(), Error> {
        // SAFETY: a live easy handle.
        check_easy(
            unsafe { curl::curl_easy_pause(self.raw(), bitmask) },
            "curl_easy_pause",
        )
    }
}

impl<C> Drop for Easy<C> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            // SAFETY: an owned handle (from the pool), which its owner removed
            // from the multi before dropping it; nothing else uses it.
            unsafe { pool.give(self.raw, self.errbuf.take(), None) };
        }
    }
}

/// A failed `curl_easy_setopt` as an error; an option this libcurl lacks is
/// the caller's invalid input.
/// (The message is formatted only on failure: this runs for every option of
/// every transfer.)
#[inline]
fn setopt_result(option: curl::CURLoption, rc: curl::CURLcode) -> Result<(), Error> {
    if rc == curl::CURLE_OK {
        return Ok(());
    }
    setopt_error(option, rc)
}

#[cold]
#[inline(never)]
fn setopt_error(option: curl::CURLoption, rc: curl::CURLcode) -> Result<(), Error> {
    let error = match check_easy(rc, &format!("setting option {option}")) {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    if rc == curl::CURLE_UNSUPPORTED_PROTOCOL || rc == sys::CURLE_NOT_BUILT_IN {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "{} (libcurl lacks support for option {option})",
                error.message()
            ),
        ));
    }
    Err(error)
}

/// Easy handles kept for reuse: `curl_easy_reset` costs much less than
/// `curl_easy_cleanup` plus `curl_easy_init`, and a handle still configured
/// for the same options needs neither the reset nor most of its options.
pub(crate) struct EasyPool<C = ()> {
    /// Idle handles, each with its error buffer, reset (`None`) or still
    /// configured as described.
    free: RefCell<Vec<Idle<C>>>,
}

/// An idle handle of the pool.
struct Idle<C> {
    raw: NonNull<CURL>,
    errbuf: Option<Box<ErrorBuffer>>,
    kept: Option<C>,
}

impl<C> Default for EasyPool<C> {
    fn default() -> Self {
        EasyPool {
            free: RefCell::new(Vec::new()),
        }
    }
}

/// Most idle easy handles kept.
const EASY_POOL_MAX: usize = 256;

impl<C> EasyPool<C> {
    /// An easy handle, which goes back here when dropped: still configured
    /// as a description `fits` accepts ([`Easy::reused`]), or with libcurl's
    /// default options (reset or new). `None` asks for a reset handle.
    /// With a handle still configured comes the description it was kept
    /// with (it may own what the options point at, such as a header list,
    /// which the new owner then keeps).
    ///
    /// A handle kept configured still holds its previous owner's
    /// per-transfer pointers (callback data slot, URL handle).
    /// libcurl reads those only while a transfer runs, never while the
    /// handle is idle, reset or cleaned up (`curl_easy_reset` and `Curl_close`
    /// do not touch them), and the new owner sets its own before the handle
    /// is added to a multi. (The error buffer travels with the handle.)
    pub fn take(
        self: &Rc<Self>,
        fits: Option<impl FnOnce(&C) -> bool>,
    ) -> Result<(Easy<C>, Option<C>), Error> {
        let idle = self.free.borrow_mut().pop();
        let (raw, errbuf, kept) = match idle {
            Some(Idle {
                raw,
                errbuf,
                kept: Some(kept),
            }) if fits.is_some_and(|fits| fits(&kept)) => (raw, errbuf, Some(kept)),
            Some(Idle { raw, errbuf, kept }) => {
                if kept.is_some() {
                    // SAFETY: an idle handle of ours, reset before `kept`
                    // (which may hold its share handle) drops.
                    unsafe { reset(raw) };
                }
                (raw, errbuf, None)
            }
            None => {
                super::global::init();
                // SAFETY: global init done; no other preconditions.
                let raw = NonNull::new(unsafe { curl::curl_easy_init() })
                    .ok_or_else(|| Error::new(ErrorKind::Other, "curl_easy_init failed"))?;
                (raw, None, None)
            }
        };
        let reused = kept.is_some();
        let mut errbuf = errbuf.unwrap_or_else(HandleBox::new);
        // No text of an earlier transfer (libcurl 7.60+ empties it too).
        errbuf.errbuf.get_mut()[0] = 0;
        errbuf.user.set(std::ptr::null());
        let easy = Easy {
            raw,
            errbuf: Some(errbuf),
            pool: Some(self.clone()),
            reused,
        };
        Ok((easy, kept))
    }
}

impl<C> EasyPool<C> {
    /// Takes back an owned easy handle that is in no multi handle any more,
    /// still configured as `kept` describes, or to be reset (`None`).
    ///
    /// # Safety
    /// `easy` is a valid easy handle nobody else uses.
    unsafe fn give(&self, easy: NonNull<CURL>, errbuf: Option<Box<ErrorBuffer>>, kept: Option<C>) {
        if let Some(b) = &errbuf {
            b.user.set(std::ptr::null());
        }
        let mut free = self.free.borrow_mut();
        if free.len() < EASY_POOL_MAX {
            if kept.is_none() {
                // SAFETY: per the contract.
                unsafe { reset(easy) };
            }
            free.push(Idle {
                raw: easy,
                errbuf,
                kept,
            });
        } else {
            // SAFETY: per the contract.
            unsafe { curl::curl_easy_cleanup(easy.as_ptr()) };
        }
    }
}

impl<C> Drop for EasyPool<C> {
    fn drop(&mut self) {
        // Each handle is cleaned up before its error buffer is freed and
        // before its kept options, which may hold the share handle it is
        // linked to (cleanup unlinks it, taking the share's lock).
        for idle in self.free.get_mut().drain(..) {
            // SAFETY: idle handles owned by the pool.
            unsafe { curl::curl_easy_cleanup(idle.raw.as_ptr()) };
            drop(idle);
        }
    }
}

/// Resets an idle handle to libcurl's defaults and unlinks it from its share
/// handle, which `curl_easy_reset` leaves linked: whatever kept the share
/// alive for this handle (a transfer's options) is about to go.
///
/// # Safety
/// `easy` is a valid easy handle in no multi handle, which nobody else uses.
unsafe fn reset(easy: NonNull<CURL>) {
    let no_share: *mut curl::CURLSH = std::ptr::null_mut();
    // SAFETY: per the contract; reset drops every option (and so every
    // pointer into a transfer state about to be freed), and a null
    // CURLOPT_SHARE unlinks the share, if any, under its lock.
    unsafe {
        curl::curl_easy_reset(easy.as_ptr());
        curl::curl_easy_setopt(easy.as_ptr(), curl::CURLOPT_SHARE, no_share);
    }
}
