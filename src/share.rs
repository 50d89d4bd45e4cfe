//! [`Share`]: a libcurl share handle (`CURLSH`) used by several loops at once.

use crate::curl::ShareHandle;
use crate::error::Error;
use curl_sys::{self as curl, CURL, CURLSH};
use libc::c_void;
use std::cell::UnsafeCell;
use std::sync::Arc;

/// One lock per `curl_lock_data` value libcurl may ask for.
const LOCKS: usize = 8;

struct Inner {
    /// Dropped first: `curl_share_cleanup` may still take the locks below.
    handle: ShareHandle,
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
        let inner = Arc::new(Inner {
            handle: ShareHandle::new()?,
            locks: Box::new(std::array::from_fn(|_| {
                UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER)
            })),
        });
        let userdata = Arc::as_ptr(&inner) as *mut c_void;
        // SAFETY: `userdata` is the Inner that owns both the handle and the
        // locks, so it lives as long as the handle.
        unsafe { inner.handle.configure(on_lock, on_unlock, userdata)? };
        Ok(Share { inner })
    }

    /// The raw handle, for `CURLOPT_SHARE`.
    pub(crate) fn raw(&self) -> *mut CURLSH {
        self.inner.handle.raw()
    }
}

/// Two `Share`s are equal when they are clones of one share handle.
impl PartialEq for Share {
    fn eq(&self, other: &Share) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Share")
            .field(&Arc::as_ptr(&self.inner))
            .finish()
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
