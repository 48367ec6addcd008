//! What every adapter in `backends/` shares: the registration book that makes the error
//! contract and id mapping identical everywhere, and the deadline loop behind `poll`.

mod book;
mod deadline;

pub(crate) use book::{Book, Entry};
pub(crate) use deadline::{wait_until_deadline, Block};

use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Duration;

use crate::sync::lock;
use crate::Mode;

/// Takes an adapter's poll lock for a poll with `timeout`: waits for it, unless the timeout is
/// zero and another thread holds it (polls), in which case `None`: a zero-timeout poll never
/// blocks, not even behind another poll, and returns with no events instead.
#[inline]
pub(crate) fn lock_for_poll<T>(m: &Mutex<T>, timeout: Option<Duration>) -> Option<MutexGuard<'_, T>> {
    if timeout != Some(Duration::ZERO) {
        return Some(lock(m));
    }
    match m.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(PoisonError::into_inner(poisoned)),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// `ErrorKind::Unsupported` for a mode a backend cannot register.
pub(crate) fn unsupported(mode: Mode, backend: &str, mechanism: crate::Mechanism) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{mode:?} mode is not supported by the {backend} backend on {mechanism}"),
    )
}
