//! The semantics of each [`Mode`].

use super::sockets::{await_unread_data, drain, send, tcp_pair};
use super::{expect_one, expect_silence, expect_unsupported, register};
use crate::{AsSource, EventId, Interest, Mode, Reactor};

/// Oneshot: one event, then silence while more data arrives, until `reregister` re-arms.
pub fn oneshot_is_silent_until_rearmed<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    send(&b, b"one");
    expect_one(&reactor, EventId(1), "oneshot, first data");
    expect_silence(&reactor, "oneshot after its event, data unread");
    send(&b, b"two");
    expect_silence(&reactor, "oneshot after its event, more data");
    assert_eq!(drain(&a), 6);
    send(&b, b"three");
    expect_silence(&reactor, "oneshot after its event, drained and refilled");
    reactor
        .reregister(a.as_source(), EventId(1), Interest::READABLE, Mode::Oneshot)
        .expect("rereg");
    expect_one(&reactor, EventId(1), "oneshot re-armed");
    expect_silence(&reactor, "oneshot after its second event");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// Oneshot: re-arming while data is still buffered reports at once (nothing new arrives).
pub fn oneshot_rearm_with_buffered_data_fires_at_once<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    send(&b, b"buffered");
    expect_one(&reactor, EventId(1), "first event");
    for round in 2..5 {
        reactor
            .reregister(a.as_source(), EventId(round), Interest::READABLE, Mode::Oneshot)
            .expect("rereg");
        let ev = expect_one(&reactor, EventId(round), "re-armed with data buffered");
        assert!(ev.is_readable(), "{ev:?}");
    }
    expect_silence(&reactor, "not re-armed");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// Level: reported at every poll while ready; silent once drained; again on new data.
pub fn level_persists_until_drained<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    if !reactor.supports(Mode::Level) {
        expect_unsupported(
            register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Level),
            "register with Level",
        );
        super::not_applicable(
            "Mode::Level unsupported (supports(Level) is false; checked: registering it is Unsupported)",
        );
        return;
    }
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Level).expect("register");
    expect_silence(&reactor, "level, nothing to read");
    send(&b, b"data");
    for round in 0..4 {
        let ev = expect_one(
            &reactor,
            EventId(1),
            &format!("level, still ready (poll {round})"),
        );
        assert!(ev.is_readable(), "{ev:?}");
    }
    assert_eq!(drain(&a), 4);
    expect_silence(&reactor, "level, drained");
    expect_silence(&reactor, "level, drained, second poll");
    send(&b, b"more");
    expect_one(&reactor, EventId(1), "level, new data");
    expect_one(&reactor, EventId(1), "level, new data still there");
    assert_eq!(drain(&a), 4);
    expect_silence(&reactor, "level, drained again");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// Edge: one event per edge; buffered data alone does not report again; new data does.
pub fn edge_reports_once_per_edge<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    if !reactor.supports(Mode::Edge) {
        expect_unsupported(
            register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Edge),
            "register with Edge",
        );
        super::not_applicable(
            "Mode::Edge unsupported (supports(Edge) is false; checked: registering it is Unsupported)",
        );
        return;
    }
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Edge).expect("register");
    expect_silence(&reactor, "edge, nothing to read");
    send(&b, b"one");
    expect_one(&reactor, EventId(1), "edge, first data");
    expect_silence(&reactor, "edge, data still buffered, no new edge");
    send(&b, b"two");
    expect_one(&reactor, EventId(1), "edge, more data is a new edge");
    expect_silence(&reactor, "edge, no new edge");
    assert_eq!(drain(&a), 6);
    expect_silence(&reactor, "edge, drained");
    send(&b, b"three");
    await_unread_data(&a);
    expect_one(&reactor, EventId(1), "edge, data after draining");
    expect_silence(&reactor, "edge, once");
    reactor.deregister(a.as_source()).expect("deregister");
}
