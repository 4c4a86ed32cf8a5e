//! The report: the serde type behind report.json (`rollprobe.report/v1`).
//!
//! Keys are a public contract: adding one is fine, renaming one is a new schema
//! version. Times are ms since the start unless the key says otherwise.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cause::{Explanation, ProgrammingLatency};
use crate::config::RecordedConfig;
use crate::event::Event;
use crate::trigger::{TriggerOutcome, TriggerReport};

/// The schema tag of report.json.
pub const REPORT_SCHEMA: &str = "rollprobe.report/v1";

/// Everything measured in one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// The run's name, e.g. `recreate`.
    pub label: Option<String>,
    /// The probed URL.
    pub target: String,
    /// The settings of the run.
    pub config: RecordedConfig,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock end, RFC 3339 UTC.
    pub ended_at: String,
    /// Length of the run, ms.
    pub duration_ms: f64,
    /// Stopped by Ctrl-C or killed, rather than by plan.
    pub interrupted: bool,
    /// Request counts.
    pub totals: Totals,
    /// Failures by kind name (local kinds included, `ok` and `skipped` not).
    pub failures: BTreeMap<String, u64>,
    /// Failures by kind and errno, with the OS message and the usual cause.
    pub failure_details: Vec<FailureDetail>,
    /// Outage windows and their total.
    pub downtime: Downtime,
    /// Every version that answered, in order of first answer.
    pub versions: Vec<VersionSeen>,
    /// From the first answer of the newest version to the last answer of the
    /// oldest one (or of the newest, if it stopped first); 0 when they did not
    /// overlap or only one version answered.
    pub mixed_ms: f64,
    /// The mixed window itself, when two versions answered.
    pub mixed: Option<MixedWindow>,
    /// How often consecutive ok answers changed version.
    pub flips: u64,
    /// Latency of ok answers measured from the intended send time (what a user
    /// waiting on that schedule saw; no coordinated omission).
    pub latency_ms: Latency,
    /// Latency of ok answers measured from the actual send (the server's share).
    pub service_ms: Latency,
    /// Markers on the probe's clock.
    pub events: Vec<Event>,
    /// Before, during and after the rollout, when a trigger or rollout events marked it.
    pub phases: Vec<Phase>,
    /// The prober's own health.
    pub probe: ProbeHealth,
    /// A one-line picture of the run.
    pub timeline: Timeline,
    /// One row per second of intended time (absent from reports written
    /// before it existed).
    #[serde(default)]
    pub per_second: Vec<SecondStats>,
    /// The pods (instances) that answered, in order of first answer (with `pod_from`).
    #[serde(default)]
    pub pods: Vec<PodSeen>,
    /// The lab's settings, for a run in the lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab: Option<LabInfo>,
    /// What makes the figures less than they seem: failures before the rollout, an
    /// invalid measurement, SYNs that needed retransmitting.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Whether the run is a valid measurement (see [`Report::is_valid`]).
    #[serde(default = "valid_by_default")]
    pub valid: bool,
    /// Why it is not, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// Every stream's own figures, in run order. The top-level totals, failures,
    /// versions and pods are the sum over streams; the top-level `downtime`, windows,
    /// latency, phases and series are those of the first stream, so readers that
    /// know one stream keep working.
    #[serde(default)]
    pub streams: Vec<StreamReport>,
    /// With several streams: the spans in which every stream was failing at once.
    /// Any other window of a stream is a partial outage (some clients were served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_outage: Option<TotalOutage>,
    /// The trigger and how it ended, when the run had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerReport>,
    /// Degraded windows: spans of ok answers far slower than the baseline (of the
    /// first stream, like `downtime`; absent from reports written before it existed).
    #[serde(default)]
    pub degraded: Degraded,
}

impl Report {
    /// The report as if `stream` had been the run's only stream (its windows, series,
    /// versions, pods and counts at the top level), for pictures drawn per stream.
    pub fn of_stream(&self, stream: &StreamReport) -> Report {
        Report {
            target: stream.target.clone(),
            totals: stream.totals.clone(),
            failures: stream.failures.clone(),
            downtime: stream.downtime.clone(),
            degraded: stream.degraded.clone(),
            versions: stream.versions.clone(),
            pods: stream.pods.clone(),
            latency_ms: stream.latency_ms.clone(),
            probe: stream.probe.clone(),
            timeline: stream.timeline.clone(),
            per_second: stream.per_second.clone(),
            streams: vec![stream.clone()],
            total_outage: None,
            ..self.clone()
        }
    }
}

/// One stream's figures: a vantage point and a connection mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamReport {
    /// `<vantage>-<connection>`, e.g. `client-fresh`.
    pub name: String,
    /// Where it probed from.
    pub vantage: String,
    /// `fresh` or `keepalive`.
    pub connection: String,
    /// The URL it probed.
    pub target: String,
    /// For a merged run: the input it came from, its own start and its shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<crate::sample::MergedInput>,
    /// Its request counts.
    pub totals: Totals,
    /// Its failures by kind.
    pub failures: BTreeMap<String, u64>,
    /// Its outage windows.
    pub downtime: Downtime,
    /// Its degraded windows.
    #[serde(default)]
    pub degraded: Degraded,
    /// The versions it saw answer.
    pub versions: Vec<VersionSeen>,
    /// The pods that answered it.
    pub pods: Vec<PodSeen>,
    /// Its latency from the intended send time.
    pub latency_ms: Latency,
    /// When it probed: its first tick to one period after its last (or the run's
    /// end, if that came first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probed: Option<Span>,
    /// Its phases (before, during and after the rollout), cut like the run's.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Its prober health.
    pub probe: ProbeHealth,
    /// Its one-line picture.
    pub timeline: Timeline,
    /// Its per-second series.
    pub per_second: Vec<SecondStats>,
}

/// The spans in which every stream failed at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TotalOutage {
    /// Their summed length, ms.
    pub total_ms: f64,
    /// The spans, in time order.
    pub spans: Vec<Span>,
    /// How long every stream was probing at once, ms: only there can a total outage
    /// be seen (runs merged from different times may overlap little, or not at all).
    /// `None` in reports written before this key existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlap_ms: Option<f64>,
}

/// A span of the probe's clock.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// Start, ms.
    pub start_ms: f64,
    /// End, ms.
    pub end_ms: f64,
}

fn valid_by_default() -> bool {
    true
}

/// The share of ticks that may fail on the prober's side (or be skipped) in a valid run.
pub const MAX_LOCAL_SHARE: f64 = 0.01;

impl Report {
    /// Whether the run is a valid measurement: it sent requests, the prober's own
    /// failures (`local_*`) plus skipped ticks stay under 1 % of the ticks, and a
    /// trigger, if there was one, ran. Gates only pass on valid runs.
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Sets `valid`, `invalid_reason` and `warnings` from the figures.
    pub(crate) fn judged(mut self) -> Report {
        let t = &self.totals;
        let ticks = t.sent + t.skipped;
        let own = t.local + t.skipped;
        let trigger_failed = self
            .trigger
            .as_ref()
            .filter(|t| t.outcome == TriggerOutcome::NotStarted);
        self.invalid_reason = if t.sent == 0 {
            Some("no request was sent".to_string())
        } else if own as f64 >= MAX_LOCAL_SHARE * ticks as f64 {
            Some(format!(
                "{own} of {ticks} ticks failed on the prober's side or were skipped (the limit is 1 %): the prober, not the target, is what was measured"
            ))
        } else {
            trigger_failed.map(|t| format!("the trigger did not run ({t})"))
        };
        self.valid = self.invalid_reason.is_none();
        let mut warnings = Vec::new();
        if let Some(before) = self.phases.iter().find(|p| p.name == "before") {
            if before.failed > 0 {
                warnings.push(format!(
                    "the service was already failing before the rollout: {} failures in the baseline",
                    before.failed
                ));
            }
        }
        if t.ok == 0 && t.failed > 0 {
            warnings.push(nothing_answered(t.failed, &self.failures));
        }
        if t.syn_retransmitted > 0 {
            warnings.push(format!(
                "{} connects needed a retransmitted SYN: their first SYN got no answer (a REJECT or failed ARP whose ICMP error was rate-limited away, or a drop), so each waited 1 s or more",
                t.syn_retransmitted
            ));
        }
        self.warnings = warnings;
        self
    }
}

/// The warning of a run in which no request succeeded: then the figures describe a
/// target that was never up (a typo in the URL, a dead port, a wrong path), not a
/// rollout, and the most common kind says what to check first.
fn nothing_answered(failed: u64, failures: &BTreeMap<String, u64>) -> String {
    use crate::outcome::Outcome;
    let most = failures
        .iter()
        .filter_map(|(kind, n)| Some((kind.parse::<Outcome>().ok()?, *n)))
        .filter(|(kind, _)| !kind.is_local())
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        .map(|(kind, _)| kind);
    let check = match most {
        Some(Outcome::ConnectionRefused) => {
            "nothing listens there: check the host and port, and that the service is running"
        }
        Some(Outcome::Dns) => "the host name did not resolve: check its spelling and --resolve",
        Some(Outcome::UnexpectedStatus) => {
            "it answered with other statuses: check the path and --expect-status"
        }
        Some(Outcome::Tls) => "check the scheme (http or https), --cacert and the host name",
        Some(Outcome::HostUnreachable | Outcome::NetworkUnreachable | Outcome::ConnectTimeout) => {
            "the address is not reachable from here: check the host, the port and the route"
        }
        _ => "check the URL (host, port, path), that the service is up, and --expect-status",
    };
    format!(
        "nothing ever answered: none of the {failed} requests succeeded ({}), so this measures a target that was never up, not a rollout; {check}",
        most.map_or_else(|| "no known failure kind".to_string(), |k| format!("mostly {k}"))
    )
}

/// A pod (instance) that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSeen {
    /// Its name, as the answer gave it.
    pub pod: String,
    /// When its first ok answer arrived, ms.
    pub first_ms: f64,
    /// When its last ok answer arrived, ms.
    pub last_ms: f64,
    /// Ok answers it gave.
    pub count: u64,
    /// The version of its latest answer.
    pub version: Option<String>,
}

/// The lab a run was measured in, and the path its requests took there (filled by the
/// CLI's `lab` and `matrix --lab`).
///
/// ```
/// use probe_core::LabInfo;
/// let lab = LabInfo::new("stock");
/// assert_eq!(serde_json::to_string(&lab).unwrap(), r#"{"kernel":"stock"}"#);
/// let behind_nginx = LabInfo {
///     proxy_mode: Some("iptables".into()),
///     ingress: Some("nginx".into()),
///     ..lab
/// };
/// let json = serde_json::to_string(&behind_nginx).unwrap();
/// assert_eq!(json, r#"{"kernel":"stock","proxy_mode":"iptables","ingress":"nginx"}"#);
/// // A report from before the data path was recorded reads with neither.
/// let older: LabInfo = serde_json::from_str(r#"{"kernel":"tuned"}"#).unwrap();
/// assert_eq!((older.proxy_mode, older.ingress), (None, None));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabInfo {
    /// `stock` (Linux defaults) or `tuned` (ICMP limits lifted, short neighbour timers).
    pub kernel: String,
    /// The mode of the lab's kube-proxy rules (`iptables`, `nftables`); absent in reports written
    /// before the data path was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_mode: Option<String>,
    /// The ingress proxy the requests went through (`nginx`, `haproxy`, `envoy`), when
    /// one did; absent when they went to the Service directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// The service mesh whose sidecars stood beside the pods (`istio`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesh: Option<String>,
}

impl LabInfo {
    /// A lab with `kernel` settings, its data path not (yet) known.
    pub fn new(kernel: impl Into<String>) -> LabInfo {
        LabInfo {
            kernel: kernel.into(),
            proxy_mode: None,
            ingress: None,
            mesh: None,
        }
    }
}

/// Request counts of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Requests sent (ok + failed + local).
    pub sent: u64,
    /// Answered as expected.
    pub ok: u64,
    /// Failed for a reason on the target's side.
    pub failed: u64,
    /// Failed for a reason on the prober's side (`local_*`).
    pub local: u64,
    /// Ticks not sent because of the in-flight cap.
    pub skipped: u64,
    /// Connects that needed a retransmitted SYN (their first SYN met silence).
    #[serde(default)]
    pub syn_retransmitted: u64,
    /// ok / (sent - local); `None` when nothing counted was sent.
    pub availability: Option<f64>,
    /// Requests that a proxy retried (ok or not), from its joined access log; absent
    /// when no log was joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_retried: Option<u64>,
}

/// One (kind, errno) pair and how often it happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureDetail {
    /// The kind's stable name.
    pub kind: String,
    /// The errno, if the failure had one.
    pub errno: Option<i32>,
    /// Its symbolic name, e.g. `EHOSTUNREACH`.
    pub errno_name: Option<String>,
    /// The OS's message for it, e.g. `No route to host`.
    pub message: Option<String>,
    /// How many samples.
    pub count: u64,
    /// What it usually means in Kubernetes.
    pub hint: String,
}

/// Outage windows: maximal runs of consecutive failures in send order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Downtime {
    /// Sum of the windows' lengths, ms.
    pub total_ms: f64,
    /// The longest window, ms.
    pub longest_ms: f64,
    /// Every window, in time order.
    pub windows: Vec<OutageWindow>,
}

/// A maximal run of consecutive failed samples.
///
/// It starts at the intended time of its first failure and ends at the intended
/// time of the first success after it, so its length is what an observer would
/// call "down", to within 1/rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageWindow {
    /// Intended time of the first failure, ms.
    pub start_ms: f64,
    /// Intended time of the first success after it, ms (for an open window, one
    /// period after the stream's last tick, or the run's end if that came first).
    pub end_ms: f64,
    /// `end_ms - start_ms`.
    pub duration_ms: f64,
    /// Failed samples in it.
    pub failed: u64,
    /// Ok answers that were only held through it (a retransmitted SYN, or an answer
    /// that came back after a request sent later had failed): they lie inside it,
    /// counted as ok but late, rather than ending it.
    #[serde(default)]
    pub held_ok: u64,
    /// Failed samples by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Still failing when the run ended.
    pub open: bool,
    /// The latest event at or before the window's start.
    pub after_event: Option<EventRef>,
    /// Why it happened, when the rollout's events explain it; report.json holds
    /// its sentence.
    #[serde(default)]
    pub cause: Option<Explanation>,
    /// Failed connects in it that had retransmitted their SYN.
    #[serde(default)]
    pub syn_retransmitted: u64,
    /// The pod that gave the last ok answer before it (with `pod_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_before: Option<String>,
    /// The pod that gave the ok answer that ended it (with `pod_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_after: Option<String>,
    /// Requests in it (the ok answer that ended it included) that a proxy retried,
    /// from its joined access log; absent when no log was joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_retried: Option<u64>,
    /// For a window whose requests still reached a pod the EndpointSlice had dropped
    /// (a stale route): the network programming latency as the client saw it, a
    /// lower bound with its slack; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programming_latency: Option<ProgrammingLatency>,
}

/// Degraded windows and their total: where ok answers were far slower than the
/// baseline (a proxy's retry, a paused pod, a queue). An ok answer is slow when its
/// latency from the intended send is above `threshold_ms` = max(5 x `baseline_p50_ms`,
/// `baseline_p50_ms` + 100 ms); a window is a run of slow answers in send order,
/// ended by [`FAST_TO_END`] fast answers in a row or by a failure (an outage).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Degraded {
    /// The median latency the rule starts from, ms: the baseline phase's (before the
    /// trigger), or the run's own without one (or when no ok answer came before it);
    /// absent when no ok answer gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_p50_ms: Option<f64>,
    /// The latency above which an ok answer is slow, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_ms: Option<f64>,
    /// Sum of the windows' lengths, ms.
    pub total_ms: f64,
    /// Every window, in time order.
    pub windows: Vec<DegradedWindow>,
}

/// Fast answers in a row that end a degraded window.
pub const FAST_TO_END: u32 = 3;

/// A run of slow ok answers, on intended time like the outage windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedWindow {
    /// Intended time of its first slow answer, ms.
    pub start_ms: f64,
    /// Intended time of the first fast answer (or failure) after it, ms; for an open
    /// window, one period after the stream's last tick.
    pub end_ms: f64,
    /// `end_ms - start_ms`.
    pub duration_ms: f64,
    /// Slow answers in it.
    pub slow: u64,
    /// What the slow answers took beyond the baseline median, summed, ms.
    pub extra_ms: f64,
    /// The slowest answer's latency, ms.
    pub max_ms: f64,
    /// Still slow when the run ended.
    pub open: bool,
}

/// A pointer from a window to the event before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRef {
    /// The event's kind.
    pub kind: String,
    /// The event's detail.
    pub detail: String,
    /// When it happened, ms.
    pub at_ms: f64,
    /// How long before the window it happened, ms.
    pub offset_ms: f64,
}

/// A version that answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionSeen {
    /// The version string.
    pub version: String,
    /// When its first ok answer arrived, ms.
    pub first_ms: f64,
    /// When its last ok answer arrived, ms.
    pub last_ms: f64,
    /// Ok answers from it.
    pub count: u64,
}

/// When the old and the new version both answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixedWindow {
    /// The first version to answer.
    pub old: String,
    /// The last version to appear.
    pub new: String,
    /// First answer of `new`, ms.
    pub start_ms: f64,
    /// The end of the overlap: the last answer of `old`, or of `new` if that came
    /// first (the new version stopped answering while the old one still did), ms.
    pub end_ms: f64,
    /// The pods whose latest answer was `old` (with `pod_from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_pods: Vec<String>,
    /// The pods whose latest answer was `new` (with `pod_from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_pods: Vec<String>,
}

/// Latency percentiles, ms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

/// A part of the run: `before`, `during` or `after` the rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// `before`, `during` or `after`.
    pub name: String,
    /// Start, ms.
    pub start_ms: f64,
    /// End, ms (`None`: the run ended in it).
    pub end_ms: Option<f64>,
    /// Requests sent in it.
    pub sent: u64,
    /// Ok answers.
    pub ok: u64,
    /// Target failures.
    pub failed: u64,
    /// Downtime in it, ms: the parts of the windows that lie in it (a window that
    /// crosses a border is cut there), so the phases add up to the downtime.
    pub downtime_ms: f64,
    /// Latency of its ok answers from the intended time.
    pub latency_ms: Latency,
    /// Connects in it that needed a retransmitted SYN.
    #[serde(default)]
    pub syn_retransmitted: u64,
}

/// The prober's own health: if these are bad, so is every other figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeHealth {
    /// Median send lag (actual - intended), ms.
    pub send_lag_p50_ms: f64,
    /// 99th percentile send lag, ms.
    pub send_lag_p99_ms: f64,
    /// Largest send lag, ms.
    pub send_lag_max_ms: f64,
    /// Ticks sent more than 1 ms after their time: enough to blur a report whose
    /// times are in milliseconds, whatever the rate.
    pub late: u64,
    /// Ticks not sent at all because of the in-flight cap.
    pub skipped: u64,
    /// The executor that sent the requests, from run.json (a run recorded before it
    /// was kept has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<crate::sample::ExecutorUsed>,
}

/// A one-line picture of the run: one character per time bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The length of time each character stands for, ms.
    pub bucket_ms: f64,
    /// `.` all ok, `|` the version changed, a letter: the most common failure
    /// (see [`crate::Outcome::symbol`]), space: nothing sent.
    pub strip: String,
}

/// What one character of [`Timeline::strip`] stands for: the analyzer's data,
/// written here because the strip's characters are report.json's format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StripCell {
    /// Nothing was sent.
    Idle,
    /// Every answer was ok.
    Ok,
    /// Every answer was ok and the version changed.
    VersionChanged,
    /// The most common failure.
    Failure(crate::outcome::Outcome),
}

impl StripCell {
    fn symbol(self) -> char {
        match self {
            StripCell::Idle => ' ',
            StripCell::Ok => '.',
            StripCell::VersionChanged => '|',
            StripCell::Failure(kind) => kind.symbol(),
        }
    }
}

impl Timeline {
    /// The strip of `cells`, each `bucket_ms` long.
    pub(crate) fn from_cells(bucket_ms: f64, cells: impl Iterator<Item = StripCell>) -> Timeline {
        Timeline {
            bucket_ms,
            strip: cells.map(StripCell::symbol).collect(),
        }
    }
}

/// One second of the run, by intended send time: what timeline.csv and
/// report.html draw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    /// Seconds since the start: this row covers `[second, second + 1)`.
    pub second: u64,
    /// Requests sent (skipped ticks not included).
    pub sent: u64,
    /// Answered as expected.
    pub ok: u64,
    /// Failures by kind name (local kinds included); kinds with none are left out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failures: BTreeMap<String, u64>,
    /// The versions that answered in this second, in order of first answer
    /// (at most 16: more means the version source is not a version).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Median latency of its ok answers from the intended time, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same, ms.
    pub p99_ms: Option<f64>,
}

impl Report {
    /// Parses a report.json.
    pub fn from_json(text: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The failure kinds of the run (local ones included), in the report order
    /// of [`crate::Outcome::ALL`]; names no Outcome knows (a newer file's) last.
    pub fn failure_kinds(&self) -> Vec<&str> {
        let rank = |k: &str| {
            crate::outcome::Outcome::ALL
                .iter()
                .position(|o| o.as_str() == k)
                .unwrap_or(usize::MAX)
        };
        let mut kinds: Vec<&str> = self.failures.keys().map(String::as_str).collect();
        kinds.sort_by_key(|k| (rank(k), *k));
        kinds
    }
}
