//! The harness every bench shares: configuration from the environment, interleaved rounds,
//! per-round ratios with min/median/max, CPU pinning, child-process re-exec with resource
//! usage, and the markdown report in `target/bench-report.md`.
//!
//! Each bench is a `harness = false` binary that includes this module with `mod common;`; not
//! every bench uses every helper.
#![allow(dead_code)]

pub mod loadgen;
pub mod raw_epoll;
pub mod reactor_echo;
mod report;
pub mod servers;
mod stats;
mod summary;

#[allow(unused_imports)] // not every bench uses every helper
pub use report::{Report, Row};
#[allow(unused_imports)]
pub use stats::{fmt_num, interleave, Spread};

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The deadline the runtime puts on every wait by default (its builder's I/O timeout); every
/// echo/idle server contender applies it to every read so that all of them pay for a timer per
/// wait.
pub const RUNTIME_DEFAULT_DEADLINE: Duration = portable_reactor::runtime::DEFAULT_IO_TIMEOUT;

/// Bench configuration, read from the environment.
///
/// - `BENCH_QUICK=1`: smoke mode (3 short rounds, smaller workloads).
/// - `BENCH_ROUNDS=N`: rounds per contender (default 5, quick 3; at least 3 for min/median/max).
/// - `BENCH_SECS=S`: seconds per measured run (default 1.0, quick 0.3).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Smoke mode.
    pub quick: bool,
    /// Rounds per contender.
    pub rounds: usize,
    /// Length of one measured run.
    pub secs: Duration,
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl Config {
    /// Reads the configuration from the environment.
    pub fn from_env() -> Config {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v != "0" && !v.is_empty());
        let rounds = env_parse::<usize>("BENCH_ROUNDS")
            .unwrap_or(if quick { 3 } else { 5 })
            .max(1);
        let secs = env_parse::<f64>("BENCH_SECS")
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(if quick { 0.3 } else { 1.0 });
        Config {
            quick,
            rounds,
            secs: Duration::from_secs_f64(secs),
        }
    }

    /// One line describing the configuration, for the console and the report.
    pub fn describe(&self) -> String {
        format!(
            "rounds={} secs={:.2}{} cpus={} pinning={}",
            self.rounds,
            self.secs.as_secs_f64(),
            if self.quick { " quick" } else { "" },
            cpus(),
            if can_pin() { "yes" } else { "no" }
        )
    }
}

/// Decides whether this invocation should run the bench: `cargo bench` passes `--bench`;
/// `cargo test --benches` does not, and then the bench only says it was skipped (results are
/// figures, never test assertions). `BENCH_FORCE=1` runs it anyway.
pub fn should_run(name: &str) -> bool {
    let bench = std::env::args().any(|a| a == "--bench");
    if bench || std::env::var("BENCH_FORCE").is_ok_and(|v| v != "0") {
        return true;
    }
    println!("{name}: not run (use `cargo bench --bench {name}`; BENCH_FORCE=1 forces it)");
    false
}

/// The name filters given on the command line (`cargo bench -- FILTER`).
fn filters() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// Whether the bench name filter given on the command line (`cargo bench -- FILTER`) admits
/// `what`. No filter admits everything.
pub fn filter_admits(what: &str) -> bool {
    let filters = filters();
    filters.is_empty() || filters.iter().any(|f| what.contains(f.as_str()))
}

/// Whether this run publishes its figures (README table, `benches/results/`): a full run
/// only, that is not `BENCH_QUICK`, no name filter, the default report path, and
/// `BENCH_PUBLISH` not `0`.
pub fn publishes(cfg: &Config) -> bool {
    !cfg.quick
        && filters().is_empty()
        && std::env::var_os("BENCH_REPORT").is_none()
        && std::env::var("BENCH_PUBLISH").map_or(true, |v| v != "0")
}

/// The current UTC time as `YYYY-MM-DD HH:MM UTC` (the run date a report section carries).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

// ---------------------------------------------------------------------------------------------
// CPUs and pinning
// ---------------------------------------------------------------------------------------------

/// How many CPUs this process may run on.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Whether server and client can be pinned to different cores here.
pub fn can_pin() -> bool {
    cfg!(target_os = "linux") && cpus() >= 2 && std::env::var("BENCH_NO_PIN").is_err()
}

/// The core servers are pinned to.
pub const SERVER_CORE: usize = 0;
/// The core clients (loadgen, the bench's own loop) are pinned to.
pub const CLIENT_CORE: usize = 1;

/// Pins the calling thread to `core`; returns whether it did.
pub fn pin_current_thread(core: usize) -> bool {
    if !can_pin() {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        set_affinity(0, core)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = core;
        false
    }
}

#[cfg(target_os = "linux")]
fn set_affinity(pid: libc::pid_t, core: usize) -> bool {
    // SAFETY: `cpu_set_t` is plain data for which all-zero is the empty set; CPU_SET writes
    // inside it (core is bounds-checked by the macro), and sched_setaffinity only reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Makes `cmd`'s process start pinned to `core` (inherited by all its threads), where pinning
/// is possible.
pub fn pin_command(cmd: &mut Command, core: usize) {
    if !can_pin() {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and only makes the
        // async-signal-safe sched_setaffinity syscall on stack data.
        unsafe {
            cmd.pre_exec(move || {
                set_affinity(0, core);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (cmd, core);
    }
}

// ---------------------------------------------------------------------------------------------
// Processes and resources
// ---------------------------------------------------------------------------------------------

/// The arguments after `--child`, when this process was re-executed as a contender.
pub fn child_args() -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--child")?;
    Some(args[at + 1..].to_vec())
}

/// A command that re-executes this bench binary as child contender `args`.
pub fn self_command(args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.arg("--child").args(args);
    cmd
}

/// The Node.js binary (`NODE` overrides), if one runs here.
pub fn node() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var("NODE").unwrap_or_else(|_| "node".into()));
    let ok = Command::new(&path)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(path)
}

/// Writes `script` to `target/bench-<name>` and returns its path.
pub fn write_script(name: &str, script: &str) -> io::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("bench-{name}"));
    std::fs::create_dir_all(path.parent().expect("parent"))?;
    std::fs::write(&path, script)?;
    Ok(path)
}

/// A running child contender, killed when dropped. Its stdin is a pipe the child watches:
/// when this process dies, the child sees end-of-file and exits.
#[derive(Debug)]
pub struct Running {
    /// The process.
    pub child: Child,
    /// Its standard output, line by line.
    pub stdout: BufReader<ChildStdout>,
}

impl Running {
    /// Starts `cmd` pinned to `core` (where possible), with piped stdin and stdout.
    pub fn spawn(mut cmd: Command, core: Option<usize>) -> io::Result<Running> {
        if let Some(core) = core {
            pin_command(&mut cmd, core);
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Ok(Running { child, stdout })
    }

    /// The next line the child prints that starts with `prefix`, without it (other lines are
    /// echoed to the console). `Unsupported` if the child prints `UNSUPPORTED <why>` instead,
    /// `UnexpectedEof` if it exits first.
    pub fn expect_line(&mut self, prefix: &str) -> io::Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("child exited before printing {prefix:?}"),
                ));
            }
            let l = line.trim_end();
            if let Some(why) = l.strip_prefix("UNSUPPORTED") {
                return Err(io::Error::new(io::ErrorKind::Unsupported, why.trim().to_string()));
            }
            if let Some(rest) = l.strip_prefix(prefix) {
                return Ok(rest.trim().to_string());
            }
            println!("   [child] {l}");
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the child's stdin and waits for it to exit, with its resource usage.
    pub fn finish(mut self) -> io::Result<Usage> {
        drop(self.child.stdin.take());
        wait_with_usage(&mut self.child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a child process used, as its parent's `wait4` sees it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// User + system CPU time (NaN where unknown).
    pub cpu_secs: f64,
    /// Peak resident set size in bytes (NaN where unknown).
    pub max_rss: f64,
    /// Whether it exited with status 0.
    pub success: bool,
}

/// Waits for `child` and returns its resource usage (`wait4` on Unix but illumos/Solaris).
pub fn wait_with_usage(child: &mut Child) -> io::Result<Usage> {
    #[cfg(all(unix, not(any(target_os = "illumos", target_os = "solaris"))))]
    {
        let pid = child.id() as libc::pid_t;
        let mut status: libc::c_int = 0;
        // SAFETY: `rusage` is plain data, all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: `pid` is our un-reaped child; `status` and `ru` are valid for writes.
            let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
            if r == pid {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        // Linux reports ru_maxrss in KiB, Apple platforms in bytes.
        let rss_unit = if cfg!(target_vendor = "apple") {
            1.0
        } else {
            1024.0
        };
        Ok(Usage {
            cpu_secs: tv(ru.ru_utime) + tv(ru.ru_stime),
            max_rss: ru.ru_maxrss as f64 * rss_unit,
            success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        })
    }
    // illumos and Solaris have no wait4: no usage figures there.
    #[cfg(not(all(unix, not(any(target_os = "illumos", target_os = "solaris")))))]
    {
        let status = child.wait()?;
        Ok(Usage {
            cpu_secs: f64::NAN,
            max_rss: f64::NAN,
            success: status.success(),
        })
    }
}

/// CPU time (user + system) this process has used so far, all threads (NaN where unknown).
pub fn process_cpu_secs() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: `rusage` is plain data, all-zero is valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is valid for writes.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return f64::NAN;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
    #[cfg(not(unix))]
    {
        f64::NAN
    }
}

/// A field of `/proc/PID/status` (e.g. `VmRSS`, `VmHWM`) in bytes; Linux only.
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    let kib: f64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

/// Raises this process's soft limit on open files to at least `want` (up to the hard limit);
/// returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    #[cfg(unix)]
    {
        // SAFETY: `rlimit` is plain data, all-zero is valid.
        let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
        // SAFETY: `lim` is valid for writes.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return 0;
        }
        let target = (want as libc::rlim_t).min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            // SAFETY: `lim` is a valid rlimit with cur <= max.
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
            // SAFETY: as above.
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        }
        lim.rlim_cur as u64
    }
    #[cfg(not(unix))]
    {
        want
    }
}

/// A loopback TCP listener on an ephemeral port with a listen backlog of 1024 (std, mio and
/// tokio use 128, which makes 256 connecting clients retry for a second).
pub fn listener_1024() -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// In a child: exits the process when the parent closes our stdin (or dies).
pub fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::Read::read_to_end(&mut io::stdin(), &mut sink);
        std::process::exit(0);
    });
}

/// Sleeps out the rest of `total` since `start` (used to make runs comparable in length).
pub fn sleep_rest(start: Instant, total: Duration) {
    if let Some(rest) = total.checked_sub(start.elapsed()) {
        std::thread::sleep(rest);
    }
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/PID/stat` (Linux; NaN
/// elsewhere). Resolution is the clock tick (usually 10 ms).
pub fn proc_cpu_secs(pid: u32) -> f64 {
    #[cfg(target_os = "linux")]
    {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return f64::NAN;
        };
        // Fields after the command name (which may hold spaces) in parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return f64::NAN;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line: indices 11 and 12 after ")".
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        match (ticks(11), ticks(12)) {
            (Some(u), Some(s)) if hz > 0.0 => (u + s) / hz,
            _ => f64::NAN,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        f64::NAN
    }
}
