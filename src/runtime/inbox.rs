//! The one way into the loop from other threads: a queue plus the reactor's waker.
//!
//! Thread-pool completions and [`Handle::post`] callbacks are pushed here; the first push after
//! the loop drained the queue wakes the reactor, later ones ride on that wake, so a burst of
//! posts costs one wake-up and none is lost. While the loop spins for a pool result (see
//! [`super::spin`]) a push does not wake the reactor at all: the loop is watching.

use std::any::Any;
use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use crate::sync::lock;

use super::task::{Schedule, TaskHeader};
use crate::Waker;

/// A callback posted from another thread.
pub(crate) type Posted<Rt> = Box<dyn FnOnce(&mut Rt) + Send>;

/// What a pool job produced: its value or its panic payload.
pub(crate) type JobOutput = std::thread::Result<Box<dyn Any + Send>>;

/// A message for the loop thread.
pub(crate) enum Message<Rt> {
    /// A [`Handle::post`] callback.
    Post(Posted<Rt>),
    /// A thread-pool job finished.
    Done(u64, JobOutput),
    /// A task was woken.
    Wake(Arc<TaskHeader>),
}

struct Queue<Rt> {
    messages: VecDeque<Message<Rt>>,
    /// Posts among `messages`.
    posts: usize,
    closed: bool,
}

/// Tasks woken on the loop's own thread, queued without a lock.
///
/// Only the loop's thread touches the queue: [`Inbox::schedule`] pushes to it only when the
/// waker runs on `loop_thread` (thread ids are never reused), and the runtime drains it from
/// that thread (`Runtime` is `!Send`). Each access is one short `&mut` borrow that calls no
/// user code, so no two borrows overlap.
struct LocalWakes {
    loop_thread: ThreadId,
    /// Set by [`Inbox::close`]: later wakes are dropped (the queue would keep their tasks'
    /// headers, and through them the inbox, alive).
    closed: AtomicBool,
    queue: UnsafeCell<VecDeque<Arc<TaskHeader>>>,
}

// SAFETY: `queue` is only accessed from `loop_thread` (see the type's docs; `push` and `take`
// check it), or through `&mut` when the inbox is dropped.
unsafe impl Sync for LocalWakes {}

impl LocalWakes {
    /// Queues `task` if the caller is the loop's thread; gives it back otherwise.
    fn push(&self, task: Arc<TaskHeader>, on_loop_thread: bool) -> Result<(), Arc<TaskHeader>> {
        if !on_loop_thread {
            return Err(task);
        }
        if self.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        debug_assert_eq!(thread::current().id(), self.loop_thread);
        // SAFETY: on the loop's thread (the waker checked its cached thread id against
        // `loop_thread`), and no other borrow of `queue` is live: `take` ends its borrow
        // before returning and neither calls out.
        unsafe { (*self.queue.get()).push_back(task) };
        Ok(())
    }

    /// Moves the queued tasks into `into` (kept by the caller: no allocation in steady state).
    fn take(&self, into: &mut VecDeque<Arc<TaskHeader>>) {
        if thread::current().id() != self.loop_thread {
            return;
        }
        // SAFETY: on the loop's thread (checked above); the borrow ends before returning.
        unsafe { std::ptr::swap(self.queue.get(), into) };
    }
}

/// Shared between the loop and every handle and pool thread.
pub(crate) struct Inbox<Rt> {
    queue: Mutex<Queue<Rt>>,
    local: LocalWakes,
    /// The most posts `queue` holds at once.
    post_limit: usize,
    wake_pending: AtomicBool,
    /// The loop is watching `wake_pending` instead of blocking in the reactor.
    loop_spinning: AtomicBool,
    waker: Waker,
}

impl<Rt> Inbox<Rt> {
    /// The inbox of a loop running on the calling thread.
    pub(crate) fn new(waker: Waker, post_limit: usize) -> Arc<Inbox<Rt>> {
        Arc::new(Inbox {
            local: LocalWakes {
                loop_thread: thread::current().id(),
                closed: AtomicBool::new(false),
                queue: UnsafeCell::new(VecDeque::new()),
            },
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                posts: 0,
                closed: false,
            }),
            post_limit,
            wake_pending: AtomicBool::new(false),
            loop_spinning: AtomicBool::new(false),
            waker,
        })
    }

    /// Queues a message and wakes the loop unless a wake is already on its way.
    pub(crate) fn push(&self, message: Message<Rt>) -> io::Result<()> {
        {
            let mut queue = lock(&self.queue);
            if queue.closed {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "the runtime is gone"));
            }
            if let Message::Post(_) = message {
                if queue.posts >= self.post_limit {
                    return Err(io::Error::new(
                        io::ErrorKind::QuotaExceeded,
                        format!(
                            "{} posts are waiting for the loop (the builder's post limit)",
                            queue.posts
                        ),
                    ));
                }
                queue.posts += 1;
            }
            queue.messages.push_back(message);
        }
        self.notify();
        Ok(())
    }

    /// After a message was queued: wakes the loop unless a wake is already on its way or the
    /// loop is spinning.
    ///
    /// With [`stop_spinning`](Inbox::stop_spinning), a Dekker handshake (all `SeqCst`): either
    /// this sees the loop spinning, and the loop then sees `wake_pending` before it blocks, or
    /// the loop has stopped spinning and this wakes it.
    fn notify(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) && !self.loop_spinning.load(Ordering::SeqCst) {
            if let Err(e) = self.waker.wake() {
                // The message is queued; the loop drains it at its next iteration anyway.
                log::warn!("runtime: waking the loop failed: {e}");
            }
        }
    }

    /// The loop watches [`pending`](Inbox::pending) instead of blocking: pushes do not wake
    /// the reactor until [`stop_spinning`](Inbox::stop_spinning).
    pub(crate) fn start_spinning(&self) {
        self.loop_spinning.store(true, Ordering::SeqCst);
    }

    /// The loop is about to block: whether messages arrived meanwhile (then it must not; a
    /// later push wakes the reactor).
    pub(crate) fn stop_spinning(&self) -> bool {
        self.loop_spinning.store(false, Ordering::SeqCst);
        self.wake_pending.load(Ordering::SeqCst)
    }

    /// Moves every queued message into `into` and the tasks woken from the loop's thread
    /// into `woken` (both kept by the caller, so steady-state draining allocates nothing).
    /// Cheap when nothing was posted or woken. Called on the loop's thread.
    pub(crate) fn drain_into(&self, into: &mut VecDeque<Message<Rt>>, woken: &mut VecDeque<Arc<TaskHeader>>) {
        // A plain load first: the locked swap only when something was posted.
        if self.wake_pending.load(Ordering::Acquire) && self.wake_pending.swap(false, Ordering::AcqRel) {
            self.local.take(woken);
            let mut queue = lock(&self.queue);
            if !queue.messages.is_empty() {
                std::mem::swap(&mut queue.messages, into);
                queue.posts = 0;
            }
        }
    }

    /// Whether messages wait for the loop (it must not block before draining them).
    pub(crate) fn pending(&self) -> bool {
        self.wake_pending.load(Ordering::Acquire)
    }

    /// Refuses further messages and drops the queued ones (and the local wakes, which hold
    /// the inbox through their tasks' headers). Called on the loop's thread.
    pub(crate) fn close(&self) {
        let dropped = {
            let mut queue = lock(&self.queue);
            queue.closed = true;
            std::mem::take(&mut queue.messages)
        };
        drop(dropped);
        self.local.closed.store(true, Ordering::Relaxed);
        let mut woken = VecDeque::new();
        self.local.take(&mut woken);
        drop(woken);
    }
}

impl<Rt: 'static> Schedule for Inbox<Rt> {
    fn schedule(&self, task: Arc<TaskHeader>, local: bool) {
        let Err(task) = self.local.push(task, local) else {
            // The loop drains its local wakes before it blocks: no wake-up needed.
            self.wake_pending.store(true, Ordering::Release);
            return;
        };
        {
            let mut queue = lock(&self.queue);
            if queue.closed {
                return;
            }
            queue.messages.push_back(Message::Wake(task));
        }
        if local {
            // The loop drains the inbox before it blocks: no wake-up needed.
            self.wake_pending.store(true, Ordering::Release);
        } else {
            self.notify();
        }
    }
}

/// A `Send + Sync` handle to a [`Runtime`](super::Runtime), for other threads.
///
/// [`post`](Handle::post) runs a callback on the loop thread and wakes the loop. Many posts
/// coalesce into few wake-ups; none is lost. Handles do not keep the loop alive.
///
/// ```
/// use portable_reactor::runtime::Runtime;
/// use std::sync::mpsc;
///
/// let mut rt = Runtime::new()?;
/// let handle = rt.handle();
/// let (tx, rx) = mpsc::channel();
/// // Keep the loop alive until the post arrives.
/// let keepalive = rt.set_timeout(std::time::Duration::from_secs(5), |_| {});
/// std::thread::spawn(move || {
///     handle.post(move |rt| {
///         rt.clear_timer(keepalive);
///         tx.send(std::thread::current().id()).unwrap();
///     })
/// });
/// rt.run()?;
/// assert_eq!(rx.recv().unwrap(), std::thread::current().id());
/// # std::io::Result::Ok(())
/// ```
pub struct Handle<Rt> {
    inbox: Arc<Inbox<Rt>>,
}

impl<Rt> Handle<Rt> {
    pub(crate) fn new(inbox: Arc<Inbox<Rt>>) -> Self {
        Handle { inbox }
    }

    /// Runs `callback` on the loop thread, at the loop's next poll phase.
    ///
    /// # Errors
    ///
    /// `ErrorKind::BrokenPipe` if the runtime was dropped; `ErrorKind::QuotaExceeded` if the
    /// builder's [`post_limit`](super::Builder::post_limit) callbacks are already waiting for
    /// the loop (retry after the loop has run). Either way the callback is dropped unrun.
    pub fn post(&self, callback: impl FnOnce(&mut Rt) + Send + 'static) -> io::Result<()> {
        self.inbox.push(Message::Post(Box::new(callback)))
    }
}

impl<Rt> Clone for Handle<Rt> {
    fn clone(&self) -> Self {
        Handle {
            inbox: self.inbox.clone(),
        }
    }
}

impl<Rt> fmt::Debug for Handle<Rt> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle")
    }
}
