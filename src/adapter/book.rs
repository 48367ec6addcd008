//! The adapter's own book of registrations.
//!
//! Keyed by raw source, it gives every backend the same `AlreadyExists`/`NotFound` answers
//! whatever the OS or crate underneath is lax about, and it maps caller ids (any `usize`) to
//! internal keys (slab indices, which never reach the values crates reserve, such as
//! `usize::MAX`).
//!
//! A slot freed while a poll is waiting or translating kernel events would let a stale event be
//! read under a new registration's id, so slots deregistered while a poll is in flight are only
//! released when that poll has translated its events ([`Book::end_report`]). Whether a poll is in
//! flight is for the adapter to say (it holds its poll lock from before the OS wait until after
//! the translation); the book itself is only locked once per wait, to translate.
//!
//! Some waits return more events than `Events` holds (polling's poll(2) backend ignores the
//! capacity, and has already disarmed the oneshot registrations it returned): what does not fit
//! is kept in an overflow queue and reported by the next polls, before the OS is asked again, so
//! nothing is lost and no source starves. Overflowed events are dropped when their source is
//! deregistered or re-registered (the OS re-evaluates readiness then).

use std::collections::VecDeque;
use std::io;

use slab::Slab;

use crate::source::RawSource;
use crate::{Event, EventId, Events, Interest, Mode};

/// One registration.
#[derive(Debug)]
pub(crate) struct Entry<X> {
    pub(crate) id: EventId,
    pub(crate) interest: Interest,
    pub(crate) mode: Mode,
    /// Oneshot registrations: false once an event was reported, until `reregister` re-arms.
    pub(crate) armed: bool,
    /// The wait (by sequence number) and the index in `Events` of this entry's last report, so
    /// that two OS events for one source in one wait (kqueue has one filter per direction)
    /// merge into one event.
    reported: (u64, usize),
    /// False once deregistered while a poll was in flight; the slot is freed when it ends.
    live: bool,
    /// Per-backend data (e.g. the mio socket object on Windows).
    pub(crate) extra: X,
}

/// The registrations of one reactor.
#[derive(Debug)]
pub(crate) struct Book<X> {
    slots: Slab<Entry<X>>,
    by_source: SourceMap,
    /// Counts translations; 0 means "never reported".
    wait_seq: u64,
    /// Slots deregistered while a poll was in flight, freed by its `end_report`.
    deferred: Vec<usize>,
    /// Events translated in a wait that did not fit in `Events`, by internal key.
    overflow: VecDeque<(usize, Event)>,
}

impl<X> Default for Book<X> {
    fn default() -> Self {
        Book {
            slots: Slab::new(),
            by_source: SourceMap::default(),
            wait_seq: 0,
            deferred: Vec::new(),
            overflow: VecDeque::new(),
        }
    }
}

fn not_found(raw: RawSource) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("source {raw} is not registered with this reactor"),
    )
}

impl<X> Book<X> {
    /// The key a new registration of `raw` will get, or `AlreadyExists`.
    pub(crate) fn vacant_key(&self, raw: RawSource) -> io::Result<usize> {
        if self.by_source.get(raw).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("source {raw} is already registered with this reactor"),
            ));
        }
        let key = self.slots.vacant_key();
        SourceMap::check(raw, key)?;
        Ok(key)
    }

    /// Records a registration the OS accepted under `vacant_key()`.
    pub(crate) fn insert(
        &mut self,
        raw: RawSource,
        id: EventId,
        interest: Interest,
        mode: Mode,
        extra: X,
    ) -> usize {
        let key = self.slots.insert(Entry {
            id,
            interest,
            mode,
            armed: true,
            reported: (0, 0),
            live: true,
            extra,
        });
        self.by_source.insert(raw, key);
        key
    }

    /// The key and entry of a registered source about to be re-registered, or `NotFound`.
    ///
    /// Overflowed events of the source are dropped: after the re-registration the OS reports its
    /// readiness afresh, under the new id and interest.
    #[inline]
    pub(crate) fn lookup_for_reregister(&mut self, raw: RawSource) -> io::Result<(usize, &mut Entry<X>)> {
        let Some(key) = self.by_source.get(raw) else {
            return Err(not_found(raw));
        };
        self.drop_overflow(key);
        Ok((key, &mut self.slots[key]))
    }

    fn drop_overflow(&mut self, key: usize) {
        if !self.overflow.is_empty() {
            self.overflow.retain(|(k, _)| *k != key);
        }
    }

    /// Forgets a registration after `unregister` told the OS; returns what `unregister` returned.
    ///
    /// The registration is forgotten even if the OS call failed, so that nothing is kept for a
    /// source the OS no longer knows. `poll_in_flight` is asked after `unregister`: if a poll
    /// is in flight (it may hold OS events for this registration, gathered before the OS
    /// forgot it), the slot (and the backend data in it) is held until that poll's
    /// [`end_report`](Book::end_report); otherwise it is freed at once, with any slot still
    /// held from an earlier poll.
    pub(crate) fn remove(
        &mut self,
        raw: RawSource,
        unregister: impl FnOnce(&mut Entry<X>) -> io::Result<()>,
        poll_in_flight: impl FnOnce() -> bool,
    ) -> io::Result<()> {
        let key = self.by_source.remove(raw).ok_or_else(|| not_found(raw))?;
        self.drop_overflow(key);
        let result = unregister(&mut self.slots[key]);
        if poll_in_flight() {
            self.slots[key].live = false;
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

    /// The live entry under an internal key, if any.
    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Entry<X>> {
        self.slots.get_mut(key).filter(|e| e.live)
    }

    /// Starts translating one OS wait's events (or the overflow, instead of a wait): the
    /// reports until [`end_report`](Book::end_report) make up one poll's `Events`.
    #[inline]
    pub(crate) fn begin_report(&mut self) {
        self.wait_seq += 1;
    }

    /// Reports one OS event for internal key `key` into `events`, as built by `make` from the
    /// registration.
    ///
    /// Events for deregistered keys and for disarmed oneshot registrations are dropped; a
    /// second OS event for the same registration in this wait is merged into the first; an
    /// event that does not fit in `events` is kept for the next poll (see
    /// [`report_overflow`](Book::report_overflow)). Returns the entry when a new event was
    /// added (so the adapter can re-arm it), `None` otherwise.
    #[inline]
    pub(crate) fn report(
        &mut self,
        key: usize,
        events: &mut Events,
        make: impl FnOnce(&Entry<X>) -> Event,
    ) -> Option<&mut Entry<X>> {
        let seq = self.wait_seq;
        let entry = self.slots.get_mut(key).filter(|e| e.live)?;
        let event = make(entry);
        if entry.reported.0 == seq {
            events.merge_into(entry.reported.1, event);
            return None;
        }
        if entry.mode == Mode::Oneshot && !entry.armed {
            return None;
        }
        let index = events.len();
        if !events.try_push(event) {
            self.overflow.push_back((key, event));
            return None;
        }
        entry.reported = (seq, index);
        if entry.mode == Mode::Oneshot {
            entry.armed = false;
        }
        Some(entry)
    }

    /// Whether events from an earlier wait are waiting for room.
    pub(crate) fn has_overflow(&self) -> bool {
        !self.overflow.is_empty()
    }

    /// Reports overflowed events into `events`, oldest first, as long as they fit, calling
    /// `reported` for each entry that got a new event (as [`report`](Book::report) returns it);
    /// call between `begin_report` and `end_report` instead of an OS wait.
    pub(crate) fn report_overflow(
        &mut self,
        events: &mut Events,
        mut reported: impl FnMut(usize, &mut Entry<X>),
    ) {
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
    pub(crate) fn end_report(&mut self) {
        if !self.deferred.is_empty() {
            self.release_deferred();
        }
    }

    /// Every live entry, for teardown.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry<X>> + '_ {
        self.by_source.clear();
        self.deferred.clear();
        self.overflow.clear();
        self.slots.drain()
    }

    /// How many sources are registered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_source.len()
    }
}

/// Raw source to internal key.
///
/// On Unix a table indexed by fd: fds are small dense integers (the lowest free one is always
/// reused), so the table only grows to the highest fd registered (4 bytes an fd, and never
/// beyond the process's fd limit), and a lookup is an index rather than a hash.
#[cfg(unix)]
#[derive(Debug, Default)]
struct SourceMap {
    /// `key + 1` by fd; 0 for none.
    keys: Vec<u32>,
    len: usize,
}

#[cfg(unix)]
impl SourceMap {
    /// Whether `raw` can be recorded under `key`.
    fn check(raw: RawSource, key: usize) -> io::Result<()> {
        if raw < 0 || key >= u32::MAX as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source {raw} cannot be registered (negative fd or too many registrations)"),
            ));
        }
        Ok(())
    }

    #[inline]
    fn get(&self, raw: RawSource) -> Option<usize> {
        let slot = *self.keys.get(usize::try_from(raw).ok()?)?;
        (slot as usize).checked_sub(1)
    }

    /// Records `raw` (not yet recorded) under `key`, as accepted by [`check`](Self::check).
    fn insert(&mut self, raw: RawSource, key: usize) {
        let (Ok(fd), Ok(slot)) = (usize::try_from(raw), u32::try_from(key + 1)) else {
            unreachable!("vacant_key checks the fd and key");
        };
        if fd >= self.keys.len() {
            // Amortised growth (`resize` reserves like `push`); only on registration.
            self.keys.resize(fd + 1, 0);
        }
        self.keys[fd] = slot;
        self.len += 1;
    }

    fn remove(&mut self, raw: RawSource) -> Option<usize> {
        let slot = self.keys.get_mut(usize::try_from(raw).ok()?)?;
        let key = (*slot as usize).checked_sub(1)?;
        *slot = 0;
        self.len -= 1;
        Some(key)
    }

    fn clear(&mut self) {
        self.keys.clear();
        self.len = 0;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }
}

/// Raw source to internal key.
///
/// On Windows a hash map over socket handles (kernel handles: multiples of 4, not dense), with
/// a multiplicative hash: sockets are not attacker-chosen, so SipHash buys nothing here.
#[cfg(not(unix))]
#[derive(Debug, Default)]
struct SourceMap(std::collections::HashMap<RawSource, usize, std::hash::BuildHasherDefault<SocketHasher>>);

/// Fibonacci hashing of a handle; the high half is folded into the low bits, which pick the
/// bucket, as handles share their low bits.
#[cfg(not(unix))]
#[derive(Default)]
struct SocketHasher(u64);

#[cfg(not(unix))]
impl std::hash::Hasher for SocketHasher {
    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[cfg(not(unix))]
impl SourceMap {
    /// Whether `raw` can be recorded under `key`: always.
    fn check(_raw: RawSource, _key: usize) -> io::Result<()> {
        Ok(())
    }

    #[inline]
    fn get(&self, raw: RawSource) -> Option<usize> {
        self.0.get(&raw).copied()
    }

    fn insert(&mut self, raw: RawSource, key: usize) {
        self.0.insert(raw, key);
    }

    fn remove(&mut self, raw: RawSource) -> Option<usize> {
        self.0.remove(&raw)
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_deferred_release() {
        let mut book: Book<()> = Book::default();
        let k = book.vacant_key(3).unwrap();
        assert_eq!(
            book.insert(3, EventId(usize::MAX), Interest::READABLE, Mode::Level, ()),
            k
        );
        assert_eq!(
            book.vacant_key(3).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(
            book.lookup_for_reregister(4).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        // A poll is in flight: it may hold OS events for the registration.
        let mut key = usize::MAX;
        book.remove(
            3,
            |e| {
                assert_eq!(e.id, EventId(usize::MAX));
                key = k;
                Err(io::ErrorKind::Other.into())
            },
            || true,
        )
        .unwrap_err();
        assert!(book.get_mut(key).is_none(), "a removed entry is never translated");
        // A new registration during the wait must not reuse the held slot.
        let k2 = book.vacant_key(5).unwrap();
        assert_ne!(k2, key);
        book.insert(5, EventId(0), Interest::WRITABLE, Mode::Oneshot, ());
        book.begin_report();
        book.end_report();
        assert_eq!(book.len(), 1);
        assert_eq!(
            book.slots.len(),
            1,
            "the held slot is released when the wait ends"
        );
        let err = book.remove(3, |_| Ok(()), || false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn held_slots_are_released_by_a_deregistration_between_polls() {
        let mut book: Book<()> = Book::default();
        for raw in [10, 11] {
            book.vacant_key(raw).unwrap();
            book.insert(raw, EventId(0), Interest::READABLE, Mode::Level, ());
        }
        book.remove(10, |_| Ok(()), || true).unwrap();
        assert_eq!(book.slots.len(), 2, "held while the poll is in flight");
        book.remove(11, |_| Ok(()), || false).unwrap();
        assert_eq!(book.slots.len(), 0);
        assert_eq!(book.len(), 0);
    }

    #[test]
    fn source_map() {
        let mut map = SourceMap::default();
        // Unix fds are small; Windows sockets are multiples of 4 and can be large.
        let raws: Vec<RawSource> = (0..2000).map(|i| i * 4).chain([100_003]).collect();
        for (key, &raw) in raws.iter().enumerate() {
            assert_eq!(map.get(raw), None);
            map.insert(raw, key);
        }
        assert_eq!(map.len(), raws.len());
        for (key, &raw) in raws.iter().enumerate() {
            assert_eq!(map.get(raw), Some(key));
        }
        assert_eq!(map.get(1), None);
        for (key, &raw) in raws.iter().enumerate().step_by(2) {
            assert_eq!(map.remove(raw), Some(key));
            assert_eq!(map.remove(raw), None);
        }
        for (key, &raw) in raws.iter().enumerate() {
            assert_eq!(map.get(raw), (key % 2 == 1).then_some(key));
        }
        map.clear();
        assert_eq!(map.len(), 0);
        assert_eq!(map.get(4), None);
    }
}
