//! `--split N`: one file fetched as up to N ranged segments in parallel,
//! like aria2c's `-x N -s N`.
//!
//! A [`Download`] first sends a probe, `Range: bytes=0-0`. A `206` whose
//! `Content-Range` gives the total length means the server serves ranges:
//! the `.part` file is created at its full length and each segment's GET
//! (`Range: bytes=S-E`, over its own HTTP/1.x connection, the first one
//! over the probe's, or as a stream of the probe's HTTP/2 connection) writes
//! its bytes in place with
//! `pwrite`, after its own `206` was checked to cover exactly what was asked
//! (and to carry the probe's `ETag`, if both have one).
//! Any other `2xx` to the probe (a server without ranges) is the file
//! itself: it is saved from that one response, as without `--split`.
//!
//! Over HTTP/1.1, a connection whose segment is done takes over the second
//! half of what the segment missing the most still lacks (if that is at
//! least 2 MiB), as aria2c does, so one slow connection does not hold up
//! the file. A segment
//! that fails transiently is retried from where it stopped, with the run's
//! retry policy; one that fails for good fails the file (the other segments
//! are cancelled). With `--continue` the progress of every segment
//! is kept in `NAME.part.state` (see [`state`]),
//! rewritten every second and when the file fails, so a later run fetches
//! only the missing bytes, unless the server's validator (`ETag`,
//! `Last-Modified`) or length changed: then it starts over.
//!
//! `-j` counts files: a split file uses up to N connections. `--max-speed`
//! caps the file, shared equally by its segments.
//!
//! Completions, retry timers and the state timer only queue an [`Event`];
//! [`Download::pump`] handles them one at a time, as the scheduler does.
//!
//! Parts: [`whole`] (the probe, and the single-request fallback),
//! [`segment`] (one segment's callbacks), [`plan`] (where segments begin
//! and end), [`state`] (the `.part.state` file).

use std::cell::{Cell, RefCell};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::rc::{Rc, Weak};
use std::time::Duration;

use uvcurl::uv::Timer;
use uvcurl::{Error, ErrorKind, HttpVersion, Loop, MultiHandle, Response, Transfer};

use crate::attempt::{self, Context, Job, Outcome};
use crate::event_queue::EventQueue;
use crate::output::{self, PartFile};
use crate::retry::{Backoff, Failure};

mod plan;
mod segment;
mod state;
mod whole;

use plan::{plan, spread, MIN_SEGMENT};
use segment::{Segment, Target};
use state::{Span, SplitState, Validator};

/// How often the state file is rewritten while segments run (`--continue`).
const STATE_EVERY: Duration = Duration::from_secs(1);

/// Whether a job should go through [`Download`]: with `--split` above 1, or
/// with `--continue` when a state file says its `.part` holds segments (a
/// plain resume would take the file's holes for data).
pub fn wanted(ctx: &Context, split: u32, name: &str) -> bool {
    split > 1 || (ctx.settings.resume && SplitState::path_for(&ctx.part_path(name)).exists())
}

/// What the download reacts to.
enum Event {
    /// Send the probe.
    Begin,
    /// The probe (or the single-connection request) completed.
    WholeDone(Result<Response, Error>),
    /// Segment `index`'s request completed.
    SegmentDone(usize, Result<Response, Error>),
    /// Segment `index`'s backoff is over.
    RetryDue(usize),
    /// Time to rewrite the state file.
    SaveState,
    /// Ctrl-C: stop everything.
    Cancel,
}

/// A segment and the state of its requests.
struct Slot {
    segment: Rc<Segment>,
    /// Requests started so far.
    tries: u32,
    transfer: Option<Transfer>,
    backoff: Option<Timer>,
}

/// The segmented part of a download, once the probe said ranges work.
struct Segments {
    slots: Vec<Slot>,
    /// The URL after redirects, asked for by every segment.
    url: String,
    total: u64,
    validator: Validator,
    /// Rewrites the state file (with `--continue`).
    state_timer: Option<Timer>,
    /// Whether a connection that is done may take over from another: not
    /// over HTTP/2, whose streams share one connection (and where libcurl
    /// 8.22 dropped the whole connection when one stream was stopped early).
    take_over: bool,
}

/// The mutable state of a download.
struct Inner {
    job: Job,
    /// The probe or single-connection request in flight.
    whole: Option<Transfer>,
    /// The file written by the probe's response (a server without ranges).
    whole_file: Option<PartFile>,
    /// The length that response announced.
    whole_total: Option<u64>,
    /// The probe is answered; the request in flight is a plain GET.
    fallback: bool,
    /// Set once the probe said ranges work.
    segments: Option<Segments>,
    /// Why the download is failing (it ends once nothing runs any more).
    failure: Option<Failure>,
    finished: bool,
    notes: Vec<String>,
}

/// The end of a download, as the scheduler gets it.
pub struct Finished {
    /// What it came to.
    pub outcome: Outcome,
    /// The job, with the name it was saved under.
    pub job: Job,
    /// Things worth telling in verbose mode.
    pub notes: Vec<String>,
}

/// Called once with the end of the download.
type OnFinish = Box<dyn FnOnce(Finished)>;

/// See the module documentation.
pub struct Download {
    me: Weak<Download>,
    ctx: Rc<Context>,
    uv: Loop,
    multi: MultiHandle,
    backoff: Backoff,
    split: u64,
    received: Rc<Cell<u64>>,
    events: EventQueue<Event>,
    inner: RefCell<Inner>,
    on_finish: RefCell<Option<OnFinish>>,
}

impl Download {
    /// A download of `job` (its name already claimed) in up to `split`
    /// segments, to be started with [`begin`](Download::begin); `on_finish`
    /// gets its end.
    pub fn new(
        job: Job,
        split: u32,
        ctx: &Rc<Context>,
        uv: &Loop,
        multi: &MultiHandle,
        on_finish: impl FnOnce(Finished) + 'static,
    ) -> Rc<Download> {
        Rc::new_cyclic(|me| Download {
            me: me.clone(),
            ctx: Rc::clone(ctx),
            uv: uv.clone(),
            multi: multi.clone(),
            backoff: Backoff::default(),
            split: u64::from(split.max(1)),
            received: Rc::default(),
            events: EventQueue::default(),
            inner: RefCell::new(Inner {
                job,
                whole: None,
                whole_file: None,
                whole_total: None,
                fallback: false,
                segments: None,
                failure: None,
                finished: false,
                notes: Vec::new(),
            }),
            on_finish: RefCell::new(Some(Box::new(on_finish))),
        })
    }

    /// Sends the probe (`on_finish` may run before this returns, if even
    /// that fails).
    pub fn begin(&self) {
        self.post(Event::Begin);
    }

    /// Stops the download (Ctrl-C); it ends as failed, its `.part` and
    /// state kept with `--continue`.
    pub fn cancel(&self) {
        self.post(Event::Cancel);
    }

    /// The job as it stands (its name may change with the probe's answer).
    pub fn job(&self) -> Job {
        self.inner.borrow().job.clone()
    }

    /// Body bytes received so far by every request of the download.
    pub fn received(&self) -> u64 {
        self.received.get()
    }

    /// Bytes of the file on disk, and its length when known.
    pub fn progress(&self) -> (u64, Option<u64>) {
        let inner = self.inner.borrow();
        if let Some(segments) = &inner.segments {
            let done = segments
                .slots
                .iter()
                .map(|s| s.segment.done.get() - s.segment.start)
                .sum();
            return (done, Some(segments.total));
        }
        let done = inner.whole_file.as_ref().map_or(0, PartFile::len);
        (done, inner.whole_total)
    }

    /// Queues `event`; handled at once unless another is being handled
    /// (see [`EventQueue`]).
    fn post(&self, event: Event) {
        self.events.post(event, |event| self.handle(event));
    }

    /// Handles one event (none once the download finished), then finishes
    /// a failed download when nothing of it runs any more.
    fn handle(&self, event: Event) {
        if self.inner.borrow().finished {
            return;
        }
        match event {
            Event::Begin => self.send_probe(),
            Event::WholeDone(result) => self.on_whole_done(result),
            Event::SegmentDone(index, result) => self.on_segment_done(index, result),
            Event::RetryDue(index) => self.on_retry_due(index),
            Event::SaveState => self.on_save_state(),
            Event::Cancel => self.on_cancel(),
        }
        self.finish_if_failed_and_idle();
    }

    // ---- segments ------------------------------------------------------------

    /// The probe said ranges work: open the `.part` file (resumed, or new at
    /// its full length), and start every unfinished segment.
    fn begin_segments(&self, probe: &Response, total: u64) {
        self.settle_name(probe.head());
        let validator = Validator {
            etag: probe.header("etag").map(str::to_owned),
            last_modified: probe.header("last-modified").map(str::to_owned),
        };
        let (name, url) = {
            let inner = self.inner.borrow();
            (inner.job.name.clone(), inner.job.url.to_string())
        };
        let part = self.ctx.part_path(&name);
        let opened = match self.resumable(&part, &url, total, &validator) {
            Some(spans) => open_existing(&part, total).map(|file| (file, spans)),
            None => create_sized(&part, total).map(|file| (file, plan(0, total, self.split))),
        };
        let (file, spans) = match opened {
            Ok(opened) => opened,
            Err(e) => return self.fail(io_failure(&part, e)),
        };
        let target = Rc::new(Target {
            file,
            total,
            etag: validator.etag.clone(),
        });
        let slots = spans.iter().map(|span| self.slot(&target, *span)).collect();
        self.inner.borrow_mut().segments = Some(Segments {
            slots,
            url: probe.effective_url().to_owned(),
            total,
            validator,
            state_timer: None,
            take_over: probe.http_version() != HttpVersion::Http2,
        });
        if self.ctx.settings.resume {
            self.on_save_state(); // also arms the state timer
        }
        let open: Vec<usize> = self.unfinished();
        if open.is_empty() {
            return self.complete_segments();
        }
        // Over HTTP/1.x every segment needs a connection of its own: all but
        // the first (which may take the probe's) ask for a new one, or
        // libcurl 7.88 may run them one after another over the probe's (see
        // `Request::fresh_connection`). Over HTTP/2 they are streams of the
        // probe's connection.
        let own_connections = probe.http_version() != HttpVersion::Http2;
        for (n, index) in open.into_iter().enumerate() {
            self.send_segment(index, own_connections && n > 0);
        }
    }

    /// A slot for `span` of the file, no request sent yet.
    fn slot(&self, target: &Rc<Target>, span: Span) -> Slot {
        Slot {
            segment: Rc::new(Segment {
                target: Rc::clone(target),
                asked: Cell::new(span.done),
                asked_end: Cell::new(span.end),
                end: Cell::new(span.end),
                start: span.start,
                done: Cell::new(span.done),
                accepted: Cell::new(false),
                problem: RefCell::new(None),
                received: Rc::clone(&self.received),
                transfer: RefCell::new(None),
            }),
            tries: 0,
            transfer: None,
            backoff: None,
        }
    }

    /// The segments recorded for `part` if `--continue` may resume them: the
    /// state file's (same URL, length and version), or a `.part` of a plain
    /// download as the segment already done, with the rest split anew.
    fn resumable(
        &self,
        part: &Path,
        url: &str,
        total: u64,
        validator: &Validator,
    ) -> Option<Vec<Span>> {
        if !self.ctx.settings.resume {
            return None;
        }
        let state_path = SplitState::path_for(part);
        let on_disk = output::existing_len(part);
        let mut inner = self.inner.borrow_mut();
        let name = inner.job.name.clone();
        if let Some(state) = SplitState::load(&state_path) {
            let why = if state.url != url {
                "its .part.state is for another URL"
            } else if state.total != total || !state.validator.same_version(validator) {
                "it changed on the server since its .part was written"
            } else if on_disk != total {
                "its .part file is not the length its state says"
            } else {
                inner.notes.push(format!(
                    "resumed {name}: {} of {total} bytes already there",
                    state.done_bytes()
                ));
                return Some(spread(state.spans, self.split));
            };
            inner.notes.push(format!("{name}: {why}; starting over"));
            return None;
        }
        if on_disk == 0 || on_disk > total {
            return None;
        }
        inner
            .notes
            .push(format!("resumed {name} at byte {on_disk}"));
        let done = Span {
            start: 0,
            end: on_disk,
            done: on_disk,
        };
        let mut spans = vec![done];
        spans.extend(plan(on_disk, total, self.split));
        Some(spans)
    }

    /// Indexes of the segments not yet complete.
    fn unfinished(&self) -> Vec<usize> {
        let inner = self.inner.borrow();
        let Some(segments) = &inner.segments else {
            return Vec::new();
        };
        (0..segments.slots.len())
            .filter(|&i| !segments.slots[i].segment.is_complete())
            .collect()
    }

    /// Requests what segment `index` still lacks, over a new connection if
    /// `fresh` (else over an idle one, if any).
    fn send_segment(&self, index: usize, fresh: bool) {
        let (request, segment) = {
            let mut inner = self.inner.borrow_mut();
            if inner.failure.is_some() {
                return;
            }
            let Some(segments) = &mut inner.segments else {
                return;
            };
            let running = segments
                .slots
                .iter()
                .filter(|s| !s.segment.is_complete())
                .count() as u64;
            let rate = self
                .ctx
                .settings
                .max_speed
                .map(|r| (r / running.max(1)).max(1));
            let slot = &mut segments.slots[index];
            slot.tries += 1;
            let segment = Rc::clone(&slot.segment);
            segment.asked.set(segment.done.get());
            segment.asked_end.set(segment.end.get());
            *segment.problem.borrow_mut() = None;
            let range = format!("bytes={}-{}", segment.done.get(), segment.end.get() - 1);
            let request = attempt::base_request(&segments.url, &self.ctx, rate)
                .header("Range", &range)
                .fresh_connection(fresh);
            (request, segment)
        };
        let (head_segment, data_segment) = (Rc::clone(&segment), segment);
        let request = request
            .on_head(move |head| head_segment.on_head(head))
            .on_data(move |chunk| data_segment.on_data(chunk));
        let me = self.me.clone();
        let started = self.multi.start(request, move |result| {
            if let Some(me) = me.upgrade() {
                me.post(Event::SegmentDone(index, result));
            }
        });
        match started {
            Ok(transfer) => {
                if let Some(segments) = &mut self.inner.borrow_mut().segments {
                    let slot = &mut segments.slots[index];
                    slot.segment.transfer.replace(Some(transfer.clone()));
                    slot.transfer = Some(transfer);
                }
            }
            Err(error) => self.fail(Failure::from_error(&error)),
        }
    }

    /// Segment `index`'s request completed: done, retried, or failing the file.
    fn on_segment_done(&self, index: usize, result: Result<Response, Error>) {
        let (segment, tries) = {
            let mut inner = self.inner.borrow_mut();
            let Some(segments) = &mut inner.segments else {
                return;
            };
            let slot = &mut segments.slots[index];
            slot.transfer = None;
            slot.segment.transfer.replace(None);
            (Rc::clone(&slot.segment), slot.tries)
        };
        if self.inner.borrow().failure.is_some() {
            return; // the file is failing already
        }
        let problem = segment.problem.borrow_mut().take();
        let failure = match result {
            // Stopped on purpose: the rest of it is another segment's now.
            Err(error)
                if matches!(error.kind(), ErrorKind::Cancelled | ErrorKind::Aborted)
                    && problem.is_none()
                    && segment.is_complete() =>
            {
                return self.segment_complete();
            }
            Err(error) => match problem {
                Some(problem) if error.kind() == ErrorKind::Aborted => problem,
                _ => Failure::from_error(&error),
            },
            Ok(response) if response.status() != 206 => problem.unwrap_or_else(|| {
                Failure::from_status(response.status(), response.header("retry-after"))
            }),
            Ok(_) if segment.is_complete() => return self.segment_complete(),
            Ok(_) => Failure::transient(format!(
                "short segment: bytes {}-{} ended at {}",
                segment.asked.get(),
                segment.asked_end.get() - 1,
                segment.done.get()
            )),
        };
        if failure.transient && tries <= self.ctx.settings.retries {
            self.retry_later(index, tries, failure);
        } else {
            self.fail(Failure::permanent(failure.reason));
        }
    }

    /// A segment is on disk: the file is, or its connection takes over half
    /// of what the segment missing the most still lacks.
    fn segment_complete(&self) {
        if self.unfinished().is_empty() {
            return self.complete_segments();
        }
        if let Some(index) = self.take_over() {
            self.send_segment(index, false);
        }
    }

    /// Cuts the segment with the most bytes missing (at least 2 ×
    /// [`MIN_SEGMENT`]) in two, when fewer than N requests are busy: a new
    /// segment gets its second half (returned), and its own request stops
    /// once it has the first half. So a slow connection holds up at most
    /// half of what it had left.
    fn take_over(&self) -> Option<usize> {
        let mut inner = self.inner.borrow_mut();
        if inner.failure.is_some() {
            return None;
        }
        let segments = inner.segments.as_mut().filter(|s| s.take_over)?;
        let busy = segments
            .slots
            .iter()
            .filter(|s| s.transfer.is_some() || s.backoff.is_some())
            .count() as u64;
        let slowest = segments
            .slots
            .iter()
            .map(|s| Rc::clone(&s.segment))
            .max_by_key(|s| s.missing())?;
        if busy >= self.split || slowest.missing() < 2 * MIN_SEGMENT {
            return None;
        }
        let end = slowest.end.get();
        let middle = slowest.done.get() + slowest.missing() / 2;
        slowest.end.set(middle);
        let rest = Span {
            start: middle,
            end,
            done: middle,
        };
        let target = Rc::clone(&slowest.target);
        let slot = self.slot(&target, rest);
        segments.slots.push(slot);
        Some(segments.slots.len() - 1)
    }

    /// Waits out a backoff before segment `index` asks again.
    fn retry_later(&self, index: usize, tries: u32, failure: Failure) {
        let delay = self.backoff.delay(tries, failure.retry_after);
        let me = self.me.clone();
        let timer = Timer::new(&self.uv, move || {
            if let Some(me) = me.upgrade() {
                me.post(Event::RetryDue(index));
            }
        });
        let timer = match timer {
            Ok(timer) => timer,
            Err(error) => {
                let reason = format!("{} (cannot wait to retry: {error})", failure.reason);
                return self.fail(Failure::permanent(reason));
            }
        };
        timer.start(delay.as_millis() as u64);
        let mut inner = self.inner.borrow_mut();
        let note = format!(
            "retry {tries}/{} of a segment of {} in {:.1}s: {}",
            self.ctx.settings.retries,
            inner.job.name,
            delay.as_secs_f64(),
            failure.reason
        );
        inner.notes.push(note);
        if let Some(segments) = &mut inner.segments {
            segments.slots[index].backoff = Some(timer);
        }
    }

    fn on_retry_due(&self, index: usize) {
        let due = {
            let mut inner = self.inner.borrow_mut();
            let failing = inner.failure.is_some();
            match &mut inner.segments {
                Some(segments) => segments.slots[index].backoff.take().is_some() && !failing,
                None => false,
            }
        };
        if due {
            self.send_segment(index, false);
        }
    }

    /// Every segment is on disk: check the length, then save.
    fn complete_segments(&self) {
        let (total, part) = {
            let mut inner = self.inner.borrow_mut();
            let name = inner.job.name.clone();
            let Some(segments) = &mut inner.segments else {
                return;
            };
            segments.state_timer = None;
            (segments.total, self.ctx.part_path(&name))
        };
        match fs::symlink_metadata(&part) {
            Ok(meta) if meta.is_file() && meta.len() == total => {}
            Ok(meta) => {
                let why = format!("{} is {} bytes, not {total}", part.display(), meta.len());
                return self.fail(Failure::permanent(why));
            }
            Err(e) => return self.fail(io_failure(&part, e)),
        }
        self.save(total);
    }

    /// Rewrites the state file and rearms its timer (with `--continue`).
    fn on_save_state(&self) {
        let mut inner = self.inner.borrow_mut();
        let part = self.ctx.part_path(&inner.job.name);
        let url = inner.job.url.to_string();
        let Some(segments) = &mut inner.segments else {
            return;
        };
        let state = SplitState {
            url,
            total: segments.total,
            validator: segments.validator.clone(),
            spans: sorted_spans(&segments.slots),
        };
        // A state that cannot be written only costs a resume its head start.
        let _ = state.save(&SplitState::path_for(&part));
        if segments.state_timer.is_none() {
            let me = self.me.clone();
            let timer = Timer::new(&self.uv, move || {
                if let Some(me) = me.upgrade() {
                    me.post(Event::SaveState);
                }
            });
            segments.state_timer = timer.ok();
            if let Some(timer) = &segments.state_timer {
                timer.unref();
            }
        }
        if let Some(timer) = &segments.state_timer {
            timer.start(STATE_EVERY.as_millis() as u64);
        }
    }

    // ---- the end -----------------------------------------------------------

    /// Records why the file fails and stops every request still running; the
    /// download ends once their completions are in.
    fn fail(&self, failure: Failure) {
        let transfers = {
            let mut inner = self.inner.borrow_mut();
            inner.failure.get_or_insert(failure);
            let mut transfers: Vec<Transfer> = inner.whole.take().into_iter().collect();
            if let Some(segments) = &mut inner.segments {
                for slot in &mut segments.slots {
                    slot.backoff = None;
                    transfers.extend(slot.transfer.clone());
                }
            }
            transfers
        };
        // Their completions only queue events (this runs inside the pump).
        for transfer in transfers {
            transfer.cancel();
        }
    }

    fn on_cancel(&self) {
        self.fail(Failure::permanent("interrupted"));
    }

    /// Ends a failing download once no request runs any more: the `.part`
    /// file and its state are kept with `--continue`, else removed.
    fn finish_if_failed_and_idle(&self) {
        let failure = {
            let mut inner = self.inner.borrow_mut();
            if inner.failure.is_none() || inner.whole.is_some() {
                return;
            }
            if let Some(segments) = &inner.segments {
                if segments.slots.iter().any(|s| s.transfer.is_some()) {
                    return;
                }
            }
            inner.failure.take()
        };
        let Some(failure) = failure else { return };
        let part = self.ctx.part_path(&self.inner.borrow().job.name);
        if self.ctx.settings.resume {
            self.on_save_state();
        } else {
            let _ = output::discard(&part);
            let _ = SplitState::remove(&SplitState::path_for(&part));
        }
        self.finish(Outcome::Failed(failure));
    }

    /// Verifies the checksum of the complete `.part` file (if the job has
    /// one) and renames it to its final name; removes the state file.
    fn save(&self, bytes: u64) {
        let job = self.inner.borrow().job.clone();
        let part = self.ctx.part_path(&job.name);
        let state = SplitState::path_for(&part);
        if let Some(sum) = &job.checksum {
            match sum.verify_file(&part) {
                Ok(Ok(())) => self.inner.borrow_mut().notes.push(format!(
                    "{} checksum of {} verified",
                    sum.algorithm, job.name
                )),
                Ok(Err(actual)) => {
                    let _ = output::discard(&part);
                    let _ = SplitState::remove(&state);
                    return self.finish(Outcome::Failed(Failure::permanent(sum.mismatch(&actual))));
                }
                Err(e) => return self.fail_now(io_failure(&part, e)),
            }
        }
        // As a single download saves: the rename never replaces (unless
        // overwriting), and a name taken on disk makes it `NAME.1`, ...
        let overwrite = self.ctx.settings.overwrite;
        let mut name = job.name.clone();
        for _ in 0..attempt::MAX_NAME_TRIES {
            let dest = self.ctx.final_path(&name);
            match output::promote(&part, &dest, overwrite) {
                Ok(()) => {
                    let _ = SplitState::remove(&state);
                    return self.finish(Outcome::Saved { path: dest, bytes });
                }
                Err(e) if attempt::name_taken(&e) => {
                    name = self.ctx.names.borrow_mut().claim_next(&name);
                }
                Err(e) => return self.fail_now(io_failure(&dest, e)),
            }
        }
        self.fail_now(attempt::too_many_names(&job.name))
    }

    /// Fails the download when nothing runs any more (after the last segment).
    fn fail_now(&self, failure: Failure) {
        self.inner.borrow_mut().failure = Some(failure);
        self.finish_if_failed_and_idle();
    }

    /// Hands the end to the scheduler (once) and drops every timer.
    fn finish(&self, outcome: Outcome) {
        let (job, notes) = {
            let mut inner = self.inner.borrow_mut();
            inner.finished = true;
            if let Some(segments) = &mut inner.segments {
                segments.state_timer = None;
                for slot in &mut segments.slots {
                    slot.backoff = None;
                }
            }
            (inner.job.clone(), std::mem::take(&mut inner.notes))
        };
        let on_finish = self.on_finish.borrow_mut().take();
        if let Some(on_finish) = on_finish {
            on_finish(Finished {
                outcome,
                job,
                notes,
            });
        }
    }
}

/// The spans of `slots` in file order (segments taken over are appended).
fn sorted_spans(slots: &[Slot]) -> Vec<Span> {
    let mut spans: Vec<Span> = slots.iter().map(|s| s.segment.span()).collect();
    spans.sort_by_key(|s| s.start);
    spans
}

/// Creates a new `.part` file at `part` of `total` bytes (a stale one, or a
/// link, is removed first, never written through), and removes any state.
fn create_sized(part: &Path, total: u64) -> io::Result<File> {
    output::discard(part)?;
    SplitState::remove(&SplitState::path_for(part))?;
    let file = OpenOptions::new().write(true).create_new(true).open(part)?;
    file.set_len(total)?;
    Ok(file)
}

/// Opens the existing `.part` file at `part` (a regular file, not a link)
/// to write into it; it must hold `total` bytes, or be a plain download's
/// prefix shorter than that.
fn open_existing(part: &Path, total: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(part)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > total {
        return Err(io::Error::other(format!(
            "not a resumable part file ({} bytes)",
            meta.len()
        )));
    }
    file.set_len(total)?;
    Ok(file)
}

/// A failed file operation.
fn io_failure(path: &Path, error: io::Error) -> Failure {
    Failure::permanent(format!("{}: {error}", path.display()))
}
