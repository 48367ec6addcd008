//! Timeouts: zero never blocks, and no timeout ends early.

use std::time::{Duration, Instant};

use super::sockets::{send, tcp_pair, udp};
use super::{arrive, register, scaled};
use crate::{AsSource, EventId, Events, Interest, Mode, Reactor};

/// How long a `poll(Some(Duration::ZERO))` may take before it counts as blocking: generous, for
/// loaded machines, yet far below any real wait (1 s, scaled).
fn non_blocking() -> Duration {
    scaled(Duration::from_secs(1))
}

fn expect_full_wait<R: Reactor>(reactor: &R, events: &mut Events, timeout: Duration, what: &str) {
    let start = Instant::now();
    reactor.poll(events, Some(timeout)).expect("poll");
    let took = start.elapsed();
    assert!(
        events.is_empty(),
        "{what}: unexpected events {:?}",
        events.as_slice()
    );
    assert!(
        took >= timeout,
        "{what}: poll({timeout:?}) returned early, after {took:?}"
    );
}

/// `poll(Some(Duration::ZERO))` returns at once, idle or not, and reports what is ready.
pub fn zero_timeout_never_blocks<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    let mut events = Events::with_capacity(8);
    for _ in 0..10 {
        let start = Instant::now();
        reactor.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        assert!(
            start.elapsed() < non_blocking(),
            "poll(ZERO) blocked for {:?}",
            start.elapsed()
        );
        assert!(events.is_empty(), "{:?}", events.as_slice());
    }
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    send(&b, b"x");
    super::sockets::await_unread_data(&a);
    // The readiness is there; a zero-timeout poll reports it (a few tries allow for the OS to
    // deliver it to the poller), and never blocks meanwhile.
    let deadline = Instant::now() + arrive();
    loop {
        let start = Instant::now();
        let n = reactor.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        assert!(
            start.elapsed() < non_blocking(),
            "poll(ZERO) blocked for {:?}",
            start.elapsed()
        );
        if n > 0 {
            assert_eq!(events.iter().map(|e| e.id()).collect::<Vec<_>>(), [EventId(1)]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "poll(ZERO) never reported a ready source"
        );
    }
    reactor.deregister(a.as_source()).expect("deregister");
}

/// `poll(Some(t))` with nothing registered never returns before `t`, twice in a row.
pub fn timeout_is_never_early<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let mut events = Events::with_capacity(8);
    for timeout in [50, 50, 1, 1, 20].map(Duration::from_millis) {
        expect_full_wait(&reactor, &mut events, timeout, "idle reactor");
    }
}

/// Sub-millisecond timeouts (300 µs, 1 µs, 999 µs) are not rounded down to a non-blocking poll.
pub fn sub_millisecond_timeout_is_never_early<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let mut events = Events::with_capacity(8);
    for timeout in [300, 300, 1, 999, 300, 1500].map(Duration::from_micros) {
        expect_full_wait(&reactor, &mut events, timeout, "sub-millisecond timeout");
    }
}

/// With idle sources registered (streams, a listener, a UDP socket), a timeout is still never
/// early.
pub fn timeout_with_silent_sources_is_never_early<R: Reactor>(make: impl Fn() -> R) {
    let (a, _b) = tcp_pair();
    let listener = std::net::TcpListener::bind(super::sockets::loopback()).expect("bind");
    listener.set_nonblocking(true).expect("set_nonblocking");
    let u = udp();
    let reactor = make();
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    register(&reactor, &listener, EventId(2), Interest::READABLE, Mode::Oneshot).expect("register");
    register(&reactor, &u, EventId(3), Interest::READABLE, Mode::Oneshot).expect("register");
    let mut events = Events::with_capacity(8);
    for timeout in [
        Duration::from_millis(50),
        Duration::from_millis(50),
        Duration::from_micros(300),
    ] {
        expect_full_wait(&reactor, &mut events, timeout, "idle sources");
    }
    reactor.deregister(a.as_source()).expect("deregister");
    reactor.deregister(listener.as_source()).expect("deregister");
    reactor.deregister(u.as_source()).expect("deregister");
}

/// `poll_from(events, Some(t), start)` with `start` in the past never returns before
/// `start + t`, nor later than a `poll(Some(t))` made at the call would (within scheduling
/// slack); a zero timeout never blocks whatever `start` is; and a ready source is reported at
/// once, as `poll` does.
pub fn poll_from_counts_from_start<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let mut events = Events::with_capacity(8);
    for (before, timeout) in [(20, 60), (0, 30), (5, 1)] {
        let (before, timeout) = (Duration::from_millis(before), Duration::from_millis(timeout));
        let start = Instant::now();
        // Time passes between the caller's clock read and its call (not a synchronisation).
        std::thread::sleep(before);
        let called = Instant::now();
        reactor
            .poll_from(&mut events, Some(timeout), start)
            .expect("poll_from");
        let (since_start, since_call) = (start.elapsed(), called.elapsed());
        assert!(events.is_empty(), "unexpected events {:?}", events.as_slice());
        assert!(
            since_start >= timeout,
            "poll_from({timeout:?}) returned {since_start:?} after its start: early"
        );
        assert!(
            since_call < timeout + non_blocking(),
            "poll_from({timeout:?}) took {since_call:?} from its call: later than poll({timeout:?})"
        );
    }
    let long_ago = Instant::now();
    std::thread::sleep(Duration::from_millis(5));
    let called = Instant::now();
    reactor
        .poll_from(&mut events, Some(Duration::ZERO), long_ago)
        .expect("poll_from");
    assert!(
        called.elapsed() < non_blocking(),
        "poll_from(ZERO) blocked for {:?}",
        called.elapsed()
    );
    let (a, b) = tcp_pair();
    register(&reactor, &a, EventId(7), Interest::READABLE, Mode::Oneshot).expect("register");
    send(&b, b"x");
    super::sockets::await_unread_data(&a);
    let called = Instant::now();
    let deadline = called + arrive();
    while events.is_empty() {
        reactor
            .poll_from(&mut events, Some(arrive()), long_ago)
            .expect("poll_from");
        assert!(
            Instant::now() < deadline,
            "poll_from never reported a ready source"
        );
    }
    assert_eq!(events.iter().map(|e| e.id()).collect::<Vec<_>>(), [EventId(7)]);
    reactor.deregister(a.as_source()).expect("deregister");
}
