//! JUnit XML and JSON, written by hand (no serde).

use std::fmt::Write as _;
use std::time::Duration;

use super::report::{summary, Outcome, Report};
use crate::conformance::VERSION;

/// The JUnit XML of `report`: `testsuites` > one `testsuite` per backend (with `properties`:
/// suite version, OS, arch, mechanism, wait scale, timeout, declared deviations) > one
/// `testcase` per behaviour. A failure is `<failure>`; a declared deviation that failed and a
/// behaviour that does not apply are `<skipped>` with the reason in `message`; a stale
/// declaration passes with a `<system-out>` saying so.
pub(super) fn junit(report: &Report) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let failures = report.unexpected_failures();
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">",
        xml(&format!("portable-reactor conformance {VERSION}")),
        report.cells.len(),
        secs(report.duration)
    );
    for (b, info) in report.backends.iter().enumerate() {
        let c = report.counts(b);
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" \
             time=\"{}\" package=\"portable_reactor.conformance\">",
            xml(info.name),
            c.pass + c.fail + c.deviation + c.stale + c.not_applicable,
            c.fail,
            c.deviation + c.not_applicable,
            secs(c.duration)
        );
        x.push_str("    <properties>\n");
        let mut props: Vec<(String, String)> = vec![
            ("suite_version".into(), VERSION.into()),
            ("os".into(), report.os().into()),
            ("arch".into(), report.arch().into()),
            ("mechanism".into(), info.mechanism.clone()),
            ("wait_scale".into(), report.wait_scale.to_string()),
            ("timeout_secs".into(), secs(report.timeout)),
        ];
        for d in info.deviations {
            props.push((format!("deviation:{}", d.behaviour), d.reason.into()));
        }
        for (name, value) in props {
            let _ = writeln!(
                x,
                "      <property name=\"{}\" value=\"{}\"/>",
                xml(&name),
                xml(&value)
            );
        }
        x.push_str("    </properties>\n");
        for cell in report.cells.iter().filter(|c| c.backend == b) {
            let behaviour = report.behaviours[cell.behaviour];
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                xml(behaviour.name),
                xml(&format!("conformance.{}.{}", info.name, behaviour.group)),
                secs(cell.duration)
            );
            match &cell.outcome {
                Outcome::Pass => x.push_str("/>\n"),
                Outcome::Fail(message) => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\" type=\"failure\">{}</failure>\n    </testcase>",
                        xml(&summary(message)),
                        xml(message)
                    );
                }
                Outcome::Deviation { reason, message } => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\">{}</skipped>\n    </testcase>",
                        xml(&format!("declared deviation: {reason}")),
                        xml(message)
                    );
                }
                Outcome::StaleDeviation(reason) => {
                    let _ = writeln!(
                        x,
                        ">\n      <system-out>{}</system-out>\n    </testcase>",
                        xml(&format!("deviation passes (stale declaration): {reason}"))
                    );
                }
                Outcome::NotApplicable(reason) => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        xml(&format!("not applicable: {reason}"))
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// The JSON of `report`, in the layout the [runner's docs](super#json) document.
pub(super) fn json(report: &Report) -> String {
    let mut j = String::from("{\n");
    let _ = writeln!(j, "  \"schema\": 1,");
    let _ = writeln!(j, "  \"suite_version\": {},", js(VERSION));
    let _ = writeln!(j, "  \"os\": {},", js(report.os()));
    let _ = writeln!(j, "  \"arch\": {},", js(report.arch()));
    let _ = writeln!(j, "  \"wait_scale\": {},", report.wait_scale);
    let _ = writeln!(j, "  \"timeout_secs\": {},", secs(report.timeout));
    let _ = writeln!(j, "  \"duration_secs\": {},", secs(report.duration));
    let _ = writeln!(j, "  \"exit_code\": {},", report.exit_code());
    let _ = writeln!(j, "  \"unexpected_failures\": {},", report.unexpected_failures());
    j.push_str("  \"backends\": [");
    for (b, info) in report.backends.iter().enumerate() {
        let c = report.counts(b);
        let deviations: Vec<String> = info
            .deviations
            .iter()
            .map(|d| {
                format!(
                    "{{\"behaviour\": {}, \"reason\": {}}}",
                    js(d.behaviour),
                    js(d.reason)
                )
            })
            .collect();
        let _ = write!(
            j,
            "{}\n    {{\"name\": {}, \"mechanism\": {}, \"duration_secs\": {}, \"pass\": {}, \
             \"fail\": {}, \"deviation\": {}, \"stale_deviation\": {}, \"not_applicable\": {}, \
             \"deviations\": [{}]}}",
            if b == 0 { "" } else { "," },
            js(info.name),
            js(&info.mechanism),
            secs(c.duration),
            c.pass,
            c.fail,
            c.deviation,
            c.stale,
            c.not_applicable,
            deviations.join(", ")
        );
    }
    j.push_str("\n  ],\n  \"behaviours\": [");
    for (h, b) in report.behaviours.iter().enumerate() {
        let _ = write!(
            j,
            "{}\n    {{\"name\": {}, \"group\": {}, \"contract\": {}}}",
            if h == 0 { "" } else { "," },
            js(b.name),
            js(b.group),
            js(b.contract)
        );
    }
    j.push_str("\n  ],\n  \"results\": [");
    for (i, cell) in report.cells.iter().enumerate() {
        let behaviour = report.behaviours[cell.behaviour];
        let _ = write!(
            j,
            "{}\n    {{\"backend\": {}, \"behaviour\": {}, \"group\": {}, \"status\": {}, \
             \"reason\": {}, \"message\": {}, \"duration_secs\": {}}}",
            if i == 0 { "" } else { "," },
            js(report.backends[cell.backend].name),
            js(behaviour.name),
            js(behaviour.group),
            js(cell.outcome.status()),
            cell.outcome.reason().map_or("null".into(), js),
            cell.outcome.message().map_or("null".into(), js),
            secs(cell.duration)
        );
    }
    j.push_str("\n  ]\n}\n");
    j
}

/// Seconds with millisecond precision: `0.012`.
fn secs(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// `s` escaped for XML text and attribute values; characters XML 1.0 cannot carry (most
/// control characters, such as a terminal's escapes) become U+FFFD.
pub(super) fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `s` as a JSON string literal.
pub(super) fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_everything() {
        assert_eq!(
            xml("a<b>&\"c\"'\u{1b}[31m\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;\u{fffd}[31m&#10;"
        );
    }

    #[test]
    fn json_escapes_everything() {
        assert_eq!(js("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
