//! What can be registered: any file descriptor on Unix, any socket on Windows.

/// A borrowed OS handle a reactor can watch: a `BorrowedFd` on Unix.
#[cfg(unix)]
pub type BorrowedSource<'a> = std::os::fd::BorrowedFd<'a>;
/// A borrowed OS handle a reactor can watch: a `BorrowedSocket` on Windows.
#[cfg(windows)]
pub type BorrowedSource<'a> = std::os::windows::io::BorrowedSocket<'a>;

/// The raw value of a source: a `RawFd` on Unix.
#[cfg(unix)]
pub type RawSource = std::os::fd::RawFd;
/// The raw value of a source: a `RawSocket` on Windows.
#[cfg(windows)]
pub type RawSource = std::os::windows::io::RawSocket;

/// Anything that can lend a [`BorrowedSource`]: every `AsFd` type on Unix (std and mio
/// sockets, pipes, `socket2::Socket`, ...), every `AsSocket` type on Windows.
///
/// ```
/// use portable_reactor::AsSource;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let _borrowed = listener.as_source();
/// # std::io::Result::Ok(())
/// ```
pub trait AsSource {
    /// Borrows the OS handle.
    fn as_source(&self) -> BorrowedSource<'_>;
}

#[cfg(unix)]
impl<T: std::os::fd::AsFd + ?Sized> AsSource for T {
    fn as_source(&self) -> BorrowedSource<'_> {
        self.as_fd()
    }
}

#[cfg(windows)]
impl<T: std::os::windows::io::AsSocket + ?Sized> AsSource for T {
    fn as_source(&self) -> BorrowedSource<'_> {
        self.as_socket()
    }
}

/// The raw value of a borrowed source.
pub(crate) fn raw(source: BorrowedSource<'_>) -> RawSource {
    #[cfg(unix)]
    {
        std::os::fd::AsRawFd::as_raw_fd(&source)
    }
    #[cfg(windows)]
    {
        std::os::windows::io::AsRawSocket::as_raw_socket(&source)
    }
}
