//! Joining a proxy's own access log to the samples, by `x-request-id`.
//!
//! The client sees only the proxy's answer: a 502 says that nginx failed to reach
//! *some* upstream, and a 200 that HAProxy held for two seconds says nothing of the
//! retries behind it. The proxy's access log knows which upstream it chose, why that
//! failed and how many attempts it made. Every request carries
//! `x-request-id: <run id>-<stream>-<seq>`, and all three proxies can log it, so one
//! line per request joins exactly, with no clock matching.
//!
//! Each proxy is configured with one documented line format (README, "Access logs"):
//! a `rollprobe=<proxy>` marker followed by `key=value` fields (a value may be in
//! double quotes). The marker may come after any prefix (syslog's, `kubectl logs
//! --timestamps`'), so the lines can be read from wherever the logs were collected;
//! lines without it are skipped and counted.
//!
//! The join fills samples.csv's `upstream` column in place (every other field of a
//! row is rewritten unchanged), so the recorded run keeps what the log said and
//! every later `rollprobe report` sees it without the log.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::outcome::Proxy;
use crate::report::Report;
use crate::sample::{stream_samples, ReadError, Sample, SampleWriter};

/// What a proxy's access log says of one request.
///
/// Its text form is samples.csv's `upstream` column:
/// `<address>[,<address>...] attempts=<n>[ reason=<text>]`, the addresses in the
/// order the proxy tried them.
///
/// ```
/// use probe_core::{Proxy, UpstreamRecord};
/// let r = UpstreamRecord {
///     proxy: Proxy::Envoy,
///     addresses: vec!["10.0.0.7:8080".into()],
///     attempts: 1,
///     reason: Some("delayed_connect_error:_Connection_refused".into()),
/// };
/// let text = r.to_string();
/// assert_eq!(text, "envoy 10.0.0.7:8080 attempts=1 reason=delayed_connect_error:_Connection_refused");
/// assert_eq!(text.parse::<UpstreamRecord>().unwrap(), r);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamRecord {
    /// The proxy whose log it is.
    pub proxy: Proxy,
    /// The upstream addresses it tried, in order (empty: it chose none).
    pub addresses: Vec<String>,
    /// How many upstream attempts it made (0 when it had no upstream to try).
    pub attempts: u32,
    /// Why its upstream failed: Envoy's `%UPSTREAM_TRANSPORT_FAILURE_REASON%` and
    /// response flags, nginx's `$upstream_status` list, HAProxy's termination state.
    pub reason: Option<String>,
}

impl UpstreamRecord {
    /// The proxy retried: it made more than one upstream attempt.
    pub fn retried(&self) -> bool {
        self.attempts > 1
    }
}

impl fmt::Display for UpstreamRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addresses = if self.addresses.is_empty() {
            "-".to_string()
        } else {
            self.addresses.join(",")
        };
        write!(f, "{} {addresses} attempts={}", self.proxy, self.attempts)?;
        if let Some(reason) = &self.reason {
            write!(f, " reason={reason}")?;
        }
        Ok(())
    }
}

/// The text is not an `upstream` column written by [`UpstreamRecord`]'s `Display`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an upstream record: '{0}'")]
pub struct BadUpstreamRecord(pub String);

impl FromStr for UpstreamRecord {
    type Err = BadUpstreamRecord;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadUpstreamRecord(s.to_string());
        let mut parts = s.splitn(4, ' ');
        let proxy = match parts.next() {
            Some("envoy") => Proxy::Envoy,
            Some("nginx") => Proxy::Nginx,
            Some("haproxy") => Proxy::Haproxy,
            _ => return Err(bad()),
        };
        let addresses = match parts.next().ok_or_else(bad)? {
            "-" => Vec::new(),
            list => list.split(',').map(str::to_string).collect(),
        };
        let attempts = parts
            .next()
            .and_then(|a| a.strip_prefix("attempts="))
            .and_then(|n| n.parse().ok())
            .ok_or_else(bad)?;
        let reason = match parts.next() {
            Some(r) => Some(r.strip_prefix("reason=").ok_or_else(bad)?.to_string()),
            None => None,
        };
        Ok(UpstreamRecord {
            proxy,
            addresses,
            attempts,
            reason,
        })
    }
}

/// A proxy's access log, read into a map from request id to what it says.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    by_request: HashMap<String, UpstreamRecord>,
    /// Lines without a `rollprobe=` marker or without a request id (other traffic,
    /// the proxy's own messages).
    pub skipped_lines: u64,
}

/// The access log could not be read or joined.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// The log file could not be read.
    #[error("cannot read access log {path}: {source}")]
    Read {
        /// The log's path.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// The samples could not be read.
    #[error(transparent)]
    Samples(#[from] ReadError),
    /// The samples are of the older format (run.json inside samples.csv as a `#`
    /// line), which the join does not rewrite.
    #[error("{0}: the access log joins only to runs recorded with a run.json beside samples.csv (the current format); record the run again")]
    OldFormat(PathBuf),
    /// The joined samples could not be written.
    #[error("cannot write joined samples {path}: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
}

impl AccessLog {
    /// Reads a log file with lines in the documented formats (README, "Access logs").
    pub fn read(path: &Path) -> Result<AccessLog, AccessLogError> {
        let read_error = |source| AccessLogError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut log = AccessLog::default();
        for line in io::BufReader::new(file).lines() {
            log.add_line(&line.map_err(read_error)?);
        }
        Ok(log)
    }

    /// Adds one log line; a line that is not one of the formats is counted as skipped.
    ///
    /// ```
    /// let mut log = probe_core::AccessLog::default();
    /// log.add_line(r#"rollprobe=nginx id=r1-s-7 upstream="127.0.0.1:81, 127.0.0.1:82" upstream_status="502, 200" status=200"#);
    /// let r = log.get("r1-s-7").unwrap();
    /// assert_eq!(r.attempts, 2);
    /// assert_eq!(r.to_string(), "nginx 127.0.0.1:81,127.0.0.1:82 attempts=2 reason=upstream_status:502,200");
    /// ```
    pub fn add_line(&mut self, line: &str) {
        match parse_line(line) {
            Some((id, record)) => {
                self.by_request.insert(id, record);
            }
            None => self.skipped_lines += 1,
        }
    }

    /// What the log says of the request with this id.
    pub fn get(&self, request_id: &str) -> Option<&UpstreamRecord> {
        self.by_request.get(request_id)
    }

    /// Every request the log speaks of, by id, in no particular order.
    pub fn records(&self) -> impl Iterator<Item = (&str, &UpstreamRecord)> {
        self.by_request.iter().map(|(id, r)| (id.as_str(), r))
    }

    /// The number of requests the log speaks of.
    pub fn len(&self) -> usize {
        self.by_request.len()
    }

    /// The log speaks of no request.
    pub fn is_empty(&self) -> bool {
        self.by_request.is_empty()
    }

    /// Fills a sample's `upstream` column from the log; a sample the log does not
    /// mention keeps what it had.
    pub fn join(&self, sample: &mut Sample) -> bool {
        let found = sample.request_id.as_deref().and_then(|id| self.get(id));
        if let Some(record) = found {
            sample.upstream = Some(record.to_string());
        }
        found.is_some()
    }

    /// Rewrites a run's samples.csv (or the samples.csv in a run folder) with its
    /// `upstream` column joined from this log, through a temporary file renamed over
    /// it, so a failure leaves the original. Returns the number of samples joined.
    pub fn join_samples_file(&self, samples: &Path) -> Result<u64, AccessLogError> {
        let path = crate::sample::samples_path(samples);
        if first_byte(&path) == Some(b'#') {
            return Err(AccessLogError::OldFormat(path));
        }
        let partial = path.with_extension("csv.joining");
        let write_error = |source| AccessLogError::Write {
            path: partial.clone(),
            source,
        };
        let mut writer = SampleWriter::create(&partial).map_err(write_error)?;
        let mut joined = 0;
        let mut failed: Option<io::Error> = None;
        let read = stream_samples(&path, |_, mut sample| {
            if failed.is_some() {
                return;
            }
            joined += u64::from(self.join(&mut sample));
            if let Err(e) = writer.write(&sample) {
                failed = Some(e);
            }
        });
        let finished = match (read, failed) {
            (Err(e), _) => Err(AccessLogError::from(e)),
            (Ok(_), Some(e)) => Err(write_error(e)),
            (Ok(_), None) => writer.finish().map_err(write_error),
        };
        if let Err(e) = finished {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        std::fs::rename(&partial, &path).map_err(|source| AccessLogError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(joined)
    }
}

fn first_byte(path: &Path) -> Option<u8> {
    use std::io::Read;
    let mut byte = [0u8; 1];
    let mut file = std::fs::File::open(path).ok()?;
    (file.read(&mut byte).ok()? == 1).then_some(byte[0])
}

/// Counts, on each outage window of `report`, the requests of its stream that a
/// proxy retried (`upstream` says more than one attempt) with an intended time from
/// the window's start to its end, the ok answer that ended it included: a retry
/// that saved a request is still a sign of the outage behind the proxy. Reads the
/// (joined) samples file once more.
pub fn count_proxy_retries(report: &mut Report, samples: &Path) -> Result<(), AccessLogError> {
    let mut streams: HashMap<String, WindowCounts> = report
        .streams
        .iter()
        .map(|s| (s.name.clone(), WindowCounts::new(&s.downtime.windows)))
        .collect();
    // The top-level windows are the first stream's.
    let first = report.streams.first().map(|s| s.name.clone());
    let mut top = WindowCounts::new(&report.downtime.windows);
    let mut total = 0;
    stream_samples(&crate::sample::samples_path(samples), |_, s| {
        let record = s
            .upstream
            .as_deref()
            .and_then(|u| u.parse::<UpstreamRecord>().ok());
        if !record.is_some_and(|r| r.retried()) {
            return;
        }
        total += 1;
        if let Some(counts) = streams.get_mut(&s.stream) {
            counts.add(s.intended_ms);
        }
        if first.as_deref().is_none_or(|name| name == s.stream) {
            top.add(s.intended_ms);
        }
    })?;
    for stream in &mut report.streams {
        if let Some(counts) = streams.get(&stream.name) {
            counts.apply(&mut stream.downtime.windows);
        }
    }
    top.apply(&mut report.downtime.windows);
    report.totals.proxy_retried = Some(total);
    Ok(())
}

/// Counts per window, found by a binary search on the windows' starts: one pass over
/// the samples, whatever their number and order.
struct WindowCounts {
    /// (start, end, index in the report's list), by start.
    spans: Vec<(f64, f64, usize)>,
    counts: Vec<u64>,
}

impl WindowCounts {
    fn new(windows: &[crate::report::OutageWindow]) -> WindowCounts {
        let mut spans: Vec<(f64, f64, usize)> = windows
            .iter()
            .enumerate()
            .map(|(i, w)| (w.start_ms, w.end_ms, i))
            .collect();
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        WindowCounts {
            counts: vec![0; spans.len()],
            spans,
        }
    }

    fn add(&mut self, at: f64) {
        let after = self.spans.partition_point(|(start, _, _)| *start <= at);
        if let Some(&(_, end, index)) = after.checked_sub(1).map(|i| &self.spans[i]) {
            if at <= end {
                self.counts[index] += 1;
            }
        }
    }

    fn apply(&self, windows: &mut [crate::report::OutageWindow]) {
        for (w, count) in windows.iter_mut().zip(&self.counts) {
            w.proxy_retried = Some(*count);
        }
    }
}

/// One line of a documented format: the request id and what the line says.
fn parse_line(line: &str) -> Option<(String, UpstreamRecord)> {
    let at = line.find("rollprobe=")?;
    let fields = fields(&line[at..]);
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && *v != "-")
    };
    let id = get("id")?.to_string();
    let record = match get("rollprobe")? {
        "envoy" => envoy_record(&get),
        "nginx" => nginx_record(&get),
        "haproxy" => haproxy_record(&get),
        _ => return None,
    };
    Some((id, record))
}

/// Envoy: `%UPSTREAM_HOST%` is the last upstream tried, `%UPSTREAM_REQUEST_ATTEMPT_COUNT%`
/// the attempts, `%UPSTREAM_TRANSPORT_FAILURE_REASON%` and `%RESPONSE_FLAGS%` the reason.
fn envoy_record<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> UpstreamRecord {
    let reason = match (get("reason"), get("flags")) {
        (Some(r), Some(f)) => Some(format!("{r},flags:{f}")),
        (Some(r), None) => Some(r.to_string()),
        (None, Some(f)) => Some(format!("flags:{f}")),
        (None, None) => None,
    };
    let addresses: Vec<String> = get("upstream")
        .map(|a| vec![a.to_string()])
        .unwrap_or_default();
    // Envoy counts its router's attempt even when it chose no host (no healthy
    // upstream, overflow): no host, no upstream attempt.
    let attempts = if addresses.is_empty() {
        0
    } else {
        get("attempts").and_then(|n| n.parse().ok()).unwrap_or(1)
    };
    UpstreamRecord {
        proxy: Proxy::Envoy,
        addresses,
        attempts,
        reason,
    }
}

/// nginx: `$upstream_addr` and `$upstream_status` list every try, separated by
/// `, ` (and ` : ` across an internal redirect).
fn nginx_record<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> UpstreamRecord {
    let list = |text: Option<&str>| -> Vec<String> {
        text.map(|t| {
            t.split([',', ' '])
                .filter(|p| !p.is_empty() && *p != ":" && *p != "-")
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
    };
    let addresses = list(get("upstream"));
    let statuses = list(get("upstream_status"));
    UpstreamRecord {
        proxy: Proxy::Nginx,
        attempts: addresses.len() as u32,
        addresses,
        reason: (!statuses.is_empty()).then(|| format!("upstream_status:{}", statuses.join(","))),
    }
}

/// HAProxy: `%rc` is the connection retries (a leading `+` when the last one was
/// redispatched to another server), `%ts` the termination state (`--` when normal).
fn haproxy_record<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> UpstreamRecord {
    let retries: Option<u32> = get("retries").and_then(|r| r.trim_start_matches('+').parse().ok());
    let address = get("upstream").filter(|a| !a.starts_with("-:") && *a != "-");
    let state = get("termination").filter(|t| *t != "--");
    let mut reason: Vec<String> = Vec::new();
    if let Some(t) = state {
        reason.push(format!("termination:{t}"));
    }
    if get("retries").is_some_and(|r| r.starts_with('+')) {
        reason.push("redispatched".into());
    }
    UpstreamRecord {
        proxy: Proxy::Haproxy,
        addresses: address.map(|a| vec![a.to_string()]).unwrap_or_default(),
        attempts: match (retries, address) {
            (Some(r), Some(_)) => r + 1,
            (Some(r), None) => r,
            (None, a) => u32::from(a.is_some()),
        },
        reason: (!reason.is_empty()).then(|| reason.join(",")),
    }
}

/// `key=value` fields; a value in double quotes may hold spaces.
fn fields(text: &str) -> Vec<(&str, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(' ') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        if !key.contains(' ') {
            out.push((key, value.to_string()));
        }
        rest = tail.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_line_keeps_the_transport_failure_reason() {
        let mut log = AccessLog::default();
        log.add_line("[2026-12-06T10:00:00Z] rollprobe=envoy id=r-a-1 status=503 upstream=127.0.0.1:9 attempts=3 reason=delayed_connect_error:_Connection_refused flags=UF,URX");
        let r = log.get("r-a-1").unwrap();
        assert_eq!(r.attempts, 3);
        assert!(r.retried());
        assert_eq!(
            r.reason.as_deref(),
            Some("delayed_connect_error:_Connection_refused,flags:UF,URX")
        );
    }

    #[test]
    fn haproxy_line_counts_retries_and_redispatch() {
        let mut log = AccessLog::default();
        log.add_line("<134>Dec  6 10:00:00 haproxy[1]: rollprobe=haproxy id=r-a-2 status=200 upstream=127.0.0.1:8082 server=web/s2 retries=+3 termination=--");
        let r = log.get("r-a-2").unwrap();
        assert_eq!(r.attempts, 4);
        assert_eq!(r.addresses, vec!["127.0.0.1:8082"]);
        assert_eq!(r.reason.as_deref(), Some("redispatched"));
        log.add_line("rollprobe=haproxy id=r-a-3 status=503 upstream=-:- server=web/<NOSRV> retries=0 termination=SC");
        let r = log.get("r-a-3").unwrap();
        assert_eq!(
            (r.attempts, r.reason.as_deref()),
            (0, Some("termination:SC"))
        );
    }

    #[test]
    fn lines_without_marker_or_id_are_skipped() {
        let mut log = AccessLog::default();
        log.add_line("127.0.0.1 - - GET / 200");
        log.add_line(
            "rollprobe=nginx id=- upstream=\"127.0.0.1:1\" upstream_status=\"200\" status=200",
        );
        assert!(log.is_empty());
        assert_eq!(log.skipped_lines, 2);
    }

    /// A recorded run: ok, two proxy failures, then two ok answers that the proxy
    /// retried (the first of them ends the window), at 10/s.
    fn recorded_run(dir: &Path) -> Vec<Sample> {
        use crate::config::RecordedConfig;
        use crate::outcome::Outcome;
        use crate::sample::{RunHeader, RunRecord, SAMPLES_SCHEMA};
        std::fs::create_dir_all(dir).unwrap();
        RunRecord {
            header: RunHeader {
                schema: SAMPLES_SCHEMA.into(),
                label: None,
                target: "http://127.0.0.1:1/".into(),
                config: RecordedConfig::for_tests(10.0, 1000, 16),
                started_at: "2026-01-01T00:00:00.000Z".into(),
                run_id: "r".into(),
                streams: vec!["local-fresh".into()],
            },
            end: None,
        }
        .write(dir)
        .unwrap();
        let outcomes = [
            Outcome::Ok,
            Outcome::ProxyNoUpstream,
            Outcome::ProxyNoUpstream,
            Outcome::Ok,
            Outcome::Ok,
        ];
        let samples: Vec<Sample> = outcomes
            .iter()
            .enumerate()
            .map(|(seq, &outcome)| Sample {
                stream: "local-fresh".into(),
                seq: seq as u64,
                intended_ms: seq as f64 * 100.0,
                sent_ms: Some(seq as f64 * 100.0),
                wall_time: "2026-01-01T00:00:00.000Z".into(),
                outcome,
                errno: None,
                errno_name: None,
                status: Some(if outcome == Outcome::Ok { 200 } else { 503 }),
                version: None,
                pod: None,
                request_id: Some(format!("r-local-fresh-{seq}")),
                connect_ms: Some(0.1),
                syn_retransmits: Some(0),
                ttfb_ms: Some(1.0),
                total_ms: Some(1.0),
                connection: Some("new".into()),
                error: None,
                proxy: None,
                upstream: None,
            })
            .collect();
        let mut w = SampleWriter::create(&dir.join("samples.csv")).unwrap();
        for sample in &samples {
            w.write(sample).unwrap();
        }
        w.finish().unwrap();
        samples
    }

    #[test]
    fn windows_count_the_requests_the_proxy_retried() {
        let dir = std::env::temp_dir().join(format!("rp-access-log-{}", std::process::id()));
        let samples = recorded_run(&dir);
        let mut log = AccessLog::default();
        for (seq, upstream, attempts) in [
            (0, "\"10.0.0.1:80\"", 1),
            (3, "\"10.0.0.2:80, 10.0.0.1:80\"", 2),
            (4, "\"10.0.0.2:80, 10.0.0.1:80\"", 2),
        ] {
            let statuses = if attempts == 1 { "200" } else { "502, 200" };
            log.add_line(&format!("rollprobe=nginx id=r-local-fresh-{seq} upstream={upstream} upstream_status=\"{statuses}\" status=200"));
        }
        assert_eq!(log.join_samples_file(&dir).unwrap(), 3);
        let back = crate::sample::read_samples(&dir).unwrap().samples;
        assert_eq!(
            back[3].upstream.as_deref(),
            Some("nginx 10.0.0.2:80,10.0.0.1:80 attempts=2 reason=upstream_status:502,200")
        );
        assert_eq!(back[1].upstream, None);
        assert_eq!(back[1].outcome, samples[1].outcome);
        let mut report = crate::analyze::analyze_samples_file(&dir, Vec::new()).unwrap();
        count_proxy_retries(&mut report, &dir).unwrap();
        let window = &report.downtime.windows[0];
        assert_eq!((window.start_ms, window.end_ms), (100.0, 300.0));
        assert_eq!(window.proxy_retried, Some(1));
        assert_eq!(report.streams[0].downtime.windows[0].proxy_retried, Some(1));
        assert_eq!(report.totals.proxy_retried, Some(2));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_older_samples_file_is_refused_and_left_alone() {
        let dir = std::env::temp_dir().join(format!("rp-access-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("samples.csv");
        let text = "# rollprobe.samples/v1 {}\nseq,intended_ms\n";
        std::fs::write(&path, text).unwrap();
        let err = AccessLog::default().join_samples_file(&path).unwrap_err();
        assert!(matches!(err, AccessLogError::OldFormat(_)), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_round_trips_through_its_column_text() {
        for text in [
            "nginx 127.0.0.1:81,127.0.0.1:82 attempts=2 reason=upstream_status:502,200",
            "haproxy - attempts=0 reason=termination:SC",
            "envoy 10.1.2.3:80 attempts=1",
        ] {
            let r: UpstreamRecord = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
        }
        assert!("squid 1.2.3.4 attempts=1"
            .parse::<UpstreamRecord>()
            .is_err());
    }
}
