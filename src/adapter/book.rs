//! The adapter's own book of registrations.
//!
//! Keyed by raw source, it gives every backend the same `AlreadyExists`/`NotFound` answers
//! whatever the OS or crate underneath is lax about, and it maps caller ids (any `usize`) to
//! internal keys (slab indices, which never reach the values crates reserve, such as
//! `usize::MAX`).
//!
//! A slot freed while a poll is translating kernel events would let a stale event be read under
//! a new registration's id, so slots deregistered during a wait are only released when the wait
//! ends.
//!
//! Some waits return more events than `Events` holds (polling's poll(2) backend ignores the
//! capacity, and has already disarmed the oneshot registrations it returned): what does not fit
//! is kept in an overflow queue and reported by the next polls, before the OS is asked again, so
//! nothing is lost and no source starves. Overflowed events are dropped when their source is
//! deregistered or re-registered (the OS re-evaluates readiness then).

use std::collections::{HashMap, VecDeque};
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
    /// False once deregistered while a wait was in flight; the slot is freed when it ends.
    live: bool,
    /// Per-backend data (e.g. the mio socket object on Windows).
    pub(crate) extra: X,
}

/// The registrations of one reactor.
#[derive(Debug)]
pub(crate) struct Book<X> {
    slots: Slab<Entry<X>>,
    by_source: HashMap<RawSource, usize>,
    waiting: bool,
    /// Counts waits; 0 means "never reported".
    wait_seq: u64,
    deferred: Vec<usize>,
    /// Events translated in a wait that did not fit in `Events`, by internal key.
    overflow: VecDeque<(usize, Event)>,
}

impl<X> Default for Book<X> {
    fn default() -> Self {
        Book {
            slots: Slab::new(),
            by_source: HashMap::new(),
            waiting: false,
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
        if self.by_source.contains_key(&raw) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("source {raw} is already registered with this reactor"),
            ));
        }
        Ok(self.slots.vacant_key())
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
    pub(crate) fn lookup_for_reregister(&mut self, raw: RawSource) -> io::Result<(usize, &mut Entry<X>)> {
        let key = *self.by_source.get(&raw).ok_or_else(|| not_found(raw))?;
        self.overflow.retain(|(k, _)| *k != key);
        Ok((key, &mut self.slots[key]))
    }

    /// Forgets a registration after `unregister` told the OS; returns what `unregister` returned.
    ///
    /// The registration is forgotten even if the OS call failed, so that nothing is kept for a
    /// source the OS no longer knows. While a wait is in flight the slot (and the backend data
    /// in it) is held until [`end_wait`](Book::end_wait).
    pub(crate) fn remove(
        &mut self,
        raw: RawSource,
        unregister: impl FnOnce(&mut Entry<X>) -> io::Result<()>,
    ) -> io::Result<()> {
        let key = self.by_source.remove(&raw).ok_or_else(|| not_found(raw))?;
        self.overflow.retain(|(k, _)| *k != key);
        let result = unregister(&mut self.slots[key]);
        if self.waiting {
            self.slots[key].live = false;
            self.deferred.push(key);
        } else {
            self.slots.remove(key);
        }
        result
    }

    /// The live entry under an internal key, if any.
    #[cfg(test)]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut Entry<X>> {
        self.slots.get_mut(key).filter(|e| e.live)
    }

    /// Marks the start of an OS wait: from now on, freed slots are held until `end_wait`.
    pub(crate) fn begin_wait(&mut self) {
        self.waiting = true;
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
    /// call between `begin_wait` and `end_wait` instead of an OS wait.
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

    /// Marks the end of an OS wait and its translation; releases the slots held meanwhile.
    pub(crate) fn end_wait(&mut self) {
        self.waiting = false;
        for key in self.deferred.drain(..) {
            self.slots.remove(key);
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
        book.begin_wait();
        let mut key = usize::MAX;
        book.remove(3, |e| {
            assert_eq!(e.id, EventId(usize::MAX));
            key = k;
            Err(io::ErrorKind::Other.into())
        })
        .unwrap_err();
        assert!(book.get_mut(key).is_none(), "a removed entry is never translated");
        // A new registration during the wait must not reuse the held slot.
        let k2 = book.vacant_key(5).unwrap();
        assert_ne!(k2, key);
        book.insert(5, EventId(0), Interest::WRITABLE, Mode::Oneshot, ());
        book.end_wait();
        assert_eq!(book.len(), 1);
        assert_eq!(
            book.slots.len(),
            1,
            "the held slot is released when the wait ends"
        );
        let err = book.remove(3, |_| Ok(())).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
