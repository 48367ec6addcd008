//! The connection machinery shared by [`tcp`](crate::net::tcp) and, on Unix,
//! `unix`: one implementation of a stream connection on the runtime,
//! generic over the socket type ([`Stream`]).
//!
//! - [`Connection`]: a connection as its own callbacks see it (the context): data callback,
//!   queued writes with a bound, per-write completion callbacks, drain callback, pause/resume
//!   reading, half-open, shutdown (with a callback), close. `tcp::TcpConn<R>` is
//!   `Connection<TcpStream, R>`.
//! - [`Handle`]: the `Copy` handle of a connection, for use outside its callbacks. `tcp::Conn`
//!   is `Handle<TcpStream>`.
//! - [`StreamState`]: a connection's watch source (the connection and its read buffer).
//! - [`Listener`]: a listening socket with `EMFILE` back-off, for any [`Accept`] socket.
//!
//! The behaviour of a connection is described in [`tcp`](crate::net::tcp#connections); it is
//! the same for every stream type.
//!
//! Reads: on a readable event the connection reads into its buffer and hands each read to the
//! data callback, until the socket is empty. A read shorter than the buffer is taken for an
//! empty socket (no further read that would only find `EAGAIN`: one syscall per message
//! less) where the backend owes another event for anything that arrives later: on level-
//! triggered and re-armed watches always, on edge-triggered ones where the backend reports a
//! peer's shutdown as `read_closed` and the event did not (so an end of stream that came with
//! the last data is still read); not on Windows. [`Connection::read_calls`] counts the reads.

mod conn;
mod connect;
mod done;
mod event;
mod flags;
mod handle;
mod listener;
mod options;

pub use conn::Connection;
pub use handle::Handle;
pub use listener::{Accept, Listener, ListenerStats, ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN};
pub use options::{ConnOptions, ConnectOptions};

pub(crate) use connect::connect_stream;
pub(crate) use listener::listen_on_socket;

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::rc::Rc;

use crate::runtime::{Runtime, Trigger, WatchOptions};
use crate::{EventId, Interest, Mode, Reactor};

/// The default size of a connection's read buffer.
pub const DEFAULT_READ_BUFFER: usize = 64 * 1024;
/// The default bound on a connection's queued write bytes.
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 1024 * 1024;

/// Reads per event before the connection yields to others (it is woken again at once).
const READS_PER_EVENT: usize = 16;

mod sealed {
    pub trait Sealed {}
}

/// The OS handle trait a watch source must implement on this platform: `AsFd` on Unix.
#[cfg(unix)]
pub trait AsSocketHandle: std::os::fd::AsFd {}
#[cfg(unix)]
impl<T: std::os::fd::AsFd> AsSocketHandle for T {}
/// The OS handle trait a watch source must implement on this platform: `AsSocket` on Windows.
#[cfg(windows)]
pub trait AsSocketHandle: std::os::windows::io::AsSocket {}
#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket> AsSocketHandle for T {}

/// A connected stream socket a [`Connection`] can drive: `std::net::TcpStream`, and on Unix
/// `std::os::unix::net::UnixStream`. Sealed: the connection relies on the socket's
/// non-blocking semantics.
pub trait Stream: sealed::Sealed + AsSocketHandle + fmt::Debug + 'static {
    /// Reads into `buf` (non-blocking).
    fn read_some(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes from `buf` (non-blocking).
    fn write_some(&self, buf: &[u8]) -> io::Result<usize>;
    /// Shuts down the write direction (sends FIN).
    fn shutdown_write(&self) -> io::Result<()>;
    /// Puts the socket in non-blocking mode.
    fn set_nonblocking_mode(&self) -> io::Result<()>;
    /// The pending socket error (`SO_ERROR`), for a connect's completion.
    fn take_socket_error(&self) -> io::Result<Option<io::Error>>;
    /// Whether the socket has a peer (`Ok` once a connect completed).
    fn check_connected(&self) -> io::Result<()>;
    /// Applies the options specific to this socket type (`TCP_NODELAY`).
    fn apply_options(&self, options: &ConnOptions) -> io::Result<()>;
}

macro_rules! impl_stream {
    ($ty:ty, |$s:ident, $o:ident| $configure:expr) => {
        impl sealed::Sealed for $ty {}
        impl Stream for $ty {
            fn read_some(&self, buf: &mut [u8]) -> io::Result<usize> {
                let mut s: &$ty = self;
                s.read(buf)
            }
            fn write_some(&self, buf: &[u8]) -> io::Result<usize> {
                let mut s: &$ty = self;
                s.write(buf)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                self.shutdown(Shutdown::Write)
            }
            fn set_nonblocking_mode(&self) -> io::Result<()> {
                self.set_nonblocking(true)
            }
            fn take_socket_error(&self) -> io::Result<Option<io::Error>> {
                self.take_error()
            }
            fn check_connected(&self) -> io::Result<()> {
                self.peer_addr().map(drop)
            }
            fn apply_options(&self, options: &ConnOptions) -> io::Result<()> {
                let ($s, $o) = (self, options);
                $configure
            }
        }
    };
}
impl_stream!(TcpStream, |stream, options| if options.nodelay {
    stream.set_nodelay(true)
} else {
    Ok(())
});
#[cfg(unix)]
impl_stream!(std::os::unix::net::UnixStream, |_stream, _options| Ok(()));

/// What the connections of one [`ConnOptions`] (a listener's, or one connect's) share, kept
/// once so that an idle connection pays a pointer for it: the read buffer, allocated on first
/// use, and the write bound.
pub(crate) struct ConnShared {
    size: usize,
    /// [`ConnOptions::max_queued_bytes`] of the connections that share this buffer.
    pub(super) max_queued: usize,
    bytes: RefCell<Vec<u8>>,
}

impl ConnShared {
    pub(crate) fn new(options: &ConnOptions) -> Rc<ConnShared> {
        Rc::new(ConnShared {
            size: options.read_buffer,
            max_queued: options.max_queued_bytes,
            bytes: RefCell::new(Vec::new()),
        })
    }
}

/// A connection's watch source. `tcp::ConnState<R>` is `StreamState<TcpStream, R>`.
pub struct StreamState<S: Stream, R: Reactor + 'static> {
    conn: Connection<S, R>,
}

#[cfg(unix)]
impl<S: Stream, R: Reactor + 'static> std::os::fd::AsFd for StreamState<S, R> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.conn.stream.as_fd()
    }
}
#[cfg(windows)]
impl<S: Stream, R: Reactor + 'static> std::os::windows::io::AsSocket for StreamState<S, R> {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.conn.stream.as_socket()
    }
}

impl<S: Stream, R: Reactor + 'static> StreamState<S, R> {
    /// The connection, e.g. from [`Runtime::source_mut::<StreamState<S, R>>(id)`](Runtime::source_mut).
    pub fn conn(&mut self) -> &mut Connection<S, R> {
        &mut self.conn
    }
}

impl<S: Stream, R: Reactor + 'static> fmt::Debug for StreamState<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamState")
            .field("conn", &self.conn)
            .field("read_buffer", &self.conn.shared.size)
            .finish()
    }
}

/// Watches a connected stream as a connection.
pub(crate) fn adopt<S: Stream, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    stream: S,
    options: ConnOptions,
    shared: Rc<ConnShared>,
) -> io::Result<Handle<S>> {
    stream.set_nonblocking_mode()?;
    stream.apply_options(&options)?;
    let state = StreamState {
        conn: Connection::new(stream, &options, shared),
    };
    let id = rt.watch_with(
        state,
        Interest::READABLE,
        stream_watch(rt.reactor(), options.watch),
        event::conn_event::<S, R>,
    )?;
    // Whether a short read means drained: on a level-triggered or re-armed watch a socket
    // with data left is reported again, so always; on an edge-triggered one only where the
    // backend reports a peer's shutdown as `read_closed` (the end of a stream that came with
    // the last data brings no new edge: `read_ready` reads on for an event that carries it).
    // Not on Windows, whose backends emulate edges (as tokio).
    let short_read_drains = !cfg!(windows)
        && match rt.watch_mode(id)? {
            Mode::Edge => rt.reactor().hints().peer_shutdown_read_closed,
            _ => true,
        };
    if let Some(state) = rt.source_mut::<StreamState<S, R>>(id) {
        state.conn.id = id;
        state.conn.set_short_read_drains(short_read_drains);
    }
    Ok(Handle::from_id(id))
}

/// The watch options a connection registers with: as asked, except that an edge-triggered
/// watch becomes level-triggered (on Unix) where the backend has level-triggering and does not
/// report a peer's shutdown as `read_closed` (the `polling` adapter): there an edge-triggered
/// connection must read until `EAGAIN` after every message (the end of a stream that came with
/// the last data brings no new edge), where a level-triggered one takes a short read for a
/// drained socket. One syscall per message saved; the connection behaves the same either way
/// (its callbacks never see the events).
fn stream_watch<R: Reactor>(reactor: &R, watch: WatchOptions) -> WatchOptions {
    let edge_costs_a_read = cfg!(unix)
        && watch.trigger == Trigger::Edge
        && reactor.supports(Mode::Edge)
        && !reactor.hints().peer_shutdown_read_closed
        && reactor.supports(Mode::Level);
    if edge_costs_a_read {
        watch.trigger(Trigger::Level)
    } else {
        watch
    }
}

/// The placeholder id of a connection not watched yet.
const NO_ID: EventId = EventId(usize::MAX);
