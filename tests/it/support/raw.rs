//! `RawServer`: misbehaving TCP servers for fault tests.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::background::{accept_backoff, Background};
use super::body_bytes;

/// Largest request head read (1 MiB).
const MAX_HEAD: usize = 1 << 20;

/// Largest request body drained (by Content-Length) before answering.
const MAX_DRAIN: u64 = 64 << 20;

/// How long reading the request may take before the server acts anyway.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to keep reading after our FIN before closing (so unread client
/// data does not turn the close into a reset).
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long `reset_mid_body` waits for its bytes to leave the send queue.
const OUTQ_TIMEOUT: Duration = Duration::from_secs(5);

/// What a raw server does with each connection.
enum Mode {
    Silent(Arc<AtomicUsize>),
    ResetMidBody { total: usize, sent: usize },
    CloseBeforeHeaders,
    Script(Vec<u8>),
    HangUpOnSecondRequest,
}

/// A TCP server on 127.0.0.1 that misbehaves in one fixed way on every
/// connection; stops (dropping all connections) when dropped.
pub struct RawServer {
    background: Background,
    connections: Arc<AtomicUsize>,
    /// Silent mode: connections the client closed.
    hangups: Arc<AtomicUsize>,
}

impl RawServer {
    /// Accepts, reads and discards, never answers; keeps each socket open
    /// until the server is dropped.
    pub fn silent() -> RawServer {
        let hangups = Arc::new(AtomicUsize::new(0));
        let mut server = RawServer::start(Mode::Silent(hangups.clone()));
        server.hangups = hangups;
        server
    }

    /// Reads the request, answers `200 OK` with `Content-Length: total`,
    /// writes the first `sent` bytes of `body_bytes(total, 0)`, waits until
    /// they have left the send queue, then resets the connection
    /// (`SO_LINGER` 0 and close).
    pub fn reset_mid_body(total: usize, sent: usize) -> RawServer {
        RawServer::start(Mode::ResetMidBody {
            total,
            sent: sent.min(total),
        })
    }

    /// Reads the request, then closes (FIN) without writing anything.
    pub fn close_before_headers() -> RawServer {
        RawServer::start(Mode::CloseBeforeHeaders)
    }

    /// Reads the request, writes `response` verbatim, then closes (FIN).
    pub fn script(response: Vec<u8>) -> RawServer {
        RawServer::start(Mode::Script(response))
    }

    /// Answers the first request on each connection with an empty `200 OK`
    /// and keeps the connection; reads the second request's head, then
    /// closes (FIN) without answering: a kept-alive connection that dies
    /// under the next request.
    pub fn hang_up_on_second_request() -> RawServer {
        RawServer::start(Mode::HangUpOnSecondRequest)
    }

    /// Binds 127.0.0.1:0 and runs `mode` on a background thread.
    fn start(mode: Mode) -> RawServer {
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let mode = Arc::new(mode);
        let background = Background::spawn("support-raw", 1, move |listener| {
            accept_loop(listener, mode, counter)
        });
        RawServer {
            background,
            connections,
            hangups: Arc::default(),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port(), path)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.background.port()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Silent mode: connections the client has closed so far.
    pub fn hangups(&self) -> usize {
        self.hangups.load(Ordering::SeqCst)
    }
}

/// Accepts connections until the task is dropped.
async fn accept_loop(listener: TcpListener, mode: Arc<Mode>, counter: Arc<AtomicUsize>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(_) => {
                accept_backoff().await;
                continue;
            }
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        let mode = Arc::clone(&mode);
        tokio::spawn(async move {
            let _ = serve(stream, &mode).await;
        });
    }
}

/// Runs `mode` on one connection.
async fn serve(mut stream: TcpStream, mode: &Mode) -> io::Result<()> {
    match mode {
        Mode::Silent(hangups) => {
            let mut buf = vec![0u8; 64 * 1024];
            // Ends at EOF or on an error; then hold the socket until the
            // runtime is shut down.
            while stream.read(&mut buf).await.unwrap_or(0) > 0 {}
            hangups.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>().await;
            Ok(())
        }
        Mode::ResetMidBody { total, sent } => {
            read_request(&mut stream).await?;
            let mut out =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n").into_bytes();
            out.extend_from_slice(&body_bytes(*sent, 0));
            stream.write_all(&out).await?;
            stream.flush().await?;
            wait_send_queue_empty(&stream).await;
            set_zero_linger(&stream)?;
            drop(stream);
            Ok(())
        }
        Mode::CloseBeforeHeaders => {
            read_request(&mut stream).await?;
            graceful_close(stream).await;
            Ok(())
        }
        Mode::Script(response) => {
            read_request(&mut stream).await?;
            stream.write_all(response).await?;
            stream.flush().await?;
            graceful_close(stream).await;
            Ok(())
        }
        Mode::HangUpOnSecondRequest => {
            read_request(&mut stream).await?;
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await?;
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            while find(&head, b"\r\n\r\n").is_none() && head.len() < MAX_HEAD {
                match stream.read(&mut chunk).await? {
                    0 => return Ok(()),
                    n => head.extend_from_slice(&chunk[..n]),
                }
            }
            graceful_close(stream).await;
            Ok(())
        }
    }
}

/// Reads a request head and, unless it expects `100-continue`, a body of
/// its Content-Length; gives up after `READ_TIMEOUT` or at EOF.
async fn read_request(stream: &mut TcpStream) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(());
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => return Err(e),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if head.contains("\r\nexpect:") {
        return Ok(());
    }
    let length = head
        .split("\r\n")
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_DRAIN);
    let mut remaining = length.saturating_sub((buf.len() - head_end) as u64);
    while remaining > 0 {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(n)) => remaining = remaining.saturating_sub(n as u64),
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends FIN, then reads (and discards) until EOF or `LINGER_TIMEOUT`, so
/// that late client bytes do not make the kernel answer with a reset.
async fn graceful_close(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIMEOUT;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
    }
}

/// Waits (at most `OUTQ_TIMEOUT`) until the kernel send queue of `stream`
/// holds no unsent or unacknowledged bytes; returns whether it emptied (the
/// peer's kernel has every byte written so far).
pub(crate) async fn wait_send_queue_empty(stream: &TcpStream) -> bool {
    let fd = stream.as_raw_fd();
    let start = Instant::now();
    while start.elapsed() < OUTQ_TIMEOUT {
        let mut queued: libc::c_int = 0;
        // SAFETY: `fd` is a valid socket owned by `stream` for the whole
        // call, and TIOCOUTQ writes a single c_int through the pointer.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
        if rc != 0 {
            return false;
        }
        if queued <= 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Sets `SO_LINGER` to {on, 0 s} so that closing sends a reset.
pub(crate) fn set_zero_linger(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is a valid socket owned by `stream`; the option value
    // points to a properly sized `linger` struct that outlives the call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
