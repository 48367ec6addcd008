//! Host name resolution on the runtime's thread pool, with a deadline.
//!
//! The system resolver (`getaddrinfo`, through `std::net::ToSocketAddrs`) blocks, so it runs on
//! the pool; the callback runs on the loop. A timer races it: past the deadline the callback
//! gets `ErrorKind::TimedOut` (the blocked pool job finishes on its own later, and its result
//! is dropped).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::Runtime;
use crate::Reactor;

/// The deadline of [`resolve`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Resolves `host` (a name, or an IP address literal) to socket addresses with `port`, with
/// the [`DEFAULT_TIMEOUT`] deadline. See [`resolve_with`].
///
/// ```
/// use portable_reactor::net::dns;
/// use portable_reactor::runtime::Runtime;
///
/// let mut rt = Runtime::new()?;
/// dns::resolve(&mut rt, "localhost", 80, |_, addrs| {
///     let addrs = addrs.expect("localhost resolves");
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// })?;
/// rt.run()?;
/// # std::io::Result::Ok(())
/// ```
///
/// # Errors
///
/// As for [`resolve_with`].
pub fn resolve<R, F>(rt: &mut Runtime<R>, host: &str, port: u16, callback: F) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Vec<SocketAddr>>) + 'static,
{
    resolve_with(rt, host, port, Some(DEFAULT_TIMEOUT), callback)
}

/// Resolves `host` to socket addresses with `port` on the thread pool and calls `callback`
/// with them (never empty), or with an error naming the host: the resolver's (a name that does
/// not resolve, e.g. `NotFound`/`Other` kinds depending on the OS), `NotFound` if it resolved to
/// no address, or `TimedOut` when `timeout` passes first (`None`: no deadline).
///
/// # Errors
///
/// The pool's error if no pool thread could be started; the callback is then dropped unrun.
pub fn resolve_with<R, F>(
    rt: &mut Runtime<R>,
    host: &str,
    port: u16,
    timeout: Option<Duration>,
    callback: F,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Vec<SocketAddr>>) + 'static,
{
    let slot = Rc::new(RefCell::new(Some(callback)));
    let timer = Rc::new(Cell::new(None));
    let name = host.to_owned();
    let lookup = name.clone();
    let (done, done_timer) = (slot.clone(), timer.clone());
    rt.spawn_blocking(
        move || {
            (lookup.as_str(), port)
                .to_socket_addrs()
                .map(Iterator::collect::<Vec<_>>)
        },
        move |rt, result: io::Result<io::Result<Vec<SocketAddr>>>| {
            let Some(callback) = done.borrow_mut().take() else {
                log::debug!("net: resolving {name:?} finished after its deadline");
                return;
            };
            if let Some(t) = done_timer.take() {
                rt.clear_timer(t);
            }
            let result = result.and_then(|r| r).and_then(|addrs| {
                if addrs.is_empty() {
                    Err(io::Error::new(io::ErrorKind::NotFound, "resolved to no address"))
                } else {
                    Ok(addrs)
                }
            });
            let result =
                result.map_err(|e| io::Error::new(e.kind(), format!("cannot resolve {name:?}: {e}")));
            log::debug!("net: resolved {name:?}: {result:?}");
            callback(rt, result);
        },
    )?;
    if let Some(after) = timeout {
        let host = host.to_owned();
        let id = rt.set_timeout(after, move |rt| {
            if let Some(callback) = slot.borrow_mut().take() {
                callback(
                    rt,
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("resolving {host:?} took longer than {after:?}"),
                    )),
                );
            }
        });
        timer.set(Some(id));
    }
    Ok(())
}
