//! [`Client`]: uvcurl for programs without a libuv loop of their own — one
//! or more loops, each on a thread of its own, behind a `Send + Sync` handle.

use crate::error::{Error, ErrorKind};
use crate::multi::Multi;
use crate::remote::{BodyStream, Counted, Remote, ResponseFuture};
use crate::request::Request;
use crate::share::Share;
use crate::sync::annotate;
use crate::uv::Loop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle, ThreadId};

/// One loop thread.
struct Worker {
    remote: Remote,
    /// Transfers submitted to this loop and not yet completed.
    load: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

struct Inner {
    /// Fixed once built: read without a lock on every submission (only the
    /// per-loop `load` counters change).
    workers: Box<[Worker]>,
}

/// A background HTTP client: `n` libuv loops on `n` threads (one by
/// default), sharing libcurl's DNS and TLS session caches. Submit from any
/// thread; await the [`ResponseFuture`] on any executor, or
/// [`wait`](ResponseFuture::wait) for it. Each transfer goes to the least busy
/// loop. Cloning is cheap; dropping the last clone cancels what is still
/// running, joins the threads and closes the loops.
///
/// ```no_run
/// let client = uvcurl::Client::new()?;
/// let response = client.get("http://127.0.0.1:8080/").wait()?;
/// println!("{}", response.status());
/// # Ok::<(), uvcurl::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// Options for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    loops: usize,
    max_host_connections: usize,
    connection_cache: usize,
}

impl Client {
    /// A client with one loop thread.
    ///
    /// # Errors
    /// If a thread, loop or multi handle cannot be created.
    pub fn new() -> Result<Client, Error> {
        Client::builder().build()
    }

    /// Options for a new client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            loops: 1,
            max_host_connections: 0,
            connection_cache: 0,
        }
    }

    /// Submits the request `make` builds (it runs on a loop thread).
    pub fn submit(&self, make: impl FnOnce() -> Request + Send + 'static) -> ResponseFuture {
        let Some(worker) = self.inner.least_busy() else {
            return closed_future();
        };
        // Counted until the transfer completes, on the loop thread.
        let counted = Counted::new(make, worker.load.clone());
        ResponseFuture::submit_made(&worker.remote, counted)
    }

    /// The [`Remote`] of the loop with the fewest transfers, e.g. for
    /// [`Remote::stream`] or [`Remote::submit_with`]. (Transfers submitted
    /// through it directly do not count towards the loop's load.)
    ///
    /// # Panics
    /// Never: a client has at least one loop.
    pub fn remote_of_least_busy_loop(&self) -> Remote {
        let worker = self
            .inner
            .least_busy()
            .expect("a client has at least one loop");
        worker.remote.clone()
    }

    /// Streams the body of the request `make` builds, chunk by chunk, from the
    /// loop with the fewest transfers: see [`Remote::stream`] (backpressure at
    /// about 1 MiB buffered; dropping the stream cancels the transfer).
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), uvcurl::Error> {
    /// let client = uvcurl::Client::new()?;
    /// let mut body = client.stream(|| uvcurl::Request::get("http://127.0.0.1:8080/big"));
    /// let mut total = 0;
    /// while let Some(chunk) = body.chunk().await? {
    ///     total += chunk.len();
    /// }
    /// # let _ = total; Ok(())
    /// # }
    /// ```
    pub fn stream(&self, make: impl FnOnce() -> Request + Send + 'static) -> BodyStream {
        let worker = self
            .inner
            .least_busy()
            .expect("a client has at least one loop");
        let load = worker.load.clone();
        load.fetch_add(1, Ordering::Relaxed);
        let guard = LoadGuard(load);
        worker.remote.stream(move || make().keep_alive(guard))
    }

    /// `GET url`.
    pub fn get(&self, url: impl Into<String>) -> ResponseFuture {
        let url = url.into();
        self.submit(move || Request::get(url))
    }

    /// How many loop threads this client runs.
    pub fn loops(&self) -> usize {
        self.inner.workers.len()
    }

    /// Transfers submitted and not completed, per loop.
    pub fn loads(&self) -> Vec<usize> {
        self.inner
            .workers
            .iter()
            .map(|w| w.load.load(Ordering::Relaxed))
            .collect()
    }
}

impl Inner {
    /// The worker with the fewest transfers (the first of equals).
    fn least_busy(&self) -> Option<&Worker> {
        self.workers
            .iter()
            .min_by_key(|w| w.load.load(Ordering::Relaxed))
    }
}

/// Decrements a loop's load when the request (and so its transfer) is gone.
struct LoadGuard(Arc<AtomicUsize>);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn closed_future() -> ResponseFuture {
    ResponseFuture::failed(Error::closed())
}

impl ClientBuilder {
    /// Runs `n` loops on `n` threads (at least 1).
    pub fn loops(mut self, n: usize) -> ClientBuilder {
        self.loops = n.max(1);
        self
    }

    /// Most connections to one host, per loop (0: no limit).
    pub fn max_host_connections(mut self, max: usize) -> ClientBuilder {
        self.max_host_connections = max;
        self
    }

    /// Most connections each loop keeps open for reuse (0: libcurl's guess,
    /// the default): see [`MultiBuilder::connection_cache`](crate::MultiBuilder::connection_cache).
    /// With a steady stream of transfers, a size of at least the
    /// connections in use spares libcurl its guessing.
    pub fn connection_cache(mut self, max: usize) -> ClientBuilder {
        self.connection_cache = max;
        self
    }

    /// Starts the threads.
    ///
    /// # Errors
    /// If a thread, loop or multi handle cannot be created.
    pub fn build(self) -> Result<Client, Error> {
        let share = Share::new()?;
        let mut workers = Vec::with_capacity(self.loops);
        for index in 0..self.loops {
            match spawn_worker(index, &self, &share) {
                Ok(worker) => workers.push(worker),
                Err(error) => {
                    shut_down(workers);
                    return Err(error);
                }
            }
        }
        Ok(Client {
            inner: Arc::new(Inner {
                workers: workers.into_boxed_slice(),
            }),
        })
    }
}

fn spawn_worker(index: usize, options: &ClientBuilder, share: &Share) -> Result<Worker, Error> {
    let (ready_tx, ready_rx) = mpsc::channel::<Result<Remote, Error>>();
    // The loop's state (its Remote, the Multi behind it) is built on the
    // loop thread and handed over through the channel, which the race
    // detectors cannot see (std's channels are built on atomics): announced.
    let handoff = Arc::new(0u8);
    let loop_handoff = handoff.clone();
    let builder = Multi::builder()
        .max_host_connections(options.max_host_connections)
        .connection_cache(options.connection_cache)
        .share(share);
    let thread = thread::Builder::new()
        .name(format!("uvcurl-loop-{index}"))
        .spawn(move || {
            let setup = Loop::new().and_then(|uv| {
                let multi = builder.build(&uv)?;
                let remote = multi.remote_keeping_loop_alive()?;
                Ok((uv, multi, remote))
            });
            let (uv, multi, remote) = match setup {
                Ok(parts) => parts,
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            annotate::before(Arc::as_ptr(&loop_handoff));
            let _ = ready_tx.send(Ok(remote));
            // Runs until the Multi is closed (its async handle keeps it alive).
            // `Loop::run` resumes a user callback's panic (a `submit_with`
            // completion through `remote_of_least_busy_loop`); on this thread
            // nobody called run to receive it, so it is logged (by the panic
            // module, when caught) and the loop goes on serving the others.
            loop {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| uv.run())) {
                    Ok(Ok(())) => break,
                    Ok(Err(error)) => {
                        log::error!("uvcurl: client loop {index} failed: {error}");
                        break;
                    }
                    Err(_) => continue,
                }
            }
            drop(multi);
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| uv.run()));
            if let Err(error) = uv.close() {
                log::error!("uvcurl: client loop {index}: {error}");
            }
        })
        .map_err(|e| {
            Error::new(
                ErrorKind::Driver,
                format!("cannot start a loop thread: {e}"),
            )
        })?;
    let thread_id = thread.thread().id();
    let ready = ready_rx.recv();
    annotate::after(Arc::as_ptr(&handoff));
    match ready {
        Ok(Ok(remote)) => Ok(Worker {
            remote,
            load: Arc::new(AtomicUsize::new(0)),
            thread: Some(thread),
            thread_id,
        }),
        Ok(Err(error)) => {
            let _ = thread.join();
            Err(error)
        }
        Err(_) => {
            let _ = thread.join();
            Err(Error::new(
                ErrorKind::Driver,
                "the loop thread died while starting",
            ))
        }
    }
}

/// Closes every loop and joins its thread (unless called from that thread,
/// which then finishes on its own).
fn shut_down(workers: Vec<Worker>) {
    for worker in &workers {
        worker.remote.close();
    }
    let me = thread::current().id();
    for mut worker in workers {
        if let Some(thread) = worker.thread.take() {
            if worker.thread_id != me {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        shut_down(std::mem::take(&mut self.workers).into_vec());
    }
}
