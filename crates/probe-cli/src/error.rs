//! `CliError`, the one error a command returns, in a file of its own so that every
//! command imports it from here and none reaches back through the crate root.

/// An error that ends the command, with the exit code it stands for.
#[derive(Debug)]
pub enum CliError {
    /// Bad usage or input: exit 2.
    Usage(String),
    /// The prober itself failed: exit 3.
    Failed(String),
}

impl From<probe_core::RolloutError> for CliError {
    fn from(e: probe_core::RolloutError) -> Self {
        match e {
            probe_core::RolloutError::Usage(m) => CliError::Usage(m),
            probe_core::RolloutError::Probe(p) => p.into(),
            baseline @ probe_core::RolloutError::Baseline(_) => {
                CliError::Failed(baseline.to_string())
            }
        }
    }
}

impl From<probe_core::ProbeError> for CliError {
    fn from(e: probe_core::ProbeError) -> Self {
        match e {
            probe_core::ProbeError::Config(c) => CliError::Usage(c.to_string()),
            other => CliError::Failed(other.to_string()),
        }
    }
}
