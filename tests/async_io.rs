//! `Async<T>`: sources as futures on the runtime's watches, edge- and level-triggered, with the
//! runtime's deadline and high watermark. Each body runs once per backend (and once more with
//! edge-triggering hidden, for the level paths) through `async_io_tests!`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Async, Builder, Runtime, WatchOptions};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

mod util;

use util::init_logging as init;
use util::recording::Recording;

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    Builder::new().build_with(reactor).expect("runtime")
}

fn nonblocking_pair() -> (TcpStream, TcpStream) {
    let (client, server) = util::tcp_pair();
    client.set_nonblocking(true).unwrap();
    (client, server)
}

/// A server task accepts and echoes 256 KiB back to a client task: both directions hit
/// `WouldBlock` many times and every wait is woken.
fn echo_between_tasks<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = Async::new(&mut rt, listener).unwrap();
    let local = rt.local();
    let server_local = local.clone();
    let server = local.spawn(async move {
        let (stream, _) = listener.read_with(|l| l.accept()).await?;
        stream.set_nonblocking(true)?;
        let stream = Async::in_local(&server_local, stream, WatchOptions::new());
        let mut buf = vec![0; 8192];
        let mut echoed = 0;
        loop {
            let n = stream.read_with(|mut s| s.read(&mut buf)).await?;
            if n == 0 {
                return io::Result::Ok(echoed);
            }
            let mut off = 0;
            while off < n {
                off += stream.write_with(|mut s| s.write(&buf[off..n])).await?;
            }
            echoed += n;
        }
    });
    let client = TcpStream::connect(addr).unwrap();
    client.set_nonblocking(true).unwrap();
    let client = Async::new(&mut rt, client).unwrap();
    const TOTAL: usize = 256 * 1024;
    let client = Rc::new(client);
    let writer = client.clone();
    let send = local.spawn(async move {
        let data = vec![7u8; TOTAL];
        let mut off = 0;
        while off < TOTAL {
            off += writer.write_with(|mut s| s.write(&data[off..])).await?;
        }
        writer.get_ref().shutdown(std::net::Shutdown::Write)?;
        io::Result::Ok(())
    });
    let received = rt
        .block_on(async move {
            let mut buf = vec![0; 16384];
            let mut got = 0;
            loop {
                let n = client.read_with(|mut s| s.read(&mut buf)).await?;
                if n == 0 {
                    return io::Result::Ok(got);
                }
                assert!(buf[..n].iter().all(|b| *b == 7));
                got += n;
            }
        })
        .unwrap()
        .unwrap();
    assert_eq!(received, TOTAL);
    rt.block_on(send).unwrap().unwrap().unwrap();
    assert_eq!(rt.block_on(server).unwrap().unwrap().unwrap(), TOTAL);
    rt.run_once().unwrap();
    assert_eq!(rt.stats().registered, 0, "dropped sources closed their watches");
}

/// Data nobody reads yet, and a peer that sends nothing, do not spin the loop: a task that
/// sleeps 100 ms before reading costs a handful of iterations, not thousands.
fn unread_data_does_not_spin<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (mut client, server) = nonblocking_pair();
    let server = Async::new(&mut rt, server).unwrap();
    let (_idle_client, idle) = nonblocking_pair();
    let idle = Async::new(&mut rt, idle).unwrap();
    let time = rt.time();
    client.write_all(b"waiting").unwrap();
    let before = rt.stats().ticks;
    let got = rt
        .block_on(async move {
            let mut buf = [0; 1];
            // A reader waits on the idle socket meanwhile.
            let idle_read = time.timeout(
                Duration::from_millis(100),
                idle.read_with(|mut s| s.read(&mut buf)),
            );
            assert_eq!(idle_read.await.unwrap_err().kind(), io::ErrorKind::TimedOut);
            let mut buf = [0; 16];
            let n = server.read_with(|mut s| s.read(&mut buf)).await.unwrap();
            buf[..n].to_vec()
        })
        .unwrap();
    assert_eq!(got, b"waiting");
    let ticks = rt.stats().ticks - before;
    assert!(ticks < 50, "{ticks} iterations in 100 ms of waiting");
}

/// The runtime's deadline applies: a read that nothing answers fails with `TimedOut`.
fn deadline_ends_a_wait<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (_client, server) = nonblocking_pair();
    let opts = WatchOptions::new().timeout(Duration::from_millis(50));
    // The deadline counts from the watch's creation: measure from before it (the wait may end
    // within microseconds of the deadline, as under Wine's IOCP).
    let start = Instant::now();
    let server = Async::with_options(&mut rt, server, opts).unwrap();
    let err = rt
        .block_on(async move {
            let mut buf = [0; 4];
            server.read_with(|mut s| s.read(&mut buf)).await
        })
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(rt.stats().timeouts, 1);
}

/// Successful operations are activity: a source written every quarter of its deadline, with
/// no event in between (its writable edge came once), outlives the deadline many times over.
fn successful_operations_push_the_deadline<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (mut client, server) = nonblocking_pair();
    let deadline = Duration::from_millis(100);
    let server = Async::with_options(&mut rt, server, WatchOptions::new().timeout(deadline)).unwrap();
    let time = rt.time();
    let start = Instant::now();
    // Sixteen quarter-deadline pauses: four deadlines at least (sleeps never end early), more
    // on a coarse timer (Windows, Wine).
    let written = rt
        .block_on(async move {
            let mut written = 0;
            for _ in 0..16 {
                time.sleep(deadline / 4).await;
                written += server.write_with(|mut s| s.write(b"x")).await?;
            }
            io::Result::Ok(written)
        })
        .unwrap()
        .unwrap();
    assert_eq!(written, 16);
    assert!(start.elapsed() >= deadline * 4);
    assert_eq!(
        rt.stats().timeouts,
        0,
        "the deadline passed while writes succeeded"
    );
    let mut got = vec![0; written];
    client.set_nonblocking(false).unwrap();
    client.read_exact(&mut got).unwrap();
}

/// A request/response cycle on a level-triggered backend changes no registration: the
/// reader's direction stays registered while its task drains the socket and waits again
/// (dropping it and taking it back costs two syscalls per cycle), and an edge backend never
/// changes one. Run on the recording wrapper, which counts the changes.
fn echo_cycles_change_no_registration<R: Reactor + 'static>(reactor: R) {
    use std::sync::atomic::Ordering;
    init();
    let (reactor, _) = Recording::new(reactor);
    let changes = reactor.changes.clone();
    let mut rt = runtime(reactor);
    let (client, server) = nonblocking_pair();
    let client = Async::new(&mut rt, client).unwrap();
    server.set_nonblocking(true).unwrap();
    let server = Async::new(&mut rt, server).unwrap();
    let local = rt.local();
    const CYCLES: usize = 200;
    let echo = local.spawn(async move {
        let mut buf = [0; 64];
        for _ in 0..CYCLES {
            let n = server.read_with(|mut s| s.read(&mut buf)).await?;
            server.write_with(|mut s| s.write(&buf[..n])).await?;
        }
        io::Result::Ok(())
    });
    let before = Rc::new(std::cell::Cell::new(0));
    let at_start = before.clone();
    let counted = changes.clone();
    rt.block_on(async move {
        let mut buf = [0; 64];
        // Warm up (the first waits register their directions), then count.
        client.write_with(|mut s| s.write(b"warm-up")).await?;
        client.read_with(|mut s| s.read(&mut buf)).await?;
        at_start.set(counted.load(Ordering::Relaxed));
        for _ in 1..CYCLES {
            client.write_with(|mut s| s.write(b"ping")).await?;
            let n = client.read_with(|mut s| s.read(&mut buf)).await?;
            assert_eq!(&buf[..n], b"ping");
        }
        echo.await?
    })
    .unwrap()
    .unwrap();
    let during = changes.load(Ordering::Relaxed) - before.get();
    assert!(
        during <= 4,
        "{during} registration changes in {} request/response cycles",
        CYCLES - 1
    );
}

/// Stream reads and writes of every shape arrive whole, the end of the stream included: a
/// writer task sends 2 MiB in chunks of pseudo-random sizes with pauses, then shuts down; a
/// reader reads with pseudo-random buffer sizes until the end, once starting with everything
/// (the end included) already queued. Short reads and writes are where an edge-triggered
/// watch may skip a read (`net::aio`); a missed wake-up fails here at the 10 s deadline.
fn stream_transfers_of_any_shape_arrive_whole<R: Reactor + 'static>(make: impl Fn() -> R) {
    init();
    for (round, reader_late) in [(1u64, false), (2, true), (3, false)] {
        let mut rt = Builder::new()
            .io_timeout(Duration::from_secs(10))
            .build_with(make())
            .unwrap();
        let (client, server) = nonblocking_pair();
        let client = Async::new(&mut rt, client).unwrap();
        let server = Async::new(&mut rt, server).unwrap();
        let local = rt.local();
        let time = rt.time();
        const TOTAL: usize = 2 << 20;
        let mut seed = round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut next = move |bound: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            1 + (seed >> 33) as usize % bound
        };
        let sizes: Vec<(usize, bool)> = (0..4096).map(|_| (next(40_000), next(8) == 1)).collect();
        let reads: Vec<usize> = (0..65_536).map(|_| next(70_000)).collect();
        let writer_time = time.clone();
        let writer = local.spawn(async move {
            let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
            let (mut off, mut i) = (0, 0);
            while off < TOTAL {
                let (size, pause) = sizes[i % sizes.len()];
                i += 1;
                let end = (off + size).min(TOTAL);
                client.write_all(&data[off..end]).await?;
                off = end;
                if pause && !reader_late {
                    writer_time.sleep(Duration::from_micros(200)).await;
                }
            }
            client.shutdown(std::net::Shutdown::Write)?;
            io::Result::Ok(())
        });
        let got = rt
            .block_on(async move {
                if reader_late {
                    // Everything, the end of the stream included, arrives before the first read.
                    writer.await??;
                }
                let mut buf = vec![0; 70_000];
                let (mut total, mut sum, mut i) = (0usize, 0u64, 0);
                loop {
                    let len = reads[i % reads.len()];
                    i += 1;
                    let n = server.read(&mut buf[..len]).await?;
                    if n == 0 {
                        break;
                    }
                    for (k, b) in buf[..n].iter().enumerate() {
                        assert_eq!(*b, ((total + k) % 251) as u8, "byte {} out of order", total + k);
                    }
                    total += n;
                    sum += n as u64;
                }
                io::Result::Ok((total, sum))
            })
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(got.0, TOTAL, "round {round}");
        assert_eq!(rt.stats().timeouts, 0, "round {round}");
    }
}

/// Above the high watermark an `Async` waits in the queue and its reads wait with it; past
/// the queue, `QuotaExceeded`.
fn watermark_queues_async_sources<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new()
        .high_watermark(1)
        .queue_limit(1)
        .build_with(reactor)
        .unwrap();
    let (_c1, s1) = nonblocking_pair();
    let (mut c2, s2) = nonblocking_pair();
    let (_c3, s3) = nonblocking_pair();
    let first = Async::new(&mut rt, s1).unwrap();
    let second = Async::new(&mut rt, s2).unwrap();
    let err = Async::new(&mut rt, s3).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::QuotaExceeded);
    assert_eq!((rt.stats().registered, rt.stats().queued), (1, 1));
    c2.write_all(b"q").unwrap();
    let time = rt.time();
    let got = rt
        .block_on(async move {
            // Freed after a moment: the queued watch is admitted and its read completes.
            time.sleep(Duration::from_millis(20)).await;
            drop(first);
            let mut buf = [0; 4];
            // The data was there already: the optimistic read gets it even while queued.
            second
                .read_with(|mut s| s.read(&mut buf))
                .await
                .map(|n| buf[..n].to_vec())
        })
        .unwrap()
        .unwrap();
    assert_eq!(got, b"q");
}

macro_rules! async_io_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn echo_between_tasks() { super::echo_between_tasks($make) }
            #[test] fn unread_data_does_not_spin() { super::unread_data_does_not_spin($make) }
            #[test] fn deadline_ends_a_wait() { super::deadline_ends_a_wait($make) }
            #[test] fn stream_transfers_of_any_shape_arrive_whole() { super::stream_transfers_of_any_shape_arrive_whole(|| $make) }
            #[test] fn echo_cycles_change_no_registration() { super::echo_cycles_change_no_registration($make) }
            #[test] fn successful_operations_push_the_deadline() { super::successful_operations_push_the_deadline($make) }
            #[test] fn watermark_queues_async_sources() { super::watermark_queues_async_sources($make) }
        }
    )*};
}

async_io_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    polling_level => Recording::level_only(PollingReactor::new().unwrap()),
    mio_level => Recording::level_only(MioReactor::new().unwrap()),
}
