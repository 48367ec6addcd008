//! Options of a connection and of a connect.

use std::io;
use std::time::Duration;

use super::{DEFAULT_MAX_QUEUED_BYTES, DEFAULT_READ_BUFFER};
use crate::runtime::WatchOptions;

/// Options of a connection, accepted or connected (TCP or Unix; `tcp::ConnOptions` and
/// `unix::ConnOptions` are this type).
///
/// ```
/// use portable_reactor::net::tcp::ConnOptions;
/// use portable_reactor::runtime::WatchOptions;
/// use std::time::Duration;
/// let opts = ConnOptions::new()
///     .watch(WatchOptions::new().timeout(Duration::from_secs(30)))
///     .read_buffer(16 * 1024)
///     .max_queued_bytes(256 * 1024)
///     .nodelay(true);
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug)]
pub struct ConnOptions {
    pub(crate) watch: WatchOptions,
    pub(crate) read_buffer: usize,
    pub(crate) max_queued_bytes: usize,
    pub(crate) nodelay: bool,
    pub(crate) allow_half_open: bool,
}

impl Default for ConnOptions {
    fn default() -> Self {
        ConnOptions::new()
    }
}

impl ConnOptions {
    /// The runtime's default deadline (an idle timeout), a 64 KiB read buffer, at most 1 MiB
    /// queued, Nagle's algorithm on.
    pub fn new() -> ConnOptions {
        ConnOptions {
            watch: WatchOptions::new(),
            read_buffer: DEFAULT_READ_BUFFER,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            nodelay: false,
            allow_half_open: false,
        }
    }

    /// The connection's watch options: its idle deadline and trigger.
    pub fn watch(mut self, watch: WatchOptions) -> ConnOptions {
        self.watch = watch;
        self
    }

    /// The size of the read buffer: at least 1 byte (0 is taken as 1), at most
    /// [`MAX_BUFFER`](crate::net::MAX_BUFFER) (checked by `listen` and `connect`, which
    /// refuse a larger one with `InvalidInput`). Allocated on the first read, shared by the
    /// connections of one listener, owned by a connection made with `connect`. If it cannot
    /// be allocated then, the connection's data callback gets `ErrorKind::OutOfMemory` and the
    /// connection closes (the process never aborts).
    pub fn read_buffer(mut self, bytes: usize) -> ConnOptions {
        self.read_buffer = bytes.max(1);
        self
    }

    /// Checks what cannot be honoured: a read buffer above [`MAX_BUFFER`](crate::net::MAX_BUFFER).
    pub(crate) fn check(&self) -> io::Result<()> {
        self.watch.check()?;
        crate::net::check_buffer("the read buffer", self.read_buffer)
    }

    /// The most bytes a connection may hold queued for the kernel.
    pub fn max_queued_bytes(mut self, bytes: usize) -> ConnOptions {
        self.max_queued_bytes = bytes;
        self
    }

    /// Sets `TCP_NODELAY` on the connection (TCP only: ignored for Unix-domain sockets).
    pub fn nodelay(mut self, on: bool) -> ConnOptions {
        self.nodelay = on;
        self
    }

    /// Keeps the connection open for writing after the peer's EOF (Node's `allowHalfOpen`).
    /// Off by default: after EOF the connection closes once its queued bytes are written. On, it
    /// stays until [`close`](super::Connection::close) (or until both directions are shut), its
    /// watch paused while it has nothing to write; its idle deadline still applies.
    pub fn allow_half_open(mut self, on: bool) -> ConnOptions {
        self.allow_half_open = on;
        self
    }
}

/// Options of a connect (`tcp::connect`, `unix::connect`).
///
/// ```
/// use portable_reactor::net::tcp::ConnectOptions;
/// use std::time::Duration;
/// let opts = ConnectOptions::new().timeout(Duration::from_secs(3));
/// # let _ = opts;
/// ```
#[derive(Copy, Clone, Debug, Default)]
pub struct ConnectOptions {
    pub(crate) connect: WatchOptions,
    pub(crate) conn: ConnOptions,
}

impl ConnectOptions {
    /// The runtime's default deadline for the connect, [`ConnOptions::new`] for the connection.
    pub fn new() -> ConnectOptions {
        ConnectOptions::default()
    }

    /// The connect's deadline: past it the callback gets `ErrorKind::TimedOut`.
    pub fn timeout(mut self, timeout: Duration) -> ConnectOptions {
        self.connect = WatchOptions::new().timeout(timeout);
        self
    }

    /// The connect's watch options (its deadline; the trigger is ignored).
    pub fn connect_watch(mut self, watch: WatchOptions) -> ConnectOptions {
        self.connect = watch;
        self
    }

    /// Options of the connection once connected.
    pub fn conn(mut self, conn: ConnOptions) -> ConnectOptions {
        self.conn = conn;
        self
    }
}
