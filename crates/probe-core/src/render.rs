//! Reports for people (the text summary, the comparison table) and for
//! spreadsheets (windows.csv, the comparison as CSV/JSON).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::outcome::Outcome;
use crate::report::Report;

/// Windows listed in the text summary; the files keep every one.
const MAX_WINDOWS_SHOWN: usize = 8;

fn secs(ms: f64) -> String {
    if ms.abs() < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.3} s", ms / 1000.0)
    }
}

fn at(ms: f64) -> String {
    format!("+{:.3} s", ms / 1000.0)
}

fn kinds_text(kinds: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = kinds.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The text summary of a report (what `Report::summary` returns).
pub(crate) fn summary(r: &Report) -> String {
    let mut out = String::new();
    let label = r.label.as_deref().unwrap_or("run");
    let _ = writeln!(
        out,
        "rollprobe {label}: {}  ({}, {} req/s, {}{})",
        r.target,
        r.config.connection,
        r.config.rate,
        secs(r.duration_ms),
        if r.interrupted { ", interrupted" } else { "" }
    );
    let t = &r.totals;
    let availability = t
        .availability
        .map(|a| format!("{:.3}%", a * 100.0))
        .unwrap_or_else(|| "n/a".into());
    let _ = writeln!(
        out,
        "  sent {}  ok {}  failed {}  availability {availability}  downtime {} in {} window{} (longest {})",
        t.sent,
        t.ok,
        t.failed,
        secs(r.downtime.total_ms),
        r.downtime.windows.len(),
        if r.downtime.windows.len() == 1 { "" } else { "s" },
        secs(r.downtime.longest_ms),
    );
    if let Some(lab) = &r.lab {
        let _ = writeln!(out, "  lab kernel settings: {}", lab.kernel);
    }
    if t.local > 0 {
        let _ = writeln!(
            out,
            "  WARNING: {} request(s) failed on the PROBER's side (local_*): they are not counted as downtime; see below",
            t.local
        );
    }
    if let Some(reason) = &r.invalid_reason {
        let _ = writeln!(out, "  NOT A VALID MEASUREMENT: {reason}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
    if !r.failure_details.is_empty() {
        let _ = writeln!(out, "\nFailures");
        let mut details = r.failure_details.clone();
        details.sort_by_key(|d| std::cmp::Reverse(d.count));
        for d in &details {
            let errno = match (&d.errno_name, &d.message) {
                (Some(name), Some(msg)) => format!(" ({name}, \"{msg}\")"),
                (None, Some(msg)) => format!(" (\"{msg}\")"),
                _ => String::new(),
            };
            let _ = writeln!(out, "  {}{errno} x {}: {}", d.kind, d.count, d.hint);
        }
    }
    if !r.downtime.windows.is_empty() {
        let _ = writeln!(out, "\nOutage windows");
        let windows = &r.downtime.windows;
        for (i, w) in windows.iter().enumerate().take(MAX_WINDOWS_SHOWN) {
            let after = w
                .after_event
                .as_ref()
                .map(|e| {
                    format!(
                        "  {} after {} {}",
                        secs(e.offset_ms),
                        e.kind,
                        if e.detail.is_empty() {
                            String::new()
                        } else {
                            format!("({})", e.detail)
                        }
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  #{} {} .. {}{}  {}  {} failed: {}{after}",
                i + 1,
                at(w.start_ms),
                at(w.end_ms),
                if w.open {
                    " (still open at the end)"
                } else {
                    ""
                },
                secs(w.duration_ms),
                w.failed,
                kinds_text(&w.kinds),
            );
            if w.syn_retransmitted > 0 {
                let _ = writeln!(
                    out,
                    "      {} of its failed connects had retransmitted their SYN",
                    w.syn_retransmitted
                );
            }
            if let Some(cause) = &w.cause {
                let _ = writeln!(out, "      cause: {cause}");
            }
        }
        if windows.len() > MAX_WINDOWS_SHOWN {
            let rest = &windows[MAX_WINDOWS_SHOWN..];
            let failed: u64 = rest.iter().map(|w| w.failed).sum();
            let down = rest.iter().fold(0.0, |acc, w| acc + w.duration_ms);
            let _ = writeln!(
                out,
                "  ... and {} more windows until {} ({} failed, {} down): report.json and windows.csv have them all",
                rest.len(),
                at(rest[rest.len() - 1].end_ms),
                failed,
                secs(down)
            );
        }
    }
    if !r.versions.is_empty() {
        let _ = writeln!(out, "\nVersions");
        for v in &r.versions {
            let _ = writeln!(
                out,
                "  {:<16} {} .. {}  {} answers",
                v.version,
                at(v.first_ms),
                at(v.last_ms),
                v.count
            );
        }
        if let Some(m) = &r.mixed {
            if m.end_ms >= m.start_ms {
                let _ = writeln!(
                    out,
                    "  mixed {}: {} and {} both answered from {} to {}; flips {}",
                    secs(r.mixed_ms),
                    m.old,
                    m.new,
                    at(m.start_ms),
                    at(m.end_ms),
                    r.flips
                );
            } else {
                let _ = writeln!(
                    out,
                    "  no overlap: {} last answered at {}, {} first at {}; flips {}",
                    m.old,
                    at(m.end_ms),
                    m.new,
                    at(m.start_ms),
                    r.flips
                );
            }
        }
    }
    if !r.pods.is_empty() {
        let _ = writeln!(out, "\nPods");
        for p in &r.pods {
            let _ = writeln!(
                out,
                "  {:<24} {} .. {}  {} answers{}",
                p.pod,
                at(p.first_ms),
                at(p.last_ms),
                p.count,
                p.version
                    .as_deref()
                    .map(|v| format!("  version {v}"))
                    .unwrap_or_default()
            );
        }
    }
    let l = &r.latency_ms;
    if l.count > 0 {
        let _ = writeln!(
            out,
            "\nLatency of ok answers (from intended send): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
    if !r.phases.is_empty() {
        let _ = writeln!(out, "\nPhases");
        for p in &r.phases {
            let _ = writeln!(
                out,
                "  {:<7} {} .. {}  sent {}  ok {}  failed {}  downtime {}  p99 {:.2} ms{}",
                p.name,
                at(p.start_ms),
                p.end_ms.map(at).unwrap_or_else(|| "end".into()),
                p.sent,
                p.ok,
                p.failed,
                secs(p.downtime_ms),
                p.latency_ms.p99,
                if p.syn_retransmitted > 0 {
                    format!("  SYN retransmitted {}", p.syn_retransmitted)
                } else {
                    String::new()
                }
            );
        }
    }
    let p = &r.probe;
    let _ = writeln!(
        out,
        "\nProber: send lag p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  late {}  skipped {}",
        p.send_lag_p50_ms, p.send_lag_p99_ms, p.send_lag_max_ms, p.late, p.skipped
    );
    if !r.timeline.strip.is_empty() {
        let _ = writeln!(
            out,
            "\nTimeline (one character = {}):\n  [{}]",
            secs(r.timeline.bucket_ms),
            r.timeline.strip
        );
        let used: BTreeSet<char> = r.timeline.strip.chars().collect();
        let mut legend: Vec<String> = Vec::new();
        if used.contains(&'.') {
            legend.push(". ok".into());
        }
        if used.contains(&'|') {
            legend.push("| version changed".into());
        }
        let mut seen = BTreeSet::new();
        for k in Outcome::ALL {
            if k.is_failure() && used.contains(&k.symbol()) && seen.insert(k.symbol()) {
                legend.push(format!(
                    "{} {}",
                    k.symbol(),
                    if k.is_local() { "local_*" } else { k.as_str() }
                ));
            }
        }
        let _ = writeln!(out, "  {}", legend.join("  "));
    }
    out
}

/// Writes windows.csv: one row per outage window.
pub fn write_windows_csv(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    w.write_record([
        "window",
        "start_ms",
        "end_ms",
        "duration_ms",
        "failed",
        "open",
        "kinds",
        "after_event",
        "after_event_detail",
        "after_event_offset_ms",
        "cause",
    ])?;
    for (i, win) in report.downtime.windows.iter().enumerate() {
        let kinds = win
            .kinds
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(";");
        let (ek, ed, eo) = match &win.after_event {
            Some(e) => (e.kind.clone(), e.detail.clone(), e.offset_ms.to_string()),
            None => (String::new(), String::new(), String::new()),
        };
        w.write_record([
            (i + 1).to_string(),
            win.start_ms.to_string(),
            win.end_ms.to_string(),
            win.duration_ms.to_string(),
            win.failed.to_string(),
            win.open.to_string(),
            kinds,
            ek,
            ed,
            eo,
            win.cause.clone().unwrap_or_default(),
        ])?;
    }
    w.flush()
}

/// Lays out rows as a table: the first column left-aligned, the others
/// right-aligned (numbers), and the last one left-aligned when `text_last`.
pub(crate) fn aligned_table(rows: &[Vec<String>], text_last: bool) -> String {
    let columns = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c == 0 || (text_last && c + 1 == columns) {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// One row of `rollprobe compare`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparisonRow {
    /// The run's label (or its file name).
    pub label: String,
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
}

impl Comparison {
    /// Builds the rows.
    pub fn new(reports: &[Report]) -> Comparison {
        let rows = reports
            .iter()
            .enumerate()
            .map(|(i, r)| ComparisonRow {
                label: r.label.clone().unwrap_or_else(|| format!("run{}", i + 1)),
                sent: r.totals.sent,
                failed: r.totals.failed,
                downtime_ms: r.downtime.total_ms,
                longest_ms: r.downtime.longest_ms,
                failures: r.failures.clone(),
                p99_ms: r.latency_ms.p99,
                versions: r.versions.iter().map(|v| v.version.clone()).collect(),
            })
            .collect();
        Comparison { rows }
    }

    fn kinds(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.rows.iter().flat_map(|r| r.failures.keys()).collect();
        set.into_iter().cloned().collect()
    }

    /// An aligned text table.
    pub fn to_text(&self) -> String {
        let kinds = self.kinds();
        let mut header = vec![
            "label".to_string(),
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
                r.sent.to_string(),
                r.failed.to_string(),
                secs(r.downtime_ms),
                secs(r.longest_ms),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| r.failures.get(k).copied().unwrap_or(0).to_string()),
            );
            row.extend([format!("{:.2} ms", r.p99_ms), r.versions.join(" -> ")]);
            rows.push(row);
        }
        aligned_table(&rows, true)
    }

    /// CSV with a column per failure kind.
    pub fn to_csv(&self) -> String {
        let kinds = self.kinds();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header = vec!["label", "sent", "failed", "downtime_ms", "longest_ms"];
        header.extend(kinds.iter().map(String::as_str));
        header.extend(["p99_ms", "versions"]);
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
            row.extend([r.p99_ms.to_string(), r.versions.join(" ")]);
            let _ = w.write_record(&row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a comparison always serializes")
    }
}

/// Limits that turn a run into a CI gate.
///
/// ```
/// let gate = probe_core::Thresholds { max_failures: Some(0), ..Default::default() };
/// # let report: Option<probe_core::Report> = None;
/// # if let Some(report) = report {
/// for breach in gate.breaches(&report) { eprintln!("{breach}"); }
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Most target failures allowed.
    pub max_failures: Option<u64>,
    /// Most downtime allowed, ms.
    pub max_downtime_ms: Option<f64>,
    /// Most failures allowed of one kind.
    pub max_by_kind: std::collections::BTreeMap<Outcome, u64>,
}

impl Thresholds {
    /// One sentence per threshold that the report breaches.
    pub fn breaches(&self, r: &Report) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.max_failures {
            if r.totals.failed > max {
                out.push(format!(
                    "threshold breached: {} requests failed, more than --max-failures {max}",
                    r.totals.failed
                ));
            }
        }
        for (kind, max) in &self.max_by_kind {
            let n = r.failures.get(kind.as_str()).copied().unwrap_or(0);
            if n > *max {
                out.push(format!(
                    "threshold breached: {n} requests failed with {kind}, more than --max-failures {kind}={max}"
                ));
            }
        }
        if let Some(max) = self.max_downtime_ms {
            if r.downtime.total_ms > max {
                out.push(format!(
                    "threshold breached: downtime {} is more than --max-downtime {}",
                    secs(r.downtime.total_ms),
                    secs(max)
                ));
            }
        }
        out
    }
}
