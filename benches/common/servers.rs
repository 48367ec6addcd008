//! Echo servers, each run as a child process pinned to the server core: the runtime's net
//! module on its default reactor ([`runtime_echo`]) and on the `polling` adapter
//! ([`runtime_polling_echo`]), the runtime's tasks on `Async<TcpStream>` ([`runtime_async_echo`]),
//! the tokio peer, the hand-written edge-triggered mio loop, the raw epoll floor
//! (`raw_epoll.rs`) and Node.js `net`. Shared by the echo and idle-scale benches.
//!
//! Protocol with the parent: the child prints `READY <addr>` (or `UNSUPPORTED <why>`) on
//! stdout, serves until its stdin closes, and applies [`RUNTIME_DEFAULT_DEADLINE`] to every
//! read of every connection.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use portable_reactor::net::tcp::{self, ConnOptions, ListenOptions};
use portable_reactor::runtime::{Async, Builder, Runtime, WatchOptions};
use portable_reactor::{PollingReactor, Reactor};

use super::{listener_1024, node, write_script, Running, RUNTIME_DEFAULT_DEADLINE, SERVER_CORE};

/// The echo server contenders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoServer {
    /// The runtime's net module on the default reactor (`runtime_echo`: mio on Linux).
    Runtime,
    /// The runtime's net module on the `polling` adapter (`runtime_polling_echo`).
    RuntimePolling,
    /// tokio current_thread, one task per connection, `timeout(deadline, readable())`.
    Tokio,
    /// Hand-written edge-triggered mio loop with a per-connection deadline swept every second.
    Mio,
    /// Node.js `net` with `socket.setTimeout(deadline)`.
    Node,
    /// The floor: a raw edge-triggered epoll loop on libc (Linux only; `raw_epoll.rs`).
    RawEpoll,
    /// The runtime's tasks on the default reactor: one task per connection over
    /// `Async<TcpStream>` (`runtime_async_echo`; not in [`EchoServer::ALL`], which the idle bench
    /// walks: the echo bench takes [`EchoServer::ECHO`]).
    RuntimeAsync,
    /// [`EchoServer::Runtime`] with [`PENDING_TIMERS`] timers pending beside its connections
    /// (not in [`EchoServer::ALL`]: the idle bench compares it with the plain runtime server).
    RuntimeWithTimers,
}

/// How many timers [`EchoServer::RuntimeWithTimers`] keeps pending.
pub const PENDING_TIMERS: usize = 1_000_000;

impl EchoServer {
    /// Every contender, the runtime first.
    pub const ALL: [EchoServer; 6] = [
        EchoServer::Runtime,
        EchoServer::RuntimePolling,
        EchoServer::Tokio,
        EchoServer::Mio,
        EchoServer::RawEpoll,
        EchoServer::Node,
    ];

    /// The echo bench's contenders: [`EchoServer::ALL`] and the async server.
    pub const ECHO: [EchoServer; 7] = [
        EchoServer::Runtime,
        EchoServer::RuntimePolling,
        EchoServer::RuntimeAsync,
        EchoServer::Tokio,
        EchoServer::Mio,
        EchoServer::RawEpoll,
        EchoServer::Node,
    ];

    /// Whether this is one of the runtime's callback contenders (the ones judged against
    /// tokio, the mio loop and Node.js).
    pub fn is_runtime(self) -> bool {
        matches!(self, EchoServer::Runtime | EchoServer::RuntimePolling)
    }

    /// The contender's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            EchoServer::Runtime => "runtime net (default: mio)",
            EchoServer::RuntimePolling => "runtime net (polling)",
            EchoServer::RuntimeAsync => "runtime async (tasks on Async<TcpStream>)",
            EchoServer::Tokio => "tokio current_thread",
            EchoServer::Mio => "hand-written mio (edge)",
            EchoServer::Node => "Node.js net (libuv)",
            EchoServer::RawEpoll => "raw epoll (libc, edge)",
            EchoServer::RuntimeWithTimers => "runtime net (default: mio), 1,000,000 timers pending",
        }
    }

    fn child_arg(self) -> &'static str {
        match self {
            EchoServer::Runtime => "runtime",
            EchoServer::RuntimePolling => "runtime-polling",
            EchoServer::RuntimeAsync => "runtime-async",
            EchoServer::Tokio => "tokio",
            EchoServer::Mio => "mio",
            EchoServer::Node => "node",
            EchoServer::RawEpoll => "raw-epoll",
            EchoServer::RuntimeWithTimers => "runtime-timers",
        }
    }

    /// Starts the server in a child process pinned to the server core. `Ok(Err(why))` when the
    /// contender is not available here (Node.js absent, runtime not wired yet).
    pub fn start(self) -> io::Result<Result<(Running, SocketAddr), String>> {
        let cmd = match self {
            EchoServer::Node => {
                let Some(node) = node() else {
                    return Ok(Err("`node` not found: Node.js contender skipped".into()));
                };
                let script = write_script("echo.js", NODE_ECHO)?;
                let mut cmd = std::process::Command::new(node);
                cmd.arg(script)
                    .arg(RUNTIME_DEFAULT_DEADLINE.as_millis().to_string());
                cmd
            }
            other => super::self_command(&["echo", other.child_arg()]),
        };
        let mut running = Running::spawn(cmd, Some(SERVER_CORE))?;
        match running.expect_line("READY") {
            Ok(addr) => {
                let addr = addr
                    .parse()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{addr}: {e}")))?;
                Ok(Ok((running, addr)))
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => Ok(Err(e.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// The Node.js echo server (argument: the deadline in ms).
pub const NODE_ECHO: &str = r#"'use strict';
const net = require('net');
const deadline = Number(process.argv[2] || 30000);
const server = net.createServer({ noDelay: true }, (s) => {
  s.setNoDelay(true);
  s.setTimeout(deadline, () => s.destroy());
  s.on('data', (d) => s.write(d));
  s.on('error', () => {});
});
server.listen({ host: '127.0.0.1', port: 0, backlog: 1024 }, () => {
  console.log('READY 127.0.0.1:' + server.address().port);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
"#;

/// Child side: `--child echo <kind>`. Returns `Ok(false)` if `args` is not an echo child.
pub fn child_main(args: &[String]) -> io::Result<bool> {
    let [what, kind, ..] = args else { return Ok(false) };
    if what != "echo" {
        return Ok(false);
    }
    super::exit_when_stdin_closes();
    super::raise_nofile(20_000);
    let listener = listener_1024()?;
    let addr = listener.local_addr()?;
    let ready = || {
        println!("READY {addr}");
        let _ = io::stdout().flush();
    };
    let deadline = RUNTIME_DEFAULT_DEADLINE;
    match kind.as_str() {
        "tokio" => tokio_echo(listener, deadline, ready)?,
        "mio" => mio_echo(listener, deadline, ready)?,
        "raw-epoll" => super::raw_epoll::raw_epoll_echo(listener, deadline, ready)?,
        "reactor-mio" => super::reactor_echo::reactor_echo(
            portable_reactor::MioReactor::new()?,
            listener,
            deadline,
            ready,
        )?,
        "reactor-polling" => {
            super::reactor_echo::reactor_echo(PollingReactor::new()?, listener, deadline, ready)?
        }
        "runtime" => runtime_echo(listener, deadline, ready)?,
        "runtime-polling" => runtime_polling_echo(listener, deadline, ready)?,
        "runtime-async" => runtime_async_echo(listener, deadline, ready)?,
        "runtime-timers" => runtime_timers_echo(listener, deadline, ready)?,
        other => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("echo {other}?"),
            ))
        }
    }
    Ok(true)
}

/// The runtime's echo server on the [`DefaultReactor`](portable_reactor::DefaultReactor)
/// (`Runtime::new()`): mio on Linux, one syscall per wait, edge-triggered.
///
/// Serves echo on `listener` (already bound to loopback with backlog 1024) with the runtime's
/// TCP module, `deadline` on every read (the runtime closes the connection when it passes),
/// until the process exits; calls `ready()` once accepting.
pub fn runtime_echo(
    listener: std::net::TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    runtime_echo_on(Runtime::new()?, listener, deadline, ready)
}

/// [`runtime_echo`] with [`PENDING_TIMERS`] timers pending (due in an hour, spread over a
/// second), to show that pending timers do not slow the dispatch of unrelated I/O.
pub fn runtime_timers_echo(
    listener: std::net::TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let mut rt = Runtime::new()?;
    for i in 0..PENDING_TIMERS {
        rt.set_timeout(
            Duration::from_secs(3600) + Duration::from_micros(i as u64),
            |_| {},
        );
    }
    runtime_echo_on(rt, listener, deadline, ready)
}

/// [`runtime_echo`] on the `polling` adapter (`Builder::new().build_with(PollingReactor)`),
/// level-triggered on epoll, so the report shows both adapters under the same net module.
pub fn runtime_polling_echo(
    listener: std::net::TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let rt = Builder::new().build_with(PollingReactor::new()?)?;
    runtime_echo_on(rt, listener, deadline, ready)
}

/// The echo server on the net module, on any reactor. Per read event the module reads into the
/// connection's buffer (allocated once, at accept) and hands the callback a slice of it; the
/// callback writes that slice straight back: `write` sends it at once and copies only what the
/// kernel refuses into the connection's queue, so nothing is allocated or copied per echo.
fn runtime_echo_on<R: Reactor + 'static>(
    mut rt: Runtime<R>,
    listener: std::net::TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let conn = ConnOptions::new()
        .watch(WatchOptions::new().timeout(deadline))
        .nodelay(true);
    let options = ListenOptions::new().conn(conn);
    tcp::listen_on(&mut rt, listener, options, |rt, conn| {
        let conn = match conn {
            Ok(conn) => conn,
            Err(e) => {
                log::warn!("runtime echo: accept: {e}");
                return;
            }
        };
        let set = conn.on_data(rt, |rt, conn, data| {
            // `Ok(&[])` (EOF): the module closes once the queue is flushed; `Err`: it is closed.
            if let Ok(bytes @ [_, ..]) = data {
                // Refused only past the 1 MiB queue bound (a peer that sends without reading).
                if conn.write(rt, bytes).is_err() {
                    conn.close(rt);
                }
            }
        });
        if let Err(e) = set {
            log::warn!("runtime echo: {}: {e}", conn.id());
        }
    })?;
    ready();
    rt.run()
}

/// The size of each async connection's read buffer: the net module's default read buffer.
const ASYNC_BUF: usize = 64 * 1024;

/// The runtime's async echo server (`Runtime::new()`: mio on Linux): the listener as an
/// `Async<TcpListener>` with no deadline, one task per connection doing `read(&mut buf).await`
/// then `write_all(&buf[..n]).await` on an `Async<TcpStream>` (the runtime's default watch
/// options: `deadline` on every wait, where `deadline` is the runtime's own default), each with
/// its own 64 KiB buffer (allocated at accept; the pages a 1 KiB echo never touches stay
/// unfaulted).
pub fn runtime_async_echo(
    listener: std::net::TcpListener,
    deadline: Duration,
    ready: impl FnOnce(),
) -> io::Result<()> {
    let mut rt = Builder::new().io_timeout(deadline).build()?;
    listener.set_nonblocking(true)?;
    let listener = Async::with_options(&mut rt, listener, WatchOptions::new().no_timeout())?;
    let local = rt.local();
    ready();
    rt.block_on(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    log::warn!("runtime async echo: accept: {e}");
                    local.time().sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.get_ref().set_nodelay(true);
            // Detached: the task ends with its connection.
            drop(local.spawn(async move {
                let mut buf = vec![0u8; ASYNC_BUF];
                loop {
                    let n = stream.read(&mut buf).await?;
                    if n == 0 {
                        return io::Result::Ok(());
                    }
                    stream.write_all(&buf[..n]).await?;
                }
            }));
        }
    })
}

thread_local! {
    /// One read buffer for every connection of the tokio server (no per-connection buffer).
    static SHARED_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// tokio's strongest idiom for many mostly-idle connections: one task per connection waiting
/// for readability under a timeout, reading into a thread-shared buffer, and owning a buffer
/// only while a write is pending.
fn tokio_echo(listener: std::net::TcpListener, deadline: Duration, ready: impl FnOnce()) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        ready();
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(conn) => conn,
                Err(e) => {
                    log::warn!("tokio echo: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(tokio_conn(stream, deadline));
        }
    })
}

async fn tokio_conn(mut stream: tokio::net::TcpStream, deadline: Duration) {
    use tokio::io::AsyncWriteExt;
    loop {
        match tokio::time::timeout(deadline, stream.readable()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let mut pending = Vec::new();
        let closed = SHARED_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            loop {
                match stream.try_read(&mut buf) {
                    Ok(0) => return true,
                    Ok(n) => match stream.try_write(&buf[..n]) {
                        Ok(w) if w == n => {}
                        Ok(w) => {
                            pending.extend_from_slice(&buf[w..n]);
                            return false;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            pending.extend_from_slice(&buf[..n]);
                            return false;
                        }
                        Err(_) => return true,
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                    Err(_) => return true,
                }
            }
        });
        if closed {
            return;
        }
        if !pending.is_empty() && stream.write_all(&pending).await.is_err() {
            return;
        }
    }
}

struct MioConn {
    stream: mio::net::TcpStream,
    pending: Vec<u8>,
    last_active: Instant,
}

/// The hand-written edge-triggered mio echo loop: one shared read buffer, a per-connection
/// buffer only for pending writes, one clock read per poll, and deadlines enforced by a sweep
/// every second.
fn mio_echo(listener: std::net::TcpListener, deadline: Duration, ready: impl FnOnce()) -> io::Result<()> {
    use mio::{Events, Interest, Poll, Token};
    const LISTENER: Token = Token(usize::MAX);
    const SWEEP: Duration = Duration::from_secs(1);

    listener.set_nonblocking(true)?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: slab::Slab<MioConn> = slab::Slab::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut events = Events::with_capacity(1024);
    let mut next_sweep = Instant::now() + SWEEP;
    ready();
    loop {
        let timeout = next_sweep.saturating_duration_since(Instant::now());
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let now = Instant::now();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let _ = stream.set_nodelay(true);
                            let entry = conns.vacant_entry();
                            poll.registry().register(
                                &mut stream,
                                Token(entry.key()),
                                Interest::READABLE | Interest::WRITABLE,
                            )?;
                            entry.insert(MioConn {
                                stream,
                                pending: Vec::new(),
                                last_active: now,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            log::warn!("mio echo: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(conn) = conns.get_mut(key) else { continue };
            conn.last_active = now;
            if !echo_serve(&mut conn.stream, &mut conn.pending, &mut buf, false) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
        if now >= next_sweep {
            next_sweep = now + SWEEP;
            conns.retain(|_, c| {
                let live = now.duration_since(c.last_active) <= deadline;
                if !live {
                    let _ = poll.registry().deregister(&mut c.stream);
                }
                live
            });
        }
    }
}

/// One echo step of the hand-written loops (mio, raw epoll): flushes `pending`, then echoes
/// what the socket holds until `WouldBlock`, or, with `short_read_drains`, until a read
/// shorter than `buf` (taken for a drained socket, as an edge-triggered loop may when the
/// readiness reports a peer's shutdown). False when the connection is done.
#[inline]
pub(super) fn echo_serve<S: Read + Write>(
    stream: &mut S,
    pending: &mut Vec<u8>,
    buf: &mut [u8],
    short_read_drains: bool,
) -> bool {
    while !pending.is_empty() {
        match stream.write(pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    loop {
        match stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => {
                let mut off = 0;
                while off < n {
                    match stream.write(&buf[off..n]) {
                        Ok(w) => off += w,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            pending.extend_from_slice(&buf[off..n]);
                            // Stop reading until the peer drains what we owe it; the writable
                            // edge brings us back here.
                            return true;
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return false,
                    }
                }
                if short_read_drains && n < buf.len() {
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
