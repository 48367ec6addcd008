//! Completing a non-blocking connect, with a deadline: shared by `tcp::connect` and
//! `unix::connect`.

use std::io;

use super::{adopt, ConnShared, ConnectOptions, Handle, Stream};
use crate::runtime::Runtime;
use crate::{Interest, Reactor};

/// Watches `stream`, whose non-blocking connect to `to` (for messages) is under way, and calls
/// `callback` with the connection once it is connected, or with the error (`TimedOut` past
/// the connect's deadline).
///
/// # Errors
///
/// The runtime's error if the socket cannot be watched; the callback is then dropped unrun.
pub(crate) fn connect_stream<S, R, F>(
    rt: &mut Runtime<R>,
    stream: S,
    to: String,
    options: ConnectOptions,
    callback: F,
) -> io::Result<()>
where
    S: Stream,
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Handle<S>>) + 'static,
{
    let id = rt.watch_once_with(
        stream,
        Interest::WRITABLE,
        options.connect,
        move |rt, stream, event| {
            let connected = event.and_then(|_| match stream.take_socket_error()? {
                Some(e) => Err(e),
                None => stream.check_connected(),
            });
            match connected {
                Ok(()) => {
                    let shared = ConnShared::new(&options.conn);
                    let conn = adopt(rt, stream, options.conn, shared);
                    if let Ok(conn) = &conn {
                        log::debug!("net: connected to {to} as {}", conn.id());
                    }
                    callback(rt, conn);
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => callback(
                    rt,
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {to} timed out"),
                    )),
                ),
                Err(e) => callback(rt, Err(e)),
            }
        },
    )?;
    log::debug!("net: connecting as {id}");
    Ok(())
}
