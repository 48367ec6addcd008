//! The watch API: watching sources, and closing, pausing, resuming and re-arming watches.

use std::io;
use std::time::{Duration, Instant};

use super::stored_entry::StoredEntry;
use super::watch::{check_timeout, Once, Persistent};
use super::watchers::{self, not_a_watch, NewWatcher, State};
use super::{Callback, Runtime, Trigger, WatchOptions};
use crate::{AsSource, Event, EventId, Interest, Mode, Reactor};

impl<R: Reactor + 'static> Runtime<R> {
    /// Watches `source` for `interest` until closed, with the default options: the builder's
    /// deadline and [`Trigger::Edge`]. See [`watch_with`](Runtime::watch_with).
    ///
    /// # Errors
    ///
    /// As for [`watch_with`](Runtime::watch_with).
    pub fn watch<S, F>(&mut self, source: S, interest: Interest, callback: F) -> io::Result<EventId>
    where
        S: AsSource + 'static,
        F: FnMut(&mut Self, EventId, &mut S, io::Result<Event>) + 'static,
    {
        self.watch_with(source, interest, WatchOptions::new(), callback)
    }

    /// Watches `source` (which the runtime owns until the watch ends, then drops) for
    /// `interest`; `callback` gets the id, the source and each event, or the error that ended
    /// the watch.
    ///
    /// The returned [`EventId`] is the watcher's id and the id registered with the reactor.
    /// Ids belong to their runtime: each numbers its watches' generations from its own random
    /// start, so an id from another runtime (or a closed watch) gets `ErrorKind::NotFound` from
    /// every method taking one (except with a probability of about 2^-32 per id on 64-bit
    /// targets, 2^-12 on 32-bit ones). The
    /// deadline is an idle timeout: each event restarts it; when it passes, the source is
    /// deregistered, its slot freed, and the callback gets `ErrorKind::TimedOut` one last time.
    /// With [`Trigger::Edge`] (the default) read or write until `WouldBlock` in the callback.
    ///
    /// Above the high watermark the watch waits in a FIFO queue (its deadline runs meanwhile)
    /// and is registered as registrations end.
    ///
    /// ```
    /// use portable_reactor::runtime::{Runtime, WatchOptions};
    /// use portable_reactor::Interest;
    /// use std::io::{Read, Write};
    /// use std::time::Duration;
    ///
    /// let mut rt = Runtime::new()?;
    /// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
    /// let (server, _) = listener.accept()?;
    /// server.set_nonblocking(true)?;
    /// client.write_all(b"hello")?;
    ///
    /// let opts = WatchOptions::new().timeout(Duration::from_secs(5));
    /// rt.watch_with(server, Interest::READABLE, opts, |rt, id, stream, event| {
    ///     event.expect("readable before the deadline");
    ///     let mut buf = [0; 16];
    ///     let n = stream.read(&mut buf).unwrap();
    ///     assert_eq!(&buf[..n], b"hello");
    ///     rt.close(id).unwrap();
    /// })?;
    /// rt.run()?;
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// - `ErrorKind::InvalidInput` for a [`timeout`](WatchOptions::timeout) of zero.
    /// - `ErrorKind::QuotaExceeded` if the high watermark is reached and the queue is full.
    /// - The reactor's error if it refuses the source.
    ///
    /// On error the source is dropped.
    pub fn watch_with<S, F>(
        &mut self,
        source: S,
        interest: Interest,
        options: WatchOptions,
        callback: F,
    ) -> io::Result<EventId>
    where
        S: AsSource + 'static,
        F: FnMut(&mut Self, EventId, &mut S, io::Result<Event>) + 'static,
    {
        let (mode, rearm) = self.persistent_mode(options.trigger);
        let entry = StoredEntry::new(Persistent { source, callback });
        self.add_watch(entry, interest, mode, false, rearm, options)
    }

    /// Watches `source` for one event: the source is deregistered and handed back to
    /// `callback` by value with the event, or with `ErrorKind::TimedOut` when the builder's
    /// deadline passes first. See [`watch_once_with`](Runtime::watch_once_with).
    ///
    /// # Errors
    ///
    /// As for [`watch_with`](Runtime::watch_with).
    pub fn watch_once<S, F>(&mut self, source: S, interest: Interest, callback: F) -> io::Result<EventId>
    where
        S: AsSource + 'static,
        F: FnOnce(&mut Self, S, io::Result<Event>) + 'static,
    {
        self.watch_once_with(source, interest, WatchOptions::new(), callback)
    }

    /// [`watch_once`](Runtime::watch_once) with options (the trigger is ignored: one event is
    /// one event).
    ///
    /// # Errors
    ///
    /// As for [`watch_with`](Runtime::watch_with).
    pub fn watch_once_with<S, F>(
        &mut self,
        source: S,
        interest: Interest,
        options: WatchOptions,
        callback: F,
    ) -> io::Result<EventId>
    where
        S: AsSource + 'static,
        F: FnOnce(&mut Self, S, io::Result<Event>) + 'static,
    {
        let entry = StoredEntry::new(Once(Some((source, callback))));
        self.add_watch(entry, interest, Mode::Oneshot, true, false, options)
    }

    /// The mode a persistent watch registers with, and whether it must be re-armed by hand.
    pub(super) fn persistent_mode(&self, trigger: Trigger) -> (Mode, bool) {
        let preferred = match trigger {
            Trigger::Edge => [Mode::Edge, Mode::Level],
            Trigger::Level => [Mode::Level, Mode::Level],
        };
        match preferred.into_iter().find(|m| self.reactor.supports(*m)) {
            Some(mode) => (mode, false),
            None => (Mode::Oneshot, true),
        }
    }

    pub(super) fn add_watch(
        &mut self,
        entry: StoredEntry<R>,
        interest: Interest,
        mode: Mode,
        once: bool,
        rearm: bool,
        options: WatchOptions,
    ) -> io::Result<EventId> {
        options.check()?;
        let state = if self.watchers.registered() < self.config.high_watermark {
            State::Registered
        } else if self.watchers.queued() < self.config.queue_limit
            && self.watchers.len() < watchers::MAX_WATCHERS
        {
            self.watermark_hits += 1;
            State::Queued
        } else {
            self.rejected += 1;
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!(
                    "watch refused: {} registrations (high watermark) and {} queued (queue limit)",
                    self.watchers.registered(),
                    self.watchers.queued()
                ),
            ));
        };
        let timeout = options.timeout.resolve(self.config.io_timeout);
        let id = self.watchers.insert(
            NewWatcher {
                entry,
                state,
                interest,
                mode,
                once,
                rearm,
                timeout,
            },
            Instant::now(),
        );
        if state == State::Registered {
            if let Err(e) = self.register(id) {
                self.watchers.remove(id);
                return Err(e);
            }
        } else {
            log::debug!("runtime: watch {id} queued above the high watermark");
        }
        Ok(id)
    }

    /// Registers watcher `id`'s source with the reactor.
    pub(super) fn register(&mut self, id: EventId) -> io::Result<()> {
        let Some(slot) = self.watchers.get_mut(id) else {
            return Ok(());
        };
        let Some(entry) = slot.entry.as_ref() else {
            return Ok(());
        };
        // SAFETY: the source is owned by the watcher's entry, and every path that drops an
        // entry of a registered watcher deregisters it first (`close`, `expire`, `fire_once`,
        // `after_callback`, `Drop`), so the source stays open while registered.
        unsafe {
            self.reactor
                .register(entry.source(), id, slot.interest, slot.mode)
        }
    }

    /// Registers queued watches while the high watermark allows.
    #[inline]
    pub(super) fn admit_queued(&mut self) {
        if !self.watchers.has_queue() {
            return;
        }
        while self.watchers.registered() < self.config.high_watermark {
            let Some(id) = self.watchers.admit() else { return };
            log::debug!("runtime: watch {id} admitted from the queue");
            if let Err(e) = self.register(id) {
                self.fail(id, e);
            }
        }
    }

    /// Ends watch `id` with `error`, delivered in the next pending phase.
    pub(super) fn fail(&mut self, id: EventId, error: io::Error) {
        let Some(slot) = self.watchers.remove(id) else {
            return;
        };
        log::warn!("runtime: watch {id} failed: {error}");
        if let Some(mut entry) = slot.entry {
            if slot.state == State::Registered {
                let _ = self.reactor.deregister(entry.source());
            }
            self.pending.push_back(Box::new(move |rt: &mut Self| {
                if let Err(payload) = entry.call(rt, id, Err(error)) {
                    drop(entry);
                    std::panic::resume_unwind(payload);
                }
            }));
        }
    }

    /// Stops watch `id`: deregisters it and drops its source. See [`close_with`](Runtime::close_with).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn close(&mut self, id: EventId) -> io::Result<()> {
        self.close_watch(id, None)
    }

    /// Stops watch `id` (also from inside its own callback) and runs `on_close` in this
    /// iteration's close phase, after the source is deregistered and dropped.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn close_with(&mut self, id: EventId, on_close: impl FnOnce(&mut Self) + 'static) -> io::Result<()> {
        self.close_watch(id, Some(Box::new(on_close)))
    }

    pub(super) fn close_watch(&mut self, id: EventId, on_close: Option<Callback<R>>) -> io::Result<()> {
        let slot = self.watchers.live(id)?;
        if slot.entry.is_none() {
            // Its callback is running: `after_callback` finishes the close.
            slot.set_closing();
        } else {
            self.drop_watch(id);
        }
        if let Some(on_close) = on_close {
            self.closes.push_back(on_close);
        }
        Ok(())
    }

    /// Removes watch `id`, deregistering and dropping its entry, and admits a queued watch.
    pub(super) fn drop_watch(&mut self, id: EventId) {
        let Some(slot) = self.watchers.remove(id) else {
            return;
        };
        if let Some(entry) = slot.entry {
            if slot.state == State::Registered {
                if let Err(e) = self.reactor.deregister(entry.source()) {
                    log::warn!("runtime: deregistering watch {id} failed: {e}");
                }
            }
        }
        log::debug!("runtime: watch {id} closed");
        self.admit_queued();
    }

    /// Changes what watch `id` waits for.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch; the reactor's error if re-registering
    /// fails.
    pub fn set_interest(&mut self, id: EventId, interest: Interest) -> io::Result<()> {
        let slot = self.watchers.live(id)?;
        if slot.interest == interest {
            return Ok(());
        }
        slot.interest = interest;
        match (&slot.entry, slot.state) {
            (Some(entry), State::Registered) => {
                self.reactor.reregister(entry.source(), id, interest, slot.mode)
            }
            (None, _) => {
                slot.set_interest_dirty();
                Ok(())
            }
            (Some(_), State::Queued | State::Paused) => Ok(()),
        }
    }

    /// Stops watching `id` without ending the watch (Node's `socket.pause()`): the source is
    /// deregistered and its place under the high watermark freed; the callback, the source and
    /// the deadline stay (a paused watch still times out when idle, so a paused peer cannot hold
    /// memory forever). Also from inside the watch's own callback.
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// use portable_reactor::Interest;
    /// let mut rt = Runtime::new()?;
    /// let (a, _b) = (std::net::UdpSocket::bind("127.0.0.1:0")?, ());
    /// let id = rt.watch(a, Interest::READABLE, |_, _, _, _| {})?;
    /// rt.pause_watch(id)?;
    /// assert_eq!((rt.stats().registered, rt.stats().paused), (0, 1));
    /// rt.resume_watch(id)?;
    /// assert_eq!((rt.stats().registered, rt.stats().paused), (1, 0));
    /// rt.close(id)?;
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn pause_watch(&mut self, id: EventId) -> io::Result<()> {
        let slot = self.watchers.live(id)?;
        if slot.entry.is_none() {
            slot.set_pause_pending(Some(true));
            return Ok(());
        }
        self.pause_now(id);
        Ok(())
    }

    /// Watches a paused watch again, with its current interest (queued if the high watermark is
    /// reached). Readiness that came while paused is reported. Also from inside the watch's
    /// own callback; a watch that is not paused is left as it is.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch; the reactor's error if registering
    /// fails (the watch stays paused).
    pub fn resume_watch(&mut self, id: EventId) -> io::Result<()> {
        let slot = self.watchers.live(id)?;
        if slot.entry.is_none() {
            slot.set_pause_pending(Some(false));
            return Ok(());
        }
        self.resume_now(id)
    }

    pub(super) fn pause_now(&mut self, id: EventId) {
        let Some(slot) = self.watchers.get_mut(id) else {
            return;
        };
        match slot.state {
            State::Registered => {
                if let Some(entry) = slot.entry.as_ref() {
                    if let Err(e) = self.reactor.deregister(entry.source()) {
                        log::warn!("runtime: deregistering paused watch {id} failed: {e}");
                    }
                }
                self.watchers.set_state(id, State::Paused);
                log::debug!("runtime: watch {id} paused");
                self.admit_queued();
            }
            State::Queued => self.watchers.set_state(id, State::Paused),
            State::Paused => {}
        }
    }

    pub(super) fn resume_now(&mut self, id: EventId) -> io::Result<()> {
        if self.watchers.get_mut(id).map(|s| s.state) != Some(State::Paused) {
            return Ok(());
        }
        if self.watchers.registered() < self.config.high_watermark {
            self.watchers.set_state(id, State::Registered);
            if let Err(e) = self.register(id) {
                self.watchers.set_state(id, State::Paused);
                return Err(e);
            }
            log::debug!("runtime: watch {id} resumed");
        } else {
            // Its memory is already held: queueing it adds none, so the queue limit is not
            // applied here.
            self.watermark_hits += 1;
            self.watchers.set_state(id, State::Queued);
            log::debug!("runtime: watch {id} resumed into the queue above the high watermark");
        }
        Ok(())
    }

    /// Runs watch `id`'s callback again in the next iteration's pending phase, with an event
    /// reporting its interest as ready, without asking the OS (libuv's `uv__io_feed`).
    ///
    /// For an edge-triggered watch that stops reading before `WouldBlock` to give other watches
    /// a turn: the OS would not report the data left behind again, so the watch asks to be
    /// called back. Costs no syscall.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn wake_watch(&mut self, id: EventId) -> io::Result<()> {
        let slot = self.watchers.live(id)?;
        let interest = slot.interest;
        self.fed.push_back(
            Event::new(id)
                .with_readable(interest.is_readable())
                .with_writable(interest.is_writable()),
        );
        Ok(())
    }

    /// Changes watch `id`'s deadline, counting from now: `None` removes it.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch; `ErrorKind::InvalidInput` for
    /// `Some(Duration::ZERO)` (the watch keeps its deadline).
    pub fn set_watch_timeout(&mut self, id: EventId, timeout: Option<Duration>) -> io::Result<()> {
        check_timeout(timeout)?;
        if self.watchers.set_timeout(id, timeout, Instant::now()) {
            Ok(())
        } else {
            Err(not_a_watch(id))
        }
    }

    /// Lets the loop end while watch `id` is active.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn unref_watch(&mut self, id: EventId) -> io::Result<()> {
        if self.watchers.set_ref(id, false) {
            Ok(())
        } else {
            Err(not_a_watch(id))
        }
    }

    /// Undoes [`unref_watch`](Runtime::unref_watch).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn ref_watch(&mut self, id: EventId) -> io::Result<()> {
        if self.watchers.set_ref(id, true) {
            Ok(())
        } else {
            Err(not_a_watch(id))
        }
    }

    /// The mode watch `id` is registered with: the trigger its options asked for where the
    /// backend has it, else the other one, else `Mode::Oneshot` (the runtime re-arms it after
    /// each callback). A layer that reads a stream uses it to know whether a short read may be
    /// taken for a drained socket (edge-triggered: only if no new edge is owed).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn watch_mode(&self, id: EventId) -> io::Result<Mode> {
        let slot = self.watchers.get(id).ok_or_else(|| not_a_watch(id))?;
        Ok(if slot.rearm() { Mode::Oneshot } else { slot.mode })
    }

    /// The source of a persistent watch, outside its callback (inside, the callback has it).
    /// `None` if `id` is not a live watch, is running its callback, or holds another type.
    pub fn source_mut<S: 'static>(&mut self, id: EventId) -> Option<&mut S> {
        self.watchers
            .get_mut(id)?
            .entry
            .as_mut()?
            .source_any()
            .downcast_mut::<S>()
    }
}
