//! The C API's return codes, their texts, and the mapping from [`Error`].

use crate::error::{Error, ErrorKind};
use libc::{c_char, c_int};

/// Success.
pub const UVCURL_OK: c_int = 0;
/// An argument is invalid: a null pointer where one is required.
pub const UVCURL_EINVAL: c_int = -1;
/// The multi is closed: `uvcurl_multi_close` was called on it (it may already
/// be released), or the pointer is not a multi returned by `uvcurl_multi_new`.
pub const UVCURL_ECLOSED: c_int = -2;
/// The easy handle is already added to this multi and its callback has not run yet.
pub const UVCURL_EEXIST: c_int = -3;
/// The easy handle is not in this multi (never added, or its callback already ran).
pub const UVCURL_ENOTFOUND: c_int = -4;
/// Called from a thread other than the one that created the multi.
pub const UVCURL_EWRONGTHREAD: c_int = -5;
/// Passed to a `uvcurl_done_cb`: the transfer was cancelled with
/// `uvcurl_multi_cancel`, or its multi was closed before it finished.
pub const UVCURL_ECANCELED: c_int = -6;
/// libcurl's multi interface failed (for `uvcurl_multi_add`: typically the
/// easy handle is already in another multi handle).
pub const UVCURL_ECURLM: c_int = -7;
/// A libuv call failed (creating or starting a handle on the loop).
pub const UVCURL_EUV: c_int = -8;
/// Out of memory (libcurl could not create a handle).
pub const UVCURL_ENOMEM: c_int = -9;
/// A bug in uvcurl was caught at the API boundary (a Rust panic); nothing was
/// unwound into the caller. The multi may be unusable; close it.
pub const UVCURL_EPANIC: c_int = -10;
/// The libuv running in the process is older than the oldest one uvcurl
/// supports (1.44.0; see `uvcurl_libuv_version`). Returned by
/// `uvcurl_multi_new`, which then creates nothing.
pub const UVCURL_EUVVERSION: c_int = -11;

/// The text of a code, NUL-terminated and static.
pub(super) fn text(code: c_int) -> &'static [u8] {
    match code {
        UVCURL_OK => b"success\0",
        UVCURL_EINVAL => b"invalid argument (a required pointer is NULL)\0",
        UVCURL_ECLOSED => b"the multi is closed\0",
        UVCURL_EEXIST => b"the easy handle is already added to this multi\0",
        UVCURL_ENOTFOUND => b"the easy handle is not running in this multi\0",
        UVCURL_EWRONGTHREAD => b"called from a thread other than the multi's loop thread\0",
        UVCURL_ECANCELED => b"the transfer was cancelled\0",
        UVCURL_ECURLM => b"libcurl's multi interface failed\0",
        UVCURL_EUV => b"a libuv call failed\0",
        UVCURL_ENOMEM => b"out of memory\0",
        UVCURL_EPANIC => b"internal error in uvcurl (panic caught at the API boundary)\0",
        UVCURL_EUVVERSION => {
            b"the libuv in this process is older than 1.44.0, the oldest uvcurl supports\0"
        }
        _ => b"unknown uvcurl error code\0",
    }
}

/// `text` as a C string pointer.
pub(super) fn text_ptr(code: c_int) -> *const c_char {
    text(code).as_ptr().cast()
}

/// The code for an error returned by a call (the transfer never started).
pub(super) fn of_error(error: &Error) -> c_int {
    if error.uv_code().is_some() {
        return UVCURL_EUV;
    }
    // One code per kind; the kinds a C call can return have codes of their own.
    match error.kind() {
        ErrorKind::InvalidInput => UVCURL_EINVAL,
        ErrorKind::Closed => UVCURL_ECLOSED,
        ErrorKind::InvalidState => UVCURL_EEXIST,
        ErrorKind::Cancelled => UVCURL_ECANCELED,
        ErrorKind::CallbackPanic => UVCURL_EPANIC,
        ErrorKind::OutOfMemory => UVCURL_ENOMEM,
        _ => UVCURL_ECURLM,
    }
}

/// The `result` a completion callback receives: libcurl's `CURLcode` (0 on
/// success), or a negative uvcurl code.
pub(super) fn of_outcome(outcome: &Result<(), Error>) -> c_int {
    match outcome {
        Ok(()) => 0,
        Err(error) => match (error.curl_code(), error.kind()) {
            (Some(code), _) => code,
            (None, ErrorKind::Cancelled | ErrorKind::Closed) => UVCURL_ECANCELED,
            (None, _) => of_error(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_own_text() {
        let codes = [
            UVCURL_OK,
            UVCURL_EINVAL,
            UVCURL_ECLOSED,
            UVCURL_EEXIST,
            UVCURL_ENOTFOUND,
            UVCURL_EWRONGTHREAD,
            UVCURL_ECANCELED,
            UVCURL_ECURLM,
            UVCURL_EUV,
            UVCURL_ENOMEM,
            UVCURL_EPANIC,
            UVCURL_EUVVERSION,
        ];
        let unknown = text(1234);
        for code in codes {
            assert_ne!(text(code), unknown, "code {code}");
            assert_eq!(text(code).last(), Some(&0));
        }
    }

    #[test]
    fn outcomes_map_to_curl_codes_or_cancelled() {
        assert_eq!(of_outcome(&Ok(())), 0);
        let failed = Error::from_curl(curl_sys::CURLE_COULDNT_CONNECT, "");
        assert_eq!(of_outcome(&Err(failed)), 7);
        assert_eq!(of_outcome(&Err(Error::cancelled())), UVCURL_ECANCELED);
        assert_eq!(of_outcome(&Err(Error::closed())), UVCURL_ECANCELED);
    }
}
