//! The probe options every command shares, turned into a validated configuration
//! once, before anything starts (bad values are exit 2).

use std::path::Path;

use probe_core::{CaFile, ProbeConfig, Target};

use crate::args::{OutputArgs, ProbeArgs};
use crate::CliError;

/// Turns the parsed options into a validated configuration (exit 2 on error).
pub fn probe_config(url: &str, p: &ProbeArgs, o: &OutputArgs) -> Result<ProbeConfig, CliError> {
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
