//! [`SendRequest`]: a [`Request`] that can be built on one thread and run on
//! another, for [`Remote::send`] and [`Client::send`].

use crate::client::Client;
use crate::remote::{Remote, ResponseFuture};
use crate::request::{Flow, HttpVersionPref, Request};
use crate::response::Head;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// A [`Request`] whose callbacks and body reader are all `Send`, so the whole
/// request is: build it on any thread and hand it to a [`Remote`] or a
/// [`Client`] — the builder style of reqwest, without a closure.
///
/// It has the builder methods of [`Request`]; those that take a callback or a
/// reader require them to be `Send`.
///
/// ```no_run
/// # fn demo(client: &uvcurl::Client) -> Result<(), uvcurl::Error> {
/// use std::time::Duration;
/// let request = uvcurl::SendRequest::get("http://127.0.0.1:8080/a")
///     .header("Accept", "application/json")
///     .timeout(Duration::from_secs(5));
/// let response = std::thread::spawn(move || request)   // it is Send
///     .join()
///     .unwrap();
/// let response = client.send(response).wait()?;
/// # let _ = response; Ok(())
/// # }
/// ```
///
/// A callback that is not `Send` is refused at compile time:
///
/// ```compile_fail
/// let counter = std::rc::Rc::new(std::cell::Cell::new(0));
/// uvcurl::SendRequest::get("http://127.0.0.1/").on_data(move |chunk| {
///     counter.set(counter.get() + chunk.len());
///     uvcurl::Flow::Continue
/// });
/// ```
pub struct SendRequest(Request);

// SAFETY: a `Request` is `!Send` only because of the boxed values it may
// hold (callbacks, a body reader, kept-alive values). A `SendRequest` gets
// them only through the methods below, which require `Send` of each; every
// other field is plain data (strings, numbers, byte vectors, a first error).
unsafe impl Send for SendRequest {}

/// Builder methods that take only plain data: forwarded to [`Request`].
macro_rules! forward {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*); )*) => {
        $(
            $(#[$doc])*
            pub fn $name(self, $($arg: $ty),*) -> SendRequest {
                SendRequest(self.0.$name($($arg),*))
            }
        )*
    };
}

impl SendRequest {
    /// A request with any method; see [`Request::new`].
    pub fn new(method: &str, url: impl Into<String>) -> SendRequest {
        SendRequest(Request::new(method, url))
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> SendRequest {
        SendRequest(Request::get(url))
    }

    /// `HEAD url`.
    pub fn head(url: impl Into<String>) -> SendRequest {
        SendRequest(Request::head(url))
    }

    /// `POST url` with `body`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> SendRequest {
        SendRequest(Request::post(url, body))
    }

    /// `PUT url` with `body`.
    pub fn put(url: impl Into<String>, body: impl Into<Vec<u8>>) -> SendRequest {
        SendRequest(Request::put(url, body))
    }

    forward! {
        /// See [`Request::method`].
        fn method(method: &str);
        /// See [`Request::header`].
        fn header(name: &str, value: &str);
        /// See [`Request::header_line`].
        fn header_line(line: &str);
        /// See [`Request::follow_redirects`].
        fn follow_redirects(follow: bool);
        /// See [`Request::max_redirects`].
        fn max_redirects(max: u32);
        /// See [`Request::connect_timeout`].
        fn connect_timeout(timeout: Duration);
        /// See [`Request::timeout`].
        fn timeout(timeout: Duration);
        /// See [`Request::low_speed`].
        fn low_speed(bytes_per_sec: u32, period: Duration);
        /// See [`Request::verify_tls`].
        fn verify_tls(verify: bool);
        /// See [`Request::http_version`].
        fn http_version(version: HttpVersionPref);
        /// See [`Request::proxy`].
        fn proxy(proxy: &str);
        /// See [`Request::user_agent`].
        fn user_agent(agent: &str);
        /// See [`Request::protocols`].
        fn protocols(protocols: &str);
        /// See [`Request::buffer_size`].
        fn buffer_size(bytes: usize);
        /// See [`Request::max_recv_speed`].
        fn max_recv_speed(bytes_per_sec: u64);
        /// See [`Request::fresh_connection`].
        fn fresh_connection(fresh: bool);
    }

    /// See [`Request::body`].
    pub fn body(self, body: impl Into<Vec<u8>>) -> SendRequest {
        SendRequest(self.0.body(body))
    }

    /// See [`Request::ca_file`].
    pub fn ca_file(self, path: impl AsRef<Path>) -> SendRequest {
        SendRequest(self.0.ca_file(path))
    }

    /// See [`Request::ca_path`].
    pub fn ca_path(self, path: impl AsRef<Path>) -> SendRequest {
        SendRequest(self.0.ca_path(path))
    }

    /// See [`Request::body_reader`]; the reader must be `Send`.
    pub fn body_reader(self, reader: impl Read + Send + 'static, len: Option<u64>) -> SendRequest {
        SendRequest(self.0.body_reader(reader, len))
    }

    /// See [`Request::on_data`]; the callback must be `Send` (it runs on the
    /// loop thread).
    pub fn on_data(self, callback: impl FnMut(&[u8]) -> Flow + Send + 'static) -> SendRequest {
        SendRequest(self.0.on_data(callback))
    }

    /// See [`Request::on_head`]; the callback must be `Send`.
    pub fn on_head(self, callback: impl FnMut(&Head) -> Flow + Send + 'static) -> SendRequest {
        SendRequest(self.0.on_head(callback))
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        self.0.url()
    }

    /// The plain [`Request`], e.g. for [`Multi::start`](crate::Multi::start).
    pub fn into_request(self) -> Request {
        self.0
    }
}

impl From<SendRequest> for Request {
    fn from(request: SendRequest) -> Request {
        request.0
    }
}

impl std::fmt::Debug for SendRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SendRequest").field(&self.0).finish()
    }
}

impl Remote {
    /// Runs `request` on the loop; the future resolves with its result.
    /// The same as [`Remote::submit`] with a closure that returns it.
    pub fn send(&self, request: SendRequest) -> ResponseFuture {
        self.submit(move || request.into_request())
    }
}

impl Client {
    /// Runs `request` on the loop with the fewest transfers; the same as
    /// [`Client::submit`] with a closure that returns it.
    pub fn send(&self, request: SendRequest) -> ResponseFuture {
        self.submit(move || request.into_request())
    }
}
