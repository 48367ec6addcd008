//! The watch table's deadline heap (`super::watchers`): a min-heap of (tick, slot index), 12
//! bytes an entry.
//!
//! An entry names a slot, not a watch: no generation. The table takes any entry of a live
//! watch as a lower bound of that watch's deadline and expires a watch only when its own
//! deadline has passed, so an entry left by a watch that ended, found under the next watch of
//! the same slot, is only an early look (the table then pushes that watch's real deadline):
//! never an early or a late expiry. [`DeadlineHeap::compact`] drops what is stale.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One entry: a deadline tick and a slot index, packed to 12 bytes (a `(u64, EventId)` was
/// 16). Ordered by tick, then index.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C, packed(4))]
struct Due {
    at: u64,
    index: u32,
}

/// The heap.
#[derive(Default)]
pub(super) struct DeadlineHeap {
    heap: BinaryHeap<Reverse<Due>>,
}

impl DeadlineHeap {
    /// Adds an entry for slot `index` at tick `at`.
    #[inline]
    pub(super) fn push(&mut self, at: u64, index: usize) {
        debug_assert!(u32::try_from(index).is_ok());
        // Lossless: slot indices are below `MAX_WATCHERS` (at most 32 bits: `INDEX_BITS`).
        let index = index as u32;
        self.heap.push(Reverse(Due { at, index }));
    }

    /// The earliest entry: (tick, slot index).
    #[inline]
    pub(super) fn peek(&self) -> Option<(u64, usize)> {
        self.heap.peek().map(|&Reverse(due)| {
            let Due { at, index } = due;
            (at, index as usize)
        })
    }

    /// Removes the earliest entry.
    #[inline]
    pub(super) fn pop(&mut self) {
        self.heap.pop();
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(super) fn clear(&mut self) {
        self.heap.clear();
    }

    /// Rebuilds the heap with the earliest entry of each slot that `keep` accepts (a live
    /// watch with a timeout), dropping the others: if any entry of a watch is at or before its
    /// deadline, its earliest is. In place (no allocation), O(n log n).
    pub(super) fn compact(&mut self, keep: impl Fn(usize) -> bool) {
        let mut entries = std::mem::take(&mut self.heap).into_vec();
        entries.retain(|&Reverse(due)| {
            let Due { index, .. } = due;
            keep(index as usize)
        });
        entries.sort_unstable_by_key(|&Reverse(due)| {
            let Due { at, index } = due;
            (index, at)
        });
        entries.dedup_by_key(|&mut Reverse(due)| {
            let Due { index, .. } = due;
            index
        });
        self.heap = BinaryHeap::from(entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_12_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Due>>(), 12);
    }

    #[test]
    fn earliest_first_and_compaction_keeps_each_slots_earliest() {
        let mut h = DeadlineHeap::default();
        for (at, index) in [(30, 1), (10, 2), (20, 1), (5, 3), (40, 2)] {
            h.push(at, index);
        }
        assert_eq!(h.peek(), Some((5, 3)));
        h.compact(|index| index != 3);
        assert_eq!(h.len(), 2);
        assert_eq!(h.peek(), Some((10, 2)));
        h.pop();
        assert_eq!(h.peek(), Some((20, 1)), "slot 1's earliest was kept");
        h.pop();
        assert_eq!(h.peek(), None);
    }
}
