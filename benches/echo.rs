//! Bench 2: echo server throughput. The runtime's net modules vs a tokio current_thread echo
//! server, a hand-written edge-triggered mio loop, a raw edge-triggered epoll loop on libc (the
//! floor, Linux only; its ratio is reported without a goal) and the Node.js `net` echo server (skipped
//! with a note when `node` is absent), each in a child process pinned to core 0, all driven by
//! the same loadgen (`benches/common/loadgen.rs`, also `examples/loadgen.rs`) on core 1 at
//! 1x64 B, 64x64 B and 256x1 KiB, with the runtime's default deadline on every read.
//!
//! Goals for the runtime: >= 1.0x tokio and >= 0.97x the mio loop in every scenario, >= 2x
//! Node.js, judged for both runtime contenders: the default reactor (`runtime_echo`, mio on
//! Linux) and the `polling` adapter (`runtime_polling_echo`), both in
//! `benches/common/servers.rs`.
//!
//! The async contender (`runtime_async_echo`: one task per connection over `Async<TcpStream>`,
//! `read(..).await` then `write_all(..).await`) is judged >= 1.0x tokio and >= 0.97x the
//! callback server on the same reactor (`runtime_echo`): the async layer costs almost nothing.

mod common;

use std::time::Duration;

use common::loadgen::{self, LoadConfig};
use common::servers::EchoServer;
use common::{interleave, Config, Report, Row};

const SCENARIOS: [(usize, usize); 3] = [(1, 64), (64, 64), (256, 1024)];

fn main() {
    env_logger::init();
    if let Some(args) = common::child_args() {
        if args.first().map(String::as_str) == Some("loadgen") {
            // `--child loadgen ARGS`: the load generator, for ci/count-echo.sh.
            std::process::exit(loadgen::main_with(args.into_iter().skip(1)));
        }
        if let Err(e) = common::servers::child_main(&args) {
            eprintln!("echo child {args:?}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !common::should_run("echo") {
        return;
    }
    let cfg = Config::from_env();
    let mut report = Report::new("echo", "Bench 2: echo server round trips", &cfg);
    common::raise_nofile(4096);
    let pinned = common::pin_current_thread(common::CLIENT_CORE);
    report.note(format!(
        "servers in child processes on core {}, loadgen (one mio thread) on core {} (pinned: {pinned}); \
         every server applies a {:?} deadline to every read; listen backlog 1024",
        common::SERVER_CORE,
        common::CLIENT_CORE,
        common::RUNTIME_DEFAULT_DEADLINE
    ));

    report.note(
        "runtime async contender: the listener as `Async<TcpListener>` (no deadline), one task \
         per connection looping `read(&mut buf).await` / `write_all(&buf[..n]).await` on an \
         `Async<TcpStream>` with the runtime's default watch options (the deadline above) and \
         TCP_NODELAY, a 64 KiB buffer per task",
    );
    report.note(
        "runtime contenders: `tcp::listen_on` with the net module's defaults (one 64 KiB read \
         buffer per listener; 1 MiB write bound) plus TCP_NODELAY and the deadline above; the \
         data callback writes the slice it is given straight back",
    );
    let mut servers = Vec::new();
    for kind in EchoServer::ECHO {
        match kind.start() {
            Ok(Ok((running, addr))) => servers.push((kind, running, addr)),
            Ok(Err(why)) => report.note(format!("{}: not measured: {why}", kind.name())),
            Err(e) => report.note(format!("{}: failed to start: {e}", kind.name())),
        }
    }
    let warmup = Duration::from_secs_f64((cfg.secs.as_secs_f64() / 4.0).min(0.25));
    let index_of = |k: EchoServer| servers.iter().position(|(s, _, _)| *s == k);

    for (conns, size) in SCENARIOS {
        let scenario = format!("{conns}x{size} B");
        if !common::filter_admits(&scenario) {
            continue;
        }
        let mut p50 = vec![Vec::new(); servers.len()];
        let mut p99 = vec![Vec::new(); servers.len()];
        let mut cpu = vec![Vec::new(); servers.len()];
        let rates = interleave(cfg.rounds, servers.len(), |_, i| {
            let (kind, running, addr) = &servers[i];
            let lc = LoadConfig {
                addr: *addr,
                conns,
                size,
                secs: cfg.secs,
                warmup,
                count: None,
                pace: Duration::ZERO,
            };
            let cpu_before = common::proc_cpu_secs(running.pid());
            match loadgen::run(&lc) {
                Ok(r) => {
                    let cpu_after = common::proc_cpu_secs(running.pid());
                    if r.errors > 0 {
                        eprintln!("   {} {scenario}: {} connection errors", kind.name(), r.errors);
                    }
                    p50[i].push(r.p50_us);
                    p99[i].push(r.p99_us);
                    // Server CPU over warm-up + window, per round trip counted in the window
                    // (an upper bound: warm-up round trips are not counted).
                    let total_secs = r.secs + warmup.as_secs_f64();
                    cpu[i].push((cpu_after - cpu_before) / (r.rtt_per_sec * total_secs) * 1e6);
                    r.rtt_per_sec
                }
                Err(e) => {
                    eprintln!("   {} {scenario}: {e}", kind.name());
                    f64::NAN
                }
            }
        });
        let tokio = index_of(EchoServer::Tokio);
        for (i, (kind, _, _)) in servers.iter().enumerate() {
            let name = format!("{} — {scenario}", kind.name());
            if *kind == EchoServer::RuntimeAsync {
                for (peer, goal) in [(EchoServer::Tokio, 1.0), (EchoServer::Runtime, 0.97)] {
                    if let Some(j) = index_of(peer) {
                        report.row(
                            Row::new(&name, "round trips/s", &rates[i])
                                .vs(peer.name(), &rates[i], &rates[j])
                                .goal_at_least(goal),
                        );
                    }
                }
            } else if kind.is_runtime() {
                for (peer, goal) in [
                    (EchoServer::Tokio, 1.0),
                    (EchoServer::Mio, 0.97),
                    (EchoServer::Node, 2.0),
                ] {
                    if let Some(j) = index_of(peer) {
                        report.row(
                            Row::new(&name, "round trips/s", &rates[i])
                                .vs(peer.name(), &rates[i], &rates[j])
                                .goal_at_least(goal),
                        );
                    }
                }
                // The floor, for scale (no goal: kernel-bound, it ties everyone here).
                if let Some(j) = index_of(EchoServer::RawEpoll) {
                    report.row(Row::new(&name, "round trips/s", &rates[i]).vs(
                        EchoServer::RawEpoll.name(),
                        &rates[i],
                        &rates[j],
                    ));
                }
            } else {
                let mut row = Row::new(&name, "round trips/s", &rates[i]);
                if let Some(t) = tokio.filter(|t| *t != i) {
                    row = row.vs(EchoServer::Tokio.name(), &rates[i], &rates[t]);
                }
                report.row(row);
            }
            report.row(Row::new(&name, "p50 latency µs", &p50[i]));
            report.row(Row::new(&name, "p99 latency µs", &p99[i]));
            if cfg!(target_os = "linux") {
                report.row(Row::new(&name, "server CPU µs/round trip", &cpu[i]));
            }
        }
        if index_of(EchoServer::Runtime).is_none() {
            report.row(
                Row::new(
                    format!("{} — {scenario}", EchoServer::Runtime.name()),
                    "round trips/s",
                    &[],
                )
                .goal_text("not wired yet: >= 1.0x tokio, >= 0.97x mio, >= 2x Node.js"),
            );
        }
    }
    drop(servers);
    count(&cfg, &mut report);
    report.write();
}

/// Instructions and syscalls per round trip (ci/count-echo.sh under this bench's own
/// executable), carried into the report and the README; skipped with a note when valgrind or
/// strace is missing (the script installs them when run by hand) or `BENCH_COUNT=0`.
fn count(cfg: &Config, report: &mut Report) {
    if !cfg!(target_os = "linux") || std::env::var("BENCH_COUNT").is_ok_and(|v| v == "0") {
        return;
    }
    let found = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !found("valgrind") || !found("strace") {
        report.note(
            "instructions and syscalls per round trip: not counted (valgrind or strace missing;              `ci/count-echo.sh` installs them)",
        );
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(exe) = std::env::current_exe() else { return };
    println!("   counting instructions and syscalls per round trip (ci/count-echo.sh)");
    let status = std::process::Command::new("bash")
        .arg(root.join("ci/count-echo.sh"))
        .env("BENCH", &exe)
        .env("COUNT", if cfg.quick { "1000" } else { "4000" })
        .stdout(std::process::Stdio::null())
        .status();
    let table = std::fs::read_to_string(root.join("target/count-echo/counts.md"));
    match (status, table) {
        (Ok(s), Ok(table)) if s.success() => {
            count_goals(&table, report);
            report.carry(table);
        }
        (s, t) => report.note(format!(
            "instructions and syscalls per round trip: ci/count-echo.sh failed ({:?}, {:?})",
            s.map(|s| s.to_string()),
            t.err()
        )),
    }
}

/// The goals on the counts, per (column of ci/count-echo.sh's table, most per round trip).
const COUNT_GOALS: [(&str, f64); 3] = [
    ("instructions, 1x64", 500.0),
    ("instructions, 64x64", 250.0),
    ("syscalls, 1x64", 3.0),
];

/// A row per runtime contender and counted goal, from the counts table (`| server | a | b |`
/// under a header naming the columns).
fn count_goals(table: &str, report: &mut Report) {
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let Some(header) = table.lines().find(|l| l.starts_with("| server |")) else {
        return;
    };
    let header = cells(header);
    for line in table.lines().filter(|l| l.starts_with("| runtime")) {
        let row = cells(line);
        let server = match row[0].as_str() {
            "runtime" => EchoServer::Runtime,
            "runtime-polling" => EchoServer::RuntimePolling,
            _ => continue,
        };
        for (column, goal) in COUNT_GOALS {
            let Some(i) = header.iter().position(|h| h == column) else {
                continue;
            };
            let Some(value) = row.get(i).and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            let Some((what, scenario)) = column.split_once(", ") else {
                continue;
            };
            let metric = match what {
                "instructions" => "user-space instructions/round trip",
                _ => "syscalls/round trip",
            };
            let contender = format!("{} — {scenario} B", server.name());
            report.row(Row::new(contender, metric, &[value]).goal_figure_at_most(goal));
        }
    }
}
