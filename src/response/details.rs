//! A response's [`Details`] (header fields, effective URL, sizes, timings),
//! read back from libcurl only when something asks for them.
//!
//! Most completions look at the status and the body only. So a finished
//! transfer hands its [`Response`](super::Response) a [`LazyDetails`] that
//! still points at the easy handle: while the completion callback runs, the
//! first accessor that needs a detail reads them all from the handle (the
//! header fields through libcurl's header API, no header callback needed).
//! When the callback returns, the driver calls [`Settle::settle`]: if the
//! response outlived the callback (kept, sent elsewhere, cloned), its details
//! are read then, before the handle is reused; if not, nothing is read.

use super::{Head, HttpVersion, Timings};
use crate::curl::{sys, EasyInfo};
use curl_sys as curl;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// What a finished transfer reports beyond its status and body.
#[derive(Debug, Clone)]
pub(crate) struct Details {
    pub head: Head,
    pub effective_url: String,
    pub version: HttpVersion,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub redirects: u32,
    pub timings: Timings,
}

impl Default for Details {
    fn default() -> Details {
        Details {
            head: Head::default(),
            effective_url: String::new(),
            version: HttpVersion::Unknown,
            bytes_received: 0,
            bytes_sent: 0,
            redirects: 0,
            timings: Timings::default(),
        }
    }
}

/// Where [`Details`] are read from: a finished transfer's easy handle, and
/// what the transfer learnt itself.
pub(crate) struct Source {
    /// The handle, out of the multi; the driver reuses it only once the
    /// details were read or no response can read them any more.
    pub easy: EasyInfo<'static>,
    pub status: u16,
    /// The fields, when a header callback collected them (else an empty
    /// buffer to read them into).
    pub head: Head,
    pub head_collected: bool,
    /// The URL as the request gave it (the effective URL, unless redirected).
    pub url_text: String,
    /// Whether the request had a body (else nothing was sent).
    pub sends_body: bool,
    /// The redirect count when the transfer knows it (else libcurl is asked).
    pub redirects: Option<u32>,
}

// SAFETY: `EasyInfo` is a handle pointer; a `Source` is used by one thread
// at a time (behind `LazyDetails::source`'s lock, inside `OnceLock`'s one-time
// initialisation), and only while the driver keeps the handle out of use
// (see `Settle`).
unsafe impl Send for Source {}

impl Source {
    /// Reads everything from the handle.
    fn read(self) -> Details {
        let easy = self.easy;
        let mut head = self.head;
        if !self.head_collected {
            head.fill_from(&easy);
        }
        head.status = self.status;
        if head.line_version == 0 {
            // No status line seen (the header API's path): libcurl knows.
            // (Set on the head, so that it equals one a header callback
            // collected.)
            head.line_version = match easy.long(sys::CURLINFO_HTTP_VERSION) {
                sys::CURL_HTTP_VERSION_1_0 => 10,
                sys::CURL_HTTP_VERSION_1_1 => 11,
                sys::CURL_HTTP_VERSION_2_0 => 20,
                sys::CURL_HTTP_VERSION_3 => 30,
                _ => 0,
            };
        }
        let version = match head.line_version {
            10 => HttpVersion::Http1_0,
            11 => HttpVersion::Http1_1,
            20 => HttpVersion::Http2,
            30 => HttpVersion::Http3,
            _ => HttpVersion::Unknown,
        };
        let bytes_sent = if self.sends_body {
            easy.off_t(sys::CURLINFO_SIZE_UPLOAD_T).max(0) as u64
        } else {
            0
        };
        let micros = |info| Duration::from_micros(easy.off_t(info).max(0) as u64);
        Details {
            head,
            effective_url: easy.string_like(curl::CURLINFO_EFFECTIVE_URL, self.url_text),
            version,
            bytes_received: easy.off_t(sys::CURLINFO_SIZE_DOWNLOAD_T).max(0) as u64,
            bytes_sent,
            redirects: self
                .redirects
                .unwrap_or_else(|| easy.long(curl::CURLINFO_REDIRECT_COUNT).max(0) as u32),
            timings: Timings {
                name_lookup: micros(sys::CURLINFO_NAMELOOKUP_TIME_T),
                connect: micros(sys::CURLINFO_CONNECT_TIME_T),
                tls: micros(sys::CURLINFO_APPCONNECT_TIME_T),
                first_byte: micros(sys::CURLINFO_STARTTRANSFER_TIME_T),
                total: micros(sys::CURLINFO_TOTAL_TIME_T),
            },
        }
    }
}

/// [`Details`], read from their [`Source`] at the first ask.
pub(crate) struct LazyDetails {
    ready: OnceLock<Details>,
    source: Mutex<Option<Source>>,
}

impl LazyDetails {
    /// Details to read from `source` when asked, in `spare` (an empty one
    /// [`Settle::settle`] gave back) if there is one.
    pub fn pending(source: Source, spare: Option<Arc<LazyDetails>>) -> (Arc<LazyDetails>, Settle) {
        let lazy = match spare {
            Some(mut spare) => match Arc::get_mut(&mut spare) {
                Some(empty) => {
                    *empty
                        .source
                        .get_mut()
                        .unwrap_or_else(PoisonError::into_inner) = Some(source);
                    spare
                }
                None => LazyDetails::new(source),
            },
            None => LazyDetails::new(source),
        };
        (lazy.clone(), Settle(Some(lazy)))
    }

    fn new(source: Source) -> Arc<LazyDetails> {
        Arc::new(LazyDetails {
            ready: OnceLock::new(),
            source: Mutex::new(Some(source)),
        })
    }

    /// Details known already.
    #[cfg(test)]
    pub fn ready(details: Details) -> Arc<LazyDetails> {
        Arc::new(LazyDetails {
            ready: OnceLock::from(details),
            source: Mutex::new(None),
        })
    }

    /// The details, read now if they were not yet.
    pub fn get(&self) -> &Details {
        self.ready.get_or_init(|| {
            let source = self
                .source
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            // (No source: an earlier read panicked; nothing more to learn.)
            source.map_or_else(Details::default, Source::read)
        })
    }

    /// The details when already read.
    pub fn get_mut(&mut self) -> Option<&mut Details> {
        self.ready.get_mut()
    }
}

/// The driver's hold on a response's [`LazyDetails`] while its completion
/// runs: the easy handle stays out of use until [`Settle::settle`], or until
/// this is dropped (which settles too: an unwinding panic cannot leave a
/// response pointing at a handle about to be reused).
pub(crate) struct Settle(Option<Arc<LazyDetails>>);

impl Settle {
    /// After the completion: reads the details if the response is still
    /// alive somewhere, so the handle can be reused (or freed). When no
    /// response holds them any more, they are emptied and given back, for
    /// the next response's [`LazyDetails::pending`] (no allocation).
    pub fn settle(mut self) -> Option<Arc<LazyDetails>> {
        self.0.take().and_then(settle)
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        if let Some(lazy) = self.0.take() {
            settle(lazy);
        }
    }
}

/// [`Settle::settle`].
fn settle(mut lazy: Arc<LazyDetails>) -> Option<Arc<LazyDetails>> {
    // (`get_mut` orders any other thread's reads, before it let go of its
    // response, before the handle's reuse.)
    match Arc::get_mut(&mut lazy) {
        Some(unused) => {
            unused.ready = OnceLock::new();
            *unused
                .source
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner) = None;
            Some(lazy)
        }
        None => {
            lazy.get();
            None
        }
    }
}
