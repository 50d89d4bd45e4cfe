//! The write, header and read callbacks libcurl calls for a transfer uvcurl
//! configured, and the user callbacks they run.
//!
//! Each `extern "C"` function runs its whole body inside
//! [`panic::trampoline`](crate::panic::trampoline) and each user callback
//! inside [`panic::in_transfer`](crate::panic::in_transfer), so a panic in
//! user code fails the transfer, and one in uvcurl's own code aborts it and
//! is resumed from `Loop::run`.

use super::{Sink, TransferState};
use crate::curl::sys;
use crate::error::{Error, ErrorKind};
use crate::request::Flow;
use curl_sys as curl;
use libc::{c_char, c_void, size_t};

impl TransferState {
    /// Runs a user callback, turning a panic into this transfer's failure.
    fn guarded<T>(&self, place: &str, f: impl FnOnce() -> T) -> Option<T> {
        crate::panic::in_transfer(place, f)
            .map_err(|error| self.fail(error))
            .ok()
    }

    /// Calls the `on_head` callback once; false if it asked to stop.
    #[inline]
    fn deliver_head(&self) -> bool {
        self.head_delivered.replace(true) || self.deliver_head_now()
    }

    /// [`deliver_head`](Self::deliver_head) the first time (out of line:
    /// every later chunk only reads the flag).
    #[inline(never)]
    fn deliver_head_now(&self) -> bool {
        let Some(extras) = &self.extras else {
            return true;
        };
        let Some(mut callback) = extras.on_head.borrow_mut().take() else {
            return true;
        };
        let mut head = self.head.borrow().clone();
        if head.status == 0 {
            head.status = self.easy.info_long(curl::CURLINFO_RESPONSE_CODE) as u16;
        }
        match self.guarded("head", || callback(&head)) {
            Some(Flow::Cancel) => {
                self.flags.cancel_requested.set(true);
                false
            }
            Some(Flow::Abort) => {
                self.fail(Error::new(
                    ErrorKind::Aborted,
                    "aborted by the head callback",
                ));
                false
            }
            // A cancel from inside the callback (`Transfer::cancel`, a closed
            // `Multi`) also stops the chunk that brought the head.
            Some(_) => !self.is_stopped(),
            None => false,
        }
    }

    /// At a successful end: delivers the head if no body chunk did.
    pub fn finish_head(&self) -> Result<(), Error> {
        if self.deliver_head() {
            return Ok(());
        }
        Err(self.flags.failure.take().map_or_else(
            || Error::new(ErrorKind::Aborted, "aborted by the head callback"),
            |error| *error,
        ))
    }

    fn header(&self, line: &[u8]) -> size_t {
        if self.is_stopped() {
            return 0;
        }
        match self.head.try_borrow_mut() {
            Ok(mut head) => {
                if head.push_line(line) {
                    let seen = self.status_lines.get();
                    self.status_lines.set(seen.saturating_add(1));
                }
            }
            // A line not seen might have been a status line.
            Err(_) => self.status_lines.set(u8::MAX),
        }
        line.len()
    }

    fn write(&self, chunk: &[u8]) -> size_t {
        if self.is_stopped() || !self.deliver_head() {
            return 0;
        }
        let Ok(mut sink) = self.sink.try_borrow_mut() else {
            // Re-entered from inside its own data callback (unpaused
            // there): defer.
            return sys::CURL_WRITEFUNC_PAUSE;
        };
        match &mut *sink {
            Sink::Collect(buffer) => {
                // `is_empty`, not a zero capacity: a recycled buffer (see
                // `remote::recycle`) arrives empty with some capacity.
                if buffer.is_empty() {
                    // One allocation for the whole body when its length is
                    // known (none if the buffer already holds that much).
                    let announced = self
                        .easy
                        .info_off_t(sys::CURLINFO_CONTENT_LENGTH_DOWNLOAD_T);
                    let expected = usize::try_from(announced).unwrap_or(0).min(64 << 20);
                    let wanted = expected.max(chunk.len());
                    // A recycled buffer far larger than this body would stay
                    // with the response: allocate to size instead.
                    if buffer.capacity() > 2 * wanted + 256 {
                        *buffer = Vec::new();
                    }
                    buffer.reserve(wanted);
                }
                buffer.extend_from_slice(chunk);
                chunk.len()
            }
            Sink::Stream(callback) => match self.guarded("data", || callback(chunk)) {
                Some(Flow::Continue) => chunk.len(),
                Some(Flow::Cancel) => {
                    self.flags.cancel_requested.set(true);
                    0
                }
                Some(Flow::Pause) => {
                    self.flags.paused.set(true);
                    self.flags.was_paused.set(true);
                    sys::CURL_WRITEFUNC_PAUSE
                }
                Some(Flow::Abort) => {
                    self.fail(Error::new(
                        ErrorKind::Aborted,
                        "aborted by the data callback",
                    ));
                    0
                }
                None => 0,
            },
            Sink::External => 0,
        }
    }

    fn read(&self, buffer: &mut [u8]) -> size_t {
        if self.is_stopped() {
            return sys::CURL_READFUNC_ABORT;
        }
        let Some(extras) = &self.extras else {
            return 0;
        };
        let mut upload = extras.upload.borrow_mut();
        let Some(reader) = upload.as_mut() else {
            return 0;
        };
        match self.guarded("upload reader", || loop {
            match reader.read(buffer) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        }) {
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                self.fail(Error::new(
                    ErrorKind::Upload,
                    format!("reading the upload body: {e}"),
                ));
                sys::CURL_READFUNC_ABORT
            }
            None => sys::CURL_READFUNC_ABORT,
        }
    }
}

/// Recovers the transfer state from a callback's user data: the easy
/// handle's slot, which names the running transfer.
///
/// # Safety
/// `data` is an easy handle's `HandleBox` (set by `options::configure`) whose
/// transfer, if any, is alive (the slot is set when the state is made and
/// cleared before it is freed).
pub(crate) unsafe fn state<'a>(data: *mut c_void) -> Option<&'a TransferState> {
    // SAFETY: per the contract.
    let user = unsafe { &*(data as *const crate::curl::HandleBox) }.user();
    // SAFETY: per the contract, null or a live state.
    unsafe { (user as *const TransferState).as_ref() }
}

/// The bytes libcurl hands to a write or header callback.
///
/// # Safety
/// libcurl hands `size * nmemb` readable bytes at `ptr`, valid for the call.
unsafe fn incoming<'a>(ptr: *mut c_char, size: size_t, nmemb: size_t) -> &'a [u8] {
    let len = size.saturating_mul(nmemb);
    // SAFETY: per the contract.
    unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
}

pub(super) extern "C" fn on_write(
    ptr: *mut c_char,
    size: size_t,
    nmemb: size_t,
    data: *mut c_void,
) -> size_t {
    // SAFETY: libcurl's write-callback arguments; WRITEDATA is the handle's slot.
    unsafe {
        deliver(
            ptr,
            size,
            nmemb,
            data,
            "the write callback",
            TransferState::write,
        )
    }
}

pub(super) extern "C" fn on_header(
    ptr: *mut c_char,
    size: size_t,
    nmemb: size_t,
    data: *mut c_void,
) -> size_t {
    // SAFETY: libcurl's header-callback arguments; HEADERDATA is the handle's slot.
    unsafe {
        deliver(
            ptr,
            size,
            nmemb,
            data,
            "the header callback",
            TransferState::header,
        )
    }
}

/// The body of the write and header trampolines: hands libcurl's bytes to
/// `take` inside the panic boundary.
///
/// # Safety
/// `ptr` holds `size * nmemb` readable bytes for the call, and `data` is
/// the easy handle's slot naming a live `TransferState` (the callback's user
/// data).
unsafe fn deliver(
    ptr: *mut c_char,
    size: size_t,
    nmemb: size_t,
    data: *mut c_void,
    place: &str,
    take: fn(&TransferState, &[u8]) -> size_t,
) -> size_t {
    // SAFETY: per the contract, our state, alive while the handle is in use.
    let Some(state) = (unsafe { state(data) }) else {
        return 0; // no transfer (cannot happen: libcurl runs none)
    };
    crate::panic::trampoline(state.uv.inner(), place, 0, || {
        // SAFETY: per the contract, libcurl passes bytes of that size.
        take(state, unsafe { incoming(ptr, size, nmemb) })
    })
}

pub(super) extern "C" fn on_read(
    ptr: *mut c_char,
    size: size_t,
    nmemb: size_t,
    data: *mut c_void,
) -> size_t {
    let abort = sys::CURL_READFUNC_ABORT;
    // SAFETY: READDATA is the handle's slot, naming our live state.
    let Some(state) = (unsafe { state(data) }) else {
        return abort;
    };
    crate::panic::trampoline(state.uv.inner(), "the read callback", abort, || {
        let len = size.saturating_mul(nmemb);
        // SAFETY: libcurl hands `len` writable bytes at `ptr`, valid for the call.
        let buffer = unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) };
        state.read(buffer)
    })
}
