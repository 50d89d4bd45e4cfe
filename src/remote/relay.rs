//! [`Relay`]: one cross-thread wake-up per batch of results.
//!
//! Waking a future from another thread costs the awaiting runtime a system
//! call (tokio's current-thread runtime writes its eventfd on every such
//! wake), while a wake from the runtime's own thread, during a poll, is a
//! plain push on its run queue. So when a loop iteration completes several
//! transfers, the loop thread wakes one future only (the *relayer*) and
//! leaves the other wakers here; whichever future of the same `Remote` is
//! polled or dropped next — normally the relayer, on the awaiting thread —
//! wakes them from there ([`Relay::wake_all`]).
//!
//! ## Why no wake-up is lost
//!
//! Progress never depends on the relayer: it may have been dropped, or its
//! runtime shut down. Every waker left here is woken by the first of:
//! 1. a [`wake_all`](Relay::wake_all) (a poll, `wait` or drop of any future
//!    or stream of this `Remote`, on any thread) that takes it, or
//! 2. the loop thread's second [`tick`](Relay::tick) after it was left: the
//!    loop keeps a timer of [`TICK_MS`] armed while anything waits here
//!    (`Wakes` in the endpoint; the timer re-arms itself, and as a
//!    referenced handle keeps the loop running), so a waker waits 1–2 ticks
//!    at most, or
//! 3. the endpoint's shutdown, which wakes whatever is left
//!    ([`Relay::close`]) and leaves nothing here afterwards.
//!
//! Every list operation holds the lock, so a waker is taken exactly once.
//! `waiting` is only a hint that spares the lock when nothing waits: it is
//! set under the lock before the relayer is woken (so the relayer's poll,
//! which the wake-up orders after it, sees it), and cleared under the lock
//! when the lists are emptied. A stale `false` read merely leaves the wakers
//! to another taker or to the tick.

use crate::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

/// The loop thread's fallback period: a waker left here that no future
/// relayed is woken by the loop thread after one to two of these.
pub(super) const TICK_MS: u64 = 1;

#[derive(Default)]
struct Lists {
    /// Left since the last tick.
    fresh: Vec<Waker>,
    /// Left before the last tick: the next tick wakes them.
    stale: Vec<Waker>,
    /// Set by `close`: nothing is left here any more.
    closed: bool,
}

/// The wakers a loop thread left for the awaiting side to wake.
#[derive(Default)]
pub(crate) struct Relay {
    waiting: AtomicBool,
    lists: Mutex<Lists>,
}

impl Relay {
    /// Loop thread: wakes the first of `batch` now and leaves the rest to
    /// be relayed. Returns whether any were left (the caller arms its tick).
    pub fn hand_over<B>(&self, batch: B, wake: impl Fn(Waker)) -> bool
    where
        B: IntoIterator<Item = Waker>,
        B::IntoIter: ExactSizeIterator,
    {
        let mut batch = batch.into_iter();
        let Some(relayer) = batch.next() else {
            return false;
        };
        let mut left = false;
        if batch.len() > 0 {
            let mut lists = self.lists.lock();
            if lists.closed {
                drop(lists);
                batch.for_each(&wake);
            } else {
                lists.fresh.extend(batch);
                self.waiting.store(true, Ordering::Release);
                left = true;
            }
        }
        // After the others are listed: the relayer's poll finds them.
        wake(relayer);
        left
    }

    /// Any thread: wakes every waker left here (from a poll, these wakes are
    /// local to the polling runtime).
    pub fn wake_all(&self) {
        if !self.waiting.load(Ordering::Acquire) {
            return;
        }
        let (mut fresh, mut stale) = {
            let mut lists = self.lists.lock();
            self.waiting.store(false, Ordering::Relaxed);
            (
                std::mem::take(&mut lists.fresh),
                std::mem::take(&mut lists.stale),
            )
        };
        // Outside the lock: a waker may run arbitrary code.
        if stale.is_empty() {
            // The usual case: no copy, and the loop's list goes back whole.
            std::mem::swap(&mut stale, &mut fresh);
        } else {
            stale.append(&mut fresh);
        }
        stale.reverse();
        WakeEach(&mut stale).run();
        // The list goes back to the loop thread that allocated it, rather
        // than crossing threads to be freed here and made anew there.
        let mut lists = self.lists.lock();
        if lists.fresh.capacity() == 0 {
            lists.fresh = stale;
        }
    }

    /// Loop thread, every [`TICK_MS`]: hands back the wakers that waited a
    /// whole tick (for the loop to wake) and whether others still wait.
    pub fn tick(&self) -> (Vec<Waker>, bool) {
        let mut lists = self.lists.lock();
        let fresh = std::mem::take(&mut lists.fresh);
        let due = std::mem::replace(&mut lists.stale, fresh);
        let more = !lists.stale.is_empty();
        if !more {
            self.waiting.store(false, Ordering::Relaxed);
        }
        (due, more)
    }

    /// Whether any waker waits here (a hint, for arming the tick).
    pub fn is_waiting(&self) -> bool {
        self.waiting.load(Ordering::Acquire)
    }

    /// Loop thread, at shutdown: hands back everything left, and from now on
    /// [`hand_over`](Relay::hand_over) leaves nothing here.
    pub fn close(&self) -> Vec<Waker> {
        let mut lists = self.lists.lock();
        lists.closed = true;
        self.waiting.store(false, Ordering::Relaxed);
        let mut all = std::mem::take(&mut lists.stale);
        all.append(&mut lists.fresh);
        all
    }
}

impl Drop for Relay {
    /// Takes the lock once: the last holder's writes are then ordered before
    /// the lists are freed here in a way valgrind's race detectors can see
    /// (the `Arc` that frees the relay orders them with atomics they cannot).
    fn drop(&mut self) {
        drop(self.lists.lock());
    }
}

/// Wakes the wakers it holds, last first. If one panics (the awaiting
/// executor's bug), the others are still woken as the panic unwinds, their
/// own panics swallowed (one is already on its way): a panicking waker
/// must not strand the futures relayed with it.
struct WakeEach<'a>(&'a mut Vec<Waker>);

impl WakeEach<'_> {
    fn run(self) {
        while let Some(waker) = self.0.pop() {
            waker.wake();
        }
    }
}

impl Drop for WakeEach<'_> {
    fn drop(&mut self) {
        for waker in self.0.drain(..) {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
        }
    }
}

#[cfg(all(test, not(uvcurl_loom)))]
mod tests {
    use super::super::counting_waker::{counters, wakers, woken};
    use super::Relay;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    #[test]
    fn the_first_is_woken_at_once_and_a_relay_wakes_the_rest() {
        let relay = Relay::default();
        let counts = counters(3);
        assert!(relay.hand_over(wakers(&counts), Waker::wake));
        assert_eq!(woken(&counts), [1, 0, 0]);
        assert!(relay.is_waiting());
        relay.wake_all();
        assert_eq!(woken(&counts), [1, 1, 1]);
        assert!(!relay.is_waiting());
        relay.wake_all();
        assert_eq!(woken(&counts), [1, 1, 1]);
    }

    #[test]
    fn unrelayed_wakers_are_due_on_the_second_tick() {
        let relay = Relay::default();
        let counts = counters(3);
        relay.hand_over(wakers(&counts), Waker::wake);
        let (due, more) = relay.tick();
        assert!(due.is_empty() && more);
        let (due, more) = relay.tick();
        assert_eq!(due.len(), 2);
        assert!(!more && !relay.is_waiting());
        due.into_iter().for_each(Waker::wake);
        assert_eq!(woken(&counts), [1, 1, 1]);
    }

    #[test]
    fn a_single_result_leaves_nothing_and_close_hands_back_the_rest() {
        let relay = Relay::default();
        let one = counters(1);
        assert!(!relay.hand_over(wakers(&one), Waker::wake));
        assert!(!relay.is_waiting());
        let counts = counters(3);
        relay.hand_over(wakers(&counts), Waker::wake);
        assert_eq!(relay.close().len(), 2);
        // Closed: a batch is woken whole, nothing is left.
        let later = counters(2);
        assert!(!relay.hand_over(wakers(&later), Waker::wake));
        assert_eq!(woken(&later), [1, 1]);
        assert!(!relay.is_waiting());
    }

    /// Panics on its first wake.
    struct Panicky(AtomicUsize);

    impl Wake for Panicky {
        fn wake(self: Arc<Self>) {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("a buggy waker");
            }
        }
    }

    /// A waker that panics while relayed does not strand the others: the
    /// panic reaches the relaying caller, and every other waker is woken.
    #[test]
    fn a_panicking_waker_does_not_strand_the_others() {
        let relay = Relay::default();
        let counts = counters(4);
        let mut batch = wakers(&counts);
        let panicky = Arc::new(Panicky(AtomicUsize::new(0)));
        batch.insert(2, Waker::from(panicky.clone()));
        relay.hand_over(batch, Waker::wake);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| relay.wake_all()));
        assert!(caught.is_err(), "the waker's panic reaches the caller");
        assert_eq!(woken(&counts), [1, 1, 1, 1]);
        assert_eq!(panicky.0.load(Ordering::SeqCst), 1);
        assert!(!relay.is_waiting());
    }

    /// Threads relaying while the "loop" hands over batches and ticks: every
    /// waker is woken exactly once.
    #[test]
    fn racing_relays_and_ticks_wake_each_waker_once() {
        const BATCHES: usize = 2_000;
        let relay = Arc::new(Relay::default());
        let counts = counters(BATCHES * 4);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let relayers: Vec<_> = (0..2)
            .map(|_| {
                let (relay, stop) = (relay.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        relay.wake_all();
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for (i, batch) in counts.chunks(4).enumerate() {
            relay.hand_over(wakers(batch), Waker::wake);
            if i % 7 == 0 {
                relay.tick().0.into_iter().for_each(Waker::wake);
            }
        }
        stop.store(true, Ordering::SeqCst);
        for relayer in relayers {
            relayer.join().unwrap();
        }
        relay.close().into_iter().for_each(Waker::wake);
        assert!(woken(&counts).iter().all(|&n| n == 1));
    }
}
