//! Listening on TCP: [`listen`] and [`listen_on`] (the accept machinery is
//! [`stream::Listener`](crate::net::stream::Listener)'s).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use super::{Conn, ListenOptions, Listener};
use crate::net::stream::listen_on_socket;
use crate::runtime::Runtime;
use crate::Reactor;

/// Binds a TCP listener to `addr` and calls `on_connection` with each accepted connection.
///
/// The listener is a persistent watch (no deadline unless [`ListenOptions::watch`] sets one).
/// When `accept` fails for lack of descriptors (`EMFILE`, `ENFILE`, `ENOMEM`; `WSAEMFILE`,
/// `WSAENOBUFS` on Windows), the listener logs a warning and pauses: its watch ends (so a
/// level-triggered backend does not spin on the pending connection) and a timer resumes it
/// after [`ACCEPT_BACKOFF_MIN`](super::ACCEPT_BACKOFF_MIN), doubling up to [`ACCEPT_BACKOFF_MAX`](super::ACCEPT_BACKOFF_MAX) while the failures last.
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
    listen_on_socket(rt, listener, options.watch, options.conn, None, on_connection)
}
