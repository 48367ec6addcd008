//! The runtime driven by another loop (libuv's `embed` test): tokio's current_thread runtime
//! watches our `backend_fd` with `AsyncFd` and calls `run_nowait` when it polls readable or
//! `backend_timeout` passes. Timers, I/O watches, tasks and posts from another thread all run.
//! Unix, epoll/kqueue backends (poll(2) has no backend descriptor).
#![cfg(unix)]

use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{Interest, MioReactor, PollingReactor, Reactor};
use tokio::io::unix::AsyncFd;

mod util;

/// A descriptor tokio watches but does not own (the reactor owns it).
struct Watched(RawFd);

impl AsRawFd for Watched {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

fn driven_by_tokio<R: Reactor + 'static>(reactor: R) {
    util::init_logging();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let Some(fd) = rt.backend_fd().map(|fd| fd.as_raw_fd()) else {
        log::info!(
            "{}: no backend descriptor (poll(2)): nothing to embed",
            rt.reactor().name()
        );
        return;
    };
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    rt.set_timeout(Duration::from_millis(30), move |_| l.borrow_mut().push("timer"));
    let (mut client, server) = util::tcp_pair();
    let l = log.clone();
    rt.watch(server, Interest::READABLE, move |rt, id, stream, ev| {
        ev.unwrap();
        let mut buf = [0; 8];
        if let Ok(n) = stream.read(&mut buf) {
            if n > 0 {
                l.borrow_mut().push("io");
                rt.close(id).unwrap();
            }
        }
    })
    .unwrap();
    let time = rt.time();
    let l = log.clone();
    drop(rt.spawn_local(async move {
        time.sleep(Duration::from_millis(10)).await;
        l.borrow_mut().push("task");
    }));
    let handle = rt.handle();
    let l = log.clone();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let poster = std::thread::spawn(move || {
        // Once the host loop runs: the write and the post must reach it through the descriptor.
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        client.write_all(b"x").unwrap();
        handle.post(|_| {}).unwrap();
        client
    });

    let host = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let wakes = host.block_on(async {
        // SAFETY: the descriptor is the reactor's, open for as long as `rt`, which outlives this
        // `AsyncFd` (dropped at the end of this block).
        let fd = unsafe { AsyncFd::register_with_interest(Watched(fd), tokio::io::Interest::READABLE) }
            .unwrap_or_else(|e| panic!("AsyncFd: {e}"));
        let mut wakes = 0;
        loop {
            let alive = rt.run_nowait().unwrap();
            let _ = started_tx.send(());
            if !alive {
                return wakes;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "still running: {:?}",
                l.borrow()
            );
            let wait = rt.backend_timeout().unwrap_or(Duration::from_secs(10));
            tokio::select! {
                biased;
                guard = fd.readable() => {
                    wakes += 1;
                    guard.unwrap().clear_ready();
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    });
    drop(poster.join().unwrap());
    let mut got = log.borrow().clone();
    got.sort();
    assert_eq!(got, ["io", "task", "timer"]);
    assert!(wakes >= 1, "the backend descriptor woke the host");
}

#[test]
fn polling() {
    driven_by_tokio(PollingReactor::new().unwrap());
}

#[test]
fn mio() {
    driven_by_tokio(MioReactor::new().unwrap());
}

#[test]
fn boxed_dyn_forwards_the_descriptor() {
    let direct = MioReactor::new().unwrap();
    assert!(direct.backend_fd().is_some());
    let boxed: Box<dyn Reactor> = Box::new(direct);
    assert!(boxed.backend_fd().is_some());
    let rt: Runtime<Box<dyn Reactor>> = Builder::new().build_with(boxed).unwrap();
    assert!(rt.backend_fd().is_some());
}
