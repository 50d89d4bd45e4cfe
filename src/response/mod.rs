//! [`Response`], [`Head`] and [`Timings`]: what a finished transfer reports.
//!
//! - this file: the types and reading header fields;
//! - `details`: everything but status and body, read from libcurl only when
//!   asked.

mod details;

pub(crate) use details::{LazyDetails, Settle, Source};

use crate::curl::EasyInfo;
use details::Details;
use std::sync::Arc;
use std::time::Duration;

/// The HTTP version a response came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.0.
    Http1_0,
    /// HTTP/1.1.
    Http1_1,
    /// HTTP/2.
    Http2,
    /// HTTP/3.
    Http3,
    /// Not known (no response was received).
    Unknown,
}

/// Status line and headers of the final response (after redirects).
///
/// The header lines are kept in one buffer and looked up on demand: no
/// allocation per header. They are kept as received when a header callback
/// collected them (a request with a head callback, a `Client`'s, a
/// non-HTTP protocol allowed, libcurl before 8.1), else as libcurl's header
/// API reports them (`Name: value`, folded lines joined); for unfolded
/// lines, the fields [`Head::headers`] yields are the same either way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub(crate) status: u16,
    /// The header lines after the status line, CRLF-terminated (as received,
    /// or as `Name: value` from libcurl's header API), then any trailer lines
    /// (chunked HTTP/1.1 or HTTP/2).
    raw: Vec<u8>,
    /// Where the trailers start in `raw`: set by the blank line that ends the
    /// header block (lines after it without a new status line are trailers);
    /// `None` while the header block is still arriving. (A `u32` keeps `Head`
    /// as small as a `Vec` and a status: libcurl caps header blocks far lower.)
    trailers_at: Option<u32>,
    /// The HTTP version on the status line: 10, 11, 20, 30, or 0 when not
    /// (yet) known.
    pub(crate) line_version: u8,
}

impl Head {
    /// The status code, e.g. 200.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// All headers as (name, value), in the order received, names as the
    /// server sent them, values without surrounding white space. Lines that
    /// are not valid UTF-8 are skipped.
    ///
    /// Trailers (fields sent after a chunked or HTTP/2 body) are not among
    /// them: see [`Response::trailers`].
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        fields(self.header_bytes())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find(fields(self.header_bytes()), name)
    }

    fn split_at(&self) -> usize {
        let len = self.raw.len();
        self.trailers_at.map_or(len, |at| (at as usize).min(len))
    }

    fn header_bytes(&self) -> &[u8] {
        &self.raw[..self.split_at()]
    }

    fn trailer_bytes(&self) -> &[u8] {
        &self.raw[self.split_at()..]
    }

    /// Feeds one raw header line from libcurl's header callback. A status line
    /// starts a new response (redirects and `100 Continue` come before the final
    /// one); after the blank line that ends the final header block, further
    /// lines are trailers. Returns whether `line` was a status line.
    #[inline]
    pub(crate) fn push_line(&mut self, line: &[u8]) -> bool {
        // Most lines are fields, which can be neither blank nor a status line
        // when they start with a byte other than white space or 'H'; with
        // room left in the buffer, such a line is only copied.
        match line.first() {
            Some(&b)
                if b != b'H'
                    && !b.is_ascii_whitespace()
                    && self.raw.capacity() - self.raw.len() >= line.len() =>
            {
                self.raw.extend_from_slice(line);
                false
            }
            _ => self.push_other_line(line),
        }
    }

    /// [`Head::push_line`] for any line but a field with room left for it.
    #[inline(never)]
    fn push_other_line(&mut self, line: &[u8]) -> bool {
        let field = matches!(line.first(), Some(&b) if b != b'H' && !b.is_ascii_whitespace());
        if !field && trim(line).is_empty() {
            if self.trailers_at.is_none() {
                self.trailers_at = Some(u32::try_from(self.raw.len()).unwrap_or(u32::MAX));
            }
        } else if !field && line.starts_with(b"HTTP/") {
            self.raw.clear();
            self.trailers_at = None;
            self.line_version = match line.get(5..8) {
                Some(b"1.1") => 11,
                Some(b"1.0") => 10,
                Some([b'2', b' ' | b'\r' | b'\n', _]) => 20,
                Some([b'3', b' ' | b'\r' | b'\n', _]) => 30,
                _ => 0,
            };
            self.status = plain_status(line).unwrap_or_else(|| {
                trim(line)
                    .split(|&b| b == b' ')
                    .filter(|part| !part.is_empty())
                    .nth(1)
                    .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok())
                    .unwrap_or(0)
            });
            return true;
        } else {
            if self.raw.capacity() == 0 {
                // One allocation for a typical header block, instead of
                // doubling from a few bytes up.
                self.raw = Vec::with_capacity(HEAD_CAPACITY.max(line.len()));
            }
            self.raw.extend_from_slice(line);
        }
        false
    }
}

impl Head {
    /// Reads the fields and trailers of `easy`'s last response through
    /// libcurl's header API (as `Name: value` lines, trailers after the
    /// header block).
    pub(crate) fn fill_from(&mut self, easy: &EasyInfo<'_>) {
        self.raw.clear();
        self.trailers_at = None;
        let raw = &mut self.raw;
        let trailers_at = &mut self.trailers_at;
        easy.each_field(|trailer, name, value| {
            if trailer && trailers_at.is_none() {
                *trailers_at = Some(u32::try_from(raw.len()).unwrap_or(u32::MAX));
            }
            if raw.capacity() == 0 {
                raw.reserve(HEAD_CAPACITY);
            }
            raw.extend_from_slice(name);
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(value);
            raw.extend_from_slice(b"\r\n");
        });
        if self.trailers_at.is_none() {
            self.trailers_at = Some(u32::try_from(self.raw.len()).unwrap_or(u32::MAX));
        }
    }
}

/// The status of the usual status line: three digits after the first space,
/// then a space or the line's end (`HTTP/1.1 200 OK`, `HTTP/2 404 `).
fn plain_status(line: &[u8]) -> Option<u16> {
    let space = line.iter().position(|&b| b == b' ')?;
    match line.get(space + 1..)? {
        [a, b, c, end, ..]
            if [a, b, c].iter().all(|d| d.is_ascii_digit())
                && matches!(end, b' ' | b'\r' | b'\n') =>
        {
            Some(
                [a, b, c]
                    .iter()
                    .fold(0, |n, &&d| n * 10 + u16::from(d - b'0')),
            )
        }
        _ => None,
    }
}

/// Bytes reserved for the header lines of a response at its first header.
const HEAD_CAPACITY: usize = 512;

/// The `(name, value)` pairs of CRLF-terminated header lines; lines that are
/// not valid UTF-8 or have no colon are skipped.
///
/// A block that is valid UTF-8 as a whole (every block in practice) is
/// checked once and scanned as text, each line in one pass; only a block
/// with an invalid byte somewhere is checked line by line.
fn fields(raw: &[u8]) -> impl Iterator<Item = (&str, &str)> + '_ {
    let (text, bytes) = match std::str::from_utf8(raw) {
        Ok(text) => (text, &raw[..0]),
        Err(_) => ("", raw),
    };
    let from_bytes = bytes.split(|&b| b == b'\n').filter_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = std::str::from_utf8(trim(&line[..colon])).ok()?;
        let value = std::str::from_utf8(trim(&line[colon + 1..])).ok()?;
        Some((name, value))
    });
    TextFields { rest: text }.chain(from_bytes)
}

/// The fields of a header block that is valid UTF-8, as [`fields`] reads them.
struct TextFields<'a> {
    rest: &'a str,
}

impl<'a> Iterator for TextFields<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        while !self.rest.is_empty() {
            let bytes = self.rest.as_bytes();
            let end = find_byte(bytes, b'\n').unwrap_or(bytes.len());
            // Both are ASCII bytes, so char boundaries.
            let line = &self.rest[..end];
            self.rest = self.rest.get(end + 1..).unwrap_or_default();
            if let Some(colon) = find_byte(line.as_bytes(), b':') {
                return Some((trim_text(&line[..colon]), trim_text(&line[colon + 1..])));
            }
        }
        None
    }
}

/// Where `byte` first occurs in `haystack`: libc's `memchr`, which reads a
/// vector at a time (a header line takes one or two steps, where a loop
/// over its bytes takes dozens).
fn find_byte(haystack: &[u8], byte: u8) -> Option<usize> {
    // SAFETY: `memchr` reads at most `haystack.len()` bytes from its start,
    // all of them in the slice; it returns null or a pointer into them.
    let found = unsafe {
        libc::memchr(
            haystack.as_ptr().cast(),
            libc::c_int::from(byte),
            haystack.len(),
        )
    };
    (!found.is_null()).then(|| found as usize - haystack.as_ptr() as usize)
}

/// [`trim`] for text.
fn trim_text(text: &str) -> &str {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() && bytes[start].is_ascii_whitespace() {
        start += 1;
    }
    let mut end = bytes.len();
    while end > start && bytes[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    // Only ASCII white space was cut off: the ends are char boundaries.
    &text[start..end]
}

/// The first value of field `name` (case-insensitive).
fn find<'a>(mut fields: impl Iterator<Item = (&'a str, &'a str)>, name: &str) -> Option<&'a str> {
    fields
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Strips ASCII white space (CR and LF included) from both ends.
fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &bytes[start..end.max(start)]
}

/// The `charset` parameter of a `Content-Type` value, unquoted.
fn charset_of(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// Where the time of a transfer went, each measured from its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// Name resolution done.
    pub name_lookup: Duration,
    /// TCP connection established.
    pub connect: Duration,
    /// TLS handshake done (zero without TLS).
    pub tls: Duration,
    /// First response byte received.
    pub first_byte: Duration,
    /// Transfer complete.
    pub total: Duration,
}

/// A response's buffers, empty with their capacity kept, for a later
/// transfer to fill (see `remote::recycle`).
#[derive(Debug, Default)]
pub(crate) struct Buffers {
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Head {
    /// An empty head that fills `raw` (cleared, its capacity kept).
    pub(crate) fn with_buffer(mut raw: Vec<u8>) -> Head {
        raw.clear();
        Head {
            raw,
            ..Head::default()
        }
    }
}

/// A finished transfer: any status, 4xx and 5xx included.
///
/// Status and body are kept as they arrived; everything else (header fields,
/// effective URL, sizes, timings) is read from libcurl the first time it is
/// asked for, or when the completion that received the response returns
/// while the response lives on (see `details`).
pub struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) details: Arc<LazyDetails>,
    /// Where the buffers go when the response is dropped: back to the loop
    /// thread of a remote transfer (`None`: freed here).
    pub(crate) recycler: Option<Arc<crate::remote::Recycler>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let details = self.details();
        f.debug_struct("Response")
            .field("head", &details.head)
            .field("body", &self.body)
            .field("effective_url", &details.effective_url)
            .field("version", &details.version)
            .field("bytes_received", &details.bytes_received)
            .field("bytes_sent", &details.bytes_sent)
            .field("redirects", &details.redirects)
            .field("timings", &details.timings)
            .finish()
    }
}

impl Clone for Response {
    /// The clone's body is its own (freed where it is dropped); the details
    /// are shared.
    fn clone(&self) -> Response {
        Response {
            status: self.status,
            body: self.body.clone(),
            details: self.details.clone(),
            recycler: None,
        }
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        if let Some(recycler) = self.recycler.take() {
            // The head buffer only when no clone shares it.
            let head = Arc::get_mut(&mut self.details)
                .and_then(LazyDetails::get_mut)
                .map(|details| std::mem::take(&mut details.head.raw))
                .unwrap_or_default();
            recycler.give_back(Buffers {
                head,
                body: std::mem::take(&mut self.body),
            });
        }
    }
}

impl Response {
    /// A response with these parts, all details known.
    #[cfg(test)]
    fn from_parts(head: Head, body: Vec<u8>, effective_url: &str) -> Response {
        Response {
            status: head.status,
            body,
            details: LazyDetails::ready(Details {
                head,
                effective_url: effective_url.into(),
                ..Details::default()
            }),
            recycler: None,
        }
    }

    fn details(&self) -> &Details {
        self.details.get()
    }

    /// The status code of the final response.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Status and headers of the final response.
    pub fn head(&self) -> &Head {
        &self.details().head
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head().header(name)
    }

    /// Trailer fields sent after the body (chunked HTTP/1.1 or HTTP/2), as
    /// (name, value) in the order received; kept apart from [`Response::header`].
    pub fn trailers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        fields(self.head().trailer_bytes())
    }

    /// The first value of trailer `name` (case-insensitive).
    pub fn trailer(&self, name: &str) -> Option<&str> {
        find(fields(self.head().trailer_bytes()), name)
    }

    /// The body; empty when it was streamed to a data callback.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as text. The charset comes from `Content-Type`
    /// (`charset=utf-8`, `us-ascii` and `iso-8859-1`/`latin1` are decoded;
    /// anything else, or none, is read as UTF-8); invalid sequences become
    /// U+FFFD, so this never fails.
    ///
    /// ```
    /// # fn show(response: &uvcurl::Response) {
    /// println!("{}", response.text());
    /// # }
    /// ```
    pub fn text(&self) -> String {
        let charset = self
            .header("content-type")
            .and_then(charset_of)
            .unwrap_or_default();
        if charset.eq_ignore_ascii_case("iso-8859-1") || charset.eq_ignore_ascii_case("latin1") {
            // Latin-1 maps each byte to the code point of the same value.
            self.body.iter().map(|&b| char::from(b)).collect()
        } else {
            String::from_utf8_lossy(&self.body).into_owned()
        }
    }

    /// `Ok(self)` for a status below 400, else an error of kind
    /// [`ErrorKind::HttpStatus`](crate::ErrorKind::HttpStatus) that names the
    /// status and the URL (the status is in [`Error::http_status`](crate::Error::http_status)).
    ///
    /// ```
    /// # fn check(response: uvcurl::Response) -> Result<(), uvcurl::Error> {
    /// let body = response.error_for_status()?.into_body();
    /// # let _ = body; Ok(())
    /// # }
    /// ```
    pub fn error_for_status(self) -> Result<Response, crate::Error> {
        match self.status() {
            0..=399 => Ok(self),
            status => Err(crate::Error::from_status(status, self.effective_url())),
        }
    }

    /// Takes the body out of the response.
    pub fn into_body(mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// The URL of the final response, after redirects.
    pub fn effective_url(&self) -> &str {
        &self.details().effective_url
    }

    /// The HTTP version used.
    pub fn http_version(&self) -> HttpVersion {
        self.details().version
    }

    /// Body bytes received (after any content decoding).
    pub fn bytes_received(&self) -> u64 {
        self.details().bytes_received
    }

    /// Body bytes sent.
    pub fn bytes_sent(&self) -> u64 {
        self.details().bytes_sent
    }

    /// How many redirects were followed.
    pub fn redirects(&self) -> u32 {
        self.details().redirects
    }

    /// Timings of the transfer.
    pub fn timings(&self) -> Timings {
        self.details().timings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_keeps_only_the_final_response() {
        let mut head = Head::default();
        for line in [
            "HTTP/1.1 302 Found\r\n",
            "Location: /x\r\n",
            "\r\n",
            "HTTP/2 200\r\n",
            "content-type: text/plain\r\n",
            "\r\n",
        ] {
            head.push_line(line.as_bytes());
        }
        assert_eq!(head.status(), 200);
        assert_eq!(head.header("Content-Type"), Some("text/plain"));
        assert_eq!(head.header("location"), None);
        assert_eq!(
            head.headers().collect::<Vec<_>>(),
            vec![("content-type", "text/plain")]
        );
    }

    #[test]
    fn status_lines_of_every_shape() {
        for (line, status, version) in [
            ("HTTP/1.1 200 OK\r\n", 200, 11),
            ("HTTP/1.0 404 Not Found\r\n", 404, 10),
            ("HTTP/2 204 \r\n", 204, 20),
            ("HTTP/3 500\r\n", 500, 30),
            ("HTTP/1.1  301  Moved\r\n", 301, 11),
            ("HTTP/1.1 2000 OK\r\n", 2000, 11),
            ("HTTP/1.1 abc\r\n", 0, 11),
            ("HTTP/9 200 OK\r\n", 200, 0),
        ] {
            let mut head = Head::default();
            head.push_line(line.as_bytes());
            assert_eq!(
                (head.status(), head.line_version),
                (status, version),
                "{line:?}"
            );
        }
    }

    #[test]
    fn fields_of_a_block_with_an_invalid_byte_are_read_line_by_line() {
        let block = |lines: &[&[u8]]| {
            let mut head = Head::default();
            head.push_line(b"HTTP/1.1 200 OK\r\n");
            for line in lines {
                head.push_line(line);
            }
            head
        };
        let lines: [&[u8]; 5] = [
            b"Server:  nginx \r\n",
            b"X-Bad: caf\xe9\r\n",
            b"no colon here\r\n",
            b"\tX-Empty:\r\n",
            b"Content-Length: 5\r\n",
        ];
        let invalid = block(&lines);
        let expected = vec![
            ("Server", "nginx"),
            ("X-Empty", ""),
            ("Content-Length", "5"),
        ];
        assert_eq!(invalid.headers().collect::<Vec<_>>(), expected);
        assert_eq!(invalid.header("content-length"), Some("5"));
        assert_eq!(invalid.header("x-bad"), None);
        // The same block without the invalid byte, read as text at once.
        let mut valid_lines = lines;
        valid_lines[1] = b"X-Bad: cafe\r\n";
        let valid = block(&valid_lines);
        let mut with_bad = expected.clone();
        with_bad.insert(1, ("X-Bad", "cafe"));
        assert_eq!(valid.headers().collect::<Vec<_>>(), with_bad);
        assert_eq!(valid.header("SERVER"), Some("nginx"));
    }

    #[test]
    fn trailers_are_kept_apart_from_headers() {
        let mut head = Head::default();
        for line in [
            "HTTP/1.1 200 OK\r\n",
            "Transfer-Encoding: chunked\r\n",
            "\r\n",
            "Checksum: abc\r\n",
            "\r\n",
        ] {
            head.push_line(line.as_bytes());
        }
        let response = Response::from_parts(head, b"caf\xe9".to_vec(), "");
        assert_eq!(response.header("checksum"), None);
        assert_eq!(response.trailer("Checksum"), Some("abc"));
        assert_eq!(response.trailers().count(), 1);
        assert_eq!(response.text(), "caf\u{fffd}");
    }

    #[test]
    fn text_decodes_the_declared_charset() {
        assert_eq!(
            charset_of("text/plain; charset=\"ISO-8859-1\""),
            Some("ISO-8859-1")
        );
        assert_eq!(charset_of("text/plain"), None);
        let mut head = Head::default();
        head.push_line(b"HTTP/1.1 404 Not Found\r\n");
        head.push_line(b"Content-Type: text/plain; charset=latin1\r\n");
        let response = Response::from_parts(head, b"caf\xe9".to_vec(), "http://127.0.0.1/x");
        assert_eq!(response.text(), "caf\u{e9}");
        let error = response.error_for_status().unwrap_err();
        assert_eq!(error.kind(), crate::ErrorKind::HttpStatus);
        assert_eq!(error.http_status(), Some(404));
        assert!(error.message().contains("404"), "{error}");
    }
}
