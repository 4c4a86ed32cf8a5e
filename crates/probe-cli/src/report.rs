//! `rollprobe report`: every output rebuilt from a run's recorded samples and events.

use std::path::Path;

use probe_core::{AccessLog, Report};

use crate::args::{Format, ReportArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::options::check_out_dir;

/// `rollprobe report`.
pub fn report(a: ReportArgs) -> Result<Exit, CliError> {
    let samples = probe_core::samples_path(&a.samples);
    let events_path = a.events.clone().or_else(|| {
        let beside = samples.with_file_name("events.csv");
        beside.is_file().then_some(beside)
    });
    let events = match events_path {
        Some(p) => probe_core::read_events(&p)
            .map_err(|e| CliError::Usage(format!("cannot read events {}: {e}", p.display())))?,
        None => Vec::new(),
    };
    let log = a.access_log.as_deref().map(read_access_log).transpose()?;
    if let Some(log) = &log {
        join_access_log(log, &samples)?;
    }
    let mut report = probe_core::analyze_samples_file(&samples, events)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if log.is_some() {
        count_retries(&mut report, &samples)?;
    }
    match a.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    if let Some(dir) = &a.out {
        check_out_dir(dir)?;
        probe_core::write_report_files(dir, &report)?;
        eprintln!(
            "rollprobe: wrote report.json, windows.csv, timeline.csv and report.html in {}",
            dir.display()
        );
    }
    Ok(Exit::Ok)
}

/// Reads `--access-log`: a missing or unreadable file is bad input (exit 2).
pub fn read_access_log(path: &Path) -> Result<AccessLog, CliError> {
    let log = AccessLog::read(path).map_err(|e| CliError::Usage(e.to_string()))?;
    if log.is_empty() {
        eprintln!(
            "rollprobe: --access-log {} has no line in a rollprobe format ({} lines skipped): see README, \"Access logs\"",
            path.display(),
            log.skipped_lines
        );
    }
    Ok(log)
}

/// Fills the run's samples.csv `upstream` column from the log, in place.
pub fn join_access_log(log: &AccessLog, samples: &Path) -> Result<(), CliError> {
    let joined = log
        .join_samples_file(samples)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!(
        "rollprobe: joined {joined} samples to the access log ({} requests in it)",
        log.len()
    );
    Ok(())
}

/// Counts on each window the requests the proxy retried, from the joined samples.
pub fn count_retries(report: &mut Report, samples: &Path) -> Result<(), CliError> {
    probe_core::count_proxy_retries(report, samples).map_err(|e| CliError::Failed(e.to_string()))
}
