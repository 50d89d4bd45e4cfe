//! One segment of a `--split` download: the bytes `start..end` of the file,
//! and what the callbacks of its current request do: check that the `206`
//! covers exactly the range asked for, and write the body in place.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use uvcurl::{Flow, Head, Transfer};

use crate::retry::Failure;
use crate::split::state::Span;

/// The file the segments are parts of.
#[derive(Debug)]
pub struct Target {
    /// The `.part` file, open for writing.
    pub file: File,
    /// Its length (every `Content-Range` must say it).
    pub total: u64,
    /// The probe's `ETag`: a segment answered with another one is from
    /// another version of the file.
    pub etag: Option<String>,
}

/// What the callbacks of one segment request share with the download.
#[derive(Debug)]
pub struct Segment {
    /// The file, shared by all segments.
    pub target: Rc<Target>,
    /// The offset the current request starts at.
    pub asked: Cell<u64>,
    /// One past the last byte the current request asks for.
    pub asked_end: Cell<u64>,
    /// One past the segment's last byte; lowered when an idle connection
    /// takes over the second half of what is missing.
    pub end: Cell<u64>,
    /// The first byte of the segment (for the state file).
    pub start: u64,
    /// One past the last byte written.
    pub done: Cell<u64>,
    /// The current response is the `206` asked for.
    pub accepted: Cell<bool>,
    /// Why a callback stopped the request.
    pub problem: RefCell<Option<Failure>>,
    /// Body bytes of the whole download (shared with it).
    pub received: Rc<Cell<u64>>,
    /// The current request, once started.
    pub transfer: RefCell<Option<Transfer>>,
}

impl Segment {
    /// The head callback: only the exact `206` asked for is accepted.
    pub fn on_head(&self, head: &Head) -> Flow {
        self.accepted.set(false);
        if !(200..300).contains(&head.status()) {
            return Flow::Continue; // retried or failed by the completion
        }
        let total = self.target.total;
        let want = (self.asked.get(), self.asked_end.get() - 1, Some(total));
        let got = head.header("content-range");
        let etag = head.header("etag");
        let same_version = match (&self.target.etag, etag) {
            (Some(probe), Some(etag)) => probe == etag,
            _ => true,
        };
        if head.status() == 206 && got.and_then(parse_content_range) == Some(want) && same_version {
            self.accepted.set(true);
            return Flow::Continue;
        }
        let problem = if !same_version {
            format!(
                "the file changed on the server during the download (ETag {:?}, then {:?})",
                self.target.etag.as_deref().unwrap_or_default(),
                etag.unwrap_or_default()
            )
        } else if head.status() == 206 {
            format!(
                "segment bytes {}-{}/{} answered with Content-Range {:?}",
                want.0,
                want.1,
                total,
                got.unwrap_or("(none)")
            )
        } else {
            format!(
                "the server answered the request for bytes {}-{} with status {} (not a range)",
                want.0,
                want.1,
                head.status()
            )
        };
        *self.problem.borrow_mut() = Some(Failure::permanent(problem));
        Flow::Abort
    }

    /// The body callback: writes the chunk in place. Once a segment that
    /// was cut short is complete, it stops its request without a problem
    /// (the completion counts that as success).
    pub fn on_data(&self, chunk: &[u8]) -> Flow {
        self.received.set(self.received.get() + chunk.len() as u64);
        if !self.accepted.get() {
            return Flow::Continue; // the body of an error response
        }
        let at = self.done.get();
        let room = (self.end.get() - at) as usize;
        let (fits, overflow) = chunk.split_at(chunk.len().min(room));
        if let Err(e) = self.target.file.write_all_at(fits, at) {
            *self.problem.borrow_mut() = Some(Failure::permanent(format!("writing: {e}")));
            return Flow::Abort;
        }
        self.done.set(at + fits.len() as u64);
        if self.was_cut() {
            return if self.is_complete() {
                self.stop()
            } else {
                Flow::Continue
            };
        }
        if !overflow.is_empty() {
            let why = format!(
                "the server sent more than bytes {at}-{}",
                self.end.get() - 1
            );
            *self.problem.borrow_mut() = Some(Failure::permanent(why));
            return Flow::Abort;
        }
        Flow::Continue
    }

    /// Stops the request without failing a write: the transfer is cancelled
    /// (and paused until libcurl has returned, when the cancel takes effect).
    fn stop(&self) -> Flow {
        match self.transfer.borrow().as_ref() {
            Some(transfer) => {
                transfer.cancel();
                Flow::Pause
            }
            None => Flow::Abort,
        }
    }

    /// Whether every byte of the segment is on disk.
    pub fn is_complete(&self) -> bool {
        self.done.get() == self.end.get()
    }

    /// Whether the segment ends before what its current request asks for.
    pub fn was_cut(&self) -> bool {
        self.end.get() < self.asked_end.get()
    }

    /// Bytes of the segment not yet on disk.
    pub fn missing(&self) -> u64 {
        self.end.get() - self.done.get()
    }

    /// The segment as the state file records it.
    pub fn span(&self) -> Span {
        Span {
            start: self.start,
            end: self.end.get(),
            done: self.done.get(),
        }
    }
}

/// Whether `head` is a `206` of the whole file (the probe's answer for a
/// file of one byte, or from a server that ignores where a range ends).
pub fn is_whole_file(head: &Head) -> bool {
    let range = head.header("content-range").and_then(parse_content_range);
    matches!(range, Some((0, last, Some(total))) if last + 1 == total)
}

/// Parses `Content-Range: bytes FIRST-LAST/TOTAL` (TOTAL may be `*`).
pub fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let spec = value.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let (first, last) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    let (first, last) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    (first <= last).then_some((first, last, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-0/200"),
            Some((0, 0, Some(200)))
        );
        assert_eq!(parse_content_range(" bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
