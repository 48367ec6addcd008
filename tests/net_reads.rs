//! The callback connection's read path (`net::stream`): one read per message where a short
//! read may be taken for an empty socket, and transfers of every shape arriving whole, the end
//! of the stream included. Each body runs once per backend, and once more with edge-triggering
//! hidden (the level-triggered path).

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::net::tcp::{self, ListenOptions};
use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{MioReactor, Mode, PollingReactor, Reactor};

mod util;

use util::recording::Recording;
use util::{init_logging, run_bounded};

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    init_logging();
    Builder::new()
        .io_timeout(Duration::from_secs(10))
        .build_with(reactor)
        .expect("runtime")
}

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Whether this backend lets a short read stand for an empty socket (see `net::stream`): where
/// it reports a peer's shutdown as `read_closed`, or a connection is level-triggered (as it
/// is on a backend with level-triggering that does not report it).
fn shortcut<R: Reactor>(reactor: &R) -> bool {
    !cfg!(windows)
        && (!reactor.supports(Mode::Edge)
            || reactor.hints().peer_shutdown_read_closed
            || reactor.supports(Mode::Level))
}

/// Twenty 64-byte messages, each read by one read call where the shortcut applies (two, the
/// second finding `EAGAIN`, where it does not).
fn one_read_per_message<R: Reactor + 'static>(reactor: R) {
    let expect_shortcut = shortcut(&reactor);
    let mut rt = runtime(reactor);
    let delivered = Rc::new(Cell::new(0u64));
    let read_calls = Rc::new(Cell::new(0u64));
    let (d, r) = (delivered.clone(), read_calls.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        let conn = conn.expect("accept");
        let (d, r) = (d.clone(), r.clone());
        conn.on_data(rt, move |_, conn, data| {
            if !data.expect("read").is_empty() {
                d.set(d.get() + 1);
                r.set(conn.read_calls());
            }
        })
        .unwrap();
    })
    .expect("listen");
    let mut client = TcpStream::connect(listener.local_addr()).unwrap();
    client.set_nodelay(true).unwrap();
    const MESSAGES: u64 = 20;
    let deadline = Instant::now() + Duration::from_secs(10);
    for i in 0..MESSAGES {
        client.write_all(&[i as u8; 64]).unwrap();
        while delivered.get() <= i {
            assert!(Instant::now() < deadline, "message {i} was not delivered");
            rt.run_once().unwrap();
        }
    }
    assert_eq!(
        delivered.get(),
        MESSAGES,
        "one delivery per message (each sent after the last arrived)"
    );
    if expect_shortcut {
        assert_eq!(read_calls.get(), MESSAGES, "one read call per message");
    } else {
        // Counted in the last delivery: every earlier message's read and its `EAGAIN` read
        // (and one more per spurious event, which IOCP may report).
        assert!(
            read_calls.get() >= 2 * MESSAGES - 1,
            "{} read calls",
            read_calls.get()
        );
    }
    listener.close(&mut rt);
}

/// 2 MiB from a peer thread in chunks of pseudo-random sizes with pauses, then its shutdown;
/// then 40,000 bytes and the shutdown all queued before the loop reads at all (the end of the
/// stream in the same event as the last data). Every byte arrives in order, and the end.
fn transfers_arrive_whole_with_the_end<R: Reactor + 'static>(make: impl Fn() -> R) {
    for (round, total, late) in [
        (1u64, 2usize << 20, false),
        (2, 40_000, true),
        (3, 2 << 20, false),
    ] {
        let mut rt = runtime(make());
        let received = Rc::new(RefCell::new((0usize, false)));
        let got = received.clone();
        let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
            let conn = conn.expect("accept");
            let got = got.clone();
            conn.on_data(rt, move |rt, _, data| {
                let data = data.expect("read");
                let mut got = got.borrow_mut();
                if data.is_empty() {
                    got.1 = true;
                    rt.stop();
                    return;
                }
                for (k, b) in data.iter().enumerate() {
                    assert_eq!(*b, ((got.0 + k) % 251) as u8, "byte {} out of order", got.0 + k);
                }
                got.0 += data.len();
            })
            .unwrap();
        })
        .expect("listen");
        let addr = listener.local_addr();
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        let writer = if late {
            let mut client = TcpStream::connect(addr).unwrap();
            client.write_all(&data).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            std::thread::spawn(move || drop(client))
        } else {
            std::thread::spawn(move || {
                let mut client = TcpStream::connect(addr).unwrap();
                let mut seed = round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut off = 0;
                while off < total {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let size = 1 + (seed >> 33) as usize % 40_000;
                    let end = (off + size).min(total);
                    client.write_all(&data[off..end]).unwrap();
                    off = end;
                    if seed % 8 == 0 {
                        // Pacing, so that reads find the socket in every state.
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                client.shutdown(Shutdown::Write).unwrap();
                // Keep the socket open until the server has read the end.
                std::thread::sleep(Duration::from_millis(50));
            })
        };
        run_bounded(&mut rt, Duration::from_secs(10));
        writer.join().unwrap();
        let (bytes, eof) = *received.borrow();
        assert_eq!(
            (bytes, eof),
            (total, true),
            "round {round}: bytes and the end of the stream"
        );
        listener.close(&mut rt);
    }
}

/// Data that arrives before the data callback is set waits in the kernel: the loop does not
/// spin on it meanwhile (a level-triggered watch would report it at every poll), and it is
/// delivered once the callback is set, from a timer 100 ms later.
fn data_before_the_callback_waits<R: Reactor + 'static>(reactor: R) {
    let mut rt = runtime(reactor);
    let accepted = Rc::new(Cell::new(None));
    let delivered = Rc::new(RefCell::new(Vec::new()));
    let ticks_while_waiting = Rc::new(Cell::new(None));
    let (a, d, t) = (accepted.clone(), delivered.clone(), ticks_while_waiting.clone());
    let listener = tcp::listen(&mut rt, localhost(), ListenOptions::new(), move |rt, conn| {
        let conn = conn.expect("accept");
        a.set(Some(conn));
        let (d, t) = (d.clone(), t.clone());
        let at_accept = rt.stats().ticks;
        rt.set_timeout(Duration::from_millis(100), move |rt| {
            t.set(Some(rt.stats().ticks - at_accept));
            conn.on_data(rt, move |rt, _, data| {
                d.borrow_mut().extend_from_slice(data.expect("read"));
                rt.stop();
            })
            .expect("on_data");
        });
    })
    .expect("listen");
    let mut client = TcpStream::connect(listener.local_addr()).unwrap();
    client.write_all(&[7u8; 64]).unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert!(accepted.get().is_some(), "accepted");
    let ticks = ticks_while_waiting.get().expect("the timer ran");
    assert!(
        ticks < 50,
        "{ticks} loop iterations in the 100 ms the data waited for its callback: the loop spun"
    );
    assert_eq!(
        *delivered.borrow(),
        vec![7u8; 64],
        "the data, once the callback is set"
    );
    listener.close(&mut rt);
}

macro_rules! read_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn one_read_per_message() { super::one_read_per_message($make) }
            #[test] fn transfers_arrive_whole_with_the_end() { super::transfers_arrive_whole_with_the_end(|| $make) }
            #[test] fn data_before_the_callback_waits() { super::data_before_the_callback_waits($make) }
        }
    )*};
}

read_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    polling_level => Recording::level_only(PollingReactor::new().unwrap()),
    mio_level => Recording::level_only(MioReactor::new().unwrap()),
}
