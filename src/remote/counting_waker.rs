//! Wakers that count their wakes, for the remote's unit tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Wake, Waker};

/// Counts its wakes.
#[derive(Default)]
pub(super) struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `n` fresh counters.
pub(super) fn counters(n: usize) -> Vec<Arc<Count>> {
    (0..n).map(|_| Arc::default()).collect()
}

/// A waker for each counter.
pub(super) fn wakers(counts: &[Arc<Count>]) -> Vec<Waker> {
    counts.iter().map(|c| Waker::from(c.clone())).collect()
}

/// How often each was woken.
pub(super) fn woken(counts: &[Arc<Count>]) -> Vec<usize> {
    counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect()
}
