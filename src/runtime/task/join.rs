//! [`JoinHandle`]: a task's result, as a future.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::waker::TaskHeader;

/// What a task's owner and the runtime share about its end.
pub(crate) struct JoinState<T> {
    result: Option<io::Result<T>>,
    finished: bool,
    aborted: bool,
    waiter: Option<Waker>,
}

impl<T> JoinState<T> {
    pub(crate) fn new() -> Rc<RefCell<JoinState<T>>> {
        Rc::new(RefCell::new(JoinState {
            result: None,
            finished: false,
            aborted: false,
            waiter: None,
        }))
    }
}

/// The runtime's side of a task's [`JoinState`], type-erased.
pub(crate) trait Completion {
    /// Ends the task with `result` (the first end wins) and wakes whoever awaits it.
    fn finish(&self, result: Option<io::Error>);
    /// Whether [`JoinHandle::abort`] was called.
    fn aborted(&self) -> bool;
}

/// Ends a task with its output.
pub(crate) fn complete<T>(state: &RefCell<JoinState<T>>, output: T) {
    let waiter = {
        let mut s = state.borrow_mut();
        if s.finished {
            return;
        }
        s.finished = true;
        s.result = Some(Ok(output));
        s.waiter.take()
    };
    if let Some(waiter) = waiter {
        waiter.wake();
    }
}

impl<T> Completion for RefCell<JoinState<T>> {
    fn finish(&self, error: Option<io::Error>) {
        let waiter = {
            let mut s = self.borrow_mut();
            if s.finished {
                return;
            }
            s.finished = true;
            if let Some(error) = error {
                s.result = Some(Err(error));
            }
            s.waiter.take()
        };
        if let Some(waiter) = waiter {
            waiter.wake();
        }
    }

    fn aborted(&self) -> bool {
        self.borrow().aborted
    }
}

/// A task spawned with [`Runtime::spawn_local`](super::super::Runtime::spawn_local): a
/// future of its output.
///
/// Dropping the handle detaches the task (it runs on). [`abort`](JoinHandle::abort) cancels
/// it: the task's future is dropped at the loop's next poll phase, and the handle resolves to
/// `ErrorKind::Interrupted`. A task that panicked resolves to `ErrorKind::Other` with the
/// panic message, as [`spawn_blocking`](super::super::Runtime::spawn_blocking) jobs do.
#[must_use = "dropping a JoinHandle detaches the task; await it or call abort"]
pub struct JoinHandle<T> {
    pub(crate) state: Rc<RefCell<JoinState<T>>>,
    pub(crate) header: Arc<TaskHeader>,
}

impl<T> JoinHandle<T> {
    /// Cancels the task if it has not finished: its future is dropped at the loop's next poll
    /// phase (never while it is being polled), and this handle resolves to
    /// `ErrorKind::Interrupted`. A finished task is left as it is.
    pub fn abort(&self) {
        let mut s = self.state.borrow_mut();
        if s.finished {
            return;
        }
        s.aborted = true;
        drop(s);
        std::task::Wake::wake_by_ref(&self.header);
    }

    /// Whether the task has finished (completed, panicked or aborted).
    pub fn is_finished(&self) -> bool {
        self.state.borrow().finished
    }

    /// The result, once finished (taken: a second call gives `None`).
    pub(crate) fn take(&self) -> Option<io::Result<T>> {
        self.state.borrow_mut().result.take()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let mut s = self.state.borrow_mut();
        if s.finished {
            return Poll::Ready(
                s.result
                    .take()
                    .unwrap_or_else(|| Err(io::Error::other("the task's result was already taken"))),
            );
        }
        match &mut s.waiter {
            Some(w) if w.will_wake(cx.waker()) => {}
            waiter => *waiter = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}
