//! The watcher table's unit tests (`super`).

use super::*;

fn new(state: State, timeout: Option<Duration>) -> NewWatcher<&'static str> {
    NewWatcher {
        entry: "e",
        state,
        interest: Interest::READABLE,
        mode: Mode::Level,
        once: false,
        rearm: false,
        timeout,
    }
}

#[test]
fn reused_slot_gets_a_new_id() {
    let now = Instant::now();
    let mut w = Watchers::default();
    let a = w.insert(new(State::Registered, None), now);
    w.remove(a).unwrap();
    let b = w.insert(new(State::Registered, None), now);
    assert_eq!(split(a).0, split(b).0, "same slot");
    assert_ne!(a, b);
    assert!(w.get_mut(a).is_none(), "a stale id misses");
    assert!(w.get_mut(b).is_some());
}

#[test]
fn idle_deadline_moves_without_heap_churn() {
    let t0 = Instant::now();
    let mut w = Watchers::default();
    let id = w.insert(new(State::Registered, Some(Duration::from_secs(10))), t0);
    for i in 1..100 {
        let tick = w.tick(t0 + Duration::from_secs(i));
        Watchers::touch(w.get_mut(id).unwrap(), tick);
    }
    assert_eq!(w.deadlines.len(), 1);
    assert_eq!(
        w.pop_expired(t0 + Duration::from_secs(10)),
        None,
        "pushed forward"
    );
    assert_eq!(w.deadlines.len(), 1);
    assert_eq!(w.pop_expired(t0 + Duration::from_secs(108)), None);
    assert_eq!(w.pop_expired(t0 + Duration::from_secs(109)), Some(id));
}

/// A shorter timeout takes effect at once (its own heap entry), a longer one needs none,
/// and neither makes the deadline early or late.
#[test]
fn set_timeout_shorter_and_longer() {
    let mut w = Watchers::default();
    // After the table's epoch, so that ticks are exact (earlier times saturate to it).
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let id = w.insert(new(State::Registered, Some(s(100))), t0);
    assert!(w.set_timeout(id, Some(s(5)), t0));
    assert_eq!(w.deadlines.len(), 2, "a shorter deadline gets its own entry");
    assert_eq!(w.pop_expired(t0 + s(5) - Duration::from_nanos(1)), None);
    assert_eq!(w.pop_expired(t0 + s(5)), Some(id), "at the shorter deadline");
    w.remove(id);
    let id = w.insert(new(State::Registered, Some(s(5))), t0);
    let before = w.deadlines.len();
    assert!(w.set_timeout(id, Some(s(50)), t0));
    assert_eq!(w.deadlines.len(), before, "a longer deadline needs no new entry");
    assert_eq!(
        w.pop_expired(t0 + s(49)),
        None,
        "not early: the old entry is re-pushed"
    );
    assert_eq!(w.pop_expired(t0 + s(50)), Some(id));
    w.remove(id);
    assert_eq!(w.timed, 0);
}

/// Timeouts made shorter and longer over and over, and watchers that end with their
/// entries in the heap, never grow the heap beyond twice the watchers with a timeout, and
/// the survivor still expires exactly at its deadline.
#[test]
fn deadline_churn_keeps_the_heap_small() {
    let mut w = Watchers::default();
    // After the table's epoch, so that ticks are exact (earlier times saturate to it).
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let id = w.insert(new(State::Registered, Some(s(1000))), t0);
    let mut peak = 0;
    for i in 0..100_000u64 {
        w.set_timeout(id, Some(s(1000 - i % 500)), t0);
        let gone = w.insert(new(State::Registered, Some(s(1 + i % 7))), t0);
        w.remove(gone);
        peak = peak.max(w.deadlines.len());
    }
    assert!(
        peak <= 2 * w.timed + 17,
        "the heap held {peak} entries for {} timed",
        w.timed
    );
    // The last timeout set was 1000 - 99_999 % 500 = 501 s.
    assert_eq!(w.pop_expired(t0 + s(501) - Duration::from_nanos(1)), None);
    assert_eq!(w.pop_expired(t0 + s(501)), Some(id));
}

/// A heap entry names a slot: one left by a watcher that ended, found under the next
/// watcher of that slot, neither expires it early nor delays its own deadline.
#[test]
fn an_entry_left_in_a_reused_slot_is_only_a_lower_bound() {
    let mut w = Watchers::default();
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let a = w.insert(new(State::Registered, Some(s(1))), t0);
    w.remove(a);
    let b = w.insert(new(State::Registered, Some(s(100))), t0);
    assert_eq!(split(a).0, split(b).0, "same slot");
    assert_eq!(w.pop_expired(t0 + s(1)), None, "a's entry does not expire b");
    assert_eq!(w.pop_expired(t0 + s(100) - Duration::from_nanos(1)), None);
    assert_eq!(w.pop_expired(t0 + s(100)), Some(b), "with b's generation");
    w.remove(b);
    let c = w.insert(new(State::Registered, Some(s(2))), t0);
    w.remove(c);
    let d = w.insert(new(State::Registered, Some(s(1))), t0);
    assert_eq!(
        w.pop_expired(t0 + s(1)),
        Some(d),
        "c's later entry does not delay d"
    );
}

#[test]
fn queue_admits_in_order_and_skips_removed() {
    let now = Instant::now();
    let mut w = Watchers::default();
    let a = w.insert(new(State::Queued, None), now);
    let b = w.insert(new(State::Queued, None), now);
    let c = w.insert(new(State::Queued, None), now);
    assert_eq!(w.queued(), 3);
    w.remove(b);
    assert_eq!(w.admit(), Some(a));
    assert_eq!(w.admit(), Some(c));
    assert_eq!(w.admit(), None);
    assert_eq!((w.registered(), w.queued()), (2, 0));
}

#[test]
fn pause_resume_churn_keeps_the_queue_small() {
    let now = Instant::now();
    let mut w = Watchers::default();
    let id = w.insert(new(State::Queued, None), now);
    for _ in 0..100_000 {
        w.set_state(id, State::Paused);
        w.set_state(id, State::Queued);
    }
    assert_eq!(w.queued(), 1);
    assert!(w.queue.len() <= 1, "queue holds {} entries", w.queue.len());
    assert_eq!(w.admit(), Some(id));
    assert_eq!(w.admit(), None);
}

#[test]
fn closing_queued_watches_keeps_the_queue_small() {
    let now = Instant::now();
    let mut w = Watchers::default();
    let kept = w.insert(new(State::Queued, None), now);
    for _ in 0..100_000 {
        let id = w.insert(new(State::Queued, None), now);
        w.remove(id);
    }
    assert!(
        w.queue.len() <= 2 * w.queued() + 17,
        "queue holds {} entries",
        w.queue.len()
    );
    assert_eq!(w.admit(), Some(kept));
    assert_eq!(w.admit(), None);
}

mod size_tests {
    use super::super::*;

    /// What an idle watch costs in the table: its slot (the slab's entry, with the watch's
    /// entry inline when it fits: a connection does, `net::stream`'s test) and one deadline
    /// heap entry. Pinned so that a field added to the slot is a decision, not an accident.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_idle_watch_is_its_entry_plus_44_bytes_of_table() {
        type E = crate::runtime::stored_entry::StoredEntry<crate::DefaultReactor>;
        let inline = crate::runtime::stored_entry::INLINE_BYTES;
        let slot = std::mem::size_of::<Slot<E>>();
        // A heap entry is 12 bytes (`deadline_heap`'s own test).
        let heap_entry = 12;
        // The slot's own fields are 24 bytes, its entry's function table a pointer, then the
        // entry's inline bytes (88 in all with a 4-byte fd).
        assert!(slot <= 32 + inline, "slot {slot} B");
        assert_eq!(
            std::mem::size_of::<Option<Slot<E>>>(),
            slot,
            "the slab keeps its niche"
        );
        assert!(
            slot + heap_entry <= 44 + inline,
            "slot {slot} B + heap entry {heap_entry} B"
        );
    }
}
