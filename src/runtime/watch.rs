//! What a watch holds (its source and callback, type-erased) and the options it is made with.

use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use super::stored_entry::{Payload, StoredEntry};
use super::Runtime;
use crate::{AsSource, BorrowedSource, Event, EventId, Reactor};

/// How a persistent watch is re-armed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trigger {
    /// Edge-triggered where the backend supports it (epoll, kqueue): no syscall per event, and
    /// the callback must read or write until `WouldBlock`. Elsewhere level-triggered, and where
    /// neither exists, a oneshot registration re-armed after each callback.
    #[default]
    Edge,
    /// Level-triggered (reported while ready), or oneshot re-armed after each callback where the
    /// backend lacks level.
    Level,
}

/// The deadline a watch asks for.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) enum Timeout {
    /// The builder's I/O timeout.
    #[default]
    Default,
    /// This one.
    After(Duration),
    /// None at all: the explicit opt-out.
    Never,
}

impl Timeout {
    pub(crate) fn resolve(self, default: Option<Duration>) -> Option<Duration> {
        match self {
            Timeout::Default => default,
            Timeout::After(t) => Some(t),
            Timeout::Never => None,
        }
    }
}

/// Options of a watch: its deadline and trigger.
///
/// ```
/// use portable_reactor::runtime::{Trigger, WatchOptions};
/// use std::time::Duration;
/// let fast = WatchOptions::new().timeout(Duration::from_secs(5));
/// let forever = WatchOptions::new().no_timeout().trigger(Trigger::Level);
/// # let _ = (fast, forever);
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchOptions {
    pub(crate) timeout: Timeout,
    pub(crate) trigger: Trigger,
}

impl WatchOptions {
    /// The builder's default deadline, [`Trigger::Edge`].
    pub fn new() -> WatchOptions {
        WatchOptions::default()
    }

    /// Ends the watch with `ErrorKind::TimedOut` after `idle` without an event. `idle` must be
    /// longer than zero: a watch asked for with `Duration::ZERO` is refused with
    /// `ErrorKind::InvalidInput` (it would time out at once; [`no_timeout`](WatchOptions::no_timeout)
    /// is the opt-out, and a zero from a configuration must not silently mean it).
    pub fn timeout(mut self, idle: Duration) -> WatchOptions {
        self.timeout = Timeout::After(idle);
        self
    }

    /// No deadline for this watch: the explicit opt-out.
    pub fn no_timeout(mut self) -> WatchOptions {
        self.timeout = Timeout::Never;
        self
    }

    /// `InvalidInput` for a zero deadline.
    pub(crate) fn check(&self) -> io::Result<()> {
        check_timeout(match self.timeout {
            Timeout::After(t) => Some(t),
            Timeout::Default | Timeout::Never => None,
        })
    }

    /// How a persistent watch is re-armed.
    pub fn trigger(mut self, trigger: Trigger) -> WatchOptions {
        self.trigger = trigger;
        self
    }
}

/// What a callback's panic hands back: the entry (its source still open, so the runtime can
/// deregister it before dropping it) and the panic, to resume once the runtime is consistent.
pub(crate) struct Panicked<R: Reactor + 'static> {
    pub(crate) entry: StoredEntry<R>,
    pub(crate) payload: Payload,
}

/// `InvalidInput` for a deadline of zero, which would end a watch before it could see an event.
pub(crate) fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a watch deadline of zero would time it out at once (no_timeout() removes the deadline)",
        ));
    }
    Ok(())
}

/// A watch's source and callback, as [`StoredEntry`] stores them.
pub(crate) trait Entry<R: Reactor + 'static> {
    fn source(&self) -> BorrowedSource<'_>;
    fn source_any(&mut self) -> &mut dyn Any;
    /// Runs the callback. A persistent entry stays as it was, its source still open, even if
    /// its callback panicked (`Err` holds the payload). A one-shot entry is consumed (its
    /// source goes to the callback; what is left is an empty shell), and a panic in it unwinds
    /// through: its watch was removed before the call.
    fn call(&mut self, rt: &mut Runtime<R>, id: EventId, event: io::Result<Event>) -> Result<(), Payload>;
}

pub(crate) struct Persistent<S, F> {
    pub(crate) source: S,
    pub(crate) callback: F,
}

impl<R, S, F> Entry<R> for Persistent<S, F>
where
    R: Reactor + 'static,
    S: AsSource + 'static,
    F: FnMut(&mut Runtime<R>, EventId, &mut S, io::Result<Event>) + 'static,
{
    fn source(&self) -> BorrowedSource<'_> {
        self.source.as_source()
    }

    fn source_any(&mut self) -> &mut dyn Any {
        &mut self.source
    }

    #[inline]
    fn call(&mut self, rt: &mut Runtime<R>, id: EventId, event: io::Result<Event>) -> Result<(), Payload> {
        // The source must outlive the unwind: the watch is still registered with it.
        catch_unwind(AssertUnwindSafe(|| {
            (self.callback)(rt, id, &mut self.source, event)
        }))
    }
}

/// A one-shot watch's source and callback, until its one call takes them.
pub(crate) struct Once<S, F>(pub(crate) Option<(S, F)>);

impl<R, S, F> Entry<R> for Once<S, F>
where
    R: Reactor + 'static,
    S: AsSource + 'static,
    F: FnOnce(&mut Runtime<R>, S, io::Result<Event>) + 'static,
{
    fn source(&self) -> BorrowedSource<'_> {
        match &self.0 {
            Some((source, _)) => source.as_source(),
            // The runtime asks for the source only of a watch that has not fired.
            None => unreachable!("the source of a one-shot watch that fired"),
        }
    }

    fn source_any(&mut self) -> &mut dyn Any {
        match self.0 {
            Some((ref mut source, _)) => source,
            // Not the source type: a typed lookup finds nothing.
            None => &mut self.0,
        }
    }

    fn call(&mut self, rt: &mut Runtime<R>, _id: EventId, event: io::Result<Event>) -> Result<(), Payload> {
        if let Some((source, callback)) = self.0.take() {
            callback(rt, source, event);
        }
        Ok(())
    }
}
