//! The plain-HTTP loopback server and the body generator its routes serve:
//! the part of the test support that tests/c_api.rs includes too (as its
//! `support` module), besides tests/it/support.

pub(crate) mod background;
pub(crate) mod http;

pub use http::HttpServer;

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

/// Lower-case hex encoding of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}
