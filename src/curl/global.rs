//! libcurl's process-wide calls: `curl_global_init`, version data and the
//! static texts of its error codes.

use super::sys;
use curl_sys as curl;
use once_cell::sync::Lazy;
use std::ffi::CStr;

static CURL_INIT: Lazy<curl::CURLcode> =
    // SAFETY: runs once, before any other libcurl call of this crate, as
    // curl_global_init requires.
    Lazy::new(|| unsafe { curl::curl_global_init(curl::CURL_GLOBAL_ALL) });

/// Makes sure `curl_global_init` has run (once per process).
pub(crate) fn init() {
    let rc = *CURL_INIT;
    if rc != curl::CURLE_OK {
        log::error!("uvcurl: curl_global_init failed with code {rc}");
    }
}

/// libcurl's version data (`curl_version_info(CURLVERSION_NOW)`).
pub(crate) fn version_info() -> &'static curl::curl_version_info_data {
    init();
    // SAFETY: curl_version_info returns a pointer to static data.
    unsafe { &*curl::curl_version_info(curl::CURLVERSION_NOW) }
}

/// The text of a static C string libcurl returned (empty if null).
fn static_text(text: *const libc::c_char) -> String {
    if text.is_null() {
        return String::new();
    }
    // SAFETY: libcurl's strerror functions return static NUL-terminated strings.
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// libcurl's generic text for a `CURLcode`.
pub(crate) fn easy_strerror(code: curl::CURLcode) -> String {
    // SAFETY: defined for any code; returns a static string.
    static_text(unsafe { curl::curl_easy_strerror(code) })
}

/// libcurl's text for a `CURLMcode`.
pub(crate) fn multi_strerror(code: curl::CURLMcode) -> String {
    // SAFETY: defined for any code; returns a static string.
    static_text(unsafe { curl::curl_multi_strerror(code) })
}

/// libcurl's text for a `CURLUcode`.
pub(crate) fn url_strerror(code: libc::c_int) -> String {
    // SAFETY: defined for any code; returns a static string.
    static_text(unsafe { sys::curl_url_strerror(code) })
}
