//! The I/O watcher table: slots keyed by [`EventId`] (slab index plus generation), the
//! high-watermark queue, and the lazy deadline heap.
//!
//! The id handed to the reactor *is* the watcher's id, so an event leads straight to its
//! callback. The generation in the id's upper bits makes an event for a freed, reused slot
//! miss, never reach the wrong callback.
//!
//! Deadlines are idle timeouts: each event pushes the watcher's deadline forward without
//! touching the heap. When a heap entry surfaces, the watcher has either expired or its newer
//! deadline is pushed again, so a busy connection costs no heap operation per event.
//!
//! The heap's invariant: every live watcher with a timeout has at least one entry at or before
//! its deadline. An entry names a slot, not a watcher (`super::deadline_heap`, 12 bytes), and
//! which entry is "its own" is not recorded (that was 8 bytes a slot): any entry of a slot's
//! live watcher is taken as a lower bound, so the poll never waits past a deadline, and a
//! watcher expires only when its own deadline (last activity plus timeout) has passed, so
//! never early. Only a timeout made shorter pushes a second entry; when stale entries (of
//! watchers that ended, or duplicates) outnumber the watchers with a timeout, the heap is
//! rebuilt with each one's earliest entry, so it never holds more than twice what is live.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use slab::Slab;

use super::deadline_heap::DeadlineHeap;
use super::watch_slot::{timeout_nanos, IN_QUEUE, MAX_TICK, NO_TIMEOUT, ONCE, REARM, REFED};
pub(crate) use super::watch_slot::{Slot, State};
use crate::{EventId, Interest, Mode};

/// Bits of an [`EventId`] that hold the slot index; the rest hold the generation.
const INDEX_BITS: u32 = if usize::BITS >= 64 { 32 } else { 20 };
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
const GENERATIONS: usize = usize::MAX >> INDEX_BITS;

/// The most watchers that can exist at once (registered plus queued).
pub(crate) const MAX_WATCHERS: usize = INDEX_MASK;

/// What a new watcher starts with.
pub(crate) struct NewWatcher<E> {
    pub(crate) entry: E,
    pub(crate) state: State,
    pub(crate) interest: Interest,
    pub(crate) mode: Mode,
    pub(crate) once: bool,
    pub(crate) rearm: bool,
    pub(crate) timeout: Option<Duration>,
}

pub(crate) struct Watchers<E> {
    slots: Slab<Slot<E>>,
    next_generation: usize,
    queue: VecDeque<EventId>,
    /// Deadlines as ticks (nanoseconds since `epoch`) by slot index, 12 bytes an entry.
    deadlines: DeadlineHeap,
    /// Where ticks count from: no later than any time the table is given.
    epoch: Instant,
    /// The instant of the earliest heap entry (`deadlines`' top), so that the per-iteration
    /// check compares instants without converting the loop time.
    first_due: Option<Instant>,
    /// The loop time as a tick (`set_now`).
    now_tick: u64,
    registered: usize,
    queued: usize,
    paused: usize,
    refed: usize,
    /// Watchers with a timeout: the heap is compacted when it holds more than twice as many
    /// entries (plus a few).
    timed: usize,
}

impl<E> Default for Watchers<E> {
    fn default() -> Self {
        Self::with_seed(0)
    }
}

impl<E> Watchers<E> {
    /// A table whose generations start from `seed` (a per-runtime random number), so that an
    /// id from another runtime misses here instead of naming one of these watches.
    pub(crate) fn with_seed(seed: u64) -> Self {
        Watchers {
            slots: Slab::new(),
            // Truncation intended: the seed's low bits, as many as generations have.
            next_generation: (seed as usize) & GENERATIONS,
            queue: VecDeque::new(),
            deadlines: DeadlineHeap::default(),
            epoch: Instant::now(),
            first_due: None,
            now_tick: 0,
            registered: 0,
            queued: 0,
            paused: 0,
            refed: 0,
            timed: 0,
        }
    }
}

/// `ErrorKind::NotFound` for an id that is not a live watch.
pub(crate) fn not_a_watch(id: EventId) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotFound, format!("{id} is not a live watch"))
}

/// `at` as a tick: nanoseconds since `epoch`, saturating at both ends (a time before the
/// epoch has passed; `MAX_TICK` at the far end).
fn tick_of(epoch: Instant, at: Instant) -> u64 {
    let since = at.saturating_duration_since(epoch);
    u64::try_from(since.as_nanos()).unwrap_or(u64::MAX).min(MAX_TICK)
}

fn split(id: EventId) -> (usize, u32) {
    // Lossless: the generation has at most 32 bits (`GENERATIONS`).
    (id.0 & INDEX_MASK, (id.0 >> INDEX_BITS) as u32)
}

impl<E> Watchers<E> {
    fn tick(&self, at: Instant) -> u64 {
        tick_of(self.epoch, at)
    }

    /// The instant of a tick.
    fn instant(&self, tick: u64) -> Instant {
        let since = Duration::from_nanos(tick);
        self.epoch
            .checked_add(since)
            .unwrap_or_else(|| super::deadline_after(self.epoch, since))
    }

    fn push_deadline(&mut self, tick: u64, index: usize) {
        self.deadlines.push(tick, index);
        if self.deadlines.len() > 2 * self.timed + 16 {
            // The earliest entry of each live watcher with a timeout is kept: O(n log n), after
            // at least `timed + 16` pushes since the last time.
            let slots = &self.slots;
            self.deadlines
                .compact(|index| slots.get(index).is_some_and(|s| s.timeout != NO_TIMEOUT));
        }
        self.refresh_first_due();
    }

    /// The id of the watcher in slot `index`.
    fn id_at(index: usize, slot: &Slot<E>) -> EventId {
        EventId(index | ((slot.generation as usize) << INDEX_BITS))
    }

    fn pop_deadline(&mut self) {
        self.deadlines.pop();
        self.refresh_first_due();
    }

    fn refresh_first_due(&mut self) {
        self.first_due = self.deadlines.peek().map(|(tick, _)| self.instant(tick));
    }
}

impl<E> Watchers<E> {
    /// Adds a watcher (registered or queued, as `new.state` says) with its deadline counted from
    /// `now`. The caller registers it with the reactor.
    pub(crate) fn insert(&mut self, new: NewWatcher<E>, now: Instant) -> EventId {
        let generation = self.next_generation;
        self.next_generation = (self.next_generation + 1) & GENERATIONS;
        let deadline = new.timeout.map(|t| self.tick(super::deadline_after(now, t)));
        let index = self.slots.insert(Slot {
            // Lossless: generations have at most 32 bits.
            generation: generation as u32,
            state: new.state,
            entry: Some(new.entry),
            interest: new.interest,
            mode: new.mode,
            bits: (if new.once { ONCE } else { 0 })
                | (if new.rearm { REARM } else { 0 })
                | (if new.state == State::Queued { IN_QUEUE } else { 0 })
                | REFED,
            timeout: timeout_nanos(new.timeout),
            active: self.tick(now),
        });
        let id = EventId(index | (generation << INDEX_BITS));
        self.refed += 1;
        self.count(new.state, true);
        if new.state == State::Queued {
            self.queue.push_back(id);
            self.compact_queue();
        }
        if let Some(deadline) = deadline {
            self.timed += 1;
            self.push_deadline(deadline, index);
        }
        id
    }

    /// How many watchers exist (registered plus queued).
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn get(&self, id: EventId) -> Option<&Slot<E>> {
        let (index, generation) = split(id);
        self.slots.get(index).filter(|s| s.generation == generation)
    }

    pub(crate) fn get_mut(&mut self, id: EventId) -> Option<&mut Slot<E>> {
        let (index, generation) = split(id);
        self.slots.get_mut(index).filter(|s| s.generation == generation)
    }

    /// A watcher that is not closing, or `ErrorKind::NotFound`.
    pub(crate) fn live(&mut self, id: EventId) -> std::io::Result<&mut Slot<E>> {
        self.get_mut(id)
            .filter(|s| !s.closing())
            .ok_or_else(|| not_a_watch(id))
    }

    /// Removes a watcher for good; the caller deregisters its entry first.
    pub(crate) fn remove(&mut self, id: EventId) -> Option<Slot<E>> {
        self.get_mut(id)?;
        let slot = self.slots.remove(split(id).0);
        self.count(slot.state, false);
        if slot.refed() {
            self.refed -= 1;
        }
        if slot.timeout != NO_TIMEOUT {
            // Its heap entries are stale now: dropped when they surface or at a compaction.
            self.timed -= 1;
        }
        Some(slot)
    }

    fn count(&mut self, state: State, add: bool) {
        let counter = match state {
            State::Registered => &mut self.registered,
            // A queue entry of a watch that left the queue is skipped when it surfaces.
            State::Queued => &mut self.queued,
            State::Paused => &mut self.paused,
        };
        if add {
            *counter += 1;
        } else {
            *counter -= 1;
        }
    }

    /// Moves a watcher to `state` (the caller registers or deregisters it with the reactor).
    pub(crate) fn set_state(&mut self, id: EventId, state: State) {
        let Some(slot) = self.get_mut(id) else { return };
        let old = std::mem::replace(&mut slot.state, state);
        if old == state {
            return;
        }
        let enqueue = state == State::Queued && !slot.in_queue();
        if enqueue {
            slot.set_in_queue(true);
        }
        self.count(old, false);
        self.count(state, true);
        if enqueue {
            self.queue.push_back(id);
            self.compact_queue();
        }
    }

    /// Drops the queue entries of watches that were removed or left the queue once they
    /// outnumber the queued ones, so churn (pause and resume, close while queued) cannot grow
    /// the queue beyond twice what is queued.
    fn compact_queue(&mut self) {
        if self.queue.len() <= 2 * self.queued + 16 {
            return;
        }
        let slots = &mut self.slots;
        self.queue.retain(|&id| {
            let (index, generation) = split(id);
            match slots.get_mut(index).filter(|s| s.generation == generation) {
                Some(slot) if slot.state == State::Queued => true,
                Some(slot) => {
                    slot.set_in_queue(false);
                    false
                }
                None => false,
            }
        });
    }

    /// An event arrived: the idle deadline restarts at `now_tick` (the loop time as a tick:
    /// [`Watchers::now_tick`]).
    #[inline]
    pub(crate) fn touch(slot: &mut Slot<E>, now_tick: u64) {
        slot.active = now_tick;
    }

    /// The loop time, as a tick: set by [`Watchers::set_now`] when the loop time is refreshed,
    /// so an event's activity costs no conversion.
    #[inline]
    pub(crate) fn now_tick(&self) -> u64 {
        self.now_tick
    }

    /// The loop time was refreshed to `now`.
    #[inline]
    pub(crate) fn set_now(&mut self, now: Instant) {
        self.now_tick = self.tick(now);
    }

    /// Changes a watcher's timeout, counting from `now`.
    pub(crate) fn set_timeout(&mut self, id: EventId, timeout: Option<Duration>, now: Instant) -> bool {
        let epoch = self.epoch;
        let Some(slot) = self.get_mut(id) else {
            return false;
        };
        // The old deadline has an entry at or before it (the invariant): a later new one needs
        // no entry of its own.
        let old = slot.deadline();
        slot.timeout = timeout_nanos(timeout);
        slot.active = tick_of(epoch, now);
        let new = slot.deadline();
        match (old, new) {
            (None, Some(_)) => self.timed += 1,
            (Some(_), None) => self.timed -= 1,
            _ => {}
        }
        if let Some(deadline) = new {
            if old.is_none_or(|old| deadline < old) {
                self.push_deadline(deadline, split(id).0);
            }
        }
        true
    }

    /// Marks a watcher as (not) keeping the loop alive.
    pub(crate) fn set_ref(&mut self, id: EventId, refed: bool) -> bool {
        let Some(slot) = self.get_mut(id) else {
            return false;
        };
        if slot.refed() != refed {
            slot.set_bit(REFED, refed);
            if refed {
                self.refed += 1;
            } else {
                self.refed -= 1;
            }
        }
        true
    }

    /// The next queued watcher to register, if one is waiting; it counts as registered from now.
    pub(crate) fn admit(&mut self) -> Option<EventId> {
        while let Some(id) = self.queue.pop_front() {
            if let Some(slot) = self.get_mut(id) {
                slot.set_in_queue(false);
                if slot.state == State::Queued {
                    slot.state = State::Registered;
                    self.queued -= 1;
                    self.registered += 1;
                    return Some(id);
                }
            }
        }
        None
    }

    /// The earliest deadline in the heap (possibly superseded by a later one: waking for it is
    /// harmless).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some((_, index)) = self.deadlines.peek() {
            match self.slots.get(index) {
                Some(slot) if slot.timeout != NO_TIMEOUT => return self.first_due,
                _ => self.pop_deadline(),
            }
        }
        None
    }

    /// The time from the loop time ([`set_now`](Self::set_now)) to the earliest heap entry,
    /// counted in ticks (no conversion of an instant). The entry is not checked: one of a
    /// watch that ended, or one superseded by a later deadline, makes the poll wake early,
    /// which is harmless (the deadlines phase then pops it), and saves a slot lookup per
    /// iteration.
    #[inline]
    pub(crate) fn time_to_next_deadline(&self) -> Option<Duration> {
        let (at, _) = self.deadlines.peek()?;
        Some(Duration::from_nanos(at.saturating_sub(self.now_tick)))
    }

    /// Whether the earliest heap entry is due at `now` (it may be superseded: then
    /// [`pop_expired`](Self::pop_expired) finds nothing and refreshes it).
    #[inline]
    pub(crate) fn any_due(&self, now: Instant) -> bool {
        self.first_due.is_some_and(|at| at <= now)
    }

    /// The next watcher whose deadline passed at `now`, if any. Its heap entry is consumed.
    #[inline]
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<EventId> {
        match self.first_due {
            Some(at) if at <= now => self.pop_expired_slow(now),
            _ => None,
        }
    }

    fn pop_expired_slow(&mut self, now: Instant) -> Option<EventId> {
        let now_tick = self.tick(now);
        loop {
            let (at, index) = self.deadlines.peek()?;
            if at > now_tick {
                return None;
            }
            self.pop_deadline();
            // Whichever watcher holds the slot now: the entry is a lower bound for it too.
            let Some(slot) = self.slots.get(index) else {
                continue;
            };
            match slot.deadline() {
                // The caller removes it (its other entries, if any, go stale).
                Some(deadline) if deadline <= now_tick => return Some(Self::id_at(index, slot)),
                Some(later) => self.push_deadline(later, index),
                None => {}
            }
        }
    }

    /// Whether the high-watermark queue holds ids (live or stale): only then can `admit`
    /// find one.
    #[inline]
    pub(crate) fn has_queue(&self) -> bool {
        !self.queue.is_empty()
    }

    pub(crate) fn registered(&self) -> usize {
        self.registered
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    pub(crate) fn paused(&self) -> usize {
        self.paused
    }

    pub(crate) fn refed(&self) -> usize {
        self.refed
    }

    /// Every watcher's entry and state, for teardown.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Slot<E>> + '_ {
        self.queue.clear();
        self.deadlines.clear();
        self.first_due = None;
        self.registered = 0;
        self.queued = 0;
        self.paused = 0;
        self.refed = 0;
        self.timed = 0;
        self.slots.drain()
    }
}

#[cfg(test)]
#[path = "watchers_tests.rs"]
mod tests;
