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
    let closed = {
        let l = TcpListener::bind(localhost()).unwrap();
        l.local_addr().unwrap()
    };
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

macro_rules! async_net_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn tcp_accept_connect_and_timeout() { super::tcp_accept_connect_and_timeout($make) }
            #[test] fn refused_connect_fails() { super::refused_connect_fails($make) }
            #[test] fn udp_send_to_recv_from() { super::udp_send_to_recv_from($make) }
        }
    )*};
}

async_net_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    polling_level => Recording::level_only(PollingReactor::new().unwrap()),
}
