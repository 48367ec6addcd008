//! Waking a reactor blocked in `poll` from any thread.

use std::fmt;
use std::io;
use std::sync::Arc;

/// What a backend does to wake its poller; implement it to build a [`Waker`] for a
/// third-party backend.
pub trait Wake: Send + Sync {
    /// Makes the current or the next `poll` of the reactor return promptly.
    ///
    /// # Errors
    ///
    /// The OS error of the notification primitive (an eventfd, a pipe, a completion port), if
    /// it failed.
    fn wake(&self) -> io::Result<()>;
}

/// A cloneable, `Send + Sync` handle that wakes its reactor's `poll`.
///
/// Wakes coalesce: any number of wakes while the reactor is busy give at least one prompt
/// return. A wake before `poll` makes the next `poll` return at once. A wake surfaces no event.
///
/// ```
/// use portable_reactor::{DefaultReactor, Events, Reactor};
/// let reactor = DefaultReactor::new()?;
/// let waker = reactor.waker();
/// std::thread::spawn(move || waker.wake()).join().unwrap()?;
/// let mut events = Events::with_capacity(8);
/// reactor.poll(&mut events, None)?; // returns at once
/// assert!(events.is_empty());
/// # std::io::Result::Ok(())
/// ```
#[derive(Clone)]
pub struct Waker {
    inner: Arc<dyn Wake>,
}

impl Waker {
    /// Wraps a backend's wake primitive.
    pub fn new(inner: Arc<dyn Wake>) -> Waker {
        Waker { inner }
    }

    /// Wakes the reactor.
    ///
    /// # Errors
    ///
    /// The OS error of the backend's notification primitive, which is rare (e.g. out of memory).
    pub fn wake(&self) -> io::Result<()> {
        self.inner.wake()
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waker")
    }
}
