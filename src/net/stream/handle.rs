//! [`Handle`]: a connection's `Copy` handle, for use outside its callbacks.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::marker::PhantomData;

use super::done::{Closing, OnClose};
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
        // Reading resumes if it waited for a callback (`update` asks for the interest).
        let unread = self.update(rt, |conn| {
            conn.on_data(callback);
            Ok(conn.take_unread())
        })?;
        if unread {
            // Be called back to read what is waiting (edge-triggered backends need not report
            // it again).
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
        self.update(rt, |conn| conn.queue_write(data))
    }

    /// [`Connection::write_with`]: `callback` runs once, from the loop, with `Ok` when the
    /// kernel has taken every byte of `data`, or the error that ended the connection first
    /// (`Interrupted` if it was closed with them still queued).
    ///
    /// # Errors
    ///
    /// As for [`Connection::write`] (then `callback` is dropped unrun); `ErrorKind::NotFound`
    /// if the connection is closed or running its own callback.
    pub fn write_with<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        data: &[u8],
        callback: impl FnOnce(&mut Runtime<R>, &mut Connection<S, R>, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let callback = Box::new(callback);
        self.update(rt, |conn| conn.queue_write_with(data, callback))
    }

    /// [`Connection::shutdown_with`]: `callback` runs once, from the loop, with `Ok` after the
    /// queued bytes are written and the FIN sent (a close right after this waits for that), or
    /// the error that ended the connection first.
    ///
    /// # Errors
    ///
    /// As for [`Connection::shutdown_with`]; `ErrorKind::NotFound` if the connection is closed
    /// or running its own callback.
    pub fn shutdown_with<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        callback: impl FnOnce(&mut Runtime<R>, &mut Connection<S, R>, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let callback = Box::new(callback);
        self.update(rt, |conn| conn.queue_shutdown_with(callback))
    }

    /// Runs `f` on the connection, then gives its watch the interest it needs now, and feeds
    /// it an event if callbacks came due (they run from the loop, in the connection's event).
    fn update<R: Reactor + 'static, T>(
        self,
        rt: &mut Runtime<R>,
        f: impl FnOnce(&mut Connection<S, R>) -> io::Result<T>,
    ) -> io::Result<T> {
        let (value, old, wanted, due) = self.with(rt, |conn| -> io::Result<_> {
            let value = f(conn)?;
            let old = conn.interest;
            conn.interest = conn.wanted_interest();
            let due = conn.has_due_callbacks() || conn.closing() == Some(Closing::NextEvent);
            Ok((value, old, conn.interest, due))
        })??;
        set_watch_interest(rt, self.id, old, wanted)?;
        if due {
            rt.wake_watch(self.id)?;
        }
        Ok(value)
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
        self.update(rt, |conn| {
            conn.set_reading_paused(paused);
            Ok(())
        })
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

    /// [`Connection::close`]: closes the connection, at once unless a FIN is pending (then
    /// gracefully) or write/shutdown callbacks are pending: then the socket closes in the
    /// connection's next event (the pending phase of the next iteration), where those callbacks
    /// run (`Ok` for bytes the kernel took, `Err(Interrupted)` for the rest). Either way no
    /// data callback runs after this and writes fail.
    ///
    /// # Errors
    ///
    /// `ErrorKind::NotFound` if it is closed already.
    pub fn close<R: Reactor + 'static>(self, rt: &mut Runtime<R>) -> io::Result<()> {
        self.close_inner(rt, None)
    }

    /// [`close`](Handle::close), and runs `on_close` in the loop's close phase, after the
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
        self.close_inner(rt, Some(Box::new(on_close)))
    }

    fn close_inner<R: Reactor + 'static>(
        self,
        rt: &mut Runtime<R>,
        mut on_close: Option<OnClose<R>>,
    ) -> io::Result<()> {
        let waits = rt.source_mut::<StreamState<S, R>>(self.id).map(|state| {
            let conn = &mut state.conn;
            if conn.is_closing() {
                return true; // closing already: nothing more to do
            }
            let pending = conn
                .extras
                .as_ref()
                .is_some_and(|e| !e.write_callbacks.is_empty() || e.shutdown_callback.is_some());
            if conn.shutdown_pending() {
                conn.set_closing(Some(Closing::AfterFin));
            } else if pending {
                conn.set_closing(Some(Closing::NextEvent));
            } else {
                return false;
            }
            conn.set_on_close(on_close.take());
            true
        });
        match waits {
            Some(true) => self.update(rt, |_| Ok(())),
            // Not reachable (closed, or running its own callback, where the runtime closes it
            // after the callback) or nothing to wait for: close the watch now.
            _ => match on_close {
                Some(on_close) => rt.close_with(self.id, on_close),
                None => rt.close(self.id),
            },
        }
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
