//! `Exchange`: follows the HTTP/1.1 requests and responses delivered over
//! one proxied connection (heads parsed by httparse, bodies framed by
//! Content-Length), so a proxy that resets the connection can tell which
//! request it broke and how far that request's response had got. A
//! connection it cannot follow (TLS, h2c, chunked bodies, upgrades) it gives
//! up on.

use httparse::{Status, EMPTY_HEADER};

/// Longest head followed; a longer one gives up.
const MAX_HEAD: usize = 64 << 10;
/// Most header fields in a head followed.
const MAX_FIELDS: usize = 64;

/// What a reset of the connection broke, as far as the exchange can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// No request was waiting for (the rest of) its response.
    Nothing,
    /// The request with this target was waiting for its response;
    /// `status_line`: the response's status line had reached the client in
    /// full, and the response had not.
    Request { target: String, status_line: bool },
    /// Not HTTP/1.1 the exchange could follow.
    Unknown,
}

/// One connection's exchange, fed with the bytes each side was given.
pub struct Exchange {
    /// Method and target of every request the server was given.
    requests: Vec<(String, String)>,
    request_frames: Framer,
    /// Counts the final (non-1xx) responses the client was given in full.
    response_frames: Framer,
    lost: bool,
}

impl Default for Exchange {
    fn default() -> Exchange {
        Exchange {
            requests: Vec::new(),
            request_frames: Framer::new(Side::Requests),
            response_frames: Framer::new(Side::Responses),
            lost: false,
        }
    }
}

impl Exchange {
    /// Bytes the server was given.
    pub fn sent_to_server(&mut self, bytes: &[u8]) {
        if self.lost {
            return;
        }
        let requests = &mut self.requests;
        let followed = self.request_frames.feed(bytes, |head, _| {
            let mut fields = [EMPTY_HEADER; MAX_FIELDS];
            let mut request = httparse::Request::new(&mut fields);
            request.parse(head).ok()?;
            let (method, target) = (request.method?, request.path?);
            let body = body_length(request.headers)?.unwrap_or(0);
            requests.push((method.to_string(), target.to_string()));
            Some(Message { body, last: true })
        });
        self.lost |= followed.is_none();
    }

    /// Bytes the client was given.
    pub fn sent_to_client(&mut self, bytes: &[u8]) {
        if self.lost {
            return;
        }
        let requests = &self.requests;
        let followed = self.response_frames.feed(bytes, |head, answered| {
            let (method, _) = requests.get(answered)?;
            let mut fields = [EMPTY_HEADER; MAX_FIELDS];
            let mut response = httparse::Response::new(&mut fields);
            response.parse(head).ok()?;
            let code = response.code?;
            if code == 101 {
                return None;
            }
            let interim = (100..200).contains(&code);
            let body = if interim || code == 204 || code == 304 || method == "HEAD" {
                0
            } else {
                // No length: the body runs to the end of the connection.
                body_length(response.headers)?.unwrap_or(u64::MAX)
            };
            Some(Message {
                body,
                last: !interim,
            })
        });
        self.lost |= followed.is_none();
    }

    /// What a reset now would break.
    pub fn broken(&self) -> Broken {
        if self.lost {
            return Broken::Unknown;
        }
        match self.requests.get(self.response_frames.done) {
            None => Broken::Nothing,
            Some((_, target)) => Broken::Request {
                target: target.clone(),
                status_line: self.response_frames.first_line_done(),
            },
        }
    }
}

/// Content-Length of a head's fields, if it has one; `None` for one the
/// exchange cannot follow (Transfer-Encoding, a bad or doubled length).
fn body_length(fields: &[httparse::Header]) -> Option<Option<u64>> {
    let named = |name: &'static str| {
        fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    };
    if named("transfer-encoding").next().is_some() {
        return None;
    }
    let mut lengths = named("content-length");
    match (lengths.next(), lengths.next()) {
        (None, _) => Some(None),
        (Some(length), None) => std::str::from_utf8(length.value)
            .ok()?
            .trim()
            .parse()
            .ok()
            .map(Some),
        _ => None,
    }
}

/// A message's framing, from its head.
struct Message {
    /// Body length (`u64::MAX`: to the end of the connection).
    body: u64,
    /// It completes its exchange (every request; a final response).
    last: bool,
}

/// Which messages a direction carries.
#[derive(Clone, Copy)]
enum Side {
    Requests,
    Responses,
}

/// One direction's message boundaries.
struct Framer {
    side: Side,
    /// The current message's head so far (empty between messages).
    head: Vec<u8>,
    /// Body bytes of the current message still to come, once its head is in.
    body_left: Option<u64>,
    /// The current message completes its exchange.
    last: bool,
    /// Messages completed that complete an exchange.
    done: usize,
}

impl Framer {
    fn new(side: Side) -> Framer {
        Framer {
            side,
            head: Vec::new(),
            body_left: None,
            last: false,
            done: 0,
        }
    }

    /// Takes the next bytes; `on_head` gets each complete head and `done`,
    /// and frames its message. `None` once it cannot follow them.
    fn feed(
        &mut self,
        mut bytes: &[u8],
        mut on_head: impl FnMut(&[u8], usize) -> Option<Message>,
    ) -> Option<()> {
        while !bytes.is_empty() {
            if let Some(left) = self.body_left {
                let taken = left.min(bytes.len() as u64);
                bytes = &bytes[taken as usize..];
                self.body_left = Some(left - taken);
            } else {
                let before = self.head.len();
                self.head.extend_from_slice(bytes);
                let Some(end) = self.head_end()? else {
                    return (self.head.len() <= MAX_HEAD).then_some(());
                };
                let message = on_head(&self.head[..end], self.done)?;
                bytes = &bytes[end - before..];
                self.head.clear();
                self.body_left = Some(message.body);
                self.last = message.last;
            }
            if self.body_left == Some(0) {
                self.body_left = None;
                self.done += usize::from(self.last);
            }
        }
        Some(())
    }

    /// Where the head ends (`Some(None)`: not in yet); `None`: not a head.
    fn head_end(&self) -> Option<Option<usize>> {
        let mut fields = [EMPTY_HEADER; MAX_FIELDS];
        let status = match self.side {
            Side::Requests => httparse::Request::new(&mut fields).parse(&self.head),
            Side::Responses => httparse::Response::new(&mut fields).parse(&self.head),
        };
        match status {
            Ok(Status::Complete(end)) => Some(Some(end)),
            Ok(Status::Partial) => Some(None),
            Err(_) => None,
        }
    }

    /// The current message's first line is in.
    fn first_line_done(&self) -> bool {
        self.body_left.is_some() || self.head.contains(&b'\n')
    }
}

#[cfg(test)]
mod tests {
    use super::{Broken, Exchange};

    fn waiting(target: &str, status_line: bool) -> Broken {
        Broken::Request {
            target: target.to_string(),
            status_line,
        }
    }

    #[test]
    fn http1_exchange_follows_responses_by_their_status_line_and_length() {
        let mut x = Exchange::default();
        assert_eq!(x.broken(), Broken::Nothing);
        x.sent_to_server(b"GET /a?transfer=1 HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(x.broken(), waiting("/a?transfer=1", false));
        x.sent_to_client(b"HTTP/1.1 200 OK");
        assert_eq!(x.broken(), waiting("/a?transfer=1", false));
        x.sent_to_client(b"\r\nContent-Length: 5\r\n");
        assert_eq!(x.broken(), waiting("/a?transfer=1", true));
        x.sent_to_client(b"\r\nhell");
        assert_eq!(x.broken(), waiting("/a?transfer=1", true));
        x.sent_to_client(b"o");
        assert_eq!(x.broken(), Broken::Nothing);
        // An upload in pieces, answered by 100 Continue and then in one piece.
        x.sent_to_server(b"PUT /up HTTP/1.1\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n");
        x.sent_to_client(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(x.broken(), waiting("/up", false));
        x.sent_to_server(b"abc");
        x.sent_to_server(b"def");
        x.sent_to_client(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(x.broken(), Broken::Nothing);
        x.sent_to_server(b"HEAD /h HTTP/1.1\r\n\r\n");
        x.sent_to_client(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(x.broken(), Broken::Nothing);
    }

    #[test]
    fn http1_exchange_gives_up_on_what_it_cannot_follow() {
        let mut tls = Exchange::default();
        tls.sent_to_server(&[0x16, 0x03, 0x01, 0x02, 0x00]);
        assert_eq!(tls.broken(), Broken::Unknown);
        let mut h2c = Exchange::default();
        h2c.sent_to_server(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        assert_eq!(h2c.broken(), Broken::Unknown);
        let mut chunked = Exchange::default();
        chunked.sent_to_server(b"GET / HTTP/1.1\r\n\r\n");
        chunked.sent_to_client(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.broken(), Broken::Unknown);
    }
}
