//! Bench 7: hyper 1.x HTTP/1.1 on the runtime vs the same hyper service on tokio
//! current_thread, driven by `wrk` (Debian's package; installed with apt-get when missing and
//! possible, else the bench says so and writes a skip note).
//!
//! Contenders, each a child process (this binary re-executed with `--child`) pinned to core
//! 0, `wrk -t1` pinned to core 1:
//! - `examples/hyper_server.rs`'s server on the runtime's default reactor (mio on Linux) and
//!   on the `polling` adapter: hyper's connection futures as tasks on the loop, I/O through
//!   `Async<TcpStream>` + hyper-util's `TokioIo`, the runtime's default deadline on every wait;
//! - the same service (`hyper_server::hello`) on a tokio current_thread runtime, one
//!   `tokio::spawn` per connection, `TokioIo<tokio::net::TcpStream>`, no deadline.
//!
//! Goal (issue 9): requests/s >= 1.0x tokio for both runtime contenders (median of per-round
//! ratios over interleaved rounds). `BENCH_SECS` sets wrk's duration (whole seconds, default
//! 3); `BENCH_ROUNDS` the rounds (default 5).

mod common;

#[path = "../examples/hyper_server.rs"]
#[allow(dead_code)]
mod hyper_server;

use std::io;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{interleave, Config, Report, Row, Running};
use portable_reactor::runtime::{Async, Builder};
use portable_reactor::{PollingReactor, Reactor};

/// wrk's connection counts (one thread each run).
const SCENARIOS: [usize; 2] = [1, 32];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    Runtime,
    RuntimePolling,
    Tokio,
}

impl Contender {
    const ALL: [Contender; 3] = [Contender::Runtime, Contender::RuntimePolling, Contender::Tokio];

    fn name(self) -> &'static str {
        match self {
            Contender::Runtime => "hyper on runtime (default: mio)",
            Contender::RuntimePolling => "hyper on runtime (polling)",
            Contender::Tokio => "hyper on tokio current_thread",
        }
    }

    fn arg(self) -> &'static str {
        match self {
            Contender::Runtime => "runtime",
            Contender::RuntimePolling => "runtime-polling",
            Contender::Tokio => "tokio",
        }
    }

    fn start(self) -> io::Result<(Running, SocketAddr)> {
        let mut running = Running::spawn(common::self_command(&[self.arg()]), Some(common::SERVER_CORE))?;
        let addr = running
            .expect_line("READY")?
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("READY address: {e}")))?;
        Ok((running, addr))
    }
}

// ------------------------------------------------------------------------------- children

fn child_main(args: &[String]) -> io::Result<()> {
    common::exit_when_stdin_closes();
    let listener = common::listener_1024()?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    match args.first().map(String::as_str) {
        Some("runtime") => serve_runtime(portable_reactor::DefaultReactor::new()?, listener, addr),
        Some("runtime-polling") => serve_runtime(PollingReactor::new()?, listener, addr),
        Some("tokio") => serve_tokio(listener, addr),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown child {other:?}"),
        )),
    }
}

fn serve_runtime<R: Reactor + 'static>(
    reactor: R,
    listener: std::net::TcpListener,
    addr: SocketAddr,
) -> io::Result<()> {
    let mut rt = Builder::new().build_with(reactor)?;
    let listener = Async::new(&mut rt, listener)?;
    let server = hyper_server::Server::new(None);
    let local = rt.local();
    println!("READY {addr}");
    rt.block_on(server.serve(local, listener))??;
    Ok(())
}

fn serve_tokio(listener: std::net::TcpListener, addr: SocketAddr) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        println!("READY {addr}");
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("tokio hyper: accept: {e}");
                    continue;
                }
            };
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let service = hyper::service::service_fn(hyper_server::hello);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    log::debug!("tokio hyper: connection ended: {e}");
                }
            });
        }
    })
}

// ------------------------------------------------------------------------------- wrk

/// `wrk`'s path, installing Debian's package first if it is missing and we may.
fn find_or_install_wrk() -> Result<String, String> {
    let works = |p: &str| {
        Command::new(p)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let wrk = std::env::var("WRK").unwrap_or_else(|_| "wrk".into());
    if works(&wrk) {
        return Ok(wrk);
    }
    let root = cfg!(unix) && {
        #[cfg(unix)]
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        #[cfg(not(unix))]
        let euid = 1;
        euid == 0
    };
    if !root || std::env::var("BENCH_NO_INSTALL").is_ok() {
        return Err("wrk not found (apt-get install wrk; not root, so not installed here)".into());
    }
    println!("   wrk not found: apt-get install -y wrk");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=600"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !apt(&["install", "-y", "-q", "wrk"]) {
        let _ = apt(&["update", "-q"]);
        apt(&["install", "-y", "-q", "wrk"]);
    }
    if works(&wrk) {
        Ok(wrk)
    } else {
        Err("wrk not found and `apt-get install -y wrk` did not provide it".into())
    }
}

/// What one wrk run measured.
struct WrkResult {
    requests_per_sec: f64,
    errors: bool,
}

fn run_wrk(wrk: &str, addr: SocketAddr, conns: usize, secs: u64) -> io::Result<WrkResult> {
    let mut cmd = Command::new(wrk);
    cmd.args(["-t1", &format!("-c{conns}"), &format!("-d{secs}s")])
        .arg(format!("http://{addr}/"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    common::pin_command(&mut cmd, common::CLIENT_CORE);
    let out = cmd.output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!("wrk failed: {text}")));
    }
    let requests_per_sec = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| io::Error::other(format!("no Requests/sec in wrk's output: {text}")))?;
    let errors = text.contains("Socket errors") || text.contains("Non-2xx");
    if errors {
        eprintln!("   wrk reported errors: {}", text.trim());
    }
    Ok(WrkResult {
        requests_per_sec,
        errors,
    })
}

// ------------------------------------------------------------------------------- main

fn main() {
    env_logger::init();
    if let Some(args) = common::child_args() {
        if let Err(e) = child_main(&args) {
            eprintln!("http child {args:?}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !common::should_run("http") {
        return;
    }
    let cfg = Config::from_env();
    let secs = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .map_or(if cfg.quick { 1 } else { 3 }, |s| s.ceil().max(1.0) as u64);
    let mut report = Report::new("http", "Bench 7: hyper HTTP/1.1 under wrk", &cfg);
    let wrk = match find_or_install_wrk() {
        Ok(wrk) => wrk,
        Err(why) => {
            report.note(format!("not run: {why}"));
            report.write();
            return;
        }
    };
    common::raise_nofile(4096);
    report.note(format!(
        "servers in child processes on core {}, `wrk -t1 -cN -d{secs}s http://ADDR/` on core {} (pinning: {}); \
         `GET /` answers `Hello, World!` (13 B, keep-alive); runtime contenders apply the runtime's \
         default {:?} deadline to every wait, tokio none",
        common::SERVER_CORE,
        common::CLIENT_CORE,
        if common::can_pin() { "yes" } else { "no" },
        common::RUNTIME_DEFAULT_DEADLINE
    ));
    let mut servers = Vec::new();
    for kind in Contender::ALL {
        match kind.start() {
            Ok((running, addr)) => servers.push((kind, running, addr)),
            Err(e) => report.note(format!("{}: failed to start: {e}", kind.name())),
        }
    }
    // Warm-up: one short run each (connections, allocator, page cache).
    for (_, _, addr) in &servers {
        let _ = run_wrk(&wrk, *addr, 32, 1);
    }
    let index_of = |k: Contender| servers.iter().position(|(s, _, _)| *s == k);
    for conns in SCENARIOS {
        let scenario = format!("{conns} conn{}", if conns == 1 { "" } else { "s" });
        if !common::filter_admits(&scenario) {
            continue;
        }
        let mut cpu = vec![Vec::new(); servers.len()];
        let rates = interleave(cfg.rounds, servers.len(), |_, i| {
            let (kind, running, addr) = &servers[i];
            let before = common::proc_cpu_secs(running.pid());
            match run_wrk(&wrk, *addr, conns, secs) {
                Ok(r) => {
                    let after = common::proc_cpu_secs(running.pid());
                    cpu[i].push((after - before) / (r.requests_per_sec * secs as f64) * 1e6);
                    if r.errors {
                        eprintln!("   {} {scenario}: wrk saw errors", kind.name());
                    }
                    r.requests_per_sec
                }
                Err(e) => {
                    eprintln!("   {} {scenario}: {e}", kind.name());
                    f64::NAN
                }
            }
        });
        let tokio = index_of(Contender::Tokio);
        for (i, (kind, _, _)) in servers.iter().enumerate() {
            let name = format!("{} — {scenario}", kind.name());
            let mut row = Row::new(&name, "requests/s", &rates[i]);
            if let Some(t) = tokio.filter(|t| *t != i) {
                row = row
                    .vs(Contender::Tokio.name(), &rates[i], &rates[t])
                    .goal_at_least(1.0);
            }
            report.row(row);
            if cfg!(target_os = "linux") {
                report.row(Row::new(&name, "server CPU µs/request", &cpu[i]));
            }
        }
    }
    drop(servers);
    std::thread::sleep(Duration::from_millis(10));
    report.write();
}
