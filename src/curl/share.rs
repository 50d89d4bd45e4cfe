//! [`ShareHandle`]: an owned `CURLSH`.

use super::check_share;
use crate::error::{Error, ErrorKind};
use curl_sys::{self as curl, CURLSH};
use libc::c_void;
use std::ptr::NonNull;

/// A libcurl share handle; `Drop` calls `curl_share_cleanup`, which must come
/// after every easy handle using it is gone and before the lock callbacks'
/// data is freed.
pub(crate) struct ShareHandle {
    raw: NonNull<CURLSH>,
}

impl ShareHandle {
    /// A new share handle.
    pub fn new() -> Result<ShareHandle, Error> {
        super::global::init();
        // SAFETY: global init done.
        NonNull::new(unsafe { curl::curl_share_init() })
            .map(|raw| ShareHandle { raw })
            .ok_or_else(|| Error::new(ErrorKind::Other, "curl_share_init failed"))
    }

    /// Installs the lock callbacks and shares the DNS and TLS session caches.
    ///
    /// # Safety
    /// `userdata` is what the callbacks expect and outlives this handle.
    pub unsafe fn configure(
        &self,
        lock: curl::curl_lock_function,
        unlock: curl::curl_unlock_function,
        userdata: *mut c_void,
    ) -> Result<(), Error> {
        let raw = self.raw();
        // SAFETY: a fresh share handle; each option with the type it expects;
        // `userdata` per the contract.
        let codes = unsafe {
            [
                curl::curl_share_setopt(raw, curl::CURLSHOPT_LOCKFUNC, lock),
                curl::curl_share_setopt(raw, curl::CURLSHOPT_UNLOCKFUNC, unlock),
                curl::curl_share_setopt(raw, curl::CURLSHOPT_USERDATA, userdata),
                curl::curl_share_setopt(raw, curl::CURLSHOPT_SHARE, curl::CURL_LOCK_DATA_DNS),
                curl::curl_share_setopt(
                    raw,
                    curl::CURLSHOPT_SHARE,
                    curl::CURL_LOCK_DATA_SSL_SESSION,
                ),
            ]
        };
        match codes.iter().find(|&&c| c != curl::CURLSHE_OK) {
            Some(&code) => check_share(code, "curl_share_setopt"),
            None => Ok(()),
        }
    }

    /// The raw handle, for `CURLOPT_SHARE`.
    pub fn raw(&self) -> *mut CURLSH {
        self.raw.as_ptr()
    }
}

impl Drop for ShareHandle {
    fn drop(&mut self) {
        // SAFETY: from curl_share_init, cleaned up exactly once, when no easy
        // handle uses it any more (each transfer keeps the Share alive, and
        // each driver until its idle handles are cleaned up).
        let code = unsafe { curl::curl_share_cleanup(self.raw()) };
        // CURLSHE_IN_USE: libcurl kept the handle (leaked), and an easy
        // handle still linked to it would call the freed lock callbacks'
        // data when it is cleaned up.
        if code != curl::CURLSHE_OK {
            log::error!("uvcurl: curl_share_cleanup failed ({code}): a handle still uses it");
            debug_assert!(false, "curl_share_cleanup: {code}");
        }
    }
}
