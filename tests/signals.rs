//! Signal watchers (`portable_reactor::signal`): deliveries to several watchers, stop, unref,
//! coalescing, the poll phase, refused numbers, and the graceful shutdown of
//! `examples/graceful_shutdown.rs` in a child process. Each body runs once per backend through
//! `signal_tests!`. Signals are process-wide, so the tests take turns (`serial`).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use portable_reactor::runtime::{Builder, Runtime};
use portable_reactor::{signal, MioReactor, PollingReactor, Reactor};

mod util;

#[path = "../examples/graceful_shutdown.rs"]
mod graceful_shutdown;

use util::{init_logging as init, run_bounded};

const LIMIT: Duration = Duration::from_secs(10);

/// The signal the in-process tests raise: one nobody else in this process uses.
#[cfg(unix)]
const SIG: i32 = signal::SIGUSR1;
#[cfg(windows)]
const SIG: i32 = signal::SIGINT;

/// Whether deliveries can be tested here. Not under Wine: its msvcrt has no `SIG_GET`, so
/// signal-hook-registry's first `signal(sig, SIG_GET)` (to learn the previous handler)
/// installs the value 2 as a handler, which it later calls (a page fault at address 2). Real
/// Windows CRTs support `SIG_GET`.
fn deliveries_testable() -> bool {
    if util::under_wine() {
        eprintln!("skipped under Wine: its msvcrt lacks SIG_GET, which signal-hook-registry needs");
        return false;
    }
    true
}

/// Tests raising signals take turns: a delivery reaches every watcher in the process.
fn serial() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    Builder::new().build_with(reactor).expect("runtime")
}

/// Three watchers of one signal each get one delivery of one `raise`.
fn each_watcher_gets_each_delivery<R: Reactor + 'static>(reactor: R) {
    init();
    if !deliveries_testable() {
        return;
    }
    let _turn = serial();
    let mut rt = runtime(reactor);
    let counts = Rc::new(RefCell::new(vec![0; 3]));
    for i in 0..3 {
        let counts = counts.clone();
        signal::watch(&mut rt, SIG, move |rt, watcher, result| {
            assert_eq!(result.unwrap(), SIG);
            assert_eq!(watcher.signal(), SIG);
            counts.borrow_mut()[i] += 1;
            watcher.stop(rt);
        })
        .unwrap();
    }
    signal::raise(SIG).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*counts.borrow(), [1, 1, 1]);
    assert_eq!(rt.stats().registered, 0, "stopped watchers leave no watch");
}

/// A stopped watcher gets nothing; the others still get the signal.
fn stopped_watcher_gets_nothing<R: Reactor + 'static>(reactor: R) {
    init();
    if !deliveries_testable() {
        return;
    }
    let _turn = serial();
    let mut rt = runtime(reactor);
    let stopped_calls = Rc::new(Cell::new(0));
    let c = stopped_calls.clone();
    let stopped = signal::watch(&mut rt, SIG, move |_, _, _| c.set(c.get() + 1)).unwrap();
    let other_calls = Rc::new(Cell::new(0));
    let c = other_calls.clone();
    signal::watch(&mut rt, SIG, move |rt, watcher, _| {
        c.set(c.get() + 1);
        watcher.stop(rt);
    })
    .unwrap();
    stopped.stop(&mut rt);
    stopped.stop(&mut rt); // twice: nothing
    assert_eq!(
        stopped.unref(&mut rt).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    signal::raise(SIG).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!((stopped_calls.get(), other_calls.get()), (0, 1));
}

/// An unref'd watcher lets `run` return at once, and still gets deliveries while the loop
/// runs for something else.
fn unref_lets_run_return<R: Reactor + 'static>(reactor: R) {
    init();
    if !deliveries_testable() {
        return;
    }
    let _turn = serial();
    let mut rt = runtime(reactor);
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let keepalive = Rc::new(Cell::new(None));
    let k = keepalive.clone();
    let watcher = signal::watch(&mut rt, SIG, move |rt, _, _| {
        c.set(c.get() + 1);
        if let Some(timer) = k.take() {
            rt.clear_timer(timer);
        }
    })
    .unwrap();
    watcher.unref(&mut rt).unwrap();
    run_bounded(&mut rt, LIMIT); // returns: only an unref'd watcher is left
    assert_eq!(calls.get(), 0);
    assert!(!rt.is_alive());

    keepalive.set(Some(
        rt.set_timeout(LIMIT * 2, |_| panic!("the signal never came")),
    ));
    signal::raise(SIG).unwrap();
    run_bounded(&mut rt, LIMIT);
    assert_eq!(calls.get(), 1);
    watcher.ref_(&mut rt).unwrap();
    assert!(rt.is_alive(), "a ref'd watcher keeps the loop alive");
    watcher.stop(&mut rt);
    assert!(!rt.is_alive());
}

/// Deliveries before the loop reads them coalesce into one callback (as in libuv); a later
/// delivery gives another. The callback runs in the poll phase: before the check phase's
/// immediates queued with it.
fn repeated_signals_coalesce<R: Reactor + 'static>(reactor: R) {
    init();
    if !deliveries_testable() {
        return;
    }
    let _turn = serial();
    let mut rt = runtime(reactor);
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    signal::watch(&mut rt, SIG, move |rt, watcher, _| {
        let n = l.borrow().iter().filter(|e| **e == "signal").count();
        l.borrow_mut().push("signal");
        if n == 0 {
            signal::raise(SIG).unwrap();
        } else {
            watcher.stop(rt);
        }
    })
    .unwrap();
    for _ in 0..5 {
        signal::raise(SIG).unwrap();
    }
    let l = log.clone();
    rt.set_immediate(move |_| l.borrow_mut().push("immediate"));
    run_bounded(&mut rt, LIMIT);
    assert_eq!(*log.borrow(), ["signal", "immediate", "signal"]);
}

/// A signal sent from another thread while the loop blocks wakes it.
fn delivery_wakes_a_blocked_loop<R: Reactor + 'static>(reactor: R) {
    init();
    if !deliveries_testable() {
        return;
    }
    let _turn = serial();
    let mut rt = runtime(reactor);
    let loop_thread = std::thread::current().id();
    let got = Rc::new(Cell::new(false));
    let g = got.clone();
    signal::watch(&mut rt, SIG, move |rt, watcher, _| {
        assert_eq!(std::thread::current().id(), loop_thread);
        g.set(true);
        watcher.stop(rt);
    })
    .unwrap();
    // Raised once the loop runs: from a timer's thread-hop, so the loop is in its poll.
    let handle = rt.handle();
    rt.set_timeout(Duration::from_millis(20), move |_| {
        std::thread::spawn(move || {
            signal::raise(SIG).unwrap();
            drop(handle);
        });
    });
    run_bounded(&mut rt, LIMIT);
    assert!(got.get());
}

/// Numbers that are not signals and forbidden signals are `InvalidInput` (never a panic);
/// on Windows, signals it does not deliver are `Unsupported`.
fn refused_signals<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = runtime(reactor);
    let kind = |rt: &mut Runtime<R>, sig| signal::watch(rt, sig, |_, _, _| {}).unwrap_err().kind();
    for sig in [0, -1, 65, i32::MAX, i32::MIN] {
        assert_eq!(kind(&mut rt, sig), io::ErrorKind::InvalidInput, "signal {sig}");
    }
    for &sig in signal::FORBIDDEN {
        assert_eq!(
            kind(&mut rt, sig),
            io::ErrorKind::InvalidInput,
            "forbidden signal {sig}"
        );
    }
    #[cfg(unix)]
    for sig in [9, 19, 11] {
        assert_eq!(kind(&mut rt, sig), io::ErrorKind::InvalidInput, "signal {sig}");
    }
    #[cfg(windows)]
    for sig in [1, 3, 9, 10, 17] {
        assert_eq!(
            kind(&mut rt, sig),
            io::ErrorKind::Unsupported,
            "signal {sig} on Windows"
        );
    }
    assert_eq!(rt.stats().registered, 0);
}

macro_rules! signal_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn each_watcher_gets_each_delivery() { super::each_watcher_gets_each_delivery($make) }
            #[test] fn stopped_watcher_gets_nothing() { super::stopped_watcher_gets_nothing($make) }
            #[test] fn unref_lets_run_return() { super::unref_lets_run_return($make) }
            #[test] fn repeated_signals_coalesce() { super::repeated_signals_coalesce($make) }
            #[test] fn delivery_wakes_a_blocked_loop() { super::delivery_wakes_a_blocked_loop($make) }
            #[test] fn refused_signals() { super::refused_signals($make) }
            #[cfg(unix)]
            #[test] fn graceful_shutdown_on_sigterm() { super::graceful::shutdown(stringify!($backend)) }
        }
    )*};
}

signal_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}

#[cfg(unix)]
#[path = "signals/graceful.rs"]
mod graceful;
