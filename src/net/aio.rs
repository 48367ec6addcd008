//! TCP and UDP for tasks: `Async<std::net::TcpListener>`, `Async<std::net::TcpStream>` and
//! `Async<std::net::UdpSocket>` get `bind`, `accept`, `connect`, `read`, `write`,
//! `send_to`, `recv_from`... (as async-io's `Async` does), with the runtime's guarantees: every
//! socket is a watch, under the high watermark and with the runtime's deadline.
//!
//! ```
//! use portable_reactor::runtime::{Async, Runtime};
//! use std::net::{TcpListener, TcpStream};
//!
//! let mut rt = Runtime::new()?;
//! let local = rt.local();
//! let reply = rt.block_on(async move {
//!     let listener = Async::<TcpListener>::bind(&local, "127.0.0.1:0".parse().unwrap())?;
//!     let addr = listener.get_ref().local_addr()?;
//!     let server = local.spawn(async move {
//!         let (stream, _) = listener.accept().await?;
//!         let mut buf = [0; 5];
//!         stream.read_exact(&mut buf).await?;
//!         stream.write_all(&buf).await?;
//!         std::io::Result::Ok(())
//!     });
//!     let client = Async::<TcpStream>::connect(&local, addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut buf = [0; 5];
//!     client.read_exact(&mut buf).await?;
//!     server.await??;
//!     std::io::Result::Ok(buf)
//! })??;
//! assert_eq!(&reply, b"hello");
//! # std::io::Result::Ok(())
//! ```

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};

use socket2::{Domain, Protocol, Socket, Type};

use super::is_resource_exhaustion;
use super::tcp::{ACCEPT_BACKOFF_MAX, ACCEPT_BACKOFF_MIN, DEFAULT_BACKLOG};
use crate::runtime::{Async, Local, WatchOptions};
use crate::{AsSource, Reactor};

impl<R: Reactor + 'static> Async<TcpListener, R> {
    /// A listener on `addr` (backlog [`DEFAULT_BACKLOG`], `SO_REUSEADDR` on Unix), watched with
    /// no deadline (a listener idles legitimately).
    ///
    /// # Errors
    ///
    /// The OS error of creating, binding or listening.
    pub fn bind(local: &Local<R>, addr: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        #[cfg(unix)]
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(DEFAULT_BACKLOG)?;
        socket.set_nonblocking(true)?;
        Ok(Async::in_local(
            local,
            socket.into(),
            WatchOptions::new().no_timeout(),
        ))
    }

    /// Waits for a connection: the stream (non-blocking, watched with the runtime's default
    /// options) and the peer's address.
    ///
    /// When `accept` fails for lack of descriptors or buffers (`EMFILE`, `ENFILE`, `ENOMEM`;
    /// `WSAEMFILE`, `WSAENOBUFS`), it logs a warning and waits before trying again, as the
    /// callback [`tcp::listen`](super::tcp::listen) does: [`ACCEPT_BACKOFF_MIN`] first,
    /// doubling up to [`ACCEPT_BACKOFF_MAX`] while the failures last. Pending connections wait
    /// in the backlog meanwhile, nothing spins, and the future completes with the first
    /// connection accepted once descriptors are free. (Wrap it in
    /// [`Time::timeout`](crate::runtime::Time::timeout) to bound the wait.)
    ///
    /// # Errors
    ///
    /// The OS error of `accept` other than the ones above; `TimedOut` if the listener's own
    /// deadline passed (it has none unless its options set one).
    pub async fn accept(&self) -> io::Result<(Async<TcpStream, R>, SocketAddr)> {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let (stream, peer) = loop {
            match self.read_with(|listener| listener.accept()).await {
                Ok(accepted) => break accepted,
                Err(e) if is_resource_exhaustion(&e) => {
                    log::warn!("net: accept failed ({e}): pausing the listener for {backoff:?}");
                    self.local().time().sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(true)?;
        Ok((Async::in_local(self.local(), stream, WatchOptions::new()), peer))
    }
}

impl<R: Reactor + 'static> Async<TcpStream, R> {
    /// Connects to `addr` without blocking the loop; the wait for the handshake has the
    /// runtime's deadline.
    ///
    /// # Errors
    ///
    /// The connect error (`ConnectionRefused`...), `TimedOut` at the deadline.
    pub async fn connect(local: &Local<R>, addr: SocketAddr) -> io::Result<Self> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if in_progress(&e) => {}
            Err(e) => return Err(e),
        }
        let stream = Async::in_local(local, TcpStream::from(socket), WatchOptions::new());
        stream
            .write_with(|s| match s.take_error()? {
                Some(e) => Err(e),
                None => match s.peer_addr() {
                    Ok(_) => Ok(()),
                    // Still connecting.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                },
            })
            .await?;
        Ok(stream)
    }
}

/// The byte streams of `net::aio`: std's `TcpStream` and (on Unix) `UnixStream`. Sealed: a
/// short read or write of these means the socket's buffer is drained or full, which the
/// reads and writes below rely on (see `Async::poll_stream_op`).
pub trait AioStream: AsSource + sealed::Sealed + 'static
where
    for<'a> &'a Self: Read + Write,
{
    /// Shuts down one or both halves.
    #[doc(hidden)]
    fn shutdown_stream(&self, how: Shutdown) -> io::Result<()>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::TcpStream {}
    #[cfg(unix)]
    impl Sealed for std::os::unix::net::UnixStream {}
}

impl AioStream for TcpStream {
    fn shutdown_stream(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

#[cfg(unix)]
impl AioStream for UnixStream {
    fn shutdown_stream(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown(how)
    }
}

/// Reads and writes of a stream socket ([`AioStream`]: TCP, Unix-domain).
impl<S: AioStream, R: Reactor + 'static> Async<S, R>
where
    for<'a> &'a S: Read + Write,
{
    /// Reads into `buf`; 0 at the end of the stream.
    ///
    /// # Errors
    ///
    /// The OS error; `TimedOut` at the deadline.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        poll_fn(|cx| self.poll_stream_op(cx, true, len, |mut s| s.read(buf))).await
    }

    /// Reads exactly `buf.len()` bytes.
    ///
    /// # Errors
    ///
    /// `UnexpectedEof` if the stream ends first; as for [`read`](Self::read).
    pub async fn read_exact(&self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read(buf).await? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => buf = &mut buf[n..],
            }
        }
        Ok(())
    }

    /// Writes some of `buf`; returns how much.
    ///
    /// # Errors
    ///
    /// The OS error; `TimedOut` at the deadline.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_stream_op(cx, false, buf.len(), |mut s| s.write(buf))).await
    }

    /// Writes all of `buf`.
    ///
    /// # Errors
    ///
    /// As for [`write`](Self::write); `WriteZero` if the socket takes nothing.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write(buf).await? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Shuts down one or both halves.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.get_ref().shutdown_stream(how)
    }
}

impl<R: Reactor + 'static> Async<UdpSocket, R> {
    /// A UDP socket bound to `addr`, watched with the runtime's default options.
    ///
    /// # Errors
    ///
    /// The OS error of binding.
    pub fn bind(local: &Local<R>, addr: SocketAddr) -> io::Result<Self> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Async::in_local(local, socket, WatchOptions::new()))
    }

    /// Sends one datagram to `addr`.
    ///
    /// # Errors
    ///
    /// The OS error (`InvalidInput` for a datagram too long, as [`net::udp`](super::udp)).
    pub async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.write_with(|s| s.send_to(buf, addr))
            .await
            .map_err(super::normalize_socket_error)
    }

    /// Receives one datagram and its sender.
    ///
    /// # Errors
    ///
    /// The OS error; `TimedOut` at the deadline.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.read_with(|s| s.recv_from(buf)).await
    }
}

#[cfg(unix)]
impl<R: Reactor + 'static> Async<UnixListener, R> {
    /// A Unix-domain listener on `path`, watched with no deadline (as the TCP listener).
    ///
    /// # Errors
    ///
    /// The OS error of binding (`AddrInUse` if a file exists at `path`: see
    /// [`unix::ListenOptions::remove_stale`](super::unix::ListenOptions::remove_stale) for the
    /// callback listener's way of removing a stale one); `InvalidInput` for a path too long.
    pub fn bind(local: &Local<R>, path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let listener = UnixListener::bind(path.as_ref()).map_err(super::normalize_socket_error)?;
        listener.set_nonblocking(true)?;
        Ok(Async::in_local(local, listener, WatchOptions::new().no_timeout()))
    }

    /// Accepts a connection (watched with the runtime's default options), with the same
    /// back-off on `EMFILE`/`ENFILE`/`ENOMEM` as the TCP listener's `accept`.
    ///
    /// # Errors
    ///
    /// The OS error of `accept` other than those; `TimedOut` at the listener's own deadline.
    pub async fn accept(&self) -> io::Result<Async<UnixStream, R>> {
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let stream = loop {
            match self.read_with(|listener| listener.accept()).await {
                Ok((stream, _)) => break stream,
                Err(e) if is_resource_exhaustion(&e) => {
                    log::warn!("net: accept failed ({e}): pausing the listener for {backoff:?}");
                    self.local().time().sleep(backoff).await;
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(true)?;
        Ok(Async::in_local(self.local(), stream, WatchOptions::new()))
    }
}

#[cfg(unix)]
impl<R: Reactor + 'static> Async<UnixStream, R> {
    /// Connects to the Unix-domain listener at `path`. A Unix-domain connect completes or
    /// fails at once on every Unix this crate supports (no handshake to wait for).
    ///
    /// # Errors
    ///
    /// `NotFound` (no such socket file), `ConnectionRefused` (nothing listens there),
    /// `InvalidInput` (a path too long), other OS errors.
    pub fn connect(local: &Local<R>, path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let stream = UnixStream::connect(path.as_ref()).map_err(super::normalize_socket_error)?;
        stream.set_nonblocking(true)?;
        Ok(Async::in_local(local, stream, WatchOptions::new()))
    }
}

/// A non-blocking connect that has started: `EINPROGRESS` on Unix, `WSAEWOULDBLOCK` on Windows.
fn in_progress(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::WouldBlock {
        return true;
    }
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::EINPROGRESS)
    }
    #[cfg(not(unix))]
    {
        false
    }
}
