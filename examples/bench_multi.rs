//! The benchmark's `uvcurl` client (`benches/compare/child.rs`) in a binary
//! of its own: `bench_multi uvcurl --urls FILE --size BYTES --inflight N
//! [--h2c] [--stream] [--close]`. `compare` runs it as the `uvcurl-own`
//! client, so that uvcurl's peak RSS is not that of a binary which also
//! carries reqwest, tokio and hyper (the C clients are binaries of their own
//! too). Build it with `vendor/cargo build --release --example bench_multi`.

// The other clients of the file are compiled but never called (nor linked).
#[allow(dead_code)]
#[path = "../benches/compare/child.rs"]
mod child;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    child::main_multi_only(&args)
}
