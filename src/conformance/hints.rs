//! Close and error hints, exactly as [`Reactor::hints`] declares them, and the mechanism.
//!
//! A hint the backend declares must be set on the first event of its scenario; a hint whose
//! condition does not hold (an error on a healthy socket, `write_closed` after the peer only
//! shut down its write side, `write_closed` on a UDP socket that got an ICMP error) must never
//! be set, declared or not.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};

use super::sockets::{
    await_unread_data, close_with_reset, connect_nonblocking, refused_addr, send, tcp_pair, udp,
};
use super::{expect_no_hints, expect_one, expect_silence, register};
use crate::{AsSource, EventId, Interest, Mechanism, Mode, Reactor};

/// The mechanism is one this OS has, and the declared modes fit it: oneshot everywhere, no
/// edge registrations on IOCP or poll(2).
pub fn mechanism_matches_target_os<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    let mechanism = reactor.mechanism();
    let expected: &[Mechanism] = if cfg!(any(target_os = "linux", target_os = "android")) {
        &[Mechanism::Epoll, Mechanism::Poll]
    } else if cfg!(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        &[Mechanism::Kqueue, Mechanism::Poll]
    } else if cfg!(windows) {
        &[Mechanism::Iocp, Mechanism::Poll]
    } else if cfg!(any(target_os = "illumos", target_os = "solaris")) {
        &[Mechanism::EventPorts, Mechanism::Epoll, Mechanism::Poll]
    } else {
        &[Mechanism::Poll]
    };
    // A non-native mechanism (io_uring, select, a simulator) is accepted on every OS, under a
    // name of its own.
    let other = matches!(mechanism, Mechanism::Other(name) if !name.is_empty()
        && ![Mechanism::Epoll, Mechanism::Kqueue, Mechanism::Iocp, Mechanism::EventPorts, Mechanism::Poll]
            .iter()
            .any(|m| m.name() == name));
    assert!(
        other || expected.contains(&mechanism),
        "{} reports {mechanism:?}, expected one of {expected:?} on this OS, or Mechanism::Other \
         with a name of its own",
        reactor.name()
    );
    assert!(
        reactor.supports(Mode::Oneshot),
        "Mode::Oneshot is always supported"
    );
    if matches!(mechanism, Mechanism::Iocp | Mechanism::Poll) {
        assert!(
            !reactor.supports(Mode::Edge),
            "{mechanism} has no edge-triggered registrations"
        );
    }
    assert!(!reactor.name().is_empty(), "a backend has a name");
    assert_eq!(
        reactor.mechanism(),
        make().mechanism(),
        "the mechanism is a property of the backend"
    );
}

/// Readable data, a completed connect, a pending connection and a datagram carry no close or
/// error hint.
pub fn healthy_sockets_carry_no_hints<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let listener = TcpListener::bind(super::sockets::loopback()).expect("bind");
    listener.set_nonblocking(true).expect("set_nonblocking");
    let connecting = connect_nonblocking(listener.local_addr().expect("addr")).expect("connect");
    let u = udp();
    let reactor = make();
    register(&reactor, &connecting, EventId(1), Interest::BOTH, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(1), "connected");
    assert!(ev.is_writable(), "{ev:?}");
    expect_no_hints(&ev, "successful connect");
    register(&reactor, &listener, EventId(2), Interest::READABLE, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(2), "pending connection");
    expect_no_hints(&ev, "listener");
    send(&b, b"x");
    await_unread_data(&a);
    register(&reactor, &a, EventId(3), Interest::BOTH, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(3), "readable and writable stream");
    assert!(ev.is_readable() && ev.is_writable(), "{ev:?}");
    expect_no_hints(&ev, "readable and writable stream");
    register(&reactor, &u, EventId(4), Interest::BOTH, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(4), "UDP socket");
    assert!(ev.is_writable(), "{ev:?}");
    expect_no_hints(&ev, "UDP socket");
    for s in [
        connecting.as_source(),
        listener.as_source(),
        a.as_source(),
        u.as_source(),
    ] {
        reactor.deregister(s).expect("deregister");
    }
}

/// The peer shuts down its write side: a readable event (end of stream), with `read_closed` if
/// declared, and never `write_closed` or `error` (the local write side still works).
pub fn peer_shutdown_hints<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    let hints = reactor.hints();
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_silence(&reactor, "healthy stream");
    b.shutdown(Shutdown::Write).expect("peer shutdown(Write)");
    let ev = expect_one(&reactor, EventId(1), "after the peer's shutdown(Write)");
    assert!(ev.is_readable(), "end of stream is readable: {ev:?}");
    if hints.peer_shutdown_read_closed {
        assert!(
            ev.is_read_closed(),
            "declared hint peer_shutdown_read_closed is missing: {ev:?}"
        );
    }
    assert!(
        !ev.is_write_closed() && !ev.is_error(),
        "hints are never false positives: the local write side is open: {ev:?}"
    );
    let mut buf = [0u8; 8];
    assert_eq!((&a).read(&mut buf).expect("read"), 0, "end of stream");
    (&a).write_all(b"still open")
        .expect("the local write side still works");
    reactor.deregister(a.as_source()).expect("deregister");
}

/// The peer resets the connection (it closes with unread data): the first event (the stream is
/// registered for readability) carries every hint declared for a reset.
pub fn peer_reset_hints<R: Reactor>(make: impl Fn() -> R) {
    let (a, b) = tcp_pair();
    let reactor = make();
    let hints = reactor.hints();
    send(&a, b"unread");
    await_unread_data(&b);
    register(&reactor, &a, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_silence(&reactor, "healthy stream");
    close_with_reset(b); // with unread data, and lingering 0 s on Windows
    let ev = expect_one(&reactor, EventId(1), "after the peer's reset");
    assert!(ev.is_readable(), "a reset stream is readable: {ev:?}");
    let mut buf = [0u8; 8];
    match (&a).read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
            ) => {}
        // Wine reports the reset to the poll (`AFD_POLL_ABORT`) and consumes the socket error
        // doing so; the read that follows sees end of stream.
        Ok(0) if cfg!(windows) => {}
        other => panic!("the peer did not reset the connection: read gave {other:?}; event {ev:?}"),
    }
    for (declared, set, name) in [
        (
            hints.peer_reset_read_closed,
            ev.is_read_closed(),
            "peer_reset_read_closed",
        ),
        (
            hints.peer_reset_write_closed,
            ev.is_write_closed(),
            "peer_reset_write_closed",
        ),
        (hints.peer_reset_error, ev.is_error(), "peer_reset_error"),
    ] {
        assert!(!declared || set, "declared hint {name} is missing: {ev:?}");
    }
    reactor.deregister(a.as_source()).expect("deregister");
}

/// A non-blocking connect to a closed port: the event (registered for writability) carries
/// `error` if declared; the socket's pending error is `ConnectionRefused`.
pub fn refused_connect_hints<R: Reactor>(make: impl Fn() -> R) {
    let addr = refused_addr();
    let stream = match connect_nonblocking(addr) {
        Ok(stream) => stream,
        Err(e) => panic!("a non-blocking connect must not fail synchronously here: {e}"),
    };
    let reactor = make();
    let hints = reactor.hints();
    register(&reactor, &stream, EventId(1), Interest::WRITABLE, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(1), "refused connect");
    assert!(
        ev.is_writable(),
        "a failed connect is reported as writable: {ev:?}"
    );
    if hints.connect_refused_error {
        assert!(
            ev.is_error(),
            "declared hint connect_refused_error is missing: {ev:?}"
        );
    }
    let err = stream.take_error().expect("take_error");
    assert!(
        matches!(&err, Some(e) if e.kind() == io::ErrorKind::ConnectionRefused),
        "the connect was refused: {err:?}"
    );
    reactor.deregister(stream.as_source()).expect("deregister");
    // The peer that was never there.
    drop(TcpStream::connect(addr).err());
}

/// The last writer of a pipe is dropped: the reader's event carries `read_closed` if declared,
/// and never `error`.
#[cfg(unix)]
pub fn pipe_writer_dropped_hints<R: Reactor>(make: impl Fn() -> R) {
    let (writer, mut reader) = mio::unix::pipe::new().expect("pipe");
    let reactor = make();
    let hints = reactor.hints();
    register(&reactor, &reader, EventId(1), Interest::READABLE, Mode::Oneshot).expect("register");
    expect_silence(&reactor, "pipe with a writer");
    drop(writer);
    let ev = expect_one(&reactor, EventId(1), "writer dropped");
    assert!(ev.is_readable(), "end of stream is readable: {ev:?}");
    if hints.pipe_writer_dropped_read_closed {
        assert!(
            ev.is_read_closed(),
            "declared hint pipe_writer_dropped_read_closed is missing: {ev:?}"
        );
    }
    assert!(!ev.is_error(), "hints are never false positives: {ev:?}");
    let mut buf = [0u8; 8];
    assert_eq!(reader.read(&mut buf).expect("read"), 0, "end of stream");
    reactor.deregister(reader.as_source()).expect("deregister");
}

/// A connected UDP socket sends to a closed port and gets an ICMP port unreachable: its event
/// (registered for readability) may carry `error`, but never `read_closed` or `write_closed`:
/// the pending error is `ConnectionRefused`, and once it is taken the next send works. In every
/// supported mode.
///
/// Unix only: whether Windows reports the ICMP error as an event at all is unverified.
#[cfg(unix)]
pub fn udp_unreachable_hints<R: Reactor>(make: impl Fn() -> R) {
    let reactor = make();
    for mode in super::MODES.into_iter().filter(|m| reactor.supports(*m)) {
        let closed = udp().local_addr().expect("addr"); // the socket is closed at once
        let u = udp();
        u.connect(closed).expect("connect the UDP socket");
        register(&reactor, &u, EventId(1), Interest::READABLE, mode).expect("register");
        u.send(b"ping").expect("the first send");
        let ev = expect_one(&reactor, EventId(1), &format!("port unreachable ({mode:?})"));
        assert!(
            !ev.is_write_closed() && !ev.is_read_closed(),
            "hints are never false positives: a UDP socket that got an ICMP error still sends \
             and receives ({mode:?}): {ev:?}"
        );
        let err = u.take_error().expect("take_error");
        assert!(
            matches!(&err, Some(e) if e.kind() == io::ErrorKind::ConnectionRefused),
            "the port was unreachable ({mode:?}): pending error {err:?}, event {ev:?}"
        );
        u.send(b"again")
            .expect("the next send works: the write half is not closed");
        reactor.deregister(u.as_source()).expect("deregister");
    }
}

/// The reader of a pipe is dropped: the writer's event (registered for writability) is
/// writable, carries `write_closed` if declared, and the write that follows fails with
/// `BrokenPipe`.
#[cfg(unix)]
pub fn pipe_reader_dropped_hints<R: Reactor>(make: impl Fn() -> R) {
    let (mut writer, reader) = mio::unix::pipe::new().expect("pipe");
    let reactor = make();
    let hints = reactor.hints();
    drop(reader);
    register(&reactor, &writer, EventId(1), Interest::WRITABLE, Mode::Oneshot).expect("register");
    let ev = expect_one(&reactor, EventId(1), "reader dropped");
    assert!(
        ev.is_writable(),
        "a broken pipe is writable (the write tells): {ev:?}"
    );
    if hints.pipe_reader_dropped_write_closed {
        assert!(
            ev.is_write_closed(),
            "declared hint pipe_reader_dropped_write_closed is missing: {ev:?}"
        );
    }
    match writer.write(b"x") {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => panic!("the pipe has no reader: the write gave {other:?}; event {ev:?}"),
    }
    reactor.deregister(writer.as_source()).expect("deregister");
}
