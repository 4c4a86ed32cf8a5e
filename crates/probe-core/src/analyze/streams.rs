//! A run of several streams: one [`Analyzer`] per stream, one report.
//!
//! Each stream (a vantage point and a connection mode) has its own schedule, so its
//! own sequence numbers, windows and series; what they share is the clock and the
//! events. The report keeps every stream's figures in `streams`, sums the counts at
//! the top, and keeps the first stream's windows and series at the top so that a
//! reader that knows one stream reads a multi-stream report unchanged. Where every
//! stream failed at once is a total outage; the rest of any window is partial.

use std::collections::BTreeMap;

use super::Analyzer;
use crate::event::Event;
use crate::report::{
    OutageWindow, PodSeen, ProbeHealth, Report, Span, StreamReport, TotalOutage, VersionSeen,
};
use crate::sample::{RunFooter, RunHeader, Sample, StreamInfo};

/// Streaming analysis of a run of one or more streams. Samples are routed by their
/// `stream` column; a stream that run.json does not list is added when first seen.
///
/// ```
/// use probe_core::{Outcome, RunAnalyzer, RunHeader, Sample, StreamInfo};
/// let header: RunHeader = serde_json::from_str(r#"{"schema":"rollprobe.samples/v1",
///   "label":null,"target":"http://127.0.0.1:8080/","started_at":"2026-01-01T00:00:00Z",
///   "streams":["local-fresh","local-keepalive"],
///   "config":{"rate":10,"connection":"both","timeout_ms":5000,"connect_timeout_ms":5000,
///   "max_in_flight":116,"expect_status":"200-299","version_from":"body","method":"GET"}}"#).unwrap();
/// let mut a = RunAnalyzer::new(&header);
/// for stream in ["local-fresh", "local-keepalive"] {
///     for seq in 0..3u64 {
///         let outcome = if seq == 1 { Outcome::ConnectionRefused } else { Outcome::Ok };
///         a.push(Sample {
///             sent_ms: Some(seq as f64 * 100.0),
///             total_ms: Some(1.0),
///             ..Sample::new(stream, seq, seq as f64 * 100.0, outcome)
///         });
///     }
/// }
/// let report = a.finish(&header, None);
/// assert_eq!(report.streams.len(), 2);
/// assert_eq!(report.totals.sent, 6);
/// assert_eq!(report.total_outage.unwrap().spans.len(), 1);
/// ```
pub struct RunAnalyzer {
    streams: Vec<(StreamInfo, Analyzer)>,
    index: BTreeMap<String, usize>,
    /// Every event so far, for a stream that appears late.
    events: Vec<Event>,
    rate: f64,
    rollout_events: bool,
}

impl RunAnalyzer {
    /// An analyzer for the streams that `header` lists.
    pub fn new(header: &RunHeader) -> RunAnalyzer {
        let mut a = RunAnalyzer {
            streams: Vec::new(),
            index: BTreeMap::new(),
            events: Vec::new(),
            rate: header.config.rate,
            rollout_events: header.config.rollout_events,
        };
        for info in header.stream_infos() {
            let rate = header.rate_of(&info);
            a.add(info, rate);
        }
        a
    }

    /// An analyzer for a recorded run whose events are all known: they go in first
    /// (in time order), so every sample finds its phase as in the live run.
    pub fn with_events(header: &RunHeader, mut events: Vec<Event>) -> RunAnalyzer {
        let mut a = RunAnalyzer::new(header);
        events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        for e in events {
            a.event(e);
        }
        a
    }

    fn add(&mut self, info: StreamInfo, rate: f64) -> usize {
        let mut analyzer = Analyzer::new(rate).with_rollout_events(self.rollout_events);
        for e in &self.events {
            analyzer.event(e.clone());
        }
        self.index.insert(info.name.clone(), self.streams.len());
        self.streams.push((info, analyzer));
        self.streams.len() - 1
    }

    /// Adds an event to every stream's timeline.
    pub fn event(&mut self, event: Event) {
        for (_, a) in &mut self.streams {
            a.event(event.clone());
        }
        self.events.push(event);
    }

    /// Adds a completed sample to its stream.
    pub fn push(&mut self, sample: Sample) {
        let i = match self.index.get(&sample.stream) {
            Some(&i) => i,
            None => self.add(StreamInfo::from(sample.stream.as_str()), self.rate),
        };
        self.streams[i].1.push(sample);
    }

    /// Whether `stream` is inside an open outage window right now (for live views).
    pub fn is_down(&self, stream: &str) -> bool {
        self.index
            .get(stream)
            .is_some_and(|&i| self.streams[i].1.in_outage())
    }

    /// Builds the report: every stream's own, then the run's.
    pub fn finish(self, header: &RunHeader, footer: Option<&RunFooter>) -> Report {
        let mut parts: Vec<(StreamInfo, Report)> = Vec::new();
        let mut probed: Vec<Option<Span>> = Vec::new();
        for (info, a) in self.streams {
            let (report, span) = a.finish_with_span(header, footer);
            parts.push((info, report));
            probed.push(span);
        }
        // A run with no samples at all still has the stream it planned.
        if parts.is_empty() {
            let info = StreamInfo::from(format!("local-{}", header.config.connection).as_str());
            parts.push((info, Analyzer::new(self.rate).finish(header, footer)));
            probed.push(None);
        }
        let streams: Vec<StreamReport> = parts
            .iter()
            .zip(&probed)
            .map(|((info, r), span)| stream_report(info, r, *span, &header.target))
            .collect();
        let overlap = overlap_of(&probed);
        let total_outage = (parts.len() > 1).then(|| TotalOutage {
            overlap_ms: Some(overlap.map_or(0.0, |s| s.end_ms - s.start_ms)),
            ..total_outage(&parts)
        });
        let merged = parts.iter().any(|(info, _)| info.merged_from.is_some());
        let mut rest = parts.into_iter().map(|(_, r)| r);
        let mut report = rest.next().expect("at least one stream");
        // The top level's executor is the first stream's, as its windows are.
        report.probe.executor = streams.first().and_then(|s| s.probe.executor.clone());
        for other in rest {
            add_counts(&mut report, other);
        }
        let t = &mut report.totals;
        let counted = t.sent - t.local;
        t.availability = (counted > 0).then(|| t.ok as f64 / counted as f64);
        report.streams = streams;
        report.total_outage = total_outage;
        let mut report = report.judged();
        if let Some(n) = footer.map(|f| f.unanswered).filter(|&n| n > 0) {
            note_unanswered(&mut report, n);
        }
        if merged {
            report
                .warnings
                .extend(merge_overlap_warning(&report.streams, overlap));
        }
        report
    }
}

/// Requests that were sent but never recorded (the run was killed while it waited
/// for them, or they outlived the wait): they were sent, whatever the rows say.
fn note_unanswered(report: &mut Report, n: u64) {
    let plural = if n == 1 { "" } else { "s" };
    if report.totals.sent == 0 {
        report.valid = false;
        report.invalid_reason = Some(format!(
            "{n} request{plural} went out but none was answered before the run ended (killed while waiting for them?): nothing was measured"
        ));
    }
    report.warnings.push(format!(
        "{n} request{plural} still in flight when the run ended have no outcome: the figures leave them out"
    ));
}

/// The span in which every stream probed, if there is one.
fn overlap_of(probed: &[Option<Span>]) -> Option<Span> {
    let spans: Option<Vec<Span>> = probed.iter().copied().collect();
    let spans = spans?;
    let start_ms = spans.iter().map(|s| s.start_ms).fold(f64::MIN, f64::max);
    let end_ms = spans.iter().map(|s| s.end_ms).fold(f64::MAX, f64::min);
    (end_ms > start_ms).then_some(Span { start_ms, end_ms })
}

/// Runs merged from different times may not have probed together: a total outage can
/// only be seen where they did, so the report says how far apart they were, or how
/// little they overlapped.
fn merge_overlap_warning(streams: &[StreamReport], overlap: Option<Span>) -> Option<String> {
    let spans: Vec<(&str, Span)> = streams
        .iter()
        .filter_map(|s| s.probed.map(|p| (s.name.as_str(), p)))
        .collect();
    let latest_start = spans
        .iter()
        .max_by(|a, b| a.1.start_ms.total_cmp(&b.1.start_ms))?;
    let earliest_end = spans
        .iter()
        .min_by(|a, b| a.1.end_ms.total_cmp(&b.1.end_ms))?;
    let secs = |ms: f64| format!("{:.3} s", ms / 1000.0);
    match overlap {
        None => Some(format!(
            "the merged runs never probed at the same time: {} began {} after {} had ended, so no total outage can be measured",
            latest_start.0,
            secs(latest_start.1.start_ms - earliest_end.1.end_ms),
            earliest_end.0
        )),
        Some(o) => {
            let longest = spans
                .iter()
                .map(|(_, s)| s.end_ms - s.start_ms)
                .fold(0.0, f64::max);
            let together = o.end_ms - o.start_ms;
            // Runs started together by hand are a tick or so apart: not worth a word.
            (longest - together > 1000.0).then(|| {
                format!(
                    "the merged runs probed together for only {} (+{:.3} s .. +{:.3} s) of the longest one's {}: a total outage can only be measured there",
                    secs(together),
                    o.start_ms / 1000.0,
                    o.end_ms / 1000.0,
                    secs(longest)
                )
            })
        }
    }
}

fn stream_report(
    info: &StreamInfo,
    r: &Report,
    probed: Option<Span>,
    run_target: &str,
) -> StreamReport {
    StreamReport {
        probed,
        name: info.name.clone(),
        vantage: info.vantage.clone(),
        connection: info.connection.to_string(),
        target: info
            .target
            .clone()
            .unwrap_or_else(|| run_target.to_string()),
        merged_from: info.merged_from.clone(),
        totals: r.totals.clone(),
        failures: r.failures.clone(),
        downtime: r.downtime.clone(),
        degraded: r.degraded.clone(),
        versions: r.versions.clone(),
        pods: r.pods.clone(),
        latency_ms: r.latency_ms.clone(),
        phases: r.phases.clone(),
        probe: ProbeHealth {
            executor: info.executor.clone(),
            ..r.probe.clone()
        },
        timeline: r.timeline.clone(),
        per_second: r.per_second.clone(),
    }
}

/// Adds `other`'s counts to `report`'s: totals, failures, versions, pods.
fn add_counts(report: &mut Report, other: Report) {
    let (t, o) = (&mut report.totals, &other.totals);
    t.sent += o.sent;
    t.ok += o.ok;
    t.failed += o.failed;
    t.local += o.local;
    t.skipped += o.skipped;
    t.syn_retransmitted += o.syn_retransmitted;
    for (kind, n) in other.failures {
        *report.failures.entry(kind).or_default() += n;
    }
    for d in other.failure_details {
        match report
            .failure_details
            .iter_mut()
            .find(|x| x.kind == d.kind && x.errno == d.errno && x.hint == d.hint)
        {
            Some(x) => x.count += d.count,
            None => report.failure_details.push(d),
        }
    }
    report
        .failure_details
        .sort_by(|a, b| (a.kind.as_str(), a.errno).cmp(&(b.kind.as_str(), b.errno)));
    merge_versions(&mut report.versions, other.versions);
    merge_pods(&mut report.pods, other.pods);
    let p = &mut report.probe;
    p.late += other.probe.late;
    p.skipped += other.probe.skipped;
    p.send_lag_max_ms = p.send_lag_max_ms.max(other.probe.send_lag_max_ms);
    p.send_lag_p99_ms = p.send_lag_p99_ms.max(other.probe.send_lag_p99_ms);
}

fn merge_versions(into: &mut Vec<VersionSeen>, from: Vec<VersionSeen>) {
    for v in from {
        match into.iter_mut().find(|x| x.version == v.version) {
            Some(x) => {
                x.first_ms = x.first_ms.min(v.first_ms);
                x.last_ms = x.last_ms.max(v.last_ms);
                x.count += v.count;
            }
            None => into.push(v),
        }
    }
    into.sort_by(|a, b| a.first_ms.total_cmp(&b.first_ms));
}

fn merge_pods(into: &mut Vec<PodSeen>, from: Vec<PodSeen>) {
    for p in from {
        match into.iter_mut().find(|x| x.pod == p.pod) {
            Some(x) => {
                x.first_ms = x.first_ms.min(p.first_ms);
                if p.last_ms >= x.last_ms {
                    x.last_ms = p.last_ms;
                    x.version = p.version.or(x.version.take());
                }
                x.count += p.count;
            }
            None => into.push(p),
        }
    }
    into.sort_by(|a, b| a.first_ms.total_cmp(&b.first_ms));
}

/// The spans covered by a window of every stream at once.
fn total_outage(parts: &[(StreamInfo, Report)]) -> TotalOutage {
    let mut spans: Vec<Span> = windows_as_spans(&parts[0].1.downtime.windows);
    for (_, r) in &parts[1..] {
        spans = intersect(&spans, &windows_as_spans(&r.downtime.windows));
    }
    TotalOutage {
        total_ms: spans
            .iter()
            .fold(0.0, |acc, s| acc + (s.end_ms - s.start_ms)),
        spans,
        overlap_ms: None,
    }
}

fn windows_as_spans(windows: &[OutageWindow]) -> Vec<Span> {
    let mut spans: Vec<Span> = windows
        .iter()
        .map(|w| Span {
            start_ms: w.start_ms,
            end_ms: w.end_ms,
        })
        .collect();
    spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    spans
}

/// The intersection of two sorted lists of disjoint spans.
fn intersect(a: &[Span], b: &[Span]) -> Vec<Span> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        let start = a[i].start_ms.max(b[j].start_ms);
        let end = a[i].end_ms.min(b[j].end_ms);
        if end > start {
            out.push(Span {
                start_ms: start,
                end_ms: end,
            });
        }
        if a[i].end_ms < b[j].end_ms {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start_ms: f64, end_ms: f64) -> Span {
        Span { start_ms, end_ms }
    }

    #[test]
    fn intersection_keeps_only_the_common_parts() {
        let a = [span(0.0, 100.0), span(200.0, 300.0)];
        let b = [span(50.0, 250.0), span(290.0, 400.0)];
        assert_eq!(
            intersect(&a, &b),
            vec![span(50.0, 100.0), span(200.0, 250.0), span(290.0, 300.0)]
        );
        assert!(intersect(&a, &[span(100.0, 200.0)]).is_empty());
    }
}
