//! libcurl declarations that `curl-sys` 0.4.91 does not carry, and the
//! numbers uvcurl uses that it does not name.
//!
//! All of them exist in libcurl 7.85 and later (the oldest libcurl uvcurl
//! supports is Debian 12's 7.88); the numbers are libcurl's stable ABI.

use curl_sys::{CURLoption, CURLINFO};
use libc::{c_char, c_int, c_uint};

const CURLOPTTYPE_STRINGPOINT: CURLoption = 10_000;
const CURLINFO_LONG: CURLINFO = 0x20_0000;
const CURLINFO_OFF_T: CURLINFO = 0x60_0000;

/// `CURLMOPT_MAX_CONCURRENT_STREAMS` (7.67.0).
pub const CURLMOPT_MAX_CONCURRENT_STREAMS: curl_sys::CURLMoption = 16;

/// `CURLOPT_CURLU` (7.63.0): a parsed URL handle instead of a string.
pub const CURLOPT_CURLU: CURLoption = 10_000 + 282;

pub const CURLOPT_PROTOCOLS_STR: CURLoption = CURLOPTTYPE_STRINGPOINT + 318;
pub const CURLOPT_REDIR_PROTOCOLS_STR: CURLoption = CURLOPTTYPE_STRINGPOINT + 319;

pub const CURLINFO_HTTP_VERSION: CURLINFO = CURLINFO_LONG + 46;
pub const CURLINFO_SIZE_UPLOAD_T: CURLINFO = CURLINFO_OFF_T + 7;
pub const CURLINFO_SIZE_DOWNLOAD_T: CURLINFO = CURLINFO_OFF_T + 8;
pub const CURLINFO_CONTENT_LENGTH_DOWNLOAD_T: CURLINFO = CURLINFO_OFF_T + 15;
pub const CURLINFO_TOTAL_TIME_T: CURLINFO = CURLINFO_OFF_T + 50;
pub const CURLINFO_NAMELOOKUP_TIME_T: CURLINFO = CURLINFO_OFF_T + 51;
pub const CURLINFO_CONNECT_TIME_T: CURLINFO = CURLINFO_OFF_T + 52;
pub const CURLINFO_STARTTRANSFER_TIME_T: CURLINFO = CURLINFO_OFF_T + 54;
pub const CURLINFO_APPCONNECT_TIME_T: CURLINFO = CURLINFO_OFF_T + 56;

/// `CURL_WRITEFUNC_PAUSE` / `CURL_READFUNC_PAUSE`.
pub const CURL_WRITEFUNC_PAUSE: usize = 0x1000_0001;
pub const CURL_READFUNC_ABORT: usize = 0x1000_0000;

/// Opaque `CURLU`.
#[repr(C)]
pub struct Curlu {
    _private: [u8; 0],
}

pub const CURLUPART_URL: c_int = 0;

extern "C" {
    pub fn curl_url() -> *mut Curlu;
    pub fn curl_url_cleanup(handle: *mut Curlu);
    pub fn curl_url_set(
        handle: *mut Curlu,
        what: c_int,
        part: *const c_char,
        flags: c_uint,
    ) -> c_int;
    pub fn curl_url_strerror(code: c_int) -> *const c_char;
}

/// `CURLE_NOT_BUILT_IN`: an option or feature this libcurl was built without.
pub const CURLE_NOT_BUILT_IN: curl_sys::CURLcode = 4;
/// `CURLE_HTTP3` (7.68.0).
pub const CURLE_HTTP3: curl_sys::CURLcode = 95;
/// `CURLE_TOO_LARGE` (8.6.0).
pub const CURLE_TOO_LARGE: curl_sys::CURLcode = 100;

/// `CURL_HTTP_VERSION_*` values `CURLINFO_HTTP_VERSION` reports.
pub const CURL_HTTP_VERSION_1_0: libc::c_long = 1;
pub const CURL_HTTP_VERSION_1_1: libc::c_long = 2;
pub const CURL_HTTP_VERSION_2_0: libc::c_long = 3;
pub const CURL_HTTP_VERSION_3: libc::c_long = 30;

/// `struct curl_header` (libcurl's header API, 7.83.0; stable since 7.84.0):
/// public and documented in `curl_easy_header(3)`, fields in this order.
#[repr(C)]
pub struct CurlHeader {
    pub name: *mut c_char,
    pub value: *mut c_char,
    pub amount: libc::size_t,
    pub index: libc::size_t,
    pub origin: c_uint,
    pub anchor: *mut libc::c_void,
}

/// `CURLH_HEADER`: a field of a response's header block.
pub const CURLH_HEADER: c_uint = 1 << 0;
/// `CURLH_TRAILER`: a field sent after the body.
pub const CURLH_TRAILER: c_uint = 1 << 1;
/// `CURLHE_NOT_BUILT_IN`: this libcurl was built without the header API.
pub const CURLHE_NOT_BUILT_IN: c_int = 7;

extern "C" {
    pub fn curl_easy_header(
        easy: *mut curl_sys::CURL,
        name: *const c_char,
        index: libc::size_t,
        origin: c_uint,
        request: c_int,
        hout: *mut *mut CurlHeader,
    ) -> c_int;
    pub fn curl_easy_nextheader(
        easy: *mut curl_sys::CURL,
        origin: c_uint,
        request: c_int,
        prev: *mut CurlHeader,
    ) -> *mut CurlHeader;
}
