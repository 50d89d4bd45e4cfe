//! The integration tests, as one test binary (`cargo test --test it`): one
//! module per area, sharing the loopback servers and the leak-checking
//! harness in `support/`, which are compiled once for all of them.
//!
//! Test names carry their module (`transfers::…`, `download::…`), so one
//! area runs with `cargo test --test it transfers::`. The tests that must
//! stay in a binary of their own are in `tests/c_api.rs`, `tests/memcheck.rs`
//! (which re-runs parts of this binary under valgrind) and
//! `tests/bench_smoke.rs`; each says why at its top.

mod support;

mod api;
mod chaos;
mod control;
mod download;
mod failures;
mod hardening;
mod high_fds;
mod links;
mod remote;
mod sequences;
mod support_selftest;
mod transfers;
