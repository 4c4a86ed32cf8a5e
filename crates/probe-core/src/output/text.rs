//! The text summary of a report (what [`Report::summary`] returns): what a
//! person reads at a glance in a terminal, including the timeline strip and its
//! legend.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::event::EventKind;
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
        // A report of a lone samples.csv does not know it.
        if r.target.is_empty() {
            "(target unknown)"
        } else {
            &r.target
        },
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
            degraded_section(&mut out, &format!(" of {}", st.name), &st.degraded);
        }
    } else {
        windows_section(&mut out, "", &r.downtime.windows);
        degraded_section(&mut out, "", &r.degraded);
    }
    let marks = marks_of(r);
    if !marks.is_empty() {
        let _ = writeln!(out, "\nMarks");
        for (i, m) in marks.iter().enumerate() {
            let _ = writeln!(out, "  {:<2} {}  {}", i + 1, offset(m.at_ms), m.detail);
        }
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
                // When the new version stopped first, say so: the old one was
                // alone again after the overlap.
                let old_last = r
                    .versions
                    .iter()
                    .find(|v| v.version == m.old)
                    .map_or(m.end_ms, |v| v.last_ms);
                let after = if old_last > m.end_ms {
                    format!(
                        "; then {} answered no more, and {} answered until {}",
                        m.new,
                        m.old,
                        offset(old_last)
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "  mixed {}: {} and {} both answered from {} to {}{after}; flips {}",
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
            strip_section(&mut out, &format!(" of {}", st.name), &st.timeline, &marks);
        }
    } else {
        strip_section(&mut out, "", &r.timeline, &marks);
    }
    out
}

/// The run's marks (`--marks-stdin`, `ProbeHandle::mark`, a lab's steps), in time order.
fn marks_of(r: &Report) -> Vec<&crate::event::Event> {
    let mut marks: Vec<&crate::event::Event> = r
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Mark)
        .collect();
    marks.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    marks
}

/// The character of the `i`-th mark in the Marks list and under the strip.
fn mark_symbol(i: usize) -> char {
    char::from_digit(i as u32 + 1, 10).unwrap_or('*')
}

/// The line under a strip that puts each mark under its character; marks that share
/// a character show as `*`.
fn marks_line(timeline: &crate::report::Timeline, marks: &[&crate::event::Event]) -> String {
    let width = timeline.strip.chars().count();
    let mut line = vec![' '; width];
    for (i, m) in marks.iter().enumerate() {
        if width == 0 || timeline.bucket_ms <= 0.0 {
            break;
        }
        let at = ((m.at_ms / timeline.bucket_ms).max(0.0) as usize).min(width - 1);
        line[at] = if line[at] == ' ' { mark_symbol(i) } else { '*' };
    }
    line.into_iter().collect::<String>().trim_end().to_string()
}

fn strip_section(
    out: &mut String,
    title: &str,
    timeline: &crate::report::Timeline,
    marks: &[&crate::event::Event],
) {
    if !timeline.strip.is_empty() {
        let _ = writeln!(
            out,
            "\nTimeline{title} (one character = {}):\n  [{}]",
            duration(timeline.bucket_ms),
            timeline.strip
        );
        if !marks.is_empty() {
            let _ = writeln!(out, "   {}", marks_line(timeline, marks));
        }
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
        if !marks.is_empty() {
            legend.push("1-9 the marks listed above (* several, or the 10th on)".into());
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
            if let Some(latency) = &w.programming_latency {
                // A stale route splits into many short windows that share one figure:
                // the sentence once, then a pointer to it.
                let first = windows[..i]
                    .iter()
                    .position(|o| o.programming_latency.as_ref() == Some(latency));
                let _ = match first {
                    Some(j) => writeln!(
                        out,
                        "      network programming latency: as for window #{}",
                        j + 1
                    ),
                    None => writeln!(out, "      {latency}"),
                };
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

/// The degraded windows, with the rule's threshold so that a reader can check it.
fn degraded_section(out: &mut String, title: &str, d: &crate::report::Degraded) {
    let (Some(threshold), Some(p50)) = (d.threshold_ms, d.baseline_p50_ms) else {
        return;
    };
    if d.windows.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nDegraded windows{title}: ok answers slower than {threshold:.1} ms (baseline p50 {p50:.2} ms), {} in all",
        duration(d.total_ms)
    );
    for (i, w) in d.windows.iter().enumerate().take(MAX_WINDOWS_SHOWN) {
        let _ = writeln!(
            out,
            "  #{} {} .. {}{}  {}  {} slow answer{}, {} extra, slowest {}",
            i + 1,
            offset(w.start_ms),
            offset(w.end_ms),
            if w.open {
                " (still slow at the end)"
            } else {
                ""
            },
            duration(w.duration_ms),
            w.slow,
            if w.slow == 1 { "" } else { "s" },
            duration(w.extra_ms),
            duration(w.max_ms),
        );
    }
    if d.windows.len() > MAX_WINDOWS_SHOWN {
        let _ = writeln!(
            out,
            "  ... and {} more: report.json and windows.csv have them all",
            d.windows.len() - MAX_WINDOWS_SHOWN
        );
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

#[cfg(test)]
mod tests {
    use crate::analyze::RunAnalyzer;
    use crate::config::RecordedConfig;
    use crate::event::{Event, EventKind};
    use crate::outcome::Outcome;
    use crate::report::Report;
    use crate::sample::{RunHeader, Sample};

    fn header() -> RunHeader {
        RunHeader {
            schema: crate::sample::SAMPLES_SCHEMA.into(),
            label: None,
            target: "http://127.0.0.1:1/".into(),
            config: RecordedConfig::for_tests(100.0, 5000, 1016),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            run_id: String::new(),
            streams: Vec::new(),
        }
    }

    /// 100 req/s for `seconds`; `answer(seq)` is each request's outcome and version,
    /// answered at once (so answer times are the intended times the tests name).
    fn run(
        seconds: u64,
        events: Vec<Event>,
        answer: impl Fn(u64) -> (Outcome, &'static str),
    ) -> Report {
        let mut a = RunAnalyzer::with_events(&header(), events);
        for seq in 0..seconds * 100 {
            let (outcome, version) = answer(seq);
            let intended = seq as f64 * 10.0;
            a.push(Sample {
                sent_ms: Some(intended),
                total_ms: Some(0.0),
                errno: (outcome == Outcome::ConnectionRefused).then_some(111),
                version: (outcome == Outcome::Ok).then(|| version.to_string()),
                ..Sample::new("local-fresh", seq, intended, outcome)
            });
        }
        a.finish(&header(), None)
    }

    fn line_with<'a>(summary: &'a str, start: &str) -> &'a str {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{summary}"))
    }

    #[test]
    fn the_mixed_sentence_ends_when_the_new_version_stopped_answering() {
        // Issue 24 case 10: v1 answered for 7 s, v2 beside it only until +2.0 s
        // (rolled back), so they both answered from +0.02 s to +2.0 s, not to +7 s.
        let r = run(7, Vec::new(), |seq| match seq {
            2..=200 if seq % 2 == 0 => (Outcome::Ok, "v2"),
            _ => (Outcome::Ok, "v1"),
        });
        let mixed = r.mixed.as_ref().unwrap();
        assert_eq!((mixed.start_ms, mixed.end_ms), (20.0, 2000.0));
        assert_eq!(r.mixed_ms, 1980.0);
        let summary = r.summary();
        let line = line_with(&summary, "mixed");
        assert!(
            line.contains("v1 and v2 both answered from +0.020 s to +2.000 s; then v2 answered no more, and v1 answered until +6.990 s"),
            "{line}"
        );
    }

    #[test]
    fn a_rollout_that_left_the_new_version_serving_keeps_its_sentence() {
        let r = run(3, Vec::new(), |seq| match seq {
            0..=99 => (Outcome::Ok, "v1"),
            100..=199 if seq % 2 == 0 => (Outcome::Ok, "v2"),
            100..=199 => (Outcome::Ok, "v1"),
            _ => (Outcome::Ok, "v2"),
        });
        let summary = r.summary();
        let line = line_with(&summary, "mixed");
        assert!(
            line.contains("v1 and v2 both answered from +1.000 s to +1.990 s; flips"),
            "{line}"
        );
    }

    #[test]
    fn marks_are_listed_with_their_times_and_marked_under_the_strip() {
        let marks = vec![
            Event::new(1000.0, EventKind::Mark, "scaled to 0"),
            Event::new(500.0, EventKind::TriggerStart, "kubectl"),
            Event::new(3000.0, EventKind::Mark, "scaled to 3"),
        ];
        let r = run(4, marks, |seq| match seq {
            100..=199 => (Outcome::ConnectionRefused, ""),
            _ => (Outcome::Ok, "v1"),
        });
        let summary = r.summary();
        let lines: Vec<&str> = summary.lines().collect();
        let at = lines.iter().position(|l| *l == "Marks").expect(&summary);
        assert_eq!(lines[at + 1], "  1  +1.000 s  scaled to 0", "{summary}");
        assert_eq!(lines[at + 2], "  2  +3.000 s  scaled to 3", "{summary}");
        // The trigger is not a mark.
        assert_eq!(lines[at + 3], "", "{summary}");
        // The line under the strip puts each mark under its character.
        let strip = lines
            .iter()
            .position(|l| l.starts_with("  ["))
            .expect(&summary);
        let under = lines[strip + 1];
        let bucket = r.timeline.bucket_ms;
        let column = |ms: f64| 3 + (ms / bucket) as usize;
        assert_eq!(under.find('1'), Some(column(1000.0)), "{summary}");
        assert_eq!(under.find('2'), Some(column(3000.0)), "{summary}");
        assert_eq!(
            under.trim().len(),
            column(3000.0) - column(1000.0) + 1,
            "{summary}"
        );
        // The failure under mark 1 starts right at it.
        let refused = Outcome::ConnectionRefused.symbol();
        assert_eq!(
            lines[strip].chars().nth(column(1000.0)),
            Some(refused),
            "{summary}"
        );
        assert!(
            lines[strip + 2].contains("1-9 the marks listed above"),
            "{summary}"
        );
    }

    #[test]
    fn a_run_without_marks_has_no_marks_section_nor_line() {
        let r = run(2, Vec::new(), |_| (Outcome::Ok, "v1"));
        let summary = r.summary();
        assert!(!summary.contains("Marks"), "{summary}");
        let lines: Vec<&str> = summary.lines().collect();
        let strip = lines.iter().position(|l| l.starts_with("  [")).unwrap();
        assert!(lines[strip + 1].starts_with("  . ok"), "{summary}");
    }

    #[test]
    fn a_run_where_nothing_ever_answered_says_so_and_what_to_check() {
        let r = run(1, Vec::new(), |_| (Outcome::ConnectionRefused, ""));
        let warning = r
            .warnings
            .iter()
            .find(|w| w.starts_with("nothing ever answered"))
            .unwrap_or_else(|| panic!("{:?}", r.warnings));
        assert!(
            warning.contains("none of the 100 requests succeeded (mostly connection_refused)"),
            "{warning}"
        );
        assert!(warning.contains("check the host and port"), "{warning}");
        assert!(r.summary().contains(&format!("warning: {warning}")));
        // One answer is enough to not say it.
        let once = run(1, Vec::new(), |seq| match seq {
            0 => (Outcome::Ok, "v1"),
            _ => (Outcome::ConnectionRefused, ""),
        });
        assert!(
            !once.warnings.iter().any(|w| w.contains("nothing ever")),
            "{:?}",
            once.warnings
        );
    }

    #[test]
    fn kubernetes_hints_only_for_a_run_with_cluster_events() {
        let refused = |seq| match seq {
            50..=59 => (Outcome::ConnectionRefused, ""),
            _ => (Outcome::Ok, "v1"),
        };
        let local = run(1, Vec::new(), refused);
        let hint = &local.failure_details[0].hint;
        assert!(!hint.contains("kube-proxy"), "{hint}");
        assert!(hint.contains("nothing listened on that port"), "{hint}");
        assert!(
            !local.summary().contains("kube-proxy"),
            "{}",
            local.summary()
        );

        let mut ready = Event::new(100.0, EventKind::PodReady, "web-b");
        ready.subject.pod = Some("web-b".into());
        let cluster = run(1, vec![ready], refused);
        assert_eq!(
            cluster.failure_details[0].hint,
            Outcome::ConnectionRefused.hint()
        );
        assert!(cluster.summary().contains("kube-proxy"));
    }
}
