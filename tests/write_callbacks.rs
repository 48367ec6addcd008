//! Per-write completion callbacks (`write_with`) and the shutdown callback (`shutdown_with`) on
//! TCP connections, for both backends (and under Wine): libuv's `tcp_write_queue_order` (every
//! callback runs exactly once, in order, also when the connection closes with writes queued),
//! deadlines failing the pending callbacks, and "shutdown, then close at once" still
//! delivering every byte and the FIN.
//!
//! `cargo test --test write_callbacks`. Every wait is bounded: watches have deadlines, and
//! every loop runs under a guard that stops it and fails the test after 20 s.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::tcp::{self, ConnOptions, ConnectOptions, ListenOptions, Listener};
use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::{init_logging, run_bounded};

const GUARD: Duration = Duration::from_secs(20);
/// Writes queued by the queue-order tests, and their size: 40 MiB in all, more than loopback
/// socket buffers take from a peer that does not read.
const WRITES: usize = 10_000;
const PIECE: usize = 4096;

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    init_logging();
    Builder::new()
        .io_timeout(Duration::from_secs(10))
        .build_with(reactor)
        .expect("runtime")
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

type ListenerSlot = Rc<RefCell<Option<Listener>>>;

fn close_listener<R: Reactor + 'static>(rt: &mut Runtime<R>, slot: &ListenerSlot) {
    if let Some(listener) = slot.borrow_mut().take() {
        listener.close(rt);
    }
}

/// The outcome of each write callback, by write index.
type Outcomes = Rc<RefCell<Vec<(usize, Result<(), io::ErrorKind>)>>>;

/// Checks `tcp_write_queue_order`'s invariants: every callback ran once, in order; the ones
/// that succeeded are a prefix, the rest were cancelled with `Interrupted`; both kinds occur.
fn check_queue_order(outcomes: &Outcomes) {
    let outcomes = outcomes.borrow();
    assert_eq!(outcomes.len(), WRITES, "every write callback ran once");
    assert!(
        outcomes.iter().enumerate().all(|(i, &(index, _))| i == index),
        "callbacks ran in the order of their writes"
    );
    let ok = outcomes.iter().take_while(|(_, r)| r.is_ok()).count();
    assert!(
        outcomes[ok..]
            .iter()
            .all(|(_, r)| *r == Err(io::ErrorKind::Interrupted)),
        "after the first cancelled write only cancelled ones: {:?}",
        outcomes[ok..]
            .iter()
            .find(|(_, r)| *r != Err(io::ErrorKind::Interrupted))
    );
    assert!(ok > 0, "the kernel took the first writes");
    assert!(ok < WRITES, "the close found writes queued");
}

/// A peer that never reads: a listener nobody accepts from (the kernel completes the
/// handshake, the client's bytes fill the unaccepted socket's buffer, then stall). Keep it
/// alive for the test.
fn silent_server() -> (std::net::TcpListener, SocketAddr) {
    let listener = std::net::TcpListener::bind(localhost()).expect("bind");
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn queue_writes<R: Reactor + 'static>(rt: &mut Runtime<R>, conn: tcp::Conn, outcomes: &Outcomes) {
    let piece = vec![1u8; PIECE];
    for index in 0..WRITES {
        let log = outcomes.clone();
        conn.write_with(rt, &piece, move |_, _, done| {
            log.borrow_mut().push((index, done.map_err(|e| e.kind())));
        })
        .expect("write_with");
    }
    assert!(outcomes.borrow().is_empty(), "no callback runs inside write_with");
}

/// libuv's `tcp_write_queue_order`, closing through the handle: many writes queued against a
/// peer that does not read, then close; every callback runs once, in order.
fn queue_order_handle_close<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let (_peer, addr) = silent_server();
    let outcomes: Outcomes = Rc::default();
    let log = outcomes.clone();
    let opts = ConnectOptions::new().conn(ConnOptions::new().max_queued_bytes(WRITES * PIECE));
    tcp::connect(&mut rt, addr, opts, move |rt, conn| {
        let conn = conn.expect("connect");
        queue_writes(rt, conn, &log);
        assert!(
            conn.queued_bytes(rt).unwrap() > 0,
            "the peer does not read: bytes queue"
        );
        conn.close(rt).expect("close");
        assert!(conn.write(rt, b"late").is_err(), "no writes after close");
    })
    .unwrap();
    run_bounded(&mut rt, GUARD);
    check_queue_order(&outcomes);
    assert_eq!(rt.stats().registered, 0, "everything closed");
}

/// The same, closing from inside the first write callback (the connection's context).
fn queue_order_context_close<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let (_peer, addr) = silent_server();
    let outcomes: Outcomes = Rc::default();
    let (log, closed) = (outcomes.clone(), Rc::new(Cell::new(false)));
    let opts = ConnectOptions::new().conn(ConnOptions::new().max_queued_bytes(WRITES * PIECE));
    tcp::connect(&mut rt, addr, opts, move |rt, conn| {
        let conn = conn.expect("connect");
        let first = log.clone();
        let closed = closed.clone();
        conn.write_with(rt, &[1u8; PIECE], move |rt, conn, done| {
            first.borrow_mut().push((0, done.map_err(|e| e.kind())));
            assert!(!closed.replace(true));
            conn.close(rt);
            let late = conn.write_with(rt, b"late", |_, _, _| panic!("a refused write's callback ran"));
            assert_eq!(late.unwrap_err().kind(), io::ErrorKind::NotConnected);
        })
        .unwrap();
        let piece = vec![1u8; PIECE];
        for index in 1..WRITES {
            let log = log.clone();
            conn.write_with(rt, &piece, move |_, _, done| {
                log.borrow_mut().push((index, done.map_err(|e| e.kind())));
            })
            .expect("write_with");
        }
    })
    .unwrap();
    run_bounded(&mut rt, GUARD);
    check_queue_order(&outcomes);
    assert_eq!(rt.stats().registered, 0, "everything closed");
}

/// Against a peer that reads everything: each callback gets `Ok` in order (the ones written at
/// once too, from the loop), the shutdown callback runs after all of them, and the peer gets
/// every byte then EOF.
fn all_written<R: Reactor + 'static>(mut rt: Runtime<R>) {
    const N: usize = 64;
    const SIZE: usize = 64 * 1024;
    let slot: ListenerSlot = Rc::default();
    let stop = slot.clone();
    let order = Rc::new(RefCell::new(Vec::<String>::new()));
    let log = order.clone();
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        close_listener(rt, &stop);
        let conn = conn.expect("accept");
        let chunk = vec![2u8; SIZE];
        for i in 0..N {
            let log = log.clone();
            conn.write_with(rt, &chunk, move |_, _, done| {
                done.expect("written");
                log.borrow_mut().push(format!("w{i}"));
            })
            .expect("write_with");
        }
        let log = log.clone();
        conn.shutdown_with(rt, move |_, conn, done| {
            done.expect("shut down");
            assert_eq!(conn.queued_bytes(), 0);
            log.borrow_mut().push("fin".into());
        })
        .expect("shutdown_with");
        let again = conn.shutdown_with(rt, |_, _, _| panic!("second shutdown callback"));
        assert_eq!(again.unwrap_err().kind(), io::ErrorKind::AlreadyExists);
        conn.on_data(rt, |_, _, _| {}).unwrap();
    })
    .expect("listen");
    let addr = listener.local_addr();
    *slot.borrow_mut() = Some(listener);
    let reader = std::thread::spawn(move || -> io::Result<usize> {
        let mut client = TcpStream::connect(addr)?;
        client.set_read_timeout(Some(GUARD))?;
        let mut got = Vec::new();
        client.read_to_end(&mut got)?;
        assert!(got.iter().all(|&b| b == 2));
        Ok(got.len())
    });
    run_bounded(&mut rt, GUARD);
    assert_eq!(reader.join().unwrap().expect("reader"), N * SIZE);
    let expected: Vec<String> = (0..N).map(|i| format!("w{i}")).chain(["fin".into()]).collect();
    assert_eq!(*order.borrow(), expected);
}

/// The brief's case: a write larger than the socket buffers, `shutdown_with`, and `close` at
/// once; the close waits: the peer (reading only after the close was called) still receives
/// every byte then EOF, and the shutdown callback ran once, with `Ok`.
fn shutdown_then_close<R: Reactor + 'static>(mut rt: Runtime<R>) {
    const SIZE: usize = 16 * 1024 * 1024;
    let slot: ListenerSlot = Rc::default();
    let stop = slot.clone();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let results = Rc::new(RefCell::new(Vec::<Result<(), io::ErrorKind>>::new()));
    let closed = Rc::new(Cell::new(false));
    let (log, on_close) = (results.clone(), closed.clone());
    let opts = ListenOptions::new().conn(ConnOptions::new().max_queued_bytes(SIZE));
    let listener = tcp::listen(&mut rt, localhost(), opts, move |rt, conn| {
        close_listener(rt, &stop);
        let conn = conn.expect("accept");
        conn.write(rt, &vec![3u8; SIZE]).expect("write");
        assert!(
            conn.queued_bytes(rt).unwrap() > 0,
            "the write could not flush at once"
        );
        let log = log.clone();
        conn.shutdown_with(rt, move |_, _, done| {
            log.borrow_mut().push(done.map_err(|e| e.kind()))
        })
        .expect("shutdown_with");
        let on_close = on_close.clone();
        conn.close_with(rt, move |_| on_close.set(true)).expect("close");
        assert_eq!(
            conn.write(rt, b"late").unwrap_err().kind(),
            io::ErrorKind::NotConnected,
            "closed for writing"
        );
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
        let mut got = Vec::new();
        client.read_to_end(&mut got)?;
        assert!(got.iter().all(|&b| b == 3));
        Ok(got.len())
    });
    run_bounded(&mut rt, GUARD);
    assert_eq!(
        reader.join().unwrap().expect("reader"),
        SIZE,
        "every byte, then EOF"
    );
    assert_eq!(
        *results.borrow(),
        [Ok(())],
        "the shutdown callback ran once, with Ok"
    );
    assert!(closed.get(), "the close callback ran");
    assert_eq!(rt.stats().registered, 0, "closed once the FIN was sent");
}

/// A connection whose peer does not read reaches its deadline with writes queued: the data
/// callback gets `TimedOut`, and so do every pending write callback and the shutdown callback.
fn deadline_fails_callbacks<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let (_peer, addr) = silent_server();
    let outcomes: Outcomes = Rc::default();
    let shutdown = Rc::new(RefCell::new(Vec::new()));
    let (log, fin) = (outcomes.clone(), shutdown.clone());
    let conn_opts = ConnOptions::new()
        .max_queued_bytes(WRITES * PIECE)
        .watch(WatchOptions::new().timeout(Duration::from_millis(200)));
    tcp::connect(
        &mut rt,
        addr,
        ConnectOptions::new().conn(conn_opts),
        move |rt, conn| {
            let conn = conn.expect("connect");
            queue_writes(rt, conn, &log);
            let fin = fin.clone();
            conn.shutdown_with(rt, move |_, _, done| {
                fin.borrow_mut().push(done.map_err(|e| e.kind()))
            })
            .unwrap();
            conn.on_data(rt, |_, _, data| {
                assert_eq!(data.unwrap_err().kind(), io::ErrorKind::TimedOut);
            })
            .unwrap();
        },
    )
    .unwrap();
    run_bounded(&mut rt, GUARD);
    let outcomes = outcomes.borrow();
    assert_eq!(outcomes.len(), WRITES, "every write callback ran once");
    let ok = outcomes.iter().take_while(|(_, r)| r.is_ok()).count();
    assert!(ok > 0 && ok < WRITES, "{ok} written before the deadline");
    assert!(outcomes[ok..]
        .iter()
        .all(|(_, r)| *r == Err(io::ErrorKind::TimedOut)));
    assert_eq!(*shutdown.borrow(), [Err(io::ErrorKind::TimedOut)]);
    assert_eq!(rt.stats().registered, 0);
}

macro_rules! callback_tests {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            fn make() -> impl Reactor + 'static {
                $make
            }

            #[test]
            fn queue_order_handle_close() {
                super::queue_order_handle_close(runtime(make()));
            }

            #[test]
            fn queue_order_context_close() {
                super::queue_order_context_close(runtime(make()));
            }

            #[test]
            fn all_written() {
                super::all_written(runtime(make()));
            }

            #[test]
            fn shutdown_then_close() {
                super::shutdown_then_close(runtime(make()));
            }

            #[test]
            fn deadline_fails_callbacks() {
                super::deadline_fails_callbacks(runtime(make()));
            }
        }
    )*};
}

callback_tests! {
    polling => PollingReactor::new().expect("polling");
    mio => MioReactor::new().expect("mio");
}
