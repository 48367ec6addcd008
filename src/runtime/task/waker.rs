//! Task wakers: one `Arc` per task, so waking allocates nothing.
//!
//! A wake queues the task in the runtime's [`Inbox`](super::super::inbox) once (a flag makes
//! further wakes before it runs free). From the loop's own thread that is a push onto a queue
//! only that thread touches (no lock, no syscall): the loop drains it before it blocks. From
//! another thread it is the inbox's coalesced path: the first message after a drain wakes the
//! reactor.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Wake;
use std::thread::{self, ThreadId};

/// Where a woken task is queued (the runtime's inbox, type-erased).
pub(crate) trait Schedule: Send + Sync {
    /// Queues `task`; `local` says the caller is the loop's thread (no reactor wake needed).
    fn schedule(&self, task: Arc<TaskHeader>, local: bool);
}

/// What a task's waker points at.
pub(crate) struct TaskHeader {
    /// The task's slot in the runtime's task table (checked against this header on use).
    pub(crate) index: usize,
    /// Queued and not yet polled: further wakes do nothing.
    pub(crate) queued: AtomicBool,
    loop_thread: ThreadId,
    scheduler: Arc<dyn Schedule>,
}

impl TaskHeader {
    pub(crate) fn new(index: usize, loop_thread: ThreadId, scheduler: Arc<dyn Schedule>) -> TaskHeader {
        TaskHeader {
            index,
            queued: AtomicBool::new(false),
            loop_thread,
            scheduler,
        }
    }
}

thread_local! {
    /// This thread's id, read once: `thread::current()` takes and drops a reference count
    /// (two atomic operations) on every call, and a wake asks for it each time. Immutable.
    static THREAD_ID: ThreadId = thread::current().id();
}

impl Wake for TaskHeader {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::AcqRel) {
            // A thread being torn down has no id to read: it is not the loop's thread (the loop
            // thread outlives its runtime's wakes from the loop).
            let local = THREAD_ID.try_with(|id| *id == self.loop_thread).unwrap_or(false);
            self.scheduler.schedule(self.clone(), local);
        }
    }
}
