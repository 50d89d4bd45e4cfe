//! Closing a driver, in the order libcurl needs: stop taking work, complete
//! (and so remove) every transfer, shut the remote's mailbox, clean up the
//! multi handle while its callbacks' data is still alive (cleanup may call
//! the socket callback), then close every libuv handle; their memory is
//! freed in their close callbacks, on the loop's next turn.

use super::{Driver, Phase};
use crate::error::Error;

impl Driver {
    /// Cancels every transfer and releases the multi and every libuv handle.
    /// From inside a libcurl callback the work happens once libcurl returned.
    pub fn close(&self) {
        if self.phase.get() == Phase::Closed {
            return;
        }
        self.phase.set(Phase::Closing);
        if self.inside_curl() {
            // libcurl is on the stack (a data callback closed us): stop every
            // transfer's callbacks now, so none takes more data or completes
            // `Ok` before the deferred teardown cancels it.
            for state in self.transfers.borrow().values() {
                state.flags.multi_closed.set(true);
            }
            self.defer(super::Deferred::Close);
        } else {
            self.teardown();
        }
    }

    /// The multi failed: every transfer fails with `error`, and it is closed
    /// once libcurl returned.
    pub(super) fn fail_all(&self, error: Error) {
        log::error!("uvcurl: {error}; failing every transfer");
        let slots: Vec<usize> = self.transfers.borrow().keys().copied().collect();
        for slot in slots {
            self.defer(super::Deferred::Fail(slot, error.clone()));
        }
        if self.phase.get() == Phase::Open {
            self.phase.set(Phase::Closing);
        }
        self.defer(super::Deferred::Close);
    }

    pub(super) fn teardown(&self) {
        if self.phase.replace(Phase::Closed) == Phase::Closed {
            return;
        }
        loop {
            let next = self.transfers.borrow().values().next().cloned();
            let Some(state) = next else { break };
            let outcome = if state.flags.cancel_requested.get() {
                Err(Error::cancelled())
            } else {
                Err(Error::multi_closed())
            };
            self.complete(state, outcome);
        }
        // (Each completed above: what a batch still holds is done.)
        drop(std::mem::take(&mut *self.batched.borrow_mut()));
        // The last request's options (its headers, a share handle) are not
        // kept past the close.
        self.option_sets.forget();
        self.callbacks.deferred.borrow_mut().clear();
        let attachment = self.attachment.borrow_mut().take();
        if let Some(attachment) = attachment {
            attachment.shut(); // queued submissions complete as Closed
        }
        let multi = self.multi.borrow_mut().take();
        // curl_multi_cleanup: every easy handle was removed above; libcurl may
        // call the socket callback meanwhile, whose data is still alive.
        self.in_curl(|| drop(multi));
        self.callbacks.close();
        log::debug!("uvcurl: multi closed");
    }
}
