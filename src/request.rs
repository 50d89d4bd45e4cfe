//! [`Request`]: what to fetch and how, built with chained setters.

use crate::error::Error;
use crate::response::{Buffers, Head};
use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a data callback tells the transfer to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep going; the chunk was consumed.
    Continue,
    /// Pause receiving; the chunk was *not* consumed and is delivered again
    /// after [`Transfer::resume`](crate::Transfer::resume).
    Pause,
    /// Stop the transfer; it completes with [`ErrorKind::Aborted`](crate::ErrorKind::Aborted).
    Abort,
    /// Cancel the transfer, as [`Transfer::cancel`](crate::Transfer::cancel)
    /// would: no further callback but the completion, which reports
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled). Lets a callback
    /// cancel its own transfer without holding its `Transfer`.
    Cancel,
}

/// Which HTTP version to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersionPref {
    /// HTTP/1.1 only.
    Http1_1,
    /// HTTP/2 when TLS negotiates it with ALPN, HTTP/1.1 otherwise (the default).
    #[default]
    Http2OverTls,
    /// HTTP/2 with prior knowledge: also over cleartext (h2c), no upgrade.
    Http2PriorKnowledge,
}

/// The request body.
pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    Reader {
        reader: Box<dyn Read>,
        len: Option<u64>,
    },
}

/// The options of a [`Request`] that few requests set.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RareOptions {
    pub connect_timeout: Option<Duration>,
    pub low_speed: Option<(u32, Duration)>,
    pub ca_file: Option<PathBuf>,
    pub ca_path: Option<PathBuf>,
    pub proxy: Option<String>,
    pub user_agent: Option<String>,
    pub max_recv_speed: Option<u64>,
    pub buffer_size: Option<usize>,
    pub fresh_connection: bool,
}

pub(crate) type DataCallback = Box<dyn FnMut(&[u8]) -> Flow>;
pub(crate) type HeadCallback = Box<dyn FnMut(&Head) -> Flow>;

/// One HTTP request, built with chained setters.
///
/// Setters never fail: the first invalid value (a NUL byte, a header without a
/// name) is kept and reported when the request is started. Redirects are
/// followed (at most 10) over http and https only; TLS peers are verified.
///
/// ```
/// use std::time::Duration;
/// use uvcurl::Request;
///
/// let request = Request::post("http://127.0.0.1:8080/upload", b"hello".to_vec())
///     .header("Content-Type", "text/plain")
///     .timeout(Duration::from_secs(10))
///     .max_redirects(3);
/// # drop(request);
/// ```
pub struct Request {
    pub(crate) method: Cow<'static, str>,
    pub(crate) url: String,
    pub(crate) headers: Vec<String>,
    pub(crate) body: Body,
    pub(crate) follow_redirects: bool,
    pub(crate) max_redirects: u32,
    pub(crate) protocols: Cow<'static, str>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) verify_tls: bool,
    pub(crate) version: HttpVersionPref,
    /// The options few requests set, boxed (`None` when none is), so that a
    /// request is small to move; they go to the transfer's option set as
    /// they are.
    pub(crate) rare: Option<Box<RareOptions>>,
    pub(crate) on_data: Option<DataCallback>,
    pub(crate) on_head: Option<HeadCallback>,
    pub(crate) error: Option<Error>,
    /// Dropped with the transfer's state (after its completion).
    pub(crate) keep_alive: Vec<Box<dyn std::any::Any>>,
    /// Empty buffers for the response's header block and body, recycled
    /// from earlier responses (`remote::recycle`); none by default.
    pub(crate) buffers: Buffers,
    /// Whether a header callback collects the response's fields as they
    /// arrive, even without `on_head`: for a response read whole at its end
    /// (a remote one), where that costs less than libcurl's header API.
    pub(crate) collect_head: bool,
}

impl Request {
    /// A request with `method` (e.g. `"PATCH"`) for `url`.
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        // (A NUL byte in the URL is an error at start: the URL check there
        // reads every byte anyway.)
        Request::with_method(Cow::Borrowed("GET"), url.into()).method(method)
    }

    /// A request for one of the usual methods, which needs no check.
    #[inline]
    fn with_method(method: Cow<'static, str>, url: String) -> Request {
        Request {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            follow_redirects: true,
            max_redirects: 10,
            protocols: Cow::Borrowed("http,https"),
            timeout: None,
            verify_tls: true,
            version: HttpVersionPref::default(),
            rare: None,
            on_data: None,
            on_head: None,
            error: None,
            keep_alive: Vec::new(),
            buffers: Buffers::default(),
            collect_head: false,
        }
    }

    /// A `GET` request.
    #[inline]
    pub fn get(url: impl Into<String>) -> Request {
        Request::with_method(Cow::Borrowed("GET"), url.into())
    }

    /// A `HEAD` request.
    #[inline]
    pub fn head(url: impl Into<String>) -> Request {
        Request::with_method(Cow::Borrowed("HEAD"), url.into())
    }

    /// A `POST` request with `body`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Request {
        Request::with_method(Cow::Borrowed("POST"), url.into()).body(body)
    }

    /// A `PUT` request with `body`.
    pub fn put(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Request {
        Request::with_method(Cow::Borrowed("PUT"), url.into()).body(body)
    }

    /// The rare options, created on first use.
    fn rare(&mut self) -> &mut RareOptions {
        self.rare.get_or_insert_with(Box::default)
    }

    fn fail(&mut self, error: Error) {
        if self.error.is_none() {
            self.error = Some(error);
        }
    }

    fn clean(&mut self, what: &str, value: &str) -> bool {
        if value.contains('\0') {
            self.fail(Error::invalid(format!("{what} contains a NUL byte")));
            return false;
        }
        true
    }

    /// Sets the method; any token such as `GET`, `DELETE`, `PROPFIND`.
    pub fn method(mut self, method: &str) -> Request {
        let token_ok = !method.is_empty()
            && method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if token_ok {
            self.method = match method {
                "GET" => Cow::Borrowed("GET"),
                "HEAD" => Cow::Borrowed("HEAD"),
                "POST" => Cow::Borrowed("POST"),
                "PUT" => Cow::Borrowed("PUT"),
                other => Cow::Owned(other.to_owned()),
            };
        } else {
            self.fail(Error::invalid(format!("invalid HTTP method {method:?}")));
        }
        self
    }

    /// Adds a request header. Replaces curl's default for the same name
    /// (`Accept`, `Host`...); an empty value removes that default.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        // An RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ (a server
        // answers 400 to anything else, e.g. "[" or "@").
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let name_ok = !name.is_empty() && name.bytes().all(token);
        if !name_ok {
            self.fail(Error::invalid(format!("invalid header name {name:?}")));
        } else if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            self.fail(Error::invalid(format!(
                "header {name} has a CR, LF or NUL byte in its value"
            )));
        } else if value.is_empty() {
            // libcurl: "Name:" removes its own header of that name (and sends
            // none), where "Name;" would send the header with an empty value.
            self.headers.push(field_line(name, ""));
        } else {
            self.headers.push(field_line(name, value));
        }
        self
    }

    /// Adds a header given as one `Name: value` line.
    pub fn header_line(self, line: &str) -> Request {
        match line.split_once(':') {
            Some((name, value)) => self.header(name.trim(), value.trim()),
            None => {
                let mut this = self;
                this.fail(Error::invalid(format!("header line {line:?} has no colon")));
                this
            }
        }
    }

    /// Sends `body` (the whole of it is kept in memory).
    ///
    /// For a body over 1 MiB libcurl sends `Expect: 100-continue` and waits up
    /// to one second for the server's `100 Continue` before sending it (a
    /// server that never answers one costs that second). `.header("Expect", "")`
    /// removes the header and sends the body at once.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Body::Bytes(body.into());
        self
    }

    /// Streams the body from `reader`, read on the loop thread as the
    /// connection can take it. With `len` unknown, HTTP/1.1 uses chunked
    /// encoding. A read error fails the transfer with [`ErrorKind::Upload`](crate::ErrorKind::Upload).
    ///
    /// For a body over 1 MiB libcurl sends `Expect: 100-continue` and waits up
    /// to one second for the server's `100 Continue` before sending it (a
    /// server that never answers one costs that second). `.header("Expect", "")`
    /// removes the header and sends the body at once.
    pub fn body_reader(mut self, reader: impl Read + 'static, len: Option<u64>) -> Request {
        self.body = Body::Reader {
            reader: Box::new(reader),
            len,
        };
        self
    }

    /// Follows redirects (on by default).
    #[inline]
    pub fn follow_redirects(mut self, follow: bool) -> Request {
        self.follow_redirects = follow;
        self
    }

    /// Stops after `max` redirects with [`ErrorKind::TooManyRedirects`](crate::ErrorKind::TooManyRedirects) (default 10).
    #[inline]
    pub fn max_redirects(mut self, max: u32) -> Request {
        self.max_redirects = max;
        self
    }

    /// Time allowed to connect (including TLS).
    pub fn connect_timeout(mut self, timeout: Duration) -> Request {
        self.rare().connect_timeout = Some(timeout);
        self
    }

    /// Time allowed for the whole transfer.
    #[inline]
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Fails the transfer when it runs slower than `bytes_per_sec` for `period`.
    pub fn low_speed(mut self, bytes_per_sec: u32, period: Duration) -> Request {
        self.rare().low_speed = Some((bytes_per_sec, period));
        self
    }

    /// Verifies the TLS peer's certificate and host name (on by default).
    /// Turning it off makes the connection open to interception.
    #[inline]
    pub fn verify_tls(mut self, verify: bool) -> Request {
        self.verify_tls = verify;
        self
    }

    /// Trusts the CA certificates in this PEM file instead of the system's.
    pub fn ca_file(mut self, path: impl AsRef<Path>) -> Request {
        self.rare().ca_file = Some(path.as_ref().to_owned());
        self
    }

    /// Trusts the CA certificates in this (hashed) directory.
    pub fn ca_path(mut self, path: impl AsRef<Path>) -> Request {
        self.rare().ca_path = Some(path.as_ref().to_owned());
        self
    }

    /// Which HTTP version to ask for.
    #[inline]
    pub fn http_version(mut self, version: HttpVersionPref) -> Request {
        self.version = version;
        self
    }

    /// Sends the request through this proxy (`http://host:port`, `socks5h://...`).
    ///
    /// Without it, the environment's `http_proxy`, `https_proxy`,
    /// `all_proxy` and `no_proxy` apply, as libcurl reads them, as they were
    /// when the [`Multi`](crate::Multi) was made.
    pub fn proxy(mut self, proxy: &str) -> Request {
        if self.clean("proxy", proxy) {
            self.rare().proxy = Some(proxy.to_owned());
        }
        self
    }

    /// Sets the `User-Agent` header.
    pub fn user_agent(mut self, agent: &str) -> Request {
        if self.clean("user agent", agent) {
            self.rare().user_agent = Some(agent.to_owned());
        }
        self
    }

    /// Also allows these schemes (comma-separated, e.g. `"http,https,ftp"`),
    /// for the URL and for redirects. The default is `"http,https"`.
    pub fn protocols(mut self, protocols: &str) -> Request {
        if self.clean("protocols", protocols) {
            self.protocols = Cow::Owned(protocols.to_owned());
        }
        self
    }

    /// libcurl's receive buffer size (up to 10 MiB). A large buffer makes
    /// bulk downloads cheaper. The default is 512 KiB with libcurl 8.10 or
    /// newer, which lends one receive buffer per multi handle to the transfer
    /// that is receiving (so its size costs no memory per transfer), and
    /// libcurl's 16 KiB with older ones, which allocate it per transfer.
    pub fn buffer_size(mut self, bytes: usize) -> Request {
        self.rare().buffer_size = Some(bytes);
        self
    }

    /// Limits the receive rate of this transfer, in bytes per second
    /// (`CURLOPT_MAX_RECV_SPEED_LARGE`). libcurl before 8 checks it only
    /// between reads of many buffers, so a fast server may exceed it by a
    /// burst of a megabyte or more.
    pub fn max_recv_speed(mut self, bytes_per_sec: u64) -> Request {
        self.rare().max_recv_speed = Some(bytes_per_sec);
        self
    }

    /// Opens a new connection for this request instead of reusing an idle
    /// one (`CURLOPT_FRESH_CONNECT`); the connection is kept for reuse
    /// afterwards, as any other. Off by default. For requests that must run
    /// side by side over HTTP/1.1 connections of their own: libcurl 7.88
    /// sets up the transfers started together one after another, and one
    /// that reuses an idle connection may receive its whole response before
    /// the next looks for a connection, which then reuses the same one.
    pub fn fresh_connection(mut self, fresh: bool) -> Request {
        // (No boxed options for the default.)
        if fresh || self.rare.is_some() {
            self.rare().fresh_connection = fresh;
        }
        self
    }

    /// Streams the body to `callback` instead of collecting it into the
    /// [`Response`](crate::Response). The callback runs on the loop thread for
    /// each chunk and says whether to go on, pause or abort.
    #[inline]
    pub fn on_data(mut self, callback: impl FnMut(&[u8]) -> Flow + 'static) -> Request {
        self.on_data = Some(Box::new(callback));
        self
    }

    /// Calls `callback` with the final response's status and headers, once:
    /// just before the first body chunk, or — for a response without a body —
    /// just before the completion. [`Flow::Abort`] stops the transfer (it then
    /// completes with [`ErrorKind::Aborted`](crate::ErrorKind::Aborted));
    /// [`Flow::Pause`] is treated as `Continue`. Not called when the transfer
    /// fails before a response arrived.
    #[inline]
    pub fn on_head(mut self, callback: impl FnMut(&Head) -> Flow + 'static) -> Request {
        self.on_head = Some(Box::new(callback));
        self
    }

    /// Keeps `value` alive as long as the transfer; it is dropped after the
    /// completion ran.
    pub(crate) fn keep_alive(mut self, value: impl std::any::Any) -> Request {
        self.keep_alive.push(Box::new(value));
        self
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// `Name: value` (or `Name:` for an empty value), built without the
/// formatting machinery: one allocation of the exact size.
fn field_line(name: &str, value: &str) -> String {
    let mut line = String::with_capacity(name.len() + 2 + value.len());
    line.push_str(name);
    line.push(':');
    if !value.is_empty() {
        line.push(' ');
        line.push_str(value);
    }
    line
}
