//! The loop's run modes, stop, close-callback order and timer precision, as libuv has them.
//! Each body runs once per backend through `loop_mode_tests!`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Builder, Runtime, WatchOptions};
use portable_reactor::{Interest, MioReactor, PollingReactor, Reactor};

mod util;

use util::recording::Recording;
use util::{init_logging as init, run_bounded, tcp_pair};

/// The runtime asks the reactor to wait until the timer's exact deadline: not rounded up to a
/// millisecond once for the timer queue and again for the poll (that made every timer about a
/// millisecond late). The timer still never runs early.
fn poll_waits_for_the_exact_deadline<R: Reactor + 'static>(reactor: R) {
    init();
    let (reactor, polls) = Recording::new(reactor);
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let delay = Duration::from_micros(10_300);
    let fired = Rc::new(RefCell::new(None));
    let f = fired.clone();
    let set = Instant::now();
    rt.set_timeout(delay, move |_| *f.borrow_mut() = Some(Instant::now()));
    // Time that passes before the loop starts shortens the first wait (a loaded host, Wine).
    let lag = set.elapsed();
    run_bounded(&mut rt, Duration::from_secs(10));
    let at = fired.borrow().expect("the timer ran");
    assert!(
        at - set >= delay,
        "ran {:?} after it was set, before its delay",
        at - set
    );
    let polls = polls.lock().unwrap();
    let first = polls[0].expect("a bounded wait");
    assert!(
        first <= delay && first > delay.saturating_sub(lag + Duration::from_millis(5)),
        "the first poll waited {first:?} for a timer due in {delay:?}, {lag:?} after it was set (all polls: {polls:?})"
    );
}

/// Timers due within the same millisecond run in one iteration (batched, as in libuv), in the
/// order they were set, none before its delay.
fn timers_of_one_millisecond_run_together<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let delay = Duration::from_millis(20);
    for i in 0..50 {
        let l = log.clone();
        let set = Instant::now();
        rt.set_timeout(delay, move |rt| {
            l.borrow_mut().push((i, rt.stats().ticks, set.elapsed()))
        });
    }
    run_bounded(&mut rt, Duration::from_secs(10));
    let log = log.borrow();
    let order: Vec<_> = log.iter().map(|e| e.0).collect();
    assert_eq!(order, (0..50).collect::<Vec<_>>());
    assert!(log.iter().all(|e| e.2 >= delay), "none early: {log:?}");
    let mut ticks: Vec<_> = log.iter().map(|e| e.1).collect();
    ticks.dedup();
    // Set within microseconds of each other, the deadlines span at most two milliseconds.
    assert!(ticks.len() <= 2, "batched into at most two iterations: {ticks:?}");
}

/// libuv `timer_run_once`: a 0 ms timer runs within one `run_once`, which blocks for it.
fn run_once_runs_the_timer_it_waited_for<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let count = Rc::new(RefCell::new(0));
    let c = count.clone();
    rt.set_timeout(Duration::ZERO, move |_| *c.borrow_mut() += 1);
    let alive = rt.run_once().unwrap();
    assert_eq!((*count.borrow(), alive), (1, false), "(callbacks run, alive)");
    let c = count.clone();
    rt.set_timeout(Duration::from_millis(2), move |_| *c.borrow_mut() += 1);
    let alive = rt.run_once().unwrap();
    assert_eq!((*count.borrow(), alive), (2, false));
}

/// `run_nowait` never blocks: a pending 1 s timer stays pending and the loop stays alive.
fn run_nowait_never_blocks<R: Reactor + 'static>(reactor: R) {
    init();
    let (reactor, polls) = Recording::new(reactor);
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let count = Rc::new(RefCell::new(0));
    let c = count.clone();
    rt.set_timeout(Duration::from_secs(1), move |_| *c.borrow_mut() += 1);
    let (mut client, server) = tcp_pair();
    let seen = Rc::new(RefCell::new(0));
    let s = seen.clone();
    rt.watch(server, Interest::READABLE, move |_, _, stream, ev| {
        ev.unwrap();
        *s.borrow_mut() += util::drain(stream);
    })
    .unwrap();
    use std::io::Write;
    client.write_all(b"ping").unwrap();
    let start = Instant::now();
    let mut rounds = 0;
    while *seen.borrow() < 4 && start.elapsed() < Duration::from_secs(10) {
        assert!(rt.run_nowait().unwrap(), "still alive");
        rounds += 1;
        if rounds % 64 == 0 {
            std::thread::yield_now();
        }
    }
    assert_eq!(*seen.borrow(), 4, "ready I/O is dispatched");
    assert_eq!(*count.borrow(), 0);
    assert!(
        polls.lock().unwrap().iter().all(|t| *t == Some(Duration::ZERO)),
        "every poll was non-blocking"
    );
}

/// libuv `loop_stop_before_run`: `stop` before `run` makes it return at once, running nothing;
/// the next `run` goes on.
fn stop_before_run_returns_at_once<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let count = Rc::new(RefCell::new(0));
    let c = count.clone();
    rt.set_timeout(Duration::ZERO, move |_| *c.borrow_mut() += 1);
    let c = count.clone();
    rt.next_tick(move |_| *c.borrow_mut() += 10);
    rt.stop();
    rt.run().unwrap();
    assert_eq!(*count.borrow(), 0, "nothing ran");
    assert!(rt.is_alive(), "work is left");
    run_bounded(&mut rt, Duration::from_secs(10));
    assert_eq!(*count.borrow(), 11, "the next run goes on");
    rt.stop();
    assert!(!rt.run_once().unwrap());
}

/// Close callbacks of one iteration run last in, first out, as libuv's (and Node's); one
/// queued by a close callback waits for the next iteration.
fn close_callbacks_run_last_in_first_out<R: Reactor + 'static>(reactor: R) {
    init();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut ids = Vec::new();
    let mut keep = Vec::new();
    for _ in 0..3 {
        let (client, server) = tcp_pair();
        keep.push(client);
        ids.push(rt.watch(server, Interest::READABLE, |_, _, _, _| {}).unwrap());
    }
    let (_late_client, late) = tcp_pair();
    let late = rt.watch(late, Interest::READABLE, |_, _, _, _| {}).unwrap();
    let l = log.clone();
    rt.set_immediate(move |rt| {
        for (i, id) in ids.into_iter().enumerate() {
            let l = l.clone();
            rt.close_with(id, move |rt| {
                l.borrow_mut()
                    .push(format!("close {i} tick {}", rt.stats().ticks));
                if i == 2 {
                    let l = l.clone();
                    rt.close_with(late, move |rt| {
                        l.borrow_mut().push(format!("late tick {}", rt.stats().ticks))
                    })
                    .unwrap();
                }
            })
            .unwrap();
        }
    });
    run_bounded(&mut rt, Duration::from_secs(10));
    let log = log.borrow();
    assert_eq!(log.len(), 4, "{log:?}");
    let tick = |s: &str| s.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    let names: Vec<_> = log.iter().map(|s| s.rsplit_once(" tick").unwrap().0).collect();
    assert_eq!(names, ["close 2", "close 1", "close 0", "late"], "{log:?}");
    assert_eq!(tick(&log[0]), tick(&log[2]), "one iteration: {log:?}");
    assert_eq!(tick(&log[3]), tick(&log[0]) + 1, "the next iteration: {log:?}");
}

/// The poll phase counts its timeout from the clock read it was computed from
/// (`Reactor::poll_from`), so the backend reads the clock no more: an idle deadline's wait
/// counts from the loop time, a timer's from the fresh read the runtime made for it. The
/// deadline still never fires early.
fn the_wait_counts_from_the_loop_time<R: Reactor + 'static>(reactor: R) {
    init();
    let (reactor, polls) = Recording::new(reactor);
    let froms = reactor.froms.clone();
    let mut rt = Builder::new().build_with(reactor).unwrap();
    let (_client, server) = tcp_pair();
    let idle = Duration::from_millis(30);
    let ended = Rc::new(RefCell::new(None));
    let e = ended.clone();
    let set = Instant::now();
    rt.watch_with(
        server,
        Interest::READABLE,
        WatchOptions::new().timeout(idle),
        move |_, _, _, ev| {
            *e.borrow_mut() = Some((Instant::now(), ev.map(drop).map_err(|e| e.kind())));
        },
    )
    .unwrap();
    let loop_time = rt.now();
    while ended.borrow().is_none() {
        assert!(
            set.elapsed() < Duration::from_secs(10),
            "the deadline never passed"
        );
        rt.run_once().unwrap();
    }
    let (at, result) = ended.borrow().unwrap();
    assert_eq!(result, Err(std::io::ErrorKind::TimedOut));
    assert!(
        at - set >= idle,
        "the deadline passed {:?} after it was set",
        at - set
    );
    assert_eq!(
        froms.lock().unwrap().first().copied(),
        Some(loop_time),
        "the first wait counts from the loop time (polls: {:?})",
        polls.lock().unwrap()
    );
    // A timer's wait counts from a clock read made for it, not from the older loop time.
    rt.set_timeout(Duration::from_millis(5), |_| {});
    let before = Instant::now();
    rt.run_once().unwrap();
    let last = *froms.lock().unwrap().last().unwrap();
    assert!(
        last >= before,
        "the timer's wait counted from {:?} before the run",
        before - last
    );
}

macro_rules! loop_mode_tests {
    ($($backend:ident => $make:expr),* $(,)?) => {$(
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            #[test] fn poll_waits_for_the_exact_deadline() { super::poll_waits_for_the_exact_deadline($make) }
            #[test] fn timers_of_one_millisecond_run_together() { super::timers_of_one_millisecond_run_together($make) }
            #[test] fn run_once_runs_the_timer_it_waited_for() { super::run_once_runs_the_timer_it_waited_for($make) }
            #[test] fn run_nowait_never_blocks() { super::run_nowait_never_blocks($make) }
            #[test] fn stop_before_run_returns_at_once() { super::stop_before_run_returns_at_once($make) }
            #[test] fn close_callbacks_run_last_in_first_out() { super::close_callbacks_run_last_in_first_out($make) }
            #[test] fn the_wait_counts_from_the_loop_time() { super::the_wait_counts_from_the_loop_time($make) }
        }
    )*};
}

loop_mode_tests! {
    polling => PollingReactor::new().unwrap(),
    mio => MioReactor::new().unwrap(),
}

#[test]
fn runtime_new_has_run_modes() {
    // The default reactor too, without the wrapper.
    let mut rt = Runtime::new().unwrap();
    rt.set_timeout(Duration::ZERO, |_| {});
    assert!(!rt.run_once().unwrap());
}
