//! The [`Reactor`] trait: one event_id API over every OS.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{BorrowedSource, EventId, Events, Interest, Mechanism, Mode, Waker};

/// Which close and error hints a backend guarantees to report, per scenario.
///
/// Hints are never false positives on any backend; a `true` field here means the hint is also
/// never missed in that scenario, on the first event that reports the condition. The portability
/// suite asserts exactly what a backend declares.
///
/// The struct is `#[non_exhaustive]`: scenarios may be added in a minor release, declared `false`
/// (guarantee nothing) unless a backend says otherwise. Outside this crate, build it from
/// [`Hints::NONE`] with the `with_*` methods, and read the fields:
///
/// ```
/// use portable_reactor::Hints;
/// let hints = Hints::NONE.with_peer_reset_read_closed(true).with_connect_refused_error(true);
/// assert!(hints.peer_reset_read_closed && hints.connect_refused_error);
/// assert!(!hints.peer_reset_error);
/// assert_eq!(Hints::NONE, Hints::default());
/// ```
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Hints {
    /// After the peer's `shutdown(Write)`, a readable event carries
    /// [`is_read_closed`](crate::Event::is_read_closed).
    pub peer_shutdown_read_closed: bool,
    /// After the peer reset the connection, an event carries `is_read_closed`.
    pub peer_reset_read_closed: bool,
    /// After the peer reset the connection, an event carries `is_write_closed`.
    pub peer_reset_write_closed: bool,
    /// After the peer reset the connection, an event carries `is_error`.
    pub peer_reset_error: bool,
    /// A refused non-blocking connect reports an event with `is_error`.
    pub connect_refused_error: bool,
    /// When the last writer of a pipe is dropped, the reader's event carries `is_read_closed`
    /// (Unix only; pipes are not sources on Windows).
    pub pipe_writer_dropped_read_closed: bool,
    /// When the reader of a pipe is dropped, the writer's event carries `is_write_closed`
    /// (Unix only).
    pub pipe_reader_dropped_write_closed: bool,
}

impl Hints {
    /// No hint guaranteed in any scenario (the [`Default`]): where a backend starts.
    pub const NONE: Hints = Hints {
        peer_shutdown_read_closed: false,
        peer_reset_read_closed: false,
        peer_reset_write_closed: false,
        peer_reset_error: false,
        connect_refused_error: false,
        pipe_writer_dropped_read_closed: false,
        pipe_reader_dropped_write_closed: false,
    };

    /// Declares [`peer_shutdown_read_closed`](Hints::peer_shutdown_read_closed).
    pub const fn with_peer_shutdown_read_closed(mut self, guaranteed: bool) -> Hints {
        self.peer_shutdown_read_closed = guaranteed;
        self
    }

    /// Declares [`peer_reset_read_closed`](Hints::peer_reset_read_closed).
    pub const fn with_peer_reset_read_closed(mut self, guaranteed: bool) -> Hints {
        self.peer_reset_read_closed = guaranteed;
        self
    }

    /// Declares [`peer_reset_write_closed`](Hints::peer_reset_write_closed).
    pub const fn with_peer_reset_write_closed(mut self, guaranteed: bool) -> Hints {
        self.peer_reset_write_closed = guaranteed;
        self
    }

    /// Declares [`peer_reset_error`](Hints::peer_reset_error).
    pub const fn with_peer_reset_error(mut self, guaranteed: bool) -> Hints {
        self.peer_reset_error = guaranteed;
        self
    }

    /// Declares [`connect_refused_error`](Hints::connect_refused_error).
    pub const fn with_connect_refused_error(mut self, guaranteed: bool) -> Hints {
        self.connect_refused_error = guaranteed;
        self
    }

    /// Declares [`pipe_writer_dropped_read_closed`](Hints::pipe_writer_dropped_read_closed).
    pub const fn with_pipe_writer_dropped_read_closed(mut self, guaranteed: bool) -> Hints {
        self.pipe_writer_dropped_read_closed = guaranteed;
        self
    }

    /// Declares [`pipe_reader_dropped_write_closed`](Hints::pipe_reader_dropped_write_closed).
    pub const fn with_pipe_reader_dropped_write_closed(mut self, guaranteed: bool) -> Hints {
        self.pipe_reader_dropped_write_closed = guaranteed;
        self
    }
}

/// A readiness reactor: register sources under caller-chosen [`EventId`]s, poll, get the ids
/// back.
///
/// The trait is object safe (`Box<dyn Reactor>` is a `Reactor`, so the backend can be chosen at
/// run time with [`reactor_by_name`](crate::reactor_by_name)), `Send + Sync`, and every method
/// takes `&self`: one thread may block in [`poll`](Reactor::poll) while others register,
/// re-register, deregister or wake. Only one thread polls at a time: a second caller with a
/// timeout other than zero waits for the first to return; `poll(Some(Duration::ZERO))` never
/// waits: while another thread polls, it returns `Ok(0)` at once, with no events (what is
/// ready is reported by the other thread's poll or a later one).
///
/// # Contract
///
/// Every backend in this crate keeps this contract on every OS; the portability suite
/// ([`conformance`](crate#portability-suite)) pins each row.
///
/// | behaviour | contract |
/// |---|---|
/// | ids | every `usize`, `0` and `usize::MAX` included |
/// | register a source twice | `ErrorKind::AlreadyExists` |
/// | reregister / deregister an unregistered source | `ErrorKind::NotFound` |
/// | unsupported [`Mode`] | `ErrorKind::Unsupported`, nothing registered |
/// | reregister | replaces id, interest and mode; re-arms a oneshot; readiness already pending is reported under the new id only |
/// | `poll` | clears `Events`, fills at most its capacity; the rest is reported by later polls, nothing lost or duplicated |
/// | `poll(Some(Duration::ZERO))` | never blocks, not even behind another thread's poll (then it returns `Ok(0)`, no events) |
/// | `poll(Some(t))` | never returns before `t` has passed unless an event or a wake came; spurious wake-ups and `EINTR` are retried |
/// | `poll(None)` | blocks until an event or a wake |
/// | cross-thread (de)registration | takes effect for a poll already blocked in another thread |
/// | waker | cloneable, `Send + Sync`, coalescing; a wake before `poll` makes it return at once; no event is reported for it; a wake makes `poll` return, never fail |
/// | after `deregister` | no event for that source, even with data in flight |
///
/// # Backends
///
/// | backend | Linux, Android | macOS, iOS, BSD | Windows | illumos | `Oneshot` | `Level` | `Edge` |
/// |---|---|---|---|---|---|---|---|
/// | [`PollingReactor`](crate::PollingReactor) | epoll (poll(2) with `--cfg polling_test_poll_backend`) | kqueue | IOCP (AFD) | event ports | native | native (not event ports) | epoll, kqueue |
/// | [`MioReactor`](crate::MioReactor) | epoll | kqueue | IOCP (AFD) | epoll | adapter: disarms after an event, `reregister` re-arms | adapter: re-arms after each event (one extra syscall per event) | epoll, kqueue |
///
/// # Close and error hints
///
/// The hints on [`Event`](crate::Event) are never false positives. Which ones are guaranteed
/// differs by backend and OS, as each backend declares in [`Reactor::hints`] (✓ = guaranteed,
/// – = may be missing):
///
/// | scenario, hint | polling: epoll | polling: poll(2) | polling: kqueue | polling: IOCP | mio: epoll | mio: kqueue | mio: IOCP |
/// |---|---|---|---|---|---|---|---|
/// | peer `shutdown(Write)`: `read_closed` | – | – | – | – | ✓ | ✓ | ✓ |
/// | peer reset: `read_closed` | ✓ | ✓ | – | ✓ | ✓ | ✓ | ✓ |
/// | peer reset: `write_closed` | ✓ | ✓ | – | ✓ | ✓ | – | ✓ |
/// | peer reset: `error` | ✓ | ✓ | – | – | ✓ | – | – |
/// | refused connect: `error` | ✓ | ✓ | – | ✓ | ✓ | ✓ | ✓ |
/// | pipe writer dropped: `read_closed` | ✓ | ✓ | – | n/a | ✓ | ✓ | n/a |
/// | pipe reader dropped: `write_closed` | – | – | – | n/a | ✓ | ✓ | n/a |
/// | connected UDP, ICMP port unreachable: `write_closed` | never | never | never | never | never | never | never |
///
/// The portability suite checks every ✓ on epoll, poll(2) and IOCP (under Wine); the kqueue
/// and event-ports cells follow what the `polling` and `mio` sources guarantee. On every
/// backend an event on a healthy socket carries no hint, the peer's `shutdown(Write)` never
/// sets `write_closed` or `error`, and a UDP socket that got an ICMP error (its next send
/// works) may carry `error` but never `write_closed` (checked on Unix).
///
/// # Normalisations
///
/// Where a crate or an OS differs from the contract, the adapters make up the difference:
///
/// - **Closed sources are ready** (mio): mio reports some closes without readiness (on epoll a
///   pipe whose writer is gone is `EPOLLHUP` alone, which mio does not count as readable); the
///   adapter counts a `read_closed` or `error` event as readable and a `write_closed` or
///   `error` event as writable, for the directions registered. polling already does.
/// - **Capacity** (polling on poll(2)): `polling`'s poll(2) backend returns every ready source
///   whatever the capacity, and has already disarmed the oneshot ones; the adapter keeps what
///   does not fit and reports it first on the next polls (dropped if the source is
///   re-registered or deregistered meanwhile), so nothing is lost and level sources do not
///   starve.
/// - **A wake never fails a poll** (polling on poll(2)): `polling`'s `notify` sets its flag
///   before it writes the notifier pipe, so a wait that starts in between reads an empty pipe
///   and returns `WouldBlock`; the adapter takes a `WouldBlock` from the wait for the wake it
///   is, and returns.
/// - **No `write_closed` for a socket error alone** (mio on epoll): mio sets `write_closed`
///   for `EPOLLERR` without `EPOLLHUP`, which is right for a pipe whose reader is gone but
///   wrong for a socket (a UDP socket that got an ICMP error still sends). The adapter asks at
///   registration whether the source is a socket (`fstat`), and drops `write_closed` from a
///   socket's error event that carries no hang-up (no `read_closed`).
/// - **Wakes coalesce** (mio on IOCP): each `mio::Waker::wake` posts a completion packet; the
///   adapter only forwards the first wake until a poll consumes it.
/// - **Resets under Wine** (IOCP): the reset is reported (`AFD_POLL_ABORT`, so `read_closed`
///   and `write_closed`), but Wine consumes the socket error while polling, so the read that
///   follows returns end of stream rather than `ConnectionReset`.
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use std::time::Duration;
/// use portable_reactor::{AsSource, DefaultReactor, EventId, Events, Interest, Mode, Reactor};
///
/// let reactor = DefaultReactor::new()?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// server.set_nonblocking(true)?;
///
/// // SAFETY: `server` outlives its registration: it is deregistered before it is dropped.
/// unsafe { reactor.register(server.as_source(), EventId(42), Interest::READABLE, Mode::Oneshot)? };
/// client.write_all(b"ping")?;
///
/// let mut events = Events::with_capacity(16);
/// reactor.poll(&mut events, Some(Duration::from_secs(5)))?;
/// let ids: Vec<EventId> = events.iter().map(|e| e.id()).collect();
/// assert_eq!(ids, [EventId(42)]);
/// reactor.deregister(server.as_source())?;
/// # std::io::Result::Ok(())
/// ```
pub trait Reactor: Send + Sync {
    /// Registers `source` under `id`, waiting for `interest`, re-arming as `mode` says.
    ///
    /// The source should be in non-blocking mode; the reactor does not change it.
    ///
    /// # Safety
    ///
    /// `source` must stay open until it is deregistered (or the reactor is dropped). If it is
    /// closed while registered, the OS may keep reporting it, or report a different file that
    /// reuses the descriptor under this `id`.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::AlreadyExists` if the source is already registered with this reactor.
    /// - `ErrorKind::Unsupported` if [`supports(mode)`](Reactor::supports) is false.
    /// - The OS error if the OS refuses the source (e.g. `PermissionDenied` for a regular file
    ///   on epoll).
    unsafe fn register(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()>;

    /// Replaces the id, interest and mode of a registered source, and re-arms a oneshot
    /// registration. If the source is ready for the new interest, the next poll reports it.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::NotFound` if the source is not registered with this reactor.
    /// - `ErrorKind::Unsupported` if [`supports(mode)`](Reactor::supports) is false; the old
    ///   registration stays as it was.
    /// - The OS error, if any.
    fn reregister(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()>;

    /// Removes a source's registration. No event is reported for it after this returns.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::NotFound` if the source is not registered with this reactor.
    /// - The OS error, if any; the registration is forgotten all the same.
    fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()>;

    /// Waits for readiness and fills `events` (cleared first) with at most its capacity of
    /// events; returns how many.
    ///
    /// `timeout`: `None` blocks until an event or a wake; `Some(Duration::ZERO)` never blocks;
    /// `Some(t)` returns no earlier than `t` unless an event or a wake came first. Returning
    /// with no event means the timeout passed or a wake came, or (zero timeout only) that
    /// another thread was polling: a zero-timeout poll does not wait for it, and returns
    /// `Ok(0)` at once. Other callers wait for the poll in progress to return first.
    ///
    /// # Errors
    ///
    /// The OS error of the wait, other than `EINTR` (which is retried). A wake, however it
    /// races with the wait, makes `poll` return `Ok`, never an error.
    fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize>;

    /// As [`poll`](Reactor::poll), with `timeout` counted from `start` instead of from the
    /// call: `start` is a clock read the caller made before calling (an event loop's cached
    /// loop time, from which it computed `timeout`), so the backend need not read the clock
    /// again before it waits. libuv's `uv__io_poll` counts its timeout from the loop time so.
    ///
    /// The poll returns no earlier than `start + timeout` (unless an event or a wake comes
    /// first), and no later than `poll(events, timeout)` called now would: the first wait
    /// blocks for the whole `timeout`, the waits after a spurious return count to
    /// `start + timeout`. `None` and `Some(Duration::ZERO)` behave as for `poll`. A `start`
    /// later than the call is the caller's bug, not checked (that would cost the clock read
    /// this saves): the poll may then wait until `start + timeout`.
    ///
    /// The default calls `poll(events, timeout)`, which meets that contract (it counts from a
    /// later instant); backends on the [kit](crate::kit) override it with
    /// [`kit::wait_from`](crate::kit::wait_from) to save the clock read.
    ///
    /// ```
    /// use portable_reactor::{DefaultReactor, Events, Reactor};
    /// use std::time::{Duration, Instant};
    /// let reactor = DefaultReactor::new()?;
    /// let mut events = Events::with_capacity(8);
    /// let start = Instant::now();
    /// reactor.poll_from(&mut events, Some(Duration::from_millis(10)), start)?;
    /// assert!(start.elapsed() >= Duration::from_millis(10));
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`poll`](Reactor::poll).
    fn poll_from(&self, events: &mut Events, timeout: Option<Duration>, start: Instant) -> io::Result<usize> {
        let _ = start;
        self.poll(events, timeout)
    }

    /// A handle that wakes this reactor's `poll` from any thread.
    fn waker(&self) -> Waker;

    /// The OS mechanism this reactor drives.
    fn mechanism(&self) -> Mechanism;

    /// Whether `mode` can be registered. `Mode::Oneshot` is always supported.
    fn supports(&self, mode: Mode) -> bool;

    /// Which close and error hints this reactor guarantees.
    fn hints(&self) -> Hints;

    /// The backend's short name, as accepted by [`reactor_by_name`](crate::reactor_by_name).
    fn name(&self) -> &'static str;

    /// The OS descriptor a host event loop can watch to learn that this reactor has something
    /// to report (libuv's `uv_backend_fd`): the epoll or kqueue descriptor, which polls
    /// readable while an event or a wake is pending. `None` (the default) where the mechanism
    /// has no such descriptor: poll(2) (its set lives in user space) and event ports here.
    /// Windows has no equivalent: an IOCP handle cannot be waited on by another loop's
    /// readiness mechanism, so a host drives the runtime by its timeout and wakes instead.
    ///
    /// Only for watching: reading from or closing it breaks the reactor.
    #[cfg(unix)]
    fn backend_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
}

macro_rules! forward_reactor {
    ($($ptr:ty),*) => {$(
        impl<R: Reactor + ?Sized> Reactor for $ptr {
            unsafe fn register(
                &self,
                source: BorrowedSource<'_>,
                id: EventId,
                interest: Interest,
                mode: Mode,
            ) -> io::Result<()> {
                // SAFETY: the caller upholds `register`'s contract, which is the same.
                unsafe { (**self).register(source, id, interest, mode) }
            }
            fn reregister(
                &self,
                source: BorrowedSource<'_>,
                id: EventId,
                interest: Interest,
                mode: Mode,
            ) -> io::Result<()> {
                (**self).reregister(source, id, interest, mode)
            }
            fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()> {
                (**self).deregister(source)
            }
            fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
                (**self).poll(events, timeout)
            }
            fn poll_from(
                &self,
                events: &mut Events,
                timeout: Option<Duration>,
                start: Instant,
            ) -> io::Result<usize> {
                (**self).poll_from(events, timeout, start)
            }
            fn waker(&self) -> Waker {
                (**self).waker()
            }
            fn mechanism(&self) -> Mechanism {
                (**self).mechanism()
            }
            fn supports(&self, mode: Mode) -> bool {
                (**self).supports(mode)
            }
            fn hints(&self) -> Hints {
                (**self).hints()
            }
            fn name(&self) -> &'static str {
                (**self).name()
            }
            #[cfg(unix)]
            fn backend_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
                (**self).backend_fd()
            }
        }
    )*};
}

forward_reactor!(Box<R>, Arc<R>, &R);
