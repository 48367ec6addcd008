//! Cross-thread use: (de)registration during a blocked poll, and wakes.
//!
//! A helper thread and the polling thread meet at a barrier, then the helper acts while the
//! poller enters (or already blocks in) `poll`; each behaviour is repeated a few rounds so that
//! both orders are exercised. Nothing sleeps to synchronise.

use std::sync::mpsc;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::sockets::{drain, send, tcp_pair};
use super::{expect_one, expect_silence, register, ARRIVE, SILENCE};
use crate::{AsSource, EventId, Events, Interest, Mode, Reactor};

const ROUNDS: usize = 5;

/// "Promptly": a return this much before [`ARRIVE`] is taken as caused by the wake or event,
/// not by the timeout.
const PROMPT: Duration = Duration::from_secs(5);

/// A source registered from another thread while `poll` blocks takes effect for that poll.
pub fn register_from_another_thread_during_blocked_poll<R: Reactor>(make: impl Fn() -> R) {
    let pairs: Vec<_> = (0..ROUNDS).map(|_| tcp_pair()).collect();
    let reactor = make();
    for (round, (a, b)) in pairs.iter().enumerate() {
        send(b, b"x");
        super::sockets::await_unread_data(a);
        let barrier = Barrier::new(2);
        let id = EventId(round);
        thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                register(&reactor, a, id, Interest::READABLE, Mode::Oneshot).expect("register");
            });
            barrier.wait();
            let ev = expect_one(&reactor, id, "registered from another thread");
            assert!(ev.is_readable(), "{ev:?}");
        });
        reactor.deregister(a.as_source()).expect("deregister");
    }
}

/// A oneshot registration re-armed from another thread while `poll` blocks fires in that poll.
pub fn reregister_from_another_thread_rearms_blocked_poll<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(0), Interest::READABLE, Mode::Oneshot).expect("register");
    send(&b, b"x");
    expect_one(&reactor, EventId(0), "first event");
    for round in 1..=ROUNDS {
        let barrier = Barrier::new(2);
        thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                reactor
                    .reregister(a.as_source(), EventId(round), Interest::READABLE, Mode::Oneshot)
                    .expect("reregister");
            });
            barrier.wait();
            expect_one(&reactor, EventId(round), "re-armed from another thread");
        });
    }
    reactor.deregister(a.as_source()).expect("deregister");
}

/// A source deregistered from another thread while `poll` blocks is not reported, though data
/// arrives for it after the deregistration.
pub fn deregister_from_another_thread_during_blocked_poll<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let (c, d) = tcp_pair();
    let reactor = make();
    register(&reactor, &c, EventId(99), Interest::READABLE, Mode::Oneshot).expect("register");
    for mode in super::MODES.into_iter().filter(|m| reactor.supports(*m)) {
        register(&reactor, &a, EventId(1), Interest::READABLE, mode).expect("register");
        reactor
            .reregister(c.as_source(), EventId(99), Interest::READABLE, Mode::Oneshot)
            .expect("rereg");
        let barrier = Barrier::new(2);
        thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                reactor.deregister(a.as_source()).expect("deregister");
                send(&b, b"x");
                // Then make the poll return, with the only event it may report.
                send(&d, b"y");
            });
            barrier.wait();
            let ev = expect_one(&reactor, EventId(99), &format!("only the live source ({mode:?})"));
            assert!(ev.is_readable(), "{ev:?}");
        });
        expect_silence(&reactor, &format!("deregistered from another thread ({mode:?})"));
        drain(&a);
        drain(&c);
    }
    reactor.deregister(c.as_source()).expect("deregister");
}

/// A wake from another thread makes a blocked `poll` return promptly, with no event.
pub fn wake_from_another_thread<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let mut events = Events::with_capacity(8);
    for round in 0..ROUNDS {
        let waker = reactor.waker();
        let barrier = Barrier::new(2);
        thread::scope(|s| {
            s.spawn(|| {
                barrier.wait();
                waker.wake().expect("wake");
            });
            barrier.wait();
            let start = Instant::now();
            reactor.poll(&mut events, Some(ARRIVE)).expect("poll");
            let took = start.elapsed();
            assert!(
                took < PROMPT,
                "round {round}: the wake did not interrupt poll ({took:?})"
            );
            assert!(
                events.is_empty(),
                "a wake surfaces no event: {:?}",
                events.as_slice()
            );
        });
    }
}

/// A wake before `poll` makes it return at once; the wake is consumed by that poll.
pub fn wake_before_poll_returns_at_once<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let mut events = Events::with_capacity(8);
    for _ in 0..ROUNDS {
        reactor.waker().wake().expect("wake");
        let start = Instant::now();
        reactor.poll(&mut events, Some(ARRIVE)).expect("poll");
        assert!(
            start.elapsed() < PROMPT,
            "a pending wake did not make poll return at once"
        );
        assert!(
            events.is_empty(),
            "a wake surfaces no event: {:?}",
            events.as_slice()
        );
        let start = Instant::now();
        reactor.poll(&mut events, Some(SILENCE)).expect("poll");
        assert!(
            start.elapsed() >= SILENCE,
            "the wake was not consumed by the first poll"
        );
    }
}

/// A thousand wakes (from two threads, cloned wakers) give one prompt return, and the next
/// poll is not flooded: it waits its full timeout.
pub fn wakes_coalesce<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let waker = reactor.waker();
    let clone = waker.clone();
    thread::scope(|s| {
        s.spawn(move || {
            for _ in 0..500 {
                clone.wake().expect("wake");
            }
        });
        for _ in 0..500 {
            waker.wake().expect("wake");
        }
    });
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    reactor.poll(&mut events, Some(ARRIVE)).expect("poll");
    assert!(start.elapsed() < PROMPT, "1000 wakes did not make poll return");
    assert!(
        events.is_empty(),
        "a wake surfaces no event: {:?}",
        events.as_slice()
    );
    for round in 0..3 {
        let start = Instant::now();
        reactor.poll(&mut events, Some(SILENCE)).expect("poll");
        let took = start.elapsed();
        assert!(
            took >= SILENCE,
            "poll {round} after coalesced wakes returned early ({took:?})"
        );
        assert!(events.is_empty(), "{:?}", events.as_slice());
    }
}

/// Wakes mixed with real events: the events are reported, never an event for the waker, and
/// an idle registered source stays silent.
pub fn waker_surfaces_no_event<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let (idle, _peer) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    register(&reactor, &idle, EventId(2), Interest::READABLE, Mode::Oneshot).expect("register");
    let mut events = Events::with_capacity(64);
    for _ in 0..3 {
        reactor.waker().wake().expect("wake");
        reactor.poll(&mut events, Some(ARRIVE)).expect("poll");
        assert!(
            events.is_empty(),
            "a wake surfaces no event: {:?}",
            events.as_slice()
        );
    }
    reactor.waker().wake().expect("wake");
    send(&b, b"x");
    super::sockets::await_unread_data(&a);
    // The wake and the event may come in one poll or two; only id 1 may be reported.
    let mut got = Vec::new();
    let deadline = Instant::now() + ARRIVE;
    while got.is_empty() && Instant::now() < deadline {
        reactor.poll(&mut events, Some(ARRIVE)).expect("poll");
        got.extend(events.iter().map(|e| e.id()));
    }
    assert_eq!(got, [EventId(1)], "only the readable source is reported");
    expect_silence(&reactor, "idle source, wake consumed");
    reactor.deregister(a.as_source()).expect("deregister");
    reactor.deregister(idle.as_source()).expect("deregister");
}

/// `poll(None)` blocks until an event, written from another thread, then returns it. A watchdog
/// bounds the wait: if the event does not end the poll within [`ARRIVE`], it wakes the reactor
/// and the test fails.
pub fn poll_without_timeout_returns_on_event<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(3), Interest::READABLE, Mode::Oneshot).expect("register");
    let waker = reactor.waker();
    let (done, finished) = mpsc::channel::<()>();
    let barrier = Barrier::new(2);
    let mut events = Events::with_capacity(8);
    let timed_out = thread::scope(|s| {
        let (barrier, b, waker) = (&barrier, &b, &waker);
        let watchdog = s.spawn(move || {
            barrier.wait();
            send(b, b"x");
            match finished.recv_timeout(ARRIVE) {
                Ok(()) => false,
                Err(_) => {
                    let _ = waker.wake();
                    true
                }
            }
        });
        barrier.wait();
        let mut got = Vec::new();
        // `poll(None)` may return early only for a wake; the watchdog's wake ends the loop.
        while got.is_empty() {
            reactor.poll(&mut events, None).expect("poll");
            got.extend(events.iter().copied());
            if watchdog.is_finished() {
                break;
            }
        }
        let _ = done.send(());
        let timed_out = watchdog.join().expect("watchdog");
        if !timed_out {
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].id(), EventId(3));
        }
        timed_out
    });
    assert!(
        !timed_out,
        "poll(None) did not return on an event within {ARRIVE:?}"
    );
    reactor.deregister(a.as_source()).expect("deregister");
}
