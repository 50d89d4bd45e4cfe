//! The end of a transfer: its outcome and the [`Response`] read back from
//! the easy handle.

use super::{Sink, TransferState};
use crate::curl::sys;
use crate::error::Error;
use crate::response::{HttpVersion, Response, Timings};
use curl_sys as curl;
use std::time::Duration;

impl TransferState {
    /// The outcome for libcurl's final `code`: a cancellation or a
    /// callback's failure wins over what libcurl reports.
    pub fn outcome(&self, code: curl::CURLcode) -> Result<(), Error> {
        if self.flags.cancel_requested.get() {
            return Err(Error::cancelled());
        }
        if self.flags.multi_closed.get() {
            return Err(Error::multi_closed());
        }
        if let Some(error) = self.flags.failure.borrow_mut().take() {
            return Err(*error);
        }
        if let Some(socket) = self.flags.refused_high_socket.get() {
            return Err(Error::socket_limit(socket));
        }
        if code == curl::CURLE_OK {
            self.flags.ended_cleanly.set(true);
            return Ok(());
        }
        let mut detail = self.easy.error_text();
        let errno = self.easy.info_long(curl::CURLINFO_OS_ERRNO) as i32;
        if errno != 0 {
            let os = std::io::Error::from_raw_os_error(errno);
            detail = format!("{detail} ({os})");
        }
        let answered = self.easy.info_long(curl::CURLINFO_RESPONSE_CODE) != 0;
        Err(Error::from_transfer(code, &detail, answered))
    }

    /// How many redirects were followed. A followed redirect's response
    /// brought its status line to the header callback before the next one
    /// did, so with a single status line seen there was none (libcurl is
    /// asked otherwise).
    fn redirects(&self) -> u32 {
        if self.status_lines.get() == 1 {
            return 0;
        }
        let count = self.easy.info_long(curl::CURLINFO_REDIRECT_COUNT);
        count.max(0) as u32
    }

    /// Reads status, headers, sizes and timings back from the easy handle.
    pub fn response(&self) -> Response {
        let easy = &self.easy;
        let body = match &self.sink {
            Sink::Collect(buffer) => std::mem::take(&mut *buffer.borrow_mut()),
            _ => Vec::new(),
        };
        let mut head = std::mem::take(&mut *self.head.borrow_mut());
        // The status line the header callback saw names the final status and
        // version (what CURLINFO_RESPONSE_CODE and CURLINFO_HTTP_VERSION
        // report); libcurl is asked only when it named neither.
        if head.status == 0 {
            head.status = easy.info_long(curl::CURLINFO_RESPONSE_CODE) as u16;
        }
        let version = match head.line_version {
            10 => sys::CURL_HTTP_VERSION_1_0,
            11 => sys::CURL_HTTP_VERSION_1_1,
            20 => sys::CURL_HTTP_VERSION_2_0,
            30 => sys::CURL_HTTP_VERSION_3,
            _ => easy.info_long(sys::CURLINFO_HTTP_VERSION),
        };
        let version = match version {
            sys::CURL_HTTP_VERSION_1_0 => HttpVersion::Http1_0,
            sys::CURL_HTTP_VERSION_1_1 => HttpVersion::Http1_1,
            sys::CURL_HTTP_VERSION_2_0 => HttpVersion::Http2,
            sys::CURL_HTTP_VERSION_3 => HttpVersion::Http3,
            _ => HttpVersion::Unknown,
        };
        // Nothing is sent without a request body.
        let sends_body = self.post_body().is_some() || self.has_upload();
        let bytes_sent = if sends_body {
            easy.info_off_t(sys::CURLINFO_SIZE_UPLOAD_T).max(0) as u64
        } else {
            0
        };
        let micros = |info| Duration::from_micros(easy.info_off_t(info).max(0) as u64);
        Response {
            head,
            body,
            effective_url: easy
                .info_string_like(curl::CURLINFO_EFFECTIVE_URL, self.url_text.take()),
            version,
            bytes_received: easy.info_off_t(sys::CURLINFO_SIZE_DOWNLOAD_T).max(0) as u64,
            bytes_sent,
            redirects: self.redirects(),
            timings: Timings {
                name_lookup: micros(sys::CURLINFO_NAMELOOKUP_TIME_T),
                connect: micros(sys::CURLINFO_CONNECT_TIME_T),
                tls: micros(sys::CURLINFO_APPCONNECT_TIME_T),
                first_byte: micros(sys::CURLINFO_STARTTRANSFER_TIME_T),
                total: micros(sys::CURLINFO_TOTAL_TIME_T),
            },
            // A remote transfer's completion sets where the buffers go back.
            recycler: None,
        }
    }
}
