//! Unix-domain sockets (`net::unix`) beyond connections, for both backends: the socket file
//! rules and error kinds, the listener's `EMFILE` back-off, and datagram sockets.
//!
//! `cargo test --test unix_sockets` (Unix only). Every wait is bounded: watches have
//! deadlines, and every loop runs under a guard that stops it and fails the test after 10 s.
#![cfg(unix)]

use std::cell::{Cell, RefCell};
use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::unix::{self, ConnectOptions, DatagramOptions, ListenOptions, Listener};
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
        let dir = std::env::temp_dir().join(format!("pr-unixs-{}-{test}", std::process::id()));
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

fn connect_result<R: Reactor + 'static>(rt: &mut Runtime<R>, path: &Path) -> io::Result<()> {
    let result = Rc::new(RefCell::new(None));
    let out = result.clone();
    let opts = ConnectOptions::new().timeout(Duration::from_secs(5));
    unix::connect(rt, path, opts, move |rt, conn| {
        *out.borrow_mut() = Some(conn.map(|conn| {
            let _ = conn.close(rt);
        }));
        rt.stop(); // a listener may still be open
    })?;
    run_bounded(rt, GUARD);
    let result = result.borrow_mut().take().expect("the connect callback ran");
    result
}

/// The documented error kinds (never `Uncategorized`), and the socket file rules: an existing
/// file is `AddrInUse` unless `remove_stale` finds a dead socket; a live socket or a regular
/// file is never removed.
fn errors_and_stale_files<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    let long = dir.path(&"x".repeat(200));
    let kind = |r: io::Result<Listener>| r.map(drop).unwrap_err().kind();
    let ignore = |rt: &mut Runtime<R>, conn: io::Result<unix::Conn>| {
        if let Ok(conn) = conn {
            conn.close(rt).unwrap();
        }
    };
    assert_eq!(
        kind(unix::listen(&mut rt, &long, ListenOptions::new(), ignore)),
        io::ErrorKind::InvalidInput
    );
    let err = unix::connect(&mut rt, &long, ConnectOptions::new(), |_, _| panic!("ran")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let missing_dir = dir.path("no/such/dir.sock");
    assert_eq!(
        kind(unix::listen(&mut rt, &missing_dir, ListenOptions::new(), ignore)),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        connect_result(&mut rt, &missing_dir).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );

    // A stale socket: bound, never listened on (as a crashed server leaves it).
    let stale = dir.path("stale.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
    assert_eq!(
        connect_result(&mut rt, &stale).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );
    assert_eq!(
        kind(unix::listen(&mut rt, &stale, ListenOptions::new(), ignore)),
        io::ErrorKind::AddrInUse
    );
    let listener = unix::listen(&mut rt, &stale, ListenOptions::new().remove_stale(true), ignore)
        .expect("remove_stale replaced the dead socket");
    // A live one is never taken over.
    let again = unix::listen(&mut rt, &stale, ListenOptions::new().remove_stale(true), ignore);
    assert_eq!(kind(again), io::ErrorKind::AddrInUse);
    assert!(
        connect_result(&mut rt, &stale).is_ok(),
        "the first listener still has the path"
    );
    listener.close(&mut rt);
    assert!(!stale.exists());
    // Nor is a regular file.
    let file = dir.path("file.sock");
    std::fs::write(&file, b"data").unwrap();
    let refused = unix::listen(&mut rt, &file, ListenOptions::new().remove_stale(true), ignore);
    assert_eq!(kind(refused), io::ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
    run_bounded(&mut rt, GUARD);
    assert_eq!(rt.stats().registered, 0);
}

/// The listener's `EMFILE` back-off (the same code as TCP's): clients wait in the backlog
/// while descriptors are used up, the listener pauses instead of spinning, and accepts them
/// once descriptors are free. Runs in a child process, whose descriptor limit it lowers.
fn emfile_recovery<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir, test_name: &str) {
    const CHILD_ENV: &str = "PORTABLE_REACTOR_UNIX_EMFILE_CHILD";
    const CLIENTS: usize = 3;
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
    let path = dir.path("emfile.sock");
    let accepted = Rc::new(Cell::new(0usize));
    let slot: ListenerSlot = Rc::default();
    let (count, stop) = (accepted.clone(), slot.clone());
    let listener = unix::listen(&mut rt, &path, ListenOptions::new(), move |rt, conn| {
        conn.expect("accept after recovery").close(rt).unwrap();
        count.set(count.get() + 1);
        if count.get() == CLIENTS {
            close_listener(rt, &stop);
        }
    })
    .expect("listen");
    let clients: Vec<UnixStream> = (0..CLIENTS)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
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
    let starved = Rc::new(Cell::new((0u64, 0u64)));
    let (free, at, handle) = (fillers.clone(), starved.clone(), listener.clone());
    rt.set_timeout(Duration::from_millis(300), move |rt| {
        at.set((rt.stats().ticks, handle.stats().accept_calls));
        free.borrow_mut().clear();
    });
    *slot.borrow_mut() = Some(listener.clone());
    run_bounded(&mut rt, GUARD);
    let stats = listener.stats();
    let (ticks, calls) = starved.get();
    assert_eq!(accepted.get(), CLIENTS, "all pending connections accepted");
    assert!(stats.exhausted >= 1, "accept never hit EMFILE: {stats:?}");
    assert!(calls <= 12, "{calls} accept calls while starved: spinning");
    assert!(ticks <= 40, "{ticks} loop iterations while starved: spinning");
    drop(clients);
    println!("emfile-child-ok");
}

/// Datagram sockets on paths: `send_to` and the receive callback with the sender's address,
/// `connect` + `send`, the error kinds (as `udp`'s: never `Uncategorized`), and the socket file
/// removed on close.
fn datagrams<R: Reactor + 'static>(mut rt: Runtime<R>, dir: &TempDir) {
    let (server_path, client_path) = (dir.path("server.sock"), dir.path("client.sock"));
    let opts = DatagramOptions::new().watch(WatchOptions::new().no_timeout());
    let server = unix::bind_datagram(&mut rt, &server_path, opts, |_, socket, msg| {
        let (data, from) = msg.expect("datagram");
        let reply = [b"echo ".as_slice(), data].concat();
        socket
            .send_to(&reply, from.as_pathname().expect("a bound client"))
            .unwrap();
    })
    .expect("bind server");
    let got = Rc::new(RefCell::new(Vec::<(Vec<u8>, Option<PathBuf>)>::new()));
    let log = got.clone();
    let client = unix::bind_datagram(
        &mut rt,
        &client_path,
        DatagramOptions::new(),
        move |rt, _, msg| {
            let (data, from) = msg.expect("reply");
            log.borrow_mut()
                .push((data.to_vec(), from.as_pathname().map(Path::to_owned)));
            if log.borrow().len() == 2 {
                rt.stop();
            }
        },
    )
    .expect("bind client");
    assert_eq!(
        client.local_addr(&mut rt).unwrap().as_pathname(),
        Some(client_path.as_path())
    );
    let kind = |r: io::Result<usize>| r.unwrap_err().kind();
    assert_eq!(
        kind(client.send(&mut rt, b"nowhere")),
        io::ErrorKind::NotConnected
    );
    assert_eq!(
        kind(client.send_to(&mut rt, b"x", dir.path("missing.sock"))),
        io::ErrorKind::NotFound
    );
    let long = dir.path(&"y".repeat(200));
    assert_eq!(
        kind(client.send_to(&mut rt, b"x", &long)),
        io::ErrorKind::InvalidInput
    );
    let huge = vec![0u8; 4 * 1024 * 1024];
    assert_eq!(
        kind(client.send_to(&mut rt, &huge, &server_path)),
        io::ErrorKind::InvalidInput
    );
    let stale = dir.path("stale.sock");
    drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
    assert_eq!(
        kind(client.send_to(&mut rt, b"x", &stale)),
        io::ErrorKind::ConnectionRefused
    );
    let bind_kind = |rt: &mut Runtime<R>, path: &Path, opts: DatagramOptions| {
        unix::bind_datagram(rt, path, opts, |_, _, _| {})
            .unwrap_err()
            .kind()
    };
    assert_eq!(
        bind_kind(&mut rt, &long, DatagramOptions::new()),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        bind_kind(&mut rt, &dir.path("no/dir.sock"), DatagramOptions::new()),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        bind_kind(&mut rt, &stale, DatagramOptions::new()),
        io::ErrorKind::AddrInUse
    );
    assert_eq!(
        bind_kind(&mut rt, &server_path, DatagramOptions::new().remove_stale(true)),
        io::ErrorKind::AddrInUse,
        "a bound socket is never taken over"
    );
    let revived = unix::bind_datagram(
        &mut rt,
        &stale,
        DatagramOptions::new().remove_stale(true),
        |_, _, _| {},
    )
    .expect("remove_stale replaced the dead socket");
    revived.close(&mut rt).unwrap();

    assert_eq!(client.send_to(&mut rt, b"one", &server_path).unwrap(), 3);
    client.connect(&mut rt, &server_path).unwrap();
    assert_eq!(client.send(&mut rt, b"two").unwrap(), 3);
    run_bounded(&mut rt, GUARD);
    let from = Some(server_path.clone());
    assert_eq!(
        *got.borrow(),
        [(b"echo one".to_vec(), from.clone()), (b"echo two".to_vec(), from)]
    );
    server.close(&mut rt).unwrap();
    client.close(&mut rt).unwrap();
    run_bounded(&mut rt, GUARD);
    assert_eq!(rt.stats().registered, 0);
    assert!(
        !server_path.exists() && !client_path.exists() && !stale.exists(),
        "files removed on close"
    );
}

macro_rules! unix_socket_tests {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            fn run(test: &str, body: impl FnOnce(Runtime<Box<dyn Reactor>>, &TempDir)) {
                let dir = TempDir::new(&format!("{}-{test}", stringify!($backend)));
                let reactor: Box<dyn Reactor> = Box::new($make);
                body(runtime(reactor), &dir);
            }

            #[test]
            fn errors_and_stale_files() {
                run("errors", super::errors_and_stale_files);
            }

            #[test]
            fn emfile_recovery() {
                let name = concat!(stringify!($backend), "::emfile_recovery");
                run("emfile", |rt, dir| super::emfile_recovery(rt, dir, name));
            }

            #[test]
            fn datagrams() {
                run("dgram", super::datagrams);
            }
        }
    )*};
}

unix_socket_tests! {
    polling => PollingReactor::new().expect("polling");
    mio => MioReactor::new().expect("mio");
}
