//! Bench 6: timer precision on an idle loop. The same four scenarios in every contender (the
//! runtime on `MioReactor`, the runtime on `PollingReactor`, Node.js), each run a child
//! process pinned to core 0, contenders interleaved in short rounds:
//!
//! 1. `set_interval(10 ms)`: mean period over N periods, from the `set_interval` call;
//! 2. a chain of N `set_timeout(0)`, each set from the previous callback: mean time per link
//!    (both clamp 0 to 1 ms: our `MIN_DELAY`, Node's `setTimeout`);
//! 3. N `set_timeout(1 ms)`, then N `set_timeout(10 ms)`, each set from the previous callback:
//!    lateness = fire - set - delay (mean, min and max over the N samples).
//!
//! Every scenario starts from within a first timer callback, in every contender. The Node.js
//! side is `benches/timer_precision.js`.
//!
//! Goals for the runtime (on both backends): a timer fires no earlier than its delay and within
//! 0.6 ms after it on average; an interval's mean period is in [period, period + 0.6 ms); a
//! `set_timeout(0)` link (1 ms) likewise.

mod common;

use std::cell::{Cell, RefCell};
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{interleave, Config, Report, Row, Running, Spread};
use portable_reactor::runtime::{Builder, Runtime, TimerId};
use portable_reactor::{MioReactor, PollingReactor, Reactor};

const NODE_SCRIPT: &str = include_str!("timer_precision.js");

/// The most a child may take before it gives up (the bench stays bounded if a timer hangs).
const CHILD_LIMIT: Duration = Duration::from_secs(20);

/// How far past the ideal figure the goals allow.
const SLACK_MS: f64 = 0.6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Interval,
    Chain,
    Timeout1,
    Timeout10,
}

impl Scenario {
    const ALL: [Scenario; 4] = [
        Scenario::Interval,
        Scenario::Chain,
        Scenario::Timeout1,
        Scenario::Timeout10,
    ];

    fn arg(self) -> &'static str {
        match self {
            Scenario::Interval => "interval",
            Scenario::Chain => "chain",
            Scenario::Timeout1 => "timeout1",
            Scenario::Timeout10 => "timeout10",
        }
    }

    fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|k| k.arg() == s)
    }

    /// Samples per run.
    fn count(self, quick: bool) -> usize {
        match (self, quick) {
            (Scenario::Interval, false) => 100,
            (Scenario::Interval, true) => 30,
            (Scenario::Chain, false) => 200,
            (Scenario::Chain, true) => 100,
            (Scenario::Timeout1 | Scenario::Timeout10, false) => 50,
            (Scenario::Timeout1 | Scenario::Timeout10, true) => 20,
        }
    }

    fn title(self, n: usize) -> String {
        match self {
            Scenario::Interval => format!("set_interval(10 ms), {n} periods"),
            Scenario::Chain => format!("set_timeout(0) chain, {n} links"),
            Scenario::Timeout1 => format!("set_timeout(1 ms), {n} samples"),
            Scenario::Timeout10 => format!("set_timeout(10 ms), {n} samples"),
        }
    }

    /// The delay a timer asks for, in ms.
    fn delay_ms(self) -> f64 {
        match self {
            Scenario::Interval | Scenario::Timeout10 => 10.0,
            Scenario::Chain | Scenario::Timeout1 => 1.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Mio,
    Polling,
    Node,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Mio => "runtime on MioReactor",
            Kind::Polling => "runtime on PollingReactor",
            Kind::Node => "Node.js",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Kind::Mio => "mio",
            Kind::Polling => "polling",
            Kind::Node => "node",
        }
    }
}

/// What one run reports, in ms: for scenarios 1 and 2 the mean period (min = max = mean), for
/// scenario 3 the lateness.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    mean: f64,
    min: f64,
    max: f64,
}

impl Outcome {
    const NAN: Outcome = Outcome {
        mean: f64::NAN,
        min: f64::NAN,
        max: f64::NAN,
    };

    fn of(samples: &[f64]) -> Outcome {
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Outcome { mean, min, max }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Scenario 1: `set_interval(10 ms)`, mean period over `n` periods.
fn interval<R: Reactor + 'static>(rt: &mut Runtime<R>, n: usize, out: Rc<Cell<Option<Outcome>>>) {
    let start = Instant::now();
    let fired = Cell::new(0usize);
    let id: Rc<Cell<Option<TimerId>>> = Rc::new(Cell::new(None));
    let own = id.clone();
    let timer = rt.set_interval(Duration::from_millis(10), move |rt| {
        fired.set(fired.get() + 1);
        if fired.get() == n {
            if let Some(id) = own.get() {
                rt.clear_timer(id);
            }
            out.set(Some(Outcome::of(&[ms(start.elapsed()) / n as f64])));
        }
    });
    id.set(Some(timer));
}

/// Scenario 2: a chain of `n` `set_timeout(0)`, each set from the previous callback.
fn chain<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    start: Instant,
    left: usize,
    n: usize,
    out: Rc<Cell<Option<Outcome>>>,
) {
    rt.set_timeout(Duration::ZERO, move |rt| {
        if left == 1 {
            out.set(Some(Outcome::of(&[ms(start.elapsed()) / n as f64])));
        } else {
            chain(rt, start, left - 1, n, out);
        }
    });
}

/// Scenario 3: `n` single timers of `delay`, each set from the previous callback.
fn timeouts<R: Reactor + 'static>(
    rt: &mut Runtime<R>,
    delay: Duration,
    n: usize,
    late: Rc<RefCell<Vec<f64>>>,
    out: Rc<Cell<Option<Outcome>>>,
) {
    let set = Instant::now();
    rt.set_timeout(delay, move |rt| {
        // Signed: a timer that fired early shows as a negative lateness.
        let fired = Instant::now();
        let lateness = match fired.checked_duration_since(set + delay) {
            Some(d) => ms(d),
            None => -ms((set + delay) - fired),
        };
        let len = {
            let mut late = late.borrow_mut();
            late.push(lateness);
            late.len()
        };
        if len < n {
            timeouts(rt, delay, n, late, out);
        } else {
            out.set(Some(Outcome::of(&late.borrow())));
        }
    });
}

fn run_scenario<R: Reactor + 'static>(reactor: R, scenario: Scenario, n: usize) -> io::Result<Outcome> {
    let mut rt = Builder::new().build_with(reactor)?;
    let out: Rc<Cell<Option<Outcome>>> = Rc::new(Cell::new(None));
    let result = out.clone();
    // Start from within a first timer callback, as the Node.js script does.
    rt.set_timeout(Duration::from_millis(1), move |rt| match scenario {
        Scenario::Interval => interval(rt, n, out),
        Scenario::Chain => chain(rt, Instant::now(), n, n, out),
        Scenario::Timeout1 | Scenario::Timeout10 => {
            let delay = Duration::from_secs_f64(scenario.delay_ms() / 1e3);
            timeouts(rt, delay, n, Rc::new(RefCell::new(Vec::with_capacity(n))), out);
        }
    });
    rt.run()?;
    result
        .get()
        .ok_or_else(|| io::Error::other("the loop ended before the scenario did"))
}

fn child(args: &[String]) -> io::Result<()> {
    let [what, kind, scenario, n, ..] = args else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    let scenario = Scenario::parse(scenario).filter(|_| what == "timer_precision");
    let n = n.parse::<usize>().ok().filter(|n| *n > 0);
    let (Some(scenario), Some(n)) = (scenario, n) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    // Bounded: a hung timer ends the child (the parent reports n/a) instead of the bench.
    std::thread::spawn(|| {
        std::thread::sleep(CHILD_LIMIT);
        eprintln!("timer_precision child: no result after {CHILD_LIMIT:?}");
        std::process::exit(3);
    });
    let outcome = match kind.as_str() {
        "mio" => run_scenario(MioReactor::new()?, scenario, n)?,
        "polling" => run_scenario(PollingReactor::new()?, scenario, n)?,
        _ => return Err(io::ErrorKind::InvalidInput.into()),
    };
    println!(
        "DONE mean={:.6} min={:.6} max={:.6} n={n}",
        outcome.mean, outcome.min, outcome.max
    );
    io::stdout().flush()
}

fn run_child(
    kind: Kind,
    scenario: Scenario,
    n: usize,
    node: Option<&std::path::Path>,
) -> io::Result<Outcome> {
    let cmd = match kind {
        Kind::Node => {
            let script = common::write_script("timer_precision.js", NODE_SCRIPT)?;
            let mut cmd = std::process::Command::new(node.expect("node"));
            cmd.arg(script).arg(scenario.arg()).arg(n.to_string());
            cmd
        }
        _ => common::self_command(&["timer_precision", kind.arg(), scenario.arg(), &n.to_string()]),
    };
    let mut running = Running::spawn(cmd, Some(common::SERVER_CORE))?;
    let line = running.expect_line("DONE")?;
    let usage = running.finish()?;
    if !usage.success {
        return Err(io::Error::other("child failed"));
    }
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    Ok(Outcome {
        mean: field("mean="),
        min: field("min="),
        max: field("max="),
    })
}

/// A row with a goal on the figures themselves (not on a ratio).
fn absolute_goal(mut row: Row, goal: String, met: Option<bool>) -> Row {
    row.goal = Some(goal);
    row.met = met;
    row
}

fn median(values: &[f64]) -> f64 {
    Spread::of(values).map_or(f64::NAN, |s| s.median)
}

fn main() {
    env_logger::init();
    if let Some(args) = common::child_args() {
        if let Err(e) = child(&args) {
            eprintln!("timer_precision child {args:?}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !common::should_run("timer_precision") {
        return;
    }
    let cfg = Config::from_env();
    let mut report = Report::new(
        "timer_precision",
        "Bench 6: timer precision on an idle loop",
        &cfg,
    );
    report.note(
        "each run is a child process pinned to core 0 that starts its scenario from within a \
         first 1 ms timer; contenders interleaved per scenario, alternating order; figures are \
         per-run means (and the run's min / max lateness), spread over rounds",
    );
    let node = common::node();
    let mut kinds = vec![Kind::Mio, Kind::Polling];
    if node.is_some() {
        kinds.push(Kind::Node);
    } else {
        report.note("`node` not found: Node.js contender skipped");
    }
    let idx = |k: Kind| kinds.iter().position(|x| *x == k);
    // Summary lines: scenario, metric, median per kind, median ratio vs Node per Rust kind.
    let mut summary: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let started = Instant::now();
    for scenario in Scenario::ALL {
        let n = scenario.count(cfg.quick);
        let mut outcomes: Vec<Vec<Outcome>> = vec![Vec::new(); kinds.len()];
        interleave(cfg.rounds, kinds.len(), |_, i| {
            let o = run_child(kinds[i], scenario, n, node.as_deref()).unwrap_or_else(|e| {
                eprintln!("   {} {}: {e}", kinds[i].name(), scenario.arg());
                Outcome::NAN
            });
            outcomes[i].push(o);
            o.mean
        });
        let pick = |i: usize, f: fn(&Outcome) -> f64| -> Vec<f64> { outcomes[i].iter().map(f).collect() };
        let delay = scenario.delay_ms();
        let title = scenario.title(n);
        let periodic = matches!(scenario, Scenario::Interval | Scenario::Chain);
        let metric = match scenario {
            Scenario::Interval => "mean period ms",
            Scenario::Chain => "mean ms per link",
            _ => "mean lateness ms",
        };
        let mut medians = Vec::new();
        let mut ratios = Vec::new();
        for (i, k) in kinds.iter().enumerate() {
            let means = pick(i, |o| o.mean);
            let contender = format!("{} — {title}", k.name());
            let mut row = Row::new(&contender, metric, &means);
            if let Some(nd) = idx(Kind::Node).filter(|nd| *nd != i) {
                let node_means = pick(nd, |o| o.mean);
                row = row.vs(Kind::Node.name(), &means, &node_means);
                ratios.push(Spread::of_ratios(&means, &node_means).map_or(f64::NAN, |s| s.median));
            }
            medians.push(median(&means));
            let ours = *k != Kind::Node;
            if periodic {
                if ours {
                    let m = median(&means);
                    row = absolute_goal(
                        row,
                        format!("in [{delay}, {}) ms", delay + SLACK_MS),
                        (!m.is_nan()).then_some(m >= delay && m < delay + SLACK_MS),
                    );
                }
                report.row(row);
                continue;
            }
            let mins = pick(i, |o| o.min);
            let maxes = pick(i, |o| o.max);
            if ours {
                let m = median(&means);
                row = absolute_goal(
                    row,
                    format!("< {SLACK_MS} ms"),
                    (!m.is_nan()).then_some(m < SLACK_MS),
                );
            }
            report.row(row);
            let mut min_row = Row::new(&contender, "min lateness ms", &mins);
            if ours {
                let lowest = Spread::of(&mins).map(|s| s.min);
                min_row = absolute_goal(min_row, ">= 0 (never early)".into(), lowest.map(|l| l >= 0.0));
            }
            report.row(min_row);
            report.row(Row::new(&contender, "max lateness ms", &maxes));
        }
        summary.push((format!("{title}: {metric}"), medians, ratios));
    }
    report.note(format!(
        "goals for the runtime: timers never early and late by < {SLACK_MS} ms on average; an \
         interval's (and a 1 ms link's) mean period in [period, period + {SLACK_MS} ms); ratios \
         are ours / Node.js per round (lower is better); a lateness ratio means little when \
         Node's lateness is near zero or negative (Node times timers from a loop time cached in \
         whole ms, so they can fire early)"
    ));
    report.note(format!("whole bench: {:.1} s", started.elapsed().as_secs_f64()));
    print_summary(&kinds, &summary);
    report.write();
}

/// The compact table: scenario, one median per contender, ours / Node.js.
fn print_summary(kinds: &[Kind], summary: &[(String, Vec<f64>, Vec<f64>)]) {
    let mut head = String::from("| scenario |");
    let mut rule = String::from("|---|");
    for k in kinds {
        head.push_str(&format!(" {} |", k.arg()));
        rule.push_str("---:|");
    }
    let rust: Vec<Kind> = kinds.iter().copied().filter(|k| *k != Kind::Node).collect();
    if kinds.contains(&Kind::Node) {
        for k in &rust {
            head.push_str(&format!(" {} / node |", k.arg()));
            rule.push_str("---:|");
        }
    }
    println!("\n   summary (medians over rounds, ms):\n   {head}\n   {rule}");
    for (what, medians, ratios) in summary {
        let mut line = format!("| {what} |");
        for m in medians {
            line.push_str(&format!(" {m:.3} |"));
        }
        for r in ratios {
            line.push_str(&format!(" {r:.3} |"));
        }
        println!("   {line}");
    }
    println!();
}
