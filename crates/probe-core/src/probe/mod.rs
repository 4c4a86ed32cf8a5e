//! A running probe: [`ProbeBuilder`], [`Probe`] and [`ProbeHandle`], which wire
//! the schedule (its own thread, see [`crate::schedule`]), the recorder (a task) and, at the end, the
//! output files.
//!
//! Every completed request and every event goes through one channel to the
//! recorder. The channel's sender sits behind a mutex that is held while an
//! event's time is read, so no sample intended after an event can reach the
//! analyzer before it.
//!
//! The recorder returns the report; the probe writes report.json, windows.csv,
//! timeline.csv and report.html after it, so recording never waits on rendering.
//!
//! The files: `builder.rs` ([`ProbeBuilder`], what to probe and from where),
//! `plan.rs` (the run's streams, one per [`VantagePoint`] and connection mode, and
//! the runtimes that stand at each point), `lifecycle.rs` ([`Probe`] and
//! [`ProbeHandle`]: start, events, stop). This file holds what they share: the
//! error, and the writing of a finished report's files.

mod builder;
mod lifecycle;
mod plan;

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::output::export;
pub use crate::record::LiveStats;
use crate::report::Report;
pub use builder::ProbeBuilder;
pub use lifecycle::{Probe, ProbeHandle};
pub use plan::VantagePoint;

/// Why a probe could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing an output file failed during or at the end of the run. The
    /// measurement itself is complete and is kept here, so nothing is lost.
    #[error("cannot write {path}: {source} (the report itself is complete)")]
    OutputLost {
        /// The full report of the run.
        report: Box<Report>,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The probe's own machinery failed.
    #[error("the prober failed: {0}")]
    Internal(String),
}

/// Writes report.json, windows.csv, timeline.csv and report.html for a finished report.
pub fn write_report_files(dir: &Path, report: &Report) -> Result<(), ProbeError> {
    export::write_all(dir, report, export::REPORT_FILES).map_err(|e| ProbeError::Output {
        path: e.path,
        source: e.source,
    })
}
