//! The I/O traits async libraries take, for [`Async`]: `futures_io::AsyncRead`/`AsyncWrite`
//! (feature `futures-io`) and `tokio::io::AsyncRead`/`AsyncWrite` (feature `tokio`), for any
//! source that reads and writes through a shared reference (`&TcpStream: Read + Write`, as
//! std's sockets and pipes do) and can shut its write half ([`HalfClose`]).

use std::io::{self, Read, Write};
#[cfg(any(feature = "futures-io", feature = "tokio"))]
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Async;
use crate::{AsSource, Reactor};

/// A source whose write half can be shut (a FIN on a stream socket): what `poll_close` /
/// `poll_shutdown` of the async write traits do. Implemented for std's TCP and Unix-domain
/// streams; implement it for your own source to get the traits for `Async<YourSource>`.
pub trait HalfClose {
    /// Shuts the write half.
    ///
    /// # Errors
    ///
    /// The OS error (`NotConnected` if the peer is gone on some systems).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl HalfClose for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

#[cfg(unix)]
impl HalfClose for std::os::unix::net::UnixStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<T, R> Async<T, R>
where
    T: AsSource + 'static,
    R: Reactor + 'static,
    for<'a> &'a T: Read + Write,
{
    /// Reads into `buf`, waiting for readiness (the polling form the traits use).
    pub fn poll_read_into(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_read_with(cx, |mut io| io.read(buf))
    }

    /// Writes from `buf`, waiting for readiness.
    pub fn poll_write_from(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_with(cx, |mut io| io.write(buf))
    }

    /// Flushes (a no-op for sockets), waiting for readiness.
    pub fn poll_flush_io(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_with(cx, |mut io| io.flush())
    }
}

#[cfg(feature = "futures-io")]
impl<T, R> futures_io::AsyncRead for Async<T, R>
where
    T: AsSource + 'static,
    R: Reactor + 'static,
    for<'a> &'a T: Read + Write,
{
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_read_into(cx, buf)
    }
}

#[cfg(feature = "futures-io")]
impl<T, R> futures_io::AsyncWrite for Async<T, R>
where
    T: AsSource + HalfClose + 'static,
    R: Reactor + 'static,
    for<'a> &'a T: Read + Write,
{
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_from(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_io(cx)
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown_write())
    }
}

#[cfg(feature = "tokio")]
impl<T, R> tokio::io::AsyncRead for Async<T, R>
where
    T: AsSource + 'static,
    R: Reactor + 'static,
    for<'a> &'a T: Read + Write,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = std::task::ready!(self.poll_read_into(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio")]
impl<T, R> tokio::io::AsyncWrite for Async<T, R>
where
    T: AsSource + HalfClose + 'static,
    R: Reactor + 'static,
    for<'a> &'a T: Read + Write,
{
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_from(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_io(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown_write())
    }
}
