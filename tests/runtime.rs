//! The runtime core on every backend: watermark, deadlines, generations, the pool, posts,
//! liveness. Each body runs once per backend through `runtime_tests!`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Builder, Runtime, Trigger, WatchOptions};
use portable_reactor::{Interest, MioReactor, PollingReactor, Reactor};

mod util;

use util::{drain, init_logging as init, run_bounded, tcp_pair as pair};

fn watermark_queues_then_refuses<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new()
        .high_watermark(2)
        .queue_limit(2)
        .build_with(reactor)
        .unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for i in 0..4 {
        let (mut client, server) = pair();
        client.write_all(b"x").unwrap();
        clients.push(client);
        let f = fired.clone();
        let id = rt
            .watch_once_with(
                server,
                Interest::READABLE,
                WatchOptions::new().timeout(Duration::from_secs(10)),
                move |_, _, ev| {
                    ev.unwrap();
                    f.borrow_mut().push(i);
                },
            )
            .unwrap();
        ids.push(id);
    }
    let s = rt.stats();
    assert_eq!((s.registered, s.queued, s.watermark_hits), (2, 2, 2));
    let (_c, server) = pair();
    let err = rt.watch(server, Interest::READABLE, |_, _, _, _| {}).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::QuotaExceeded);
    assert_eq!(rt.stats().rejected, 1);
    run_bounded(&mut rt, Duration::from_secs(10));
    let mut fired = fired.borrow().clone();
    fired.sort();
    assert_eq!(
        fired,
        [0, 1, 2, 3],
        "queued watches were admitted as slots freed and saw their data"
    );
    let s = rt.stats();
    assert_eq!((s.registered, s.queued), (0, 0));
}

fn deadline_times_out_and_frees<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new()
        .io_timeout(Duration::from_millis(50))
        .build_with(reactor)
        .unwrap();
    let (_client, server) = pair();
    let result = Rc::new(RefCell::new(None));
    let r = result.clone();
    let start = Instant::now();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    rt.watch(server, Interest::READABLE, move |_, _, _, ev| {
        c.set(c.get() + 1);
        *r.borrow_mut() = Some((ev.map(|_| ()).map_err(|e| e.kind()), start.elapsed()));
    })
    .unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    let (outcome, elapsed) = result.borrow_mut().take().expect("callback ran");
    assert_eq!(outcome, Err(io::ErrorKind::TimedOut));
    assert!(
        elapsed >= Duration::from_millis(50),
        "deadline fired early: {elapsed:?}"
    );
    assert_eq!(calls.get(), 1, "the timed-out watch is gone after one TimedOut");
    let s = rt.stats();
    assert_eq!((s.registered, s.timeouts), (0, 1));
}

fn queued_watch_deadline_runs_while_waiting<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().high_watermark(1).build_with(reactor).unwrap();
    let (_c1, s1) = pair();
    let (_c2, s2) = pair();
    let first = rt
        .watch_with(
            s1,
            Interest::READABLE,
            WatchOptions::new().no_timeout(),
            |_, _, _, _| {},
        )
        .unwrap();
    let outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    rt.watch_with(
        s2,
        Interest::READABLE,
        WatchOptions::new().timeout(Duration::from_millis(30)),
        move |rt, _, _, ev| {
            *o.borrow_mut() = Some(ev.map(|_| ()).map_err(|e| e.kind()));
            rt.close(first).unwrap();
        },
    )
    .unwrap();
    assert_eq!(rt.stats().queued, 1);
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(outcome.borrow_mut().take(), Some(Err(io::ErrorKind::TimedOut)));
    assert_eq!(rt.stats().timeouts, 1);
}

fn activity_pushes_the_deadline<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (client, server) = pair();
    let client = Rc::new(RefCell::new(client));
    let received = Rc::new(Cell::new(0usize));
    let outcome = Rc::new(RefCell::new(None));
    let (r, o) = (received.clone(), outcome.clone());
    let start = Instant::now();
    let opts = WatchOptions::new().timeout(Duration::from_millis(300));
    rt.watch_with(
        server,
        Interest::READABLE,
        opts,
        move |_, _, stream, ev| match ev {
            Ok(_) => r.set(r.get() + drain(stream)),
            Err(e) => *o.borrow_mut() = Some((e.kind(), start.elapsed())),
        },
    )
    .unwrap();
    // Ten writes 100 ms apart: the watch stays idle far less than its 300 ms deadline.
    let writes = Rc::new(Cell::new(0));
    let w = writes.clone();
    let c = client.clone();
    let interval = Rc::new(Cell::new(None));
    let i2 = interval.clone();
    let id = rt.set_interval(Duration::from_millis(100), move |rt| {
        c.borrow_mut().write_all(b"p").unwrap();
        w.set(w.get() + 1);
        if w.get() == 10 {
            rt.clear_timer(i2.get().unwrap());
        }
    });
    interval.set(Some(id));
    run_bounded(&mut rt, Duration::from_secs(20));
    assert_eq!(received.get(), 10);
    let (kind, elapsed) = outcome.borrow_mut().take().expect("timed out at the end");
    assert_eq!(kind, io::ErrorKind::TimedOut);
    assert!(
        elapsed >= Duration::from_millis(1000 + 300),
        "outlived the writes: {elapsed:?}"
    );
}

fn stale_ids_miss_after_slot_reuse<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (_c1, s1) = pair();
    let old = rt
        .watch(s1, Interest::READABLE, |_, _, _, _| panic!("closed watch called"))
        .unwrap();
    rt.close(old).unwrap();
    let (mut c2, s2) = pair();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let new = rt
        .watch(s2, Interest::READABLE, move |rt, id, stream, ev| {
            ev.unwrap();
            drain(stream);
            h.set(h.get() + 1);
            rt.close(id).unwrap();
        })
        .unwrap();
    assert_ne!(old, new, "a reused slot gets a new generation");
    assert_eq!(rt.close(old).unwrap_err().kind(), io::ErrorKind::NotFound);
    assert_eq!(
        rt.set_interest(old, Interest::WRITABLE).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert!(rt.source_mut::<TcpStream>(old).is_none());
    assert!(rt.source_mut::<TcpStream>(new).is_some());
    assert!(
        rt.source_mut::<TcpListener>(new).is_none(),
        "wrong type is None, not a panic"
    );
    c2.write_all(b"data").unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(hits.get(), 1);
}

fn pool_panic_is_an_error_and_threads_survive<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().threads(1).build_with(reactor).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    rt.spawn_blocking(
        || -> u32 { panic!("job exploded") },
        move |_, r| {
            let e = r.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::Other);
            assert!(e.to_string().contains("job exploded"), "{e}");
            l.borrow_mut().push("panic".to_string());
        },
    )
    .unwrap();
    for i in 0..5u32 {
        let l = log.clone();
        rt.spawn_blocking(
            move || (i, std::thread::current().name().map(str::to_owned)),
            move |_, r| {
                let (i, name) = r.unwrap();
                assert!(name.unwrap().starts_with("reactor-pool-"));
                l.borrow_mut().push(format!("job {i}"));
            },
        )
        .unwrap();
    }
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(
        *log.borrow(),
        ["panic", "job 0", "job 1", "job 2", "job 3", "job 4"],
        "FIFO on one thread"
    );
    assert_eq!(rt.stats().pool_pending, 0);
}

fn posts_coalesce_and_none_is_lost<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let handle = rt.handle();
    let ticks = Rc::new(RefCell::new(Vec::new()));
    let keepalive = rt.set_timeout(Duration::from_secs(30), |_| {});
    let t = ticks.clone();
    rt.set_timeout(Duration::ZERO, move |rt| {
        // Block the loop while another thread posts 1000 callbacks: they must all run, in one
        // later iteration, after a single wake.
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let poster = std::thread::spawn(move || {
            for i in 0..1000u64 {
                let tx = tx.clone();
                handle
                    .post(move |rt| {
                        tx.send(rt.stats().ticks).unwrap();
                        if i == 999 {
                            rt.clear_timer(keepalive);
                        }
                    })
                    .unwrap();
            }
        });
        poster.join().unwrap();
        let t = t.clone();
        rt.set_immediate(move |_| t.borrow_mut().extend(rx.try_iter()));
    });
    run_bounded(&mut rt, Duration::from_secs(10));
    let ticks = ticks.borrow();
    assert_eq!(ticks.len(), 1000, "every post ran");
    assert!(
        ticks.iter().all(|t| *t == ticks[0]),
        "all posts ran in one iteration"
    );
}

fn post_after_drop_is_an_error<R: Reactor + 'static>(reactor: R) {
    init();
    let rt = Runtime::builder().build_with(reactor).unwrap();
    let handle = rt.handle();
    drop(rt);
    let err = handle.post(|_| panic!("must not run")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

fn unref_and_stop<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (_c, server) = pair();
    let watch = rt
        .watch(server, Interest::READABLE, |_, _, _, _| {
            panic!("no data was sent")
        })
        .unwrap();
    rt.unref_watch(watch).unwrap();
    let timer = rt.set_timeout(Duration::from_secs(60), |_| panic!("unref'd timer ran"));
    assert!(rt.unref_timer(timer));
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    rt.set_timeout(Duration::from_millis(1), move |_| r.set(true));
    let start = Instant::now();
    rt.run().unwrap();
    assert!(ran.get());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "unref'd handles did not keep the loop alive"
    );

    // stop() from a callback returns from run() with work left.
    let mut rt2 = Runtime::builder().build_with(MioReactor::new().unwrap()).unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    rt2.set_interval(Duration::from_millis(1), move |rt| {
        c.set(c.get() + 1);
        if c.get() == 3 {
            rt.stop();
        }
    });
    rt2.run().unwrap();
    assert_eq!(count.get(), 3);
    assert!(rt2.is_alive(), "the interval is still there");
    assert!(rt2.run_once().unwrap());
}

fn close_inside_callback_and_close_callback_order<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (mut client, server) = pair();
    client.write_all(b"bye").unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    rt.watch(server, Interest::READABLE, move |rt, id, stream, ev| {
        ev.unwrap();
        drain(stream);
        l.borrow_mut().push("io");
        let (l1, l2) = (l.clone(), l.clone());
        rt.close_with(id, move |_| l1.borrow_mut().push("close")).unwrap();
        assert_eq!(
            rt.close(id).unwrap_err().kind(),
            io::ErrorKind::NotFound,
            "closing twice"
        );
        rt.set_immediate(move |_| l2.borrow_mut().push("immediate"));
    })
    .unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(*log.borrow(), ["io", "immediate", "close"]);
    assert_eq!(rt.stats().registered, 0);
}

fn level_trigger_repeats_until_drained<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (mut client, server) = pair();
    client.write_all(b"abc").unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let opts = WatchOptions::new()
        .trigger(Trigger::Level)
        .timeout(Duration::from_secs(10));
    rt.watch_with(server, Interest::READABLE, opts, move |rt, id, stream, ev| {
        ev.unwrap();
        c.set(c.get() + 1);
        // Read one byte per event: level-triggered, the rest is reported again.
        let mut b = [0u8; 1];
        assert_eq!(stream.read(&mut b).unwrap(), 1);
        if c.get() == 3 {
            rt.close(id).unwrap();
        }
    })
    .unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(calls.get(), 3);
}

fn set_interest_switches_direction<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (mut client, server) = pair();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let opts = WatchOptions::new().timeout(Duration::from_secs(10));
    rt.watch_with(server, Interest::WRITABLE, opts, move |rt, id, stream, ev| {
        let ev = ev.unwrap();
        if ev.is_writable() && l.borrow().is_empty() {
            l.borrow_mut().push("writable");
            stream.write_all(b"ping").unwrap();
            rt.set_interest(id, Interest::READABLE).unwrap();
        } else if ev.is_readable() {
            let n = drain(stream);
            if n > 0 {
                l.borrow_mut().push("readable");
                rt.close(id).unwrap();
            }
        }
    })
    .unwrap();
    let mut buf = [0u8; 4];
    let start = Instant::now();
    // Echo from a helper thread so the loop sees readable after the write.
    let echo = std::thread::spawn(move || {
        client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        client.read_exact(&mut buf).unwrap();
        client.write_all(&buf).unwrap();
        client
    });
    run_bounded(&mut rt, Duration::from_secs(10));
    drop(echo.join().unwrap());
    assert_eq!(*log.borrow(), ["writable", "readable"]);
    assert!(start.elapsed() < Duration::from_secs(10));
}

fn watch_once_returns_the_source<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (mut client, server) = pair();
    client.write_all(b"once").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    rt.watch_once(server, Interest::READABLE, move |rt, mut stream, ev| {
        assert!(ev.unwrap().is_readable());
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf).unwrap();
        g.borrow_mut().extend_from_slice(&buf);
        assert_eq!(rt.stats().registered, 0, "deregistered before the callback");
        // The source can be watched again at once.
        rt.watch_once(stream, Interest::WRITABLE, |_, _, ev| {
            assert!(ev.unwrap().is_writable())
        })
        .unwrap();
    })
    .unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(&*got.borrow(), b"once");
}

fn wake_watch_resumes_an_edge_watch<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (mut client, server) = pair();
    client.write_all(b"0123456789").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let opts = WatchOptions::new().timeout(Duration::from_secs(10));
    rt.watch_with(server, Interest::READABLE, opts, move |rt, id, stream, ev| {
        ev.unwrap();
        // One byte per turn: the rest stays in the kernel, which an edge-triggered registration
        // would not report again. wake_watch brings the callback back without the OS.
        let mut b = [0u8; 1];
        match stream.read(&mut b) {
            Ok(1) => {
                g.borrow_mut().push(b[0]);
                if g.borrow().len() == 10 {
                    rt.close(id).unwrap();
                } else {
                    rt.wake_watch(id).unwrap();
                }
            }
            other => panic!("unexpected read {other:?}"),
        }
    })
    .unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(&*got.borrow(), b"0123456789");
    assert_eq!(
        rt.wake_watch(portable_reactor::EventId(12345))
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );
}

fn pause_and_resume<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().high_watermark(1).build_with(reactor).unwrap();
    let (mut client, server) = pair();
    client.write_all(b"a").unwrap();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let opts = WatchOptions::new().timeout(Duration::from_secs(10));
    let id = rt
        .watch_with(server, Interest::READABLE, opts, move |rt, id, stream, ev| {
            ev.unwrap();
            c.set(c.get() + 1);
            drain(stream);
            if c.get() == 1 {
                rt.pause_watch(id).unwrap(); // from its own callback
            } else {
                rt.close(id).unwrap();
            }
        })
        .unwrap();
    // A second watch waits above the high watermark until the first pauses.
    let (_c2, s2) = pair();
    let queued = rt.watch(s2, Interest::READABLE, |_, _, _, _| {}).unwrap();
    rt.unref_watch(queued).unwrap();
    let client = Rc::new(RefCell::new(client));
    let (c, cl) = (calls.clone(), client.clone());
    rt.set_timeout(Duration::from_millis(100), move |rt| {
        // Paused: the data written meanwhile is not reported.
        assert_eq!(c.get(), 1);
        let s = rt.stats();
        assert_eq!(
            (s.registered, s.queued, s.paused),
            (1, 0, 1),
            "the queued watch took the place"
        );
        cl.borrow_mut().write_all(b"b").unwrap();
        let c = c.clone();
        rt.set_timeout(Duration::from_millis(50), move |rt| {
            assert_eq!(c.get(), 1, "still paused");
            rt.resume_watch(id).unwrap();
            assert_eq!(rt.stats().queued, 1, "resumed above the high watermark: queued");
            rt.close(queued).unwrap();
        });
    });
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(
        calls.get(),
        2,
        "resuming reported the data that came while paused"
    );
    assert_eq!(rt.stats().paused, 0);
}

fn paused_watch_still_times_out<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Runtime::builder().build_with(reactor).unwrap();
    let (_client, server) = pair();
    let outcome = Rc::new(RefCell::new(None));
    let o = outcome.clone();
    let opts = WatchOptions::new().timeout(Duration::from_millis(50));
    let id = rt
        .watch_with(server, Interest::READABLE, opts, move |_, _, _, ev| {
            *o.borrow_mut() = Some(ev.map(|_| ()).map_err(|e| e.kind()));
        })
        .unwrap();
    rt.pause_watch(id).unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(outcome.borrow_mut().take(), Some(Err(io::ErrorKind::TimedOut)));
    assert_eq!(rt.pause_watch(id).unwrap_err().kind(), io::ErrorKind::NotFound);
}

macro_rules! runtime_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn watermark_queues_then_refuses() { super::watermark_queues_then_refuses($make) }
            #[test] fn deadline_times_out_and_frees() { super::deadline_times_out_and_frees($make) }
            #[test] fn queued_watch_deadline_runs_while_waiting() { super::queued_watch_deadline_runs_while_waiting($make) }
            #[test] fn activity_pushes_the_deadline() { super::activity_pushes_the_deadline($make) }
            #[test] fn stale_ids_miss_after_slot_reuse() { super::stale_ids_miss_after_slot_reuse($make) }
            #[test] fn pool_panic_is_an_error_and_threads_survive() { super::pool_panic_is_an_error_and_threads_survive($make) }
            #[test] fn posts_coalesce_and_none_is_lost() { super::posts_coalesce_and_none_is_lost($make) }
            #[test] fn post_after_drop_is_an_error() { super::post_after_drop_is_an_error($make) }
            #[test] fn unref_and_stop() { super::unref_and_stop($make) }
            #[test] fn close_inside_callback_and_close_callback_order() { super::close_inside_callback_and_close_callback_order($make) }
            #[test] fn level_trigger_repeats_until_drained() { super::level_trigger_repeats_until_drained($make) }
            #[test] fn set_interest_switches_direction() { super::set_interest_switches_direction($make) }
            #[test] fn watch_once_returns_the_source() { super::watch_once_returns_the_source($make) }
            #[test] fn wake_watch_resumes_an_edge_watch() { super::wake_watch_resumes_an_edge_watch($make) }
            #[test] fn pause_and_resume() { super::pause_and_resume($make) }
            #[test] fn paused_watch_still_times_out() { super::paused_watch_still_times_out($make) }
        }
    )*};
}

runtime_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
    boxed_dyn => portable_reactor::reactor_by_name("mio").unwrap(),
}
