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

mod conn;
mod connect;
mod listener;

pub use conn::{Conn, ConnState, TcpConn};
pub use connect::connect;
pub use listener::{listen, listen_on, Listener, ListenerStats};

use std::io;
use std::time::Duration;

use crate::runtime::WatchOptions;

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

    /// The size of the read buffer: at least 1 byte (0 is taken as 1), at most
    /// [`MAX_BUFFER`](crate::net::MAX_BUFFER) (checked by [`listen`] and [`connect`], which
    /// refuse a larger one with `InvalidInput`). Allocated on the first read, shared by the
    /// connections of one listener, owned by a connection made with [`connect`]. If it cannot
    /// be allocated then, the connection's data callback gets `ErrorKind::OutOfMemory` and the
    /// connection closes (the process never aborts).
    pub fn read_buffer(mut self, bytes: usize) -> ConnOptions {
        self.read_buffer = bytes.max(1);
        self
    }

    /// Checks what cannot be honoured: a read buffer above [`MAX_BUFFER`](crate::net::MAX_BUFFER).
    fn check(&self) -> io::Result<()> {
        self.watch.check()?;
        crate::net::check_buffer("the read buffer", self.read_buffer)
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
