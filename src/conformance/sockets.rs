//! Sockets (and pipes) for the suite, all non-blocking, all on the loopback interface.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};

use super::arrive;

/// The loopback address with an OS-chosen port.
pub(super) fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// A connected pair of non-blocking TCP streams.
pub(super) fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(loopback()).expect("bind a loopback listener");
    let a = TcpStream::connect(listener.local_addr().expect("listener address")).expect("connect");
    let (b, _) = listener.accept().expect("accept");
    for s in [&a, &b] {
        s.set_nonblocking(true).expect("set_nonblocking");
        s.set_nodelay(true).expect("set_nodelay");
    }
    (a, b)
}

/// A non-blocking UDP socket bound to loopback.
pub(super) fn udp() -> UdpSocket {
    let s = UdpSocket::bind(loopback()).expect("bind a UDP socket");
    s.set_nonblocking(true).expect("set_nonblocking");
    s
}

/// Writes all of `data` (small enough never to fill a socket buffer).
pub(super) fn send(mut stream: &TcpStream, data: &[u8]) {
    stream.write_all(data).expect("write to a stream with room");
}

/// Reads until `WouldBlock` or end of stream; returns the bytes read.
pub(super) fn drain(mut stream: &TcpStream) -> usize {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("drain: read failed: {e}"),
        }
    }
}

/// Receives datagrams until `WouldBlock`; returns how many.
pub(super) fn drain_udp(socket: &UdpSocket) -> usize {
    let mut buf = [0u8; 2048];
    let mut count = 0;
    loop {
        match socket.recv_from(&mut buf) {
            Ok(_) => count += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return count,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("drain_udp: recv failed: {e}"),
        }
    }
}

/// Blocks (at most [`arrive()`]) until `stream` has received data, without consuming it: the
/// bytes a peer sent are then known to sit in `stream`'s receive buffer.
pub(super) fn await_unread_data(stream: &TcpStream) {
    stream.set_nonblocking(false).expect("set_nonblocking(false)");
    stream.set_read_timeout(Some(arrive())).expect("set_read_timeout");
    let mut buf = [0u8; 1];
    let n = stream.peek(&mut buf).expect("peek for the peer's data");
    assert_eq!(n, 1, "the peer's data did not arrive");
    stream.set_nonblocking(true).expect("set_nonblocking(true)");
}

/// Closes `stream` abortively: its peer gets a reset, not an end of stream.
///
/// On Unix, closing a TCP socket with unread received data sends a reset (RFC 2525), which the
/// callers arrange. Windows (and Wine) may not, so there the socket lingers 0 seconds, the
/// portable way to ask for an abortive close.
pub(super) fn close_with_reset(stream: TcpStream) {
    #[cfg(windows)]
    {
        use std::os::windows::io::AsRawSocket;
        use windows_sys::Win32::Networking::WinSock::{setsockopt, LINGER, SOL_SOCKET, SO_LINGER};
        let linger = LINGER {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the socket is open (owned by `stream`), and `optval`/`optlen` describe a live
        // `LINGER`, as `setsockopt(SO_LINGER)` requires.
        let rc = unsafe {
            setsockopt(
                stream.as_raw_socket() as _,
                SOL_SOCKET,
                SO_LINGER,
                (&linger as *const LINGER).cast(),
                std::mem::size_of::<LINGER>() as i32,
            )
        };
        assert_eq!(rc, 0, "setsockopt(SO_LINGER): {}", io::Error::last_os_error());
    }
    drop(stream);
}

/// An address on which nothing listens: a listener's, just closed.
pub(super) fn refused_addr() -> SocketAddr {
    let listener = TcpListener::bind(loopback()).expect("bind a loopback listener");
    listener.local_addr().expect("listener address")
}

/// Starts a non-blocking connect to `addr`; the returned socket reports the outcome as
/// writability. `None` if the OS decided the outcome synchronously with an error.
pub(super) fn connect_nonblocking(addr: SocketAddr) -> io::Result<mio::net::TcpStream> {
    mio::net::TcpStream::connect(addr)
}
