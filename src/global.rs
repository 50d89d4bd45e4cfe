//! libcurl's one-time global initialisation, and what the linked libraries can do.

use crate::curl::{self, global::version_info};
use once_cell::sync::OnceCell;
use std::ffi::CStr;

/// Versions and capabilities of the libcurl and libuv uvcurl runs on.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VersionInfo {
    /// libcurl's version: `"8.22.0-DEV"` for the bundled build (curl-sys
    /// builds it from a source snapshot), `"7.88.1"` for Debian 12's.
    pub curl: String,
    /// libuv's version: `"1.53.0"` for the bundled copy; with the system
    /// libuv (see the README's C section), the host's, e.g. `"1.44.2"`.
    pub uv: String,
    /// The TLS library libcurl uses, e.g. `"OpenSSL/3.0.19"`.
    pub ssl: Option<String>,
    /// libcurl can speak HTTP/2.
    pub http2: bool,
    /// libcurl resolves names without blocking the loop (threaded resolver or c-ares).
    pub async_dns: bool,
    /// libcurl can wait on sockets numbered 1024 and above (it was built with
    /// `poll()`, not `select()`). `None` when this process cannot open such a
    /// descriptor to find out (its `RLIMIT_NOFILE` is 1024 or less).
    pub high_fds: Option<bool>,
}

/// Reports the libcurl and libuv versions in use and what they support.
///
/// ```
/// let info = uvcurl::version();
/// println!("libcurl {} ({:?}), libuv {}", info.curl, info.ssl, info.uv);
/// assert!(info.curl.starts_with(|c: char| c.is_ascii_digit()));
/// assert!(info.uv.starts_with("1."));
/// ```
pub fn version() -> VersionInfo {
    let data = version_info();
    let text = |p: *const libc::c_char| {
        // SAFETY: libcurl and libuv version strings are static NUL-terminated strings.
        (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
    };
    VersionInfo {
        curl: text(data.version).unwrap_or_default(),
        // SAFETY: uv_version_string returns a static string.
        uv: text(unsafe { libuv_sys2::uv_version_string() }).unwrap_or_default(),
        ssl: text(data.ssl_version),
        http2: data.features & curl_sys::CURL_VERSION_HTTP2 != 0,
        async_dns: data.features & curl_sys::CURL_VERSION_ASYNCHDNS != 0,
        high_fds: high_fds_supported(),
    }
}

/// libcurl's version as a number, e.g. `0x081600` for 8.22.0.
pub(crate) fn version_number() -> u32 {
    version_info().version_num
}

static HIGH_FDS: OnceCell<bool> = OnceCell::new();

/// Asks libcurl to wait on a descriptor numbered ≥ 1024: a `select()`-based
/// libcurl refuses (`CURLM_UNRECOVERABLE_POLL`), a `poll()`-based one does not.
fn high_fds_supported() -> Option<bool> {
    if let Some(known) = HIGH_FDS.get() {
        return Some(*known);
    }
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: F_DUPFD with a valid descriptor; fails (-1) if the limit is too low.
    let high = unsafe { libc::fcntl(fds[0], libc::F_DUPFD_CLOEXEC, 1024) };
    let answer = if high >= 1024 {
        // A fresh multi handle, waiting without a timeout on our own descriptor.
        let answer = curl::Multi::new().map(|multi| multi.wait_readable(high, 0).is_ok());
        answer.ok()
    } else {
        None
    };
    // SAFETY: closing descriptors we opened above.
    unsafe {
        if high >= 0 {
            libc::close(high);
        }
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    if let Some(known) = answer {
        let _ = HIGH_FDS.set(known);
    }
    answer
}

/// What the probe found, without probing: `None` until a probe could run
/// (the descriptor limit was 1024 or below until then).
pub(crate) fn known_high_fds() -> Option<bool> {
    HIGH_FDS.get().copied()
}

/// Warns once through `log` about limits of the linked libcurl.
pub(crate) fn warn_about_limits() {
    static WARNED: OnceCell<()> = OnceCell::new();
    let info = version();
    if info.high_fds.is_none() {
        return; // ask again next time: the process may raise its limit later
    }
    WARNED.get_or_init(|| {
        if info.high_fds == Some(false) {
            log::warn!(
                "uvcurl: libcurl {} uses select(): transfers on sockets numbered 1024 or \
                 above will fail. Build it with CFLAGS=-DHAVE_POLL (see uvcurl's README).",
                info.curl
            );
        }
        if !info.async_dns {
            log::warn!(
                "uvcurl: libcurl {} has no asynchronous resolver; name lookups block the loop",
                info.curl
            );
        }
    });
}
