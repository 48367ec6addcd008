//! The runtime under faults and bad input: a panicking callback, ids from another runtime, a
//! flood of posts, a zero deadline. Each body runs once per backend through `fault_tests!`.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use portable_reactor::net::udp;
use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{Interest, MioReactor, PollingReactor, Reactor};

mod util;

use util::{init_logging as init, run_bounded, tcp_pair};

/// The descriptor number of a Unix socket (`None` elsewhere: Windows handles are not reused
/// the same way).
#[cfg(unix)]
fn descriptor<S: std::os::fd::AsRawFd>(socket: &S) -> Option<i64> {
    Some(socket.as_raw_fd().into())
}

#[cfg(not(unix))]
fn descriptor<S>(_: &S) -> Option<i64> {
    None
}

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    Builder::new().build_with(reactor).expect("runtime")
}

/// A watch callback that panics ends its watch (deregistered, slot freed) before the panic
/// reaches the caller of `run_once`; a new socket (on Unix, with the same descriptor number)
/// can be watched, and the loop runs on.
fn panicking_callback_closes_its_watch<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let (mut client, server) = tcp_pair();
    let fd = descriptor(&server);
    rt.watch(server, Interest::READABLE, |_, _, _, _| panic!("callback fails"))
        .unwrap();
    client.write_all(b"x").unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        for _ in 0..1000 {
            rt.run_once().unwrap();
        }
    }));
    let payload = caught.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"callback fails"));
    assert_eq!(rt.stats().registered, 0, "the watch is gone: {:?}", rt.stats());
    assert!(!rt.is_alive());

    // A new source that gets the freed descriptor number (on Unix; other tests run in
    // parallel, so look for it among a few fresh sockets).
    let mut spare = Vec::new();
    let listener = loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        if descriptor(&l) == fd || spare.len() >= 256 {
            break l;
        }
        spare.push(l);
    };
    log::info!("descriptor {fd:?} reused: {}", descriptor(&listener) == fd);
    drop(spare);
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Rc::new(RefCell::new(false));
    let g = got.clone();
    rt.watch(listener, Interest::READABLE, move |rt, id, listener, ev| {
        ev.unwrap();
        if listener.accept().is_ok() {
            *g.borrow_mut() = true;
            rt.close(id).unwrap();
        }
    })
    .expect("a new source with the same descriptor registers");
    let _client2 = TcpStream::connect(addr).unwrap();
    run_bounded(&mut rt, Duration::from_secs(10));
    assert!(*got.borrow(), "the new watch works");
    drop(client);
}

/// Ids from another runtime miss: `clear_timer` is false and leaves this runtime's timer, and
/// every watch method gives `NotFound` and leaves this runtime's watch.
fn foreign_ids_miss<R: Reactor + 'static>(make: impl Fn() -> R) {
    init();
    let mut a = runtime(make());
    let mut b = runtime(make());
    let fired = Rc::new(RefCell::new(0));
    let f = fired.clone();
    a.set_timeout(Duration::from_millis(1), move |_| *f.borrow_mut() += 1);
    let b_timer = b.set_timeout(Duration::from_millis(1), |_| {});
    assert!(!a.clear_timer(b_timer), "a foreign timer id misses");
    assert!(!a.unref_timer(b_timer));
    let b_interval = b.set_interval(Duration::from_millis(1), |_| {});
    assert!(!a.clear_timer(b_interval));

    let (_ca, sa) = tcp_pair();
    let (_cb, sb) = tcp_pair();
    let a_id = a.watch(sa, Interest::READABLE, |_, _, _, _| {}).unwrap();
    let b_id = b.watch(sb, Interest::READABLE, |_, _, _, _| {}).unwrap();
    let kinds = [
        a.close(b_id).map_err(|e| e.kind()),
        a.pause_watch(b_id).map_err(|e| e.kind()),
        a.resume_watch(b_id).map_err(|e| e.kind()),
        a.set_interest(b_id, Interest::WRITABLE).map_err(|e| e.kind()),
        a.wake_watch(b_id).map_err(|e| e.kind()),
        a.unref_watch(b_id).map_err(|e| e.kind()),
        a.set_watch_timeout(b_id, None).map_err(|e| e.kind()),
    ];
    assert!(
        kinds.iter().all(|k| *k == Err(io::ErrorKind::NotFound)),
        "{kinds:?}"
    );
    assert_eq!(a.stats().registered, 1, "a's watch is untouched");
    a.close(a_id).unwrap();
    b.close(b_id).unwrap();
    b.clear_timer(b_interval);
    run_bounded(&mut a, Duration::from_secs(10));
    assert_eq!(*fired.borrow(), 1, "a's timer still ran");
}

/// Posts beyond the builder's limit fail with `QuotaExceeded` (the callback dropped unrun);
/// once the loop has taken the waiting ones, posts go again; none accepted is lost.
fn posts_beyond_the_limit_are_refused<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().post_limit(100).build_with(reactor).unwrap();
    let handle = rt.handle();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let post = |n: usize| {
        (0..n)
            .map(|_| {
                let ran = ran.clone();
                handle.post(move |_| {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect::<Vec<_>>()
    };
    let first = post(150);
    assert!(first[..100].iter().all(|r| r.is_ok()));
    let refused: Vec<_> = first[100..]
        .iter()
        .map(|r| r.as_ref().unwrap_err().kind())
        .collect();
    assert!(
        refused.iter().all(|k| *k == io::ErrorKind::QuotaExceeded),
        "{refused:?}"
    );
    // Keep the loop alive for one iteration's poll phase, which drains the inbox.
    rt.set_immediate(|_| {});
    rt.run_once().unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 100);
    assert!(
        post(100).iter().all(|r| r.is_ok()),
        "room again after the loop ran"
    );
    rt.set_immediate(|_| {});
    rt.run_once().unwrap();
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 200);
}

/// A zero deadline is refused with `InvalidInput` everywhere one can be given, rather than
/// timing every watch out at once; the explicit opt-out is `no_timeout`.
fn zero_deadline_is_refused<R: Reactor + 'static>(make: impl Fn() -> R) {
    init();
    let err = Builder::new()
        .io_timeout(Duration::ZERO)
        .build_with(make())
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    let err = Builder::new().post_limit(0).build_with(make()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

    let mut rt = runtime(make());
    let (_c, server) = tcp_pair();
    let zero = WatchOptions::new().timeout(Duration::ZERO);
    let err = rt
        .watch_with(server, Interest::READABLE, zero, |_, _, _, _| {})
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    assert_eq!(rt.stats().registered, 0);

    let (_c, server) = tcp_pair();
    let timed_out = Rc::new(RefCell::new(None));
    let t = timed_out.clone();
    let opts = WatchOptions::new().timeout(Duration::from_millis(30));
    let id = rt
        .watch_with(server, Interest::READABLE, opts, move |_, _, _, ev| {
            *t.borrow_mut() = Some(ev.map(|_| ()).map_err(|e| e.kind()));
        })
        .unwrap();
    let err = rt.set_watch_timeout(id, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

    let err = udp::bind(
        &mut rt,
        "127.0.0.1:0".parse().unwrap(),
        udp::UdpOptions::new().watch(zero),
        |_, _, _| {},
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");

    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(
        *timed_out.borrow(),
        Some(Err(io::ErrorKind::TimedOut)),
        "the watch kept its deadline"
    );
}

macro_rules! fault_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn panicking_callback_closes_its_watch() { super::panicking_callback_closes_its_watch($make) }
            #[test] fn foreign_ids_miss() { super::foreign_ids_miss(|| $make) }
            #[test] fn posts_beyond_the_limit_are_refused() { super::posts_beyond_the_limit_are_refused($make) }
            #[test] fn zero_deadline_is_refused() { super::zero_deadline_is_refused(|| $make) }
        }
    )*};
}

fault_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}
