//! Listening: the accept watch, its `EMFILE` back-off, and the [`Listener`] handle.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::conn::{adopt, ReadBuffer};
use super::*;
use crate::net::{delegate_source, is_resource_exhaustion};
use crate::runtime::{Runtime, TimerId};
use crate::{Event, EventId, Interest, Reactor};

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
struct ListenerShared {
    local: SocketAddr,
    /// The read buffer every connection of this listener reads into.
    read_buffer: Rc<ReadBuffer>,
    watch: Cell<Option<EventId>>,
    timer: Cell<Option<TimerId>>,
    closed: Cell<bool>,
    backoff: Cell<Duration>,
    stats: Cell<ListenerStats>,
}

impl ListenerShared {
    fn count(&self, f: impl FnOnce(&mut ListenerStats)) {
        let mut stats = self.stats.get();
        f(&mut stats);
        self.stats.set(stats);
    }
}

/// The listener watch's source: the socket, shared with the back-off timer so that a pause
/// (which ends the watch) keeps it open.
struct ListenSource {
    socket: Rc<TcpListener>,
    shared: Rc<ListenerShared>,
}

delegate_source!(ListenSource, socket);

/// A listening socket started by [`listen`]. Cloning gives another handle to the same
/// listener; dropping handles does not close it (its watch keeps it): [`close`](Listener::close)
/// does.
#[derive(Clone)]
pub struct Listener {
    shared: Rc<ListenerShared>,
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.shared.local)
            .field("id", &self.id())
            .field("closed", &self.shared.closed.get())
            .finish()
    }
}

impl Listener {
    /// The address the listener is bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
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

    /// Stops listening and closes the socket (also from inside the connection callback).
    /// Accepted connections stay open. Closing twice does nothing.
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
        log::debug!("net: listener on {} closed", self.shared.local);
    }
}

/// Binds a TCP listener to `addr` and calls `on_connection` with each accepted connection.
///
/// The listener is a persistent watch (no deadline unless [`ListenOptions::watch`] sets one).
/// When `accept` fails for lack of descriptors (`EMFILE`, `ENFILE`, `ENOMEM`; `WSAEMFILE`,
/// `WSAENOBUFS` on Windows), the listener logs a warning and pauses: its watch ends (so a
/// level-triggered backend does not spin on the pending connection) and a timer resumes it
/// after [`ACCEPT_BACKOFF_MIN`], doubling up to [`ACCEPT_BACKOFF_MAX`] while the failures last.
/// Pending connections wait in the backlog meanwhile and are accepted when descriptors are
/// free again. Those failures are not passed to `on_connection`; other `accept` errors are
/// (then the listener pauses too), and so is a connection the runtime refused to watch
/// (`ErrorKind::QuotaExceeded` past its high watermark and queue; the connection is closed).
/// If the listener's deadline passes, `on_connection` gets `ErrorKind::TimedOut` and the
/// listener is closed.
///
/// ```
/// use portable_reactor::net::tcp::{self, ListenOptions};
/// use portable_reactor::runtime::Runtime;
/// use std::io::Read;
///
/// let mut rt = Runtime::new()?;
/// let listener = tcp::listen(&mut rt, "127.0.0.1:0".parse().unwrap(), ListenOptions::new(), |rt, conn| {
///     let conn = conn.expect("accepted");
///     conn.write(rt, b"hello\n").unwrap();
///     conn.shutdown(rt).unwrap(); // FIN once the queue is flushed (at once here)
///     rt.stop();
/// })?;
/// let addr = listener.local_addr();
/// let client = std::thread::spawn(move || {
///     let mut text = String::new();
///     std::net::TcpStream::connect(addr)?.read_to_string(&mut text)?;
///     std::io::Result::Ok(text)
/// });
/// rt.run()?;
/// assert_eq!(client.join().unwrap()?, "hello\n");
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// `ErrorKind::InvalidInput` for a read buffer above [`MAX_BUFFER`](crate::net::MAX_BUFFER);
/// the OS error if the socket cannot be created, bound (`AddrInUse`, ...) or put to listen;
/// the runtime's error if it cannot be watched (`QuotaExceeded`).
pub fn listen<R, F>(
    rt: &mut Runtime<R>,
    addr: SocketAddr,
    options: ListenOptions,
    on_connection: F,
) -> io::Result<Listener>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    options.conn.check()?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    if options.reuse_address {
        socket.set_reuse_address(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(options.backlog)?;
    listen_on(rt, socket.into(), options, on_connection)
}

/// [`listen`] on a listener the caller bound already (e.g. one inherited or bound with other
/// options). It is put in non-blocking mode; `options.backlog` and `reuse_address` are not used.
///
/// # Errors
///
/// `ErrorKind::InvalidInput` for a read buffer above [`MAX_BUFFER`](crate::net::MAX_BUFFER);
/// the OS error if the socket cannot be made non-blocking or has no local address; the
/// runtime's error if it cannot be watched.
pub fn listen_on<R, F>(
    rt: &mut Runtime<R>,
    listener: TcpListener,
    options: ListenOptions,
    on_connection: F,
) -> io::Result<Listener>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    options.conn.check()?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let shared = Rc::new(ListenerShared {
        local,
        read_buffer: ReadBuffer::new(options.conn.read_buffer),
        watch: Cell::new(None),
        timer: Cell::new(None),
        closed: Cell::new(false),
        backoff: Cell::new(ACCEPT_BACKOFF_MIN),
        stats: Cell::new(ListenerStats::default()),
    });
    let on_connection = Rc::new(RefCell::new(on_connection));
    watch_listener(rt, Rc::new(listener), shared.clone(), options, on_connection)?;
    log::debug!("net: listening on {local}");
    Ok(Listener { shared })
}

fn watch_listener<R, F>(
    rt: &mut Runtime<R>,
    socket: Rc<TcpListener>,
    shared: Rc<ListenerShared>,
    options: ListenOptions,
    on_connection: Rc<RefCell<F>>,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    let source = ListenSource {
        socket,
        shared: shared.clone(),
    };
    let id = rt.watch_with(
        source,
        Interest::READABLE,
        options.watch,
        move |rt, id, source: &mut ListenSource, event| {
            accept_ready(rt, id, source, event, options, &on_connection);
        },
    )?;
    log::debug!("net: listener on {} watched as {id}", shared.local);
    shared.watch.set(Some(id));
    Ok(())
}

fn accept_ready<R, F>(
    rt: &mut Runtime<R>,
    id: EventId,
    source: &mut ListenSource,
    event: io::Result<Event>,
    options: ListenOptions,
    on_connection: &Rc<RefCell<F>>,
) where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    let shared = source.shared.clone();
    if let Err(e) = event {
        // The watch is gone (its deadline passed, or re-arming failed).
        shared.watch.set(None);
        shared.closed.set(true);
        (on_connection.borrow_mut())(rt, Err(e));
        return;
    }
    for _ in 0..ACCEPTS_PER_EVENT {
        if shared.closed.get() {
            return;
        }
        shared.count(|s| s.accept_calls += 1);
        match source.socket.accept() {
            Ok((stream, peer)) => {
                shared.backoff.set(ACCEPT_BACKOFF_MIN);
                shared.count(|s| s.accepted += 1);
                let conn = adopt(rt, stream, options.conn, shared.read_buffer.clone());
                if let Ok(conn) = &conn {
                    log::debug!("net: accepted {peer} on {} as {}", shared.local, conn.0);
                }
                (on_connection.borrow_mut())(rt, conn);
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
                        "net: accept on {} failed: {e}; pausing the listener for {delay:?}",
                        shared.local
                    );
                } else {
                    log::warn!(
                        "net: accept on {} failed: {e}; pausing for {delay:?}",
                        shared.local
                    );
                }
                pause(rt, id, source, options, on_connection.clone(), delay);
                if !is_resource_exhaustion(&e) {
                    (on_connection.borrow_mut())(rt, Err(e));
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
fn pause<R, F>(
    rt: &mut Runtime<R>,
    id: EventId,
    source: &ListenSource,
    options: ListenOptions,
    on_connection: Rc<RefCell<F>>,
    delay: Duration,
) where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
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
    schedule_resume(rt, source, options, on_connection, delay);
}

/// Watches the listener again after `delay` (retrying with back-off if that fails).
fn schedule_resume<R, F>(
    rt: &mut Runtime<R>,
    source: ListenSource,
    options: ListenOptions,
    on_connection: Rc<RefCell<F>>,
    delay: Duration,
) where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    let ListenSource { socket, shared } = source;
    let inner = shared.clone();
    let timer = rt.set_timeout(delay, move |rt| {
        inner.timer.set(None);
        inner.count(|s| s.paused = false);
        if inner.closed.get() {
            return;
        }
        let retry = socket.clone();
        if let Err(e) = watch_listener(rt, socket, inner.clone(), options, on_connection.clone()) {
            let delay = inner.backoff.get();
            log::warn!(
                "net: resuming the listener on {} failed: {e}; retrying in {delay:?}",
                inner.local
            );
            inner.backoff.set((delay * 2).min(ACCEPT_BACKOFF_MAX));
            inner.count(|s| s.paused = true);
            let source = ListenSource {
                socket: retry,
                shared: inner.clone(),
            };
            schedule_resume(rt, source, options, on_connection, delay);
        }
    });
    shared.timer.set(Some(timer));
}
