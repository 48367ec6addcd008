//! A complete third-party backend on the [kit](portable_reactor::kit): poll(2), in a few
//! hundred lines, that passes the whole portability suite (`tests/example_backend.rs` runs
//! `conformance_suite!` on it). The guide, `portable_reactor::guide`, walks through it.
//!
//! `cargo run --example poll_backend` registers one end of a socket pair, writes to the other,
//! and prints the event. Unix only (poll(2) and pipes); elsewhere `main` does nothing.
//!
//! What the kit does here, and what is left to the backend:
//!
//! - the [`Book`](portable_reactor::kit::Book) holds the registrations: ids, `AlreadyExists` /
//!   `NotFound`, oneshot disarming (poll(2) has no oneshot: a disarmed registration is left out
//!   of the next wait), the events poll(2) returns beyond the capacity, and the slots of sources
//!   deregistered during a wait;
//! - [`wait_until_deadline`](portable_reactor::kit::wait_until_deadline) retries `EINTR` and
//!   the returns that report nothing (a registration changed, a stale event), never early;
//! - [`PollLock`](portable_reactor::kit::PollLock): one poll at a time, zero timeouts never wait;
//! - the backend: the poll(2) call, a self-pipe that interrupts it (for wakes, and for
//!   registrations made while it blocks: poll(2) only watches the fds it was given), and the
//!   translation of `revents` into an [`Event`](portable_reactor::Event).

#[cfg(unix)]
pub use imp::PollReactor;

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
    use std::time::Duration;

    use portable_reactor::kit::{self, wait_until_deadline, Book, PollLock};
    use portable_reactor::prelude::*;
    use portable_reactor::{BorrowedSource, Event, EventId, Events, Hints, Interest, Mechanism, Mode, Waker};

    const NAME: &str = "poll-example";

    /// What a readable registration waits for: `POLLRDHUP` (the peer shut down its write side)
    /// too, on Linux and Android, the only systems that have it.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    const READ_EVENTS: libc::c_short = libc::POLLIN | libc::POLLRDHUP;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    const READ_EVENTS: libc::c_short = libc::POLLIN;

    /// Whether `revents` says the peer shut down its write side (`POLLRDHUP`).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn read_hung_up(revents: libc::c_short) -> bool {
        revents & libc::POLLRDHUP != 0
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn read_hung_up(_revents: libc::c_short) -> bool {
        false
    }

    /// A reactor over poll(2).
    ///
    /// Oneshot and level registrations (poll(2) has no edge mode); every wait hands the kernel
    /// the whole interest list, rebuilt from the book.
    pub struct PollReactor {
        /// The registrations, with each source's fd as the backend's data.
        book: Mutex<Book<RawFd>>,
        /// What the polling thread touches, held from before poll(2) until its events are
        /// translated.
        state: PollLock<State>,
        notifier: Arc<Notifier>,
    }

    /// The polling thread's buffers, reused from wait to wait.
    struct State {
        /// The notifier's pipe first, then one entry per armed registration.
        fds: Vec<libc::pollfd>,
        /// The book key of `fds[i + 1]`.
        keys: Vec<usize>,
        /// The book holds events an earlier wait could not fit.
        overflow: bool,
    }

    // SAFETY: `pollfd` is plain data (an fd and two flag words); nothing in `State` points
    // anywhere.
    unsafe impl Send for State {}

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(PoisonError::into_inner)
    }

    impl PollReactor {
        /// Creates a reactor with its own notifier pipe.
        ///
        /// # Errors
        ///
        /// The OS error if the pipe cannot be created (e.g. `EMFILE`).
        pub fn new() -> io::Result<PollReactor> {
            Ok(PollReactor {
                book: Mutex::new(Book::new()),
                state: PollLock::new(State {
                    fds: Vec::new(),
                    keys: Vec::new(),
                    overflow: false,
                }),
                notifier: Arc::new(Notifier::new()?),
            })
        }

        fn check_mode(&self, mode: Mode) -> io::Result<()> {
            if self.supports(mode) {
                Ok(())
            } else {
                Err(kit::unsupported_mode(mode, NAME, Mechanism::Poll))
            }
        }

        /// A registration changed: a poll(2) blocked in another thread does not know, so make it
        /// return (it reports nothing for this, and waits again with the new interest list).
        fn changed(&self) {
            if self.state.is_polling() {
                if let Err(e) = self.notifier.notify() {
                    log::warn!("{NAME}: interrupting the wait failed: {e}");
                }
            }
        }

        /// One poll(2) call and its translation: `Ok(true)` when the poll is done.
        fn wait_once(&self, state: &mut State, events: &mut Events, timeout_ms: i32) -> io::Result<bool> {
            state.fds.clear();
            state.keys.clear();
            state
                .fds
                .push(pollfd(self.notifier.read.as_raw_fd(), libc::POLLIN));
            for (key, entry) in lock(&self.book).entries() {
                if !entry.is_armed() {
                    continue; // A oneshot registration that reported: silent until re-armed.
                }
                let mut wanted = 0;
                if entry.interest().is_readable() {
                    wanted |= READ_EVENTS;
                }
                if entry.interest().is_writable() {
                    wanted |= libc::POLLOUT;
                }
                state.fds.push(pollfd(*entry.extra(), wanted));
                state.keys.push(key);
            }
            let len = libc::nfds_t::try_from(state.fds.len()).unwrap_or(libc::nfds_t::MAX);
            // SAFETY: `fds` holds `len` initialised `pollfd`s, which poll(2) reads and updates
            // in place; the book's fds are open (`register`'s contract) or were deregistered
            // meanwhile, and the book drops events for those.
            let ready = unsafe { libc::poll(state.fds.as_mut_ptr(), len, timeout_ms) };
            if ready < 0 {
                return Err(io::Error::last_os_error()); // `EINTR` is retried by the loop.
            }
            if state.fds[0].revents != 0 {
                self.notifier.drain();
            }
            let mut book = lock(&self.book);
            book.begin_report();
            for (fd, &key) in state.fds[1..].iter().zip(&state.keys) {
                if fd.revents != 0 {
                    book.report(key, events, |entry| {
                        translate(entry.id(), entry.interest(), fd.revents)
                    });
                }
            }
            book.end_report();
            state.overflow = book.has_overflow();
            drop(book);
            Ok(!events.is_empty() || self.notifier.take_wake())
        }
    }

    fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
        libc::pollfd {
            fd,
            events,
            revents: 0,
        }
    }

    /// One `revents` as the contract wants it: a closed or failed source is ready for the
    /// directions registered (the next read or write tells what happened), and the hints are
    /// never false positives: `POLLHUP` is both halves gone, `POLLRDHUP` the read half,
    /// `POLLERR` a pending error (a UDP socket's ICMP error included: that one still sends).
    fn translate(id: EventId, interest: Interest, revents: libc::c_short) -> Event {
        let hup = revents & libc::POLLHUP != 0;
        // `POLLNVAL`: the fd was closed while registered (against `register`'s contract);
        // reported as an error so that the caller notices instead of polling a dead fd.
        let error = revents & (libc::POLLERR | libc::POLLNVAL) != 0;
        let read_closed = hup || read_hung_up(revents);
        Event::new(id)
            .with_readable(interest.is_readable() && (revents & libc::POLLIN != 0 || read_closed || error))
            .with_writable(interest.is_writable() && (revents & libc::POLLOUT != 0 || hup || error))
            .with_error(error)
            .with_read_closed(read_closed)
            .with_write_closed(hup)
    }

    impl Reactor for PollReactor {
        unsafe fn register(
            &self,
            source: BorrowedSource<'_>,
            id: EventId,
            interest: Interest,
            mode: Mode,
        ) -> io::Result<()> {
            self.check_mode(mode)?;
            let fd = kit::raw_source(source);
            // poll(2) has nothing to tell at registration: the book answers `AlreadyExists`.
            lock(&self.book).register(fd, id, interest, mode, |_key| Ok(fd))?;
            self.changed();
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
            let fd = kit::raw_source(source);
            lock(&self.book).reregister(fd, id, interest, mode, |_key, _fd| Ok(()))?;
            self.changed();
            Ok(())
        }

        fn deregister(&self, source: BorrowedSource<'_>) -> io::Result<()> {
            let fd = kit::raw_source(source);
            lock(&self.book).deregister(fd, |_entry| Ok(()), || self.state.is_polling())?;
            // The blocked poll(2) still watches the fd (and the caller may close it now): its
            // events are dropped by the book, and the next wait leaves it out.
            self.changed();
            Ok(())
        }

        fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
            events.clear();
            let Some(mut state) = self.state.lock(timeout) else {
                return Ok(0); // A zero timeout while another thread polls.
            };
            if state.overflow {
                // What an earlier wait could not fit comes first, before the OS is asked again.
                let mut book = lock(&self.book);
                book.begin_report();
                book.report_overflow(events, |_, _| {});
                book.end_report();
                state.overflow = book.has_overflow();
                if !events.is_empty() {
                    return Ok(events.len());
                }
            }
            wait_until_deadline(timeout, |block| {
                self.wait_once(&mut state, events, block.timeout_ms())
            })?;
            Ok(events.len())
        }

        fn waker(&self) -> Waker {
            Waker::new(self.notifier.clone())
        }

        fn mechanism(&self) -> Mechanism {
            Mechanism::Poll
        }

        fn supports(&self, mode: Mode) -> bool {
            matches!(mode, Mode::Oneshot | Mode::Level)
        }

        fn hints(&self) -> Hints {
            if cfg!(any(target_os = "linux", target_os = "android")) {
                Hints::NONE
                    .with_peer_shutdown_read_closed(true) // POLLRDHUP
                    .with_peer_reset_read_closed(true) // POLLHUP
                    .with_peer_reset_write_closed(true)
                    .with_peer_reset_error(true) // POLLERR
                    .with_connect_refused_error(true)
                    .with_pipe_writer_dropped_read_closed(true)
            } else {
                // Checked by the suite on Linux only: declare nothing elsewhere.
                Hints::NONE
            }
        }

        fn name(&self) -> &'static str {
            NAME
        }
    }

    /// A self-pipe: a byte in it makes the poll(2) in progress, or the next one, return.
    struct Notifier {
        read: OwnedFd,
        write: OwnedFd,
        /// A byte is in the pipe (or on its way) and no wait has drained it yet: further
        /// notifications coalesce into it.
        pending: AtomicBool,
        /// A wake came that no poll has returned for yet.
        woken: AtomicBool,
    }

    impl Notifier {
        fn new() -> io::Result<Notifier> {
            let mut fds: [libc::c_int; 2] = [-1; 2];
            // SAFETY: `pipe` writes two fds into the array, which has room for them.
            if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `pipe` succeeded: both fds are open, and nothing else owns them.
            let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            for fd in [&read, &write] {
                // SAFETY: `fcntl` with these commands only reads and sets the flags of an open fd.
                let ok = unsafe {
                    let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
                    flags != -1
                        && libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) != -1
                        && libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) != -1
                };
                if !ok {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(Notifier {
                read,
                write,
                pending: AtomicBool::new(false),
                woken: AtomicBool::new(false),
            })
        }

        /// Makes the wait in progress, or the next one, return.
        fn notify(&self) -> io::Result<()> {
            if self.pending.swap(true, SeqCst) {
                return Ok(());
            }
            loop {
                // SAFETY: writes one byte from a live buffer to the pipe this notifier owns.
                let n = unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
                if n >= 0 {
                    return Ok(());
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::WouldBlock => return Ok(()), // Full: a wait will return.
                    _ => {
                        self.pending.store(false, SeqCst);
                        return Err(e);
                    }
                }
            }
        }

        /// Empties the pipe after a wait saw it readable; notifications from now on write again.
        fn drain(&self) {
            let mut buf = [0u8; 64];
            loop {
                // SAFETY: reads into a live buffer of `buf.len()` bytes from the pipe we own.
                let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n <= 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break; // Empty (`EAGAIN`).
                }
            }
            // After the read: a notification between the two found `pending` set and wrote
            // nothing, but its `woken` is seen by `take_wake`, which this wait calls next.
            self.pending.store(false, SeqCst);
        }

        /// Whether a wake came since the last poll that returned for one; consumes it.
        fn take_wake(&self) -> bool {
            self.woken.load(SeqCst) && self.woken.swap(false, SeqCst)
        }
    }

    impl Wake for Notifier {
        fn wake(&self) -> io::Result<()> {
            self.woken.store(true, SeqCst);
            self.notify()
        }
    }
}

#[cfg(unix)]
fn main() -> std::io::Result<()> {
    use portable_reactor::prelude::*;
    use portable_reactor::{EventId, Events, Interest, Mode};
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    let (mut writer, reader) = UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    let reactor = PollReactor::new()?;
    // SAFETY: `reader` outlives the reactor (declared before it, so dropped after it).
    unsafe { reactor.register(reader.as_source(), EventId(7), Interest::READABLE, Mode::Oneshot)? };
    writer.write_all(b"ping")?;
    let mut events = Events::with_capacity(8);
    reactor.poll(&mut events, Some(Duration::from_secs(5)))?;
    for event in &events {
        println!("{} on {}: {event:?}", reactor.name(), reactor.mechanism());
    }
    reactor.waker().wake()?;
    reactor.poll(&mut events, None)?; // Returns at once, with no event.
    println!("woken, {} events", events.len());
    Ok(())
}

#[cfg(not(unix))]
fn main() {}
