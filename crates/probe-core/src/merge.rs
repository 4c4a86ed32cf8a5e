//! `rollprobe merge`: runs recorded at several vantage points (in-cluster Jobs, a
//! laptop) become one run with one stream per input, on one clock.
//!
//! The inputs were timed by different machines, so they can only be aligned by their
//! wall-clock starts: every input's times are shifted by how far its `started_at` lies
//! after the earliest one. Those clocks may disagree, and nothing here can know by how
//! much, so each input's own start and shift are kept in run.json and shown in the
//! report rather than hidden. The merged folder is an ordinary run folder: `rollprobe
//! report` rebuilds it, and its report says where every stream failed at once (a total
//! outage) and where only some did (partial).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::analyze::RunAnalyzer;
use crate::clock::{format_wall, wall_after};
use crate::event::{read_events, Event, EventWriter};
use crate::report::Report;
use crate::sample::{
    read_run_header, samples_path, stream_samples, MergedInput, ReadError, RunFooter, RunHeader,
    RunRecord, SampleWriter, StreamInfo, SAMPLES_SCHEMA,
};

/// Why runs could not be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// An input could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// An input's events.csv could not be read.
    #[error("cannot read the events of {dir}: {source}")]
    Events {
        /// The input.
        dir: String,
        /// Why.
        source: std::io::Error,
    },
    /// The inputs do not make a merge.
    #[error("{0}")]
    Input(String),
    /// The merged run could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Output {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl MergeError {
    /// Whether the user's input is at fault (rather than the output folder).
    pub fn is_input(&self) -> bool {
        !matches!(self, MergeError::Output { .. })
    }
}

struct Input {
    dir: PathBuf,
    header: RunHeader,
    footer: Option<RunFooter>,
    start: jiff::Timestamp,
    /// Its streams' names in the merged run, by their own names.
    renamed: Vec<(String, StreamInfo)>,
}

/// Merges the runs in `inputs` (run folders or samples files) into a run folder at
/// `out` (samples.csv, events.csv, run.json), and returns its report; write the report
/// files with [`crate::write_report_files`].
///
/// ```no_run
/// use std::path::Path;
/// let report = probe_core::merge_runs(&[Path::new("node-a"), Path::new("laptop")], Path::new("merged"))?;
/// if let Some(total) = &report.total_outage {
///     println!("every vantage point failed at once for {} ms", total.total_ms);
/// }
/// # Ok::<(), probe_core::MergeError>(())
/// ```
pub fn merge_runs(inputs: &[&Path], out: &Path) -> Result<Report, MergeError> {
    if inputs.len() < 2 {
        return Err(MergeError::Input(
            "merge needs at least two run folders (one per vantage point)".into(),
        ));
    }
    let mut read = Vec::new();
    let mut events: Vec<Event> = Vec::new();
    let mut used_names = BTreeSet::new();
    let mut seen_folders = BTreeSet::new();
    for dir in inputs {
        // The same run twice would be two streams that agree on everything, and a
        // "total outage" that is only one vantage point's own.
        if let Some(folder) = run_folder(dir) {
            if !seen_folders.insert(folder) {
                return Err(MergeError::Input(format!(
                    "{} is given twice: merge needs distinct runs (one per vantage point)",
                    dir.display()
                )));
            }
        }
        let (header, footer) = read_run_header(dir)?;
        let start: jiff::Timestamp = header.started_at.parse().map_err(|e| {
            MergeError::Input(format!(
                "{}: started_at {:?} is not a time: {e}",
                dir.display(),
                header.started_at
            ))
        })?;
        let base = vantage_base(dir, &mut used_names);
        let renamed = header
            .stream_infos()
            .into_iter()
            .map(|own| {
                let vantage = if own.vantage == "local" {
                    base.clone()
                } else {
                    format!("{base}.{}", own.vantage)
                };
                let mut info = StreamInfo::new(&vantage, own.connection);
                info.target = Some(own.target.clone().unwrap_or(header.target.clone()));
                info.rate = Some(header.rate_of(&own));
                (own.name, info)
            })
            .collect();
        read.push(Input {
            dir: dir.to_path_buf(),
            header,
            footer,
            start,
            renamed,
        });
    }
    let origin = read.iter().map(|i| i.start).min().expect("two inputs");
    let offset_of = |i: &Input| {
        (i.start - origin)
            .total(jiff::Unit::Millisecond)
            .unwrap_or(0.0)
    };
    let mut streams = Vec::new();
    for input in &mut read {
        let offset_ms = crate::clock::round_ms(offset_of(input));
        for (_, info) in &mut input.renamed {
            info.merged_from = Some(MergedInput {
                dir: input.dir.display().to_string(),
                started_at: input.header.started_at.clone(),
                offset_ms,
            });
            streams.push(info.clone());
        }
        let events_path = samples_path(&input.dir).with_file_name(crate::event::EVENTS_FILE);
        if events_path.is_file() {
            let own = read_events(&events_path).map_err(|source| MergeError::Events {
                dir: input.dir.display().to_string(),
                source,
            })?;
            events.extend(own.into_iter().map(|mut e| {
                e.at_ms = crate::clock::round_ms(e.at_ms + offset_ms);
                e
            }));
        }
    }
    events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let first = &read[0].header;
    let mut config = first.config.clone();
    config.rollout_events = read.iter().any(|i| i.header.config.rollout_events);
    let header = RunHeader {
        schema: SAMPLES_SCHEMA.to_string(),
        label: Some(
            read.iter()
                .map(|i| i.header.label.clone().unwrap_or_else(|| base_name(&i.dir)))
                .collect::<Vec<_>>()
                .join(" + "),
        ),
        target: first.target.clone(),
        config,
        started_at: format_wall(origin),
        run_id: read
            .iter()
            .map(|i| i.header.run_id.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        streams,
    };
    let footer = merged_footer(&read, origin, &offset_of);

    std::fs::create_dir_all(out).map_err(|source| MergeError::Output {
        path: out.to_path_buf(),
        source,
    })?;
    let fail = |path: PathBuf| move |source| MergeError::Output { path, source };
    let mut event_writer = EventWriter::create(&out.join(crate::event::EVENTS_FILE))
        .map_err(fail(out.join(crate::event::EVENTS_FILE)))?;
    for e in &events {
        event_writer
            .write(e)
            .map_err(fail(out.join(crate::event::EVENTS_FILE)))?;
    }
    let samples_out = out.join(crate::sample::SAMPLES_FILE);
    let mut writer = SampleWriter::create(&samples_out).map_err(fail(samples_out.clone()))?;
    let mut analyzer = RunAnalyzer::with_events(&header, events);
    for input in &read {
        let offset_ms = crate::clock::round_ms(offset_of(input));
        let mut write_error = None;
        stream_samples(&input.dir, |_, mut s| {
            if let Some((_, info)) = input.renamed.iter().find(|(own, _)| *own == s.stream) {
                s.stream.clone_from(&info.name);
            }
            s.intended_ms = crate::clock::round_ms(s.intended_ms + offset_ms);
            s.sent_ms = s.sent_ms.map(|t| crate::clock::round_ms(t + offset_ms));
            if write_error.is_none() {
                write_error = writer.write(&s).err();
            }
            analyzer.push(s);
        })?;
        if let Some(source) = write_error {
            return Err(MergeError::Output {
                path: samples_out,
                source,
            });
        }
    }
    writer.finish().map_err(fail(samples_out.clone()))?;
    RunRecord {
        header: header.clone(),
        end: Some(footer.clone()),
    }
    .write(out)
    .map_err(fail(out.join(crate::sample::RUN_FILE)))?;
    Ok(analyzer.finish(&header, Some(&footer)))
}

/// The merged run ends when its last input ended; it is interrupted if any input was.
fn merged_footer(
    read: &[Input],
    origin: jiff::Timestamp,
    offset_of: &dyn Fn(&Input) -> f64,
) -> RunFooter {
    let duration_ms = read
        .iter()
        .map(|i| offset_of(i) + i.footer.as_ref().map(|f| f.duration_ms).unwrap_or(0.0))
        .fold(0.0, f64::max);
    RunFooter {
        ended_at: wall_after(origin, duration_ms)
            .map(format_wall)
            .unwrap_or_default(),
        duration_ms: crate::clock::round_ms(duration_ms),
        interrupted: read
            .iter()
            .any(|i| i.footer.as_ref().is_none_or(|f| f.interrupted)),
        trigger: None,
        unanswered: read
            .iter()
            .filter_map(|i| i.footer.as_ref())
            .map(|f| f.unanswered)
            .sum(),
    }
}

/// The run folder an input names (itself, or a samples file's folder), resolved.
fn run_folder(input: &Path) -> Option<PathBuf> {
    let p = if input.is_dir() {
        input
    } else {
        // A bare `samples.csv` has the empty path as its parent: the current folder.
        input
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    };
    p.canonicalize().ok()
}

fn base_name(dir: &Path) -> String {
    run_folder(dir)
        .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into())
}

/// A vantage name for an input: its folder's name, made unique among the inputs.
fn vantage_base(dir: &Path, used: &mut BTreeSet<String>) -> String {
    let base: String = base_name(dir)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = base.clone();
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{base}{n}");
        n += 1;
    }
    name
}
