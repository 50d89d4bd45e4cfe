//! The one place that calls libcurl: owning types for its handles and one
//! helper per code space that turns a return code into a `Result`.
//!
//! - [`Multi`] (`CURLM`), [`Easy`] and its [`EasyPool`] (`CURL`), [`Slist`]
//!   (`curl_slist`), [`Url`] (`CURLU`) and [`ShareHandle`] (`CURLSH`): each
//!   frees its handle in `Drop`, exactly once.
//! - [`check_easy`], [`check_multi`], [`check_share`] and [`check_url`] for
//!   `CURLcode`, `CURLMcode`, `CURLSHcode` and `CURLUcode`.
//! - [`EasyInfo`]: what libcurl recorded about a transfer (getinfo, header
//!   API), read back.
//! - [`sys`]: declarations `curl-sys` lacks; [`global`]: one-time init,
//!   version data and error texts.
//!
//! Everything above this module speaks in these types; only `src/capi/`
//! hands the caller's raw `CURL *`/`CURLM *` through.

mod easy;
pub(crate) mod global;
mod info;
mod multi;
mod share;
mod slist;
pub(crate) mod sys;
mod url;

pub(crate) use easy::{Easy, EasyPool, HandleBox};
pub(crate) use global::header_api_available;
pub(crate) use info::EasyInfo;
pub(crate) use multi::{Multi, MultiCallbacks, MultiRef};
pub(crate) use share::ShareHandle;
pub(crate) use slist::Slist;
pub(crate) use url::{check as check_url_for_transfer, LastOrigin, Url};

use crate::error::{Error, ErrorKind};
use curl_sys as curl;

/// A `CURLcode` as a `Result`; `what` names the call or option for the message.
pub(crate) fn check_easy(rc: curl::CURLcode, what: &str) -> Result<(), Error> {
    if rc == curl::CURLE_OK {
        Ok(())
    } else {
        Err(Error::from_curl(rc, what))
    }
}

/// A `CURLMcode` as a `Result`; `call` names the failed function.
#[inline]
pub(crate) fn check_multi(rc: curl::CURLMcode, call: &str) -> Result<(), Error> {
    if rc == curl::CURLM_OK {
        Ok(())
    } else {
        Err(multi_error(rc, call))
    }
}

/// The error of a failed multi call (out of line: the rare path).
#[cold]
#[inline(never)]
fn multi_error(rc: curl::CURLMcode, call: &str) -> Error {
    Error::from_multi(rc, call)
}

/// A `CURLSHcode` as a `Result`; `call` names the failed function.
pub(crate) fn check_share(rc: curl::CURLSHcode, call: &str) -> Result<(), Error> {
    if rc == curl::CURLSHE_OK {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Other,
            format!("{call} failed with code {rc}"),
        ))
    }
}

/// A `CURLUcode` as a `Result`: an invalid-input error about `url`.
pub(crate) fn check_url(rc: libc::c_int, url: &str) -> Result<(), Error> {
    if rc == 0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid URL {url:?}: {}",
            global::url_strerror(rc)
        )))
    }
}
