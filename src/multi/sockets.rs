//! The sockets libcurl asked us to watch: one [`Poll`] per socket (not per
//! transfer: HTTP/2 transfers share a socket), found by socket number.

use crate::error::Error;
use crate::uv::{Loop, Poll, PollEvents, PollResult};
use curl_sys::curl_socket_t;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

struct Watch {
    poll: Poll,
    /// Tells events of this watch from those of an earlier one on the same number.
    generation: u64,
    wanted: Cell<PollEvents>,
}

/// Socket number → its live watch.
#[derive(Default)]
pub(crate) struct SocketTable {
    watches: RefCell<HashMap<curl_socket_t, Watch>>,
    last_generation: Cell<u64>,
}

impl SocketTable {
    /// Watches `socket` for `wanted` (readable, writable), creating the poll
    /// handle on first use. Returns the new watch's generation when one was
    /// created, `None` when an existing watch was kept.
    ///
    /// `new_to_curl` is true when libcurl passed no socket pointer: then any
    /// watch we still have on that number is stale (the socket was closed and
    /// the number reused without a REMOVE reaching us) and is replaced.
    pub fn watch(
        &self,
        uv: &Loop,
        socket: curl_socket_t,
        (readable, writable): (bool, bool),
        new_to_curl: bool,
        on_event: impl Fn(u64, PollResult) + 'static,
    ) -> Result<Option<u64>, Error> {
        let events = PollEvents { readable, writable };
        if new_to_curl {
            if let Some(stale) = self.take(socket) {
                log::debug!("uvcurl: socket {socket} re-announced; replacing its stale watch");
                drop(stale);
            }
        }
        if let Some(watch) = self.watches.borrow().get(&socket) {
            if watch.wanted.get() != events {
                watch.poll.start(events)?;
                watch.wanted.set(events);
            }
            return Ok(None);
        }
        let generation = self.last_generation.get() + 1;
        self.last_generation.set(generation);
        let poll = Poll::new(uv, socket, move |result| on_event(generation, result))?;
        poll.start(events)?;
        let watch = Watch {
            poll,
            generation,
            wanted: Cell::new(events),
        };
        self.watches.borrow_mut().insert(socket, watch);
        Ok(Some(generation))
    }

    /// Whether `generation` is the live watch of `socket`.
    pub fn is_current(&self, socket: curl_socket_t, generation: u64) -> bool {
        self.watches
            .borrow()
            .get(&socket)
            .is_some_and(|w| w.generation == generation)
    }

    /// Starts a live watch again after libuv stopped it on an error.
    pub fn restart(&self, socket: curl_socket_t, generation: u64) {
        if let Some(watch) = self.watches.borrow().get(&socket) {
            if watch.generation == generation {
                if let Err(error) = watch.poll.start(watch.wanted.get()) {
                    log::warn!("uvcurl: socket {socket}: cannot restart polling: {error}");
                }
            }
        }
    }

    /// Stops watching `socket` now (libcurl may close it as soon as we return).
    pub fn remove(&self, socket: curl_socket_t) {
        drop(self.take(socket));
    }

    fn take(&self, socket: curl_socket_t) -> Option<Watch> {
        self.watches.borrow_mut().remove(&socket)
    }

    /// Closes every watch.
    pub fn close_all(&self) {
        let all = std::mem::take(&mut *self.watches.borrow_mut());
        drop(all);
    }

    /// How many sockets are watched.
    pub fn len(&self) -> usize {
        self.watches.borrow().len()
    }
}
