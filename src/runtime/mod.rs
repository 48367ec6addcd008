//! A Node-style, single-threaded event loop written only against the [`Reactor`] trait.
//!
//! The loop polls its reactor itself (no poll thread, no channel hop per I/O event). The
//! [`EventId`] of an I/O watcher is its callback's id. The loop keeps count of what it holds
//! ([`Runtime::stats`]), caps registrations with a high watermark (beyond it watches queue, and
//! the queue is bounded), and puts a deadline on every watch, so what a slow or malicious peer
//! holds is always reclaimed with `ErrorKind::TimedOut`.
//!
//! # Phases
//!
//! Each iteration runs these phases in libuv's order; the next-tick queue drains after every
//! single callback, in every phase.
//!
//! ```text
//!    ┌───────────────────────────┐
//! ┌─>│ timers                    │  due timers (collected before any runs), then expired deadlines
//! │  ├───────────────────────────┤
//! │  │ pending callbacks         │  fed events (wake_watch), I/O errors deferred from the last iteration
//! │  ├───────────────────────────┤
//! │  │ idle / prepare            │  admit queued watches; compute the poll timeout
//! │  ├───────────────────────────┤
//! │  │ poll                      │  wait for I/O; run watcher callbacks, pool results, posts
//! │  ├───────────────────────────┤
//! │  │ check                     │  immediates queued before the phase began
//! │  ├───────────────────────────┤
//! └──┤ close callbacks           │
//!    └───────────────────────────┘
//! ```
//!
//! | phase | runs | callbacks added during the phase |
//! |---|---|---|
//! | timers | timers due at the loop time (millisecond resolution), in deadline then insertion order; then watches past their deadline get `TimedOut` | a timer started here waits for the next iteration (delays are at least [`MIN_DELAY`]) |
//! | pending | events fed by [`wake_watch`](Runtime::wake_watch), then errors from re-arming or admitting a watch | next iteration |
//! | poll | blocks until the next timer or deadline, or not at all when immediates, next-ticks, pending or close callbacks wait, when stopped, or when nothing referenced is left | — |
//! | check | [`set_immediate`](Runtime::set_immediate) callbacks | an immediate set here waits for the next iteration |
//! | close | [`close_with`](Runtime::close_with) callbacks | next iteration |
//!
//! [`run`](Runtime::run) returns when nothing referenced is left: timers and watches not
//! [unref'd](Runtime::unref_timer), pool jobs, immediates, next-ticks, pending and close
//! callbacks.
//!
//! # Example
//!
//! ```
//! use portable_reactor::runtime::Runtime;
//! use std::cell::RefCell;
//! use std::rc::Rc;
//! use std::time::Duration;
//!
//! let mut rt = Runtime::new()?;
//! let log = Rc::new(RefCell::new(Vec::new()));
//! let l = log.clone();
//! rt.set_timeout(Duration::from_millis(5), move |rt| {
//!     l.borrow_mut().push("timeout");
//!     let l2 = l.clone();
//!     rt.set_immediate(move |_| l2.borrow_mut().push("immediate"));
//!     let l3 = l.clone();
//!     rt.next_tick(move |_| l3.borrow_mut().push("tick"));
//! });
//! rt.run()?;
//! assert_eq!(*log.borrow(), ["timeout", "tick", "immediate"]);
//! # std::io::Result::Ok(())
//! ```

mod builder;
mod inbox;
mod pool;
mod stats;
mod timers;
mod watch;
mod watchers;

use std::any::Any;
use std::collections::{HashSet, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

pub use builder::{
    Builder, DEFAULT_HIGH_WATERMARK, DEFAULT_IO_TIMEOUT, DEFAULT_QUEUE_LIMIT, DEFAULT_THREADS, THREADS_ENV,
};
pub use inbox::Handle;
pub use stats::Stats;
pub use timers::TimerId;
pub use watch::{Trigger, WatchOptions};

use crate::{AsSource, DefaultReactor, Event, EventId, Events, Interest, Mode, Reactor};
use builder::Config;
use inbox::{Inbox, JobOutput, Message};
use pool::Pool;
use timers::TimerQueue;
use watch::{Entry, Once, Persistent};
use watchers::{not_a_watch, NewWatcher, State, Watchers};

/// A callback run once with the loop.
type Callback<R> = Box<dyn FnOnce(&mut Runtime<R>)>;

/// What a pool job's result is delivered to.
type JobCallback<R> = Box<dyn FnOnce(&mut Runtime<R>, JobOutput)>;

/// A queued timer: a timeout's callback, or an interval's period and callback, behind one
/// pointer so that a queued timer costs 24 bytes plus what its callback captures.
trait Timer<R: Reactor + 'static> {
    /// Runs the timer; an interval comes back with its next deadline.
    fn fire(self: Box<Self>, rt: &mut Runtime<R>) -> Option<(Instant, Box<dyn Timer<R>>)>;
}

struct Timeout<F>(F);

impl<R: Reactor + 'static, F: FnOnce(&mut Runtime<R>) + 'static> Timer<R> for Timeout<F> {
    fn fire(self: Box<Self>, rt: &mut Runtime<R>) -> Option<(Instant, Box<dyn Timer<R>>)> {
        (self.0)(rt);
        None
    }
}

struct Interval<F> {
    period: Duration,
    callback: F,
}

impl<R: Reactor + 'static, F: FnMut(&mut Runtime<R>) + 'static> Timer<R> for Interval<F> {
    fn fire(mut self: Box<Self>, rt: &mut Runtime<R>) -> Option<(Instant, Box<dyn Timer<R>>)> {
        // The next run is due a period after this one began: no catch-up burst after a late run.
        let next = deadline_after(Instant::now(), self.period);
        (self.callback)(rt);
        Some((next, self))
    }
}

/// The shortest delay, as in Node: a timer set for less (0 included) waits a millisecond, so a
/// timer started from a timer callback always waits for the next iteration.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

/// Identifies an immediate from [`Runtime::set_immediate`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImmediateId(u64);

/// The deadline `after` past `now`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(now: Instant, after: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(after.min(FAR)).unwrap_or(now)
}

/// The single-threaded event loop. See the [module docs](self) for its phases.
///
/// Callbacks get `&mut Runtime` to schedule more work; nothing global or thread-local is
/// involved. `Runtime` is not `Send`: other threads reach it through a [`Handle`].
pub struct Runtime<R: Reactor + 'static = DefaultReactor> {
    reactor: R,
    config: Config,
    /// The loop time, refreshed before timers run and after each poll.
    now: Instant,
    events: Option<Events>,
    timers: TimerQueue<Box<dyn Timer<R>>>,
    immediates: VecDeque<(u64, Callback<R>)>,
    next_immediate: u64,
    cleared_immediates: HashSet<u64>,
    ticks: VecDeque<Callback<R>>,
    pending: VecDeque<Callback<R>>,
    /// Events fed to watches by [`Runtime::wake_watch`], dispatched in the pending phase.
    fed: VecDeque<Event>,
    closes: VecDeque<Callback<R>>,
    watchers: Watchers<Box<dyn Entry<R>>>,
    pool: Pool,
    jobs: Slab<JobCallback<R>>,
    inbox: Arc<Inbox<Runtime<R>>>,
    mailbox: VecDeque<Message<Runtime<R>>>,
    stopped: bool,
    ticks_run: u64,
    timeouts: u64,
    watermark_hits: u64,
    rejected: u64,
}

impl Runtime<DefaultReactor> {
    /// A runtime on the [`DefaultReactor`] with the [`Builder`]'s defaults.
    ///
    /// # Errors
    ///
    /// As for [`Builder::build`].
    pub fn new() -> io::Result<Runtime<DefaultReactor>> {
        Builder::new().build()
    }

    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<R: Reactor + 'static> Runtime<R> {
    pub(crate) fn with_config(reactor: R, config: Config) -> io::Result<Runtime<R>> {
        let inbox = Inbox::new(reactor.waker());
        log::debug!(
            "runtime: new loop on {} ({}), {} pool threads, io timeout {:?}, high watermark {}, queue {}",
            reactor.name(),
            reactor.mechanism(),
            config.threads,
            config.io_timeout,
            config.high_watermark,
            config.queue_limit
        );
        let now = Instant::now();
        Ok(Runtime {
            events: Some(Events::with_capacity(config.events_capacity)),
            pool: Pool::new(config.threads),
            reactor,
            config,
            now,
            timers: TimerQueue::new(now),
            immediates: VecDeque::new(),
            next_immediate: 0,
            cleared_immediates: HashSet::new(),
            ticks: VecDeque::new(),
            pending: VecDeque::new(),
            fed: VecDeque::new(),
            closes: VecDeque::new(),
            watchers: Watchers::default(),
            jobs: Slab::new(),
            inbox,
            mailbox: VecDeque::new(),
            stopped: false,
            ticks_run: 0,
            timeouts: 0,
            watermark_hits: 0,
            rejected: 0,
        })
    }

    /// The reactor under the loop.
    pub fn reactor(&self) -> &R {
        &self.reactor
    }

    /// The default deadline of watches, as the builder set it (`None`: no default deadline).
    pub fn io_timeout(&self) -> Option<Duration> {
        self.config.io_timeout
    }

    /// The loop time: refreshed before timers run and after each poll, not on every call.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Refreshes the loop time.
    pub fn update_time(&mut self) {
        self.now = Instant::now();
    }

    /// A `Send + Sync` handle for other threads.
    pub fn handle(&self) -> Handle<Runtime<R>> {
        Handle::new(self.inbox.clone())
    }

    /// What the loop holds and has done.
    pub fn stats(&self) -> Stats {
        let (pool_queued, pool_running) = self.pool.load();
        Stats {
            ticks: self.ticks_run,
            registered: self.watchers.registered(),
            queued: self.watchers.queued(),
            paused: self.watchers.paused(),
            timers: self.timers.len(),
            immediates: self.immediates.len() - self.cleared_immediates.len(),
            pool_queued,
            pool_running,
            pool_pending: self.jobs.len(),
            timeouts: self.timeouts,
            watermark_hits: self.watermark_hits,
            rejected: self.rejected,
        }
    }

    // ---- timers, immediates, next-tick -------------------------------------------------

    /// Runs `callback` once, no earlier than `delay` (at least [`MIN_DELAY`]) from now, with
    /// millisecond resolution. Equal delays fire in the order they were set. O(log b) for `b`
    /// distinct pending milliseconds.
    pub fn set_timeout(&mut self, delay: Duration, callback: impl FnOnce(&mut Self) + 'static) -> TimerId {
        let deadline = deadline_after(Instant::now(), delay.max(MIN_DELAY));
        self.timers.insert(deadline, Box::new(Timeout(callback)))
    }

    /// Runs `callback` every `period` (at least [`MIN_DELAY`]), each time `period` after the
    /// previous run began (a late run is not followed by a burst of catch-up runs).
    pub fn set_interval(&mut self, period: Duration, callback: impl FnMut(&mut Self) + 'static) -> TimerId {
        let period = period.max(MIN_DELAY);
        let deadline = deadline_after(Instant::now(), period);
        self.timers
            .insert_repeating(deadline, Box::new(Interval { period, callback }))
    }

    /// Cancels a timeout or interval (also from inside its own callback). Returns whether it was
    /// still active.
    pub fn clear_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// Lets the loop end while this timer is pending (Node's `timeout.unref()`). Returns false
    /// for a timer that is no longer active.
    pub fn unref_timer(&mut self, id: TimerId) -> bool {
        self.timers.set_ref(id, false)
    }

    /// Undoes [`unref_timer`](Runtime::unref_timer).
    pub fn ref_timer(&mut self, id: TimerId) -> bool {
        self.timers.set_ref(id, true)
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

    fn run_ticks(&mut self) {
        while let Some(tick) = self.ticks.pop_front() {
            tick(self);
        }
    }

    // ---- thread pool --------------------------------------------------------------------

    /// Runs `work` on the thread pool and `callback` with its result on the loop thread.
    ///
    /// Jobs start in submission order. A job that panics gives its callback an error of
    /// `ErrorKind::Other` with the panic message; the pool keeps its threads.
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// let mut rt = Runtime::new()?;
    /// rt.spawn_blocking(|| (1..=10u64).product::<u64>(), |_, result| {
    ///     assert_eq!(result.unwrap(), 3_628_800);
    /// })?;
    /// rt.spawn_blocking(|| -> u8 { panic!("boom") }, |_, result| {
    ///     assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::Other);
    /// })?;
    /// rt.run()?;
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// The OS error if no pool thread could be started; the job is dropped unrun.
    pub fn spawn_blocking<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        callback: impl FnOnce(&mut Self, io::Result<T>) + 'static,
    ) -> io::Result<()> {
        let key = self
            .jobs
            .insert(Box::new(move |rt: &mut Self, output: JobOutput| {
                let result = match output {
                    Ok(value) => match value.downcast::<T>() {
                        Ok(value) => Ok(*value),
                        Err(_) => Err(io::Error::other("blocking job returned a value of another type")),
                    },
                    Err(panic) => Err(io::Error::other(format!(
                        "blocking job panicked: {}",
                        panic_message(&*panic)
                    ))),
                };
                callback(rt, result);
            }));
        let work: pool::Work = Box::new(move || Box::new(work()) as Box<dyn Any + Send>);
        if let Err(e) = self.pool.submit(key as u64, work, &self.inbox) {
            drop(self.jobs.remove(key));
            return Err(e);
        }
        Ok(())
    }

    // ---- I/O watchers ---------------------------------------------------------------------

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
    /// The returned [`EventId`] is the watcher's id and the id registered with the reactor. The
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
        let entry: Box<dyn Entry<R>> = Box::new(Persistent { source, callback });
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
        let entry: Box<dyn Entry<R>> = Box::new(Once { source, callback });
        self.add_watch(entry, interest, Mode::Oneshot, true, false, options)
    }

    /// The mode a persistent watch registers with, and whether it must be re-armed by hand.
    fn persistent_mode(&self, trigger: Trigger) -> (Mode, bool) {
        let preferred = match trigger {
            Trigger::Edge => [Mode::Edge, Mode::Level],
            Trigger::Level => [Mode::Level, Mode::Level],
        };
        match preferred.into_iter().find(|m| self.reactor.supports(*m)) {
            Some(mode) => (mode, false),
            None => (Mode::Oneshot, true),
        }
    }

    fn add_watch(
        &mut self,
        entry: Box<dyn Entry<R>>,
        interest: Interest,
        mode: Mode,
        once: bool,
        rearm: bool,
        options: WatchOptions,
    ) -> io::Result<EventId> {
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
    fn register(&mut self, id: EventId) -> io::Result<()> {
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
    fn admit_queued(&mut self) {
        while self.watchers.registered() < self.config.high_watermark {
            let Some(id) = self.watchers.admit() else { return };
            log::debug!("runtime: watch {id} admitted from the queue");
            if let Err(e) = self.register(id) {
                self.fail(id, e);
            }
        }
    }

    /// Ends watch `id` with `error`, delivered in the next pending phase.
    fn fail(&mut self, id: EventId, error: io::Error) {
        let Some(slot) = self.watchers.remove(id) else {
            return;
        };
        log::warn!("runtime: watch {id} failed: {error}");
        if let Some(entry) = slot.entry {
            if slot.state == State::Registered {
                let _ = self.reactor.deregister(entry.source());
            }
            self.pending.push_back(Box::new(move |rt: &mut Self| {
                drop(entry.call(rt, id, Err(error)))
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

    fn close_watch(&mut self, id: EventId, on_close: Option<Callback<R>>) -> io::Result<()> {
        let slot = self.watchers.live(id)?;
        if slot.entry.is_none() {
            // Its callback is running: `after_callback` finishes the close.
            slot.closing = true;
        } else {
            self.drop_watch(id);
        }
        if let Some(on_close) = on_close {
            self.closes.push_back(on_close);
        }
        Ok(())
    }

    /// Removes watch `id`, deregistering and dropping its entry, and admits a queued watch.
    fn drop_watch(&mut self, id: EventId) {
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
                slot.interest_dirty = true;
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
            slot.pause_pending = Some(true);
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
            slot.pause_pending = Some(false);
            return Ok(());
        }
        self.resume_now(id)
    }

    fn pause_now(&mut self, id: EventId) {
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

    fn resume_now(&mut self, id: EventId) -> io::Result<()> {
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
    /// `ErrorKind::NotFound` if `id` is not a live watch.
    pub fn set_watch_timeout(&mut self, id: EventId, timeout: Option<Duration>) -> io::Result<()> {
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

    // ---- the loop -------------------------------------------------------------------------

    /// Makes [`run`](Runtime::run) return after the current iteration.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether anything referenced is left to run.
    pub fn is_alive(&self) -> bool {
        self.timers.refed() > 0
            || self.watchers.refed() > 0
            || !self.jobs.is_empty()
            || !self.immediates.is_empty()
            || !self.ticks.is_empty()
            || !self.pending.is_empty()
            || !self.closes.is_empty()
    }

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

    fn iterate(&mut self) -> io::Result<()> {
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

    fn run_timers(&mut self) {
        let now = self.now;
        while let Some((id, timer)) = self.timers.pop_due(now) {
            if let Some((next, interval)) = timer.fire(self) {
                // Err: cleared during its run; dropping it ends it.
                drop(self.timers.reinsert(id, next, interval));
            }
            self.run_ticks();
        }
    }

    fn run_deadlines(&mut self) {
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

    fn run_pending(&mut self) {
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

    fn poll_timeout(&mut self) -> Option<Duration> {
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

    fn poll_io(&mut self, timeout: Option<Duration>) -> io::Result<()> {
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

    fn dispatch(&mut self, event: Event) {
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

    fn fire_once(&mut self, id: EventId, event: Event) {
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
    fn after_callback(&mut self, id: EventId, entry: Box<dyn Entry<R>>) {
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

    fn run_check(&mut self) {
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

    fn run_closes(&mut self) {
        for _ in 0..self.closes.len() {
            let Some(callback) = self.closes.pop_front() else {
                break;
            };
            callback(self);
            self.run_ticks();
        }
    }
}

impl<R: Reactor + 'static> Drop for Runtime<R> {
    fn drop(&mut self) {
        self.inbox.close();
        let slots: Vec<_> = self.watchers.drain().collect();
        for slot in slots {
            if let (Some(entry), State::Registered) = (slot.entry, slot.state) {
                let _ = self.reactor.deregister(entry.source());
            }
        }
    }
}

impl<R: Reactor + 'static> std::fmt::Debug for Runtime<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("reactor", &self.reactor.name())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
