//! Per-request callbacks: [`Connection::write_with`], [`Connection::shutdown_with`], and what
//! a close does to the ones still pending.

use std::io;

use super::{Connection, Stream};
use crate::runtime::Runtime;
use crate::Reactor;

/// A write or shutdown callback: `Ok(())` once done, or the error that ended the connection
/// first. It gets the connection (closed already, after an error).
pub(super) type DoneCallback<S, R> = Box<dyn FnOnce(&mut Runtime<R>, &mut Connection<S, R>, io::Result<()>)>;
/// A close callback that waits for the close.
pub(super) type OnClose<R> = Box<dyn FnOnce(&mut Runtime<R>)>;

/// Why a connection the user closed is still open.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Closing {
    /// Closed after a shutdown with bytes queued: it closes once they are written and FIN sent.
    AfterFin,
    /// Closed through its handle with callbacks pending: it closes in its next event, where
    /// the callbacks can be given the connection.
    NextEvent,
}

impl<S: Stream, R: Reactor + 'static> Connection<S, R> {
    /// [`write`](Connection::write), and `callback` runs once, from the loop (never inside
    /// this call), when the outcome is known (libuv's `uv_write` callback):
    ///
    /// - `Ok(())` once the kernel has taken every byte of `data` (written to the socket, not
    ///   yet received by the peer);
    /// - `Err` if the connection ended before that: `ErrorKind::Interrupted` if it was
    ///   [closed](Connection::close) with the bytes still queued (they are discarded), the
    ///   connection's error otherwise (`TimedOut` for its deadline, `ConnectionReset`,
    ///   `BrokenPipe`, ...).
    ///
    /// Callbacks run in the order of their writes, before the drain callback of the same
    /// flush. A plain [`write`](Connection::write) between two `write_with` keeps its place in
    /// the byte stream. The callback is given the connection, so it can write the next piece
    /// (after an error the connection is closed and writes fail with `NotConnected`).
    ///
    /// The callback only runs while the connection's watch lives: closing it with
    /// [`Runtime::close`] on its id, or dropping the runtime, drops pending callbacks unrun.
    ///
    /// ```
    /// use portable_reactor::net::tcp::{self, ListenOptions};
    /// use portable_reactor::runtime::Runtime;
    /// use std::io::Read;
    ///
    /// let mut rt = Runtime::new()?;
    /// let listener = tcp::listen(&mut rt, "127.0.0.1:0".parse().unwrap(), ListenOptions::new(), |rt, conn| {
    ///     let conn = conn.expect("accept");
    ///     conn.write_with(rt, b"first", |rt, conn, done| {
    ///         done.expect("the kernel took the first piece");
    ///         conn.write_with(rt, b" second", |rt, conn, done| {
    ///             done.expect("and the second");
    ///             conn.close(rt);
    ///             rt.stop();
    ///         })
    ///         .unwrap();
    ///     })
    ///     .unwrap();
    /// })?;
    /// let addr = listener.local_addr();
    /// let reader = std::thread::spawn(move || {
    ///     let mut text = String::new();
    ///     std::net::TcpStream::connect(addr)?.read_to_string(&mut text)?;
    ///     std::io::Result::Ok(text)
    /// });
    /// rt.run()?;
    /// assert_eq!(reader.join().unwrap()?, "first second");
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`write`](Connection::write); then `callback` is dropped unrun.
    pub fn write_with(
        &mut self,
        rt: &mut Runtime<R>,
        data: &[u8],
        callback: impl FnOnce(&mut Runtime<R>, &mut Connection<S, R>, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.queue_write_with(data, Box::new(callback))?;
        self.apply_interest(rt);
        Ok(())
    }

    pub(super) fn queue_write_with(&mut self, data: &[u8], callback: DoneCallback<S, R>) -> io::Result<()> {
        self.queue_write(data)?;
        let queued = self.queued_bytes() as u64;
        let extras = self.extras_mut();
        let end = extras.written + queued;
        extras.write_callbacks.push_back((end, callback));
        Ok(())
    }

    /// [`shutdown`](Connection::shutdown), and `callback` runs once, from the loop, when the
    /// outcome is known (libuv's `uv_shutdown` callback): `Ok(())` after every queued byte was
    /// written and the FIN sent, or the error that ended the connection first.
    ///
    /// A [`close`](Connection::close) right after this does not discard the queued bytes: it
    /// waits for them and the FIN (within the connection's deadline), and the callback still
    /// gets `Ok` (libuv would cancel the shutdown with `ECANCELED`; this runtime finishes it,
    /// which is what "shutdown, then close" asks for).
    ///
    /// ```
    /// use portable_reactor::net::tcp::{self, ListenOptions};
    /// use portable_reactor::runtime::Runtime;
    /// use std::io::Read;
    ///
    /// let mut rt = Runtime::new()?;
    /// let listener = tcp::listen(&mut rt, "127.0.0.1:0".parse().unwrap(), ListenOptions::new(), |rt, conn| {
    ///     let conn = conn.expect("accept");
    ///     conn.write(rt, &vec![b'x'; 1 << 20]).unwrap(); // more than the socket buffer takes
    ///     conn.shutdown_with(rt, |_, _, done| done.expect("all written, FIN sent")).unwrap();
    ///     conn.close(rt).unwrap(); // waits for the bytes and the FIN
    ///     rt.stop();
    /// })?;
    /// let addr = listener.local_addr();
    /// let client = std::thread::spawn(move || {
    ///     let mut got = Vec::new();
    ///     std::net::TcpStream::connect(addr)?.read_to_end(&mut got)?;
    ///     std::io::Result::Ok(got.len())
    /// });
    /// rt.run()?; // until the connection callback
    /// listener.close(&mut rt);
    /// rt.run()?; // until the connection is closed
    /// assert_eq!(client.join().unwrap()?, 1 << 20);
    /// # std::io::Result::Ok(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotConnected` after close; `ErrorKind::AlreadyExists` if a shutdown callback
    /// is pending already; the OS error of `shutdown(2)` if it is sent at once. `callback` is
    /// then dropped unrun.
    pub fn shutdown_with(
        &mut self,
        rt: &mut Runtime<R>,
        callback: impl FnOnce(&mut Runtime<R>, &mut Connection<S, R>, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.queue_shutdown_with(Box::new(callback))?;
        self.apply_interest(rt);
        Ok(())
    }

    pub(super) fn queue_shutdown_with(&mut self, callback: DoneCallback<S, R>) -> io::Result<()> {
        if self
            .extras
            .as_ref()
            .is_some_and(|e| e.shutdown_callback.is_some())
        {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a shutdown callback is pending already",
            ));
        }
        self.shutdown()?;
        self.extras_mut().shutdown_callback = Some(callback);
        Ok(())
    }

    /// Whether a write or shutdown callback can run now.
    pub(super) fn has_due_callbacks(&self) -> bool {
        let Some(extras) = &self.extras else { return false };
        extras
            .write_callbacks
            .front()
            .is_some_and(|&(end, _)| end <= extras.written)
            || (self.write_shut() && extras.shutdown_callback.is_some())
    }

    /// Runs the write callbacks whose bytes are out, then the shutdown callback once FIN is
    /// sent (with `Ok`).
    pub(super) fn run_due_callbacks(&mut self, rt: &mut Runtime<R>) {
        while let Some(extras) = self.extras.as_mut() {
            match extras.write_callbacks.front() {
                Some(&(end, _)) if end <= extras.written => {}
                _ => break,
            }
            if let Some((_, callback)) = extras.write_callbacks.pop_front() {
                callback(rt, self, Ok(()));
            }
        }
        if self.write_shut() && self.queued_bytes() == 0 {
            if let Some(callback) = self.extras.as_mut().and_then(|e| e.shutdown_callback.take()) {
                callback(rt, self, Ok(()));
            }
        }
    }

    /// Closes the socket now: callbacks that are due get `Ok`, the rest an error of `kind`.
    pub(super) fn close_now(
        &mut self,
        rt: &mut Runtime<R>,
        on_close: Option<OnClose<R>>,
        kind: io::ErrorKind,
    ) {
        if self.closed() {
            return;
        }
        self.run_due_callbacks(rt);
        if self.closed() {
            return; // one of them closed it
        }
        self.set_closed(true);
        self.set_closing(None);
        let _ = match on_close {
            Some(on_close) => rt.close_with(self.id, on_close),
            None => rt.close(self.id),
        };
        self.cancel_callbacks(rt, kind);
    }

    /// Runs every pending write and shutdown callback with an error of `kind` (the connection
    /// is closed).
    pub(super) fn cancel_callbacks(&mut self, rt: &mut Runtime<R>, kind: io::ErrorKind) {
        let why = if kind == io::ErrorKind::Interrupted {
            "the connection was closed before the bytes were written"
        } else {
            "the connection failed before the bytes were written"
        };
        while let Some((_, callback)) = self.extras.as_mut().and_then(|e| e.write_callbacks.pop_front()) {
            callback(rt, self, Err(io::Error::new(kind, why)));
        }
        if let Some(callback) = self.extras.as_mut().and_then(|e| e.shutdown_callback.take()) {
            let why = "the connection ended before its FIN was sent";
            callback(rt, self, Err(io::Error::new(kind, why)));
        }
    }
}
