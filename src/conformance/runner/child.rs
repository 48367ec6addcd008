//! The children: one process per cell, with a timeout.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use super::report::{Cell, Outcome};
use super::Backend;
use crate::conformance::{take_not_applicable, Behaviour, Deviation, BEHAVIOURS};

/// The hidden first argument that makes [`run`](super::run) a child.
pub(super) const CHILD_FLAG: &str = "--child";

/// The line a child prints on stdout when its behaviour returned.
const RESULT: &str = "@@conformance-result";

/// How much of a failed child's stderr a report keeps.
const TAIL_LINES: usize = 40;
const TAIL_CHARS: usize = 4000;

/// How often the parent looks at a running child.
const CHECK_EVERY: Duration = Duration::from_millis(5);
/// Starts of a cell's child: the OS may refuse one for a moment (Wine now and then fails a
/// start with `ERROR_INTERNAL_ERROR`, os error 1359; a loaded machine with `EAGAIN`), which
/// says nothing of the backend, so a refused start is tried again after a pause.
const STARTS: u32 = 3;
/// The pause before the next start, doubled each time.
const START_PAUSE: Duration = Duration::from_millis(100);

/// The child side: `args` = `[BACKEND, BEHAVIOUR]`. Runs the behaviour in this process and
/// prints the result line; a failure panics out of here (the process exits non-zero).
pub(super) fn run_child(args: &[String], backends: &[Backend]) -> i32 {
    let [backend, behaviour] = args else {
        eprintln!("conformance: {CHILD_FLAG} needs BACKEND BEHAVIOUR");
        return 2;
    };
    let Some(backend) = backends.iter().find(|b| b.name == backend) else {
        eprintln!("conformance: {CHILD_FLAG}: unknown backend {backend:?}");
        return 2;
    };
    let Some(behaviour) = BEHAVIOURS.iter().find(|b| b.name == behaviour) else {
        eprintln!("conformance: {CHILD_FLAG}: unknown behaviour {behaviour:?}");
        return 2;
    };
    if let Some(reason) = behaviour.not_applicable {
        println!("{RESULT} n/a {reason}");
        return 0;
    }
    let _ = take_not_applicable();
    (behaviour.run)(&|| (backend.make)());
    match take_not_applicable() {
        Some(reason) => println!("{RESULT} n/a {}", reason.replace('\n', " ")),
        None => println!("{RESULT} pass"),
    }
    0
}

/// What a child reported, before deviations are applied.
enum Raw {
    Pass,
    NotApplicable(String),
    Fail(String),
}

/// Runs every cell (`backends` x `behaviours`), `jobs` children at a time; the cells come back
/// in backend-major order.
pub(super) fn run_cells(
    backends: &[Backend],
    behaviours: &[&'static Behaviour],
    timeout: Duration,
    jobs: usize,
) -> Vec<Cell> {
    let tasks: Vec<(usize, usize)> = (0..backends.len())
        .flat_map(|b| (0..behaviours.len()).map(move |h| (b, h)))
        .collect();
    let exe = std::env::current_exe();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Cell>>> = Mutex::new((0..tasks.len()).map(|_| None).collect());
    thread::scope(|scope| {
        for _ in 0..jobs.min(tasks.len()).max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(b, h)) = tasks.get(i) else { break };
                let (backend, behaviour) = (&backends[b], behaviours[h]);
                let (raw, duration) = match (&exe, behaviour.not_applicable) {
                    (_, Some(reason)) => (Raw::NotApplicable(reason.into()), Duration::ZERO),
                    (Ok(exe), None) => run_one(exe, backend.name, behaviour.name, timeout),
                    (Err(e), None) => (
                        Raw::Fail(format!("cannot find the runner's executable: {e}")),
                        Duration::ZERO,
                    ),
                };
                let outcome = apply_deviation(raw, Deviation::find(backend.deviations, behaviour.name));
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                eprintln!(
                    "conformance: [{n}/{}] {} {}::{}: {} ({})",
                    tasks.len(),
                    backend.name,
                    behaviour.group,
                    behaviour.name,
                    outcome.label(),
                    super::report::human(duration)
                );
                let cell = Cell {
                    backend: b,
                    behaviour: h,
                    outcome,
                    duration,
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(cell);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|c| c.expect("every task ran"))
        .collect()
}

/// Turns what the child reported into the cell's outcome, given the backend's declaration.
fn apply_deviation(raw: Raw, declared: Option<&Deviation>) -> Outcome {
    match (raw, declared) {
        (Raw::NotApplicable(reason), _) => Outcome::NotApplicable(reason),
        (Raw::Pass, None) => Outcome::Pass,
        (Raw::Pass, Some(d)) => Outcome::StaleDeviation(d.reason.into()),
        (Raw::Fail(message), None) => Outcome::Fail(message),
        (Raw::Fail(message), Some(d)) => Outcome::Deviation {
            reason: d.reason.into(),
            message,
        },
    }
}

/// `start()`, tried up to `tries` times while it fails, pausing `pause` (doubled each time)
/// between tries; the last error if none succeeds.
fn start_with_retries<T>(
    tries: u32,
    mut pause: Duration,
    mut start: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    let mut tried = 1;
    loop {
        match start() {
            Ok(started) => return Ok(started),
            Err(e) if tried >= tries => return Err(e),
            Err(e) => {
                log::warn!("conformance: a child did not start ({e}); trying again in {pause:?}");
                thread::sleep(pause);
                pause *= 2;
                tried += 1;
            }
        }
    }
}

/// Runs one cell in a child; kills it after `timeout`.
fn run_one(exe: &Path, backend: &str, behaviour: &str, timeout: Duration) -> (Raw, Duration) {
    let started = Instant::now();
    let spawned = start_with_retries(STARTS, START_PAUSE, || {
        Command::new(exe)
            .args([CHILD_FLAG, backend, behaviour])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    });
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let message = format!("cannot start {} ({STARTS} tries): {e}", exe.display());
            return (Raw::Fail(message), started.elapsed());
        }
    };
    let stdout = reader(child.stdout.take());
    let stderr = reader(child.stderr.take());
    let status: Option<ExitStatus> = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => thread::sleep(CHECK_EVERY),
            Err(e) => {
                log::warn!("conformance: waiting for the child of {behaviour}: {e}");
                let _ = child.kill();
                break child.wait().ok();
            }
        }
    };
    let duration = started.elapsed();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let result = stdout
        .lines()
        .rev()
        .find_map(|l| l.trim_end().strip_prefix(RESULT));
    let raw = match (status, result) {
        (None, _) => Raw::Fail(with_tail(format!("timed out after {}s", secs(timeout)), &stderr)),
        (Some(status), Some(result)) if status.success() => match result.trim() {
            "pass" => Raw::Pass,
            r => match r.strip_prefix("n/a ") {
                Some(reason) => Raw::NotApplicable(reason.to_string()),
                None => Raw::Fail(format!("unexpected child result {r:?}")),
            },
        },
        (Some(status), _) => Raw::Fail(with_tail(format!("the child failed ({status})"), &stderr)),
    };
    (raw, duration)
}

/// Reads a pipe to its end in a thread (lossily as UTF-8).
fn reader(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// `what`, then the end of `stderr`.
fn with_tail(what: String, stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let mut tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    if tail.len() > TAIL_CHARS {
        let mut cut = tail.len() - TAIL_CHARS;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = format!("…{}", &tail[cut..]);
    }
    if tail.is_empty() {
        what
    } else {
        format!("{what}; stderr:\n{tail}")
    }
}

/// Whole seconds where the timeout is whole, else one decimal.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.1}", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::time::Duration;

    use super::start_with_retries;

    #[test]
    fn a_refused_start_is_tried_again_and_the_last_error_reported() {
        // Refused once (Wine's os error 1359), then started.
        let mut calls = 0;
        let started = start_with_retries(3, Duration::ZERO, || {
            calls += 1;
            if calls == 1 {
                Err(io::Error::from_raw_os_error(1359))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(started.unwrap(), 2);
        // Refused every time: `tries` starts, then the last error.
        let mut calls = 0;
        let refused = start_with_retries(3, Duration::ZERO, || -> io::Result<()> {
            calls += 1;
            Err(io::Error::other(format!("refusal {calls}")))
        });
        assert_eq!(calls, 3);
        assert_eq!(refused.unwrap_err().to_string(), "refusal 3");
    }
}
