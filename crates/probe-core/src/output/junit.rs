//! JUnit XML for CI systems: one testsuite per run, one testcase per check of the
//! gate ("measurement valid", each `--max-failures`, `--max-downtime`), a failure
//! message that says which threshold and by how much.
//!
//! Written by hand: the format is a few elements, and escaping is the only subtle
//! part (every name and message can hold user text).

use std::fmt::Write as _;

use crate::gate::GateCheck;
use crate::report::Report;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 allows no other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// The JUnit XML document of one run's gate.
///
/// ```
/// # let report: Option<probe_core::Report> = None;
/// # if let Some(report) = report {
/// let gate = probe_core::Thresholds { max_failures: Some(0), ..Default::default() };
/// let xml = probe_core::output::junit::render(&report, &gate.checks(&report));
/// assert!(xml.contains("<testsuite"));
/// # }
/// ```
pub fn render(report: &Report, checks: &[GateCheck]) -> String {
    render_suites(&[(report, checks.to_vec())])
}

/// The JUnit XML document of several runs (a strategy matrix): one testsuite per
/// run, named by its label, each with the run's checks.
///
/// ```
/// # let reports: Vec<probe_core::Report> = Vec::new();
/// let gate = probe_core::Thresholds::default();
/// let runs: Vec<_> = reports.iter().map(|r| (r, gate.checks(r))).collect();
/// let xml = probe_core::output::junit::render_suites(&runs);
/// assert!(xml.starts_with("<?xml"));
/// ```
pub fn render_suites(runs: &[(&Report, Vec<GateCheck>)]) -> String {
    let tests: usize = runs.iter().map(|(_, c)| c.len()).sum();
    let failures: usize = runs
        .iter()
        .map(|(_, c)| c.iter().filter(|c| c.failure.is_some()).count())
        .sum();
    let seconds: f64 = runs.iter().map(|(r, _)| r.duration_ms / 1000.0).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"rollprobe\" tests=\"{tests}\" failures=\"{failures}\" time=\"{seconds:.3}\">"
    );
    for (report, checks) in runs {
        suite(&mut xml, report, checks);
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn suite(xml: &mut String, report: &Report, checks: &[GateCheck]) {
    let name = report.label.as_deref().unwrap_or("rollprobe");
    let failures = checks.iter().filter(|c| c.failure.is_some()).count();
    let seconds = report.duration_ms / 1000.0;
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{seconds:.3}\" timestamp=\"{}\">",
        escape(name),
        checks.len(),
        escape(&report.started_at)
    );
    let _ = writeln!(
        xml,
        "    <properties><property name=\"target\" value=\"{}\"/></properties>",
        escape(&report.target)
    );
    for check in checks {
        let _ = write!(
            xml,
            "    <testcase classname=\"rollprobe.{}\" name=\"{}\" time=\"{seconds:.3}\"",
            escape(name),
            escape(&check.name)
        );
        match &check.failure {
            None => xml.push_str("/>\n"),
            Some(message) => {
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{}\" type=\"threshold\">{}</failure>\n    </testcase>",
                    escape(message),
                    escape(&report.summary())
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages_are_escaped() {
        assert_eq!(escape("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn a_matrix_has_one_testsuite_per_run() {
        let a = crate::output::html::tests::base_report("recreate#1", "http://127.0.0.1:1/");
        let b = crate::output::html::tests::base_report("recreate#2", "http://127.0.0.1:1/");
        let gate = crate::gate::Thresholds {
            max_failures: Some(0),
            ..Default::default()
        };
        let runs = vec![(&a, gate.checks(&a)), (&b, gate.checks(&b))];
        let xml = render_suites(&runs);
        assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
        assert!(xml.contains("<testsuite name=\"recreate#2\" tests=\"2\" failures=\"1\""));
        assert!(xml.contains("<testsuites name=\"rollprobe\" tests=\"4\" failures=\"2\""));
        assert_eq!(xml.matches("</testsuite>").count(), 2);
    }
}
