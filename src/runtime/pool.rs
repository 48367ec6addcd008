//! The thread pool for blocking work: FIFO queues served by a fixed number of threads, spawned
//! on first use. Results go back to the loop through the [`Inbox`].
//!
//! Work comes in two classes, as in libuv: ordinary work (file system, user jobs) and *slow*
//! work (DNS lookups: a resolver that does not answer holds its thread for as long as it
//! likes). At most [`slow_limit`] threads run slow work at once; the rest of the slow work waits
//! in its own queue, so ordinary work always has a thread (with two threads or more). Jobs of
//! both classes start in submission order when they may start at all.
//!
//! A thread that finished a job watches the queue for a moment before it sleeps (one thread at
//! a time, for the builder's [`pool_spin`](super::Builder::pool_spin); see [`super::spin`]): a
//! job submitted meanwhile starts without a wake-up.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::sync::lock;
use std::thread;

use super::inbox::{Inbox, JobOutput, Message};
use super::spin::spin_until;

/// A job: computes a boxed value on a pool thread.
pub(crate) type Work = Box<dyn FnOnce() -> Box<dyn std::any::Any + Send> + Send>;

/// How many of `threads` may run slow work at once: half of them rounded down, at least one
/// (libuv rounds up, `(threads + 1) / 2`; rounding down keeps at least half the threads for
/// ordinary work). With one thread, slow work can still hold it.
pub(crate) fn slow_limit(threads: usize) -> usize {
    (threads / 2).max(1)
}

struct Queued {
    /// The job's slab key in the runtime (what `Message::Done` carries).
    key: u64,
    /// Unique per runtime: what [`Pool::cancel`] looks for.
    seq: u64,
    work: Work,
}

struct Jobs {
    queue: VecDeque<Queued>,
    /// Slow work waiting (see the module docs).
    slow: VecDeque<Queued>,
    running: usize,
    slow_running: usize,
    slow_limit: usize,
    /// Threads waiting on the condvar. A job is announced (a futex syscall) only when one is
    /// waiting and the spinning thread (which checks the queue before it waits) will not take
    /// it: a busy thread checks the queue before it waits too.
    idle: usize,
    /// Threads watching the queue before they wait (0 or 1).
    spinning: usize,
    shutdown: bool,
}

impl Jobs {
    /// The oldest job that may start now, and whether it is slow.
    fn next(&mut self, queued: &AtomicUsize) -> Option<(Queued, bool)> {
        let slow_ok = self.slow_running < self.slow_limit;
        let take_slow = match (self.queue.front(), self.slow.front()) {
            (_, None) => false,
            (None, Some(_)) => slow_ok,
            (Some(ordinary), Some(slow)) => slow_ok && slow.seq < ordinary.seq,
        };
        let next = if take_slow {
            self.slow.pop_front().map(|job| (job, true))
        } else {
            self.queue.pop_front().map(|job| (job, false))
        };
        if next.is_some() {
            self.count(queued);
        }
        next
    }

    /// Publishes the number of queued jobs for the spinning thread.
    fn count(&self, queued: &AtomicUsize) {
        queued.store(self.queue.len() + self.slow.len(), Ordering::Release);
    }
}

struct Shared {
    jobs: Mutex<Jobs>,
    ready: Condvar,
    /// Jobs in the queues, as last counted under the lock: what a spinning thread watches.
    queued: AtomicUsize,
    /// How long a thread that finished a job watches the queue before it waits.
    spin: Duration,
}

/// The pool. Dropping it lets the threads finish their current job and exit.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    threads: usize,
    spawned: usize,
}

impl Pool {
    /// A pool of up to `threads` threads, each watching the queue for up to `spin` after a job.
    pub(crate) fn new(threads: usize, spin: Duration) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                jobs: Mutex::new(Jobs {
                    queue: VecDeque::new(),
                    slow: VecDeque::new(),
                    running: 0,
                    slow_running: 0,
                    slow_limit: slow_limit(threads),
                    idle: 0,
                    spinning: 0,
                    shutdown: false,
                }),
                ready: Condvar::new(),
                queued: AtomicUsize::new(0),
                spin,
            }),
            threads,
            spawned: 0,
        }
    }

    /// Queues `work` (in the slow queue if `slow`); its output reaches `inbox` as
    /// `Message::Done(key, ..)`. `seq` identifies it for [`cancel`](Pool::cancel).
    ///
    /// # Errors
    ///
    /// The OS error if no pool thread could be started at all.
    pub(crate) fn submit<Rt: 'static>(
        &mut self,
        key: u64,
        seq: u64,
        work: Work,
        slow: bool,
        inbox: &Arc<Inbox<Rt>>,
    ) -> std::io::Result<()> {
        let (queued, announce) = {
            let mut jobs = lock(&self.shared.jobs);
            let job = Queued { key, seq, work };
            if slow {
                jobs.slow.push_back(job);
            } else {
                jobs.queue.push_back(job);
            }
            jobs.count(&self.shared.queued);
            let waiting = jobs.queue.len() + jobs.slow.len();
            // The spinning thread takes one job before it may wait (it checks under this
            // lock): wake a sleeper only for the others.
            (waiting + jobs.running, jobs.idle > 0 && waiting > jobs.spinning)
        };
        if self.spawned < self.threads && queued > self.spawned {
            if let Err(e) = self.spawn(inbox) {
                if self.spawned == 0 {
                    drop(self.cancel(seq));
                    return Err(e);
                }
                log::warn!(
                    "runtime: pool thread {} not started ({e}); {} keep serving",
                    self.spawned,
                    self.spawned
                );
                self.threads = self.spawned;
                lock(&self.shared.jobs).slow_limit = slow_limit(self.threads);
            }
        }
        if announce {
            self.shared.ready.notify_one();
        }
        Ok(())
    }

    /// Takes the job `seq` out of the queues if it has not started: its work, to drop outside
    /// the lock, or `None` if it is running, done or unknown.
    pub(crate) fn cancel(&self, seq: u64) -> Option<Work> {
        let mut jobs = lock(&self.shared.jobs);
        let jobs = &mut *jobs;
        let mut work = None;
        for queue in [&mut jobs.queue, &mut jobs.slow] {
            if let Some(at) = queue.iter().position(|job| job.seq == seq) {
                work = queue.remove(at).map(|job| job.work);
                break;
            }
        }
        jobs.count(&self.shared.queued);
        work
    }

    fn spawn<Rt: 'static>(&mut self, inbox: &Arc<Inbox<Rt>>) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let inbox = inbox.clone();
        thread::Builder::new()
            .name(format!("reactor-pool-{}", self.spawned))
            .spawn(move || worker(&shared, &inbox))?;
        self.spawned += 1;
        log::debug!(
            "runtime: started pool thread {} of {}",
            self.spawned,
            self.threads
        );
        Ok(())
    }

    /// (queued, running) jobs, slow ones included.
    pub(crate) fn load(&self) -> (usize, usize) {
        let jobs = lock(&self.shared.jobs);
        (jobs.queue.len() + jobs.slow.len(), jobs.running)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        lock(&self.shared.jobs).shutdown = true;
        self.shared.ready.notify_all();
    }
}

fn worker<Rt>(shared: &Shared, inbox: &Inbox<Rt>) {
    // Whether this thread may spin before it waits: only after a job, once.
    let mut may_spin = false;
    loop {
        let (job, slow) = {
            let mut jobs = lock(&shared.jobs);
            loop {
                if jobs.shutdown {
                    return;
                }
                if let Some((job, slow)) = jobs.next(&shared.queued) {
                    jobs.running += 1;
                    if slow {
                        jobs.slow_running += 1;
                    }
                    break (job, slow);
                }
                if may_spin && jobs.spinning == 0 && !shared.spin.is_zero() {
                    may_spin = false;
                    jobs.spinning += 1;
                    drop(jobs);
                    spin_until(shared.spin, || shared.queued.load(Ordering::Acquire) > 0);
                    jobs = lock(&shared.jobs);
                    jobs.spinning -= 1;
                    continue;
                }
                may_spin = false;
                jobs.idle += 1;
                jobs = shared
                    .ready
                    .wait(jobs)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                jobs.idle -= 1;
            }
        };
        may_spin = true;
        let Queued { key, work, .. } = job;
        let output: JobOutput = catch_unwind(AssertUnwindSafe(work));
        let wake_another = {
            let mut jobs = lock(&shared.jobs);
            jobs.running -= 1;
            if slow {
                jobs.slow_running -= 1;
            }
            // A slow slot opened: an idle thread may start waiting slow work (this one may
            // take an older ordinary job next).
            slow && !jobs.slow.is_empty() && jobs.idle > 0
        };
        if wake_another {
            shared.ready.notify_one();
        }
        // A closed inbox means the runtime is gone: the result has nowhere to go.
        let _ = inbox.push(Message::Done(key, output));
    }
}
