//! The timer queue: timers bucketed by their deadline's millisecond.
//!
//! Each millisecond (from the loop's epoch) that holds a timer's deadline owns one bucket: a
//! vector in insertion order, in an ordered map. A bucket is due when the latest deadline in it
//! has passed, so timers due within the same millisecond run together (one wake-up, as in
//! libuv), none runs early, and a timer alone in its millisecond runs at its exact deadline
//! (the deadline is not rounded up to a whole millisecond: that cost a millisecond per timer). Starting a timer appends to its bucket; firing walks
//! the due buckets front to back; both touch memory sequentially and cost O(log b) for `b`
//! non-empty milliseconds, not O(log n) heap sifts over every timer. Clearing finds the timer by
//! binary search in its bucket (entries are sorted by insertion order) and leaves a tombstone; a
//! bucket whose timers are all cleared is freed at once, so memory follows the live timers.
//!
//! A timer is 32 bytes here (its order and its [`TimerBox`](super::timer_box::TimerBox)),
//! with no allocation for a callback that captures at most two words. Intervals move to a new bucket each run; a
//! small map keeps their ids stable.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Identifies a timer started with [`Runtime::set_timeout`](super::Runtime::set_timeout) or
/// [`Runtime::set_interval`](super::Runtime::set_interval).
///
/// Ids are never reused by another timer: clearing a fired or cleared timer is a no-op. Each
/// runtime numbers its timers from its own random start, so an id from another runtime misses
/// (`clear_timer` returns false) except with a probability of about one in 2^60.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TimerId {
    /// The bucket of a timeout, or `REPEATING` for an interval.
    bucket: u64,
    /// The timeout's insertion order, or the interval's number.
    order: u64,
}

const REPEATING: u64 = u64::MAX;
/// Flag bits in [`Entry::order`]: the timer does not keep the loop alive; it is an interval's.
const UNREF: u64 = 1 << 63;
const INTERVAL: u64 = 1 << 62;
const FLAGS: u64 = UNREF | INTERVAL;

struct Entry<T> {
    /// Insertion order, with the `UNREF` and `INTERVAL` flags.
    order: u64,
    /// `None` once fired or cleared.
    value: Option<T>,
}

impl<T> Entry<T> {
    fn order(&self) -> u64 {
        self.order & !FLAGS
    }

    fn refed(&self) -> bool {
        self.order & UNREF == 0
    }
}

struct Bucket<T> {
    live: usize,
    /// The latest deadline in the bucket, in nanoseconds since the epoch: when it is due.
    due: u64,
    entries: Vec<Entry<T>>,
}

/// Where an interval is queued now, and whether it keeps the loop alive.
#[derive(Copy, Clone)]
struct Repeating {
    bucket: u64,
    order: u64,
    refed: bool,
}

/// Timers ordered by (deadline millisecond, insertion order).
pub(crate) struct TimerQueue<T> {
    epoch: Instant,
    buckets: BTreeMap<u64, Bucket<T>>,
    repeating: HashMap<u64, Repeating>,
    /// Interval number by the insertion order of its queued entry.
    interval_by_order: HashMap<u64, u64>,
    /// The bucket being fired and how far: entries before the cursor were handed out.
    cursor: (u64, usize),
    next_order: u64,
    next_repeating: u64,
    live: usize,
    refed: usize,
}

impl<T> TimerQueue<T> {
    #[cfg(test)]
    pub(crate) fn new(epoch: Instant) -> Self {
        Self::with_seed(epoch, 0)
    }

    /// A queue whose ids start from `seed` (a per-runtime random number), so that an id from
    /// another runtime's queue misses here instead of naming one of these timers.
    pub(crate) fn with_seed(epoch: Instant, seed: u64) -> Self {
        TimerQueue {
            epoch,
            buckets: BTreeMap::new(),
            repeating: HashMap::new(),
            interval_by_order: HashMap::new(),
            cursor: (REPEATING, 0),
            // Orders stay below the flag bits: 2^61 insertions from any start.
            next_order: seed & ((1 << 61) - 1),
            next_repeating: seed.rotate_left(32) & ((1 << 62) - 1),
            live: 0,
            refed: 0,
        }
    }

    /// `at` in nanoseconds since the epoch (saturating: u64 nanoseconds last 584 years).
    fn nanos(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        since
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(since.subsec_nanos()))
    }

    /// The millisecond bucket of a time in nanoseconds since the epoch (rounded down).
    fn bucket_of(nanos: u64) -> u64 {
        (nanos / 1_000_000).min(REPEATING - 1)
    }

    fn push(&mut self, deadline: Instant, value: T, refed: bool, interval: Option<u64>) -> (u64, u64) {
        let at = self.nanos(deadline);
        let bucket = Self::bucket_of(at);
        let order = self.next_order;
        self.next_order += 1;
        let slot = self.buckets.entry(bucket).or_insert_with(|| Bucket {
            live: 0,
            due: at,
            entries: Vec::new(),
        });
        slot.live += 1;
        slot.due = slot.due.max(at);
        let mut flagged = order;
        if !refed {
            flagged |= UNREF;
        }
        if let Some(number) = interval {
            flagged |= INTERVAL;
            self.interval_by_order.insert(order, number);
        }
        slot.entries.push(Entry {
            order: flagged,
            value: Some(value),
        });
        self.live += 1;
        if refed {
            self.refed += 1;
        }
        (bucket, order)
    }

    /// Adds a timeout; it keeps the loop alive until it fires or is cleared.
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerId {
        let (bucket, order) = self.push(deadline, value, true, None);
        TimerId { bucket, order }
    }

    /// Adds an interval, whose id stays valid across [`reinsert`](Self::reinsert)s.
    pub(crate) fn insert_repeating(&mut self, deadline: Instant, value: T) -> TimerId {
        let number = self.next_repeating;
        self.next_repeating += 1;
        let (bucket, order) = self.push(deadline, value, true, Some(number));
        self.repeating.insert(
            number,
            Repeating {
                bucket,
                order,
                refed: true,
            },
        );
        TimerId {
            bucket: REPEATING,
            order: number,
        }
    }

    /// Re-queues an interval whose value [`pop_due`](Self::pop_due) handed out. Returns false
    /// (and drops nothing: the caller keeps `value`) if it was cleared meanwhile.
    pub(crate) fn reinsert(&mut self, id: TimerId, deadline: Instant, value: T) -> Result<(), T> {
        let Some(repeating) = self
            .repeating
            .get(&id.order)
            .copied()
            .filter(|_| id.bucket == REPEATING)
        else {
            return Err(value);
        };
        let (bucket, order) = self.push(deadline, value, repeating.refed, Some(id.order));
        self.repeating.insert(
            id.order,
            Repeating {
                bucket,
                order,
                refed: repeating.refed,
            },
        );
        Ok(())
    }

    /// The queued entry of a timer: (bucket, insertion order).
    fn locate(&self, id: TimerId) -> Option<(u64, u64)> {
        if id.bucket == REPEATING {
            self.repeating.get(&id.order).map(|r| (r.bucket, r.order))
        } else {
            Some((id.bucket, id.order))
        }
    }

    fn entry_mut(&mut self, bucket: u64, order: u64) -> Option<&mut Entry<T>> {
        let slot = self.buckets.get_mut(&bucket)?;
        let index = slot.entries.binary_search_by_key(&order, Entry::order).ok()?;
        slot.entries.get_mut(index).filter(|e| e.value.is_some())
    }

    /// Clears a timer (also an interval from inside its own callback). Returns whether it was
    /// still active.
    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        let running_interval = id.bucket == REPEATING && self.repeating.contains_key(&id.order);
        let Some((bucket, order)) = self.locate(id) else {
            return false;
        };
        if id.bucket == REPEATING {
            self.repeating.remove(&id.order);
            self.interval_by_order.remove(&order);
        }
        let Some(entry) = self.entry_mut(bucket, order) else {
            // An interval between `pop_due` and `reinsert`: removing it from `repeating` is
            // what stops it.
            return running_interval;
        };
        let refed = entry.refed();
        entry.value = None;
        self.live -= 1;
        if refed {
            self.refed -= 1;
        }
        if let Some(slot) = self.buckets.get_mut(&bucket) {
            slot.live -= 1;
            if slot.live == 0 {
                self.remove_bucket(bucket);
            }
        }
        true
    }

    /// Frees a bucket, and forgets the firing cursor if it pointed into it: a bucket made
    /// again later for the same millisecond (a sub-millisecond sleep, a timer started after
    /// its millisecond's timers fired) starts from its first entry. A stale cursor skipped
    /// the new bucket's first entries and then dropped the bucket with them still queued.
    fn remove_bucket(&mut self, bucket: u64) {
        self.buckets.remove(&bucket);
        if self.cursor.0 == bucket {
            self.cursor = (REPEATING, 0);
        }
    }

    /// Marks a timer as (not) keeping the loop alive. Returns false for an unknown timer.
    pub(crate) fn set_ref(&mut self, id: TimerId, refed: bool) -> bool {
        if id.bucket == REPEATING {
            let Some(repeating) = self.repeating.get_mut(&id.order) else {
                return false;
            };
            repeating.refed = refed;
        }
        let Some((bucket, order)) = self.locate(id) else {
            return false;
        };
        let Some(entry) = self.entry_mut(bucket, order) else {
            // A running interval: `reinsert` applies the flag.
            return id.bucket == REPEATING;
        };
        if entry.refed() != refed {
            entry.order ^= UNREF;
            if refed {
                self.refed += 1;
            } else {
                self.refed -= 1;
            }
        }
        true
    }

    /// Queued timers that keep the loop alive.
    pub(crate) fn refed(&self) -> usize {
        self.refed
    }

    /// Queued timers.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// When the earliest non-empty bucket is due (the latest deadline in it).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let (_, bucket) = self.buckets.first_key_value()?;
        Some(self.epoch + Duration::from_nanos(bucket.due))
    }

    /// Takes the next timer due at `now`: buckets in deadline order, each in insertion order.
    ///
    /// Timers started while due ones run land in later buckets (every delay is at least a
    /// millisecond, and a due bucket's millisecond has begun), so they wait for the next call
    /// with a later `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(TimerId, T)> {
        let now = self.nanos(now);
        loop {
            let mut first = self.buckets.first_entry()?;
            let bucket = *first.key();
            if first.get().due > now {
                return None;
            }
            if self.cursor.0 != bucket {
                self.cursor = (bucket, 0);
            }
            let slot = first.get_mut();
            while let Some(entry) = slot.entries.get_mut(self.cursor.1) {
                self.cursor.1 += 1;
                let Some(value) = entry.value.take() else { continue };
                let (order, refed, interval) = (entry.order(), entry.refed(), entry.order & INTERVAL != 0);
                slot.live -= 1;
                self.live -= 1;
                if refed {
                    self.refed -= 1;
                }
                if slot.live == 0 {
                    first.remove();
                    self.cursor = (REPEATING, 0);
                }
                let number = if interval {
                    self.interval_by_order.remove(&order)
                } else {
                    None
                };
                let id = match number {
                    Some(number) => TimerId {
                        bucket: REPEATING,
                        order: number,
                    },
                    None => TimerId { bucket, order },
                };
                return Some((id, value));
            }
            first.remove();
            self.cursor = (REPEATING, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A millisecond's bucket made again after its timers fired (a sub-millisecond sleep)
    /// fires its timers: the firing cursor of the old bucket used to skip them and then drop
    /// the new bucket, timers and all (a task sleeping 200 us hung).
    #[test]
    fn a_bucket_made_again_after_firing_fires() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(t0);
        q.insert(t0 + Duration::from_micros(100), "first");
        assert_eq!(
            q.pop_due(t0 + Duration::from_micros(150)).map(|(_, v)| v),
            Some("first")
        );
        assert_eq!(q.len(), 0);
        q.insert(t0 + Duration::from_micros(400), "same millisecond, later");
        q.insert(t0 + Duration::from_micros(500), "and another");
        assert_eq!(q.next_deadline(), Some(t0 + Duration::from_micros(500)));
        let now = t0 + Duration::from_micros(600);
        assert_eq!(q.pop_due(now).map(|(_, v)| v), Some("same millisecond, later"));
        assert_eq!(q.pop_due(now).map(|(_, v)| v), Some("and another"));
        assert_eq!((q.len(), q.refed()), (0, 0));
        // The same after a clear emptied the bucket being fired.
        q.insert(t0 + ms(2), "fired");
        let cleared = q.insert(t0 + ms(2), "cleared");
        assert_eq!(q.pop_due(t0 + ms(3)).map(|(_, v)| v), Some("fired"));
        assert!(q.cancel(cleared));
        q.insert(t0 + ms(2) + Duration::from_micros(900), "again");
        assert_eq!(q.pop_due(t0 + ms(4)).map(|(_, v)| v), Some("again"));
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn deadline_then_insertion_order_and_no_early_firing() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(t0);
        let a = q.insert(t0 + ms(5), "a");
        q.insert(t0 + ms(1), "b");
        q.insert(t0 + ms(5), "c");
        q.insert(t0 + ms(5) + Duration::from_nanos(1), "d, same millisecond");
        q.insert(t0 + ms(6) + Duration::from_micros(300), "e");
        assert_eq!(q.next_deadline(), Some(t0 + ms(1)), "exact, not rounded up");
        assert_eq!(
            q.pop_due(t0 + ms(5) - Duration::from_nanos(1)).map(|(_, v)| v),
            Some("b")
        );
        assert_eq!(
            q.next_deadline(),
            Some(t0 + ms(5) + Duration::from_nanos(1)),
            "a millisecond's bucket is due at its latest deadline"
        );
        assert_eq!(q.pop_due(t0 + ms(5)), None, "never early, d included");
        let mut order = Vec::new();
        while let Some((_, v)) = q.pop_due(t0 + ms(5) + Duration::from_nanos(1)) {
            order.push(v);
        }
        assert_eq!(
            order,
            ["a", "c", "d, same millisecond"],
            "batched, in insertion order"
        );
        assert!(!q.cancel(a), "a fired already");
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(t0 + ms(6) + Duration::from_micros(300)));
        assert_eq!(q.pop_due(t0 + ms(6) + Duration::from_micros(299)), None);
        assert_eq!(
            q.pop_due(t0 + ms(6) + Duration::from_micros(300)).map(|(_, v)| v),
            Some("e")
        );
    }

    #[test]
    fn cancel_frees_buckets_and_skips_tombstones() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(t0);
        let ids: Vec<_> = (0..5000u64).map(|i| q.insert(t0 + ms(i / 10), i)).collect();
        for id in &ids[..4990] {
            assert!(q.cancel(*id));
            assert!(!q.cancel(*id), "twice");
        }
        assert_eq!(q.buckets.len(), 1, "emptied buckets are freed");
        assert_eq!(q.next_deadline(), Some(t0 + ms(499)));
        assert!(q.cancel(ids[4995]));
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_due(t0 + ms(1000)).map(|(_, v)| v)).collect();
        assert_eq!(fired, [4990, 4991, 4992, 4993, 4994, 4996, 4997, 4998, 4999]);
        assert_eq!((q.len(), q.refed()), (0, 0));
    }

    #[test]
    fn intervals_keep_their_id() {
        let t0 = Instant::now();
        let mut q = TimerQueue::new(t0);
        let id = q.insert_repeating(t0 + ms(1), "tick");
        assert!(q.set_ref(id, false));
        assert_eq!(q.refed(), 0);
        let (popped, v) = q.pop_due(t0 + ms(1)).unwrap();
        assert_eq!(popped, id);
        assert!(q.reinsert(id, t0 + ms(2), v).is_ok());
        assert_eq!(
            (q.len(), q.refed()),
            (1, 0),
            "the unref flag survives the re-queue"
        );
        let (_, v) = q.pop_due(t0 + ms(2)).unwrap();
        assert!(q.cancel(id), "cleared while running");
        assert_eq!(q.reinsert(id, t0 + ms(3), v), Err("tick"));
        assert!(!q.cancel(id));
        assert_eq!(q.len(), 0);
    }
}
