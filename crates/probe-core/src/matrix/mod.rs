//! A strategy matrix: many runs of the same rollout under different strategies,
//! one row each, and a summary per strategy (median, min and max downtime).
//!
//! Downtime varies from run to run (scheduling, probe timing, which pod a
//! request lands on), so one run per strategy proves little; the matrix keeps
//! every run and summarises each case by its median and range.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::format::table::aligned_table;
use crate::format::times::seconds;
use crate::report::Report;

mod recommend;
mod surge;

pub use recommend::{CaseSpread, Recommendation};
pub use surge::surge_pods_peak;

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
    /// The peak number of pods above the desired replicas during the rollout
    /// ([`surge_pods_peak`]), when the events tell.
    #[serde(default)]
    pub surge_pods_peak: Option<u32>,
    /// The measurement holds (`Report::is_valid`).
    #[serde(default = "valid_by_default")]
    pub valid: bool,
    /// Why it does not, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<String>,
    /// The run's report.html, relative to the matrix's own files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_html: Option<String>,
    /// Per stream, for a run of several (`--connection both`, several `--from`): its
    /// downtime and failures. The figures above are the run's (first stream's downtime).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streams: BTreeMap<String, StreamFigures>,
}

/// One stream's share of a matrix run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamFigures {
    /// Its downtime, ms.
    pub downtime_ms: f64,
    /// Its target failures.
    pub failed: u64,
}

fn valid_by_default() -> bool {
    true
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
            surge_pods_peak: surge_pods_peak(&r.events),
            valid: r.invalid_reason.is_none(),
            invalid_reason: r.invalid_reason.clone(),
            report_html: None,
            streams: if r.streams.len() > 1 {
                r.streams
                    .iter()
                    .map(|st| {
                        let figures = StreamFigures {
                            downtime_ms: st.downtime.total_ms,
                            failed: st.totals.failed,
                        };
                        (st.name.clone(), figures)
                    })
                    .collect()
            } else {
                BTreeMap::new()
            },
        }
    }

    /// Sets where the run's report.html is, relative to the matrix's files.
    pub fn with_report_html(mut self, path: impl Into<String>) -> MatrixRun {
        self.report_html = Some(path.into());
        self
    }

    /// Lost no request and the measurement holds.
    pub fn lost_nothing(&self) -> bool {
        self.failed == 0 && self.valid
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
    /// Shortest rollout, ms.
    pub rollout_min_ms: Option<f64>,
    /// Longest rollout, ms.
    pub rollout_max_ms: Option<f64>,
    /// The most pods above the desired replicas in any run.
    pub surge_pods_peak: Option<u32>,
    /// Every run was valid and lost no request.
    pub lost_nothing: bool,
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
        self.case_names()
            .into_iter()
            .map(|case| {
                let runs: Vec<&MatrixRun> = self.runs.iter().filter(|r| r.case == case).collect();
                let down: Vec<f64> = runs.iter().map(|r| r.downtime_ms).collect();
                let rollouts: Vec<f64> = runs.iter().filter_map(|r| r.rollout_ms).collect();
                MatrixCase {
                    case: case.to_string(),
                    runs: runs.len(),
                    downtime_median_ms: median(down.clone()).unwrap_or(0.0),
                    downtime_min_ms: down.iter().copied().fold(f64::INFINITY, f64::min),
                    downtime_max_ms: down.iter().copied().fold(0.0, f64::max),
                    failed_median: median(runs.iter().map(|r| r.failed as f64).collect())
                        .unwrap_or(0.0),
                    rollout_median_ms: median(rollouts.clone()),
                    rollout_min_ms: rollouts.iter().copied().reduce(f64::min),
                    rollout_max_ms: rollouts.iter().copied().reduce(f64::max),
                    surge_pods_peak: runs.iter().filter_map(|r| r.surge_pods_peak).max(),
                    lost_nothing: runs.iter().all(|r| r.lost_nothing()),
                }
            })
            .collect()
    }

    /// What the matrix recommends, by the one rule of [`CaseSpread::beats`]: a
    /// case whose worst valid run beats every other case's best in downtime and
    /// failures (or, resting on single runs, that lost nothing where every other
    /// lost something). Latency and rollout speed never decide. `None` with fewer
    /// than two cases.
    ///
    /// ```
    /// # fn demo(m: &probe_core::Matrix) {
    /// if let Some(r) = m.recommendation() {
    ///     println!("{}", r.line());
    /// }
    /// # }
    /// ```
    pub fn recommendation(&self) -> Option<Recommendation> {
        Recommendation::among(
            self.case_names()
                .into_iter()
                .map(|case| CaseSpread::of(case, &self.runs))
                .collect(),
        )
    }

    /// The recommendation as the text summary's last line.
    pub fn recommendation_line(r: &Recommendation) -> String {
        r.line()
    }

    /// The cases, in the order they first ran.
    fn case_names(&self) -> Vec<&str> {
        let mut order: Vec<&str> = Vec::new();
        for r in &self.runs {
            if !order.contains(&r.case.as_str()) {
                order.push(&r.case);
            }
        }
        order
    }

    /// Every failure kind of any run, in the order of the README's table.
    pub fn kinds(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.runs.iter().flat_map(|r| r.failures.keys()).collect();
        let rank = |k: &str| {
            crate::outcome::Outcome::ALL
                .iter()
                .position(|o| o.as_str() == k)
                .unwrap_or(usize::MAX)
        };
        let mut kinds: Vec<String> = set.into_iter().cloned().collect();
        kinds.sort_by_key(|k| (rank(k), k.clone()));
        kinds
    }

    /// The matrix of any reports, as `rollprobe compare` sees them: a label
    /// `CASE#N` (as the matrix labels its runs) is run N of CASE; any other label
    /// is a case of its own. `report_html` is each run's page, if known.
    ///
    /// ```
    /// # fn demo(a: probe_core::Report, b: probe_core::Report) {
    /// let m = probe_core::Matrix::from_reports(&[(a, None), (b, None)]);
    /// println!("{}", m.summary_text());
    /// # }
    /// ```
    pub fn from_reports(reports: &[(Report, Option<String>)]) -> Matrix {
        Matrix::from_report_refs(reports.iter().map(|(r, html)| (r, html.clone())))
    }

    /// [`Matrix::from_reports`] over borrowed reports.
    pub(crate) fn from_report_refs<'a>(
        reports: impl IntoIterator<Item = (&'a Report, Option<String>)>,
    ) -> Matrix {
        let mut m = Matrix::default();
        for (i, (r, html)) in reports.into_iter().enumerate() {
            let label = r.label.clone().unwrap_or_else(|| format!("run{}", i + 1));
            let (case, n) = match label.rsplit_once('#') {
                Some((case, n)) if !case.is_empty() => match n.parse::<u32>() {
                    Ok(n) => (case.to_string(), Some(n)),
                    Err(_) => (label.clone(), None),
                },
                _ => (label.clone(), None),
            };
            let n =
                n.unwrap_or_else(|| m.runs.iter().filter(|x| x.case == case).count() as u32 + 1);
            let mut row = MatrixRun::from_report(&case, n, r);
            row.report_html = html;
            m.runs.push(row);
        }
        m
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
            "surge_pods_peak",
            "p99_ms",
            "valid",
        ];
        header.extend(kinds.iter().map(String::as_str));
        let streams: BTreeSet<&String> = self.runs.iter().flat_map(|r| r.streams.keys()).collect();
        let stream_columns: Vec<String> = streams
            .iter()
            .flat_map(|s| [format!("{s}_downtime_ms"), format!("{s}_failed")])
            .collect();
        header.extend(stream_columns.iter().map(String::as_str));
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
                r.surge_pods_peak.map(|v| v.to_string()).unwrap_or_default(),
                r.p99_ms.to_string(),
                r.valid.to_string(),
            ];
            row.extend(
                kinds
                    .iter()
                    .map(|k| r.failures.get(k).copied().unwrap_or(0).to_string()),
            );
            for s in &streams {
                match r.streams.get(*s) {
                    Some(f) => row.extend([f.downtime_ms.to_string(), f.failed.to_string()]),
                    None => row.extend([String::new(), String::new()]),
                }
            }
            let _ = w.write_record(&row);
        }
        String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
    }

    /// matrix.json: the runs, the summary and the recommendation line (`null`
    /// with fewer than two cases).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&serde_json::json!({
            "schema": "rollprobe.matrix/v1",
            "runs": self.runs,
            "summary": self.summary(),
            "recommendation": self.recommendation().map(|r| r.line()),
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
            "peak extra pods",
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
                c.surge_pods_peak
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]);
        }
        let mut text = aligned_table(&rows, false);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        // The table's figures include them: say which are the prober's.
        for r in self.runs.iter().filter(|r| !r.valid) {
            let reason = r.invalid_reason.as_deref().unwrap_or("the run says so");
            let _ = writeln!(
                text,
                "{} run {}: not a valid measurement: {reason}",
                r.case, r.run
            );
        }
        if let Some(r) = self.recommendation() {
            text.push_str(&r.line());
            text.push('\n');
        }
        text
    }
}

#[cfg(test)]
impl MatrixRun {
    /// A valid run of 100 requests whose rollout took `n` s, for the tests.
    pub(crate) fn for_tests(case: &str, n: u32, down: f64, failed: u64) -> MatrixRun {
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
            surge_pods_peak: Some(n),
            valid: true,
            invalid_reason: None,
            report_html: None,
            streams: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(case: &str, n: u32, down: f64, failed: u64) -> MatrixRun {
        MatrixRun::for_tests(case, n, down, failed)
    }

    #[test]
    fn matrix_csv_has_downtime_and_failed_per_stream_of_multi_stream_runs() {
        let mut both = run("rolling:1/0", 1, 40.0, 2);
        both.streams = [
            (
                "local-fresh".to_string(),
                StreamFigures {
                    downtime_ms: 40.0,
                    failed: 2,
                },
            ),
            (
                "local-keepalive".to_string(),
                StreamFigures {
                    downtime_ms: 0.0,
                    failed: 0,
                },
            ),
        ]
        .into();
        let m = Matrix {
            runs: vec![both, run("recreate", 1, 900.0, 45)],
        };
        let csv = m.to_csv();
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert!(
            header.ends_with(
                "local-fresh_downtime_ms,local-fresh_failed,local-keepalive_downtime_ms,local-keepalive_failed"
            ),
            "{header}"
        );
        assert!(lines.next().unwrap().ends_with(",40,2,0,0"), "{csv}");
        // A one-stream run leaves the per-stream cells empty.
        assert!(lines.next().unwrap().ends_with(",,,,"), "{csv}");
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
        assert!(csv.starts_with("case,run,sent,failed,availability,downtime_ms,longest_ms,rollout_ms,surge_pods_peak,p99_ms,valid,connection_refused\n"), "{csv}");
        assert_eq!(csv.lines().count(), 6);
        assert!(m
            .summary_text()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("recreate"));
    }

    fn with_rollout(mut r: MatrixRun, ms: f64, surge: u32) -> MatrixRun {
        r.rollout_ms = Some(ms);
        r.surge_pods_peak = Some(surge);
        r
    }

    #[test]
    fn the_summary_recommends_by_the_spread_never_by_rollout_speed() {
        let m = Matrix {
            runs: vec![
                // The fastest rollout, but it lost requests in one of its runs.
                with_rollout(run("recreate", 1, 0.0, 0), 4000.0, 0),
                with_rollout(run("recreate", 2, 3000.0, 150), 4000.0, 0),
                with_rollout(run("rolling:1/0", 1, 0.0, 0), 20_000.0, 1),
                with_rollout(run("rolling:1/0", 2, 0.0, 0), 22_000.0, 2),
                with_rollout(run("rolling:100%/0%", 1, 0.0, 0), 9000.0, 3),
                with_rollout(run("rolling:100%/0%", 2, 0.0, 0), 11_000.0, 4),
            ],
        };
        // Two cases lost nothing in every run: neither is better than the other,
        // whatever their rollout took.
        let r = m.recommendation().unwrap();
        assert_eq!(r.picked(), None, "{}", r.line());
        let text = m.summary_text();
        assert!(
            text.lines().last().unwrap().starts_with(
                "recommendation: no case is better beyond the run-to-run spread (recreate 0.000 s–3.000 s downtime, 0–150 failed (2 runs); rolling:1/0"
            ),
            "{text}"
        );
        assert!(
            text.lines()
                .last()
                .unwrap()
                .ends_with("rests on 6 valid runs)"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(json["recommendation"].as_str(), text.lines().last());
    }

    #[test]
    fn the_summary_names_each_invalid_run_and_why() {
        let mut m = Matrix {
            runs: vec![
                run("recreate", 1, 5000.0, 250),
                run("rolling:1/0", 1, 0.0, 0),
            ],
        };
        m.runs[1].valid = false;
        m.runs[1].invalid_reason = Some("no request was sent".into());
        let text = m.summary_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[3], "rolling:1/0 run 1: not a valid measurement: no request was sent",
            "{text}"
        );
        assert!(
            lines[4].starts_with("recommendation: no case is better"),
            "{text}"
        );
        let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(json["runs"][1]["invalid_reason"], "no request was sent");
        assert!(json["runs"][0].get("invalid_reason").is_none());
    }

    #[test]
    fn disjoint_cases_get_a_pick_and_a_single_case_gets_none() {
        let m = Matrix {
            runs: vec![
                run("recreate", 1, 5000.0, 250),
                run("recreate", 2, 5200.0, 260),
                run("rolling:25%/25%", 1, 40.0, 2),
                run("rolling:25%/25%", 2, 0.0, 0),
                run("rolling:25%/25%", 3, 90.0, 5),
            ],
        };
        let r = m.recommendation().unwrap();
        assert_eq!(r.picked().map(|c| c.case.as_str()), Some("rolling:25%/25%"));
        let line = m.summary_text().lines().last().unwrap().to_string();
        assert!(
            line.starts_with(
                "recommendation: rolling:25%/25% (its worst run beats every other case's best"
            ) && line.ends_with("rests on 5 valid runs)"),
            "{line}"
        );
        assert_eq!(Matrix::default().recommendation(), None);
        let one = Matrix {
            runs: vec![run("recreate", 1, 5000.0, 250)],
        };
        assert_eq!(one.recommendation(), None);
        assert!(!one.summary_text().contains("recommendation"));
    }
}
