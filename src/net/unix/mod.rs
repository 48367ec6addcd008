//! Unix-domain sockets on the runtime (Unix only): stream [`listen`] / [`connect`] with the same
//! connection API as [`tcp`](crate::net::tcp) (data callback, queued writes with the bound,
//! write and shutdown callbacks, pause/resume reading, half-open, deadlines), and datagram
//! sockets ([`bind_datagram`]) like [`udp`](crate::net::udp).
//!
//! A connection here is the same [`Connection`](crate::net::stream::Connection) as a
//! TCP connection, over a `std::os::unix::net::UnixStream`: everything the
//! [TCP documentation](crate::net::tcp#connections) says about data, writes, backpressure and
//! the end of a connection holds here (`TCP_NODELAY` does not apply).
//!
//! # Socket files
//!
//! [`listen`] binds a path; like Node (and libuv), it fails with `ErrorKind::AddrInUse` if a
//! file exists there, even a socket left behind by a process that died.
//! [`ListenOptions::remove_stale`] removes such a file first, but only if it is a socket that
//! nothing listens on (a connect to it is refused): a live server's socket is never taken over.
//! Closing a listener made by [`listen`] removes its socket file (libuv does too); one given to
//! [`listen_on`] is left alone. On Linux and Android, [`listen_abstract`] and
//! [`connect_abstract`] use the abstract namespace (no file at all).
//!
//! # Errors
//!
//! A path longer than the OS allows (`sun_path`: 108 bytes on Linux, 104 on macOS and the
//! BSDs, including the terminating NUL) is `ErrorKind::InvalidInput`; a path whose directory
//! does not exist is `NotFound`; connecting to a path with no socket is `NotFound`, to a socket
//! nothing listens on `ConnectionRefused`.
//!
//! # Windows
//!
//! Windows 10 (1803+) has `AF_UNIX` stream sockets, and both backends poll sockets there
//! through AFD, which is reported to work for them too (mio issue #1609, wepoll issue #3). This
//! module is still Unix-only, for three reasons: std has no `UnixStream`/`UnixListener` on
//! Windows yet (unstable), and this module's connections are std sockets; mio has not taken
//! Windows `AF_UNIX` support (PRs #1610, #1914 and #1955 were closed, waiting for std's types)
//! and the one working prototype (mio #1609) needed a re-registration between events, a quirk
//! our edge-triggered paths would have to handle; and it could not be tested here: Wine, our
//! Windows test bed, refuses `socket(AF_UNIX, SOCK_STREAM)` with `WSAEAFNOSUPPORT` (10047).
//! On Windows use TCP on `127.0.0.1` (or a named pipe through your own reactor).
//!
//! # Example
//!
//! ```
//! use portable_reactor::net::unix::{self, ConnectOptions, ListenOptions};
//! use portable_reactor::runtime::Runtime;
//!
//! let dir = std::env::temp_dir().join(format!("pr-doc-unix-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let path = dir.join("echo.sock");
//! let mut rt = Runtime::new()?;
//! let server = unix::listen(&mut rt, &path, ListenOptions::new(), |rt, conn| {
//!     conn.expect("accept")
//!         .on_data(rt, |rt, conn, data| match data {
//!             Ok(bytes) if !bytes.is_empty() => conn.write(rt, bytes).expect("echo"),
//!             _ => {}
//!         })
//!         .unwrap();
//! })?;
//! unix::connect(&mut rt, &path, ConnectOptions::new(), move |rt, conn| {
//!     let conn = conn.expect("connect");
//!     conn.write(rt, b"ping").unwrap();
//!     conn.on_data(rt, move |rt, conn, data| {
//!         assert_eq!(data.unwrap(), b"ping");
//!         conn.close(rt);
//!         server.close(rt); // removes echo.sock
//!     })
//!     .unwrap();
//! })?;
//! rt.run()?;
//! assert!(!path.exists());
//! # std::fs::remove_dir(&dir)?;
//! # std::io::Result::Ok(())
//! ```

mod conn;
mod datagram;

pub use crate::net::stream::{ConnOptions, ConnectOptions, ListenerStats};
pub use datagram::{bind_datagram, Datagram, DatagramOptions, DatagramState, DEFAULT_DATAGRAM_BUFFER};

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};

use crate::net::stream::{self, connect_stream, listen_on_socket};
use crate::runtime::{Runtime, WatchOptions};
use crate::Reactor;

/// A Unix-domain connection as its own callbacks see it (the context).
pub type UnixConn<R> = stream::Connection<UnixStream, R>;
/// A Unix-domain connection's watch source.
pub type ConnState<R> = stream::StreamState<UnixStream, R>;
/// A Unix-domain connection's `Copy` handle, for use outside its callbacks.
pub type Conn = stream::Handle<UnixStream>;
/// A Unix-domain listener's handle.
pub type Listener = stream::Listener<UnixListener>;

/// The default listen backlog (as for TCP).
pub const DEFAULT_BACKLOG: i32 = crate::net::tcp::DEFAULT_BACKLOG;

/// Options of [`listen`].
///
/// ```
/// use portable_reactor::net::unix::ListenOptions;
/// let opts = ListenOptions::new().backlog(128).remove_stale(true);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug)]
pub struct ListenOptions {
    backlog: i32,
    remove_stale: bool,
    watch: WatchOptions,
    conn: ConnOptions,
}

impl Default for ListenOptions {
    fn default() -> Self {
        ListenOptions::new()
    }
}

impl ListenOptions {
    /// A backlog of [`DEFAULT_BACKLOG`], stale socket files left alone, no deadline on the
    /// listener, [`ConnOptions::new`] for accepted connections.
    pub fn new() -> ListenOptions {
        ListenOptions {
            backlog: DEFAULT_BACKLOG,
            remove_stale: false,
            watch: WatchOptions::new().no_timeout(),
            conn: ConnOptions::new(),
        }
    }

    /// The listen backlog (the OS may cap it).
    pub fn backlog(mut self, backlog: i32) -> ListenOptions {
        self.backlog = backlog;
        self
    }

    /// If the path exists and is a socket nothing listens on (a connect to it is refused),
    /// remove it before binding. Off by default (then the bind fails with `AddrInUse`, as in
    /// Node). A file that is not a socket, or a socket something listens on, is never removed.
    pub fn remove_stale(mut self, on: bool) -> ListenOptions {
        self.remove_stale = on;
        self
    }

    /// The listener's watch options (by default no deadline; see `tcp::ListenOptions::watch`).
    pub fn watch(mut self, watch: WatchOptions) -> ListenOptions {
        self.watch = watch;
        self
    }

    /// Options of the accepted connections.
    pub fn conn(mut self, conn: ConnOptions) -> ListenOptions {
        self.conn = conn;
        self
    }
}

/// Binds a Unix-domain stream socket to `path` and calls `on_connection` with each accepted
/// connection, with the same accept behaviour as [`tcp::listen`](crate::net::tcp::listen)
/// (back-off on `EMFILE`/`ENFILE`, errors passed on, the listener's deadline). Closing the
/// listener removes the socket file.
///
/// See the [module example](self#example).
///
/// # Errors
///
/// `AddrInUse` if something exists at `path` (see [`ListenOptions::remove_stale`]);
/// `InvalidInput` if the path is too long for a socket address, `NotFound` if its directory
/// does not exist, `PermissionDenied`...: the OS error of `bind`/`listen`; `InvalidInput` for
/// a read buffer above [`MAX_BUFFER`](crate::net::MAX_BUFFER); the runtime's error if the
/// socket cannot be watched.
pub fn listen<R, F>(
    rt: &mut Runtime<R>,
    path: impl AsRef<Path>,
    options: ListenOptions,
    on_connection: F,
) -> io::Result<Listener>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    let path = path.as_ref();
    options.conn.check()?;
    let addr = SockAddr::unix(path)?;
    let socket = match bind(&addr, options.backlog) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse && options.remove_stale && is_stale(path) => {
            log::info!("net: removing the stale socket file {}", path.display());
            std::fs::remove_file(path)?;
            bind(&addr, options.backlog)?
        }
        result => result?,
    };
    let owned: PathBuf = path.to_owned();
    let unlink: Box<dyn FnOnce()> = Box::new(move || {
        if let Err(e) = std::fs::remove_file(&owned) {
            log::debug!("net: removing {} failed: {e}", owned.display());
        }
    });
    let listener = UnixListener::from(std::os::fd::OwnedFd::from(socket));
    listen_on_socket(
        rt,
        listener,
        options.watch,
        options.conn,
        Some(unlink),
        on_connection,
    )
    .inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// [`listen`] in the abstract namespace (Linux and Android): `name` is the address without
/// its leading NUL byte; no file is created.
///
/// # Errors
///
/// As for [`listen`] (`InvalidInput` if `name` is longer than 107 bytes).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn listen_abstract<R, F>(
    rt: &mut Runtime<R>,
    name: &[u8],
    options: ListenOptions,
    on_connection: F,
) -> io::Result<Listener>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    options.conn.check()?;
    let addr = SockAddr::unix(abstract_path(name))?;
    let listener = UnixListener::from(std::os::fd::OwnedFd::from(bind(&addr, options.backlog)?));
    listen_on_socket(rt, listener, options.watch, options.conn, None, on_connection)
}

/// [`listen`] on a listener the caller bound already (e.g. one inherited). It is put in
/// non-blocking mode; `options.backlog` and `remove_stale` are not used, and closing the
/// listener leaves its socket file alone.
///
/// # Errors
///
/// As for [`tcp::listen_on`](crate::net::tcp::listen_on).
pub fn listen_on<R, F>(
    rt: &mut Runtime<R>,
    listener: UnixListener,
    options: ListenOptions,
    on_connection: F,
) -> io::Result<Listener>
where
    R: Reactor + 'static,
    F: FnMut(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    listen_on_socket(rt, listener, options.watch, options.conn, None, on_connection)
}

fn bind(addr: &SockAddr, backlog: i32) -> io::Result<Socket> {
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(addr)?;
    socket.listen(backlog)?;
    Ok(socket)
}

/// Whether `path` is a socket file nothing listens on.
fn is_stale(path: &Path) -> bool {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    is_socket
        && matches!(
            mio::net::UnixStream::connect(path),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused
        )
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_path(name: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let bytes = [&[0u8][..], name].concat();
    PathBuf::from(std::ffi::OsStr::from_bytes(&bytes))
}

/// Connects to the Unix-domain stream socket at `path` without blocking and calls `callback`
/// with the connection, or with the error: `NotFound` when no socket is there,
/// `ConnectionRefused` when nothing listens on it, `WouldBlock` when its backlog is full
/// (Linux), `TimedOut` past the connect's deadline, or another OS error. The callback always
/// runs from the loop, never inside this call.
///
/// See the [module example](self#example).
///
/// # Errors
///
/// `InvalidInput` for a path too long for a socket address or a read buffer above
/// [`MAX_BUFFER`](crate::net::MAX_BUFFER); the runtime's error if the connecting socket cannot
/// be watched. The callback is then dropped unrun. Every other failure goes to the callback.
pub fn connect<R, F>(
    rt: &mut Runtime<R>,
    path: impl AsRef<Path>,
    options: ConnectOptions,
    callback: F,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    let addr = SocketAddr::from_pathname(path.as_ref())?;
    connect_addr(rt, &addr, options, callback)
}

/// [`connect`] to a name in the abstract namespace (Linux and Android; `name` without its
/// leading NUL byte).
///
/// # Errors
///
/// As for [`connect`].
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn connect_abstract<R, F>(
    rt: &mut Runtime<R>,
    name: &[u8],
    options: ConnectOptions,
    callback: F,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    let addr = SocketAddr::from_abstract_name(name)?;
    connect_addr(rt, &addr, options, callback)
}

fn connect_addr<R, F>(
    rt: &mut Runtime<R>,
    addr: &SocketAddr,
    options: ConnectOptions,
    callback: F,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Conn>) + 'static,
{
    options.conn.check()?;
    options.connect.check()?;
    let to = format!("{addr:?}");
    let stream = match mio::net::UnixStream::connect_addr(addr) {
        Ok(stream) => UnixStream::from(std::os::fd::OwnedFd::from(stream)),
        Err(e) => {
            rt.set_immediate(move |rt| callback(rt, Err(e)));
            return Ok(());
        }
    };
    connect_stream(rt, stream, to, options, callback)
}
