//! A TCP echo server on the bare [`Reactor`] trait: no runtime, one `poll` loop, any backend.
//!
//! ```text
//! cargo run --example echo_reactor -- [--backend default|polling|mio] [--addr 127.0.0.1:7000]
//! ```
//!
//! It prints `echo_reactor: listening on ADDR (BACKEND: MECHANISM, MODE)` once bound and runs
//! until killed. Registrations use the backend's best mode: `Edge` where supported (read and
//! write until `WouldBlock`), else `Level`, else `Oneshot` re-armed after each event. The same
//! server on the runtime's net modules is `examples/echo.rs`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};

use portable_reactor::{reactor_by_name, AsSource, Event, EventId, Events, Interest, Mode, Reactor};
use slab::Slab;

/// The listener's id; connections use their slab index.
const LISTENER: EventId = EventId(usize::MAX);

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back.
    pending: Vec<u8>,
    /// The interest it is registered with.
    armed: Interest,
}

impl Conn {
    fn interest(&self) -> Interest {
        if self.pending.is_empty() {
            Interest::READABLE
        } else {
            Interest::BOTH
        }
    }
}

fn main() {
    env_logger::init();
    let mut backend = String::from("default");
    let mut addr: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--backend", Some(v)) => backend = v,
            ("--addr", Some(v)) => match v.parse() {
                Ok(a) => addr = a,
                Err(e) => usage(&format!("bad --addr {v:?}: {e}")),
            },
            _ => usage(&format!("unexpected argument {arg:?}")),
        }
    }
    if let Err(e) = run(&backend, addr) {
        eprintln!("echo_reactor: {e}");
        std::process::exit(1);
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "echo_reactor: {problem}\nusage: echo_reactor [--backend default|polling|mio] [--addr HOST:PORT]"
    );
    std::process::exit(2);
}

fn run(backend: &str, addr: SocketAddr) -> io::Result<()> {
    // Sources are declared before the reactor, so the reactor is dropped first.
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let mut conns: Slab<Conn> = Slab::new();
    let reactor = reactor_by_name(backend)?;
    let mode = [Mode::Edge, Mode::Level]
        .into_iter()
        .find(|m| reactor.supports(*m))
        .unwrap_or(Mode::Oneshot);
    // SAFETY: `listener` outlives the reactor (declared before it, so dropped after it).
    unsafe { reactor.register(listener.as_source(), LISTENER, Interest::READABLE, mode)? };
    println!(
        "echo_reactor: listening on {} ({}: {}, {mode:?})",
        listener.local_addr()?,
        reactor.name(),
        reactor.mechanism()
    );

    let mut events = Events::with_capacity(1024);
    loop {
        reactor.poll(&mut events, None)?;
        for event in events.iter() {
            if event.id() == LISTENER {
                accept_all(&*reactor, &listener, &mut conns, mode)?;
                if mode == Mode::Oneshot {
                    reactor.reregister(listener.as_source(), LISTENER, Interest::READABLE, mode)?;
                }
            } else {
                let key = event.id().0;
                let Some(conn) = conns.get_mut(key) else { continue };
                match serve(conn, event) {
                    Ok(true) => {
                        let wanted = conn.interest();
                        if mode == Mode::Oneshot || wanted != conn.armed {
                            reactor.reregister(conn.stream.as_source(), event.id(), wanted, mode)?;
                            conn.armed = wanted;
                        }
                    }
                    Ok(false) | Err(_) => {
                        let conn = conns.remove(key);
                        reactor.deregister(conn.stream.as_source())?;
                        log::debug!("echo_reactor: connection {key} closed");
                    }
                }
            }
        }
    }
}

fn accept_all(
    reactor: &dyn Reactor,
    listener: &TcpListener,
    conns: &mut Slab<Conn>,
    mode: Mode,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(true)?;
                stream.set_nodelay(true)?;
                let entry = conns.vacant_entry();
                let id = EventId(entry.key());
                // SAFETY: the stream lives in `conns` and is deregistered before it is removed;
                // the reactor is dropped before `conns`.
                unsafe { reactor.register(stream.as_source(), id, Interest::READABLE, mode)? };
                entry.insert(Conn {
                    stream,
                    pending: Vec::new(),
                    armed: Interest::READABLE,
                });
                log::debug!("echo_reactor: accepted {peer} as {id}");
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => {
                // EMFILE and friends: drop this round; a level or re-armed registration retries.
                log::warn!("echo_reactor: accept failed: {e}");
                return Ok(());
            }
        }
    }
}

/// Reads and echoes until `WouldBlock`. Returns whether the connection stays open.
fn serve(conn: &mut Conn, event: &Event) -> io::Result<bool> {
    if event.is_writable() && !flush(conn)? {
        return Ok(false);
    }
    if event.is_readable() || event.is_error() || event.is_read_closed() {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match (&conn.stream).read(&mut buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    conn.pending.extend_from_slice(&buf[..n]);
                    if !flush(conn)? {
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(true)
}

/// Writes pending bytes until done or `WouldBlock`. Returns false if the peer is gone.
fn flush(conn: &mut Conn) -> io::Result<bool> {
    while !conn.pending.is_empty() {
        match (&conn.stream).write(&conn.pending) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                conn.pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
