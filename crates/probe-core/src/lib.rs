//! # probe_core: how much is a service really down while it is redeployed?
//!
//! The library behind the `rollprobe` command. It fires HTTP requests at a fixed
//! rate (open loop), names every failure by its real cause (the OS errno, the
//! HTTP status, the proxy that answered), tracks which version answered, puts
//! events on the same clock, and reports outage windows, downtime, versions and
//! latency.
//!
//! Data flows one way: schedule -> execute ([`Executor`]) -> classify
//! ([`classify_error`]) -> record (samples.csv, [`SampleWriter`]) -> analyze
//! ([`Analyzer`]) -> report ([`Report`]) -> output ([`Report::summary`],
//! [`output`]). [`Probe`] wires them together; ARCHITECTURE.md at the
//! repository root maps every module.
//!
//! ```no_run
//! # async fn demo() -> Result<(), probe_core::ProbeError> {
//! let probe = probe_core::Probe::builder("http://127.0.0.1:8080/test/version")
//!     .rate(200)
//!     .start()
//!     .await?;
//! probe.mark("rollout-start");
//! // ... roll the service ...
//! let report = probe.stop().await?;
//! assert_eq!(report.totals.failed, 0, "{}", report.summary());
//! # Ok(()) }
//! ```

mod access_log;
mod analyze;
mod attribute;
mod cause;
mod classify;
mod clock;
mod config;
mod event;
mod execute;
mod format;
mod gate;
mod host;
mod http1;
mod matrix;
mod matrix_runner;
mod merge;
mod metrics;
mod outcome;
pub mod output;
mod probe;
mod record;
mod report;
mod rollout;
mod sample;
mod schedule;
mod strategy;
mod tls;
mod trigger;

pub use access_log::{
    count_proxy_retries, AccessLog, AccessLogError, BadUpstreamRecord, UpstreamRecord,
};
pub use analyze::{analyze_recorded, analyze_samples_file, Analyzer, RunAnalyzer};
pub use attribute::attribute_causes;
pub use cause::{
    AnsweredAround, Cause, Explanation, LastEvent, NoEndpointSign, NodeSync, PodAt,
    ProgrammingLatency, ProxySync, RateLimited, PROGRAMMING_SLACK_CONFIDENCE,
};
pub use classify::{
    classify_answer, classify_error, errno_name, is_envoy_no_upstream, outcome_for_errno,
    outcome_for_status, Classified, ProxySigns, PROXY_SIGN_HEADERS,
};
pub use clock::{format_wall, wall_after, Clock};
pub use config::{
    check_duration, check_rate, parse_duration, parse_metrics_addr, CaFile, ConfigError,
    ConnectionMode, ExecutorChoice, ProbeConfig, RecordedConfig, ResolveRule, StatusSet, Target,
    VersionSource, MAX_DURATION, MAX_IN_FLIGHT, MAX_RATE, MIN_RATE,
};
pub use event::{
    read_events, version_of_image, Attachment, BoxFuture, Event, EventHub, EventKind, EventSink,
    EventSource, EventWriter, Subject, Vantage, EVENTS_FILE,
};
pub use execute::{Attempt, Executor, MAX_BODY_BYTES};
pub use gate::{GateCheck, Thresholds};
pub use host::host_kernel_note;
pub use hyper::HeaderMap;
pub use matrix::{
    surge_pods_peak, CaseSpread, Matrix, MatrixCase, MatrixRun, Recommendation, StreamFigures,
};
pub use matrix_runner::{Deployments, MatrixError, MatrixOutcome, MatrixRunner, MatrixTrigger};
pub use merge::{merge_runs, MergeError};
pub use outcome::{Outcome, Proxy, UnknownOutcome};
pub use output::compare::{Comparison, ComparisonRow};
pub use output::export::output_file_names;
pub use output::windows_csv::write_windows_csv;
pub use probe::{
    write_report_files, LiveStats, Probe, ProbeBuilder, ProbeError, ProbeHandle, VantagePoint,
};
pub use report::{
    Degraded, DegradedWindow, Downtime, EventRef, FailureDetail, LabInfo, Latency, MixedWindow,
    OutageWindow, Phase, PodSeen, ProbeHealth, Report, SecondStats, Span, StreamReport, Timeline,
    TotalOutage, Totals, VersionSeen, REPORT_SCHEMA,
};
pub use rollout::{
    Rollout, RolloutError, TriggerOutput, DEFAULT_ROLLOUT_TIMEOUT, DEFAULT_SETTLE, DEFAULT_WARMUP,
};
pub use sample::{
    read_run_header, read_samples, samples_path, stream_samples, ExecutorUsed, MergedInput,
    ReadError, RecordedRun, RunFooter, RunHeader, RunRecord, Sample, SampleWriter, StreamInfo,
    RUN_FILE, SAMPLES_FILE, SAMPLES_SCHEMA,
};
pub use strategy::{IntOrPercent, Strategy, StrategyCase};
pub use tls::TlsReason;
pub use trigger::{TriggerOutcome, TriggerReport, TRIGGER_LOG};
