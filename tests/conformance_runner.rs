//! The conformance runner, driven as a backend author drives it: this file is its own binary
//! (`harness = false`), whose `main` is both the runner (with `--child`, what the runner
//! re-executes for every behaviour) and the test, which calls
//! [`runner::run`](portable_reactor::conformance::runner::run) with backends that have planted
//! bugs and checks the exit status, the matrix and the three files.
//!
//! `cargo test --features conformance --test conformance_runner`

mod util;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use portable_reactor::conformance::runner::{self, Backend};
use portable_reactor::conformance::{Deviation, BEHAVIOURS, VERSION};
use portable_reactor::{BorrowedSource, EventId, Events, Interest, Mode, PollingReactor, Reactor};

/// The planted bug: [`PollingReactor`], but every source is reported under its id plus one
/// (`reports readiness under a wrong id`), or, with `HANG`, every poll hangs.
struct Planted<const HANG: bool>(PollingReactor);

impl<const HANG: bool> Planted<HANG> {
    fn boxed() -> Box<dyn Reactor> {
        Box::new(Planted::<HANG>(
            PollingReactor::new().expect("PollingReactor::new"),
        ))
    }
}

fn wrong(id: EventId) -> EventId {
    EventId(id.0.wrapping_add(1))
}

impl<const HANG: bool> Reactor for Planted<HANG> {
    unsafe fn register(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        // SAFETY: the caller keeps the source open until it is deregistered, as required.
        unsafe { self.0.register(source, wrong(id), interest, mode) }
    }

    fn reregister(
        &self,
        source: BorrowedSource<'_>,
        id: EventId,
        interest: Interest,
        mode: Mode,
    ) -> io::Result<()> {
        self.0.reregister(source, wrong(id), interest, mode)
    }

    fn poll(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<usize> {
        if HANG {
            // The planted hang: the runner must kill this child after --timeout (a second).
            // Bounded all the same, so a child the runner failed to kill cannot outlive the run.
            std::thread::sleep(Duration::from_secs(120));
            std::process::exit(3);
        }
        self.0.poll(events, timeout)
    }
    crate::forward_reactor!(0; deregister, waker, mechanism, supports, hints, name);
}

const BEHAVIOUR: &str = "readable_after_peer_write";
const PLANTED_REASON: &str = "planted: reports every source under its id plus one";

fn polling() -> Box<dyn Reactor> {
    Box::new(PollingReactor::new().expect("PollingReactor::new"))
}

const BACKENDS: &[Backend] = &[
    Backend::new("polling", polling),
    Backend::new("planted", Planted::<false>::boxed),
    Backend::new("declared", Planted::<false>::boxed)
        .with_deviations(&[Deviation::new(BEHAVIOUR, PLANTED_REASON)]),
    Backend::new("stale", polling).with_deviations(&[Deviation::new(BEHAVIOUR, "declared, but it passes")]),
    Backend::new("hang", Planted::<true>::boxed),
    Backend::new("panics", || panic!("the planted constructor panic")),
];

/// One scenario: gets a fresh output directory, panics on failure.
type Test = fn(&Path);

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--child") {
        runner::main(BACKENDS);
    }
    let tests: [(&str, Test); 5] = [
        ("planted_bug_fails_and_exits_1", planted_bug_fails_and_exits_1),
        (
            "declared_deviations_show_and_exit_0",
            declared_deviations_show_and_exit_0,
        ),
        (
            "hang_and_panic_are_that_cells_failure",
            hang_and_panic_are_that_cells_failure,
        ),
        ("usage_errors_exit_2", usage_errors_exit_2),
        ("list_names_every_behaviour", list_names_every_behaviour),
    ];
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance_runner");
    let mut ran = 0;
    for (name, test) in tests {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        eprintln!("test {name} ...");
        let dir = base.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        test(&dir);
        eprintln!("test {name} ... ok");
        ran += 1;
    }
    eprintln!("test result: ok. {ran} passed");
}

/// Runs the runner with `args` (plus `--out dir`); returns the exit status and the stdout.
fn run(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--out".to_string(), dir.display().to_string()]);
    let mut stdout = Vec::new();
    let code = runner::run(&args, BACKENDS, &mut stdout);
    let stdout = String::from_utf8(stdout).expect("UTF-8 markdown");
    println!("{stdout}");
    (code, stdout)
}

/// The matrix row of `behaviour`.
fn row<'a>(markdown: &'a str, behaviour: &str) -> &'a str {
    let needle = format!("| `{behaviour}` |");
    markdown
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no row for {behaviour} in\n{markdown}"))
}

/// The three files, read back; the JUnit checked for well-formedness (and against
/// ci/junit.xsd where xmllint is installed).
fn files(dir: &Path) -> (String, String, String) {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (md, junit, json) = (
        read("conformance.md"),
        read("conformance.junit.xml"),
        read("conformance.json"),
    );
    check_well_formed(&junit);
    validate_junit(&dir.join("conformance.junit.xml"));
    assert!(
        json.contains(&format!("\"suite_version\": \"{VERSION}\"")),
        "{json}"
    );
    assert!(json.trim_start().starts_with('{') && json.trim_end().ends_with('}'));
    (md, junit, json)
}

fn planted_bug_fails_and_exits_1(dir: &Path) {
    let (code, stdout) = run(dir, &["--backend", "planted,polling", "--filter", BEHAVIOUR]);
    assert_eq!(code, 1, "a planted bug is an unexpected failure");
    let row = row(&stdout, BEHAVIOUR);
    let cells: Vec<&str> = row.split(" | ").collect();
    assert!(cells[3].contains("**FAIL**"), "planted: {row}");
    assert!(cells[3].contains("expected exactly one event for #7"), "{row}");
    assert!(cells[4].starts_with("pass"), "polling: {row}");
    let (md, junit, json) = files(dir);
    assert_eq!(md, stdout, "the file is what stdout shows");
    assert!(md.contains(VERSION) && md.contains(std::env::consts::OS), "{md}");
    assert!(md.contains("1 unexpected failure"), "{md}");
    assert!(junit.contains("<failure message=\""), "{junit}");
    assert!(junit.contains("testsuites") && junit.contains("name=\"planted\""));
    assert!(junit.contains("<property name=\"suite_version\""), "{junit}");
    assert!(json.contains("\"status\": \"fail\""), "{json}");
    assert!(json.contains("\"exit_code\": 1"), "{json}");
}

fn declared_deviations_show_and_exit_0(dir: &Path) {
    let (code, stdout) = run(dir, &["--backend", "declared,stale", "--filter", BEHAVIOUR]);
    assert_eq!(code, 0, "declared deviations are not failures");
    let row = row(&stdout, BEHAVIOUR);
    assert!(row.contains(&format!("deviation: {PLANTED_REASON}")), "{row}");
    assert!(
        row.contains("deviation passes (stale declaration): declared, but it passes"),
        "{row}"
    );
    let (_, junit, json) = files(dir);
    assert!(junit.contains(&format!(
        "<skipped message=\"declared deviation: {PLANTED_REASON}\""
    )));
    assert!(junit.contains("deviation passes (stale declaration)"), "{junit}");
    assert!(json.contains("\"status\": \"deviation\""), "{json}");
    assert!(json.contains("\"status\": \"stale_deviation\""), "{json}");
    assert!(
        json.contains(&format!("\"reason\": \"{PLANTED_REASON}\"")),
        "{json}"
    );
}

fn hang_and_panic_are_that_cells_failure(dir: &Path) {
    let (code, stdout) = run(
        dir,
        &[
            "--backend",
            "hang,panics,polling",
            "--filter",
            BEHAVIOUR,
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code, 1);
    let row = row(&stdout, BEHAVIOUR);
    let cells: Vec<&str> = row.split(" | ").collect();
    assert!(cells[3].contains("timed out after"), "hang: {row}");
    assert!(
        cells[4].contains("the planted constructor panic"),
        "panics: {row}"
    );
    assert!(cells[5].starts_with("pass"), "the rest still run: {row}");
    let (md, _, _) = files(dir);
    assert!(md.contains("2 unexpected failure"), "{md}");
}

fn usage_errors_exit_2(dir: &Path) {
    for args in [
        &["--backend", "nope"][..],
        &["--format", "xml"],
        &["--filter", "no_such_behaviour"],
        &["--timeout", "-1"],
        &["--frobnicate"],
    ] {
        assert_eq!(run(dir, args).0, 2, "{args:?}");
    }
}

fn list_names_every_behaviour(dir: &Path) {
    let (code, stdout) = run(dir, &["--list"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), BEHAVIOURS.len());
    for b in BEHAVIOURS {
        assert!(
            stdout.contains(&format!("{}::{}\t", b.group, b.name)),
            "{}",
            b.name
        );
    }
}

/// A small XML well-formedness check: one root, balanced tags, quoted attributes, only the
/// five predefined entities or character references.
fn check_well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let name = tag.split_whitespace().next().expect("tag name");
            let attrs = &tag[name.len()..];
            assert_eq!(attrs.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
            check_text(attrs);
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name.to_string());
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(rest.trim().is_empty() && stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "one root element");
}

fn check_text(text: &str) {
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..text[i..].find(';').expect("unterminated entity") + i + 1];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity) || entity.starts_with("&#"),
            "bad entity {entity}"
        );
    }
    assert!(
        !text.contains('<') && !text.contains('>'),
        "raw angle bracket in {text:?}"
    );
    assert!(
        !text
            .chars()
            .any(|c| c < ' ' && c != '\n' && c != '\t' && c != '\r'),
        "a control character XML cannot carry in {text:?}"
    );
}

/// `xmllint --noout --schema ci/junit.xsd FILE`, where xmllint is installed.
fn validate_junit(file: &Path) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/junit.xsd");
    match Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(&schema)
        .arg(file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{} does not validate against ci/junit.xsd:\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("note: xmllint not available ({e}); JUnit checked for well-formedness only"),
    }
}
