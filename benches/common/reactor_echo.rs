//! The echo server on a bare [`Reactor`] (no runtime): the hand-written mio loop's shape, with
//! the adapter in mio's place, so that `ci/count-echo.sh` counts what the adapter itself costs
//! (kinds `reactor-mio` and `reactor-polling`) against the mio loop and the raw epoll floor.
//! Like the mio loop it reads until `WouldBlock` (4 syscalls per round trip at 1x64), so the
//! two differ by the adapter alone.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use portable_reactor::{AsSource, EventId, Events, Interest, Mode, Reactor};

use super::servers::echo_serve;

const LISTENER: EventId = EventId(usize::MAX);
const SWEEP: Duration = Duration::from_secs(1);

struct Conn {
    stream: TcpStream,
    pending: Vec<u8>,
    last_active: Instant,
}

/// Serves echo on `listener` through `reactor`, edge-triggered where the reactor has it (else
/// level), until the process is killed (or a poll fails); connections idle for `deadline` are dropped by a sweep
/// once a second, as in the mio loop.
pub fn reactor_echo<R: Reactor>(
    reactor: R,
    listener: TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let mode = if reactor.supports(Mode::Edge) {
        Mode::Edge
    } else {
        Mode::Level
    };
    listener.set_nonblocking(true)?;
    // SAFETY: the listener lives until the end of this function, which never deregisters it
    // because it never returns but with an error (the reactor is dropped first then).
    unsafe { reactor.register(listener.as_source(), LISTENER, Interest::READABLE, mode)? };
    let mut conns: slab::Slab<Conn> = slab::Slab::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    let mut next_sweep = Instant::now() + SWEEP;
    ready();
    loop {
        let timeout = next_sweep.saturating_duration_since(Instant::now());
        reactor.poll(&mut events, Some(timeout))?;
        let now = Instant::now();
        for ev in events.iter() {
            if ev.id() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true)?;
                            let _ = stream.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            // SAFETY: the stream stays in `conns` until it is deregistered.
                            unsafe {
                                reactor.register(
                                    stream.as_source(),
                                    EventId(entry.key()),
                                    Interest::BOTH,
                                    mode,
                                )?;
                            }
                            entry.insert(Conn {
                                stream,
                                pending: Vec::new(),
                                last_active: now,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::warn!("reactor echo: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.id().0;
            let Some(conn) = conns.get_mut(key) else { continue };
            conn.last_active = now;
            // Reads until `WouldBlock`, as the mio loop does: the two differ by the adapter.
            if !echo_serve(&mut conn.stream, &mut conn.pending, &mut buf, false) {
                let conn = conns.remove(key);
                let _ = reactor.deregister(conn.stream.as_source());
            }
        }
        if now >= next_sweep {
            next_sweep = now + SWEEP;
            conns.retain(|_, c| {
                let live = now.duration_since(c.last_active) <= deadline;
                if !live {
                    let _ = reactor.deregister(c.stream.as_source());
                }
                live
            });
        }
    }
}
