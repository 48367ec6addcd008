//! Time for tasks: [`Time`] gives `sleep`, `sleep_until`, `timeout` and `interval` futures on
//! the runtime's own timer queue (the same one `set_timeout` uses: same precision, same
//! batching, never early), without a thread-local runtime: a task takes the handle with it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::timer_box::{Timer, TimerBox};
use super::timers::TimerQueue;
use super::{deadline_after, Runtime, TimerId};
use crate::{DefaultReactor, Reactor};

type Queue<R> = Rc<RefCell<TimerQueue<TimerBox<R>>>>;

/// A handle to the runtime's timers for tasks, from [`Runtime::time`]. Cheap to clone; not
/// `Send` (tasks run on the loop's thread).
///
/// ```
/// use portable_reactor::runtime::Runtime;
/// use std::time::{Duration, Instant};
///
/// let mut rt = Runtime::new()?;
/// let time = rt.time();
/// let start = Instant::now();
/// rt.block_on(async move {
///     time.sleep(Duration::from_millis(5)).await;
///     let slow = time.sleep(Duration::from_secs(60));
///     let err = time.timeout(Duration::from_millis(5), slow).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
/// })?;
/// assert!(start.elapsed() >= Duration::from_millis(10));
/// # std::io::Result::Ok(())
/// ```
pub struct Time<R: Reactor + 'static = DefaultReactor> {
    timers: Queue<R>,
}

impl<R: Reactor + 'static> Clone for Time<R> {
    fn clone(&self) -> Self {
        Time {
            timers: self.timers.clone(),
        }
    }
}

impl<R: Reactor + 'static> fmt::Debug for Time<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Time").finish_non_exhaustive()
    }
}

impl<R: Reactor + 'static> Runtime<R> {
    /// The time futures' handle: [`Time::sleep`], [`Time::timeout`], [`Time::interval`].
    pub fn time(&self) -> Time<R> {
        Time {
            timers: self.timers.clone(),
        }
    }
}

impl<R: Reactor + 'static> Time<R> {
    /// A future that completes `duration` from now (at once for zero), never earlier. Its
    /// timer keeps the loop alive while it is pending, as `set_timeout`'s does; dropping the
    /// future clears it.
    pub fn sleep(&self, duration: Duration) -> Sleep<R> {
        self.sleep_until(deadline_after(Instant::now(), duration))
    }

    /// A future that completes at `deadline`, never earlier.
    pub fn sleep_until(&self, deadline: Instant) -> Sleep<R> {
        Sleep {
            timers: self.timers.clone(),
            deadline,
            armed: None,
        }
    }

    /// Runs `future` for at most `duration`: its output, or `ErrorKind::TimedOut` once the
    /// time is up (the future is dropped then, so a per-operation timeout cancels only that
    /// operation: a read given up on does not close its connection).
    pub fn timeout<F: Future>(&self, duration: Duration, future: F) -> Timeout<F, R> {
        Timeout {
            future,
            sleep: self.sleep(duration),
        }
    }

    /// A stream of ticks every `period` (at least a millisecond), the first one `period` from
    /// now; a late tick does not cause a burst of catch-up ticks (each is due a period after
    /// the previous one completed, as `set_interval`).
    pub fn interval(&self, period: Duration) -> Interval<R> {
        let period = period.max(super::MIN_DELAY);
        Interval {
            period,
            sleep: self.sleep(period),
        }
    }
}

/// What a sleep's timer shares with it.
struct Alarm {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The queued timer of a [`Sleep`]: marks it fired and wakes its task.
struct WakeTimer(Rc<Alarm>);

impl<R: Reactor + 'static> Timer<R> for WakeTimer {
    fn fire(self, _rt: &mut Runtime<R>) -> Option<(Instant, Self)> {
        self.0.fired.set(true);
        if let Some(waker) = self.0.waker.borrow_mut().take() {
            waker.wake();
        }
        None
    }
}

/// A future from [`Time::sleep`] or [`Time::sleep_until`].
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep<R: Reactor + 'static = DefaultReactor> {
    timers: Queue<R>,
    deadline: Instant,
    /// The queued timer, once polled.
    armed: Option<(TimerId, Rc<Alarm>)>,
}

impl<R: Reactor + 'static> Sleep<R> {
    /// When it completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves the deadline (the timer is re-queued at the next poll).
    pub fn reset(&mut self, deadline: Instant) {
        self.disarm();
        self.deadline = deadline;
    }

    fn disarm(&mut self) {
        if let Some((id, alarm)) = self.armed.take() {
            if !alarm.fired.get() {
                self.timers.borrow_mut().cancel(id);
            }
        }
    }
}

impl<R: Reactor + 'static> Future for Sleep<R> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        match &this.armed {
            Some((_, alarm)) if alarm.fired.get() => return Poll::Ready(()),
            Some((_, alarm)) => {
                let mut waker = alarm.waker.borrow_mut();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            None => {}
        }
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        let alarm = Rc::new(Alarm {
            fired: Cell::new(false),
            waker: RefCell::new(Some(cx.waker().clone())),
        });
        let id = this
            .timers
            .borrow_mut()
            .insert(this.deadline, TimerBox::new(WakeTimer(alarm.clone())));
        this.armed = Some((id, alarm));
        Poll::Pending
    }
}

impl<R: Reactor + 'static> Drop for Sleep<R> {
    fn drop(&mut self) {
        self.disarm();
    }
}

impl<R: Reactor + 'static> fmt::Debug for Sleep<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// A future from [`Time::timeout`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Timeout<F, R: Reactor + 'static = DefaultReactor> {
    future: F,
    sleep: Sleep<R>,
}

impl<F: Future, R: Reactor + 'static> Future for Timeout<F, R> {
    type Output = io::Result<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<F::Output>> {
        // SAFETY: `future` is structurally pinned: it is never moved out of `self` (no method
        // hands it out by value and `Timeout` has no `Drop` that moves it), and `sleep` is
        // `Unpin`, so it is only ever accessed through the pinned projection below.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.future` stays where it is for as long as `self` is pinned.
        let future = unsafe { Pin::new_unchecked(&mut this.future) };
        if let Poll::Ready(output) = future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match Pin::new(&mut this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the operation did not complete before its timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks from [`Time::interval`]: `interval.tick().await`.
#[derive(Debug)]
pub struct Interval<R: Reactor + 'static = DefaultReactor> {
    period: Duration,
    sleep: Sleep<R>,
}

impl<R: Reactor + 'static> Interval<R> {
    /// Waits for the next tick and returns when it was due.
    pub async fn tick(&mut self) -> Instant {
        (&mut self.sleep).await;
        let due = self.sleep.deadline();
        self.sleep.reset(deadline_after(Instant::now(), self.period));
        due
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }
}
