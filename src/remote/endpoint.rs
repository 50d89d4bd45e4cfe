//! The loop side of a [`Remote`]: the mailbox's receiving end, attached to
//! the driver, and the commands run on the loop thread.

use super::mailbox::Mailbox;
use super::{Command, Done, Remote};
use crate::error::Error;
use crate::multi::driver::{Attachment, Driver};
use crate::multi::Transfer;
use crate::response::Response;
use crate::transfer::Completion;
use crate::uv::{Async, Loop};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The loop side of a [`Remote`]: attached to the driver, shut when it closes.
pub(crate) struct Endpoint {
    uv: Loop,
    mailbox: Arc<Mailbox>,
    wakeup: Async,
    next_token: Arc<AtomicU64>,
}

impl Endpoint {
    /// Opens the mailbox of `driver`; `keep_alive` keeps the loop running
    /// while the `Multi` is open even if idle (for a background thread).
    pub fn open(driver: &Rc<Driver>, keep_alive: bool) -> Result<Endpoint, Error> {
        let mailbox = Arc::new(Mailbox::default());
        let transfers: Rc<RefCell<HashMap<u64, Transfer>>> = Rc::default();
        let (weak, inbox) = (Rc::downgrade(driver), mailbox.clone());
        let released_after_me = driver.release_token();
        let wakeup = Async::new(driver.uv(), move || {
            let _ = &released_after_me;
            run_commands(&weak, &inbox, &transfers)
        })?;
        if !keep_alive {
            wakeup.unref();
        }
        Ok(Endpoint {
            uv: driver.uv().clone(),
            mailbox,
            wakeup,
            next_token: Arc::new(AtomicU64::new(1)),
        })
    }

    pub fn remote(&self) -> Remote {
        Remote {
            mailbox: self.mailbox.clone(),
            sender: self.wakeup.sender(),
            next_token: self.next_token.clone(),
        }
    }
}

impl Attachment for Endpoint {
    /// Closes the mailbox: queued submissions complete as `Closed`.
    fn shut(self: Box<Self>) {
        let queued = self.mailbox.close();
        for command in queued {
            if let Command::Start { done, .. } = command {
                call_done(&self.uv, done, Err(Error::closed()));
            }
        }
    }
}

/// Runs a submission's completion outside the driver's completion path
/// (refused or never started); a panic in it is resumed from `Loop::run`,
/// as one in any completion.
fn call_done(uv: &Loop, done: Done, result: Result<Response, Error>) {
    crate::panic::completion(uv, "completion", || {
        if let Some(waker) = done(result) {
            waker.wake();
        }
    });
}

/// Runs every queued command, in order, on the loop thread.
fn run_commands(
    driver: &Weak<Driver>,
    mailbox: &Mailbox,
    transfers: &Rc<RefCell<HashMap<u64, Transfer>>>,
) {
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
            run_command(&driver, transfers, command);
        }
    }
}

/// Runs one command on the loop thread.
fn run_command(
    driver: &Rc<Driver>,
    transfers: &Rc<RefCell<HashMap<u64, Transfer>>>,
    command: Command,
) {
    match command {
        Command::Start { token, make, done } => {
            let request = match crate::panic::in_transfer("request builder", make) {
                Ok(request) => request,
                Err(error) => {
                    call_done(driver.uv(), done, Err(error));
                    return;
                }
            };
            // Shared by the completion and the rejection path below.
            let done = Rc::new(RefCell::new(Some(done)));
            let (map, once) = (transfers.clone(), done.clone());
            let completion = Completion::Response(Box::new(move |result| {
                map.borrow_mut().remove(&token);
                let done = once.borrow_mut().take();
                if let Some(done) = done {
                    // Inside the driver's completion, under its panic policy.
                    if let Some(waker) = done(result) {
                        waker.wake();
                    }
                }
            }));
            match driver.start(request, completion) {
                Ok(key) => {
                    transfers
                        .borrow_mut()
                        .insert(token, Transfer::new(driver, key));
                }
                Err(error) => {
                    let done = done.borrow_mut().take();
                    if let Some(done) = done {
                        call_done(driver.uv(), done, Err(error));
                    }
                }
            }
        }
        Command::Cancel(token) => {
            let transfer = transfers.borrow().get(&token).cloned();
            if let Some(transfer) = transfer {
                transfer.cancel();
            }
        }
        Command::Resume(token) => {
            let transfer = transfers.borrow().get(&token).cloned();
            if let Some(transfer) = transfer {
                let _ = transfer.resume();
            }
        }
        Command::Run(job) => {
            // uvcurl's own work (the C ABI's submissions): a panic is a bug.
            crate::panic::trampoline(driver.uv().inner(), "loop work", (), job);
        }
        Command::Close => driver.close(),
    }
}
