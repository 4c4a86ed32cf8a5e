//! One row per scheduled request, streamed to samples.csv as it completes.
//!
//! The file is the source of truth: every figure of a report is derived from
//! these rows (and the events file), so `rollprobe report samples.csv` rebuilds
//! the same report. Rows are written in completion order and flushed at least
//! once a second, so a killed run loses at most the last second. The run's
//! configuration is kept in a `#` comment line at the top, and the end of a clean
//! run in a `#` line at the bottom; a file without the end line was interrupted.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::RecordedConfig;
use crate::outcome::Outcome;

/// The record of one scheduled request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Position in the schedule, from 0.
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
    /// TCP (and TLS) handshake time, ms; empty on a reused connection.
    pub connect_ms: Option<f64>,
    /// From sent to the response headers, ms.
    pub ttfb_ms: Option<f64>,
    /// From sent to the end (response read, or failure), ms.
    pub total_ms: Option<f64>,
    /// `new` or `reused`.
    pub connection: Option<String>,
    /// The error's message chain, for failures.
    pub error: Option<String>,
}

impl Sample {
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

/// The first line of samples.csv: what was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHeader {
    /// Always `rollprobe.samples/v1`.
    pub schema: String,
    /// The run's label.
    pub label: Option<String>,
    /// The probed URL.
    pub target: String,
    /// The run's settings.
    pub config: RecordedConfig,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
}

/// The last line of samples.csv of a run that ended cleanly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFooter {
    /// Wall-clock end, RFC 3339.
    pub ended_at: String,
    /// Length of the run, ms.
    pub duration_ms: f64,
    /// Stopped by Ctrl-C (or another interruption) rather than by plan.
    pub interrupted: bool,
}

/// The schema tag of samples.csv.
pub const SAMPLES_SCHEMA: &str = "rollprobe.samples/v1";
const HEADER_PREFIX: &str = "# rollprobe.samples/v1 ";
const FOOTER_PREFIX: &str = "# end ";

/// Streams samples to a CSV file, flushing at least once a second.
pub struct SampleWriter {
    inner: csv::Writer<BufWriter<File>>,
    last_flush: Instant,
}

impl SampleWriter {
    /// Creates the file and writes the header line.
    pub fn create(path: &Path, header: &RunHeader) -> io::Result<SampleWriter> {
        let mut file = BufWriter::new(File::create(path)?);
        writeln!(
            file,
            "{HEADER_PREFIX}{}",
            serde_json::to_string(header).map_err(io::Error::other)?
        )?;
        let inner = csv::WriterBuilder::new().from_writer(file);
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

    /// Writes the end line and closes the file.
    pub fn finish(mut self, footer: &RunFooter) -> io::Result<()> {
        self.inner.flush()?;
        let mut file = self
            .inner
            .into_inner()
            .map_err(|e| io::Error::other(e.to_string()))?;
        writeln!(
            file,
            "{FOOTER_PREFIX}{}",
            serde_json::to_string(footer).map_err(io::Error::other)?
        )?;
        file.flush()
    }
}

fn csv_to_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// A samples file read back: its header, its rows, and its footer if the run ended cleanly.
#[derive(Debug, Clone)]
pub struct RecordedRun {
    /// What was run.
    pub header: RunHeader,
    /// Every row, in file (completion) order.
    pub samples: Vec<Sample>,
    /// The end line; `None` when the run was killed before writing it.
    pub footer: Option<RunFooter>,
}

/// Why a samples file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// The content is not a rollprobe samples file.
    #[error("{path} line {line}: {reason}")]
    Format {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Reads a samples.csv written by [`SampleWriter`].
pub fn read_samples(path: &Path) -> Result<RecordedRun, ReadError> {
    let shown = path.display().to_string();
    let io_err = |source| ReadError::Io {
        path: shown.clone(),
        source,
    };
    let format_err = |line, reason: String| ReadError::Format {
        path: shown.clone(),
        line,
        reason,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io_err)?);
    let mut first = String::new();
    reader.read_line(&mut first).map_err(io_err)?;
    let header = parse_header_line(&first).map_err(|reason| format_err(1, reason))?;
    // The footer is a comment line; read the rest once, split it off the CSV body.
    let mut rest = String::new();
    io::Read::read_to_string(&mut reader, &mut rest).map_err(io_err)?;
    let mut footer = None;
    if let Some((end, pos)) = split_footer(&rest, true).map_err(|r| format_err(0, r))? {
        footer = Some(end);
        rest.truncate(pos);
    }
    let mut csv_reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(rest.as_bytes());
    let mut samples = Vec::new();
    for (i, row) in csv_reader.deserialize::<Sample>().enumerate() {
        match row {
            Ok(s) => {
                check_intended_ms(s.intended_ms).map_err(|r| format_err(i as u64 + 3, r))?;
                samples.push(s)
            }
            // A killed run may leave a torn last line: keep everything before it.
            Err(_) if footer.is_none() && i + 1 >= count_lines(&rest).saturating_sub(1) => break,
            Err(e) => return Err(format_err(i as u64 + 3, e.to_string())),
        }
    }
    Ok(RecordedRun {
        header,
        samples,
        footer,
    })
}

/// Finds the end line of a clean run in `text` (the file's body, or its tail):
/// the footer and the offset where its line starts. `starts_a_line` says whether
/// offset 0 of `text` is the start of a line.
fn split_footer(text: &str, starts_a_line: bool) -> Result<Option<(RunFooter, usize)>, String> {
    let Some(pos) = text.rfind(FOOTER_PREFIX) else {
        return Ok(None);
    };
    let at_line_start = if pos == 0 {
        starts_a_line
    } else {
        text.as_bytes()[pos - 1] == b'\n'
    };
    if !at_line_start {
        return Ok(None);
    }
    let line = text[pos + FOOTER_PREFIX.len()..].trim();
    let footer = serde_json::from_str(line).map_err(|e| format!("bad end line: {e}"))?;
    Ok(Some((footer, pos)))
}

/// The first line of samples.csv: the run's header as JSON.
fn parse_header_line(first: &str) -> Result<RunHeader, String> {
    let json = first.strip_prefix(HEADER_PREFIX).ok_or_else(|| {
        "not a rollprobe samples file (it must start with '# rollprobe.samples/v1')".to_string()
    })?;
    let header: RunHeader = serde_json::from_str(json.trim()).map_err(|e| e.to_string())?;
    crate::config::check_rate(header.config.rate).map_err(|e| e.to_string())?;
    Ok(header)
}

/// Refuses a row whose intended time cannot be a time of a run: every time the
/// analyzer derives (windows, timeline, the run's end) is computed from it.
fn check_intended_ms(ms: f64) -> Result<(), String> {
    // About 31 years: far beyond any run, far inside chrono's and Duration's ranges.
    const MAX_INTENDED_MS: f64 = 1e12;
    if (0.0..=MAX_INTENDED_MS).contains(&ms) {
        Ok(())
    } else {
        let shown = if ms.abs() < 1e15 {
            ms.to_string()
        } else {
            format!("{ms:e}")
        };
        Err(format!(
            "intended_ms {shown} is not a time of the run (0 to 1e12 ms)"
        ))
    }
}

fn count_lines(text: &str) -> usize {
    text.lines().count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConnectionMode, RecordedConfig};

    fn header() -> RunHeader {
        RunHeader {
            schema: SAMPLES_SCHEMA.into(),
            label: Some("t".into()),
            target: "http://127.0.0.1:1/".into(),
            config: RecordedConfig {
                rate: 10.0,
                connection: ConnectionMode::Fresh,
                timeout_ms: 5000,
                connect_timeout_ms: 5000,
                max_in_flight: 116,
                expect_status: "200-299".into(),
                version_from: "body".into(),
                method: "GET".into(),
            },
            started_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    fn sample(seq: u64, outcome: Outcome) -> Sample {
        Sample {
            seq,
            intended_ms: seq as f64 * 100.0,
            sent_ms: Some(seq as f64 * 100.0 + 0.125),
            wall_time: "2026-01-01T00:00:00.000Z".into(),
            outcome,
            errno: (outcome == Outcome::ConnectionRefused).then_some(111),
            errno_name: (outcome == Outcome::ConnectionRefused).then(|| "ECONNREFUSED".into()),
            status: (outcome == Outcome::Ok).then_some(200),
            version: (outcome == Outcome::Ok).then(|| "v1, \"quoted\"".into()),
            connect_ms: Some(0.3),
            ttfb_ms: Some(1.0 / 3.0),
            total_ms: Some(2.0),
            connection: Some("new".into()),
            error: None,
        }
    }

    /// A samples.csv with two flushed rows and no end line yet (a killed run).
    fn write_two_rows(
        name: &str,
    ) -> (
        std::path::PathBuf,
        std::path::PathBuf,
        Vec<Sample>,
        SampleWriter,
    ) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("samples.csv");
        let rows = vec![
            sample(0, Outcome::Ok),
            sample(1, Outcome::ConnectionRefused),
        ];
        let mut w = SampleWriter::create(&path, &header()).unwrap();
        for s in &rows {
            w.write(s).unwrap();
        }
        w.flush().unwrap();
        (dir, path, rows, w)
    }

    #[test]
    fn round_trip_with_footer_and_without() {
        let (dir, path, rows, w) = write_two_rows("rp-sample");
        // Before the footer: a killed run.
        let killed = read_samples(&path).unwrap();
        assert_eq!(killed.samples, rows);
        assert!(killed.footer.is_none());
        let footer = RunFooter {
            ended_at: "2026-01-01T00:00:01.000Z".into(),
            duration_ms: 200.0,
            interrupted: false,
        };
        w.finish(&footer).unwrap();
        let back = read_samples(&path).unwrap();
        assert_eq!(back.header, header());
        assert_eq!(back.samples, rows);
        assert_eq!(back.footer, Some(footer));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn streaming_reads_what_was_written_even_when_torn() {
        let (dir, path, rows, w) = write_two_rows("rp-stream");
        drop(w);
        // A killed run: a torn last line after the flushed rows.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"2,200,200.1,2026-01-01T00:0").unwrap();
        let mut seen = Vec::new();
        let (h, footer) = stream_samples(&path, |_, s| seen.push(s)).unwrap();
        assert_eq!(h, header());
        assert!(footer.is_none());
        assert_eq!(seen.len(), 2);
        for (got, want) in seen.iter().zip(&rows) {
            assert_eq!(
                (
                    got.seq,
                    got.intended_ms,
                    got.outcome,
                    got.errno,
                    &got.version,
                    got.total_ms
                ),
                (
                    want.seq,
                    want.intended_ms,
                    want.outcome,
                    want.errno,
                    &want.version,
                    want.total_ms
                )
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rejects_foreign_files() {
        let path = std::env::temp_dir().join(format!("rp-foreign-{}.csv", std::process::id()));
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        let err = read_samples(&path).unwrap_err().to_string();
        assert!(err.contains("not a rollprobe samples file"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}

/// The columns the analyzer needs, borrowed from the CSV record (no allocation
/// for the wall time, connection, errno name or error message).
#[derive(Deserialize)]
struct AnalyzedRow<'a> {
    seq: u64,
    intended_ms: f64,
    sent_ms: Option<f64>,
    #[serde(borrow)]
    outcome: &'a str,
    errno: Option<i32>,
    status: Option<u16>,
    #[serde(borrow)]
    version: Option<&'a str>,
    connect_ms: Option<f64>,
    ttfb_ms: Option<f64>,
    total_ms: Option<f64>,
}

/// Streams a samples.csv into `each` row by row, without keeping the rows;
/// returns the header and the footer. The rows handed over carry only what the
/// analyzer reads (no wall time, connection, errno name or error text).
pub fn stream_samples(
    path: &Path,
    mut each: impl FnMut(&RunHeader, Sample),
) -> Result<(RunHeader, Option<RunFooter>), ReadError> {
    use std::io::{Read, Seek, SeekFrom};
    let shown = path.display().to_string();
    let io_err = |source| ReadError::Io {
        path: shown.clone(),
        source,
    };
    let format_err = |line, reason: String| ReadError::Format {
        path: shown.clone(),
        line,
        reason,
    };
    let mut file = File::open(path).map_err(io_err)?;
    // The footer is the last line: read only the file's tail for it.
    let len = file.metadata().map_err(io_err)?.len();
    let tail_from = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(tail_from)).map_err(io_err)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io_err)?;
    let mut footer: Option<RunFooter> = None;
    let mut body_end = len;
    let text = String::from_utf8_lossy(&tail);
    if let Some((end, pos)) = split_footer(&text, tail_from == 0).map_err(|r| format_err(0, r))? {
        footer = Some(end);
        body_end = tail_from + pos as u64;
    }
    file.seek(SeekFrom::Start(0)).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(256 * 1024, file.take(body_end));
    let mut first = String::new();
    reader.read_line(&mut first).map_err(io_err)?;
    let header = parse_header_line(&first).map_err(|reason| format_err(1, reason))?;
    let mut csv_reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(reader);
    let headers = csv_reader
        .byte_headers()
        .map_err(|e| format_err(2, e.to_string()))?
        .clone();
    let mut record = csv::ByteRecord::new();
    let mut pending_error: Option<ReadError> = None;
    let mut row_no: u64 = 0;
    loop {
        let more = match csv_reader.read_byte_record(&mut record) {
            Ok(more) => more,
            Err(e) => {
                if let Some(err) = pending_error.take() {
                    return Err(err);
                }
                pending_error = Some(format_err(row_no + 3, e.to_string()));
                row_no += 1;
                continue;
            }
        };
        if !more {
            break;
        }
        if let Some(err) = pending_error.take() {
            // Not the last line after all.
            return Err(err);
        }
        match record.deserialize::<AnalyzedRow>(Some(&headers)) {
            Ok(row) => {
                let outcome: Outcome =
                    row.outcome
                        .parse()
                        .map_err(|e: crate::outcome::UnknownOutcome| {
                            format_err(row_no + 3, e.to_string())
                        })?;
                check_intended_ms(row.intended_ms).map_err(|r| format_err(row_no + 3, r))?;
                each(
                    &header,
                    Sample {
                        seq: row.seq,
                        intended_ms: row.intended_ms,
                        sent_ms: row.sent_ms,
                        wall_time: String::new(),
                        outcome,
                        errno: row.errno,
                        errno_name: None,
                        status: row.status,
                        version: row.version.map(str::to_string),
                        connect_ms: row.connect_ms,
                        ttfb_ms: row.ttfb_ms,
                        total_ms: row.total_ms,
                        connection: None,
                        error: None,
                    },
                );
            }
            Err(e) => pending_error = Some(format_err(row_no + 3, e.to_string())),
        }
        row_no += 1;
    }
    // A killed run may leave a torn last line: keep everything before it.
    match (pending_error, &footer) {
        (Some(err), Some(_)) => Err(err),
        _ => Ok((header, footer)),
    }
}
