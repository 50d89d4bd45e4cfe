//! The clients the runner measures, each run in a child process:
//! `compare --client NAME --urls FILE --size BYTES --inflight N [--h2c]
//! [--buffer BYTES] [--stream] [--close]`. (The C clients in `c/` take the
//! same options.)
//!
//! Each fetches every URL of the list keeping N transfers in flight, checks
//! that every response is a 200 with exactly `--size` body bytes, and prints
//! `ok COUNT BYTES` — or names the first failure on stderr and exits 1.

use std::cell::{Cell, RefCell};
use std::os::raw::{c_char, c_long, c_void};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Longest a client may run; past it, it gives up and fails.
const DEADLINE: Duration = Duration::from_secs(240);

/// Per-transfer timeout, for every client.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);

struct Job {
    urls: UrlList,
    size: u64,
    inflight: usize,
    h2c: bool,
    buffer: Option<usize>,
    stream: bool,
    /// Send `Connection: close` with every request.
    close: bool,
}

/// The URL list as the C clients keep theirs: the file's text and where each
/// line ends (not one allocation per URL, which at 10k URLs would be a
/// quarter MiB of peak RSS the C clients do not have).
#[derive(Default)]
struct UrlList {
    text: String,
    /// Each line's start and end in `text`.
    lines: Vec<(u32, u32)>,
}

impl UrlList {
    fn new(text: String) -> UrlList {
        let mut lines = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            let url = line.trim_end_matches(['\n', '\r']);
            lines.push((start as u32, (start + url.len()) as u32));
            start += line.len();
        }
        UrlList { text, lines }
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn get(&self, index: usize) -> Option<&str> {
        let &(start, end) = self.lines.get(index)?;
        Some(&self.text[start as usize..end as usize])
    }

    fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl std::ops::Index<usize> for UrlList {
    type Output = str;

    fn index(&self, index: usize) -> &str {
        self.get(index).expect("a URL index in range")
    }
}

/// Transfers done and body bytes seen.
type Outcome = Result<(usize, u64), String>;

pub fn main(args: &[String]) -> ExitCode {
    run(args, |client, job| match client {
        // (Takes the URL list over: no second copy of it in memory.)
        "uvcurl" => run_uvcurl(job),
        "libcurl-fresh" => run_libcurl(job),
        "reqwest" => run_reqwest(job, false),
        "reqwest-mt" => run_reqwest(job, true),
        "client1" => run_client(job, 1),
        "client2" => run_client(job, 2),
        "client4" => run_client(job, 4),
        other => Err(format!("unknown client {other}")),
    })
}

/// [`main`] with only the `uvcurl` client: what `examples/bench_multi.rs`
/// runs, so that uvcurl's `Multi` is measured in a binary of its own (none of
/// the other clients' code is linked in, as with the C clients).
#[allow(dead_code)] // (used by the example, not by `compare` itself)
pub fn main_multi_only(args: &[String]) -> ExitCode {
    run(args, |client, job| match client {
        "uvcurl" => run_uvcurl(job),
        other => Err(format!("unknown client {other} (only uvcurl here)")),
    })
}

/// Parses `args`, runs the client `clients` picks by name, and checks and
/// prints its outcome.
fn run(args: &[String], clients: impl FnOnce(&str, &mut Job) -> Outcome) -> ExitCode {
    let (client, mut job) = match parse(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("compare --client: {message}");
            return ExitCode::from(2);
        }
    };
    let expected = job.urls.len();
    let outcome = clients(&client, &mut job);
    match outcome {
        Ok((done, bytes)) if done == expected && bytes == done as u64 * job.size => {
            println!("ok {done} {bytes}");
            ExitCode::SUCCESS
        }
        Ok((done, bytes)) => {
            eprintln!("{client}: {done} of {expected} transfers, {bytes} bytes: incomplete");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("{client}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<(String, Job), String> {
    let client = args.first().cloned().ok_or("--client needs a name")?;
    let mut job = Job {
        urls: UrlList::default(),
        size: 0,
        inflight: 1,
        h2c: false,
        buffer: None,
        stream: false,
        close: false,
    };
    let mut it = args[1..].iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{arg}: bad number"));
        match arg.as_str() {
            "--urls" => {
                let path = value()?;
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                job.urls = UrlList::new(text);
            }
            "--size" => job.size = number(value()?)?,
            "--inflight" => job.inflight = number(value()?)?.max(1) as usize,
            "--buffer" => job.buffer = Some(number(value()?)? as usize),
            "--h2c" => job.h2c = true,
            "--stream" => job.stream = true,
            "--close" => job.close = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok((client, job))
}

/// Checks one finished transfer.
fn check(url: &str, status: i64, len: u64, size: u64) -> Result<(), String> {
    if status != 200 {
        return Err(format!("{url}: HTTP status {status}"));
    }
    if len != size {
        return Err(format!("{url}: {len} body bytes, expected {size}"));
    }
    Ok(())
}

// ---------------------------------------------------------------- uvcurl

struct UvState {
    job: Job,
    next: Cell<usize>,
    done: Cell<usize>,
    bytes: Cell<u64>,
    failure: RefCell<Option<String>>,
    deadline: Instant,
}

fn run_uvcurl(job: &mut Job) -> Outcome {
    let uv = uvcurl::Loop::new().map_err(|e| e.to_string())?;
    let multi = uvcurl::Multi::builder()
        .max_host_connections(job.inflight)
        .max_concurrent_streams(job.inflight)
        .build(&uv)
        .map_err(|e| e.to_string())?;
    let state = Rc::new(UvState {
        job: Job {
            urls: std::mem::take(&mut job.urls),
            ..*job
        },
        next: Cell::new(0),
        done: Cell::new(0),
        bytes: Cell::new(0),
        failure: RefCell::new(None),
        deadline: Instant::now() + DEADLINE,
    });
    let handle = multi.handle();
    for _ in 0..state.job.inflight.min(state.job.urls.len()) {
        uv_start_next(&handle, &state);
    }
    uv.run().map_err(|e| e.to_string())?;
    drop(multi);
    uv.run().map_err(|e| e.to_string())?;
    if let Some(failure) = state.failure.borrow_mut().take() {
        return Err(failure);
    }
    Ok((state.done.get(), state.bytes.get()))
}

fn uv_start_next(handle: &uvcurl::MultiHandle, state: &Rc<UvState>) {
    let index = state.next.get();
    if index >= state.job.urls.len() || state.failure.borrow().is_some() {
        return;
    }
    // (The clock is read every 64th start: the C clients read none per
    // request, and the bound does not need more.)
    if index % 64 == 0 && Instant::now() > state.deadline {
        *state.failure.borrow_mut() = Some(format!("gave up after {DEADLINE:?}"));
        handle.close();
        return;
    }
    state.next.set(index + 1);
    let url = &state.job.urls[index];
    let version = if state.job.h2c {
        uvcurl::HttpVersionPref::Http2PriorKnowledge
    } else {
        uvcurl::HttpVersionPref::Http1_1
    };
    let mut request = uvcurl::Request::get(url)
        .http_version(version)
        .timeout(TRANSFER_TIMEOUT);
    if let Some(buffer) = state.job.buffer {
        request = request.buffer_size(buffer);
    }
    if state.job.close {
        request = request.header("Connection", "close");
    }
    let streamed = Rc::new(Cell::new(0u64));
    if state.job.stream {
        let streamed = Rc::clone(&streamed);
        request = request.on_data(move |chunk| {
            streamed.set(streamed.get() + chunk.len() as u64);
            uvcurl::Flow::Continue
        });
    }
    let next_handle = handle.clone();
    let me = Rc::clone(state);
    let started = handle.start(request, move |result| {
        let url = &me.job.urls[index];
        let checked = match result {
            Ok(response) => {
                let len = if me.job.stream {
                    streamed.get()
                } else {
                    response.body().len() as u64
                };
                check(url, i64::from(response.status()), len, me.job.size).map(|()| len)
            }
            Err(error) => Err(format!("{url}: {error}")),
        };
        match checked {
            Ok(len) => {
                me.done.set(me.done.get() + 1);
                me.bytes.set(me.bytes.get() + len);
                uv_start_next(&next_handle, &me);
            }
            Err(message) => {
                me.failure.borrow_mut().get_or_insert(message);
                next_handle.close();
            }
        }
    });
    if let Err(error) = started {
        state
            .failure
            .borrow_mut()
            .get_or_insert(format!("{url}: start: {error}"));
    }
}

// ---------------------------------------------------------------- libcurl

extern "C" {
    // libcurl 7.66.0; curl-sys does not declare it. The symbol is in the
    // libcurl curl-sys links (the bundled 8.22).
    fn curl_multi_poll(
        multi: *mut uvcurl::ffi::curl::CURLM,
        extra_fds: *mut uvcurl::ffi::curl::curl_waitfd,
        extra_nfds: std::os::raw::c_uint,
        timeout_ms: std::os::raw::c_int,
        numfds: *mut std::os::raw::c_int,
    ) -> uvcurl::ffi::curl::CURLMcode;
}

/// One running easy handle of the libcurl-own-loop client.
struct Slot {
    index: usize,
    body: Vec<u8>,
    streamed: u64,
    stream: bool,
}

extern "C" fn write_cb(data: *mut c_char, size: usize, nmemb: usize, user: *mut c_void) -> usize {
    let len = size * nmemb;
    // SAFETY: `user` is the Slot set as CURLOPT_WRITEDATA, alive until the
    // handle is removed; libcurl passes `len` readable bytes at `data`.
    let slot = unsafe { &mut *user.cast::<Slot>() };
    if slot.stream {
        slot.streamed += len as u64;
    } else {
        // SAFETY: as above.
        let chunk = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
        slot.body.extend_from_slice(chunk);
    }
    len
}

/// libcurl's own event loop (`curl_multi_poll`), with the options uvcurl sets
/// on its easy handles, one fresh easy handle per transfer as uvcurl does
/// (the `libcurl-fresh` client; `libcurl` is the pooled C program
/// `c/curl_poll.c`).
fn run_libcurl(job: &Job) -> Outcome {
    use uvcurl::ffi::curl;
    // `CURLMOPT_MAX_CONCURRENT_STREAMS` (7.67.0), not in curl-sys.
    const MAX_CONCURRENT_STREAMS: curl::CURLMoption = 16;
    let deadline = Instant::now() + DEADLINE;
    let cstrings: Vec<std::ffi::CString> = job
        .urls
        .iter()
        .map(|u| std::ffi::CString::new(u).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let protocols = c"http,https";
    let close_header = c"Connection: close";

    // SAFETY: the libcurl API used as documented: every easy handle is added
    // once, removed and cleaned up once; each Slot outlives its handle.
    unsafe {
        curl::curl_global_init(curl::CURL_GLOBAL_ALL);
        let multi = curl::curl_multi_init();
        if multi.is_null() {
            return Err("curl_multi_init failed".into());
        }
        curl::curl_multi_setopt(
            multi,
            curl::CURLMOPT_MAX_HOST_CONNECTIONS,
            job.inflight as c_long,
        );
        curl::curl_multi_setopt(multi, MAX_CONCURRENT_STREAMS, job.inflight as c_long);
        let headers = if job.close {
            curl::curl_slist_append(std::ptr::null_mut(), close_header.as_ptr())
        } else {
            std::ptr::null_mut()
        };
        let mut slots: std::collections::HashMap<usize, Box<Slot>> =
            std::collections::HashMap::with_capacity(job.inflight);
        let mut next = 0usize;
        let mut done = 0usize;
        let mut bytes = 0u64;
        let mut failure: Option<String> = None;
        let total = job.urls.len();
        // Each pass completes at least one transfer or waits up to 1 s; the
        // deadline bounds the whole.
        let max_passes = 100 * total + 10_000_000;
        for _ in 0..max_passes {
            // Refill.
            while failure.is_none() && next < total && slots.len() < job.inflight {
                let easy = curl::curl_easy_init();
                if easy.is_null() {
                    failure = Some("curl_easy_init failed".into());
                    break;
                }
                let mut slot = Box::new(Slot {
                    index: next,
                    body: Vec::new(),
                    streamed: 0,
                    stream: job.stream,
                });
                let me: *mut Slot = &mut *slot;
                curl::curl_easy_setopt(easy, curl::CURLOPT_URL, cstrings[next].as_ptr());
                curl::curl_easy_setopt(easy, curl::CURLOPT_NOSIGNAL, 1 as c_long);
                curl::curl_easy_setopt(
                    easy,
                    curl::CURLOPT_WRITEFUNCTION,
                    write_cb as extern "C" fn(*mut c_char, usize, usize, *mut c_void) -> usize,
                );
                curl::curl_easy_setopt(easy, curl::CURLOPT_WRITEDATA, me.cast::<c_void>());
                // CURLOPT_PROTOCOLS_STR (7.85.0), as uvcurl sets it.
                curl::curl_easy_setopt(easy, 10_318, protocols.as_ptr());
                curl::curl_easy_setopt(easy, curl::CURLOPT_FOLLOWLOCATION, 1 as c_long);
                curl::curl_easy_setopt(easy, curl::CURLOPT_MAXREDIRS, 10 as c_long);
                curl::curl_easy_setopt(
                    easy,
                    curl::CURLOPT_TIMEOUT_MS,
                    TRANSFER_TIMEOUT.as_millis() as c_long,
                );
                let version = if job.h2c {
                    curl::CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
                } else {
                    curl::CURL_HTTP_VERSION_1_1
                };
                curl::curl_easy_setopt(easy, curl::CURLOPT_HTTP_VERSION, version as c_long);
                if job.h2c {
                    curl::curl_easy_setopt(easy, curl::CURLOPT_PIPEWAIT, 1 as c_long);
                }
                if let Some(buffer) = job.buffer {
                    curl::curl_easy_setopt(easy, curl::CURLOPT_BUFFERSIZE, buffer as c_long);
                }
                if !headers.is_null() {
                    curl::curl_easy_setopt(easy, curl::CURLOPT_HTTPHEADER, headers);
                }
                let code = curl::curl_multi_add_handle(multi, easy);
                if code != curl::CURLM_OK {
                    failure = Some(format!("curl_multi_add_handle: {code}"));
                    curl::curl_easy_cleanup(easy);
                    break;
                }
                slots.insert(easy as usize, slot);
                next += 1;
            }
            if slots.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                failure.get_or_insert(format!("gave up after {DEADLINE:?}"));
                break;
            }
            let mut running = 0;
            let code = curl::curl_multi_perform(multi, &mut running);
            if code != curl::CURLM_OK {
                failure.get_or_insert(format!("curl_multi_perform: {code}"));
                break;
            }
            let mut left = 0;
            for _ in 0..=slots.len() {
                let msg = curl::curl_multi_info_read(multi, &mut left);
                if msg.is_null() {
                    break;
                }
                if (*msg).msg != curl::CURLMSG_DONE {
                    continue;
                }
                let easy = (*msg).easy_handle;
                // The union's first member is the CURLcode.
                let result = (*msg).data as usize as curl::CURLcode;
                let mut status: c_long = 0;
                curl::curl_easy_getinfo(easy, curl::CURLINFO_RESPONSE_CODE, &mut status);
                curl::curl_multi_remove_handle(multi, easy);
                curl::curl_easy_cleanup(easy);
                let Some(slot) = slots.remove(&(easy as usize)) else {
                    failure.get_or_insert("unknown easy handle completed".into());
                    continue;
                };
                let url = &job.urls[slot.index];
                let len = if slot.stream {
                    slot.streamed
                } else {
                    slot.body.len() as u64
                };
                let checked = if result != curl::CURLE_OK {
                    Err(format!("{url}: curl error {result}"))
                } else {
                    check(url, status as i64, len, job.size)
                };
                match checked {
                    Ok(()) => {
                        done += 1;
                        bytes += len;
                    }
                    Err(message) => {
                        failure.get_or_insert(message);
                    }
                }
            }
            if failure.is_some() {
                break;
            }
            if next < total && slots.len() < job.inflight {
                // Room to start more: refill before waiting.
                continue;
            }
            if slots.is_empty() {
                break;
            }
            let mut numfds = 0;
            let code = curl_multi_poll(multi, std::ptr::null_mut(), 0, 1000, &mut numfds);
            if code != curl::CURLM_OK {
                failure.get_or_insert(format!("curl_multi_poll: {code}"));
                break;
            }
        }
        for easy in slots.keys() {
            curl::curl_multi_remove_handle(multi, *easy as *mut curl::CURL);
            curl::curl_easy_cleanup(*easy as *mut curl::CURL);
        }
        slots.clear();
        curl::curl_multi_cleanup(multi);
        curl::curl_slist_free_all(headers);
        match failure {
            Some(message) => Err(message),
            None => Ok((done, bytes)),
        }
    }
}

// ---------------------------------------------------------------- reqwest

/// reqwest on a current-thread tokio runtime (one thread, as the other
/// clients), or on a multi-thread one (`reqwest-mt`, one worker per CPU);
/// N worker tasks taking URLs from a shared counter.
fn run_reqwest(job: &mut Job, multi_thread: bool) -> Outcome {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(TRANSFER_TIMEOUT)
        .pool_max_idle_per_host(job.inflight);
    builder = if job.h2c {
        builder.http2_prior_knowledge()
    } else {
        builder.http1_only()
    };
    let client = builder.build().map_err(|e| e.to_string())?;
    let (size, stream, close) = (job.size, job.stream, job.close);
    run_async_workers(job, multi_thread, move |url: String| {
        let client = client.clone();
        async move {
            let mut request = client.get(url.as_str());
            if close {
                request = request.header("connection", "close");
            }
            let mut response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = i64::from(response.status().as_u16());
            let len = if stream {
                let mut len = 0u64;
                while let Some(chunk) = response.chunk().await.map_err(|e| format!("{url}: {e}"))? {
                    len += chunk.len() as u64;
                }
                len
            } else {
                let body = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
                body.len() as u64
            };
            check(&url, status, len, size)?;
            Ok(len)
        }
    })
}

/// Bodies larger than this are streamed by the `Client` clients when the
/// workload streams.
const STREAM_ABOVE: u64 = 1 << 20;

/// uvcurl's background `Client` with `loops` loop threads, its futures
/// awaited on a current-thread tokio runtime: what an async Rust program
/// without a libuv loop of its own would use.
fn run_client(job: &mut Job, loops: usize) -> Outcome {
    let client = uvcurl::Client::builder()
        .loops(loops)
        .max_host_connections(job.inflight.div_ceil(loops))
        // A loop's running count dips between batches of submissions; a
        // fixed cache spares libcurl a scan of it whenever one goes idle.
        .connection_cache(job.inflight.div_ceil(loops))
        .build()
        .map_err(|e| e.to_string())?;
    let (size, h2c, buffer, close, stream) = (job.size, job.h2c, job.buffer, job.close, job.stream);
    run_async_workers(job, false, move |url: String| {
        let shown = url.clone();
        let make = move || {
            let version = if h2c {
                uvcurl::HttpVersionPref::Http2PriorKnowledge
            } else {
                uvcurl::HttpVersionPref::Http1_1
            };
            let mut request = uvcurl::Request::get(url)
                .http_version(version)
                .timeout(TRANSFER_TIMEOUT);
            if close {
                request = request.header("Connection", "close");
            }
            match buffer {
                Some(bytes) => request.buffer_size(bytes),
                None => request,
            }
        };
        // A streamed workload's large bodies are counted chunk by chunk (a
        // 1 GiB body is never held whole); small ones are collected in the
        // `Response` (one hand-over per transfer, as an async caller would).
        let (response, body) = if stream && size > STREAM_ABOVE {
            (None, Some(client.stream(make)))
        } else {
            (Some(client.submit(make)), None)
        };
        async move {
            let (status, len) = match (response, body) {
                (Some(response), _) => {
                    let response = response.await.map_err(|e| format!("{shown}: {e}"))?;
                    (response.status(), response.body().len() as u64)
                }
                (None, Some(mut body)) => {
                    let mut len = 0u64;
                    while let Some(chunk) =
                        body.chunk().await.map_err(|e| format!("{shown}: {e}"))?
                    {
                        len += chunk.len() as u64;
                    }
                    (body.head().map_or(0, |head| head.status()), len)
                }
                (None, None) => unreachable!("one of the two is made above"),
            };
            check(&shown, i64::from(status), len, size)?;
            Ok(len)
        }
    })
}

/// Fetches every URL of `job` with `fetch` (which checks the response and
/// returns the body length) from `job.inflight` tasks on a current-thread
/// tokio runtime, or a multi-thread one.
fn run_async_workers<F, Fut>(job: &mut Job, multi_thread: bool, fetch: F) -> Outcome
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<u64, String>> + Send + 'static,
{
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;

    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = builder.enable_all().build().map_err(|e| e.to_string())?;
    let urls = Arc::new(std::mem::take(&mut job.urls));
    let next = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let workers = job.inflight.min(urls.len());
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let (fetch, urls, next) = (fetch.clone(), Arc::clone(&urls), Arc::clone(&next));
            let (bytes, done) = (Arc::clone(&bytes), Arc::clone(&done));
            tasks.spawn(async move {
                while let Some(url) = urls
                    .get(next.fetch_add(1, Ordering::Relaxed))
                    .map(str::to_string)
                {
                    let len = fetch(url).await?;
                    bytes.fetch_add(len, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            });
        }
        let all = async {
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(|e| e.to_string())??;
            }
            Ok::<(), String>(())
        };
        tokio::time::timeout(DEADLINE, all)
            .await
            .map_err(|_| format!("gave up after {DEADLINE:?}"))?
    })?;
    Ok((done.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed)))
}
