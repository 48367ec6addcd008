//! Bench 3: timers. One million timers with delays spread over 0..=1000 ms (delay of timer
//! `i` = `(i * 7919) % 1001` ms, the same in every contender), scheduled then all fired, each
//! contender in its own child process: the runtime's `set_timeout`, tokio-util `DelayQueue` on
//! a current_thread runtime (carrying `()`, and carrying a boxed callback like the runtime's
//! timers), one tokio task per timer (`sleep_until`), and Node.js
//! `setTimeout`. Measured per run: CPU time per timer and peak RSS (parent's `wait4` of the
//! child, minus an empty child of the same kind), and how late the last timer fires after the
//! latest deadline the contender gave a timer: the scheduling start + 1000 ms where deadlines
//! count from it (`DelayQueue` and the tasks take absolute deadlines from it, Node counts from
//! its cached loop time), the call of the last 1000 ms `set_timeout` + 1000 ms for the
//! runtime, whose `set_timeout` counts from its call.
//!
//! Goals for the runtime: less CPU and memory than `DelayQueue`; >= 2x Node.js (half its CPU
//! per timer). The runtime plugs in at `runtime_timers` below.

mod common;

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{interleave, Config, Report, Row, Running, Usage};

/// The delay of timer `i`, in ms: 0..=1000, spread evenly and out of order (7919 is prime to
/// 1001); the largest, 1000, is reached whenever n > 1000.
fn delay_ms(i: usize) -> u64 {
    ((i as u64) * 7919) % 1001
}

const LAST_MS: u64 = 1000;

/// Counts fired timers (shared by the Rust contenders; no per-timer capture).
static FIRED: AtomicUsize = AtomicUsize::new(0);
/// When the last timer fired.
static LAST_FIRE: Mutex<Option<Instant>> = Mutex::new(None);

/// Counts one fired timer; returns whether it was the last.
fn fire(n: usize) -> bool {
    let last = FIRED.fetch_add(1, Ordering::Relaxed) + 1 == n;
    if last {
        *LAST_FIRE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
    last
}

/// What a timers child reports.
struct Outcome {
    fired: usize,
    /// The last fire, after the latest deadline (`LAST_MS` after what the child's `run`
    /// returned), in ms.
    last_late_ms: f64,
}

/// **The runtime's timers: plug the runtime in here.** Schedule `n` timers with
/// `delay_ms(i)`, call `fire(n)` from each, run until all fired; return the instant the latest
/// deadline counts from.
fn runtime_timers(n: usize) -> io::Result<Instant> {
    use portable_reactor::runtime::Runtime;
    let mut rt = Runtime::new()?;
    // `set_timeout` counts from its call: the latest deadline is the last `LAST_MS` timer's,
    // counted from a read just before that call (so from no later than the runtime's own: the
    // lateness is never understated). A thousand reads among a million calls.
    let mut latest = Instant::now();
    for i in 0..n {
        let delay = delay_ms(i);
        if delay == LAST_MS {
            latest = Instant::now();
        }
        rt.set_timeout(Duration::from_millis(delay), move |_| {
            fire(n);
        });
    }
    rt.run()?;
    Ok(latest)
}

fn delayqueue_timers(n: usize) -> io::Result<Instant> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let mut queue = tokio_util::time::DelayQueue::with_capacity(n);
        let base = Instant::now();
        let tbase = tokio::time::Instant::from_std(base);
        for i in 0..n {
            queue.insert_at((), tbase + Duration::from_millis(delay_ms(i)));
        }
        while std::future::poll_fn(|cx| queue.poll_expired(cx)).await.is_some() {
            fire(n);
        }
        Ok(base)
    })
}

/// `DelayQueue` carrying a boxed callback per timer, as the runtime's timers do: the
/// like-for-like peer (the plain `DelayQueue` above carries `()`).
fn delayqueue_boxed_timers(n: usize) -> io::Result<Instant> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        type Callback = Box<dyn FnOnce() -> bool>;
        let mut queue: tokio_util::time::DelayQueue<Callback> =
            tokio_util::time::DelayQueue::with_capacity(n);
        let base = Instant::now();
        let tbase = tokio::time::Instant::from_std(base);
        for i in 0..n {
            queue.insert_at(
                Box::new(move || fire(n)),
                tbase + Duration::from_millis(delay_ms(i)),
            );
        }
        while let Some(expired) = std::future::poll_fn(|cx| queue.poll_expired(cx)).await {
            (expired.into_inner())();
        }
        Ok(base)
    })
}

fn task_timers(n: usize) -> io::Result<Instant> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        let base = Instant::now();
        let tbase = tokio::time::Instant::from_std(base);
        for i in 0..n {
            let at = tbase + Duration::from_millis(delay_ms(i));
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                fire(n);
            });
        }
        while FIRED.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(base)
    })
}

/// A tokio runtime that schedules nothing: the baseline of the Rust contenders.
fn baseline(_: usize) -> io::Result<Instant> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
    *LAST_FIRE.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    Ok(Instant::now())
}

const NODE_TIMERS: &str = r#"'use strict';
const n = Number(process.argv[2] || 0);
const base = performance.now();
let fired = 0;
let last = base;
function fire() {
  if (++fired === n) {
    last = performance.now();
    console.log('DONE fired=' + fired + ' last_late_ms=' + (last - base - 1000).toFixed(3));
  }
}
for (let i = 0; i < n; i++) setTimeout(fire, (i * 7919) % 1001);
if (n === 0) console.log('DONE fired=0 last_late_ms=0');
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Runtime,
    DelayQueue,
    DelayQueueBoxed,
    Tasks,
    Node,
    RustBaseline,
    NodeBaseline,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Runtime => "runtime set_timeout",
            Kind::DelayQueue => "tokio-util DelayQueue (current_thread)",
            Kind::DelayQueueBoxed => "tokio-util DelayQueue + boxed callbacks (current_thread)",
            Kind::Tasks => "tokio task per timer (current_thread)",
            Kind::Node => "Node.js setTimeout",
            Kind::RustBaseline => "baseline: empty tokio child",
            Kind::NodeBaseline => "baseline: empty node child",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Kind::Runtime => "runtime",
            Kind::DelayQueue => "delayqueue",
            Kind::DelayQueueBoxed => "delayqueue-boxed",
            Kind::Tasks => "tasks",
            Kind::RustBaseline => "baseline",
            Kind::Node | Kind::NodeBaseline => "node",
        }
    }
}

fn child(args: &[String]) -> io::Result<()> {
    let [what, kind, n, ..] = args else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    if what != "timers" {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    let n: usize = n
        .parse()
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let run = match kind.as_str() {
        "runtime" => runtime_timers,
        "delayqueue" => delayqueue_timers,
        "delayqueue-boxed" => delayqueue_boxed_timers,
        "tasks" => task_timers,
        "baseline" => baseline,
        _ => return Err(io::ErrorKind::InvalidInput.into()),
    };
    // The latest deadline a timer was given is `LAST_MS` after `from`.
    let from = run(n)?;
    let last = LAST_FIRE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .unwrap_or(from);
    let late = last
        .checked_duration_since(from + Duration::from_millis(LAST_MS))
        .map_or_else(
            || -((from + Duration::from_millis(LAST_MS)) - last).as_secs_f64(),
            |d| d.as_secs_f64(),
        );
    println!(
        "DONE fired={} last_late_ms={:.3}",
        FIRED.load(Ordering::Relaxed),
        late * 1e3
    );
    io::stdout().flush()
}

fn run_child(kind: Kind, n: usize, node: Option<&std::path::Path>) -> io::Result<(Usage, Outcome)> {
    let n = match kind {
        Kind::RustBaseline | Kind::NodeBaseline => 0,
        _ => n,
    };
    let cmd = match kind {
        Kind::Node | Kind::NodeBaseline => {
            let script = common::write_script("timers.js", NODE_TIMERS)?;
            let mut cmd = std::process::Command::new(node.expect("node"));
            cmd.arg(script).arg(n.to_string());
            cmd
        }
        _ => common::self_command(&["timers", kind.arg(), &n.to_string()]),
    };
    let mut running = Running::spawn(cmd, Some(common::SERVER_CORE))?;
    let line = running.expect_line("DONE")?;
    let usage = running.finish()?;
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let outcome = Outcome {
        fired: field("fired=") as usize,
        last_late_ms: field("last_late_ms="),
    };
    if !usage.success {
        return Err(io::Error::other(format!("{} child failed", kind.name())));
    }
    Ok((usage, outcome))
}

fn main() {
    env_logger::init();
    if let Some(args) = common::child_args() {
        if let Err(e) = child(&args) {
            eprintln!("timers child {args:?}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !common::should_run("timers") {
        return;
    }
    let cfg = Config::from_env();
    let n: usize = std::env::var("BENCH_TIMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg.quick { 100_000 } else { 1_000_000 });
    let mut report = Report::new("timers", format!("Bench 3: {n} timers over 0..=1000 ms"), &cfg);
    report.note(
        "each run is a child process pinned to core 0; CPU and peak RSS from the parent's wait4, \
         minus the median of an empty child of the same kind (tokio runtime / node) measured in \
         the same rounds; lateness = last fire - the latest deadline given to a timer (scheduling \
         start + 1000 ms, or for the runtime, whose set_timeout counts from its call, the last \
         1000 ms timer's call + 1000 ms)",
    );
    let node = common::node();
    let mut kinds = vec![
        Kind::Runtime,
        Kind::DelayQueue,
        Kind::DelayQueueBoxed,
        Kind::Tasks,
        Kind::RustBaseline,
    ];
    if node.is_some() {
        kinds.extend([Kind::Node, Kind::NodeBaseline]);
    } else {
        report.note("`node` not found: Node.js contender skipped");
    }
    let mut usages: Vec<Vec<Usage>> = vec![Vec::new(); kinds.len()];
    let late = interleave(cfg.rounds, kinds.len(), |_, i| {
        match run_child(kinds[i], n, node.as_deref()) {
            Ok((usage, outcome)) => {
                let expect = if matches!(kinds[i], Kind::RustBaseline | Kind::NodeBaseline) {
                    0
                } else {
                    n
                };
                if outcome.fired != expect {
                    eprintln!("   {}: fired {} of {expect}", kinds[i].name(), outcome.fired);
                }
                usages[i].push(usage);
                outcome.last_late_ms
            }
            Err(e) => {
                eprintln!("   {}: {e}", kinds[i].name());
                usages[i].push(Usage {
                    cpu_secs: f64::NAN,
                    max_rss: f64::NAN,
                    success: false,
                });
                f64::NAN
            }
        }
    });
    let idx = |k: Kind| kinds.iter().position(|x| *x == k);
    let median = |v: Vec<f64>| common::Spread::of(&v).map_or(f64::NAN, |s| s.median);
    let base_of = |k: Kind| {
        let b = match k {
            Kind::Node => idx(Kind::NodeBaseline),
            _ => idx(Kind::RustBaseline),
        };
        b.map_or((0.0, 0.0), |b| {
            (
                median(usages[b].iter().map(|u| u.cpu_secs).collect()),
                median(usages[b].iter().map(|u| u.max_rss).collect()),
            )
        })
    };
    // Per contender, per round: CPU ns per timer and peak RSS MiB over the baseline.
    let mut cpu = vec![Vec::new(); kinds.len()];
    let mut rss = vec![Vec::new(); kinds.len()];
    for (i, k) in kinds.iter().enumerate() {
        let (bcpu, brss) = base_of(*k);
        cpu[i] = usages[i]
            .iter()
            .map(|u| (u.cpu_secs - bcpu) / n as f64 * 1e9)
            .collect();
        rss[i] = usages[i]
            .iter()
            .map(|u| (u.max_rss - brss) / (1 << 20) as f64)
            .collect();
    }
    for (i, k) in kinds.iter().enumerate() {
        if matches!(k, Kind::RustBaseline | Kind::NodeBaseline) {
            let raw_cpu: Vec<f64> = usages[i].iter().map(|u| u.cpu_secs * 1e3).collect();
            let raw_rss: Vec<f64> = usages[i].iter().map(|u| u.max_rss / (1 << 20) as f64).collect();
            report.row(Row::new(k.name(), "CPU ms (whole child)", &raw_cpu));
            report.row(Row::new(k.name(), "peak RSS MiB (whole child)", &raw_rss));
            continue;
        }
        let mut cpu_row = Row::new(k.name(), "CPU ns/timer", &cpu[i]);
        let mut rss_row = Row::new(k.name(), "peak RSS MiB over baseline", &rss[i]);
        if *k == Kind::Runtime {
            if let Some(d) = idx(Kind::DelayQueue) {
                report.row(
                    Row::new(k.name(), "CPU ns/timer", &cpu[i])
                        .vs(Kind::DelayQueue.name(), &cpu[i], &cpu[d])
                        .goal_at_most(1.0),
                );
                report.row(
                    Row::new(k.name(), "peak RSS MiB over baseline", &rss[i])
                        .vs(Kind::DelayQueue.name(), &rss[i], &rss[d])
                        .goal_at_most(1.0),
                );
            }
            if let Some(b) = idx(Kind::DelayQueueBoxed) {
                report.row(Row::new(k.name(), "CPU ns/timer", &cpu[i]).vs(
                    Kind::DelayQueueBoxed.name(),
                    &cpu[i],
                    &cpu[b],
                ));
                report.row(Row::new(k.name(), "peak RSS MiB over baseline", &rss[i]).vs(
                    Kind::DelayQueueBoxed.name(),
                    &rss[i],
                    &rss[b],
                ));
            }
            if let Some(nd) = idx(Kind::Node) {
                cpu_row = cpu_row.vs(Kind::Node.name(), &cpu[i], &cpu[nd]).goal_at_most(0.5);
                rss_row = rss_row.vs(Kind::Node.name(), &rss[i], &rss[nd]);
            }
        } else if let Some(d) = idx(Kind::DelayQueue).filter(|d| *d != i) {
            cpu_row = cpu_row.vs(Kind::DelayQueue.name(), &cpu[i], &cpu[d]);
            rss_row = rss_row.vs(Kind::DelayQueue.name(), &rss[i], &rss[d]);
        }
        report.row(cpu_row);
        report.row(rss_row);
        report.row(Row::new(k.name(), "last timer late by ms", &late[i]));
    }
    report.note("ratios here are lower-is-better (ours / theirs); `>= 2x Node.js` = CPU ratio <= 0.5");
    report.write();
}
