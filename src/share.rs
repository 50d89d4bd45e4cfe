//! [`Share`]: a libcurl share handle (`CURLSH`) used by several loops at once.

use crate::error::{Error, ErrorKind};
use curl_sys::{self as curl, CURL, CURLSH};
use libc::c_void;
use std::cell::UnsafeCell;
use std::sync::Arc;

/// One lock per `curl_lock_data` value libcurl may ask for.
const LOCKS: usize = 8;

struct Inner {
    handle: *mut CURLSH,
    locks: Box<[UnsafeCell<libc::pthread_mutex_t>; LOCKS]>,
}

// SAFETY: libcurl allows a share handle to be used from several threads as
// long as the lock callbacks serialise access, which the mutexes do; the
// handle itself is only configured in `Share::new` and freed in Drop, when no
// easy handle uses it any more (each holds an Arc).
unsafe impl Send for Inner {}
// SAFETY: as above; the mutexes are only touched through pthread calls.
unsafe impl Sync for Inner {}

/// Caches shared by every transfer of the `Multi`s that use this `Share`,
/// across threads: the DNS cache and TLS session cache. (libcurl does not
/// support sharing its connection cache between concurrently running threads,
/// so each loop keeps its own connections.) Cheap to clone.
#[derive(Clone)]
pub struct Share {
    inner: Arc<Inner>,
}

impl Share {
    /// A share handle with the DNS and TLS session caches shared.
    ///
    /// # Errors
    /// If libcurl cannot create or configure it.
    pub fn new() -> Result<Share, Error> {
        crate::global::init();
        // SAFETY: global init done.
        let handle = unsafe { curl::curl_share_init() };
        if handle.is_null() {
            return Err(Error::new(ErrorKind::Other, "curl_share_init failed"));
        }
        let inner = Arc::new(Inner {
            handle,
            locks: Box::new(std::array::from_fn(|_| {
                UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)
            })),
        });
        let lock: curl::curl_lock_function = on_lock;
        let unlock: curl::curl_unlock_function = on_unlock;
        let userdata = Arc::as_ptr(&inner) as *mut c_void;
        // SAFETY: a fresh share handle; each option with the type it expects.
        // `userdata` stays valid as long as the handle (both live in `inner`).
        let codes = unsafe {
            [
                curl::curl_share_setopt(handle, curl::CURLSHOPT_LOCKFUNC, lock),
                curl::curl_share_setopt(handle, curl::CURLSHOPT_UNLOCKFUNC, unlock),
                curl::curl_share_setopt(handle, curl::CURLSHOPT_USERDATA, userdata),
                curl::curl_share_setopt(handle, curl::CURLSHOPT_SHARE, curl::CURL_LOCK_DATA_DNS),
                curl::curl_share_setopt(
                    handle,
                    curl::CURLSHOPT_SHARE,
                    curl::CURL_LOCK_DATA_SSL_SESSION,
                ),
            ]
        };
        if let Some(code) = codes.iter().find(|&&c| c != 0) {
            return Err(Error::new(
                ErrorKind::Other,
                format!("curl_share_setopt failed with code {code}"),
            ));
        }
        Ok(Share { inner })
    }

    /// The raw handle, for `CURLOPT_SHARE`.
    pub(crate) fn raw(&self) -> *mut CURLSH {
        self.inner.handle
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // SAFETY: no easy handle uses the share any more (they hold the Arc).
        unsafe { curl::curl_share_cleanup(self.handle) };
    }
}

fn lock_for(userdata: *mut c_void, data: curl::curl_lock_data) -> *mut libc::pthread_mutex_t {
    // SAFETY: USERDATA is the Inner of a live Share (see Share::new).
    let inner = unsafe { &*(userdata as *const Inner) };
    inner.locks[(data as usize).min(LOCKS - 1)].get()
}

extern "C" fn on_lock(
    _easy: *mut CURL,
    data: curl::curl_lock_data,
    _access: curl::curl_lock_access,
    userdata: *mut c_void,
) {
    // SAFETY: a statically initialised mutex that is never moved (boxed).
    unsafe { libc::pthread_mutex_lock(lock_for(userdata, data)) };
}

extern "C" fn on_unlock(_easy: *mut CURL, data: curl::curl_lock_data, userdata: *mut c_void) {
    // SAFETY: libcurl unlocks what it locked, on the same thread.
    unsafe { libc::pthread_mutex_unlock(lock_for(userdata, data)) };
}
