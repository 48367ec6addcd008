//! [`MioReactor`]: the adapter over the `mio` crate (epoll, kqueue, IOCP/AFD).
//!
//! mio is edge-triggered everywhere and offers neither oneshot nor level registrations, and on
//! Windows it re-arms a socket only when I/O through its own types hits `WouldBlock`. The
//! adapter normalises all of that with one mechanism: the registration book disarms a oneshot
//! registration after its event (`reregister` re-arms it, and mio's re-registration reports
//! readiness that is already there), and a level registration is re-registered after each event
//! it reports, so it is reported again while it stays ready.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use std::time::{Duration, Instant};

use mio::Token;

use crate::kit::{self, raw_source as raw, wait_since, Book, Entry, PollLock};
use crate::source::RawSource;
use crate::{BorrowedSource, Event, EventId, Events, Hints, Interest, Mechanism, Mode, Reactor, Wake, Waker};

/// The mechanism `mio` drives on this target.
const MECHANISM: Mechanism = if cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "illumos",
    target_os = "redox"
)) {
    Mechanism::Epoll
} else if cfg!(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly"
)) {
    Mechanism::Kqueue
} else if cfg!(windows) {
    Mechanism::Iocp
} else {
    Mechanism::Poll
};

/// The waker's token. Registrations use slab keys, which never reach it.
const WAKER: Token = Token(usize::MAX);

/// The mio view of a registered source.
///
/// On Unix a raw fd is all mio needs. On Windows mio only registers its own socket types, so the
/// adapter wraps the caller's socket in a `mio::net::TcpStream` (AFD polls any socket the same
/// way, whatever its kind) and never lets it close the socket.
struct Handle {
    /// The fd in the low 31 bits (the book takes only fds >= 0), and in the top bit whether it
    /// is a socket, asked once at registration (see [`translate`]): 4 bytes, so the book's
    /// entry is 24.
    #[cfg(unix)]
    fd_socket: u32,
    #[cfg(windows)]
    socket: std::mem::ManuallyDrop<mio::net::TcpStream>,
}

impl Handle {
    /// # Safety
    ///
    /// `raw` must be an open socket (Windows) or fd (Unix) that outlives the handle.
    unsafe fn new(raw: RawSource) -> Handle {
        #[cfg(unix)]
        {
            // Lossless: the book rejects negative fds before it calls for a handle
            // (`SourceMap::check`), and a non-negative `i32` fits in 31 bits.
            let socket_bit = if is_socket(raw) { SOCKET_BIT } else { 0 };
            Handle {
                fd_socket: raw as u32 | socket_bit,
            }
        }
        #[cfg(windows)]
        {
            use std::os::windows::io::FromRawSocket;
            // SAFETY: the caller guarantees `raw` is an open socket that outlives the handle;
            // `ManuallyDrop` and `Drop for Handle` make sure mio never closes it.
            let socket = unsafe { mio::net::TcpStream::from_raw_socket(raw) };
            Handle {
                socket: std::mem::ManuallyDrop::new(socket),
            }
        }
    }

    /// Whether the source is a socket: on Windows every source is.
    fn is_socket(&self) -> bool {
        #[cfg(unix)]
        {
            self.fd_socket & SOCKET_BIT != 0
        }
        #[cfg(windows)]
        {
            true
        }
    }

    #[cfg(unix)]
    fn with_source<T>(&mut self, f: impl FnOnce(&mut dyn mio::event::Source) -> T) -> T {
        // Lossless: the low 31 bits hold a non-negative `i32`.
        let fd = (self.fd_socket & !SOCKET_BIT) as RawSource;
        f(&mut mio::unix::SourceFd(&fd))
    }

    #[cfg(windows)]
    fn with_source<T>(&mut self, f: impl FnOnce(&mut dyn mio::event::Source) -> T) -> T {
        f(&mut *self.socket)
    }
}

/// [`Handle::fd_socket`]'s socket bit.
#[cfg(unix)]
const SOCKET_BIT: u32 = 1 << 31;

#[cfg(windows)]
impl Drop for Handle {
    fn drop(&mut self) {
        use std::os::windows::io::IntoRawSocket;
        // SAFETY: `socket` is never used again; taking it out of the `ManuallyDrop` only to turn
        // it back into a raw socket releases mio's per-socket state without closing the socket.
        let socket = unsafe { std::mem::ManuallyDrop::take(&mut self.socket) };
        let _ = socket.into_raw_socket();
    }
}

/// Whether `fd` is a socket (`fstat`'s `S_IFSOCK`); `false` if `fstat` fails.
#[cfg(unix)]
fn is_socket(fd: RawSource) -> bool {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fstat` only writes a `stat` through the pointer, which points to room for one;
    // an fd that is not open is an `EBADF` error, not undefined behaviour.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: `fstat` succeeded, so it initialised the `stat`.
    let mode = unsafe { stat.assume_init() }.st_mode;
    mode & libc::S_IFMT == libc::S_IFSOCK
}

fn mio_interest(interest: Interest) -> mio::Interest {
    match (interest.is_readable(), interest.is_writable()) {
        (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        (true, false) => mio::Interest::READABLE,
        _ => mio::Interest::WRITABLE,
    }
}

/// One mio event as the contract wants it.
///
/// mio reports end of stream and errors without readiness where the OS does (a pipe whose
/// writer is gone is `EPOLLHUP` alone on epoll), but a closed or failed source is readable and
/// writable: the next read or write tells what happened, and a caller that only looks at
/// `is_readable` must still be woken. So a read-closed or error event counts as readable, and a
/// write-closed or error event as writable, for the directions the registration asked for.
///
/// On epoll mio sets `write_closed` for `EPOLLHUP`, and also for `EPOLLERR` with `EPOLLOUT` or
/// alone. The latter is right for a pipe whose reader is gone (the pipe's only error), but not
/// for a socket: a UDP socket that got an ICMP port unreachable is `EPOLLERR | EPOLLOUT` and
/// still sends, whereas a socket whose write half is really gone (a reset, a refused connect)
/// is `EPOLLHUP` as well. mio sets `read_closed` for every `EPOLLHUP`, so for a socket an error
/// event without `read_closed` has no hang-up, and its `write_closed` is dropped. On kqueue
/// (`EV_EOF` on the write filter) and IOCP (`AFD_POLL_ABORT`, `AFD_POLL_CONNECT_FAIL`) mio's
/// `write_closed` means the write half is gone, and is kept.
fn translate(id: EventId, interest: Interest, is_socket: bool, ev: &mio::event::Event) -> Event {
    let (error, read_closed) = (ev.is_error(), ev.is_read_closed());
    let write_closed =
        ev.is_write_closed() && !(MECHANISM == Mechanism::Epoll && is_socket && error && !read_closed);
    Event::new(id)
        .with_readable((ev.is_readable() || read_closed || error) && interest.is_readable())
        .with_writable((ev.is_writable() || write_closed || error) && interest.is_writable())
        .with_error(error)
        .with_read_closed(read_closed)
        .with_write_closed(write_closed)
}

/// What only the polling thread touches.
struct PollState {
    poll: mio::Poll,
    events: mio::Events,
    /// The book may hold overflowed events (only a translation adds them).
    overflow: bool,
}

/// mio's waker, coalesced: on Windows every `mio::Waker::wake` posts a completion packet, so a
/// burst of wakes would flood the polls that follow with empty returns. Only the first wake
/// since the last one a poll consumed reaches mio.
struct MioWake {
    waker: mio::Waker,
    /// A notification is on its way and no poll has consumed it yet.
    pending: AtomicBool,
}

impl Wake for MioWake {
    fn wake(&self) -> io::Result<()> {
        if self.pending.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let result = self.waker.wake();
        if result.is_err() {
            self.pending.store(false, Ordering::Release);
        }
        result
    }
}

/// A [`Reactor`] over [`mio::Poll`].
///
/// Edge registrations are mio's own (not on Windows, where mio's AFD polls are one event per
/// arming); oneshot and level are emulated by the adapter as the module docs say, level at the
/// cost of one re-registration syscall per reported event.
///
/// ```
/// use portable_reactor::{MioReactor, Mode, Reactor};
/// let reactor = MioReactor::new()?;
/// assert!(reactor.supports(Mode::Oneshot) && reactor.supports(Mode::Level));
/// println!("mio drives {}", reactor.mechanism());
/// # std::io::Result::Ok(())
/// ```
pub struct MioReactor {
    registry: mio::Registry,
    /// Locked once per OS wait, to translate its events, and by (de)registrations.
    book: Mutex<Book<Handle>>,
    /// Held by a poll from before its OS wait until its events are translated: what makes
    /// polls one at a time, and what tells a deregistration a poll is in flight.
    state: PollLock<PollState>,
    waker: Arc<MioWake>,
}

impl std::fmt::Debug for MioReactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MioReactor")
            .field("mechanism", &MECHANISM)
            .finish_non_exhaustive()
    }
}

impl MioReactor {
    /// Creates a reactor with its own `mio::Poll` and waker.
    ///
    /// # Errors
    ///
    /// The OS error if the poller or its waker cannot be created (e.g. `EMFILE`).
    pub fn new() -> io::Result<MioReactor> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Arc::new(MioWake {
            waker: mio::Waker::new(&registry, WAKER)?,
            pending: AtomicBool::new(false),
        });
        Ok(MioReactor {
            registry,
            book: Mutex::new(Book::default()),
            state: PollLock::new(PollState {
                poll,
                events: mio::Events::with_capacity(1024),
                overflow: false,
            }),
            waker,
        })
    }

    fn check_mode(&self, mode: Mode) -> io::Result<()> {
        if self.supports(mode) {
            Ok(())
        } else {
            Err(kit::unsupported_mode(mode, "mio", MECHANISM))
        }
    }

    /// Re-registers a level registration that just reported an event, so that mio reports it
    /// again while it stays ready.
    #[inline]
    fn rearm_level(&self, token: Token, entry: &mut Entry<Handle>) {
        if entry.mode() == Mode::Level {
            self.rearm(token, entry);
        }
    }

    #[cold]
    fn rearm(&self, token: Token, entry: &mut Entry<Handle>) {
        let interest = mio_interest(entry.interest());
        if let Err(e) = entry
            .extra_mut()
            .with_source(|s| self.registry.reregister(s, token, interest))
        {
            log::warn!("mio: re-arming level registration {} failed: {e}", entry.id());
        }
    }
}

impl Reactor for MioReactor {
    unsafe fn register(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        self.check_mode(mode)?;
        let raw = raw(source);
        lock(&self.book).register(raw, id, interest, mode, |key| {
            // SAFETY: the caller guarantees the source stays open until deregistered; the handle
            // is dropped at deregistration at the latest.
            let mut handle = unsafe { Handle::new(raw) };
            handle.with_source(|s| self.registry.register(s, Token(key), mio_interest(interest)))?;
            Ok(handle)
        })?;
        log::debug!("mio: registered source {raw} as {id} for {interest:?} ({mode:?})");
        Ok(())
    }

    fn reregister(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        self.check_mode(mode)?;
        let raw = raw(source);
        lock(&self.book).reregister(raw, id, interest, mode, |key, handle| {
            handle.with_source(|s| self.registry.reregister(s, Token(key), mio_interest(interest)))
        })?;
        log::debug!("mio: reregistered source {raw} as {id} for {interest:?} ({mode:?})");
        Ok(())
    }

    fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()> {
        let raw = raw(source);
        lock(&self.book).deregister(
            raw,
            |entry| entry.extra_mut().with_source(|s| self.registry.deregister(s)),
            || self.state.is_polling(),
        )?;
        log::debug!("mio: deregistered source {raw}");
        Ok(())
    }

    fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        self.wait_events(events, timeout, Instant::now)
    }

    fn poll_from(&self, events: &mut Events, timeout: Option<Duration>, start: Instant) -> io::Result<usize> {
        self.wait_events(events, timeout, move || start)
    }

    fn waker(&self) -> Waker {
        Waker::new(self.waker.clone())
    }

    fn mechanism(&self) -> Mechanism {
        MECHANISM
    }

    fn supports(&self, mode: Mode) -> bool {
        match mode {
            Mode::Oneshot | Mode::Level => true,
            Mode::Edge => MECHANISM != Mechanism::Iocp,
        }
    }

    fn hints(&self) -> Hints {
        match MECHANISM {
            Mechanism::Kqueue => Hints {
                peer_shutdown_read_closed: true,
                peer_reset_read_closed: true,
                peer_reset_write_closed: false,
                peer_reset_error: false,
                connect_refused_error: true,
                pipe_writer_dropped_read_closed: true,
                pipe_reader_dropped_write_closed: true,
            },
            Mechanism::Iocp => Hints {
                peer_shutdown_read_closed: true,
                peer_reset_read_closed: true,
                peer_reset_write_closed: true,
                peer_reset_error: false,
                connect_refused_error: true,
                pipe_writer_dropped_read_closed: false,
                pipe_reader_dropped_write_closed: false,
            },
            _ => Hints {
                peer_shutdown_read_closed: true,
                peer_reset_read_closed: true,
                peer_reset_write_closed: true,
                peer_reset_error: true,
                connect_refused_error: true,
                pipe_writer_dropped_read_closed: true,
                pipe_reader_dropped_write_closed: true,
            },
        }
    }

    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    fn backend_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::{AsRawFd, BorrowedFd};
        // SAFETY: the registry's descriptor is the epoll/kqueue instance this reactor owns; it
        // stays open as long as `self`, which the returned borrow cannot outlive.
        Some(unsafe { BorrowedFd::borrow_raw(self.registry.as_raw_fd()) })
    }

    fn name(&self) -> &'static str {
        "mio"
    }
}

impl MioReactor {
    /// `poll` and `poll_from`: the timeout counts from `start()` (called only for a non-zero,
    /// finite timeout): `Instant::now` for `poll`, the caller's clock read for `poll_from`.
    fn wait_events(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
        start: impl FnOnce() -> Instant,
    ) -> io::Result<usize> {
        events.clear();
        let Some(mut guard) = self.state.lock(timeout) else {
            log::trace!("mio: poll(ZERO) while another thread polls: no events");
            return Ok(0);
        };
        let PollState {
            poll,
            events: native,
            overflow,
        } = &mut *guard;
        if native.capacity() != events.capacity() {
            // Only when the caller switches to a buffer of another size: never in steady state.
            *native = mio::Events::with_capacity(events.capacity());
        }
        if *overflow {
            // Events an earlier wait could not fit come first (mio keeps to the capacity, so
            // this is only a safety net).
            let mut book = lock(&self.book);
            book.begin_report();
            book.report_overflow(events, |key, entry| self.rearm_level(Token(key), entry));
            book.end_report();
            *overflow = book.has_overflow();
            if !events.is_empty() {
                return Ok(events.len());
            }
        }
        wait_since(start, timeout, |block| {
            let waited = poll.poll(native, block.timeout());
            // One book lock per wait: registrations made meanwhile are in it, and slots freed
            // meanwhile are held (the state lock says a poll is in flight) until `end_report`.
            let mut book = lock(&self.book);
            book.begin_report();
            let mut woken = false;
            for ev in native.iter() {
                let token = ev.token();
                if token == WAKER {
                    // Wakes after this point send a new notification.
                    self.waker.pending.store(false, Ordering::Release);
                    woken = true;
                    continue;
                }
                let reported = book.report(token.0, events, |entry| {
                    translate(entry.id(), entry.interest(), entry.extra().is_socket(), ev)
                });
                if let Some(entry) = reported {
                    self.rearm_level(token, entry);
                }
            }
            book.end_report();
            *overflow = book.has_overflow();
            drop(book);
            waited?;
            Ok(!events.is_empty() || woken)
        })?;
        drop(guard);
        log::trace!("mio: poll returned {} events", events.len());
        Ok(events.len())
    }
}

impl Drop for MioReactor {
    fn drop(&mut self) {
        let mut book = lock(&self.book);
        for mut entry in book.drain() {
            let _ = entry.extra_mut().with_source(|s| self.registry.deregister(s));
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A registration's book entry is 24 bytes on Unix (it was 32: the fd and its socket bit
    /// are one `u32`), slab slot included: an enum of it and a `usize`, as slab keeps its
    /// slots, is no larger (the entry keeps a niche).
    #[cfg(all(unix, target_pointer_width = "64"))]
    #[test]
    fn a_registration_costs_24_bytes_of_book() {
        assert_eq!(std::mem::size_of::<Handle>(), 4);
        assert_eq!(std::mem::size_of::<Entry<Handle>>(), 24);
        assert_eq!(std::mem::size_of::<Result<Entry<Handle>, usize>>(), 24);
    }

    #[test]
    fn the_handle_keeps_the_fd_and_the_socket_bit() {
        use std::os::fd::AsRawFd;
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        for (raw, socket) in [(socket.as_raw_fd(), true), (file.as_raw_fd(), false)] {
            // SAFETY: both fds stay open for the handle's life.
            let mut handle = unsafe { Handle::new(raw) };
            assert_eq!(handle.is_socket(), socket);
            handle.with_source(|_| ());
            assert_eq!((handle.fd_socket & !SOCKET_BIT) as RawSource, raw);
        }
    }
}
