//! The one error type of the crate.

use std::ffi::CStr;
use std::fmt;

/// What went wrong, coarsely enough to match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was rejected before it started: bad URL, NUL byte, malformed header.
    InvalidInput,
    /// The host name could not be resolved.
    Dns,
    /// No connection could be made (refused, unreachable).
    Connect,
    /// A connect, total or low-speed timeout expired.
    Timeout,
    /// TLS handshake or certificate verification failed.
    Tls,
    /// More redirects than allowed.
    TooManyRedirects,
    /// The URL, or a redirect, uses a scheme this request does not allow.
    UnsupportedProtocol,
    /// The connection broke while sending or receiving (reset, broken pipe):
    /// libcurl's `CURLE_RECV_ERROR`/`CURLE_SEND_ERROR`; also
    /// `CURLE_SEND_FAIL_REWIND` before any response, when a kept-alive
    /// connection died under a body streamed from a `Read`, which libcurl
    /// could not read again to resend it.
    ConnectionReset,
    /// The body ended before the length the server announced
    /// (`CURLE_PARTIAL_FILE`).
    PartialBody,
    /// The server closed the connection without sending anything
    /// (`CURLE_GOT_NOTHING`).
    EmptyReply,
    /// The server broke the HTTP protocol (malformed reply, HTTP/2 error).
    Protocol,
    /// The upload body could not be read.
    Upload,
    /// The transfer was cancelled, or its `Multi` was closed while it ran.
    Cancelled,
    /// A data callback asked to stop the transfer.
    Aborted,
    /// A user callback panicked; the payload's message is in the error text.
    CallbackPanic,
    /// The `Multi` (or `Loop`) is closed; nothing can be started on it.
    Closed,
    /// The call is not allowed in this state (for example, a loop that is already running).
    InvalidState,
    /// libcurl's multi handle or libuv failed; the driver stopped.
    Driver,
    /// libcurl could not allocate a handle.
    OutOfMemory,
    /// The server answered with a 4xx or 5xx status and the caller asked for
    /// that to be an error ([`Response::error_for_status`](crate::Response::error_for_status)).
    HttpStatus,
    /// The transfer needed a socket numbered 1024 or above, and the linked
    /// libcurl was built without `poll()`: see the crate docs, "Sockets above 1024".
    SocketLimit,
    /// Any other libcurl failure; see [`Error::curl_code`].
    Other,
}

/// An error from uvcurl, libcurl or libuv.
///
/// Carries a [`ErrorKind`] to match on, libcurl's or libuv's code when there is
/// one, and a message that includes libcurl's own error-buffer text.
#[derive(Clone)]
pub struct Error {
    kind: ErrorKind,
    curl_code: Option<i32>,
    multi_code: Option<i32>,
    uv_code: Option<i32>,
    http_status: Option<u16>,
    message: String,
}

impl Error {
    /// A new error of `kind` with `message`.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            curl_code: None,
            multi_code: None,
            uv_code: None,
            http_status: None,
            message: message.into(),
        }
    }

    /// An error for a failed transfer's `CURLcode`, with libcurl's error-buffer text
    /// (`detail`, may be empty).
    pub(crate) fn from_curl(code: curl_sys::CURLcode, detail: &str) -> Error {
        let generic = crate::curl::global::easy_strerror(code);
        let message = if detail.is_empty() || detail == generic {
            generic
        } else {
            format!("{generic}: {detail}")
        };
        Error {
            curl_code: Some(code as i32),
            ..Error::new(kind_of_code(code), message)
        }
    }

    /// An error for a transfer that ended with `code`; `answered`: whether
    /// a response status arrived.
    pub(crate) fn from_transfer(code: curl_sys::CURLcode, detail: &str, answered: bool) -> Error {
        let error = Error::from_curl(code, detail);
        if code == curl_sys::CURLE_SEND_FAIL_REWIND && !answered {
            // libcurl resends a request whose kept-alive connection died
            // before any answer; a streamed body cannot be read again.
            return Error {
                kind: ErrorKind::ConnectionReset,
                ..error
            };
        }
        error
    }

    /// An error for a failed `curl_multi_*` call.
    pub(crate) fn from_multi(code: curl_sys::CURLMcode, call: &str) -> Error {
        let text = crate::curl::global::multi_strerror(code);
        Error {
            multi_code: Some(code),
            ..Error::new(ErrorKind::Driver, format!("{call} failed: {text}"))
        }
    }

    /// An error for a failed libuv call returning `code` (a negative errno).
    pub(crate) fn from_uv(code: i32, call: &str) -> Error {
        // SAFETY: uv_strerror returns a static NUL-terminated string, even for unknown codes
        // (it leaks a small allocation once per unknown code, which negative errnos are not).
        let text = unsafe { CStr::from_ptr(libuv_sys2::uv_strerror(code)) };
        Error {
            uv_code: Some(code),
            ..Error::new(
                ErrorKind::Driver,
                format!("{call} failed: {}", text.to_string_lossy()),
            )
        }
    }

    /// A transfer that was cancelled.
    pub(crate) fn cancelled() -> Error {
        Error::new(ErrorKind::Cancelled, "transfer cancelled")
    }

    /// A socket numbered 1024 or above on a libcurl that can only `select()`.
    pub(crate) fn socket_limit(socket: i32) -> Error {
        let error = Error::new(
            ErrorKind::SocketLimit,
            format!(
                "socket {socket} is numbered 1024 or above, and the linked libcurl waits on \
                 sockets with select(), which cannot watch it; build libcurl with poll() \
                 (CFLAGS=-DHAVE_POLL, see uvcurl's docs: \"Sockets above 1024\")"
            ),
        );
        // libcurl's own code for a socket that could not be opened (what the
        // C ABI's done callback receives).
        Error {
            curl_code: Some(curl_sys::CURLE_COULDNT_CONNECT as i32),
            ..error
        }
    }

    /// A transfer whose `Multi` was closed while it ran.
    pub(crate) fn multi_closed() -> Error {
        Error::new(ErrorKind::Cancelled, "the Multi was closed")
    }

    /// A call on a closed `Multi`.
    pub(crate) fn closed() -> Error {
        Error::new(ErrorKind::Closed, "the Multi is closed")
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// A 4xx/5xx status turned into an error by `Response::error_for_status`.
    pub(crate) fn from_status(status: u16, url: &str) -> Error {
        let class = if status >= 500 { "server" } else { "client" };
        Error {
            http_status: Some(status),
            ..Error::new(
                ErrorKind::HttpStatus,
                format!("HTTP status {status} ({class} error) for {url}"),
            )
        }
    }

    /// True for [`ErrorKind::Timeout`]: a connect, total or low-speed limit expired.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
    }

    /// True when no connection could be made: [`ErrorKind::Connect`] or [`ErrorKind::Dns`].
    pub fn is_connect(&self) -> bool {
        matches!(self.kind, ErrorKind::Connect | ErrorKind::Dns)
    }

    /// True when the connection was lost mid-transfer: [`ErrorKind::ConnectionReset`],
    /// [`ErrorKind::PartialBody`] or [`ErrorKind::EmptyReply`] (a retry may help).
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::ConnectionReset | ErrorKind::PartialBody | ErrorKind::EmptyReply
        )
    }

    /// True for [`ErrorKind::Tls`].
    pub fn is_tls(&self) -> bool {
        self.kind == ErrorKind::Tls
    }

    /// True when the transfer was cancelled, or its `Multi` closed under it.
    pub fn is_cancelled(&self) -> bool {
        self.kind == ErrorKind::Cancelled
    }

    /// True for an error made by [`Response::error_for_status`](crate::Response::error_for_status).
    pub fn is_status(&self) -> bool {
        self.kind == ErrorKind::HttpStatus
    }

    /// The HTTP status of an [`ErrorKind::HttpStatus`] error.
    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// The kind, to match on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// libcurl's `CURLcode` for a failed transfer, if that is what failed.
    pub fn curl_code(&self) -> Option<i32> {
        self.curl_code
    }

    /// libcurl's `CURLMcode`, if a multi call failed.
    pub fn multi_code(&self) -> Option<i32> {
        self.multi_code
    }

    /// libuv's (negative) error code, if a libuv call failed.
    pub fn uv_code(&self) -> Option<i32> {
        self.uv_code
    }

    /// The message: libcurl's description plus its error-buffer text, or ours.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(c) = self.curl_code {
            d.field("curl_code", &c);
        }
        if let Some(c) = self.multi_code {
            d.field("multi_code", &c);
        }
        if let Some(c) = self.uv_code {
            d.field("uv_code", &c);
        }
        d.field("message", &self.message).finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Sorts a `CURLcode` into an [`ErrorKind`].
pub(crate) fn kind_of_code(code: curl_sys::CURLcode) -> ErrorKind {
    use curl_sys::*;
    match code {
        CURLE_UNSUPPORTED_PROTOCOL => ErrorKind::UnsupportedProtocol,
        CURLE_URL_MALFORMAT | CURLE_BAD_FUNCTION_ARGUMENT => ErrorKind::InvalidInput,
        CURLE_COULDNT_RESOLVE_PROXY | CURLE_COULDNT_RESOLVE_HOST => ErrorKind::Dns,
        CURLE_COULDNT_CONNECT => ErrorKind::Connect,
        CURLE_OPERATION_TIMEDOUT => ErrorKind::Timeout,
        CURLE_SSL_CONNECT_ERROR
        | CURLE_PEER_FAILED_VERIFICATION
        | CURLE_SSL_ENGINE_NOTFOUND
        | CURLE_SSL_ENGINE_SETFAILED
        | CURLE_SSL_CERTPROBLEM
        | CURLE_SSL_CIPHER
        | CURLE_SSL_CACERT_BADFILE
        | CURLE_SSL_SHUTDOWN_FAILED
        | CURLE_SSL_CRL_BADFILE
        | CURLE_SSL_ISSUER_ERROR
        | CURLE_SSL_PINNEDPUBKEYNOTMATCH
        | CURLE_SSL_INVALIDCERTSTATUS
        | CURLE_USE_SSL_FAILED => ErrorKind::Tls,
        CURLE_TOO_MANY_REDIRECTS => ErrorKind::TooManyRedirects,
        CURLE_RECV_ERROR | CURLE_SEND_ERROR => ErrorKind::ConnectionReset,
        CURLE_PARTIAL_FILE => ErrorKind::PartialBody,
        CURLE_GOT_NOTHING => ErrorKind::EmptyReply,
        CURLE_FTP_WEIRD_SERVER_REPLY
        | CURLE_HTTP2
        | CURLE_HTTP2_STREAM
        | CURLE_BAD_CONTENT_ENCODING => ErrorKind::Protocol,
        CURLE_READ_ERROR => ErrorKind::Upload,
        CURLE_ABORTED_BY_CALLBACK | CURLE_WRITE_ERROR => ErrorKind::Aborted,
        _ => other_kind(code),
    }
}

/// Codes curl-sys does not name.
fn other_kind(code: curl_sys::CURLcode) -> ErrorKind {
    use crate::curl::sys::{CURLE_HTTP3, CURLE_TOO_LARGE};
    match code {
        CURLE_TOO_LARGE | CURLE_HTTP3 => ErrorKind::Protocol,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_sort_into_kinds() {
        assert_eq!(
            kind_of_code(curl_sys::CURLE_COULDNT_CONNECT),
            ErrorKind::Connect
        );
        assert_eq!(
            kind_of_code(curl_sys::CURLE_OPERATION_TIMEDOUT),
            ErrorKind::Timeout
        );
        let lost = Error::from_transfer(curl_sys::CURLE_SEND_FAIL_REWIND, "", false);
        assert_eq!(lost.kind(), ErrorKind::ConnectionReset);
        assert!(lost.is_connection_lost());
        // After a response (a 307 asking for the body again): not a lost connection.
        let redirected = Error::from_transfer(curl_sys::CURLE_SEND_FAIL_REWIND, "", true);
        assert_eq!(redirected.kind(), ErrorKind::Other);
        let e = Error::from_curl(curl_sys::CURLE_COULDNT_RESOLVE_HOST, "no such host");
        assert_eq!(e.kind(), ErrorKind::Dns);
        assert_eq!(e.curl_code(), Some(6));
        assert!(e.message().contains("no such host"), "{e}");
    }
}
