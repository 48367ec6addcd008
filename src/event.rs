//! Event identifiers, interests, modes, and the events a [`Reactor`](crate::Reactor) reports.

use std::fmt;
use std::ops::BitOr;

/// A caller-chosen identifier for a registration.
///
/// Every `usize` value, `0` and `usize::MAX` included, is a valid id on every backend: where an
/// underlying crate reserves a value, the adapter maps ids internally. Ids need not be unique
/// across registrations: the reactor hands back whatever id the source was registered under.
///
/// ```
/// use portable_reactor::EventId;
/// let id = EventId(7);
/// assert_eq!(id.0, 7);
/// assert_eq!(EventId::from(7usize), id);
/// ```
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId(pub usize);

impl From<usize> for EventId {
    fn from(value: usize) -> Self {
        EventId(value)
    }
}

impl From<EventId> for usize {
    fn from(value: EventId) -> Self {
        value.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Which readiness a registration waits for: readable, writable, or both.
///
/// An `Interest` is never empty; combine the two constants with `|`.
///
/// ```
/// use portable_reactor::Interest;
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both, Interest::BOTH);
/// assert!(!Interest::READABLE.is_writable());
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Interest(u8);

const R: u8 = 0b01;
const W: u8 = 0b10;

impl Interest {
    /// Wait for the source to become readable (or, for a listener, to have a connection pending).
    pub const READABLE: Interest = Interest(R);
    /// Wait for the source to become writable (or, for a connecting socket, connected or failed).
    pub const WRITABLE: Interest = Interest(W);
    /// Both readable and writable.
    pub const BOTH: Interest = Interest(R | W);

    /// Whether this interest includes readability.
    pub const fn is_readable(self) -> bool {
        self.0 & R != 0
    }

    /// Whether this interest includes writability.
    pub const fn is_writable(self) -> bool {
        self.0 & W != 0
    }

    /// The union of two interests (also available as `|`).
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

/// How a registration re-arms after it reported an event.
///
/// | mode | after an event is reported | supported by |
/// |---|---|---|
/// | `Oneshot` | silent until re-armed by [`Reactor::reregister`](crate::Reactor::reregister); re-arming while still ready reports at once | every backend |
/// | `Level` | reported again at every poll while the source stays ready | see [`Reactor::supports`](crate::Reactor::supports) |
/// | `Edge` | reported again only after the readiness goes away and comes back (new data, new space) | epoll, kqueue (not IOCP, not poll(2)) |
///
/// Registering with a mode the reactor does not support fails with
/// [`ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// One event, then silence until re-armed.
    Oneshot,
    /// Level-triggered: reported while ready.
    Level,
    /// Edge-triggered: reported on each change to ready.
    Edge,
}

const EV_READABLE: u8 = 1 << 0;
const EV_WRITABLE: u8 = 1 << 1;
const EV_ERROR: u8 = 1 << 2;
const EV_READ_CLOSED: u8 = 1 << 3;
const EV_WRITE_CLOSED: u8 = 1 << 4;

/// One readiness event: the [`EventId`] of the registration and what it is ready for.
///
/// `is_readable`/`is_writable` only ever report a direction the registration asked for.
/// The close and error hints (`is_error`, `is_read_closed`, `is_write_closed`) are never false
/// positives, but not every backend can report every hint on every OS: see the hint table on
/// [`Reactor`](crate::Reactor). Treat a missing hint as "unknown" and let the next read or write
/// tell.
///
/// Backends build events with [`Event::new`] and the `with_*` methods:
///
/// ```
/// use portable_reactor::{Event, EventId};
/// let ev = Event::new(EventId(3)).with_readable(true).with_read_closed(true);
/// assert_eq!(ev.id(), EventId(3));
/// assert!(ev.is_readable() && ev.is_read_closed());
/// assert!(!ev.is_writable() && !ev.is_error() && !ev.is_write_closed());
/// ```
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    id: EventId,
    flags: u8,
}

impl Event {
    /// An event for `id` with no readiness and no hints set.
    pub const fn new(id: EventId) -> Event {
        Event { id, flags: 0 }
    }

    const fn with(mut self, bit: u8, on: bool) -> Event {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
        self
    }

    /// Sets or clears readability.
    pub const fn with_readable(self, on: bool) -> Event {
        self.with(EV_READABLE, on)
    }

    /// Sets or clears writability.
    pub const fn with_writable(self, on: bool) -> Event {
        self.with(EV_WRITABLE, on)
    }

    /// Sets or clears the error hint.
    pub const fn with_error(self, on: bool) -> Event {
        self.with(EV_ERROR, on)
    }

    /// Sets or clears the read-closed hint.
    pub const fn with_read_closed(self, on: bool) -> Event {
        self.with(EV_READ_CLOSED, on)
    }

    /// Sets or clears the write-closed hint.
    pub const fn with_write_closed(self, on: bool) -> Event {
        self.with(EV_WRITE_CLOSED, on)
    }

    /// The id the source was registered under.
    pub const fn id(&self) -> EventId {
        self.id
    }

    /// The source is readable (data, end of stream, an error or a pending connection).
    pub const fn is_readable(&self) -> bool {
        self.flags & EV_READABLE != 0
    }

    /// The source is writable (space, a completed or failed connect, or an error).
    pub const fn is_writable(&self) -> bool {
        self.flags & EV_WRITABLE != 0
    }

    /// Hint: the source has a pending error (e.g. a refused connect). Never a false positive.
    pub const fn is_error(&self) -> bool {
        self.flags & EV_ERROR != 0
    }

    /// Hint: the read half is closed (peer shut down its write side, reset, or a pipe's writer
    /// went away). Never a false positive.
    pub const fn is_read_closed(&self) -> bool {
        self.flags & EV_READ_CLOSED != 0
    }

    /// Hint: the write half is closed (peer reset or the connection is gone). Never a false
    /// positive.
    pub const fn is_write_closed(&self) -> bool {
        self.flags & EV_WRITE_CLOSED != 0
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Event");
        d.field("id", &self.id.0);
        for (bit, name) in [
            (EV_READABLE, "readable"),
            (EV_WRITABLE, "writable"),
            (EV_ERROR, "error"),
            (EV_READ_CLOSED, "read_closed"),
            (EV_WRITE_CLOSED, "write_closed"),
        ] {
            if self.flags & bit != 0 {
                d.field(name, &true);
            }
        }
        d.finish()
    }
}

/// A reusable, fixed-capacity buffer of [`Event`]s filled by [`Reactor::poll`](crate::Reactor::poll).
///
/// `poll` clears it first and fills at most [`capacity`](Events::capacity) events; readiness that
/// did not fit stays with the OS for the next poll. The buffer allocates once, at creation.
///
/// ```
/// use portable_reactor::{Event, EventId, Events};
/// let mut events = Events::with_capacity(2);
/// assert!(events.try_push(Event::new(EventId(1))));
/// assert!(events.try_push(Event::new(EventId(2))));
/// assert!(!events.try_push(Event::new(EventId(3))), "full");
/// let ids: Vec<_> = events.iter().map(|e| e.id().0).collect();
/// assert_eq!(ids, [1, 2]);
/// events.clear();
/// assert!(events.is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct Events {
    list: Vec<Event>,
    capacity: usize,
}

impl Events {
    /// The largest capacity a buffer can have: 65,536 events (1 MiB), more than any OS
    /// returns from one wait in practice (Linux caps `epoll_wait` far above what a loop can
    /// dispatch between two waits; larger buffers only hold memory).
    pub const MAX_CAPACITY: usize = 1 << 16;

    /// An empty buffer that holds up to `capacity` events.
    ///
    /// A capacity of 0 is taken as 1, and one above [`MAX_CAPACITY`](Events::MAX_CAPACITY) as
    /// `MAX_CAPACITY`, so this never panics or aborts; [`try_with_capacity`](Events::try_with_capacity)
    /// rejects such sizes instead.
    ///
    /// ```
    /// use portable_reactor::Events;
    /// assert_eq!(Events::with_capacity(0).capacity(), 1);
    /// assert_eq!(Events::with_capacity(usize::MAX).capacity(), Events::MAX_CAPACITY);
    /// ```
    pub fn with_capacity(capacity: usize) -> Events {
        let capacity = capacity.clamp(1, Events::MAX_CAPACITY);
        Events {
            list: Vec::with_capacity(capacity),
            capacity,
        }
    }

    /// An empty buffer that holds exactly `capacity` events.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`](std::io::ErrorKind::InvalidInput) when `capacity` is 0 or
    /// above [`MAX_CAPACITY`](Events::MAX_CAPACITY).
    ///
    /// ```
    /// use portable_reactor::Events;
    /// assert_eq!(Events::try_with_capacity(64)?.capacity(), 64);
    /// let err = Events::try_with_capacity(1 << 40).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn try_with_capacity(capacity: usize) -> std::io::Result<Events> {
        if capacity == 0 || capacity > Events::MAX_CAPACITY {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "events capacity {capacity} is outside 1..={}",
                    Events::MAX_CAPACITY
                ),
            ));
        }
        Ok(Events::with_capacity(capacity))
    }

    /// The most events one poll can return into this buffer.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many events the last poll returned.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the last poll returned no event.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether the buffer holds `capacity` events.
    pub fn is_full(&self) -> bool {
        self.list.len() >= self.capacity
    }

    /// The events, in the order the backend reported them.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.list.iter()
    }

    /// The events as a slice.
    pub fn as_slice(&self) -> &[Event] {
        &self.list
    }

    /// Removes every event, keeping the allocation.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// Merges the readiness and hints of `event` into the event at `index` (same registration,
    /// reported twice by the OS in one wait).
    pub(crate) fn merge_into(&mut self, index: usize, event: Event) {
        if let Some(existing) = self.list.get_mut(index) {
            existing.flags |= event.flags;
        }
    }

    /// Appends an event unless the buffer is full; returns whether it was added.
    ///
    /// For backend implementors: never allocates.
    pub fn try_push(&mut self, event: Event) -> bool {
        if self.is_full() {
            return false;
        }
        self.list.push(event);
        true
    }
}

impl Default for Events {
    /// A buffer of 1024 events.
    fn default() -> Self {
        Events::with_capacity(1024)
    }
}

impl<'a> IntoIterator for &'a Events {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}
