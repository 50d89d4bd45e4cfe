//! libcurl's process-wide calls: `curl_global_init`, version data and the
//! static texts of its error codes.

use super::sys;
use crate::sync::annotate;
use curl_sys as curl;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering};
use std::sync::Once;

/// libcurl's one-time setup: `curl_global_init`, then `curl_version_info`,
/// then whether its header API can be used (`info::probe_header_api`).
/// The version data is fetched here once and kept: `curl_version_info`
/// rewrites its static struct on every call, so two threads calling it at
/// once (two loops of a `Client` starting) would race on it.
static SETUP: Once = Once::new();
static INIT_CODE: AtomicI32 = AtomicI32::new(curl::CURLE_OK as i32);
static VERSION: AtomicPtr<curl::curl_version_info_data> = AtomicPtr::new(std::ptr::null_mut());
static HEADER_API: AtomicBool = AtomicBool::new(false);

fn setup() {
    SETUP.call_once(|| {
        // SAFETY: runs once, before any other libcurl call of this crate, as
        // curl_global_init requires.
        let code = unsafe { curl::curl_global_init(curl::CURL_GLOBAL_ALL) };
        // SAFETY: after the global init; returns a pointer to static data.
        let version = unsafe { curl::curl_version_info(curl::CURLVERSION_NOW) };
        INIT_CODE.store(code as i32, Ordering::Relaxed);
        VERSION.store(version, Ordering::Relaxed);
        if code == curl::CURLE_OK && !version.is_null() {
            // SAFETY: libcurl's static version data, just returned.
            let version_num = unsafe { (*version).version_num };
            HEADER_API.store(
                super::info::probe_header_api(version_num),
                Ordering::Relaxed,
            );
        }
        // `Once` orders this before every caller's return; the race
        // detectors cannot see that (std's Once is built on atomics).
        annotate::before(&SETUP);
    });
    annotate::after(&SETUP);
}

/// Makes sure `curl_global_init` has run (once per process).
pub(crate) fn init() {
    setup();
    let rc = INIT_CODE.load(Ordering::Relaxed);
    if rc != curl::CURLE_OK as i32 {
        log::error!("uvcurl: curl_global_init failed with code {rc}");
    }
}

/// Whether a transfer's header fields can be read from libcurl's header API
/// at its end (see `info::probe_header_api`; asked once per process).
pub(crate) fn header_api_available() -> bool {
    setup();
    HEADER_API.load(Ordering::Relaxed)
}

/// libcurl's version data (`curl_version_info(CURLVERSION_NOW)`, fetched once).
pub(crate) fn version_info() -> &'static curl::curl_version_info_data {
    init();
    // SAFETY: set in `setup` (which `init` completed) to the pointer
    // curl_version_info returned: libcurl's static data, never null.
    unsafe { &*VERSION.load(Ordering::Relaxed) }
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
