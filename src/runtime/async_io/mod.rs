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

mod state;
#[cfg(all(test, unix))]
mod tests;
mod watch;

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Local, Runtime, WatchOptions};
use crate::{AsSource, DefaultReactor, EventId, Reactor};
use state::{covers, IoState};
use watch::{apply_interest, register};

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
