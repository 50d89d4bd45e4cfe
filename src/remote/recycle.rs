//! [`Recycler`]: the buffers of a [`Response`](crate::Response) go back to
//! the loop thread that allocated them.
//!
//! A remote transfer's header and body buffers are allocated on the loop
//! thread and normally freed on the awaiting one. glibc then frees them into
//! the awaiting thread's cache (which never reuses them) or, under the arena
//! lock, into the loop thread's arena, while the loop thread's own cache for
//! those sizes stays empty: every body takes malloc's slow path there (a
//! 1 KiB body is a "large" request, which also consolidates libcurl's small
//! free chunks). Instead, a response of a remote transfer hands its buffers
//! back here when dropped, and the loop thread starts later transfers with
//! them: in a steady stream of small responses neither thread calls malloc
//! or free for them.
//!
//! Bounded: at most [`KEPT`] buffer pairs wait here (and as many in the
//! loop's [`Stock`], which takes them over a batch at a time), and only
//! buffers of at most [`BODY_MAX`] / [`HEAD_MAX`] bytes are kept; anything
//! else is freed as before. A body much smaller than the buffer it was given does not
//! keep it (the write callback allocates to size instead), so a response
//! holds little more memory than it would have otherwise. Once the loop's endpoint shuts, nothing is kept any more and
//! what was kept is freed; a response outliving its `Client` holds the
//! recycler alive (an `Arc`) and simply frees its buffers when dropped.

use crate::response::{Buffers, Response};
use crate::sync::Mutex;
use std::cell::RefCell;
use std::sync::Arc;

/// Most buffer pairs given back and waiting, per loop (the loop's stock holds
/// at most as many again).
pub(crate) const KEPT: usize = 128;
/// Largest body capacity kept for reuse (larger bodies are freed as usual).
pub(crate) const BODY_MAX: usize = 8 << 10;
/// Largest header-block capacity kept for reuse (a block takes 512 bytes at
/// first, more only when it is longer).
pub(crate) const HEAD_MAX: usize = 1 << 10;

/// Buffers handed back by dropped responses, shared by them and the loop.
/// Aligned to a cache line: the lock and the list, which both threads
/// write, share their line with nothing else (the `Arc`'s counts take the
/// line before, alone too).
#[repr(align(64))]
pub(crate) struct Recycler {
    spares: Mutex<Spares>,
}

struct Spares {
    buffers: Vec<Buffers>,
    /// Set when the loop's endpoint shut: nothing is kept any more.
    closed: bool,
}

impl Default for Recycler {
    fn default() -> Recycler {
        Recycler {
            spares: Mutex::new(Spares {
                // Reserved once: giving back never allocates.
                buffers: Vec::with_capacity(KEPT),
                closed: false,
            }),
        }
    }
}

impl Recycler {
    /// Any thread (a dropped response): keeps `buffers` for the loop if they
    /// are worth it and there is room; otherwise they are freed here.
    pub fn give_back(&self, mut buffers: Buffers) {
        if buffers.body.capacity() > BODY_MAX || buffers.head.capacity() > HEAD_MAX {
            return;
        }
        buffers.head.clear();
        buffers.body.clear();
        let mut spares = self.spares.lock();
        if !spares.closed && spares.buffers.len() < KEPT {
            spares.buffers.push(buffers);
            return;
        }
        drop(spares);
        // Freed outside the lock.
        drop(buffers);
    }

    /// Loop thread: swaps its empty `stock` with everything given back (one
    /// lock for a whole batch). `stock` keeps its reserved capacity.
    pub fn restock(&self, stock: &mut Vec<Buffers>) {
        debug_assert!(stock.is_empty());
        let mut spares = self.spares.lock();
        if !spares.buffers.is_empty() {
            std::mem::swap(&mut spares.buffers, stock);
        }
    }

    /// Loop thread, at shutdown: keeps nothing from now on, and hands back
    /// what is kept (for the caller to free outside the lock).
    pub fn close(&self) -> Vec<Buffers> {
        let mut spares = self.spares.lock();
        spares.closed = true;
        std::mem::take(&mut spares.buffers)
    }

    /// Buffer pairs waiting to be reused.
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.spares.lock().buffers.len()
    }
}

/// The loop thread's side: buffers to start transfers with, restocked from
/// the [`Recycler`] a batch at a time.
pub(crate) struct Stock {
    recycler: Arc<Recycler>,
    stock: RefCell<Vec<Buffers>>,
}

impl Stock {
    pub fn new() -> Stock {
        Stock {
            recycler: Arc::default(),
            stock: RefCell::new(Vec::with_capacity(KEPT)),
        }
    }

    /// Buffers for a transfer's response: given back ones, or new empty ones.
    pub fn take(&self) -> Buffers {
        let mut stock = self.stock.borrow_mut();
        if stock.is_empty() {
            self.recycler.restock(&mut stock);
        }
        stock.pop().unwrap_or_default()
    }

    /// Has `response` give its buffers back here when dropped.
    pub fn adopt(&self, response: &mut Response) {
        response.recycler = Some(self.recycler.clone());
    }

    /// At shutdown: frees what is kept; nothing is kept from now on.
    pub fn close(&self) {
        let given_back = self.recycler.close();
        let stocked = std::mem::take(&mut *self.stock.borrow_mut());
        drop((given_back, stocked));
    }
}

impl Drop for Recycler {
    /// Takes the lock once, so valgrind's race detectors see the last
    /// holder's writes ordered before the buffers are freed here (the `Arc`
    /// orders them with atomics they cannot see).
    fn drop(&mut self) {
        drop(self.spares.lock());
    }
}

#[cfg(all(test, not(uvcurl_loom)))]
mod tests {
    use super::*;

    fn pair(head: usize, body: usize) -> Buffers {
        Buffers {
            head: vec![b'h'; head],
            body: vec![b'b'; body],
        }
    }

    #[test]
    fn small_buffers_come_back_empty_with_their_capacity() {
        let recycler = Recycler::default();
        recycler.give_back(pair(300, 1024));
        assert_eq!(recycler.kept(), 1);
        let mut stock = Vec::with_capacity(KEPT);
        recycler.restock(&mut stock);
        assert_eq!(recycler.kept(), 0);
        let buffers = stock.pop().unwrap();
        assert!(buffers.head.is_empty() && buffers.head.capacity() >= 300);
        assert!(buffers.body.is_empty() && buffers.body.capacity() >= 1024);
    }

    #[test]
    fn large_buffers_and_a_full_or_closed_recycler_keep_nothing() {
        let recycler = Recycler::default();
        recycler.give_back(pair(0, BODY_MAX + 1));
        recycler.give_back(pair(HEAD_MAX + 1, 0));
        assert_eq!(recycler.kept(), 0);
        for _ in 0..KEPT + 5 {
            recycler.give_back(pair(10, 10));
        }
        assert_eq!(recycler.kept(), KEPT);
        assert_eq!(recycler.close().len(), KEPT);
        recycler.give_back(pair(10, 10));
        assert_eq!(recycler.kept(), 0);
    }
}
