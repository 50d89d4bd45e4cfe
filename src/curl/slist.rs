//! [`Slist`]: an owned `curl_slist`.

use crate::error::{Error, ErrorKind};
use curl_sys as curl;
use std::ffi::CString;

/// A list of strings for libcurl (e.g. `CURLOPT_HTTPHEADER`), freed on drop.
/// libcurl does not copy it: it must outlive every handle that uses it.
pub(crate) struct Slist {
    raw: *mut curl::curl_slist,
}

impl Slist {
    /// A list of `lines`, in order.
    pub fn new<'a>(lines: impl IntoIterator<Item = &'a str>) -> Result<Slist, Error> {
        let mut list = Slist {
            raw: std::ptr::null_mut(),
        };
        for line in lines {
            let line = CString::new(line).map_err(|_| Error::invalid("NUL in header"))?;
            // SAFETY: curl_slist_append copies the string; `raw` is null or a list
            // it returned.
            let appended = unsafe { curl::curl_slist_append(list.raw, line.as_ptr()) };
            if appended.is_null() {
                // `list` frees what was built so far.
                return Err(Error::new(
                    ErrorKind::Other,
                    "out of memory building headers",
                ));
            }
            list.raw = appended;
        }
        Ok(list)
    }

    /// The raw list (null when empty).
    pub fn raw(&self) -> *mut curl::curl_slist {
        self.raw
    }
}

impl Drop for Slist {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: a list built by curl_slist_append, freed exactly once.
            unsafe { curl::curl_slist_free_all(self.raw) };
        }
    }
}
