//! Unit tests of the stream shortcut (they call the crate-private `poll_stream_op`).

use std::cell::Cell;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use crate::runtime::{Async, Runtime};
use crate::{MioReactor, PollingReactor, Reactor};

/// One stream read into `buf`, counting the read(2) calls in `calls`.
async fn counted_read<R: Reactor + 'static>(
    stream: &Async<TcpStream, R>,
    buf: &mut [u8],
    calls: &Cell<usize>,
) -> io::Result<usize> {
    let len = buf.len();
    poll_fn(|cx| {
        stream.poll_stream_op(cx, true, len, |mut s| {
            calls.set(calls.get() + 1);
            s.read(buf)
        })
    })
    .await
}

/// On an edge-triggered watch whose backend reports a peer's shutdown, a read shorter
/// than its buffer is taken for a drained socket: the next read waits for an event
/// instead of calling read(2) for a `WouldBlock`; the next arrival wakes it.
fn short_read_waits_for_the_next_event<R: Reactor + 'static>(reactor: R, shortcut: bool) {
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let server = Async::new(&mut rt, server).unwrap();
    let time = rt.time();
    client.write_all(b"hello").unwrap();
    let calls = Rc::new(Cell::new(0));
    let counted = calls.clone();
    let (first, calls_in_wait, second, data) = rt
        .block_on(async move {
            let mut buf = [0; 64];
            let first = counted_read(&server, &mut buf, &counted).await?;
            let before = counted.get();
            let waited = time
                .timeout(
                    Duration::from_millis(30),
                    counted_read(&server, &mut buf, &counted),
                )
                .await;
            assert_eq!(waited.unwrap_err().kind(), io::ErrorKind::TimedOut);
            let calls_in_wait = counted.get() - before;
            client.write_all(b"again").unwrap();
            let second = counted_read(&server, &mut buf, &counted).await?;
            io::Result::Ok((first, calls_in_wait, second, buf[..second].to_vec()))
        })
        .unwrap()
        .unwrap();
    assert_eq!((first, second), (5, 5));
    assert_eq!(data, b"again");
    // With the shortcut the wait made no read(2) call; without it, at least one (its
    // `WouldBlock`, and one per spurious wake).
    if shortcut {
        assert_eq!(calls_in_wait, 0, "read(2) calls in the wait");
    } else {
        assert!(calls_in_wait >= 1, "{calls_in_wait} read(2) calls in the wait");
    }
    assert!(calls.get() >= 2);
}

#[test]
fn short_read_waits_for_the_next_event_mio() {
    // mio on epoll/kqueue reports a peer's shutdown as read_closed: the shortcut applies.
    let reactor = MioReactor::new().unwrap();
    let shortcut = reactor.hints().peer_shutdown_read_closed;
    assert!(shortcut, "mio reports a peer's shutdown on this OS");
    short_read_waits_for_the_next_event(reactor, shortcut);
}

#[test]
fn short_read_waits_for_the_next_event_polling() {
    // polling does not report it: every read is tried (the end of the stream could be
    // waiting behind the data with no edge to come).
    let reactor = PollingReactor::new().unwrap();
    let shortcut = reactor.hints().peer_shutdown_read_closed;
    short_read_waits_for_the_next_event(reactor, shortcut);
}
