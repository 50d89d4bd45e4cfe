//! Loopback test servers and helpers shared by the integration tests.
//!
//! Every server binds `127.0.0.1:0`, runs on its own background thread (a
//! small tokio runtime) and stops when the value returned by its constructor
//! is dropped: the listener is closed and every open connection is dropped
//! before `drop` returns.
//!
//! Each test binary includes this module with `mod support;` and uses only
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code, unused_imports)]

mod background;
pub mod chaos;
pub mod harness;
mod http;
mod raw;
mod tls;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub use http::{HttpServer, HttpsServer};
pub use raw::RawServer;

/// Deterministic pseudo-random bytes (splitmix64-seeded xorshift64*).
///
/// `body_bytes(n, seed)` is a prefix of `body_bytes(m, seed)` for `n <= m`,
/// so a partial body can be checked against a shorter call.
pub fn body_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    fill_body_bytes(&mut out, seed);
    out
}

/// Fills `buf` with the bytes `body_bytes(buf.len(), seed)` would return.
pub fn fill_body_bytes(buf: &mut [u8], seed: u64) {
    // splitmix64 turns any seed (including 0) into a non-zero xorshift state.
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let mut state = if z == 0 { 0x2545_F491_4F6C_DD1D } else { z };
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        chunk.copy_from_slice(&next().to_le_bytes());
    }
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let last = next().to_le_bytes();
        let n = tail.len();
        tail.copy_from_slice(&last[..n]);
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lower-case hex encoding of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Number of entries in `/proc/self/fd` (the descriptor used to list the
/// directory is counted too, consistently on every call).
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// A `127.0.0.1` port with nothing listening on it (an ephemeral port that
/// was bound and released again).
pub fn refused_port() -> u16 {
    let listener =
        TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local_addr").port();
    drop(listener);
    port
}

/// Polls `cond` every 5 ms until it returns true or `timeout` elapses;
/// returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
