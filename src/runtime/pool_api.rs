//! The pool's API on [`Runtime`]: [`spawn_blocking`](Runtime::spawn_blocking), its slow class,
//! futures and cancellation.

use std::any::Any;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use super::inbox::JobOutput;
use super::pool::Work;
use super::{panic_message, Runtime};
use crate::Reactor;

/// A pool job, from [`Runtime::spawn_blocking`]: what [`Runtime::cancel_blocking`] takes.
///
/// Ids are unique per runtime (slots are reused, ids are not), so the id of a job that has
/// finished never names a later one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobId {
    key: u64,
    seq: u64,
}

impl<R: Reactor + 'static> Runtime<R> {
    /// Runs `work` on the thread pool and `callback` with its result on the loop thread.
    ///
    /// Jobs start in submission order. A job that panics gives its callback an error of
    /// `ErrorKind::Other` with the panic message; the pool keeps its threads. A job cancelled
    /// with [`cancel_blocking`](Runtime::cancel_blocking) before it started gives its callback
    /// `ErrorKind::Interrupted`.
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
    ) -> io::Result<JobId> {
        self.submit_job(work, callback, false)
    }

    /// [`spawn_blocking`](Runtime::spawn_blocking) for *slow* work: work that may block for
    /// long on something outside the machine, like a DNS lookup (which
    /// [`net::dns`](crate::net::dns) runs here). At most half the pool's threads (at least one)
    /// run slow work at once; the rest of it waits, in submission order, while ordinary work
    /// (the file system, [`spawn_blocking`](Runtime::spawn_blocking)) keeps the other threads.
    /// This is libuv's cap on "slow I/O", after Node's bug where hung lookups starved `fs`.
    ///
    /// With a pool of one thread, slow work can still hold it: give the builder two threads or
    /// more when lookups may hang.
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// let mut rt = Runtime::builder().threads(2).build()?;
    /// let (release, hold) = std::sync::mpsc::channel::<()>();
    /// // A lookup that hangs holds one of the two threads...
    /// rt.spawn_blocking_slow(move || hold.recv().ok(), |_, _| {})?;
    /// // ...another slow job waits for it, not for the second thread...
    /// rt.spawn_blocking_slow(|| (), |_, _| {})?;
    /// // ...which ordinary work gets at once.
    /// rt.spawn_blocking(|| 42, move |_, v| {
    ///     assert_eq!(v.unwrap(), 42);
    ///     release.send(()).unwrap();
    /// })?;
    /// rt.run()?;
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`spawn_blocking`](Runtime::spawn_blocking).
    pub fn spawn_blocking_slow<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        callback: impl FnOnce(&mut Self, io::Result<T>) + 'static,
    ) -> io::Result<JobId> {
        self.submit_job(work, callback, true)
    }

    fn submit_job<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        callback: impl FnOnce(&mut Self, io::Result<T>) + 'static,
        slow: bool,
    ) -> io::Result<JobId> {
        let seq = self.next_job;
        self.next_job = self.next_job.wrapping_add(1);
        let key = self.jobs.insert((
            seq,
            Box::new(move |rt: &mut Self, output: Option<JobOutput>| {
                let result = match output {
                    None => Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "blocking job cancelled before it started",
                    )),
                    Some(Ok(value)) => match value.downcast::<T>() {
                        Ok(value) => Ok(*value),
                        Err(_) => Err(io::Error::other("blocking job returned a value of another type")),
                    },
                    Some(Err(panic)) => Err(io::Error::other(format!(
                        "blocking job panicked: {}",
                        panic_message(&*panic)
                    ))),
                };
                callback(rt, result);
            }),
        ));
        let work: Work = Box::new(move || Box::new(work()) as Box<dyn Any + Send>);
        if let Err(e) = self.pool.submit(key as u64, seq, work, slow, &self.inbox) {
            drop(self.jobs.remove(key));
            return Err(e);
        }
        Ok(JobId { key: key as u64, seq })
    }

    /// Cancels a pool job that has not started (libuv's `uv_cancel`): it will not run, and its
    /// callback gets `ErrorKind::Interrupted`, once, in the next pending phase (never from
    /// inside this call). Until then the job counts in [`Stats::pool_pending`](super::Stats)
    /// and keeps the loop alive; it leaves [`Stats::pool_queued`](super::Stats) at once.
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// use std::io::ErrorKind;
    /// let mut rt = Runtime::builder().threads(1).build()?;
    /// let (release, hold) = std::sync::mpsc::channel::<()>();
    /// rt.spawn_blocking(move || hold.recv().ok(), |_, _| {})?;
    /// let queued = rt.spawn_blocking(|| unreachable!("cancelled"), |_, r: std::io::Result<()>| {
    ///     assert_eq!(r.unwrap_err().kind(), ErrorKind::Interrupted);
    /// })?;
    /// rt.cancel_blocking(queued)?;
    /// release.send(()).unwrap();
    /// rt.run()?;
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// - `ErrorKind::ResourceBusy` if the job is running, or has finished and its result is on
    ///   its way to the loop: it cannot be cancelled, and its callback gets its result.
    /// - `ErrorKind::NotFound` if its callback has run already, or it was cancelled already,
    ///   or the id is another runtime's.
    pub fn cancel_blocking(&mut self, id: JobId) -> io::Result<()> {
        let known = usize::try_from(id.key)
            .ok()
            .filter(|&key| self.jobs.get(key).is_some_and(|(seq, _)| *seq == id.seq));
        let Some(key) = known else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "no such blocking job (its callback ran, or it was cancelled already)",
            ));
        };
        let Some(work) = self.pool.cancel(id.seq) else {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "blocking job already running (or finished): it cannot be cancelled",
            ));
        };
        drop(work);
        let (_, callback) = self.jobs.remove(key);
        self.cancelled_jobs += 1;
        log::debug!("runtime: blocking job {} cancelled", id.seq);
        self.pending.push_back(Box::new(move |rt: &mut Self| {
            rt.cancelled_jobs -= 1;
            callback(rt, None);
        }));
        Ok(())
    }

    /// [`spawn_blocking`](Runtime::spawn_blocking) as a future, for tasks: resolves to the
    /// job's value, `ErrorKind::Other` if it panicked, or `ErrorKind::Interrupted` if it was
    /// cancelled ([`BlockingJob::id`]). The job keeps the loop alive until its result is in;
    /// dropping the future does not cancel the job (its result is dropped).
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
        let id = self.spawn_blocking(work, move |_, result| {
            let waiter = {
                let mut s = filled.borrow_mut();
                s.result = Some(result);
                s.waiter.take()
            };
            if let Some(waiter) = waiter {
                waiter.wake();
            }
        })?;
        Ok(BlockingJob { slot, id })
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
    id: JobId,
}

impl<T> BlockingJob<T> {
    /// The job's id, for [`Runtime::cancel_blocking`].
    pub fn id(&self) -> JobId {
        self.id
    }
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
            .field("id", &self.id)
            .field("done", &self.slot.borrow().result.is_some())
            .finish()
    }
}
