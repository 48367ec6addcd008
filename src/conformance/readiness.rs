//! Readiness: what makes a source readable or writable, and how many sources a poll reports.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};

use super::sockets::{connect_nonblocking, drain_udp, loopback, send, tcp_pair, udp};
use super::{expect_no_hints, expect_one, expect_silence, expect_unsupported, poll_some, register, Prng};
use crate::{AsSource, EventId, Events, Interest, Mode, Reactor};

/// A stream becomes readable when its peer writes, and the data is there to read.
pub fn readable_after_peer_write<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(7), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_silence(&reactor, "nothing written yet");
    send(&b, b"hello");
    let ev = expect_one(&reactor, EventId(7), "after the peer wrote");
    assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");
    expect_no_hints(&ev, "readable stream");
    let mut buf = [0u8; 16];
    let n = (&a).read(&mut buf).expect("read after a readable event");
    assert_eq!(&buf[..n], b"hello");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// A non-blocking connect reports writable once connected, with no error hint.
pub fn writable_after_nonblocking_connect<R: Reactor>(make: impl Fn() -> R) {
    let listener = TcpListener::bind(loopback()).expect("bind");
    let stream = connect_nonblocking(listener.local_addr().expect("addr")).expect("connect");
    let reactor = make();
    register(&reactor, &stream, EventId(8), Interest::WRITABLE, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(8), "connected");
    assert!(ev.is_writable() && !ev.is_readable(), "{ev:?}");
    expect_no_hints(&ev, "successful connect");
    assert!(
        stream.take_error().expect("take_error").is_none(),
        "the connect succeeded"
    );
    stream.peer_addr().expect("connected after writable");
    let _accepted = listener.accept().expect("accept");
    reactor.deregister(stream.as_source()).expect("deregister");
}

/// A listener becomes readable when a connection is pending, and `accept` then succeeds.
pub fn listener_readable_on_incoming_connection<R: Reactor>(make: impl Fn() -> R) {
    let listener = TcpListener::bind(loopback()).expect("bind");
    listener.set_nonblocking(true).expect("set_nonblocking");
    let reactor = make();
    register(&reactor, &listener, EventId(9), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_silence(&reactor, "no connection yet");
    let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let ev = expect_one(&reactor, EventId(9), "incoming connection");
    assert!(ev.is_readable(), "{ev:?}");
    expect_no_hints(&ev, "listener with a pending connection");
    listener.accept().expect("accept after a readable event");
    reactor.deregister(listener.as_source()).expect("deregister");
}

fn udp_readable<R: Reactor>(make: impl Fn() -> R, payload: &[u8]) {
    let receiver = udp();
    let sender = udp();
    let reactor = make();
    register(
        &reactor,
        &receiver,
        EventId(10),
        Interest::READABLE,
        Mode::Oneshot,
    )
    .expect("register");
    expect_silence(&reactor, "no datagram yet");
    sender
        .send_to(payload, receiver.local_addr().expect("addr"))
        .expect("send_to");
    let ev = expect_one(&reactor, EventId(10), "datagram");
    assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");
    expect_no_hints(&ev, "UDP socket with a datagram");
    let mut buf = [0u8; 64];
    let (n, from) = receiver
        .recv_from(&mut buf)
        .expect("recv_from after a readable event");
    assert_eq!(&buf[..n], payload);
    assert_eq!(from, sender.local_addr().expect("addr"));
    reactor.deregister(receiver.as_source()).expect("deregister");
}

/// A UDP socket becomes readable when a datagram arrives.
pub fn udp_datagram_is_readable<R: Reactor>(make: impl Fn() -> R) {
    udp_readable(make, b"datagram");
}

/// A zero-length datagram makes a UDP socket readable too.
pub fn udp_empty_datagram_is_readable<R: Reactor>(make: impl Fn() -> R) {
    udp_readable(make, b"");
}

/// Events only carry the directions asked for; both directions come in one event.
pub fn interest_filters_directions<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(1), Interest::WRITABLE, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(1), "writable interest, idle stream");
    assert!(ev.is_writable() && !ev.is_readable(), "{ev:?}");
    send(&b, b"x");
    super::sockets::await_unread_data(&a);
    reactor
        .reregister(a.as_source(), EventId(2), Interest::READABLE, Mode::Oneshot)
        .expect("rereg");
    let ev = expect_one(
        &reactor,
        EventId(2),
        "readable interest, readable and writable stream",
    );
    assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");
    reactor
        .reregister(a.as_source(), EventId(3), Interest::BOTH, Mode::Oneshot)
        .expect("rereg");
    let ev = expect_one(
        &reactor,
        EventId(3),
        "both interests, readable and writable stream",
    );
    assert!(
        ev.is_readable() && ev.is_writable(),
        "one event with both directions: {ev:?}"
    );
    reactor.deregister(a.as_source()).expect("deregister");
}

/// 512 sockets, written in a random order in batches: every poll reports exactly ids of sockets
/// just written, each once, and the socket behind each reported id holds the datagram that was
/// sent to it.
pub fn many_sockets_each_report_their_own_id<R: Reactor>(make: impl Fn() -> R) {
    const COUNT: usize = 512;
    const BATCH: usize = 32;
    let sockets: Vec<UdpSocket> = (0..COUNT).map(|_| udp()).collect();
    let sender = udp();
    let reactor = make();
    // Spread the ids over the whole range, ends included.
    let id_of =
        |i: usize| EventId(i.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) ^ (i & 1).wrapping_neg());
    let index_of: HashMap<EventId, usize> = (0..COUNT).map(|i| (id_of(i), i)).collect();
    assert_eq!(index_of.len(), COUNT);
    for (i, s) in sockets.iter().enumerate() {
        register(&reactor, s, id_of(i), Interest::READABLE, Mode::Oneshot).expect("register");
    }
    let mut order: Vec<usize> = (0..COUNT).collect();
    Prng::new(0x005E_ED0F_5EED).shuffle(&mut order);
    let mut events = Events::with_capacity(COUNT);
    for batch in order.chunks(BATCH) {
        let mut expected: HashSet<usize> = HashSet::new();
        for &i in batch {
            sender
                .send_to(&i.to_le_bytes(), sockets[i].local_addr().expect("addr"))
                .expect("send_to");
            expected.insert(i);
        }
        while !expected.is_empty() {
            for ev in poll_some(
                &reactor,
                &mut events,
                &format!("{} sockets of a batch", expected.len()),
            ) {
                let i = *index_of
                    .get(&ev.id())
                    .unwrap_or_else(|| panic!("unknown id {ev:?}"));
                assert!(
                    expected.remove(&i),
                    "socket {i} was not written or was reported twice: {ev:?}"
                );
                assert!(ev.is_readable(), "{ev:?}");
                let mut buf = [0u8; 16];
                let (n, _) = sockets[i]
                    .recv_from(&mut buf)
                    .expect("recv_from the reported socket");
                assert_eq!(&buf[..n], &i.to_le_bytes(), "the id of socket {i} was reported");
            }
        }
    }
    expect_silence(&reactor, "every oneshot registration fired once");
    for s in &sockets {
        reactor.deregister(s.as_source()).expect("deregister");
    }
}

/// More sources ready than the `Events` capacity: later polls report the rest; none is lost,
/// none reported twice (oneshot registrations).
pub fn capacity_overflow_loses_and_duplicates_nothing<R: Reactor>(make: impl Fn() -> R) {
    const COUNT: usize = 23;
    const CAPACITY: usize = 4;
    let sockets: Vec<UdpSocket> = (0..COUNT).map(|_| udp()).collect();
    let sender = udp();
    let reactor = make();
    for (i, s) in sockets.iter().enumerate() {
        register(&reactor, s, EventId(i), Interest::READABLE, Mode::Oneshot).expect("register");
        sender
            .send_to(b"x", s.local_addr().expect("addr"))
            .expect("send_to");
    }
    let mut events = Events::with_capacity(CAPACITY);
    let mut seen = HashSet::new();
    while seen.len() < COUNT {
        let got = poll_some(
            &reactor,
            &mut events,
            &format!("{} of {COUNT} reported", seen.len()),
        );
        for ev in got {
            assert!(ev.id().0 < COUNT, "unknown id {ev:?}");
            assert!(seen.insert(ev.id()), "reported twice: {ev:?}");
        }
    }
    expect_silence(&reactor, "all reported once");
    for s in &sockets {
        reactor.deregister(s.as_source()).expect("deregister");
    }
}

/// Level registrations, more ready than the capacity: polls go round all of them; no source is
/// starved and none appears twice in one poll.
pub fn level_capacity_overflow_starves_no_source<R: Reactor>(make: impl Fn() -> R) {
    const COUNT: usize = 12;
    const CAPACITY: usize = 4;
    let sockets: Vec<UdpSocket> = (0..COUNT).map(|_| udp()).collect();
    let sender = udp();
    let reactor = make();
    if !reactor.supports(Mode::Level) {
        expect_unsupported(
            register(&reactor, &sockets[0], EventId(0), Interest::READABLE, Mode::Level),
            "register with Level",
        );
        super::not_applicable(
            "Mode::Level unsupported (supports(Level) is false; checked: registering it is Unsupported)",
        );
        return;
    }
    for (i, s) in sockets.iter().enumerate() {
        register(&reactor, s, EventId(i), Interest::READABLE, Mode::Level).expect("register");
        sender
            .send_to(b"x", s.local_addr().expect("addr"))
            .expect("send_to");
    }
    let mut events = Events::with_capacity(CAPACITY);
    let mut seen = HashSet::new();
    // Twice the polls strictly needed, to allow for arrival order.
    for round in 0..2 * COUNT / CAPACITY + 2 {
        let got = poll_some(&reactor, &mut events, &format!("level round {round}"));
        let mut in_this_poll = HashSet::new();
        for ev in got {
            assert!(in_this_poll.insert(ev.id()), "twice in one poll: {ev:?}");
            seen.insert(ev.id());
        }
        if seen.len() == COUNT {
            break;
        }
    }
    let mut missing: Vec<usize> = (0..COUNT).filter(|i| !seen.contains(&EventId(*i))).collect();
    missing.sort_unstable();
    assert!(
        missing.is_empty(),
        "level sources starved by the capacity: {missing:?}"
    );
    for s in &sockets {
        reactor.deregister(s.as_source()).expect("deregister");
        assert_eq!(drain_udp(s), 1);
    }
}
