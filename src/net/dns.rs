//! Host name resolution on the runtime's thread pool, with a deadline.
//!
//! The system resolver (`getaddrinfo`, through `std::net::ToSocketAddrs`) blocks, so it runs on
//! the pool; the callback runs on the loop. A timer races it: past the deadline the callback
//! gets `ErrorKind::TimedOut` (the blocked pool job finishes on its own later, and its result
//! is dropped). Lookups are the pool's *slow* work
//! ([`Runtime::spawn_blocking_slow`]): hung lookups hold at most half its threads, so file
//! system work and other jobs keep going.

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

/// The longest host name [`resolve`] accepts: 253 bytes (RFC 1035), not counting a final dot.
pub const MAX_NAME: usize = 253;

/// Resolves `host` to socket addresses with `port` on the thread pool and calls `callback`
/// with them (never empty), or with an error naming the host: `NotFound` if the resolver
/// cannot resolve it or it resolved to no address (std's view of the system resolver does not
/// tell a name that does not exist from a resolver that cannot be reached, so both are
/// `NotFound`), or `TimedOut` when `timeout` passes first (`None`: no deadline).
///
/// `host` is an IP address literal (`127.0.0.1`, `::1`) or a host name: at most [`MAX_NAME`]
/// bytes, dot-separated labels of 1 to 63 bytes each, of ASCII letters, digits, `-` and `_`
/// (other non-ASCII bytes are left to the resolver).
///
/// # Errors
///
/// `ErrorKind::InvalidInput` for a `host` that is neither (empty, too long, an empty or
/// too long label, a space, `:` outside an IPv6 literal, ...); the pool's error if no pool
/// thread could be started. The callback is then dropped unrun.
///
/// ```
/// use portable_reactor::net::dns;
/// use portable_reactor::runtime::Runtime;
/// let mut rt = Runtime::new()?;
/// for bad in ["", "::::", "a..b", &"x".repeat(300)] {
///     let err = dns::resolve(&mut rt, bad, 80, |_, _| unreachable!()).unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
/// }
/// # std::io::Result::Ok(())
/// ```
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
    check_host(host)?;
    let lookup = host.to_owned();
    let lookup = move || {
        (lookup.as_str(), port)
            .to_socket_addrs()
            .map(Iterator::collect::<Vec<_>>)
    };
    resolve_by(rt, host, timeout, lookup, callback)
}

/// [`resolve_with`] with the lookup itself given (tests hang it).
fn resolve_by<R, F>(
    rt: &mut Runtime<R>,
    host: &str,
    timeout: Option<Duration>,
    lookup: impl FnOnce() -> io::Result<Vec<SocketAddr>> + Send + 'static,
    callback: F,
) -> io::Result<()>
where
    R: Reactor + 'static,
    F: FnOnce(&mut Runtime<R>, io::Result<Vec<SocketAddr>>) + 'static,
{
    let slot = Rc::new(RefCell::new(Some(callback)));
    let timer = Rc::new(Cell::new(None));
    let name = host.to_owned();
    let (done, done_timer) = (slot.clone(), timer.clone());
    // Slow work: a resolver that does not answer holds its thread, and at most half the pool
    // may be held so (see `Runtime::spawn_blocking_slow`).
    rt.spawn_blocking_slow(
        lookup,
        move |rt, result: io::Result<io::Result<Vec<SocketAddr>>>| {
            let Some(callback) = done.borrow_mut().take() else {
                log::debug!("net: resolving {name:?} finished after its deadline");
                return;
            };
            if let Some(t) = done_timer.take() {
                rt.clear_timer(t);
            }
            // std reports getaddrinfo's failures as `Uncategorized`, which users cannot match.
            let result = result.and_then(|r| {
                r.map_err(|e| match e.kind() {
                    io::ErrorKind::InvalidInput | io::ErrorKind::TimedOut => e,
                    _ => io::Error::new(io::ErrorKind::NotFound, e),
                })
            });
            let result = result.and_then(|addrs| {
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

/// Refuses what is neither an IP address literal nor a host name (see [`resolve_with`]).
fn check_host(host: &str) -> io::Result<()> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name.len() > MAX_NAME {
        Some(format!("is longer than {MAX_NAME} bytes"))
    } else if let Some(label) = name.split('.').find(|l| l.is_empty() || l.len() > 63) {
        Some(format!("has a label of {} bytes (1 to 63 allowed)", label.len()))
    } else {
        name.bytes()
            .find(|&b| b.is_ascii() && !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
            .map(|b| format!("contains {:?}", b as char))
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("host name {host:?} {problem}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MioReactor, PollingReactor};
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Instant;

    const LIMIT: Duration = Duration::from_secs(10);

    /// Node's dns-starves-fs bug: with a pool of 2, three lookups that hang must not delay
    /// file system work. Fails (the read waits for the lookups' own 10 s timeout) when
    /// lookups are ordinary pool work.
    fn hung_lookups_do_not_delay_fs<R: Reactor + 'static>(reactor: R) {
        let mut rt = crate::runtime::Builder::new()
            .threads(2)
            .build_with(reactor)
            .unwrap();
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        let resolved = Rc::new(Cell::new(0));
        for _ in 0..3 {
            let hold = hold.clone();
            let r = resolved.clone();
            let lookup = move || {
                let released = hold.lock().unwrap().recv_timeout(LIMIT).is_ok();
                if released {
                    Ok(vec![SocketAddr::from(([127, 0, 0, 1], 80))])
                } else {
                    Err(io::Error::new(io::ErrorKind::TimedOut, "never released"))
                }
            };
            resolve_by(&mut rt, "hangs.example", None, lookup, move |_, a| {
                r.set(r.get() + usize::from(a.is_ok_and(|a| a.len() == 1)));
            })
            .unwrap();
        }
        let path = std::env::temp_dir().join(format!(
            "pr-dns-starve-{}-{}",
            rt.reactor().name(),
            std::process::id()
        ));
        std::fs::write(&path, b"fs").unwrap();
        let start = Instant::now();
        let waited = Rc::new(Cell::new(None));
        let w = waited.clone();
        crate::fs::read_file(&mut rt, &path, move |_, data| {
            assert_eq!(data.unwrap(), b"fs");
            w.set(Some(start.elapsed()));
            for _ in 0..3 {
                release.send(()).unwrap();
            }
        })
        .unwrap();
        let watchdog = rt.set_timeout(3 * LIMIT, |rt| rt.stop());
        rt.unref_timer(watchdog);
        rt.run().unwrap();
        std::fs::remove_file(&path).unwrap();
        let waited = waited.get().expect("the read completed");
        assert!(
            waited < LIMIT / 2,
            "the read waited {waited:?} behind hung lookups"
        );
        assert_eq!(resolved.get(), 3, "the lookups finished once released");
    }

    #[test]
    fn hung_lookups_do_not_delay_fs_polling() {
        hung_lookups_do_not_delay_fs(PollingReactor::new().unwrap());
    }

    #[test]
    fn hung_lookups_do_not_delay_fs_mio() {
        hung_lookups_do_not_delay_fs(MioReactor::new().unwrap());
    }
}
