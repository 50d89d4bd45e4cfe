//! Which failures deserve another try, and how long to wait before it.

use std::time::Duration;

use uvcurl::{Error, ErrorKind};

/// Why an attempt failed, and whether trying again may help.
#[derive(Debug, Clone)]
pub struct Failure {
    /// For people: what went wrong.
    pub reason: String,
    /// A failure that may go away by itself (network trouble, an
    /// overloaded server).
    pub transient: bool,
    /// How long the server asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure worth retrying.
    pub fn transient(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            transient: true,
            retry_after: None,
        }
    }

    /// A failure that retrying would only repeat.
    pub fn permanent(reason: impl Into<String>) -> Failure {
        Failure {
            reason: reason.into(),
            transient: false,
            retry_after: None,
        }
    }

    /// A transfer error: connection failures, timeouts, resets and short
    /// bodies, and HTTP protocol errors are transient; the rest (DNS, TLS,
    /// redirect loops, a bad URL, cancellation) is not.
    pub fn from_error(error: &Error) -> Failure {
        let transient = error.is_connection_lost()
            || matches!(
                error.kind(),
                ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Protocol
            );
        let reason = match error.kind() {
            // Only Ctrl-C cancels transfers here.
            ErrorKind::Cancelled => "interrupted".to_owned(),
            kind => format!("{}: {error}", kind_label(kind)),
        };
        Failure {
            reason,
            transient,
            retry_after: None,
        }
    }

    /// A response with a non-2xx `status`: 408, 429 and 5xx are transient
    /// (honouring `Retry-After`, in seconds or as an HTTP date), any other status is not.
    pub fn from_status(status: u16, retry_after: Option<&str>) -> Failure {
        let reason = match http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
        {
            Some(text) => format!("HTTP {status} {text}"),
            None => format!("HTTP {status}"),
        };
        Failure {
            reason,
            transient: matches!(status, 408 | 429 | 500..=599),
            retry_after: retry_after.and_then(parse_retry_after),
        }
    }
}

/// A short name for an error kind, for messages.
fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Dns => "DNS",
        ErrorKind::Connect => "connect",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Tls => "TLS",
        ErrorKind::TooManyRedirects => "redirects",
        ErrorKind::UnsupportedProtocol => "protocol not allowed",
        ErrorKind::ConnectionReset => "connection reset",
        ErrorKind::PartialBody => "short body",
        ErrorKind::EmptyReply => "empty reply",
        ErrorKind::Protocol => "HTTP protocol",
        ErrorKind::Aborted => "aborted",
        ErrorKind::InvalidInput => "invalid request",
        _ => "error",
    }
}

/// Reads a `Retry-After` (RFC 9110): delay-seconds, or an HTTP date in any
/// of its three forms, as the wait from now (zero for a date in the past).
/// `None` for anything else.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    retry_after_at(value, std::time::SystemTime::now())
}

/// [`parse_retry_after`] as seen at `now`.
fn retry_after_at(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 still means "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// The wait before the first retry (before jitter).
    pub base: Duration,
    /// The longest computed wait.
    pub cap: Duration,
    /// The longest wait a server's `Retry-After` can impose.
    pub retry_after_cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait before retry number `retry` (1 for the first): the server's
    /// `Retry-After` when it sent one, else `base * 2^(retry-1)` capped,
    /// scaled by a random factor in [0.5, 1) so that failed transfers do not
    /// all come back at once.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.retry_after_cap);
        }
        let doublings = retry.saturating_sub(1).min(20);
        let full = self.base.saturating_mul(1 << doublings).min(self.cap);
        full.mul_f64(0.5 + fastrand::f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert!(Failure::from_status(503, None).transient);
        assert!(Failure::from_status(429, Some("2")).transient);
        assert_eq!(
            Failure::from_status(429, Some("2")).retry_after,
            Some(Duration::from_secs(2))
        );
        assert!(Failure::from_status(408, None).transient);
        assert!(!Failure::from_status(404, None).transient);
        assert!(!Failure::from_status(403, None).transient);
        assert_eq!(Failure::from_status(404, None).reason, "HTTP 404 Not Found");
    }

    #[test]
    fn retry_after_in_seconds_or_as_an_http_date() {
        use std::time::{SystemTime, UNIX_EPOCH};
        // 1994-11-06 08:49:37 UTC, RFC 9110's example, in its three forms.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 4);
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                retry_after_at(date, now),
                Some(Duration::from_secs(4)),
                "{date}"
            );
        }
        let later = now + Duration::from_secs(60);
        assert_eq!(
            retry_after_at("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after_at(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after_at("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "Sun, 32 Nov 1994 08:49:37 GMT"] {
            assert_eq!(retry_after_at(bad, now), None, "{bad:?}");
        }
        let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let wait = parse_retry_after(&in_an_hour).unwrap();
        assert!(wait > Duration::from_secs(3590) && wait <= Duration::from_secs(3600));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff::default();
        for retry in 1..40 {
            let d = b.delay(retry, None);
            assert!(d <= b.cap, "{d:?}");
        }
        assert!(b.delay(1, None) < Duration::from_millis(250));
        assert!(b.delay(4, None) >= Duration::from_millis(1000));
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
    }
}

/// Hostile `Retry-After` values never panic; what parses is bounded by
/// the backoff's cap when used.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn retry_after_never_panics(value in "\\PC{0,40}|[0-9 ]{0,30}|[A-Za-z, :0-9-]{0,40}") {
            let parsed = parse_retry_after(&value);
            let delay = Backoff::default().delay(1, parsed);
            prop_assert!(delay <= Duration::from_secs(300));
        }
    }
}
