//! Timers, immediates and next-ticks: the callbacks the loop schedules by time and phase.

use std::time::{Duration, Instant};

use super::timer_box::{Timer, TimerBox};
use super::{deadline_after, Runtime, TimerId, MIN_DELAY};
use crate::Reactor;

/// A timeout's callback (queued in a [`TimerBox`]: inline when it captures at most two
/// words, so a queued timeout then costs its queue entry and nothing else).
pub(super) struct Timeout<F>(F);

impl<R: Reactor + 'static, F: FnOnce(&mut Runtime<R>) + 'static> Timer<R> for Timeout<F> {
    fn fire(self, rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
        (self.0)(rt);
        None
    }
}

pub(super) struct Interval<F> {
    period: Duration,
    callback: F,
}

impl<R: Reactor + 'static, F: FnMut(&mut Runtime<R>) + 'static> Timer<R> for Interval<F> {
    fn fire(mut self, rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
        // The next run is due a period after this one began: no catch-up burst after a late run.
        let next = deadline_after(Instant::now(), self.period);
        (self.callback)(rt);
        Some((next, self))
    }
}

/// Identifies an immediate from [`Runtime::set_immediate`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImmediateId(u64);

impl<R: Reactor + 'static> Runtime<R> {
    /// Runs `callback` once, no earlier than `delay` (at least [`MIN_DELAY`]) from now; timers
    /// due within the same millisecond run together. Equal delays fire in the order they were
    /// set. O(log b) for `b`
    /// distinct pending milliseconds.
    pub fn set_timeout(&mut self, delay: Duration, callback: impl FnOnce(&mut Self) + 'static) -> TimerId {
        let deadline = deadline_after(Instant::now(), delay.max(MIN_DELAY));
        self.timers
            .borrow_mut()
            .insert(deadline, TimerBox::new(Timeout(callback)))
    }

    /// Runs `callback` every `period` (at least [`MIN_DELAY`]), each time `period` after the
    /// previous run began (a late run is not followed by a burst of catch-up runs).
    pub fn set_interval(&mut self, period: Duration, callback: impl FnMut(&mut Self) + 'static) -> TimerId {
        let period = period.max(MIN_DELAY);
        let deadline = deadline_after(Instant::now(), period);
        self.timers
            .borrow_mut()
            .insert_repeating(deadline, TimerBox::new(Interval { period, callback }))
    }

    /// Cancels a timeout or interval (also from inside its own callback). Returns whether it was
    /// still active.
    pub fn clear_timer(&mut self, id: TimerId) -> bool {
        self.timers.borrow_mut().cancel(id)
    }

    /// Lets the loop end while this timer is pending (Node's `timeout.unref()`). Returns false
    /// for a timer that is no longer active.
    pub fn unref_timer(&mut self, id: TimerId) -> bool {
        self.timers.borrow_mut().set_ref(id, false)
    }

    /// Undoes [`unref_timer`](Runtime::unref_timer).
    pub fn ref_timer(&mut self, id: TimerId) -> bool {
        self.timers.borrow_mut().set_ref(id, true)
    }

    /// Runs `callback` in the check phase of this iteration (or the next, if called from the
    /// check phase).
    pub fn set_immediate(&mut self, callback: impl FnOnce(&mut Self) + 'static) -> ImmediateId {
        let id = self.next_immediate;
        self.next_immediate += 1;
        self.immediates.push_back((id, Box::new(callback)));
        ImmediateId(id)
    }

    /// Cancels an immediate. Returns whether it was still pending.
    pub fn clear_immediate(&mut self, id: ImmediateId) -> bool {
        let pending =
            self.immediates.front().is_some_and(|(first, _)| id.0 >= *first) && id.0 < self.next_immediate;
        pending && self.cleared_immediates.insert(id.0)
    }

    /// Runs `callback` as soon as the current callback returns, before any other callback.
    pub fn next_tick(&mut self, callback: impl FnOnce(&mut Self) + 'static) {
        self.ticks.push_back(Box::new(callback));
    }

    pub(super) fn run_ticks(&mut self) {
        loop {
            while let Some(tick) = self.ticks.pop_front() {
                tick(self);
            }
            if !self.run_deferred() {
                return;
            }
        }
    }
}
