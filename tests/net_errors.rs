//! Bad input to the net modules: sizes that cannot be honoured and errors std leaves without a
//! stable kind come back as documented `io::ErrorKind`s (never a panic, an abort, or
//! `Uncategorized`), on both backends.
//!
//! `cargo test --test net_errors`. Every wait is bounded (a guard of 10 s per loop).

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::tcp::{self, ConnOptions, ConnectOptions, ListenOptions};
use portable_reactor::net::{dns, udp, MAX_BUFFER};
use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::{init_logging, run_bounded};

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

fn udp_options() -> udp::UdpOptions {
    udp::UdpOptions::new().watch(WatchOptions::new().timeout(Duration::from_secs(5)))
}

/// `Udp::send` on a socket that never connected is `NotConnected` (EDESTADDRREQ, which std
/// leaves `Uncategorized`), and the socket stays usable.
fn udp_send_unconnected<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let socket = udp::bind(&mut rt, localhost(), udp_options(), |_, _, _| {}).unwrap();
    let err = socket.send(&mut rt, b"nowhere").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotConnected, "{err}");
    let addr = socket.local_addr(&mut rt).unwrap();
    assert_eq!(socket.send_to(&mut rt, b"self", addr).unwrap(), 4);
    socket.close(&mut rt).unwrap();
}

/// A datagram longer than UDP can carry is `InvalidInput` (EMSGSIZE); a full-size one goes.
fn udp_send_too_long<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let log = got.clone();
    let server = udp::bind(&mut rt, localhost(), udp_options(), move |rt, _, msg| {
        log.borrow_mut()
            .push(msg.map(|(data, _)| data.len()).map_err(|e| e.kind()));
        rt.stop();
    })
    .unwrap();
    let to = server.local_addr(&mut rt).unwrap();
    let client = udp::bind(&mut rt, localhost(), udp_options(), |_, _, _| {}).unwrap();
    let err = client.send_to(&mut rt, &vec![7u8; 70_000], to).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert_eq!(client.send_to(&mut rt, &vec![7u8; 1200], to).unwrap(), 1200);
    run_bounded(&mut rt, GUARD);
    assert_eq!(*got.borrow(), [Ok(1200)]);
    client.close(&mut rt).unwrap();
    server.close(&mut rt).unwrap();
}

/// A receive buffer above `MAX_BUFFER` is refused at bind (it panicked: capacity overflow).
fn udp_recv_buffer_bounds<R: Reactor + 'static>(mut rt: Runtime<R>) {
    for size in [usize::MAX, 1 << 40, MAX_BUFFER + 1] {
        let opts = udp_options().recv_buffer(size);
        let err = udp::bind(&mut rt, localhost(), opts, |_, _, _| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{size}: {err}");
    }
    let opts = udp_options().recv_buffer(MAX_BUFFER);
    let socket = udp::bind(&mut rt, localhost(), opts, |_, _, _| {}).expect("MAX_BUFFER binds");
    socket.close(&mut rt).unwrap();
    assert_eq!(rt.stats().registered, 0);
}

/// A read buffer above `MAX_BUFFER` is refused by `listen` and `connect` (a server with one
/// aborted on a peer's first byte); a server with a `MAX_BUFFER` buffer reads a peer's bytes.
fn tcp_read_buffer_bounds<R: Reactor + 'static>(mut rt: Runtime<R>) {
    for size in [usize::MAX, 1 << 40, MAX_BUFFER + 1] {
        let conn = ConnOptions::new().read_buffer(size);
        let err = tcp::listen(&mut rt, localhost(), ListenOptions::new().conn(conn), |_, _| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "listen {size}: {err}");
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let err = tcp::connect(&mut rt, addr, ConnectOptions::new().conn(conn), |_, _| {
            panic!("the callback of a refused connect never runs")
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "connect {size}: {err}");
    }
    assert_eq!(rt.stats().registered, 0, "nothing was registered");

    let got = Rc::new(RefCell::new(Vec::new()));
    let log = got.clone();
    let conn = ConnOptions::new().read_buffer(MAX_BUFFER);
    let listener = tcp::listen(
        &mut rt,
        localhost(),
        ListenOptions::new().conn(conn),
        move |rt, conn| {
            let log = log.clone();
            conn.expect("accept")
                .on_data(rt, move |rt, conn, data| {
                    log.borrow_mut().extend_from_slice(data.expect("read"));
                    conn.close(rt);
                    rt.stop();
                })
                .unwrap();
        },
    )
    .unwrap();
    let mut peer = std::net::TcpStream::connect(listener.local_addr()).unwrap();
    io::Write::write_all(&mut peer, b"x").unwrap();
    run_bounded(&mut rt, GUARD);
    listener.close(&mut rt);
    assert_eq!(*got.borrow(), b"x");
}

/// Host names that are not names are `InvalidInput` at once (they were `Uncategorized` from
/// the resolver); a well-formed name that does not resolve is `NotFound` (or `TimedOut` on a
/// resolver that never answers), never an unmatchable kind.
fn dns_bad_names<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let long_label = format!("{}.example", "a".repeat(64));
    let too_long = ["abc"; 80].join(".");
    for bad in [
        "",
        ".",
        "::::",
        "a..b",
        "a b",
        "host:80",
        "bad\0nul",
        &long_label,
        &too_long,
    ] {
        let err = dns::resolve(&mut rt, bad, 80, |_, _| panic!("never called")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    assert_eq!(too_long.len(), 319);
    let result = Rc::new(RefCell::new(None));
    let slot = result.clone();
    dns::resolve_with(
        &mut rt,
        "nonexistent.invalid",
        80,
        Some(Duration::from_secs(8)),
        move |_, r| *slot.borrow_mut() = Some(r),
    )
    .unwrap();
    // Address literals and names are accepted.
    for good in ["::1", "127.0.0.1", "localhost"] {
        dns::resolve(&mut rt, good, 80, |_, r| assert!(r.is_ok(), "{r:?}")).unwrap();
    }
    run_bounded(&mut rt, GUARD);
    let err = result.borrow_mut().take().expect("callback ran").unwrap_err();
    assert!(
        matches!(err.kind(), io::ErrorKind::NotFound | io::ErrorKind::TimedOut),
        "{:?}: {err}",
        err.kind()
    );
}

macro_rules! net_error_tests {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            fn make() -> impl Reactor + 'static {
                $make
            }

            #[test]
            fn udp_send_unconnected() {
                super::udp_send_unconnected(runtime(make()));
            }

            #[test]
            fn udp_send_too_long() {
                super::udp_send_too_long(runtime(make()));
            }

            #[test]
            fn udp_recv_buffer_bounds() {
                super::udp_recv_buffer_bounds(runtime(make()));
            }

            #[test]
            fn tcp_read_buffer_bounds() {
                super::tcp_read_buffer_bounds(runtime(make()));
            }

            #[test]
            fn dns_bad_names() {
                super::dns_bad_names(runtime(make()));
            }
        }
    )*};
}

net_error_tests! {
    polling => PollingReactor::new().expect("PollingReactor::new");
    mio => MioReactor::new().expect("MioReactor::new");
}
