//! Node's observable ordering, checked against traces recorded from the real Node.js.
//!
//! Every scenario is a small Node script in `tests/node/<scenario>.js` whose stdout was recorded
//! in `tests/node/expected/<scenario>.txt` (see `tests/node/README.md` for the Node version and
//! how). Here the same program runs on our runtime, once per backend, and its trace must equal
//! the recorded one line for line. `node_scripts_still_match_expected` re-runs the scripts when
//! `node` is on PATH, so the expected files stay honest.
//!
//! Only orderings are asserted, never durations (except the lower bound of "a timeout never
//! fires early", which is correctness). Timing-dependent scenarios are built so that the order
//! does not depend on scheduling noise: a busy-wait inside a callback (the "long synchronous
//! callback" of the scenario) makes timers due for sure, and where two timers race, their
//! deadlines are tens of milliseconds apart or both are overdue (then deadline order decides).
//! No sleeps are used for synchronisation; a watchdog stops a loop that runs too long.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use portable_reactor::runtime::{Builder, ImmediateId, Runtime, TimerId, WatchOptions};
use portable_reactor::{Interest, Reactor};

mod util;

/// A loop that runs longer than this is stopped and the test fails.
const WATCHDOG: Duration = Duration::from_secs(20);
/// The deadline of every I/O watch in these tests.
const IO_DEADLINE: Duration = Duration::from_secs(5);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The trace a scenario writes, one line per step (as the Node script prints them).
#[derive(Clone, Default)]
struct Trace(Rc<RefCell<Vec<String>>>);

impl Trace {
    fn log(&self, line: impl Into<String>) {
        self.0.borrow_mut().push(line.into());
    }

    /// A callback that logs `line`.
    fn logger<Rt>(&self, line: &'static str) -> impl FnOnce(&mut Rt) + 'static {
        let trace = self.clone();
        move |_| trace.log(line)
    }

    fn lines(&self) -> Vec<String> {
        self.0.borrow().clone()
    }
}

/// Spins for `d`: the "long synchronous callback" of a scenario, never synchronisation.
fn busy(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

fn runtime<R: Reactor + 'static>(reactor: R) -> Runtime<R> {
    util::init_logging();
    Builder::new()
        .threads(1)
        .build_with(reactor)
        .expect("build the runtime")
}

/// Runs the loop to the end; a watchdog thread stops it (and fails the test) after [`WATCHDOG`].
fn run<R: Reactor + 'static>(rt: &mut Runtime<R>) {
    util::run_bounded(rt, WATCHDOG);
}

/// A connected loopback TCP pair: the client has written one byte, so the (non-blocking)
/// server end is readable. TCP rather than a socketpair so the tests also run on Windows.
fn readable_pair() -> (TcpStream, TcpStream) {
    let (mut client, server) = util::tcp_pair();
    client.write_all(b"x").expect("write");
    (client, server)
}

fn io_options() -> WatchOptions {
    WatchOptions::new().timeout(IO_DEADLINE)
}

/// Runs `on_io` from the poll phase: in the callback of a one-shot readable watch.
fn on_readable<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    trace: &Trace,
    on_io: impl FnOnce(&mut Runtime<R>) + 'static,
) -> TcpStream {
    let (client, server) = readable_pair();
    let t = trace.clone();
    rt.watch_once_with(
        server,
        Interest::READABLE,
        io_options(),
        move |rt, server, event| {
            match event {
                Ok(_) => on_io(rt),
                Err(e) => t.log(format!("io error: {e}")),
            }
            drop(server);
        },
    )
    .expect("watch");
    client
}

// ---- the scenarios: each mirrors tests/node/<name>.js line for line ----------------------

fn timers_insertion_order<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    rt.set_timeout(ms(20), trace.logger("timer A"));
    rt.set_timeout(ms(60), trace.logger("timer X"));
    rt.set_timeout(ms(20), trace.logger("timer B"));
    rt.set_timeout(ms(20), trace.logger("timer C"));
    rt.set_timeout(ms(20), trace.logger("timer D"));
    run(&mut rt);
    trace.lines()
}

fn timers_collected_before_run<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    rt.set_timeout(Duration::ZERO, move |rt| {
        t.log("timer A");
        rt.set_timeout(Duration::ZERO, t.logger("timer B (set in A)"));
        rt.set_immediate(t.logger("immediate (set in A)"));
    });
    rt.set_timeout(Duration::ZERO, trace.logger("timer C"));
    // As in the Node script (where it removes a millisecond-clock race); harmless here.
    busy(ms(5));
    run(&mut rt);
    trace.lines()
}

fn timer_cleared_in_batch<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let b: Rc<Cell<Option<TimerId>>> = Rc::default();
    let (t, b2) = (trace.clone(), b.clone());
    rt.set_timeout(ms(20), move |rt| {
        t.log("timer A clears B");
        assert!(rt.clear_timer(b2.get().expect("B is set")), "B was still pending");
    });
    b.set(Some(rt.set_timeout(ms(20), trace.logger("timer B"))));
    rt.set_timeout(ms(20), trace.logger("timer C"));
    let (t, n) = (trace.clone(), Cell::new(0));
    let iv: Rc<Cell<Option<TimerId>>> = Rc::default();
    let iv2 = iv.clone();
    iv.set(Some(rt.set_interval(ms(30), move |rt| {
        n.set(n.get() + 1);
        t.log(format!("interval {}", n.get()));
        if n.get() == 2 {
            assert!(rt.clear_timer(iv2.get().expect("interval id")));
        }
    })));
    run(&mut rt);
    trace.lines()
}

fn io_immediate_before_timeout<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    let _client = on_readable(&mut rt, &trace, move |rt| {
        t.log("io");
        rt.set_timeout(Duration::ZERO, t.logger("timeout"));
        rt.set_immediate(t.logger("immediate"));
    });
    run(&mut rt);
    trace.lines()
}

fn immediate_in_check_phase<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    let _client = on_readable(&mut rt, &trace, move |rt| {
        t.log("io");
        rt.set_timeout(Duration::ZERO, t.logger("timeout T"));
        let t1 = t.clone();
        rt.set_immediate(move |rt| {
            t1.log("immediate 1");
            rt.set_immediate(t1.logger("immediate 3 (set in 1)"));
            busy(ms(5));
        });
        rt.set_immediate(t.logger("immediate 2"));
    });
    run(&mut rt);
    trace.lines()
}

fn interval_no_catch_up<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let (t, n) = (trace.clone(), Cell::new(0));
    let iv: Rc<Cell<Option<TimerId>>> = Rc::default();
    let iv2 = iv.clone();
    iv.set(Some(rt.set_interval(ms(100), move |rt| {
        n.set(n.get() + 1);
        t.log(format!("interval {}", n.get()));
        match n.get() {
            1 => {
                rt.set_timeout(ms(150), t.logger("timeout A"));
                busy(ms(200));
            }
            2 => {
                rt.set_timeout(ms(50), t.logger("timeout B"));
            }
            _ => {
                rt.clear_timer(iv2.get().expect("interval id"));
            }
        }
    })));
    run(&mut rt);
    trace.lines()
}

fn overdue_deadline_order<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    rt.set_timeout(ms(10), move |_| {
        t.log("timer long (10 ms) starts");
        busy(ms(150));
        t.log("timer long ends");
    });
    rt.set_timeout(ms(80), trace.logger("timer 80"));
    rt.set_timeout(ms(40), trace.logger("timer 40"));
    rt.set_timeout(ms(120), trace.logger("timer 120"));
    rt.set_timeout(ms(60), trace.logger("timer 60"));
    run(&mut rt);
    trace.lines()
}

/// Unlike the Node script (which allows Node's 1 ms clock truncation), the exact delay.
fn timeout_never_early<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    for delay in [1, 7, 30] {
        let t = trace.clone();
        let start = Instant::now();
        rt.set_timeout(ms(delay), move |_| {
            let elapsed = start.elapsed();
            if elapsed >= ms(delay) {
                t.log(format!("timeout {delay} ms not early"));
            } else {
                t.log(format!("timeout {delay} ms EARLY ({elapsed:?})"));
            }
        });
    }
    run(&mut rt);
    trace.lines()
}

fn close_after_immediate<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let (_client, server) = readable_pair();
    let t = trace.clone();
    let mut seen = false;
    rt.watch_with(
        server,
        Interest::READABLE,
        io_options(),
        move |rt, id, _, event| {
            if let Err(e) = event {
                t.log(format!("io error: {e}"));
                return;
            }
            if std::mem::replace(&mut seen, true) {
                return;
            }
            t.log("io");
            rt.close_with(id, t.logger("close")).expect("close_with");
            rt.set_immediate(t.logger("immediate"));
            rt.next_tick(t.logger("tick"));
        },
    )
    .expect("watch");
    run(&mut rt);
    trace.lines()
}

fn next_tick_between_timers<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    rt.set_timeout(ms(20), move |rt| {
        t.log("timer A");
        let t = t.clone();
        rt.next_tick(move |rt| {
            t.log("tick A");
            rt.next_tick(t.logger("tick A (nested)"));
        });
    });
    let t = trace.clone();
    rt.set_timeout(ms(20), move |rt| {
        t.log("timer B");
        rt.next_tick(t.logger("tick B"));
    });
    rt.next_tick(trace.logger("tick main"));
    run(&mut rt);
    trace.lines()
}

fn next_tick_before_immediate<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    rt.set_timeout(ms(10), move |rt| {
        t.log("timer");
        let t1 = t.clone();
        rt.set_immediate(move |rt| {
            t1.log("immediate 1");
            rt.next_tick(t1.logger("tick (set in immediate 1)"));
        });
        rt.set_immediate(t.logger("immediate 2"));
        rt.next_tick(t.logger("tick (set in timer)"));
    });
    run(&mut rt);
    trace.lines()
}

fn clear_immediate<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    rt.set_timeout(ms(10), move |rt| {
        t.log("timer");
        let i3: Rc<Cell<Option<ImmediateId>>> = Rc::default();
        let (t1, i3b) = (t.clone(), i3.clone());
        rt.set_immediate(move |rt| {
            t1.log("immediate 1 clears 3");
            assert!(rt.clear_immediate(i3b.get().expect("i3 is set")), "3 was pending");
        });
        rt.set_immediate(t.logger("immediate 2"));
        i3.set(Some(rt.set_immediate(t.logger("immediate 3"))));
        rt.set_immediate(t.logger("immediate 4"));
        let i5 = rt.set_immediate(t.logger("immediate 5"));
        assert!(rt.clear_immediate(i5), "5 was pending");
    });
    run(&mut rt);
    trace.lines()
}

fn unref_timer<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let u = rt.set_timeout(ms(10), trace.logger("unref timer 10"));
    assert!(rt.unref_timer(u));
    rt.set_timeout(ms(40), trace.logger("timer 40"));
    let u = rt.set_timeout(ms(1000), trace.logger("unref timer 1000"));
    assert!(rt.unref_timer(u));
    run(&mut rt);
    trace.log("exit");
    trace.lines()
}

fn nested_timers<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    let t = trace.clone();
    rt.set_timeout(ms(10), move |rt| {
        t.log("timer outer 10");
        let t = t.clone();
        rt.set_timeout(ms(10), move |rt| {
            t.log("timer inner 10");
            rt.set_timeout(Duration::ZERO, t.logger("timer innermost 0"));
        });
    });
    rt.set_timeout(ms(200), trace.logger("timer sibling 200"));
    run(&mut rt);
    trace.lines()
}

/// Delays below 1 ms (0 included) are raised to 1 ms, in Node and in our runtime (`MIN_DELAY`).
fn zero_delay_is_one_ms<R: Reactor + 'static>(mut rt: Runtime<R>) -> Vec<String> {
    let trace = Trace::default();
    rt.set_timeout(ms(1), trace.logger("timer A (1 ms)"));
    rt.set_timeout(Duration::ZERO, trace.logger("timer B (0 ms)"));
    let (t, iv) = (trace.clone(), Rc::new(Cell::new(None)));
    let iv2 = iv.clone();
    iv.set(Some(rt.set_interval(Duration::ZERO, move |rt| {
        t.log("interval C (0 ms)");
        rt.clear_timer(iv2.get().expect("interval id"));
    })));
    busy(ms(5));
    run(&mut rt);
    trace.lines()
}

// ---- checks without a Node counterpart --------------------------------------------------

/// More delays than the Node scenario, each held to the exact lower bound.
fn timeouts_never_fire_early_many<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let early = Rc::new(RefCell::new(Vec::new()));
    let fired = Rc::new(Cell::new(0));
    for round in 0..3u64 {
        for delay in [0, 1, 2, 3, 5, 7, 11, 16, 30] {
            let (early, fired) = (early.clone(), fired.clone());
            let delay = ms(delay) + Duration::from_micros(round * 300);
            let start = Instant::now();
            rt.set_timeout(delay, move |_| {
                fired.set(fired.get() + 1);
                let elapsed = start.elapsed();
                if elapsed < delay {
                    early.borrow_mut().push((delay, elapsed));
                }
            });
        }
    }
    run(&mut rt);
    assert_eq!(fired.get(), 27);
    assert!(
        early.borrow().is_empty(),
        "fired early (delay, elapsed): {:?}",
        early.borrow()
    );
}

/// An interval's runs: a late run is not followed by a burst, and the period counts from
/// each run's start (bounds only, never upper timing limits).
fn interval_spacing_after_late_run<R: Reactor + 'static>(mut rt: Runtime<R>) {
    let starts = Rc::new(RefCell::new(Vec::new()));
    let iv: Rc<Cell<Option<TimerId>>> = Rc::default();
    let (s, iv2) = (starts.clone(), iv.clone());
    iv.set(Some(rt.set_interval(ms(30), move |rt| {
        let n = {
            let mut s = s.borrow_mut();
            s.push(Instant::now());
            s.len()
        };
        if n == 1 {
            busy(ms(100));
        }
        if n == 4 {
            rt.clear_timer(iv2.get().expect("interval id"));
        }
    })));
    run(&mut rt);
    let starts = starts.borrow();
    assert_eq!(starts.len(), 4);
    for pair in starts[1..].windows(2) {
        assert!(
            pair[1] - pair[0] >= ms(30),
            "runs after the late one keep the full period: {:?}",
            pair[1] - pair[0]
        );
    }
}

// ---- instantiation ----------------------------------------------------------------------

/// Instantiates every scenario for each backend, checks each against its recorded Node trace,
/// and lists the scenarios for the Node re-run.
macro_rules! for_each_backend {
    (
        node: [$($scenario:ident),* $(,)?],
        diverging: [$($diverging:ident: $why:literal),* $(,)?],
        extra: [$($extra:ident),* $(,)?] $(,)?
    ) => {
        /// Every Node scenario: (name, recorded trace).
        const SCENARIOS: &[(&str, &str)] = &[
            $((stringify!($scenario), include_str!(concat!("node/expected/", stringify!($scenario), ".txt"))),)*
            $((stringify!($diverging), include_str!(concat!("node/expected/", stringify!($diverging), ".txt"))),)*
        ];

        for_each_backend!(@backend polling, portable_reactor::PollingReactor::new(),
            [$($scenario),*], [$($diverging: $why),*], [$($extra),*]);
        for_each_backend!(@backend mio, portable_reactor::MioReactor::new(),
            [$($scenario),*], [$($diverging: $why),*], [$($extra),*]);
    };
    (@backend $backend:ident, $reactor:expr, [$($scenario:ident),*], [$($diverging:ident: $why:literal),*],
        [$($extra:ident),*]) => {
        mod $backend {
            $(
                #[test]
                fn $scenario() {
                    let rt = super::runtime($reactor.expect("create the reactor"));
                    let trace = super::$scenario(rt);
                    super::assert_trace(stringify!($scenario), &trace);
                }
            )*
            $(
                #[test]
                #[ignore = $why]
                fn $diverging() {
                    let rt = super::runtime($reactor.expect("create the reactor"));
                    let trace = super::$diverging(rt);
                    super::assert_trace(stringify!($diverging), &trace);
                }
            )*
            $(
                #[test]
                fn $extra() {
                    super::$extra(super::runtime($reactor.expect("create the reactor")));
                }
            )*
        }
    };
}

for_each_backend! {
    node: [
        timers_insertion_order,
        timers_collected_before_run,
        timer_cleared_in_batch,
        io_immediate_before_timeout,
        immediate_in_check_phase,
        interval_no_catch_up,
        overdue_deadline_order,
        timeout_never_early,
        close_after_immediate,
        next_tick_between_timers,
        next_tick_before_immediate,
        clear_immediate,
        unref_timer,
        nested_timers,
        zero_delay_is_one_ms,
    ],
    // Known divergences from Node (none at present): they would run with
    // `cargo test --test ordering -- --ignored`.
    diverging: [],
    extra: [timeouts_never_fire_early_many, interval_spacing_after_late_run],
}

fn expected(scenario: &str) -> Vec<String> {
    let (_, text) = SCENARIOS
        .iter()
        .find(|(name, _)| *name == scenario)
        .unwrap_or_else(|| panic!("no expected trace for {scenario}"));
    text.lines().map(str::to_owned).collect()
}

fn assert_trace(scenario: &str, trace: &[String]) {
    let expected = expected(scenario);
    assert_eq!(
        trace,
        expected.as_slice(),
        "{scenario}: our trace (left) differs from Node's (right, tests/node/expected/{scenario}.txt)"
    );
}

/// Re-runs every Node script and compares its stdout with the checked-in trace, when `node` is
/// on PATH (skipped with a note otherwise).
#[test]
fn node_scripts_still_match_expected() {
    let _ = env_logger::builder().is_test(true).try_init();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let version = match std::process::Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => {
            eprintln!(
                "note: `node --version` failed ({}); Node re-run skipped",
                out.status
            );
            return;
        }
        Err(e) => {
            eprintln!("note: node not found on PATH ({e}); Node re-run skipped");
            return;
        }
    };
    eprintln!("re-running the Node scenarios with node {version}");
    let mut failures = Vec::new();
    for (scenario, recorded) in SCENARIOS {
        let script = dir.join(format!("{scenario}.js"));
        let out = std::process::Command::new("node")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("running node {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
        if !out.status.success() || stdout != recorded.replace("\r\n", "\n") {
            failures.push(format!(
                "{scenario} ({}):\n--- recorded\n{recorded}--- node {version}\n{stdout}--- stderr\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "Node output differs:\n{}",
        failures.join("\n")
    );
}
