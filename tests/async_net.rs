//! `net::aio`: TCP and UDP for tasks (bind, accept, connect, read, write, send_to,
//! recv_from), a per-operation timeout that leaves the connection open, a refused connect.
//! Each body runs once per backend through `async_net_tests!`.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use portable_reactor::runtime::{Async, Builder, Runtime};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::recording::Recording;

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    util::init_logging();
    Builder::new().build_with(reactor).expect("runtime")
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server task serves three clients in turn; a read given up on by `timeout` leaves its
/// connection usable: the next read gets the data.
fn tcp_accept_connect_and_timeout<R: Reactor + 'static>(reactor: R) {
    let mut rt = runtime(reactor);
    let local = rt.local();
    let result = rt.block_on(async move {
        let listener = Async::<TcpListener, R>::bind(&local, localhost())?;
        let addr = listener.get_ref().local_addr()?;
        let time = local.time().clone();
        let server = local.spawn(async move {
            let mut served = 0;
            for _ in 0..3 {
                let (stream, _) = listener.accept().await?;
                let mut buf = [0; 4];
                stream.read_exact(&mut buf).await?;
                stream.write_all(&buf).await?;
                stream.shutdown(Shutdown::Write)?;
                served += 1;
            }
            io::Result::Ok(served)
        });
        for i in 0..3u8 {
            let client = Async::<TcpStream, R>::connect(&local, addr).await?;
            if i == 1 {
                // Nothing comes before the client writes: the timed-out read is dropped, the
                // connection stays.
                let mut buf = [0; 4];
                let err = time
                    .timeout(Duration::from_millis(20), client.read(&mut buf))
                    .await
                    .unwrap_err();
                assert_eq!(err.kind(), io::ErrorKind::TimedOut);
            }
            client.write_all(&[i; 4]).await?;
            let mut buf = [0; 4];
            client.read_exact(&mut buf).await?;
            assert_eq!(buf, [i; 4]);
            assert_eq!(client.read(&mut buf).await?, 0, "the server shut its side");
        }
        server.await?
    });
    assert_eq!(result.unwrap().unwrap(), 3);
}

/// A connect to a port nobody listens on fails (with `ConnectionRefused` where the OS says
/// so) instead of hanging.
fn refused_connect_fails<R: Reactor + 'static>(reactor: R) {
    let mut rt = runtime(reactor);
    // Held until the end: bound, not listening.
    let (_reserved, closed) = util::refused_addr();
    let local = rt.local();
    let err = rt
        .block_on(async move { Async::<TcpStream, R>::connect(&local, closed).await.map(drop) })
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::TimedOut
        ),
        "{err:?}"
    );
}

/// Datagrams both ways between two sockets.
fn udp_send_to_recv_from<R: Reactor + 'static>(reactor: R) {
    let mut rt = runtime(reactor);
    let local = rt.local();
    let got = rt.block_on(async move {
        let a = Async::<UdpSocket, R>::bind(&local, localhost())?;
        let b = Async::<UdpSocket, R>::bind(&local, localhost())?;
        let b_addr = b.get_ref().local_addr()?;
        let echo = local.spawn(async move {
            let mut buf = [0; 64];
            let (n, from) = b.recv_from(&mut buf).await?;
            b.send_to(&buf[..n], from).await
        });
        a.send_to(b"datagram", b_addr).await?;
        let mut buf = [0; 64];
        let (n, from) = a.recv_from(&mut buf).await?;
        assert_eq!(from, b_addr);
        echo.await??;
        io::Result::Ok(buf[..n].to_vec())
    });
    assert_eq!(got.unwrap().unwrap(), b"datagram");
}

/// `EMFILE` on an async accept: it warns and backs off (no busy loop), and completes with the
/// pending connections once descriptors are free again. Runs in a child process whose
/// descriptor limit is lowered.
#[cfg(unix)]
fn accept_backs_off_on_emfile<R: Reactor + 'static>(make: impl FnOnce() -> R, test_name: &str) {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    const CHILD_ENV: &str = "PORTABLE_REACTOR_AIO_EMFILE_CHILD";
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
            text.contains("aio-emfile-child-ok"),
            "child did not run the body:\n{text}"
        );
        assert!(
            text.contains("pausing the listener"),
            "no warning logged:\n{text}"
        );
        return;
    }

    let mut rt = runtime(make());
    let local = rt.local();
    let listener = Async::<TcpListener, R>::bind(&local, localhost()).unwrap();
    let addr = listener.get_ref().local_addr().unwrap();
    // The clients connect before descriptors run out (the kernel completes the handshakes).
    let clients: Vec<TcpStream> = (0..CLIENTS).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Register the listener's watch before the descriptors go.
    rt.run_nowait().unwrap();

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
    // Free the descriptors after a while; until then the accept must not spin.
    let starved_ticks = Rc::new(Cell::new(None));
    let (free, at) = (fillers.clone(), starved_ticks.clone());
    rt.set_timeout(STARVED, move |rt| {
        at.set(Some(rt.stats().ticks));
        free.borrow_mut().clear();
    });
    let start_ticks = rt.stats().ticks;
    let accepted = rt
        .block_on(async move {
            let mut streams = Vec::new();
            for _ in 0..CLIENTS {
                streams.push(listener.accept().await?);
            }
            io::Result::Ok(streams.len())
        })
        .unwrap()
        .expect("accept after recovery");
    assert_eq!(accepted, CLIENTS, "all pending connections accepted");
    let ticks = starved_ticks.get().expect("the descriptors were freed") - start_ticks;
    // Back-off 10, 20, 40, 80, 160 ms: about 5 tries in 300 ms. A spinning loop makes thousands.
    assert!(ticks <= 40, "{ticks} loop iterations while starved: spinning");
    drop(clients);
    println!("aio-emfile-child-ok");
}

/// Unix-domain streams for tasks: bind, accept, connect, read_exact, write_all, shutdown and
/// the end of the stream; a missing socket is `NotFound`, an existing file `AddrInUse`.
#[cfg(unix)]
fn unix_stream_echo<R: Reactor + 'static>(reactor: R) {
    use std::os::unix::net::{UnixListener, UnixStream};
    let mut rt = runtime(reactor);
    let local = rt.local();
    let dir = std::env::temp_dir().join(format!(
        "pr-aio-unix-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let result = rt.block_on(async move {
        let listener = Async::<UnixListener, R>::bind(&local, &path)?;
        assert_eq!(
            Async::<UnixListener, R>::bind(&local, &path).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        assert_eq!(
            Async::<UnixStream, R>::connect(&local, dir.join("missing.sock"))
                .unwrap_err()
                .kind(),
            io::ErrorKind::NotFound
        );
        let server = local.spawn(async move {
            let stream = listener.accept().await?;
            let mut buf = [0; 5];
            stream.read_exact(&mut buf).await?;
            stream.write_all(&buf).await?;
            stream.shutdown(Shutdown::Write)?;
            io::Result::Ok(())
        });
        let client = Async::<UnixStream, R>::connect(&local, &path)?;
        client.write_all(b"hello").await?;
        let mut buf = [0; 5];
        client.read_exact(&mut buf).await?;
        let mut rest = [0; 8];
        let end = client.read(&mut rest).await?;
        server.await??;
        let _ = std::fs::remove_dir_all(&dir);
        io::Result::Ok((buf, end))
    });
    let (buf, end) = result.unwrap().unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(end, 0, "the end of the stream after the server's shutdown");
}

macro_rules! async_net_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn tcp_accept_connect_and_timeout() { super::tcp_accept_connect_and_timeout($make) }
            #[test] fn refused_connect_fails() { super::refused_connect_fails($make) }
            #[test] fn udp_send_to_recv_from() { super::udp_send_to_recv_from($make) }
            #[cfg(unix)]
            #[test] fn unix_stream_echo() { super::unix_stream_echo($make) }
            #[cfg(unix)]
            #[test] fn accept_backs_off_on_emfile() {
                super::accept_backs_off_on_emfile(
                    || $make,
                    concat!(stringify!($backend), "::accept_backs_off_on_emfile"),
                )
            }
        }
    )*};
}

async_net_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    polling_level => Recording::level_only(PollingReactor::new().unwrap()),
}
