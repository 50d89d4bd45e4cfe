//! A loopback server that misbehaves on purpose. For each request it picks a
//! [`Fault`] at random — from a seed and the request's id in the URL, so the
//! client can compute the same choice and know what outcome to expect.

use super::background::Background;
use super::fill_body_bytes;
use bytes::Bytes;
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 200 with the body.
    Normal,
    /// Sends half of the announced body, then resets the connection.
    ResetMidBody,
    /// Closes the connection without answering.
    CloseBeforeHeaders,
    /// Never answers (until the client gives up).
    Stall,
    /// 200 with the body sent in pieces, slowly.
    SlowDrip,
    /// 500 with the body.
    Status500,
    /// 503 with the body.
    Status503,
    /// 302 to a URL that then answers normally.
    Redirect,
    /// A response whose header block is malformed.
    MalformedStatus,
    /// A header line larger than libcurl accepts.
    OversizedHeaders,
    /// HTTP/2 only: part of the body, then RST_STREAM.
    H2StreamReset,
}

/// splitmix64: a well-mixed 64-bit value from any input.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The fault for request `id` under `seed` (HTTP/1.1 or HTTP/2 port).
pub fn fault_for(seed: u64, id: u64, h2: bool) -> Fault {
    let roll = mix(seed ^ mix(id)) % 1000;
    if h2 {
        return if roll < 250 {
            Fault::H2StreamReset
        } else {
            Fault::Normal
        };
    }
    match roll {
        0..=549 => Fault::Normal,
        550..=609 => Fault::ResetMidBody,
        610..=659 => Fault::CloseBeforeHeaders,
        660..=679 => Fault::Stall,
        680..=749 => Fault::SlowDrip,
        750..=799 => Fault::Status500,
        800..=849 => Fault::Status503,
        850..=919 => Fault::Redirect,
        920..=959 => Fault::MalformedStatus,
        _ => Fault::OversizedHeaders,
    }
}

/// Body length of request `id`: 1 byte to 16 KiB.
pub fn body_len(seed: u64, id: u64) -> usize {
    1 + (mix(seed.wrapping_add(id).rotate_left(17)) % 16_384) as usize
}

/// The body of request `id`.
pub fn body_of(seed: u64, id: u64) -> Vec<u8> {
    let mut body = vec![0; body_len(seed, id)];
    fill_body_bytes(&mut body, seed ^ id);
    body
}

/// The chaos server: one HTTP/1.1 port with every fault, one h2c port.
pub struct ChaosServer {
    h1: Background,
    h2: Background,
}

impl ChaosServer {
    /// Starts both ports.
    pub fn start(seed: u64) -> ChaosServer {
        let h1 = Background::spawn("chaos-h1", 1, move |listener| async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_h1(stream, seed));
            }
        });
        let h2 = Background::spawn("chaos-h2", 1, move |listener| async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_h2(stream, seed));
            }
        });
        ChaosServer { h1, h2 }
    }

    /// URL of request `id` on the HTTP/1.1 port.
    pub fn h1_url(&self, id: u64) -> String {
        format!("http://127.0.0.1:{}/chaos/{id}", self.h1.port())
    }

    /// URL of request `id` on the h2c port.
    pub fn h2_url(&self, id: u64) -> String {
        format!("http://127.0.0.1:{}/chaos/{id}", self.h2.port())
    }
}

/// Parses `/chaos/{id}` (and `/chaos/{id}/final`, a redirect's target).
fn parse_path(path: &str) -> Option<(u64, bool)> {
    let rest = path.strip_prefix("/chaos/")?;
    let (id, is_final) = match rest.strip_suffix("/final") {
        Some(id) => (id, true),
        None => (rest, false),
    };
    Some((id.parse().ok()?, is_final))
}

/// Reads one request head; None at EOF or on garbage.
async fn read_head(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            buffer.drain(..end + 4);
            return Some(head);
        }
        if buffer.len() > 65_536 {
            return None;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn serve_h1(mut stream: TcpStream, seed: u64) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    while let Some(head) = read_head(&mut stream, &mut buffer).await {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let Some((id, is_final)) = parse_path(path) else {
            return;
        };
        let body = body_of(seed, id);
        let fault = if is_final {
            Fault::Normal
        } else {
            fault_for(seed, id, false)
        };
        let keep_going = match fault {
            Fault::Normal => respond(&mut stream, "200 OK", &body).await,
            Fault::Status500 => respond(&mut stream, "500 Internal Server Error", &body).await,
            Fault::Status503 => respond(&mut stream, "503 Service Unavailable", &body).await,
            Fault::Redirect => {
                let head = format!(
                    "HTTP/1.1 302 Found\r\nLocation: /chaos/{id}/final\r\nContent-Length: 0\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).await.is_ok()
            }
            Fault::SlowDrip => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let mut ok = stream.write_all(head.as_bytes()).await.is_ok();
                for piece in body.chunks(body.len().div_ceil(4)) {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    ok = ok && stream.write_all(piece).await.is_ok();
                }
                ok
            }
            Fault::ResetMidBody => {
                let total = body.len().max(1000);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&vec![7u8; total / 2]).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(5)).await;
                reset(stream);
                return;
            }
            Fault::CloseBeforeHeaders => return,
            Fault::Stall => {
                // Hold the connection until the client gives up (EOF).
                let mut sink = [0u8; 1024];
                let wait = tokio::time::timeout(Duration::from_secs(30), async {
                    while let Ok(n) = stream.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
                let _ = wait.await;
                return;
            }
            Fault::MalformedStatus => {
                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\nbody";
                let _ = stream.write_all(reply).await;
                return;
            }
            Fault::OversizedHeaders => {
                let mut reply = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
                reply.extend(std::iter::repeat_n(b'a', 300 * 1024));
                reply.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
                let _ = stream.write_all(&reply).await;
                return;
            }
            Fault::H2StreamReset => return,
        };
        if !keep_going {
            return;
        }
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &[u8]) -> bool {
    let mut reply = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    reply.extend_from_slice(body);
    stream.write_all(&reply).await.is_ok()
}

/// Closes with RST: SO_LINGER 0, then close.
fn reset(stream: TcpStream) {
    let _ = super::raw::set_zero_linger(&stream);
    drop(stream);
}

type ChunkResult = Result<Frame<Bytes>, std::io::Error>;

async fn serve_h2(stream: TcpStream, seed: u64) {
    let service = service_fn(
        move |request: hyper::Request<hyper::body::Incoming>| async move {
            let id = parse_path(request.uri().path()).map_or(0, |(id, _)| id);
            let body = Bytes::from(body_of(seed, id));
            let chunks: Vec<ChunkResult> = if fault_for(seed, id, true) == Fault::H2StreamReset {
                vec![
                    Ok(Frame::data(body.slice(..body.len() / 2))),
                    Err(std::io::Error::other("chaos: reset this stream")),
                ]
            } else {
                vec![Ok(Frame::data(body.clone()))]
            };
            let mut response = hyper::Response::new(FrameList {
                frames: chunks.into_iter(),
            });
            if fault_for(seed, id, true) == Fault::Normal {
                response.headers_mut().insert(
                    hyper::header::CONTENT_LENGTH,
                    hyper::header::HeaderValue::from(body.len()),
                );
            }
            Ok::<_, Infallible>(response)
        },
    );
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder.max_concurrent_streams(1024);
    let _ = builder
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// A response body made of a fixed list of frames (or errors), one per poll.
struct FrameList {
    frames: std::vec::IntoIter<ChunkResult>,
}

impl hyper::body::Body for FrameList {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<ChunkResult>> {
        std::task::Poll::Ready(self.get_mut().frames.next())
    }
}
