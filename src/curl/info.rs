//! [`EasyInfo`]: reading back what libcurl recorded about a handle's
//! transfer (`curl_easy_getinfo`, and the header API for its header fields).

use super::sys;
use curl_sys::{self as curl, CURL};
use libc::{c_char, c_long};
use std::ffi::CStr;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// A borrowed easy handle whose transfer libcurl is not running (between
/// its callbacks, or once it is out of the multi), to read back from; `'a`
/// is the borrow of its owner.
#[derive(Clone, Copy)]
pub(crate) struct EasyInfo<'a> {
    raw: NonNull<CURL>,
    _owner: PhantomData<&'a ()>,
}

impl EasyInfo<'_> {
    /// # Safety
    /// `raw` is a live easy handle for as long as the value (or a copy)
    /// lives, used by no other thread meanwhile, and by libcurl only in calls
    /// made through it.
    pub unsafe fn new<'a>(raw: NonNull<CURL>) -> EasyInfo<'a> {
        EasyInfo {
            raw,
            _owner: PhantomData,
        }
    }

    /// `curl_easy_getinfo` for a long (0 if unavailable).
    pub fn long(&self, info: curl::CURLINFO) -> c_long {
        let mut value: c_long = 0;
        // SAFETY: live easy handle (see `new`), long-typed info, valid out pointer.
        unsafe { curl::curl_easy_getinfo(self.raw.as_ptr(), info, &mut value as *mut c_long) };
        value
    }

    /// `curl_easy_getinfo` for a `curl_off_t` (0 if unavailable).
    pub fn off_t(&self, info: curl::CURLINFO) -> i64 {
        let mut value: curl::curl_off_t = 0;
        // SAFETY: live easy handle, curl_off_t-typed info, valid out pointer.
        unsafe {
            curl::curl_easy_getinfo(self.raw.as_ptr(), info, &mut value as *mut curl::curl_off_t)
        };
        value
    }

    /// `curl_easy_getinfo` for a string (empty if unavailable), made `likely`
    /// itself (no allocation, no UTF-8 check) when that holds the very same
    /// text, as a transfer's effective URL usually equals the URL it was given.
    pub fn string_like(&self, info: curl::CURLINFO, likely: String) -> String {
        let mut value: *const c_char = std::ptr::null();
        // SAFETY: live easy handle, string-typed info, valid out pointer.
        unsafe {
            curl::curl_easy_getinfo(self.raw.as_ptr(), info, &mut value as *mut *const c_char)
        };
        if value.is_null() {
            return String::new();
        }
        // SAFETY: a NUL-terminated string owned by the handle, read at once.
        let value = unsafe { CStr::from_ptr(value) };
        if value.to_bytes() == likely.as_bytes() {
            return likely;
        }
        // (UTF-8 checked first: faster than the lossy conversion's chunks.)
        match value.to_str() {
            Ok(text) => text.to_owned(),
            Err(_) => value.to_string_lossy().into_owned(),
        }
    }

    /// Calls `each(trailer, name, value)` for every header field and trailer
    /// of the transfer's last response (after redirects; not the fields of
    /// `1xx` or proxy `CONNECT` responses), in the order received, through
    /// libcurl's header API. Nothing when that API is not built in (see
    /// [`header_api_available`]).
    pub fn each_field(&self, mut each: impl FnMut(bool, &[u8], &[u8])) {
        let mut previous: *mut sys::CurlHeader = std::ptr::null_mut();
        loop {
            // SAFETY: live handle (see `new`); `previous` is null or what the
            // last call returned, which stays valid until the next call.
            let header = unsafe {
                sys::curl_easy_nextheader(
                    self.raw.as_ptr(),
                    sys::CURLH_HEADER | sys::CURLH_TRAILER,
                    -1,
                    previous,
                )
            };
            // SAFETY: null, or libcurl's header struct, valid until the next call.
            let Some(field) = (unsafe { header.as_ref() }) else {
                return;
            };
            if !field.name.is_null() && !field.value.is_null() {
                // SAFETY: NUL-terminated strings owned by the handle's header
                // store, read before the next call.
                let (name, value) =
                    unsafe { (CStr::from_ptr(field.name), CStr::from_ptr(field.value)) };
                let trailer = field.origin & sys::CURLH_TRAILER != 0;
                each(trailer, name.to_bytes(), value.to_bytes());
            }
            previous = header;
        }
    }
}

/// The first libcurl whose header API marks HTTP/2 trailers as trailers.
const HEADER_API_SINCE: u32 = 0x08_01_00; // 8.1.0

/// Whether libcurl `version_num`, just initialised, has a header API uvcurl
/// can read a transfer's fields from at its end, instead of through a header
/// callback: built in (a build may leave it out, `CURL_DISABLE_HEADERS_API`)
/// and 8.1.0 or later (before, HTTP/2 trailers are stored as header fields,
/// so they could not be told apart). Asked once, by `global`'s setup.
pub(super) fn probe_header_api(version_num: u32) -> bool {
    if version_num < HEADER_API_SINCE {
        return false;
    }
    // SAFETY: global init done; a fresh handle, cleaned up below.
    let Some(easy) = NonNull::new(unsafe { curl::curl_easy_init() }) else {
        return false;
    };
    let mut out: *mut sys::CurlHeader = std::ptr::null_mut();
    // SAFETY: a live handle, a NUL-terminated name, a valid out pointer.
    let rc = unsafe {
        sys::curl_easy_header(
            easy.as_ptr(),
            c"content-type".as_ptr(),
            0,
            sys::CURLH_HEADER,
            -1,
            &mut out,
        )
    };
    // SAFETY: from curl_easy_init above, cleaned up once.
    unsafe { curl::curl_easy_cleanup(easy.as_ptr()) };
    rc != sys::CURLHE_NOT_BUILT_IN
}
