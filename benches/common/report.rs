//! The markdown report: a bench's rows and notes, printed as they are built and written as
//! the bench's section of `target/bench-report.md`, with the machine's description.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{cpus, fmt_num, node, Config, Spread};

/// One row of a bench's table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Who was measured.
    pub contender: String,
    /// What was measured, with its unit.
    pub metric: String,
    /// The figures' spread over rounds.
    pub spread: Option<Spread>,
    /// The reference this row is compared with, and the spread of the per-round ratios.
    pub ratio: Option<(String, Option<Spread>)>,
    /// The goal, in words (e.g. `>= 0.97`).
    pub goal: Option<String>,
    /// Whether the goal is met (judged on the median ratio).
    pub met: Option<bool>,
}

impl Row {
    /// A row with figures and no comparison.
    pub fn new(contender: impl Into<String>, metric: impl Into<String>, values: &[f64]) -> Row {
        Row {
            contender: contender.into(),
            metric: metric.into(),
            spread: Spread::of(values),
            ratio: None,
            goal: None,
            met: None,
        }
    }

    /// Adds the per-round ratio `values[i] / reference[i]`.
    pub fn vs(mut self, reference_name: impl Into<String>, values: &[f64], reference: &[f64]) -> Row {
        self.ratio = Some((reference_name.into(), Spread::of_ratios(values, reference)));
        self
    }

    /// Adds a goal on the median ratio: met when `median >= min_ratio`.
    pub fn goal_at_least(mut self, min_ratio: f64) -> Row {
        self.goal = Some(format!(">= {min_ratio}x"));
        self.met = self
            .ratio
            .as_ref()
            .and_then(|(_, s)| s.map(|s| s.median >= min_ratio));
        self
    }

    /// Adds a goal on the median ratio: met when `median <= max_ratio` (lower is better).
    pub fn goal_at_most(mut self, max_ratio: f64) -> Row {
        self.goal = Some(format!("<= {max_ratio}x"));
        self.met = self
            .ratio
            .as_ref()
            .and_then(|(_, s)| s.map(|s| s.median <= max_ratio));
        self
    }

    /// Adds a goal on the figure itself (not a ratio): met when its median is at most
    /// `limit` (in the metric's unit).
    pub fn goal_figure_at_most(mut self, limit: f64) -> Row {
        self.goal = Some(format!("<= {}", fmt_num(limit)));
        self.met = self.spread.map(|s| s.median <= limit);
        self
    }

    /// A goal stated in words with no verdict (e.g. the contender is not wired yet).
    pub fn goal_text(mut self, goal: impl Into<String>) -> Row {
        self.goal = Some(goal.into());
        self
    }
}

/// A bench's section of `target/bench-report.md`, printed to the console as it is built.
#[derive(Debug)]
pub struct Report {
    bench: &'static str,
    title: String,
    config: String,
    notes: Vec<String>,
    rows: Vec<Row>,
    carried: Vec<String>,
    publish: bool,
}

/// The order of the sections in the report file.
const SECTION_ORDER: [&str; 7] = [
    "reactor_overhead",
    "echo",
    "timers",
    "idle",
    "pool",
    "timer_precision",
    "http",
];

impl Report {
    /// A new section for bench `bench` (its target name).
    pub fn new(bench: &'static str, title: impl Into<String>, config: &Config) -> Report {
        let title = title.into();
        println!("== {bench}: {title} ({})", config.describe());
        Report {
            bench,
            title,
            config: format!("{}; run {}", config.describe(), super::utc_now()),
            notes: Vec::new(),
            rows: Vec::new(),
            carried: Vec::new(),
            publish: super::publishes(config),
        }
    }

    /// Adds a markdown block after the notes that the summary (README) carries over verbatim
    /// (and prints it).
    pub fn carry(&mut self, markdown: impl Into<String>) {
        let markdown = markdown.into();
        println!("{markdown}");
        self.carried.push(markdown);
    }

    /// Adds a note under the table (and prints it).
    pub fn note(&mut self, note: impl Into<String>) {
        let note = note.into();
        println!("   note: {note}");
        self.notes.push(note);
    }

    /// Adds a row (and prints it).
    pub fn row(&mut self, row: Row) {
        let mut line = format!("   {:<44} {:<26}", row.contender, row.metric);
        if let Some(s) = row.spread {
            let _ = write!(
                line,
                " median {:>9} (min {}, max {})",
                fmt_num(s.median),
                fmt_num(s.min),
                fmt_num(s.max)
            );
        } else {
            line.push_str(" n/a");
        }
        if let Some((name, Some(r))) = &row.ratio {
            let _ = write!(
                line,
                "  ratio vs {name}: {:.3} (min {:.3}, max {:.3})",
                r.median, r.min, r.max
            );
        }
        if let Some(goal) = &row.goal {
            let verdict = match row.met {
                Some(true) => " met",
                Some(false) => " NOT met",
                None => "",
            };
            let _ = write!(line, "  goal {goal}{verdict}");
        }
        println!("{line}");
        self.rows.push(row);
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## {} (`{}`)\n", self.title, self.bench);
        let _ = writeln!(s, "Configuration: {}.\n", self.config);
        s.push_str("| contender | metric | min | median | max | ratio vs reference (median [min, max]) | goal | met/missed |\n");
        s.push_str("|---|---|---:|---:|---:|---|---|---|\n");
        for r in &self.rows {
            let (min, med, max) = match r.spread {
                Some(sp) => (fmt_num(sp.min), fmt_num(sp.median), fmt_num(sp.max)),
                None => ("n/a".into(), "n/a".into(), "n/a".into()),
            };
            let ratio = match &r.ratio {
                Some((name, Some(sp))) => {
                    format!("{:.3} [{:.3}, {:.3}] vs {name}", sp.median, sp.min, sp.max)
                }
                Some((name, None)) => format!("n/a vs {name}"),
                None => "—".into(),
            };
            let goal = r.goal.clone().unwrap_or_else(|| "—".into());
            let met = match (r.met, &r.goal) {
                (Some(true), _) => "met",
                (Some(false), _) => "**missed**",
                (None, Some(_)) => "n/a (not measured)",
                (None, None) => "—",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {min} | {med} | {max} | {} | {} | {met} |",
                super::summary::md_cell(&r.contender),
                super::summary::md_cell(&r.metric),
                super::summary::md_cell(&ratio),
                super::summary::md_cell(&goal)
            );
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        for block in &self.carried {
            let _ = write!(
                s,
                "\n{}\n{}\n{}\n",
                super::summary::CARRY_BEGIN,
                block.trim(),
                super::summary::CARRY_END
            );
        }
        s
    }

    /// Writes (or replaces) this bench's section of the report file and says where.
    pub fn write(&self) {
        let path = report_path();
        match update_report(&path, self.bench, &self.markdown()) {
            Ok(()) => println!("   report section `{}` written to {}", self.bench, path.display()),
            Err(e) => {
                eprintln!("   could not write {}: {e}", path.display());
                return;
            }
        }
        if let Err(e) = super::summary::refresh(&path, self.publish) {
            eprintln!("   could not write the summary of {}: {e}", path.display());
        }
    }
}

/// `target/bench-report.md` of this package (`BENCH_REPORT` overrides the path).
pub fn report_path() -> PathBuf {
    if let Ok(p) = std::env::var("BENCH_REPORT") {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench-report.md")
}

fn update_report(path: &std::path::Path, bench: &str, section: &str) -> io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    // Existing sections, by name.
    let mut sections: Vec<(String, String)> = Vec::new();
    let mut rest = old.as_str();
    while let Some(start) = rest.find("<!-- bench:") {
        let after = &rest[start + "<!-- bench:".len()..];
        let Some(name_end) = after.find(" -->") else { break };
        let name = after[..name_end].to_string();
        let end_marker = format!("<!-- /bench:{name} -->");
        let body_start = name_end + " -->".len();
        let Some(body_len) = after[body_start..].find(&end_marker) else {
            break;
        };
        let body = after[body_start..body_start + body_len].trim().to_string();
        rest = &after[body_start + body_len + end_marker.len()..];
        sections.retain(|(n, _)| *n != name);
        sections.push((name, body));
    }
    sections.retain(|(n, _)| n != bench);
    sections.push((bench.to_string(), section.trim().to_string()));
    let rank = |n: &str| SECTION_ORDER.iter().position(|o| *o == n).unwrap_or(usize::MAX);
    sections.sort_by_key(|(n, _)| rank(n));

    let mut out = String::from("# portable-reactor benchmark report\n\n");
    out.push_str(&machine_description());
    out.push_str(
        "Written by `cargo bench` (each bench replaces its own section; the machine lines are \
         those of the last bench run). Contenders run interleaved in rounds; ratios are medians \
         of per-round ratios, with [min, max]; a goal is judged met or missed on the median \
         ratio.\n\n",
    );
    for (name, body) in &sections {
        let _ = write!(out, "<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->\n\n");
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, out)?;
    std::fs::rename(&tmp, path)
}

/// The first line `cmd --version`-style output of a program, if it runs.
fn program_version(program: &str, arg: &str) -> Option<String> {
    let out = Command::new(program)
        .arg(arg)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    (out.status.success() && !line.is_empty()).then(|| line.to_string())
}

/// A short description of the machine that heads the report: CPU model, cores, kernel,
/// rustc and Node.js versions.
pub fn machine_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            let (key, value) = l.split_once(':')?;
            matches!(key.trim(), "model name" | "Hardware" | "Processor" | "cpu model")
                .then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| format!("unknown ({})", std::env::consts::ARCH));
    // From /proc/cpuinfo, not the affinity mask: the bench pins itself before writing.
    let logical = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
    let physical: std::collections::BTreeSet<(String, String)> = {
        let (mut package, mut set) = (String::new(), std::collections::BTreeSet::new());
        for l in cpuinfo.lines() {
            if let Some((key, value)) = l.split_once(':') {
                match key.trim() {
                    "physical id" => package = value.trim().to_string(),
                    "core id" => {
                        set.insert((package.clone(), value.trim().to_string()));
                    }
                    _ => {}
                }
            }
        }
        set
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!("{} {}", std::env::consts::OS, k.trim()))
        .ok()
        .or_else(|| program_version("uname", "-sr"))
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let rustc = std::env::var("RUSTC")
        .ok()
        .and_then(|r| program_version(&r, "--version"))
        .or_else(|| program_version("rustc", "--version"))
        .unwrap_or_else(|| "unknown".into());
    let node = node()
        .and_then(|n| program_version(&n.to_string_lossy(), "--version"))
        .unwrap_or_else(|| "not installed".into());
    let cores = match (logical, physical.len()) {
        (0, _) => format!("{} logical", cpus()),
        (l, 0) => format!("{l} logical"),
        (l, p) => format!("{p} physical, {l} logical"),
    };
    format!(
        "Machine: {cpu_model}; {cores} cores; kernel {kernel}; {rustc}; Node.js {node}.\n\n\
         - CPU: {cpu_model}\n- cores: {cores}\n- kernel: {kernel}\n- rustc: {rustc}\n- node: {node}\n\n"
    )
}
