//! A listener served by a tokio runtime on a background thread.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::oneshot;

/// Listen backlog: large enough for bursts of 1,000+ connects.
const BACKLOG: u32 = 4096;

/// How long `drop` waits for the runtime's tasks to be dropped.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(2);

/// Owns the background thread of one server; dropping it stops the accept
/// loop, drops every connection task and joins the thread.
pub(crate) struct Background {
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Background {
    /// Binds `127.0.0.1:0` on a new thread running a multi-thread runtime
    /// with `workers` workers, then runs `serve(listener)` there until the
    /// value is dropped. Returns once the listener is bound.
    // (tests/c_api.rs, which includes this file too, calls only `spawn_at`.)
    #[allow(dead_code)]
    pub(crate) fn spawn<F, Fut>(name: &str, workers: usize, serve: F) -> Background
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Background::spawn_at(name, IpAddr::V4(Ipv4Addr::LOCALHOST), workers, serve)
    }

    /// As [`spawn`](Background::spawn), bound to `ip` (port 0) instead: an
    /// address of a network namespace the test made (tests/it/links.rs).
    /// The thread, and so the listener, is in the calling thread's namespace.
    pub(crate) fn spawn_at<F, Fut>(name: &str, ip: IpAddr, workers: usize, serve: F) -> Background
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (port_tx, port_rx) = mpsc::channel::<io::Result<u16>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread_name = name.to_string();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(workers.max(1))
                    .thread_name(format!("{thread_name}-worker"))
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = port_tx.send(Err(e));
                        return;
                    }
                };
                let listener = match rt.block_on(bind(ip)) {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = port_tx.send(Err(e));
                        return;
                    }
                };
                let port = match listener.local_addr() {
                    Ok(addr) => addr.port(),
                    Err(e) => {
                        let _ = port_tx.send(Err(e));
                        return;
                    }
                };
                let _ = port_tx.send(Ok(port));
                rt.block_on(async move {
                    // Ends on an explicit stop or when the sender is dropped.
                    tokio::select! {
                        _ = serve(listener) => {}
                        _ = stop_rx => {}
                    }
                });
                // The accept loop (and the listener) is gone; now drop every
                // connection task still alive.
                rt.shutdown_timeout(SHUTDOWN_TIMEOUT);
            })
            .expect("spawn server thread");
        let port = match port_rx.recv() {
            Ok(Ok(port)) => port,
            Ok(Err(e)) => panic!("{name}: cannot listen on {ip}: {e}"),
            Err(_) => panic!("{name}: server thread died before binding"),
        };
        Background {
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// The bound port on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds a listener on `ip` with an ephemeral port and a large backlog.
async fn bind(ip: IpAddr) -> io::Result<TcpListener> {
    let socket = match ip {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.listen(BACKLOG)
}

/// Sleeps briefly after a failed `accept` (e.g. EMFILE) so the loop does not
/// spin; the caller simply tries again.
pub(crate) async fn accept_backoff() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}
