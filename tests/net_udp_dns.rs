//! UDP and DNS on the runtime, for both backends (TCP: `tests/net.rs`).
//!
//! `cargo test --test net_udp_dns`. Every wait is bounded: each watch has a deadline, and every
//! test runs its loop under a guard timer that stops it and fails the test after 10 s.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::{dns, udp};
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

/// A name that does not resolve is an error (of any kind), within a bound; `localhost` resolves.
fn dns<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let bad = Rc::new(RefCell::new(None));
    let good = Rc::new(RefCell::new(None));
    let (b, g) = (bad.clone(), good.clone());
    dns::resolve_with(
        &mut rt,
        "nonexistent.invalid",
        80,
        Some(Duration::from_secs(8)),
        move |_, r| *b.borrow_mut() = Some(r),
    )
    .unwrap();
    dns::resolve(&mut rt, "localhost", 7000, move |_, r| *g.borrow_mut() = Some(r)).unwrap();
    run_bounded(&mut rt, GUARD);
    let err = bad.borrow_mut().take().expect("callback ran").unwrap_err();
    assert!(err.to_string().contains("nonexistent.invalid"), "{err}");
    let addrs = good
        .borrow_mut()
        .take()
        .expect("callback ran")
        .expect("localhost");
    assert!(!addrs.is_empty());
    assert!(
        addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 7000),
        "{addrs:?}"
    );
}

/// UDP: send_to and a receive callback both ways, then connect and send.
fn udp_roundtrip<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let opts = udp::UdpOptions::new().watch(WatchOptions::new().timeout(Duration::from_secs(5)));
    let server_seen = Rc::new(RefCell::new(Vec::<Vec<u8>>::new()));
    let log = server_seen.clone();
    let server = udp::bind(&mut rt, localhost(), opts, move |_, socket, msg| {
        let (data, from) = msg.expect("server recv");
        log.borrow_mut().push(data.to_vec());
        socket.send_to(data, from).unwrap();
    })
    .unwrap();
    let server_addr = server.local_addr(&mut rt).unwrap();
    let client_seen = Rc::new(RefCell::new(Vec::<(Vec<u8>, SocketAddr)>::new()));
    let log = client_seen.clone();
    let client = udp::bind(&mut rt, localhost(), opts, move |rt, _, msg| {
        let (data, from) = msg.expect("client recv");
        log.borrow_mut().push((data.to_vec(), from));
        if data == b"two" {
            server.close(rt).unwrap();
            rt.stop();
        }
    })
    .unwrap();
    assert_eq!(client.send_to(&mut rt, b"one", server_addr).unwrap(), 3);
    client.connect(&mut rt, server_addr).unwrap();
    assert_eq!(client.send(&mut rt, b"two").unwrap(), 3);
    run_bounded(&mut rt, GUARD);
    client.close(&mut rt).unwrap();
    assert_eq!(*server_seen.borrow(), [b"one".to_vec(), b"two".to_vec()]);
    let got = client_seen.borrow();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, from)| *from == server_addr));
}

// ---- instantiation --------------------------------------------------------------------------

macro_rules! udp_dns_tests {
    ($($backend:ident => $make:expr;)*) => {$(
        mod $backend {
            use super::*;

            #[test]
            fn dns() {
                super::dns(runtime($make));
            }

            #[test]
            fn udp_roundtrip() {
                super::udp_roundtrip(runtime($make));
            }
        }
    )*};
}

udp_dns_tests! {
    polling => PollingReactor::new().expect("PollingReactor::new");
    mio => MioReactor::new().expect("MioReactor::new");
}
