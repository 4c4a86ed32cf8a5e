//! The text summary of a report (what [`Report::summary`] returns): what a
//! person reads at a glance in a terminal, including the timeline strip and its
//! legend.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::format::times::{duration, offset};
use crate::outcome::Outcome;
use crate::report::Report;

/// Windows listed in the text summary; the files keep every one.
const MAX_WINDOWS_SHOWN: usize = 8;

fn kinds_text(kinds: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<(&String, &u64)> = kinds.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn summary(r: &Report) -> String {
    let mut out = String::new();
    let label = r.label.as_deref().unwrap_or("run");
    let _ = writeln!(
        out,
        "rollprobe {label}: {}  ({}, {} req/s, {}{}{})",
        r.target,
        r.config.connection,
        r.config.rate,
        duration(r.duration_ms),
        if r.interrupted { ", interrupted" } else { "" },
        if r.config.insecure {
            ", TLS not verified (--insecure)"
        } else {
            ""
        }
    );
    let t = &r.totals;
    let availability = t
        .availability
        .map(|a| format!("{:.3}%", a * 100.0))
        .unwrap_or_else(|| "n/a".into());
    if r.streams.len() > 1 {
        let _ = writeln!(
            out,
            "  sent {}  ok {}  failed {}  availability {availability}  ({} streams, side by side below)",
            t.sent,
            t.ok,
            t.failed,
            r.streams.len()
        );
        streams_table(&mut out, r);
    } else {
        let _ = writeln!(
            out,
            "  sent {}  ok {}  failed {}  availability {availability}  downtime {} in {} window{} (longest {})",
            t.sent,
            t.ok,
            t.failed,
            duration(r.downtime.total_ms),
            r.downtime.windows.len(),
            if r.downtime.windows.len() == 1 { "" } else { "s" },
            duration(r.downtime.longest_ms),
        );
    }
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
    if let Some(trigger) = &r.trigger {
        let loud = if trigger.outcome.fails_gate() {
            "TRIGGER FAILED: "
        } else {
            "trigger: "
        };
        let _ = writeln!(out, "  {loud}{trigger}");
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
    if r.streams.len() > 1 {
        for st in &r.streams {
            windows_section(&mut out, &format!(" of {}", st.name), &st.downtime.windows);
        }
    } else {
        windows_section(&mut out, "", &r.downtime.windows);
    }
    if !r.versions.is_empty() {
        let _ = writeln!(out, "\nVersions");
        for v in &r.versions {
            let _ = writeln!(
                out,
                "  {:<16} {} .. {}  {} answers",
                v.version,
                offset(v.first_ms),
                offset(v.last_ms),
                v.count
            );
        }
        if let Some(m) = &r.mixed {
            let pods = |version: &str, pods: &[String]| {
                (!pods.is_empty()).then(|| format!("{version} from {}", pods.join(", ")))
            };
            let by_version: Vec<String> = [pods(&m.old, &m.old_pods), pods(&m.new, &m.new_pods)]
                .into_iter()
                .flatten()
                .collect();
            if !by_version.is_empty() {
                let _ = writeln!(out, "  pods: {}", by_version.join("; "));
            }
            if m.end_ms >= m.start_ms {
                let _ = writeln!(
                    out,
                    "  mixed {}: {} and {} both answered from {} to {}; flips {}",
                    duration(r.mixed_ms),
                    m.old,
                    m.new,
                    offset(m.start_ms),
                    offset(m.end_ms),
                    r.flips
                );
            } else {
                let _ = writeln!(
                    out,
                    "  no overlap: {} last answered at {}, {} first at {}; flips {}",
                    m.old,
                    offset(m.end_ms),
                    m.new,
                    offset(m.start_ms),
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
                offset(p.first_ms),
                offset(p.last_ms),
                p.count,
                p.version
                    .as_deref()
                    .map(|v| format!("  version {v}"))
                    .unwrap_or_default()
            );
        }
    }
    // The top-level latency and phases are the first stream's: with several
    // streams each gets its own, named.
    if r.streams.len() > 1 {
        for st in &r.streams {
            let title = format!(" of {}", st.name);
            latency_line(&mut out, &title, &st.latency_ms);
            phases_section(&mut out, &title, &st.phases);
        }
    } else {
        latency_line(&mut out, "", &r.latency_ms);
        phases_section(&mut out, "", &r.phases);
    }
    let p = &r.probe;
    let _ = writeln!(
        out,
        "\nProber: send lag p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  late {}  skipped {}",
        p.send_lag_p50_ms, p.send_lag_p99_ms, p.send_lag_max_ms, p.late, p.skipped
    );
    if r.streams.len() > 1 {
        for st in &r.streams {
            strip_section(&mut out, &format!(" of {}", st.name), &st.timeline);
        }
    } else {
        strip_section(&mut out, "", &r.timeline);
    }
    out
}

fn strip_section(out: &mut String, title: &str, timeline: &crate::report::Timeline) {
    if !timeline.strip.is_empty() {
        let _ = writeln!(
            out,
            "\nTimeline{title} (one character = {}):\n  [{}]",
            duration(timeline.bucket_ms),
            timeline.strip
        );
        let used: BTreeSet<char> = timeline.strip.chars().collect();
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
}

fn latency_line(out: &mut String, title: &str, l: &crate::report::Latency) {
    if l.count > 0 {
        let _ = writeln!(
            out,
            "\nLatency of ok answers{title} (from intended send): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
            l.p50, l.p90, l.p99, l.p999, l.max
        );
    }
}

fn phases_section(out: &mut String, title: &str, phases: &[crate::report::Phase]) {
    if !phases.is_empty() {
        let _ = writeln!(out, "\nPhases{title}");
        for p in phases {
            let _ = writeln!(
                out,
                "  {:<7} {} .. {}  sent {}  ok {}  failed {}  downtime {}  p99 {}{}",
                p.name,
                offset(p.start_ms),
                p.end_ms.map(offset).unwrap_or_else(|| "end".into()),
                p.sent,
                p.ok,
                p.failed,
                duration(p.downtime_ms),
                // No ok answer, no latency: a dash, never a made-up 0.00 ms.
                if p.latency_ms.count == 0 {
                    "–".to_string()
                } else {
                    format!("{:.2} ms", p.latency_ms.p99)
                },
                if p.syn_retransmitted > 0 {
                    format!("  SYN retransmitted {}", p.syn_retransmitted)
                } else {
                    String::new()
                }
            );
        }
    }
}

fn windows_section(out: &mut String, title: &str, windows: &[crate::report::OutageWindow]) {
    if windows.is_empty() {
        return;
    }
    {
        let _ = writeln!(out, "\nOutage windows{title}");
        for (i, w) in windows.iter().enumerate().take(MAX_WINDOWS_SHOWN) {
            let after = w
                .after_event
                .as_ref()
                .map(|e| {
                    format!(
                        "  {} after {} {}",
                        duration(e.offset_ms),
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
                offset(w.start_ms),
                offset(w.end_ms),
                if w.open {
                    " (still open at the end)"
                } else {
                    ""
                },
                duration(w.duration_ms),
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
            if w.held_ok > 0 {
                let _ = writeln!(
                    out,
                    "      {} late success{} inside it: held through the outage (SYN retransmitted, or answered after a later request failed)",
                    w.held_ok,
                    if w.held_ok == 1 { "" } else { "es" }
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
                offset(rest[rest.len() - 1].end_ms),
                failed,
                duration(down)
            );
        }
    }
}

/// One line per stream: its counts, downtime and kinds; then the total outage.
fn streams_table(out: &mut String, r: &Report) {
    let width = r
        .streams
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "\n  {:<width$}  {:>7}  {:>7}  {:>6}  {:>9}  {:>7}  kinds",
        "stream", "sent", "ok", "failed", "downtime", "windows"
    );
    for s in &r.streams {
        let _ = writeln!(
            out,
            "  {:<width$}  {:>7}  {:>7}  {:>6}  {:>9}  {:>7}  {}",
            s.name,
            s.totals.sent,
            s.totals.ok,
            s.totals.failed,
            duration(s.downtime.total_ms),
            s.downtime.windows.len(),
            if s.failures.is_empty() {
                "-".to_string()
            } else {
                kinds_text(&s.failures)
            }
        );
        if let Some(m) = &s.merged_from {
            let _ = writeln!(
                out,
                "  {:<width$}  from {}, its clock started {} (shifted {})",
                "",
                m.dir,
                m.started_at,
                offset(m.offset_ms)
            );
        }
    }
    let any_window = r.streams.iter().any(|s| !s.downtime.windows.is_empty());
    if let Some(total) = r.total_outage.as_ref().filter(|_| any_window) {
        if total.spans.is_empty() {
            let merged = r.streams.iter().any(|s| s.merged_from.is_some());
            let line = match total.overlap_ms {
                // Only where every stream probed can every stream have failed.
                Some(ms) if ms <= 0.0 => "  no total outage can be measured: the streams never probed at the same time".to_string(),
                Some(ms) if merged => format!(
                    "  no total outage in the {} in which every stream probed: at every moment of it some stream was served",
                    duration(ms)
                ),
                _ => "  no total outage: at every moment some stream was served (every window was partial)".to_string(),
            };
            let _ = writeln!(out, "{line}");
            return;
        }
        let spans = total
            .spans
            .iter()
            .take(MAX_WINDOWS_SHOWN)
            .map(|s| format!("{} .. {}", offset(s.start_ms), offset(s.end_ms)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "  total outage (every stream failing at once): {} in {} span{}{}; the rest of each stream's windows was partial",
            duration(total.total_ms),
            total.spans.len(),
            if total.spans.len() == 1 { "" } else { "s" },
            if spans.is_empty() { String::new() } else { format!(" ({spans})") }
        );
    }
}

impl Report {
    /// The human summary printed at the end of a run.
    pub fn summary(&self) -> String {
        summary(self)
    }
}
