//! Bench 4: idle scale. 10,000 idle connections, each watched with the default deadline, on
//! each echo server contender (runtime, tokio one task per connection, the hand-written mio
//! loop, Node.js): resident bytes per connection (VmRSS of the server child after the
//! connections, each having echoed one byte, minus before, over the count), and the
//! ping-pong throughput of one active connection beside those idle connections vs a twin
//! server with none (interleaved).
//!
//! Linux only (VmRSS from `/proc`). The runtime's contenders are those of the echo bench
//! (`benches/common/servers.rs`: default reactor and `polling` adapter).
//! `cargo bench --bench idle -- FILTER` measures only the contenders whose name contains
//! FILTER (e.g. `runtime`); `BENCH_IDLE=N` changes the connection count.

mod common;

fn main() {
    env_logger::init();
    if let Some(args) = common::child_args() {
        if let Err(e) = common::servers::child_main(&args) {
            eprintln!("idle child {args:?}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !common::should_run("idle") {
        return;
    }
    #[cfg(target_os = "linux")]
    imp::main();
    #[cfg(not(target_os = "linux"))]
    println!("idle: Linux only (reads /proc/PID/status); skipped on this OS");
}

#[cfg(target_os = "linux")]
mod imp {
    /// The goal for the runtime: user-space bytes per idle connection, its deadline included.
    const IDLE_BYTES_GOAL: f64 = 128.0;

    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::time::Duration;

    use crate::common::loadgen::{self, LoadConfig};
    use crate::common::servers::EchoServer;
    use crate::common::{self, interleave, proc_status_bytes, Config, Report, Row};

    /// Opens `n` connections to `addr`, each echoing one byte once (so the server has
    /// accepted it and waits on it).
    fn open_idle(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let mut s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            s.write_all(b"x")?;
            let mut b = [0u8; 1];
            s.read_exact(&mut b)?;
            conns.push(s);
        }
        Ok(conns)
    }

    pub fn main() {
        let cfg = Config::from_env();
        let n: usize = std::env::var("BENCH_IDLE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(if cfg.quick { 2_000 } else { 10_000 });
        let limit = common::raise_nofile(n as u64 + 1024);
        let mut report = Report::new("idle", format!("Bench 4: {n} idle connections"), &cfg);
        if (limit as usize) < n + 64 {
            report.note(format!(
                "open-file limit {limit} is too low for {n} connections: skipped"
            ));
            report.write();
            return;
        }
        let pinned = common::pin_current_thread(common::CLIENT_CORE);
        report.note(format!(
            "servers in child processes on core {} (pinned: {pinned}), {:?} deadline on every read; \
             memory = (VmRSS after {n} connections - VmRSS before) / {n}, a fresh server per round; \
             the second half alone = (VmRSS after {n} - VmRSS after {half}) / {rest}, without what a \
             server holds once however many connections it has (a listener's read buffer, a table's \
             first growth); throughput = 1 connection x 64 B ping-pong, {n} idle beside it vs a twin \
             server with none",
            common::SERVER_CORE,
            common::RUNTIME_DEFAULT_DEADLINE,
            half = n / 2,
            rest = n - n / 2,
        ));
        report.note(
            "the runtime's net module shares one read buffer (64 KiB) among a listener's \
             connections, allocated on the first read; tokio and the mio loop share one buffer \
             per thread",
        );
        let mut results: Vec<(EchoServer, Figures)> = Vec::new();
        for kind in EchoServer::ALL {
            if !common::filter_admits(kind.name()) {
                continue;
            }
            match measure(kind, n, &cfg) {
                Ok(Ok(figures)) => results.push((kind, figures)),
                Ok(Err(why)) => report.note(format!("{}: not measured: {why}", kind.name())),
                Err(e) => report.note(format!("{}: failed: {e}", kind.name())),
            }
        }
        let tokio = results.iter().position(|r| r.0 == EchoServer::Tokio);
        for (i, (kind, (mem, marginal, with_idle, alone))) in results.iter().enumerate() {
            let mut row = Row::new(kind.name(), "resident bytes/connection", mem);
            if let Some(t) = tokio.filter(|t| *t != i) {
                row = row.vs(EchoServer::Tokio.name(), mem, &results[t].1 .0);
            }
            report.row(row);
            report.row(Row::new(
                kind.name(),
                format!("resident bytes/connection, the second {} alone", n - n / 2),
                marginal,
            ));
            if kind.is_runtime() {
                report.row(
                    Row::new(kind.name(), "resident bytes/connection", mem)
                        .goal_figure_at_most(IDLE_BYTES_GOAL),
                );
            }
            report.row(
                Row::new(kind.name(), format!("round trips/s, {n} idle beside"), with_idle).vs(
                    "same server with none idle",
                    with_idle,
                    alone,
                ),
            );
            report.row(Row::new(kind.name(), "round trips/s, none idle", alone));
        }
        if common::filter_admits(EchoServer::RuntimeWithTimers.name()) {
            match measure_twins(EchoServer::RuntimeWithTimers, EchoServer::Runtime, &cfg) {
                Ok(Ok((with_timers, alone))) => {
                    report.row(
                        Row::new(
                            EchoServer::RuntimeWithTimers.name(),
                            "round trips/s, 1 connection",
                            &with_timers,
                        )
                        .vs("same server with no timer", &with_timers, &alone),
                    );
                    report.note(
                        "pending timers: the runtime echo server with 1,000,000 timers due in an hour \
                         (1,000 millisecond buckets) vs a twin with none, 1 connection x 64 B",
                    );
                }
                Ok(Err(why)) => report.note(format!("pending timers: not measured: {why}")),
                Err(e) => report.note(format!("pending timers: failed: {e}")),
            }
        }
        if !results.iter().any(|r| r.0 == EchoServer::Runtime) {
            report.row(
                Row::new(EchoServer::Runtime.name(), "resident bytes/connection", &[])
                    .goal_text("not wired yet: compare with tokio one task per connection"),
            );
        }
        report.write();
    }

    /// Per round: resident bytes per connection over all `n` and over the second half alone,
    /// then the throughput with `n` idle and with none.
    type Figures = (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>);

    /// Per-round throughput of two twin servers.
    type TwinRates = (Vec<f64>, Vec<f64>);

    /// Ping-pong throughput (1 connection x 64 B) of two servers, interleaved in rounds.
    fn ping_pong_rounds(addrs: [std::net::SocketAddr; 2], name: &str, cfg: &Config) -> Vec<Vec<f64>> {
        interleave(cfg.rounds, 2, |_, i| {
            let lc = LoadConfig {
                addr: addrs[i],
                conns: 1,
                size: 64,
                secs: cfg.secs,
                warmup: Duration::from_millis(100),
                count: None,
                pace: Duration::ZERO,
            };
            match loadgen::run(&lc) {
                Ok(r) => r.rtt_per_sec,
                Err(e) => {
                    eprintln!("   {name}: {e}");
                    f64::NAN
                }
            }
        })
    }

    /// Ping-pong throughput of one connection on `a` and on `b`, interleaved.
    fn measure_twins(a: EchoServer, b: EchoServer, cfg: &Config) -> io::Result<Result<TwinRates, String>> {
        let mut servers = Vec::new();
        for kind in [a, b] {
            match kind.start()? {
                Ok(s) => servers.push(s),
                Err(why) => return Ok(Err(why)),
            }
        }
        let rates = ping_pong_rounds([servers[0].1, servers[1].1], a.name(), cfg);
        drop(servers);
        let mut rates = rates.into_iter();
        Ok(Ok((
            rates.next().unwrap_or_default(),
            rates.next().unwrap_or_default(),
        )))
    }

    fn measure(kind: EchoServer, n: usize, cfg: &Config) -> io::Result<Result<Figures, String>> {
        // Memory: a fresh server per round.
        let (mut mem, mut marginal) = (Vec::new(), Vec::new());
        for _ in 0..cfg.rounds.clamp(3, 5) {
            let (server, addr) = match kind.start()? {
                Ok(s) => s,
                Err(why) => return Ok(Err(why)),
            };
            let rss = || {
                std::thread::sleep(Duration::from_millis(100));
                proc_status_bytes(server.pid(), "VmRSS").unwrap_or(f64::NAN)
            };
            let before = rss();
            let first = open_idle(addr, n / 2)?;
            let half = rss();
            let second = open_idle(addr, n - n / 2)?;
            let after = rss();
            mem.push((after - before) / n as f64);
            marginal.push((after - half) / (n - n / 2) as f64);
            drop(server);
            drop((first, second));
        }
        // Throughput: one server with n idle, a twin with none, interleaved.
        let (busy, busy_addr) = match kind.start()? {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        };
        let (quiet, quiet_addr) = match kind.start()? {
            Ok(s) => s,
            Err(why) => return Ok(Err(why)),
        };
        let idle = open_idle(busy_addr, n)?;
        let rates = ping_pong_rounds([busy_addr, quiet_addr], kind.name(), cfg);
        drop(busy);
        drop(quiet);
        drop(idle);
        let mut rates = rates.into_iter();
        let with_idle = rates.next().unwrap_or_default();
        let alone = rates.next().unwrap_or_default();
        Ok(Ok((mem, marginal, with_idle, alone)))
    }
}
