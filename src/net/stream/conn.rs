//! A connection as its callbacks see it: [`Connection`], and its write queue.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::rc::Rc;

use super::done::{Closing, DoneCallback, OnClose};
use super::event::{deliver, set_watch_interest};
use super::flags::Flags;
use super::{ConnOptions, ConnShared, Handle, Stream, NO_ID};
use crate::runtime::Runtime;
use crate::{EventId, Interest, Reactor};

/// The data callback: each read, EOF as `Ok(&[])`, or the error that ends the connection.
pub(super) type DataCallback<S, R> =
    Box<dyn FnMut(&mut Runtime<R>, &mut Connection<S, R>, io::Result<&[u8]>)>;
/// The drain callback.
pub(super) type DrainCallback<S, R> = Box<dyn FnMut(&mut Runtime<R>, &mut Connection<S, R>)>;

/// A connection as its own callbacks see it: its socket, write queue and callbacks
/// (`tcp::TcpConn<R>` is `Connection<TcpStream, R>`).
///
/// Outside those callbacks, reach it through a [`Handle`].
pub struct Connection<S: Stream, R: Reactor + 'static> {
    pub(super) id: EventId,
    pub(super) stream: S,
    /// The interest last asked of the runtime (`None`: the watch is paused).
    pub(super) interest: Option<Interest>,
    pub(super) on_data: Option<DataCallback<S, R>>,
    /// Read calls made on the socket, the ones that found nothing included.
    pub(super) read_calls: u64,
    /// The read buffer and write bound this connection shares with the others of its listener.
    pub(super) shared: Rc<ConnShared>,
    /// The callbacks few connections set, out of line (`None` until one is): an idle
    /// connection pays a pointer for them.
    pub(super) extras: Option<Box<Extras<S, R>>>,
    /// The connection's state bits and a waiting close (`super::flags`): one `u16` where ten
    /// `bool`s and an `Option<Closing>` were, so that an idle connection is 56 bytes.
    pub(super) flags: Flags,
}

/// A connection's write queue and its drain, write, shutdown and close callbacks: kept out of
/// the connection itself, so a connection whose writes the kernel takes at once and that uses
/// none of these callbacks (most: an echo, a proxy leg, an idle keep-alive) costs 8 bytes for
/// them instead of 112.
pub(super) struct Extras<S: Stream, R: Reactor + 'static> {
    /// Bytes the kernel did not take yet: `queue[head..]`.
    queue: Vec<u8>,
    head: usize,
    /// Bytes the kernel has taken since these extras were made (before that no write callback
    /// was waiting): the write callbacks' ends count in it.
    pub(super) written: u64,
    pub(super) on_drain: Option<DrainCallback<S, R>>,
    /// Write callbacks, in order, each with the `written` count at which its bytes are out.
    pub(super) write_callbacks: VecDeque<(u64, DoneCallback<S, R>)>,
    /// The shutdown callback: it runs once FIN is sent (`write_shut`).
    pub(super) shutdown_callback: Option<DoneCallback<S, R>>,
    /// The close callback of a close that waits.
    pub(super) on_close: Option<OnClose<R>>,
}

/// The write queue's capacity a connection keeps once the queue is written out: more is freed.
const KEPT_QUEUE_CAPACITY: usize = 64 * 1024;

impl<S: Stream, R: Reactor + 'static> Default for Extras<S, R> {
    fn default() -> Self {
        Extras {
            queue: Vec::new(),
            head: 0,
            written: 0,
            on_drain: None,
            write_callbacks: VecDeque::new(),
            shutdown_callback: None,
            on_close: None,
        }
    }
}

impl<S: Stream, R: Reactor + 'static> fmt::Debug for Connection<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("stream", &self.stream)
            .field("queued", &self.queued_bytes())
            .field("eof", &self.eof())
            .field("closed", &self.closed())
            .finish_non_exhaustive()
    }
}

impl<S: Stream, R: Reactor + 'static> Connection<S, R> {
    pub(super) fn new(stream: S, options: &ConnOptions, shared: Rc<ConnShared>) -> Connection<S, R> {
        Connection {
            id: NO_ID,
            stream,
            interest: Some(Interest::READABLE),
            on_data: None,
            read_calls: 0,
            shared,
            extras: None,
            flags: Flags::new(options.allow_half_open),
        }
    }

    /// The `Copy` handle of this connection, for use outside its callbacks.
    pub fn handle(&self) -> Handle<S> {
        Handle::from_id(self.id)
    }

    /// The connection's watch id.
    pub fn id(&self) -> EventId {
        self.id
    }

    /// The socket, for options this module does not wrap. Do not read from or write to it
    /// directly: that would bypass the buffer and the write queue.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Bytes queued for the kernel.
    pub fn queued_bytes(&self) -> usize {
        self.extras.as_ref().map_or(0, |e| e.queue.len() - e.head)
    }

    /// Whether the read side reached EOF.
    pub fn is_eof(&self) -> bool {
        self.eof()
    }

    /// The read calls made on the socket so far, the ones that found nothing (`EAGAIN`)
    /// included: with the data callback's deliveries, what the read path costs in syscalls.
    /// (A read shorter than the buffer is taken for a drained socket where that is safe, so
    /// the count is usually one per message; see the [module docs](crate::net::stream).)
    pub fn read_calls(&self) -> u64 {
        self.read_calls
    }

    /// Sets the data callback: `Ok(bytes)` for each read (a slice of the connection's buffer),
    /// `Ok(&[])` at EOF, `Err` for the error that ends the connection. Replaces any previous one.
    pub fn on_data(
        &mut self,
        callback: impl FnMut(&mut Runtime<R>, &mut Connection<S, R>, io::Result<&[u8]>) + 'static,
    ) {
        self.on_data = Some(Box::new(callback));
    }

    /// Sets the drain callback: it runs when the kernel has taken every queued byte, after a
    /// write had to queue. Replaces any previous one.
    pub fn on_drain(&mut self, callback: impl FnMut(&mut Runtime<R>, &mut Connection<S, R>) + 'static) {
        self.extras_mut().on_drain = Some(Box::new(callback));
    }

    /// The out-of-line callbacks, made on first use.
    pub(super) fn extras_mut(&mut self) -> &mut Extras<S, R> {
        self.extras.get_or_insert_with(Box::default)
    }

    /// Takes the close callback of a close that waits.
    pub(super) fn take_on_close(&mut self) -> Option<OnClose<R>> {
        self.extras.as_mut()?.on_close.take()
    }

    /// Sets (or clears) the close callback of a close that waits.
    pub(super) fn set_on_close(&mut self, on_close: Option<OnClose<R>>) {
        match (on_close, self.extras.as_mut()) {
            (None, None) => {}
            (None, Some(extras)) => extras.on_close = None,
            (on_close, _) => self.extras_mut().on_close = on_close,
        }
    }

    /// Writes `data`: what the kernel takes at once is sent, the rest queued and written as the
    /// socket becomes writable. Never blocks.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::QuotaExceeded` if `queued_bytes() + data.len()` would exceed the
    ///   connection's [`max_queued_bytes`](ConnOptions::max_queued_bytes): nothing of `data`
    ///   is written (so the bound also caps one write). Wait for the drain callback.
    /// - `ErrorKind::NotConnected` after [`close`](Connection::close); `ErrorKind::BrokenPipe`
    ///   after [`shutdown`](Connection::shutdown).
    /// - The OS error of the write (`BrokenPipe`, `ConnectionReset`, ...).
    pub fn write(&mut self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        self.queue_write(data)?;
        if !self.in_event() {
            self.apply_interest(rt);
        }
        Ok(())
    }

    /// Sends FIN once every queued byte is written; reading goes on until the peer's EOF.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotConnected` after close; the OS error of `shutdown(2)`.
    pub fn shutdown(&mut self) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        if self.write_shut() || self.shutdown_pending() {
            return Ok(());
        }
        if self.queued_bytes() == 0 {
            self.set_write_shut(true);
            self.stream.shutdown_write()
        } else {
            self.set_shutdown_pending(true);
            Ok(())
        }
    }

    /// Closes the connection: no data or drain callback of it runs after this, and writes fail
    /// with `NotConnected`. Closing twice does nothing.
    ///
    /// - Normally it closes at once and discards the queued bytes: the callbacks of writes
    ///   whose bytes the kernel has taken run with `Ok`, the others with
    ///   `Err(ErrorKind::Interrupted)`, in order, then a pending shutdown callback with
    ///   `Err(Interrupted)`.
    /// - After [`shutdown`](Connection::shutdown) or
    ///   [`shutdown_with`](Connection::shutdown_with) with bytes still queued (a FIN pending),
    ///   it is a graceful close: reading stops, the queued bytes are still written and the FIN
    ///   sent, the write and shutdown callbacks run with `Ok`, then the socket closes. The
    ///   connection's deadline still bounds this; if the peer fails it or the deadline passes,
    ///   the callbacks get that error.
    pub fn close(&mut self, rt: &mut Runtime<R>) {
        self.close_or_linger(rt, None);
    }

    /// [`close`](Connection::close), then runs `on_close` in the loop's close phase, after the
    /// socket is closed. `on_close` does not run if the connection was closed already.
    pub fn close_with(&mut self, rt: &mut Runtime<R>, on_close: impl FnOnce(&mut Runtime<R>) + 'static) {
        self.close_or_linger(rt, Some(Box::new(on_close)));
    }

    fn close_or_linger(&mut self, rt: &mut Runtime<R>, on_close: Option<OnClose<R>>) {
        if self.is_closing() {
            return;
        }
        if self.shutdown_pending() {
            log::debug!("net: connection {} closes once its FIN is sent", self.id);
            self.set_closing(Some(Closing::AfterFin));
            self.set_on_close(on_close);
            self.apply_interest(rt);
        } else {
            self.close_now(rt, on_close, io::ErrorKind::Interrupted);
        }
    }

    /// Whether the connection is closed, or closing at the user's request.
    pub(super) fn is_closing(&self) -> bool {
        self.closed() || self.closing().is_some()
    }

    /// Queues (or writes at once) `data`; the caller applies the interest.
    pub(super) fn queue_write(&mut self, data: &[u8]) -> io::Result<()> {
        if self.is_closing() {
            return Err(closed_error());
        }
        if self.write_shut() || self.shutdown_pending() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after shutdown of the connection",
            ));
        }
        let queued = self.queued_bytes();
        let max_queued = self.shared.max_queued;
        if queued.saturating_add(data.len()) > max_queued {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                format!(
                    "write of {} bytes refused: {queued} bytes already queued, at most {} allowed",
                    data.len(),
                    max_queued
                ),
            ));
        }
        let mut rest = data;
        if queued == 0 {
            while !rest.is_empty() {
                match self.stream.write_some(rest) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        if let Some(extras) = self.extras.as_mut() {
                            extras.written += n as u64;
                        }
                        rest = &rest[n..];
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
        let extras = self.extras_mut();
        if extras.head > 0 && extras.head >= extras.queue.len() / 2 {
            extras.queue.drain(..extras.head);
            extras.head = 0;
        }
        extras.queue.extend_from_slice(rest);
        self.set_want_drain(true);
        Ok(())
    }

    /// The interest the connection needs now (`None`: nothing to wait for).
    pub(super) fn wanted_interest(&self) -> Option<Interest> {
        // Data that came before the data callback waits in the kernel until one is set (a
        // level-triggered watch would otherwise report it at every poll).
        let waiting_for_callback = self.unread() && self.on_data.is_none();
        let read = !self.eof() && !self.reading_paused() && self.closing().is_none() && !waiting_for_callback;
        // Callbacks that are due keep the watch live, so the event that runs them is dispatched.
        let write =
            self.queued_bytes() > 0 || self.has_due_callbacks() || self.closing() == Some(Closing::NextEvent);
        match (read, write) {
            (true, true) => Some(Interest::BOTH),
            (true, false) => Some(Interest::READABLE),
            (false, true) => Some(Interest::WRITABLE),
            (false, false) => None,
        }
    }

    pub(super) fn apply_interest(&mut self, rt: &mut Runtime<R>) {
        if self.closed() {
            return;
        }
        let wanted = self.wanted_interest();
        if wanted != self.interest && set_watch_interest(rt, self.id, self.interest, wanted).is_ok() {
            self.interest = wanted;
        }
    }

    /// Stops reading (backpressure: the peer's data waits in the kernel, and flow control
    /// slows the peer down) until [`resume_reading`](Connection::resume_reading). Queued
    /// writes still go out.
    pub fn pause_reading(&mut self, rt: &mut Runtime<R>) {
        self.set_reading_paused(true);
        self.apply_interest(rt);
    }

    /// Reads again after [`pause_reading`](Connection::pause_reading); data that arrived
    /// meanwhile is delivered.
    pub fn resume_reading(&mut self, rt: &mut Runtime<R>) {
        self.set_reading_paused(false);
        self.apply_interest(rt);
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.reading_paused()
    }

    /// Writes queued bytes; at the end of the queue runs a pending shutdown and the drain
    /// callback. An error ends the connection.
    pub(super) fn flush(&mut self, rt: &mut Runtime<R>) {
        while let Some(extras) = self.extras.as_mut().filter(|e| e.head < e.queue.len()) {
            match self.stream.write_some(&extras.queue[extras.head..]) {
                Ok(0) => {
                    self.fail(rt, io::ErrorKind::WriteZero.into());
                    return;
                }
                Ok(n) => {
                    extras.head += n;
                    extras.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(rt, e);
                    return;
                }
            }
        }
        if let Some(extras) = self.extras.as_mut() {
            extras.queue.clear();
            extras.head = 0;
            // Memory a burst (or a slow peer) needed is given back once it is written.
            if extras.queue.capacity() > KEPT_QUEUE_CAPACITY {
                extras.queue = Vec::new();
            }
        }
        if self.shutdown_pending() {
            self.set_shutdown_pending(false);
            self.set_write_shut(true);
            if let Err(e) = self.stream.shutdown_write() {
                self.fail(rt, e);
                return;
            }
        }
        if self.take_want_drain() && self.closing().is_none() {
            if let Some(mut callback) = self.extras.as_mut().and_then(|e| e.on_drain.take()) {
                callback(rt, self);
                let extras = self.extras_mut();
                if extras.on_drain.is_none() {
                    extras.on_drain = Some(callback);
                }
            }
        }
    }

    /// Delivers `error` to the data callback (unless the user closed the connection), then
    /// closes: pending write and shutdown callbacks get an error of the same kind.
    pub(super) fn fail(&mut self, rt: &mut Runtime<R>, error: io::Error) {
        if self.closed() {
            return;
        }
        log::debug!("net: connection {} failed: {error}", self.id);
        let kind = error.kind();
        deliver(rt, self, Err(error));
        let on_close = self.take_on_close();
        self.close_now(rt, on_close, kind);
    }
}

pub(super) fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")
}

#[cfg(test)]
mod tests {
    /// What an idle connection holds in its watch entry: pinned so that a field added to the
    /// connection is a decision (the cold parts belong in `Extras`). 56 bytes with a 4-byte
    /// fd; a Windows `SOCKET` is 8 bytes, which rounds the connection up to 64 there.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn an_idle_connection_is_at_most_56_bytes() {
        // The watch entry is the connection's `StreamState` (the connection alone): at 56
        // bytes it is a 64-byte allocation with glibc's malloc, where 64 made it an 80-byte one.
        type C = super::Connection<std::net::TcpStream, crate::DefaultReactor>;
        type St = super::super::StreamState<std::net::TcpStream, crate::DefaultReactor>;
        let size = std::mem::size_of::<C>();
        // A Windows `SOCKET` is 8 bytes where an fd is 4.
        let limit = if cfg!(windows) { 64 } else { 56 };
        assert!(size <= limit, "Connection is {size} bytes (at most {limit} here)");
        assert_eq!(
            std::mem::size_of::<St>(),
            size,
            "the watch entry is the connection alone"
        );
        // And it is stored inline in its watch slot: no allocation of its own.
        assert!(size <= crate::runtime::stored_entry::INLINE_BYTES);
        assert!(std::mem::align_of::<St>() <= std::mem::align_of::<usize>());
    }
}
