//! Connections: their state, the read and write paths, and the [`Conn`] handle.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;

use super::*;
use crate::net::{delegate_source, not_reachable};
use crate::runtime::Runtime;
use crate::{Event, EventId, Interest, Reactor};

/// The data callback: each read, EOF as `Ok(&[])`, or the error that ends the connection.
type DataCallback<R> = Box<dyn FnMut(&mut Runtime<R>, &mut TcpConn<R>, io::Result<&[u8]>)>;
/// The drain callback.
type DrainCallback<R> = Box<dyn FnMut(&mut Runtime<R>, &mut TcpConn<R>)>;

/// Watches a connected, non-blocking-capable stream as a connection.
pub(super) fn adopt<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    stream: TcpStream,
    options: ConnOptions,
    buf: Rc<ReadBuffer>,
) -> io::Result<Conn> {
    stream.set_nonblocking(true)?;
    if options.nodelay {
        stream.set_nodelay(true)?;
    }
    let state = ConnState {
        conn: TcpConn {
            id: EventId(usize::MAX),
            stream,
            queue: Vec::new(),
            head: 0,
            max_queued: options.max_queued_bytes,
            interest: Some(Interest::READABLE),
            reading_paused: false,
            allow_half_open: options.allow_half_open,
            on_data: None,
            on_drain: None,
            want_drain: false,
            shutdown_pending: false,
            write_shut: false,
            eof: false,
            closed: false,
            unread: false,
        },
        buf,
    };
    let id = rt.watch_with(state, Interest::READABLE, options.watch, conn_event::<R>)?;
    if let Some(state) = rt.source_mut::<ConnState<R>>(id) {
        state.conn.id = id;
    }
    Ok(Conn(id))
}

/// A read buffer, shared by the connections of a listener, allocated on first use.
pub(super) struct ReadBuffer {
    size: usize,
    bytes: RefCell<Vec<u8>>,
}

impl ReadBuffer {
    pub(super) fn new(size: usize) -> Rc<ReadBuffer> {
        Rc::new(ReadBuffer {
            size,
            bytes: RefCell::new(Vec::new()),
        })
    }
}

/// A connection's watch source: the connection and its read buffer (kept apart so that the
/// data callback can borrow both).
pub struct ConnState<R: Reactor + 'static> {
    conn: TcpConn<R>,
    buf: Rc<ReadBuffer>,
}

delegate_source!(ConnState<R: Reactor>, conn.stream);

impl<R: Reactor + 'static> ConnState<R> {
    /// The connection, e.g. from [`Runtime::source_mut::<ConnState<R>>(id)`](Runtime::source_mut).
    pub fn conn(&mut self) -> &mut TcpConn<R> {
        &mut self.conn
    }
}

impl<R: Reactor + 'static> fmt::Debug for ConnState<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnState")
            .field("conn", &self.conn)
            .field("read_buffer", &self.buf.size)
            .finish()
    }
}

/// A connection as its own callbacks see it: its socket, write queue and callbacks.
///
/// Outside those callbacks, reach it through a [`Conn`] handle.
pub struct TcpConn<R: Reactor + 'static> {
    id: EventId,
    stream: TcpStream,
    /// Queued bytes are `queue[head..]`.
    queue: Vec<u8>,
    head: usize,
    max_queued: usize,
    /// The interest last asked of the runtime (`None`: the watch is paused).
    interest: Option<Interest>,
    /// [`pause_reading`](TcpConn::pause_reading) is in force.
    reading_paused: bool,
    allow_half_open: bool,
    on_data: Option<DataCallback<R>>,
    on_drain: Option<DrainCallback<R>>,
    /// A write was queued since the last drain.
    want_drain: bool,
    shutdown_pending: bool,
    write_shut: bool,
    /// The read side reached EOF.
    eof: bool,
    /// Closed (or closing) by this layer or the user through this context.
    closed: bool,
    /// A readable event came while no data callback was set.
    unread: bool,
}

impl<R: Reactor + 'static> fmt::Debug for TcpConn<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpConn")
            .field("id", &self.id)
            .field("peer", &self.stream.peer_addr().ok())
            .field("queued", &self.queued_bytes())
            .field("eof", &self.eof)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<R: Reactor + 'static> TcpConn<R> {
    /// The `Copy` handle of this connection, for use outside its callbacks.
    pub fn handle(&self) -> Conn {
        Conn(self.id)
    }

    /// The connection's watch id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The socket, for options this module does not wrap. Do not read from or write to it
    /// directly: that would bypass the buffer and the write queue.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Bytes queued for the kernel.
    pub fn queued_bytes(&self) -> usize {
        self.queue.len() - self.head
    }

    /// Whether the read side reached EOF.
    pub fn is_eof(&self) -> bool {
        self.eof
    }

    /// Sets the data callback: `Ok(bytes)` for each read (a slice of the connection's buffer),
    /// `Ok(&[])` at EOF, `Err` for the error that ends the connection. Replaces any previous one.
    pub fn on_data(
        &mut self,
        callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>, io::Result<&[u8]>) + 'static,
    ) {
        self.on_data = Some(Box::new(callback));
    }

    /// Sets the drain callback: it runs when the kernel has taken every queued byte, after a
    /// write had to queue. Replaces any previous one.
    pub fn on_drain(&mut self, callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>) + 'static) {
        self.on_drain = Some(Box::new(callback));
    }

    /// Writes `data`: what the kernel takes at once is sent, the rest queued and written as the
    /// socket becomes writable. Never blocks.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::QuotaExceeded` if `queued_bytes() + data.len()` would exceed the
    ///   connection's [`max_queued_bytes`](ConnOptions::max_queued_bytes): nothing of `data`
    ///   is written (so the bound also caps one write). Wait for the drain callback.
    /// - `ErrorKind::NotConnected` after [`close`](TcpConn::close); `ErrorKind::BrokenPipe`
    ///   after [`shutdown`](TcpConn::shutdown).
    /// - The OS error of the write (`BrokenPipe`, `ConnectionReset`, ...).
    pub fn write(&mut self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        self.queue_write(data)?;
        self.apply_interest(rt);
        Ok(())
    }

    /// Sends FIN once every queued byte is written; reading goes on until the peer's EOF.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotConnected` after close; the OS error of `shutdown(2)`.
    pub fn shutdown(&mut self) -> io::Result<()> {
        if self.closed {
            return Err(closed_error());
        }
        if self.write_shut || self.shutdown_pending {
            return Ok(());
        }
        if self.queued_bytes() == 0 {
            self.write_shut = true;
            self.stream.shutdown(Shutdown::Write)
        } else {
            self.shutdown_pending = true;
            Ok(())
        }
    }

    /// Closes the connection at once, discarding queued bytes: no callback of it runs after
    /// this. Closing twice does nothing.
    pub fn close(&mut self, rt: &mut Runtime<R>) {
        if !self.closed {
            self.closed = true;
            let _ = rt.close(self.id);
        }
    }

    /// [`close`](TcpConn::close), then runs `on_close` in the loop's close phase, after the
    /// socket is closed. `on_close` does not run if the connection was closed already.
    pub fn close_with(&mut self, rt: &mut Runtime<R>, on_close: impl FnOnce(&mut Runtime<R>) + 'static) {
        if !self.closed {
            self.closed = true;
            let _ = rt.close_with(self.id, on_close);
        }
    }

    /// Sets `TCP_NODELAY`.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.stream.set_nodelay(on)
    }

    /// The local address.
    ///
    /// # Errors
    ///
    /// The OS error.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// The OS error (`NotConnected` once the connection is gone).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    fn queue_write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.closed {
            return Err(closed_error());
        }
        if self.write_shut || self.shutdown_pending {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown of the connection",
            ));
        }
        let queued = self.queued_bytes();
        if queued.saturating_add(data.len()) > self.max_queued {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!(
                    "write of {} bytes refused: {queued} bytes already queued, at most {} allowed",
                    data.len(),
                    self.max_queued
                ),
            ));
        }
        let mut rest = data;
        if queued == 0 {
            while !rest.is_empty() {
                match (&self.stream).write(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
        if self.head > 0 && self.head >= self.queue.len() / 2 {
            self.queue.drain(..self.head);
            self.head = 0;
        }
        self.queue.extend_from_slice(rest);
        self.want_drain = true;
        Ok(())
    }

    /// The interest the connection needs now (`None`: nothing to wait for).
    fn wanted_interest(&self) -> Option<Interest> {
        let read = !self.eof && !self.reading_paused;
        match (read, self.queued_bytes() > 0) {
            (true, true) => Some(Interest::BOTH),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    fn apply_interest(&mut self, rt: &mut Runtime<R>) {
        if self.closed {
            return;
        }
        let wanted = self.wanted_interest();
        if wanted != self.interest && set_watch_interest(rt, self.id, self.interest, wanted).is_ok() {
            self.interest = wanted;
        }
    }

    /// Stops reading (backpressure: the peer's data waits in the kernel, and TCP flow control
    /// slows the peer down) until [`resume_reading`](TcpConn::resume_reading). Queued writes
    /// still go out.
    pub fn pause_reading(&mut self, rt: &mut Runtime<R>) {
        self.reading_paused = true;
        self.apply_interest(rt);
    }

    /// Reads again after [`pause_reading`](TcpConn::pause_reading); data that arrived meanwhile
    /// is delivered.
    pub fn resume_reading(&mut self, rt: &mut Runtime<R>) {
        self.reading_paused = false;
        self.apply_interest(rt);
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.reading_paused
    }

    /// Writes queued bytes; at the end of the queue runs a pending shutdown and the drain
    /// callback. An error ends the connection.
    fn flush(&mut self, rt: &mut Runtime<R>) {
        while self.head < self.queue.len() {
            match (&self.stream).write(&self.queue[self.head..]) {
                Ok(0) => {
                    self.fail(rt, io::ErrorKind::WriteZero.into());
                    return;
                }
                Ok(n) => self.head += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(rt, e);
                    return;
                }
            }
        }
        self.queue.clear();
        self.head = 0;
        if self.shutdown_pending {
            self.shutdown_pending = false;
            self.write_shut = true;
            if let Err(e) = self.stream.shutdown(Shutdown::Write) {
                self.fail(rt, e);
                return;
            }
        }
        if std::mem::take(&mut self.want_drain) {
            if let Some(mut callback) = self.on_drain.take() {
                callback(rt, self);
                if self.on_drain.is_none() {
                    self.on_drain = Some(callback);
                }
            }
        }
    }

    /// Delivers `error` to the data callback and closes.
    fn fail(&mut self, rt: &mut Runtime<R>, error: io::Error) {
        if self.closed {
            return;
        }
        log::debug!("net: connection {} failed: {error}", self.id);
        deliver(rt, self, Err(error));
        self.close(rt);
    }
}

/// Calls the data callback, keeping it unless it replaced itself.
fn deliver<R: Reactor + 'static>(rt: &mut Runtime<R>, conn: &mut TcpConn<R>, data: io::Result<&[u8]>) {
    let Some(mut callback) = conn.on_data.take() else {
        if let Err(e) = data {
            log::debug!("net: connection {} ended with no data callback: {e}", conn.id);
        }
        return;
    };
    callback(rt, conn, data);
    if conn.on_data.is_none() {
        conn.on_data = Some(callback);
    }
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

/// A connection's watch callback.
fn conn_event<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &mut ConnState<R>,
    event: io::Result<Event>,
) {
    let conn = &mut state.conn;
    conn.id = id;
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            // The runtime ended the watch (deadline, or re-arming failed): it is gone.
            if !conn.closed {
                conn.closed = true;
                log::debug!("net: connection {id} ended: {e}");
                deliver(rt, conn, Err(e));
            }
            return;
        }
    };
    if conn.closed {
        return;
    }
    if conn.queued_bytes() > 0 {
        conn.flush(rt);
    }
    let readable = event.is_readable() || event.is_error() || event.is_read_closed();
    if readable && !conn.closed && !conn.eof {
        read_ready(rt, state);
    }
    settle(rt, &mut state.conn);
}

/// Reads until `WouldBlock`, EOF, an error, or the per-event limit.
fn read_ready<R: Reactor + 'static>(rt: &mut Runtime<R>, state: &mut ConnState<R>) {
    let ConnState { conn, buf } = state;
    // The shared buffer is only busy if a callback re-entered the loop from inside a read; then
    // this read gets a buffer of its own.
    let mut own = Vec::new();
    let mut shared = buf.bytes.try_borrow_mut().ok();
    let bytes: &mut Vec<u8> = match shared.as_deref_mut() {
        Some(bytes) => bytes,
        None => &mut own,
    };
    if let Err(e) = crate::net::alloc_buffer(bytes, buf.size) {
        conn.fail(rt, e);
        return;
    }
    for _ in 0..READS_PER_EVENT {
        if conn.closed || conn.eof || conn.reading_paused {
            return;
        }
        if conn.on_data.is_none() {
            conn.unread = true;
            return;
        }
        match (&conn.stream).read(bytes) {
            Ok(0) => {
                conn.eof = true;
                deliver(rt, conn, Ok(&[]));
                return;
            }
            Ok(n) => deliver(rt, conn, Ok(&bytes[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                conn.fail(rt, e);
                return;
            }
        }
    }
    // More may be waiting: be called back in the next iteration, after the other ready watches
    // had their turn (no syscall).
    let _ = rt.wake_watch(conn.id);
}

/// Moves a connection's watch from interest `old` to `wanted`: `None` pauses the watch (nothing
/// to wait for), and leaving `None` resumes it.
fn set_watch_interest<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    old: Option<Interest>,
    wanted: Option<Interest>,
) -> io::Result<()> {
    match wanted {
        _ if wanted == old => Ok(()),
        None => rt.pause_watch(id),
        Some(interest) => {
            rt.set_interest(id, interest)?;
            if old.is_none() {
                rt.resume_watch(id)?;
            }
            Ok(())
        }
    }
}

/// After an event: close a finished connection, or ask for the interest it needs.
fn settle<R: Reactor + 'static>(rt: &mut Runtime<R>, conn: &mut TcpConn<R>) {
    if conn.closed {
        return;
    }
    if conn.eof && conn.queued_bytes() == 0 && (!conn.allow_half_open || conn.write_shut) {
        log::debug!("net: connection {} closed after EOF", conn.id);
        conn.close(rt);
        return;
    }
    conn.apply_interest(rt);
}

/// A connection's handle: the `Copy` id of its watch.
///
/// Its methods find the connection with [`Runtime::source_mut`]; they fail with
/// `ErrorKind::NotFound` once the connection is closed, and while its own callback runs (use
/// the [`TcpConn`] that callback is given).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Conn(pub EventId);

impl Conn {
    /// The connection's watch id.
    pub fn id(self) -> EventId {
        self.0
    }

    /// Runs `f` with the connection.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn with<R: Reactor + 'static, T>(
        self,
        rt: &mut Runtime<R>,
        f: impl FnOnce(&mut TcpConn<R>) -> T,
    ) -> io::Result<T> {
        rt.source_mut::<ConnState<R>>(self.0)
            .map(|state| f(&mut state.conn))
            .ok_or_else(|| not_reachable("connection", self.0))
    }

    /// [`TcpConn::on_data`]. If data arrived before the callback was set, it is read soon after.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn on_data<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        let conn = &mut rt
            .source_mut::<ConnState<R>>(self.0)
            .ok_or_else(|| not_reachable("connection", self.0))?
            .conn;
        conn.on_data(callback);
        if std::mem::take(&mut conn.unread) {
            // Be called back to read what is waiting (edge-triggered backends will not report it
            // again).
            rt.wake_watch(self.0)?;
        }
        Ok(())
    }

    /// [`TcpConn::on_drain`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn on_drain<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, &mut TcpConn<R>) + 'static,
    ) -> io::Result<()> {
        self.with(rt, |conn| conn.on_drain(callback))
    }

    /// [`TcpConn::write`].
    ///
    /// # Errors
    ///
    /// As for [`TcpConn::write`]; `ErrorKind::NotFound` if the connection is closed or running
    /// its own callback.
    pub fn write<R: Reactor + 'static>(self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        let (old, wanted) = self.with(rt, |conn| -> io::Result<_> {
            conn.queue_write(data)?;
            let old = conn.interest;
            conn.interest = conn.wanted_interest();
            Ok((old, conn.interest))
        })??;
        set_watch_interest(rt, self.0, old, wanted)
    }

    /// [`TcpConn::pause_reading`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn pause_reading<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_reading_paused(rt, true)
    }

    /// [`TcpConn::resume_reading`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn resume_reading<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_reading_paused(rt, false)
    }

    fn set_reading_paused<R: Reactor + 'static>(self, rt: &mut Runtime<R>, paused: bool) -> io::Result<()> {
        let (old, wanted) = self.with(rt, |conn| {
            conn.reading_paused = paused;
            let old = conn.interest;
            conn.interest = conn.wanted_interest();
            (old, conn.interest)
        })?;
        set_watch_interest(rt, self.0, old, wanted)
    }

    /// [`TcpConn::shutdown`].
    ///
    /// # Errors
    ///
    /// As for [`TcpConn::shutdown`]; `ErrorKind::NotFound` if the connection is closed or running
    /// its own callback.
    pub fn shutdown<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.with(rt, |conn| conn.shutdown())?
    }

    /// Closes the connection at once, discarding queued bytes.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already.
    pub fn close<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        rt.close(self.0)
    }

    /// Closes the connection at once and runs `on_close` in the loop's close phase, after the
    /// socket is closed.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already (`on_close` is dropped unrun).
    pub fn close_with<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        on_close: impl FnOnce(&mut Runtime<R>) + 'static,
    ) -> io::Result<()> {
        rt.close_with(self.0, on_close)
    }

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

    /// Bytes queued for the kernel.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn queued_bytes<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<usize> {
        self.with(rt, |conn| conn.queued_bytes())
    }
}
