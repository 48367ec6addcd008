//! [`Handle`]: a connection's `Copy` handle, for use outside its callbacks.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::marker::PhantomData;

use super::event::set_watch_interest;
use super::{Connection, Stream, StreamState};
use crate::net::not_reachable;
use crate::runtime::Runtime;
use crate::{EventId, Reactor};

/// A connection's handle: the `Copy` id of its watch, typed by its stream (`tcp::Conn` is
/// `Handle<TcpStream>`).
///
/// Its methods find the connection with [`Runtime::source_mut`]; they fail with
/// `ErrorKind::NotFound` once the connection is closed, and while its own callback runs (use
/// the [`Connection`] that callback is given).
pub struct Handle<S> {
    id: EventId,
    stream: PhantomData<fn() -> S>,
}

impl<S> Clone for Handle<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Handle<S> {}
impl<S> PartialEq for Handle<S> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl<S> Eq for Handle<S> {}
impl<S> Hash for Handle<S> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
impl<S> fmt::Debug for Handle<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Conn").field(&self.id).finish()
    }
}

impl<S> Handle<S> {
    /// The handle of the connection watched as `id` (its methods fail with `NotFound` if `id`
    /// is not a connection of this stream type).
    pub fn from_id(id: EventId) -> Handle<S> {
        Handle {
            id,
            stream: PhantomData,
        }
    }

    /// The connection's watch id.
    pub fn id(self) -> EventId {
        self.id
    }
}

impl<S: Stream> Handle<S> {
    /// Runs `f` with the connection.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn with<R: Reactor + 'static, T>(
        self,
        rt: &mut Runtime<R>,
        f: impl FnOnce(&mut Connection<S, R>) -> T,
    ) -> io::Result<T> {
        self.state(rt).map(|state| f(&mut state.conn))
    }

    fn state<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<&mut StreamState<S, R>> {
        rt.source_mut::<StreamState<S, R>>(self.id)
            .ok_or_else(|| not_reachable("connection", self.id))
    }

    /// [`Connection::on_data`]. If data arrived before the callback was set, it is read soon
    /// after.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn on_data<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, &mut Connection<S, R>, io::Result<&[u8]>) + 'static,
    ) -> io::Result<()> {
        let conn = &mut self.state(rt)?.conn;
        conn.on_data(callback);
        if std::mem::take(&mut conn.unread) {
            // Be called back to read what is waiting (edge-triggered backends will not report it
            // again).
            rt.wake_watch(self.id)?;
        }
        Ok(())
    }

    /// [`Connection::on_drain`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn on_drain<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnMut(&mut Runtime<R>, &mut Connection<S, R>) + 'static,
    ) -> io::Result<()> {
        self.with(rt, |conn| conn.on_drain(callback))
    }

    /// [`Connection::write`].
    ///
    /// # Errors
    ///
    /// As for [`Connection::write`]; `ErrorKind::NotFound` if the connection is closed or
    /// running its own callback.
    pub fn write<R: Reactor + 'static>(self, rt: &mut Runtime<R>, data: &[u8]) -> io::Result<()> {
        let (old, wanted) = self.with(rt, |conn| -> io::Result<_> {
            conn.queue_write(data)?;
            let old = conn.interest;
            conn.interest = conn.wanted_interest();
            Ok((old, conn.interest))
        })??;
        set_watch_interest(rt, self.id, old, wanted)
    }

    /// [`Connection::pause_reading`].
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if the connection is closed or running its own callback.
    pub fn pause_reading<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.set_reading_paused(rt, true)
    }

    /// [`Connection::resume_reading`].
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
        set_watch_interest(rt, self.id, old, wanted)
    }

    /// [`Connection::shutdown`].
    ///
    /// # Errors
    ///
    /// As for [`Connection::shutdown`]; `ErrorKind::NotFound` if the connection is closed or
    /// running its own callback.
    pub fn shutdown<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.with(rt, |conn| conn.shutdown())?
    }

    /// Closes the connection at once, discarding queued bytes.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already.
    pub fn close<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        rt.close(self.id)
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
        rt.close_with(self.id, on_close)
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
