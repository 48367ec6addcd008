//! Unix-domain stream sockets (`net::unix`) on the runtime, for both backends: the same
//! connection machinery as TCP over `UnixStream`, and the listener's socket file (errors,
//! `EMFILE` and datagrams are in `tests/unix_sockets.rs`).
//!
//! `cargo test --test unix` (Unix only). Every wait is bounded: watches have deadlines, and
//! every loop runs under a guard that stops it and fails the test after 10 s.
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::unix::{self, ConnOptions, ConnectOptions, ListenOptions, Listener};
use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::{init_logging, run_bounded};

const GUARD: Duration = Duration::from_secs(10);

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    init_logging();
    Builder::new()
        .io_timeout(Duration::from_secs(5))
        .build_with(reactor)
        .expect("runtime")
}

/// A fresh directory for one test's sockets, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("pr-unix-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type ListenerSlot = Rc<RefCell<Option<Listener>>>;

fn close_listener<R: Reactor + 'static>(rt: &mut Runtime<R>, slot: &ListenerSlot) {
    if let Some(listener) = slot.borrow_mut().take() {
        listener.close(rt);
    }
}

// ---- test bodies ----------------------------------------------------------------------------

/// A runtime client and a runtime echo server on a path: data both ways, addresses, the
/// client's shutdown as the server's EOF, the server's close as the client's EOF; closing the
/// listener removes the socket file.
fn echo_roundtrip<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    let path = dir.path("echo.sock");
    let slot: ListenerSlot = Rc::default();
    let server_log = Rc::new(RefCell::new(Vec::<String>::new()));
    let (log, stop) = (server_log.clone(), slot.clone());
    let listener = unix::listen(&mut rt, &path, ListenOptions::new(), move |rt, conn| {
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
    assert_eq!(listener.local_addr().as_pathname(), Some(path.as_path()));
    assert!(path.exists(), "the socket file");
    *slot.borrow_mut() = Some(listener);

    let client_got = Rc::new(RefCell::new(Vec::<u8>::new()));
    let client_eof = Rc::new(Cell::new(false));
    let (got, eof, to) = (client_got.clone(), client_eof.clone(), path.clone());
    let opts = ConnectOptions::new().timeout(Duration::from_secs(5));
    unix::connect(&mut rt, &path, opts, move |rt, conn| {
        let conn = conn.expect("connect");
        assert_eq!(conn.peer_addr(rt).unwrap().as_pathname(), Some(to.as_path()));
        assert!(conn.local_addr(rt).unwrap().is_unnamed());
        conn.write(rt, b"hello").unwrap();
        conn.on_data(rt, move |rt, conn, data| match data.expect("client read") {
            [] => eof.set(true),
            bytes => {
                got.borrow_mut().extend_from_slice(bytes);
                if got.borrow().len() == 5 {
                    conn.shutdown().unwrap();
                    let late = conn.write(rt, b"late").unwrap_err();
                    assert_eq!(late.kind(), io::ErrorKind::BrokenPipe);
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
    assert!(!path.exists(), "closing the listener removed its socket file");
}

/// The write bound, the drain callback and a shutdown after it, against a plain reader.
fn write_backpressure<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    const MAX: usize = 256 * 1024;
    const CHUNK: usize = 64 * 1024;
    let path = dir.path("bp.sock");
    let slot: ListenerSlot = Rc::default();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let written = Rc::new(Cell::new(0usize));
    let drained = Rc::new(Cell::new(0u32));
    let (total, drains, stop) = (written.clone(), drained.clone(), slot.clone());
    let opts = ListenOptions::new().conn(ConnOptions::new().max_queued_bytes(MAX));
    let listener = unix::listen(&mut rt, &path, opts, move |rt, conn| {
        let conn = conn.expect("accept");
        close_listener(rt, &stop);
        conn.on_data(rt, |_, _, data| {
            data.expect("server read");
        })
        .unwrap();
        let chunk = vec![7u8; CHUNK];
        let mut refused = None;
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
    *slot.borrow_mut() = Some(listener);
    let reader = std::thread::spawn(move || -> io::Result<usize> {
        let mut client = UnixStream::connect(&path)?;
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

/// Half-open: after the client's EOF the server answers on the open half, then shuts it;
/// paused reading holds data back until resumed.
fn half_open_and_pause<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    let path = dir.path("half.sock");
    let slot: ListenerSlot = Rc::default();
    let stop = slot.clone();
    let options = ListenOptions::new().conn(ConnOptions::new().allow_half_open(true));
    let listener = unix::listen(&mut rt, &path, options, move |rt, conn| {
        let conn = conn.expect("accept");
        let stop = stop.clone();
        let mut got = Vec::new();
        // Start paused: the client's bytes and EOF wait in the kernel until resumed.
        conn.pause_reading(rt).unwrap();
        rt.set_timeout(Duration::from_millis(30), move |rt| {
            assert_eq!(conn.queued_bytes(rt).unwrap(), 0);
            assert!(conn.with(rt, |c| c.is_reading_paused()).unwrap());
            conn.resume_reading(rt).unwrap();
        });
        conn.on_data(rt, move |rt, conn, data| {
            let bytes = data.expect("read");
            if bytes.is_empty() {
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
    *slot.borrow_mut() = Some(listener);
    let mut client = UnixStream::connect(&path).unwrap();
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

/// A connection's idle deadline ends it with `TimedOut`.
fn idle_deadline<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    let path = dir.path("idle.sock");
    let slot: ListenerSlot = Rc::default();
    let result = Rc::new(RefCell::new(Vec::<io::ErrorKind>::new()));
    let (log, stop) = (result.clone(), slot.clone());
    let conn_opts = ConnOptions::new().watch(WatchOptions::new().timeout(Duration::from_millis(100)));
    let listener = unix::listen(
        &mut rt,
        &path,
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
    *slot.borrow_mut() = Some(listener);
    let client = UnixStream::connect(&path).unwrap();
    run_bounded(&mut rt, GUARD);
    assert_eq!(*result.borrow(), [io::ErrorKind::TimedOut]);
    assert_eq!(rt.stats().registered, 0);
    drop(client);
}

/// The abstract namespace (Linux): no file, same connection.
#[cfg(target_os = "linux")]
fn abstract_namespace<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    let name = format!(
        "portable-reactor-test-{}-{:?}",
        std::process::id(),
        dir.0.file_name()
    );
    let got = Rc::new(RefCell::new(Vec::new()));
    let log = got.clone();
    let slot: ListenerSlot = Rc::default();
    let stop = slot.clone();
    let listener = unix::listen_abstract(&mut rt, name.as_bytes(), ListenOptions::new(), move |rt, conn| {
        close_listener(rt, &stop);
        let log = log.clone();
        conn.expect("accept")
            .on_data(rt, move |_, _, data| {
                log.borrow_mut().extend_from_slice(data.unwrap())
            })
            .unwrap();
    })
    .expect("listen_abstract");
    *slot.borrow_mut() = Some(listener);
    unix::connect_abstract(&mut rt, name.as_bytes(), ConnectOptions::new(), |rt, conn| {
        let conn = conn.expect("connect_abstract");
        conn.write(rt, b"abstract").unwrap();
        conn.shutdown(rt).unwrap();
        // Read on, so the server's close is seen as EOF (and ends the connection).
        conn.on_data(rt, |_, _, data| assert_eq!(data.unwrap(), b""))
            .unwrap();
    })
    .unwrap();
    run_bounded(&mut rt, GUARD);
    assert_eq!(*got.borrow(), b"abstract");
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0, "no file");
}

/// Write and shutdown callbacks on a Unix connection (the same code as TCP's): many writes
/// larger than the socket buffer, `shutdown_with`, `close` at once; the peer, reading only
/// after that, still gets every byte then EOF, and every callback ran once, in order, with `Ok`.
fn write_callbacks<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    const N: usize = 256;
    const SIZE: usize = 16 * 1024;
    let path = dir.path("callbacks.sock");
    let slot: ListenerSlot = Rc::default();
    let stop = slot.clone();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let order = Rc::new(RefCell::new(Vec::<String>::new()));
    let log = order.clone();
    let opts = ListenOptions::new().conn(ConnOptions::new().max_queued_bytes(N * SIZE));
    let listener = unix::listen(&mut rt, &path, opts, move |rt, conn| {
        close_listener(rt, &stop);
        let conn = conn.expect("accept");
        let chunk = vec![5u8; SIZE];
        for i in 0..N {
            let log = log.clone();
            conn.write_with(rt, &chunk, move |_, _, done| {
                log.borrow_mut().push(match done {
                    Ok(()) => format!("w{i}"),
                    Err(e) => format!("w{i}: {e}"),
                })
            })
            .expect("write_with");
        }
        assert!(
            conn.queued_bytes(rt).unwrap() > 0,
            "the writes could not flush at once"
        );
        let log = log.clone();
        conn.shutdown_with(rt, move |_, _, done| {
            done.expect("shut down");
            log.borrow_mut().push("fin".into());
        })
        .unwrap();
        conn.close(rt).unwrap();
        go_tx.send(()).unwrap();
    })
    .expect("listen");
    *slot.borrow_mut() = Some(listener);
    let reader = std::thread::spawn(move || -> io::Result<usize> {
        let mut client = UnixStream::connect(&path)?;
        client.set_read_timeout(Some(GUARD))?;
        go_rx
            .recv_timeout(GUARD)
            .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))?;
        let mut got = Vec::new();
        client.read_to_end(&mut got)?;
        Ok(got.len())
    });
    run_bounded(&mut rt, GUARD);
    assert_eq!(
        reader.join().unwrap().expect("reader"),
        N * SIZE,
        "every byte, then EOF"
    );
    let expected: Vec<String> = (0..N).map(|i| format!("w{i}")).chain(["fin".into()]).collect();
    assert_eq!(*order.borrow(), expected);
    assert_eq!(rt.stats().registered, 0);
}

macro_rules! unix_tests {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            fn run(test: &str, body: impl FnOnce(Runtime<Box<dyn Reactor>>, &TempDir)) {
                let dir = TempDir::new(&format!("{}-{test}", stringify!($backend)));
                let reactor: Box<dyn Reactor> = Box::new($make);
                body(runtime(reactor), &dir);
            }

            #[test]
            fn echo_roundtrip() {
                run("echo", super::echo_roundtrip);
            }

            #[test]
            fn write_backpressure() {
                run("bp", super::write_backpressure);
            }

            #[test]
            fn half_open_and_pause() {
                run("half", super::half_open_and_pause);
            }

            #[test]
            fn idle_deadline() {
                run("idle", super::idle_deadline);
            }



            #[test]
            fn write_callbacks() {
                run("callbacks", super::write_callbacks);
            }


            #[cfg(target_os = "linux")]
            #[test]
            fn abstract_namespace() {
                run("abstract", super::abstract_namespace);
            }
        }
    )*};
}

unix_tests! {
    polling => PollingReactor::new().expect("polling");
    mio => MioReactor::new().expect("mio");
}
