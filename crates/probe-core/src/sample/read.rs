//! Reading samples.csv back (and the older single-file format), for
//! `rollprobe report`: every row checked, so a hand-edited file is refused with
//! its line number rather than turned into odd figures.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::{
    RunFooter, RunHeader, RunRecord, Sample, StreamInfo, FOOTER_PREFIX, HEADER_PREFIX, RUN_FILE,
};

/// A samples file read back: the run's header, its rows, and its end if it ended cleanly.
#[derive(Debug, Clone)]
pub struct RecordedRun {
    /// What was run.
    pub header: RunHeader,
    /// Every row, in file (completion) order.
    pub samples: Vec<Sample>,
    /// How it ended; `None` when the run was killed before writing it.
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

/// samples.csv of a run folder, or the file itself.
pub fn samples_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(super::SAMPLES_FILE)
    } else {
        path.to_path_buf()
    }
}

/// Where a samples file keeps its run's header and end: in run.json beside it, or (an
/// older file) in its own `#` lines. Returns them and the offset where the CSV body
/// starts and ends.
struct Layout {
    header: RunHeader,
    footer: Option<RunFooter>,
    body_start: u64,
    body_end: u64,
    /// The CSV line number of the body's first line, for messages.
    first_line: u64,
    /// Set when run.json was missing and the header was inferred from the rows.
    inferred: Option<Inferred>,
}

fn layout(path: &Path) -> Result<Layout, ReadError> {
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
    let len = file.metadata().map_err(io_err)?.len();
    let mut first = String::new();
    BufReader::new(&mut file)
        .take(64 * 1024)
        .read_line(&mut first)
        .map_err(io_err)?;
    if !first.starts_with('#') {
        let dir = path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if !first.starts_with("stream,") && !first.starts_with("seq,") {
            return Err(format_err(
                1,
                "not a rollprobe samples file (its header row must start with 'stream,seq')".into(),
            ));
        }
        let record = match RunRecord::read(dir) {
            Ok(record) => record,
            // A samples.csv copied on its own: its rows still say what was run.
            Err(ReadError::Io {
                path: missing,
                source,
            }) if source.kind() == io::ErrorKind::NotFound => {
                let inferred = Inferred::from_rows(path, &missing)?;
                return Ok(Layout {
                    header: inferred.header(),
                    footer: None,
                    body_start: 0,
                    body_end: len,
                    first_line: 1,
                    inferred: Some(inferred),
                });
            }
            Err(e) => return Err(e),
        };
        crate::config::check_rate(record.header.config.rate).map_err(|e| ReadError::Format {
            path: dir.join(RUN_FILE).display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        return Ok(Layout {
            header: record.header,
            footer: record.end,
            body_start: 0,
            body_end: len,
            first_line: 1,
            inferred: None,
        });
    }
    let header = parse_header_line(&first).map_err(|reason| format_err(1, reason))?;
    // The footer is the last line: read only the file's tail for it.
    let tail_from = len.saturating_sub(64 * 1024);
    file.seek(SeekFrom::Start(tail_from)).map_err(io_err)?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).map_err(io_err)?;
    let mut footer = None;
    let mut body_end = len;
    let text = String::from_utf8_lossy(&tail);
    if let Some((end, pos)) = split_footer(&text, tail_from == 0).map_err(|r| format_err(0, r))? {
        footer = Some(end);
        body_end = tail_from + pos as u64;
    }
    Ok(Layout {
        header,
        footer,
        body_start: first.len() as u64,
        body_end: body_end.max(first.len() as u64),
        first_line: 2,
        inferred: None,
    })
}

/// Reads only what was run and how it ended, from a samples.csv (or a run folder)
/// of this or an older version, without reading its rows.
pub fn read_run_header(path: &Path) -> Result<(RunHeader, Option<RunFooter>), ReadError> {
    let l = layout(&samples_path(path))?;
    Ok((l.header, l.footer))
}

/// Reads a samples.csv (or a run folder) written by this or an older version.
pub fn read_samples(path: &Path) -> Result<RecordedRun, ReadError> {
    let mut samples = Vec::new();
    let (header, footer) = read_rows(path, |_, s| samples.push(s))?;
    Ok(RecordedRun {
        header,
        samples,
        footer,
    })
}

/// Reads every row into `each`, in file order. A killed run may leave a torn last
/// line: it is dropped; a bad row anywhere else is an error.
fn read_rows(
    path: &Path,
    mut each: impl FnMut(&RunHeader, Sample),
) -> Result<(RunHeader, Option<RunFooter>), ReadError> {
    let Body {
        layout,
        shown,
        mut csv,
    } = Body::open(path)?;
    let format_err = |line, reason| format_err(&shown, line, reason);
    let default_stream = format!("local-{}", layout.header.config.connection);
    let mut pending_error: Option<ReadError> = None;
    let rows = csv.deserialize::<Sample>();
    for (i, row) in rows.enumerate() {
        if let Some(err) = pending_error.take() {
            return Err(err);
        }
        let line = layout.first_line + 1 + i as u64;
        match row {
            Ok(mut s) => {
                check_intended_ms(s.intended_ms).map_err(|r| format_err(line, r))?;
                if s.stream.is_empty() {
                    s.stream.clone_from(&default_stream);
                }
                each(&layout.header, s)
            }
            Err(e) => pending_error = Some(format_err(line, e.to_string())),
        }
    }
    layout.end(pending_error)
}

/// The CSV body of a samples file, opened for reading after its layout is known.
struct Body {
    layout: Layout,
    shown: String,
    csv: csv::Reader<BufReader<io::Take<File>>>,
}

impl Body {
    fn open(path: &Path) -> Result<Body, ReadError> {
        use std::io::{Read, Seek, SeekFrom};
        let path = samples_path(path);
        let layout = layout(&path)?;
        let shown = path.display().to_string();
        let io_err = |source| ReadError::Io {
            path: shown.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io_err)?;
        file.seek(SeekFrom::Start(layout.body_start))
            .map_err(io_err)?;
        let reader =
            BufReader::with_capacity(256 * 1024, file.take(layout.body_end - layout.body_start));
        let csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(reader);
        Ok(Body { layout, shown, csv })
    }
}

fn format_err(shown: &str, line: u64, reason: String) -> ReadError {
    ReadError::Format {
        path: shown.to_string(),
        line,
        reason,
    }
}

impl Layout {
    /// The header and footer, unless a bad row was not the torn last line of a
    /// killed run (a clean run has no torn line).
    fn end(
        self,
        pending_error: Option<ReadError>,
    ) -> Result<(RunHeader, Option<RunFooter>), ReadError> {
        match (pending_error, &self.footer) {
            (Some(err), Some(_)) => Err(err),
            _ => Ok((self.header, self.footer)),
        }
    }
}

/// The columns of a row that the analyzer reads, borrowed from the CSV record: the
/// others (wall time, errno name, request id, connection, and the error text of any
/// row but a TLS failure) are neither copied nor kept.
#[derive(serde::Deserialize)]
struct AnalyzedRow<'a> {
    #[serde(default)]
    stream: &'a str,
    seq: u64,
    intended_ms: f64,
    sent_ms: Option<f64>,
    outcome: &'a str,
    errno: Option<i32>,
    status: Option<u16>,
    #[serde(borrow)]
    version: Option<&'a str>,
    #[serde(default, borrow)]
    pod: Option<&'a str>,
    connect_ms: Option<f64>,
    #[serde(default)]
    syn_retransmits: Option<u32>,
    ttfb_ms: Option<f64>,
    total_ms: Option<f64>,
    /// Kept for `tls` rows only: their text names the handshake's reason.
    #[serde(default, borrow)]
    error: Option<&'a str>,
}

/// Like [`stream_samples`], for the analyzer: each row is read into one reused
/// record and only the columns [`crate::Analyzer`] reads are kept; the wall time,
/// errno name, request id and connection of the [`Sample`] are left empty, and its
/// error too unless it is a TLS failure (whose text the summary names).
/// Every row is still checked (its column count, and every column kept).
/// Also returns what was inferred, when run.json was missing.
pub(crate) fn stream_for_analysis(
    path: &Path,
    mut each: impl FnMut(&RunHeader, Sample),
) -> Result<(RunHeader, Option<RunFooter>, Option<Inferred>), ReadError> {
    let Body {
        layout,
        shown,
        mut csv,
    } = Body::open(path)?;
    let format_err = |line, reason| format_err(&shown, line, reason);
    let default_stream = format!("local-{}", layout.header.config.connection);
    let headers = csv
        .byte_headers()
        .map_err(|e| format_err(layout.first_line, e.to_string()))?
        .clone();
    let mut record = csv::ByteRecord::new();
    let mut stream = String::new();
    let mut pending_error: Option<ReadError> = None;
    let mut line = layout.first_line;
    loop {
        let read = csv.read_byte_record(&mut record);
        line += 1;
        if let Some(err) = pending_error.take() {
            if !matches!(read, Ok(false)) {
                return Err(err);
            }
            pending_error = Some(err);
        }
        match read {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if e.is_io_error() => {
                return Err(ReadError::Io {
                    path: shown.clone(),
                    source: io::Error::other(e.to_string()),
                })
            }
            Err(e) => {
                // Only the torn last line of a killed run may be bad.
                pending_error = Some(format_err(line, e.to_string()));
                continue;
            }
        }
        let row = match record.deserialize::<AnalyzedRow>(Some(&headers)) {
            Ok(row) => row,
            Err(e) => {
                pending_error = Some(format_err(line, e.to_string()));
                continue;
            }
        };
        let outcome = match row.outcome.parse::<crate::outcome::Outcome>() {
            Ok(o) => o,
            Err(e) => {
                pending_error = Some(format_err(line, e.to_string()));
                continue;
            }
        };
        check_intended_ms(row.intended_ms).map_err(|r| format_err(line, r))?;
        let name = if row.stream.is_empty() {
            default_stream.as_str()
        } else {
            row.stream
        };
        if stream != name {
            name.clone_into(&mut stream);
        }
        let sample = Sample {
            sent_ms: row.sent_ms,
            errno: row.errno,
            status: row.status,
            version: row.version.map(str::to_string),
            pod: row.pod.map(str::to_string),
            connect_ms: row.connect_ms,
            syn_retransmits: row.syn_retransmits,
            ttfb_ms: row.ttfb_ms,
            total_ms: row.total_ms,
            error: row
                .error
                .filter(|_| outcome == crate::outcome::Outcome::Tls)
                .map(str::to_string),
            ..Sample::new(stream.clone(), row.seq, row.intended_ms, outcome)
        };
        each(&layout.header, sample);
    }
    let inferred = layout.inferred.clone();
    let (header, footer) = layout.end(pending_error)?;
    Ok((header, footer, inferred))
}

/// Finds the end line of a clean run in `text` (an old file's body, or its tail):
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

/// The first line of an old samples.csv: the run's header as JSON.
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
    // About 31 years: far beyond any run, far inside jiff's and Duration's ranges.
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

/// What a samples.csv copied without its run.json still says of its run, read from
/// its rows: each stream's rate (the spacing of intended times over its seq numbers:
/// request *i* is due at *i*/rate) and the start (the first wall time less its intended
/// time). The target and the other settings are not in the rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Inferred {
    /// The run.json that was looked for.
    pub(crate) missing: String,
    /// The wall-clock start, when a row had a wall time.
    pub(crate) started_at: Option<String>,
    /// Each stream's name and rate, in order of first row.
    pub(crate) streams: Vec<(String, f64)>,
}

/// The columns the inference reads.
#[derive(serde::Deserialize)]
struct InferredRow<'a> {
    #[serde(default)]
    stream: &'a str,
    seq: u64,
    intended_ms: f64,
    #[serde(default)]
    wall_time: &'a str,
}

/// One stream's lowest and highest seq seen, each with its intended time.
struct SeqSpan {
    name: String,
    low: (u64, f64),
    high: (u64, f64),
}

impl SeqSpan {
    fn rate(&self) -> Option<f64> {
        let (seqs, ms) = (self.high.0 - self.low.0, self.high.1 - self.low.1);
        // Intended times are kept to the microsecond, so the spacing gives the rate
        // back to well within the thousandth of a req/s it is rounded to.
        (seqs > 0 && ms > 0.0).then(|| (1e6 * seqs as f64 / ms).round() / 1000.0)
    }
}

impl Inferred {
    /// Reads the rows of `path` (a samples.csv whose run.json, `missing`, is not there).
    /// Bad rows are skipped here: the analysis reads every row again and refuses them
    /// with their line.
    fn from_rows(path: &Path, missing: &str) -> Result<Inferred, ReadError> {
        let shown = path.display().to_string();
        let io_err = |source| ReadError::Io {
            path: shown.clone(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let mut csv = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(BufReader::with_capacity(256 * 1024, file));
        let headers = csv
            .byte_headers()
            .map_err(|e| format_err(&shown, 1, e.to_string()))?
            .clone();
        let mut record = csv::ByteRecord::new();
        let mut spans: Vec<SeqSpan> = Vec::new();
        let mut started_at = None;
        while let Ok(true) = csv.read_byte_record(&mut record) {
            let Ok(row) = record.deserialize::<InferredRow>(Some(&headers)) else {
                continue;
            };
            if check_intended_ms(row.intended_ms).is_err() {
                continue;
            }
            if started_at.is_none() {
                started_at = row
                    .wall_time
                    .parse::<jiff::Timestamp>()
                    .ok()
                    .and_then(|t| crate::clock::wall_after(t, -row.intended_ms))
                    .map(crate::clock::format_wall);
            }
            let name = if row.stream.is_empty() {
                "local-fresh"
            } else {
                row.stream
            };
            let at = (row.seq, row.intended_ms);
            match spans.iter_mut().find(|s| s.name == name) {
                Some(s) if at.0 < s.low.0 => s.low = at,
                Some(s) if at.0 > s.high.0 => s.high = at,
                Some(_) => {}
                None => spans.push(SeqSpan {
                    name: name.to_string(),
                    low: at,
                    high: at,
                }),
            }
        }
        let Some(known) = spans.iter().find_map(SeqSpan::rate) else {
            return Err(ReadError::Io {
                path: missing.to_string(),
                source: io::Error::new(
                    io::ErrorKind::NotFound,
                    "it is missing, and the rows are too few to tell the rate (two requests of one stream are needed)",
                ),
            });
        };
        let streams: Vec<(String, f64)> = spans
            .iter()
            .map(|s| (s.name.clone(), s.rate().unwrap_or(known)))
            .collect();
        for (_, rate) in &streams {
            crate::config::check_rate(*rate).map_err(|e| ReadError::Format {
                path: shown.clone(),
                line: 0,
                reason: format!("the rate inferred from the rows: {e}"),
            })?;
        }
        Ok(Inferred {
            missing: missing.to_string(),
            started_at,
            streams,
        })
    }

    /// The header the rows imply: no target, the documented defaults for every setting
    /// the rows do not show, the first stream's rate as the run's.
    fn header(&self) -> RunHeader {
        let (first, rate) = (&self.streams[0].0, self.streams[0].1);
        let mut config = crate::config::ProbeConfig::new(
            crate::config::Target::parse("http://unknown.invalid/").expect("a constant, valid URL"),
        );
        config.rate = rate;
        config.connection = StreamInfo::from(first.as_str()).connection;
        RunHeader {
            target: String::new(),
            started_at: self.started_at.clone().unwrap_or_default(),
            streams: self
                .streams
                .iter()
                .map(|(name, r)| StreamInfo {
                    // A stream's own rate is kept only where it is not the run's.
                    rate: (*r != rate).then_some(*r),
                    ..StreamInfo::from(name.as_str())
                })
                .collect(),
            ..RunHeader::new(&config)
        }
    }

    /// The warning a report of these rows carries: what was missing, what was
    /// inferred, what is not known.
    pub(crate) fn warning(&self) -> String {
        let rates = self
            .streams
            .iter()
            .map(|(name, rate)| format!("{name} {rate} req/s"))
            .collect::<Vec<_>>()
            .join(", ");
        let start = match &self.started_at {
            Some(at) => format!("the start ({at}) from the first row's wall_time"),
            None => "no start (no row has a wall_time)".to_string(),
        };
        format!(
            "{} was missing: inferred from the rows the rate ({rates}, from the intended times) and {start}; the target, the other settings and whether the run ended cleanly are unknown",
            self.missing
        )
    }
}

/// Streams a samples.csv (or a run folder) into `each` row by row, without keeping
/// the rows; returns the header and the footer.
pub fn stream_samples(
    path: &Path,
    each: impl FnMut(&RunHeader, Sample),
) -> Result<(RunHeader, Option<RunFooter>), ReadError> {
    read_rows(path, each)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RecordedConfig;
    use crate::sample::*;

    fn header() -> RunHeader {
        RunHeader {
            schema: SAMPLES_SCHEMA.into(),
            label: Some("t".into()),
            target: "http://127.0.0.1:1/".into(),
            config: RecordedConfig::for_tests(10.0, 5000, 116),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            run_id: "r1".into(),
            streams: vec!["local-fresh".into()],
        }
    }

    /// A full literal on purpose (not over `Sample::new`): the round trips below compare
    /// every column, so a new column makes this fixture decide its value.
    fn sample(seq: u64, outcome: Outcome) -> Sample {
        Sample {
            stream: "local-fresh".into(),
            seq,
            intended_ms: seq as f64 * 100.0,
            sent_ms: Some(seq as f64 * 100.0 + 0.125),
            wall_time: "2026-01-01T00:00:00.000Z".into(),
            outcome,
            errno: (outcome == Outcome::ConnectionRefused).then_some(111),
            errno_name: (outcome == Outcome::ConnectionRefused).then(|| "ECONNREFUSED".into()),
            status: (outcome == Outcome::Ok).then_some(200),
            version: (outcome == Outcome::Ok).then(|| "v1, \"quoted\"".into()),
            pod: (outcome == Outcome::Ok).then(|| "web-a".into()),
            request_id: Some(format!("r1-local-fresh-{seq}")),
            connect_ms: Some(0.3),
            syn_retransmits: Some(1),
            ttfb_ms: Some(1.0 / 3.0),
            total_ms: Some(2.0),
            connection: Some("new".into()),
            error: None,
            proxy: None,
            upstream: None,
        }
    }

    /// A run folder with two flushed rows and a run.json without its end (a killed run).
    fn write_two_rows(name: &str) -> (PathBuf, PathBuf, Vec<Sample>, SampleWriter) {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("samples.csv");
        RunRecord {
            header: header(),
            end: None,
        }
        .write(&dir)
        .unwrap();
        let rows = vec![
            sample(0, Outcome::Ok),
            sample(1, Outcome::ConnectionRefused),
        ];
        let mut w = SampleWriter::create(&path).unwrap();
        for s in &rows {
            w.write(s).unwrap();
        }
        w.flush().unwrap();
        (dir, path, rows, w)
    }

    #[test]
    fn round_trip_with_an_end_and_without() {
        let (dir, path, rows, w) = write_two_rows("rp-sample");
        // Before the end: a killed run.
        let killed = read_samples(&path).unwrap();
        assert_eq!(killed.samples, rows);
        assert!(killed.footer.is_none());
        let footer = RunFooter {
            ended_at: "2026-01-01T00:00:01.000Z".into(),
            duration_ms: 200.0,
            interrupted: false,
            trigger: None,
            unanswered: 0,
        };
        w.finish().unwrap();
        RunRecord {
            header: header(),
            end: Some(footer.clone()),
        }
        .write(&dir)
        .unwrap();
        // The folder or the file, alike.
        let back = read_samples(&dir).unwrap();
        assert_eq!(back.header, header());
        assert_eq!(back.samples, rows);
        assert_eq!(back.footer, Some(footer));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_csv_with_the_documented_columns() {
        let (dir, path, _, w) = write_two_rows("rp-plain");
        w.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next().unwrap(),
            "stream,seq,intended_ms,sent_ms,wall_time,outcome,errno,errno_name,status,version,pod,request_id,connect_ms,syn_retransmits,ttfb_ms,total_ms,connection,error,proxy,upstream"
        );
        assert!(!text.lines().any(|l| l.starts_with('#')));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_the_old_format_with_comment_lines() {
        let dir = std::env::temp_dir().join(format!("rp-old-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("samples.csv");
        let mut old_header = serde_json::to_value(header()).unwrap();
        old_header.as_object_mut().unwrap().remove("run_id");
        old_header.as_object_mut().unwrap().remove("streams");
        old_header["config"]
            .as_object_mut()
            .unwrap()
            .remove("pod_from");
        std::fs::write(
            &path,
            format!(
                "# rollprobe.samples/v1 {old_header}\n\
                 seq,intended_ms,sent_ms,wall_time,outcome,errno,errno_name,status,version,connect_ms,ttfb_ms,total_ms,connection,error\n\
                 0,0.0,0.1,2026-01-01T00:00:00.000Z,ok,,,200,v1,0.3,1.0,2.0,new,\n\
                 1,100.0,100.1,2026-01-01T00:00:00.100Z,connection_refused,111,ECONNREFUSED,,,,,0.2,new,refused\n\
                 # end {{\"ended_at\":\"2026-01-01T00:00:01.000Z\",\"duration_ms\":200.0,\"interrupted\":false}}\n"
            ),
        )
        .unwrap();
        let run = read_samples(&path).unwrap();
        assert_eq!(run.samples.len(), 2);
        assert_eq!(run.samples[0].stream, "local-fresh");
        assert_eq!(run.samples[0].version.as_deref(), Some("v1"));
        assert_eq!(run.samples[1].errno, Some(111));
        assert_eq!(run.footer.unwrap().duration_ms, 200.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_torn_last_line_of_a_killed_run_is_dropped() {
        let (dir, path, rows, w) = write_two_rows("rp-stream");
        drop(w);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"local-fresh,2,200,200.1,2026-01-01T00:0").unwrap();
        let mut seen = Vec::new();
        let (h, footer) = stream_samples(&path, |_, s| seen.push(s)).unwrap();
        assert_eq!(h, header());
        assert!(footer.is_none());
        assert_eq!(seen, rows);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What the analyzer reads of a sample.
    fn analyzed(s: &Sample) -> Sample {
        Sample {
            wall_time: String::new(),
            errno_name: None,
            request_id: None,
            connection: None,
            error: None,
            ..s.clone()
        }
    }

    #[test]
    fn the_analyzers_reader_keeps_every_column_it_reads() {
        let (dir, path, rows, w) = write_two_rows("rp-lean");
        drop(w);
        let mut seen = Vec::new();
        let (h, footer, _) = stream_for_analysis(&path, |_, s| seen.push(s)).unwrap();
        assert_eq!(h, header());
        assert!(footer.is_none());
        assert_eq!(seen, rows.iter().map(analyzed).collect::<Vec<_>>());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_analyzers_reader_drops_only_a_torn_last_line() {
        let (dir, path, rows, w) = write_two_rows("rp-lean-torn");
        drop(w);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"local-fresh,2,200,200.1,2026-01-01T00:0").unwrap();
        let mut seen = Vec::new();
        stream_for_analysis(&path, |_, s| seen.push(s)).unwrap();
        assert_eq!(seen, rows.iter().map(analyzed).collect::<Vec<_>>());
        // The same bad line followed by a good one is a bad file, not a torn end.
        let text = std::fs::read_to_string(&path).unwrap();
        let good = text.lines().nth(1).unwrap().to_string();
        std::io::Write::write_all(&mut f, format!("\n{good}\n").as_bytes()).unwrap();
        let err = stream_for_analysis(&path, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 4"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_analyzers_reader_refuses_an_unknown_outcome_with_its_line() {
        let (dir, path, _, w) = write_two_rows("rp-lean-bad");
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen(",ok,", ",fine,", 1)
                + &text.lines().nth(2).unwrap().replace(",1,", ",3,"),
        )
        .unwrap();
        let err = stream_for_analysis(&path, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("fine"), "{err}");
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
