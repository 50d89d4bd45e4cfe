//! A [`Request`] turned into easy-handle options: the [`OptionSet`] it asks
//! for, and the options set on the handle.

use super::trampolines::{on_header, on_read, on_write};
use super::{ProxyEnv, TransferState};
use crate::curl::{sys, Slist};
use crate::error::Error;
use crate::request::{HttpVersionPref, RareOptions, Request};
use curl_sys as curl;
use libc::{c_long, c_void};
use std::borrow::Cow;
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

/// Every value [`configure`] derives an option from, except the
/// per-transfer pointers (URL handle, error buffer, callback data, body).
/// Two transfers with equal option sets leave an easy handle with the same
/// options: a handle kept configured for one is reused for the other
/// without `curl_easy_reset` (see `EasyPool::take`), and handles configured
/// alike share one set (an `Rc`), header list included.
///
/// Whenever `configure` starts using another request field, it must be
/// added here (the request's fields are moved in, so nothing is copied).
#[derive(Debug, PartialEq)]
pub(crate) struct OptionSet {
    method: Cow<'static, str>,
    /// Header lines: equal lines make equal lists (the list itself is built
    /// once per set, see `header_list`).
    headers: Vec<String>,
    follow_redirects: bool,
    max_redirects: u32,
    protocols: Cow<'static, str>,
    timeout: Option<Duration>,
    verify_tls: bool,
    version: HttpVersionPref,
    /// Whether the URL is https: only then can HTTP/2 be negotiated, and
    /// waiting for a connection that may multiplex pays off.
    tls: bool,
    /// Whether the URL goes to the handle as a parsed `CURLOPT_CURLU` (else
    /// as a `CURLOPT_URL` string): a handle kept configured with one never
    /// serves the other, so a string URL never meets a stale `CURLU` pointer.
    parsed_url: bool,
    /// The options few requests set, boxed (`None` when none is): an option
    /// set lives in every running transfer and every idle pooled handle.
    rare: Option<Box<RareOptions>>,
    /// `CURLOPT_SHARE`, equal when it is the same share handle. Held here,
    /// it lives as long as the handle is linked to it: while the transfer
    /// runs, and while the handle waits in the pool still configured (the
    /// pool unlinks a handle before it drops these options).
    share: Option<crate::Share>,
    /// Whether the environment named proxies (the same for every transfer
    /// of a driver, so for every handle in its pool).
    proxy_env: ProxyEnv,
    /// Whether a header callback collects the fields while they arrive: for
    /// a head callback, or a libcurl without its header API (else they are
    /// read from that API, and only if asked; see `response::details`).
    pub collects_head: bool,
    /// `CURLOPT_HTTPHEADER`, built from `headers` when the set is first put
    /// on a handle (libcurl does not copy it), and pointed at by every handle
    /// configured with the set after that. It goes wherever the set goes: to
    /// the pool with a handle kept configured, and back to the next
    /// transfer that reuses that handle, which so needs neither a new list
    /// nor a `curl_easy_setopt`. Not compared: it follows from `headers`.
    header_list: HeaderList,
}

/// The built header list of an [`OptionSet`]; equal to any other.
#[derive(Default)]
struct HeaderList(Cell<Option<Slist>>);

impl PartialEq for HeaderList {
    fn eq(&self, _: &HeaderList) -> bool {
        true
    }
}

impl std::fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeaderList")
    }
}

impl OptionSet {
    /// Moves the option fields out of `r` (its body, callbacks and URL stay).
    pub(super) fn take_from(
        r: &mut Request,
        tls: bool,
        parsed_url: bool,
        share: Option<&crate::Share>,
        proxy_env: ProxyEnv,
    ) -> OptionSet {
        // (Before anything is taken out of `r`: it looks at the protocols.)
        let collects_head = collects_head(r);
        OptionSet {
            method: std::mem::take(&mut r.method),
            headers: std::mem::take(&mut r.headers),
            follow_redirects: r.follow_redirects,
            max_redirects: r.max_redirects,
            protocols: std::mem::take(&mut r.protocols),
            timeout: r.timeout,
            verify_tls: r.verify_tls,
            version: r.version,
            tls,
            parsed_url,
            header_list: HeaderList::default(),
            rare: r.rare.take(),
            share: share.cloned(),
            proxy_env,
            collects_head,
        }
    }

    /// Whether [`OptionSet::take_from`] with these arguments would make a set
    /// equal to this one, without taking anything out of `r`: a handle kept
    /// configured with this set can serve `r` as it is.
    pub(super) fn matches(
        &self,
        r: &Request,
        tls: bool,
        parsed_url: bool,
        share: Option<&crate::Share>,
        proxy_env: ProxyEnv,
    ) -> bool {
        // Every field named (no `..`): a field added to the set must be
        // compared here too.
        let OptionSet {
            method,
            headers,
            follow_redirects,
            max_redirects,
            protocols,
            timeout,
            verify_tls,
            version,
            tls: kept_tls,
            parsed_url: kept_parsed_url,
            rare,
            share: kept_share,
            proxy_env: kept_proxy_env,
            collects_head: kept_collects_head,
            header_list: _,
        } = self;
        *method == r.method
            && *headers == r.headers
            && *follow_redirects == r.follow_redirects
            && *max_redirects == r.max_redirects
            && *protocols == r.protocols
            && *timeout == r.timeout
            && *verify_tls == r.verify_tls
            && *version == r.version
            && *kept_tls == tls
            && *kept_parsed_url == parsed_url
            && *rare == r.rare
            && kept_share.as_ref() == share
            && *kept_proxy_env == proxy_env
            // (With equal protocols a set that collects no head would not
            // for `r` either unless `r` asks to: only then is more to look at.)
            && if *kept_collects_head {
                collects_head(r)
            } else {
                r.on_head.is_none() && !r.collect_head
            }
    }
}

/// The option set a driver made last: the next handle to configure whose
/// request's set would be equal gets it too, so handles configured alike
/// (most of a driver's, and of its transfers in flight) share one set and
/// its header list.
#[derive(Default)]
pub(crate) struct SharedOptions {
    last: Cell<Option<Rc<OptionSet>>>,
    /// How many sets were made, for tests.
    made: Cell<u64>,
}

impl SharedOptions {
    /// The set for a handle to configure for `r`: the last one made if
    /// equal (the request's options are then left in it), else one taken
    /// from `r`, which becomes the last made.
    pub fn for_request(
        &self,
        r: &mut Request,
        tls: bool,
        parsed_url: bool,
        share: Option<&crate::Share>,
        proxy_env: ProxyEnv,
    ) -> Rc<OptionSet> {
        let set = match self.last.take() {
            Some(last) if last.matches(r, tls, parsed_url, share, proxy_env) => last,
            _ => {
                self.made.set(self.made.get() + 1);
                Rc::new(OptionSet::take_from(r, tls, parsed_url, share, proxy_env))
            }
        };
        self.last.set(Some(Rc::clone(&set)));
        set
    }

    /// How many sets were made.
    pub fn made(&self) -> u64 {
        self.made.get()
    }

    /// Lets go of the last set (at the driver's close: the last request's
    /// headers and share handle are not kept past it).
    pub fn forget(&self) {
        drop(self.last.take());
    }
}

/// Whether a header callback collects the fields of `r`'s response as they
/// arrive (see [`OptionSet::collects_head`]): also for a request that may
/// use a protocol other than HTTP, whose header lines libcurl's header API
/// does not keep.
fn collects_head(r: &Request) -> bool {
    r.on_head.is_some()
        || r.collect_head
        || !only_http(&r.protocols)
        || !crate::curl::header_api_available()
}

/// Whether every one of the comma-separated `protocols` is http or https.
fn only_http(protocols: &str) -> bool {
    protocols == "http,https"
        || protocols.split(',').all(|p| {
            let p = p.trim();
            p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https")
        })
}

/// Sets the easy handle's options from `r`. On a handle the pool handed out
/// still configured with an equal option set (`reused`), only the URL is
/// set: the header list came back with the set, and the error buffer and the
/// callbacks' data slot are the handle's own.
pub(super) fn configure(
    state: &TransferState,
    r: &OptionSet,
    upload_len: Option<u64>,
    url_text: &str,
) -> Result<(), Error> {
    let easy = &state.easy;
    // The callbacks' user data: the handle's slot, which names this state
    // (see `Easy::set_user`); a reused handle has it set already.
    let me = easy.user_slot();
    let write: curl::curl_write_callback = on_write;
    let header: curl::curl_write_callback = on_header;
    let read: curl::curl_read_callback = on_read;
    let reused = easy.reused();
    // SAFETY: each pointer has the type its option expects and is owned by
    // `state`, which drops the easy handle first.
    unsafe {
        if !reused {
            // The buffer lives as long as the handle (a reused one has it set).
            easy.set_ptr(curl::CURLOPT_ERRORBUFFER, easy.error_buffer().cast())?;
        }
        if let Some(url) = state.parsed_url() {
            easy.set_ptr(sys::CURLOPT_CURLU, url.raw().cast())?;
        }
    }
    if state.parsed_url().is_none() {
        // A plain URL (see `check_url_for_transfer`), so without NUL; this
        // handle has no `CURLU` set (fresh, reset, or kept by a transfer with
        // a string URL).
        easy.set_nul_free_str(curl::CURLOPT_URL, url_text)?;
    }
    // SAFETY: as above.
    unsafe {
        if !reused {
            easy.set_ptr(curl::CURLOPT_WRITEFUNCTION, write as *mut c_void)?;
            easy.set_ptr(curl::CURLOPT_WRITEDATA, me)?;
            // (Without, libcurl calls no function for header lines: the
            // handle is fresh or reset, so neither is set.)
            if r.collects_head {
                easy.set_ptr(curl::CURLOPT_HEADERFUNCTION, header as *mut c_void)?;
                easy.set_ptr(curl::CURLOPT_HEADERDATA, me)?;
            }
        }
    }
    if reused {
        // Equal option sets: every other option already has its value (a
        // transfer with a body is never kept configured), the header list
        // included (`r` is the set the handle was kept with).
        return Ok(());
    }
    easy.set_long(curl::CURLOPT_NOSIGNAL, 1)?;
    easy.set_str(sys::CURLOPT_PROTOCOLS_STR, &r.protocols)?;
    easy.set_str(sys::CURLOPT_REDIR_PROTOCOLS_STR, &r.protocols)?;
    easy.set_long(curl::CURLOPT_FOLLOWLOCATION, r.follow_redirects as c_long)?;
    easy.set_long(curl::CURLOPT_MAXREDIRS, r.max_redirects as c_long)?;

    let method = &*r.method;
    if let Some(bytes) = state.post_body() {
        easy.set_off_t(curl::CURLOPT_POSTFIELDSIZE_LARGE, bytes.len() as i64)?;
        // SAFETY: the body is owned by `state` (see above); libcurl only reads it.
        unsafe { easy.set_ptr(curl::CURLOPT_POSTFIELDS, bytes.as_ptr() as *mut c_void)? };
    } else if state.has_upload() {
        let len = upload_len.map_or(-1, |n| n as i64);
        easy.set_long(curl::CURLOPT_POST, 1)?;
        // SAFETY: the read callback and its data, `state` (see above).
        unsafe {
            easy.set_ptr(curl::CURLOPT_READFUNCTION, read as *mut c_void)?;
            easy.set_ptr(curl::CURLOPT_READDATA, me)?;
        }
        easy.set_off_t(curl::CURLOPT_POSTFIELDSIZE_LARGE, len)?;
    } else if method == "HEAD" {
        easy.set_long(curl::CURLOPT_NOBODY, 1)?;
    } else if method == "POST" {
        easy.set_long(curl::CURLOPT_POST, 1)?;
        easy.set_off_t(curl::CURLOPT_POSTFIELDSIZE_LARGE, 0)?;
    }
    if !matches!(method, "GET" | "HEAD" | "POST") {
        easy.set_str(curl::CURLOPT_CUSTOMREQUEST, method)?;
    }
    set_headers(state, r)?;
    if let Some(t) = r.timeout {
        easy.set_long(curl::CURLOPT_TIMEOUT_MS, millis(t))?;
    }
    if let Some(rare) = &r.rare {
        set_rare(state, rare)?;
    }
    // What unset proxy variables mean, so that libcurl does not look them
    // up for every transfer (see `ProxyEnv`).
    let proxy_set = r.rare.as_ref().is_some_and(|rare| rare.proxy.is_some());
    if !r.proxy_env.proxy && !proxy_set {
        // No proxy at all: every host bypasses one, so libcurl skips its
        // proxy set-up whole (one string option, not two).
        easy.set_str(curl::CURLOPT_NOPROXY, "*")?;
    } else if !r.proxy_env.no_proxy {
        easy.set_str(curl::CURLOPT_NOPROXY, "")?;
    }
    if !r.verify_tls {
        // (Verification is libcurl's default: nothing to set otherwise.)
        easy.set_long(curl::CURLOPT_SSL_VERIFYPEER, 0)?;
        easy.set_long(curl::CURLOPT_SSL_VERIFYHOST, 0)?;
    }
    let (version, pipewait) = match r.version {
        HttpVersionPref::Http1_1 => (curl::CURL_HTTP_VERSION_1_1, false),
        HttpVersionPref::Http2OverTls => (curl::CURL_HTTP_VERSION_2TLS, r.tls),
        HttpVersionPref::Http2PriorKnowledge => (curl::CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, true),
    };
    easy.set_long(curl::CURLOPT_HTTP_VERSION, version as c_long)?;
    if pipewait {
        easy.set_long(curl::CURLOPT_PIPEWAIT, 1)?;
    }
    let buffer_size = r.rare.as_ref().and_then(|rare| rare.buffer_size);
    if let Some(size) = buffer_size.or_else(default_buffer_size) {
        easy.set_long(curl::CURLOPT_BUFFERSIZE, size as c_long)?;
    }
    if let Some(share) = &r.share {
        // SAFETY: the share handle is kept alive by the option set, which
        // `state` holds while the handle runs (see `OptionSet::share`).
        unsafe { easy.set_ptr(curl::CURLOPT_SHARE, share.raw().cast())? };
    }
    Ok(())
}

/// The options few requests set.
fn set_rare(state: &TransferState, r: &RareOptions) -> Result<(), Error> {
    let easy = &state.easy;
    if let Some(agent) = &r.user_agent {
        easy.set_str(curl::CURLOPT_USERAGENT, agent)?;
    }
    if let Some(t) = r.connect_timeout {
        easy.set_long(curl::CURLOPT_CONNECTTIMEOUT_MS, millis(t))?;
    }
    if let Some((limit, period)) = r.low_speed {
        easy.set_long(curl::CURLOPT_LOW_SPEED_LIMIT, limit as c_long)?;
        easy.set_long(
            curl::CURLOPT_LOW_SPEED_TIME,
            period.as_secs().max(1) as c_long,
        )?;
    }
    if let Some(path) = &r.ca_file {
        easy.set_str(curl::CURLOPT_CAINFO, path_text(path)?)?;
    }
    if let Some(path) = &r.ca_path {
        easy.set_str(curl::CURLOPT_CAPATH, path_text(path)?)?;
    }
    if let Some(proxy) = &r.proxy {
        easy.set_str(curl::CURLOPT_PROXY, proxy)?;
    }
    if let Some(speed) = r.max_recv_speed {
        easy.set_off_t(curl::CURLOPT_MAX_RECV_SPEED_LARGE, speed as i64)?;
    }
    if r.fresh_connection {
        easy.set_long(curl::CURLOPT_FRESH_CONNECT, 1)?;
    }
    Ok(())
}

/// `CURLOPT_HTTPHEADER`; the list is kept in the option set `r` (see
/// [`OptionSet::header_list`]), since libcurl does not copy it.
fn set_headers(state: &TransferState, r: &OptionSet) -> Result<(), Error> {
    if r.headers.is_empty() {
        return Ok(());
    }
    // Built once per set: other handles configured with this set point at
    // the same list, so it is never replaced.
    let list = match r.header_list.0.take() {
        Some(list) => list,
        None => Slist::new(r.headers.iter().map(String::as_str))?,
    };
    let raw = list.raw();
    r.header_list.0.set(Some(list));
    // SAFETY: the list is stored in `r`, the state's option set, which
    // drops after the easy handle (or goes to the pool with it, kept
    // configured, and is freed only after that handle is reset or cleaned
    // up); every handle configured with `r` holds `r`.
    unsafe { state.easy.set_ptr(curl::CURLOPT_HTTPHEADER, raw.cast()) }
}

fn path_text(path: &std::path::Path) -> Result<&str, Error> {
    path.to_str()
        .ok_or_else(|| Error::invalid(format!("path {} is not UTF-8", path.display())))
}

fn millis(d: Duration) -> c_long {
    d.as_millis().clamp(1, c_long::MAX as u128) as c_long
}

/// The receive buffer when the request names none: 512 KiB with a libcurl
/// that lends one buffer per multi handle to whichever transfer is receiving
/// (8.x; checked from 8.10 on), so a large one costs no memory per transfer
/// and bulk bodies take a quarter of the `recv` calls; libcurl's own 16 KiB
/// with older ones, where the buffer is allocated per transfer.
fn default_buffer_size() -> Option<usize> {
    /// The first libcurl whose shared receive buffer uvcurl relies on.
    const SHARED_BUFFER_SINCE: u32 = 0x08_0A_00; // 8.10.0
    /// The default with such a libcurl.
    const LARGE_BUFFER: usize = 512 << 10;
    (crate::global::version_number() >= SHARED_BUFFER_SINCE).then_some(LARGE_BUFFER)
}
