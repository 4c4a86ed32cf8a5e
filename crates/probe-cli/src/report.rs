//! `rollprobe report`: every output rebuilt from a run's recorded samples and events.

use crate::args::{Format, ReportArgs};
use crate::exit::Exit;
use crate::options::check_out_dir;
use crate::CliError;

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
    let report = probe_core::analyze_samples_file(&samples, events)
        .map_err(|e| CliError::Usage(e.to_string()))?;
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
