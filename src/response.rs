//! [`Response`], [`Head`] and [`Timings`]: what a finished transfer reports.

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
/// The header lines are kept as received, in one buffer, and looked up on
/// demand: receiving them costs one copy, no allocation per header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Head {
    pub(crate) status: u16,
    /// The header lines after the status line, CRLF-terminated, as received.
    raw: Vec<u8>,
}

impl Head {
    /// The status code, e.g. 200.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// All headers as (name, value), in the order received, names as the
    /// server sent them, values without surrounding white space. Lines that
    /// are not valid UTF-8 are skipped.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.raw.split(|&b| b == b'\n').filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let name = std::str::from_utf8(trim(&line[..colon])).ok()?;
            let value = std::str::from_utf8(trim(&line[colon + 1..])).ok()?;
            Some((name, value))
        })
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Feeds one raw header line from libcurl's header callback. A status line
    /// starts a new response (redirects and `100 Continue` come before the final one).
    pub(crate) fn push_line(&mut self, line: &[u8]) {
        if line.starts_with(b"HTTP/") {
            self.raw.clear();
            self.status = trim(line)
                .split(|&b| b == b' ')
                .filter(|part| !part.is_empty())
                .nth(1)
                .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok())
                .unwrap_or(0);
        } else {
            self.raw.extend_from_slice(line);
        }
    }
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

/// A finished transfer: any status, 4xx and 5xx included.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) head: Head,
    pub(crate) body: Vec<u8>,
    pub(crate) effective_url: String,
    pub(crate) version: HttpVersion,
    pub(crate) bytes_received: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) redirects: u32,
    pub(crate) timings: Timings,
}

impl Response {
    /// The status code of the final response.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// Status and headers of the final response.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }

    /// The body; empty when it was streamed to a data callback.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body out of the response.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The URL of the final response, after redirects.
    pub fn effective_url(&self) -> &str {
        &self.effective_url
    }

    /// The HTTP version used.
    pub fn http_version(&self) -> HttpVersion {
        self.version
    }

    /// Body bytes received (after any content decoding).
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Body bytes sent.
    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent
    }

    /// How many redirects were followed.
    pub fn redirects(&self) -> u32 {
        self.redirects
    }

    /// Timings of the transfer.
    pub fn timings(&self) -> Timings {
        self.timings
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
}
