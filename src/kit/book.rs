//! The registration book: what a backend knows about its registrations.

use std::collections::VecDeque;
use std::io;

use slab::Slab;

use super::source_map::SourceMap;
use crate::source::RawSource;
use crate::{Event, EventId, Events, Interest, Mode};

/// One registration in a [`Book`]: the caller's id, interest and mode, whether a oneshot
/// registration is armed, and the backend's own data for the source (`X`).
#[derive(Debug)]
pub struct Entry<X> {
    id: EventId,
    /// The wait (by sequence number) and the index in `Events` of this entry's last report, so
    /// that two OS events for one source in one wait (kqueue has one filter per direction)
    /// merge into one event. Two fields, not a tuple, so that they share a word with the rest
    /// (an index fits in 16 bits: `Events::MAX_CAPACITY` is 2^16, so indices are below it).
    /// The sequence is 32 bits, and when it wraps every entry's is cleared (see
    /// [`Book::begin_report`]): no stale value can ever match, and an entry with a
    /// payload-free `X` is 16 bytes.
    reported_seq: u32,
    /// See `reported_seq`.
    reported_index: u16,
    interest: Interest,
    /// The mode, whether a oneshot registration is armed, and whether the entry is live, in
    /// one byte (an enum, so that the slab keeps its niche): with a 4-byte `X` (an fd) an
    /// entry is 24 bytes.
    arm: Arm,
    extra: X,
}

/// [`Entry`]'s mode and state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Arm {
    /// Oneshot, armed: its next event is reported.
    Armed,
    /// Oneshot, disarmed (an event was reported), until `reregister` re-arms it.
    Disarmed,
    Level,
    Edge,
    /// Deregistered while a poll was in flight; the slot is freed when it ends.
    Dead,
}

impl Arm {
    /// A fresh (armed) registration in `mode`.
    fn new(mode: Mode) -> Arm {
        match mode {
            Mode::Oneshot => Arm::Armed,
            Mode::Level => Arm::Level,
            Mode::Edge => Arm::Edge,
        }
    }

    fn mode(self) -> Mode {
        match self {
            // A dead entry is never handed out; its mode is moot.
            Arm::Armed | Arm::Disarmed | Arm::Dead => Mode::Oneshot,
            Arm::Level => Mode::Level,
            Arm::Edge => Mode::Edge,
        }
    }
}

impl<X> Entry<X> {
    /// The id the source is registered under: the id of its events.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// What the registration waits for.
    pub fn interest(&self) -> Interest {
        self.interest
    }

    /// How the registration re-arms.
    pub fn mode(&self) -> Mode {
        self.arm.mode()
    }

    /// Whether the registration can report an event: always, except for a oneshot registration
    /// that reported one and was not re-registered since. A backend whose OS has no oneshot
    /// mode leaves disarmed registrations out of its wait (the book drops their events anyway).
    pub fn is_armed(&self) -> bool {
        self.arm != Arm::Disarmed
    }

    fn live(&self) -> bool {
        self.arm != Arm::Dead
    }

    /// The backend's data for this source, as its `register` closure returned it.
    pub fn extra(&self) -> &X {
        &self.extra
    }

    /// The backend's data for this source, mutably.
    pub fn extra_mut(&mut self) -> &mut X {
        &mut self.extra
    }
}

/// The registrations of one reactor, keyed by raw source: the part of the
/// [`Reactor`](crate::Reactor) contract that does not depend on the OS.
///
/// - **Ids and keys.** Each registration gets an internal *key* (a small `usize`, a slab index,
///   well below `u32::MAX`, so never a value an OS crate reserves such as `usize::MAX`); give
///   the OS the key, not the caller's id, and hand the key back to [`report`](Book::report).
///   The caller's id can then be any `usize`.
/// - **Errors.** [`register`](Book::register) answers `AlreadyExists` for a registered source,
///   [`reregister`](Book::reregister) and [`deregister`](Book::deregister) `NotFound` for an
///   unregistered one, whatever the OS underneath is lax about, and before the OS is called.
/// - **Oneshot.** [`report`](Book::report) disarms a oneshot registration when it reports its
///   event and drops its later events until [`reregister`](Book::reregister) re-arms it, so a
///   backend over an OS without oneshot registrations gets them for free (a level or edge
///   registration underneath will do).
/// - **Capacity.** An event that does not fit in [`Events`] is kept in an overflow queue and
///   reported by the next polls, before the OS is asked again ([`report_overflow`](Book::report_overflow)),
///   so nothing is lost and no source starves when the OS returns more than the capacity
///   (poll(2) returns every ready source). Overflowed events are dropped when their source is
///   re-registered or deregistered (the OS reports its readiness afresh).
/// - **Stale slots.** A key freed while a poll is waiting or translating its OS events would let
///   a stale event be read under a new registration's id; [`deregister`](Book::deregister) holds
///   the slot (it is not reused) until that poll's [`end_report`](Book::end_report). Whether a
///   poll is in flight is for the backend to say ([`PollLock::is_polling`](super::PollLock::is_polling)).
/// - **Merging.** Two OS events for one registration in one wait (kqueue has a filter per
///   direction) make one event.
///
/// ```
/// use portable_reactor::kit::Book;
/// use portable_reactor::{Event, EventId, Events, Interest, Mode};
/// use std::io::ErrorKind;
///
/// let mut book: Book<()> = Book::new();
/// // `register`: the closure makes the OS call with the key, and returns the backend's data.
/// let key = book.register(7, EventId(usize::MAX), Interest::READABLE, Mode::Oneshot, |_key| Ok(()))?;
/// let again = book.register(7, EventId(1), Interest::READABLE, Mode::Oneshot, |_| Ok(()));
/// assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
///
/// // One OS wait, translated: the OS said key `key` is readable, twice.
/// let mut events = Events::with_capacity(8);
/// book.begin_report();
/// for _ in 0..2 {
///     book.report(key, &mut events, |entry| Event::new(entry.id()).with_readable(true));
/// }
/// book.end_report();
/// assert_eq!(events.len(), 1, "merged");
/// assert_eq!(events.as_slice()[0].id(), EventId(usize::MAX));
///
/// // The oneshot registration is disarmed: its next OS event is dropped until re-armed.
/// events.clear();
/// book.begin_report();
/// assert!(book.report(key, &mut events, |e| Event::new(e.id())).is_none());
/// book.end_report();
/// assert!(events.is_empty());
/// book.reregister(7, EventId(2), Interest::READABLE, Mode::Oneshot, |_key, _data| Ok(()))?;
///
/// // `deregister`: the closure makes the OS call; no poll is in flight, so the slot is freed.
/// book.deregister(7, |_entry| Ok(()), || false)?;
/// let missing = book.deregister(7, |_| Ok(()), || false);
/// assert_eq!(missing.unwrap_err().kind(), ErrorKind::NotFound);
/// # std::io::Result::Ok(())
/// ```
#[derive(Debug)]
pub struct Book<X> {
    slots: Slab<Entry<X>>,
    by_source: SourceMap,
    /// Counts translations; 0 means "never reported" (or not since the last wrap).
    wait_seq: u32,
    /// Slots deregistered while a poll was in flight, freed by its `end_report`.
    deferred: Vec<usize>,
    /// Events translated in a wait that did not fit in `Events`, by internal key.
    overflow: VecDeque<(usize, Event)>,
}

impl<X> Default for Book<X> {
    fn default() -> Self {
        Book::new()
    }
}

fn not_found(raw: RawSource) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("source {raw} is not registered with this reactor"),
    )
}

impl<X> Book<X> {
    /// An empty book.
    pub fn new() -> Book<X> {
        Book {
            slots: Slab::new(),
            by_source: SourceMap::default(),
            wait_seq: 0,
            deferred: Vec::new(),
            overflow: VecDeque::new(),
        }
    }

    /// Registers `raw`: `AlreadyExists` if it is registered, otherwise calls `add` with the
    /// key the registration gets, for the OS call, and records the registration (armed) with
    /// the data `add` returns. Returns the key.
    ///
    /// If `add` fails, nothing is recorded and its error is returned.
    ///
    /// # Errors
    ///
    /// `AlreadyExists`; `InvalidInput` for a negative fd (or more than `u32::MAX`
    /// registrations); `add`'s error.
    pub fn register(
        &mut self,
        raw: RawSource,
        id: EventId,
        interest: Interest,
        mode: Mode,
        add: impl FnOnce(usize) -> io::Result<X>,
    ) -> io::Result<usize> {
        if self.by_source.get(raw).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("source {raw} is already registered with this reactor"),
            ));
        }
        let key = self.slots.vacant_key();
        SourceMap::check(raw, key)?;
        let extra = add(key)?;
        let inserted = self.slots.insert(Entry {
            id,
            interest,
            arm: Arm::new(mode),
            reported_seq: 0,
            reported_index: 0,
            extra,
        });
        debug_assert_eq!(inserted, key);
        self.by_source.insert(raw, key);
        Ok(key)
    }

    /// Re-registers `raw`: `NotFound` if it is not registered, otherwise calls `modify` with
    /// its key and data, for the OS call, and, if that succeeds, replaces the id, interest and
    /// mode and re-arms the registration. Returns the key.
    ///
    /// Overflowed events of the source are dropped first (the OS reports its readiness afresh,
    /// under the new id and interest). If `modify` fails, the registration stays as it was.
    ///
    /// # Errors
    ///
    /// `NotFound`; `modify`'s error.
    #[inline]
    pub fn reregister(
        &mut self,
        raw: RawSource,
        id: EventId,
        interest: Interest,
        mode: Mode,
        modify: impl FnOnce(usize, &mut X) -> io::Result<()>,
    ) -> io::Result<usize> {
        let Some(key) = self.by_source.get(raw) else {
            return Err(not_found(raw));
        };
        self.drop_overflow(key);
        let entry = &mut self.slots[key];
        modify(key, &mut entry.extra)?;
        entry.id = id;
        entry.interest = interest;
        entry.arm = Arm::new(mode);
        Ok(key)
    }

    fn drop_overflow(&mut self, key: usize) {
        if !self.overflow.is_empty() {
            self.overflow.retain(|(k, _)| *k != key);
        }
    }

    /// Deregisters `raw`: `NotFound` if it is not registered, otherwise calls `delete` with the
    /// entry, for the OS call, and forgets the registration; returns what `delete` returned.
    ///
    /// The registration is forgotten even if `delete` fails, so that nothing is kept for a
    /// source the OS no longer knows. `poll_in_flight` is asked after `delete`: if a poll is in
    /// flight (it may hold OS events for this registration, gathered before the OS forgot it),
    /// the slot (and the backend data in it) is held until that poll's
    /// [`end_report`](Book::end_report); otherwise it is freed at once, with any slot still held
    /// from an earlier poll.
    ///
    /// # Errors
    ///
    /// `NotFound`; `delete`'s error.
    pub fn deregister(
        &mut self,
        raw: RawSource,
        delete: impl FnOnce(&mut Entry<X>) -> io::Result<()>,
        poll_in_flight: impl FnOnce() -> bool,
    ) -> io::Result<()> {
        let key = self.by_source.remove(raw).ok_or_else(|| not_found(raw))?;
        self.drop_overflow(key);
        let result = delete(&mut self.slots[key]);
        if poll_in_flight() {
            self.slots[key].arm = Arm::Dead;
            self.deferred.push(key);
        } else {
            self.slots.remove(key);
            self.release_deferred();
        }
        result
    }

    fn release_deferred(&mut self) {
        for key in self.deferred.drain(..) {
            self.slots.remove(key);
        }
    }

    /// The live registrations and their keys, for a backend that hands the OS its whole
    /// interest list at every wait (poll(2), select).
    pub fn entries(&self) -> impl Iterator<Item = (usize, &Entry<X>)> + '_ {
        self.slots.iter().filter(|(_, e)| e.live())
    }

    /// How many sources are registered.
    pub fn len(&self) -> usize {
        self.by_source.len()
    }

    /// Whether no source is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts translating one OS wait's events (or the overflow, instead of a wait): the
    /// reports until [`end_report`](Book::end_report) make up one poll's `Events`.
    #[inline]
    pub fn begin_report(&mut self) {
        if self.wait_seq == u32::MAX {
            self.restart_sequence();
        }
        self.wait_seq += 1;
    }

    /// Once every 2^32 - 1 waits: the sequence starts again at 1 and every entry forgets its
    /// last report, so no sequence number an entry holds can come round again (a stale match
    /// would merge an event into another source's). O(registrations), amortised to nothing.
    #[cold]
    fn restart_sequence(&mut self) {
        for (_, entry) in self.slots.iter_mut() {
            entry.reported_seq = 0;
        }
        self.wait_seq = 0;
    }

    /// Reports one OS event for key `key` into `events`, as built by `make` from the
    /// registration; call between [`begin_report`](Book::begin_report) and
    /// [`end_report`](Book::end_report).
    ///
    /// Events for deregistered keys (and keys never given out) and for disarmed oneshot
    /// registrations are dropped; a second OS event for the same registration in this wait is
    /// merged into the first; an event that does not fit in `events` is kept for the next poll
    /// (see [`report_overflow`](Book::report_overflow)). Returns the entry when a new event was
    /// added (so the backend can re-arm it: mio's level emulation re-registers there), `None`
    /// otherwise. A oneshot entry is disarmed when it reports.
    #[inline]
    pub fn report(
        &mut self,
        key: usize,
        events: &mut Events,
        make: impl FnOnce(&Entry<X>) -> Event,
    ) -> Option<&mut Entry<X>> {
        let seq = self.wait_seq;
        let entry = self.slots.get_mut(key).filter(|e| e.live())?;
        let event = make(entry);
        if entry.reported_seq == seq {
            events.merge_into(entry.reported_index as usize, event);
            return None;
        }
        if entry.arm == Arm::Disarmed {
            return None;
        }
        let index = events.len();
        if !events.try_push(event) {
            self.overflow.push_back((key, event));
            return None;
        }
        // Lossless: `index < events.capacity() <= Events::MAX_CAPACITY = 2^16`.
        (entry.reported_seq, entry.reported_index) = (seq, index as u16);
        if entry.arm == Arm::Armed {
            entry.arm = Arm::Disarmed;
        }
        Some(entry)
    }

    /// Whether events from an earlier wait are waiting for room: if so, a poll reports them
    /// ([`report_overflow`](Book::report_overflow)) before it waits, and returns them if there
    /// are any.
    pub fn has_overflow(&self) -> bool {
        !self.overflow.is_empty()
    }

    /// Reports overflowed events into `events`, oldest first, as long as they fit, calling
    /// `reported` with the key of each entry that got a new event (as [`report`](Book::report)
    /// returns it); call between `begin_report` and `end_report` instead of an OS wait.
    pub fn report_overflow(&mut self, events: &mut Events, mut reported: impl FnMut(usize, &mut Entry<X>)) {
        while !events.is_full() {
            let Some((key, event)) = self.overflow.pop_front() else {
                break;
            };
            // Never re-queued: the event fits, as `events` is not full.
            if let Some(entry) = self.report(key, events, |_| event) {
                reported(key, entry);
            }
        }
    }

    /// Ends the translation of an OS wait: the poll's OS events are all read, so the slots
    /// deregistered while it was in flight are released.
    #[inline]
    pub fn end_report(&mut self) {
        if !self.deferred.is_empty() {
            self.release_deferred();
        }
    }

    /// Removes every registration and returns the live ones, for teardown (a backend's `Drop`
    /// that must tell the OS).
    pub fn drain(&mut self) -> impl Iterator<Item = Entry<X>> + '_ {
        self.by_source.clear();
        self.deferred.clear();
        self.overflow.clear();
        self.slots.drain().filter(|e| e.live())
    }

    /// The live entry under an internal key, if any.
    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Entry<X>> {
        self.slots.get_mut(key).filter(|e| e.live())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: usize) -> io::Result<()> {
        Ok(())
    }

    #[test]
    fn errors_and_deferred_release() {
        let mut book: Book<()> = Book::default();
        let k = book
            .register(3, EventId(usize::MAX), Interest::READABLE, Mode::Level, ok)
            .unwrap();
        let err = book.register(3, EventId(1), Interest::READABLE, Mode::Level, |_| {
            panic!("no OS call")
        });
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        let err = book.reregister(4, EventId(1), Interest::READABLE, Mode::Level, |_, _| {
            panic!("no OS call")
        });
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::NotFound);
        // A poll is in flight: it may hold OS events for the registration.
        book.deregister(
            3,
            |e| {
                assert_eq!(e.id(), EventId(usize::MAX));
                Err(io::ErrorKind::Other.into())
            },
            || true,
        )
        .unwrap_err();
        assert!(book.get_mut(k).is_none(), "a removed entry is never translated");
        assert_eq!(book.entries().count(), 0);
        // A new registration during the wait must not reuse the held slot.
        let k2 = book
            .register(5, EventId(0), Interest::WRITABLE, Mode::Oneshot, ok)
            .unwrap();
        assert_ne!(k2, k);
        book.begin_report();
        book.end_report();
        assert_eq!(book.len(), 1);
        assert_eq!(
            book.slots.len(),
            1,
            "the held slot is released when the wait ends"
        );
        let err = book.deregister(3, |_| Ok(()), || false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// An entry is 16 bytes with no backend data (`polling`'s), 24 with a 4-byte handle
    /// (mio's on Unix), and the slab's vacant/occupied enum adds nothing (the entry's niche).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_entry_is_16_bytes_without_backend_data() {
        assert_eq!(std::mem::size_of::<Entry<()>>(), 16);
        assert_eq!(std::mem::size_of::<Result<Entry<()>, usize>>(), 16);
        assert_eq!(std::mem::size_of::<Entry<u32>>(), 24);
    }

    /// When the 32-bit wait sequence wraps, no entry's last report can match a new wait: a
    /// source reported exactly 2^32 - 1 waits ago gets a new event, not a merge into an index
    /// of a poll long gone.
    #[test]
    fn the_wait_sequence_wraps_without_a_stale_match() {
        let mut book: Book<()> = Book::new();
        let a = book
            .register(3, EventId(1), Interest::READABLE, Mode::Level, ok)
            .unwrap();
        let b = book
            .register(4, EventId(2), Interest::READABLE, Mode::Level, ok)
            .unwrap();
        let mut events = Events::with_capacity(4);
        // `b` was last reported in wait 1, as index 0 (2^32 - 2 waits ago, as if).
        book.begin_report();
        assert!(book.report(b, &mut events, |e| Event::new(e.id())).is_some());
        book.end_report();
        book.wait_seq = u32::MAX - 1;
        // Waits u32::MAX and the two after it (the sequence wraps), `a` alone in the first two.
        for _ in 0..2 {
            events.clear();
            book.begin_report();
            assert!(book.report(a, &mut events, |e| Event::new(e.id())).is_some());
            book.end_report();
        }
        events.clear();
        book.begin_report();
        assert!(book
            .report(a, &mut events, |e| Event::new(e.id()).with_readable(true))
            .is_some());
        assert!(
            book.report(b, &mut events, |e| Event::new(e.id()).with_writable(true))
                .is_some(),
            "b is not taken as reported in this wait"
        );
        book.end_report();
        let ids: Vec<_> = events
            .iter()
            .map(|e| (e.id(), e.is_readable(), e.is_writable()))
            .collect();
        assert_eq!(ids, [(EventId(1), true, false), (EventId(2), false, true)]);
    }

    #[test]
    fn failed_os_calls_leave_the_book_as_it_was() {
        let mut book: Book<u8> = Book::new();
        let err = book.register(3, EventId(1), Interest::READABLE, Mode::Level, |_| {
            Err(io::ErrorKind::PermissionDenied.into())
        });
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert!(book.is_empty());
        let key = book
            .register(3, EventId(1), Interest::READABLE, Mode::Oneshot, |_| Ok(9))
            .unwrap();
        let mut events = Events::with_capacity(4);
        book.begin_report();
        assert!(book.report(key, &mut events, |e| Event::new(e.id())).is_some());
        book.end_report();
        let err = book.reregister(3, EventId(2), Interest::WRITABLE, Mode::Level, |k, data| {
            assert_eq!((k, *data), (key, 9));
            Err(io::ErrorKind::Other.into())
        });
        assert!(err.is_err());
        let (k, entry) = book.entries().next().unwrap();
        assert_eq!(k, key);
        assert_eq!(
            (entry.id(), entry.mode(), entry.is_armed()),
            (EventId(1), Mode::Oneshot, false)
        );
        book.reregister(3, EventId(2), Interest::WRITABLE, Mode::Level, |_, data| {
            *data = 10;
            Ok(())
        })
        .unwrap();
        let (_, entry) = book.entries().next().unwrap();
        assert_eq!(entry.id(), EventId(2));
        assert_eq!(entry.interest(), Interest::WRITABLE);
        assert_eq!(
            (entry.mode(), entry.is_armed(), *entry.extra()),
            (Mode::Level, true, 10)
        );
        assert_eq!(book.drain().count(), 1);
        assert!(book.is_empty());
    }

    #[test]
    fn held_slots_are_released_by_a_deregistration_between_polls() {
        let mut book: Book<()> = Book::default();
        for raw in [10, 11] {
            book.register(raw, EventId(0), Interest::READABLE, Mode::Level, ok)
                .unwrap();
        }
        book.deregister(10, |_| Ok(()), || true).unwrap();
        assert_eq!(book.slots.len(), 2, "held while the poll is in flight");
        book.deregister(11, |_| Ok(()), || false).unwrap();
        assert_eq!(book.slots.len(), 0);
        assert_eq!(book.len(), 0);
    }
}
