//! What only Unix-domain connections have: their socket addresses.

use std::io;
use std::os::unix::net::{SocketAddr, UnixStream};

use crate::net::stream::{Connection, Handle};
use crate::runtime::Runtime;
use crate::Reactor;

impl<R: Reactor + 'static> Connection<UnixStream, R> {
    /// The local address (unnamed for a connecting socket).
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream().local_addr()
    }

    /// The peer's address (unnamed for an accepted connection's client, usually).
    ///
    /// # Errors
    ///
    /// The OS error (`NotConnected` once the connection is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream().peer_addr()
    }
}

impl Handle<UnixStream> {
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
