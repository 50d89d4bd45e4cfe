//! `ProxyServer`: a small HTTP forward proxy on 127.0.0.1 for the proxy
//! tests. It takes absolute-form requests (`GET http://host:port/path
//! HTTP/1.1`) and `CONNECT host:port` tunnels, forwards only to 127.0.0.1 or
//! localhost (anything else is answered 403), and records what it was asked.

use std::io;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::background::{accept_backoff, Background};

/// Largest request head read.
const MAX_HEAD: usize = 64 << 10;

/// A forward proxy; stops when dropped.
pub struct ProxyServer {
    background: Background,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ProxyServer {
    /// Binds 127.0.0.1:0 and proxies on a background thread.
    pub fn start() -> ProxyServer {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let log = Arc::clone(&seen);
        let background = Background::spawn("support-proxy", 1, move |listener| {
            accept_loop(listener, log)
        });
        ProxyServer { background, seen }
    }

    /// `http://127.0.0.1:PORT`, for `--proxy` or `http_proxy`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.background.port())
    }

    /// The request lines it was sent, in order (`GET http://...`, `CONNECT ...`).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn accept_loop(listener: TcpListener, seen: Arc<Mutex<Vec<String>>>) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _peer)) => client,
            Err(_) => {
                accept_backoff().await;
                continue;
            }
        };
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let _ = serve(client, &seen).await;
        });
    }
}

/// One client connection: one request forwarded (on a new upstream
/// connection, both closed after its response), or one tunnel.
async fn serve(mut client: TcpStream, seen: &Mutex<Vec<String>>) -> io::Result<()> {
    let mut buf = Vec::new();
    {
        let Some(head_end) = read_head(&mut client, &mut buf).await? else {
            return Ok(());
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let rest = buf.split_off(head_end);
        buf.clear();
        let request_line = head.lines().next().unwrap_or_default().to_owned();
        seen.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request_line.clone());
        let mut parts = request_line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "CONNECT" {
            let Some(mut upstream) = connect_local(target).await else {
                return refuse(&mut client).await;
            };
            client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await?;
            upstream.write_all(&rest).await?;
            tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
            return Ok(());
        }
        let Some(after_scheme) = target.strip_prefix("http://") else {
            return refuse(&mut client).await;
        };
        let (authority, path) = match after_scheme.find('/') {
            Some(slash) => after_scheme.split_at(slash),
            None => (after_scheme, "/"),
        };
        let Some(mut upstream) = connect_local(authority).await else {
            return refuse(&mut client).await;
        };
        // Origin-form request line; the proxy's own headers go, and the
        // upstream connection is closed after one response.
        let mut forwarded = format!("{method} {path} HTTP/1.1\r\n");
        for line in head.split("\r\n").skip(1) {
            let lower = line.to_ascii_lowercase();
            if line.is_empty()
                || lower.starts_with("proxy-connection:")
                || lower.starts_with("connection:")
            {
                continue;
            }
            forwarded.push_str(line);
            forwarded.push_str("\r\n");
        }
        forwarded.push_str("Connection: close\r\n\r\n");
        upstream.write_all(forwarded.as_bytes()).await?;
        upstream.write_all(&rest).await?;
        let mut response = Vec::new();
        upstream.read_to_end(&mut response).await?;
        client.write_all(&response).await?;
        client.flush().await?;
        // The response ran to the upstream's close; the client's connection
        // closes with it.
        Ok(())
    }
}

/// Reads until a complete request head is in `buf`; `None` at EOF.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(pos + 4));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Connects to `authority` if it names this machine's loopback; the proxy
/// never reaches anywhere else.
async fn connect_local(authority: &str) -> Option<TcpStream> {
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    if host != "127.0.0.1" && host != "localhost" {
        return None;
    }
    TcpStream::connect(("127.0.0.1", port)).await.ok()
}

async fn refuse(client: &mut TcpStream) -> io::Result<()> {
    client
        .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await
}
