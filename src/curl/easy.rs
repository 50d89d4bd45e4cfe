//! [`Easy`]: a `CURL` handle, owned (back to its [`EasyPool`] when dropped)
//! or external (a caller's handle that uvcurl drives but never frees).

use super::{check_easy, sys};
use crate::error::{Error, ErrorKind};
use curl_sys::{self as curl, CURL};
use libc::{c_char, c_long, c_void};
use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::rc::Rc;

/// An easy handle.
pub(crate) struct Easy {
    raw: NonNull<CURL>,
    /// Where an owned handle goes when dropped; `None`: an external handle.
    pool: Option<Rc<EasyPool>>,
}

impl Easy {
    /// Wraps a caller's easy handle; dropping the wrapper leaves it alone.
    ///
    /// # Safety
    /// `raw` is a valid easy handle that stays valid while the wrapper lives.
    pub unsafe fn external(raw: NonNull<CURL>) -> Easy {
        Easy { raw, pool: None }
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
        let value = CString::new(value).map_err(|_| Error::invalid("string with a NUL byte"))?;
        // SAFETY: string options are copied by libcurl (since 7.17).
        setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.raw(), option, value.as_ptr())
        })
    }

    /// `curl_easy_getinfo` for a long (0 if unavailable).
    pub fn info_long(&self, info: curl::CURLINFO) -> c_long {
        let mut value: c_long = 0;
        // SAFETY: live easy handle, long-typed info, valid out pointer.
        unsafe { curl::curl_easy_getinfo(self.raw(), info, &mut value as *mut c_long) };
        value
    }

    /// `curl_easy_getinfo` for a `curl_off_t` (0 if unavailable).
    pub fn info_off_t(&self, info: curl::CURLINFO) -> i64 {
        let mut value: curl::curl_off_t = 0;
        // SAFETY: live easy handle, curl_off_t-typed info, valid out pointer.
        unsafe { curl::curl_easy_getinfo(self.raw(), info, &mut value as *mut curl::curl_off_t) };
        value
    }

    /// `curl_easy_getinfo` for a string, copied (empty if unavailable).
    pub fn info_string(&self, info: curl::CURLINFO) -> String {
        let mut value: *const c_char = std::ptr::null();
        // SAFETY: live easy handle, string-typed info, valid out pointer.
        unsafe { curl::curl_easy_getinfo(self.raw(), info, &mut value as *mut *const c_char) };
        if value.is_null() {
            return String::new();
        }
        // SAFETY: a NUL-terminated string owned by the handle, copied at once.
        unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned()
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

impl Drop for Easy {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            // SAFETY: an owned handle (from the pool), which its owner removed
            // from the multi before dropping it; nothing else uses it.
            unsafe { pool.give(self.raw) };
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
/// `curl_easy_cleanup` plus `curl_easy_init`.
#[derive(Default)]
pub(crate) struct EasyPool {
    free: RefCell<Vec<NonNull<CURL>>>,
}

/// Most idle easy handles kept.
const EASY_POOL_MAX: usize = 256;

impl EasyPool {
    /// An easy handle with default options, which goes back here when dropped.
    pub fn take(self: &Rc<Self>) -> Result<Easy, Error> {
        let reused = self.free.borrow_mut().pop();
        let raw = match reused {
            Some(raw) => raw,
            None => {
                super::global::init();
                // SAFETY: global init done; no other preconditions.
                NonNull::new(unsafe { curl::curl_easy_init() })
                    .ok_or_else(|| Error::new(ErrorKind::Other, "curl_easy_init failed"))?
            }
        };
        Ok(Easy {
            raw,
            pool: Some(self.clone()),
        })
    }

    /// Takes back an owned easy handle that is in no multi handle any more.
    ///
    /// # Safety
    /// `easy` is a valid easy handle nobody else uses.
    unsafe fn give(&self, easy: NonNull<CURL>) {
        let mut free = self.free.borrow_mut();
        if free.len() < EASY_POOL_MAX {
            // SAFETY: per the contract; reset drops every option (and so every
            // pointer into the transfer state that is about to be freed).
            unsafe { curl::curl_easy_reset(easy.as_ptr()) };
            free.push(easy);
        } else {
            // SAFETY: per the contract.
            unsafe { curl::curl_easy_cleanup(easy.as_ptr()) };
        }
    }
}

impl Drop for EasyPool {
    fn drop(&mut self) {
        for easy in self.free.get_mut().drain(..) {
            // SAFETY: idle handles owned by the pool.
            unsafe { curl::curl_easy_cleanup(easy.as_ptr()) };
        }
    }
}
