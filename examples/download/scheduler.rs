//! The scheduler: keeps up to `-j` transfers in flight on one libuv loop,
//! retries transient failures after a backoff [`Timer`], refreshes the
//! progress display and reacts to Ctrl-C, all on the loop thread.
//!
//! Callbacks from uvcurl and libuv only queue an [`Event`]; [`Scheduler::pump`]
//! handles the queue one event at a time. A completion that fires while the
//! scheduler is itself inside `start` or `cancel` is therefore just queued,
//! and the scheduler is never re-entered.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::HumanBytes;
use uvcurl::uv::Timer;
use uvcurl::{Error, Loop, Multi, MultiHandle, Response, Transfer};

use crate::attempt::{self, Attempt, Context, Job, Outcome};
use crate::cli::{Entry, Settings};
use crate::event_queue::EventQueue;
use crate::naming;
use crate::progress::{Active, Progress, Snapshot};
use crate::report::{FailedUrl, Report, SavedFile};
use crate::retry::{Backoff, Failure};
use crate::split::{self, Download, Finished};

/// How often the progress display is refreshed and Ctrl-C is looked for.
const TICK: Duration = Duration::from_millis(100);

/// Downloads every URL in `urls` as `settings` say, on a loop of its own,
/// and reports what happened. Setting `interrupt` stops the run early.
///
/// # Errors
/// If libuv or libcurl cannot be set up, or the loop fails.
pub fn download_all(
    settings: Settings,
    urls: Vec<Entry>,
    interrupt: Arc<AtomicBool>,
) -> Result<Report, Error> {
    let uv = Loop::new()?;
    let multi = Multi::new(&uv)?;
    let scheduler = Scheduler::new(&uv, &multi, settings, urls, interrupt)?;
    scheduler.post(Event::Tick);
    let ran = uv.run();
    let report = scheduler.close_out();
    drop(scheduler);
    drop(multi);
    // Let the handles closed above finish closing, then release the loop.
    uv.run()?;
    if let Err(error) = uv.close() {
        eprintln!("warning: {error}");
    }
    ran.map(|()| report)
}

/// What the scheduler reacts to.
enum Event {
    /// A transfer completed.
    Done(u64, Result<Response, Error>),
    /// A `--split` download ended.
    SplitDone(u64, Finished),
    /// A job's backoff wait is over.
    RetryDue(u64),
    /// Time to refresh the display and look for Ctrl-C.
    Tick,
    /// Time to start what fits in the slots that completions freed.
    Refill,
}

/// A transfer in flight.
struct Running {
    work: Work,
    /// When it started, for its rate on the progress bars (`None` when
    /// nothing draws them: no clock is read then).
    since: Option<Instant>,
    /// Set once `start` returned.
    transfer: Option<Transfer>,
}

/// What a running job is: one attempt, or a segmented download.
enum Work {
    Single(Rc<RefCell<Attempt>>),
    Split(Rc<Download>),
}

impl Work {
    fn job(&self) -> Job {
        match self {
            Work::Single(attempt) => attempt.borrow().job.clone(),
            Work::Split(download) => download.job(),
        }
    }

    /// Body bytes received, bytes of the file so far, and its length.
    fn counts(&self) -> (u64, u64, Option<u64>) {
        match self {
            Work::Single(attempt) => {
                let a = attempt.borrow();
                (a.received, a.progress(), a.total)
            }
            Work::Split(download) => {
                let (done, total) = download.progress();
                (download.received(), done, total)
            }
        }
    }
}

/// The scheduler's mutable state.
#[derive(Default)]
struct State {
    /// URLs not started yet, with the id the next one gets.
    fresh: VecDeque<Entry>,
    next_id: u64,
    /// Jobs whose retry is due, waiting for a free slot.
    ready: VecDeque<Job>,
    /// Transfers in flight, by job id.
    running: BTreeMap<u64, Running>,
    /// Jobs waiting out a backoff, with its timer.
    waiting: HashMap<u64, (Job, Timer)>,
    report: Report,
    interrupted: bool,
    finished: bool,
}

/// See the module documentation.
pub struct Scheduler {
    me: Weak<Scheduler>,
    uv: Loop,
    multi: MultiHandle,
    ctx: Rc<Context>,
    backoff: Backoff,
    interrupt: Arc<AtomicBool>,
    started: Instant,
    files_total: u64,
    events: EventQueue<Event>,
    state: RefCell<State>,
    progress: RefCell<Progress>,
    tick: RefCell<Option<Timer>>,
    /// Starts new transfers on the loop turn after completions freed
    /// slots (see [`Scheduler::refill_soon`]).
    refill: RefCell<Option<Timer>>,
}

impl Scheduler {
    /// A scheduler for `urls` on `multi`; nothing starts before the first event.
    fn new(
        uv: &Loop,
        multi: &Multi,
        settings: Settings,
        urls: Vec<Entry>,
        interrupt: Arc<AtomicBool>,
    ) -> Result<Rc<Scheduler>, Error> {
        let files_total = urls.len() as u64;
        let progress = Progress::new(settings.verbosity, files_total);
        let ctx = Context::new(settings);
        // One name per URL, most runs (a bound keeps a huge list from
        // reserving more than it may ever use at once).
        ctx.names.borrow_mut().reserve(urls.len().min(1 << 20));
        let scheduler = Rc::new_cyclic(|me: &Weak<Scheduler>| Scheduler {
            me: me.clone(),
            uv: uv.clone(),
            multi: multi.handle(),
            ctx: Rc::new(ctx),
            backoff: Backoff::default(),
            interrupt,
            started: Instant::now(),
            files_total,
            events: EventQueue::default(),
            state: RefCell::new(State {
                fresh: urls.into(),
                ..State::default()
            }),
            progress: RefCell::new(progress),
            tick: RefCell::new(None),
            refill: RefCell::new(None),
        });
        let weak = Rc::downgrade(&scheduler);
        let tick = Timer::new(uv, move || {
            if let Some(scheduler) = weak.upgrade() {
                scheduler.post(Event::Tick);
            }
        })?;
        // The tick alone must not keep the loop running.
        tick.unref();
        *scheduler.tick.borrow_mut() = Some(tick);
        let weak = Rc::downgrade(&scheduler);
        let refill = Timer::new(uv, move || {
            if let Some(scheduler) = weak.upgrade() {
                scheduler.post(Event::Refill);
            }
        })?;
        *scheduler.refill.borrow_mut() = Some(refill);
        Ok(scheduler)
    }

    /// Queues `event`; handled at once unless another is being handled
    /// (see [`EventQueue`]).
    fn post(&self, event: Event) {
        self.events.post(event, |event| self.handle(event));
    }

    /// Handles one event, starts what fits (now, or on the next loop turn
    /// after completions), and finishes the run if nothing is left to do.
    fn handle(&self, event: Event) {
        match event {
            Event::Done(id, result) => {
                self.on_done(id, result);
                self.refill_soon();
            }
            Event::SplitDone(id, finished) => {
                self.on_split_done(id, finished);
                self.refill_soon();
            }
            Event::RetryDue(id) => {
                self.on_retry_due(id);
                self.fill();
            }
            Event::Tick => {
                self.on_tick();
                self.fill();
            }
            Event::Refill => self.fill(),
        }
        self.finish_if_idle();
    }

    /// Has the slots freed by completions filled on the next loop turn,
    /// not at once: the completions of one turn come from the sockets one
    /// poll found ready, and the requests that replace them then go out
    /// together. Started one by one between those sockets, each request
    /// would reach the server on its own, and wake it on its own (a
    /// wake-up of another CPU: the dearest part of a small file's cost).
    fn refill_soon(&self) {
        if let Some(refill) = self.refill.borrow().as_ref() {
            if !refill.is_active() {
                refill.start(0);
            }
        }
    }

    /// Starts jobs (due retries first) while slots are free.
    fn fill(&self) {
        loop {
            let job = {
                let mut state = self.state.borrow_mut();
                let full = state.running.len() >= self.ctx.settings.parallel;
                if state.interrupted || state.finished || full {
                    return;
                }
                match state.ready.pop_front() {
                    Some(job) => Some(job),
                    None => state.fresh.pop_front().map(|entry| {
                        state.next_id += 1;
                        Job {
                            id: state.next_id,
                            url: entry.url,
                            out: entry.out,
                            checksum: entry.checksum,
                            name: String::new(),
                            tries: 0,
                        }
                    }),
                }
            };
            match job {
                Some(job) => self.launch(job),
                None => return,
            }
        }
    }

    /// The start time of a job, if the progress bars will show its rate.
    fn start_time(&self) -> Option<Instant> {
        self.progress.borrow().draws().then(Instant::now)
    }

    /// Starts the next attempt of `job`.
    fn launch(&self, mut job: Job) {
        job.tries += 1;
        if job.name.is_empty() {
            let wanted = job
                .out
                .clone()
                .unwrap_or_else(|| naming::name_from_url(&job.url));
            job.name = self.ctx.names.borrow_mut().claim_owned(wanted);
        }
        let id = job.id;
        if split::wanted(&self.ctx, self.ctx.settings.split, &job.name) {
            return self.launch_split(job);
        }
        let attempt = Rc::new(RefCell::new(Attempt::new(job, &self.ctx)));
        let request = attempt::request(&attempt, &self.ctx);
        let running = Running {
            work: Work::Single(Rc::clone(&attempt)),
            since: self.start_time(),
            transfer: None,
        };
        self.state.borrow_mut().running.insert(id, running);
        let weak = self.me.clone();
        let started = self.multi.start(request, move |result| {
            if let Some(scheduler) = weak.upgrade() {
                scheduler.post(Event::Done(id, result));
            }
        });
        match started {
            Ok(transfer) => {
                if let Some(running) = self.state.borrow_mut().running.get_mut(&id) {
                    running.transfer = Some(transfer);
                }
            }
            Err(error) => {
                self.state.borrow_mut().running.remove(&id);
                let job = attempt.borrow().job.clone();
                self.give_up(&job, Failure::from_error(&error).reason);
            }
        }
    }

    /// Starts `job` as a segmented download; its end comes as an event.
    fn launch_split(&self, job: Job) {
        let id = job.id;
        let weak = self.me.clone();
        let download = Download::new(
            job,
            self.ctx.settings.split,
            &self.ctx,
            &self.uv,
            &self.multi,
            move |finished| {
                if let Some(scheduler) = weak.upgrade() {
                    scheduler.post(Event::SplitDone(id, finished));
                }
            },
        );
        let running = Running {
            work: Work::Split(Rc::clone(&download)),
            since: self.start_time(),
            transfer: None,
        };
        self.state.borrow_mut().running.insert(id, running);
        download.begin();
    }

    /// A segmented download ended: record it, or retry it, or give up.
    fn on_split_done(&self, id: u64, finished: Finished) {
        let Some(running) = self.state.borrow_mut().running.remove(&id) else {
            return;
        };
        let (received, _, _) = running.work.counts();
        self.state.borrow_mut().report.bytes += received;
        for note in finished.notes {
            self.progress.borrow().note(&note);
        }
        self.conclude(finished.job, finished.outcome);
    }

    /// A transfer completed: save its file, or retry, or give up.
    fn on_done(&self, id: u64, result: Result<Response, Error>) {
        let Some(running) = self.state.borrow_mut().running.remove(&id) else {
            return;
        };
        let Work::Single(attempt) = &running.work else {
            return;
        };
        let (outcome, received, notes) = {
            let mut attempt = attempt.borrow_mut();
            let outcome = attempt.conclude(result, &self.ctx);
            let notes = std::mem::take(&mut attempt.notes);
            (outcome, attempt.received, notes)
        };
        self.state.borrow_mut().report.bytes += received;
        for note in notes {
            self.progress.borrow().note(&note);
        }
        match outcome {
            // Most files: the job is only read, not copied.
            Outcome::Saved { path, bytes } => self.saved(&attempt.borrow().job, path, bytes),
            failed => self.conclude(attempt.borrow().job.clone(), failed),
        }
    }

    /// Records a saved file, or retries a failed one, or gives up on it.
    fn conclude(&self, job: Job, outcome: Outcome) {
        match outcome {
            Outcome::Saved { path, bytes } => self.saved(&job, path, bytes),
            Outcome::Failed(failure) => {
                let retries_left = job.tries <= self.ctx.settings.retries;
                let interrupted = self.state.borrow().interrupted;
                if failure.transient && retries_left && !interrupted {
                    self.retry_later(job, failure);
                } else {
                    self.give_up(&job, failure.reason);
                }
            }
        }
    }

    /// Records a saved file.
    fn saved(&self, job: &Job, path: std::path::PathBuf, bytes: u64) {
        self.progress.borrow().saved(format_args!(
            "saved {} ({}) <- {}",
            path.display(),
            HumanBytes(bytes),
            job.url
        ));
        let mut state = self.state.borrow_mut();
        state.report.saved_count += 1;
        if self.ctx.settings.list_saved {
            state.report.saved.push(SavedFile {
                id: job.id,
                url: job.url.as_str().to_owned(),
                path,
                bytes,
            });
        }
    }

    /// Records a URL that failed for good (shown at once, unless it is
    /// one of many stopped by Ctrl-C: the summary lists those).
    fn give_up(&self, job: &Job, reason: String) {
        if !self.state.borrow().interrupted {
            self.progress
                .borrow()
                .failed(&format!("FAILED {}: {reason}", job.url));
        }
        self.state.borrow_mut().report.failed.push(FailedUrl {
            id: job.id,
            url: job.url.to_string(),
            reason,
        });
    }

    /// Waits out a backoff on a uv timer before `job` runs again.
    fn retry_later(&self, job: Job, failure: Failure) {
        let delay = self.backoff.delay(job.tries, failure.retry_after);
        self.progress.borrow().note(&format!(
            "retry {}/{} of {} in {:.1}s: {}",
            job.tries,
            self.ctx.settings.retries,
            job.url,
            delay.as_secs_f64(),
            failure.reason
        ));
        let weak = self.me.clone();
        let id = job.id;
        let timer = Timer::new(&self.uv, move || {
            if let Some(scheduler) = weak.upgrade() {
                scheduler.post(Event::RetryDue(id));
            }
        });
        match timer {
            Ok(timer) => {
                timer.start(delay.as_millis() as u64);
                self.state.borrow_mut().waiting.insert(id, (job, timer));
            }
            Err(error) => self.give_up(
                &job,
                format!("{} (cannot wait to retry: {error})", failure.reason),
            ),
        }
    }

    /// A backoff is over: the job queues for the next free slot.
    fn on_retry_due(&self, id: u64) {
        let entry = self.state.borrow_mut().waiting.remove(&id);
        if let Some((job, timer)) = entry {
            drop(timer);
            self.state.borrow_mut().ready.push_back(job);
        }
    }

    /// Refreshes the display, looks for Ctrl-C, and rearms the tick.
    fn on_tick(&self) {
        let interrupted = self.state.borrow().interrupted;
        if self.interrupt.load(Ordering::SeqCst) && !interrupted {
            self.interrupt_now();
        }
        if self.progress.borrow().draws() {
            let snapshot = self.snapshot();
            self.progress.borrow_mut().refresh(&snapshot);
        }
        if let Some(tick) = self.tick.borrow().as_ref() {
            tick.start(TICK.as_millis() as u64);
        }
    }

    /// Ctrl-C: start nothing more, drop pending retries, cancel transfers.
    /// Their completions arrive as events and are recorded as failures; with
    /// `--continue` their `.part` files stay.
    fn interrupt_now(&self) {
        let (waiting, ready, transfers, downloads) = {
            let mut state = self.state.borrow_mut();
            state.interrupted = true;
            state.report.interrupted = true;
            state.report.not_started = state.fresh.len() as u64;
            state.fresh.clear();
            let waiting: Vec<(Job, Timer)> = state.waiting.drain().map(|(_, w)| w).collect();
            let ready: Vec<Job> = state.ready.drain(..).collect();
            let transfers: Vec<Transfer> = state
                .running
                .values()
                .filter_map(|r| r.transfer.clone())
                .collect();
            let downloads: Vec<Rc<Download>> = state
                .running
                .values()
                .filter_map(|r| match &r.work {
                    Work::Split(download) => Some(Rc::clone(download)),
                    Work::Single(_) => None,
                })
                .collect();
            (waiting, ready, transfers, downloads)
        };
        for (job, timer) in waiting {
            drop(timer);
            self.give_up(&job, "interrupted while waiting to retry".to_owned());
        }
        for job in ready {
            self.give_up(&job, "interrupted while waiting to retry".to_owned());
        }
        for transfer in transfers {
            transfer.cancel();
        }
        for download in downloads {
            download.cancel();
        }
    }

    /// Ends the run once nothing runs, waits or remains: the tick stops and
    /// the multi closes, so the loop runs out of work and returns.
    fn finish_if_idle(&self) {
        {
            let mut state = self.state.borrow_mut();
            let nothing_left =
                state.interrupted || (state.ready.is_empty() && state.fresh.is_empty());
            if state.finished
                || !nothing_left
                || !state.running.is_empty()
                || !state.waiting.is_empty()
            {
                return;
            }
            state.finished = true;
        }
        drop(self.tick.borrow_mut().take());
        drop(self.refill.borrow_mut().take());
        self.multi.close();
    }

    /// What the progress display shows now.
    fn snapshot(&self) -> Snapshot {
        let state = self.state.borrow();
        let mut bytes = state.report.bytes;
        let active = state
            .running
            .iter()
            .map(|(&id, running)| {
                let (received, done, total) = running.work.counts();
                bytes += received;
                let seconds = running
                    .since
                    .map_or(0.0, |since| since.elapsed().as_secs_f64())
                    .max(0.001);
                Active {
                    id,
                    name: running.work.job().name,
                    bytes: done,
                    total,
                    rate: (received as f64 / seconds) as u64,
                }
            })
            .collect();
        Snapshot {
            files_done: state.report.saved_count + state.report.failed.len() as u64,
            files_total: self.files_total,
            bytes,
            active,
        }
    }

    /// The report once the loop has returned; anything still unfinished
    /// (which only a loop failure leaves behind) counts as failed.
    fn close_out(&self) -> Report {
        self.progress.borrow_mut().clear();
        let mut state = self.state.borrow_mut();
        let leftovers: Vec<Job> = state
            .running
            .values()
            .map(|r| r.work.job())
            .chain(state.waiting.values().map(|(job, _)| job.clone()))
            .chain(state.ready.iter().cloned())
            .collect();
        for job in leftovers {
            state.report.failed.push(FailedUrl {
                id: job.id,
                url: job.url.to_string(),
                reason: "the event loop stopped early".to_owned(),
            });
        }
        state.report.not_started += state.fresh.len() as u64;
        state.report.elapsed = self.started.elapsed();
        // Taken, not cloned: a run of many files saves as many paths.
        let mut report = std::mem::take(&mut state.report);
        report.sort();
        report
    }
}
