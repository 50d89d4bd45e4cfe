//! One transfer: its easy handle and the state libcurl's callbacks for it
//! reach, from before the handle is added to the multi until after it has
//! been removed.
//!
//! - this file: [`TransferState`], its key, and what owns what;
//! - `options`: a [`Request`] turned into easy-handle options;
//! - `proxy_env`: whether the environment names proxies;
//! - `trampolines`: the write/header/read callbacks libcurl calls;
//! - `readback`: the outcome and the [`Response`] read back at the end.

mod options;
mod proxy_env;
mod readback;
mod trampolines;

pub(crate) use options::{OptionSet, SharedOptions};
pub(crate) use proxy_env::ProxyEnv;
pub(crate) use trampolines::state as state_of_slot;

use crate::curl::{check_url_for_transfer, Easy, EasyPool, LastOrigin, Url};
use crate::error::Error;
use crate::request::{Body, DataCallback, HeadCallback, Request};
use crate::response::{Head, Response};
use crate::uv::Loop;
use curl_sys as curl;
use std::cell::{Cell, RefCell};
use std::io::Read;
use std::ptr::NonNull;
use std::rc::Rc;

/// An option set as a transfer and the easy pool hold it: shared, so that
/// handles configured alike (most of a driver's) hold one set between them,
/// and a handle moving between transfer and pool moves a pointer.
pub(crate) type KeptOptions = Rc<OptionSet>;

/// Names a transfer of a driver: the address of its easy handle (the slot in
/// the driver's table) and a number never reused, so a key outliving its
/// transfer cannot reach a later one on the same handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TransferKey {
    pub slot: usize,
    pub id: u64,
}

/// What a driver lends each transfer it builds.
#[derive(Clone, Copy)]
pub(crate) struct Lent<'a> {
    pub uv: &'a Loop,
    pub share: Option<&'a crate::Share>,
    /// Whether the environment named proxies when the driver was made.
    pub proxy_env: ProxyEnv,
    /// Idle easy handles.
    pub pool: &'a Rc<EasyPool<KeptOptions>>,
    pub last_origin: &'a LastOrigin,
    /// The option set last made, for the next handle configured alike.
    pub option_sets: &'a SharedOptions,
}

/// Where the body goes.
enum Sink {
    Collect(Vec<u8>),
    Stream(DataCallback),
    /// An external easy handle: its own callbacks handle the body.
    External,
}

/// Who hears about the end of the transfer.
pub(crate) enum Completion {
    /// A transfer uvcurl configured from a [`Request`].
    Response(Box<dyn FnOnce(Result<Response, Error>)>),
    /// The same, for a response handed to another thread: its details are
    /// read on the loop thread before the callback (see `response::details`),
    /// so the other thread only ever reads what it was handed.
    Remote(Box<dyn FnOnce(Result<Response, Error>)>),
    /// A transfer on an external easy handle (the caller reads it back).
    External(Box<dyn FnOnce(Result<(), Error>)>),
}

/// Everything libcurl's callbacks for one easy handle need. Lives in an `Rc`
/// owned by the driver; its address is in the easy handle's slot, which the
/// callbacks' user data point at.
///
/// Fields drop in declaration order, and that order matters: `easy` goes
/// first (back to the pool, reset or kept configured, or left to its external
/// owner), so that nothing it points at (URL, POST body, share handle, this
/// state) is freed while a transfer can still use it. (The error buffer and
/// the user-data slot belong to the easy handle; the header list to the
/// option set, which goes to the pool with a handle kept configured.)
pub(crate) struct TransferState {
    easy: Easy<KeptOptions>,
    pub id: u64,
    /// The loop whose `run` resumes a panic of uvcurl's own trampoline code.
    uv: Loop,
    sink: RefCell<Sink>,
    head: RefCell<Head>,
    head_delivered: Cell<bool>,
    /// How many status lines (`HTTP/...`) the header callback saw, up to 255:
    /// every response of the transfer brings one (redirects too; HTTP/0.9,
    /// which has none, is never allowed).
    status_lines: Cell<u8>,
    /// The URL as the request gave it: the response's effective URL when
    /// libcurl reports the same (no redirect, nothing normalized).
    url_text: Cell<String>,
    pub completion: Cell<Option<Completion>>,
    /// How the run is going: cancels, failures, pauses, refused sockets.
    pub flags: RunFlags,
    /// What few transfers have (a body, a head callback, a URL that is not
    /// plain, values kept alive), boxed: `None` for a plain `GET`, so a transfer in
    /// flight costs less memory.
    extras: Option<Box<Extras>>,
    /// The options set on `easy` (`None`: an external handle).
    options: Option<KeptOptions>,
    /// Whether `easy` may go back to the pool still configured: no body
    /// (whose pointer would outlive the transfer).
    may_keep_options: bool,
}

/// The parts of a [`TransferState`] that few transfers have.
struct Extras {
    on_head: RefCell<Option<HeadCallback>>,
    upload: RefCell<Option<Box<dyn Read>>>,
    /// `CURLOPT_POSTFIELDS`, which libcurl does not copy.
    post_body: Option<Vec<u8>>,
    /// `CURLOPT_CURLU`, read by the handle (`None`: a plain URL, set as a
    /// string, which libcurl copies).
    url: Option<Url>,
    /// Values the request asked to keep alive until the transfer is gone.
    _keep_alive: Vec<Box<dyn std::any::Any>>,
}

/// What a transfer's callbacks and the driver learn while it runs; every
/// transfer starts with the default (nothing happened yet).
pub(crate) struct RunFlags {
    pub cancel_requested: Cell<bool>,
    /// Set when the `Multi` is closed while libcurl is on the stack: the
    /// transfer takes no more data and completes `Cancelled`.
    pub multi_closed: Cell<bool>,
    /// `CURLOPT_OPENSOCKETDATA` points at the transfer state; this is the
    /// driver's context the open-socket callback needs (set by the driver).
    pub socket_context: Cell<*const libc::c_void>,
    /// A socket numbered 1024 or above that the open-socket callback refused
    /// because the linked libcurl can only `select()`.
    pub refused_high_socket: Cell<Option<i32>>,
    /// Set by a callback that stopped the transfer (panic, abort, upload
    /// error); boxed, as it is rare.
    pub failure: Cell<Option<Box<Error>>>,
    pub paused: Cell<bool>,
    /// Set when the transfer ended cleanly (libcurl's `CURLE_OK`, no cancel,
    /// no callback failure, never paused): only then is `easy` kept
    /// configured, so a handle in an unusual state is always reset.
    pub ended_cleanly: Cell<bool>,
    /// The transfer was paused at some point.
    pub was_paused: Cell<bool>,
}

impl Default for RunFlags {
    fn default() -> RunFlags {
        RunFlags {
            cancel_requested: Cell::default(),
            multi_closed: Cell::default(),
            socket_context: Cell::new(std::ptr::null()),
            refused_high_socket: Cell::default(),
            failure: Cell::default(),
            paused: Cell::default(),
            ended_cleanly: Cell::default(),
            was_paused: Cell::default(),
        }
    }
}

impl Drop for TransferState {
    fn drop(&mut self) {
        // No callback may reach this state any more (none can: the handle is
        // out of the multi).
        self.easy.set_user(std::ptr::null());
        // Runs before the fields drop (`easy` first, back to the pool).
        if self.may_keep_options && self.flags.ended_cleanly.get() && !self.flags.was_paused.get() {
            if let Some(options) = self.options.take() {
                self.easy.release_configured(options);
            }
        }
    }
}

impl TransferState {
    /// The URL as libcurl parsed it, unless it was plain.
    fn parsed_url(&self) -> Option<&Url> {
        self.extras.as_ref()?.url.as_ref()
    }

    /// Whether the transfer was cancelled or its `Multi` closed: its
    /// callbacks then stop it at once (no further data reaches user code).
    pub fn is_stopped(&self) -> bool {
        self.flags.cancel_requested.get() || self.flags.multi_closed.get()
    }

    /// Builds the easy handle for `request`, taking what it needs out of it
    /// (taken by reference: a request is large to move); the transfer is
    /// not added yet.
    ///
    /// # Errors
    /// The request's first builder error, an invalid or disallowed URL, or an
    /// option libcurl refuses.
    pub fn from_request(
        request: &mut Request,
        id: u64,
        on_done: Completion,
        lent: &Lent<'_>,
    ) -> Result<Rc<TransferState>, Error> {
        let Lent {
            uv,
            share,
            proxy_env,
            pool,
            last_origin,
            option_sets,
        } = *lent;
        if let Some(error) = request.error.take() {
            return Err(error);
        }
        let url = check_url_for_transfer(&request.url, &request.protocols, last_origin)?;
        let (https, parsed) = (url.https, url.parsed.is_some());
        let may_keep_options = matches!(request.body, Body::Empty);
        let fits = |kept: &KeptOptions| kept.matches(request, https, parsed, share, proxy_env);
        let (easy, kept) = pool.take(may_keep_options.then_some(fits))?;
        // A handle kept configured comes with the option set it was kept
        // with (equal to the request's: the same share handle too), and what
        // that set owns (its header list); the request's options are left
        // in it, to be dropped with it (as when the last set made is used).
        let options = match kept {
            Some(kept) => kept,
            // A handle to configure: with the set last made if the request's
            // is equal, else with a new one.
            None => option_sets.for_request(request, https, parsed, share, proxy_env),
        };
        let (upload, upload_len, post_body) =
            match std::mem::replace(&mut request.body, Body::Empty) {
                Body::Empty => (None, None, None),
                Body::Bytes(bytes) => (None, None, Some(bytes)),
                Body::Reader { reader, len } => (Some(reader), len, None),
            };
        let sink = match request.on_data.take() {
            Some(callback) => Sink::Stream(callback),
            // A recycled body buffer (emptied), if the request brought one.
            None => {
                let mut body = std::mem::take(&mut request.buffers.body);
                body.clear();
                Sink::Collect(body)
            }
        };
        // (Without any, there is nothing to box: a plain `GET`.)
        let has_extras = request.on_head.is_some()
            || upload.is_some()
            || post_body.is_some()
            || url.parsed.is_some()
            || !request.keep_alive.is_empty();
        let extras = has_extras.then(|| {
            Box::new(Extras {
                on_head: RefCell::new(request.on_head.take()),
                upload: RefCell::new(upload),
                post_body,
                url: url.parsed,
                _keep_alive: std::mem::take(&mut request.keep_alive),
            })
        });
        let state = Rc::new(TransferState {
            easy,
            id,
            uv: uv.clone(),
            sink: RefCell::new(sink),
            head: RefCell::new(Head::with_buffer(std::mem::take(&mut request.buffers.head))),
            head_delivered: Cell::new(false),
            status_lines: Cell::new(0),
            url_text: Cell::new(String::new()),
            completion: Cell::new(Some(on_done)),
            flags: RunFlags::default(),
            extras,
            options: Some(options),
            may_keep_options,
        });
        state.easy.set_user(Rc::as_ptr(&state).cast());
        // On error `state` is dropped here, which returns the easy handle
        // (reset: the transfer did not end cleanly).
        if let Some(options) = &state.options {
            options::configure(&state, options, upload_len, &request.url)?;
        }
        state.url_text.set(std::mem::take(&mut request.url));
        Ok(state)
    }

    /// Wraps an external (caller-configured) easy handle; uvcurl never frees
    /// it, and sets only its open/close-socket options while it runs (the
    /// driver resets them before the completion).
    ///
    /// # Safety
    /// `easy` is a valid easy handle that stays valid until the transfer's
    /// completion ran.
    pub unsafe fn external(
        easy: NonNull<curl::CURL>,
        id: u64,
        on_done: Completion,
        uv: &Loop,
    ) -> TransferState {
        TransferState {
            // SAFETY: per the contract.
            easy: unsafe { Easy::external(easy) },
            id,
            uv: uv.clone(),
            sink: RefCell::new(Sink::External),
            head: RefCell::new(Head::default()),
            head_delivered: Cell::new(true),
            status_lines: Cell::new(0),
            url_text: Cell::new(String::new()),
            completion: Cell::new(Some(on_done)),
            flags: RunFlags::default(),
            extras: None,
            options: None,
            may_keep_options: false,
        }
    }

    /// The easy handle.
    pub fn easy(&self) -> &Easy<KeptOptions> {
        &self.easy
    }

    /// Whether the transfer has completed (its completion was taken).
    pub fn completed(&self) -> bool {
        let completion = self.completion.take();
        let completed = completion.is_none();
        self.completion.set(completion);
        completed
    }

    /// This transfer's key in its driver.
    pub fn key(&self) -> TransferKey {
        TransferKey {
            slot: self.easy.raw() as usize,
            id: self.id,
        }
    }

    /// Records the first reason a callback stopped the transfer.
    fn fail(&self, error: Error) {
        let first = self.flags.failure.take().unwrap_or_else(|| Box::new(error));
        self.flags.failure.set(Some(first));
    }

    /// The request body given as bytes, if any.
    fn post_body(&self) -> Option<&Vec<u8>> {
        self.extras.as_ref()?.post_body.as_ref()
    }

    /// Whether the request body comes from a reader.
    fn has_upload(&self) -> bool {
        self.extras
            .as_ref()
            .is_some_and(|extras| extras.upload.borrow().is_some())
    }
}

#[cfg(test)]
mod tests {
    /// uvcurl's memory per transfer in flight beyond libcurl's own is to stay
    /// under 1 KiB: the state, its error buffer (256 bytes) and the socket
    /// watch; the option set is shared by the handles configured alike.
    /// (The state was 936 bytes with the option set stored twice, and every
    /// rare part inline; 384 with the set inline; 256 with the request's URL
    /// text; 232 now, which with the `Rc`'s counts is a 256-byte malloc
    /// chunk.)
    #[test]
    fn transfer_state_stays_small() {
        let size = std::mem::size_of::<super::TransferState>();
        assert!(size <= 232, "TransferState is {size} bytes");
        let options = std::mem::size_of::<super::OptionSet>();
        // (8 of them hold the share handle, which a Client's transfers set.)
        assert!(options <= 136, "OptionSet is {options} bytes");
    }
}
