//! Listening: the accept watch, its `EMFILE` back-off, and the [`Listener`] handle, for any
//! listening socket ([`Accept`]).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use super::{adopt, sealed, AsSocketHandle, ConnOptions, ConnShared, Handle, Stream};
use crate::net::is_resource_exhaustion;
use crate::runtime::{Runtime, TimerId, WatchOptions};
use crate::{Event, EventId, Interest, Reactor};

/// The first pause of a listener after `accept` ran out of descriptors; it doubles on each
/// further failure up to [`ACCEPT_BACKOFF_MAX`] and starts over after a successful accept.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause of a listener after `accept` ran out of descriptors.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Accepts per event before the listener yields to others (it is woken again at once).
const ACCEPTS_PER_EVENT: usize = 64;

/// A listening socket a [`Listener`] can drive: `std::net::TcpListener`, and on Unix
/// `std::os::unix::net::UnixListener`. Sealed.
pub trait Accept: sealed::Sealed + AsSocketHandle + 'static {
    /// The stream an accept gives.
    type Stream: Stream;
    /// The socket's address type.
    type Addr: Clone + fmt::Debug + 'static;
    /// Accepts one connection (non-blocking).
    fn accept_stream(&self) -> io::Result<(Self::Stream, Self::Addr)>;
    /// The local address.
    fn local(&self) -> io::Result<Self::Addr>;
    /// Puts the socket in non-blocking mode.
    fn set_nonblocking_mode(&self) -> io::Result<()>;
}

macro_rules! impl_accept {
    ($ty:ty, $stream:ty, $addr:ty) => {
        impl sealed::Sealed for $ty {}
        impl Accept for $ty {
            type Stream = $stream;
            type Addr = $addr;
            fn accept_stream(&self) -> io::Result<($stream, $addr)> {
                self.accept()
            }
            fn local(&self) -> io::Result<$addr> {
                self.local_addr()
            }
            fn set_nonblocking_mode(&self) -> io::Result<()> {
                self.set_nonblocking(true)
            }
        }
    };
}
impl_accept!(std::net::TcpListener, std::net::TcpStream, std::net::SocketAddr);
#[cfg(unix)]
impl_accept!(
    std::os::unix::net::UnixListener,
    std::os::unix::net::UnixStream,
    std::os::unix::net::SocketAddr
);

/// The callback of accepted connections.
type OnConnection<A, R> = Rc<RefCell<dyn FnMut(&mut Runtime<R>, io::Result<Handle<<A as Accept>::Stream>>)>>;

/// What a listener needs to watch its socket again.
struct ListenConfig<A: Accept, R: Reactor + 'static> {
    watch: WatchOptions,
    conn: ConnOptions,
    on_connection: OnConnection<A, R>,
}

impl<A: Accept, R: Reactor + 'static> Clone for ListenConfig<A, R> {
    fn clone(&self) -> Self {
        ListenConfig {
            watch: self.watch,
            conn: self.conn,
            on_connection: self.on_connection.clone(),
        }
    }
}

/// What a listener has done, from [`Listener::stats`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// `accept` calls made.
    pub accept_calls: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// `accept` failures for lack of descriptors or buffers (`EMFILE`, `ENFILE`, ...), each
    /// followed by a pause.
    pub exhausted: u64,
    /// Whether the listener is pausing now.
    pub paused: bool,
}

/// The state shared by a listener's handle, its watch and its back-off timer.
struct ListenerShared<A: Accept> {
    local: A::Addr,
    /// The read buffer every connection of this listener reads into.
    conn_shared: Rc<ConnShared>,
    watch: Cell<Option<EventId>>,
    timer: Cell<Option<TimerId>>,
    closed: Cell<bool>,
    backoff: Cell<Duration>,
    stats: Cell<ListenerStats>,
    /// Runs when the listener is closed (a Unix listener removes its socket file).
    on_close: Cell<Option<Box<dyn FnOnce()>>>,
}

impl<A: Accept> ListenerShared<A> {
    fn count(&self, f: impl FnOnce(&mut ListenerStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }
}

/// The listener watch's source: the socket, shared with the back-off timer so that a pause
/// (which ends the watch) keeps it open.
struct ListenSource<A: Accept> {
    socket: Rc<A>,
    shared: Rc<ListenerShared<A>>,
}

#[cfg(unix)]
impl<A: Accept> std::os::fd::AsFd for ListenSource<A> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
#[cfg(windows)]
impl<A: Accept> std::os::windows::io::AsSocket for ListenSource<A> {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.socket.as_socket()
    }
}

/// A listening socket started by `tcp::listen` or `unix::listen` (`tcp::Listener` is
/// `Listener<TcpListener>`). Cloning gives another handle to the same listener; dropping
/// handles does not close it (its watch keeps it): [`close`](Listener::close) does.
pub struct Listener<A: Accept> {
    shared: Rc<ListenerShared<A>>,
}

impl<A: Accept> Clone for Listener<A> {
    fn clone(&self) -> Self {
        Listener {
            shared: self.shared.clone(),
        }
    }
}

impl<A: Accept> fmt::Debug for Listener<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.shared.local)
            .field("id", &self.id())
            .field("closed", &self.shared.closed.get())
            .finish()
    }
}

impl<A: Accept> Listener<A> {
    /// The address the listener is bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> A::Addr {
        self.shared.local.clone()
    }

    /// The listener's current watch, `None` while it pauses after `EMFILE` or once closed.
    /// A pause ends the watch and resuming starts a new one, so the id can change.
    pub fn id(&self) -> Option<EventId> {
        self.shared.watch.get()
    }

    /// Whether [`close`](Listener::close) was called or the listener's deadline passed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.get()
    }

    /// Counters of accepts and pauses.
    pub fn stats(&self) -> ListenerStats {
        self.shared.stats.get()
    }

    /// Stops listening and closes the socket (also from inside the connection callback); a Unix
    /// listener bound by `unix::listen` removes its socket file. Accepted connections stay
    /// open. Closing twice does nothing.
    pub fn close<R: Reactor + 'static>(&self, rt: &mut Runtime<R>) {
        if self.shared.closed.replace(true) {
            return;
        }
        if let Some(id) = self.shared.watch.take() {
            let _ = rt.close(id);
        }
        if let Some(timer) = self.shared.timer.take() {
            rt.clear_timer(timer);
        }
        if let Some(on_close) = self.shared.on_close.take() {
            on_close();
        }
        log::debug!("net: listener on {:?} closed", self.shared.local);
    }
}

/// Listens on `socket` (bound and listening already): the shared part of `tcp::listen_on` and
/// `unix::listen_on`. `on_close` runs when the listener is closed.
pub(crate) fn listen_on_socket<A, R, F>(
    rt: &mut Runtime<R>,
    socket: A,
    watch: WatchOptions,
    conn: ConnOptions,
    on_close: Option<Box<dyn FnOnce()>>,
    on_connection: F,
) -> io::Result<Listener<A>>
where
    A: Accept,
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Handle<A::Stream>>) + 'static,
{
    conn.check()?;
    socket.set_nonblocking_mode()?;
    let local = socket.local()?;
    let shared = Rc::new(ListenerShared {
        local,
        conn_shared: ConnShared::new(&conn),
        watch: Cell::new(None),
        timer: Cell::new(None),
        closed: Cell::new(false),
        backoff: Cell::new(ACCEPT_BACKOFF_MIN),
        stats: Cell::new(ListenerStats::default()),
        on_close: Cell::new(on_close),
    });
    let config = ListenConfig {
        watch,
        conn,
        on_connection: Rc::new(RefCell::new(on_connection)) as OnConnection<A, R>,
    };
    watch_listener(rt, Rc::new(socket), shared.clone(), config)?;
    log::debug!("net: listening on {:?}", shared.local);
    Ok(Listener { shared })
}

fn watch_listener<A: Accept, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    socket: Rc<A>,
    shared: Rc<ListenerShared<A>>,
    config: ListenConfig<A, R>,
) -> io::Result<()> {
    let source = ListenSource {
        socket,
        shared: shared.clone(),
    };
    let id = rt.watch_with(
        source,
        Interest::READABLE,
        config.watch,
        move |rt, id, source: &mut ListenSource<A>, event| {
            accept_ready(rt, id, source, event, &config);
        },
    )?;
    log::debug!("net: listener on {:?} watched as {id}", shared.local);
    shared.watch.set(Some(id));
    Ok(())
}

fn accept_ready<A: Accept, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    source: &mut ListenSource<A>,
    event: io::Result<Event>,
    config: &ListenConfig<A, R>,
) {
    let shared = source.shared.clone();
    if let Err(e) = event {
        // The watch is gone (its deadline passed, or re-arming failed).
        shared.watch.set(None);
        shared.closed.set(true);
        if let Some(on_close) = shared.on_close.take() {
            on_close();
        }
        (config.on_connection.borrow_mut())(rt, Err(e));
        return;
    }
    for _ in 0..ACCEPTS_PER_EVENT {
        if shared.closed.get() {
            return;
        }
        shared.count(|s| s.accept_calls += 1);
        match source.socket.accept_stream() {
            Ok((stream, peer)) => {
                shared.backoff.set(ACCEPT_BACKOFF_MIN);
                shared.count(|s| s.accepted += 1);
                let conn = adopt(rt, stream, config.conn, shared.conn_shared.clone());
                if let Ok(conn) = &conn {
                    log::debug!("net: accepted {peer:?} on {:?} as {}", shared.local, conn.id());
                }
                (config.on_connection.borrow_mut())(rt, conn);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                ) =>
            {
                // The peer gave up before we accepted: try the next one.
            }
            Err(e) => {
                let delay = shared.backoff.get();
                if is_resource_exhaustion(&e) {
                    shared.count(|s| s.exhausted += 1);
                    log::warn!(
                        "net: accept on {:?} failed: {e}; pausing the listener for {delay:?}",
                        shared.local
                    );
                } else {
                    log::warn!(
                        "net: accept on {:?} failed: {e}; pausing for {delay:?}",
                        shared.local
                    );
                }
                pause(rt, id, source, config.clone(), delay);
                if !is_resource_exhaustion(&e) {
                    (config.on_connection.borrow_mut())(rt, Err(e));
                }
                return;
            }
        }
    }
    // Yield to other watches: be called back in the next iteration for the rest of the backlog
    // (no syscall, no re-registration).
    let _ = rt.wake_watch(id);
}

/// Ends the listener's watch (the socket stays open) and resumes it after `delay`.
fn pause<A: Accept, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    source: &ListenSource<A>,
    config: ListenConfig<A, R>,
    delay: Duration,
) {
    let shared = source.shared.clone();
    let _ = rt.close(id);
    shared.watch.set(None);
    if delay > Duration::ZERO {
        shared.backoff.set((delay * 2).min(ACCEPT_BACKOFF_MAX));
        shared.count(|s| s.paused = true);
    }
    let source = ListenSource {
        socket: source.socket.clone(),
        shared,
    };
    schedule_resume(rt, source, config, delay);
}

/// Watches the listener again after `delay` (retrying with back-off if that fails).
fn schedule_resume<A: Accept, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    source: ListenSource<A>,
    config: ListenConfig<A, R>,
    delay: Duration,
) {
    let ListenSource { socket, shared } = source;
    let inner = shared.clone();
    let timer = rt.set_timeout(delay, move |rt| {
        inner.timer.set(None);
        inner.count(|s| s.paused = false);
        if inner.closed.get() {
            return;
        }
        let retry = socket.clone();
        if let Err(e) = watch_listener(rt, socket, inner.clone(), config.clone()) {
            let delay = inner.backoff.get();
            log::warn!(
                "net: resuming the listener on {:?} failed: {e}; retrying in {delay:?}",
                inner.local
            );
            inner.backoff.set((delay * 2).min(ACCEPT_BACKOFF_MAX));
            inner.count(|s| s.paused = true);
            let source = ListenSource {
                socket: retry,
                shared: inner.clone(),
            };
            schedule_resume(rt, source, config, delay);
        }
    });
    shared.timer.set(Some(timer));
}
