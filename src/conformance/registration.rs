//! Registration: errors, replacement, ids, deregistration.

use std::io::ErrorKind;

use super::sockets::{drain, send, tcp_pair, udp};
use super::{expect_kind, expect_one, expect_silence, expect_unsupported, register, MODES};
use crate::{AsSource, EventId, Interest, Mode, Reactor};

/// Registering a source twice fails with `AlreadyExists` (whatever the mode or id), and the
/// first registration stays in force.
pub fn register_twice_is_already_exists<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("first register");
    for mode in MODES {
        let result = register(&reactor, &a, EventId(2), Interest::WRITABLE, mode);
        if reactor.supports(mode) {
            expect_kind(
                result,
                ErrorKind::AlreadyExists,
                &format!("second register ({mode:?})"),
            );
        } else {
            // Either refusal is right for an unsupported mode on a registered source.
            match result {
                Err(e) if matches!(e.kind(), ErrorKind::AlreadyExists | ErrorKind::Unsupported) => {}
                other => panic!("second register ({mode:?}): expected an error, got {other:?}"),
            }
        }
    }
    send(&b, b"x");
    let ev = expect_one(&reactor, EventId(1), "the first registration stays in force");
    assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// `reregister` of a source that is not registered fails with `NotFound`, and registers
/// nothing.
pub fn reregister_unregistered_is_not_found<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    expect_kind(
        reactor.reregister(a.as_source(), EventId(1), Interest::BOTH, Mode::Oneshot),
        ErrorKind::NotFound,
        "reregister of a never registered source",
    );
    send(&b, b"x");
    expect_silence(&reactor, "a failed reregister registers nothing");
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    reactor.deregister(a.as_source()).expect("deregister");
    expect_kind(
        reactor.reregister(a.as_source(), EventId(1), Interest::READABLE, Mode::Oneshot),
        ErrorKind::NotFound,
        "reregister after deregister",
    );
    expect_silence(&reactor, "a failed reregister after deregister registers nothing");
}

/// `deregister` of a source that is not registered (never, or no longer) fails with `NotFound`.
pub fn deregister_unregistered_is_not_found<R: Reactor>(make: impl Fn() -> R) {
    let (a, _b) = tcp_pair();
    let reactor = make();
    expect_kind(
        reactor.deregister(a.as_source()),
        ErrorKind::NotFound,
        "deregister, never registered",
    );
    register(&reactor, &a, EventId(3), Interest::READABLE, Mode::Oneshot).expect("register");
    reactor.deregister(a.as_source()).expect("deregister");
    expect_kind(
        reactor.deregister(a.as_source()),
        ErrorKind::NotFound,
        "deregister twice",
    );
}

/// A mode the reactor does not support is refused with `Unsupported` by `register` (nothing is
/// registered) and by `reregister` (the old registration stays as it was). Supported modes
/// register fine.
pub fn unsupported_mode_is_rejected_and_registers_nothing<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    assert!(
        reactor.supports(Mode::Oneshot),
        "Mode::Oneshot is always supported"
    );
    send(&b, b"x");
    for mode in MODES {
        let result = register(&reactor, &a, EventId(10), Interest::READABLE, mode);
        if reactor.supports(mode) {
            result.unwrap_or_else(|e| panic!("register with supported {mode:?}: {e}"));
            expect_one(&reactor, EventId(10), &format!("registered with {mode:?}"));
            reactor.deregister(a.as_source()).expect("deregister");
        } else {
            expect_unsupported(result, &format!("register with {mode:?}"));
            expect_silence(
                &reactor,
                &format!("a refused {mode:?} registration registers nothing"),
            );
            expect_kind(
                reactor.deregister(a.as_source()),
                ErrorKind::NotFound,
                &format!("deregister after a refused {mode:?} registration"),
            );
        }
    }
    // Refused reregister: the oneshot registration stays, under its old id, armed.
    register(&reactor, &a, EventId(11), Interest::READABLE, Mode::Oneshot).expect("register");
    for mode in MODES.into_iter().filter(|m| !reactor.supports(*m)) {
        expect_unsupported(
            reactor.reregister(a.as_source(), EventId(12), Interest::WRITABLE, mode),
            &format!("reregister with {mode:?}"),
        );
    }
    let ev = expect_one(
        &reactor,
        EventId(11),
        "the old registration stays after a refused reregister",
    );
    assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// Register, deregister, register again (same source, new id): no event for the old
/// registration, none at all while the source is idle, and the new id once it is ready.
pub fn register_deregister_register_has_no_spurious_events<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    for mode in MODES.into_iter().filter(|m| reactor.supports(*m)) {
        register(&reactor, &a, EventId(1), Interest::READABLE, mode).expect("register");
        reactor.deregister(a.as_source()).expect("deregister");
        register(&reactor, &a, EventId(2), Interest::READABLE, mode).expect("register again");
        expect_silence(&reactor, &format!("idle source after re-registration ({mode:?})"));
        send(&b, b"x");
        let ev = expect_one(
            &reactor,
            EventId(2),
            &format!("new id after re-registration ({mode:?})"),
        );
        assert!(ev.is_readable(), "{ev:?}");
        reactor.deregister(a.as_source()).expect("deregister");
        assert_eq!(drain(&a), 1);
        expect_silence(&reactor, &format!("after deregister ({mode:?})"));
    }
}

/// A source deregistered while ready, then another (idle) source registered (which may reuse
/// internal slots or keys): the idle source reports nothing, and nothing stale surfaces.
pub fn reused_slot_reports_no_stale_event<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let (c, _d) = tcp_pair();
    let reactor = make();
    send(&b, b"x");
    for round in 0..3 {
        register(
            &reactor,
            &a,
            EventId(100 + round),
            Interest::READABLE,
            Mode::Oneshot,
        )
        .expect("register");
        reactor.deregister(a.as_source()).expect("deregister");
        register(
            &reactor,
            &c,
            EventId(200 + round),
            Interest::READABLE,
            Mode::Oneshot,
        )
        .expect("register");
        expect_silence(&reactor, "an idle source in a reused slot");
        reactor.deregister(c.as_source()).expect("deregister");
    }
}

/// `reregister` replaces both the id and the interest.
pub fn reregister_replaces_id_and_interest<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    // Writable at once, but only readability is asked for: silence.
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_silence(&reactor, "readable interest on an idle, writable stream");
    reactor
        .reregister(a.as_source(), EventId(2), Interest::WRITABLE, Mode::Oneshot)
        .expect("reregister");
    let ev = expect_one(&reactor, EventId(2), "writable under the new id");
    assert!(ev.is_writable() && !ev.is_readable(), "{ev:?}");
    // Back to readable only: data makes it readable under the third id.
    reactor
        .reregister(a.as_source(), EventId(3), Interest::READABLE, Mode::Oneshot)
        .expect("reregister");
    expect_silence(&reactor, "readable interest, nothing to read");
    send(&b, b"x");
    let ev = expect_one(&reactor, EventId(3), "readable under the third id");
    assert!(ev.is_readable() && !ev.is_writable(), "{ev:?}");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// Readiness pending before a poll (not yet reported) is reported under the new id only after
/// `reregister`.
pub fn reregister_with_pending_readiness_reports_new_id_only<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    for mode in MODES.into_iter().filter(|m| reactor.supports(*m)) {
        register(&reactor, &a, EventId(1), Interest::READABLE, mode).expect("register");
        send(&b, b"x");
        super::sockets::await_unread_data(&a);
        reactor
            .reregister(a.as_source(), EventId(2), Interest::READABLE, mode)
            .expect("reregister");
        let ev = expect_one(
            &reactor,
            EventId(2),
            &format!("pending readiness, new id only ({mode:?})"),
        );
        assert!(ev.is_readable(), "{ev:?}");
        assert_eq!(drain(&a), 1);
        reactor.deregister(a.as_source()).expect("deregister");
        expect_silence(&reactor, &format!("nothing stale under the old id ({mode:?})"));
    }
}

/// `reregister` replaces the mode: a level registration turned oneshot goes silent after one
/// event; a oneshot turned level keeps reporting.
pub fn reregister_changes_mode<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    send(&b, b"x");
    if !reactor.supports(Mode::Level) {
        register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
        expect_unsupported(
            reactor.reregister(a.as_source(), EventId(1), Interest::READABLE, Mode::Level),
            "reregister to Level",
        );
        expect_one(&reactor, EventId(1), "the oneshot registration stays");
        reactor.deregister(a.as_source()).expect("deregister");
        super::not_applicable("Mode::Level unsupported (supports(Level) is false; checked: reregistering to it is Unsupported and keeps the oneshot)");
        return;
    }
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Level).expect("register");
    expect_one(&reactor, EventId(1), "level, first");
    expect_one(&reactor, EventId(1), "level, again while ready");
    reactor
        .reregister(a.as_source(), EventId(2), Interest::READABLE, Mode::Oneshot)
        .expect("reregister to Oneshot");
    expect_one(&reactor, EventId(2), "oneshot, first");
    expect_silence(&reactor, "oneshot after its event");
    reactor
        .reregister(a.as_source(), EventId(3), Interest::READABLE, Mode::Level)
        .expect("reregister to Level");
    expect_one(&reactor, EventId(3), "level again, first");
    expect_one(&reactor, EventId(3), "level again, again");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// Ids `0` and `usize::MAX` (and others near the ends) are handed back unchanged.
pub fn ids_zero_and_max_round_trip<R: Reactor>(make: impl Fn() -> R) {
    let ids = [0, usize::MAX, usize::MAX - 1, 1, usize::MAX / 2 + 1];
    let pairs: Vec<_> = ids.iter().map(|_| tcp_pair()).collect();
    let reactor = make();
    for (&id, (a, _)) in ids.iter().zip(&pairs) {
        register(&reactor, a, EventId(id), Interest::READABLE, Mode::Oneshot).expect("register");
    }
    for (&id, (_, b)) in ids.iter().zip(&pairs) {
        send(b, b"x");
        let ev = expect_one(&reactor, EventId(id), &format!("id {id}"));
        assert!(ev.is_readable(), "{ev:?}");
    }
    // The same ids through reregister.
    for (&id, (a, _)) in ids.iter().rev().zip(&pairs) {
        reactor
            .reregister(a.as_source(), EventId(id), Interest::READABLE, Mode::Oneshot)
            .expect("rereg");
        let ev = expect_one(&reactor, EventId(id), &format!("id {id} after reregister"));
        assert!(ev.is_readable(), "{ev:?}");
    }
    for (a, _) in &pairs {
        reactor.deregister(a.as_source()).expect("deregister");
    }
}

/// After `deregister`, no event is reported for the source, though data was pending and more
/// keeps arriving, in every supported mode.
pub fn no_events_after_deregister_with_data_in_flight<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let u = udp();
    let sender = udp();
    let reactor = make();
    for mode in MODES.into_iter().filter(|m| reactor.supports(*m)) {
        register(&reactor, &a, EventId(1), Interest::BOTH, mode).expect("register");
        register(&reactor, &u, EventId(2), Interest::READABLE, mode).expect("register");
        send(&b, b"in flight");
        sender
            .send_to(b"in flight", u.local_addr().expect("addr"))
            .expect("send_to");
        reactor.deregister(a.as_source()).expect("deregister");
        reactor.deregister(u.as_source()).expect("deregister");
        expect_silence(&reactor, &format!("after deregister, data pending ({mode:?})"));
        send(&b, b"more");
        sender
            .send_to(b"more", u.local_addr().expect("addr"))
            .expect("send_to");
        expect_silence(&reactor, &format!("after deregister, more data ({mode:?})"));
        drain(&a);
        super::sockets::drain_udp(&u);
    }
}

/// A `Box<dyn Reactor>` over the backend is a working `Reactor`.
pub fn boxed_dyn_reactor_works<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor: Box<dyn Reactor + '_> = Box::new(make());
    let inner = make();
    assert_eq!(reactor.name(), inner.name());
    assert_eq!(reactor.mechanism(), inner.mechanism());
    assert_eq!(reactor.hints(), inner.hints());
    for mode in MODES {
        assert_eq!(reactor.supports(mode), inner.supports(mode));
    }
    register(&*reactor, &a, EventId(5), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_kind(
        register(&*reactor, &a, EventId(5), Interest::READABLE, Mode::Oneshot),
        ErrorKind::AlreadyExists,
        "boxed: register twice",
    );
    send(&b, b"x");
    expect_one(&*reactor, EventId(5), "boxed: readable");
    reactor.waker().wake().expect("wake");
    let mut events = crate::Events::with_capacity(4);
    reactor.poll(&mut events, Some(super::arrive())).expect("poll");
    assert!(
        events.is_empty(),
        "boxed: a wake surfaces no event: {:?}",
        events.as_slice()
    );
    reactor.deregister(a.as_source()).expect("deregister");
}
