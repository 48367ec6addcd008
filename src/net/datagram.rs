//! The datagram machinery shared by [`udp`](crate::net::udp) and, on Unix,
//! `unix`'s datagram sockets: a socket watch that receives into one
//! buffer and hands each datagram to a callback.

use std::fmt;
use std::io;
use std::net::{SocketAddr, UdpSocket};

use super::stream::AsSocketHandle;
use super::{alloc_buffer, check_buffer, normalize_socket_error, not_reachable};
use crate::runtime::{Runtime, WatchOptions};
use crate::{Event, EventId, Interest, Reactor};

/// Datagrams received per event before the socket yields to other watches.
const RECVS_PER_EVENT: usize = 32;

mod sealed {
    pub trait Sealed {}
}

/// A datagram socket a [`DatagramState`] can drive: `std::net::UdpSocket`, and on Unix
/// `std::os::unix::net::UnixDatagram`. Sealed.
pub trait DatagramSocket: sealed::Sealed + AsSocketHandle + fmt::Debug + 'static {
    /// The sender's address type.
    type Addr: fmt::Debug;
    /// Receives one datagram (non-blocking).
    fn recv_datagram(&self, buf: &mut [u8]) -> io::Result<(usize, Self::Addr)>;
    /// Puts the socket in non-blocking mode.
    fn set_nonblocking_mode(&self) -> io::Result<()>;
}

impl sealed::Sealed for UdpSocket {}
impl DatagramSocket for UdpSocket {
    type Addr = SocketAddr;
    fn recv_datagram(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.recv_from(buf)
    }
    fn set_nonblocking_mode(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

#[cfg(unix)]
impl sealed::Sealed for std::os::unix::net::UnixDatagram {}
#[cfg(unix)]
impl DatagramSocket for std::os::unix::net::UnixDatagram {
    type Addr = std::os::unix::net::SocketAddr;
    fn recv_datagram(&self, buf: &mut [u8]) -> io::Result<(usize, Self::Addr)> {
        self.recv_from(buf)
    }
    fn set_nonblocking_mode(&self) -> io::Result<()> {
        self.set_nonblocking(true)
    }
}

/// The receive callback: each datagram and its sender, or a receive error.
type MessageCallback<D, R> =
    Box<dyn FnMut(&mut Runtime<R>, &D, io::Result<(&[u8], <D as DatagramSocket>::Addr)>)>;

/// A datagram socket's watch source (`udp::UdpState<R>` is `DatagramState<UdpSocket, R>`).
pub struct DatagramState<D: DatagramSocket, R: Reactor + 'static> {
    socket: D,
    buf: Box<[u8]>,
    on_message: MessageCallback<D, R>,
    /// A socket file to remove when the socket is closed (a Unix datagram socket bound to a
    /// path by this crate).
    #[cfg(unix)]
    file: Option<std::path::PathBuf>,
}

#[cfg(unix)]
impl<D: DatagramSocket, R: Reactor + 'static> std::os::fd::AsFd for DatagramState<D, R> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
#[cfg(windows)]
impl<D: DatagramSocket, R: Reactor + 'static> std::os::windows::io::AsSocket for DatagramState<D, R> {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.socket.as_socket()
    }
}

#[cfg(unix)]
impl<D: DatagramSocket, R: Reactor + 'static> Drop for DatagramState<D, R> {
    fn drop(&mut self) {
        if let Some(path) = self.file.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                log::debug!("net: removing {} failed: {e}", path.display());
            }
        }
    }
}

impl<D: DatagramSocket, R: Reactor + 'static> DatagramState<D, R> {
    /// The socket.
    pub fn socket(&self) -> &D {
        &self.socket
    }
}

impl<D: DatagramSocket, R: Reactor + 'static> fmt::Debug for DatagramState<D, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramState")
            .field("socket", &self.socket)
            .field("recv_buffer", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// Watches a bound datagram socket: `on_message` gets each datagram. `file` (Unix) is removed
/// when the socket is closed.
pub(crate) fn watch_datagram<D, R, F>(
    rt: &mut Runtime<R>,
    socket: D,
    watch: WatchOptions,
    recv_buffer: usize,
    #[cfg(unix)] file: Option<std::path::PathBuf>,
    on_message: F,
) -> io::Result<EventId>
where
    D: DatagramSocket,
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, &D, io::Result<(&[u8], D::Addr)>) + 'static,
{
    let mut buf = Vec::new();
    alloc_buffer(&mut buf, recv_buffer)?;
    socket.set_nonblocking_mode()?;
    let state = DatagramState {
        socket,
        buf: buf.into_boxed_slice(),
        on_message: Box::new(on_message),
        #[cfg(unix)]
        file,
    };
    rt.watch_with(state, Interest::READABLE, watch, datagram_event::<D, R>)
}

/// Checks a datagram socket's options before it is created.
pub(crate) fn check_options(watch: &WatchOptions, recv_buffer: usize) -> io::Result<()> {
    watch.check()?;
    check_buffer("the datagram receive buffer", recv_buffer)
}

fn datagram_event<D: DatagramSocket, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &mut DatagramState<D, R>,
    event: io::Result<Event>,
) {
    if let Err(e) = event {
        log::debug!("net: datagram socket {id} ended: {e}");
        (state.on_message)(rt, &state.socket, Err(e));
        return;
    }
    for _ in 0..RECVS_PER_EVENT {
        match state.socket.recv_datagram(&mut state.buf) {
            Ok((n, from)) => (state.on_message)(rt, &state.socket, Ok((&state.buf[..n], from))),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => (state.on_message)(rt, &state.socket, Err(normalize_socket_error(e))),
        }
    }
    // More may be waiting: be called back in the next iteration, after the other ready watches
    // had their turn (no syscall).
    let _ = rt.wake_watch(id);
}

/// Runs `f` with the socket of datagram watch `id`.
pub(crate) fn with_socket<D: DatagramSocket, R: Reactor + 'static, T>(
    rt: &mut Runtime<R>,
    id: EventId,
    f: impl FnOnce(&D) -> T,
) -> io::Result<T> {
    rt.source_mut::<DatagramState<D, R>>(id)
        .map(|state| f(&state.socket))
        .ok_or_else(|| not_reachable("datagram socket", id))
}

/// The error of a `send` on a socket without a peer: the documented `NotConnected` on every OS
/// (EDESTADDRREQ on Unix, WSAENOTCONN or WSAEINVAL on Windows and Wine), found by asking the
/// socket for its peer, on the error path only.
pub(crate) fn send_error(e: io::Error, peer: io::Result<()>) -> io::Error {
    match peer {
        Err(peer) if peer.kind() == io::ErrorKind::NotConnected => peer,
        _ => normalize_socket_error(e),
    }
}
