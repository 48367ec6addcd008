//! A connection's watch callback: the read path and what follows each event.

use std::io;
use std::rc::Rc;

use super::done::Closing;
use super::{Connection, Stream, StreamState, READS_PER_EVENT};
use crate::runtime::Runtime;
use crate::{Event, EventId, Interest, Reactor};

/// Calls the data callback, keeping it unless it replaced itself.
pub(super) fn deliver<S: Stream, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    conn: &mut Connection<S, R>,
    data: io::Result<&[u8]>,
) {
    if conn.closing().is_some() {
        // The user closed the connection: no data callback runs after that.
        return;
    }
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

/// A connection's watch callback.
pub(super) fn conn_event<S: Stream, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    id: EventId,
    state: &mut StreamState<S, R>,
    event: io::Result<Event>,
) {
    let conn = &mut state.conn;
    conn.id = id;
    let event = match event {
        Ok(event) => event,
        Err(e) => {
            // The runtime ended the watch (deadline, or re-arming failed): it is gone.
            if !conn.closed() {
                log::debug!("net: connection {id} ended: {e}");
                conn.run_due_callbacks(rt);
                conn.set_closed(true);
                let kind = e.kind();
                deliver(rt, conn, Err(e));
                conn.cancel_callbacks(rt, kind);
                if let Some(on_close) = conn.take_on_close() {
                    rt.set_immediate(on_close);
                }
            }
            return;
        }
    };
    if conn.closed() {
        return;
    }
    if conn.closing() == Some(Closing::NextEvent) {
        let on_close = conn.take_on_close();
        conn.close_now(rt, on_close, io::ErrorKind::Interrupted);
        return;
    }
    conn.set_in_event(true);
    if conn.queued_bytes() > 0 {
        conn.flush(rt);
    }
    let ended = event.is_error() || event.is_read_closed();
    let readable = event.is_readable() || ended;
    if readable && !conn.is_closing() && !conn.eof() {
        read_ready(rt, state, ended);
    }
    settle(rt, &mut state.conn);
}

/// Reads until `WouldBlock`, EOF, an error, or the per-event limit; or, where a short read
/// means drained (`Connection::short_read_drains`) and the event did not report the end of
/// the stream (`ended`), until a read shorter than the buffer: the `EAGAIN` read after it is
/// one syscall per message saved (a peer that sent exactly a buffer's worth still gets the
/// read that finds nothing).
fn read_ready<S: Stream, R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    state: &mut StreamState<S, R>,
    ended: bool,
) {
    let conn = &mut state.conn;
    // Held apart from the connection, which the data callback borrows mutably (a count, no
    // allocation).
    let buf = Rc::clone(&conn.shared);
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
        if conn.is_closing() || conn.eof() || conn.reading_paused() {
            return;
        }
        if conn.on_data.is_none() {
            conn.set_unread(true);
            return;
        }
        conn.read_calls += 1;
        match conn.stream.read_some(bytes) {
            Ok(0) => {
                conn.set_eof(true);
                deliver(rt, conn, Ok(&[]));
                return;
            }
            Ok(n) => {
                let drained = n < bytes.len() && conn.short_read_drains() && !ended;
                deliver(rt, conn, Ok(&bytes[..n]));
                if drained {
                    return;
                }
            }
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
pub(super) fn set_watch_interest<R: Reactor + 'static>(
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
fn settle<S: Stream, R: Reactor + 'static>(rt: &mut Runtime<R>, conn: &mut Connection<S, R>) {
    conn.set_in_event(false);
    if conn.closed() {
        return;
    }
    if conn.has_due_callbacks() {
        conn.run_due_callbacks(rt);
        if conn.closed() {
            return;
        }
    }
    if conn.closing() == Some(Closing::AfterFin) && conn.write_shut() {
        log::debug!("net: connection {} closed after its FIN", conn.id);
        let on_close = conn.take_on_close();
        conn.close_now(rt, on_close, io::ErrorKind::Interrupted);
        return;
    }
    if conn.eof() && conn.queued_bytes() == 0 && (!conn.allow_half_open() || conn.write_shut()) {
        log::debug!("net: connection {} closed after EOF", conn.id);
        let on_close = conn.take_on_close();
        conn.close_now(rt, on_close, io::ErrorKind::Interrupted);
        return;
    }
    conn.apply_interest(rt);
}
