//! A strategy matrix: many runs of the same rollout under different strategies,
//! one row each, and a summary per strategy (median, min and max downtime).
//!
//! Downtime varies from run to run (scheduling, probe timing, which pod a
//! request lands on), so one run per strategy proves little; the matrix keeps
//! every run and summarises each case by its median and range.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::output::fmt::seconds;
use crate::output::table::aligned_table;
use crate::report::Report;

pub(crate) mod run;

/// One run of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixRun {
    /// The strategy, e.g. `recreate` or `rolling:25%/25%`.
    pub case: String,
    /// 1-based repetition.
    pub run: u32,
    /// Requests sent.
    pub sent: u64,
    /// Target failures.
    pub failed: u64,
    /// ok / (sent - local).
    pub availability: Option<f64>,
    /// Total downtime, ms.
    pub downtime_ms: f64,
    /// Longest outage window, ms.
    pub longest_ms: f64,
    /// From `rollout_start` to `rollout_complete`, ms, when both were seen.
    pub rollout_ms: Option<f64>,
    /// p99 latency of ok answers, ms.
    pub p99_ms: f64,
    /// Failures by kind.
    pub failures: BTreeMap<String, u64>,
}

impl MatrixRun {
    /// The row of one run's report.
    ///
    /// ```
    /// # fn demo(report: &probe_core::Report) {
    /// let row = probe_core::MatrixRun::from_report("recreate", 1, report);
    /// println!("{} lost {} ms", row.case, row.downtime_ms);
    /// # }
    /// ```
    pub fn from_report(case: &str, run: u32, r: &Report) -> MatrixRun {
        let start = r.events.iter().find(|e| e.kind == "rollout_start");
        let rollout_ms = start.and_then(|s| {
            r.events
                .iter()
                .find(|e| e.kind == "rollout_complete" && e.at_ms >= s.at_ms)
                .map(|c| c.at_ms - s.at_ms)
        });
        MatrixRun {
            case: case.to_string(),
            run,
            sent: r.totals.sent,
            failed: r.totals.failed,
            availability: r.totals.availability,
            downtime_ms: r.downtime.total_ms,
            longest_ms: r.downtime.longest_ms,
            rollout_ms,
            p99_ms: r.latency_ms.p99,
            failures: r.failures.clone(),
        }
    }
}

/// The summary of one case over its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixCase {
    /// The strategy.
    pub case: String,
    /// How many runs.
    pub runs: usize,
    /// Median downtime, ms.
    pub downtime_median_ms: f64,
    /// Smallest downtime, ms.
    pub downtime_min_ms: f64,
    /// Largest downtime, ms.
    pub downtime_max_ms: f64,
    /// Median of failed requests.
    pub failed_median: f64,
    /// Median rollout duration, ms (runs where it was seen).
    pub rollout_median_ms: Option<f64>,
}

/// All runs of a matrix, in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// Every run.
    pub runs: Vec<MatrixRun>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Matrix {
    /// One summary per case, in the order the cases first ran.
    pub fn summary(&self) -> Vec<MatrixCase> {
        let mut order: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !order.contains(&r.case.as_str()) {
                order.push(&r.case);
            }
        }
        order
            .into_iter()
            .map(|case| {
                let runs: Vec<&MatrixRun> = self.runs.iter().filter(|r| r.case == case).collect();
                let down: Vec<f64> = runs.iter().map(|r| r.downtime_ms).collect();
                MatrixCase {
                    case: case.to_string(),
                    runs: runs.len(),
                    downtime_median_ms: median(down.clone()).unwrap_or(0.0),
                    downtime_min_ms: down.iter().copied().fold(f64::INFINITY, f64::min),
                    downtime_max_ms: down.iter().copied().fold(0.0, f64::max),
                    failed_median: median(runs.iter().map(|r| r.failed as f64).collect())
                        .unwrap_or(0.0),
                    rollout_median_ms: median(runs.iter().filter_map(|r| r.rollout_ms).collect()),
                }
            })
            .collect()
    }

    fn kinds(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.runs.iter().flat_map(|r| r.failures.keys()).collect();
        set.into_iter().cloned().collect()
    }

    /// matrix.csv: one row per run, a column per failure kind.
    pub fn to_csv(&self) -> String {
        let kinds = self.kinds();
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = vec![
            "case",
            "run",
            "sent",
            "failed",
            "availability",
            "downtime_ms",
            "longest_ms",
            "rollout_ms",
            "p99_ms",
        ];
        header.extend(kinds.iter().map(String::as_str));
        let _ = w.write_record(&header);
        for r in &self.runs {
            let mut row = vec![
                r.case.clone(),
                r.run.to_string(),
                r.sent.to_string(),
                r.failed.to_string(),
                r.availability.map(|a| a.to_string()).unwrap_or_default(),
                r.downtime_ms.to_string(),
                r.longest_ms.to_string(),
                r.rollout_ms.map(|v| v.to_string()).unwrap_or_default(),
                r.p99_ms.to_string(),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| r.failures.get(k).copied().unwrap_or(0).to_string()),
            );
            let _ = w.write_record(&row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// matrix.json: the runs and the summary.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({
            "schema": "rollprobe.matrix/v1",
            "runs": self.runs,
            "summary": self.summary(),
        }))
        .expect("a matrix always serializes")
    }

    /// The summary table for people.
    pub fn summary_text(&self) -> String {
        let mut rows = vec![[
            "case",
            "runs",
            "downtime median",
            "min",
            "max",
            "failed median",
            "rollout median",
        ]
        .map(String::from)
        .to_vec()];
        for c in self.summary() {
            rows.push(vec![
                c.case.clone(),
                c.runs.to_string(),
                seconds(c.downtime_median_ms),
                seconds(c.downtime_min_ms),
                seconds(c.downtime_max_ms),
                format!("{}", c.failed_median),
                c.rollout_median_ms
                    .map(seconds)
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        aligned_table(&rows, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(case: &str, n: u32, down: f64, failed: u64) -> MatrixRun {
        MatrixRun {
            case: case.into(),
            run: n,
            sent: 100,
            failed,
            availability: Some(1.0 - failed as f64 / 100.0),
            downtime_ms: down,
            longest_ms: down,
            rollout_ms: Some(1000.0 * n as f64),
            p99_ms: 1.0,
            failures: if failed > 0 {
                [("connection_refused".to_string(), failed)].into()
            } else {
                BTreeMap::new()
            },
        }
    }

    #[test]
    fn summary_takes_median_min_max_per_case() {
        let m = Matrix {
            runs: vec![
                run("recreate", 1, 5000.0, 250),
                run("rolling:1/0", 1, 0.0, 0),
                run("recreate", 2, 7000.0, 350),
                run("recreate", 3, 6000.0, 300),
                run("rolling:1/0", 2, 40.0, 2),
            ],
        };
        let s = m.summary();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].case, "recreate");
        assert_eq!(
            (
                s[0].downtime_median_ms,
                s[0].downtime_min_ms,
                s[0].downtime_max_ms
            ),
            (6000.0, 5000.0, 7000.0)
        );
        assert_eq!(s[0].failed_median, 300.0);
        assert_eq!(s[1].downtime_median_ms, 20.0);
        assert_eq!(s[1].rollout_median_ms, Some(1500.0));
        let csv = m.to_csv();
        assert!(csv.starts_with("case,run,sent,failed,availability,downtime_ms,longest_ms,rollout_ms,p99_ms,connection_refused\n"), "{csv}");
        assert_eq!(csv.lines().count(), 6);
        assert!(m
            .summary_text()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("recreate"));
    }
}
