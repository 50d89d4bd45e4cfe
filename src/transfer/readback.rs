//! The end of a transfer: its outcome and the [`Response`] read back from
//! the easy handle.

use super::{Sink, TransferState};
use crate::error::Error;
use crate::response::{LazyDetails, Response, Settle, Source};
use curl_sys as curl;
use std::sync::Arc;

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
        if let Some(error) = self.flags.failure.take() {
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

    /// [`TransferState::response`] with every detail read now, for a
    /// response handed to another thread.
    pub fn response_read_now(&self) -> Response {
        let (response, settle) = self.response(None);
        response.details.get();
        drop(settle);
        response
    }

    /// The response of a successful transfer, and the driver's hold on the
    /// easy handle its details are read from (see `response::details`):
    /// [`Settle::settle`] runs once the completion returned (or the `Settle`
    /// is dropped, which settles too), before this state (and so the handle)
    /// is dropped. `spare`: what an earlier settle gave back, to hold the
    /// details.
    pub fn response(&self, spare: Option<Arc<LazyDetails>>) -> (Response, Settle) {
        let body = match &mut *self.sink.borrow_mut() {
            Sink::Collect(buffer) => std::mem::take(buffer),
            _ => Vec::new(),
        };
        let head = std::mem::take(&mut *self.head.borrow_mut());
        let collected = self.options.as_ref().is_some_and(|o| o.collects_head);
        // The status line a header callback saw names the final status (what
        // CURLINFO_RESPONSE_CODE reports); libcurl is asked otherwise.
        let status = match head.status {
            0 => self.easy.info_long(curl::CURLINFO_RESPONSE_CODE) as u16,
            status => status,
        };
        // A followed redirect's response brought its status line to the
        // header callback before the next one did: with a single one seen,
        // there was none.
        let redirects = (collected && self.status_lines.get() == 1).then_some(0);
        let source = Source {
            // SAFETY: the handle is out of the multi; the driver drops this
            // state (reusing the handle) only after the `Settle` returned
            // here, which reads what a live response needs (when settled,
            // or dropped) before it goes.
            easy: unsafe { self.easy.info_for_later() },
            status,
            head,
            head_collected: collected,
            url_text: self.url_text.take(),
            // Nothing is sent without a request body.
            sends_body: self.post_body().is_some() || self.has_upload(),
            redirects,
        };
        let (details, settle) = LazyDetails::pending(source, spare);
        let response = Response {
            status,
            body,
            details,
            // A remote transfer's completion sets where the buffers go back.
            recycler: None,
        };
        (response, settle)
    }
}
