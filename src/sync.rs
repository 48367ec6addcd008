//! Locking that survives poisoning.
//!
//! Every mutex in this crate guards state that a panic cannot leave half-updated (queues pushed
//! or popped whole, books updated after the OS call succeeded, user callbacks never run under a
//! lock), so a poisoned lock is used as it is rather than turned into a second panic.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking over the state of a poisoned lock.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
