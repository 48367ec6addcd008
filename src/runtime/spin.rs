//! Short, bounded spins that spare a cross-core wake-up between the loop and the pool.
//!
//! Waking a thread that sleeps on another core costs an inter-processor interrupt, and in a
//! virtual machine whose idle vCPUs halt, an exit to the hypervisor: tens of microseconds, far
//! more than a short job. With one job in flight, a round trip pays two of them (the loop wakes a
//! pool thread, the pool thread wakes the loop). So, for at most
//! [`Builder::pool_spin`](super::Builder::pool_spin):
//!
//! - a pool thread that finished a job watches the queue before it sleeps on the condvar (one
//!   thread at a time), and a job submitted meanwhile is taken without a wake-up;
//! - the loop, about to block with pool jobs in flight, watches its inbox before it blocks in
//!   the reactor, and a pool thread that finds it watching does not wake the reactor.
//!
//! Both spins yield the CPU as they go (`sched_yield`), so a spinner never holds off the thread
//! it waits for when the two share a core. The loop's budget adapts as the guest halt-polling
//! of Linux's `cpuidle-haltpoll` does: it grows while completions come back shortly after the
//! loop blocked and shrinks to nothing when they do not (long jobs, or a wake for something
//! else), so long jobs and busy I/O loops do not pay for it.

use std::time::{Duration, Instant};

use super::inbox::Message;
use super::Runtime;
use crate::Reactor;

/// Pause instructions between two checks of the condition.
const PAUSES: u32 = 8;
/// Checks between two yields of the CPU (and clock reads).
const CHECKS_PER_YIELD: u32 = 4;

/// Waits until `done` holds or `budget` has passed; whether `done` held.
pub(crate) fn spin_until(budget: Duration, mut done: impl FnMut() -> bool) -> bool {
    if budget.is_zero() {
        return done();
    }
    let start = Instant::now();
    loop {
        for _ in 0..CHECKS_PER_YIELD {
            if done() {
                return true;
            }
            for _ in 0..PAUSES {
                std::hint::spin_loop();
            }
        }
        if start.elapsed() >= budget {
            return done();
        }
        std::thread::yield_now();
    }
}

impl<R: Reactor + 'static> Runtime<R> {
    /// Before a poll that may block for `timeout` counted from `start`: with pool jobs in
    /// flight, spins for their results. Returns the timeout left for the poll (zero if
    /// results came) and the clock read it counts from (the spin's last one, if it spun), and
    /// when the poll started blocking with jobs in flight (for [`blocked_for_results`]).
    ///
    /// [`blocked_for_results`]: Runtime::blocked_for_results
    pub(super) fn spin_for_results(
        &mut self,
        timeout: Option<Duration>,
        start: Instant,
    ) -> (Option<Duration>, Instant, Option<Instant>) {
        if self.jobs.is_empty() || timeout == Some(Duration::ZERO) {
            return (timeout, start, None);
        }
        let budget = self.spin.budget(timeout);
        if budget.is_zero() {
            // Still measured: a result that comes soon after grows the budget back.
            return (timeout, start, Some(Instant::now()));
        }
        let spin_start = Instant::now();
        self.inbox.start_spinning();
        let inbox = &self.inbox;
        spin_until(budget, || inbox.pending());
        if self.inbox.stop_spinning() {
            return (Some(Duration::ZERO), start, None);
        }
        let now = Instant::now();
        match timeout.map(|t| t.saturating_sub(now - spin_start)) {
            // The spin used the whole wait (a timer is due): nothing to learn from the poll.
            Some(left) if left.is_zero() => (Some(left), now, None),
            left => (left, now, Some(now)),
        }
    }

    /// After a poll that blocked from `since` with pool jobs in flight and drained the inbox
    /// into the mailbox: adapts the spin budget to whether a pool result ended the wait.
    pub(super) fn blocked_for_results(&mut self, since: Instant) {
        let completion = self.mailbox.iter().any(|m| matches!(m, Message::Done(..)));
        self.spin
            .blocked(self.now().saturating_duration_since(since), completion);
    }
}

/// The loop's adaptive spin budget (see the module docs).
#[derive(Debug)]
pub(crate) struct LoopSpin {
    max: Duration,
    budget: Duration,
}

impl LoopSpin {
    /// A budget that starts at, and never exceeds, `max` (zero: never spin).
    pub(crate) fn new(max: Duration) -> LoopSpin {
        LoopSpin { max, budget: max }
    }

    /// How long to spin before the next block (at most `timeout`, the block's own bound).
    pub(crate) fn budget(&self, timeout: Option<Duration>) -> Duration {
        timeout.map_or(self.budget, |t| t.min(self.budget))
    }

    /// After a block in the reactor that pool jobs were in flight for: it lasted `blocked`,
    /// and a pool result was among what ended it if `completion`.
    pub(crate) fn blocked(&mut self, blocked: Duration, completion: bool) {
        if self.max.is_zero() {
            return;
        }
        if completion && blocked <= self.max {
            // A spin this long would have caught it.
            self.budget = if self.budget.is_zero() {
                self.max / 4
            } else {
                (self.budget * 2).min(self.max)
            };
        } else {
            self.budget /= 2;
            if self.budget < self.max / 8 {
                self.budget = Duration::ZERO;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spin_until_sees_the_condition() {
        assert!(spin_until(Duration::ZERO, || true));
        assert!(!spin_until(Duration::ZERO, || false));
        let mut calls = 0;
        assert!(spin_until(Duration::from_secs(60), || {
            calls += 1;
            calls == 100
        }));
        assert!(!spin_until(Duration::from_micros(1), || false));
    }

    #[test]
    fn budget_shrinks_to_zero_and_grows_back() {
        let max = Duration::from_micros(80);
        let mut spin = LoopSpin::new(max);
        assert_eq!(spin.budget(None), max);
        assert_eq!(
            spin.budget(Some(Duration::from_micros(5))),
            Duration::from_micros(5)
        );
        // Long blocks, or blocks ended by something else: the spin did not pay.
        spin.blocked(Duration::from_millis(5), true);
        assert_eq!(spin.budget(None), max / 2);
        spin.blocked(Duration::from_micros(10), false);
        spin.blocked(Duration::from_millis(5), true);
        spin.blocked(Duration::from_millis(5), true);
        assert_eq!(spin.budget(None), Duration::ZERO);
        // Completions right after blocking: it would have.
        spin.blocked(Duration::from_micros(30), true);
        assert_eq!(spin.budget(None), max / 4);
        spin.blocked(Duration::from_micros(30), true);
        spin.blocked(Duration::from_micros(30), true);
        spin.blocked(Duration::from_micros(30), true);
        assert_eq!(spin.budget(None), max);
        let mut never = LoopSpin::new(Duration::ZERO);
        never.blocked(Duration::from_micros(1), true);
        assert_eq!(never.budget(None), Duration::ZERO);
    }
}
