//! libuv events into libcurl, and what comes out: finished transfers and the
//! work queued while libcurl was on the stack. Each transfer is completed
//! here, exactly once.

use super::{Deferred, Driver};
use crate::error::Error;
use crate::multi::sockets::EventFor;
use crate::response::Settle;
use crate::transfer::{Completion, TransferState};
use crate::uv::PollResult;
use curl_sys::{self as curl, curl_socket_t};
use libc::c_int;
use std::rc::Rc;

/// The most transfers [`Driver::start_batched`] holds back before starting
/// them. (Measured, 10k × 1 KiB from nginx on loopback, CPU per request
/// against a batch of 1: about -8 % at 50 in flight whatever the size; at
/// 1,000 in flight -11 % with 16, -8 % with 32, -5 % with 64 and none with
/// no limit, where the client and the server take turns instead of
/// overlapping.)
const BATCH_MAX: usize = 16;

impl Driver {
    /// A watched socket is ready (or failed: `CURL_CSELECT_ERR`).
    pub(crate) fn on_socket_ready(
        &self,
        socket: curl_socket_t,
        generation: u64,
        result: PollResult,
    ) {
        if self.multi.borrow().is_none() {
            return;
        }
        match self.callbacks.sockets.event_for(socket, generation) {
            EventFor::Curl => {}
            EventFor::Nobody | EventFor::Stale => return,
        }
        let mask = match result {
            Err(_) => curl::CURL_CSELECT_ERR,
            Ok(events) => {
                let mut mask = 0;
                if events.readable {
                    mask |= curl::CURL_CSELECT_IN;
                }
                if events.writable {
                    mask |= curl::CURL_CSELECT_OUT;
                }
                mask
            }
        };
        log::trace!("uvcurl: socket {socket} ready, mask {mask}");
        // Transfers started from here on wait for the end of the loop turn's
        // I/O (see `start_batched`).
        let batching = self.batching.replace(true);
        self.socket_action(socket, mask);
        if result.is_err() {
            // libuv stopped the handle on the error; if libcurl still wants the
            // socket, watch it again.
            self.callbacks.sockets.restart(socket, generation);
        }
        self.drain();
        if self.batched.borrow().len() >= BATCH_MAX {
            self.start_batched();
        }
        self.batching.set(batching);
    }

    /// Adds the transfers started during this loop turn's I/O to the multi,
    /// and has libcurl start them: their requests go out together, right
    /// after the turn's I/O callbacks (libuv's check phase), or as soon as
    /// [`BATCH_MAX`] wait. Added one by one as completions freed their
    /// places, each would be sent by the next socket's
    /// `curl_multi_socket_action` on its own, between the turn's other
    /// sockets, and reach a server on another CPU alone: one wake-up of that
    /// server, paid in the sender's system time, for each request instead of
    /// one for a batch.
    pub(super) fn start_batched(&self) {
        if self.batched.borrow().is_empty() {
            return;
        }
        // The emptied vector of the last batch takes the next one (no
        // allocation per batch).
        let spare = self.spare_batch.take();
        let mut batch = std::mem::replace(&mut *self.batched.borrow_mut(), spare);
        self.batches.set(self.batches.get() + 1);
        self.batched_starts
            .set(self.batched_starts.get() + batch.len() as u64);
        for state in batch.drain(..) {
            self.add_now_or_fail(state);
        }
        self.spare_batch.set(batch);
        if self.multi.borrow().is_some() {
            self.socket_action(curl::CURL_SOCKET_TIMEOUT, 0);
        }
        self.drain();
    }

    /// Queues a transfer started during the loop turn's I/O, for
    /// [`start_batched`](Driver::start_batched): at the end of the turn's
    /// I/O, or after the socket event that filled the batch.
    pub(super) fn batch(&self, state: Rc<TransferState>) {
        match self.callbacks.open_batch_hook() {
            Ok(()) => self.batched.borrow_mut().push(state),
            Err(error) => {
                log::debug!("uvcurl: no batch hook ({error}); starting at once");
                self.add_now_or_fail(state);
            }
        }
    }

    /// Adds a started transfer to the multi; one that cannot be added (or
    /// whose driver closed) completes with the error. One that completed
    /// meanwhile (cancelled while it waited in a batch) is left alone.
    fn add_now_or_fail(&self, state: Rc<TransferState>) {
        if state.completed() {
            return;
        }
        if self.is_closed() {
            self.complete(state, Err(Error::closed()));
        } else if let Err(error) = self.add_state_to_multi(&state) {
            self.complete(state, Err(error));
        }
    }

    /// The libuv timer fired: libcurl's timeout is due.
    pub(super) fn on_timeout(&self) {
        self.timer_fires.set(self.timer_fires.get() + 1);
        log::trace!("uvcurl: timer fired");
        self.socket_action(curl::CURL_SOCKET_TIMEOUT, 0);
        self.drain();
    }

    /// `curl_multi_socket_action`, from a libuv callback (never from inside a
    /// libcurl callback). After an error the multi handle is in an unknown
    /// state: every transfer fails and it is not driven again.
    fn socket_action(&self, socket: curl_socket_t, mask: c_int) {
        let acted = self.in_curl(|| self.with_multi(|multi| multi.socket_action(socket, mask)));
        if let Some(Err(error)) = acted {
            self.fail_all(error);
        }
    }

    /// Completes every finished transfer and does the queued work, until
    /// neither is left (after every action, whatever `running_handles` says).
    pub(super) fn drain(&self) {
        if self.draining.replace(true) {
            return; // an outer drain on the stack picks up what is new
        }
        loop {
            self.read_messages();
            let next = self.callbacks.deferred.borrow_mut().pop_front();
            match next {
                Some(work) => self.run_deferred(work),
                None => break,
            }
        }
        self.draining.set(false);
    }

    fn read_messages(&self) {
        while let Some(Some(done)) = self.with_multi(|multi| multi.next_done()) {
            // Taken out of the table here (one lookup); `outcome` runs no
            // callback, so nothing can look for it meanwhile.
            let state = self.transfers.borrow_mut().remove(&(done.easy as usize));
            if let Some(state) = state {
                let outcome = state.outcome(done.code);
                self.complete_removed(state, outcome);
            }
        }
    }

    fn run_deferred(&self, work: Deferred) {
        match work {
            Deferred::Add(key) => {
                if let Some(state) = self.lookup(key) {
                    if self.batching.get() {
                        self.batch(state);
                    } else {
                        self.add_now_or_fail(state);
                    }
                }
            }
            Deferred::Cancel(key) => {
                if let Some(state) = self.lookup(key) {
                    self.complete(state, Err(Error::cancelled()));
                }
            }
            Deferred::Resume(key) => {
                if let Some(state) = self.lookup(key) {
                    if let Err(error) = self.resume_now(&state) {
                        self.complete(state, Err(error));
                    }
                }
            }
            Deferred::Fail(slot, error) => {
                let state = self.transfers.borrow().get(&slot).cloned();
                if let Some(state) = state {
                    self.complete(state, Err(error));
                }
            }
            Deferred::Close => self.teardown(),
        }
    }

    /// Removes a transfer from the multi and calls its completion, exactly
    /// once. Never from inside a libcurl callback.
    pub(super) fn complete(&self, state: Rc<TransferState>, outcome: Result<(), Error>) {
        let key = state.key();
        // One lookup: an entry that turns out to be another transfer's (not
        // seen in practice) is put back.
        let entry = self.transfers.borrow_mut().remove(&key.slot);
        match entry {
            Some(entry) if entry.id == key.id => {}
            Some(other) => {
                self.transfers.borrow_mut().insert(key.slot, other);
                return;
            }
            None => return,
        }
        self.complete_removed(state, outcome);
    }

    /// [`Driver::complete`] for a transfer already taken out of the table.
    fn complete_removed(&self, state: Rc<TransferState>, outcome: Result<(), Error>) {
        let key = state.key();
        let easy = state.easy().raw();
        // SAFETY: the easy handle is in our multi (or was never added, which
        // libcurl answers with an error of no interest); it is removed before
        // `state` can free it.
        self.in_curl(|| self.with_multi(|multi| unsafe { multi.remove(easy) }));
        // A body-less response had no chunk to announce its head before.
        let outcome = match outcome {
            Ok(()) => state.finish_head(),
            failed => failed,
        };
        match &outcome {
            Ok(()) => log::debug!("uvcurl: transfer {} done", key.id),
            Err(e) => log::debug!("uvcurl: transfer {} failed: {e}", key.id),
        }
        let completion = state.completion.take();
        // `state` (its easy handle, and the values the request keeps alive)
        // is dropped when this returns, after the completion ran (or, for a
        // transfer cancelled while it waited in a batch, when the batch is
        // started or the driver torn down).
        match completion {
            Some(Completion::Response(callback)) => {
                let (result, settle) = match outcome {
                    Ok(()) => {
                        let (response, settle) = state.response(self.spare_details.take());
                        (Ok(response), Some(settle))
                    }
                    Err(error) => (Err(error), None),
                };
                crate::panic::completion(&self.uv, "completion", || callback(result));
                // Before `state` gives the handle back: a response the
                // completion kept reads its details now.
                if let Some(spare) = settle.and_then(Settle::settle) {
                    self.spare_details.set(Some(spare));
                }
            }
            Some(Completion::Remote(callback)) => {
                let result = outcome.map(|()| state.response_read_now());
                crate::panic::completion(&self.uv, "completion", || callback(result));
            }
            Some(Completion::External(callback)) => {
                self.forget_sockets(&state);
                crate::panic::completion(&self.uv, "completion", || callback(outcome));
            }
            None => {}
        }
    }
}
