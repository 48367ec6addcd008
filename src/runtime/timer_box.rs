//! A queued timer's callback without an allocation when it is small.
//!
//! Most timer callbacks capture a pointer or two (an `Rc`, a counter, an id). A
//! `Box<dyn Timer>` costs each of them an allocation (32 bytes with glibc's malloc, for an
//! 8-byte capture) on top of the queue's entry, which made a million pending timers use more
//! memory than tokio-util's `DelayQueue<()>`. [`TimerBox`] keeps a timer of at most two words
//! (and word alignment) inline, beside a pointer to its functions; a larger one is boxed and
//! the box's pointer kept inline instead. Either way a queued timer is three words.

use std::marker::PhantomData;
use std::mem::{self, MaybeUninit};
use std::time::Instant;

use super::Runtime;
use crate::Reactor;

/// A timer the loop queues: run once when due; an interval comes back with its next deadline.
pub(super) trait Timer<R: Reactor + 'static>: Sized + 'static {
    /// Runs the timer; an interval returns itself with its next deadline.
    fn fire(self, rt: &mut Runtime<R>) -> Option<(Instant, Self)>;
}

/// Two words, word-aligned: where a small timer lives.
type Slot = MaybeUninit<[usize; 2]>;

/// A timer's next deadline and the slot it is back in (an interval's), or `None`.
type Again = Option<(Instant, Slot)>;

/// What a [`TimerBox`] does with the timer in its slot. Every function takes a slot that
/// holds a live value of the type the table was made for.
struct VTable<R: Reactor + 'static> {
    /// Moves the timer out of the slot and runs it; an interval is moved back into the
    /// returned slot.
    fire: unsafe fn(Slot, &mut Runtime<R>) -> Again,
    /// Drops the timer in place.
    drop: unsafe fn(&mut Slot),
}

/// Whether `T` fits in a [`Slot`].
const fn fits<T>() -> bool {
    mem::size_of::<T>() <= mem::size_of::<Slot>() && mem::align_of::<T>() <= mem::align_of::<Slot>()
}

/// The functions for a timer of type `T` stored inline (`fits::<T>()`).
struct Inline<T>(PhantomData<T>);

impl<T> Inline<T> {
    /// # Safety
    ///
    /// `slot` holds a live `T` written by [`TimerBox::new`]; it is read once.
    unsafe fn take(slot: Slot) -> T {
        // SAFETY: the caller guarantees the slot holds a live `T`; `fits::<T>()` (checked
        // where the slot was written) makes the read in bounds and aligned.
        unsafe { slot.as_ptr().cast::<T>().read() }
    }

    fn put(value: T) -> Slot {
        let mut slot = Slot::uninit();
        // SAFETY: `fits::<T>()` (checked by the caller, `TimerBox::new`) makes the write in
        // bounds and aligned; the slot is fresh, so nothing is overwritten.
        unsafe { slot.as_mut_ptr().cast::<T>().write(value) };
        slot
    }
}

impl<R: Reactor + 'static, T: Timer<R>> Inline<(T, R)> {
    const VTABLE: VTable<R> = VTable {
        fire: Self::fire,
        drop: Self::drop,
    };

    /// # Safety
    ///
    /// As [`VTable::fire`].
    unsafe fn fire(slot: Slot, rt: &mut Runtime<R>) -> Again {
        // SAFETY: the table is only used with slots holding a live `T` (see `TimerBox`).
        let timer = unsafe { Inline::<T>::take(slot) };
        timer
            .fire(rt)
            .map(|(next, again)| (next, Inline::<T>::put(again)))
    }

    /// # Safety
    ///
    /// As [`VTable::drop`].
    unsafe fn drop(slot: &mut Slot) {
        // SAFETY: the slot holds a live `T` (see `TimerBox`), dropped once: the box forgets
        // the slot afterwards.
        unsafe { slot.as_mut_ptr().cast::<T>().drop_in_place() }
    }
}

/// A timer too large for the slot, behind a box whose pointer the slot holds.
struct Boxed<T>(Box<T>);

impl<R: Reactor + 'static, T: Timer<R>> Timer<R> for Boxed<T> {
    fn fire(self, rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
        let raw = Box::into_raw(self.0);
        // SAFETY: `raw` came from `Box::into_raw` and holds a live `T`, read out once here;
        // from now on the allocation is treated as uninitialised memory.
        let timer = unsafe { raw.read() };
        // SAFETY: the same allocation as `MaybeUninit<T>` (same layout): dropping it (when the
        // timer ends, or unwinding from a panic in it) frees the memory without dropping the
        // moved-out `T` a second time.
        let mut memory = unsafe { Box::from_raw(raw.cast::<MaybeUninit<T>>()) };
        let (at, again) = timer.fire(rt)?;
        // An interval's next run reuses the box: no allocation per run.
        memory.write(again);
        // SAFETY: just initialised with a `T`.
        Some((at, Boxed(unsafe { memory.assume_init() })))
    }
}

/// A queued timer of any type, three words, with no allocation when the timer is at most two
/// words (see the module's documentation).
pub(super) struct TimerBox<R: Reactor + 'static> {
    /// Holds a live value of the type `vtable` was made for, until it is fired or dropped.
    slot: Slot,
    vtable: &'static VTable<R>,
    /// The timer may hold an `Rc` or other thread-bound captures: never `Send` or `Sync`.
    _local: PhantomData<*const ()>,
}

impl<R: Reactor + 'static> TimerBox<R> {
    /// Stores `timer`, inline if it fits, else boxed.
    pub(super) fn new<T: Timer<R>>(timer: T) -> TimerBox<R> {
        if fits::<T>() {
            TimerBox {
                slot: Inline::<T>::put(timer),
                vtable: &Inline::<(T, R)>::VTABLE,
                _local: PhantomData,
            }
        } else {
            TimerBox {
                slot: Inline::<Boxed<T>>::put(Boxed(Box::new(timer))),
                vtable: &Inline::<(Boxed<T>, R)>::VTABLE,
                _local: PhantomData,
            }
        }
    }

    /// Runs the timer; an interval comes back with its next deadline.
    pub(super) fn fire(self, rt: &mut Runtime<R>) -> Option<(Instant, TimerBox<R>)> {
        let this = mem::ManuallyDrop::new(self);
        let vtable = this.vtable;
        // SAFETY: the slot holds a live value of the table's type; `ManuallyDrop` keeps it
        // from being dropped again here, so the table's `fire` owns it from now on.
        let next = unsafe { (vtable.fire)(this.slot, rt) };
        next.map(|(at, slot)| {
            (
                at,
                TimerBox {
                    slot,
                    vtable,
                    _local: PhantomData,
                },
            )
        })
    }
}

impl<R: Reactor + 'static> Drop for TimerBox<R> {
    fn drop(&mut self) {
        // SAFETY: the slot holds a live value of the table's type (a fired box is never
        // dropped: `fire` consumes it through `ManuallyDrop`).
        unsafe { (self.vtable.drop)(&mut self.slot) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    type R = crate::DefaultReactor;

    /// Counts its runs and drops; an interval while `left` is non-zero. `pad` sets its size.
    struct Probe<P: 'static> {
        runs: Rc<Cell<u32>>,
        drops: Rc<Cell<u32>>,
        left: u32,
        _pad: P,
    }

    impl<P: 'static> Drop for Probe<P> {
        fn drop(&mut self) {
            self.drops.set(self.drops.get() + 1);
        }
    }

    impl<P: 'static> Timer<R> for Probe<P> {
        fn fire(mut self, _rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
            self.runs.set(self.runs.get() + 1);
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            Some((Instant::now() + Duration::from_millis(1), self))
        }
    }

    fn probe<P>(left: u32, pad: P) -> (Probe<P>, Rc<Cell<u32>>, Rc<Cell<u32>>) {
        let (runs, drops) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let p = Probe {
            runs: runs.clone(),
            drops: drops.clone(),
            left,
            _pad: pad,
        };
        (p, runs, drops)
    }

    #[test]
    fn a_queued_timer_is_three_words() {
        assert_eq!(mem::size_of::<TimerBox<R>>(), 3 * mem::size_of::<usize>());
        assert_eq!(mem::size_of::<Option<TimerBox<R>>>(), 3 * mem::size_of::<usize>());
    }

    /// Inline (no padding: two words of `Rc`s plus `left` do not fit, so use a one-word
    /// probe) and boxed timers alike: each run counted, each value dropped exactly once,
    /// whether it fires to the end, comes back as an interval, or is dropped unfired.
    #[test]
    fn every_timer_runs_as_asked_and_drops_once() {
        let mut rt = Runtime::new().unwrap();
        // Boxed: `Probe` is at least three words.
        let (p, runs, drops) = probe(2, [0u64; 8]);
        let mut t = TimerBox::new(p);
        for expected in 1..=2 {
            t = t.fire(&mut rt).expect("an interval comes back").1;
            assert_eq!((runs.get(), drops.get()), (expected, 0));
        }
        assert!(t.fire(&mut rt).is_none());
        assert_eq!((runs.get(), drops.get()), (3, 1));
        let (p, runs, drops) = probe(5, ());
        drop(TimerBox::new(p));
        assert_eq!((runs.get(), drops.get()), (0, 1));

        // Inline: a closure capturing one `Rc`, as `Timeout` holds it.
        struct Once<F>(F);
        impl<F: FnOnce() + 'static> Timer<R> for Once<F> {
            fn fire(self, _rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
                (self.0)();
                None
            }
        }
        let hits = Rc::new(Cell::new(0));
        let h = hits.clone();
        let t = TimerBox::new(Once(move || h.set(h.get() + 1)));
        assert!(fits::<Once<Rc<Cell<i32>>>>());
        assert_eq!(Rc::strong_count(&hits), 2);
        assert!(t.fire(&mut rt).is_none());
        assert_eq!((hits.get(), Rc::strong_count(&hits)), (1, 1));
        let h = hits.clone();
        drop(TimerBox::new(Once(move || h.set(h.get() + 1))));
        assert_eq!((hits.get(), Rc::strong_count(&hits)), (1, 1));
    }

    /// A timer that panics is dropped once (its captures released) and the box's memory
    /// freed: no leak, no double drop.
    #[test]
    fn a_panicking_timer_is_dropped_once() {
        struct Boom(#[allow(dead_code)] Rc<()>, #[allow(dead_code)] [u64; 4]);
        impl Timer<R> for Boom {
            fn fire(self, _rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
                panic!("boom");
            }
        }
        let mut rt = Runtime::new().unwrap();
        let token = Rc::new(());
        let t = TimerBox::new(Boom(token.clone(), [0; 4]));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| t.fire(&mut rt)));
        assert!(r.is_err());
        assert_eq!(Rc::strong_count(&token), 1);
    }
}
