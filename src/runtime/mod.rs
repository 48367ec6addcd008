//! A Node-style, single-threaded event loop written only against the [`Reactor`] trait.
//!
//! The loop polls its reactor itself (no poll thread, no channel hop per I/O event). The
//! [`EventId`](crate::EventId) of an I/O watcher is its callback's id. The loop keeps count of what it holds
//! ([`Runtime::stats`]), caps registrations with a high watermark (beyond it watches queue, and
//! the queue is bounded), and puts a deadline on every watch, so what a slow or malicious peer
//! holds is always reclaimed with `ErrorKind::TimedOut`.
//!
//! # Phases
//!
//! Each iteration runs these phases in libuv's order (libuv 1.45 and later); the next-tick
//! queue drains after every single callback, in every phase.
//!
//! ```text
//!          run(): timers due before the first poll run here, once
//!    ┌───────────────────────────┐
//! ┌─>│ pending callbacks         │  fed events (wake_watch), I/O errors deferred from the last iteration
//! │  ├───────────────────────────┤
//! │  │ idle / prepare            │  admit queued watches; compute the poll timeout
//! │  ├───────────────────────────┤
//! │  │ poll                      │  wait for I/O; run watcher callbacks, then pool results, posts, woken tasks
//! │  ├───────────────────────────┤
//! │  │ check                     │  immediates queued before the phase began
//! │  ├───────────────────────────┤
//! │  │ close callbacks           │  last in, first out
//! │  ├───────────────────────────┤
//! └──┤ timers                    │  due timers (collected before any runs), then expired deadlines
//!    └───────────────────────────┘
//! ```
//!
//! | phase | runs | callbacks added during the phase |
//! |---|---|---|
//! | pending | events fed by [`wake_watch`](Runtime::wake_watch), then errors from re-arming or admitting a watch | next iteration |
//! | poll | blocks until the next timer or deadline, or not at all when immediates, next-ticks, pending or close callbacks wait, when stopped, when nothing referenced is left, or in [`run_nowait`](Runtime::run_nowait) | — |
//! | poll: tasks | [`spawn_local`](Runtime::spawn_local) tasks woken before the inbox was drained, after the I/O callbacks of this poll, in wake order with pool results and posts; next-ticks between them (promises in Node) | a task woken here runs in the next iteration (the poll does not block) |
//! | check | [`set_immediate`](Runtime::set_immediate) callbacks | an immediate set here waits for the next iteration |
//! | close | [`close_with`](Runtime::close_with) callbacks, the last queued first (libuv's closing handles are a stack) | next iteration |
//! | timers | timers due at the loop time, in deadline then insertion order; then watches past their deadline get `TimedOut` | a timer started here waits for the next iteration (delays are at least [`MIN_DELAY`]) |
//!
//! Timers end the iteration, as in libuv: [`run_once`](Runtime::run_once) that blocks for a
//! timer also runs it before it returns. [`run`](Runtime::run) starts with the timers phase
//! once, so timers already due run before the first poll.
//!
//! A timer never runs before its delay has passed. Timers whose deadlines fall within the same
//! millisecond run together, when the latest of them is due; a timer alone in its millisecond
//! runs at its deadline, as precisely as the reactor waits (`mio`, poll(2) and IOCP wait in
//! whole milliseconds, rounded up; `polling` on epoll and kqueue to the nanosecond).
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

mod async_io;
mod async_traits;
mod builder;
mod deadline_heap;
mod inbox;
mod iteration;
mod local;
mod pool;
mod pool_api;
mod schedule;
mod spin;
mod stats;
pub(crate) mod stored_entry;
mod task;
mod time;
mod timer_box;
mod timers;
mod watch;
mod watch_api;
mod watch_slot;
mod watchers;

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

pub use async_io::Async;
pub use async_traits::HalfClose;
pub use builder::{
    Builder, DEFAULT_HIGH_WATERMARK, DEFAULT_IO_TIMEOUT, DEFAULT_POOL_SPIN, DEFAULT_POST_LIMIT,
    DEFAULT_QUEUE_LIMIT, DEFAULT_THREADS, THREADS_ENV,
};
pub use inbox::Handle;
pub use local::Local;
pub use pool_api::{BlockingJob, JobId};
pub use schedule::ImmediateId;
pub use stats::Stats;
pub use task::JoinHandle;
pub use time::{Interval, Sleep, Time, Timeout};
pub use timers::TimerId;
pub use watch::{Trigger, WatchOptions};

use crate::{DefaultReactor, Event, Events, Reactor};
use builder::Config;
use inbox::{Inbox, JobOutput, Message};
use pool::Pool;
use stored_entry::StoredEntry;
use timer_box::TimerBox;
use timers::TimerQueue;
use watchers::{State, Watchers};

/// A callback run once with the loop.
type Callback<R> = Box<dyn FnOnce(&mut Runtime<R>)>;

/// What a pool job's result is delivered to (`None`: the job was cancelled).
type JobCallback<R> = Box<dyn FnOnce(&mut Runtime<R>, Option<JobOutput>)>;

/// The shortest delay, as in Node: a timer set for less (0 included) waits a millisecond (and
/// not more: the deadline is exact, see the [module docs](self)), so a timer started from a
/// timer callback always waits for the next iteration.
pub const MIN_DELAY: Duration = Duration::from_millis(1);

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
    events: Option<Events>,
    /// Shared with the time futures of [`Time`] (single-threaded: `Rc`).
    timers: Rc<RefCell<TimerQueue<TimerBox<R>>>>,
    immediates: VecDeque<(u64, Callback<R>)>,
    next_immediate: u64,
    cleared_immediates: HashSet<u64>,
    ticks: VecDeque<Callback<R>>,
    pending: VecDeque<Callback<R>>,
    /// Events fed to watches by [`Runtime::wake_watch`], dispatched in the pending phase.
    fed: VecDeque<Event>,
    closes: VecDeque<Callback<R>>,
    /// The close callbacks the close phase is running (see `run_closes`).
    closing: VecDeque<Callback<R>>,
    watchers: Watchers<StoredEntry<R>>,
    pool: Pool,
    /// How long the loop spins for a pool result before it blocks (see [`spin`]).
    spin: spin::LoopSpin,
    /// Pool jobs whose result has not reached their callback, with their id's sequence number.
    jobs: Slab<(u64, JobCallback<R>)>,
    /// The sequence number of the next pool job.
    next_job: u64,
    /// Cancelled jobs whose callback waits in the pending phase.
    cancelled_jobs: usize,
    inbox: Arc<Inbox<Runtime<R>>>,
    mailbox: VecDeque<Message<Runtime<R>>>,
    /// Tasks woken on the loop's thread, drained from the inbox (kept: no allocation).
    woken: VecDeque<Arc<task::TaskHeader>>,
    /// Tasks and deferred work, shared with [`Local`] handles.
    shared: Rc<local::Shared<R>>,
    /// Nested [`Runtime::block_on`] calls waiting: the loop blocks for wakes even when nothing
    /// else is referenced.
    blocking_on: usize,
    stopped: bool,
    /// The last poll reported events (a host loop should run the runtime again at once).
    polled_events: bool,
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
        let inbox = Inbox::new(reactor.waker(), config.post_limit);
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
        let seed = random_seed();
        Ok(Runtime {
            events: Some(Events::with_capacity(config.events_capacity)),
            pool: Pool::new(config.threads, config.pool_spin),
            spin: spin::LoopSpin::new(config.pool_spin),
            reactor,
            config,
            timers: Rc::new(RefCell::new(TimerQueue::with_seed(now, seed))),
            immediates: VecDeque::new(),
            next_immediate: 0,
            cleared_immediates: HashSet::new(),
            ticks: VecDeque::new(),
            pending: VecDeque::new(),
            fed: VecDeque::new(),
            closes: VecDeque::new(),
            closing: VecDeque::new(),
            watchers: {
                let mut watchers = Watchers::with_seed(seed.rotate_left(17));
                watchers.set_now(now);
                watchers
            },
            jobs: Slab::new(),
            next_job: seed.rotate_left(41),
            cancelled_jobs: 0,
            shared: local::Shared::new(std::thread::current().id(), inbox.clone(), now),
            inbox,
            mailbox: VecDeque::new(),
            woken: VecDeque::new(),
            blocking_on: 0,
            stopped: false,
            polled_events: false,
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
        self.shared.now.get()
    }

    /// Refreshes the loop time.
    pub fn update_time(&mut self) {
        let now = Instant::now();
        self.shared.now.set(now);
        self.watchers.set_now(now);
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
            timers: self.timers.borrow().len(),
            immediates: self.immediates.len() - self.cleared_immediates.len(),
            pool_queued,
            pool_running,
            pool_pending: self.jobs.len() + self.cancelled_jobs,
            tasks: self.live_tasks(),
            timeouts: self.timeouts,
            watermark_hits: self.watermark_hits,
            rejected: self.rejected,
        }
    }

    // ---- the loop -------------------------------------------------------------------------

    /// Makes [`run`](Runtime::run) return after the current iteration.
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Whether anything referenced is left to run.
    pub fn is_alive(&self) -> bool {
        self.timers.borrow().refed() > 0
            || self.watchers.refed() > 0
            || !self.jobs.is_empty()
            || !self.immediates.is_empty()
            || !self.ticks.is_empty()
            || !self.pending.is_empty()
            || !self.closes.is_empty()
            || self.inbox.pending()
            || !self.shared.deferred.borrow().is_empty()
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
        // Tasks and timer callbacks may hold `Local` and `Time` handles, which hold these
        // tables: empty them (dropping their contents outside the borrows) so nothing leaks
        // through the cycle.
        let tasks = std::mem::take(&mut *self.shared.tasks.borrow_mut());
        drop(tasks);
        let deferred = std::mem::take(&mut *self.shared.deferred.borrow_mut());
        drop(deferred);
        let timers = std::mem::replace(
            &mut *self.timers.borrow_mut(),
            TimerQueue::with_seed(self.now(), 0),
        );
        drop(timers);
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

/// A random number per call, from std's per-process random hash keys (no global state of our
/// own): it makes ids of different runtimes differ.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
