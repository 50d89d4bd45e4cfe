//! # uvcurl
//!
//! libcurl's multi interface driven by a libuv event loop: thousands of
//! concurrent HTTP(S) transfers on one thread, on a loop you own or one a host
//! program (Node.js, luv, Neovim, a C daemon) already runs. libcurl tells
//! uvcurl which sockets to watch and when to wake it; uvcurl keeps one
//! `uv_poll_t` per socket and one `uv_timer_t`, and completes every transfer
//! exactly once.
//!
//! ```toml
//! [dependencies]
//! uvcurl = { path = "../uvcurl" }   # or a git/registry source
//! ```
//!
//! ## Three entry points
//!
//! | you have | use | results arrive |
//! |---|---|---|
//! | a libuv loop on this thread | [`Multi`] | in callbacks on the loop thread, or from [`Multi::fetch`] |
//! | that loop, and other threads that submit | [`Remote`] (from [`Multi::remote`]) | in a `Send` callback on the loop thread, or as a [`ResponseFuture`] |
//! | no loop at all | [`Client`] (loops on threads of its own) | as a [`ResponseFuture`] (any executor) or `.wait()` |
//!
//! **Sequential, on your loop** — [`Multi::fetch`] runs the loop until that
//! one transfer is done:
//!
//! ```
//! # fn serve(body: &'static str) -> String {
//! #     use std::io::{Read, Write};
//! #     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! #     let url = format!("http://{}/", listener.local_addr().unwrap());
//! #     std::thread::spawn(move || {
//! #         for mut stream in listener.incoming().flatten() {
//! #             let _ = stream.read(&mut [0u8; 4096]);
//! #             let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{body}", body.len());
//! #         }
//! #     });
//! #     url
//! # }
//! # let url = serve("hello");
//! let uv = uvcurl::Loop::new()?;
//! let multi = uvcurl::Multi::new(&uv)?;
//! let response = multi.fetch(uvcurl::Request::get(&url))?.error_for_status()?;
//! assert_eq!(response.text(), "hello");
//! drop(multi);
//! uv.run()?;    // the Multi's libuv handles finish closing
//! uv.close()?;
//! # Ok::<(), uvcurl::Error>(())
//! ```
//!
//! **Concurrent, with callbacks** — each [`Request`] completes exactly once,
//! with a [`Response`] (any status) or an [`Error`]:
//!
//! ```
//! # fn serve(body: &'static str) -> String {
//! #     use std::io::{Read, Write};
//! #     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! #     let url = format!("http://{}/", listener.local_addr().unwrap());
//! #     std::thread::spawn(move || {
//! #         for mut stream in listener.incoming().flatten() {
//! #             let _ = stream.read(&mut [0u8; 4096]);
//! #             let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{body}", body.len());
//! #         }
//! #     });
//! #     url
//! # }
//! # let url = serve("hello");
//! use std::{cell::Cell, rc::Rc, time::Duration};
//! use uvcurl::{Loop, Multi, Request};
//!
//! let uv = Loop::new()?;
//! let multi = Multi::new(&uv)?;
//! let ok = Rc::new(Cell::new(0));
//! for _ in 0..3 {
//!     let ok = ok.clone();
//!     let request = Request::get(&url).timeout(Duration::from_secs(5));
//!     multi.start(request, move |result| match result {
//!         Ok(response) if response.status() == 200 => ok.set(ok.get() + 1),
//!         Ok(response) => eprintln!("status {}", response.status()),
//!         Err(error) => eprintln!("{:?}: {error}", error.kind()),
//!     })?;
//! }
//! uv.run()?;        // returns when all three completed
//! assert_eq!(ok.get(), 3);
//! drop(multi);      // closes its libuv handles ...
//! uv.run()?;        // ... which finish closing here
//! uv.close()?;      // no handle left
//! # Ok::<(), uvcurl::Error>(())
//! ```
//!
//! **From any thread or executor** — a [`Client`] runs its loops on threads
//! of its own; its futures need no particular executor:
//!
//! ```
//! # fn serve(body: &'static str) -> String {
//! #     use std::io::{Read, Write};
//! #     let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
//! #     let url = format!("http://{}/", listener.local_addr().unwrap());
//! #     std::thread::spawn(move || {
//! #         for mut stream in listener.incoming().flatten() {
//! #             let _ = stream.read(&mut [0u8; 4096]);
//! #             let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n{body}", body.len());
//! #         }
//! #     });
//! #     url
//! # }
//! # let url = serve("hello");
//! let client = uvcurl::Client::new()?;
//! let response = client.get(url).wait()?;   // or `.await` on any executor
//! assert_eq!(response.body(), b"hello");
//! # Ok::<(), uvcurl::Error>(())
//! ```
//!
//! ## Sockets above 1024
//!
//! libcurl checks sockets with `poll()` only when it was compiled with
//! `HAVE_POLL`; otherwise it uses `select()`, which cannot watch a descriptor
//! numbered 1024 or above. The libcurl this crate bundles gets that flag from
//! `CFLAGS`, so a program that may hold more than about 1,000 sockets (high
//! concurrency, or a raised `ulimit -n` with many files open) builds with
//! `CFLAGS=-DHAVE_POLL` — in its `.cargo/config.toml`:
//!
//! ```toml
//! [env]
//! CFLAGS = { value = "-DHAVE_POLL", force = true }
//! ```
//!
//! [`version()`] tells at run time whether the linked libcurl can
//! (`high_fds`); see the README's "Sockets above 1024" for what happens
//! without it.
//!
//! ## Features
//!
//! - `bundled` (default): build the libcurl (8.22, HTTP/2) and libuv (1.53)
//!   that the `-sys` crates bundle. Without it, the system's libcurl.
//! - `stream`: [`BodyStream`] implements `futures_core::Stream`.
//!
//! The C ABI (`include/uvcurl.h`) and the example downloader are described
//! in the README.
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod capi;
mod client;
mod curl;
mod error;
mod fast_map;
mod global;
mod multi;
mod panic;
mod remote;
mod request;
mod response;
mod send_request;
mod share;
mod sync;
mod transfer;
pub mod uv;

pub use client::{Client, ClientBuilder};
pub use error::{Error, ErrorKind};
pub use global::{version, VersionInfo};
#[doc(hidden)]
pub use multi::DriverStats;
pub use multi::{Multi, MultiBuilder, MultiHandle, Transfer};
pub use remote::{BodyStream, Remote, ResponseFuture, Token};
pub use request::{Flow, HttpVersionPref, Request};
pub use response::{Head, HttpVersion, Response, Timings};
pub use send_request::SendRequest;
pub use share::Share;
pub use uv::Loop;

/// The raw libcurl and libuv bindings uvcurl is built on, for escape hatches.
pub mod ffi {
    pub use curl_sys as curl;
    pub use libuv_sys2 as uv;
}

// The threading rules, checked when the crate compiles: the cross-thread
// types are `Send + Sync`; `Multi`, `Loop` and `Transfer` are not `Send`
// (the `compile_fail` examples on each of them show it).
const _: () = {
    const fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<Remote>();
    send_and_sync::<Client>();
    send_and_sync::<ResponseFuture>();
    send_and_sync::<BodyStream>();
    send_and_sync::<Error>();
    const fn send<T: Send>() {}
    send::<SendRequest>();
};
