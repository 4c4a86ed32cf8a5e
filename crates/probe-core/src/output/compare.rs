//! `rollprobe compare`: several reports side by side, as an aligned text table,
//! CSV or JSON.
//!
//! Every row says whether its run is a valid measurement, because an invalid
//! run's figures (often the best-looking ones: an overloaded prober sends little
//! and sees little fail) are the prober's, not the target's. The recommendation
//! (the text's last line, the JSON's key; the html page is matrix.html's) is the
//! matrix's, by the same rule, so the two commands never disagree.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::format::table::aligned_table;
use crate::format::times::duration;
use crate::matrix::Matrix;
use crate::report::Report;

/// One row of `rollprobe compare`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// The run's label (or its file name); for a run of several streams, followed by
    /// the stream's name: each stream has its own row.
    pub label: String,
    /// The stream the row is about (`local-fresh` for a one-stream run of a version
    /// that did not record streams).
    pub stream: String,
    /// Requests sent.
    pub sent: u64,
    /// Target failures.
    pub failed: u64,
    /// Total downtime, ms.
    pub downtime_ms: f64,
    /// Longest window, ms.
    pub longest_ms: f64,
    /// Failures by kind.
    pub failures: std::collections::BTreeMap<String, u64>,
    /// p99 latency of ok answers, ms.
    pub p99_ms: f64,
    /// Versions that answered, in order.
    pub versions: Vec<String>,
    /// The run is a valid measurement (`Report::is_valid`).
    pub valid: bool,
    /// Why it is not, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
}

/// The comparison of several runs, one row each.
///
/// ```
/// # fn demo(a: probe_core::Report, b: probe_core::Report) {
/// let table = probe_core::Comparison::new(&[a, b]);
/// println!("{}", table.to_text());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// One row per report, in the given order.
    pub rows: Vec<ComparisonRow>,
    /// The recommendation line ([`Matrix::recommendation`] over the same reports),
    /// when there are at least two runs to choose between.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
}

impl Comparison {
    /// Builds the rows: one per report, or one per stream of a report with several.
    pub fn new(reports: &[Report]) -> Comparison {
        let mut rows = Vec::new();
        for (i, r) in reports.iter().enumerate() {
            let label = r.label.clone().unwrap_or_else(|| format!("run{}", i + 1));
            if r.streams.len() > 1 {
                rows.extend(r.streams.iter().map(|s| ComparisonRow {
                    label: format!("{label} {}", s.name),
                    stream: s.name.clone(),
                    sent: s.totals.sent,
                    failed: s.totals.failed,
                    downtime_ms: s.downtime.total_ms,
                    longest_ms: s.downtime.longest_ms,
                    failures: s.failures.clone(),
                    p99_ms: s.latency_ms.p99,
                    versions: s.versions.iter().map(|v| v.version.clone()).collect(),
                    valid: r.valid,
                    invalid_reason: r.invalid_reason.clone(),
                }));
                continue;
            }
            rows.push(ComparisonRow {
                label,
                stream: r
                    .streams
                    .first()
                    .map(|s| s.name.clone())
                    .unwrap_or_else(|| format!("local-{}", r.config.connection)),
                sent: r.totals.sent,
                failed: r.totals.failed,
                downtime_ms: r.downtime.total_ms,
                longest_ms: r.downtime.longest_ms,
                failures: r.failures.clone(),
                p99_ms: r.latency_ms.p99,
                versions: r.versions.iter().map(|v| v.version.clone()).collect(),
                valid: r.valid,
                invalid_reason: r.invalid_reason.clone(),
            });
        }
        let matrix = Matrix::from_report_refs(reports.iter().map(|r| (r, None)));
        Comparison {
            rows,
            recommendation: matrix.recommendation().map(|r| r.line()),
        }
    }

    fn kinds(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.rows.iter().flat_map(|r| r.failures.keys()).collect();
        set.into_iter().cloned().collect()
    }

    /// An aligned text table (one row per run), then a line for each run that is not
    /// a valid measurement, then the recommendation line (as in the JSON and the html
    /// page) when there are runs to choose between.
    pub fn to_text(&self) -> String {
        let kinds = self.kinds();
        let mut header = vec![
            "label".to_string(),
            "valid".into(),
            "sent".into(),
            "failed".into(),
            "downtime".into(),
            "longest".into(),
        ];
        header.extend(kinds.iter().cloned());
        header.extend(["p99".to_string(), "versions".into()]);
        let mut rows = vec![header];
        for r in &self.rows {
            let mut row = vec![
                r.label.clone(),
                if r.valid { "yes" } else { "NO" }.to_string(),
                r.sent.to_string(),
                r.failed.to_string(),
                duration(r.downtime_ms),
                duration(r.longest_ms),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| r.failures.get(k).copied().unwrap_or(0).to_string()),
            );
            row.extend([format!("{:.2} ms", r.p99_ms), r.versions.join(" -> ")]);
            rows.push(row);
        }
        let mut text = aligned_table(&rows, true);
        for r in self.rows.iter().filter(|r| !r.valid) {
            let reason = r.invalid_reason.as_deref().unwrap_or("the run says so");
            let _ = writeln!(text, "{}: not a valid measurement: {reason}", r.label);
        }
        if let Some(line) = &self.recommendation {
            let _ = writeln!(text, "{line}");
        }
        text
    }

    /// CSV with a column per failure kind.
    pub fn to_csv(&self) -> String {
        let kinds = self.kinds();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["label", "sent", "failed", "downtime_ms", "longest_ms"];
        header.extend(kinds.iter().map(String::as_str));
        header.extend(["p99_ms", "versions", "valid"]);
        let _ = w.write_record(&header);
        for r in &self.rows {
            let mut row = vec![
                r.label.clone(),
                r.sent.to_string(),
                r.failed.to_string(),
                r.downtime_ms.to_string(),
                r.longest_ms.to_string(),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| r.failures.get(k).copied().unwrap_or(0).to_string()),
            );
            row.extend([
                r.p99_ms.to_string(),
                r.versions.join(" "),
                r.valid.to_string(),
            ]);
            let _ = w.write_record(&row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a comparison always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::html::tests::{base_report, invalid_report};

    #[test]
    fn every_format_says_which_run_is_valid_and_an_invalid_one_is_never_recommended() {
        // Issue 24 case 4: the invalid run lost nothing, the valid one lost 300 ms.
        let reports = [
            invalid_report("overloaded"),
            base_report("recreate", "http://127.0.0.1:1/"),
        ];
        let c = Comparison::new(&reports);
        let text = c.to_text();
        let first_two = |line: &str| {
            line.split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        let lines: Vec<String> = text.lines().take(3).map(first_two).collect();
        assert_eq!(
            lines,
            ["label valid", "overloaded NO", "recreate yes"],
            "{text}"
        );
        assert!(
            text.contains("overloaded: not a valid measurement: 91983 of 94983 ticks"),
            "{text}"
        );
        // The table, the invalid run's line, and the recommendation, as in the JSON.
        assert_eq!(text.lines().count(), 5, "{text}");
        assert_eq!(text.lines().last(), c.recommendation.as_deref(), "{text}");

        let csv = c.to_csv();
        assert!(
            csv.lines()
                .next()
                .unwrap()
                .ends_with(",p99_ms,versions,valid"),
            "{csv}"
        );
        assert!(csv.lines().nth(1).unwrap().ends_with(",false"), "{csv}");
        assert!(csv.lines().nth(2).unwrap().ends_with(",true"), "{csv}");

        let json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
        assert_eq!(json["rows"][0]["valid"], false);
        assert!(json["rows"][0]["invalid_reason"]
            .as_str()
            .unwrap()
            .starts_with("91983"));
        assert_eq!(json["rows"][1]["valid"], true);
        assert!(json["rows"][1].get("invalid_reason").is_none());
        assert!(
            json["recommendation"].as_str().unwrap().starts_with(
                "recommendation: no case is better beyond the run-to-run spread (overloaded no valid run"
            ),
            "{json}"
        );
    }

    #[test]
    fn a_single_report_has_no_recommendation() {
        let c = Comparison::new(&[base_report("solo", "http://127.0.0.1:1/")]);
        assert_eq!(c.recommendation, None);
        assert!(!c.to_json().contains("recommendation"));
        assert!(!c.to_text().contains("recommendation"), "{}", c.to_text());
    }
}
