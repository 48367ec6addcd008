//! The poll lock: one poll at a time, and whether one is in flight.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use crate::sync::lock;

/// What a backend's poll holds from before its OS wait until its events are translated: the
/// state only the polling thread touches (the OS event buffer, a flag for the book's overflow).
///
/// It makes polls one at a time, as the contract wants, and it is what tells
/// [`Book::deregister`](super::Book::deregister) that a poll is in flight. A poisoned lock is
/// taken over as it is (a panic in one poll does not make every later poll panic).
///
/// ```
/// use std::time::Duration;
/// use portable_reactor::kit::PollLock;
///
/// let state = PollLock::new(Vec::<u32>::new());
/// let guard = state.lock(None).expect("a timeout other than zero always gets the lock");
/// assert!(state.is_polling());
/// // A zero-timeout poll does not wait behind the poll in flight: it returns with no events.
/// assert!(state.lock(Some(Duration::ZERO)).is_none());
/// drop(guard);
/// assert!(!state.is_polling());
/// assert!(state.lock(Some(Duration::ZERO)).is_some());
/// ```
#[derive(Debug, Default)]
pub struct PollLock<T> {
    inner: Mutex<T>,
}

impl<T> PollLock<T> {
    /// Wraps the polling thread's state.
    pub const fn new(state: T) -> PollLock<T> {
        PollLock {
            inner: Mutex::new(state),
        }
    }

    /// Takes the lock for a poll with `timeout`: waits for it, unless the timeout is zero and
    /// another thread holds it (polls), in which case `None`: a zero-timeout poll never blocks,
    /// not even behind another poll, and returns `Ok(0)` with no events instead.
    #[inline]
    pub fn lock(&self, timeout: Option<Duration>) -> Option<MutexGuard<'_, T>> {
        if timeout != Some(Duration::ZERO) {
            return Some(lock(&self.inner));
        }
        match self.inner.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(PoisonError::into_inner(poisoned)),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Whether a poll holds the lock: it is between the start of its OS wait and the end of its
    /// translation. Pass it to [`Book::deregister`](super::Book::deregister); a backend whose
    /// OS wait must be told of new registrations (poll(2), select) also asks it to know whether
    /// to interrupt the wait.
    #[inline]
    pub fn is_polling(&self) -> bool {
        matches!(self.inner.try_lock(), Err(TryLockError::WouldBlock))
    }
}
