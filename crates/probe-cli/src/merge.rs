//! `rollprobe merge`: several vantage points' runs as one report, on one clock.

use std::path::Path;

use crate::args::{Format, MergeArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::options::{check_new_out_dir, OutKind};

/// `rollprobe merge`.
pub fn merge(a: MergeArgs) -> Result<Exit, CliError> {
    for run in &a.runs {
        if !run.exists() {
            return Err(CliError::Usage(format!(
                "{} does not exist: give run folders written by `rollprobe run --out`",
                run.display()
            )));
        }
        if run.canonicalize().ok() == a.out.canonicalize().ok() {
            return Err(CliError::Usage(format!(
                "--out {} is one of the inputs: merge into a new folder",
                a.out.display()
            )));
        }
    }
    check_new_out_dir(&a.out, a.force, OutKind::Run)?;
    let inputs: Vec<&Path> = a.runs.iter().map(|p| p.as_path()).collect();
    let report = probe_core::merge_runs(&inputs, &a.out).map_err(|e| {
        if e.is_input() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Failed(e.to_string())
        }
    })?;
    probe_core::write_report_files(&a.out, &report)?;
    match a.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    eprintln!("rollprobe: wrote the merged run to {}", a.out.display());
    Ok(Exit::Ok)
}
