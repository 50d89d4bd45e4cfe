//! [`Multi`]: an owned `CURLM`.

use super::{check_multi, sys};
use crate::error::{Error, ErrorKind};
use curl_sys::{self as curl, curl_socket_t, CURL, CURLM};
use libc::{c_int, c_long, c_void};
use std::ptr::NonNull;

/// A libcurl multi handle; `Drop` calls `curl_multi_cleanup`, which may still
/// call the socket callback: whatever its user data points at must outlive
/// this value.
pub(crate) struct Multi {
    raw: NonNull<CURLM>,
}

/// One `CURLMSG_DONE` message, copied out of libcurl's `CURLMsg` (which is
/// invalid after the next remove or cleanup).
pub(crate) struct MultiMessage {
    pub easy: *mut CURL,
    pub code: curl::CURLcode,
}

/// A multi handle's address without ownership: what the socket callback
/// needs for `curl_multi_assign`, which is allowed there (during
/// `curl_multi_cleanup` too).
#[derive(Clone, Copy)]
pub(crate) struct MultiRef(NonNull<CURLM>);

impl MultiRef {
    /// `curl_multi_assign`: `value` comes back as the socket callback's
    /// `socketp`. Its result is ignored: libcurl forgets the value at
    /// `CURL_POLL_REMOVE` anyway, and 8.10.0 refused it during cleanup.
    ///
    /// # Safety
    /// The multi handle has not been cleaned up (`curl_multi_cleanup` may
    /// still be running).
    pub unsafe fn assign(self, socket: curl_socket_t, value: *mut c_void) {
        // SAFETY: a live multi per the contract; the value is only echoed back.
        unsafe { curl::curl_multi_assign(self.0.as_ptr(), socket, value) };
    }
}

/// What the multi's callbacks are and what they receive.
pub(crate) struct MultiCallbacks {
    pub socket: curl::curl_socket_callback,
    pub timer: curl::curl_multi_timer_callback,
    /// `CURLMOPT_SOCKETDATA` and `CURLMOPT_TIMERDATA`.
    pub data: *mut c_void,
}

impl Multi {
    /// A new multi handle.
    pub fn new() -> Result<Multi, Error> {
        super::global::init();
        // SAFETY: global init done; no other preconditions.
        let raw = unsafe { curl::curl_multi_init() };
        NonNull::new(raw).map(|raw| Multi { raw }).ok_or_else(|| {
            Error::new(
                ErrorKind::OutOfMemory,
                "curl_multi_init failed (out of memory)",
            )
        })
    }

    /// The raw handle (for callers configuring it themselves).
    pub fn raw(&self) -> *mut CURLM {
        self.raw.as_ptr()
    }

    /// Installs the socket and timer callbacks.
    ///
    /// # Safety
    /// `callbacks.data` is what the callbacks expect, and stays valid until
    /// this multi handle has been cleaned up.
    pub unsafe fn set_callbacks(&self, callbacks: MultiCallbacks) -> Result<(), Error> {
        let raw = self.raw();
        // SAFETY: a live multi handle; each option gets the type it expects;
        // the data pointer's lifetime is the caller's promise.
        let codes = unsafe {
            [
                curl::curl_multi_setopt(raw, curl::CURLMOPT_SOCKETFUNCTION, callbacks.socket),
                curl::curl_multi_setopt(raw, curl::CURLMOPT_SOCKETDATA, callbacks.data),
                curl::curl_multi_setopt(raw, curl::CURLMOPT_TIMERFUNCTION, callbacks.timer),
                curl::curl_multi_setopt(raw, curl::CURLMOPT_TIMERDATA, callbacks.data),
            ]
        };
        first_error(&codes)
    }

    /// Sets the connection limits and HTTP/2 multiplexing.
    pub fn set_limits(
        &self,
        multiplex: bool,
        max_total_connections: usize,
        max_host_connections: usize,
        max_concurrent_streams: usize,
    ) -> Result<(), Error> {
        let raw = self.raw();
        let pipelining: c_long = if multiplex {
            curl::CURLPIPE_MULTIPLEX
        } else {
            0
        };
        // SAFETY: a live multi handle; each option gets a long.
        let codes = unsafe {
            [
                curl::curl_multi_setopt(raw, curl::CURLMOPT_PIPELINING, pipelining),
                curl::curl_multi_setopt(
                    raw,
                    curl::CURLMOPT_MAX_TOTAL_CONNECTIONS,
                    max_total_connections as c_long,
                ),
                curl::curl_multi_setopt(
                    raw,
                    curl::CURLMOPT_MAX_HOST_CONNECTIONS,
                    max_host_connections as c_long,
                ),
                curl::curl_multi_setopt(
                    raw,
                    sys::CURLMOPT_MAX_CONCURRENT_STREAMS,
                    max_concurrent_streams as c_long,
                ),
            ]
        };
        first_error(&codes)
    }

    /// Sets the connection cache's size (`CURLMOPT_MAXCONNECTS`; 0 is
    /// libcurl's own guess).
    pub fn set_connection_cache(&self, max: usize) -> Result<(), Error> {
        let max = c_long::try_from(max).unwrap_or(c_long::MAX);
        // SAFETY: a live multi handle; the option takes a long.
        let code = unsafe { curl::curl_multi_setopt(self.raw(), curl::CURLMOPT_MAXCONNECTS, max) };
        first_error(&[code])
    }

    /// `curl_multi_add_handle`.
    ///
    /// # Safety
    /// `easy` is a valid easy handle that stays valid until removed.
    pub unsafe fn add(&self, easy: *mut CURL) -> Result<(), Error> {
        // SAFETY: live multi; `easy` per the contract.
        check_multi(
            unsafe { curl::curl_multi_add_handle(self.raw(), easy) },
            "curl_multi_add_handle",
        )
    }

    /// `curl_multi_remove_handle`; an easy handle that was never added is
    /// answered with an error, which is of no interest.
    ///
    /// # Safety
    /// `easy` is a valid easy handle.
    pub unsafe fn remove(&self, easy: *mut CURL) {
        // SAFETY: live multi; `easy` per the contract.
        unsafe { curl::curl_multi_remove_handle(self.raw(), easy) };
    }

    /// `curl_multi_socket_action` with a valid `running_handles` pointer
    /// (null crashes libcurl before 8.9.1).
    pub fn socket_action(&self, socket: curl_socket_t, mask: c_int) -> Result<(), Error> {
        let mut running = 0;
        // SAFETY: live multi and a valid out pointer.
        let rc = unsafe { curl::curl_multi_socket_action(self.raw(), socket, mask, &mut running) };
        check_multi(rc, "curl_multi_socket_action")
    }

    /// A non-owning copy of this handle, for the socket callback.
    pub fn as_ref(&self) -> MultiRef {
        MultiRef(self.raw)
    }

    /// The next "transfer done" message, skipping any other kind.
    pub fn next_done(&self) -> Option<MultiMessage> {
        loop {
            let mut left = 0;
            // SAFETY: live multi; allowed anywhere. The message is copied at once,
            // before any call that could invalidate it.
            unsafe {
                let msg = curl::curl_multi_info_read(self.raw(), &mut left);
                if msg.is_null() {
                    return None;
                }
                if (*msg).msg == curl::CURLMSG_DONE {
                    return Some(MultiMessage {
                        easy: (*msg).easy_handle,
                        code: (*msg).data as usize as curl::CURLcode,
                    });
                }
            }
        }
    }

    /// Waits at most `timeout_ms` for `fd` to become readable, as
    /// `curl_multi_wait` with one extra descriptor.
    pub fn wait_readable(&self, fd: c_int, timeout_ms: c_int) -> Result<(), Error> {
        let mut wait = curl::curl_waitfd {
            fd,
            events: curl::CURL_WAIT_POLLIN,
            revents: 0,
        };
        let mut n = 0;
        // SAFETY: live multi, one valid waitfd, valid out pointer.
        let rc = unsafe { curl::curl_multi_wait(self.raw(), &mut wait, 1, timeout_ms, &mut n) };
        check_multi(rc, "curl_multi_wait")
    }
}

fn first_error(codes: &[curl::CURLMcode]) -> Result<(), Error> {
    match codes.iter().find(|&&rc| rc != curl::CURLM_OK) {
        Some(&rc) => check_multi(rc, "curl_multi_setopt"),
        None => Ok(()),
    }
}

impl Drop for Multi {
    fn drop(&mut self) {
        // SAFETY: created by curl_multi_init, cleaned up exactly once; the owner
        // removed every easy handle before and keeps the callbacks' data alive.
        unsafe { curl::curl_multi_cleanup(self.raw()) };
    }
}
