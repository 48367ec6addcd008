//! The one way into the loop from other threads: a queue plus the reactor's waker.
//!
//! Thread-pool completions and [`Handle::post`] callbacks are pushed here; the first push after
//! the loop drained the queue wakes the reactor, later ones ride on that wake, so a burst of
//! posts costs one wake-up and none is lost.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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

/// Shared between the loop and every handle and pool thread.
pub(crate) struct Inbox<Rt> {
    queue: Mutex<Queue<Rt>>,
    /// The most posts `queue` holds at once.
    post_limit: usize,
    wake_pending: AtomicBool,
    waker: Waker,
}

impl<Rt> Inbox<Rt> {
    pub(crate) fn new(waker: Waker, post_limit: usize) -> Arc<Inbox<Rt>> {
        Arc::new(Inbox {
            queue: Mutex::new(Queue {
                messages: VecDeque::new(),
                posts: 0,
                closed: false,
            }),
            post_limit,
            wake_pending: AtomicBool::new(false),
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
        if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                // The message is queued; the loop drains it at its next iteration anyway.
                log::warn!("runtime: waking the loop failed: {e}");
            }
        }
        Ok(())
    }

    /// Moves every queued message into `into` (which the caller keeps, so steady-state draining
    /// allocates nothing). Cheap when nothing was posted.
    pub(crate) fn drain_into(&self, into: &mut VecDeque<Message<Rt>>) {
        if self.wake_pending.swap(false, Ordering::AcqRel) {
            let mut queue = lock(&self.queue);
            std::mem::swap(&mut queue.messages, into);
            queue.posts = 0;
        }
    }

    /// Whether messages wait for the loop (it must not block before draining them).
    pub(crate) fn pending(&self) -> bool {
        self.wake_pending.load(Ordering::Acquire)
    }

    /// Refuses further messages and drops the queued ones.
    pub(crate) fn close(&self) {
        let dropped = {
            let mut queue = lock(&self.queue);
            queue.closed = true;
            std::mem::take(&mut queue.messages)
        };
        drop(dropped);
    }
}

impl<Rt: 'static> Schedule for Inbox<Rt> {
    fn schedule(&self, task: Arc<TaskHeader>, local: bool) {
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
        } else if !self.wake_pending.swap(true, Ordering::AcqRel) {
            if let Err(e) = self.waker.wake() {
                log::warn!("runtime: waking the loop failed: {e}");
            }
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
