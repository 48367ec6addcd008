//! The timer queue: a binary heap of deadlines over a slab of timers.
//!
//! Insert, cancel and pop cost O(log n). Cancelling leaves the heap entry behind; it is skipped
//! when it surfaces and the heap is compacted when dead entries outnumber live ones, so memory
//! stays proportional to the live timers.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use slab::Slab;

/// Identifies a timer started with [`Runtime::set_timeout`](super::Runtime::set_timeout) or
/// [`Runtime::set_interval`](super::Runtime::set_interval).
///
/// Ids are never reused by another timer: clearing a fired or cleared timer is a no-op.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    key: usize,
    seq: u64,
}

struct Slot<T> {
    /// The timer's identity, fixed for its life.
    seq: u64,
    /// The insertion order of its current heap entry (renewed when an interval is re-queued).
    order: u64,
    refed: bool,
    value: Option<T>,
}

/// Timers ordered by (deadline, insertion sequence), so equal deadlines fire in insertion order.
pub(crate) struct TimerQueue<T> {
    slots: Slab<Slot<T>>,
    heap: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    next_seq: u64,
    refed: usize,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        TimerQueue {
            slots: Slab::new(),
            heap: BinaryHeap::new(),
            next_seq: 0,
            refed: 0,
        }
    }
}

impl<T> TimerQueue<T> {
    /// The order the next inserted (or re-inserted) timer gets: pass it to `pop_due` to leave out
    /// every timer queued from now on.
    pub(crate) fn next_order(&self) -> u64 {
        self.next_seq
    }

    /// Adds a timer; it keeps the loop alive until it fires or is cleared.
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = self.slots.insert(Slot {
            seq,
            order: seq,
            refed: true,
            value: Some(value),
        });
        self.refed += 1;
        self.heap.push(Reverse((deadline, seq, key)));
        TimerId { key, seq }
    }

    /// Re-queues a timer whose value was taken by [`pop_due`](Self::pop_due) (an interval), with
    /// a new deadline, behind every timer inserted so far. Returns false if it was cleared
    /// meanwhile.
    pub(crate) fn reinsert(&mut self, id: TimerId, deadline: Instant, value: T) -> bool {
        match self.slots.get_mut(id.key) {
            Some(slot) if slot.seq == id.seq && slot.value.is_none() => {
                let order = self.next_seq;
                self.next_seq += 1;
                slot.order = order;
                slot.value = Some(value);
                self.heap.push(Reverse((deadline, order, id.key)));
                true
            }
            _ => false,
        }
    }

    /// Clears a timer. Returns whether it was still pending (or running, for an interval).
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.slots.get(id.key) {
            Some(slot) if slot.seq == id.seq => {
                let slot = self.slots.remove(id.key);
                if slot.refed {
                    self.refed -= 1;
                }
                self.compact_if_sparse();
                true
            }
            _ => false,
        }
    }

    /// Marks a timer as (not) keeping the loop alive. Returns false for an unknown timer.
    pub(crate) fn set_ref(&mut self, id: TimerId, refed: bool) -> bool {
        match self.slots.get_mut(id.key) {
            Some(slot) if slot.seq == id.seq => {
                if slot.refed != refed {
                    slot.refed = refed;
                    if refed {
                        self.refed += 1;
                    } else {
                        self.refed -= 1;
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Timers that keep the loop alive.
    pub(crate) fn refed(&self) -> usize {
        self.refed
    }

    /// Live timers.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The earliest pending deadline, skipping cleared timers.
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        self.skip_dead();
        self.heap.peek().map(|Reverse((deadline, _, _))| *deadline)
    }

    /// Takes the value of the earliest timer that is due at `now` and was inserted before
    /// sequence `before`. The timer stays known (for `reinsert` or `cancel`).
    pub(crate) fn pop_due(&mut self, now: Instant, before: u64) -> Option<(TimerId, T)> {
        self.skip_dead();
        let Reverse((deadline, order, key)) = *self.heap.peek()?;
        if deadline > now || order >= before {
            return None;
        }
        self.heap.pop();
        let slot = &mut self.slots[key];
        let value = slot.value.take()?;
        Some((TimerId { key, seq: slot.seq }, value))
    }

    fn skip_dead(&mut self) {
        while let Some(Reverse((_, order, key))) = self.heap.peek() {
            match self.slots.get(*key) {
                Some(slot) if slot.order == *order && slot.value.is_some() => return,
                _ => {
                    self.heap.pop();
                }
            }
        }
    }

    fn compact_if_sparse(&mut self) {
        if self.heap.len() > 1024 && self.heap.len() > 2 * self.slots.len() {
            let slots = &self.slots;
            self.heap
                .retain(|Reverse((_, order, key))| slots.get(*key).is_some_and(|s| s.order == *order));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn due_order_insertion_order_and_sequence_cut() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        let a = q.insert(t0 + Duration::from_millis(5), "a");
        q.insert(t0 + Duration::from_millis(1), "b");
        q.insert(t0 + Duration::from_millis(5), "c");
        let cut = q.next_order();
        // Timers inserted while due ones run have deadlines at or after the phase's `now`.
        q.insert(t0 + Duration::from_millis(5), "late-inserted");
        let now = t0 + Duration::from_millis(5);
        let mut order = Vec::new();
        while let Some((id, v)) = q.pop_due(now, cut) {
            q.cancel(id);
            order.push(v);
        }
        assert_eq!(order, ["b", "a", "c"]);
        assert!(!q.cancel(a), "a fired already");
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(5)));
    }

    #[test]
    fn cancel_skips_and_compacts() {
        let t0 = Instant::now();
        let mut q = TimerQueue::default();
        let ids: Vec<_> = (0..5000u64)
            .map(|i| q.insert(t0 + Duration::from_millis(i), i))
            .collect();
        for id in &ids[..4999] {
            assert!(q.cancel(*id));
        }
        assert!(q.heap.len() < 2100, "compacted: {}", q.heap.len());
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_millis(4999)));
        assert_eq!(q.refed(), 1);
        assert!(q.set_ref(ids[4999], false));
        assert_eq!(q.refed(), 0);
    }
}
