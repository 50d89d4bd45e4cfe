//! [`Link`]: a checked http(s) URL, kept as the text libcurl is given.
//!
//! Most URL lists hold URLs already in the form the `url` crate would write
//! them back in (`http://host:port/path?query`, lower case, nothing to
//! escape): [`is_canonical`] recognises those in one pass over the bytes,
//! and only the others are parsed (and normalised) by the `url` crate —
//! a full parse costs several times what the rest of a small file costs the
//! downloader itself.

use std::fmt;

/// An http or https URL with a host, in the `url` crate's serialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link(String);

impl Link {
    /// Checks `text`: an http or https URL with a host.
    ///
    /// # Errors
    /// Why it is not one, for the user.
    pub fn parse(text: &str) -> Result<Link, String> {
        if is_canonical(text) {
            return Ok(Link(text.to_owned()));
        }
        let url = url::Url::parse(text).map_err(|e| format!("invalid URL {text:?}: {e}"))?;
        match url.scheme() {
            "http" | "https" => {}
            other => {
                return Err(format!(
                    "unsupported scheme {other:?} in {text:?} (only http and https)"
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("URL {text:?} has no host"));
        }
        Ok(Link(url.into()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `http` or `https`.
    #[cfg(test)]
    pub fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(scheme, _)| scheme)
    }

    /// The path, as `url::Url::path` gives it: from the `/` after the
    /// authority up to a `?` or `#` (in a serialized http(s) URL neither
    /// the user name nor the password holds a `/`, and the path holds
    /// neither `?` nor `#`).
    pub fn path(&self) -> &str {
        let bytes = self.0.as_bytes();
        let authority = if bytes.starts_with(b"https://") {
            8
        } else if bytes.starts_with(b"http://") {
            7
        } else {
            return "";
        };
        let Some(start) = bytes[authority..].iter().position(|&b| b == b'/') else {
            return "";
        };
        let start = authority + start;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .map_or(bytes.len(), |len| start + len);
        // Both ends are at ASCII bytes (or the end): char boundaries.
        &self.0[start..end]
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<url::Url> for Link {
    /// An http(s) URL with a host (the caller checked).
    fn from(url: url::Url) -> Link {
        Link(url.into())
    }
}

/// Whether `text` is an http(s) URL that the `url` crate would accept and
/// write back unchanged, so that it needs no parse: `http://` or
/// `https://`; a host of lower-case letters, digits, `-` and `.` whose
/// labels are not empty, do not start or end with `-`, nor with `xn--`,
/// and whose last label starts with a letter — or a dotted quad of
/// decimal numbers 0-255 without leading zeros; an optional port 1-65535,
/// not the scheme's default, without leading zeros; a path starting with
/// `/` of printable ASCII that neither gets escaped nor is a dot segment
/// (`.`, `..`, or any `%2e`); an optional query of the same (plus `?`,
/// minus `'`); no fragment. Conservative: anything else is parsed.
pub fn is_canonical(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (rest, default_port): (&[u8], &[u8]) = if let Some(rest) = bytes.strip_prefix(b"http://") {
        (rest, b"80")
    } else if let Some(rest) = bytes.strip_prefix(b"https://") {
        (rest, b"443")
    } else {
        return false;
    };
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return false; // the url crate adds the `/`
    };
    let (authority, path_and_query) = rest.split_at(slash);
    let (host, port) = match authority.iter().position(|&b| b == b':') {
        Some(colon) => (&authority[..colon], Some(&authority[colon + 1..])),
        None => (authority, None),
    };
    let port_ok = port.is_none_or(|port| {
        port.first().is_some_and(|&b| b != b'0')
            && port != default_port
            && port.len() <= 5
            && port.iter().all(u8::is_ascii_digit)
            && port.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 65_535
    });
    port_ok && (is_dotted_quad(host) || is_host_name(host)) && is_plain_path(path_and_query)
}

/// A path (from its first `/`) and optional query that the `url` crate
/// leaves as they are: see [`is_canonical`].
fn is_plain_path(path_and_query: &[u8]) -> bool {
    let mut segment_start = 0;
    let mut in_query = false;
    for (i, &b) in path_and_query.iter().enumerate() {
        if in_query {
            if b == b'\'' || !(b == b'?' || path_byte(b)) {
                return false;
            }
            continue;
        }
        match b {
            b'/' | b'?' => {
                if is_dot_segment(&path_and_query[segment_start..i]) {
                    return false;
                }
                segment_start = i + 1;
                in_query = b == b'?';
            }
            b'%' if path_and_query[i + 1..].starts_with(b"2e")
                || path_and_query[i + 1..].starts_with(b"2E") =>
            {
                return false; // an escaped dot may spell a dot segment
            }
            _ if !path_byte(b) => return false,
            _ => {}
        }
    }
    in_query || !is_dot_segment(&path_and_query[segment_start..])
}

/// Printable ASCII that the `url` crate leaves as it is in an http(s) path
/// (`\` would become `/`; `?` and `#` end the path).
fn path_byte(b: u8) -> bool {
    b.is_ascii_graphic()
        && !matches!(
            b,
            b'"' | b'#' | b'<' | b'>' | b'?' | b'`' | b'{' | b'}' | b'\\'
        )
}

/// `.` or `..`.
fn is_dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// Four decimal numbers 0-255, without leading zeros, joined by dots.
fn is_dotted_quad(host: &[u8]) -> bool {
    let mut parts = 0;
    for part in host.split(|&b| b == b'.') {
        parts += 1;
        let canonical = !part.is_empty()
            && part.len() <= 3
            && part.iter().all(u8::is_ascii_digit)
            && (part == b"0" || part[0] != b'0')
            && part.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0')) <= 255;
        if !canonical {
            return false;
        }
    }
    parts == 4
}

/// A lower-case ASCII host name that IDNA processing leaves alone and
/// that is not read as an IPv4 address (its last label starts with a letter).
fn is_host_name(host: &[u8]) -> bool {
    let mut last: &[u8] = b"";
    for label in host.split(|&b| b == b'.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && label[0] != b'-'
            && label[label.len() - 1] != b'-'
            && !label.starts_with(b"xn--");
        if !ok {
            return false;
        }
        last = label;
    }
    host.len() <= 253 && last.first().is_some_and(u8::is_ascii_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `url` crate makes of `text`, when it is an http(s) URL.
    fn by_url_crate(text: &str) -> Option<(String, String)> {
        let url = url::Url::parse(text).ok()?;
        Some((url.as_str().to_owned(), url.path().to_owned()))
    }

    #[test]
    fn canonical_urls_are_what_the_url_crate_writes_back() {
        for text in [
            "http://127.0.0.1:8080/small/f00001",
            "https://example.org/a/b.txt?x=1&y=%20z",
            "http://a-b.example/",
            "http://h1.example/na%C3%AFve%20x",
            "http://0.0.0.0/x",
            "http://h/d/",
        ] {
            assert!(is_canonical(text), "{text}");
            let link = Link::parse(text).unwrap();
            let (serialized, path) = by_url_crate(text).unwrap();
            assert_eq!(link.as_str(), serialized);
            assert_eq!(link.path(), path, "{text}");
        }
    }

    #[test]
    fn others_are_parsed_and_normalised() {
        for (text, normal) in [
            ("HTTP://H/x", "http://h/x"),
            ("http://h", "http://h/"),
            ("http://h:80/x", "http://h/x"),
            ("https://h:443/x", "https://h/x"),
            ("http://127.1/x", "http://127.0.0.1/x"),
            ("http://0x7f.0.0.1/x", "http://127.0.0.1/x"),
            ("http://h/a/../b", "http://h/b"),
            ("http://h/a/%2e%2E/b", "http://h/b"),
            ("http://h/a b", "http://h/a%20b"),
            ("http://h/a\\b", "http://h/a/b"),
            ("http://h:08080/x", "http://h:8080/x"),
            ("http://user@h/x#frag", "http://user@h/x#frag"),
            ("http://bücher.example/", "http://xn--bcher-kva.example/"),
        ] {
            assert!(!is_canonical(text), "{text}");
            assert_eq!(Link::parse(text).unwrap().as_str(), normal);
        }
        assert_eq!(Link::parse("http://user@h/x?q#frag").unwrap().path(), "/x");
        assert!(Link::parse("ftp://h/x").is_err());
        assert!(Link::parse("http:///x").is_ok_and(|l| l.as_str() == "http://x/"));
        assert!(Link::parse("not a url").is_err());
        assert!(Link::parse("http://h:99999/").is_err());
    }

    /// Random strings made of URL pieces: whenever [`is_canonical`] says
    /// yes, the `url` crate must accept the string and write it back as it
    /// is (bounded: a fixed number of strings from a fixed seed).
    #[test]
    fn canonical_agrees_with_the_url_crate() {
        const HOST: [&str; 20] = [
            "h", "a", "z", "0", "1", "9", "25", "255", "256", "00", "-", ".", "xn--", "A", ":80",
            ":443", ":1", ":0", ":8080", "@",
        ];
        const REST: [&str; 26] = [
            "a", "z", "0", "-", ".", "..", ":", "/", "/", "/", "?", "#", "%", "%2e", "%2E", "%41",
            "A", "\\", " ", "'", "@", "~", "&", "=", "`", "{",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut canonical = 0;
        for _ in 0..100_000 {
            let mut text = String::from(["http://", "https://"][next(2)]);
            for _ in 0..1 + next(4) {
                text.push_str(HOST[next(HOST.len())]);
            }
            if next(10) > 0 {
                text.push('/');
            }
            for _ in 0..next(9) {
                text.push_str(REST[next(REST.len())]);
            }
            if is_canonical(&text) {
                canonical += 1;
                let (serialized, path) = by_url_crate(&text).unwrap_or_default();
                assert_eq!(serialized, text, "{text:?}");
                assert_eq!(Link::parse(&text).unwrap().path(), path, "{text:?}");
            }
        }
        assert!(
            canonical > 1_000,
            "only {canonical} canonical strings drawn"
        );
    }
}
