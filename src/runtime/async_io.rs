//! [`Async`]: any [`AsSource`] as futures, on the runtime's own watches.
//!
//! An `Async<T>` is a watch like any other: it counts against the high watermark (above it the
//! watch waits in the queue, and operations wait with it; past the queue, `QuotaExceeded`),
//! and it has the runtime's deadline unless its options opt out: when the deadline passes (no
//! event and no successful operation for that long) every pending and later operation fails
//! with `ErrorKind::TimedOut`, as a callback watch's callback is told. Activity is judged at
//! the loop time ([`Runtime::now`], refreshed after each poll, like libuv's `uv_now`), so an
//! operation reads no clock: a successful operation pushes the deadline once per eighth of
//! it. (A task that keeps the loop from polling for longer than the deadline is not seen
//! as active meanwhile; it stalls every other watch anyway.)
//!
//! Operations are tried first and wait only on `WouldBlock`, so no readiness is lost whatever
//! came before; the waiting task is woken by the watch's next event. On edge-triggered
//! backends (epoll, kqueue) the watch stays registered for both directions and costs no
//! syscall per wait; on level-triggered ones (poll(2), IOCP, event ports) it asks only for the
//! directions a task waits for, so an idle or unread socket does not spin the loop.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{deadline_after, Local, Runtime, Trigger, WatchOptions};
use crate::{AsSource, DefaultReactor, Event, EventId, Interest, Mode, Reactor};

/// The interest for the directions `read` and `write`, `None` for neither.
fn interest_of(read: bool, write: bool) -> Option<Interest> {
    match (read, write) {
        (true, true) => Some(Interest::BOTH),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    }
}

/// Whether registering `registered` asks for every direction of `wanted`.
fn covers(registered: Option<Interest>, wanted: Option<Interest>) -> bool {
    match (registered, wanted) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(r), Some(w)) => (r.is_readable() || !w.is_readable()) && (r.is_writable() || !w.is_writable()),
    }
}

/// A loop time no deadline reaches: the refresh point of a watch without a deadline.
fn far_future() -> Instant {
    deadline_after(Instant::now(), Duration::MAX)
}

/// The source as the watch holds it: shared with the [`Async`].
struct SharedSource<T>(Rc<T>);

impl<T: AsSource> AsSource for SharedSource<T> {
    fn as_source(&self) -> crate::BorrowedSource<'_> {
        self.0.as_source()
    }
}

/// What the watch's callback and the futures share.
struct IoState {
    /// The watch, while it lives.
    id: Cell<Option<EventId>>,
    /// The watch ended (its deadline, or a failure): every operation fails so from then. A
    /// flag for the per-operation check, the error beside it.
    has_ended: Cell<bool>,
    ended: RefCell<Option<(io::ErrorKind, String)>>,
    readers: RefCell<Option<Waker>>,
    writers: RefCell<Option<Waker>>,
    /// A stream direction whose last transfer was short on an edge-triggered watch: the next
    /// one waits for an event (see `Async::poll_stream_op`); the watch's events clear it.
    read_drained: Cell<bool>,
    write_drained: Cell<bool>,
    /// Whether a short read may be taken for a drained socket: an edge-triggered watch (not
    /// on Windows) on a backend that reports a peer's shutdown as `read_closed`, and no
    /// `read_closed` or error seen yet. (Once the end of the stream has arrived no new edge
    /// announces it, so the reads must go on until they see it.)
    short_read_drains: Cell<bool>,
    /// The same for writes: edge-triggered, not on Windows, no `write_closed` or error seen.
    short_write_fills: Cell<bool>,
    /// Level-triggered watch: its interest follows the waiting directions.
    managed: Cell<bool>,
    /// The interest registered (managed watches), `None` while paused for want of waiters.
    registered: Cell<Option<Interest>>,
    adjust_queued: Cell<bool>,
    /// The deadline, to push it on successful operations (events push it already).
    timeout: Cell<Option<Duration>>,
    /// The loop time from which a successful operation pushes the deadline again: an eighth
    /// of it after the last push (far away without a deadline). Compared with the loop's
    /// cached time, so an operation reads no clock. Events do not move it (they push the
    /// watch's deadline themselves): a busy source pushes it once per eighth of its deadline.
    refresh_at: Cell<Instant>,
}

impl IoState {
    fn new(managed: bool, timeout: Option<Duration>) -> IoState {
        IoState {
            id: Cell::new(None),
            has_ended: Cell::new(false),
            ended: RefCell::new(None),
            readers: RefCell::new(None),
            writers: RefCell::new(None),
            read_drained: Cell::new(false),
            write_drained: Cell::new(false),
            short_read_drains: Cell::new(false),
            short_write_fills: Cell::new(false),
            managed: Cell::new(managed),
            registered: Cell::new(None),
            adjust_queued: Cell::new(false),
            timeout: Cell::new(timeout),
            refresh_at: Cell::new(far_future()),
        }
    }

    #[inline]
    fn ended(&self) -> Option<io::Error> {
        if !self.has_ended.get() {
            return None;
        }
        self.ended_error()
    }

    #[cold]
    fn ended_error(&self) -> Option<io::Error> {
        self.ended
            .borrow()
            .as_ref()
            .map(|(kind, message)| io::Error::new(*kind, message.clone()))
    }

    /// Ends every operation with `error` (and wakes the waiting ones).
    fn end(&self, error: &io::Error) {
        *self.ended.borrow_mut() = Some((error.kind(), error.to_string()));
        self.has_ended.set(true);
        IoState::wake(&self.readers);
        IoState::wake(&self.writers);
    }

    /// Activity at loop time `now`: the next push of the deadline is due an eighth of it later.
    fn refreshed(&self, now: Instant) {
        if let Some(timeout) = self.timeout.get() {
            self.refresh_at.set(deadline_after(now, timeout / 8));
        }
    }

    /// Wakes the task waiting in `slot`, if one is; says whether one was.
    fn wake(slot: &RefCell<Option<Waker>>) -> bool {
        let waker = slot.borrow_mut().take();
        match waker {
            Some(waker) => {
                waker.wake();
                true
            }
            None => false,
        }
    }

    fn park(slot: &RefCell<Option<Waker>>, waker: &Waker) {
        let mut slot = slot.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn drained(&self, read: bool) -> &Cell<bool> {
        if read {
            &self.read_drained
        } else {
            &self.write_drained
        }
    }

    /// The directions tasks wait for.
    fn wanted(&self) -> Option<Interest> {
        interest_of(self.readers.borrow().is_some(), self.writers.borrow().is_some())
    }
}

/// A source driven by futures on a [`Runtime`]: `Async<std::net::TcpStream>`,
/// `Async<std::os::unix::net::UnixStream>`, a pipe... (like async-io's `Async`).
///
/// The source must be non-blocking (`Async::new` does not change it). It is shared with the
/// watch: dropping the `Async` closes the watch (right after the current callback or task)
/// and the source with it.
///
/// ```
/// use portable_reactor::runtime::{Async, Runtime};
/// use std::io::{Read, Write};
///
/// let mut rt = Runtime::new()?;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
/// let (server, _) = listener.accept()?;
/// server.set_nonblocking(true)?;
/// let server = Async::new(&mut rt, server)?;
/// client.write_all(b"ping")?;
/// let got = rt.block_on(async move {
///     let mut buf = [0; 16];
///     let n = server.read_with(|mut s| s.read(&mut buf)).await?;
///     std::io::Result::Ok(buf[..n].to_vec())
/// })??;
/// assert_eq!(got, b"ping");
/// # std::io::Result::Ok(())
/// ```
pub struct Async<T: AsSource + 'static, R: Reactor + 'static = DefaultReactor> {
    io: Rc<T>,
    state: Rc<IoState>,
    local: Local<R>,
}

impl<T: AsSource + 'static, R: Reactor + 'static> Async<T, R> {
    /// Watches `io` with the runtime's default options (its deadline, edge-triggered where the
    /// backend can).
    ///
    /// # Errors
    ///
    /// As for [`Runtime::watch_with`].
    pub fn new(rt: &mut Runtime<R>, io: T) -> io::Result<Async<T, R>> {
        Async::with_options(rt, io, WatchOptions::new())
    }

    /// Watches `io` with `options` (its deadline; the trigger is chosen here and ignored).
    ///
    /// # Errors
    ///
    /// As for [`Runtime::watch_with`].
    pub fn with_options(rt: &mut Runtime<R>, io: T, options: WatchOptions) -> io::Result<Async<T, R>> {
        let io = Rc::new(io);
        let state = Rc::new(IoState::new(true, None));
        register(rt, io.clone(), &state, options)?;
        Ok(Async {
            io,
            state,
            local: rt.local(),
        })
    }

    /// [`with_options`](Async::with_options) from a task, without the runtime at hand: the
    /// watch is registered right after the current task or callback returns. Operations can
    /// start at once (they are tried first and wait for the watch's events); if registering
    /// fails (e.g. `QuotaExceeded`), every operation fails with that error.
    pub fn in_local(local: &Local<R>, io: T, options: WatchOptions) -> Async<T, R> {
        let io = Rc::new(io);
        // The mode is the runtime's choice; until the registration runs, assume the one that
        // asks for less (managed), then take the real one.
        let state = Rc::new(IoState::new(true, None));
        let (shared_io, shared_state) = (io.clone(), state.clone());
        local.defer(move |rt: &mut Runtime<R>| {
            if Rc::strong_count(&shared_state) == 1 {
                return; // the Async is gone already
            }
            if let Err(e) = register(rt, shared_io, &shared_state, options) {
                shared_state.end(&e);
            }
        });
        Async {
            io,
            state,
            local: local.clone(),
        }
    }

    /// The source.
    pub fn get_ref(&self) -> &T {
        &self.io
    }

    /// The watch's id, while it lives.
    pub fn id(&self) -> Option<EventId> {
        self.state.id.get()
    }

    /// The runtime handle this source was registered with.
    pub fn local(&self) -> &Local<R> {
        &self.local
    }

    /// Tries `op` (a read, an accept...), waiting for readiness while it gives `WouldBlock`.
    ///
    /// # Errors
    ///
    /// `op`'s error other than `WouldBlock`; `ErrorKind::TimedOut` once the watch's deadline
    /// passed; the error that ended the watch.
    pub async fn read_with<X>(&self, mut op: impl FnMut(&T) -> io::Result<X>) -> io::Result<X> {
        poll_fn(|cx| self.poll_read_with(cx, &mut op)).await
    }

    /// Tries `op` (a write, a send...), waiting for readiness while it gives `WouldBlock`.
    ///
    /// # Errors
    ///
    /// As for [`read_with`](Async::read_with).
    pub async fn write_with<X>(&self, mut op: impl FnMut(&T) -> io::Result<X>) -> io::Result<X> {
        poll_fn(|cx| self.poll_write_with(cx, &mut op)).await
    }

    /// The polling form of [`read_with`](Async::read_with), for `AsyncRead` implementations.
    pub fn poll_read_with<X>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnMut(&T) -> io::Result<X>,
    ) -> Poll<io::Result<X>> {
        self.poll_op(cx, op, true)
    }

    /// The polling form of [`write_with`](Async::write_with).
    pub fn poll_write_with<X>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnMut(&T) -> io::Result<X>,
    ) -> Poll<io::Result<X>> {
        self.poll_op(cx, op, false)
    }

    fn poll_op<X>(
        &self,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<X>,
        read: bool,
    ) -> Poll<io::Result<X>> {
        if let Some(e) = self.state.ended() {
            return Poll::Ready(Err(e));
        }
        if self.state.drained(read).get() {
            return self.park(cx, read);
        }
        loop {
            match op(&self.io) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.park(cx, read),
                Ok(value) => {
                    self.refresh_deadline();
                    return Poll::Ready(Ok(value));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// A byte stream's read (`read`) or write of a `len`-byte buffer through `op`, which
    /// returns how much it moved: as [`poll_op`](Self::poll_op), and on an edge-triggered
    /// watch a transfer shorter than the buffer (but not empty) marks the direction drained,
    /// so the next one waits for the watch's next event instead of trying first and failing
    /// with `WouldBlock`: one syscall less per message, as tokio does (and, as tokio, not on
    /// Windows, where the backends' edges are emulated). Edge-triggered epoll and kqueue
    /// report every arrival after the short read, so nothing is missed. Reads take the
    /// shortcut only on backends that report a peer's shutdown as `read_closed`, and stop once
    /// one was reported: the end of a stream that came with the last data brings no new edge,
    /// so the reads go on until they see it. Only for sources whose reads and writes are of a
    /// byte stream (a short datagram read says nothing).
    pub(crate) fn poll_stream_op(
        &self,
        cx: &mut Context<'_>,
        read: bool,
        len: usize,
        op: impl FnMut(&T) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        let polled = self.poll_op(cx, op, read);
        if let Poll::Ready(Ok(n)) = polled {
            let trusted = if read {
                &self.state.short_read_drains
            } else {
                &self.state.short_write_fills
            };
            if n > 0 && n < len && trusted.get() {
                self.state.drained(read).set(true);
            }
        }
        polled
    }

    /// Waits for the watch's next event for direction `read` (or writable).
    fn park<X>(&self, cx: &mut Context<'_>, read: bool) -> Poll<io::Result<X>> {
        let slot = if read {
            &self.state.readers
        } else {
            &self.state.writers
        };
        IoState::park(slot, cx.waker());
        self.adjust();
        Poll::Pending
    }

    /// A managed (level-triggered) watch asks for the directions now waited for.
    fn adjust(&self) {
        let state = &self.state;
        // Only to ask for more: a direction registered and no longer waited for is dropped
        // by the watch's next event for it (see `on_event`).
        if !state.managed.get() || state.adjust_queued.get() || covers(state.registered.get(), state.wanted())
        {
            return;
        }
        state.adjust_queued.set(true);
        let shared = state.clone();
        self.local
            .defer(move |rt: &mut Runtime<R>| apply_interest(rt, &shared));
    }

    /// Successful operations are activity: push the deadline, at most every eighth of it
    /// (events push it on their own). Judged at the loop time (refreshed after each poll),
    /// so the common case is one comparison and no clock read.
    #[inline]
    fn refresh_deadline(&self) {
        let now = self.local.shared.now.get();
        if now < self.state.refresh_at.get() {
            return;
        }
        let Some(timeout) = self.state.timeout.get() else {
            return;
        };
        self.push_deadline(now, timeout);
    }

    #[cold]
    fn push_deadline(&self, now: Instant, timeout: Duration) {
        self.state.refreshed(now);
        if let Some(id) = self.state.id.get() {
            self.local.defer(move |rt: &mut Runtime<R>| {
                let _ = rt.set_watch_timeout(id, Some(timeout));
            });
        }
    }
}

/// Watches `io` for `state`: edge-triggered for both directions where the backend can,
/// else level-triggered for the directions waited for (see [`apply_interest_in`]).
fn register<T: AsSource + 'static, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    io: Rc<T>,
    state: &Rc<IoState>,
    options: WatchOptions,
) -> io::Result<()> {
    let (mode, rearm) = rt.persistent_mode(Trigger::Edge);
    let managed = mode != Mode::Edge || rearm;
    state.managed.set(managed);
    let edge = !managed && !cfg!(windows);
    state
        .short_read_drains
        .set(edge && rt.reactor().hints().peer_shutdown_read_closed);
    state.short_write_fills.set(edge);
    state.timeout.set(options.timeout.resolve(rt.io_timeout()));
    state.refreshed(rt.now());
    let interest = if managed {
        state.wanted().unwrap_or(Interest::READABLE)
    } else {
        Interest::BOTH
    };
    let shared = state.clone();
    let id = rt.watch_with(
        SharedSource(io),
        interest,
        options.trigger(Trigger::Edge),
        move |rt: &mut Runtime<R>, id, _, event| on_event(rt, id, &shared, event),
    )?;
    state.registered.set(Some(interest));
    state.id.set(Some(id));
    Ok(())
}

/// The watch's callback: wakes the waiting directions, or ends every operation.
fn on_event<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &Rc<IoState>,
    event: io::Result<Event>,
) {
    match event {
        Ok(event) => {
            let failed = event.is_error();
            let read = event.is_readable() || event.is_read_closed() || failed;
            let write = event.is_writable() || event.is_write_closed() || failed;
            if read {
                state.read_drained.set(false);
            }
            if write {
                state.write_drained.set(false);
            }
            if event.is_read_closed() || failed {
                state.short_read_drains.set(false);
            }
            if event.is_write_closed() || failed {
                state.short_write_fills.set(false);
            }
            let woke_reader = read && IoState::wake(&state.readers);
            let woke_writer = write && IoState::wake(&state.writers);
            // Level-triggered: readiness nobody waited for comes back at every poll, so stop
            // asking for it. The direction of a task just woken stays registered: the task
            // usually waits again right after draining the source, and dropping and taking
            // it back would cost two syscalls per cycle. If it does not, the next event
            // finds no waiter and lands here.
            if state.managed.get() && ((read && !woke_reader) || (write && !woke_writer)) {
                let keep = interest_of(
                    woke_reader || state.readers.borrow().is_some(),
                    woke_writer || state.writers.borrow().is_some(),
                );
                apply_interest_in(rt, id, state, keep);
            }
        }
        Err(e) => {
            log::debug!("runtime: async source {id} ended: {e}");
            state.id.set(None);
            state.end(&e);
        }
    }
}

fn apply_interest<R: Reactor + 'static>(rt: &mut Runtime<R>, state: &Rc<IoState>) {
    state.adjust_queued.set(false);
    if let Some(id) = state.id.get() {
        apply_interest_in(rt, id, state, state.wanted());
    }
}

/// Registers the waited-for directions of a managed watch: pauses it when nothing waits (so
/// level readiness nobody reads does not spin the loop), resumes it when something does.
fn apply_interest_in<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &Rc<IoState>,
    wanted: Option<Interest>,
) {
    if wanted == state.registered.get() {
        return;
    }
    let result = match wanted {
        None => rt.pause_watch(id),
        Some(interest) => rt.set_interest(id, interest).and_then(|()| rt.resume_watch(id)),
    };
    match result {
        Ok(()) => state.registered.set(wanted),
        Err(e) => state.end(&e),
    }
}

impl<T: AsSource + 'static, R: Reactor + 'static> Drop for Async<T, R> {
    fn drop(&mut self) {
        if let Some(id) = self.state.id.take() {
            self.local.defer(move |rt: &mut Runtime<R>| {
                let _ = rt.close(id);
            });
        }
    }
}

impl<T: AsSource + fmt::Debug + 'static, R: Reactor + 'static> fmt::Debug for Async<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async")
            .field("io", &self.io)
            .field("id", &self.state.id.get())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::cell::Cell;
    use std::future::poll_fn;
    use std::io::{self, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::rc::Rc;
    use std::time::Duration;

    use crate::runtime::{Async, Runtime};
    use crate::{MioReactor, PollingReactor, Reactor};

    /// One stream read into `buf`, counting the read(2) calls in `calls`.
    async fn counted_read<R: Reactor + 'static>(
        stream: &Async<TcpStream, R>,
        buf: &mut [u8],
        calls: &Cell<usize>,
    ) -> io::Result<usize> {
        let len = buf.len();
        poll_fn(|cx| {
            stream.poll_stream_op(cx, true, len, |mut s| {
                calls.set(calls.get() + 1);
                s.read(buf)
            })
        })
        .await
    }

    /// On an edge-triggered watch whose backend reports a peer's shutdown, a read shorter
    /// than its buffer is taken for a drained socket: the next read waits for an event
    /// instead of calling read(2) for a `WouldBlock`; the next arrival wakes it.
    fn short_read_waits_for_the_next_event<R: Reactor + 'static>(reactor: R, shortcut: bool) {
        let mut rt = Runtime::builder().build_with(reactor).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        let server = Async::new(&mut rt, server).unwrap();
        let time = rt.time();
        client.write_all(b"hello").unwrap();
        let calls = Rc::new(Cell::new(0));
        let counted = calls.clone();
        let (first, calls_in_wait, second, data) = rt
            .block_on(async move {
                let mut buf = [0; 64];
                let first = counted_read(&server, &mut buf, &counted).await?;
                let before = counted.get();
                let waited = time
                    .timeout(
                        Duration::from_millis(30),
                        counted_read(&server, &mut buf, &counted),
                    )
                    .await;
                assert_eq!(waited.unwrap_err().kind(), io::ErrorKind::TimedOut);
                let calls_in_wait = counted.get() - before;
                client.write_all(b"again").unwrap();
                let second = counted_read(&server, &mut buf, &counted).await?;
                io::Result::Ok((first, calls_in_wait, second, buf[..second].to_vec()))
            })
            .unwrap()
            .unwrap();
        assert_eq!((first, second), (5, 5));
        assert_eq!(data, b"again");
        // With the shortcut the wait made no read(2) call; without it, at least one (its
        // `WouldBlock`, and one per spurious wake).
        if shortcut {
            assert_eq!(calls_in_wait, 0, "read(2) calls in the wait");
        } else {
            assert!(calls_in_wait >= 1, "{calls_in_wait} read(2) calls in the wait");
        }
        assert!(calls.get() >= 2);
    }

    #[test]
    fn short_read_waits_for_the_next_event_mio() {
        // mio on epoll/kqueue reports a peer's shutdown as read_closed: the shortcut applies.
        let reactor = MioReactor::new().unwrap();
        let shortcut = reactor.hints().peer_shutdown_read_closed;
        assert!(shortcut, "mio reports a peer's shutdown on this OS");
        short_read_waits_for_the_next_event(reactor, shortcut);
    }

    #[test]
    fn short_read_waits_for_the_next_event_polling() {
        // polling does not report it: every read is tried (the end of the stream could be
        // waiting behind the data with no edge to come).
        let reactor = PollingReactor::new().unwrap();
        let shortcut = reactor.hints().peer_shutdown_read_closed;
        short_read_waits_for_the_next_event(reactor, shortcut);
    }
}
