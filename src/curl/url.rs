//! [`Url`]: a URL parsed by libcurl's own parser (`CURLU`), and
//! [`check`]: the cheaper way for a plain `http(s)://host[:port]/path` URL.

use super::{check_url, sys};
use crate::error::{Error, ErrorKind};
use std::cell::RefCell;
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

/// A URL checked for a transfer: `parsed` is `None` for a [plain](plain_origin_end)
/// URL, which the easy handle gets as a string (`CURLOPT_URL`): libcurl
/// parses it once at connect, where a `CURLU` handle costs a parse here plus
/// the whole URL put back together by libcurl for every transfer.
pub(crate) struct CheckedUrl {
    pub parsed: Option<Url>,
    pub https: bool,
}

/// The origin (`http://host:port`, as written) of the last plain URL
/// [`check`] accepted: a URL that starts with it and goes on with its path
/// (or ends) has only that path scanned, which is most of a client's URLs.
#[derive(Default)]
pub(crate) struct LastOrigin(RefCell<String>);

/// Checks `url` for a transfer: its scheme must be one of the comma-separated
/// `protocols`, and libcurl's parser must accept it (a plain URL, see
/// [`plain_origin_end`], needs no parse here; any other is parsed into a [`Url`]).
pub(crate) fn check(url: &str, protocols: &str, last: &LastOrigin) -> Result<CheckedUrl, Error> {
    // (`None`: the last origin's, which stays the last.)
    let origin_end = if same_origin_plain_path(url, last) {
        None
    } else {
        match plain_origin_end(url.as_bytes()) {
            Some(end) => Some(end),
            None => {
                let parsed = Url::parse(url, protocols)?;
                let https = parsed.https;
                return Ok(CheckedUrl {
                    parsed: Some(parsed),
                    https,
                });
            }
        }
    };
    let https = url.starts_with("https:");
    let scheme = if https { "https" } else { "http" };
    check_allowed(scheme, url, protocols)?;
    if let Some(end) = origin_end {
        let mut origin = last.0.borrow_mut();
        origin.clear();
        origin.push_str(&url[..end]);
    }
    Ok(CheckedUrl {
        parsed: None,
        https,
    })
}

/// Whether `url` is `last`'s origin followed by a plain path (or nothing):
/// then it is a plain URL.
fn same_origin_plain_path(url: &str, last: &LastOrigin) -> bool {
    let origin = last.0.borrow();
    match url.as_bytes().strip_prefix(origin.as_bytes()) {
        Some(rest) if !origin.is_empty() && url.len() <= PLAIN_URL_MAX => {
            rest.first().is_none_or(|&b| b == b'/') && plain_path(rest)
        }
        _ => false,
    }
}

/// Where the origin of `url` ends, if libcurl's URL parser (7.88 and later)
/// is sure to accept `url` as it stands: `http://` or `https://` in lower
/// case, a host name or IPv4 address of letters, digits, dots and hyphens
/// (starting with a letter or digit, no `..`), an optional port 1-65535,
/// and a path and query of unreserved characters, sub-delimiters, `:@/?`
/// and complete `%XX` escapes (no fragment, no space, no control or
/// non-ASCII byte). Anything else is left to libcurl's parser at start, so
/// a bad URL is still an error there.
fn plain_origin_end(url: &[u8]) -> Option<usize> {
    if url.len() > PLAIN_URL_MAX {
        return None;
    }
    let rest = url
        .strip_prefix(b"http://")
        .or_else(|| url.strip_prefix(b"https://"))?;
    let scheme_len = url.len() - rest.len();
    // The host, up to the first byte that cannot be in one (each loop below
    // is a plain scan: a table lookup per byte)...
    let mut i = rest
        .iter()
        .position(|&b| CLASS[usize::from(b)] & HOST == 0)
        .unwrap_or(rest.len());
    let host = &rest[..i];
    if host.first() == Some(&b'.') || host.windows(2).any(|pair| pair == b"..") {
        return None;
    }
    if i == 0 || i > 253 || rest[0] == b'-' {
        return None;
    }
    // ...then a port, 1-65535 without a leading zero...
    if rest.get(i) == Some(&b':') {
        i += 1;
        let digits = i;
        let mut port = 0u32;
        while let Some(&d) = rest.get(i).filter(|d| d.is_ascii_digit()) {
            port = port * 10 + u32::from(d - b'0');
            if port > 65_535 {
                return None;
            }
            i += 1;
        }
        if i == digits || rest[digits] == b'0' {
            return None;
        }
    }
    // ...then nothing, or a path and query from a '/'.
    let path = &rest[i..];
    if path.first().is_some_and(|&b| b != b'/') || !plain_path(path) {
        return None;
    }
    Some(scheme_len + i)
}

/// Whether `path` (empty, or from its '/') holds only characters of a plain
/// path and query, and complete `%XX` escapes.
fn plain_path(mut path: &[u8]) -> bool {
    loop {
        let Some(at) = path.iter().position(|&b| CLASS[usize::from(b)] & PATH == 0) else {
            return true;
        };
        match path.get(at..at + 3) {
            Some([b'%', high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                path = &path[at + 3..];
            }
            _ => return false,
        }
    }
}

/// [`CLASS`] bit: a byte of a plain host.
const HOST: u8 = 1;
/// [`CLASS`] bit: a byte of a plain path or query (but `%`, checked apart).
const PATH: u8 = 2;

/// Which of [`HOST`] and [`PATH`] each byte is: letters and digits both;
/// `.` and `-` both; the other unreserved and sub-delimiter characters and
/// `:@/?` only `PATH`.
const CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || c == b'.' || c == b'-' {
            class[b] = HOST | PATH;
        }
        b += 1;
    }
    let others = b"_~!$&'()*+,;=:@/?";
    let mut i = 0;
    while i < others.len() {
        class[others[i] as usize] = PATH;
        i += 1;
    }
    class
};

/// The longest URL [`plain_origin_end`] looks at (libcurl takes up to 8 MB).
const PLAIN_URL_MAX: usize = 8_000;

/// An error unless `scheme` is one of the comma-separated `protocols`.
fn check_allowed(scheme: &str, url: &str, protocols: &str) -> Result<(), Error> {
    // The default list first, without splitting it.
    let allowed = (protocols == "http,https" && matches!(scheme, "http" | "https"))
        || protocols
            .split(',')
            .any(|p| p.trim().eq_ignore_ascii_case(scheme));
    if allowed {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::UnsupportedProtocol,
        format!(
            "scheme {:?} of {url:?} is not allowed (allowed: {protocols})",
            scheme.to_ascii_lowercase()
        ),
    ))
}

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
        check_allowed(scheme, url, protocols)?;
        Ok(parsed)
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

#[cfg(test)]
mod tests {
    use super::{check, plain_origin_end, LastOrigin};

    /// Whether libcurl's parser is sure to accept `url` as it stands.
    fn is_plain(url: &[u8]) -> bool {
        plain_origin_end(url).is_some()
    }

    #[test]
    fn plain_urls_are_the_simple_ones() {
        for url in [
            "http://127.0.0.1:8080/k/f00001",
            "https://example.com",
            "http://a-b.example/x/y?q=1&r=%2F",
            "http://h:65535/",
        ] {
            assert!(is_plain(url.as_bytes()), "{url}");
        }
        for url in [
            "HTTP://example.com/",
            "http://[::1]:80/",
            "http://user@host/",
            "http://host:0/",
            "http://host:65536/",
            "http://host:/",
            "http:///path",
            "http://.host/",
            "http://ho..st/",
            "http://host/a b",
            "http://host/%zz",
            "http://host/%4",
            "http://host/#frag",
            "http://hö.st/",
            "ftp://host/",
            "http://host/\\x",
            "http://host/a\0b",
            "http://ho\0st/",
            "http://host:8\0/",
            "http://host?q",
            "http://host:080/",
            "http://host:1234567/",
        ] {
            assert!(!is_plain(url.as_bytes()), "{url}");
        }
    }

    #[test]
    fn every_plain_url_is_one_libcurl_parses() {
        for url in [
            "http://127.0.0.1:8080/k/f00001",
            "http://0.0.0.0/",
            "http://999.999.999.999/",
            "http://1/",
            "http://a.b.c./",
            "https://x-/?/?@:;=+$,!*'()~._-%41",
        ] {
            assert!(is_plain(url.as_bytes()), "{url}");
            let parsed = super::Url::parse(url, "http,https");
            assert!(parsed.is_ok(), "{url}: {:?}", parsed.err());
        }
        let last = LastOrigin::default();
        assert!(check("ftp://host/", "http,https", &last).is_err());
        let https = check("https://host/", "https", &last).unwrap();
        assert!(https.https && https.parsed.is_none());
        assert!(check("http://host/", "https", &last).is_err());
    }

    /// A URL of the last accepted origin has only its path checked; any
    /// other is checked whole, and is judged the same either way.
    #[test]
    fn urls_of_the_last_origin_are_judged_as_any_other() {
        let last = LastOrigin::default();
        let plain = |url: &str, protocols: &str| {
            check(url, protocols, &last).map(|checked| (checked.https, checked.parsed.is_none()))
        };
        assert_eq!(plain("http://h:1/a", "http,https").unwrap(), (false, true));
        assert_eq!(*last.0.borrow(), "http://h:1");
        // The same origin: plain paths, an empty one, a query.
        assert_eq!(
            plain("http://h:1/b?c=%41", "http,https").unwrap(),
            (false, true)
        );
        assert_eq!(plain("http://h:1", "http,https").unwrap(), (false, true));
        // The same origin, a path that is not plain: parsed (or refused) by libcurl.
        assert_ne!(
            plain("http://h:1/%41%4", "http,https").map(|p| p.1).ok(),
            Some(true)
        );
        assert_eq!(
            plain("http://h:1/a#f", "http,https").unwrap(),
            (false, false)
        );
        // The same origin, a scheme no longer allowed.
        assert!(plain("http://h:1/a", "https").is_err());
        // Longer origins that start with it are other origins.
        assert_eq!(plain("http://h:12/a", "http,https").unwrap(), (false, true));
        assert_eq!(*last.0.borrow(), "http://h:12");
        assert_ne!(
            plain("http://h:12x/a", "http,https").map(|p| p.1).ok(),
            Some(true)
        );
        assert_eq!(plain("http://h:1/a", "http,https").unwrap(), (false, true));
        assert_ne!(
            plain("http://h:1.b/a", "http,https").map(|p| p.1).ok(),
            Some(true)
        );
        // A query right after the origin is not plain.
        assert_eq!(plain("http://h:1?q", "http,https").unwrap(), (false, false));
        assert_eq!(plain("https://h:1/a", "http,https").unwrap(), (true, true));
        assert_eq!(*last.0.borrow(), "https://h:1");
    }
}
