//! Starting, cancelling, pausing and resuming transfers.

use super::{Deferred, Driver};
use crate::error::{Error, ErrorKind};
use crate::multi::trampolines::{on_close_socket, on_open_socket, CloseSocketCallback};
use crate::transfer::{Completion, Lent, TransferKey, TransferState};
use curl_sys::{self as curl, CURL};
use libc::c_void;
use std::ptr::NonNull;
use std::rc::Rc;

impl Driver {
    /// Starts a transfer built from a request.
    #[inline]
    pub fn start(
        &self,
        mut request: crate::Request,
        on_done: Completion,
    ) -> Result<TransferKey, Error> {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let lent = Lent {
            uv: &self.uv,
            share: self.share.as_ref(),
            proxy_env: self.proxy_env,
            pool: &self.easy_pool,
            last_origin: &self.last_origin,
            option_sets: &self.option_sets,
        };
        let state = TransferState::from_request(&mut request, self.next_id(), on_done, &lent)?;
        if state.easy().reused() {
            self.reused_configured.set(self.reused_configured.get() + 1);
        }
        self.announce_sockets(&state)?;
        self.add(state)
    }

    /// Starts a transfer on an external (caller-configured) easy handle.
    ///
    /// # Safety
    /// `easy` is a valid easy handle that stays valid until its completion ran.
    pub unsafe fn start_raw(
        &self,
        easy: *mut CURL,
        on_done: Completion,
    ) -> Result<TransferKey, Error> {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let easy = NonNull::new(easy).ok_or_else(|| Error::invalid("null easy handle"))?;
        if self
            .transfers
            .borrow()
            .contains_key(&(easy.as_ptr() as usize))
        {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "this easy handle is already added to the multi",
            ));
        }
        // SAFETY: forwarded contract.
        let state = unsafe { TransferState::external(easy, self.next_id(), on_done, &self.uv) };
        let state = Rc::new(state);
        state.easy().set_user(Rc::as_ptr(&state).cast());
        // The caller's handle gets the same pooled-socket treatment as ours:
        // its sockets are opened and closed through us while we drive it (a
        // caller's own open/close-socket callbacks are replaced), and the
        // four options are cleared again before its completion runs.
        if let Err(error) = self.announce_sockets(&state) {
            self.forget_sockets(&state);
            return Err(error);
        }
        self.add(state)
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Has libcurl open and close this transfer's sockets through us, so
    /// their watches may linger in the connection pool (see sockets.rs).
    /// A connection keeps the close-socket callback it was opened with, so
    /// it stays announced after the easy handle is reset or freed.
    fn announce_sockets(&self, state: &Rc<TransferState>) -> Result<(), Error> {
        let callbacks = &*self.callbacks as *const super::Callbacks as *mut c_void;
        state.flags.socket_context.set(callbacks);
        // The handle's slot, which names the running transfer.
        let this_transfer = state.easy().user_slot();
        let open: curl::curl_opensocket_callback = on_open_socket;
        let close: CloseSocketCallback = on_close_socket;
        let easy = state.easy();
        // SAFETY: the callbacks with their types. Sockets are opened only
        // while the transfer runs, so its state (kept by `transfers` until it
        // is removed from the multi) outlives every open-socket call; a
        // connection keeps its close-socket data, the boxed Callbacks, which
        // outlives the multi handle and so every connection (libcurl closes
        // the last ones in curl_multi_cleanup).
        unsafe {
            if easy.reused() {
                // Kept configured by this driver's own pool: the functions,
                // the open-socket data (the handle's slot) and the
                // close-socket data are already ours.
                return Ok(());
            }
            easy.set_ptr(curl::CURLOPT_OPENSOCKETDATA, this_transfer)?;
            easy.set_ptr(curl::CURLOPT_OPENSOCKETFUNCTION, open as *mut c_void)?;
            easy.set_ptr(curl::CURLOPT_CLOSESOCKETFUNCTION, close as *mut c_void)?;
            easy.set_ptr(curl::CURLOPT_CLOSESOCKETDATA, callbacks)
        }
    }

    /// Undoes [`announce_sockets`](Driver::announce_sockets) on a caller's
    /// handle, so that nothing of ours is left on it once it is theirs again
    /// (used elsewhere, it must not call into a driver that may be gone).
    pub(super) fn forget_sockets(&self, state: &TransferState) {
        let easy = state.easy();
        let none = std::ptr::null_mut();
        for option in [
            curl::CURLOPT_OPENSOCKETFUNCTION,
            curl::CURLOPT_OPENSOCKETDATA,
            curl::CURLOPT_CLOSESOCKETFUNCTION,
            curl::CURLOPT_CLOSESOCKETDATA,
        ] {
            // SAFETY: null restores libcurl's default for each of these
            // options; the handle is out of the multi (removed before this).
            if let Err(error) = unsafe { easy.set_ptr(option, none) } {
                log::warn!("uvcurl: clearing a socket option of a caller's handle: {error}");
            }
        }
    }

    fn add(&self, state: Rc<TransferState>) -> Result<TransferKey, Error> {
        let key = state.key();
        log::debug!("uvcurl: transfer {} starting", key.id);
        self.transfers
            .borrow_mut()
            .insert(key.slot, Rc::clone(&state));
        if self.inside_curl() {
            self.defer(Deferred::Add(key));
            return Ok(key);
        }
        if self.batching.get() {
            self.batch(state);
            return Ok(key);
        }
        drop(state);
        if let Err(error) = self.add_to_multi(key) {
            // Not started: the caller gets the error, the callback never runs.
            let state = self.transfers.borrow_mut().remove(&key.slot);
            if let Some(state) = state {
                state.completion.take();
                self.forget_sockets(&state);
            }
            return Err(error);
        }
        // No drain here: starting never runs another transfer's callbacks.
        Ok(key)
    }

    /// Adds a transfer of the table to the multi handle; never from inside
    /// a libcurl callback (checked by the callers).
    pub(super) fn add_to_multi(&self, key: TransferKey) -> Result<(), Error> {
        let Some(state) = self.lookup(key) else {
            return Ok(());
        };
        self.add_state_to_multi(&state)
    }

    /// [`add_to_multi`](Driver::add_to_multi) for a transfer of the table
    /// the caller has looked up.
    pub(super) fn add_state_to_multi(&self, state: &TransferState) -> Result<(), Error> {
        let easy = state.easy().raw();
        // SAFETY: a live easy handle, kept by `transfers` until it is removed.
        let added = self.in_curl(|| self.with_multi(|multi| unsafe { multi.add(easy) }));
        added.unwrap_or_else(|| Err(Error::closed()))
    }

    pub(super) fn lookup(&self, key: TransferKey) -> Option<Rc<TransferState>> {
        self.transfers
            .borrow()
            .get(&key.slot)
            .filter(|state| state.id == key.id)
            .cloned()
    }

    /// Whether the transfer is live and not being cancelled.
    pub fn is_running(&self, key: TransferKey) -> bool {
        self.lookup(key)
            .is_some_and(|state| !state.flags.cancel_requested.get())
    }

    /// Cancels a transfer; its completion reports `Cancelled`. Returns false if
    /// it had already completed.
    pub fn cancel(&self, key: TransferKey) -> bool {
        let Some(state) = self.lookup(key) else {
            return false;
        };
        if state.flags.cancel_requested.replace(true) {
            return true; // already on its way out
        }
        if self.inside_curl() {
            self.defer(Deferred::Cancel(key));
        } else {
            self.complete(state, Err(Error::cancelled()));
            self.drain();
        }
        true
    }

    pub fn pause(&self, key: TransferKey) -> Result<(), Error> {
        let state = self.lookup(key).ok_or_else(already_completed)?;
        // Allowed from the write/read callbacks too, where user code may call this.
        self.in_curl(|| state.easy().pause(curl::CURLPAUSE_RECV))?;
        state.flags.paused.set(true);
        state.flags.was_paused.set(true);
        Ok(())
    }

    pub fn resume(&self, key: TransferKey) -> Result<(), Error> {
        let state = self.lookup(key).ok_or_else(already_completed)?;
        if self.inside_curl() {
            self.defer(Deferred::Resume(key));
            return Ok(());
        }
        self.resume_now(&state)?;
        self.drain();
        Ok(())
    }

    /// Unpauses; not inside a libcurl callback. Unpausing may deliver
    /// buffered data to the write callback right here.
    pub(super) fn resume_now(&self, state: &TransferState) -> Result<(), Error> {
        if !state.flags.paused.replace(false) {
            return Ok(());
        }
        let bits = curl::CURLPAUSE_RECV_CONT | curl::CURLPAUSE_SEND_CONT;
        self.in_curl(|| state.easy().pause(bits))?;
        // Kick: let libcurl look at the transfer on the next loop turn.
        self.callbacks.kick();
        Ok(())
    }
}

/// The error for an operation on a transfer that already completed.
fn already_completed() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "the transfer has already completed",
    )
}
