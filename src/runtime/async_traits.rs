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
        if is_std_stream::<T>() {
            return self.poll_stream_op(cx, true, buf.len(), |mut io| io.read(buf));
        }
        self.poll_read_with(cx, |mut io| io.read(buf))
    }

    /// Writes from `buf`, waiting for readiness.
    pub fn poll_write_from(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if is_std_stream::<T>() {
            return self.poll_stream_op(cx, false, buf.len(), |mut io| io.write(buf));
        }
        self.poll_write_with(cx, |mut io| io.write(buf))
    }

    /// Writes from `bufs` in one call where the source can (`writev` on std's sockets),
    /// waiting for readiness.
    pub fn poll_write_vectored_from(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if is_std_stream::<T>() {
            let len = bufs.iter().map(|b| b.len()).fold(0usize, usize::saturating_add);
            return self.poll_stream_op(cx, false, len, |mut io| io.write_vectored(bufs));
        }
        self.poll_write_with(cx, |mut io| io.write_vectored(bufs))
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

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_from(cx, bufs)
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
        #[cfg(unix)]
        if let Some(fd) = raw_stream_fd(self.get_ref()) {
            // std's sockets read with read(2) into the buffer's uninitialised part, as tokio's
            // own do: zeroing it first would cost a memset of the whole buffer per read, a
            // `WouldBlock` one included (hyper-util hands over a fresh uninitialised buffer
            // every time).
            let len = buf.remaining();
            let n = std::task::ready!(self.poll_stream_op(cx, true, len, |_| read_uninit(fd, buf)))?;
            // SAFETY: read(2) initialised the first `n` bytes of the unfilled part.
            unsafe { buf.assume_init(n) };
            buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        let n = std::task::ready!(self.poll_read_into(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// Whether `T` is one of std's stream sockets: a short read or write means the socket's
/// buffer is drained or full (see `Async::poll_stream_op`), which a source of another type,
/// e.g. of datagrams or with a buffer of its own, does not promise.
fn is_std_stream<T: 'static>() -> bool {
    use std::any::TypeId;
    let t = TypeId::of::<T>();
    #[cfg(unix)]
    if t == TypeId::of::<std::os::unix::net::UnixStream>() {
        return true;
    }
    t == TypeId::of::<std::net::TcpStream>()
}

/// The descriptor of `io` if it is one of std's stream sockets, whose `Read` is read(2) on it.
#[cfg(all(unix, feature = "tokio"))]
fn raw_stream_fd<T: 'static>(io: &T) -> Option<std::os::fd::RawFd> {
    use std::any::Any;
    use std::os::fd::AsRawFd;
    let io = io as &dyn Any;
    if let Some(s) = io.downcast_ref::<std::net::TcpStream>() {
        return Some(s.as_raw_fd());
    }
    io.downcast_ref::<std::os::unix::net::UnixStream>()
        .map(AsRawFd::as_raw_fd)
}

/// read(2) from `fd` into the unfilled part of `buf`, without initialising it first.
#[cfg(all(unix, feature = "tokio"))]
fn read_uninit(fd: std::os::fd::RawFd, buf: &mut tokio::io::ReadBuf<'_>) -> io::Result<usize> {
    // SAFETY: the slice is only written by read(2), never read; `assume_init` is called for
    // what it wrote.
    let unfilled = unsafe { buf.unfilled_mut() };
    // SAFETY: `fd` is open (borrowed from the `Async`'s source for this call) and the pointer
    // and length describe writable memory owned by `buf`.
    let n = unsafe { libc::read(fd, unfilled.as_mut_ptr().cast(), unfilled.len()) };
    // A negative count is an error; anything else fits usize.
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
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

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_from(cx, bufs)
    }

    /// True for std's sockets (whose `write_vectored` is one `writev`), so hyper and tokio's
    /// `write_all_buf` hand over their buffers as they are instead of copying them into one.
    fn is_write_vectored(&self) -> bool {
        is_std_stream::<T>()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_io(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown_write())
    }
}
