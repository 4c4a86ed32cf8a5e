//! The probe options every command shares, turned into a validated configuration
//! once, before anything starts (bad values are exit 2).

use std::path::Path;

use probe_core::{CaFile, ProbeConfig, Target};

use crate::args::{OutputArgs, ProbeArgs};
use crate::error::CliError;

/// Turns the parsed options into a validated configuration (exit 2 on error).
pub fn probe_config(url: &str, p: &ProbeArgs, o: &OutputArgs) -> Result<ProbeConfig, CliError> {
    crate::finish::check_failure_limits(&o.max_failures)?;
    let target = Target::parse(url).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut c = ProbeConfig::new(target);
    c.rate = p.rate;
    c.connection = p.connection;
    c.timeout = p.timeout;
    c.connect_timeout = p.connect_timeout;
    c.max_in_flight = p.max_in_flight.unwrap_or(0);
    c.expect_status = p.expect_status.clone();
    c.version_from = p.version_from.clone();
    c.pod_from = p.pod_from.clone();
    c.request_id = !p.no_request_id;
    c.method = p.method.clone();
    c.headers = p.headers.clone();
    c.body = p.data.clone();
    c.label = o.label.clone();
    c.metrics_addr = o.metrics_addr;
    c.resolve = p.resolve.clone();
    if let Some(path) = &p.cacert {
        c.cacert = Some(CaFile::load(path).map_err(|e| CliError::Usage(e.to_string()))?);
    }
    c.insecure = p.insecure;
    c.validate().map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(c)
}

/// In the lab every pod names itself in an `x-pod-name` header: read it, so that the
/// report lists the pods that answered, unless `--pod-from` says otherwise.
pub fn lab_pod_from(config: &mut ProbeConfig) {
    if config.pod_from.is_none() {
        config.pod_from = Some(probe_core::VersionSource::Header(
            probe_lab::POD_HEADER.into(),
        ));
    }
}

/// What an output folder will hold: one run, or a matrix (one run folder per case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    /// `run`, `lab`, `merge`: the run's files in the folder itself.
    Run,
    /// `matrix`: matrix files, and a run folder per case and repeat.
    Matrix,
}

/// Checks, before probing, that `dir` can be written and holds no earlier run: a run's
/// samples are never overwritten silently. With `force` the earlier run's files (and,
/// for a matrix, its run folders) are removed first, so nothing stale is left beside
/// the new run.
pub fn check_new_out_dir(dir: &Path, force: bool, kind: OutKind) -> Result<(), CliError> {
    let held = earlier_runs(dir, kind);
    if let Some(first) = held.first() {
        if !force {
            return Err(CliError::Usage(format!(
                "--out {} already holds a run ({}): choose a new folder, or add --force to replace it",
                dir.display(),
                first.display()
            )));
        }
        for path in &held {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            removed.map_err(|e| {
                CliError::Usage(format!("--force: cannot remove {}: {e}", path.display()))
            })?;
        }
    }
    check_out_dir(dir)
}

/// The files of an earlier run in `dir`, and for a matrix its sub-folders that hold a run.
fn earlier_runs(dir: &Path, kind: OutKind) -> Vec<std::path::PathBuf> {
    let mut found: Vec<_> = probe_core::output_file_names()
        .into_iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect();
    let entries = match kind {
        OutKind::Matrix => std::fs::read_dir(dir).ok(),
        OutKind::Run => None,
    };
    if let Some(entries) = entries {
        found.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.join(probe_core::RUN_FILE).is_file()),
        );
    }
    found
}

/// Checks that the output folder can be written, before probing.
pub fn check_out_dir(dir: &Path) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::Usage(format!("cannot write to --out {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe_file = dir.join(".rollprobe-write-test");
    std::fs::write(&probe_file, b"").map_err(fail)?;
    let _ = std::fs::remove_file(probe_file);
    Ok(())
}
