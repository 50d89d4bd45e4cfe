//! The driver: a curl multi handle run by libuv.
//!
//! libcurl tells us which sockets to watch (socket callback) and when to wake
//! it (timer callback); both only record that in libuv handles. libuv events
//! come back through [`Poll`] and [`Timer`] closures, become
//! `curl_multi_socket_action` calls, and finished transfers are completed
//! after that call has returned. Whatever user code asks for while libcurl is
//! on the stack (start, cancel, resume, close) is queued and done then, so
//! libcurl is never re-entered.

use super::sockets::SocketTable;
use super::trampolines::{
    on_close_socket, on_open_socket, on_socket, on_timer, CloseSocketCallback,
};
use crate::error::{Error, ErrorKind};
use crate::fast_map::IntMap;
use crate::transfer::{Completion, TransferState};
use crate::uv::{Loop, Timer};
use curl_sys::{self as curl, curl_socket_t, CURL, CURLM};
use libc::{c_int, c_long, c_void};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{self, AssertUnwindSafe};
use std::rc::{Rc, Weak};

/// Work asked for while libcurl was on the stack.
enum Deferred {
    Add(usize, u64),
    Cancel(usize, u64),
    Resume(usize, u64),
    Fail(usize, Error),
    Close,
}

/// Options fixed when the multi handle is created.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultiOptions {
    pub max_total_connections: usize,
    pub max_host_connections: usize,
    pub multiplex: bool,
    pub max_concurrent_streams: usize,
}

/// Runs a callback once every libuv handle of a driver has been freed: each
/// handle's closure holds a clone, and libuv drops the closure in the
/// handle's close callback.
pub(crate) struct Released {
    callback: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl Drop for Released {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.get_mut().take() {
            if panic::catch_unwind(AssertUnwindSafe(callback)).is_err() {
                log::error!("uvcurl: panic in a released callback (ignored)");
            }
        }
    }
}

pub(crate) struct Driver {
    me: Weak<Driver>,
    /// Our clone of the release token, dropped at teardown.
    released: RefCell<Option<Rc<Released>>>,
    released_weak: Weak<Released>,
    uv: Loop,
    multi: Cell<*mut CURLM>,
    timer: RefCell<Option<Timer>>,
    pub(super) sockets: SocketTable,
    /// Live transfers by easy-handle address.
    transfers: RefCell<IntMap<usize, Rc<TransferState>>>,
    next_id: Cell<u64>,
    deferred: RefCell<VecDeque<Deferred>>,
    /// How many libcurl calls that may run callbacks are on the stack.
    curl_depth: Cell<u32>,
    draining: Cell<bool>,
    closed: Cell<bool>,
    torn_down: Cell<bool>,
    /// uv timer firings, for tests of idle behaviour.
    timer_fires: Cell<u64>,
    /// Caches shared with other loops' transfers.
    share: Option<crate::Share>,
    /// Idle easy handles for the next transfers.
    easy_pool: Rc<crate::transfer::EasyPool>,
    /// The mailbox of remote commands, once a Remote was asked for.
    endpoint: RefCell<Option<crate::remote::Endpoint>>,
}

impl Driver {
    pub fn new(
        uv: &Loop,
        options: MultiOptions,
        share: Option<crate::Share>,
    ) -> Result<Rc<Driver>, Error> {
        crate::global::init();
        crate::global::warn_about_limits();
        // SAFETY: global init done; no preconditions.
        let multi = unsafe { curl::curl_multi_init() };
        if multi.is_null() {
            return Err(Error::new(ErrorKind::Driver, "curl_multi_init failed"));
        }
        let released = Rc::new(Released {
            callback: RefCell::new(None),
        });
        let driver = Rc::new_cyclic(|me: &Weak<Driver>| Driver {
            me: me.clone(),
            released_weak: Rc::downgrade(&released),
            released: RefCell::new(Some(released)),
            uv: uv.clone(),
            multi: Cell::new(multi),
            timer: RefCell::new(None),
            sockets: SocketTable::new(crate::global::curl_version_num()),
            transfers: RefCell::new(IntMap::default()),
            next_id: Cell::new(1),
            deferred: RefCell::new(VecDeque::new()),
            curl_depth: Cell::new(0),
            draining: Cell::new(false),
            closed: Cell::new(false),
            torn_down: Cell::new(false),
            timer_fires: Cell::new(0),
            endpoint: RefCell::new(None),
            share,
            easy_pool: Rc::default(),
        });
        // From here on, an error drops `driver`, whose Drop cleans up the multi.
        let weak = Rc::downgrade(&driver);
        let token = driver.release_token();
        let timer = Timer::new(uv, move || {
            let _released_after_me = &token;
            if let Some(driver) = weak.upgrade() {
                driver.on_timeout();
            }
        })?;
        *driver.timer.borrow_mut() = Some(timer);
        driver.setup_multi(options)?;
        Ok(driver)
    }

    fn setup_multi(&self, options: MultiOptions) -> Result<(), Error> {
        let multi = self.multi.get();
        let me = self as *const Driver as *mut c_void;
        let socket_cb: curl::curl_socket_callback = on_socket;
        let timer_cb: curl::curl_multi_timer_callback = on_timer;
        let pipelining = if options.multiplex {
            curl::CURLPIPE_MULTIPLEX
        } else {
            0
        };
        // SAFETY: a live multi handle; each option gets the type it expects. `me`
        // stays valid until curl_multi_cleanup, which runs in teardown while the
        // driver is alive.
        let codes = unsafe {
            [
                curl::curl_multi_setopt(multi, curl::CURLMOPT_SOCKETFUNCTION, socket_cb),
                curl::curl_multi_setopt(multi, curl::CURLMOPT_SOCKETDATA, me),
                curl::curl_multi_setopt(multi, curl::CURLMOPT_TIMERFUNCTION, timer_cb),
                curl::curl_multi_setopt(multi, curl::CURLMOPT_TIMERDATA, me),
                curl::curl_multi_setopt(multi, curl::CURLMOPT_PIPELINING, pipelining),
                curl::curl_multi_setopt(
                    multi,
                    curl::CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    options.max_total_connections as c_long,
                ),
                curl::curl_multi_setopt(
                    multi,
                    curl::CURLMOPT_MAX_HOST_CONNECTIONS,
                    options.max_host_connections as c_long,
                ),
                curl::curl_multi_setopt(
                    multi,
                    crate::sys::CURLMOPT_MAX_CONCURRENT_STREAMS,
                    options.max_concurrent_streams as c_long,
                ),
            ]
        };
        match codes.iter().find(|&&rc| rc != curl::CURLM_OK) {
            Some(&rc) => Err(Error::from_multi(rc, "curl_multi_setopt")),
            None => Ok(()),
        }
    }

    /// The remote handle, opening the mailbox on first use.
    pub fn remote(self: &Rc<Self>, keep_alive: bool) -> Result<crate::Remote, Error> {
        if self.closed.get() {
            return Err(Error::closed());
        }
        let mut endpoint = self.endpoint.borrow_mut();
        if endpoint.is_none() {
            *endpoint = Some(crate::remote::Endpoint::open(self, keep_alive)?);
        }
        Ok(endpoint
            .as_ref()
            .map(|e| e.remote())
            .expect("endpoint just opened"))
    }

    pub(crate) fn release_token(&self) -> Option<Rc<Released>> {
        self.released.borrow().clone()
    }

    /// Calls `callback` once every libuv handle of this driver has been closed
    /// and freed (at once if that already happened).
    pub fn on_released(&self, callback: Box<dyn FnOnce()>) {
        match self.released_weak.upgrade() {
            Some(released) => *released.callback.borrow_mut() = Some(callback),
            None => callback(),
        }
    }

    pub fn uv(&self) -> &Loop {
        &self.uv
    }

    pub fn raw(&self) -> *mut CURLM {
        self.multi.get()
    }

    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub fn active(&self) -> usize {
        self.transfers.borrow().len()
    }

    pub fn timer_fires(&self) -> u64 {
        self.timer_fires.get()
    }

    pub fn timer_pending(&self) -> bool {
        self.timer.borrow().as_ref().is_some_and(Timer::is_active)
    }

    fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// Runs `f` (a libcurl call that may invoke callbacks) with the depth counted.
    fn in_curl<T>(&self, f: impl FnOnce() -> T) -> T {
        self.curl_depth.set(self.curl_depth.get() + 1);
        let result = f();
        self.curl_depth.set(self.curl_depth.get() - 1);
        result
    }

    fn inside_curl(&self) -> bool {
        self.curl_depth.get() > 0
    }

    // ---- starting, cancelling, pausing ------------------------------------

    /// Starts a transfer built from a request.
    pub fn start(
        &self,
        request: crate::Request,
        on_done: Completion,
    ) -> Result<(usize, u64), Error> {
        if self.closed.get() {
            return Err(Error::closed());
        }
        let id = self.next_id();
        let state = TransferState::from_request(
            request,
            id,
            on_done,
            self.share.as_ref(),
            &self.easy_pool,
        )?;
        self.announce_sockets(&state)?;
        self.add(state)
    }

    /// Starts a transfer on a caller-configured easy handle.
    ///
    /// # Safety
    /// `easy` is a valid easy handle that stays valid until its completion ran.
    pub unsafe fn start_foreign(
        &self,
        easy: *mut CURL,
        on_done: Completion,
    ) -> Result<(usize, u64), Error> {
        if self.closed.get() {
            return Err(Error::closed());
        }
        if easy.is_null() {
            return Err(Error::invalid("null easy handle"));
        }
        if self.transfers.borrow().contains_key(&(easy as usize)) {
            return Err(Error::new(
                ErrorKind::InvalidState,
                "this easy handle is already added to the multi",
            ));
        }
        let id = self.next_id();
        self.add(Rc::new(TransferState::foreign(easy, id, on_done)))
    }

    /// Has libcurl open and close this transfer's sockets through us, so
    /// their watches may linger in the connection pool (see sockets.rs).
    fn announce_sockets(&self, state: &TransferState) -> Result<(), Error> {
        let me = self as *const Driver as *mut c_void;
        let open: curl::curl_opensocket_callback = on_open_socket;
        let close: CloseSocketCallback = on_close_socket;
        state.set_callback(curl::CURLOPT_OPENSOCKETFUNCTION, open as *mut c_void)?;
        state.set_callback(curl::CURLOPT_OPENSOCKETDATA, me)?;
        state.set_callback(curl::CURLOPT_CLOSESOCKETFUNCTION, close as *mut c_void)?;
        state.set_callback(curl::CURLOPT_CLOSESOCKETDATA, me)
    }

    fn add(&self, state: Rc<TransferState>) -> Result<(usize, u64), Error> {
        let key = state.easy as usize;
        let id = state.id;
        log::debug!("uvcurl: transfer {id} starting");
        self.transfers.borrow_mut().insert(key, state);
        if self.inside_curl() {
            self.deferred.borrow_mut().push_back(Deferred::Add(key, id));
            return Ok((key, id));
        }
        if let Err(error) = self.add_to_multi(key) {
            // Not started: the caller gets the error, the callback never runs.
            if let Some(state) = self.transfers.borrow_mut().remove(&key) {
                state.completion.borrow_mut().take();
            }
            return Err(error);
        }
        // No drain here: starting never runs another transfer's callbacks.
        Ok((key, id))
    }

    fn add_to_multi(&self, key: usize) -> Result<(), Error> {
        let multi = self.multi.get();
        // SAFETY: live multi and easy handles (the easy is kept by `transfers`);
        // not inside a libcurl callback (checked by the callers).
        let rc = self.in_curl(|| unsafe { curl::curl_multi_add_handle(multi, key as *mut CURL) });
        if rc == curl::CURLM_OK {
            Ok(())
        } else {
            Err(Error::from_multi(rc, "curl_multi_add_handle"))
        }
    }

    fn lookup(&self, key: usize, id: u64) -> Option<Rc<TransferState>> {
        self.transfers
            .borrow()
            .get(&key)
            .filter(|state| state.id == id)
            .cloned()
    }

    /// Cancels a transfer; its completion reports `Cancelled`. Returns false if
    /// it had already completed.
    pub fn cancel(&self, key: usize, id: u64) -> bool {
        let Some(state) = self.lookup(key, id) else {
            return false;
        };
        if state.cancel_requested.replace(true) {
            return true; // already on its way out
        }
        if self.inside_curl() {
            self.deferred
                .borrow_mut()
                .push_back(Deferred::Cancel(key, id));
        } else {
            self.complete(&state, Err(Error::cancelled()));
            self.drain();
        }
        true
    }

    pub fn pause(&self, key: usize, id: u64) -> Result<(), Error> {
        let state = self.lookup(key, id).ok_or_else(finished)?;
        // SAFETY: live easy handle in our multi; pausing is allowed from the
        // write/read callbacks too, where user code may call this.
        let rc =
            self.in_curl(|| unsafe { curl::curl_easy_pause(state.easy, curl::CURLPAUSE_RECV) });
        if rc != curl::CURLE_OK {
            return Err(Error::from_curl(rc, "curl_easy_pause"));
        }
        state.paused.set(true);
        Ok(())
    }

    pub fn resume(&self, key: usize, id: u64) -> Result<(), Error> {
        let state = self.lookup(key, id).ok_or_else(finished)?;
        if self.inside_curl() {
            self.deferred
                .borrow_mut()
                .push_back(Deferred::Resume(key, id));
            return Ok(());
        }
        self.resume_now(&state)?;
        self.drain();
        Ok(())
    }

    fn resume_now(&self, state: &TransferState) -> Result<(), Error> {
        if !state.paused.replace(false) {
            return Ok(());
        }
        // SAFETY: live easy handle; not inside a libcurl callback. Unpausing may
        // deliver buffered data to the write callback right here.
        let rc = self.in_curl(|| unsafe {
            curl::curl_easy_pause(
                state.easy,
                curl::CURLPAUSE_RECV_CONT | curl::CURLPAUSE_SEND_CONT,
            )
        });
        if rc != curl::CURLE_OK {
            return Err(Error::from_curl(rc, "curl_easy_pause"));
        }
        // Kick: let libcurl look at the transfer on the next loop turn.
        if let Some(timer) = self.timer.borrow().as_ref() {
            timer.start(0);
        }
        Ok(())
    }

    // ---- completion -------------------------------------------------------

    /// Removes a transfer from the multi and calls its completion, exactly once.
    fn complete(&self, state: &Rc<TransferState>, outcome: Result<(), Error>) {
        let key = state.easy as usize;
        let Some(state) = self.transfers.borrow_mut().remove(&key) else {
            return;
        };
        let multi = self.multi.get();
        if !multi.is_null() {
            // SAFETY: the easy handle is in our multi (or was never added, which
            // libcurl answers with an error we can ignore); not inside a callback.
            self.in_curl(|| unsafe { curl::curl_multi_remove_handle(multi, state.easy) });
        }
        // A body-less response had no chunk to announce its head before.
        let outcome = match outcome {
            Ok(()) => state.finish_head(),
            failed => failed,
        };
        let completion = state.completion.borrow_mut().take();
        match &outcome {
            Ok(()) => log::debug!("uvcurl: transfer {} done", state.id),
            Err(e) => log::debug!("uvcurl: transfer {} failed: {e}", state.id),
        }
        match completion {
            Some(Completion::Response(callback)) => {
                let result = outcome.map(|()| state.response());
                drop(state); // frees the easy handle before user code runs
                self.call_user("completion", || callback(result));
            }
            Some(Completion::Raw(callback)) => {
                drop(state);
                self.call_user("completion", || callback(outcome));
            }
            None => {}
        }
    }

    /// Runs user code that has no transfer to fail if it panics.
    fn call_user(&self, place: &str, f: impl FnOnce()) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(f)) {
            self.uv.inner().stash_panic(payload, place);
        }
    }

    /// Completes every finished transfer and does the queued work, until neither is left.
    fn drain(&self) {
        if self.draining.replace(true) {
            return; // an outer drain on the stack picks up what is new
        }
        loop {
            self.read_messages();
            let next = self.deferred.borrow_mut().pop_front();
            match next {
                Some(work) => self.run_deferred(work),
                None => break,
            }
        }
        self.draining.set(false);
    }

    fn read_messages(&self) {
        loop {
            let multi = self.multi.get();
            if multi.is_null() {
                return;
            }
            let mut left = 0;
            // SAFETY: live multi; allowed anywhere. The message is read at once,
            // before any call that could invalidate it.
            let (easy, code) = unsafe {
                let msg = curl::curl_multi_info_read(multi, &mut left);
                if msg.is_null() {
                    return;
                }
                if (*msg).msg != curl::CURLMSG_DONE {
                    continue;
                }
                ((*msg).easy_handle, (*msg).data as usize as curl::CURLcode)
            };
            let state = self.transfers.borrow().get(&(easy as usize)).cloned();
            if let Some(state) = state {
                let outcome = state.outcome(code);
                self.complete(&state, outcome);
            }
        }
    }

    fn run_deferred(&self, work: Deferred) {
        match work {
            Deferred::Add(key, id) => {
                let Some(state) = self.lookup(key, id) else {
                    return;
                };
                if self.closed.get() {
                    self.complete(&state, Err(Error::closed()));
                } else if let Err(error) = self.add_to_multi(key) {
                    self.complete(&state, Err(error));
                }
            }
            Deferred::Cancel(key, id) => {
                if let Some(state) = self.lookup(key, id) {
                    self.complete(&state, Err(Error::cancelled()));
                }
            }
            Deferred::Resume(key, id) => {
                if let Some(state) = self.lookup(key, id) {
                    if let Err(error) = self.resume_now(&state) {
                        self.complete(&state, Err(error));
                    }
                }
            }
            Deferred::Fail(key, error) => {
                let state = self.transfers.borrow().get(&key).cloned();
                if let Some(state) = state {
                    self.complete(&state, Err(error));
                }
            }
            Deferred::Close => self.teardown(),
        }
    }

    // ---- events from libuv ------------------------------------------------

    fn socket_action(&self, socket: curl_socket_t, mask: c_int) {
        let multi = self.multi.get();
        if multi.is_null() {
            return;
        }
        let mut running = 0;
        // SAFETY: live multi, valid `running` pointer; called from a libuv
        // callback, never from inside a libcurl callback.
        let rc = self.in_curl(|| unsafe {
            curl::curl_multi_socket_action(multi, socket, mask, &mut running)
        });
        if rc != curl::CURLM_OK {
            self.fail_all(Error::from_multi(rc, "curl_multi_socket_action"));
        }
    }

    pub(super) fn on_socket_ready(
        &self,
        socket: curl_socket_t,
        generation: u64,
        result: crate::uv::PollResult,
    ) {
        if self.multi.get().is_null() {
            return;
        }
        match self.sockets.event_for(socket, generation) {
            super::sockets::EventFor::Curl => {}
            super::sockets::EventFor::Nobody | super::sockets::EventFor::Stale => return,
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
        self.socket_action(socket, mask);
        if result.is_err() {
            // libuv stopped the handle on the error; if libcurl still wants the
            // socket, watch it again.
            self.sockets.restart(socket, generation);
        }
        self.drain();
    }

    fn on_timeout(&self) {
        self.timer_fires.set(self.timer_fires.get() + 1);
        log::trace!("uvcurl: timer fired");
        self.socket_action(curl::CURL_SOCKET_TIMEOUT, 0);
        self.drain();
    }

    /// The multi failed: every transfer fails with `error`, and it is closed.
    fn fail_all(&self, error: Error) {
        log::error!("uvcurl: {error}; failing every transfer");
        let keys: Vec<usize> = self.transfers.borrow().keys().copied().collect();
        for key in keys {
            self.deferred
                .borrow_mut()
                .push_back(Deferred::Fail(key, error.clone()));
        }
        self.closed.set(true);
        self.deferred.borrow_mut().push_back(Deferred::Close);
    }

    // ---- closing ----------------------------------------------------------

    /// Cancels every transfer and releases the multi and every libuv handle.
    /// From inside a libcurl callback the work happens once libcurl returned.
    pub fn close(&self) {
        if self.closed.replace(true) && self.torn_down.get() {
            return;
        }
        if self.inside_curl() {
            self.deferred.borrow_mut().push_back(Deferred::Close);
        } else {
            self.teardown();
        }
    }

    fn teardown(&self) {
        if self.torn_down.replace(true) {
            return;
        }
        self.closed.set(true);
        loop {
            let next = self.transfers.borrow().values().next().cloned();
            let Some(state) = next else { break };
            let outcome = if state.cancel_requested.get() {
                Err(Error::cancelled())
            } else {
                Err(Error::new(ErrorKind::Cancelled, "the Multi was closed"))
            };
            self.complete(&state, outcome);
        }
        self.deferred.borrow_mut().clear();
        let endpoint = self.endpoint.borrow_mut().take();
        if let Some(endpoint) = endpoint {
            endpoint.shut(); // queued submissions complete as Closed
        }
        let multi = self.multi.get();
        if !multi.is_null() {
            // SAFETY: every easy handle was removed above; libcurl may call the
            // socket callback during cleanup, which still finds us alive.
            self.in_curl(|| unsafe { curl::curl_multi_cleanup(multi) });
            self.multi.set(std::ptr::null_mut());
        }
        self.sockets.close_all();
        drop(self.timer.borrow_mut().take());
        drop(self.released.borrow_mut().take());
        log::debug!("uvcurl: multi closed");
    }

    // ---- libcurl's requests -----------------------------------------------

    pub(super) fn handle_socket(
        &self,
        easy: *mut CURL,
        socket: curl_socket_t,
        what: c_int,
        socketp: *mut c_void,
    ) {
        let wanted = match what {
            curl::CURL_POLL_REMOVE => {
                log::trace!("uvcurl: socket {socket}: remove");
                self.sockets.remove(socket);
                return;
            }
            curl::CURL_POLL_IN => (true, false),
            curl::CURL_POLL_OUT => (false, true),
            curl::CURL_POLL_INOUT => (true, true),
            other => {
                log::warn!("uvcurl: socket {socket}: unknown action {other} ignored");
                return;
            }
        };
        log::trace!("uvcurl: socket {socket}: watch {wanted:?}");
        let weak = self.me.clone();
        let token = self.release_token();
        let watched = self.sockets.watch(
            &self.uv,
            socket,
            wanted,
            socketp.is_null(),
            move |generation, result| {
                let _released_after_me = &token;
                if let Some(driver) = weak.upgrade() {
                    driver.on_socket_ready(socket, generation, result);
                }
            },
        );
        match watched {
            Ok(Some(generation)) => {
                // SAFETY: allowed inside the socket callback; the value is only
                // echoed back to us as `socketp` (non-null: known socket).
                unsafe {
                    curl::curl_multi_assign(self.multi.get(), socket, generation as *mut c_void)
                };
            }
            Ok(None) => {}
            Err(error) => {
                log::error!("uvcurl: cannot watch socket {socket}: {error}");
                self.deferred
                    .borrow_mut()
                    .push_back(Deferred::Fail(easy as usize, error));
                // libcurl wants no more calls from here: make sure the loop
                // wakes to run the queued failure.
                if let Some(timer) = self.timer.borrow().as_ref() {
                    timer.start(0);
                }
            }
        }
    }

    pub(super) fn handle_timer(&self, timeout_ms: c_long) {
        let timer = self.timer.borrow();
        let Some(timer) = timer.as_ref() else { return };
        if timeout_ms < 0 {
            log::trace!("uvcurl: timer stop");
            timer.stop();
        } else {
            log::trace!("uvcurl: timer in {timeout_ms} ms");
            timer.start(timeout_ms as u64);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Normally Multi::drop tore everything down already.
        self.teardown();
    }
}

fn finished() -> Error {
    Error::new(
        ErrorKind::InvalidState,
        "the transfer has already completed",
    )
}

impl Driver {
    /// Whether the transfer is live and not being cancelled.
    pub fn is_running(&self, key: usize, id: u64) -> bool {
        self.lookup(key, id)
            .is_some_and(|s| !s.cancel_requested.get())
    }
}
