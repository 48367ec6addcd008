//! UDP on the runtime: [`bind`] a socket with a receive callback, [`Udp::send_to`],
//! [`Udp::connect`].
//!
//! Datagrams are not queued: a send the kernel cannot take now fails with `WouldBlock` (the
//! datagram is dropped, as UDP may do anyway). Each received datagram is passed to the callback
//! as a slice of the socket's receive buffer, allocated once; a datagram longer than the buffer
//! is truncated (on Windows the receive fails with `InvalidInput` instead). Receive errors (e.g.
//! `ConnectionRefused` / `ConnectionReset` after an ICMP port unreachable) are passed to the
//! callback and the socket stays open; only the watch's deadline (`TimedOut`) ends it.

use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::datagram::{self, check_options, send_error, watch_datagram, with_socket};
use super::normalize_socket_error;
use crate::runtime::{Runtime, WatchOptions};
use crate::{EventId, Reactor};

/// The default size of a UDP socket's receive buffer: the largest UDP payload.
pub const DEFAULT_RECV_BUFFER: usize = 65_535;

/// A UDP socket's watch source.
pub type UdpState<R> = datagram::DatagramState<UdpSocket, R>;

/// Options of [`bind`].
///
/// ```
/// use portable_reactor::net::udp::UdpOptions;
/// use portable_reactor::runtime::WatchOptions;
/// let server = UdpOptions::new().watch(WatchOptions::new().no_timeout()).recv_buffer(1500);
/// # let _ = server;
/// ```
#[derive(Copy, Clone, Debug)]
pub struct UdpOptions {
    watch: WatchOptions,
    recv_buffer: usize,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions::new()
    }
}

impl UdpOptions {
    /// The runtime's default deadline (an idle timeout: a socket that receives nothing for
    /// that long is closed with `TimedOut`), a 64 KiB receive buffer.
    pub fn new() -> UdpOptions {
        UdpOptions {
            watch: WatchOptions::new(),
            recv_buffer: DEFAULT_RECV_BUFFER,
        }
    }

    /// The socket's watch options; a server usually wants `WatchOptions::new().no_timeout()`.
    pub fn watch(mut self, watch: WatchOptions) -> UdpOptions {
        self.watch = watch;
        self
    }

    /// The receive buffer's size: at least 1 byte (0 is taken as 1), at most
    /// [`MAX_BUFFER`](super::MAX_BUFFER) (checked by [`bind`]). A datagram longer than the
    /// buffer is truncated on Unix and fails with `InvalidInput` on Windows.
    pub fn recv_buffer(mut self, bytes: usize) -> UdpOptions {
        self.recv_buffer = bytes.max(1);
        self
    }
}

/// Binds a UDP socket to `addr` and calls `on_message` with each datagram received and its
/// sender, or with a receive error. The callback gets the socket too, to reply with
/// `socket.send_to(..)`.
///
/// ```
/// use portable_reactor::net::udp::{self, UdpOptions};
/// use portable_reactor::runtime::Runtime;
///
/// let mut rt = Runtime::new()?;
/// let server = udp::bind(&mut rt, "127.0.0.1:0".parse().unwrap(), UdpOptions::new(), |rt, socket, msg| {
///     let (data, from) = msg.expect("datagram");
///     socket.send_to(data, from).unwrap(); // echo
/// })?;
/// let server_addr = server.local_addr(&mut rt)?;
/// let client = udp::bind(&mut rt, "127.0.0.1:0".parse().unwrap(), UdpOptions::new(), move |rt, _, msg| {
///     assert_eq!(msg.unwrap(), (&b"ping"[..], server_addr));
///     rt.stop();
/// })?;
/// client.send_to(&mut rt, b"ping", server_addr)?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// `ErrorKind::InvalidInput` if the receive buffer is above [`MAX_BUFFER`](super::MAX_BUFFER),
/// `OutOfMemory` if it cannot be allocated; the OS error if the socket cannot be bound; the
/// runtime's error if it cannot be watched.
pub fn bind<R, F>(
    rt: &mut Runtime<R>,
    addr: SocketAddr,
    options: UdpOptions,
    on_message: F,
) -> io::Result<Udp>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, &UdpSocket, io::Result<(&[u8], SocketAddr)>) + 'static,
{
    check_options(&options.watch, options.recv_buffer)?;
    let socket = UdpSocket::bind(addr)?;
    let local = socket.local_addr()?;
    let id = watch_datagram(
        rt,
        socket,
        options.watch,
        options.recv_buffer,
        #[cfg(unix)]
        None,
        on_message,
    )?;
    log::debug!("net: udp socket on {local} watched as {id}");
    Ok(Udp(id))
}

/// A UDP socket's handle: the `Copy` id of its watch.
///
/// Its methods find the socket with [`Runtime::source_mut`]; they fail with
/// `ErrorKind::NotFound` once it is closed, and while its own callback runs (use the
/// `&UdpSocket` that callback is given).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Udp(pub EventId);

impl Udp {
    /// The socket's watch id.
    pub fn id(self) -> EventId {
        self.0
    }

    /// Runs `f` with the socket.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the socket is closed or running its own callback.
    pub fn with<R: Reactor + 'static, T>(
        self,
        rt: &mut Runtime<R>,
        f: impl FnOnce(&UdpSocket) -> T,
    ) -> io::Result<T> {
        with_socket(rt, self.0, f)
    }

    /// Sends one datagram to `addr`; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// `WouldBlock` if the kernel cannot take it now (it is not queued); `InvalidInput` if it is
    /// longer than the socket can send in one datagram (e.g. 65,507 bytes for IPv4); the OS
    /// error; `ErrorKind::NotFound` if the socket is closed or running its own callback.
    pub fn send_to<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        data: &[u8],
        addr: SocketAddr,
    ) -> io::Result<usize> {
        self.with(rt, |socket| {
            socket.send_to(data, addr).map_err(normalize_socket_error)
        })?
    }

    /// Sets the default peer: [`send`](Udp::send) goes to it, and only its datagrams are
    /// received.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the socket is closed or running its own callback.
    pub fn connect<R: Reactor + 'static>(self, rt: &mut Runtime<R>, addr: SocketAddr) -> io::Result<()> {
        self.with(rt, |socket| socket.connect(addr))?
    }

    /// Sends one datagram to the connected peer; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// As for [`send_to`](Udp::send_to); `NotConnected` without [`connect`](Udp::connect).
    pub fn send<R: Reactor + 'static>(self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<usize> {
        self.with(rt, |socket| {
            socket
                .send(data)
                .map_err(|e| send_error(e, socket.peer_addr().map(drop)))
        })?
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the socket is closed or running its own callback.
    pub fn local_addr<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<SocketAddr> {
        self.with(rt, |socket| socket.local_addr())?
    }

    /// Closes the socket (also from inside its callback, through `rt.close(id)`).
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already.
    pub fn close<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        rt.close(self.0)
    }

    /// Closes the socket and runs `on_close` in the loop's close phase.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already.
    pub fn close_with<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        on_close: impl FnOnce(&mut Runtime<R>) + 'static,
    ) -> io::Result<()> {
        rt.close_with(self.0, on_close)
    }
}
