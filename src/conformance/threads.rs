//! Cross-thread use: (de)registration during a blocked poll, and wakes.
//!
//! The (de)registration behaviours act on a poll that is really blocked: the polling thread
//! tells the acting thread it is about to poll (with a timeout of [`arrive()`]), the acting
//! thread lets the poll block for a few milliseconds ([`blocked_for`]) and only then acts, and
//! the poll must report the outcome within [`patience`] of the action (a watchdog wakes it
//! otherwise), and not before the action. That pause is not synchronisation: a backend that
//! keeps the contract passes whatever the threads' timing; it only makes sure that a backend
//! whose blocked poll does not see (de)registrations from other threads fails every time,
//! rather than only when the other thread happens to lose the race. The wake behaviours meet
//! at a barrier and are repeated a few rounds so that both orders are exercised.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::sockets::{await_unread_data, drain, send, tcp_pair};
use super::{arrive, expect_silence, register, scaled, silence};
use crate::{AsSource, Event, EventId, Events, Interest, Mode, Reactor};

const ROUNDS: usize = 5;

/// "Promptly": a return this much before [`arrive()`] is taken as caused by the wake or event,
/// not by the timeout.
fn prompt() -> Duration {
    arrive() / 2
}

/// How long the acting thread leaves a poll blocked before it acts (20 ms, scaled): far more
/// than a thread needs to get from "about to poll" into the OS wait.
pub(super) fn blocked_for() -> Duration {
    scaled(Duration::from_millis(20))
}

/// How long a blocked poll may take to report what another thread's action caused (1 s,
/// scaled): far more than any backend needs, far less than the poll's own timeout, so that a
/// backend whose blocked poll misses the action fails in a second rather than after
/// [`arrive()`].
fn patience() -> Duration {
    scaled(Duration::from_secs(1))
}

/// Polls in this thread (timeout [`arrive()`]) and runs `act` in another thread once the poll
/// has been blocked for [`blocked_for`]; returns the events of the first poll that reports any.
///
/// Panics unless that poll returns within [`patience`] of the action (a watchdog wakes it
/// then), and after the action.
fn poll_across<R: Reactor>(reactor: &R, act: impl FnOnce() + Send, what: &str) -> Vec<Event> {
    let waker = reactor.waker();
    let fired = AtomicBool::new(false);
    let (polling, about_to_poll) = mpsc::channel::<()>();
    let (done, finished) = mpsc::channel::<()>();
    let mut events = Events::with_capacity(64);
    let (got, returned_at, acted_at) = thread::scope(|s| {
        let fired = &fired;
        let actor = s.spawn(move || {
            if about_to_poll.recv().is_err() {
                return None; // the polling thread failed first
            }
            thread::sleep(blocked_for());
            let acted_at = Instant::now();
            act();
            if finished.recv_timeout(patience()) == Err(mpsc::RecvTimeoutError::Timeout) {
                fired.store(true, Ordering::SeqCst);
                let _ = waker.wake();
            }
            Some(acted_at)
        });
        polling.send(()).expect("the acting thread is gone");
        let got = loop {
            reactor
                .poll(&mut events, Some(arrive()))
                .unwrap_or_else(|e| panic!("{what}: poll failed: {e}"));
            if !events.is_empty() || fired.load(Ordering::SeqCst) {
                break events.iter().copied().collect::<Vec<_>>();
            }
        };
        let returned_at = Instant::now();
        let _ = done.send(());
        let acted_at = actor.join().expect("the acting thread panicked");
        (got, returned_at, acted_at)
    });
    assert!(
        !fired.load(Ordering::SeqCst),
        "{what}: a poll blocked for {:?} did not report the other thread's action within {:?} \
         (got {got:?})",
        blocked_for(),
        patience()
    );
    let acted_at = acted_at.expect("the acting thread acted");
    assert!(
        returned_at > acted_at,
        "{what}: the poll returned before the other thread acted, so it was not blocked: {got:?}"
    );
    got
}

/// Asserts that `got` is exactly one readable event for `id`.
fn expect_only(got: &[Event], id: EventId, what: &str) {
    assert!(
        got.len() == 1 && got[0].id() == id && got[0].is_readable(),
        "{what}: expected exactly one readable event for {id}, got {got:?}"
    );
}

/// A source registered from another thread while `poll` blocks takes effect for that poll.
pub fn register_from_another_thread_during_blocked_poll<R: Reactor>(make: impl Fn() -> R) {
    let pairs: Vec<_> = (0..ROUNDS).map(|_| tcp_pair()).collect();
    let reactor = make();
    for (round, (a, b)) in pairs.iter().enumerate() {
        send(b, b"x");
        await_unread_data(a);
        let id = EventId(round);
        let what = format!("registered from another thread (round {round})");
        let got = poll_across(
            &reactor,
            || register(&reactor, a, id, Interest::READABLE, Mode::Oneshot).expect("register"),
            &what,
        );
        expect_only(&got, id, &what);
        reactor.deregister(a.as_source()).expect("deregister");
    }
}

/// A oneshot registration re-armed from another thread while `poll` blocks fires in that poll.
pub fn reregister_from_another_thread_rearms_blocked_poll<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(0), Interest::READABLE, Mode::Oneshot).expect("register");
    send(&b, b"x");
    super::expect_one(&reactor, EventId(0), "first event");
    for round in 1..=ROUNDS {
        let what = format!("re-armed from another thread (round {round})");
        let got = poll_across(
            &reactor,
            || {
                reactor
                    .reregister(a.as_source(), EventId(round), Interest::READABLE, Mode::Oneshot)
                    .expect("reregister");
            },
            &what,
        );
        expect_only(&got, EventId(round), &what);
    }
    reactor.deregister(a.as_source()).expect("deregister");
}

/// A source deregistered from another thread while `poll` blocks is not reported, though data
/// arrives for it after the deregistration (and before the data that ends the poll).
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
        let what = format!("only the live source ({mode:?})");
        let got = poll_across(
            &reactor,
            || {
                reactor.deregister(a.as_source()).expect("deregister");
                send(&b, b"x");
                // The data is there before the poll may return for another reason.
                await_unread_data(&a);
                // Then make the poll return, with the only event it may report.
                send(&d, b"y");
            },
            &what,
        );
        expect_only(&got, EventId(99), &what);
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
            reactor.poll(&mut events, Some(arrive())).expect("poll");
            let took = start.elapsed();
            assert!(
                took < prompt(),
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
        reactor.poll(&mut events, Some(arrive())).expect("poll");
        assert!(
            start.elapsed() < prompt(),
            "a pending wake did not make poll return at once"
        );
        assert!(
            events.is_empty(),
            "a wake surfaces no event: {:?}",
            events.as_slice()
        );
        let start = Instant::now();
        reactor.poll(&mut events, Some(silence())).expect("poll");
        assert!(
            start.elapsed() >= silence(),
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
    reactor.poll(&mut events, Some(arrive())).expect("poll");
    assert!(start.elapsed() < prompt(), "1000 wakes did not make poll return");
    assert!(
        events.is_empty(),
        "a wake surfaces no event: {:?}",
        events.as_slice()
    );
    for round in 0..3 {
        let start = Instant::now();
        reactor.poll(&mut events, Some(silence())).expect("poll");
        let took = start.elapsed();
        assert!(
            took >= silence(),
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
        reactor.poll(&mut events, Some(arrive())).expect("poll");
        assert!(
            events.is_empty(),
            "a wake surfaces no event: {:?}",
            events.as_slice()
        );
    }
    reactor.waker().wake().expect("wake");
    send(&b, b"x");
    await_unread_data(&a);
    // The wake and the event may come in one poll or two; only id 1 may be reported.
    let mut got = Vec::new();
    let deadline = Instant::now() + arrive();
    while got.is_empty() && Instant::now() < deadline {
        reactor.poll(&mut events, Some(arrive())).expect("poll");
        got.extend(events.iter().map(|e| e.id()));
    }
    assert_eq!(got, [EventId(1)], "only the readable source is reported");
    expect_silence(&reactor, "idle source, wake consumed");
    reactor.deregister(a.as_source()).expect("deregister");
    reactor.deregister(idle.as_source()).expect("deregister");
}

/// `poll(None)` blocks until an event, written from another thread, then returns it. A watchdog
/// bounds the wait: if the event does not end the poll within [`arrive()`], it wakes the reactor
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
            match finished.recv_timeout(arrive()) {
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
        "poll(None) did not return on an event within {:?}",
        arrive()
    );
    reactor.deregister(a.as_source()).expect("deregister");
}
