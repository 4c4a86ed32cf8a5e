//! The CI gate: limits a run must stay within (`--max-failures`,
//! `--max-downtime`), each breach one sentence.

use crate::outcome::Outcome;
use crate::output::fmt::duration;
use crate::report::Report;

/// Limits that turn a run into a CI gate.
///
/// ```
/// let gate = probe_core::Thresholds { max_failures: Some(0), ..Default::default() };
/// # let report: Option<probe_core::Report> = None;
/// # if let Some(report) = report {
/// for breach in gate.breaches(&report) { eprintln!("{breach}"); }
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// Most target failures allowed.
    pub max_failures: Option<u64>,
    /// Most downtime allowed, ms.
    pub max_downtime_ms: Option<f64>,
    /// Most failures allowed of one kind.
    pub max_by_kind: std::collections::BTreeMap<Outcome, u64>,
}

impl Thresholds {
    /// One sentence per threshold that the report breaches.
    pub fn breaches(&self, r: &Report) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(max) = self.max_failures {
            if r.totals.failed > max {
                out.push(format!(
                    "threshold breached: {} requests failed, more than --max-failures {max}",
                    r.totals.failed
                ));
            }
        }
        for (kind, max) in &self.max_by_kind {
            let n = r.failures.get(kind.as_str()).copied().unwrap_or(0);
            if n > *max {
                out.push(format!(
                    "threshold breached: {n} requests failed with {kind}, more than --max-failures {kind}={max}"
                ));
            }
        }
        if let Some(max) = self.max_downtime_ms {
            if r.downtime.total_ms > max {
                out.push(format!(
                    "threshold breached: downtime {} is more than --max-downtime {}",
                    duration(r.downtime.total_ms),
                    duration(max)
                ));
            }
        }
        out
    }
}
