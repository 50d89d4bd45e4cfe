//! One transfer's easy handle and the state its libcurl callbacks reach:
//! turning a [`Request`] into easy-handle options, the write/header/read
//! trampolines, and the [`Response`] read back at the end.

use crate::error::{Error, ErrorKind};
use crate::request::{Body, DataCallback, Flow, HeadCallback, HttpVersionPref, Request};
use crate::response::{Head, HttpVersion, Response, Timings};
use crate::sys;
use crate::uv::panic_message;
use curl_sys::{self as curl, CURL};
use libc::{c_char, c_long, c_void, size_t};
use std::cell::{Cell, RefCell, UnsafeCell};
use std::ffi::{CStr, CString};
use std::io::Read;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

/// Where the body goes.
enum Sink {
    Collect(RefCell<Vec<u8>>),
    Stream(RefCell<DataCallback>),
    /// A caller-configured easy handle: its own callbacks handle the body.
    Foreign,
}

/// Who hears about the end of the transfer.
pub(crate) enum Completion {
    Response(Box<dyn FnOnce(Result<Response, Error>)>),
    Raw(Box<dyn FnOnce(Result<(), Error>)>),
}

/// Everything libcurl's callbacks for one easy handle need. Lives in an `Rc`
/// owned by the driver from before the handle is added to the multi until
/// after it has been removed; its address is the callbacks' user data.
pub(crate) struct TransferState {
    pub id: u64,
    pub easy: *mut CURL,
    /// We created the easy handle and clean it up on drop.
    owned: bool,
    sink: Sink,
    head: RefCell<Head>,
    on_head: RefCell<Option<HeadCallback>>,
    head_delivered: Cell<bool>,
    upload: RefCell<Option<Box<dyn Read>>>,
    /// Kept alive for CURLOPT_POSTFIELDS, which libcurl does not copy.
    _post_body: Option<Vec<u8>>,
    header_list: Cell<*mut curl::curl_slist>,
    errbuf: Box<UnsafeCell<[u8; curl::CURL_ERROR_SIZE]>>,
    pub completion: RefCell<Option<Completion>>,
    pub cancel_requested: Cell<bool>,
    /// Set by a callback that stopped the transfer (panic, abort, upload error).
    failure: RefCell<Option<Error>>,
    pub paused: Cell<bool>,
    /// Keeps the share handle alive until after the easy handle (fields drop
    /// after `Drop::drop` ran curl_easy_cleanup).
    share: Option<crate::Share>,
    /// Values the request asked to keep until the transfer is gone.
    _keep: Vec<Box<dyn std::any::Any>>,
    /// The parsed URL the easy handle reads (dropped after it).
    url: Option<ParsedUrl>,
    /// Where an owned easy handle goes back to for reuse.
    pool: Option<Rc<EasyPool>>,
}

impl TransferState {
    /// Builds the easy handle for `request`; the transfer is not added yet.
    ///
    /// # Errors
    /// The request's first builder error, an invalid or disallowed URL, or an
    /// option libcurl refuses.
    pub fn from_request(
        mut request: Request,
        id: u64,
        on_done: Completion,
        share: Option<&crate::Share>,
        pool: &Rc<EasyPool>,
    ) -> Result<std::rc::Rc<TransferState>, Error> {
        if let Some(error) = request.error.take() {
            return Err(error);
        }
        let url = check_url(&request.url, &request.protocols)?;
        let tls = url.scheme == "https";
        let easy = pool.take();
        if easy.is_null() {
            return Err(Error::new(ErrorKind::Other, "curl_easy_init failed"));
        }
        let (upload, upload_len, post_body) =
            match std::mem::replace(&mut request.body, Body::Empty) {
                Body::Empty => (None, None, None),
                Body::Bytes(bytes) => (None, None, Some(bytes)),
                Body::Reader { reader, len } => (Some(reader), len, None),
            };
        let sink = match request.on_data.take() {
            Some(callback) => Sink::Stream(RefCell::new(callback)),
            None => Sink::Collect(RefCell::new(Vec::new())),
        };
        let state = std::rc::Rc::new(TransferState {
            id,
            easy,
            owned: true,
            sink,
            head: RefCell::new(Head::default()),
            on_head: RefCell::new(request.on_head.take()),
            head_delivered: Cell::new(false),
            upload: RefCell::new(upload),
            _post_body: post_body,
            header_list: Cell::new(std::ptr::null_mut()),
            errbuf: Box::new(UnsafeCell::new([0; curl::CURL_ERROR_SIZE])),
            completion: RefCell::new(Some(on_done)),
            cancel_requested: Cell::new(false),
            failure: RefCell::new(None),
            paused: Cell::new(false),
            share: share.cloned(),
            _keep: std::mem::take(&mut request.keep),
            url: Some(url),
            pool: Some(pool.clone()),
        });
        // On error `state` is dropped here, which cleans up the easy handle.
        state.configure(&request, upload_len, tls)?;
        if let Some(share) = &state.share {
            state.set_ptr(curl::CURLOPT_SHARE, share.raw().cast())?;
        }
        Ok(state)
    }

    /// Wraps a caller-configured easy handle; uvcurl sets no option on it.
    pub fn foreign(easy: *mut CURL, id: u64, on_done: Completion) -> TransferState {
        TransferState {
            id,
            easy,
            owned: false,
            sink: Sink::Foreign,
            head: RefCell::new(Head::default()),
            on_head: RefCell::new(None),
            head_delivered: Cell::new(true),
            upload: RefCell::new(None),
            _post_body: None,
            header_list: Cell::new(std::ptr::null_mut()),
            errbuf: Box::new(UnsafeCell::new([0; curl::CURL_ERROR_SIZE])),
            completion: RefCell::new(Some(on_done)),
            cancel_requested: Cell::new(false),
            failure: RefCell::new(None),
            paused: Cell::new(false),
            share: None,
            _keep: Vec::new(),
            url: None,
            pool: None,
        }
    }

    /// Sets the easy handle's options from `r`. `tls` tells whether the URL
    /// is https: only then can HTTP/2 be negotiated, and waiting for a
    /// connection that may multiplex pays off.
    fn configure(&self, r: &Request, upload_len: Option<u64>, tls: bool) -> Result<(), Error> {
        let me = self as *const TransferState as *mut c_void;
        let write: curl::curl_write_callback = on_write;
        let header: curl::curl_write_callback = on_header;
        let read: curl::curl_read_callback = on_read;
        if let Some(url) = &self.url {
            self.set_ptr(sys::CURLOPT_CURLU, url.handle.cast())?;
        }
        self.set_long(curl::CURLOPT_NOSIGNAL, 1)?;
        self.set_ptr(curl::CURLOPT_ERRORBUFFER, self.errbuf.get().cast())?;
        self.set_ptr(curl::CURLOPT_WRITEFUNCTION, write as *mut c_void)?;
        self.set_ptr(curl::CURLOPT_WRITEDATA, me)?;
        self.set_ptr(curl::CURLOPT_HEADERFUNCTION, header as *mut c_void)?;
        self.set_ptr(curl::CURLOPT_HEADERDATA, me)?;
        self.set_str(sys::CURLOPT_PROTOCOLS_STR, &r.protocols)?;
        self.set_str(sys::CURLOPT_REDIR_PROTOCOLS_STR, &r.protocols)?;
        self.set_long(curl::CURLOPT_FOLLOWLOCATION, r.follow_redirects as c_long)?;
        self.set_long(curl::CURLOPT_MAXREDIRS, r.max_redirects as c_long)?;

        let method = &*r.method;
        if let Some(bytes) = &self._post_body {
            self.set_off_t(curl::CURLOPT_POSTFIELDSIZE_LARGE, bytes.len() as i64)?;
            self.set_ptr(curl::CURLOPT_POSTFIELDS, bytes.as_ptr() as *mut c_void)?;
        } else if self.upload.borrow().is_some() {
            let len = upload_len.map_or(-1, |n| n as i64);
            self.set_long(curl::CURLOPT_POST, 1)?;
            self.set_ptr(curl::CURLOPT_READFUNCTION, read as *mut c_void)?;
            self.set_ptr(curl::CURLOPT_READDATA, me)?;
            self.set_off_t(curl::CURLOPT_POSTFIELDSIZE_LARGE, len)?;
        } else if method == "HEAD" {
            self.set_long(curl::CURLOPT_NOBODY, 1)?;
        } else if method == "POST" {
            self.set_long(curl::CURLOPT_POST, 1)?;
            self.set_off_t(curl::CURLOPT_POSTFIELDSIZE_LARGE, 0)?;
        }
        if !matches!(method, "GET" | "HEAD" | "POST") {
            self.set_str(curl::CURLOPT_CUSTOMREQUEST, method)?;
        }
        self.set_headers(&r.headers)?;
        if let Some(agent) = &r.user_agent {
            self.set_str(curl::CURLOPT_USERAGENT, agent)?;
        }
        if let Some(t) = r.connect_timeout {
            self.set_long(curl::CURLOPT_CONNECTTIMEOUT_MS, millis(t))?;
        }
        if let Some(t) = r.timeout {
            self.set_long(curl::CURLOPT_TIMEOUT_MS, millis(t))?;
        }
        if let Some((limit, period)) = r.low_speed {
            self.set_long(curl::CURLOPT_LOW_SPEED_LIMIT, limit as c_long)?;
            self.set_long(
                curl::CURLOPT_LOW_SPEED_TIME,
                period.as_secs().max(1) as c_long,
            )?;
        }
        if !r.verify_tls {
            // (Verification is libcurl's default: nothing to set otherwise.)
            self.set_long(curl::CURLOPT_SSL_VERIFYPEER, 0)?;
            self.set_long(curl::CURLOPT_SSL_VERIFYHOST, 0)?;
        }
        if let Some(path) = &r.ca_file {
            self.set_path(curl::CURLOPT_CAINFO, path)?;
        }
        if let Some(path) = &r.ca_path {
            self.set_path(curl::CURLOPT_CAPATH, path)?;
        }
        let (version, pipewait) = match r.version {
            HttpVersionPref::Http1_1 => (curl::CURL_HTTP_VERSION_1_1, false),
            HttpVersionPref::Http2OverTls => (curl::CURL_HTTP_VERSION_2TLS, tls),
            HttpVersionPref::Http2PriorKnowledge => {
                (curl::CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE, true)
            }
        };
        self.set_long(curl::CURLOPT_HTTP_VERSION, version as c_long)?;
        if pipewait {
            self.set_long(curl::CURLOPT_PIPEWAIT, 1)?;
        }
        if let Some(proxy) = &r.proxy {
            self.set_str(curl::CURLOPT_PROXY, proxy)?;
        }
        if let Some(size) = r.buffer_size {
            self.set_long(curl::CURLOPT_BUFFERSIZE, size as c_long)?;
        }
        if let Some(speed) = r.max_recv_speed {
            self.set_off_t(curl::CURLOPT_MAX_RECV_SPEED_LARGE, speed as i64)?;
        }
        Ok(())
    }

    fn set_headers(&self, lines: &[String]) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut list: *mut curl::curl_slist = std::ptr::null_mut();
        for line in lines {
            let line = CString::new(line.as_str()).map_err(|_| Error::invalid("NUL in header"))?;
            // SAFETY: curl_slist_append copies the string; `list` is null or a list it returned.
            let appended = unsafe { curl::curl_slist_append(list, line.as_ptr()) };
            if appended.is_null() {
                // SAFETY: freeing the list built so far.
                unsafe { curl::curl_slist_free_all(list) };
                return Err(Error::new(
                    ErrorKind::Other,
                    "out of memory building headers",
                ));
            }
            list = appended;
        }
        self.header_list.set(list);
        self.set_ptr(curl::CURLOPT_HTTPHEADER, list.cast())
    }

    fn set_long(&self, option: curl::CURLoption, value: c_long) -> Result<(), Error> {
        // SAFETY: a live easy handle and a long-typed option.
        self.setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.easy, option, value)
        })
    }

    fn set_off_t(&self, option: curl::CURLoption, value: i64) -> Result<(), Error> {
        // SAFETY: a live easy handle and a curl_off_t-typed option.
        self.setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.easy, option, value as curl::curl_off_t)
        })
    }

    /// Sets a function or data pointer option of the driver's.
    pub fn set_callback(&self, option: curl::CURLoption, value: *mut c_void) -> Result<(), Error> {
        self.set_ptr(option, value)
    }

    fn set_ptr(&self, option: curl::CURLoption, value: *mut c_void) -> Result<(), Error> {
        // SAFETY: a live easy handle and a pointer-typed option; every pointer set
        // here lives as long as the easy handle (it is owned by `self`).
        self.setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.easy, option, value)
        })
    }

    fn set_str(&self, option: curl::CURLoption, value: &str) -> Result<(), Error> {
        let value = CString::new(value).map_err(|_| Error::invalid("string with a NUL byte"))?;
        // SAFETY: string options are copied by libcurl (since 7.17).
        self.setopt_result(option, unsafe {
            curl::curl_easy_setopt(self.easy, option, value.as_ptr())
        })
    }

    fn set_path(&self, option: curl::CURLoption, path: &std::path::Path) -> Result<(), Error> {
        let text = path
            .to_str()
            .ok_or_else(|| Error::invalid(format!("path {} is not UTF-8", path.display())))?;
        self.set_str(option, text)
    }

    fn setopt_result(&self, option: curl::CURLoption, rc: curl::CURLcode) -> Result<(), Error> {
        if rc == curl::CURLE_OK {
            return Ok(());
        }
        let mut error = Error::from_curl(rc, &format!("setting option {option}"));
        if rc == curl::CURLE_UNSUPPORTED_PROTOCOL || rc == 4
        /* CURLE_NOT_BUILT_IN */
        {
            error = Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} (libcurl lacks support for option {option})",
                    error.message()
                ),
            );
        }
        Err(error)
    }

    /// libcurl's error-buffer text.
    fn error_text(&self) -> String {
        // SAFETY: libcurl writes a NUL-terminated string (or nothing: zeroed) into the
        // buffer, and is not running (we are past the transfer's end).
        let bytes = unsafe { &*self.errbuf.get() };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).trim_end().to_owned()
    }

    /// The outcome for libcurl's final `code`.
    pub fn outcome(&self, code: curl::CURLcode) -> Result<(), Error> {
        if self.cancel_requested.get() {
            return Err(Error::cancelled());
        }
        if let Some(error) = self.failure.borrow_mut().take() {
            return Err(error);
        }
        if code == curl::CURLE_OK {
            Ok(())
        } else {
            let mut detail = self.error_text();
            let errno = self.info_long(curl::CURLINFO_OS_ERRNO) as i32;
            if errno != 0 {
                let os = std::io::Error::from_raw_os_error(errno);
                detail = format!("{detail} ({os})");
            }
            Err(Error::from_curl(code, &detail))
        }
    }

    /// Reads status, headers, sizes and timings back from the easy handle.
    pub fn response(&self) -> Response {
        let body = match &self.sink {
            Sink::Collect(buffer) => std::mem::take(&mut *buffer.borrow_mut()),
            _ => Vec::new(),
        };
        let status = self.info_long(curl::CURLINFO_RESPONSE_CODE) as u16;
        let mut head = std::mem::take(&mut *self.head.borrow_mut());
        if status != 0 {
            head.status = status;
        }
        let version = match self.info_long(sys::CURLINFO_HTTP_VERSION) as i32 {
            1 => HttpVersion::Http1_0,
            2 => HttpVersion::Http1_1,
            3 => HttpVersion::Http2,
            30 => HttpVersion::Http3,
            _ => HttpVersion::Unknown,
        };
        let micros = |info| Duration::from_micros(self.info_off_t(info).max(0) as u64);
        Response {
            head,
            body,
            effective_url: self.info_string(curl::CURLINFO_EFFECTIVE_URL),
            version,
            bytes_received: self.info_off_t(sys::CURLINFO_SIZE_DOWNLOAD_T).max(0) as u64,
            bytes_sent: self.info_off_t(sys::CURLINFO_SIZE_UPLOAD_T).max(0) as u64,
            redirects: self.info_long(curl::CURLINFO_REDIRECT_COUNT).max(0) as u32,
            timings: Timings {
                name_lookup: micros(sys::CURLINFO_NAMELOOKUP_TIME_T),
                connect: micros(sys::CURLINFO_CONNECT_TIME_T),
                tls: micros(sys::CURLINFO_APPCONNECT_TIME_T),
                first_byte: micros(sys::CURLINFO_STARTTRANSFER_TIME_T),
                total: micros(sys::CURLINFO_TOTAL_TIME_T),
            },
        }
    }

    fn info_long(&self, info: curl::CURLINFO) -> c_long {
        let mut value: c_long = 0;
        // SAFETY: live easy handle, long-typed info, valid out pointer.
        unsafe { curl::curl_easy_getinfo(self.easy, info, &mut value as *mut c_long) };
        value
    }

    fn info_off_t(&self, info: curl::CURLINFO) -> i64 {
        let mut value: curl::curl_off_t = 0;
        // SAFETY: live easy handle, curl_off_t-typed info, valid out pointer.
        unsafe { curl::curl_easy_getinfo(self.easy, info, &mut value as *mut curl::curl_off_t) };
        value
    }

    fn info_string(&self, info: curl::CURLINFO) -> String {
        let mut value: *const c_char = std::ptr::null();
        // SAFETY: live easy handle, string-typed info, valid out pointer; the
        // string is owned by the handle and copied before it goes.
        unsafe {
            curl::curl_easy_getinfo(self.easy, info, &mut value as *mut *const c_char);
            if value.is_null() {
                String::new()
            } else {
                CStr::from_ptr(value).to_string_lossy().into_owned()
            }
        }
    }

    fn fail(&self, error: Error) {
        let mut failure = self.failure.borrow_mut();
        if failure.is_none() {
            *failure = Some(error);
        }
    }

    /// Runs a user callback, turning a panic into this transfer's failure.
    fn guarded<T>(&self, place: &str, f: impl FnOnce() -> T) -> Option<T> {
        match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Some(value),
            Err(payload) => {
                let text = panic_message(payload.as_ref());
                log::error!("uvcurl: {place} callback panicked: {text}");
                self.fail(Error::new(
                    ErrorKind::CallbackPanic,
                    format!("{place} callback panicked: {text}"),
                ));
                None
            }
        }
    }

    /// Calls the `on_head` callback once; false if it asked to stop.
    fn deliver_head(&self) -> bool {
        if self.head_delivered.replace(true) {
            return true;
        }
        let Some(mut callback) = self.on_head.borrow_mut().take() else {
            return true;
        };
        let mut head = self.head.borrow().clone();
        let status = self.info_long(curl::CURLINFO_RESPONSE_CODE) as u16;
        if status != 0 {
            head.status = status;
        }
        match self.guarded("head", || callback(&head)) {
            Some(Flow::Abort) => {
                self.fail(Error::new(
                    ErrorKind::Aborted,
                    "aborted by the head callback",
                ));
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// At a successful end: delivers the head if no body chunk did.
    pub fn finish_head(&self) -> Result<(), Error> {
        if self.deliver_head() {
            Ok(())
        } else {
            Err(self
                .failure
                .borrow_mut()
                .take()
                .unwrap_or_else(|| Error::new(ErrorKind::Aborted, "aborted by the head callback")))
        }
    }

    fn header(&self, line: &[u8]) -> size_t {
        if self.cancel_requested.get() {
            return 0;
        }
        if let Ok(mut head) = self.head.try_borrow_mut() {
            head.push_line(line);
        }
        line.len()
    }

    fn write(&self, chunk: &[u8]) -> size_t {
        if self.cancel_requested.get() || !self.deliver_head() {
            return 0;
        }
        match &self.sink {
            Sink::Collect(buffer) => {
                let mut buffer = buffer.borrow_mut();
                if buffer.capacity() == 0 {
                    // One allocation for the whole body when its length is known.
                    let announced = self.info_off_t(sys::CURLINFO_CONTENT_LENGTH_DOWNLOAD_T);
                    let expected = usize::try_from(announced).unwrap_or(0).min(64 << 20);
                    buffer.reserve(expected.max(chunk.len()));
                }
                buffer.extend_from_slice(chunk);
                chunk.len()
            }
            Sink::Stream(callback) => {
                let Ok(mut callback) = callback.try_borrow_mut() else {
                    // Re-entered from inside its own callback (unpaused there): defer.
                    return sys::CURL_WRITEFUNC_PAUSE;
                };
                match self.guarded("data", || callback(chunk)) {
                    Some(Flow::Continue) => chunk.len(),
                    Some(Flow::Pause) => {
                        self.paused.set(true);
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
                }
            }
            Sink::Foreign => 0,
        }
    }

    fn read(&self, buffer: &mut [u8]) -> size_t {
        if self.cancel_requested.get() {
            return sys::CURL_READFUNC_ABORT;
        }
        let mut upload = self.upload.borrow_mut();
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

impl Drop for TransferState {
    fn drop(&mut self) {
        // SAFETY: the driver removed the easy handle from the multi before the
        // last reference went; we created it (owned) and free it exactly once.
        unsafe {
            if self.owned {
                match &self.pool {
                    Some(pool) => pool.give(self.easy),
                    None => curl::curl_easy_cleanup(self.easy),
                }
            }
            let list = self.header_list.get();
            if !list.is_null() {
                curl::curl_slist_free_all(list);
            }
        }
    }
}

fn millis(d: Duration) -> c_long {
    d.as_millis().clamp(1, c_long::MAX as u128) as c_long
}

/// Easy handles kept for reuse: `curl_easy_reset` costs much less than
/// `curl_easy_cleanup` plus `curl_easy_init`.
#[derive(Default)]
pub(crate) struct EasyPool {
    free: RefCell<Vec<*mut CURL>>,
}

/// Most idle easy handles kept.
const EASY_POOL_MAX: usize = 256;

impl EasyPool {
    /// An easy handle with default options (null if libcurl is out of memory).
    pub fn take(&self) -> *mut CURL {
        let reused = self.free.borrow_mut().pop();
        // SAFETY: curl_global_init ran (Multi::new); no other preconditions.
        reused.unwrap_or_else(|| unsafe { curl::curl_easy_init() })
    }

    /// Takes back an easy handle that is in no multi handle any more.
    ///
    /// # Safety
    /// `easy` is a valid easy handle nobody else uses.
    pub unsafe fn give(&self, easy: *mut CURL) {
        let mut free = self.free.borrow_mut();
        if free.len() < EASY_POOL_MAX {
            // SAFETY: per the contract; reset drops every option (and so every
            // pointer into the transfer state that is about to be freed).
            unsafe { curl::curl_easy_reset(easy) };
            free.push(easy);
        } else {
            // SAFETY: per the contract.
            unsafe { curl::curl_easy_cleanup(easy) };
        }
    }
}

impl Drop for EasyPool {
    fn drop(&mut self) {
        for easy in self.free.get_mut().drain(..) {
            // SAFETY: idle handles owned by the pool.
            unsafe { curl::curl_easy_cleanup(easy) };
        }
    }
}

/// A URL parsed by libcurl's own parser; the easy handle uses this parse
/// (`CURLOPT_CURLU`) instead of parsing the string a second time.
pub(crate) struct ParsedUrl {
    handle: *mut sys::Curlu,
    /// The scheme, lower-case.
    scheme: String,
}

impl Drop for ParsedUrl {
    fn drop(&mut self) {
        // SAFETY: from curl_url, freed once; the easy handle that used it has
        // been cleaned up before (TransferState drops its fields after Drop).
        unsafe { sys::curl_url_cleanup(self.handle) };
    }
}

/// Parses `url` with libcurl's own parser and checks its scheme is allowed.
fn check_url(url: &str, protocols: &str) -> Result<ParsedUrl, Error> {
    let c_url = CString::new(url).map_err(|_| Error::invalid("URL contains a NUL byte"))?;
    // SAFETY: curl_url allocates a handle that ParsedUrl frees.
    let handle = unsafe { sys::curl_url() };
    if handle.is_null() {
        return Err(Error::new(ErrorKind::Other, "curl_url failed"));
    }
    // Parsed without a default scheme, so the URL starts with its scheme.
    let scheme = url
        .trim_start()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let parsed = ParsedUrl { handle, scheme };
    // SAFETY: valid handle and NUL-terminated string; curl copies it.
    let rc = unsafe { sys::curl_url_set(handle, sys::CURLUPART_URL, c_url.as_ptr(), 0) };
    if rc != 0 {
        // SAFETY: curl_url_strerror returns a static string for any code.
        let why = unsafe { CStr::from_ptr(sys::curl_url_strerror(rc)) };
        return Err(Error::invalid(format!(
            "invalid URL {url:?}: {}",
            why.to_string_lossy()
        )));
    }
    let allowed = protocols
        .split(',')
        .any(|p| p.trim().eq_ignore_ascii_case(&parsed.scheme));
    if !allowed {
        return Err(Error::new(
            ErrorKind::UnsupportedProtocol,
            format!(
                "scheme {:?} of {url:?} is not allowed (allowed: {protocols})",
                parsed.scheme
            ),
        ));
    }
    Ok(parsed)
}

/// Recovers the transfer state from a callback's user data.
///
/// # Safety
/// `data` is the address of a live `TransferState` (set by `configure`).
unsafe fn state<'a>(data: *mut c_void) -> &'a TransferState {
    // SAFETY: per the contract.
    unsafe { &*(data as *const TransferState) }
}

/// The state and the bytes of a write or header callback.
///
/// # Safety
/// `data` is the address of a live `TransferState`, and libcurl hands
/// `size * nmemb` readable bytes at `ptr`.
unsafe fn incoming<'a>(
    ptr: *mut c_char,
    size: size_t,
    nmemb: size_t,
    data: *mut c_void,
) -> (&'a TransferState, &'a [u8]) {
    let len = size.saturating_mul(nmemb);
    // SAFETY: per the contract.
    unsafe {
        (
            state(data),
            std::slice::from_raw_parts(ptr as *const u8, len),
        )
    }
}

extern "C" fn on_write(ptr: *mut c_char, size: size_t, nmemb: size_t, data: *mut c_void) -> size_t {
    // SAFETY: WRITEDATA is our state; libcurl passes a chunk of that size.
    let (state, chunk) = unsafe { incoming(ptr, size, nmemb, data) };
    // Nothing below unwinds: user code runs under catch_unwind in `guarded`.
    state.write(chunk)
}

extern "C" fn on_header(
    ptr: *mut c_char,
    size: size_t,
    nmemb: size_t,
    data: *mut c_void,
) -> size_t {
    // SAFETY: HEADERDATA is our state; libcurl passes a line of that size.
    let (state, line) = unsafe { incoming(ptr, size, nmemb, data) };
    state.header(line)
}

extern "C" fn on_read(ptr: *mut c_char, size: size_t, nmemb: size_t, data: *mut c_void) -> size_t {
    let len = size.saturating_mul(nmemb);
    // SAFETY: `data` is our state (READDATA); libcurl hands `len` writable bytes at `ptr`.
    let (state, buffer) = unsafe {
        (
            state(data),
            std::slice::from_raw_parts_mut(ptr as *mut u8, len),
        )
    };
    state.read(buffer)
}
