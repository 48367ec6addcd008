//! The thread pool for blocking work: a FIFO queue served by a fixed number of threads, spawned
//! on first use. Results go back to the loop through the [`Inbox`].

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};

use crate::sync::lock;
use std::thread;

use super::inbox::{Inbox, JobOutput, Message};
use super::{panic_message, Runtime};
use crate::Reactor;
use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

/// A job: computes a boxed value on a pool thread.
pub(crate) type Work = Box<dyn FnOnce() -> Box<dyn std::any::Any + Send> + Send>;

struct Jobs {
    queue: VecDeque<(u64, Work)>,
    running: usize,
    /// Threads waiting on the condvar. A job is announced (a futex syscall) only when one is
    /// waiting: a busy thread checks the queue before it waits.
    idle: usize,
    shutdown: bool,
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
                    running: 0,
                    idle: 0,
                    shutdown: false,
                }),
                ready: Condvar::new(),
            }),
            threads,
            spawned: 0,
        }
    }

    /// Queues `work`; its output reaches `inbox` as `Message::Done(id, ..)`.
    ///
    /// # Errors
    ///
    /// The OS error if no pool thread could be started at all.
    pub(crate) fn submit<Rt: 'static>(
        &mut self,
        id: u64,
        work: Work,
        inbox: &Arc<Inbox<Rt>>,
    ) -> std::io::Result<()> {
        let (queued, idle) = {
            let mut jobs = lock(&self.shared.jobs);
            jobs.queue.push_back((id, work));
            (jobs.queue.len() + jobs.running, jobs.idle)
        };
        if self.spawned < self.threads && queued > self.spawned {
            if let Err(e) = self.spawn(inbox) {
                if self.spawned == 0 {
                    lock(&self.shared.jobs).queue.retain(|(job, _)| *job != id);
                    return Err(e);
                }
                log::warn!(
                    "runtime: pool thread {} not started ({e}); {} keep serving",
                    self.spawned,
                    self.spawned
                );
                self.threads = self.spawned;
            }
        }
        if idle > 0 {
            self.shared.ready.notify_one();
        }
        Ok(())
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

    /// (queued, running) jobs.
    pub(crate) fn load(&self) -> (usize, usize) {
        let jobs = lock(&self.shared.jobs);
        (jobs.queue.len(), jobs.running)
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
        let (id, work) = {
            let mut jobs = lock(&shared.jobs);
            loop {
                if jobs.shutdown {
                    return;
                }
                if let Some(job) = jobs.queue.pop_front() {
                    jobs.running += 1;
                    break job;
                }
                jobs.idle += 1;
                jobs = shared
                    .ready
                    .wait(jobs)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                jobs.idle -= 1;
            }
        };
        let output: JobOutput = catch_unwind(AssertUnwindSafe(work));
        lock(&shared.jobs).running -= 1;
        // A closed inbox means the runtime is gone: the result has nowhere to go.
        let _ = inbox.push(Message::Done(id, output));
    }
}
impl<R: Reactor + 'static> Runtime<R> {
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
        let work: Work = Box::new(move || Box::new(work()) as Box<dyn Any + Send>);
        if let Err(e) = self.pool.submit(key as u64, work, &self.inbox) {
            drop(self.jobs.remove(key));
            return Err(e);
        }
        Ok(())
    }

    /// [`spawn_blocking`](Runtime::spawn_blocking) as a future, for tasks: resolves to the
    /// job's value, or `ErrorKind::Other` if it panicked. The job keeps the loop alive until
    /// its result is in; dropping the future does not cancel a job already started (its result
    /// is dropped).
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// let mut rt = Runtime::new()?;
    /// let job = rt.spawn_blocking_future(|| (1..=5u32).product::<u32>())?;
    /// assert_eq!(rt.block_on(job)??, 120);
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`spawn_blocking`](Runtime::spawn_blocking).
    pub fn spawn_blocking_future<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<BlockingJob<T>> {
        let slot: Rc<RefCell<JobSlot<T>>> = Rc::new(RefCell::new(JobSlot {
            result: None,
            waiter: None,
        }));
        let filled = slot.clone();
        self.spawn_blocking(work, move |_, result| {
            let waiter = {
                let mut s = filled.borrow_mut();
                s.result = Some(result);
                s.waiter.take()
            };
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        })?;
        Ok(BlockingJob { slot })
    }
}

struct JobSlot<T> {
    result: Option<io::Result<T>>,
    waiter: Option<std::task::Waker>,
}

/// A pool job's result as a future, from [`Runtime::spawn_blocking_future`].
#[must_use = "futures do nothing unless awaited"]
pub struct BlockingJob<T> {
    slot: Rc<RefCell<JobSlot<T>>>,
}

impl<T> std::future::Future for BlockingJob<T> {
    type Output = io::Result<T>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<T>> {
        let mut s = self.slot.borrow_mut();
        match s.result.take() {
            Some(result) => std::task::Poll::Ready(result),
            None => {
                if !s.waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waiter = Some(cx.waker().clone());
                }
                std::task::Poll::Pending
            }
        }
    }
}

impl<T> std::fmt::Debug for BlockingJob<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingJob")
            .field("done", &self.slot.borrow().result.is_some())
            .finish()
    }
}
