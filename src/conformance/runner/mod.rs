//! The conformance runner: every behaviour of the suite against chosen backends, each in its
//! own child process with a timeout, reported as a matrix in markdown, JUnit XML and JSON.
//!
//! # Command line
//!
//! ```text
//! cargo run --release --example conformance --features conformance -- \
//!     [--backend all|NAME,NAME] [--format md,junit,json] [--out DIR] \
//!     [--filter SUBSTRING] [--timeout SECS] [--jobs N] [--list]
//! ```
//!
//! - `--backend`: `all` (the default) or a comma-separated list of the backends' names.
//! - `--format`: which files to write into `--out`: `md` (`conformance.md`), `junit`
//!   (`conformance.junit.xml`), `json` (`conformance.json`); default all three. The markdown
//!   is printed to stdout in any case; progress goes to stderr.
//! - `--out`: the directory for the files, created if needed; default `target/conformance/`.
//! - `--filter`: run only the behaviours whose `group::name` contains `SUBSTRING`.
//! - `--timeout`: seconds a behaviour may take before its child is killed and the cell is
//!   reported failed ("timed out after Ns"); default 60, multiplied by
//!   [`wait_scale()`](super::wait_scale) (`PORTABLE_REACTOR_WAIT_SCALE`).
//! - `--jobs`: how many children run at once; default 2.
//! - `--list`: print the behaviours (group, name, contract row) and exit.
//!
//! Exit status: `0` when no cell failed unexpectedly (declared deviations, stale declarations
//! and not-applicable cells allowed), `1` on an unexpected failure (a panic, an abort, a
//! timeout), `2` on a usage error.
//!
//! # Cells
//!
//! Each cell is one of: `pass`; `FAIL` (the child's panic message or stderr tail);
//! `deviation` (a [`Deviation`] the backend declared, failing as declared: the reason is
//! shown); `deviation passes (stale declaration)` (declared, but it passed); `n/a` (the
//! behaviour does not apply: not built on this OS, or the backend's
//! [`supports`](crate::Reactor::supports) declines the mode it is about; the reason is shown).
//!
//! # Isolation
//!
//! The runner re-executes its own executable ([`std::env::current_exe`]) once per cell with
//! the hidden arguments `--child BACKEND BEHAVIOUR`; [`run`] and [`main`] handle them, so the
//! binary that calls them must pass its arguments through unchanged. A hang, a panic or an
//! abort is that cell's failure, and the rest still run.
//!
//! # JSON
//!
//! `conformance.json` is one object; its field names are stable (a field may be added, never
//! renamed or removed without bumping `schema`):
//!
//! ```text
//! {
//!   "schema": 1,                         // this layout's version
//!   "suite_version": "1.2.0",            // conformance::VERSION
//!   "os": "linux", "arch": "x86_64",     // std::env::consts::{OS, ARCH}
//!   "wait_scale": 1,                     // PORTABLE_REACTOR_WAIT_SCALE as applied
//!   "timeout_secs": 60,                  // per behaviour, after scaling
//!   "duration_secs": 41.2,               // wall time of the whole run
//!   "exit_code": 0,                      // what the runner exits with
//!   "unexpected_failures": 0,
//!   "backends": [{ "name": "polling", "mechanism": "epoll", "duration_secs": 20.1,
//!                  "pass": 44, "fail": 0, "deviation": 0, "stale_deviation": 0,
//!                  "not_applicable": 3,
//!                  "deviations": [{ "behaviour": "...", "reason": "..." }] }],
//!   "behaviours": [{ "name": "...", "group": "...", "contract": "..." }],
//!   "results": [{ "backend": "polling", "behaviour": "...", "group": "...",
//!                 "status": "pass" | "fail" | "deviation" | "stale_deviation" | "not_applicable",
//!                 "reason": "..." | null,    // the declaration's or the n/a reason
//!                 "message": "..." | null,   // the failure (for fail and deviation)
//!                 "duration_secs": 0.012 }]
//! }
//! ```

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{BoxedReactor, Deviation, BEHAVIOURS};

mod child;
mod formats;
mod report;

use report::{BackendInfo, Report};

/// A backend the runner drives: its name on the command line, its constructor, and the
/// deviations it declares.
///
/// ```
/// use portable_reactor::conformance::{runner::Backend, Deviation};
///
/// const POLLING: Backend = Backend::new("polling", || {
///     Box::new(portable_reactor::PollingReactor::new().expect("PollingReactor::new"))
/// })
/// .with_deviations(&[Deviation::new("wakes_coalesce", "an example declaration")]);
/// assert_eq!(POLLING.name, "polling");
/// ```
#[derive(Copy, Clone, Debug)]
pub struct Backend {
    /// The name `--backend` selects it by, and the column of the matrix.
    pub name: &'static str,
    /// Builds a fresh reactor; called once per reactor a behaviour needs, in the child.
    pub make: fn() -> BoxedReactor,
    /// What the backend knowingly does differently.
    pub deviations: &'static [Deviation],
}

impl Backend {
    /// A backend called `name`, built by `make`, declaring no deviation.
    pub const fn new(name: &'static str, make: fn() -> BoxedReactor) -> Backend {
        Backend {
            name,
            make,
            deviations: &[],
        }
    }

    /// The same backend, declaring `deviations`.
    pub const fn with_deviations(self, deviations: &'static [Deviation]) -> Backend {
        Backend { deviations, ..self }
    }
}

/// The runner's entry point for a binary: parses [`std::env::args`], runs [`run`] with
/// stdout, and exits with its status. Call it from `main` of an example or a bin of the
/// backend's crate (built with the `conformance` feature of this crate):
///
/// ```no_run
/// use portable_reactor::conformance::runner::{self, Backend};
/// use portable_reactor::conformance::Deviation;
///
/// // Declarations live in a `const` (or `static`): the runner keeps them for the whole run.
/// const DEVIATIONS: &[Deviation] = &[Deviation::new("wakes_coalesce", "why it differs")];
///
/// fn main() {
///     runner::main(&[
///         Backend::new("mine", || Box::new(portable_reactor::PollingReactor::new().unwrap())),
///         Backend::new("mine-declared", || Box::new(portable_reactor::MioReactor::new().unwrap()))
///             .with_deviations(DEVIATIONS),
///     ]);
/// }
/// ```
///
/// Then `cargo run --example NAME -- --backend all --format md,junit,json --out
/// target/conformance/` (see the [module docs](self) for the flags).
pub fn main(backends: &[Backend]) -> ! {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = run(&args, backends, &mut io::stdout());
    let _ = io::stdout().flush();
    std::process::exit(code)
}

/// Runs the command line `args` (without the program name) against `backends`, writes the
/// markdown matrix to `stdout` and the files into `--out`, and returns the exit status (`0`,
/// `1` or `2`, see the [module docs](self)). With the hidden `--child` arguments, runs one
/// behaviour in this process instead (what the children do).
///
/// The children are this process's executable ([`std::env::current_exe`]) run again, so
/// `run` must be called from a binary's `main` that passes its arguments through.
///
/// ```no_run
/// use portable_reactor::conformance::runner::{run, Backend};
///
/// let backends = [Backend::new("polling", || {
///     Box::new(portable_reactor::PollingReactor::new().unwrap())
/// })];
/// let args = ["--filter", "wakes_coalesce", "--format", "json"].map(String::from);
/// let mut markdown = Vec::new();
/// let status = run(&args, &backends, &mut markdown);
/// assert_eq!(status, 0);
/// ```
pub fn run(args: &[String], backends: &[Backend], stdout: &mut dyn Write) -> i32 {
    if args.first().map(String::as_str) == Some(child::CHILD_FLAG) {
        return child::run_child(&args[1..], backends);
    }
    let options = match Options::parse(args, backends) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            let _ = writeln!(stdout, "{USAGE}");
            return 0;
        }
        Ok(Command::List) => {
            for b in BEHAVIOURS {
                let _ = writeln!(stdout, "{}::{}\t{}", b.group, b.name, b.contract);
            }
            return 0;
        }
        Err(message) => {
            eprintln!("conformance: {message}\n{USAGE}");
            return 2;
        }
    };
    run_matrix(&options, stdout)
}

const USAGE: &str = "usage: conformance [--backend all|NAME,NAME] [--format md,junit,json] \
[--out DIR] [--filter SUBSTRING] [--timeout SECS] [--jobs N] [--list]";

enum Command {
    Run(Options),
    Help,
    List,
}

/// The parsed command line.
struct Options {
    backends: Vec<Backend>,
    md: bool,
    junit: bool,
    json: bool,
    out: PathBuf,
    filter: Option<String>,
    timeout: Duration,
    wait_scale: f64,
    jobs: usize,
}

impl Options {
    fn parse(args: &[String], all: &[Backend]) -> Result<Command, String> {
        let mut backend_arg = "all".to_string();
        let mut format_arg = "md,junit,json".to_string();
        let mut out = PathBuf::from("target/conformance");
        let mut filter = None;
        let mut timeout_secs = 60.0_f64;
        let mut jobs = 2;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag {
                "--backend" => backend_arg = value()?,
                "--format" => format_arg = value()?,
                "--out" => out = PathBuf::from(value()?),
                "--filter" => filter = Some(value()?),
                "--timeout" => {
                    let v = value()?;
                    timeout_secs = v
                        .parse::<f64>()
                        .ok()
                        .filter(|t| t.is_finite() && *t > 0.0 && *t <= 86_400.0)
                        .ok_or_else(|| format!("--timeout {v:?}: expected seconds, > 0"))?;
                }
                "--jobs" => {
                    let v = value()?;
                    jobs = v
                        .parse::<usize>()
                        .ok()
                        .filter(|j| (1..=64).contains(j))
                        .ok_or_else(|| format!("--jobs {v:?}: expected 1 to 64"))?;
                }
                "--list" => return Ok(Command::List),
                "-h" | "--help" => return Ok(Command::Help),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        let backends = if backend_arg == "all" {
            all.to_vec()
        } else {
            let mut chosen = Vec::new();
            for name in backend_arg.split(',').map(str::trim) {
                let b = all.iter().find(|b| b.name == name).ok_or_else(|| {
                    let known: Vec<&str> = all.iter().map(|b| b.name).collect();
                    format!("unknown backend {name:?} (known: all, {})", known.join(", "))
                })?;
                chosen.push(*b);
            }
            chosen
        };
        if backends.is_empty() {
            return Err("no backend to run".into());
        }
        let (mut md, mut junit, mut json) = (false, false, false);
        for f in format_arg.split(',').map(str::trim) {
            match f {
                "md" | "markdown" => md = true,
                "junit" => junit = true,
                "json" => json = true,
                "" => {}
                other => return Err(format!("unknown format {other:?} (md, junit, json)")),
            }
        }
        if let Some(f) = &filter {
            if !BEHAVIOURS.iter().any(|b| matches_filter(b, f)) {
                return Err(format!("--filter {f:?} matches no behaviour (see --list)"));
            }
        }
        let wait_scale = std::panic::catch_unwind(super::wait_scale)
            .map_err(|_| format!("bad {}", super::WAIT_SCALE_VAR))?;
        Ok(Command::Run(Options {
            backends,
            md,
            junit,
            json,
            out,
            filter,
            timeout: Duration::from_secs_f64(timeout_secs * wait_scale),
            wait_scale,
            jobs,
        }))
    }
}

fn matches_filter(b: &super::Behaviour, filter: &str) -> bool {
    format!("{}::{}", b.group, b.name).contains(filter)
}

/// Runs every selected cell, then reports; returns the exit status.
fn run_matrix(options: &Options, stdout: &mut dyn Write) -> i32 {
    let started = Instant::now();
    let behaviours: Vec<&'static super::Behaviour> = BEHAVIOURS
        .iter()
        .filter(|b| options.filter.as_deref().is_none_or(|f| matches_filter(b, f)))
        .collect();
    let backends: Vec<BackendInfo> = options.backends.iter().map(|b| BackendInfo::probe(*b)).collect();
    let cells = child::run_cells(&options.backends, &behaviours, options.timeout, options.jobs);
    let report = Report::new(
        backends,
        behaviours,
        cells,
        options.wait_scale,
        options.timeout,
        started.elapsed(),
    );
    let markdown = report.markdown();
    let _ = stdout.write_all(markdown.as_bytes());
    let _ = stdout.flush();
    let mut status = report.exit_code();
    let files: [(bool, &str, String); 3] = [
        (options.md, "conformance.md", markdown),
        (options.junit, "conformance.junit.xml", formats::junit(&report)),
        (options.json, "conformance.json", formats::json(&report)),
    ];
    if let Err(e) = std::fs::create_dir_all(&options.out) {
        eprintln!("conformance: cannot create {}: {e}", options.out.display());
        return 2;
    }
    for (wanted, name, text) in files {
        if !wanted {
            continue;
        }
        let path = options.out.join(name);
        match std::fs::write(&path, text) {
            Ok(()) => eprintln!("conformance: wrote {}", path.display()),
            Err(e) => {
                eprintln!("conformance: cannot write {}: {e}", path.display());
                status = status.max(1);
            }
        }
    }
    status
}
