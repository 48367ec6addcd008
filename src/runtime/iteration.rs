//! One iteration of the loop and its phases, in libuv's order (see the module docs).

use std::io;
use std::time::{Duration, Instant};

use super::inbox::Message;
use super::watch::Entry;
use super::watchers::{State, Watchers};
use super::Runtime;
use crate::{Event, EventId, Events, Reactor};

impl<R: Reactor + 'static> Runtime<R> {
    /// Runs the loop until nothing referenced is left or [`stop`](Runtime::stop) is called.
    ///
    /// # Errors
    ///
    /// The reactor's poll error; the loop can be run again after it.
    pub fn run(&mut self) -> io::Result<()> {
        self.stopped = false;
        self.run_ticks();
        while self.is_alive() && !self.stopped {
            self.iterate()?;
        }
        Ok(())
    }

    /// Runs one iteration, blocking in the poll phase if nothing else is due. Returns whether
    /// anything referenced is left.
    ///
    /// # Errors
    ///
    /// The reactor's poll error.
    pub fn run_once(&mut self) -> io::Result<bool> {
        self.run_ticks();
        self.iterate()?;
        Ok(self.is_alive())
    }

    pub(super) fn iterate(&mut self) -> io::Result<()> {
        self.ticks_run += 1;
        self.update_time();
        self.run_timers();
        self.run_deadlines();
        self.run_pending();
        self.admit_queued();
        let timeout = self.poll_timeout();
        self.poll_io(timeout)?;
        self.run_check();
        self.run_closes();
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

    pub(super) fn run_timers(&mut self) {
        let now = self.now;
        while let Some((id, timer)) = self.timers.pop_due(now) {
            if let Some((next, interval)) = timer.fire(self) {
                // Err: cleared during its run; dropping it ends it.
                drop(self.timers.reinsert(id, next, interval));
            }
            self.run_ticks();
        }
    }

    pub(super) fn run_deadlines(&mut self) {
        while let Some(id) = self.watchers.pop_expired(self.now) {
            let Some(slot) = self.watchers.remove(id) else {
                continue;
            };
            self.timeouts += 1;
            log::debug!("runtime: watch {id} passed its deadline");
            let Some(entry) = slot.entry else { continue };
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
            drop(entry.call(self, id, Err(timed_out)));
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

    pub(super) fn poll_timeout(&mut self) -> Option<Duration> {
        if self.stopped
            || !self.is_alive()
            || !self.ticks.is_empty()
            || !self.immediates.is_empty()
            || !self.pending.is_empty()
            || !self.fed.is_empty()
            || !self.closes.is_empty()
        {
            return Some(Duration::ZERO);
        }
        let next = match (self.timers.next_deadline(), self.watchers.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Whole milliseconds, rounded up, like libuv: timers due within the same millisecond
        // run in one iteration instead of one wake-up each, and none runs early.
        next.map(|at| {
            let wait = at.saturating_duration_since(Instant::now());
            let millis = wait.as_nanos().div_ceil(1_000_000);
            Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
        })
    }

    pub(super) fn poll_io(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut events = self
            .events
            .take()
            .unwrap_or_else(|| Events::with_capacity(self.config.events_capacity));
        let polled = self.reactor.poll(&mut events, timeout);
        self.update_time();
        if let Err(e) = polled {
            self.events = Some(events);
            return Err(e);
        }
        for event in events.iter() {
            self.dispatch(*event);
        }
        self.events = Some(events);
        self.inbox.drain_into(&mut self.mailbox);
        while let Some(message) = self.mailbox.pop_front() {
            match message {
                Message::Post(callback) => callback(self),
                Message::Done(key, output) => {
                    if let Some(callback) = usize::try_from(key).ok().and_then(|k| self.jobs.try_remove(k)) {
                        callback(self, output);
                    }
                }
            }
            self.run_ticks();
        }
        Ok(())
    }

    pub(super) fn dispatch(&mut self, event: Event) {
        let id = event.id();
        let now = self.now;
        let Some(slot) = self.watchers.get_mut(id) else {
            log::trace!("runtime: event for stale watch {id} dropped");
            return;
        };
        if slot.state != State::Registered || slot.entry.is_none() {
            return;
        }
        if slot.once {
            self.fire_once(id, event);
            return;
        }
        Watchers::touch(slot, now);
        let Some(entry) = slot.entry.take() else { return };
        let entry = entry.call(self, id, Ok(event));
        if let Some(entry) = entry {
            self.after_callback(id, entry);
        }
        self.run_ticks();
    }

    pub(super) fn fire_once(&mut self, id: EventId, event: Event) {
        let Some(slot) = self.watchers.remove(id) else {
            return;
        };
        let Some(entry) = slot.entry else { return };
        if let Err(e) = self.reactor.deregister(entry.source()) {
            log::warn!("runtime: deregistering watch {id} failed: {e}");
        }
        self.admit_queued();
        drop(entry.call(self, id, Ok(event)));
        self.run_ticks();
    }

    /// Puts a persistent watcher's entry back after its callback, finishing a close or an
    /// interest change made meanwhile and re-arming an emulated persistent registration.
    pub(super) fn after_callback(&mut self, id: EventId, entry: Box<dyn Entry<R>>) {
        let Some(slot) = self.watchers.get_mut(id) else {
            return;
        };
        let rearm = slot.rearm || std::mem::take(&mut slot.interest_dirty);
        let pause = slot.pause_pending.take();
        let (interest, mode, closing) = (slot.interest, slot.mode, slot.closing);
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

    pub(super) fn run_check(&mut self) {
        for _ in 0..self.immediates.len() {
            let Some((id, callback)) = self.immediates.pop_front() else {
                break;
            };
            if !self.cleared_immediates.is_empty() && self.cleared_immediates.remove(&id) {
                continue;
            }
            callback(self);
            self.run_ticks();
        }
    }

    pub(super) fn run_closes(&mut self) {
        for _ in 0..self.closes.len() {
            let Some(callback) = self.closes.pop_front() else {
                break;
            };
            callback(self);
            self.run_ticks();
        }
    }
}
