//! The recorder: one task that takes every sample and event of a run, in the
//! order the probe sent them, streams them to samples.csv and events.csv, keeps
//! the live counters, and feeds the [`RunAnalyzer`] (one analyzer per stream).
//!
//! It returns the finished [`Report`] and never writes report files: rendering
//! is the output modules' job, called by the probe once the recorder is done.
//! A write error does not stop the measurement: the first one is kept, the files
//! are abandoned, and the report still comes back with the error beside it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::analyze::RunAnalyzer;
use crate::event::{Event, EventWriter};
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::report::Report;
use crate::sample::{RunFooter, RunHeader, RunRecord, Sample, SampleWriter, RUN_FILE};
use crate::schedule::HAND_OVER_EVERY;

/// Live counters for a progress line.
#[derive(Debug, Clone, Default)]
pub struct LiveStats {
    /// Requests completed.
    pub sent: u64,
    /// Ok answers.
    pub ok: u64,
    /// Failures by kind (local included).
    pub by_kind: BTreeMap<Outcome, u64>,
    /// Ticks skipped over the in-flight cap.
    pub skipped: u64,
    /// The version of the latest ok answer.
    pub version: Option<String>,
}

/// What the recorder is sent, in the order the run produced it.
pub(crate) enum Record {
    /// A batch of finished samples from one stream's schedule.
    Samples(Vec<Sample>),
    Event(Event),
    /// Probing has stopped; requests in flight are still awaited. run.json gets this
    /// end at once, for a process killed while it waits.
    Stopping(RunFooter),
    /// The run is over: close the files and send back what was recorded.
    Finish(RunFooter, oneshot::Sender<Recorded>),
}

/// A file that could not be written, and why.
pub(crate) type WriteError = (PathBuf, io::Error);

/// The recorder's result: the report, the run's folder, and the first write error.
pub(crate) struct Recorded {
    pub(crate) report: Report,
    /// The run's folder, when it has one.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) write_error: Option<WriteError>,
}

/// The files of a run with `--out`.
pub(crate) struct RunFiles {
    dir: PathBuf,
    samples: SampleWriter,
    events: EventWriter,
}

impl RunFiles {
    /// Creates the folder, run.json (without its end), samples.csv and events.csv.
    pub(crate) fn create(dir: &Path, header: &RunHeader) -> Result<RunFiles, WriteError> {
        let fail = |path: PathBuf| move |source| (path, source);
        std::fs::create_dir_all(dir).map_err(fail(dir.to_path_buf()))?;
        let record = RunRecord {
            header: header.clone(),
            end: None,
        };
        record.write(dir).map_err(fail(dir.join(RUN_FILE)))?;
        let samples_path = dir.join(crate::sample::SAMPLES_FILE);
        let samples = SampleWriter::create(&samples_path).map_err(fail(samples_path))?;
        let events_path = dir.join(crate::event::EVENTS_FILE);
        let events = EventWriter::create(&events_path).map_err(fail(events_path))?;
        Ok(RunFiles {
            dir: dir.to_path_buf(),
            samples,
            events,
        })
    }
}

/// Records until [`Record::Finish`] (or until every sender is gone).
pub(crate) async fn run(
    mut rx: mpsc::UnboundedReceiver<Record>,
    header: RunHeader,
    mut analyzer: RunAnalyzer,
    mut outputs: Option<RunFiles>,
    live: Arc<Mutex<LiveStats>>,
    mut metrics: Metrics,
) {
    // The first write error is kept and reported at the end; measuring goes on.
    let mut write_error: Option<WriteError> = None;
    let mut note = |result: io::Result<()>, path: &Path, outputs: &mut Option<RunFiles>| {
        if let Err(source) = result {
            if write_error.is_none() {
                write_error = Some((path.to_path_buf(), source));
            }
            *outputs = None;
        }
    };
    // run.json as the probe wrote it carries the time it was written; the clock
    // started just after.
    if let Some(o) = outputs.as_ref() {
        let record = RunRecord {
            header: header.clone(),
            end: None,
        };
        let path = o.dir.join(RUN_FILE);
        note(record.write(&o.dir), &path, &mut outputs);
    }
    // Rows are flushed by this timer too, so a run whose requests hang still has its
    // last second on disk: a sample waits up to 250 ms for its hand-over
    // (schedule::HAND_OVER_EVERY), then up to 750 ms here.
    let mut flush = tokio::time::interval(Duration::from_secs(1) - HAND_OVER_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let record = tokio::select! {
            record = rx.recv() => match record {
                Some(record) => record,
                None => break,
            },
            _ = flush.tick() => {
                if let Some(o) = outputs.as_mut() {
                    let r = o.samples.flush();
                    let path = o.dir.join(crate::sample::SAMPLES_FILE);
                    note(r, &path, &mut outputs);
                }
                continue;
            }
        };
        match record {
            Record::Samples(samples) => {
                for sample in samples {
                    if let Some(o) = outputs.as_mut() {
                        if let Err(e) = o.samples.write(&sample) {
                            let path = o.dir.join(crate::sample::SAMPLES_FILE);
                            note(Err(e), &path, &mut outputs);
                        }
                    }
                    count_live(&live, &sample);
                    metrics.observe(&sample, analyzer.is_down(&sample.stream));
                    analyzer.push(sample);
                }
            }
            Record::Event(event) => {
                if let Some(o) = outputs.as_mut() {
                    let r = o.events.write(&event);
                    let path = o.dir.join(crate::event::EVENTS_FILE);
                    note(r, &path, &mut outputs);
                }
                analyzer.event(event);
            }
            Record::Stopping(footer) => {
                if let Some(o) = outputs.as_mut() {
                    let path = o.dir.join(crate::sample::SAMPLES_FILE);
                    note(o.samples.flush(), &path, &mut outputs);
                }
                if let Some(o) = outputs.as_ref() {
                    let record = RunRecord {
                        header: header.clone(),
                        end: Some(footer),
                    };
                    let path = o.dir.join(RUN_FILE);
                    note(record.write(&o.dir), &path, &mut outputs);
                }
            }
            Record::Finish(footer, done) => {
                let dir = outputs.as_ref().map(|o| o.dir.clone());
                if let Some(o) = outputs.take() {
                    let path = o.dir.join(crate::sample::SAMPLES_FILE);
                    note(o.samples.finish(), &path, &mut outputs);
                    let record = RunRecord {
                        header: header.clone(),
                        end: Some(footer.clone()),
                    };
                    let path = o.dir.join(RUN_FILE);
                    note(record.write(&o.dir), &path, &mut outputs);
                }
                let report = analyzer.finish(&header, Some(&footer));
                let _ = done.send(Recorded {
                    report,
                    dir,
                    write_error,
                });
                return;
            }
        }
    }
}

/// Counts `sample` in the live counters of the progress line.
fn count_live(live: &Mutex<LiveStats>, sample: &Sample) {
    let mut live = live.lock().unwrap_or_else(|p| p.into_inner());
    match sample.outcome {
        Outcome::Skipped => live.skipped += 1,
        Outcome::Ok => {
            live.sent += 1;
            live.ok += 1;
            if sample.version.is_some() {
                live.version.clone_from(&sample.version);
            }
        }
        k => {
            live.sent += 1;
            *live.by_kind.entry(k).or_default() += 1;
        }
    }
}
