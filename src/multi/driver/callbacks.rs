//! [`Callbacks`]: what libcurl's socket, timer, open-socket and close-socket
//! callbacks reach through their user data. They only record what libcurl
//! wants in libuv handles and queue work; none of them calls into the driver
//! or back into libcurl (except `curl_multi_assign`, which is allowed there).

use super::{Deferred, Driver, Released};
use crate::curl::MultiRef;
use crate::error::Error;
use crate::multi::sockets::SocketTable;
use crate::uv::{Hook, Loop, Phase, Timer};
use curl_sys::{self as curl, curl_socket_t, CURL};
use libc::{c_int, c_long, c_void};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

/// libcurl timeouts from which the timer counts from the loop's cached time
/// (see `Timer::start_from_loop_time`): a transfer's or connection's
/// timeout, seconds away, where the loop turn's lag does not matter.
const COARSE_TIMEOUT_MS: c_long = 1000;

/// Whether libcurl `version_num` announces its timer again after a timeout
/// run found nothing due (a timer fired early): since 7.35.0, except
/// 8.10.0 up to 8.11.0, which kept the old expiry and so never called the
/// timer callback again for it (curl #15627, fixed in 8.11.1).
fn reannounces_early_timeouts(version_num: u32) -> bool {
    !(0x08_0A_00..0x08_0B_01).contains(&version_num)
}

/// Boxed by the driver, which keeps it until after `curl_multi_cleanup`
/// returned (see the field order of [`Driver`]).
pub(crate) struct Callbacks {
    pub(in crate::multi) uv: Loop,
    /// For the closures of the libuv handles, which call the driver back.
    driver: Weak<Driver>,
    /// The multi handle, for `curl_multi_assign`; `None` once cleaned up.
    multi: Cell<Option<MultiRef>>,
    pub(in crate::multi) sockets: SocketTable,
    timer: RefCell<Option<Timer>>,
    /// Whether long timeouts may count from the loop's cached time
    /// ([`reannounces_early_timeouts`]).
    coarse_timer: bool,
    /// Starts the transfers batched during the loop turn's I/O (see
    /// `Driver::start_batched`).
    batch_hook: RefCell<Option<Hook>>,
    /// Work for the driver to do once libcurl returned.
    pub(super) deferred: RefCell<VecDeque<Deferred>>,
    /// The driver's clone of the release token, dropped at teardown.
    released: RefCell<Option<Rc<Released>>>,
}

impl Callbacks {
    pub(super) fn new(
        uv: &Loop,
        driver: Weak<Driver>,
        multi: MultiRef,
        released: Rc<Released>,
    ) -> Callbacks {
        Callbacks {
            uv: uv.clone(),
            driver,
            multi: Cell::new(Some(multi)),
            sockets: SocketTable::new(crate::global::version_number()),
            timer: RefCell::new(None),
            coarse_timer: reannounces_early_timeouts(crate::global::version_number()),
            batch_hook: RefCell::new(None),
            deferred: RefCell::new(VecDeque::new()),
            released: RefCell::new(Some(released)),
        }
    }

    pub(super) fn set_timer(&self, timer: Timer) {
        *self.timer.borrow_mut() = Some(timer);
    }

    /// Opens the check hook that starts batched transfers (see
    /// `Driver::start_batched`), on the first batch: a `Multi` that never
    /// batches has no handle for it. Not once closed.
    pub(super) fn open_batch_hook(&self) -> Result<(), Error> {
        if self.batch_hook.borrow().is_some() {
            return Ok(());
        }
        let Some(token) = self.release_token() else {
            return Err(Error::closed());
        };
        let driver = self.driver.clone();
        let hook = Hook::start(&self.uv, Phase::AfterPoll, move || {
            let _released_after_me = &token;
            if let Some(driver) = driver.upgrade() {
                driver.start_batched();
            }
        })?;
        *self.batch_hook.borrow_mut() = Some(hook);
        Ok(())
    }

    pub(super) fn timer_pending(&self) -> bool {
        self.timer.borrow().as_ref().is_some_and(Timer::is_active)
    }

    /// Has the loop call libcurl (with a timeout action) on its next turn.
    pub(super) fn kick(&self) {
        if let Some(timer) = self.timer.borrow().as_ref() {
            timer.start(0);
        }
    }

    pub(super) fn release_token(&self) -> Option<Rc<Released>> {
        self.released.borrow().clone()
    }

    /// After `curl_multi_cleanup` returned: closes every libuv handle and
    /// lets go of the release token.
    pub(super) fn close(&self) {
        self.multi.set(None);
        self.sockets.close_all();
        drop(self.timer.borrow_mut().take());
        drop(self.batch_hook.borrow_mut().take());
        drop(self.released.borrow_mut().take());
    }

    /// libcurl's socket callback: watch `socket` for `what`.
    pub(crate) fn handle_socket(
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
        let watched = self
            .sockets
            .watch(&self.uv, socket, wanted, socketp.is_null(), || {
                let driver = self.driver.clone();
                let token = self.release_token();
                move |generation, result| {
                    let _released_after_me = &token;
                    if let Some(driver) = driver.upgrade() {
                        driver.on_socket_ready(socket, generation, result);
                    }
                }
            });
        match watched {
            Ok(Some(generation)) => {
                if let Some(multi) = self.multi.get() {
                    // SAFETY: `multi` is cleared only after curl_multi_cleanup
                    // returned. The value is echoed back to us as `socketp`
                    // (non-null: a known socket).
                    unsafe { multi.assign(socket, generation as *mut c_void) };
                }
            }
            Ok(None) => {}
            Err(error) => self.watch_failed(easy, socket, error),
        }
    }

    /// A socket cannot be watched: only the transfer on `easy` fails (never
    /// answer -1, which would fail every transfer of the multi).
    fn watch_failed(&self, easy: *mut CURL, socket: curl_socket_t, error: Error) {
        log::error!("uvcurl: cannot watch socket {socket}: {error}");
        self.deferred
            .borrow_mut()
            .push_back(Deferred::Fail(easy as usize, error));
        // libcurl wants no more calls from here: make sure the loop wakes to
        // run the queued failure.
        self.kick();
    }

    /// libcurl's timer callback: only arms or stops the libuv timer (calling
    /// libcurl from here, even for a 0 ms timeout, would recurse).
    pub(crate) fn handle_timer(&self, timeout_ms: c_long) {
        let timer = self.timer.borrow();
        let Some(timer) = timer.as_ref() else { return };
        if timeout_ms < 0 {
            log::trace!("uvcurl: timer stop");
            timer.stop();
        } else {
            log::trace!("uvcurl: timer in {timeout_ms} ms");
            if self.coarse_timer && timeout_ms >= COARSE_TIMEOUT_MS {
                // Fired early, libcurl announces the rest again.
                timer.start_from_loop_time(timeout_ms as u64);
            } else {
                timer.start(timeout_ms as u64);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reannounces_early_timeouts;

    #[test]
    fn long_timeouts_count_from_the_loop_time_only_where_libcurl_reannounces() {
        for (version, expected) in [
            (0x07_58_00, true),  // 7.88.0
            (0x08_09_01, true),  // 8.9.1
            (0x08_0A_00, false), // 8.10.0
            (0x08_0B_00, false), // 8.11.0
            (0x08_0B_01, true),  // 8.11.1
            (0x08_16_00, true),  // 8.22.0
        ] {
            assert_eq!(
                reannounces_early_timeouts(version),
                expected,
                "{version:#x}"
            );
        }
    }
}
