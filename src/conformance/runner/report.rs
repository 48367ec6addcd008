//! The results of a run and the markdown matrix.

use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use super::Backend;
use crate::conformance::{Behaviour, Deviation, VERSION};

/// What one cell came to.
pub(super) enum Outcome {
    /// The behaviour passed.
    Pass,
    /// An unexpected failure: the message (panic, stderr tail, timeout).
    Fail(String),
    /// A declared deviation that failed as declared.
    Deviation {
        /// The declaration's reason.
        reason: String,
        /// The failure.
        message: String,
    },
    /// A declared deviation that passed: the declaration's reason.
    StaleDeviation(String),
    /// The behaviour does not apply: why.
    NotApplicable(String),
}

impl Outcome {
    /// The status name of the JSON and the progress lines.
    pub(super) fn status(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Deviation { .. } => "deviation",
            Outcome::StaleDeviation(_) => "stale_deviation",
            Outcome::NotApplicable(_) => "not_applicable",
        }
    }

    /// A short human label, with the reason.
    pub(super) fn label(&self) -> String {
        match self {
            Outcome::Pass => "pass".into(),
            Outcome::Fail(_) => "FAIL".into(),
            Outcome::Deviation { reason, .. } => format!("deviation: {reason}"),
            Outcome::StaleDeviation(reason) => {
                format!("deviation passes (stale declaration): {reason}")
            }
            Outcome::NotApplicable(reason) => format!("n/a: {reason}"),
        }
    }

    /// The reason (of the declaration, or why it does not apply).
    pub(super) fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Deviation { reason, .. }
            | Outcome::StaleDeviation(reason)
            | Outcome::NotApplicable(reason) => Some(reason),
            Outcome::Pass | Outcome::Fail(_) => None,
        }
    }

    /// The failure message.
    pub(super) fn message(&self) -> Option<&str> {
        match self {
            Outcome::Fail(message) | Outcome::Deviation { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// One cell: a behaviour on a backend.
pub(super) struct Cell {
    /// Index into [`Report::backends`].
    pub(super) backend: usize,
    /// Index into [`Report::behaviours`].
    pub(super) behaviour: usize,
    pub(super) outcome: Outcome,
    pub(super) duration: Duration,
}

/// A backend as the report names it.
pub(super) struct BackendInfo {
    pub(super) name: &'static str,
    pub(super) mechanism: String,
    pub(super) deviations: &'static [Deviation],
}

impl BackendInfo {
    /// Builds one reactor of `backend` to ask for its mechanism.
    pub(super) fn probe(backend: Backend) -> BackendInfo {
        let mechanism = panic::catch_unwind(AssertUnwindSafe(|| (backend.make)().mechanism()))
            .map(|m| m.name().to_string())
            .unwrap_or_else(|_| "unknown (the constructor panicked)".into());
        BackendInfo {
            name: backend.name,
            mechanism,
            deviations: backend.deviations,
        }
    }
}

/// Counts of one backend's cells.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) pass: usize,
    pub(super) fail: usize,
    pub(super) deviation: usize,
    pub(super) stale: usize,
    pub(super) not_applicable: usize,
    pub(super) duration: Duration,
}

/// The whole run.
pub(super) struct Report {
    pub(super) backends: Vec<BackendInfo>,
    pub(super) behaviours: Vec<&'static Behaviour>,
    pub(super) cells: Vec<Cell>,
    pub(super) wait_scale: f64,
    pub(super) timeout: Duration,
    pub(super) duration: Duration,
}

impl Report {
    pub(super) fn new(
        backends: Vec<BackendInfo>,
        behaviours: Vec<&'static Behaviour>,
        cells: Vec<Cell>,
        wait_scale: f64,
        timeout: Duration,
        duration: Duration,
    ) -> Report {
        Report {
            backends,
            behaviours,
            cells,
            wait_scale,
            timeout,
            duration,
        }
    }

    /// `std::env::consts::OS`.
    pub(super) fn os(&self) -> &'static str {
        std::env::consts::OS
    }

    /// `std::env::consts::ARCH`.
    pub(super) fn arch(&self) -> &'static str {
        std::env::consts::ARCH
    }

    /// The counts of backend `b`.
    pub(super) fn counts(&self, b: usize) -> Counts {
        let mut c = Counts::default();
        for cell in self.cells.iter().filter(|c| c.backend == b) {
            c.duration += cell.duration;
            match cell.outcome {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail(_) => c.fail += 1,
                Outcome::Deviation { .. } => c.deviation += 1,
                Outcome::StaleDeviation(_) => c.stale += 1,
                Outcome::NotApplicable(_) => c.not_applicable += 1,
            }
        }
        c
    }

    /// The cell of backend `b` and behaviour `h`.
    pub(super) fn cell(&self, b: usize, h: usize) -> Option<&Cell> {
        self.cells.iter().find(|c| c.backend == b && c.behaviour == h)
    }

    /// How many cells failed unexpectedly.
    pub(super) fn unexpected_failures(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
            .count()
    }

    /// `1` on an unexpected failure, else `0`.
    pub(super) fn exit_code(&self) -> i32 {
        i32::from(self.unexpected_failures() > 0)
    }

    /// The markdown matrix (also what stdout shows).
    pub(super) fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## portable-reactor conformance suite {VERSION}\n");
        let _ = writeln!(
            md,
            "OS `{}` / `{}` · wait scale {} · timeout {} per behaviour · {} cells in {}\n",
            self.os(),
            self.arch(),
            self.wait_scale,
            human(self.timeout),
            self.cells.len(),
            human(self.duration)
        );
        md.push_str(
            "| backend | mechanism | pass | FAIL | deviation | stale deviation | n/a | time (sum) |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|\n");
        for (b, info) in self.backends.iter().enumerate() {
            let c = self.counts(b);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                cell_text(info.name),
                cell_text(&info.mechanism),
                c.pass,
                c.fail,
                c.deviation,
                c.stale,
                c.not_applicable,
                human(c.duration)
            );
        }
        md.push_str("\n| group | behaviour | contract |");
        for info in &self.backends {
            let _ = write!(md, " {} ({}) |", cell_text(info.name), cell_text(&info.mechanism));
        }
        md.push_str("\n|---|---|---|");
        md.push_str(&"---|".repeat(self.backends.len()));
        md.push('\n');
        for (h, behaviour) in self.behaviours.iter().enumerate() {
            let _ = write!(
                md,
                "| {} | `{}` | {} |",
                behaviour.group,
                behaviour.name,
                cell_text(behaviour.contract)
            );
            for b in 0..self.backends.len() {
                let text = match self.cell(b, h) {
                    Some(cell) => {
                        let label = match &cell.outcome {
                            Outcome::Fail(m) => format!("**FAIL**: {}", summary(m)),
                            other => other.label(),
                        };
                        if matches!(cell.outcome, Outcome::NotApplicable(_)) {
                            cell_text(&label)
                        } else {
                            format!("{} · {}", cell_text(&label), human(cell.duration))
                        }
                    }
                    None => "–".into(),
                };
                let _ = write!(md, " {text} |");
            }
            md.push('\n');
        }
        let failed: Vec<&Cell> = self
            .cells
            .iter()
            .filter(|c| c.outcome.message().is_some())
            .collect();
        if !failed.is_empty() {
            md.push_str("\n### Failures and deviations\n");
            for cell in failed {
                let _ = writeln!(
                    md,
                    "\n**{}** `{}`: {}\n\n```text\n{}\n```",
                    cell_text(self.backends[cell.backend].name),
                    self.behaviours[cell.behaviour].name,
                    cell_text(&cell.outcome.label()),
                    cell.outcome.message().unwrap_or("").replace("```", "'''")
                );
            }
        }
        let failures = self.unexpected_failures();
        if failures == 0 {
            md.push_str("\n**Result: no unexpected failure.**\n");
        } else {
            let _ = writeln!(md, "\n**Result: {failures} unexpected failure(s).**");
        }
        md
    }
}

/// Text for a markdown table cell: no newlines, no column breaks, no HTML tags (`<`, `>`
/// and `|` backslash-escaped, as CommonMark allows).
fn cell_text(s: &str) -> String {
    s.replace('\r', "")
        .replace('\n', " ")
        .replace('|', "\\|")
        .replace('<', "\\<")
        .replace('>', "\\>")
}

/// A duration for people: `12 ms`, `1.2 s`.
pub(super) fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// One line for a failure: the panic message where the child panicked, else the first line.
pub(super) fn summary(message: &str) -> String {
    let lines: Vec<&str> = message.lines().collect();
    let line = lines
        .iter()
        .position(|l| l.contains("panicked at"))
        .and_then(|i| lines.get(i + 1))
        .or(lines.first())
        .copied()
        .unwrap_or("");
    let mut line = line.trim().to_string();
    if line.chars().count() > 160 {
        line = line.chars().take(159).collect::<String>() + "…";
    }
    line
}
