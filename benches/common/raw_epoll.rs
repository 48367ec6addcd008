//! The floor contender: a raw edge-triggered epoll echo loop on libc (Linux only), the least
//! a server can do per round trip. Each connection is registered once (`EPOLLIN | EPOLLOUT |
//! EPOLLRDHUP | EPOLLET`), a read shorter than the buffer is taken as draining the socket
//! (unless the event says the peer shut down: then it reads on, to the end of stream), so a
//! round trip costs one `epoll_wait` share, one read and one write. Like the mio loop it keeps
//! one shared read buffer, a per-connection buffer only for pending writes, one clock read per
//! wake, and the deadline as a sweep every second.

use std::io;
use std::time::{Duration, Instant};

/// Serves echo on `listener` until the process exits (see `servers::child_main`).
#[cfg(target_os = "linux")]
pub fn raw_epoll_echo(
    listener: std::net::TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    const LISTENER: u64 = u64::MAX;
    const SWEEP: Duration = Duration::from_secs(1);
    const EVENTS: usize = 1024;

    listener.set_nonblocking(true)?;
    // SAFETY: epoll_create1 takes no pointers; the result is checked before use.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ep` is a new descriptor that nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let add = |fd: i32, events: u32, key: u64| -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call; both
        // descriptors are open.
        if unsafe { libc::epoll_ctl(ep.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    add(listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER)?;
    let conn_events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
    let mut conns: slab::Slab<RawConn> = slab::Slab::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let mut now = Instant::now();
    let mut next_sweep = now + SWEEP;
    ready();
    loop {
        // The clock is read once per wake: the wait until the sweep is judged from the time
        // of the last wake (at most a few microseconds old; the sweep is once a second).
        let wait = next_sweep.saturating_duration_since(now);
        let timeout_ms = (wait.as_millis() as u64 + 1).min(i32::MAX as u64) as i32;
        // SAFETY: `events` holds EVENTS initialised entries the kernel may overwrite.
        let n = unsafe { libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), EVENTS as i32, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        now = Instant::now();
        for ev in &events[..n as usize] {
            let (key, flags) = (ev.u64, ev.events);
            if key == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            stream.set_nonblocking(true)?;
                            let _ = stream.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            add(stream.as_raw_fd(), conn_events, entry.key() as u64)?;
                            entry.insert(RawConn {
                                stream,
                                pending: Vec::new(),
                                last_active: now,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::warn!("raw epoll echo: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = key as usize;
            let Some(conn) = conns.get_mut(key) else { continue };
            conn.last_active = now;
            let peer_shut = flags & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
            // A read shorter than the buffer drained the socket (edge-triggered), unless the
            // peer shut down: then it reads on, to the end of stream.
            if !super::servers::echo_serve(&mut conn.stream, &mut conn.pending, &mut buf, !peer_shut) {
                // Closing the descriptor removes it from the epoll set.
                conns.remove(key);
            }
        }
        if now >= next_sweep {
            next_sweep = now + SWEEP;
            conns.retain(|_, c| now.duration_since(c.last_active) <= deadline);
        }
    }
}

/// Not Linux: the contender reports itself unsupported.
#[cfg(not(target_os = "linux"))]
pub fn raw_epoll_echo(
    _listener: std::net::TcpListener,
    _deadline: Duration,
    _ready: impl FnOnce(),
) -> io::Result<()> {
    println!("UNSUPPORTED the raw epoll loop runs on Linux only");
    Ok(())
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
struct RawConn {
    stream: std::net::TcpStream,
    pending: Vec<u8>,
    last_active: Instant,
}
