//! [`Url`]: a URL parsed by libcurl's own parser (`CURLU`).

use super::{check_url, sys};
use crate::error::{Error, ErrorKind};
use std::ffi::CString;
use std::ptr::NonNull;

/// A parsed URL; an easy handle reads it through `CURLOPT_CURLU` instead of
/// parsing the string a second time, so it must outlive that handle.
pub(crate) struct Url {
    raw: NonNull<sys::Curlu>,
    /// Whether the scheme is https.
    https: bool,
}

/// URLs shorter than this are handed to libcurl from a stack buffer (no
/// allocation for the NUL-terminated copy).
const STACK_URL: usize = 512;

impl Url {
    /// Parses `url` and checks that its scheme is one of the comma-separated
    /// `protocols`.
    pub fn parse(url: &str, protocols: &str) -> Result<Url, Error> {
        if url.as_bytes().contains(&0) {
            return Err(Error::invalid("URL contains a NUL byte"));
        }
        let mut stack = [0u8; STACK_URL];
        let heap;
        let c_url: &[u8] = if url.len() < STACK_URL {
            stack[..url.len()].copy_from_slice(url.as_bytes());
            &stack[..=url.len()]
        } else {
            heap = CString::new(url).map_err(|_| Error::invalid("URL contains a NUL byte"))?;
            heap.as_bytes_with_nul()
        };
        // SAFETY: curl_url allocates a handle that Url frees.
        let raw = NonNull::new(unsafe { sys::curl_url() })
            .ok_or_else(|| Error::new(ErrorKind::Other, "curl_url failed"))?;
        // Parsed without a default scheme, so the URL starts with its scheme.
        let scheme = url.trim_start().split(':').next().unwrap_or_default();
        let parsed = Url {
            raw,
            https: scheme.eq_ignore_ascii_case("https"),
        };
        // SAFETY: valid handle and a NUL-terminated string (checked above to
        // hold no other NUL) that libcurl copies.
        let rc = unsafe {
            sys::curl_url_set(raw.as_ptr(), sys::CURLUPART_URL, c_url.as_ptr().cast(), 0)
        };
        check_url(rc, url)?;
        let allowed = protocols
            .split(',')
            .any(|p| p.trim().eq_ignore_ascii_case(scheme));
        if !allowed {
            return Err(Error::new(
                ErrorKind::UnsupportedProtocol,
                format!(
                    "scheme {:?} of {url:?} is not allowed (allowed: {protocols})",
                    scheme.to_ascii_lowercase()
                ),
            ));
        }
        Ok(parsed)
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The raw handle, for `CURLOPT_CURLU`.
    pub fn raw(&self) -> *mut sys::Curlu {
        self.raw.as_ptr()
    }
}

impl Drop for Url {
    fn drop(&mut self) {
        // SAFETY: from curl_url, freed exactly once; the easy handle that used
        // it was cleaned up or reset before (its owner drops it first).
        unsafe { sys::curl_url_cleanup(self.raw.as_ptr()) };
    }
}
