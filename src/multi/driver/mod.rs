//! The driver: a curl multi handle run by libuv.
//!
//! libcurl tells us which sockets to watch (socket callback) and when to wake
//! it (timer callback); both only record that in libuv handles. libuv events
//! come back through [`Poll`](crate::uv::Poll) and [`Timer`] closures, become
//! `curl_multi_socket_action` calls, and finished transfers are completed
//! after that call has returned. Whatever user code asks for while libcurl is
//! on the stack (start, cancel, resume, close) is queued and done then, so
//! libcurl is never re-entered.
//!
//! - this file: the driver's state, its lifecycle [`Phase`], creation;
//! - `callbacks`: the [`Callbacks`] box libcurl's callbacks get as user data;
//! - `start`: starting, cancelling, pausing and resuming transfers;
//! - `dispatch`: libuv events into libcurl, messages and queued work out,
//!   each transfer completed exactly once;
//! - `close`: closing and the teardown order.

mod callbacks;
mod close;
mod dispatch;
mod start;

pub(crate) use callbacks::Callbacks;

use crate::curl::{self, EasyPool, LastOrigin, MultiCallbacks};
use crate::error::Error;
use crate::fast_map::IntMap;
use crate::transfer::{KeptOptions, ProxyEnv, SharedOptions, TransferKey, TransferState};
use crate::uv::{Loop, Timer};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

/// Where a driver is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Takes new transfers.
    Open,
    /// Refuses new work; the teardown is queued until libcurl returns (a
    /// close from inside a callback, or a broken multi).
    Closing,
    /// Torn down, or being torn down: transfers complete as cancelled, the
    /// multi handle is cleaned up, every libuv handle is closing.
    Closed,
}

/// Work asked for while libcurl was on the stack.
enum Deferred {
    Add(TransferKey),
    Cancel(TransferKey),
    Resume(TransferKey),
    /// Fails whatever transfer runs on the easy handle in this slot (the
    /// socket callback knows the handle, not the transfer).
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
    /// `CURLMOPT_MAXCONNECTS` (0: libcurl's guess).
    pub connection_cache: usize,
}

/// Runs a callback once every libuv handle of a driver has been freed: each
/// handle's closure holds a clone, and libuv drops the closure in the
/// handle's close callback.
pub(crate) struct Released {
    uv: Loop,
    callback: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl Drop for Released {
    fn drop(&mut self) {
        if let Some(callback) = self.callback.get_mut().take() {
            crate::panic::completion(&self.uv, "a released callback", callback);
        }
    }
}

/// Something attached to a driver for its lifetime (the remote's mailbox),
/// shut when the driver closes.
pub(crate) trait Attachment: Any {
    /// Called once, at teardown, after every transfer completed.
    fn shut(self: Box<Self>);
}

/// Fields drop in declaration order, and the order is the teardown order
/// libcurl needs (teardown does the same explicitly first): transfers (whose
/// easy handles were removed from the multi), then the multi handle, whose
/// cleanup may still call the socket callback, then `callbacks`, which that
/// callback reads, and the close-socket callback of every easy handle too.
pub(crate) struct Driver {
    /// Live transfers by slot (easy-handle address).
    transfers: RefCell<IntMap<usize, Rc<TransferState>>>,
    /// `None` once cleaned up.
    multi: RefCell<Option<curl::Multi>>,
    /// libcurl's callbacks' user data: outlives `multi`.
    callbacks: Box<Callbacks>,
    phase: Cell<Phase>,
    /// Fires the on_released callback once every libuv handle is freed.
    released: Weak<Released>,
    uv: Loop,
    next_id: Cell<u64>,
    /// How many libcurl calls that may run callbacks are on the stack.
    curl_depth: Cell<u32>,
    /// A drain is on the stack (not a phase: it guards against re-entry).
    draining: Cell<bool>,
    /// Set while the driver handles a socket's event: transfers started
    /// then (from completions, mostly) wait in `batched` for the end of the
    /// loop turn's I/O.
    batching: Cell<bool>,
    /// Transfers started during this loop turn's I/O, added to the multi
    /// together once it is over (`start_batched`).
    batched: RefCell<Vec<Rc<TransferState>>>,
    /// The last batch's emptied vector, for the next one.
    spare_batch: Cell<Vec<Rc<TransferState>>>,
    /// How many batches were started, and how many transfers in them.
    batches: Cell<u64>,
    batched_starts: Cell<u64>,
    /// uv timer firings, for tests of idle behaviour.
    timer_fires: Cell<u64>,
    /// Transfers started on a handle kept configured for their options.
    reused_configured: Cell<u64>,
    /// An emptied `LazyDetails` the last response no longer holds, for the
    /// next one (see `response::details`).
    spare_details: Cell<Option<std::sync::Arc<crate::response::LazyDetails>>>,
    /// Whether the environment named proxies when this driver was made.
    proxy_env: ProxyEnv,
    /// Idle easy handles for the next transfers.
    easy_pool: Rc<EasyPool<KeptOptions>>,
    /// The origin of the last plain URL checked (see `curl::url`).
    last_origin: LastOrigin,
    /// The option set last made, shared by handles configured alike.
    option_sets: SharedOptions,
    /// Shut at teardown (the remote's mailbox, once a Remote was asked for).
    attachment: RefCell<Option<Box<dyn Attachment>>>,
    /// Caches shared with other loops' transfers. Dropped after `easy_pool`,
    /// though the pool no longer needs it: a handle kept configured holds
    /// the share in its option set, and the pool unlinks every handle it
    /// resets (`curl_easy_reset` keeps `CURLOPT_SHARE`).
    share: Option<crate::Share>,
}

impl Driver {
    pub fn new(
        uv: &Loop,
        options: MultiOptions,
        share: Option<crate::Share>,
    ) -> Result<Rc<Driver>, Error> {
        crate::global::warn_about_limits();
        let multi = curl::Multi::new()?;
        multi.set_limits(
            options.multiplex,
            options.max_total_connections,
            options.max_host_connections,
            options.max_concurrent_streams,
        )?;
        if options.connection_cache > 0 {
            multi.set_connection_cache(options.connection_cache)?;
        }
        let released = Rc::new(Released {
            uv: uv.clone(),
            callback: RefCell::new(None),
        });
        let released_weak = Rc::downgrade(&released);
        let driver = Rc::new_cyclic(|me: &Weak<Driver>| Driver {
            transfers: RefCell::new(IntMap::default()),
            callbacks: Box::new(Callbacks::new(uv, me.clone(), multi.as_ref(), released)),
            multi: RefCell::new(Some(multi)),
            phase: Cell::new(Phase::Open),
            released: released_weak,
            uv: uv.clone(),
            next_id: Cell::new(1),
            curl_depth: Cell::new(0),
            draining: Cell::new(false),
            batching: Cell::new(false),
            batched: RefCell::new(Vec::new()),
            spare_batch: Cell::new(Vec::new()),
            batches: Cell::new(0),
            batched_starts: Cell::new(0),
            timer_fires: Cell::new(0),
            reused_configured: Cell::new(0),
            spare_details: Cell::new(None),
            share,
            proxy_env: ProxyEnv::read(),
            easy_pool: Rc::default(),
            last_origin: LastOrigin::default(),
            option_sets: SharedOptions::default(),
            attachment: RefCell::new(None),
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
        driver.callbacks.set_timer(timer);
        let data = &*driver.callbacks as *const Callbacks as *mut libc::c_void;
        let installed = driver.with_multi(|multi| {
            // SAFETY: `data` is the boxed Callbacks, which the driver drops only
            // after the multi handle (field order, and teardown).
            unsafe {
                multi.set_callbacks(MultiCallbacks {
                    socket: super::trampolines::on_socket,
                    timer: super::trampolines::on_timer,
                    data,
                })
            }
        });
        installed.unwrap_or_else(|| Err(Error::closed()))?;
        Ok(driver)
    }

    /// The attachment of type `T`, opened by `open` on first use, given to
    /// `read`.
    ///
    /// # Errors
    /// `Closed` once the driver is closing; `open`'s error.
    pub fn attachment<T: Attachment, R>(
        &self,
        open: impl FnOnce() -> Result<T, Error>,
        read: impl FnOnce(&T) -> R,
    ) -> Result<R, Error> {
        if self.is_closed() {
            return Err(Error::closed());
        }
        let mut slot = self.attachment.borrow_mut();
        if slot.is_none() {
            *slot = Some(Box::new(open()?));
        }
        let any: &dyn Any = slot.as_deref().expect("attachment just opened");
        let attached = any
            .downcast_ref::<T>()
            .expect("a driver has one kind of attachment");
        Ok(read(attached))
    }

    /// A clone for each libuv handle's closure (`None` after teardown).
    pub(crate) fn release_token(&self) -> Option<Rc<Released>> {
        self.callbacks.release_token()
    }

    /// Calls `callback` once every libuv handle of this driver has been closed
    /// and freed (at once if that already happened).
    pub fn on_released(&self, callback: Box<dyn FnOnce()>) {
        match self.released.upgrade() {
            Some(released) => *released.callback.borrow_mut() = Some(callback),
            None => callback(),
        }
    }

    pub fn uv(&self) -> &Loop {
        &self.uv
    }

    /// The raw multi handle (null once cleaned up).
    pub fn raw(&self) -> *mut curl_sys::CURLM {
        self.with_multi(|multi| multi.raw())
            .unwrap_or(std::ptr::null_mut())
    }

    pub fn is_closed(&self) -> bool {
        self.phase.get() != Phase::Open
    }

    pub fn active(&self) -> usize {
        self.transfers.borrow().len()
    }

    /// The live transfer running on the easy handle at `easy` (the table is
    /// keyed by easy-handle address).
    pub fn running_on(&self, easy: usize) -> Option<TransferKey> {
        self.transfers.borrow().get(&easy).map(|state| state.key())
    }

    /// The sockets libcurl asked us to watch.
    pub fn sockets(&self) -> &super::sockets::SocketTable {
        &self.callbacks.sockets
    }

    pub fn timer_fires(&self) -> u64 {
        self.timer_fires.get()
    }

    pub fn reused_configured_handles(&self) -> u64 {
        self.reused_configured.get()
    }

    /// How many option sets were made (handles configured alike share one).
    pub fn option_sets_made(&self) -> u64 {
        self.option_sets.made()
    }

    /// (batches started, transfers in them): see `start_batched`.
    pub fn batched_starts(&self) -> (u64, u64) {
        (self.batches.get(), self.batched_starts.get())
    }

    pub fn timer_pending(&self) -> bool {
        self.callbacks.timer_pending()
    }

    /// Calls `f` with the multi handle unless it was cleaned up. The borrow
    /// is shared and only the teardown takes the handle, which never happens
    /// while libcurl is on the stack (it is queued then).
    fn with_multi<T>(&self, f: impl FnOnce(&curl::Multi) -> T) -> Option<T> {
        self.multi.borrow().as_ref().map(f)
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

    fn defer(&self, work: Deferred) {
        self.callbacks.deferred.borrow_mut().push_back(work);
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Normally Multi::drop tore everything down already.
        self.teardown();
    }
}
