//! Unix-domain datagram sockets: [`bind_datagram`], [`Datagram::send_to`],
//! [`Datagram::connect`]; the same receive machinery as [`udp`](crate::net::udp).

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use crate::net::datagram::{self, check_options, send_error, watch_datagram, with_socket};
use crate::net::normalize_socket_error;
use crate::runtime::{Runtime, WatchOptions};
use crate::{EventId, Reactor};

/// The default size of a Unix datagram socket's receive buffer.
pub const DEFAULT_DATAGRAM_BUFFER: usize = 64 * 1024;

/// A Unix datagram socket's watch source.
pub type DatagramState<R> = datagram::DatagramState<UnixDatagram, R>;

/// Options of [`bind_datagram`].
///
/// ```
/// use portable_reactor::net::unix::DatagramOptions;
/// use portable_reactor::runtime::WatchOptions;
/// let opts = DatagramOptions::new().watch(WatchOptions::new().no_timeout()).recv_buffer(4096);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug)]
pub struct DatagramOptions {
    watch: WatchOptions,
    recv_buffer: usize,
    remove_stale: bool,
}

impl Default for DatagramOptions {
    fn default() -> Self {
        DatagramOptions::new()
    }
}

impl DatagramOptions {
    /// The runtime's default deadline (an idle timeout), a 64 KiB receive buffer, stale socket
    /// files left alone.
    pub fn new() -> DatagramOptions {
        DatagramOptions {
            watch: WatchOptions::new(),
            recv_buffer: DEFAULT_DATAGRAM_BUFFER,
            remove_stale: false,
        }
    }

    /// The socket's watch options; a server usually wants `WatchOptions::new().no_timeout()`.
    pub fn watch(mut self, watch: WatchOptions) -> DatagramOptions {
        self.watch = watch;
        self
    }

    /// The receive buffer's size: at least 1 byte (0 is taken as 1), at most
    /// [`MAX_BUFFER`](crate::net::MAX_BUFFER) (checked by [`bind_datagram`]). A longer
    /// datagram is truncated.
    pub fn recv_buffer(mut self, bytes: usize) -> DatagramOptions {
        self.recv_buffer = bytes.max(1);
        self
    }

    /// If the path exists and is a socket nothing is bound to (a datagram sent to it is
    /// refused), remove it before binding. Off by default (then the bind fails with
    /// `AddrInUse`).
    pub fn remove_stale(mut self, on: bool) -> DatagramOptions {
        self.remove_stale = on;
        self
    }
}

/// Binds a Unix datagram socket to `path` and calls `on_message` with each datagram and its
/// sender's address (unnamed if the sender is not bound), or with a receive error; the socket
/// stays open after an error, only its deadline (`TimedOut`) ends it. Closing the socket
/// removes its file.
///
/// ```
/// use portable_reactor::net::unix::{self, DatagramOptions};
/// use portable_reactor::runtime::Runtime;
///
/// let dir = std::env::temp_dir().join(format!("pr-doc-dgram-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let (server_path, client_path) = (dir.join("server.sock"), dir.join("client.sock"));
/// let mut rt = Runtime::new()?;
/// let server = unix::bind_datagram(&mut rt, &server_path, DatagramOptions::new(), |_, socket, msg| {
///     let (data, from) = msg.expect("datagram");
///     socket.send_to(data, from.as_pathname().expect("a bound client")).unwrap(); // echo
/// })?;
/// let client = unix::bind_datagram(&mut rt, &client_path, DatagramOptions::new(), move |rt, _, msg| {
///     assert_eq!(msg.unwrap().0, b"ping");
///     let _ = server.close(rt);
///     rt.stop();
/// })?;
/// client.send_to(&mut rt, b"ping", &server_path)?;
/// rt.run()?;
/// client.close(&mut rt)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// `AddrInUse` if something exists at `path` (see [`DatagramOptions::remove_stale`]),
/// `InvalidInput` for a path too long for a socket address, `NotFound` if its directory does
/// not exist, or another OS error of `bind`; `InvalidInput` for a receive buffer above
/// [`MAX_BUFFER`](crate::net::MAX_BUFFER), `OutOfMemory` if it cannot be allocated; the
/// runtime's error if the socket cannot be watched.
pub fn bind_datagram<R, F>(
    rt: &mut Runtime<R>,
    path: impl AsRef<Path>,
    options: DatagramOptions,
    on_message: F,
) -> io::Result<Datagram>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, &UnixDatagram, io::Result<(&[u8], SocketAddr)>) + 'static,
{
    let path = path.as_ref();
    check_options(&options.watch, options.recv_buffer)?;
    let socket = match UnixDatagram::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && options.remove_stale && is_stale(path) => {
            log::info!("net: removing the stale socket file {}", path.display());
            std::fs::remove_file(path)?;
            UnixDatagram::bind(path)?
        }
        result => result?,
    };
    let file = Some(path.to_owned());
    // On failure the state is dropped, which removes the file.
    let id = watch_datagram(rt, socket, options.watch, options.recv_buffer, file, on_message)?;
    log::debug!("net: unix datagram socket on {} watched as {id}", path.display());
    Ok(Datagram(id))
}

/// Whether `path` is a socket file nothing is bound to.
fn is_stale(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    is_socket
        && UnixDatagram::unbound()
            .and_then(|probe| probe.connect(path))
            .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
}

/// A Unix datagram socket's handle: the `Copy` id of its watch.
///
/// Its methods fail with `ErrorKind::NotFound` once the socket is closed, and while its own
/// callback runs (use the `&UnixDatagram` that callback is given).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Datagram(pub EventId);

impl Datagram {
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
        f: impl FnOnce(&UnixDatagram) -> T,
    ) -> io::Result<T> {
        with_socket(rt, self.0, f)
    }

    /// Sends one datagram to the socket bound at `path`; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// `NotFound` if nothing is at `path`, `ConnectionRefused` if no socket is bound there,
    /// `WouldBlock` if the receiver's queue is full (the datagram is not queued),
    /// `InvalidInput` if it is longer than the socket can send in one datagram or the path is
    /// too long; the OS error; `ErrorKind::NotFound` if this socket is closed or running its
    /// own callback.
    pub fn send_to<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        data: &[u8],
        path: impl AsRef<Path>,
    ) -> io::Result<usize> {
        self.with(rt, |socket| {
            socket
                .send_to(data, path.as_ref())
                .map_err(normalize_socket_error)
        })?
    }

    /// Sets the default peer: [`send`](Datagram::send) goes to it, and only its datagrams are
    /// received.
    ///
    /// # Errors
    ///
    /// As for [`send_to`](Datagram::send_to)'s address errors; `ErrorKind::NotFound` if this
    /// socket is closed or running its own callback.
    pub fn connect<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        path: impl AsRef<Path>,
    ) -> io::Result<()> {
        self.with(rt, |socket| socket.connect(path.as_ref()))?
    }

    /// Sends one datagram to the connected peer; returns the bytes sent.
    ///
    /// # Errors
    ///
    /// As for [`send_to`](Datagram::send_to); `NotConnected` without
    /// [`connect`](Datagram::connect).
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

    /// Closes the socket and removes its file (also from inside its callback, through
    /// `rt.close(id)`).
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
