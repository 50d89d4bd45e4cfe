//! Synchronisation that valgrind's race detectors can follow: a `Mutex`
//! whose hand-overs are announced to them (see [`annotate`]).

pub(crate) mod annotate;

use std::ops::{Deref, DerefMut};

/// A `std::sync::Mutex` that tells helgrind and DRD about each hand-over
/// (std's is built on a futex, which they cannot see) and that ignores
/// poisoning: every user keeps its data consistent at each step, so a panic
/// elsewhere while it was held leaves nothing half-done behind.
#[derive(Default)]
pub(crate) struct Mutex<T> {
    inner: std::sync::Mutex<T>,
}

/// The lock of a [`Mutex`], released on drop.
pub(crate) struct MutexGuard<'a, T> {
    guard: std::sync::MutexGuard<'a, T>,
    tag: *const (),
}

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex {
            inner: std::sync::Mutex::new(value),
        }
    }

    /// Locks, waiting for the holder if there is one.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let tag = std::ptr::from_ref(&self.inner).cast::<()>();
        annotate::after(tag);
        MutexGuard { guard, tag }
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        // Announced while still held: the next holder's `after` pairs with it.
        annotate::before(self.tag);
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}
