//! Tasks: futures on the loop's thread, beside callbacks.
//!
//! A task is a `!Send` future the loop polls in its poll phase, after the I/O callbacks, pool
//! results and posts that came with the same poll (next-ticks drain after each task, as they
//! do after every callback; like promises in Node). Its waker queues it through the runtime's
//! inbox: from the loop's thread without a syscall, from another thread with the inbox's one
//! coalesced reactor wake. A task woken many times before it runs is polled once.

mod join;
mod waker;

use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

pub use join::JoinHandle;
pub(crate) use waker::{Schedule, TaskHeader};

use join::{Completion, JoinState};

use super::iteration::RunMode;
use super::local::Shared;
use super::{panic_message, Runtime};
use crate::Reactor;

/// A live task: its future (out while it is polled) and how to end it.
pub(crate) struct TaskSlot {
    future: Option<Pin<Box<dyn Future<Output = ()>>>>,
    header: Arc<TaskHeader>,
    completion: Rc<dyn Completion>,
}

impl<R: Reactor + 'static> Runtime<R> {
    /// Runs `future` as a task on the loop's thread; the [`JoinHandle`] is a future of its
    /// output (`!Send` futures are fine: the task never leaves this thread).
    ///
    /// The task is first polled in the next poll phase, and after that whenever its waker is
    /// woken. It does not keep [`run`](Runtime::run) going by itself (as a pending promise
    /// does not keep Node going): what it waits for does, e.g. a pool job or a post.
    ///
    /// ```
    /// use portable_reactor::runtime::Runtime;
    /// let mut rt = Runtime::new()?;
    /// let answer = rt.spawn_local(async { 6 * 7 });
    /// let doubled = rt.block_on(async move { answer.await.map(|n| n * 2) })??;
    /// assert_eq!(doubled, 84);
    /// # std::io::Result::Ok(())
    /// ```
    pub fn spawn_local<F>(&mut self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        spawn_in(&self.shared, future)
    }

    /// Runs the loop until `future` completes and returns its output: the future runs as a
    /// task (see [`spawn_local`](Runtime::spawn_local)) among everything else the loop holds.
    ///
    /// While the future is pending the loop keeps running even with nothing else referenced
    /// (blocking in the poll phase until a wake, e.g. from another thread); a future that
    /// nothing can wake blocks forever, as with any executor. Do not call it from a callback
    /// or a task of the same runtime.
    ///
    /// # Errors
    ///
    /// The reactor's poll error; `ErrorKind::Other` if the future panicked (with the panic
    /// message); `ErrorKind::Interrupted` if [`stop`](Runtime::stop) was called first (the
    /// future is dropped).
    pub fn block_on<F>(&mut self, future: F) -> io::Result<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let handle = self.spawn_local(future);
        self.blocking_on += 1;
        let result = loop {
            if handle.is_finished() {
                break handle
                    .take()
                    .unwrap_or_else(|| Err(io::Error::other("the task's result was already taken")));
            }
            if self.stopped {
                self.stopped = false;
                handle.abort();
                break Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "stop() was called before the future completed",
                ));
            }
            self.run_ticks();
            if let Err(e) = self.iterate(RunMode::Once) {
                break Err(e);
            }
        };
        self.blocking_on -= 1;
        result
    }

    /// Tasks not finished yet.
    pub(crate) fn live_tasks(&self) -> usize {
        self.shared.tasks.borrow().len()
    }

    /// Polls a woken task (the poll phase, from the inbox).
    pub(super) fn poll_task(&mut self, header: Arc<TaskHeader>) {
        header.queued.store(false, Ordering::Release);
        let index = header.index;
        let taken = {
            let mut tasks = self.shared.tasks.borrow_mut();
            let Some(slot) = tasks.get_mut(index).filter(|s| Arc::ptr_eq(&s.header, &header)) else {
                return;
            };
            if slot.completion.aborted() {
                Err(tasks.remove(index))
            } else {
                match slot.future.take() {
                    Some(future) => Ok(future),
                    None => return,
                }
            }
        };
        let mut future = match taken {
            Ok(future) => future,
            Err(slot) => {
                // Dropped outside the table's borrow: the future's drop may spawn or defer.
                drop(slot.future);
                slot.completion.finish(Some(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "the task was aborted",
                )));
                return;
            }
        };
        let waker = Waker::from(header);
        let mut cx = Context::from_waker(&waker);
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx)));
        match polled {
            Ok(Poll::Pending) => {
                if let Some(slot) = self.shared.tasks.borrow_mut().get_mut(index) {
                    slot.future = Some(future);
                }
            }
            Ok(Poll::Ready(())) => {
                drop(future);
                let slot = self.shared.tasks.borrow_mut().remove(index);
                drop(slot);
            }
            Err(panic) => {
                drop(future);
                let slot = self.shared.tasks.borrow_mut().remove(index);
                log::error!("runtime: task {index} panicked");
                slot.completion.finish(Some(io::Error::other(format!(
                    "task panicked: {}",
                    panic_message(&*panic)
                ))));
            }
        }
        self.run_ticks();
    }
}

/// Spawns `future` into the task table of `shared` (see [`Runtime::spawn_local`]).
pub(crate) fn spawn_in<R, F>(shared: &Shared<R>, future: F) -> JoinHandle<F::Output>
where
    R: Reactor + 'static,
    F: Future + 'static,
    F::Output: 'static,
{
    let state = JoinState::new();
    let done = state.clone();
    let task = async move {
        let output = future.await;
        join::complete(&done, output);
    };
    let header = {
        let mut tasks = shared.tasks.borrow_mut();
        let entry = tasks.vacant_entry();
        let header = Arc::new(TaskHeader::new(
            entry.key(),
            shared.loop_thread,
            shared.scheduler.clone(),
        ));
        entry.insert(TaskSlot {
            future: Some(Box::pin(task)),
            header: header.clone(),
            completion: state.clone(),
        });
        header
    };
    header.wake_by_ref();
    JoinHandle { state, header }
}

/// Keeps the task table's type in one place.
pub(crate) type Tasks = slab::Slab<TaskSlot>;
