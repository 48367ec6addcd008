//! What an [`Async`](super::Async)'s watch callback and its futures share.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::runtime::deadline_after;
use crate::{AsSource, EventId, Interest};

/// The interest for the directions `read` and `write`, `None` for neither.
pub(super) fn interest_of(read: bool, write: bool) -> Option<Interest> {
    match (read, write) {
        (true, true) => Some(Interest::BOTH),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

/// Whether registering `registered` asks for every direction of `wanted`.
pub(super) fn covers(registered: Option<Interest>, wanted: Option<Interest>) -> bool {
    match (registered, wanted) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(r), Some(w)) => (r.is_readable() || !w.is_readable()) && (r.is_writable() || !w.is_writable()),
    }
}

/// A loop time no deadline reaches: the refresh point of a watch without a deadline.
pub(super) fn far_future() -> Instant {
    deadline_after(Instant::now(), Duration::MAX)
}

/// The source as the watch holds it: shared with the [`Async`].
pub(super) struct SharedSource<T>(pub(super) Rc<T>);

impl<T: AsSource> AsSource for SharedSource<T> {
    fn as_source(&self) -> crate::BorrowedSource<'_> {
        self.0.as_source()
    }
}

/// What the watch's callback and the futures share.
pub(super) struct IoState {
    /// The watch, while it lives.
    pub(super) id: Cell<Option<EventId>>,
    /// The watch ended (its deadline, or a failure): every operation fails so from then. A
    /// flag for the per-operation check, the error beside it.
    pub(super) has_ended: Cell<bool>,
    pub(super) ended: RefCell<Option<(io::ErrorKind, String)>>,
    pub(super) readers: RefCell<Option<Waker>>,
    pub(super) writers: RefCell<Option<Waker>>,
    /// A stream direction whose last transfer was short on an edge-triggered watch: the next
    /// one waits for an event (see `Async::poll_stream_op`); the watch's events clear it.
    pub(super) read_drained: Cell<bool>,
    pub(super) write_drained: Cell<bool>,
    /// Whether a short read may be taken for a drained socket: an edge-triggered watch (not
    /// on Windows) on a backend that reports a peer's shutdown as `read_closed`, and no
    /// `read_closed` or error seen yet. (Once the end of the stream has arrived no new edge
    /// announces it, so the reads must go on until they see it.)
    pub(super) short_read_drains: Cell<bool>,
    /// The same for writes: edge-triggered, not on Windows, no `write_closed` or error seen.
    pub(super) short_write_fills: Cell<bool>,
    /// Level-triggered watch: its interest follows the waiting directions.
    pub(super) managed: Cell<bool>,
    /// The interest registered (managed watches), `None` while paused for want of waiters.
    pub(super) registered: Cell<Option<Interest>>,
    pub(super) adjust_queued: Cell<bool>,
    /// The deadline, to push it on successful operations (events push it already).
    pub(super) timeout: Cell<Option<Duration>>,
    /// The loop time from which a successful operation pushes the deadline again: an eighth
    /// of it after the last push (far away without a deadline). Compared with the loop's
    /// cached time, so an operation reads no clock. Events do not move it (they push the
    /// watch's deadline themselves): a busy source pushes it once per eighth of its deadline.
    pub(super) refresh_at: Cell<Instant>,
}

impl IoState {
    pub(super) fn new(managed: bool, timeout: Option<Duration>) -> IoState {
        IoState {
            id: Cell::new(None),
            has_ended: Cell::new(false),
            ended: RefCell::new(None),
            readers: RefCell::new(None),
            writers: RefCell::new(None),
            read_drained: Cell::new(false),
            write_drained: Cell::new(false),
            short_read_drains: Cell::new(false),
            short_write_fills: Cell::new(false),
            managed: Cell::new(managed),
            registered: Cell::new(None),
            adjust_queued: Cell::new(false),
            timeout: Cell::new(timeout),
            refresh_at: Cell::new(far_future()),
        }
    }

    #[inline]
    pub(super) fn ended(&self) -> Option<io::Error> {
        if !self.has_ended.get() {
            return None;
        }
        self.ended_error()
    }

    #[cold]
    pub(super) fn ended_error(&self) -> Option<io::Error> {
        self.ended
            .borrow()
            .as_ref()
            .map(|(kind, message)| io::Error::new(*kind, message.clone()))
    }

    /// Ends every operation with `error` (and wakes the waiting ones).
    pub(super) fn end(&self, error: &io::Error) {
        *self.ended.borrow_mut() = Some((error.kind(), error.to_string()));
        self.has_ended.set(true);
        IoState::wake(&self.readers);
        IoState::wake(&self.writers);
    }

    /// Activity at loop time `now`: the next push of the deadline is due an eighth of it later.
    pub(super) fn refreshed(&self, now: Instant) {
        if let Some(timeout) = self.timeout.get() {
            self.refresh_at.set(deadline_after(now, timeout / 8));
        }
    }

    /// Wakes the task waiting in `slot`, if one is; says whether one was.
    pub(super) fn wake(slot: &RefCell<Option<Waker>>) -> bool {
        let waker = slot.borrow_mut().take();
        match waker {
            Some(waker) => {
                waker.wake();
                true
            }
            None => false,
        }
    }

    pub(super) fn park(slot: &RefCell<Option<Waker>>, waker: &Waker) {
        let mut slot = slot.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub(super) fn drained(&self, read: bool) -> &Cell<bool> {
        if read {
            &self.read_drained
        } else {
            &self.write_drained
        }
    }

    /// The directions tasks wait for.
    pub(super) fn wanted(&self) -> Option<Interest> {
        interest_of(self.readers.borrow().is_some(), self.writers.borrow().is_some())
    }
}
