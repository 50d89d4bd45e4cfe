//! `LinkProxy`: a TCP proxy that makes a link worse on purpose. Every
//! connection gets, from a seed and its number, a one-way latency per
//! direction, maybe a stall (forwarding stops for a while at some byte), and
//! maybe a reset (after some byte of the server's data, the client's side is
//! closed with RST). Order and content of the bytes that do pass are kept.
//!
//! It counts what it did, so a test can hold each outcome against it. On a
//! connection carrying HTTP/1.1 it follows the requests and responses
//! (support/http1_exchange.rs) and records, for each reset, the request
//! whose response it broke and whether the client had that response's
//! status line in full: a "cut", which must fail that transfer. A reset
//! before a response's status line is complete need not: a client may
//! resend the request on a fresh connection, as it would after a server
//! closed an idle keep-alive connection (libcurl 8 does when it has
//! received no complete header line on a reused connection; 7.88 was seen
//! failing such transfers instead).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::background::{accept_backoff, Background};
use super::chaos::mix;
pub use super::http1_exchange::Broken;
use super::http1_exchange::Exchange;
use super::raw::{set_zero_linger, wait_send_queue_empty};

/// Bytes read at once; also the unit the latency line holds.
const READ_CHUNK: usize = 16 * 1024;

/// Chunks a direction's latency line holds before it stops reading.
const LINE_CHUNKS: usize = 16;

/// What the proxy does to its connections; probabilities in per mille.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// One-way latency range in ms (uniform, per connection and direction);
    /// `None` when the link itself delays (netem).
    pub latency_ms: Option<(u64, u64)>,
    /// Chance, per connection and direction, of one stall.
    pub stall_per_mille: u64,
    /// The stall's length range, in ms.
    pub stall_ms: (u64, u64),
    /// The stall begins at a byte offset below this.
    pub stall_within: usize,
    /// Chance, per connection, of a reset.
    pub reset_per_mille: u64,
    /// The reset comes after this many bytes from the server (a range).
    pub reset_after: (usize, usize),
}

impl Faults {
    /// Latency only: no stall, no reset.
    pub fn latency_only(latency_ms: Option<(u64, u64)>) -> Faults {
        Faults {
            latency_ms,
            stall_per_mille: 0,
            stall_ms: (0, 0),
            stall_within: 1,
            reset_per_mille: 0,
            reset_after: (1, 1),
        }
    }
}

/// What the proxy did, so far.
#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    stalls: AtomicUsize,
    resets: AtomicUsize,
    /// What each reset of a forwarded connection broke.
    broken: Mutex<Vec<Broken>>,
    upstream_failures: AtomicUsize,
}

/// The proxy: listens on 127.0.0.1 (in the namespace of the thread that
/// starts it), forwards every connection to `upstream`; stops when dropped.
pub struct LinkProxy {
    background: Background,
    counters: Arc<Counters>,
}

impl LinkProxy {
    /// Starts the proxy; `seed` decides every connection's plan.
    pub fn start(upstream: SocketAddr, seed: u64, faults: Faults) -> LinkProxy {
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        let background = Background::spawn_at(
            "link-proxy",
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            2,
            move |listener| accept_loop(listener, upstream, seed, faults, shared),
        );
        LinkProxy {
            background,
            counters,
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.background.port())
    }

    /// `https://127.0.0.1:PORT` followed by `path`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.background.port())
    }

    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// Stalls that happened.
    pub fn stalls(&self) -> usize {
        self.counters.stalls.load(Ordering::SeqCst)
    }

    /// Connections reset, including those whose upstream could not be reached.
    pub fn resets(&self) -> usize {
        self.counters.resets.load(Ordering::SeqCst)
    }

    /// What each reset of a connection that reached the upstream broke.
    pub fn broken(&self) -> Vec<Broken> {
        self.counters.broken.lock().expect("broken").clone()
    }

    /// Targets of the HTTP/1.1 requests whose responses were cut: reset
    /// after their status line, and before their end, had reached the
    /// client's kernel. Each must fail its transfer.
    pub fn cut_requests(&self) -> Vec<String> {
        self.broken()
            .into_iter()
            .filter_map(|broken| match broken {
                Broken::Request {
                    target,
                    status_line: true,
                } => Some(target),
                _ => None,
            })
            .collect()
    }

    /// Connections reset because the upstream could not be reached.
    pub fn upstream_failures(&self) -> usize {
        self.counters.upstream_failures.load(Ordering::SeqCst)
    }
}

/// One connection's plan.
#[derive(Debug, Clone, Copy)]
struct Plan {
    up: Direction,
    down: Direction,
    /// Reset the client after this many bytes from the server.
    reset_after: Option<usize>,
}

/// One direction's part of a plan.
#[derive(Debug, Clone, Copy)]
struct Direction {
    delay: Duration,
    /// (byte offset, length) of the stall.
    stall: Option<(usize, Duration)>,
}

impl Plan {
    /// The plan of connection number `n`.
    fn new(seed: u64, n: u64, faults: &Faults) -> Plan {
        let mut state = mix(seed ^ mix(n));
        let mut roll = move || {
            state = mix(state);
            state
        };
        let within = |(low, high): (u64, u64), r: u64| low + r % (high - low + 1);
        let mut direction = || {
            let delay = faults.latency_ms.map_or(0, |range| within(range, roll()));
            let stall = (roll() % 1000 < faults.stall_per_mille).then(|| {
                let at = (roll() % faults.stall_within as u64) as usize;
                (at, Duration::from_millis(within(faults.stall_ms, roll())))
            });
            Direction {
                delay: Duration::from_millis(delay),
                stall,
            }
        };
        let (up, down) = (direction(), direction());
        let (low, high) = faults.reset_after;
        let reset_after = (roll() % 1000 < faults.reset_per_mille)
            .then(|| within((low as u64, high as u64), roll()) as usize);
        Plan {
            up,
            down,
            reset_after,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    seed: u64,
    faults: Faults,
    counters: Arc<Counters>,
) {
    loop {
        let client = match listener.accept().await {
            Ok((client, _peer)) => client,
            Err(_) => {
                accept_backoff().await;
                continue;
            }
        };
        let n = counters.connections.fetch_add(1, Ordering::SeqCst) as u64;
        let plan = Plan::new(seed, n, &faults);
        let counters = Arc::clone(&counters);
        tokio::spawn(async move { serve(client, upstream, plan, &counters).await });
    }
}

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its source ended (or a side failed); the destination got a FIN.
    Closed,
    /// Its reset point was reached.
    Reset,
}

/// Forwards one connection by its plan.
async fn serve(mut client: TcpStream, upstream: SocketAddr, plan: Plan, counters: &Counters) {
    let _ = client.set_nodelay(true);
    let mut server = match TcpStream::connect(upstream).await {
        Ok(server) => server,
        Err(_) => {
            counters.upstream_failures.fetch_add(1, Ordering::SeqCst);
            counters.resets.fetch_add(1, Ordering::SeqCst);
            let _ = set_zero_linger(&client);
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let exchange = Mutex::new(Exchange::default());
    let lock = || exchange.lock().expect("exchange");
    let to_server = |bytes: &[u8]| lock().sent_to_server(bytes);
    let to_client = |bytes: &[u8]| lock().sent_to_client(bytes);
    let reset = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let up = pump(
            client_read,
            server_write,
            plan.up,
            None,
            counters,
            &to_server,
        );
        let down = pump(
            server_read,
            client_write,
            plan.down,
            plan.reset_after,
            counters,
            &to_client,
        );
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                // (Only the server's direction has a reset point.)
                _ = &mut up, if !up_done => up_done = true,
                end = &mut down, if !down_done => match end {
                    End::Closed => down_done = true,
                    End::Reset => break true,
                },
            }
            if up_done && down_done {
                break false;
            }
        }
    };
    if reset {
        counters.resets.fetch_add(1, Ordering::SeqCst);
        // The bytes before the reset reach the client first (a reset
        // discards what is still queued), so what the exchange saw written
        // is what the client got; if they do not in time, it may not have
        // the status line.
        let delivered = wait_send_queue_empty(&client).await;
        let mut broken = lock().broken();
        if let Broken::Request { status_line, .. } = &mut broken {
            *status_line &= delivered;
        }
        counters.broken.lock().expect("broken").push(broken);
        let _ = set_zero_linger(&client);
    }
    // Dropping the streams closes both (the client's with RST after a reset).
}

/// Forwards `from` to `to`, each read delayed by the direction's latency,
/// with its stall; ends with a FIN at the source's end, or at `reset_after`
/// bytes without one. `delivered` sees every byte written to `to`.
async fn pump(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    direction: Direction,
    reset_after: Option<usize>,
    counters: &Counters,
    delivered: &(dyn Fn(&[u8]) + Sync),
) -> End {
    let (line_in, mut line_out) = mpsc::channel::<(Instant, Bytes)>(LINE_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            // Ends at EOF or on an error (a reset client or server).
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = Instant::now() + direction.delay;
            if line_in
                .send((due, Bytes::copy_from_slice(&buf[..n])))
                .await
                .is_err()
            {
                break;
            }
        }
        drop(line_in);
        std::future::pending::<()>().await
    };
    let writer = async {
        // Bytes written so far; the stall and the reset happen at fixed
        // offsets in that count, whichever comes first first.
        let mut sent = 0usize;
        let mut stall = direction.stall;
        while let Some((due, read)) = line_out.recv().await {
            tokio::time::sleep_until(due).await;
            let end = sent + read.len();
            let mut rest = read.clone();
            loop {
                let stall_at = stall.map_or(usize::MAX, |(at, _)| at);
                if let Some(at) = reset_after.filter(|&at| at <= end && at <= stall_at) {
                    let head = rest.split_to(at - sent);
                    if to.write_all(&head).await.is_ok() {
                        delivered(&head);
                    }
                    return End::Reset;
                }
                if let Some((at, pause)) = stall.filter(|&(at, _)| at < end) {
                    let before = rest.split_to(at - sent);
                    if to.write_all(&before).await.is_err() {
                        return End::Closed;
                    }
                    delivered(&before);
                    sent = at;
                    counters.stalls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(pause).await;
                    stall = None;
                    continue;
                }
                if to.write_all(&rest).await.is_err() {
                    return End::Closed;
                }
                delivered(&rest);
                sent = end;
                break;
            }
        }
        let _ = to.shutdown().await;
        End::Closed
    };
    tokio::select! {
        end = writer => end,
        _ = reader => unreachable!("the reader never ends on its own"),
    }
}
