//! # uvcurl
//!
//! libcurl's multi interface driven by a libuv event loop: thousands of
//! concurrent HTTP(S) transfers on one thread, on a loop you own or one a host
//! program already runs.
//!
//! - [`Loop`] wraps a `uv_loop_t` (owned, or borrowed with [`Loop::from_raw`]).
//! - [`Multi`] runs transfers on it; each [`Request`] completes exactly once,
//!   with a [`Response`] or an [`Error`].
//! - [`Transfer`] cancels, pauses and resumes a running transfer.
//!
//! ```no_run
//! use std::time::Duration;
//! use uvcurl::{Loop, Multi, Request};
//!
//! let uv = Loop::new()?;
//! let multi = Multi::new(&uv)?;
//! for n in 0..3 {
//!     let url = format!("http://127.0.0.1:8080/item/{n}");
//!     multi.start(Request::get(url).timeout(Duration::from_secs(5)), |result| {
//!         match result {
//!             Ok(response) => println!("{} {}", response.status(), response.effective_url()),
//!             Err(error) => eprintln!("{:?}: {error}", error.kind()),
//!         }
//!     })?;
//! }
//! uv.run()?;        // returns when all three completed
//! drop(multi);      // closes its libuv handles ...
//! uv.run()?;        // ... which finish closing here
//! uv.close()?;      // no handle left
//! # Ok::<(), uvcurl::Error>(())
//! ```
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
mod share;
mod transfer;
pub mod uv;

pub use client::{Client, ClientBuilder};
pub use error::{Error, ErrorKind};
pub use global::{version, VersionInfo};
pub use multi::{Multi, MultiBuilder, MultiHandle, Transfer};
pub use remote::{BodyStream, Remote, ResponseFuture, Token};
pub use request::{Flow, HttpVersionPref, Request};
pub use response::{Head, HttpVersion, Response, Timings};
pub use share::Share;
pub use uv::Loop;

/// The raw libcurl and libuv bindings uvcurl is built on, for escape hatches.
pub mod ffi {
    pub use curl_sys as curl;
    pub use libuv_sys2 as uv;
}
