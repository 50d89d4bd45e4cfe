//! The sockets libcurl asked us to watch: one [`Poll`] per socket (not per
//! transfer: HTTP/2 transfers share a socket), found by socket number.
//!
//! Cheap keep-alive: a socket that uvcurl opened itself (through libcurl's
//! open-socket callback) also has its close announced to us (close-socket
//! callback). Such a socket's watch survives `CURL_POLL_REMOVE` — it
//! *lingers*, unreferenced, still registered — so a pooled connection taken
//! up again costs no `epoll_ctl` at all; it is stopped if an event arrives
//! while it lingers, and closed just before libcurl closes the socket, while
//! the number is still that socket's. Every other descriptor (resolver
//! socketpairs, libcurl's wakeup fd) is stopped and closed at
//! `CURL_POLL_REMOVE`, since nobody would
//! tell us when its number is reused. With a libcurl older than 8.10 nothing
//! lingers (see [`LINGER_SINCE`]).

use crate::error::Error;
use crate::fast_map::IntMap;
use crate::uv::{Loop, Poll, PollEvents, PollResult};
use curl_sys::curl_socket_t;
use std::cell::{Cell, RefCell};

/// What libcurl last asked for on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interest {
    Wanted(PollEvents),
    /// Removed by libcurl, kept open by us until its close is announced.
    Lingering,
}

struct Watch {
    poll: Poll,
    /// Tells events of this watch from those of an earlier one on the same number.
    generation: u64,
    interest: Cell<Interest>,
    /// What libuv is watching for now (`None`: stopped).
    active: Cell<Option<PollEvents>>,
    /// Whether the socket's close will be announced (it is in
    /// `close_announced`, which changes only for a socket without a watch:
    /// `opened` and `closing` drop the watch).
    close_announced: bool,
}

/// What an event on a socket means.
pub(crate) enum EventFor {
    /// libcurl wants it: pass it on.
    Curl,
    /// A lingering socket stirred (e.g. the server closed the idle
    /// connection): it was stopped; libcurl finds out when it reuses it.
    Nobody,
    /// An event of a watch that no longer exists.
    Stale,
}

/// Socket number → its watch.
#[derive(Default)]
pub(crate) struct SocketTable {
    /// Whether pooled sockets may linger (the linked libcurl announces closes
    /// reliably; see [`SocketTable::new`]).
    linger: bool,
    watches: RefCell<Watches>,
    /// Sockets we opened and whose close we will be told about.
    close_announced: RefCell<IntMap<curl_socket_t, ()>>,
    last_generation: Cell<u64>,
}

/// Watches by socket number: below [`DIRECT_MAX`] indexed (descriptors are
/// small and dense, and a watch is looked up two or three times per
/// request; a slot is a pointer, so that part costs 8 bytes per number up
/// to the highest one watched, at most 128 KiB), above it hashed (a host
/// with a raised descriptor limit may hand out numbers in the millions).
#[derive(Default)]
struct Watches {
    direct: Vec<Option<Box<Watch>>>,
    high: IntMap<curl_socket_t, Box<Watch>>,
}

/// The socket numbers [`Watches`] indexes directly.
const DIRECT_MAX: usize = 16_384;

/// Where a socket number goes in [`Watches`].
enum Slot {
    Direct(usize),
    High,
}

fn slot(socket: curl_socket_t) -> Slot {
    match usize::try_from(socket) {
        Ok(index) if index < DIRECT_MAX => Slot::Direct(index),
        // (libcurl hands over only valid, so non-negative, descriptors.)
        _ => Slot::High,
    }
}

impl Watches {
    fn get(&self, socket: curl_socket_t) -> Option<&Watch> {
        match slot(socket) {
            Slot::Direct(index) => self.direct.get(index)?.as_deref(),
            Slot::High => self.high.get(&socket).map(|watch| &**watch),
        }
    }

    fn insert(&mut self, socket: curl_socket_t, watch: Watch) {
        match slot(socket) {
            Slot::Direct(index) => {
                if index >= self.direct.len() {
                    self.direct.resize_with(index + 1, || None);
                }
                self.direct[index] = Some(Box::new(watch));
            }
            Slot::High => {
                self.high.insert(socket, Box::new(watch));
            }
        }
    }

    fn remove(&mut self, socket: curl_socket_t) -> Option<Box<Watch>> {
        match slot(socket) {
            Slot::Direct(index) => self.direct.get_mut(index)?.take(),
            Slot::High => self.high.remove(&socket),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Watch> {
        let direct = self.direct.iter().filter_map(Option::as_deref);
        direct.chain(self.high.values().map(|watch| &**watch))
    }
}

/// The oldest libcurl whose socket closes uvcurl trusts to be announced:
/// 7.88 was seen to close a pooled socket without REMOVE or close callback,
/// leaving a registration libuv then aborted on; 8.22 is verified.
const LINGER_SINCE: u32 = 0x08_0A_00; // 8.10.0

impl SocketTable {
    /// A table for a libcurl of version `curl_version_num` (as in
    /// `curl_version_info`): pooled sockets linger only from 8.10 on.
    pub fn new(curl_version_num: u32) -> SocketTable {
        SocketTable {
            linger: curl_version_num >= LINGER_SINCE,
            ..SocketTable::default()
        }
    }

    /// Watches `socket` for `wanted` (readable, writable), creating the poll
    /// handle on first use. Returns a generation when libcurl should be given
    /// (again) a socket pointer for it: never for a socket whose close will
    /// be announced, whose number cannot be reused unseen (so a pooled
    /// connection taken up again costs no `curl_multi_assign`).
    ///
    /// `on_event` makes the poll handle's event callback (only called when a
    /// poll handle is created).
    ///
    /// `new_to_curl` is true when libcurl passed no socket pointer. For a
    /// lingering watch that is the normal return of a pooled socket; for a
    /// wanted one whose close is not announced it means the socket was
    /// closed and its number reused without a REMOVE reaching us: the stale
    /// watch is replaced.
    pub fn watch<E: Fn(u64, PollResult) + 'static>(
        &self,
        uv: &Loop,
        socket: curl_socket_t,
        (readable, writable): (bool, bool),
        new_to_curl: bool,
        on_event: impl FnOnce() -> E,
    ) -> Result<Option<u64>, Error> {
        let events = PollEvents { readable, writable };
        let stale = match self.watches.borrow().get(socket) {
            Some(watch) => {
                let was_lingering = watch.interest.get() == Interest::Lingering;
                let pointer_wanted = new_to_curl && !watch.close_announced;
                if pointer_wanted && !was_lingering {
                    true
                } else {
                    watch.interest.set(Interest::Wanted(events));
                    if was_lingering {
                        watch.poll.set_ref(true);
                    }
                    Self::apply(watch, events)?;
                    return Ok(pointer_wanted.then_some(watch.generation));
                }
            }
            None => false,
        };
        if stale {
            log::debug!("uvcurl: socket {socket} re-announced; replacing its stale watch");
            drop(self.take(socket));
        }
        let generation = self.last_generation.get() + 1;
        self.last_generation.set(generation);
        let on_event = on_event();
        let poll = Poll::new(uv, socket, move |result| on_event(generation, result))?;
        let watch = Watch {
            poll,
            generation,
            interest: Cell::new(Interest::Wanted(events)),
            active: Cell::new(None),
            close_announced: self.close_announced.borrow().contains_key(&socket),
        };
        Self::apply(&watch, events)?;
        let pointer_wanted = !watch.close_announced;
        self.watches.borrow_mut().insert(socket, watch);
        Ok(pointer_wanted.then_some(generation))
    }

    /// Makes libuv watch for `events`, calling `uv_poll_start` only on a change.
    fn apply(watch: &Watch, events: PollEvents) -> Result<(), Error> {
        if watch.active.get() != Some(events) {
            watch.poll.start(events)?;
            watch.active.set(Some(events));
        }
        Ok(())
    }

    /// Sorts an event of `socket`'s watch `generation`.
    pub fn event_for(&self, socket: curl_socket_t, generation: u64) -> EventFor {
        let watches = self.watches.borrow();
        match watches.get(socket) {
            Some(w) if w.generation == generation => match w.interest.get() {
                Interest::Wanted(_) => EventFor::Curl,
                Interest::Lingering => {
                    w.poll.stop();
                    w.active.set(None);
                    EventFor::Nobody
                }
            },
            _ => EventFor::Stale,
        }
    }

    /// Starts a live watch again after libuv stopped it on an error.
    pub fn restart(&self, socket: curl_socket_t, generation: u64) {
        if let Some(watch) = self.watches.borrow().get(socket) {
            watch.active.set(None); // libuv stopped it
            if let (true, Interest::Wanted(events)) =
                (watch.generation == generation, watch.interest.get())
            {
                if let Err(error) = Self::apply(watch, events) {
                    log::warn!("uvcurl: socket {socket}: cannot restart polling: {error}");
                }
            }
        }
    }

    /// libcurl no longer needs `socket` (CURL_POLL_REMOVE). Stops watching it
    /// now unless its close will be announced (then it lingers).
    pub fn remove(&self, socket: curl_socket_t) {
        if let Some(watch) = self.watches.borrow().get(socket) {
            if watch.close_announced {
                watch.interest.set(Interest::Lingering);
                watch.poll.set_ref(false); // a pooled connection keeps no loop alive
                return;
            }
        }
        drop(self.take(socket));
    }

    /// uvcurl opened `socket` for libcurl: its close will be announced.
    pub fn opened(&self, socket: curl_socket_t) {
        // A watch left on this number belonged to a socket that is gone.
        drop(self.take(socket));
        if self.linger {
            self.close_announced.borrow_mut().insert(socket, ());
        }
    }

    /// libcurl is about to close `socket`: close its watch while the number
    /// is still that socket's.
    pub fn closing(&self, socket: curl_socket_t) {
        self.close_announced.borrow_mut().remove(&socket);
        drop(self.take(socket));
    }

    fn take(&self, socket: curl_socket_t) -> Option<Box<Watch>> {
        self.watches.borrow_mut().remove(socket)
    }

    /// Closes every watch.
    pub fn close_all(&self) {
        let all = std::mem::take(&mut *self.watches.borrow_mut());
        drop(all);
        self.close_announced.borrow_mut().clear();
    }

    /// How many sockets libcurl currently wants watched.
    pub fn len(&self) -> usize {
        self.watches
            .borrow()
            .iter()
            .filter(|w| w.interest.get() != Interest::Lingering)
            .count()
    }

    /// How many pooled sockets linger with a watch.
    pub fn lingering(&self) -> usize {
        self.watches.borrow().iter().count() - self.len()
    }
}
