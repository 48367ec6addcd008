//! The thread pool for blocking work: FIFO queues served by a fixed number of threads, spawned
//! on first use. Results go back to the loop through the [`Inbox`].
//!
//! Work comes in two classes, as in libuv: ordinary work (file system, user jobs) and *slow*
//! work (DNS lookups: a resolver that does not answer holds its thread for as long as it
//! likes). At most [`slow_limit`] threads run slow work at once; the rest of the slow work waits
//! in its own queue, so ordinary work always has a thread (with two threads or more). Jobs of
//! both classes start in submission order when they may start at all.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};

use crate::sync::lock;
use std::thread;

use super::inbox::{Inbox, JobOutput, Message};

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
    /// waiting: a busy thread checks the queue before it waits.
    idle: usize,
    shutdown: bool,
}

impl Jobs {
    /// The oldest job that may start now, and whether it is slow.
    fn next(&mut self) -> Option<(Queued, bool)> {
        let slow_ok = self.slow_running < self.slow_limit;
        let take_slow = match (self.queue.front(), self.slow.front()) {
            (_, None) => false,
            (None, Some(_)) => slow_ok,
            (Some(ordinary), Some(slow)) => slow_ok && slow.seq < ordinary.seq,
        };
        if take_slow {
            self.slow.pop_front().map(|job| (job, true))
        } else {
            self.queue.pop_front().map(|job| (job, false))
        }
    }
}

struct Shared {
    jobs: Mutex<Jobs>,
    ready: Condvar,
}

/// The pool. Dropping it lets the threads finish their current job and exit.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    threads: usize,
    spawned: usize,
}

impl Pool {
    pub(crate) fn new(threads: usize) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                jobs: Mutex::new(Jobs {
                    queue: VecDeque::new(),
                    slow: VecDeque::new(),
                    running: 0,
                    slow_running: 0,
                    slow_limit: slow_limit(threads),
                    idle: 0,
                    shutdown: false,
                }),
                ready: Condvar::new(),
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
        let (queued, idle) = {
            let mut jobs = lock(&self.shared.jobs);
            let job = Queued { key, seq, work };
            if slow {
                jobs.slow.push_back(job);
            } else {
                jobs.queue.push_back(job);
            }
            (jobs.queue.len() + jobs.slow.len() + jobs.running, jobs.idle)
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
        if idle > 0 {
            self.shared.ready.notify_one();
        }
        Ok(())
    }

    /// Takes the job `seq` out of the queues if it has not started: its work, to drop outside
    /// the lock, or `None` if it is running, done or unknown.
    pub(crate) fn cancel(&self, seq: u64) -> Option<Work> {
        let mut jobs = lock(&self.shared.jobs);
        let jobs = &mut *jobs;
        for queue in [&mut jobs.queue, &mut jobs.slow] {
            if let Some(at) = queue.iter().position(|job| job.seq == seq) {
                return queue.remove(at).map(|job| job.work);
            }
        }
        None
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
    loop {
        let (job, slow) = {
            let mut jobs = lock(&shared.jobs);
            loop {
                if jobs.shutdown {
                    return;
                }
                if let Some((job, slow)) = jobs.next() {
                    jobs.running += 1;
                    if slow {
                        jobs.slow_running += 1;
                    }
                    break (job, slow);
                }
                jobs.idle += 1;
                jobs = shared
                    .ready
                    .wait(jobs)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                jobs.idle -= 1;
            }
        };
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
