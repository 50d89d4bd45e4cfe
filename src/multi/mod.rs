//! [`Multi`]: many concurrent transfers on one libuv loop.

pub(crate) mod driver;
mod sockets;
mod trampolines;

use crate::error::Error;
use crate::request::Request;
use crate::response::Response;
use crate::transfer::{Completion, TransferKey};
use crate::uv::Loop;
use driver::{Driver, MultiOptions};
use std::fmt;
use std::rc::{Rc, Weak};

/// A curl multi handle driven by a libuv [`Loop`]: starts transfers and
/// completes each of them exactly once.
///
/// Dropping the `Multi` (or [`close`](Multi::close)) cancels every transfer
/// still running — each completion then reports
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled) — and closes every
/// libuv handle it opened, so the loop can finish.
///
/// ```no_run
/// use uvcurl::{Loop, Multi, Request};
///
/// let uv = Loop::new()?;
/// let multi = Multi::new(&uv)?;
/// multi.start(Request::get("http://127.0.0.1:8080/"), |result| match result {
///     Ok(response) => println!("{} bytes", response.body().len()),
///     Err(error) => eprintln!("failed: {error}"),
/// })?;
/// uv.run()?;
/// # Ok::<(), uvcurl::Error>(())
/// ```
///
/// A `Multi` belongs to its loop's thread:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let uv = uvcurl::Loop::new().unwrap();
/// send(uvcurl::Multi::new(&uv).unwrap());
/// ```
pub struct Multi {
    driver: Rc<Driver>,
}

/// Options for a [`Multi`], from [`Multi::builder`].
#[derive(Clone)]
pub struct MultiBuilder {
    options: MultiOptions,
    share: Option<crate::Share>,
    require_high_fds: bool,
}

impl MultiBuilder {
    /// Most connections open at once, over all hosts (0: no limit, the default).
    pub fn max_total_connections(mut self, max: usize) -> MultiBuilder {
        self.options.max_total_connections = max;
        self
    }

    /// Most connections open at once to one host (0: no limit, the default).
    pub fn max_host_connections(mut self, max: usize) -> MultiBuilder {
        self.options.max_host_connections = max;
        self
    }

    /// Most HTTP/2 streams libcurl opens on one connection (default 100, as
    /// libcurl's; the server's limit applies too).
    pub fn max_concurrent_streams(mut self, max: usize) -> MultiBuilder {
        self.options.max_concurrent_streams = max.max(1);
        self
    }

    /// Most connections kept open for reuse (libcurl's connection cache,
    /// `CURLMOPT_MAXCONNECTS`): beyond it, the connection idle longest is
    /// closed as soon as another goes idle. 0, the default, leaves the size
    /// to libcurl, which guesses from the transfers running (libcurl 8: twice
    /// as many, closing only connections idle for a second; it checks every
    /// connection that goes idle while more are open than that, which costs
    /// a caller whose running count dips between batches, like a
    /// [`Client`](crate::Client)'s loop, a scan of the cache each time).
    pub fn connection_cache(mut self, max: usize) -> MultiBuilder {
        self.options.connection_cache = max;
        self
    }

    /// Multiplexes HTTP/2 transfers over shared connections (on by default).
    pub fn multiplex(mut self, multiplex: bool) -> MultiBuilder {
        self.options.multiplex = multiplex;
        self
    }

    /// Shares libcurl's DNS and TLS session caches with every other `Multi`
    /// built with the same [`Share`](crate::Share) (on any thread).
    pub fn share(mut self, share: &crate::Share) -> MultiBuilder {
        self.share = Some(share.clone());
        self
    }

    /// Refuses to build on a libcurl that waits with `select()` when this
    /// process may open sockets numbered 1024 or above (its descriptor limit
    /// is higher), instead of failing those transfers one by one with
    /// [`ErrorKind::SocketLimit`](crate::ErrorKind::SocketLimit). Off by
    /// default: a program that never holds 1,000 sockets works either way.
    pub fn require_high_fds(mut self, require: bool) -> MultiBuilder {
        self.require_high_fds = require;
        self
    }

    /// Creates the `Multi` on `uv`.
    ///
    /// # Errors
    /// If libcurl or libuv cannot create their handles;
    /// [`ErrorKind::SocketLimit`](crate::ErrorKind::SocketLimit) as
    /// [`require_high_fds`](MultiBuilder::require_high_fds) says.
    pub fn build(self, uv: &Loop) -> Result<Multi, Error> {
        let running = crate::uv::running_libuv_version();
        if running < crate::uv::MIN_LIBUV_VERSION {
            return Err(Error::new(
                crate::ErrorKind::Driver,
                format!(
                    "libuv {}.{}.{} is running; uvcurl needs 1.44.0 or newer",
                    running >> 16,
                    (running >> 8) & 0xff,
                    running & 0xff
                ),
            ));
        }
        if self.require_high_fds && crate::version().high_fds == Some(false) {
            return Err(Error::new(
                crate::ErrorKind::SocketLimit,
                "this libcurl waits on sockets with select() and cannot watch those \
                 numbered 1024 or above, which this process may open; build libcurl \
                 with poll() (CFLAGS=-DHAVE_POLL, see uvcurl's docs: \"Sockets above 1024\")",
            ));
        }
        Ok(Multi {
            driver: Driver::new(uv, self.options, self.share)?,
        })
    }
}

impl Multi {
    /// A `Multi` on `uv` with default options.
    ///
    /// # Errors
    /// If libcurl or libuv cannot create their handles.
    pub fn new(uv: &Loop) -> Result<Multi, Error> {
        Multi::builder().build(uv)
    }

    /// Options for a new `Multi`.
    pub fn builder() -> MultiBuilder {
        MultiBuilder {
            options: MultiOptions {
                max_total_connections: 0,
                max_host_connections: 0,
                multiplex: true,
                max_concurrent_streams: 100,
                connection_cache: 0,
            },
            share: None,
            require_high_fds: false,
        }
    }

    /// Starts `request`; `on_done` runs exactly once, on the loop thread, with
    /// the response (any status) or the error. It may start, cancel or close
    /// freely. `start` itself never runs a callback: `on_done` runs later,
    /// from the loop.
    ///
    /// # Errors
    /// Bad input (invalid URL, a scheme not allowed, a NUL byte, a malformed
    /// header) and a closed `Multi` are reported here, and `on_done` is then
    /// never called.
    ///
    /// The callback must be `'static`: it may run long after `start` returned.
    ///
    /// ```compile_fail
    /// # let uv = uvcurl::Loop::new().unwrap();
    /// # let multi = uvcurl::Multi::new(&uv).unwrap();
    /// let mut status = 0;
    /// multi.start(uvcurl::Request::get("http://127.0.0.1/"), |r| status = r.unwrap().status());
    /// ```
    #[inline]
    pub fn start(
        &self,
        request: Request,
        on_done: impl FnOnce(Result<Response, Error>) + 'static,
    ) -> Result<Transfer, Error> {
        start(&self.driver, request, on_done)
    }

    /// Runs `request` to completion on this `Multi`'s loop and returns its
    /// result: the sequential style, with no callback and no shared state.
    /// The loop runs (`run_once`, repeatedly) until this transfer completes,
    /// so other transfers, timers and handles on it make progress meanwhile.
    ///
    /// ```no_run
    /// let uv = uvcurl::Loop::new()?;
    /// let multi = uvcurl::Multi::new(&uv)?;
    /// let response = multi.fetch(uvcurl::Request::get("http://127.0.0.1:8080/a"))?;
    /// println!("{}", response.text());
    /// let next = multi.fetch(uvcurl::Request::get("http://127.0.0.1:8080/b"))?.error_for_status()?;
    /// # let _ = next;
    /// # Ok::<(), uvcurl::Error>(())
    /// ```
    ///
    /// # Errors
    /// The transfer's own error; [`ErrorKind::InvalidState`](crate::ErrorKind::InvalidState)
    /// when called from inside a callback of the loop (the loop is already
    /// running: use [`start`](Multi::start) there); the errors of `start`.
    pub fn fetch(&self, request: Request) -> Result<Response, Error> {
        let uv = self.driver.uv();
        if uv.is_running() {
            return Err(Error::new(
                crate::ErrorKind::InvalidState,
                "Multi::fetch called from inside a loop callback; use Multi::start there",
            ));
        }
        let result = Rc::new(std::cell::Cell::new(None));
        let slot = Rc::clone(&result);
        let transfer = self.start(request, move |outcome| slot.set(Some(outcome)))?;
        loop {
            if let Some(outcome) = result.take() {
                return outcome;
            }
            if !uv.run_once()? && transfer.is_active() {
                // Nothing keeps the loop alive, yet the transfer still runs.
                transfer.cancel();
                return Err(Error::new(
                    crate::ErrorKind::InvalidState,
                    "the loop stopped before the transfer completed",
                ));
            }
        }
    }

    /// Runs a caller-configured easy handle; the handle stays the caller's.
    /// `on_done` runs exactly once with the result (libcurl's code is in
    /// [`Error::curl_code`]).
    ///
    /// While it runs, uvcurl takes over four options so that its pooled
    /// connections cost no `epoll_ctl` when reused, as with [`Multi::start`]:
    /// `CURLOPT_OPENSOCKETFUNCTION`/`DATA` and `CURLOPT_CLOSESOCKETFUNCTION`/`DATA`
    /// (a caller's own values for them are replaced). They are reset to
    /// libcurl's defaults before `on_done` runs; no other option is touched.
    ///
    /// # Errors
    /// A null handle, one already running on this `Multi`, or a closed `Multi`.
    ///
    /// # Safety
    /// `easy` must be a valid easy handle that is not in any other multi and is
    /// neither cleaned up nor reconfigured until `on_done` has run.
    pub unsafe fn start_raw(
        &self,
        easy: *mut curl_sys::CURL,
        on_done: impl FnOnce(Result<(), Error>) + 'static,
    ) -> Result<Transfer, Error> {
        let on_done = Completion::External(Box::new(on_done));
        // SAFETY: forwarded contract.
        let key = unsafe { self.driver.start_raw(easy, on_done)? };
        Ok(Transfer::new(&self.driver, key))
    }

    /// The driver, for the modules built on it (the remote's mailbox).
    pub(crate) fn driver(&self) -> &Rc<Driver> {
        &self.driver
    }

    /// A handle that can start transfers and close this `Multi` from callbacks
    /// without keeping it alive.
    pub fn handle(&self) -> MultiHandle {
        MultiHandle {
            driver: Rc::downgrade(&self.driver),
        }
    }

    /// Cancels every transfer and releases every handle. Idempotent.
    pub fn close(&self) {
        self.driver.close();
    }

    /// Calls `callback` once this `Multi` is closed and every libuv handle it
    /// opened has been freed — that is, during the loop iteration that runs
    /// the last close callback — or at once if that already happened. A host
    /// that runs its own loop can free what it shares with uvcurl there.
    /// Setting it again replaces the previous callback.
    pub fn on_released(&self, callback: impl FnOnce() + 'static) {
        self.driver.on_released(Box::new(callback));
    }

    /// Whether the `Multi` is closed.
    pub fn is_closed(&self) -> bool {
        self.driver.is_closed()
    }

    /// Transfers started and not yet completed.
    pub fn active_transfers(&self) -> usize {
        self.driver.active()
    }

    /// The driver's internal counters, for uvcurl's own tests (not a stable API).
    #[doc(hidden)]
    pub fn stats(&self) -> DriverStats {
        stats_of(&self.driver)
    }

    /// The transfer running on a caller's easy handle (for the C ABI, which
    /// keeps no table of its own).
    pub(crate) fn transfer_running_on(&self, easy: *mut curl_sys::CURL) -> Option<Transfer> {
        let key = self.driver.running_on(easy as usize)?;
        Some(Transfer::new(&self.driver, key))
    }

    /// The loop this `Multi` runs on.
    pub fn uv(&self) -> &Loop {
        self.driver.uv()
    }

    /// The underlying `CURLM*`, for `curl_multi_setopt` calls uvcurl does not
    /// wrap. Null once closed. Do not change the socket or timer callbacks.
    pub fn as_raw(&self) -> *mut curl_sys::CURLM {
        self.driver.raw()
    }
}

impl Drop for Multi {
    fn drop(&mut self) {
        self.driver.close();
    }
}

impl fmt::Debug for Multi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Multi")
            .field("active_transfers", &self.active_transfers())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[inline]
fn start(
    driver: &Rc<Driver>,
    request: Request,
    on_done: impl FnOnce(Result<Response, Error>) + 'static,
) -> Result<Transfer, Error> {
    let key = driver.start(request, Completion::Response(Box::new(on_done)))?;
    Ok(Transfer::new(driver, key))
}

/// A weak handle to a [`Multi`], for use inside callbacks: it does not keep
/// the `Multi` open, and its calls fail with
/// [`ErrorKind::Closed`](crate::ErrorKind::Closed) once it is closed.
#[derive(Clone)]
pub struct MultiHandle {
    driver: Weak<Driver>,
}

impl MultiHandle {
    fn driver(&self) -> Result<Rc<Driver>, Error> {
        self.driver.upgrade().ok_or_else(Error::closed)
    }

    /// Like [`Multi::start`].
    ///
    /// # Errors
    /// As for [`Multi::start`].
    #[inline]
    pub fn start(
        &self,
        request: Request,
        on_done: impl FnOnce(Result<Response, Error>) + 'static,
    ) -> Result<Transfer, Error> {
        start(&self.driver()?, request, on_done)
    }

    /// Like [`Multi::close`]; does nothing if it is already gone.
    pub fn close(&self) {
        if let Ok(driver) = self.driver() {
            driver.close();
        }
    }

    /// Whether the `Multi` is closed or gone.
    pub fn is_closed(&self) -> bool {
        self.driver().map_or(true, |d| d.is_closed())
    }

    /// Transfers started and not yet completed (0 once gone).
    pub fn active_transfers(&self) -> usize {
        self.driver().map_or(0, |d| d.active())
    }

    /// Like [`Multi::stats`] (all zero once the `Multi` is gone).
    #[doc(hidden)]
    pub fn stats(&self) -> DriverStats {
        self.driver().map(|d| stats_of(&d)).unwrap_or_default()
    }
}

/// The driver's internal counters, for uvcurl's own tests (not a stable API).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Sockets libcurl currently wants watched with a `uv_poll_t`.
    pub watched_sockets: usize,
    /// Pooled (idle keep-alive) sockets whose `uv_poll_t` is kept, unreferenced.
    pub lingering_sockets: usize,
    /// How often the uv timer that drives libcurl's timeouts has fired.
    pub timer_fires: u64,
    /// Whether libcurl currently has a timeout armed on the loop.
    pub timer_pending: bool,
    /// Transfers that got an easy handle still configured with their exact
    /// options by the previous transfer (no reset, only per-transfer options set).
    pub reused_configured_handles: u64,
    /// Transfers started while the loop turn's I/O was being handled (from
    /// completions, mostly), which wait for its end, or for a batch of 16,
    /// and are then started together: their requests go out together.
    pub batched_starts: u64,
    /// How many such batches were started.
    pub start_batches: u64,
    /// How many option sets were made: handles configured alike share one.
    pub option_sets_made: u64,
}

fn stats_of(driver: &Driver) -> DriverStats {
    DriverStats {
        watched_sockets: driver.sockets().len(),
        lingering_sockets: driver.sockets().lingering(),
        timer_fires: driver.timer_fires(),
        timer_pending: driver.timer_pending(),
        reused_configured_handles: driver.reused_configured_handles(),
        batched_starts: driver.batched_starts().1,
        start_batches: driver.batched_starts().0,
        option_sets_made: driver.option_sets_made(),
    }
}

/// A running transfer: cancel, pause or resume it. Cheap to clone; it does
/// not keep the transfer or the `Multi` alive. Like its `Multi`, it belongs
/// to the loop's thread (use a [`Remote`](crate::Remote) from others):
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let uv = uvcurl::Loop::new().unwrap();
/// let multi = uvcurl::Multi::new(&uv).unwrap();
/// send(multi.start(uvcurl::Request::get("http://127.0.0.1:1/"), |_| {}).unwrap());
/// ```
#[derive(Clone)]
pub struct Transfer {
    driver: Weak<Driver>,
    key: TransferKey,
}

impl Transfer {
    pub(crate) fn new(driver: &Rc<Driver>, key: TransferKey) -> Transfer {
        Transfer {
            driver: Rc::downgrade(driver),
            key,
        }
    }

    /// A number that identifies the transfer within its `Multi`.
    pub fn id(&self) -> u64 {
        self.key.id
    }

    /// Cancels the transfer: its completion reports
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled). Allowed from any
    /// callback, its own included. Returns false if it had already completed.
    ///
    /// Called outside libcurl's callbacks (from a completion, a timer, the
    /// loop's owner), the completion runs before `cancel` returns; called from
    /// a data, head or upload callback, it runs as soon as libcurl returned.
    pub fn cancel(&self) -> bool {
        self.driver.upgrade().is_some_and(|d| d.cancel(self.key))
    }

    /// Pauses receiving. The body resumes where it stopped after [`resume`](Transfer::resume).
    ///
    /// # Errors
    /// If the transfer has completed, or libcurl refuses.
    pub fn pause(&self) -> Result<(), Error> {
        self.driver
            .upgrade()
            .ok_or_else(Error::closed)?
            .pause(self.key)
    }

    /// Resumes a transfer paused with [`pause`](Transfer::pause) or by a data
    /// callback returning [`Flow::Pause`](crate::Flow::Pause).
    ///
    /// # Errors
    /// If the transfer has completed, or libcurl refuses.
    pub fn resume(&self) -> Result<(), Error> {
        self.driver
            .upgrade()
            .ok_or_else(Error::closed)?
            .resume(self.key)
    }

    /// Whether the transfer is still running (not completed, not cancelled).
    pub fn is_active(&self) -> bool {
        self.driver
            .upgrade()
            .is_some_and(|d| d.is_running(self.key))
    }
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("id", &self.key.id)
            .finish()
    }
}
