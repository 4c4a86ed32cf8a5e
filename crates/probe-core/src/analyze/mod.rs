//! From samples to figures, in one streaming pass.
//!
//! Samples complete out of order, but outage windows and version flips are
//! defined in send order. A reorder buffer keyed by sequence number releases
//! samples in order; it holds at most the requests in flight (timeout x rate), so
//! memory stays flat however long the run. Everything else is counters, HDR
//! histograms and a timeline whose buckets widen as the run grows.
//!
//! A success can be *held* through an outage: its SYN went unanswered and was
//! retransmitted until the new server listened, or its answer came back after a
//! request sent later had already failed. Such a success says nothing about the
//! moment it was meant for, so it must not end (and split) the window. Deciding that
//! needs the requests sent after it until its answer arrived: a second, short buffer
//! in send order holds an ok sample until a tick intended after its answer is in
//! (again bounded by timeout x rate).
//!
//! What an answer says (its version, its pod) is placed where the answer arrived,
//! not where it was meant to be sent: a proxy that held a request for 2 s and then
//! had it answered by the new version says nothing about the new version 2 s
//! earlier. A third buffer, ordered by arrival, releases an answer once a sample
//! intended after its arrival is processed (every later one arrives later still),
//! so it holds at most the answers in flight (timeout x rate). Outage and degraded
//! windows and phases stay on intended time.
//!
//! The same [`Analyzer`] serves the live run and `rollprobe report`, which is
//! what makes a report reproducible from its samples.csv.

use std::collections::{BTreeMap, HashMap, VecDeque};

mod buckets;
mod degraded;
mod latency;
mod pods;
mod seconds;
mod streams;
#[cfg(test)]
mod tests;

use buckets::{kind_index, Buckets};
use degraded::SlowSpans;
use latency::Latencies;
use pods::Pods;
use seconds::Seconds;
pub use streams::RunAnalyzer;

use crate::attribute::Reached;
use crate::classify::errno_name;
use crate::event::{Event, EventKind};
use crate::outcome::Outcome;
use crate::report::{
    Downtime, EventRef, FailureDetail, LabInfo, MixedWindow, OutageWindow, Phase, ProbeHealth,
    Report, Span, Totals, VersionSeen, REPORT_SCHEMA,
};
use crate::sample::{RunFooter, RunHeader, Sample};

/// A tick sent more than this after its due time counts as late: a report's times
/// are in milliseconds, so a lag beyond one blurs them, whatever the rate.
pub(crate) const LATE_AFTER_MS: f64 = 1.0;

/// Events that open the "during" phase.
const PHASE_START_KINDS: [EventKind; 2] = [EventKind::TriggerStart, EventKind::RolloutStart];
/// Events that close it.
const PHASE_END_KINDS: [EventKind; 2] = [EventKind::TriggerExit, EventKind::RolloutComplete];

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum PhaseName {
    Before = 0,
    During = 1,
    After = 2,
}

struct PhaseStats {
    sent: u64,
    ok: u64,
    failed: u64,
    syn_retransmitted: u64,
    latency: Latencies,
}

struct OpenWindow {
    start_ms: f64,
    failed: u64,
    held_ok: u64,
    kinds: BTreeMap<String, u64>,
    syn_retransmitted: u64,
    pod_before: Option<String>,
}

/// Streaming analysis of one run. Feed it samples (in any order) and events
/// (in time order), then call [`Analyzer::finish`].
///
/// ```
/// use probe_core::{Analyzer, Outcome, Sample};
/// let mut a = Analyzer::new(10.0);
/// let outcomes = [Outcome::Ok, Outcome::ConnectionRefused, Outcome::Ok, Outcome::Ok];
/// for (seq, outcome) in outcomes.into_iter().enumerate() {
///     let intended_ms = seq as f64 * 100.0;
///     a.push(Sample {
///         sent_ms: Some(intended_ms),
///         total_ms: Some(1.0),
///         ..Sample::new("local-fresh", seq as u64, intended_ms, outcome)
///     });
/// }
/// // The answer at 200 ms ends the window once a later tick shows that it was not
/// // held through the outage (see the module's docs).
/// let windows = a.windows_so_far();
/// assert_eq!(windows.len(), 1);
/// assert_eq!((windows[0].start_ms, windows[0].end_ms), (100.0, 200.0));
/// ```
pub struct Analyzer {
    period_ms: f64,
    next_seq: u64,
    pending: BTreeMap<u64, Sample>,
    /// Samples released in send order whose window decision waits for later ones.
    lookahead: VecDeque<Sample>,
    /// The target failures in `lookahead` as (seq, completion ms), completion times
    /// increasing: its front is the earliest failure still ahead (a sliding-window
    /// minimum, so the held test costs O(1) per sample whatever the rate).
    failures_ahead: VecDeque<(u64, f64)>,
    totals: Totals,
    late: u64,
    failures: BTreeMap<Outcome, u64>,
    details: BTreeMap<(Outcome, Option<i32>, Option<crate::tls::TlsReason>), u64>,
    windows: Vec<OutageWindow>,
    open: Option<OpenWindow>,
    versions: Vec<VersionSeen>,
    version_index: HashMap<String, usize>,
    last_version: Option<usize>,
    flips: u64,
    latency: Latencies,
    service: Latencies,
    send_lag: Latencies,
    max_lag_ms: f64,
    events: Vec<Event>,
    during_start: Option<f64>,
    during_end: Option<f64>,
    phases: [PhaseStats; 3],
    buckets: Buckets,
    seconds: Seconds,
    last_intended_ms: f64,
    first_intended_ms: Option<f64>,
    pods: Pods,
    /// The pod of the latest ok answer, for the window that may open next.
    last_pod: Option<String>,
    rollout_events: bool,
    /// Ok answers waiting to be placed at their arrival, by (arrival in µs, seq).
    arrivals: BTreeMap<(i64, u64), Arrival>,
    slow: SlowSpans,
    /// Which pods new connections reached, for the programming latency.
    reached: Reached,
}

/// What an ok answer said, to be placed when it arrived.
struct Arrival {
    intended_ms: f64,
    arrived_ms: f64,
    pod: Option<String>,
    version: Option<String>,
}

impl Analyzer {
    /// An analyzer for a run at `rate` requests per second.
    pub fn new(rate: f64) -> Analyzer {
        let phase = || PhaseStats {
            sent: 0,
            ok: 0,
            failed: 0,
            syn_retransmitted: 0,
            latency: Latencies::new(),
        };
        Analyzer {
            period_ms: 1000.0 / rate,
            next_seq: 0,
            pending: BTreeMap::new(),
            lookahead: VecDeque::new(),
            failures_ahead: VecDeque::new(),
            totals: Totals::default(),
            late: 0,
            failures: BTreeMap::new(),
            details: BTreeMap::new(),
            windows: Vec::new(),
            open: None,
            versions: Vec::new(),
            version_index: HashMap::new(),
            last_version: None,
            flips: 0,
            latency: Latencies::new(),
            service: Latencies::new(),
            send_lag: Latencies::new(),
            max_lag_ms: 0.0,
            events: Vec::new(),
            during_start: None,
            during_end: None,
            phases: [phase(), phase(), phase()],
            buckets: Buckets::new(),
            seconds: Seconds::new(),
            last_intended_ms: 0.0,
            first_intended_ms: None,
            pods: Pods::default(),
            last_pod: None,
            rollout_events: false,
            arrivals: BTreeMap::new(),
            slow: SlowSpans::new(),
            reached: Reached::default(),
        }
    }

    /// The run had a source of rollout events: its rollout phase ends at
    /// `rollout_complete` rather than when the trigger returned.
    pub fn with_rollout_events(mut self, yes: bool) -> Analyzer {
        self.rollout_events = yes;
        self
    }

    /// Adds an event. Events must arrive before any sample intended after them,
    /// which the probe guarantees by sending both through one ordered channel.
    pub fn event(&mut self, event: Event) {
        // With a source of rollout events the trigger only starts the rollout (a
        // `kubectl set image` returns at once): the rollout phase lasts until it completes.
        let ends = if self.rollout_events {
            event.kind == EventKind::RolloutComplete
        } else {
            PHASE_END_KINDS.contains(&event.kind)
        };
        if PHASE_START_KINDS.contains(&event.kind) && self.during_start.is_none() {
            self.during_start = Some(event.at_ms);
        } else if ends && self.during_start.is_some() && self.during_end.is_none() {
            self.during_end = Some(event.at_ms);
        }
        self.events.push(event);
    }

    /// Adds a completed sample; samples may arrive in any order.
    pub fn push(&mut self, sample: Sample) {
        if sample.seq < self.next_seq {
            // A duplicate sequence number can only come from a corrupt file.
            return;
        }
        self.pending.insert(sample.seq, sample);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != self.next_seq {
                break;
            }
            let sample = entry.remove();
            self.next_seq += 1;
            self.look_ahead(sample);
        }
        self.decide(false);
    }

    fn look_ahead(&mut self, sample: Sample) {
        if sample.outcome.is_target_failure() {
            if let Some(done) = completed_ms(&sample) {
                while self.failures_ahead.back().is_some_and(|&(_, d)| d >= done) {
                    self.failures_ahead.pop_back();
                }
                self.failures_ahead.push_back((sample.seq, done));
            }
        }
        self.lookahead.push_back(sample);
    }

    /// Processes the samples at the head of the lookahead whose window role is
    /// known; with `all`, every one (the run is over: nothing later will come).
    fn decide(&mut self, all: bool) {
        while let Some(head) = self.lookahead.front() {
            let first_failure = self.failures_ahead.front().map(|&(_, done)| done);
            let newest = self.lookahead.back().map_or(f64::MIN, |s| s.intended_ms);
            let held = match held_state(head, first_failure, newest, all) {
                Some(held) => held,
                None => break,
            };
            let sample = self.lookahead.pop_front().expect("a head");
            if self
                .failures_ahead
                .front()
                .is_some_and(|&(seq, _)| seq == sample.seq)
            {
                self.failures_ahead.pop_front();
            }
            self.process(sample, held);
        }
    }

    /// Whether an outage window is open, as of the samples pushed so far (for live
    /// metrics).
    pub(crate) fn in_outage(&self) -> bool {
        self.open.is_some()
    }

    /// The windows closed so far (for tests and live views).
    pub fn windows_so_far(&self) -> &[OutageWindow] {
        &self.windows
    }

    fn phase_of(&self, intended_ms: f64) -> PhaseName {
        match (self.during_start, self.during_end) {
            (Some(s), _) if intended_ms < s => PhaseName::Before,
            (Some(_), Some(e)) if intended_ms >= e => PhaseName::After,
            (Some(_), _) => PhaseName::During,
            (None, _) => PhaseName::Before,
        }
    }

    fn process(&mut self, s: Sample, held: Held) {
        self.place_arrivals(Some(s.intended_ms));
        self.settle_baseline(s.intended_ms);
        self.last_intended_ms = self.last_intended_ms.max(s.intended_ms);
        let first = self.first_intended_ms.get_or_insert(s.intended_ms);
        *first = first.min(s.intended_ms);
        if s.outcome == Outcome::Skipped {
            self.totals.skipped += 1;
            return;
        }
        self.totals.sent += 1;
        if let Some(lag) = s.send_lag_ms() {
            self.send_lag.record(lag);
            self.max_lag_ms = self.max_lag_ms.max(lag);
            if lag > LATE_AFTER_MS {
                self.late += 1;
            }
        }
        let phase = self.phase_of(s.intended_ms) as usize;
        self.phases[phase].sent += 1;
        let retransmitted = s.syn_retransmits.is_some_and(|n| n > 0);
        if retransmitted {
            self.totals.syn_retransmitted += 1;
            self.phases[phase].syn_retransmitted += 1;
        }
        self.buckets.at(s.intended_ms).by_kind[kind_index(s.outcome)] += 1;
        self.buckets.at(s.intended_ms).sent += 1;
        self.seconds.count(s.intended_ms, s.outcome);

        if s.outcome.is_failure() {
            *self.failures.entry(s.outcome).or_default() += 1;
            let tls = (s.outcome == Outcome::Tls)
                .then(|| {
                    s.error
                        .as_deref()
                        .and_then(crate::tls::TlsReason::in_message)
                })
                .flatten();
            *self.details.entry((s.outcome, s.errno, tls)).or_default() += 1;
        }
        if s.outcome.is_local() {
            // The prober's own fault: neither up nor down for the target.
            self.totals.local += 1;
            return;
        }
        if s.outcome.is_target_failure() {
            self.slow.outage(s.intended_ms);
            self.totals.failed += 1;
            self.phases[phase].failed += 1;
            let last_pod = &self.last_pod;
            let w = self
                .open
                .get_or_insert_with(|| OpenWindow::at(s.intended_ms, last_pod.clone()));
            w.failed += 1;
            self.reached.failed(&s, w.start_ms);
            w.syn_retransmitted += u64::from(retransmitted);
            *w.kinds.entry(s.outcome.as_str().to_string()).or_default() += 1;
            return;
        }
        // ok
        self.totals.ok += 1;
        self.phases[phase].ok += 1;
        let held = held == Held::Yes || (held == Held::IfOpen && self.open.is_some());
        if held {
            // Inside the outage, not its end: it was sent into it and only got
            // through once the service was back.
            let last_pod = &self.last_pod;
            let w = self
                .open
                .get_or_insert_with(|| OpenWindow::at(s.intended_ms, last_pod.clone()));
            w.held_ok += 1;
            self.slow.outage(s.intended_ms);
        } else if let Some(w) = self.open.take() {
            self.close_window(w, s.intended_ms, false, s.pod.clone());
        }
        let response_ms = s.response_ms();
        if let Some(ms) = response_ms {
            self.latency.record(ms);
            self.phases[phase].latency.record(ms);
            if !held {
                self.slow.answer(s.intended_ms, ms);
            }
        }
        if let Some(total) = s.total_ms {
            self.service.record(total);
        }
        if !held && s.pod.is_some() {
            self.last_pod.clone_from(&s.pod);
        }
        self.reached.answered(&s);
        self.seconds.ok_answer(s.intended_ms, response_ms, None);
        let arrived_ms = completed_ms(&s).unwrap_or(s.intended_ms);
        self.arrivals.insert(
            ((arrived_ms * 1000.0).round() as i64, s.seq),
            Arrival {
                intended_ms: s.intended_ms,
                arrived_ms,
                pod: s.pod,
                version: s.version,
            },
        );
    }

    /// Fixes the degraded rule's baseline once the baseline phase is over: samples
    /// come in send order, so the first one intended after the trigger closes it.
    fn settle_baseline(&mut self, intended_ms: f64) {
        if self.slow.has_baseline() || self.phase_of(intended_ms) == PhaseName::Before {
            return;
        }
        let baseline = &self.phases[PhaseName::Before as usize].latency;
        if !baseline.is_empty() {
            self.slow.set_baseline(baseline.summary().p50);
        }
    }

    /// Places the answers that arrived by `now_ms` (all of them with `None`), in
    /// order of arrival: versions, flips and pods.
    fn place_arrivals(&mut self, now_ms: Option<f64>) {
        while let Some(entry) = self.arrivals.first_entry() {
            if now_ms.is_some_and(|now| entry.get().arrived_ms > now) {
                break;
            }
            let a = entry.remove();
            self.arrive(a);
        }
    }

    fn arrive(&mut self, a: Arrival) {
        let at = a.arrived_ms;
        if let Some(pod) = &a.pod {
            self.pods.answer(pod, at, a.version.as_deref());
        }
        let Some(v) = a.version else {
            return;
        };
        let idx = match self.version_index.get(&v) {
            Some(&i) => i,
            None => {
                self.versions.push(VersionSeen {
                    version: v.clone(),
                    first_ms: at,
                    last_ms: at,
                    count: 0,
                });
                self.version_index.insert(v, self.versions.len() - 1);
                self.versions.len() - 1
            }
        };
        let seen = &mut self.versions[idx];
        seen.count += 1;
        seen.first_ms = seen.first_ms.min(at);
        seen.last_ms = seen.last_ms.max(at);
        if self.last_version.is_some_and(|last| last != idx) {
            self.flips += 1;
            // The strip is on intended time and ends with the last tick.
            self.buckets
                .at(at.min(self.last_intended_ms))
                .version_changed = true;
        }
        self.last_version = Some(idx);
        // The per-second series is by intended second: the versions that answered
        // the requests sent in it.
        self.seconds.ok_answer(a.intended_ms, None, Some(idx));
    }

    fn close_window(&mut self, w: OpenWindow, end_ms: f64, open: bool, pod_after: Option<String>) {
        self.windows.push(OutageWindow {
            start_ms: w.start_ms,
            end_ms,
            duration_ms: end_ms - w.start_ms,
            failed: w.failed,
            held_ok: w.held_ok,
            kinds: w.kinds,
            open,
            after_event: None,
            cause: None,
            syn_retransmitted: w.syn_retransmitted,
            pod_before: w.pod_before,
            pod_after,
            proxy_retried: None,
            programming_latency: None,
        });
    }

    /// Drains the reorder buffer and builds the report.
    pub fn finish(self, header: &RunHeader, footer: Option<&RunFooter>) -> Report {
        self.finish_with_span(header, footer).0
    }

    /// [`Analyzer::finish`], and when this stream probed (`None`: never).
    pub(crate) fn finish_with_span(
        mut self,
        header: &RunHeader,
        footer: Option<&RunFooter>,
    ) -> (Report, Option<Span>) {
        // Whatever is still pending had a gap before it (a run killed with
        // requests in flight): take it in order.
        let rest = std::mem::take(&mut self.pending);
        for s in rest.into_values() {
            self.look_ahead(s);
        }
        self.decide(true);
        self.place_arrivals(None);
        // The run's length is when probing stopped (run.json's end); a run killed
        // before it was written ends one period after its last tick.
        let duration_ms = footer
            .map(|f| f.duration_ms)
            .unwrap_or(self.last_intended_ms + self.period_ms);
        if let Some(w) = self.open.take() {
            // Down until the last tick's period was over, unless probing stopped first.
            let end = (self.last_intended_ms + self.period_ms).min(duration_ms);
            self.close_window(w, end, true, None);
        }
        // No window outlasts the run (a hand-edited or inconsistent file included).
        for w in &mut self.windows {
            w.end_ms = w.end_ms.min(duration_ms).max(w.start_ms);
            w.duration_ms = w.end_ms - w.start_ms;
        }
        for w in &mut self.windows {
            w.after_event = self
                .events
                .iter()
                .filter(|e| e.at_ms <= w.start_ms)
                .max_by(|a, b| a.at_ms.total_cmp(&b.at_ms))
                .map(|e| EventRef {
                    kind: e.kind.to_string(),
                    detail: e.detail.clone(),
                    at_ms: e.at_ms,
                    offset_ms: w.start_ms - e.at_ms,
                });
        }
        crate::attribute::attribute_causes_seen(&mut self.windows, &self.events, &self.reached);
        crate::attribute::name_pods_around(&mut self.windows);
        crate::attribute::measure_programming_latency(
            &mut self.windows,
            &self.events,
            &self.reached,
            self.period_ms,
        );
        // fold from +0.0: f64's sum() of nothing is -0.0, which prints as "-0".
        let total_ms = self.windows.iter().fold(0.0, |acc, w| acc + w.duration_ms);
        let longest_ms = self
            .windows
            .iter()
            .map(|w| w.duration_ms)
            .fold(0.0, f64::max);
        let counted = self.totals.sent - self.totals.local;
        self.totals.availability = (counted > 0).then(|| self.totals.ok as f64 / counted as f64);

        let mixed = self.mixed_window();
        let run_p50 = (!self.latency.is_empty()).then(|| self.latency.summary().p50);
        let probed_end = (self.last_intended_ms + self.period_ms).min(duration_ms);
        let slow = std::mem::replace(&mut self.slow, SlowSpans::new());
        let mut degraded = slow.finish(run_p50, probed_end);
        // Like the outage windows, none outlasts the run.
        for w in &mut degraded.windows {
            w.end_ms = w.end_ms.min(duration_ms).max(w.start_ms);
            w.duration_ms = w.end_ms - w.start_ms;
        }
        degraded.total_ms = degraded
            .windows
            .iter()
            .fold(0.0, |acc, w| acc + w.duration_ms);
        let probed = self.first_intended_ms.map(|start_ms| Span {
            start_ms,
            end_ms: (self.last_intended_ms + self.period_ms)
                .min(duration_ms)
                .max(start_ms),
        });
        let phases = self.phases(duration_ms);
        let per_second = self.seconds.finish(&self.versions);
        // Kubernetes words only where a cluster took part.
        let cluster =
            header.config.rollout_events || self.events.iter().any(|e| e.kind.is_rollout());
        let failure_details = self
            .details
            .iter()
            .map(|(&(kind, errno, tls), &count)| FailureDetail {
                kind: kind.as_str().to_string(),
                errno,
                errno_name: errno.and_then(errno_name).map(str::to_string),
                message: errno.map(os_message),
                count,
                hint: tls.map_or_else(|| kind.hint_for(cluster).to_string(), |t| t.summary()),
            })
            .collect();
        let report = Report {
            schema: REPORT_SCHEMA.to_string(),
            label: header.label.clone(),
            target: header.target.clone(),
            config: header.config.clone(),
            started_at: header.started_at.clone(),
            ended_at: footer
                .map(|f| f.ended_at.clone())
                .unwrap_or_else(|| offset_time(&header.started_at, duration_ms)),
            duration_ms,
            interrupted: footer.map(|f| f.interrupted).unwrap_or(true),
            trigger: footer.and_then(|f| f.trigger.clone()),
            failures: self
                .failures
                .iter()
                .map(|(k, n)| (k.as_str().to_string(), *n))
                .collect(),
            failure_details,
            downtime: Downtime {
                total_ms,
                longest_ms,
                windows: self.windows,
            },
            degraded,
            mixed_ms: mixed
                .as_ref()
                .map(|m| (m.end_ms - m.start_ms).max(0.0))
                .unwrap_or(0.0),
            mixed,
            versions: self.versions,
            flips: self.flips,
            latency_ms: self.latency.summary(),
            service_ms: self.service.summary(),
            events: self.events,
            phases,
            probe: ProbeHealth {
                send_lag_p50_ms: self.send_lag.summary().p50,
                send_lag_p99_ms: self.send_lag.summary().p99,
                send_lag_max_ms: self.max_lag_ms,
                late: self.late,
                skipped: self.totals.skipped,
                executor: None,
            },
            timeline: self.buckets.timeline(),
            per_second,
            pods: self.pods.seen,
            lab: header.config.lab_kernel.clone().map(LabInfo::new),
            warnings: Vec::new(),
            valid: true,
            invalid_reason: None,
            streams: Vec::new(),
            total_outage: None,
            totals: self.totals,
        }
        .judged();
        (report, probed)
    }

    fn mixed_window(&self) -> Option<MixedWindow> {
        if self.versions.len() < 2 {
            return None;
        }
        let old = &self.versions[0];
        let new = self
            .versions
            .iter()
            .max_by(|a, b| a.first_ms.total_cmp(&b.first_ms))
            .expect("at least two versions");
        let pods_of = |version: &str| {
            self.pods
                .seen
                .iter()
                .filter(|p| p.version.as_deref() == Some(version))
                .map(|p| p.pod.clone())
                .collect()
        };
        Some(MixedWindow {
            old: old.version.clone(),
            new: new.version.clone(),
            start_ms: new.first_ms,
            // Both answered only while both still answered: a new version that
            // stopped (rolled back) ends the overlap before the old one's last answer.
            end_ms: old.last_ms.min(new.last_ms),
            old_pods: pods_of(&old.version),
            new_pods: pods_of(&new.version),
        })
    }

    fn phases(&self, duration_ms: f64) -> Vec<Phase> {
        let Some(start) = self.during_start else {
            return Vec::new();
        };
        let bounds = [
            (PhaseName::Before, "before", 0.0, Some(start)),
            (PhaseName::During, "during", start, self.during_end),
            (
                PhaseName::After,
                "after",
                self.during_end.unwrap_or(duration_ms),
                None,
            ),
        ];
        bounds
            .iter()
            .filter(|(name, ..)| *name != PhaseName::After || self.during_end.is_some())
            .map(|&(name, label, start_ms, end_ms)| {
                let stats = &self.phases[name as usize];
                // A window that crosses a border is cut there: each phase holds only
                // its own part, so the phases add up to the stream's downtime.
                let phase_end = end_ms.unwrap_or(duration_ms).max(start_ms);
                let downtime_ms = self.windows.iter().fold(0.0, |acc, w| {
                    acc + (w.end_ms.min(phase_end) - w.start_ms.max(start_ms)).max(0.0)
                });
                Phase {
                    name: label.to_string(),
                    start_ms,
                    end_ms,
                    sent: stats.sent,
                    ok: stats.ok,
                    failed: stats.failed,
                    downtime_ms,
                    latency_ms: stats.latency.summary(),
                    syn_retransmitted: stats.syn_retransmitted,
                }
            })
            .collect()
    }
}

impl OpenWindow {
    fn at(start_ms: f64, pod_before: Option<String>) -> OpenWindow {
        OpenWindow {
            start_ms,
            failed: 0,
            held_ok: 0,
            kinds: BTreeMap::new(),
            syn_retransmitted: 0,
            pod_before,
        }
    }
}

/// When a request's answer (or failure) came back, ms on the run's clock.
fn completed_ms(s: &Sample) -> Option<f64> {
    Some(s.sent_ms? + s.total_ms?)
}

/// What an ok answer means for the outage windows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Served when it was meant to be: it ends an open window.
    No,
    /// Its connect needed a retransmitted SYN: inside a window that is open, but
    /// on its own (a lost packet in a healthy run) no outage.
    IfOpen,
    /// A request sent after it failed before it was answered: the service was down
    /// while it waited, so it lies inside a window (opening one if need be).
    Yes,
}

/// What `head` (the oldest sample of the lookahead) means for the windows, given
/// the earliest completion of a failure sent after it and the intended time of the
/// newest sample in: `None` while that cannot be told yet, i.e. until a tick intended
/// after its answer is in (any later tick was sent after the answer, so cannot have
/// failed before it). With `all`, nothing later will come.
fn held_state(
    head: &Sample,
    first_failure_ms: Option<f64>,
    newest_intended_ms: f64,
    all: bool,
) -> Option<Held> {
    if head.outcome != Outcome::Ok {
        return Some(Held::No);
    }
    let alone = if head.syn_retransmits.is_some_and(|n| n > 0) {
        Held::IfOpen
    } else {
        Held::No
    };
    let Some(answered_ms) = completed_ms(head) else {
        return Some(alone);
    };
    if first_failure_ms.is_some_and(|done| done < answered_ms) {
        return Some(Held::Yes);
    }
    (all || newest_intended_ms > answered_ms).then_some(alone)
}

/// The OS's message for an errno, without Rust's " (os error N)" suffix.
pub(crate) fn os_message(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    }
}

/// `started_at` plus `ms`, RFC 3339; empty when that is no representable time
/// (a hand-edited file can hold any number; the readers refuse such rows, and
/// this stays checked so that a library caller's odd input cannot panic either).
fn offset_time(started_at: &str, ms: f64) -> String {
    match started_at.parse::<jiff::Timestamp>() {
        Ok(t) => crate::clock::wall_after(t, ms)
            .map(crate::clock::format_wall)
            .unwrap_or_default(),
        Err(_) => started_at.to_string(),
    }
}

/// Rebuilds a report from a recorded run and its events.
///
/// ```no_run
/// let run = probe_core::read_samples(std::path::Path::new("out/samples.csv")).unwrap();
/// let events = probe_core::read_events(std::path::Path::new("out/events.csv")).unwrap();
/// let report = probe_core::analyze_recorded(&run, events);
/// println!("{}", report.summary());
/// ```
pub fn analyze_recorded(run: &crate::sample::RecordedRun, events: Vec<Event>) -> Report {
    let mut analyzer = RunAnalyzer::with_events(&run.header, events);
    for s in &run.samples {
        analyzer.push(s.clone());
    }
    analyzer.finish(&run.header, run.footer.as_ref())
}

/// `rollprobe report`: streams a samples.csv through the analyzer without
/// holding its rows, so time and memory stay flat in the file's length.
pub fn analyze_samples_file(
    path: &std::path::Path,
    events: Vec<Event>,
) -> Result<Report, crate::sample::ReadError> {
    let mut analyzer: Option<RunAnalyzer> = None;
    let mut events = Some(events);
    let mut start =
        |header: &RunHeader| RunAnalyzer::with_events(header, events.take().unwrap_or_default());
    let (header, footer, inferred) = crate::sample::stream_for_analysis(path, |header, s| {
        analyzer.get_or_insert_with(|| start(header)).push(s);
    })?;
    let analyzer = analyzer.unwrap_or_else(|| start(&header));
    let mut report = analyzer.finish(&header, footer.as_ref());
    if let Some(inferred) = inferred {
        report.warnings.insert(0, inferred.warning());
    }
    Ok(report)
}
