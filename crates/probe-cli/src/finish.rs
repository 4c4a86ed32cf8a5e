//! The end of every command that measures: the report printed (text or JSON on stdout),
//! the gates applied, and the exit code (0 ok, 1 a threshold breached, 3 not a valid
//! measurement or the prober failed).

use std::path::Path;
use std::time::Duration;

use probe_core::{Report, RolloutError, Thresholds};

use crate::args::{FailureLimit, Format, OutputArgs};
use crate::error::CliError;
use crate::exit::Exit;

/// Prints the report and applies the thresholds: the end of every run.
pub fn finish_run(report: &Report, o: &OutputArgs) -> Exit {
    match o.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    if let Some(dir) = &o.out {
        eprintln!("rollprobe: wrote {}", dir.join("report.json").display());
    }
    let checks = thresholds(&o.max_failures, o.max_downtime).checks(report);
    if let Some(path) = &o.junit {
        let xml = probe_core::output::junit::render(report, &checks);
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("rollprobe: cannot write --junit {}: {e}", path.display());
            return Exit::Failed;
        }
    }
    if let Some(reason) = &report.invalid_reason {
        // No gate passes on a measurement that does not hold.
        eprintln!("rollprobe: not a valid measurement: {reason}");
        return Exit::Failed;
    }
    let breaches: Vec<&str> = checks.iter().filter_map(|c| c.failure.as_deref()).collect();
    for b in &breaches {
        eprintln!("rollprobe: {b}");
    }
    if breaches.is_empty() {
        Exit::Ok
    } else {
        Exit::Breached
    }
}

/// Refuses, before probing, a `--max-failures` given twice for the same kind (or twice
/// without a kind): which of the two limits holds would be a guess.
pub fn check_failure_limits(limits: &[FailureLimit]) -> Result<(), CliError> {
    let mut seen = std::collections::BTreeSet::new();
    for limit in limits {
        if !seen.insert(limit.kind) {
            let what = limit
                .kind
                .map(|k| format!("--max-failures {k}=N"))
                .unwrap_or_else(|| "--max-failures N".into());
            return Err(CliError::Usage(format!(
                "{what} is given twice: give each limit once"
            )));
        }
    }
    Ok(())
}

/// The gate of `--max-failures` and `--max-downtime`.
pub fn thresholds(max_failures: &[FailureLimit], max_downtime: Option<Duration>) -> Thresholds {
    let mut gate = Thresholds {
        max_downtime_ms: max_downtime.map(|d| d.as_secs_f64() * 1000.0),
        ..Thresholds::default()
    };
    for limit in max_failures {
        match limit.kind {
            Some(kind) => {
                gate.max_by_kind.insert(kind, limit.max);
            }
            None => gate.max_failures = Some(limit.max),
        }
    }
    gate
}

/// Applies the gate to every run of a matrix, writes JUnit (one testsuite per run)
/// and gives the exit code: 3 if a run is not a valid measurement, else 1 if a run
/// breached a threshold, else 0. Each breach is one line naming its run.
pub fn finish_matrix(reports: &[Report], gate: &Thresholds, junit: Option<&Path>) -> Exit {
    let runs: Vec<(&Report, Vec<probe_core::GateCheck>)> =
        reports.iter().map(|r| (r, gate.checks(r))).collect();
    if let Some(path) = junit {
        let xml = probe_core::output::junit::render_suites(&runs);
        if let Err(e) = std::fs::write(path, xml) {
            eprintln!("rollprobe: cannot write --junit {}: {e}", path.display());
            return Exit::Failed;
        }
    }
    let mut invalid = false;
    let mut breached = false;
    for (report, checks) in &runs {
        let name = report.label.as_deref().unwrap_or("run");
        if let Some(reason) = &report.invalid_reason {
            eprintln!("rollprobe: {name}: not a valid measurement: {reason}");
            invalid = true;
            continue;
        }
        for failure in checks.iter().filter_map(|c| c.failure.as_deref()) {
            eprintln!("rollprobe: {name}: {failure}");
            breached = true;
        }
    }
    if invalid {
        Exit::Failed
    } else if breached {
        Exit::Breached
    } else {
        Exit::Ok
    }
}

/// Prints the report of a finished rollout; an output folder that could not be written
/// still prints the complete report, then exits 3.
pub fn finish_rollout(
    result: Result<Report, RolloutError>,
    o: &OutputArgs,
) -> Result<Exit, CliError> {
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
