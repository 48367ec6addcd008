//! Callback-style networking on the [`Runtime`](crate::runtime::Runtime), for any backend.
//!
//! - [`tcp`]: listen and accept (with back-off on `EMFILE`/`ENFILE`), connect with a deadline,
//!   a persistent data callback fed from a per-connection buffer, queued writes with a bound and
//!   a drain callback, shutdown, close, `TCP_NODELAY`, addresses.
//!   Per-write completion callbacks and a shutdown callback.
//! - [`udp`]: bind, `send_to`, a receive callback, connect.
//! - `unix` (Unix only): Unix-domain stream sockets with the same connection API as TCP, and
//!   Unix datagram sockets.
//! - [`dns`]: host name resolution on the runtime's thread pool, with a deadline.
//! - [`stream`] and [`datagram`]: the machinery the socket types share (one connection
//!   implementation generic over the stream type, one receive loop for datagram sockets).
//!
//! Everything here is built on the runtime's public API only: every socket is a watch (so it is
//! registered through the [`Reactor`](crate::Reactor) trait and nothing else), and every wait
//! has the runtime's deadline semantics: when a watch's deadline passes, its callback gets
//! `ErrorKind::TimedOut` and the socket is closed.
//!
//! # Handles and contexts
//!
//! A connection's state (socket, read buffer, write queue, callbacks) is the source of its
//! watch. Two ways reach it:
//!
//! - inside the connection's own callbacks, the `&mut` context they are given
//!   ([`tcp::TcpConn`], `&UdpSocket`);
//! - anywhere else, a `Copy` handle wrapping the watch's [`EventId`]
//!   ([`tcp::Conn`], [`udp::Udp`]), which finds the state with
//!   [`Runtime::source_mut`](crate::runtime::Runtime::source_mut). While the connection's own
//!   callback runs, the runtime holds its state, so the handle's methods fail with
//!   `ErrorKind::NotFound` there: use the context instead.
//!
//! # Example
//!
//! An echo server and a client, on one loop:
//!
//! ```
//! use portable_reactor::net::tcp::{self, ConnectOptions, ListenOptions};
//! use portable_reactor::runtime::Runtime;
//!
//! let mut rt = Runtime::new()?;
//! let server = tcp::listen(&mut rt, "127.0.0.1:0".parse().unwrap(), ListenOptions::new(), |rt, conn| {
//!     let conn = conn.expect("accept");
//!     conn.on_data(rt, |rt, conn, data| match data {
//!         Ok(bytes) if !bytes.is_empty() => conn.write(rt, bytes).expect("echo"),
//!         _ => {} // EOF (the connection closes once its writes are flushed) or an error
//!     })
//!     .unwrap();
//! })?;
//! tcp::connect(&mut rt, server.local_addr(), ConnectOptions::new(), move |rt, conn| {
//!     let conn = conn.expect("connect");
//!     conn.write(rt, b"ping").unwrap();
//!     conn.on_data(rt, move |rt, conn, data| {
//!         assert_eq!(data.unwrap(), b"ping");
//!         conn.close(rt);
//!         server.close(rt);
//!     })
//!     .unwrap();
//! })?;
//! rt.run()?;
//! # std::io::Result::Ok(())
//! ```

pub mod aio;
pub mod datagram;
pub mod dns;
pub mod stream;
pub mod tcp;
pub mod udp;
#[cfg(unix)]
pub mod unix;

use std::io;

use crate::EventId;

/// The largest read buffer ([`tcp::ConnOptions::read_buffer`]) and receive buffer
/// ([`udp::UdpOptions::recv_buffer`]) a socket can have: 16 MiB, above any kernel socket
/// buffer's default limit, so a larger buffer would never fill. `listen`, `connect` and `bind`
/// refuse a larger setting with `ErrorKind::InvalidInput`.
pub const MAX_BUFFER: usize = 16 * 1024 * 1024;

/// Checks a buffer size against [`MAX_BUFFER`].
fn check_buffer(what: &str, bytes: usize) -> io::Result<()> {
    if bytes > MAX_BUFFER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} of {bytes} bytes is above net::MAX_BUFFER ({MAX_BUFFER} bytes)"),
        ));
    }
    Ok(())
}

/// A zeroed buffer of `bytes` bytes, or `ErrorKind::OutOfMemory` if it cannot be allocated
/// (never an abort: the size may come from a setting, and the moment from a peer's bytes).
#[inline]
fn alloc_buffer(buf: &mut Vec<u8>, bytes: usize) -> io::Result<()> {
    if buf.len() < bytes {
        return grow_buffer(buf, bytes);
    }
    Ok(())
}

/// The first use of a buffer (or a bigger one): fallible, out of the read path.
#[cold]
fn grow_buffer(buf: &mut Vec<u8>, bytes: usize) -> io::Result<()> {
    buf.try_reserve_exact(bytes - buf.len()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("cannot allocate a buffer of {bytes} bytes: {e}"),
        )
    })?;
    buf.resize(bytes, 0);
    Ok(())
}

/// Gives the socket errors std leaves without a stable `ErrorKind` (`Uncategorized` cannot be
/// matched by users) the kind the docs promise: a send without a destination is
/// `NotConnected`, a datagram too long for the socket (or, on Windows, for the receive
/// buffer) is `InvalidInput`.
fn normalize_socket_error(e: io::Error) -> io::Error {
    #[cfg(unix)]
    const CODES: [(i32, io::ErrorKind); 2] = [
        (libc::EDESTADDRREQ, io::ErrorKind::NotConnected),
        (libc::EMSGSIZE, io::ErrorKind::InvalidInput),
    ];
    // WSAEDESTADDRREQ, WSAEMSGSIZE.
    #[cfg(windows)]
    const CODES: [(i32, io::ErrorKind); 2] = [
        (10039, io::ErrorKind::NotConnected),
        (10040, io::ErrorKind::InvalidInput),
    ];
    match e
        .raw_os_error()
        .and_then(|code| CODES.iter().find(|(c, _)| *c == code))
    {
        Some(&(_, kind)) => io::Error::new(kind, e),
        None => e,
    }
}

/// The error of a handle whose watch is gone or is running its own callback.
fn not_reachable(what: &str, id: EventId) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "{what} {id} is closed, or is running its own callback (use the context the callback is given)"
        ),
    )
}

/// Whether an `accept` error means the process or system ran out of descriptors or buffers:
/// retrying at once would fail again, so the listener backs off.
///
/// `EMFILE` (24) and `ENFILE` (23) have these values on every Unix (Linux, the BSDs, macOS,
/// illumos); `ENOMEM` is `ErrorKind::OutOfMemory`. On Windows: `WSAEMFILE` (10024) and
/// `WSAENOBUFS` (10055).
pub(crate) fn is_resource_exhaustion(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    #[cfg(unix)]
    const CODES: [i32; 2] = [24, 23];
    #[cfg(windows)]
    const CODES: [i32; 2] = [10024, 10055];
    e.raw_os_error().is_some_and(|code| CODES.contains(&code))
}
/// Implements the platform's "borrow the handle" trait (so [`AsSource`](crate::AsSource)) for a
/// watch source by delegating to one of its fields.
macro_rules! delegate_source {
    ($ty:ident $(<$g:ident: $bound:path>)?, $($field:tt)+) => {
        #[cfg(unix)]
        impl$(<$g: $bound + 'static>)? std::os::fd::AsFd for $ty$(<$g>)? {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.$($field)+.as_fd()
            }
        }
        #[cfg(windows)]
        impl$(<$g: $bound + 'static>)? std::os::windows::io::AsSocket for $ty$(<$g>)? {
            fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
                self.$($field)+.as_socket()
            }
        }
    };
}
pub(crate) use delegate_source;
