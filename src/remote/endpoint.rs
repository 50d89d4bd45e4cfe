//! The loop side of a [`Remote`]: the mailbox's receiving end, attached to
//! the driver, and the commands run on the loop thread.

use super::mailbox::Mailbox;
use super::recycle::Stock;
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
    /// Response buffers given back, to start transfers with.
    stock: Rc<Stock>,
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
        // Taken out while waking (a waker may run arbitrary code), then put
        // back to be filled again: the list is not made anew per batch.
        let mut held = std::mem::take(&mut *self.held.borrow_mut());
        self.relay
            .hand_over(held.drain(..), |waker| self.wake_now(waker));
        let mut slot = self.held.borrow_mut();
        // (Not a list grown by a rare huge batch.)
        if slot.capacity() == 0 && held.capacity() <= 1024 {
            *slot = held;
        }
    }

    /// Keeps the tick armed exactly while wakers wait in the relay.
    fn arm_tick(&self) {
        match (self.relay.is_waiting(), self.tick.is_active()) {
            (true, false) => self.tick.start(TICK_MS),
            (false, true) => self.tick.stop(),
            _ => {}
        }
    }

    /// The tick: wakes what waited in the relay for a whole tick, and ticks
    /// again while others wait (here, not only before the next poll: the
    /// timer alone may be what keeps the loop running).
    fn on_tick(&self) {
        let (due, more) = self.relay.tick();
        for waker in due {
            self.wake_now(waker);
        }
        if more {
            self.tick.start(TICK_MS);
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
        // The tick's closure reaches the `Wakes` that owns the timer weakly.
        let ticking: Rc<RefCell<Weak<Wakes>>> = Rc::default();
        let (of_tick, token_tick) = (ticking.clone(), driver.release_token());
        let tick = Timer::new(driver.uv(), move || {
            let _ = &token_tick;
            if let Some(wakes) = of_tick.borrow().upgrade() {
                wakes.on_tick();
            }
        })?;
        let wakes = Rc::new(Wakes {
            uv: driver.uv().clone(),
            open: Cell::new(false),
            held: RefCell::default(),
            relay: Arc::default(),
            tick,
        });
        *ticking.borrow_mut() = Rc::downgrade(&wakes);
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
        let stock = Rc::new(Stock::new());
        let (weak, inbox, batch) = (Rc::downgrade(driver), mailbox.clone(), wakes.clone());
        let buffers = stock.clone();
        let released_after_me = driver.release_token();
        let wakeup = Async::new(driver.uv(), move || {
            let _ = &released_after_me;
            run_commands(&weak, &inbox, &batch, &buffers)
        })?;
        if !keep_alive {
            wakeup.unref();
        }
        Ok(Endpoint {
            uv: driver.uv().clone(),
            mailbox,
            wakeup,
            wakes,
            stock,
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
        self.stock.close();
        let queued = self.mailbox.close();
        for command in queued {
            if let Command::Start(submission) = command {
                call_done(&self.uv, &submission, Err(Error::closed()));
            }
        }
    }
}

/// Runs a submission's completion outside the driver's completion path
/// (refused or never started); a panic in it is resumed from `Loop::run`,
/// as one in any completion.
fn call_done(uv: &Loop, submission: &Submission, result: Result<Response, Error>) {
    crate::panic::completion(uv, "completion", || {
        if let Some(waker) = submission.job.done(result) {
            waker.wake();
        }
    });
}

/// Runs every queued command, in order, on the loop thread.
fn run_commands(driver: &Weak<Driver>, mailbox: &Mailbox, wakes: &Rc<Wakes>, stock: &Rc<Stock>) {
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
            run_command(&driver, wakes, stock, command);
        }
    }
}

/// Runs one command on the loop thread.
fn run_command(driver: &Rc<Driver>, wakes: &Rc<Wakes>, stock: &Rc<Stock>, command: Command) {
    match command {
        Command::Start(submission) => {
            let made = crate::panic::in_transfer("request builder", || submission.job.make());
            let mut request = match made {
                Ok(Some(request)) => request,
                Ok(None) => unreachable!("a submission's request is built once"),
                Err(error) => {
                    call_done(driver.uv(), &submission, Err(error));
                    return;
                }
            };
            // Its response fills buffers that earlier ones gave back, and
            // gives them back in turn.
            request.buffers = stock.take();
            // Read whole at its end: the header callback's copy costs less.
            request.collect_head = true;
            // Shared by the completion and the rejection path below; `done`
            // hands the result over once.
            let (once, wakes, stock) = (submission.clone(), wakes.clone(), stock.clone());
            let completion = Completion::Remote(Box::new(move |mut result| {
                if let Ok(response) = &mut result {
                    stock.adopt(response);
                }
                // Inside the driver's completion, under its panic policy.
                let waker = once.job.done(result);
                // Let go of the submission before its waiter can: the side
                // that allocated it frees it.
                drop(once);
                if let Some(waker) = waker {
                    wakes.wake(waker);
                }
            }));
            match driver.start(request, completion) {
                Ok(key) => submission.ticket.set(key),
                Err(error) => call_done(driver.uv(), &submission, Err(error)),
            }
        }
        // A ticket without a key was refused at start; a key whose transfer
        // completed finds nothing in the driver's table.
        Command::Cancel(submission) => {
            if let Some(key) = submission.ticket.key() {
                driver.cancel(key);
            }
        }
        Command::Resume(submission) => {
            if let Some(key) = submission.ticket.key() {
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

#[cfg(all(test, not(uvcurl_loom)))]
mod tests {
    use super::super::counting_waker::{counters, woken, Count};
    use super::Endpoint;
    use crate::{Loop, Multi};
    use std::future::Future;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    /// A loop with a `Multi` and its endpoint, for `test`; torn down after.
    fn with_endpoint(test: impl FnOnce(&Loop, &Multi, &Endpoint)) {
        let uv = Loop::new().unwrap();
        let multi = Multi::new(&uv).unwrap();
        let driver = multi.driver().clone();
        driver
            .attachment(
                || Endpoint::open(&driver, false),
                |endpoint| test(&uv, &multi, endpoint),
            )
            .unwrap();
        drop(multi);
        uv.run().unwrap();
        uv.close().unwrap();
    }

    /// Three results in one loop iteration: the first waker is woken at
    /// once, the others are left to the relay; when nobody relays them the
    /// loop's tick wakes them (the armed tick keeps `run_once` from
    /// returning for good before), and then stops.
    #[test]
    fn the_tick_wakes_what_no_future_relayed() {
        with_endpoint(|uv, _multi, endpoint| {
            let counts = counters(3);
            endpoint.wakes.open();
            for count in &counts {
                endpoint.wakes.wake(Waker::from(count.clone()));
            }
            assert_eq!(woken(&counts), [0, 0, 0], "held back inside the window");
            endpoint.wakes.close();
            assert_eq!(woken(&counts), [1, 0, 0]);
            assert!(endpoint.wakes.tick.is_active());
            for _ in 0..1_000 {
                if woken(&counts) == [1, 1, 1] {
                    break;
                }
                uv.run_once().unwrap();
            }
            assert_eq!(woken(&counts), [1, 1, 1]);
            assert!(!endpoint.wakes.tick.is_active());
        });
    }

    /// Polling or dropping any future of the `Remote` wakes what the loop
    /// left to the relay, without the loop running.
    #[test]
    fn a_poll_or_a_drop_wakes_what_the_loop_left() {
        with_endpoint(|_uv, _multi, endpoint| {
            let remote = endpoint.remote();
            let relay = &endpoint.wakes.relay;
            let counts = counters(3);
            relay.hand_over(counts.iter().map(|c| Waker::from(c.clone())), Waker::wake);
            assert_eq!(woken(&counts), [1, 0, 0]);
            let mut future = remote.get("no-scheme-here");
            let idle = Waker::from(Arc::new(Count::default()));
            let pending = std::pin::Pin::new(&mut future).poll(&mut Context::from_waker(&idle));
            assert!(pending.is_pending(), "the loop has not run");
            assert_eq!(woken(&counts), [1, 1, 1], "relayed by the poll");

            let more = counters(3);
            relay.hand_over(more.iter().map(|c| Waker::from(c.clone())), Waker::wake);
            assert_eq!(woken(&more), [1, 0, 0]);
            drop(future);
            assert_eq!(woken(&more), [1, 1, 1], "relayed by the drop");
        });
    }

    /// At shutdown the relay hands back what it holds, and a batch after it
    /// is woken whole.
    #[test]
    fn shutting_the_endpoint_wakes_everything() {
        let uv = Loop::new().unwrap();
        let multi = Multi::new(&uv).unwrap();
        let driver = multi.driver().clone();
        let (wakes, relay) = driver
            .attachment(
                || Endpoint::open(&driver, false),
                |endpoint| (endpoint.wakes.clone(), endpoint.wakes.relay.clone()),
            )
            .unwrap();
        let counts = counters(3);
        relay.hand_over(counts.iter().map(|c| Waker::from(c.clone())), Waker::wake);
        assert_eq!(woken(&counts), [1, 0, 0]);
        drop(multi);
        assert_eq!(woken(&counts), [1, 1, 1], "woken at shutdown");
        let later = counters(2);
        wakes.open();
        for count in &later {
            wakes.wake(Waker::from(count.clone()));
        }
        wakes.close();
        assert_eq!(woken(&later), [1, 1]);
        drop(wakes);
        uv.run().unwrap();
        uv.close().unwrap();
    }
}
