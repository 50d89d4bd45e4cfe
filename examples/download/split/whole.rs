//! The probe of a `--split` download (`Range: bytes=0-0`), and the single
//! request that fetches the file when the server does not serve ranges:
//! a `2xx` other than a `206` of part of the file is the file itself,
//! written as it arrives.

use uvcurl::{Error, ErrorKind, Flow, Head, Request, Response};

use super::segment::{is_whole_file, parse_content_range};
use super::state::SplitState;
use super::{io_failure, Download, Event};
use crate::attempt;
use crate::naming;
use crate::output::{self, PartFile};
use crate::retry::Failure;

impl Download {
    /// Sends `Range: bytes=0-0` for the job's URL.
    pub(super) fn send_probe(&self) {
        let url = self.inner.borrow().job.url.to_string();
        let request = attempt::base_request(&url, &self.ctx, self.ctx.settings.max_speed)
            .header("Range", "bytes=0-0");
        self.start_whole(request);
    }

    /// Sends the job's URL without a range: the whole file on one connection.
    fn send_whole(&self, why: &str) {
        let url = {
            let mut inner = self.inner.borrow_mut();
            let note = format!("{}: {why}; one connection", inner.job.name);
            inner.notes.push(note);
            inner.fallback = true;
            inner.job.url.to_string()
        };
        let request = attempt::base_request(&url, &self.ctx, self.ctx.settings.max_speed);
        self.start_whole(request);
    }

    /// Starts the probe or whole-file request: any `2xx` but a `206` is the
    /// file itself and is written as it arrives.
    fn start_whole(&self, request: Request) {
        let (head_me, data_me, done_me) = (self.me.clone(), self.me.clone(), self.me.clone());
        let request = request
            .on_head(move |head| match head_me.upgrade() {
                Some(me) => me.on_whole_head(head),
                None => Flow::Abort,
            })
            .on_data(move |chunk| match data_me.upgrade() {
                Some(me) => me.on_whole_data(chunk),
                None => Flow::Abort,
            });
        let started = self.multi.start(request, move |result| {
            if let Some(me) = done_me.upgrade() {
                me.post(Event::WholeDone(result));
            }
        });
        match started {
            Ok(transfer) => self.inner.borrow_mut().whole = Some(transfer),
            Err(error) => self.fail(Failure::from_error(&error)),
        }
    }

    /// The whole-file request's head: a `2xx` other than a `206` of part of
    /// the file opens the `.part` file (starting over: its old bytes cannot
    /// be trusted).
    fn on_whole_head(&self, head: &Head) -> Flow {
        let status = head.status();
        if !(200..300).contains(&status) || (status == 206 && !is_whole_file(head)) {
            return Flow::Continue;
        }
        self.settle_name(head);
        let mut inner = self.inner.borrow_mut();
        let part = self.ctx.part_path(&inner.job.name);
        let _ = SplitState::remove(&SplitState::path_for(&part));
        let created = output::discard(&part).and_then(|()| PartFile::create(part.clone()));
        match created {
            Ok(file) => {
                inner.whole_file = Some(file);
                inner.whole_total = content_length(head);
                Flow::Continue
            }
            Err(e) => {
                inner.failure = Some(io_failure(&part, e));
                Flow::Abort
            }
        }
    }

    fn on_whole_data(&self, chunk: &[u8]) -> Flow {
        self.received.set(self.received.get() + chunk.len() as u64);
        let mut inner = self.inner.borrow_mut();
        let Some(file) = &mut inner.whole_file else {
            return Flow::Continue; // the probe's byte, or an error body
        };
        if let Err(e) = file.write(chunk) {
            let failure = io_failure(file.path(), e);
            inner.failure = Some(failure);
            return Flow::Abort;
        }
        Flow::Continue
    }

    /// The probe or whole-file request completed.
    pub(super) fn on_whole_done(&self, result: Result<Response, Error>) {
        let (file, problem) = {
            let mut inner = self.inner.borrow_mut();
            inner.whole = None;
            (inner.whole_file.take(), inner.failure.take())
        };
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                let failure = match problem {
                    Some(problem) if error.kind() == ErrorKind::Aborted => problem,
                    _ => Failure::from_error(&error),
                };
                if let Some(file) = file {
                    let _ = file.close();
                }
                return self.fail(failure);
            }
        };
        if let Some(file) = file {
            return self.conclude_whole(file);
        }
        let status = response.status();
        // Only the probe's answer may lead to segments or to a second request.
        let probing = !self.inner.borrow().fallback;
        if probing && status == 206 {
            let range = response
                .header("content-range")
                .and_then(parse_content_range);
            let ranges_refused = response
                .header("accept-ranges")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
            return match range {
                Some((0, 0, Some(total))) if !ranges_refused => {
                    self.begin_segments(&response, total)
                }
                _ => self.send_whole("no usable Content-Range in the answer to a range request"),
            };
        }
        if probing && status == 416 {
            return self.send_whole("the range 0-0 is not satisfiable (an empty file?)");
        }
        self.fail(Failure::from_status(status, response.header("retry-after")));
    }

    /// The single response completed: check its length and save it.
    fn conclude_whole(&self, file: PartFile) {
        let (_, len) = file.close();
        let total = self.inner.borrow().whole_total;
        match total {
            Some(total) if total != len => self.fail(Failure::transient(format!(
                "short body: got {len} of {total} bytes"
            ))),
            _ => self.save(len),
        }
    }

    /// Switches to the `Content-Disposition` name, if the server gave one and
    /// `out=` did not name the file (as a single attempt does).
    pub(super) fn settle_name(&self, head: &Head) {
        let mut inner = self.inner.borrow_mut();
        if inner.job.out.is_some() {
            return;
        }
        let Some(wanted) = head
            .header("content-disposition")
            .and_then(naming::name_from_content_disposition)
        else {
            return;
        };
        if wanted == inner.job.name {
            return;
        }
        let mut names = self.ctx.names.borrow_mut();
        names.release(&inner.job.name);
        inner.job.name = names.claim(&wanted);
        let note = format!(
            "{} is named {} by the server",
            inner.job.url, inner.job.name
        );
        inner.notes.push(note);
    }
}

/// The `Content-Length` of `head`.
fn content_length(head: &Head) -> Option<u64> {
    head.header("content-length")
        .and_then(|v| v.trim().parse().ok())
}
