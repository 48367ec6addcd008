//! One iteration of the loop and its phases, in libuv's order (see the module docs).

use std::io;
use std::time::{Duration, Instant};

use super::inbox::Message;
use super::stored_entry::StoredEntry;
use super::watch::Panicked;
use super::watchers::{State, Watchers};
use super::Runtime;
use crate::{Event, EventId, Events, Reactor};

impl<R: Reactor + 'static> Runtime<R> {
    /// Runs the loop until nothing referenced is left or [`stop`](Runtime::stop) is called
    /// (libuv's `UV_RUN_DEFAULT`).
    ///
    /// If `stop` was called before `run`, it returns at once without running anything, as
    /// libuv does (`loop_stop_before_run`); [`is_alive`](Runtime::is_alive) says whether work is
    /// left. Every return clears the stop flag, so the next `run` goes on.
    ///
    /// # Errors
    ///
    /// The reactor's poll error; the loop can be run again after it.
    pub fn run(&mut self) -> io::Result<()> {
        self.run_mode(RunMode::Default).map(drop)
    }

    /// Runs one iteration (libuv's `UV_RUN_ONCE`): pending callbacks, the poll phase (blocking
    /// until an event, the next timer or the next deadline if nothing else is due), check,
    /// close callbacks, then the timers that are due, so a timer that comes due while the poll
    /// waits runs in this call. Returns whether anything referenced is left.
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// use std::time::Duration;
    /// let mut rt = Runtime::new()?;
    /// rt.set_timeout(Duration::ZERO, |_| println!("fired"));
    /// assert!(!rt.run_once()?, "the timer ran in this call and nothing is left");
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// The reactor's poll error.
    pub fn run_once(&mut self) -> io::Result<bool> {
        self.run_mode(RunMode::Once)
    }

    /// Runs one iteration without blocking (libuv's `UV_RUN_NOWAIT`): as
    /// [`run_once`](Runtime::run_once), but the poll phase only takes what is ready. For a loop
    /// embedded in another one: call it when the reactor is readable or a timer of the outer
    /// loop fires. Returns whether anything referenced is left.
    ///
    /// # Errors
    ///
    /// The reactor's poll error.
    pub fn run_nowait(&mut self) -> io::Result<bool> {
        self.run_mode(RunMode::NoWait)
    }

    fn run_mode(&mut self, mode: RunMode) -> io::Result<bool> {
        if self.stopped {
            self.stopped = false;
            return Ok(self.is_alive());
        }
        self.run_ticks();
        let mut alive = self.is_alive();
        if mode == RunMode::Default && alive {
            // As libuv: timers due before the first poll run before it; after that they run at
            // the end of each iteration.
            self.update_time();
            self.run_timers();
            self.run_deadlines();
        }
        let mut result = Ok(());
        while alive && !self.stopped {
            result = self.iterate(mode);
            alive = self.is_alive();
            if result.is_err() || mode != RunMode::Default {
                break;
            }
        }
        self.stopped = false;
        result.map(|()| alive)
    }

    pub(super) fn iterate(&mut self, mode: RunMode) -> io::Result<()> {
        self.ticks_run += 1;
        self.run_pending();
        self.admit_queued();
        let (timeout, start) = match mode {
            RunMode::NoWait => (Some(Duration::ZERO), self.now()),
            RunMode::Default | RunMode::Once => self.poll_wait(),
        };
        self.poll_io(timeout, start)?;
        let ran_check = self.run_check();
        let ran_closes = self.run_closes();
        if ran_check || ran_closes {
            // The poll phase refreshed the loop time; callbacks since then may have taken long.
            self.update_time();
        }
        self.run_timers();
        self.run_deadlines();
        if log::log_enabled!(log::Level::Trace) {
            let s = self.stats();
            log::trace!(
                "tick {}: timers={} io={} queued={} immediates={} pool={}/{}/{} timeouts={} watermark_hits={} waited={:?}",
                s.ticks,
                s.timers,
                s.registered,
                s.queued,
                s.immediates,
                s.pool_queued,
                s.pool_running,
                s.pool_pending,
                s.timeouts,
                s.watermark_hits,
                timeout
            );
        }
        Ok(())
    }

    /// The timers phase: inlined, so that an iteration with no timer costs a check, not a call.
    #[inline]
    pub(super) fn run_timers(&mut self) {
        if self.timers.borrow().next_deadline().is_none() {
            // No timer: nothing to convert the loop time for.
            return;
        }
        self.run_due_timers();
    }

    #[inline(never)]
    fn run_due_timers(&mut self) {
        let now = self.now();
        loop {
            // The queue's borrow ends before the timer runs: its callback may start timers.
            let due = self.timers.borrow_mut().pop_due(now);
            let Some((id, timer)) = due else { break };
            if let Some((next, interval)) = timer.fire(self) {
                // Err: cleared during its run; dropping it ends it.
                let requeued = self.timers.borrow_mut().reinsert(id, next, interval);
                drop(requeued);
            }
            self.run_ticks();
        }
    }

    /// The deadlines phase: inlined, so that an iteration with no deadline due costs a
    /// comparison, not a call.
    #[inline]
    pub(super) fn run_deadlines(&mut self) {
        if self.watchers.any_due(self.now()) {
            self.run_expired_watches();
        }
    }

    #[inline(never)]
    fn run_expired_watches(&mut self) {
        while let Some(id) = self.watchers.pop_expired(self.now()) {
            let Some(slot) = self.watchers.remove(id) else {
                continue;
            };
            self.timeouts += 1;
            log::debug!("runtime: watch {id} passed its deadline");
            let Some(mut entry) = slot.entry else { continue };
            if slot.state == State::Registered {
                if let Err(e) = self.reactor.deregister(entry.source()) {
                    log::warn!("runtime: deregistering watch {id} failed: {e}");
                }
            }
            self.admit_queued();
            let timed_out = io::Error::new(
                io::ErrorKind::TimedOut,
                "no I/O event before the watch's deadline",
            );
            if let Err(payload) = entry.call(self, id, Err(timed_out)) {
                // Removed and deregistered above: nothing is left to undo.
                drop(entry);
                std::panic::resume_unwind(payload);
            }
            self.run_ticks();
        }
    }

    pub(super) fn run_pending(&mut self) {
        for _ in 0..self.fed.len() {
            let Some(event) = self.fed.pop_front() else {
                break;
            };
            self.dispatch(event);
        }
        for _ in 0..self.pending.len() {
            let Some(callback) = self.pending.pop_front() else {
                break;
            };
            callback(self);
            self.run_ticks();
        }
    }

    /// How long a host loop that drives this runtime with [`run_nowait`](Runtime::run_nowait)
    /// may wait before the next call (libuv's `uv_backend_timeout`): `Some(ZERO)` when work is
    /// due or the last poll reported events (more may be ready: call again until a poll comes
    /// back empty), the time to the next timer or deadline, or `None` for "until the
    /// backend's descriptor polls readable" (`Runtime::backend_fd`, on Unix; elsewhere until
    /// the runtime's waker is woken).
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// use std::time::Duration;
    /// let mut rt = Runtime::new()?;
    /// rt.set_timeout(Duration::from_secs(5), |_| {});
    /// let wait = rt.backend_timeout().expect("a timer is pending");
    /// assert!(wait > Duration::from_secs(4) && wait <= Duration::from_secs(5));
    /// # std::io::Result::Ok(())
    /// ```
    pub fn backend_timeout(&mut self) -> Option<Duration> {
        if self.polled_events {
            return Some(Duration::ZERO);
        }
        self.poll_wait().0
    }

    /// The reactor's descriptor for a host loop to watch (see
    /// [`Reactor::backend_fd`]); with
    /// [`run_nowait`](Runtime::run_nowait) and [`backend_timeout`](Runtime::backend_timeout)
    /// it lets tokio's `AsyncFd`, calloop's `Generic` or any other loop drive this one.
    #[cfg(unix)]
    pub fn backend_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.reactor.backend_fd()
    }

    /// The poll phase's timeout, and the clock read it counts from (for
    /// [`Reactor::poll_from`]: the backend reads the clock no more).
    pub(super) fn poll_wait(&mut self) -> (Option<Duration>, Instant) {
        let now = self.now();
        if self.stopped
            || (!self.is_alive() && self.blocking_on == 0)
            || self.inbox.pending()
            || !self.ticks.is_empty()
            || !self.immediates.is_empty()
            || !self.pending.is_empty()
            || !self.fed.is_empty()
            || !self.closes.is_empty()
        {
            return (Some(Duration::ZERO), now);
        }
        // The exact time left: the timer queue already batches a millisecond's timers under
        // its latest deadline, and the reactor never returns before the timeout (backends
        // that wait in whole milliseconds round it up themselves). Rounding here too made
        // every timer a millisecond late.
        //
        // An idle deadline that decides counts from the loop time, which saves a clock read
        // per iteration: the wait can only come out longer (late by what the callbacks since
        // the loop time took, as in libuv), never early, and deadlines are checked against
        // the loop time read when the poll returns. A timer that decides counts from a fresh
        // clock read, so callbacks that ran since the loop time was taken do not make it late.
        let Some(timer) = self.timers.borrow().next_deadline() else {
            // No timer (the common case of a server): the watch table's ticks give the time
            // left without converting an instant, counted from the loop time.
            return (self.watchers.time_to_next_deadline(), now);
        };
        match self.watchers.next_deadline() {
            Some(watch) if watch < timer => (Some(watch.saturating_duration_since(now)), now),
            _ => {
                let fresh = Instant::now();
                (Some(timer.saturating_duration_since(fresh)), fresh)
            }
        }
    }

    /// The poll phase: waits `timeout` counted from `start` (see [`Reactor::poll_from`]), then
    /// dispatches the events, pool results, posts and woken tasks.
    pub(super) fn poll_io(&mut self, timeout: Option<Duration>, start: Instant) -> io::Result<()> {
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(self.config.events_capacity));
        let (timeout, start, blocked_at) = self.spin_for_results(timeout, start);
        let polled = self.reactor.poll_from(&mut events, timeout, start);
        self.update_time();
        if let Err(e) = polled {
            self.events = Some(events);
            return Err(e);
        }
        self.polled_events = !events.is_empty();
        for event in events.iter() {
            self.dispatch(*event);
        }
        self.events = Some(events);
        self.inbox.drain_into(&mut self.mailbox, &mut self.woken);
        if let Some(at) = blocked_at {
            self.blocked_for_results(at);
        }
        while let Some(message) = self.mailbox.pop_front() {
            match message {
                Message::Post(callback) => callback(self),
                Message::Wake(task) => {
                    self.poll_task(task);
                    continue;
                }
                Message::Done(key, output) => {
                    if let Some((_, callback)) =
                        usize::try_from(key).ok().and_then(|k| self.jobs.try_remove(k))
                    {
                        callback(self, Some(output));
                    }
                }
            }
            self.run_ticks();
        }
        // Tasks woken on this thread (by the I/O callbacks above, by other tasks): after the
        // pool results and posts, as if queued behind them. Ones woken meanwhile wait for the
        // next drain (the loop does not block while they wait).
        for _ in 0..self.woken.len() {
            let Some(task) = self.woken.pop_front() else { break };
            self.poll_task(task);
        }
        Ok(())
    }

    pub(super) fn dispatch(&mut self, event: Event) {
        let id = event.id();
        let now = self.watchers.now_tick();
        let Some(slot) = self.watchers.get_mut(id) else {
            log::trace!("runtime: event for stale watch {id} dropped");
            return;
        };
        if slot.state != State::Registered || slot.entry.is_none() {
            return;
        }
        if slot.once() {
            self.fire_once(id, event);
            return;
        }
        Watchers::touch(slot, now);
        let Some(mut entry) = slot.entry.take() else {
            return;
        };
        match entry.call(self, id, Ok(event)) {
            Ok(()) => self.after_callback(id, entry),
            Err(payload) => self.callback_panicked(id, Panicked { entry, payload }),
        }
        self.run_ticks();
    }

    /// A persistent watch's callback panicked: the watch ends (deregistered while its source is
    /// still open, slot freed, a queued watch admitted), then the panic goes on to the caller
    /// of `run`, leaving the runtime consistent and runnable again.
    pub(super) fn callback_panicked(&mut self, id: EventId, panicked: Panicked<R>) -> ! {
        let Panicked { entry, payload } = panicked;
        if let Some(slot) = self.watchers.remove(id) {
            if slot.state == State::Registered {
                if let Err(e) = self.reactor.deregister(entry.source()) {
                    log::warn!("runtime: deregistering watch {id} failed: {e}");
                }
            }
        }
        log::error!("runtime: the callback of watch {id} panicked; the watch is closed");
        drop(entry);
        self.admit_queued();
        std::panic::resume_unwind(payload)
    }

    pub(super) fn fire_once(&mut self, id: EventId, event: Event) {
        let Some(slot) = self.watchers.remove(id) else {
            return;
        };
        let Some(mut entry) = slot.entry else { return };
        if let Err(e) = self.reactor.deregister(entry.source()) {
            log::warn!("runtime: deregistering watch {id} failed: {e}");
        }
        self.admit_queued();
        if let Err(payload) = entry.call(self, id, Ok(event)) {
            drop(entry);
            std::panic::resume_unwind(payload);
        }
        self.run_ticks();
    }

    /// Puts a persistent watcher's entry back after its callback, finishing a close or an
    /// interest change made meanwhile and re-arming an emulated persistent registration.
    pub(super) fn after_callback(&mut self, id: EventId, entry: StoredEntry<R>) {
        let Some(slot) = self.watchers.get_mut(id) else {
            return;
        };
        let rearm = slot.rearm() || slot.take_interest_dirty();
        let pause = slot.take_pause_pending();
        let (interest, mode, closing) = (slot.interest, slot.mode, slot.closing());
        slot.entry = Some(entry);
        if closing {
            self.drop_watch(id);
            return;
        }
        match pause {
            Some(true) => self.pause_now(id),
            Some(false) => {
                if let Err(e) = self.resume_now(id) {
                    self.fail(id, e);
                }
            }
            None => {}
        }
        if !rearm {
            return;
        }
        let Some(slot) = self.watchers.get_mut(id).filter(|s| s.state == State::Registered) else {
            return;
        };
        let Some(entry) = slot.entry.as_ref() else { return };
        if let Err(e) = self.reactor.reregister(entry.source(), id, interest, mode) {
            self.fail(id, e);
        }
    }

    /// Runs the immediates queued before the phase began. Returns whether any ran.
    pub(super) fn run_check(&mut self) -> bool {
        let queued = self.immediates.len();
        for _ in 0..queued {
            let Some((id, callback)) = self.immediates.pop_front() else {
                break;
            };
            if !self.cleared_immediates.is_empty() && self.cleared_immediates.remove(&id) {
                continue;
            }
            callback(self);
            self.run_ticks();
        }
        queued > 0
    }

    /// Runs the close callbacks queued before the phase began, last in first out (libuv's
    /// order: its closing handles are a stack). Returns whether any ran.
    pub(super) fn run_closes(&mut self) -> bool {
        if self.closes.is_empty() {
            return false;
        }
        // Closes queued by these callbacks go to `closes` and wait for the next iteration;
        // the two queues swap so that neither allocates in steady state.
        std::mem::swap(&mut self.closes, &mut self.closing);
        while let Some(callback) = self.closing.pop_back() {
            callback(self);
            self.run_ticks();
        }
        true
    }
}

/// How far [`Runtime::run_mode`] runs, as libuv's `uv_run_mode`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum RunMode {
    /// Until nothing referenced is left or `stop`.
    Default,
    /// One iteration, blocking in the poll phase if nothing else is due.
    Once,
    /// One iteration that never blocks.
    NoWait,
}
