//! The watch table's deadline heap (`super::watchers`): a min-heap of (tick, slot index), 12
//! bytes an entry, in fixed segments.
//!
//! An entry names a slot, not a watch: no generation. The table takes any entry of a live
//! watch as a lower bound of that watch's deadline and expires a watch only when its own
//! deadline has passed, so an entry left by a watch that ended, found under the next watch of
//! the same slot, is only an early look (the table then pushes that watch's real deadline):
//! never an early or a late expiry. [`DeadlineHeap::compact`] drops what is stale.
//!
//! The entries are kept in segments of [`SEGMENT`] entries (48 KiB), not in one array: the
//! heap grows by a segment and never copies what it holds. One array doubled by `realloc` left
//! each old block behind as a free hole (glibc's `free` does not give the middle of its heap
//! back), so 10,000 idle connections kept about 19 bytes each of holes resident beside their
//! 12-byte entries; and growing a heap of a million entries was a 12 MB `realloc` in one loop
//! iteration, a copy wherever the allocator could not move the pages instead. A segment past
//! one spare is freed as the heap shrinks.

/// One entry: a deadline tick and a slot index, packed to 12 bytes (a `(u64, EventId)` was
/// 16). Ordered by tick, then index.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C, packed(4))]
struct Due {
    at: u64,
    index: u32,
}

/// Entries per segment (a power of two: an index splits by shift and mask).
const SEGMENT: usize = 4096;

/// The heap: entry `i` is `segments[i / SEGMENT][i % SEGMENT]`, the children of `i` are
/// `2i + 1` and `2i + 2`, and no entry is earlier than its parent.
#[derive(Default)]
pub(super) struct DeadlineHeap {
    segments: Vec<Box<[Due]>>,
    len: usize,
}

impl DeadlineHeap {
    #[inline]
    fn get(&self, i: usize) -> Due {
        self.segments[i / SEGMENT][i % SEGMENT]
    }

    #[inline]
    fn set(&mut self, i: usize, due: Due) {
        self.segments[i / SEGMENT][i % SEGMENT] = due;
    }

    /// Appends `due` at the end (not in heap order yet), growing by a segment if full.
    fn append(&mut self, due: Due) {
        if self.len == self.segments.len() * SEGMENT {
            self.segments
                .push(vec![Due { at: 0, index: 0 }; SEGMENT].into_boxed_slice());
        }
        self.len += 1;
        self.set(self.len - 1, due);
    }

    /// Frees the segments past the one spare after the last used.
    fn release(&mut self) {
        let used = self.len.div_ceil(SEGMENT);
        self.segments.truncate(used + 1);
    }

    fn sift_up(&mut self, mut i: usize) {
        let due = self.get(i);
        while i > 0 {
            let parent = (i - 1) / 2;
            let above = self.get(parent);
            if above <= due {
                break;
            }
            self.set(i, above);
            i = parent;
        }
        self.set(i, due);
    }

    fn sift_down(&mut self, mut i: usize) {
        let due = self.get(i);
        loop {
            let left = 2 * i + 1;
            if left >= self.len {
                break;
            }
            let mut child = left;
            let mut below = self.get(left);
            if left + 1 < self.len {
                let right = self.get(left + 1);
                if right < below {
                    child = left + 1;
                    below = right;
                }
            }
            if due <= below {
                break;
            }
            self.set(i, below);
            i = child;
        }
        self.set(i, due);
    }

    /// Adds an entry for slot `index` at tick `at`.
    #[inline]
    pub(super) fn push(&mut self, at: u64, index: usize) {
        debug_assert!(u32::try_from(index).is_ok());
        // Lossless: slot indices are below `MAX_WATCHERS` (at most 32 bits: `INDEX_BITS`).
        let index = index as u32;
        self.append(Due { at, index });
        self.sift_up(self.len - 1);
    }

    /// The earliest entry: (tick, slot index).
    #[inline]
    pub(super) fn peek(&self) -> Option<(u64, usize)> {
        (self.len > 0).then(|| {
            let Due { at, index } = self.get(0);
            (at, index as usize)
        })
    }

    /// Removes the earliest entry.
    pub(super) fn pop(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        if self.len > 0 {
            let last = self.get(self.len);
            self.set(0, last);
            self.sift_down(0);
        }
        if self.len % SEGMENT == 0 {
            self.release();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn clear(&mut self) {
        self.len = 0;
        self.release();
    }

    /// Rebuilds the heap with the earliest entry of each slot that `keep` accepts (a live
    /// watch with a timeout), dropping the others: if any entry of a watch is at or before its
    /// deadline, its earliest is. O(n log n), through one temporary array of what is kept.
    pub(super) fn compact(&mut self, keep: impl Fn(usize) -> bool) {
        let mut entries: Vec<Due> = (0..self.len)
            .map(|i| self.get(i))
            .filter(|&due| {
                let Due { index, .. } = due;
                keep(index as usize)
            })
            .collect();
        entries.sort_unstable_by_key(|&due| {
            let Due { at, index } = due;
            (index, at)
        });
        entries.dedup_by_key(|&mut due| {
            let Due { index, .. } = due;
            index
        });
        // In order of tick: a sorted array is a heap.
        entries.sort_unstable();
        self.len = 0;
        for due in entries {
            self.append(due);
        }
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_12_bytes() {
        assert_eq!(std::mem::size_of::<Due>(), 12);
    }

    /// Against a sorted model, across segment boundaries: the heap order holds while it
    /// grows and shrinks, and the segments past one spare are freed as it shrinks.
    #[test]
    fn heap_order_across_segments_and_segments_freed() {
        let mut h = DeadlineHeap::default();
        let n = 3 * SEGMENT + 17;
        let mut model = Vec::new();
        // A fixed pseudo-random order (an LCG): ties included.
        let mut x: u64 = 12345;
        for index in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = (x >> 33) % 5000;
            h.push(at, index);
            model.push((at, index));
        }
        assert_eq!(h.len(), n);
        assert_eq!(h.segments.len(), 4);
        model.sort_unstable();
        for (k, &want) in model.iter().enumerate() {
            assert_eq!(h.peek(), Some(want), "entry {k}");
            h.pop();
            let used = h.len().div_ceil(SEGMENT);
            assert!(
                h.segments.len() <= used + 1,
                "{} segments for {} entries",
                h.segments.len(),
                h.len()
            );
        }
        assert_eq!(h.peek(), None);
        h.pop();
        assert_eq!(h.len(), 0);
        assert!(h.segments.len() <= 1);
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
