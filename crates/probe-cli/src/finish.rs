//! The end of every command that measures: the report printed (text or JSON on stdout),
//! the gates applied, and the exit code (0 ok, 1 a threshold breached, 3 not a valid
//! measurement or the prober failed).

use std::process::ExitCode;

use probe_core::{Report, RolloutError, Thresholds};

use crate::args::{Format, OutputArgs};
use crate::CliError;

/// Prints the report and applies the thresholds: the end of every run.
pub fn finish_run(report: &Report, o: &OutputArgs) -> ExitCode {
    match o.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    if let Some(dir) = &o.out {
        eprintln!("rollprobe: wrote {}", dir.join("report.json").display());
    }
    let mut gate = Thresholds {
        max_downtime_ms: o.max_downtime.map(|d| d.as_secs_f64() * 1000.0),
        ..Thresholds::default()
    };
    for limit in &o.max_failures {
        match limit.kind {
            Some(kind) => {
                gate.max_by_kind.insert(kind, limit.max);
            }
            None => gate.max_failures = Some(limit.max),
        }
    }
    let checks = gate.checks(report);
    if let Some(path) = &o.junit {
        let xml = probe_core::output::junit::render(report, &checks);
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("rollprobe: cannot write --junit {}: {e}", path.display());
            return ExitCode::from(3);
        }
    }
    if let Some(reason) = &report.invalid_reason {
        // No gate passes on a measurement that does not hold.
        eprintln!("rollprobe: not a valid measurement: {reason}");
        return ExitCode::from(3);
    }
    let breaches: Vec<&str> = checks.iter().filter_map(|c| c.failure.as_deref()).collect();
    for b in &breaches {
        eprintln!("rollprobe: {b}");
    }
    if breaches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Prints the report of a finished rollout; an output folder that could not be written
/// still prints the complete report, then exits 3.
pub fn finish_rollout(
    result: Result<Report, RolloutError>,
    o: &OutputArgs,
) -> Result<ExitCode, CliError> {
    match result {
        Ok(report) => Ok(finish_run(&report, o)),
        Err(RolloutError::Probe(probe_core::ProbeError::OutputLost {
            report,
            path,
            source,
        })) => {
            finish_run(&report, o);
            Err(CliError::Failed(format!(
                "cannot write {}: {source} (the summary above is complete)",
                path.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}
