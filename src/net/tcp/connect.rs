//! Connecting without blocking, with a deadline.

use std::io;
use std::net::{SocketAddr, TcpStream};

use super::{Conn, ConnectOptions};
use crate::net::stream::connect_stream;
use crate::runtime::Runtime;
use crate::Reactor;

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
/// `ErrorKind::InvalidInput` for a read buffer above [`MAX_BUFFER`](crate::net::MAX_BUFFER);
/// the runtime's error if the connecting socket cannot be watched (`QuotaExceeded`). The
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
    options.conn.check()?;
    options.connect.check()?;
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
    connect_stream(rt, stream, addr.to_string(), options, callback)
}
