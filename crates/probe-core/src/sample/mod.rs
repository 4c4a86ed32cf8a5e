//! One row per scheduled request, streamed to samples.csv as it completes, and the
//! run's own record, run.json.
//!
//! samples.csv is the source of truth: every figure of a report is derived from its
//! rows (and the events file), so `rollprobe report DIR` rebuilds the same report. It is
//! plain CSV (one header row, then one row per request, no comment lines) so that
//! pandas, DuckDB, xsv and spreadsheets read it with no options. Rows are written in
//! completion order and flushed at least once a second by a timer, so a killed run loses
//! at most the last second.
//!
//! What was run lives in run.json, written at the start ([`RunHeader`]) and completed at
//! the end ([`RunFooter`]); a run.json without its end belongs to an interrupted run.
//! Files written before this format (a `# rollprobe.samples/v1` comment line on top, a
//! `# end` line at the bottom) are still read.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{ConnectionMode, ProbeConfig, RecordedConfig};
use crate::outcome::{Outcome, Proxy};
use crate::trigger::TriggerReport;

/// The record of one scheduled request: one row of samples.csv, columns in this order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The stream it belongs to, `<vantage>-<connection>` (e.g. `local-fresh`).
    #[serde(default)]
    pub stream: String,
    /// Position in the stream's schedule, from 0.
    pub seq: u64,
    /// When it was due, ms since the start (monotonic).
    pub intended_ms: f64,
    /// When it was actually sent, ms since the start; empty for a skipped tick.
    pub sent_ms: Option<f64>,
    /// Wall-clock time (UTC) of the intended send, RFC 3339 with ms.
    pub wall_time: String,
    /// How it ended.
    pub outcome: Outcome,
    /// The OS error number, when the failure had one.
    pub errno: Option<i32>,
    /// The errno's symbolic name, e.g. `ECONNREFUSED`.
    pub errno_name: Option<String>,
    /// The HTTP status, when a response arrived.
    pub status: Option<u16>,
    /// The version that answered (ok responses).
    pub version: Option<String>,
    /// The pod (instance) that answered (ok responses, with `pod_from`).
    #[serde(default)]
    pub pod: Option<String>,
    /// The `x-request-id` it carried.
    #[serde(default)]
    pub request_id: Option<String>,
    /// TCP (and TLS) handshake time, ms; empty on a reused connection.
    pub connect_ms: Option<f64>,
    /// SYNs sent again before the connect ended; empty on a reused connection.
    #[serde(default)]
    pub syn_retransmits: Option<u32>,
    /// From sent to the response headers, ms.
    pub ttfb_ms: Option<f64>,
    /// From sent to the end (response read, or failure), ms.
    pub total_ms: Option<f64>,
    /// `new` or `reused`.
    pub connection: Option<String>,
    /// The error's message chain, for failures.
    pub error: Option<String>,
    /// The proxy that produced a non-OK answer (an ingress, gateway or sidecar), when
    /// one did; empty in files written before this column existed.
    #[serde(default)]
    pub proxy: Option<Proxy>,
    /// What the proxy's own access log says of this request, joined by `x-request-id`:
    /// the upstream address it chose and its failure reason; empty otherwise.
    #[serde(default)]
    pub upstream: Option<String>,
}

impl Sample {
    /// Request `seq` of `stream`, due at `intended_ms`, that ended in `outcome`, with
    /// nothing else known: not sent, no wall time, every measurement and detail empty.
    ///
    /// The one place that names every column. Code that knows only some of them (the
    /// scheduler's skipped ticks, the analyzer's lean reader, tests and benches) sets
    /// those with struct update syntax over this, so a column added to samples.csv is
    /// added here once and stays empty elsewhere until something fills it.
    ///
    /// ```
    /// use probe_core::{Outcome, Sample};
    ///
    /// let answered = Sample {
    ///     sent_ms: Some(100.5),
    ///     status: Some(200),
    ///     version: Some("v1".into()),
    ///     total_ms: Some(2.0),
    ///     ..Sample::new("local-fresh", 10, 100.0, Outcome::Ok)
    /// };
    /// assert_eq!(answered.response_ms(), Some(2.5));
    /// let skipped = Sample::new("local-fresh", 11, 110.0, Outcome::Skipped);
    /// assert_eq!((skipped.sent_ms, skipped.response_ms()), (None, None));
    /// ```
    pub fn new(stream: impl Into<String>, seq: u64, intended_ms: f64, outcome: Outcome) -> Sample {
        Sample {
            stream: stream.into(),
            seq,
            intended_ms,
            sent_ms: None,
            wall_time: String::new(),
            outcome,
            errno: None,
            errno_name: None,
            status: None,
            version: None,
            pod: None,
            request_id: None,
            connect_ms: None,
            syn_retransmits: None,
            ttfb_ms: None,
            total_ms: None,
            connection: None,
            error: None,
            proxy: None,
            upstream: None,
        }
    }

    /// Latency measured from the intended send time, so a stalled prober cannot
    /// hide slow answers (no coordinated omission).
    pub fn response_ms(&self) -> Option<f64> {
        let sent = self.sent_ms?;
        let total = self.total_ms?;
        Some(sent - self.intended_ms + total)
    }

    /// How late the prober sent it, ms.
    pub fn send_lag_ms(&self) -> Option<f64> {
        self.sent_ms.map(|s| (s - self.intended_ms).max(0.0))
    }
}

/// What was run: run.json as written at the start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// Always [`SAMPLES_SCHEMA`].
    pub schema: String,
    /// The run's label.
    pub label: Option<String>,
    /// The probed URL.
    pub target: String,
    /// The run's settings.
    pub config: RecordedConfig,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    /// The run's id, the first part of every `x-request-id`.
    #[serde(default)]
    pub run_id: String,
    /// Its streams, in order (the first one's windows are the report's top-level ones).
    /// Files written before streams had fields hold only their names.
    #[serde(default)]
    pub streams: Vec<StreamInfo>,
}

impl RunHeader {
    /// What a run of `config` records about itself: its label, its target as given and
    /// its settings, with no start time, run id or streams yet. The prober adds those
    /// when it starts; a test or bench sets the ones it needs with struct update syntax.
    ///
    /// ```
    /// use probe_core::{ProbeConfig, RunHeader, Target};
    ///
    /// let config = ProbeConfig {
    ///     rate: 100.0,
    ///     ..ProbeConfig::new(Target::parse("http://127.0.0.1:8080/").unwrap())
    /// };
    /// let header = RunHeader {
    ///     started_at: "2026-01-01T00:00:00.000Z".into(),
    ///     ..RunHeader::new(&config)
    /// };
    /// assert_eq!(header.target, "http://127.0.0.1:8080/");
    /// assert_eq!((header.config.rate, header.config.max_in_flight), (100.0, 1016));
    /// ```
    pub fn new(config: &ProbeConfig) -> RunHeader {
        RunHeader {
            schema: SAMPLES_SCHEMA.to_string(),
            label: config.label.clone(),
            target: config.target.url.to_string(),
            config: RecordedConfig::from(config),
            started_at: String::new(),
            run_id: String::new(),
            streams: Vec::new(),
        }
    }

    /// The run's streams; a file that lists none had one, named after its connection mode.
    pub fn stream_infos(&self) -> Vec<StreamInfo> {
        if self.streams.is_empty() {
            return vec![StreamInfo::from(
                format!("local-{}", self.config.connection).as_str(),
            )];
        }
        self.streams.clone()
    }

    /// The rate of `stream`: its own (a merged run's inputs may differ), else the run's.
    pub fn rate_of(&self, stream: &StreamInfo) -> f64 {
        stream.rate.unwrap_or(self.config.rate)
    }
}

/// One stream of a run: a vantage point and a connection mode, with its own schedule.
///
/// ```
/// let s = probe_core::StreamInfo::from("pod1-keepalive");
/// assert_eq!((s.vantage.as_str(), s.connection), ("pod1", probe_core::ConnectionMode::Keepalive));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StreamEntry")]
pub struct StreamInfo {
    /// `<vantage>-<connection>`, the `stream` column of its samples.
    pub name: String,
    /// Where it probed from: `local`, a lab's `client`, `node1`, `pod1`, or a merged input.
    pub vantage: String,
    /// `fresh` or `keepalive`.
    pub connection: ConnectionMode,
    /// Its URL, when it is not the run's target (a lab's ClusterIP beside its
    /// LoadBalancer address, a merged input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Its rate, when it is not the run's (a merged input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// For a merged run: the folder it came from, its own wall-clock start, and how
    /// far that start lies after the merged run's start (ms), stated rather than hidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<MergedInput>,
    /// The executor that sent its requests (files written before it was recorded
    /// have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorUsed>,
}

/// The executor that sent a stream's requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorUsed {
    /// `io_uring` (the kernel keeps the schedule) or `tokio` (the portable one).
    pub name: String,
    /// Why not io_uring, when it was not (TLS, no io_uring in the kernel, asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// Where a merged run's stream came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedInput {
    /// The input run's folder, as given.
    pub dir: String,
    /// The input's own `started_at` (its machine's clock).
    pub started_at: String,
    /// Its start minus the earliest input's start, ms: what its times were shifted by.
    pub offset_ms: f64,
}

impl StreamInfo {
    /// A stream of `vantage` in `connection` mode.
    pub fn new(vantage: &str, connection: ConnectionMode) -> StreamInfo {
        StreamInfo {
            name: format!("{vantage}-{connection}"),
            vantage: vantage.to_string(),
            connection,
            target: None,
            rate: None,
            merged_from: None,
            executor: None,
        }
    }
}

impl From<&str> for StreamInfo {
    /// A stream known by its name only: `<vantage>-<connection>`.
    fn from(name: &str) -> StreamInfo {
        let (vantage, connection) = match name.rsplit_once('-') {
            Some((v, c)) => (v, c.parse().unwrap_or_default()),
            None => (name, ConnectionMode::default()),
        };
        StreamInfo {
            name: name.to_string(),
            ..StreamInfo::new(vantage, connection)
        }
    }
}

/// run.json's stream entries: a name (files written before streams had fields) or
/// the full record.
#[derive(Deserialize)]
#[serde(untagged)]
enum StreamEntry {
    Name(String),
    Info {
        name: String,
        vantage: String,
        connection: ConnectionMode,
        #[serde(default)]
        target: Option<String>,
        #[serde(default)]
        rate: Option<f64>,
        #[serde(default)]
        merged_from: Option<MergedInput>,
        #[serde(default)]
        executor: Option<ExecutorUsed>,
    },
}

impl From<StreamEntry> for StreamInfo {
    fn from(entry: StreamEntry) -> StreamInfo {
        match entry {
            StreamEntry::Name(name) => StreamInfo::from(name.as_str()),
            StreamEntry::Info {
                name,
                vantage,
                connection,
                target,
                rate,
                merged_from,
                executor,
            } => StreamInfo {
                name,
                vantage,
                connection,
                target,
                rate,
                merged_from,
                executor,
            },
        }
    }
}

/// How a run ended: the fields that complete run.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFooter {
    /// Wall-clock end, RFC 3339.
    pub ended_at: String,
    /// Length of the run, ms.
    pub duration_ms: f64,
    /// Stopped by a signal (or another interruption) rather than by plan.
    pub interrupted: bool,
    /// How the trigger ended, when the run had one (absent from older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerReport>,
    /// Requests sent but not answered when this end was written: the end is first
    /// written when probing stops, then again once they are in, so a run killed
    /// while it waited for them still says they were sent (they have no row).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unanswered: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// run.json: the header, and the footer once the run has ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// What was run.
    #[serde(flatten)]
    pub header: RunHeader,
    /// How it ended; `None` while running, or when it was killed.
    #[serde(flatten)]
    pub end: Option<RunFooter>,
}

impl RunRecord {
    /// Writes run.json into `dir` (atomically: a killed run never leaves half a file).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let path = dir.join(RUN_FILE);
        let tmp = dir.join(".run.json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(tmp, path)
    }

    /// Reads run.json from `dir`.
    pub fn read(dir: &Path) -> Result<RunRecord, ReadError> {
        let path = dir.join(RUN_FILE);
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| ReadError::Io {
            path: shown.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ReadError::Format {
            path: shown,
            line: e.line() as u64,
            reason: format!("not a rollprobe run.json: {e}"),
        })
    }
}

/// The columns of samples.csv, in the order of [`Sample`]'s fields.
pub const SAMPLE_COLUMNS: [&str; 20] = [
    "stream",
    "seq",
    "intended_ms",
    "sent_ms",
    "wall_time",
    "outcome",
    "errno",
    "errno_name",
    "status",
    "version",
    "pod",
    "request_id",
    "connect_ms",
    "syn_retransmits",
    "ttfb_ms",
    "total_ms",
    "connection",
    "error",
    "proxy",
    "upstream",
];

/// The schema tag of run.json (and of the old samples.csv header line).
pub const SAMPLES_SCHEMA: &str = "rollprobe.samples/v1";
/// The run's record beside samples.csv.
pub const RUN_FILE: &str = "run.json";
/// The samples file of a run folder.
pub const SAMPLES_FILE: &str = "samples.csv";
pub(super) const HEADER_PREFIX: &str = "# rollprobe.samples/v1 ";
pub(super) const FOOTER_PREFIX: &str = "# end ";

/// Streams samples to a CSV file; [`SampleWriter::flush`] is called at least once a
/// second by the recorder's timer.
pub struct SampleWriter {
    inner: csv::Writer<BufWriter<File>>,
    last_flush: Instant,
}

impl SampleWriter {
    /// Creates the file (the header row is written with the first sample).
    /// Creates the file with its header row, flushed at once: a run killed before its
    /// first answer still leaves a samples.csv that reads as zero rows.
    pub fn create(path: &Path) -> io::Result<SampleWriter> {
        let mut inner = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(File::create(path)?));
        inner.write_record(SAMPLE_COLUMNS).map_err(csv_to_io)?;
        inner.flush()?;
        Ok(SampleWriter {
            inner,
            last_flush: Instant::now(),
        })
    }

    /// Appends one sample.
    pub fn write(&mut self, sample: &Sample) -> io::Result<()> {
        self.inner.serialize(sample).map_err(csv_to_io)?;
        if self.last_flush.elapsed() >= Duration::from_secs(1) {
            self.flush()?;
        }
        Ok(())
    }

    /// Pushes buffered rows to the file.
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        self.inner.flush()
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> io::Result<()> {
        self.inner.flush()?;
        let mut file = self
            .inner
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?;
        file.flush()
    }
}

fn csv_to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    }
}

mod read;

pub(crate) use read::stream_for_analysis;
pub use read::{
    read_run_header, read_samples, samples_path, stream_samples, ReadError, RecordedRun,
};
