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
//! - **Write callbacks**: [`write_with`](TcpConn::write_with) is `write` with a callback that
//!   runs exactly once, from the loop, in write order (libuv's `uv_write` callback): `Ok` once
//!   the kernel has taken the bytes, `Err(Interrupted)` if the connection was closed with them
//!   still queued, or the connection's error (`TimedOut`, `ConnectionReset`, ...). A plain
//!   `write` allocates nothing per call; `write_with` only boxes its callback.
//! - **Backpressure**: [`pause_reading`](TcpConn::pause_reading) stops reading (the peer's
//!   data waits in the kernel and TCP flow control slows the peer), and
//!   [`resume_reading`](TcpConn::resume_reading) delivers what came meanwhile. With nothing to
//!   read or write the connection's watch is paused
//!   ([`Runtime::pause_watch`](crate::runtime::Runtime::pause_watch)): it leaves the OS and
//!   the high watermark, and keeps its idle deadline.
//! - **End**: after EOF the connection closes itself once its queued writes are flushed (Node's
//!   `allowHalfOpen: false`), or, with [`ConnOptions::allow_half_open`], stays open for writing
//!   until it is closed or shut down. [`shutdown`](TcpConn::shutdown) sends FIN after the queue
//!   is flushed and keeps reading; [`shutdown_with`](TcpConn::shutdown_with) also runs a
//!   callback once the FIN is sent. [`close`](TcpConn::close) closes at once and discards what
//!   is queued, except after a shutdown whose FIN is still pending: then it waits for the
//!   queued bytes and the FIN (within the connection's deadline) and closes after them.
//!
//! The connection types are the generic ones of [`net::stream`](crate::net::stream), over
//! `TcpStream`: [`TcpConn<R>`](TcpConn) is `Connection<TcpStream, R>` and [`Conn`] is
//! `Handle<TcpStream>`; Unix-domain connections (`net::unix`, Unix only) are the same
//! code over `UnixStream`.
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

pub use crate::net::stream::{
    ConnOptions, ConnectOptions, ListenerStats, ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN,
    DEFAULT_MAX_QUEUED_BYTES, DEFAULT_READ_BUFFER,
};
pub use connect::connect;
pub use listener::{listen, listen_on};

use std::net::{TcpListener, TcpStream};

use crate::net::stream;
use crate::runtime::WatchOptions;

/// A TCP connection as its own callbacks see it (the context).
pub type TcpConn<R> = stream::Connection<TcpStream, R>;
/// A TCP connection's watch source.
pub type ConnState<R> = stream::StreamState<TcpStream, R>;
/// A TCP connection's `Copy` handle, for use outside its callbacks.
pub type Conn = stream::Handle<TcpStream>;
/// A TCP listener's handle.
pub type Listener = stream::Listener<TcpListener>;

/// The default listen backlog (std's `TcpListener::bind` uses 128).
pub const DEFAULT_BACKLOG: i32 = 1024;

// ---- options ------------------------------------------------------------------------------

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
    pub(crate) watch: WatchOptions,
    pub(crate) conn: ConnOptions,
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
