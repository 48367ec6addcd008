//! The TCP module on the runtime, for both backends (UDP and DNS: `tests/net_udp_dns.rs`).
//!
//! `cargo test --test net`. Every wait is bounded: each watch has a deadline, and every test
//! runs its loop under a guard timer that stops it and fails the test after 10 s.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::tcp::{self, ConnOptions, ConnectOptions, ListenOptions, Listener};
use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::{init_logging, run_bounded, under_wine};

const GUARD: Duration = Duration::from_secs(10);

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    init_logging();
    Builder::new()
        .threads(2)
        .io_timeout(Duration::from_secs(5))
        .build_with(reactor)
        .expect("runtime")
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A listener handle that the connection callback can reach once `listen` returned.
type ListenerSlot = Rc<RefCell<Option<Listener>>>;

fn close_listener<R: Reactor + 'static>(rt: &mut Runtime<R>, slot: &ListenerSlot) {
    if let Some(listener) = slot.borrow_mut().take() {
        listener.close(rt);
    }
}

// ---- test bodies ----------------------------------------------------------------------------

/// A runtime client and a runtime echo server: data both ways, addresses, nodelay, then the
/// client's shutdown reaches the server as EOF, and the server's close reaches the client as EOF.
fn echo_roundtrip<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let slot: ListenerSlot = Rc::default();
    let server_log = Rc::new(RefCell::new(Vec::<String>::new()));
    let (log, stop) = (server_log.clone(), slot.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        let conn = conn.expect("accept");
        close_listener(rt, &stop);
        let log = log.clone();
        conn.on_data(rt, move |rt, conn, data| match data.expect("server read") {
            [] => log.borrow_mut().push("eof".into()),
            bytes => {
                log.borrow_mut().push(String::from_utf8_lossy(bytes).into_owned());
                conn.write(rt, bytes).expect("echo");
            }
        })
        .unwrap();
    })
    .expect("listen");
    let addr = listener.local_addr();
    *slot.borrow_mut() = Some(listener);

    let client_got = Rc::new(RefCell::new(Vec::<u8>::new()));
    let client_eof = Rc::new(Cell::new(false));
    let (got, eof) = (client_got.clone(), client_eof.clone());
    let opts = ConnectOptions::new()
        .timeout(Duration::from_secs(5))
        .conn(ConnOptions::new().nodelay(true));
    tcp::connect(&mut rt, addr, opts, move |rt, conn| {
        let conn = conn.expect("connect");
        assert_eq!(conn.peer_addr(rt).unwrap(), addr);
        assert!(conn.local_addr(rt).unwrap().ip().is_loopback());
        assert!(conn.with(rt, |c| c.stream().nodelay().unwrap()).unwrap());
        conn.set_nodelay(rt, false).unwrap();
        conn.write(rt, b"hello").unwrap();
        conn.on_data(rt, move |rt, conn, data| match data.expect("client read") {
            [] => eof.set(true),
            bytes => {
                got.borrow_mut().extend_from_slice(bytes);
                if got.borrow().len() == 5 {
                    conn.shutdown().unwrap();
                    assert_eq!(
                        conn.write(rt, b"late").unwrap_err().kind(),
                        io::ErrorKind::BrokenPipe
                    );
                }
            }
        })
        .unwrap();
    })
    .expect("connect");
    run_bounded(&mut rt, GUARD);
    assert_eq!(*client_got.borrow(), b"hello");
    assert!(client_eof.get(), "the client saw the server close");
    assert_eq!(*server_log.borrow(), ["hello", "eof"]);
    assert_eq!(rt.stats().registered, 0, "everything closed");
}

/// Data then EOF from a plain peer, and the connection closes itself after EOF.
fn eof<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let slot: ListenerSlot = Rc::default();
    let seen = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let (log, stop) = (seen.clone(), slot.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        let conn = conn.expect("accept");
        let (log, stop) = (log.clone(), stop.clone());
        conn.on_data(rt, move |rt, _, data| {
            let bytes = data.expect("read");
            log.borrow_mut().push(bytes.to_vec());
            if bytes.is_empty() {
                close_listener(rt, &stop);
            }
        })
        .unwrap();
    })
    .expect("listen");
    let mut client = TcpStream::connect(listener.local_addr()).unwrap();
    *slot.borrow_mut() = Some(listener);
    client.write_all(b"hello").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    run_bounded(&mut rt, GUARD);
    let seen = seen.borrow();
    let data: Vec<u8> = seen.iter().flatten().copied().collect();
    assert_eq!(data, b"hello");
    assert_eq!(seen.last().map(Vec::len), Some(0), "EOF last: {seen:?}");
    assert_eq!(seen.iter().filter(|b| b.is_empty()).count(), 1, "one EOF");
    // The server closed its side after EOF.
    client.set_read_timeout(Some(GUARD)).unwrap();
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap(), 0);
}

/// A peer that resets the connection (closes with unread data and `SO_LINGER` 0): the reader
/// gets `ConnectionReset` and the connection is closed.
fn reset<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let slot: ListenerSlot = Rc::default();
    let client = Rc::new(RefCell::new(None::<TcpStream>));
    let result = Rc::new(RefCell::new(Vec::<io::Result<usize>>::new()));
    let (log, stop, peer) = (result.clone(), slot.clone(), client.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        let conn = conn.expect("accept");
        close_listener(rt, &stop);
        let log = log.clone();
        conn.on_data(rt, move |_, _, data| log.borrow_mut().push(data.map(|b| b.len())))
            .unwrap();
        // Reset now that the server side is watched: the peer closes with unread data (a reset
        // on every OS, RFC 2525) and lingering 0 s. Under Wine, lingering 0 s alone reached the
        // server as EOF.
        conn.write(rt, b"unread").unwrap();
        let peer = peer.borrow_mut().take().expect("the peer");
        peer.set_read_timeout(Some(GUARD)).unwrap();
        assert_eq!(peer.peek(&mut [0u8; 1]).unwrap(), 1, "the unread data arrived");
        drop(peer);
    })
    .expect("listen");
    let stream = TcpStream::connect(listener.local_addr()).unwrap();
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    *client.borrow_mut() = Some(stream);
    *slot.borrow_mut() = Some(listener);
    run_bounded(&mut rt, GUARD);
    let result = result.borrow();
    assert_eq!(result.len(), 1, "one call, then closed: {result:?}");
    if under_wine() {
        // Wine's closesocket() sends FIN, never RST (as the conformance suite found): the
        // reader sees EOF. Real Windows, like Linux, reports the reset.
        assert_eq!(*result[0].as_ref().expect("EOF under Wine"), 0);
    } else {
        let err = result[0].as_ref().expect_err("a reset is an error, not EOF");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    }
    assert_eq!(rt.stats().registered, 0);
}

/// Connecting to a port nothing listens on fails with `ConnectionRefused`.
fn refused_connect<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let addr = std::net::TcpListener::bind(localhost())
        .unwrap()
        .local_addr()
        .unwrap();
    let result = Rc::new(RefCell::new(None));
    let out = result.clone();
    let opts = ConnectOptions::new().timeout(Duration::from_secs(8));
    tcp::connect(&mut rt, addr, opts, move |_, conn| {
        *out.borrow_mut() = Some(conn.map(|c| c.id()));
    })
    .unwrap();
    run_bounded(&mut rt, GUARD);
    let err = result.borrow_mut().take().expect("callback ran").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
}

/// A connect that gets no answer (the listener's accept queue is full, so its SYN is dropped)
/// fails with `TimedOut` at the connect's deadline.
fn connect_timeout<R: Reactor + 'static>(mut rt: Runtime<R>) {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&localhost().into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // Fill the accept queue: connects complete until it is full, then hang.
    let mut fillers = Vec::new();
    let mut full = false;
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(250)) {
            Ok(s) => fillers.push(s),
            Err(e) if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock => {
                full = true;
                break;
            }
            Err(e) => panic!("filling the backlog: {e}"),
        }
    }
    assert!(full, "the listener's backlog never filled");
    let result = Rc::new(RefCell::new(None));
    let out = result.clone();
    let started = std::time::Instant::now();
    let opts = ConnectOptions::new().timeout(Duration::from_millis(300));
    tcp::connect(&mut rt, addr, opts, move |_, conn| {
        *out.borrow_mut() = Some(conn.map(|c| c.id()));
    })
    .unwrap();
    run_bounded(&mut rt, GUARD);
    let elapsed = started.elapsed();
    let err = result.borrow_mut().take().expect("callback ran").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    drop((fillers, listener));
}

/// A peer that does not read: writes queue until the bound, then fail with `QuotaExceeded`;
/// once the peer reads, the queue drains and the drain callback runs.
fn write_backpressure<R: Reactor + 'static>(mut rt: Runtime<R>) {
    const MAX: usize = 256 * 1024;
    const CHUNK: usize = 64 * 1024;
    let slot: ListenerSlot = Rc::default();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let written = Rc::new(Cell::new(0usize));
    let drained = Rc::new(Cell::new(0u32));
    let (total, drains, stop) = (written.clone(), drained.clone(), slot.clone());
    let opts = ListenOptions::new().conn(ConnOptions::new().max_queued_bytes(MAX));
    let listener = tcp::listen(&mut rt, localhost(), opts, move |rt, conn| {
        let conn = conn.expect("accept");
        close_listener(rt, &stop);
        conn.on_data(rt, |_, _, data| {
            data.expect("server read");
        })
        .unwrap();
        let chunk = vec![7u8; CHUNK];
        let mut refused = None;
        // The kernel's buffers take a few MiB at most; the bound is reached well before 4096.
        for _ in 0..4096 {
            match conn.write(rt, &chunk) {
                Ok(()) => total.set(total.get() + CHUNK),
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let err = refused.expect("the write bound was never reached");
        assert_eq!(err.kind(), io::ErrorKind::QuotaExceeded, "{err}");
        let queued = conn.queued_bytes(rt).unwrap();
        assert!(queued > MAX - CHUNK && queued <= MAX, "queued {queued}");
        let drains = drains.clone();
        conn.on_drain(rt, move |_, conn| {
            drains.set(drains.get() + 1);
            assert_eq!(conn.queued_bytes(), 0);
            conn.shutdown().unwrap();
        })
        .unwrap();
        go_tx.send(()).unwrap();
    })
    .expect("listen");
    let addr = listener.local_addr();
    *slot.borrow_mut() = Some(listener);
    let reader = std::thread::spawn(move || -> io::Result<usize> {
        let mut client = TcpStream::connect(addr)?;
        client.set_read_timeout(Some(GUARD))?;
        go_rx
            .recv_timeout(GUARD)
            .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))?;
        let mut sink = Vec::new();
        client.read_to_end(&mut sink)?;
        assert!(sink.iter().all(|&b| b == 7));
        Ok(sink.len())
    });
    run_bounded(&mut rt, GUARD);
    let read = reader.join().unwrap().expect("reader");
    assert_eq!(drained.get(), 1, "one drain");
    assert_eq!(read, written.get(), "every accepted byte arrived");
}

/// A connection that sees nothing within its deadline gets `TimedOut` and is closed.
fn idle_deadline<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let slot: ListenerSlot = Rc::default();
    let result = Rc::new(RefCell::new(Vec::<io::ErrorKind>::new()));
    let (log, stop) = (result.clone(), slot.clone());
    let conn_opts = ConnOptions::new().watch(WatchOptions::new().timeout(Duration::from_millis(100)));
    let listener = tcp::listen(
        &mut rt,
        localhost(),
        ListenOptions::new().conn(conn_opts),
        move |rt, conn| {
            let conn = conn.expect("accept");
            close_listener(rt, &stop);
            let log = log.clone();
            conn.on_data(rt, move |_, _, data| {
                log.borrow_mut()
                    .push(data.map(|_| io::ErrorKind::Other).unwrap_or_else(|e| e.kind()))
            })
            .unwrap();
        },
    )
    .expect("listen");
    let client = TcpStream::connect(listener.local_addr()).unwrap();
    *slot.borrow_mut() = Some(listener);
    run_bounded(&mut rt, GUARD);
    assert_eq!(*result.borrow(), [io::ErrorKind::TimedOut]);
    assert_eq!(rt.stats().registered, 0);
    drop(client);
}

/// `EMFILE` on accept: the listener warns, pauses with back-off (no busy loop), and accepts the
/// pending connections once descriptors are free again. Runs in a child process whose
/// descriptor limit is lowered.
#[cfg(unix)]
fn emfile_recovery<R: Reactor + 'static>(make: impl FnOnce() -> R, test_name: &str) {
    const CHILD_ENV: &str = "PORTABLE_REACTOR_NET_EMFILE_CHILD";
    const CLIENTS: usize = 3;
    const STARVED: Duration = Duration::from_millis(300);
    if std::env::var_os(CHILD_ENV).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .env("RUST_LOG", "portable_reactor::net=warn")
            .output()
            .expect("spawn the child test");
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "child failed:\n{text}");
        assert!(
            text.contains("emfile-child-ok"),
            "child did not run the body:\n{text}"
        );
        assert!(
            text.contains("pausing the listener"),
            "no warning logged:\n{text}"
        );
        return;
    }

    let mut rt = runtime(make());
    let accepted = Rc::new(Cell::new(0usize));
    let slot: ListenerSlot = Rc::default();
    let (count, stop) = (accepted.clone(), slot.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        conn.expect("accept after recovery");
        count.set(count.get() + 1);
        if count.get() == CLIENTS {
            close_listener(rt, &stop);
            rt.stop();
        }
    })
    .expect("listen");
    // The clients connect before descriptors run out (the kernel completes the handshakes).
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(listener.local_addr()).unwrap())
        .collect();

    // Lower the limit a little above what is open, then use up the rest.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = limit.rlim_cur.min(256);
    // SAFETY: `limit` is a valid rlimit whose soft limit does not exceed the hard one.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    let fillers = Rc::new(RefCell::new(Vec::new()));
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.borrow_mut().push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("filling descriptors: {e}"),
        }
        assert!(fillers.borrow().len() < 1024, "never reached EMFILE");
    }

    // Free the descriptors after a while; until then the listener must not spin.
    let starved = Rc::new(Cell::new((0u64, 0u64)));
    let (free, at, handle) = (fillers.clone(), starved.clone(), listener.clone());
    rt.set_timeout(STARVED, move |rt| {
        at.set((rt.stats().ticks, handle.stats().accept_calls));
        free.borrow_mut().clear();
    });
    *slot.borrow_mut() = Some(listener.clone());
    run_bounded(&mut rt, GUARD);

    let stats = listener.stats();
    let (ticks, calls) = starved.get();
    eprintln!("emfile: {stats:?}, ticks {ticks} and accept calls {calls} while starved");
    assert_eq!(accepted.get(), CLIENTS, "all pending connections accepted");
    assert!(stats.exhausted >= 1, "accept never hit EMFILE: {stats:?}");
    // Back-off 10, 20, 40, 80, 160 ms: about 5 tries in 300 ms. A spinning loop makes thousands.
    assert!(calls <= 12, "{calls} accept calls while starved: spinning");
    assert!(ticks <= 40, "{ticks} loop iterations while starved: spinning");
    assert!(!listener.stats().paused);
    drop(clients);
    println!("emfile-child-ok");
}

fn half_open<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let slot: ListenerSlot = Rc::default();
    let stop = slot.clone();
    let options = ListenOptions::new().conn(ConnOptions::new().allow_half_open(true));
    let listener = tcp::listen(&mut rt, localhost(), options, move |rt, conn| {
        let conn = conn.expect("accept");
        let stop = stop.clone();
        let mut got = Vec::new();
        conn.on_data(rt, move |rt, conn, data| {
            let bytes = data.expect("read");
            if bytes.is_empty() {
                // The peer is done sending: answer on the half still open, then shut it.
                let reply = [b"got ".as_slice(), &got].concat();
                conn.write(rt, &reply).expect("write after EOF");
                conn.shutdown().expect("shutdown");
                close_listener(rt, &stop);
            } else {
                got.extend_from_slice(bytes);
            }
        })
        .unwrap();
    })
    .expect("listen");
    let mut client = TcpStream::connect(listener.local_addr()).unwrap();
    *slot.borrow_mut() = Some(listener);
    client.write_all(b"ping").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    run_bounded(&mut rt, GUARD);
    client.set_read_timeout(Some(GUARD)).unwrap();
    let mut reply = Vec::new();
    client.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"got ping");
    let s = rt.stats();
    assert_eq!(
        (s.registered, s.paused),
        (0, 0),
        "closed once both directions were shut"
    );
}

fn pause_reading<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let slot: ListenerSlot = Rc::default();
    let got = Rc::new(RefCell::new(Vec::new()));
    let client = Rc::new(RefCell::new(None::<TcpStream>));
    let (stop, log, peer) = (slot.clone(), got.clone(), client.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        let conn = conn.expect("accept");
        let (stop, log, peer) = (stop.clone(), log.clone(), peer.clone());
        conn.on_data(rt, move |rt, tcp_conn, data| {
            let bytes = data.expect("read");
            if bytes.is_empty() {
                close_listener(rt, &stop);
                return;
            }
            log.borrow_mut().extend_from_slice(bytes);
            if log.borrow().as_slice() != b"first" {
                return;
            }
            tcp_conn.pause_reading(rt);
            let handle = tcp_conn.handle();
            let (log, peer) = (log.clone(), peer.clone());
            rt.set_timeout(Duration::from_millis(50), move |rt| {
                assert_eq!(rt.stats().paused, 1, "nothing to wait for: the watch is paused");
                let mut peer = peer.borrow_mut();
                let peer = peer.as_mut().expect("client");
                peer.write_all(b" second").unwrap();
                peer.shutdown(std::net::Shutdown::Write).unwrap();
                let log = log.clone();
                rt.set_timeout(Duration::from_millis(50), move |rt| {
                    assert_eq!(log.borrow().as_slice(), b"first", "nothing read while paused");
                    handle.resume_reading(rt).expect("resume");
                });
            });
        })
        .unwrap();
    })
    .expect("listen");
    let mut stream = TcpStream::connect(listener.local_addr()).unwrap();
    *slot.borrow_mut() = Some(listener);
    stream.write_all(b"first").unwrap();
    *client.borrow_mut() = Some(stream);
    run_bounded(&mut rt, GUARD);
    assert_eq!(
        got.borrow().as_slice(),
        b"first second",
        "what came while paused was delivered"
    );
}

macro_rules! net_tests {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            fn make() -> impl Reactor + 'static {
                $make
            }

            #[test]
            fn echo_roundtrip() {
                super::echo_roundtrip(runtime(make()));
            }

            #[test]
            fn eof() {
                super::eof(runtime(make()));
            }

            #[test]
            fn reset() {
                super::reset(runtime(make()));
            }

            #[test]
            fn refused_connect() {
                super::refused_connect(runtime(make()));
            }

            #[test]
            fn connect_timeout() {
                super::connect_timeout(runtime(make()));
            }

            #[test]
            fn write_backpressure() {
                super::write_backpressure(runtime(make()));
            }

            #[test]
            fn idle_deadline() {
                super::idle_deadline(runtime(make()));
            }

            #[cfg(unix)]
            #[test]
            fn emfile_recovery() {
                super::emfile_recovery(make, concat!(stringify!($backend), "::emfile_recovery"));
            }

            #[test]
            fn half_open() {
                super::half_open(runtime(make()));
            }

            #[test]
            fn pause_reading() {
                super::pause_reading(runtime(make()));
            }
        }
    )*};
}

net_tests! {
    polling => PollingReactor::new().expect("PollingReactor::new");
    mio => MioReactor::new().expect("MioReactor::new");
}
