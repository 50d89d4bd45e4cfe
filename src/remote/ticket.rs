//! [`Ticket`]: which of the driver's transfers a submission became.
//!
//! A submission is made on another thread, before the loop has started it,
//! so it cannot know the driver's [`TransferKey`] yet. The loop thread writes
//! the key into the submission's ticket when it starts the transfer; a later
//! cancel or resume carries the ticket back and the loop reads the key there.
//! So the driver's table stays the only map of live transfers: a key whose
//! transfer has completed finds nothing (keys are never reused).

use crate::transfer::TransferKey;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Written and read on the loop thread only: commands run there, in the
/// order they were posted, and a ticket's `Start` is posted before any
/// command that carries the ticket. The atomics (relaxed) only make the
/// ticket shareable with the submitting thread, which never reads it.
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    slot: AtomicUsize,
    /// 0 until started: the driver numbers transfers from 1.
    id: AtomicU64,
}

impl Ticket {
    /// Records the transfer the submission became.
    pub fn set(&self, key: TransferKey) {
        self.slot.store(key.slot, Ordering::Relaxed);
        self.id.store(key.id, Ordering::Relaxed);
    }

    /// The transfer, if the submission was started (it may have completed).
    pub fn key(&self) -> Option<TransferKey> {
        match self.id.load(Ordering::Relaxed) {
            0 => None,
            id => Some(TransferKey {
                slot: self.slot.load(Ordering::Relaxed),
                id,
            }),
        }
    }
}
