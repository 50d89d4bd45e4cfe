//! The loop side of a [`Remote`]: the mailbox's receiving end, attached to
//! the driver, and the commands run on the loop thread.

use super::mailbox::Mailbox;
use super::relay::{Relay, TICK_MS};
use super::{Command, Remote, Submission};
use crate::error::Error;
use crate::multi::driver::{Attachment, Driver};
use crate::response::Response;
use crate::transfer::Completion;
use crate::uv::{Async, Hook, Loop, Phase, Timer};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::task::Waker;

/// The loop side of a [`Remote`]: attached to the driver, shut when it closes.
pub(crate) struct Endpoint {
    uv: Loop,
    mailbox: Arc<Mailbox>,
    wakeup: Async,
    wakes: Rc<Wakes>,
    /// Open and flush `wakes`' window around each poll for I/O.
    _hooks: [Hook; 2],
}

/// The wakers of futures whose results came during the loop's I/O phase,
/// woken together right after it (a `uv_check_t`), so that a thread awaiting
/// many transfers is woken once per loop iteration, not once per result.
///
/// Results are held back only inside the window that a `uv_prepare_t` opens
/// just before the loop polls and the `uv_check_t` closes right after the
/// I/O callbacks, in the same iteration (libuv runs the check phase after
/// every poll, whatever the run mode), or that closing the mailbox closes
/// for good. Anywhere else (a timer, code outside `uv_run`) a waker is woken
/// at once, so none waits for a loop iteration that may never come.
///
/// A batch of several crosses threads with one wake-up: the first waker is
/// woken, the others are left to the [`Relay`], whose tick this arms while
/// any wait there.
struct Wakes {
    uv: Loop,
    open: Cell<bool>,
    held: RefCell<Vec<Waker>>,
    relay: Arc<Relay>,
    /// Wakes what the relay still holds after one to two ticks.
    tick: Timer,
}

impl Wakes {
    /// Wakes `waker` now, or with the batch if the window is open.
    fn wake(&self, waker: Waker) {
        if self.open.get() {
            self.held.borrow_mut().push(waker);
        } else {
            self.wake_now(waker);
        }
    }

    fn wake_now(&self, waker: Waker) {
        // A panicking waker is the awaiting executor's bug; it must not keep
        // the others of the batch from being woken.
        crate::panic::completion(&self.uv, "a waker", || waker.wake());
    }

    /// Opens the window (before the poll).
    fn open(&self) {
        self.flush();
        self.open.set(true);
        self.arm_tick();
    }

    /// Closes the window (after the poll) and wakes the batch.
    fn close(&self) {
        self.open.set(false);
        self.flush();
        self.arm_tick();
    }

    fn flush(&self) {
        let held = std::mem::take(&mut *self.held.borrow_mut());
        self.relay.hand_over(held, |waker| self.wake_now(waker));
    }

    /// Keeps the tick armed exactly while wakers wait in the relay.
    fn arm_tick(&self) {
        match (self.relay.is_waiting(), self.tick.is_active()) {
            (true, false) => self.tick.start(TICK_MS),
            (false, true) => self.tick.stop(),
            _ => {}
        }
    }

    /// At shutdown: wakes everything held or relayed; nothing is held back
    /// or relayed from now on.
    fn shut(&self) {
        for waker in self.relay.close() {
            self.wake_now(waker);
        }
        self.close();
        self.tick.stop();
    }
}

impl Endpoint {
    /// Opens the mailbox of `driver`; `keep_alive` keeps the loop running
    /// while the `Multi` is open even if idle (for a background thread).
    pub fn open(driver: &Rc<Driver>, keep_alive: bool) -> Result<Endpoint, Error> {
        let mailbox = Arc::new(Mailbox::default());
        let relay = Arc::new(Relay::default());
        let (aging, uv, token_tick) = (relay.clone(), driver.uv().clone(), driver.release_token());
        let tick = Timer::new(driver.uv(), move || {
            let _ = &token_tick;
            // The loop re-arms the tick before its next poll if more wait.
            for waker in aging.tick().0 {
                crate::panic::completion(&uv, "a waker", || waker.wake());
            }
        })?;
        let wakes = Rc::new(Wakes {
            uv: driver.uv().clone(),
            open: Cell::new(false),
            held: RefCell::default(),
            relay,
            tick,
        });
        // Each handle's closure holds a release token: `on_released` fires
        // only after the last of them is freed.
        let (before, after) = (wakes.clone(), wakes.clone());
        let (token_before, token_after) = (driver.release_token(), driver.release_token());
        let hooks = [
            Hook::start(driver.uv(), Phase::BeforePoll, move || {
                let _ = &token_before;
                before.open()
            })?,
            Hook::start(driver.uv(), Phase::AfterPoll, move || {
                let _ = &token_after;
                after.close()
            })?,
        ];
        let (weak, inbox, batch) = (Rc::downgrade(driver), mailbox.clone(), wakes.clone());
        let released_after_me = driver.release_token();
        let wakeup = Async::new(driver.uv(), move || {
            let _ = &released_after_me;
            run_commands(&weak, &inbox, &batch)
        })?;
        if !keep_alive {
            wakeup.unref();
        }
        Ok(Endpoint {
            uv: driver.uv().clone(),
            mailbox,
            wakeup,
            wakes,
            _hooks: hooks,
        })
    }

    pub fn remote(&self) -> Remote {
        Remote {
            mailbox: self.mailbox.clone(),
            sender: self.wakeup.sender(),
            relay: self.wakes.relay.clone(),
        }
    }
}

impl Attachment for Endpoint {
    /// Closes the mailbox: queued submissions complete as `Closed`.
    fn shut(self: Box<Self>) {
        // From here on nothing is held back: results wake their futures at once.
        self.wakes.shut();
        let queued = self.mailbox.close();
        for command in queued {
            if let Command::Start { mut job, .. } = command {
                call_done(&self.uv, &mut *job, Err(Error::closed()));
            }
        }
    }
}

/// Runs a submission's completion outside the driver's completion path
/// (refused or never started); a panic in it is resumed from `Loop::run`,
/// as one in any completion.
fn call_done(uv: &Loop, job: &mut dyn Submission, result: Result<Response, Error>) {
    crate::panic::completion(uv, "completion", || {
        if let Some(waker) = job.done(result) {
            waker.wake();
        }
    });
}

/// Runs every queued command, in order, on the loop thread.
fn run_commands(driver: &Weak<Driver>, mailbox: &Mailbox, wakes: &Rc<Wakes>) {
    let Some(driver) = driver.upgrade() else {
        return;
    };
    loop {
        // The whole mailbox per take; again until it stays empty.
        let batch = mailbox.take();
        if batch.is_empty() {
            break;
        }
        for command in batch {
            run_command(&driver, wakes, command);
        }
    }
}

/// Runs one command on the loop thread.
fn run_command(driver: &Rc<Driver>, wakes: &Rc<Wakes>, command: Command) {
    match command {
        Command::Start { ticket, mut job } => {
            let request = match crate::panic::in_transfer("request builder", || job.make()) {
                Ok(Some(request)) => request,
                Ok(None) => unreachable!("a submission's request is built once"),
                Err(error) => {
                    call_done(driver.uv(), &mut *job, Err(error));
                    return;
                }
            };
            // Shared by the completion and the rejection path below; `done`
            // hands the result over once.
            let job = Rc::new(RefCell::new(job));
            let (once, wakes) = (job.clone(), wakes.clone());
            let completion = Completion::Response(Box::new(move |result| {
                // Inside the driver's completion, under its panic policy.
                let waker = once.borrow_mut().done(result);
                if let Some(waker) = waker {
                    wakes.wake(waker);
                }
            }));
            match driver.start(request, completion) {
                Ok(key) => ticket.set(key),
                Err(error) => call_done(driver.uv(), &mut **job.borrow_mut(), Err(error)),
            }
        }
        // A ticket without a key was refused at start; a key whose transfer
        // completed finds nothing in the driver's table.
        Command::Cancel(ticket) => {
            if let Some(key) = ticket.key() {
                driver.cancel(key);
            }
        }
        Command::Resume(ticket) => {
            if let Some(key) = ticket.key() {
                let _ = driver.resume(key);
            }
        }
        Command::Run(job) => {
            // uvcurl's own work (the C ABI's submissions): a panic is a bug.
            crate::panic::trampoline(driver.uv().inner(), "loop work", (), job);
        }
        Command::Close => driver.close(),
    }
}
