//! What only TCP connections have: `TCP_NODELAY` and socket addresses.

use std::io;
use std::net::{SocketAddr, TcpStream};

use crate::net::stream::{Connection, Handle};
use crate::runtime::Runtime;
use crate::Reactor;

impl<R: Reactor + 'static> Connection<TcpStream, R> {
    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stream().set_nodelay(on)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream().local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error (`NotConnected` once the connection is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream().peer_addr()
    }
}

impl Handle<TcpStream> {
    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the connection is closed or running its own
    /// callback.
    pub fn set_nodelay<R: Reactor + 'static>(self, rt: &mut Runtime<R>, on: bool) -> io::Result<()> {
        self.with(rt, |conn| conn.set_nodelay(on))?
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the connection is closed or running its own
    /// callback.
    pub fn local_addr<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<SocketAddr> {
        self.with(rt, |conn| conn.local_addr())?
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error; `ErrorKind::NotFound` if the connection is closed or running its own
    /// callback.
    pub fn peer_addr<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<SocketAddr> {
        self.with(rt, |conn| conn.peer_addr())?
    }
}
