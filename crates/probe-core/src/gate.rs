//! The CI gate: limits a run must stay within (`--max-failures`,
//! `--max-downtime`), each breach one sentence.

use crate::format::times::duration;
use crate::outcome::Outcome;
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

/// One check of a gate: what was checked, and how it came out.
#[derive(Debug, Clone, PartialEq)]
pub struct GateCheck {
    /// What was checked, e.g. `--max-failures 0` or `measurement valid`.
    pub name: String,
    /// `None` when it passed; otherwise the sentence that says by how much it failed.
    pub failure: Option<String>,
}

impl Thresholds {
    /// Every check of the gate, passed or not: first whether the run is a valid
    /// measurement (no gate passes on one that is not), then whether its trigger (if
    /// any) succeeded and was not cut short by the duration, then each threshold.
    ///
    /// ```
    /// let gate = probe_core::Thresholds { max_failures: Some(0), ..Default::default() };
    /// # let report: Option<probe_core::Report> = None;
    /// # if let Some(report) = report {
    /// for check in gate.checks(&report) {
    ///     println!("{}: {}", check.name, check.failure.as_deref().unwrap_or("passed"));
    /// }
    /// # }
    /// ```
    pub fn checks(&self, r: &Report) -> Vec<GateCheck> {
        let mut out = vec![GateCheck {
            name: "measurement valid".into(),
            failure: r
                .invalid_reason
                .as_ref()
                .map(|reason| format!("not a valid measurement: {reason}")),
        }];
        if let Some(trigger) = &r.trigger {
            // A rollout that did not happen as asked fails the gate, whatever the figures.
            out.push(GateCheck {
                name: "trigger".into(),
                failure: trigger
                    .outcome
                    .fails_gate()
                    .then(|| format!("the trigger failed: {trigger}")),
            });
        }
        if let Some(max) = self.max_failures {
            out.push(GateCheck {
                name: format!("--max-failures {max}"),
                failure: (r.totals.failed > max).then(|| {
                    format!(
                        "threshold breached: {} requests failed, more than --max-failures {max}",
                        r.totals.failed
                    )
                }),
            });
        }
        for (kind, max) in &self.max_by_kind {
            let n = r.failures.get(kind.as_str()).copied().unwrap_or(0);
            out.push(GateCheck {
                name: format!("--max-failures {kind}={max}"),
                failure: (n > *max).then(|| {
                    format!(
                        "threshold breached: {n} requests failed with {kind}, more than --max-failures {kind}={max}"
                    )
                }),
            });
        }
        if let Some(max) = self.max_downtime_ms {
            out.push(GateCheck {
                name: format!("--max-downtime {}", duration(max)),
                failure: (r.downtime.total_ms > max).then(|| {
                    format!(
                        "threshold breached: downtime {} is more than --max-downtime {}",
                        duration(r.downtime.total_ms),
                        duration(max)
                    )
                }),
            });
        }
        out
    }

    /// One sentence per threshold that the report breaches (validity aside).
    pub fn breaches(&self, r: &Report) -> Vec<String> {
        self.checks(r)
            .into_iter()
            .skip(1)
            .filter_map(|c| c.failure)
            .collect()
    }
}
