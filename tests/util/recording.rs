//! A reactor wrapper that records the timeout of every `poll`, to check what the runtime asks
//! the OS for without timing anything.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_reactor::{BorrowedSource, EventId, Events, Interest, Mode, Reactor};

/// Forwards everything to `inner` and appends each poll's timeout to `polls`.
pub struct Recording<R> {
    pub inner: R,
    pub polls: Arc<Mutex<Vec<Option<Duration>>>>,
    /// Claim no `Mode::Edge` support, to drive the level-triggered paths on any backend.
    pub level_only: bool,
    /// Registrations, re-registrations and deregistrations: the syscalls of interest changes.
    pub changes: Arc<AtomicUsize>,
    /// The `start` of every `poll_from` (its timeout goes to `polls` too).
    pub froms: Arc<Mutex<Vec<Instant>>>,
}

impl<R: Reactor> Recording<R> {
    /// The wrapper and the shared log of poll timeouts.
    pub fn new(inner: R) -> (Self, Arc<Mutex<Vec<Option<Duration>>>>) {
        let polls = Arc::new(Mutex::new(Vec::new()));
        (
            Recording {
                inner,
                polls: polls.clone(),
                level_only: false,
                changes: Arc::default(),
                froms: Arc::default(),
            },
            polls,
        )
    }

    /// A wrapper that claims no edge-triggered mode.
    pub fn level_only(inner: R) -> Self {
        let (mut this, _) = Recording::new(inner);
        this.level_only = true;
        this
    }
}

impl<R: Reactor> Reactor for Recording<R> {
    fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        self.polls.lock().unwrap().push(timeout);
        self.inner.poll(events, timeout)
    }
    fn poll_from(&self, events: &mut Events, timeout: Option<Duration>, start: Instant) -> io::Result<usize> {
        self.froms.lock().unwrap().push(start);
        self.polls.lock().unwrap().push(timeout);
        self.inner.poll_from(events, timeout, start)
    }
    fn supports(&self, mode: Mode) -> bool {
        !(self.level_only && mode == Mode::Edge) && self.inner.supports(mode)
    }
    unsafe fn register(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        self.changes.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees unchanged.
        unsafe { self.inner.register(source, id, interest, mode) }
    }
    fn reregister(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.inner.reregister(source, id, interest, mode)
    }
    fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()> {
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.inner.deregister(source)
    }
    crate::forward_reactor!(inner; waker, mechanism, hints, name);
}
