//! [`Local`]: what tasks reach of the runtime without `&mut Runtime` (and without a
//! thread-local): spawning, deferring work to the loop, timers.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::Instant;

use super::task::{self, JoinHandle, Schedule, Tasks};
use super::time::Time;
use super::{Callback, Runtime};
use crate::{DefaultReactor, Reactor};

/// What the runtime shares with its [`Local`] handles.
pub(crate) struct Shared<R: Reactor + 'static> {
    pub(crate) tasks: RefCell<Tasks>,
    /// Work for the loop from where no `&mut Runtime` is at hand (a task, a `Drop`): run after
    /// the current callback or task, as next-ticks are.
    pub(crate) deferred: RefCell<VecDeque<Callback<R>>>,
    pub(crate) loop_thread: ThreadId,
    pub(crate) scheduler: Arc<dyn Schedule>,
    /// The loop time ([`Runtime::now`]): refreshed before timers run and after each poll, and
    /// read by `Async` to judge activity without a clock read per operation.
    pub(crate) now: Cell<Instant>,
}

impl<R: Reactor + 'static> Shared<R> {
    pub(crate) fn new(loop_thread: ThreadId, scheduler: Arc<dyn Schedule>, now: Instant) -> Rc<Shared<R>> {
        Rc::new(Shared {
            tasks: RefCell::new(Tasks::new()),
            deferred: RefCell::new(VecDeque::new()),
            loop_thread,
            scheduler,
            now: Cell::new(now),
        })
    }
}

/// A handle to the runtime for tasks, from [`Runtime::local`]: spawn more tasks, run a
/// callback with `&mut Runtime`, reach the timers. Cheap to clone; not `Send`.
///
/// ```
/// use portable_reactor::runtime::Runtime;
/// let mut rt = Runtime::new()?;
/// let local = rt.local();
/// let total = rt.block_on(async move {
///     let parts: Vec<_> = (1..=3).map(|n| local.spawn(async move { n * 10 })).collect();
///     let mut total = 0;
///     for part in parts {
///         total += part.await.unwrap();
///     }
///     total
/// })?;
/// assert_eq!(total, 60);
/// # std::io::Result::Ok(())
/// ```
pub struct Local<R: Reactor + 'static = DefaultReactor> {
    pub(crate) shared: Rc<Shared<R>>,
    time: Time<R>,
}

impl<R: Reactor + 'static> Clone for Local<R> {
    fn clone(&self) -> Self {
        Local {
            shared: self.shared.clone(),
            time: self.time.clone(),
        }
    }
}

impl<R: Reactor + 'static> fmt::Debug for Local<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local").finish_non_exhaustive()
    }
}

impl<R: Reactor + 'static> Runtime<R> {
    /// The handle tasks use to reach this runtime.
    pub fn local(&self) -> Local<R> {
        Local {
            shared: self.shared.clone(),
            time: self.time(),
        }
    }

    /// Runs the deferred callbacks (after next-ticks, as part of draining them).
    pub(super) fn run_deferred(&mut self) -> bool {
        let next = self.shared.deferred.borrow_mut().pop_front();
        match next {
            Some(callback) => {
                callback(self);
                true
            }
            None => false,
        }
    }
}

impl<R: Reactor + 'static> Local<R> {
    /// As [`Runtime::spawn_local`], from a task.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        task::spawn_in(&self.shared, future)
    }

    /// Runs `callback` with the runtime as soon as the current callback or task returns
    /// (with the next-ticks), e.g. to start a watch or a timer callback from a task.
    pub fn defer(&self, callback: impl FnOnce(&mut Runtime<R>) + 'static) {
        self.shared.deferred.borrow_mut().push_back(Box::new(callback));
    }

    /// The timers: [`Time::sleep`], [`Time::timeout`], [`Time::interval`].
    pub fn time(&self) -> &Time<R> {
        &self.time
    }
}
