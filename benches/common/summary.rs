//! What a bench run publishes beyond its own report section: the goal rows of every section as
//! one table, the same ratios drawn as an SVG plot (median dot, min-max band of the rounds,
//! goal tick, parity line), and the instruction and syscall counts of the echo bench.
//!
//! After each bench writes its section of `target/bench-report.md`, [`refresh`] reads the
//! whole report back and writes `target/bench-summary.md` and `target/bench-report.svg`. A
//! full run (not `BENCH_QUICK`, no name filter, the default report path, `BENCH_PUBLISH` not
//! `0`) also publishes: `benches/results/latest.md`, `benches/results/latest.svg`, and the
//! README block between [`README_BEGIN`] and [`README_END`]. The report file is the only
//! source: the README table and the plot always show the same figures.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::{fmt_num, Spread};

/// The line that opens the README's generated block.
pub const README_BEGIN: &str =
    "<!-- bench-summary:begin (written by `cargo bench`: benches/common/summary.rs) -->";
/// The line that closes it.
pub const README_END: &str = "<!-- bench-summary:end -->";
/// Markers around a verbatim block of a section that the summary carries over (the echo
/// bench's counts).
pub const CARRY_BEGIN: &str = "<!-- carry -->";
/// Closes a carried block.
pub const CARRY_END: &str = "<!-- /carry -->";

/// A report row with a ratio and a goal: what the README claims.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The section's title (e.g. `Bench 2: echo server round trips`).
    pub bench: String,
    /// Who was measured.
    pub contender: String,
    /// What was measured.
    pub metric: String,
    /// The reference of the ratio (`None`: the goal is on the figure itself).
    pub reference: Option<String>,
    /// The per-round ratios' spread, or the figure's.
    pub ratio: Spread,
    /// The goal in words (`>= 0.97x`, `<= 1x`).
    pub goal: String,
    /// Met, missed, or not judged.
    pub met: Option<bool>,
}

impl Claim {
    /// The goal's bound, if it is a ratio bound.
    fn goal_value(&self) -> Option<f64> {
        self.goal
            .trim_start_matches(">=")
            .trim_start_matches("<=")
            .trim()
            .trim_end_matches('x')
            .parse()
            .ok()
    }
}

/// Parses `0.900 [0.828, 1.017] vs raw polling (Level)`.
fn parse_ratio(cell: &str) -> Option<(Spread, String)> {
    let (nums, reference) = cell.split_once(" vs ")?;
    let (median, band) = nums.trim().split_once(" [")?;
    let (min, max) = band.trim_end_matches(']').split_once(", ")?;
    let spread = Spread {
        min: min.trim().parse().ok()?,
        median: median.trim().parse().ok()?,
        max: max.trim().parse().ok()?,
    };
    Some((spread, reference.trim().to_string()))
}

/// The sections of a report, in order: (title, body).
fn sections(report: &str) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    let mut rest = report;
    while let Some(start) = rest.find("<!-- bench:") {
        let after = &rest[start..];
        let Some(open_end) = after.find(" -->") else { break };
        let name = &after["<!-- bench:".len()..open_end];
        let close = format!("<!-- /bench:{name} -->");
        let Some(body_len) = after.find(&close) else { break };
        let body = &after[open_end + " -->".len()..body_len];
        let title = body
            .lines()
            .find_map(|l| l.strip_prefix("## "))
            .map(|t| t.split(" (`").next().unwrap_or(t).to_string())
            .unwrap_or_else(|| name.to_string());
        out.push((title, body));
        rest = &after[body_len + close.len()..];
    }
    out
}

/// Parses a figure as `fmt_num` writes it (`1.2k`, `3.400M`, `n/a`).
fn parse_figure(cell: &str) -> Option<f64> {
    let (digits, scale) = match cell.chars().last()? {
        'k' => (&cell[..cell.len() - 1], 1e3),
        'M' => (&cell[..cell.len() - 1], 1e6),
        _ => (cell, 1.0),
    };
    digits.parse::<f64>().ok().map(|v| v * scale)
}

/// Undoes [`md_cell`]'s entities (an escaped `|` is handled where a row is split).
fn md_text(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">")
}

/// Every row of `report` that has a goal (on a ratio or on the figure), in report order.
pub fn claims(report: &str) -> Vec<Claim> {
    let mut out = Vec::new();
    for (title, body) in sections(report) {
        for line in body.lines() {
            // Cells hold no `|` of their own: `md_cell` escapes it, and `\|` is not split on.
            let unescaped = md_text(line.replace("\\|", "\u{1}").as_str());
            let cells: Vec<String> = unescaped
                .split('|')
                .map(|c| c.trim().replace('\u{1}', "|"))
                .collect();
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            // "| a | b | c | d | e | f | g | h |" splits into 10 cells, the outer two empty.
            if cells.len() != 10 || cells[7] == "—" {
                continue;
            }
            let (ratio, reference) = if cells[6] == "—" {
                let figure = |i: usize| parse_figure(cells[i]);
                let (Some(min), Some(median), Some(max)) = (figure(3), figure(4), figure(5)) else {
                    continue;
                };
                (Spread { min, median, max }, None)
            } else {
                let Some((ratio, reference)) = parse_ratio(cells[6]) else {
                    continue;
                };
                (ratio, Some(reference))
            };
            let met = match cells[8] {
                "met" => Some(true),
                "**missed**" => Some(false),
                _ => None,
            };
            out.push(Claim {
                bench: title.clone(),
                contender: cells[1].to_string(),
                metric: cells[2].to_string(),
                reference,
                ratio,
                goal: cells[7].to_string(),
                met,
            });
        }
    }
    out
}

/// The verbatim blocks the sections carry over (between [`CARRY_BEGIN`] and [`CARRY_END`]).
fn carried(report: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = report;
    while let Some(start) = rest.find(CARRY_BEGIN) {
        let after = &rest[start + CARRY_BEGIN.len()..];
        let Some(end) = after.find(CARRY_END) else { break };
        out.push(after[..end].trim());
        rest = &after[end + CARRY_END.len()..];
    }
    out
}

/// The markdown summary: the claims table, the plot, the carried blocks.
pub fn markdown(report: &str, plot_link: &str) -> String {
    let mut s = String::new();
    let machine = report
        .lines()
        .find(|l| l.starts_with("Machine: "))
        .unwrap_or("Machine: unknown.");
    let _ = writeln!(
        s,
        "{machine} Each contender runs interleaved with its peers in rounds; a ratio is the \
         median of the per-round ratios, [min, max] over the rounds; a goal is judged on the \
         median. Every section's run date and configuration are in the full report \
         ([`benches/results/latest.md`](benches/results/latest.md)).\n"
    );
    s.push_str("| bench | ours | metric | vs | ratio (or figure), median [min, max] | goal | |\n");
    s.push_str("|---|---|---|---|---|---|---|\n");
    for c in claims(report) {
        let verdict = match c.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "n/a",
        };
        let bench = c.bench.split(": ").nth(1).unwrap_or(&c.bench);
        let (vs, value) = match &c.reference {
            Some(reference) => (
                reference.as_str(),
                format!("{:.3} [{:.3}, {:.3}]", c.ratio.median, c.ratio.min, c.ratio.max),
            ),
            None if c.ratio.min == c.ratio.max => ("—", fmt_num(c.ratio.median)),
            None => (
                "—",
                format!(
                    "{} [{}, {}]",
                    fmt_num(c.ratio.median),
                    fmt_num(c.ratio.min),
                    fmt_num(c.ratio.max)
                ),
            ),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {value} | {} | {verdict} |",
            md_cell(bench),
            md_cell(&c.contender),
            md_cell(&c.metric),
            md_cell(vs),
            md_cell(&c.goal)
        );
    }
    let _ = writeln!(
        s,
        "\n![The ratios above: median, min-max band, goal]({plot_link})\n"
    );
    for block in carried(report) {
        s.push_str(block);
        s.push_str("\n\n");
    }
    s
}

/// A table cell's text for GitHub's markdown: `<` and `>` escaped (`Async<TcpStream>` would
/// be taken for an HTML tag and vanish), `|` too.
pub fn md_cell(s: &str) -> String {
    s.replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The ratio claims as an SVG plot (goals on a figure are in the table only): one line per
/// claim, grouped by bench, on a log scale; a band
/// from min to max, a dot at the median (green met, red missed, grey not judged), a tick at
/// the goal, and a line at parity (1.0).
pub fn svg(claims: &[Claim]) -> String {
    let claims: Vec<&Claim> = claims.iter().filter(|c| c.reference.is_some()).collect();
    const LABEL_W: f64 = 560.0;
    const PLOT_W: f64 = 420.0;
    const VALUE_W: f64 = 150.0;
    const ROW_H: f64 = 16.0;
    const TOP: f64 = 40.0;
    let width = LABEL_W + PLOT_W + VALUE_W;
    let (mut lo, mut hi) = (0.5f64, 2.0f64);
    for c in &claims {
        lo = lo.min(c.ratio.min * 0.9);
        hi = hi.max(c.ratio.max * 1.1);
    }
    let (lo, hi) = (lo.max(1e-3).log10(), hi.min(1e6).log10());
    let x = |v: f64| LABEL_W + (v.max(1e-3).log10() - lo) / (hi - lo) * PLOT_W;
    let mut rows = 0usize;
    let mut body = String::new();
    let mut last_bench = "";
    for c in &claims {
        if c.bench != last_bench {
            let y = TOP + rows as f64 * ROW_H + 12.0;
            let _ = writeln!(
                body,
                r#"<text x="4" y="{y:.1}" font-weight="bold">{}</text>"#,
                xml_escape(&c.bench)
            );
            rows += 1;
            last_bench = &c.bench;
        }
        let y = TOP + rows as f64 * ROW_H + 8.0;
        let reference = c.reference.as_deref().unwrap_or("");
        let mut label = format!("{} — {} vs {reference}", c.contender, c.metric);
        if label.chars().count() > 92 {
            label = label.chars().take(91).collect::<String>() + "…";
        }
        let colour = match c.met {
            Some(true) => "#1a7f37",
            Some(false) => "#cf222e",
            None => "#6e7781",
        };
        let _ = writeln!(
            body,
            r#"<text x="14" y="{:.1}">{}</text>"#,
            y + 4.0,
            xml_escape(&label)
        );
        let _ = writeln!(
            body,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" \
             stroke-opacity=\"0.35\" stroke-width=\"6\" stroke-linecap=\"round\"/>",
            x(c.ratio.min),
            x(c.ratio.max)
        );
        if let Some(g) = c.goal_value() {
            let _ = writeln!(
                body,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"#24292f\" \
                 stroke-width=\"1.5\"/>",
                x(g),
                y - 6.0,
                y + 6.0
            );
        }
        let _ = writeln!(
            body,
            r#"<circle cx="{:.1}" cy="{y:.1}" r="4" fill="{colour}"/>"#,
            x(c.ratio.median)
        );
        let _ = writeln!(
            body,
            r#"<text x="{:.1}" y="{:.1}">{:.3} ({})</text>"#,
            LABEL_W + PLOT_W + 8.0,
            y + 4.0,
            c.ratio.median,
            xml_escape(&c.goal)
        );
        rows += 1;
    }
    let height = TOP + rows as f64 * ROW_H + 30.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        "<text x=\"4\" y=\"16\" font-size=\"13\" font-weight=\"bold\">portable-reactor vs its \
         peers: median of per-round ratios, min-max band, goal tick (log scale)</text>"
    );
    // Grid: decades and their 2 and 5, within range.
    let bottom = height - 24.0;
    let mut decade = 10f64.powf(lo.floor());
    while decade <= 10f64.powf(hi) {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if v.log10() < lo || v.log10() > hi {
                continue;
            }
            let (stroke, w) = if (v - 1.0).abs() < 1e-9 {
                ("#24292f", 1.2)
            } else {
                ("#d0d7de", 0.6)
            };
            let _ = writeln!(
                s,
                "<line x1=\"{0:.1}\" y1=\"{TOP:.1}\" x2=\"{0:.1}\" y2=\"{bottom:.1}\" \
                 stroke=\"{stroke}\" stroke-width=\"{w}\"/>",
                x(v)
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x(v),
                bottom + 14.0,
                if v < 1.0 {
                    format!("{v}")
                } else {
                    format!("{v:.0}")
                }
            );
        }
        decade *= 10.0;
    }
    s.push_str(&body);
    s.push_str("</svg>\n");
    s
}

/// Replaces the block between [`README_BEGIN`] and [`README_END`] in `readme` with `block`;
/// `None` when the markers are missing or out of order.
pub fn replace_block(readme: &str, block: &str) -> Option<String> {
    let start = readme.find(README_BEGIN)?;
    let end = readme[start..].find(README_END)? + start;
    Some(format!(
        "{}{README_BEGIN}\n{}\n{}",
        &readme[..start],
        block.trim(),
        &readme[end..]
    ))
}

fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Writes the summary and the plot next to `report_path`; with `publish`, also
/// `benches/results/latest.{md,svg}` and the README block. Says what it wrote.
///
/// # Errors
///
/// Reading the report, or writing any of the files, fails; or the README has no block.
pub fn refresh(report_path: &Path, publish: bool) -> io::Result<()> {
    let report = std::fs::read_to_string(report_path)?;
    let plot = svg(&claims(&report));
    let svg_path = report_path.with_extension("svg");
    write_atomic(&svg_path, &plot)?;
    let summary_path = report_path.with_file_name("bench-summary.md");
    write_atomic(&summary_path, &markdown(&report, "bench-report.svg"))?;
    println!(
        "   summary {} and plot {}",
        summary_path.display(),
        svg_path.display()
    );
    if !publish {
        return Ok(());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    write_atomic(&root.join("benches/results/latest.md"), &report)?;
    write_atomic(&root.join("benches/results/latest.svg"), &plot)?;
    let readme_path = root.join("README.md");
    let readme = std::fs::read_to_string(&readme_path)?;
    let updated =
        replace_block(&readme, &markdown(&report, "benches/results/latest.svg")).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: no {README_BEGIN} ... {README_END} block",
                    readme_path.display()
                ),
            )
        })?;
    write_atomic(&readme_path, &updated)?;
    println!("   published: benches/results/latest.md, benches/results/latest.svg, the README's table");
    Ok(())
}
