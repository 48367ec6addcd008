//! TCP on the runtime: [`listen`], [`connect`], and connections ([`Conn`], [`TcpConn`]).
//!
//! # Connections
//!
//! A connection is a persistent watch whose source is its [`ConnState`]: the socket, a handle
//! to a read buffer ([`ConnOptions::read_buffer`] bytes, allocated on the first read and reused
//! for every read after it; the connections of one listener share one buffer, since a read's
//! bytes only live for its callback), and a write queue. An idle connection holds no buffer of
//! its own. Its life:
//!
//! - **Data**: the [`on_data`](Conn::on_data) callback gets each read as `Ok(&[u8])`, a slice
//!   of the connection's buffer (no allocation per event). `Ok(&[])` is the end of the stream
//!   (EOF). An `Err` is the last call: a reset (`ConnectionReset`), the watch's deadline
//!   (`TimedOut`), or another I/O error; the connection is closed after it.
//! - **Writes**: [`write`](TcpConn::write) hands the bytes to the kernel at once when nothing is
//!   queued, and queues what the kernel refuses; queued bytes are written as the socket becomes
//!   writable, and the [`on_drain`](TcpConn::on_drain) callback runs when the kernel has taken
//!   everything queued. At most [`ConnOptions::max_queued_bytes`] may wait: a write that would
//!   exceed it is refused whole with `ErrorKind::QuotaExceeded`.
//! - **Backpressure**: [`pause_reading`](TcpConn::pause_reading) stops reading (the peer's
//!   data waits in the kernel and TCP flow control slows the peer), and
//!   [`resume_reading`](TcpConn::resume_reading) delivers what came meanwhile. With nothing to
//!   read or write the connection's watch is paused
//!   ([`Runtime::pause_watch`](crate::runtime::Runtime::pause_watch)): it leaves the OS and
//!   the high watermark, and keeps its idle deadline.
//! - **End**: after EOF the connection closes itself once its queued writes are flushed (Node's
//!   `allowHalfOpen: false`), or, with [`ConnOptions::allow_half_open`], stays open for writing
//!   until it is closed or shut down. [`shutdown`](TcpConn::shutdown) sends FIN after the queue
//!   is flushed and keeps reading; [`close`](TcpConn::close) closes at once and discards what is
//!   queued.
//!
//! Set the data callback from the connection callback ([`listen`]'s or [`connect`]'s): until
//! one is set the connection does not read (data waits in the kernel; a level-triggered backend
//! reports it again meanwhile).
//!
//! # Per-OS behaviour
//!
//! A peer that resets the connection is reported as `Err(ConnectionReset)` on Linux (epoll and
//! poll(2)), and on Windows, where the kernel fails the read. Under Wine a Windows peer cannot
//! reset a connection (its `closesocket` sends FIN even with `SO_LINGER` 0 and unread data), so
//! there the reader sees EOF. Data that arrives together with the reset may be lost: that is
//! what a reset means on every OS.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::{delegate_source, is_resource_exhaustion, not_reachable};
use crate::runtime::{Runtime, TimerId, WatchOptions};
use crate::{Event, EventId, Interest, Reactor};

/// The default listen backlog (std's `TcpListener::bind` uses 128).
pub const DEFAULT_BACKLOG: i32 = 1024;
/// The default size of a connection's read buffer.
pub const DEFAULT_READ_BUFFER: usize = 64 * 1024;
/// The default bound on a connection's queued write bytes.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 1024 * 1024;
/// The first pause of a listener after `accept` ran out of descriptors; it doubles on each
/// further failure up to [`ACCEPT_BACKOFF_MAX`] and starts over after a successful accept.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// The longest pause of a listener after `accept` ran out of descriptors.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Reads per event before the connection yields to others (it is woken again at once).
const READS_PER_EVENT: usize = 16;
/// Accepts per event before the listener yields to others (it is woken again at once).
const ACCEPTS_PER_EVENT: usize = 64;

/// The data callback: each read, EOF as `Ok(&[])`, or the error that ends the connection.
type DataCallback<R> = Box<dyn FnMut(&mut Runtime<R>, &mut TcpConn<R>, io::Result<&[u8]>)>;
/// The drain callback.
type DrainCallback<R> = Box<dyn FnMut(&mut Runtime<R>, &mut TcpConn<R>)>;

// ---- options ------------------------------------------------------------------------------

/// Options of a connection, accepted or connected.
///
/// ```
/// use portable_reactor::net::tcp::ConnOptions;
/// use portable_reactor::runtime::WatchOptions;
/// use std::time::Duration;
/// let opts = ConnOptions::new()
///     .watch(WatchOptions::new().timeout(Duration::from_secs(30)))
///     .read_buffer(16 * 1024)
///     .max_queued_bytes(256 * 1024)
///     .nodelay(true);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug)]
pub struct ConnOptions {
    watch: WatchOptions,
    read_buffer: usize,
    max_queued_bytes: usize,
    nodelay: bool,
    allow_half_open: bool,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions::new()
    }
}

impl ConnOptions {
    /// The runtime's default deadline (an idle timeout), a 64 KiB read buffer, at most 1 MiB
    /// queued, Nagle's algorithm on.
    pub fn new() -> ConnOptions {
        ConnOptions {
            watch: WatchOptions::new(),
            read_buffer: DEFAULT_READ_BUFFER,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            nodelay: false,
            allow_half_open: false,
        }
    }

    /// The connection's watch options: its idle deadline and trigger.
    pub fn watch(mut self, watch: WatchOptions) -> ConnOptions {
        self.watch = watch;
        self
    }

    /// The size of the read buffer (at least 1 byte): allocated on the first read, shared by the
    /// connections of one listener, owned by a connection made with [`connect`].
    pub fn read_buffer(mut self, bytes: usize) -> ConnOptions {
        self.read_buffer = bytes.max(1);
        self
    }

    /// The most bytes a connection may hold queued for the kernel.
    pub fn max_queued_bytes(mut self, bytes: usize) -> ConnOptions {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets `TCP_NODELAY` on the connection.
    pub fn nodelay(mut self, on: bool) -> ConnOptions {
        self.nodelay = on;
        self
    }

    /// Keeps the connection open for writing after the peer's EOF (Node's `allowHalfOpen`).
    /// Off by default: after EOF the connection closes once its queued bytes are written. On, it
    /// stays until [`close`](TcpConn::close) (or until both directions are shut), its watch
    /// paused while it has nothing to write; its idle deadline still applies.
    pub fn allow_half_open(mut self, on: bool) -> ConnOptions {
        self.allow_half_open = on;
        self
    }
}

/// Options of [`listen`].
///
/// ```
/// use portable_reactor::net::tcp::{ConnOptions, ListenOptions};
/// let opts = ListenOptions::new().backlog(4096).conn(ConnOptions::new().nodelay(true));
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug)]
pub struct ListenOptions {
    backlog: i32,
    reuse_address: bool,
    watch: WatchOptions,
    conn: ConnOptions,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions::new()
    }
}

impl ListenOptions {
    /// A backlog of [`DEFAULT_BACKLOG`], `SO_REUSEADDR` on Unix, no deadline on the listener,
    /// [`ConnOptions::new`] for accepted connections.
    pub fn new() -> ListenOptions {
        ListenOptions {
            backlog: DEFAULT_BACKLOG,
            reuse_address: true,
            watch: WatchOptions::new().no_timeout(),
            conn: ConnOptions::new(),
        }
    }

    /// The listen backlog (the OS may cap it, e.g. at `net.core.somaxconn` on Linux).
    pub fn backlog(mut self, backlog: i32) -> ListenOptions {
        self.backlog = backlog;
        self
    }

    /// Sets `SO_REUSEADDR` before binding (Unix only: on Windows it would let another socket
    /// steal the port, so it is never set there).
    pub fn reuse_address(mut self, on: bool) -> ListenOptions {
        self.reuse_address = on;
        self
    }

    /// The listener's watch options. By default the listener has no deadline (the explicit
    /// opt-out: it waits for any peer, not on one); with one, a listener that sees no
    /// connection for that long is closed and its callback gets `ErrorKind::TimedOut`.
    pub fn watch(mut self, watch: WatchOptions) -> ListenOptions {
        self.watch = watch;
        self
    }

    /// Options of the accepted connections.
    pub fn conn(mut self, conn: ConnOptions) -> ListenOptions {
        self.conn = conn;
        self
    }
}

/// Options of [`connect`].
///
/// ```
/// use portable_reactor::net::tcp::ConnectOptions;
/// use std::time::Duration;
/// let opts = ConnectOptions::new().timeout(Duration::from_secs(3));
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct ConnectOptions {
    connect: WatchOptions,
    conn: ConnOptions,
}

impl ConnectOptions {
    /// The runtime's default deadline for the connect, [`ConnOptions::new`] for the connection.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// The connect's deadline: past it the callback gets `ErrorKind::TimedOut`.
    pub fn timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect = WatchOptions::new().timeout(timeout);
        self
    }

    /// The connect's watch options (its deadline; the trigger is ignored).
    pub fn connect_watch(mut self, watch: WatchOptions) -> ConnectOptions {
        self.connect = watch;
        self
    }

    /// Options of the connection once connected.
    pub fn conn(mut self, conn: ConnOptions) -> ConnectOptions {
        self.conn = conn;
        self
    }
}

// ---- listener -----------------------------------------------------------------------------

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
/// The OS error if the socket cannot be created, bound (`AddrInUse`, ...) or put to listen;
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
/// The OS error if the socket cannot be made non-blocking or has no local address; the
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

// ---- connect ------------------------------------------------------------------------------

/// Connects to `addr` without blocking and calls `callback` with the connection, or with the
/// error: `ConnectionRefused` when nothing listens there, `TimedOut` when the connect's
/// deadline ([`ConnectOptions::timeout`], else the runtime's default) passes first, or another
/// OS error. The callback always runs from the loop, never inside this call.
///
/// ```
/// use portable_reactor::net::tcp::{self, ConnectOptions};
/// use portable_reactor::runtime::Runtime;
/// use std::time::Duration;
///
/// let mut rt = Runtime::new()?;
/// // A port nothing listens on.
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let opts = ConnectOptions::new().timeout(Duration::from_secs(5));
/// tcp::connect(&mut rt, port, opts, |_, conn| {
///     assert_eq!(conn.unwrap_err().kind(), std::io::ErrorKind::ConnectionRefused);
/// })?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// The runtime's error if the connecting socket cannot be watched (`QuotaExceeded`); the
/// callback is then dropped unrun. Every other failure goes to the callback.
pub fn connect<R, F>(
    rt: &mut Runtime<R>,
    addr: SocketAddr,
    options: ConnectOptions,
    callback: F,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    // mio's connect creates a non-blocking socket and treats EINPROGRESS / WSAEWOULDBLOCK as
    // "in progress" on every OS.
    let stream = match mio::net::TcpStream::connect(addr) {
        Ok(stream) => stream,
        Err(e) => {
            rt.set_immediate(move |rt| callback(rt, Err(e)));
            return Ok(());
        }
    };
    #[cfg(unix)]
    let stream = TcpStream::from(std::os::fd::OwnedFd::from(stream));
    #[cfg(windows)]
    let stream = TcpStream::from(std::os::windows::io::OwnedSocket::from(stream));
    let id = rt.watch_once_with(
        stream,
        Interest::WRITABLE,
        options.connect,
        move |rt, stream, event| {
            let connected = event.and_then(|_| match stream.take_error()? {
                Some(e) => Err(e),
                None => stream.peer_addr().map(drop),
            });
            match connected {
                Ok(()) => {
                    let buffer = ReadBuffer::new(options.conn.read_buffer);
                    let conn = adopt(rt, stream, options.conn, buffer);
                    if let Ok(conn) = &conn {
                        log::debug!("net: connected to {addr} as {}", conn.0);
                    }
                    callback(rt, conn);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => callback(
                    rt,
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {addr} timed out"),
                    )),
                ),
                Err(e) => callback(rt, Err(e)),
            }
        },
    )?;
    log::debug!("net: connecting to {addr} as {id}");
    Ok(())
}

// ---- connections --------------------------------------------------------------------------

/// Watches a connected, non-blocking-capable stream as a connection.
fn adopt<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    stream: TcpStream,
    options: ConnOptions,
    buf: Rc<ReadBuffer>,
) -> io::Result<Conn> {
    stream.set_nonblocking(true)?;
    if options.nodelay {
        stream.set_nodelay(true)?;
    }
    let state = ConnState {
        conn: TcpConn {
            id: EventId(usize::MAX),
            stream,
            queue: Vec::new(),
            head: 0,
            max_queued: options.max_queued_bytes,
            interest: Some(Interest::READABLE),
            reading_paused: false,
            allow_half_open: options.allow_half_open,
            on_data: None,
            on_drain: None,
            want_drain: false,
            shutdown_pending: false,
            write_shut: false,
            eof: false,
            closed: false,
            unread: false,
        },
        buf,
    };
    let id = rt.watch_with(state, Interest::READABLE, options.watch, conn_event::<R>)?;
    if let Some(state) = rt.source_mut::<ConnState<R>>(id) {
        state.conn.id = id;
    }
    Ok(Conn(id))
}

/// A read buffer, shared by the connections of a listener, allocated on first use.
struct ReadBuffer {
    size: usize,
    bytes: RefCell<Vec<u8>>,
}

impl ReadBuffer {
    fn new(size: usize) -> Rc<ReadBuffer> {
        Rc::new(ReadBuffer {
            size,
            bytes: RefCell::new(Vec::new()),
        })
    }
}

/// A connection's watch source: the connection and its read buffer (kept apart so that the
/// data callback can borrow both).
pub struct ConnState<R: Reactor + 'static> {
    conn: TcpConn<R>,
    buf: Rc<ReadBuffer>,
}

delegate_source!(ConnState<R: Reactor>, conn.stream);

impl<R: Reactor + 'static> ConnState<R> {
    /// The connection, e.g. from [`Runtime::source_mut::<ConnState<R>>(id)`](Runtime::source_mut).
    pub fn conn(&mut self) -> &mut TcpConn<R> {
        &mut self.conn
    }
}

impl<R: Reactor + 'static> fmt::Debug for ConnState<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnState")
            .field("conn", &self.conn)
            .field("read_buffer", &self.buf.size)
            .finish()
    }
}

/// A connection as its own callbacks see it: its socket, write queue and callbacks.
///
/// Outside those callbacks, reach it through a [`Conn`] handle.
pub struct TcpConn<R: Reactor + 'static> {
    id: EventId,
    stream: TcpStream,
    /// Queued bytes are `queue[head..]`.
    queue: Vec<u8>,
    head: usize,
    max_queued: usize,
    /// The interest last asked of the runtime (`None`: the watch is paused).
    interest: Option<Interest>,
    /// [`pause_reading`](TcpConn::pause_reading) is in force.
    reading_paused: bool,
    allow_half_open: bool,
    on_data: Option<DataCallback<R>>,
    on_drain: Option<DrainCallback<R>>,
    /// A write was queued since the last drain.
    want_drain: bool,
    shutdown_pending: bool,
    write_shut: bool,
    /// The read side reached EOF.
    eof: bool,
    /// Closed (or closing) by this layer or the user through this context.
    closed: bool,
    /// A readable event came while no data callback was set.
    unread: bool,
}

impl<R: Reactor + 'static> fmt::Debug for TcpConn<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConn")
            .field("id", &self.id)
            .field("peer", &self.stream.peer_addr().ok())
            .field("queued", &self.queued_bytes())
            .field("eof", &self.eof)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<R: Reactor + 'static> TcpConn<R> {
    /// The `Copy` handle of this connection, for use outside its callbacks.
    pub fn handle(&self) -> Conn {
        Conn(self.id)
    }

    /// The connection's watch id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The socket, for options this module does not wrap. Do not read from or write to it
    /// directly: that would bypass the buffer and the write queue.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Bytes queued for the kernel.
    pub fn queued_bytes(&self) -> usize {
        self.queue.len() - self.head
    }

    /// Whether the read side reached EOF.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Sets the data callback: `Ok(bytes)` for each read (a slice of the connection's buffer),
    /// `Ok(&[])` at EOF, `Err` for the error that ends the connection. Replaces any previous one.
    pub fn on_data(
        &mut self,
        callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>, io::Result<&[u8]>) + 'static,
    ) {
        self.on_data = Some(Box::new(callback));
    }

    /// Sets the drain callback: it runs when the kernel has taken every queued byte, after a
    /// write had to queue. Replaces any previous one.
    pub fn on_drain(&mut self, callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>) + 'static) {
        self.on_drain = Some(Box::new(callback));
    }

    /// Writes `data`: what the kernel takes at once is sent, the rest queued and written as the
    /// socket becomes writable. Never blocks.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::QuotaExceeded` if `queued_bytes() + data.len()` would exceed the
    ///   connection's [`max_queued_bytes`](ConnOptions::max_queued_bytes): nothing of `data`
    ///   is written (so the bound also caps one write). Wait for the drain callback.
    /// - `ErrorKind::NotConnected` after [`close`](TcpConn::close); `ErrorKind::BrokenPipe`
    ///   after [`shutdown`](TcpConn::shutdown).
    /// - The OS error of the write (`BrokenPipe`, `ConnectionReset`, ...).
    pub fn write(&mut self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        self.queue_write(data)?;
        self.apply_interest(rt);
        Ok(())
    }

    /// Sends FIN once every queued byte is written; reading goes on until the peer's EOF.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotConnected` after close; the OS error of `shutdown(2)`.
    pub fn shutdown(&mut self) -> io::Result<()> {
        if self.closed {
            return Err(closed_error());
        }
        if self.write_shut || self.shutdown_pending {
            return Ok(());
        }
        if self.queued_bytes() == 0 {
            self.write_shut = true;
            self.stream.shutdown(Shutdown::Write)
        } else {
            self.shutdown_pending = true;
            Ok(())
        }
    }

    /// Closes the connection at once, discarding queued bytes: no callback of it runs after
    /// this. Closing twice does nothing.
    pub fn close(&mut self, rt: &mut Runtime<R>) {
        if !self.closed {
            self.closed = true;
            let _ = rt.close(self.id);
        }
    }

    /// [`close`](TcpConn::close), then runs `on_close` in the loop's close phase, after the
    /// socket is closed. `on_close` does not run if the connection was closed already.
    pub fn close_with(&mut self, rt: &mut Runtime<R>, on_close: impl FnOnce(&mut Runtime<R>) + 'static) {
        if !self.closed {
            self.closed = true;
            let _ = rt.close_with(self.id, on_close);
        }
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stream.set_nodelay(on)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error (`NotConnected` once the connection is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    fn queue_write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(closed_error());
        }
        if self.write_shut || self.shutdown_pending {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown of the connection",
            ));
        }
        let queued = self.queued_bytes();
        if queued.saturating_add(data.len()) > self.max_queued {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!(
                    "write of {} bytes refused: {queued} bytes already queued, at most {} allowed",
                    data.len(),
                    self.max_queued
                ),
            ));
        }
        let mut rest = data;
        if queued == 0 {
            while !rest.is_empty() {
                match (&self.stream).write(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
        if self.head > 0 && self.head >= self.queue.len() / 2 {
            self.queue.drain(..self.head);
            self.head = 0;
        }
        self.queue.extend_from_slice(rest);
        self.want_drain = true;
        Ok(())
    }

    /// The interest the connection needs now (`None`: nothing to wait for).
    fn wanted_interest(&self) -> Option<Interest> {
        let read = !self.eof && !self.reading_paused;
        match (read, self.queued_bytes() > 0) {
            (true, true) => Some(Interest::BOTH),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    fn apply_interest(&mut self, rt: &mut Runtime<R>) {
        if self.closed {
            return;
        }
        let wanted = self.wanted_interest();
        if wanted != self.interest && set_watch_interest(rt, self.id, self.interest, wanted).is_ok() {
            self.interest = wanted;
        }
    }

    /// Stops reading (backpressure: the peer's data waits in the kernel, and TCP flow control
    /// slows the peer down) until [`resume_reading`](TcpConn::resume_reading). Queued writes
    /// still go out.
    pub fn pause_reading(&mut self, rt: &mut Runtime<R>) {
        self.reading_paused = true;
        self.apply_interest(rt);
    }

    /// Reads again after [`pause_reading`](TcpConn::pause_reading); data that arrived meanwhile
    /// is delivered.
    pub fn resume_reading(&mut self, rt: &mut Runtime<R>) {
        self.reading_paused = false;
        self.apply_interest(rt);
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.reading_paused
    }

    /// Writes queued bytes; at the end of the queue runs a pending shutdown and the drain
    /// callback. An error ends the connection.
    fn flush(&mut self, rt: &mut Runtime<R>) {
        while self.head < self.queue.len() {
            match (&self.stream).write(&self.queue[self.head..]) {
                Ok(0) => {
                    self.fail(rt, io::ErrorKind::WriteZero.into());
                    return;
                }
                Ok(n) => self.head += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(rt, e);
                    return;
                }
            }
        }
        self.queue.clear();
        self.head = 0;
        if self.shutdown_pending {
            self.shutdown_pending = false;
            self.write_shut = true;
            if let Err(e) = self.stream.shutdown(Shutdown::Write) {
                self.fail(rt, e);
                return;
            }
        }
        if std::mem::take(&mut self.want_drain) {
            if let Some(mut callback) = self.on_drain.take() {
                callback(rt, self);
                if self.on_drain.is_none() {
                    self.on_drain = Some(callback);
                }
            }
        }
    }

    /// Delivers `error` to the data callback and closes.
    fn fail(&mut self, rt: &mut Runtime<R>, error: io::Error) {
        if self.closed {
            return;
        }
        log::debug!("net: connection {} failed: {error}", self.id);
        deliver(rt, self, Err(error));
        self.close(rt);
    }
}

/// Calls the data callback, keeping it unless it replaced itself.
fn deliver<R: Reactor + 'static>(rt: &mut Runtime<R>, conn: &mut TcpConn<R>, data: io::Result<&[u8]>) {
    let Some(mut callback) = conn.on_data.take() else {
        if let Err(e) = data {
            log::debug!("net: connection {} ended with no data callback: {e}", conn.id);
        }
        return;
    };
    callback(rt, conn, data);
    if conn.on_data.is_none() {
        conn.on_data = Some(callback);
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

/// A connection's watch callback.
fn conn_event<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &mut ConnState<R>,
    event: io::Result<Event>,
) {
    let conn = &mut state.conn;
    conn.id = id;
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            // The runtime ended the watch (deadline, or re-arming failed): it is gone.
            if !conn.closed {
                conn.closed = true;
                log::debug!("net: connection {id} ended: {e}");
                deliver(rt, conn, Err(e));
            }
            return;
        }
    };
    if conn.closed {
        return;
    }
    if conn.queued_bytes() > 0 {
        conn.flush(rt);
    }
    let readable = event.is_readable() || event.is_error() || event.is_read_closed();
    if readable && !conn.closed && !conn.eof {
        read_ready(rt, state);
    }
    settle(rt, &mut state.conn);
}

/// Reads until `WouldBlock`, EOF, an error, or the per-event limit.
fn read_ready<R: Reactor + 'static>(rt: &mut Runtime<R>, state: &mut ConnState<R>) {
    let ConnState { conn, buf } = state;
    // The shared buffer is only busy if a callback re-entered the loop from inside a read; then
    // this read gets a buffer of its own.
    let mut own = Vec::new();
    let mut shared = buf.bytes.try_borrow_mut().ok();
    let bytes: &mut Vec<u8> = match shared.as_deref_mut() {
        Some(bytes) => bytes,
        None => &mut own,
    };
    if bytes.len() < buf.size {
        bytes.resize(buf.size, 0);
    }
    for _ in 0..READS_PER_EVENT {
        if conn.closed || conn.eof || conn.reading_paused {
            return;
        }
        if conn.on_data.is_none() {
            conn.unread = true;
            return;
        }
        match (&conn.stream).read(bytes) {
            Ok(0) => {
                conn.eof = true;
                deliver(rt, conn, Ok(&[]));
                return;
            }
            Ok(n) => deliver(rt, conn, Ok(&bytes[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                conn.fail(rt, e);
                return;
            }
        }
    }
    // More may be waiting: be called back in the next iteration, after the other ready watches
    // had their turn (no syscall).
    let _ = rt.wake_watch(conn.id);
}

/// Moves a connection's watch from interest `old` to `wanted`: `None` pauses the watch (nothing
/// to wait for), and leaving `None` resumes it.
fn set_watch_interest<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    old: Option<Interest>,
    wanted: Option<Interest>,
) -> io::Result<()> {
    match wanted {
        _ if wanted == old => Ok(()),
        None => rt.pause_watch(id),
        Some(interest) => {
            rt.set_interest(id, interest)?;
            if old.is_none() {
                rt.resume_watch(id)?;
            }
            Ok(())
        }
    }
}

/// After an event: close a finished connection, or ask for the interest it needs.
fn settle<R: Reactor + 'static>(rt: &mut Runtime<R>, conn: &mut TcpConn<R>) {
    if conn.closed {
        return;
    }
    if conn.eof && conn.queued_bytes() == 0 && (!conn.allow_half_open || conn.write_shut) {
        log::debug!("net: connection {} closed after EOF", conn.id);
        conn.close(rt);
        return;
    }
    conn.apply_interest(rt);
}

/// A connection's handle: the `Copy` id of its watch.
///
/// Its methods find the connection with [`Runtime::source_mut`]; they fail with
/// `ErrorKind::NotFound` once the connection is closed, and while its own callback runs (use
/// the [`TcpConn`] that callback is given).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conn(pub EventId);

impl Conn {
    /// The connection's watch id.
    pub fn id(self) -> EventId {
        self.0
    }

    /// Runs `f` with the connection.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn with<R: Reactor + 'static, T>(
        self,
        rt: &mut Runtime<R>,
        f: impl FnOnce(&mut TcpConn<R>) -> T,
    ) -> io::Result<T> {
        rt.source_mut::<ConnState<R>>(self.0)
            .map(|state| f(&mut state.conn))
            .ok_or_else(|| not_reachable("connection", self.0))
    }

    /// [`TcpConn::on_data`]. If data arrived before the callback was set, it is read soon after.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn on_data<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        let conn = &mut rt
            .source_mut::<ConnState<R>>(self.0)
            .ok_or_else(|| not_reachable("connection", self.0))?
            .conn;
        conn.on_data(callback);
        if std::mem::take(&mut conn.unread) {
            // Be called back to read what is waiting (edge-triggered backends will not report it
            // again).
            rt.wake_watch(self.0)?;
        }
        Ok(())
    }

    /// [`TcpConn::on_drain`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn on_drain<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>) + 'static,
    ) -> io::Result<()> {
        self.with(rt, |conn| conn.on_drain(callback))
    }

    /// [`TcpConn::write`].
    ///
    /// # Errors
    ///
    /// As for [`TcpConn::write`]; `ErrorKind::NotFound` if the connection is closed or running
    /// its own callback.
    pub fn write<R: Reactor + 'static>(self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        let (old, wanted) = self.with(rt, |conn| -> io::Result<_> {
            conn.queue_write(data)?;
            let old = conn.interest;
            conn.interest = conn.wanted_interest();
            Ok((old, conn.interest))
        })??;
        set_watch_interest(rt, self.0, old, wanted)
    }

    /// [`TcpConn::pause_reading`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn pause_reading<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_reading_paused(rt, true)
    }

    /// [`TcpConn::resume_reading`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn resume_reading<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_reading_paused(rt, false)
    }

    fn set_reading_paused<R: Reactor + 'static>(self, rt: &mut Runtime<R>, paused: bool) -> io::Result<()> {
        let (old, wanted) = self.with(rt, |conn| {
            conn.reading_paused = paused;
            let old = conn.interest;
            conn.interest = conn.wanted_interest();
            (old, conn.interest)
        })?;
        set_watch_interest(rt, self.0, old, wanted)
    }

    /// [`TcpConn::shutdown`].
    ///
    /// # Errors
    ///
    /// As for [`TcpConn::shutdown`]; `ErrorKind::NotFound` if the connection is closed or running
    /// its own callback.
    pub fn shutdown<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.with(rt, |conn| conn.shutdown())?
    }

    /// Closes the connection at once, discarding queued bytes.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already.
    pub fn close<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        rt.close(self.0)
    }

    /// Closes the connection at once and runs `on_close` in the loop's close phase, after the
    /// socket is closed.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already (`on_close` is dropped unrun).
    pub fn close_with<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        on_close: impl FnOnce(&mut Runtime<R>) + 'static,
    ) -> io::Result<()> {
        rt.close_with(self.0, on_close)
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the connection is closed or running its own
    /// callback.
    pub fn set_nodelay<R: Reactor + 'static>(self, rt: &mut Runtime<R>, on: bool) -> io::Result<()> {
        self.with(rt, |conn| conn.set_nodelay(on))?
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the connection is closed or running its own
    /// callback.
    pub fn local_addr<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<SocketAddr> {
        self.with(rt, |conn| conn.local_addr())?
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the connection is closed or running its own
    /// callback.
    pub fn peer_addr<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<SocketAddr> {
        self.with(rt, |conn| conn.peer_addr())?
    }

    /// Bytes queued for the kernel.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn queued_bytes<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<usize> {
        self.with(rt, |conn| conn.queued_bytes())
    }
}
