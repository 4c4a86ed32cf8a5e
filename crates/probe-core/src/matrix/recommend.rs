//! The one rule by which `rollprobe matrix` and `rollprobe compare` prefer a case.
//!
//! Downtime and failures vary from run to run (scheduling, probe timing, which pod
//! a request lands on), so a case that did better in the runs at hand may only
//! have been luckier. A case is preferred over another only when that cannot be
//! the explanation: its worst valid repeat beats the other's best (the ranges do
//! not overlap), or, when a case rests on a single run and no spread is known,
//! only when it lost nothing and the other lost something in every run. Only
//! downtime and failures count: latency and rollout speed are shown, never the
//! reason for a pick. Invalid runs measure the prober, not the target, so they
//! count for nothing and a case without a valid run is never picked.

use crate::format::times::seconds;

use super::MatrixRun;

/// One case's valid runs, as the rule sees them: the range of their downtime and
/// failures.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSpread {
    /// The case's name.
    pub case: String,
    /// Its valid runs: the ones the ranges are over.
    pub valid_runs: usize,
    /// Its runs that are not a valid measurement (left out of the ranges).
    pub invalid_runs: usize,
    /// Least and most downtime of a valid run, ms.
    pub downtime_ms: (f64, f64),
    /// Fewest and most failed requests of a valid run.
    pub failed: (u64, u64),
}

impl CaseSpread {
    /// The spread of `case` over the runs of it in `runs`.
    ///
    /// ```
    /// let spread = probe_core::CaseSpread::of("recreate", &[]);
    /// assert_eq!(spread.valid_runs, 0);
    /// ```
    pub fn of(case: &str, runs: &[MatrixRun]) -> CaseSpread {
        let of_case = runs.iter().filter(|r| r.case == case);
        let valid: Vec<&MatrixRun> = of_case.clone().filter(|r| r.valid).collect();
        let downtime = valid.iter().map(|r| r.downtime_ms);
        let failed = valid.iter().map(|r| r.failed);
        CaseSpread {
            case: case.to_string(),
            valid_runs: valid.len(),
            invalid_runs: of_case.filter(|r| !r.valid).count(),
            downtime_ms: (
                downtime.clone().reduce(f64::min).unwrap_or(0.0),
                downtime.reduce(f64::max).unwrap_or(0.0),
            ),
            failed: (failed.clone().min().unwrap_or(0), failed.max().unwrap_or(0)),
        }
    }

    /// Whether one of the two cases rests on a single valid run, so that its
    /// run-to-run spread is unknown and only "lost nothing against lost
    /// something" can tell them apart.
    fn single_run(&self, other: &CaseSpread) -> bool {
        self.valid_runs < 2 || other.valid_runs < 2
    }

    /// Whether this case is better than `other` beyond the run-to-run spread:
    /// with at least two valid runs each, its worst run is no worse than the
    /// other's best in both downtime and failures, and better in one; otherwise,
    /// it lost nothing in every run and the other lost something in every run.
    /// A case without a valid run neither beats nor is beaten.
    ///
    /// ```
    /// # use probe_core::CaseSpread;
    /// let spread = |runs, down, failed| CaseSpread {
    ///     case: String::new(), valid_runs: runs, invalid_runs: 0, downtime_ms: down, failed,
    /// };
    /// // 30 ms against 60 ms, one run each: noise, not a finding.
    /// assert!(!spread(1, (30.0, 30.0), (3, 3)).beats(&spread(1, (60.0, 60.0), (6, 6))));
    /// // Two runs each, ranges apart.
    /// assert!(spread(2, (0.0, 40.0), (0, 2)).beats(&spread(2, (900.0, 950.0), (45, 50))));
    /// ```
    pub fn beats(&self, other: &CaseSpread) -> bool {
        if self.valid_runs == 0 || other.valid_runs == 0 {
            return false;
        }
        if self.single_run(other) {
            return self.failed.1 == 0 && other.failed.0 > 0;
        }
        let (worst_down, worst_failed) = (self.downtime_ms.1, self.failed.1);
        let (best_down, best_failed) = (other.downtime_ms.0, other.failed.0);
        worst_down <= best_down
            && worst_failed <= best_failed
            && (worst_down < best_down || worst_failed < best_failed)
    }

    /// "recreate 5.000–5.200 s downtime, 250–260 failed (2 runs)".
    fn range_text(&self) -> String {
        if self.valid_runs == 0 {
            return format!("{} no valid run", self.case);
        }
        format!(
            "{} {}–{} downtime, {}–{} failed ({} run{})",
            self.case,
            seconds(self.downtime_ms.0),
            seconds(self.downtime_ms.1),
            self.failed.0,
            self.failed.1,
            self.valid_runs,
            if self.valid_runs == 1 { "" } else { "s" }
        )
    }
}

/// What the matrix (or a comparison) recommends, by the rule of
/// [`CaseSpread::beats`].
#[derive(Debug, Clone, PartialEq)]
pub enum Recommendation {
    /// `case` beats every other case beyond the run-to-run spread.
    Preferred {
        /// The case picked.
        case: CaseSpread,
        /// Every other case, in the order they ran.
        others: Vec<CaseSpread>,
    },
    /// No case beats every other: the spread of each, in the order they ran.
    WithinSpread(Vec<CaseSpread>),
}

impl Recommendation {
    /// The recommendation among `cases` (in the order they ran); `None` when there
    /// are fewer than two cases, so nothing to choose between.
    ///
    /// ```
    /// assert_eq!(probe_core::Recommendation::among(Vec::new()), None);
    /// ```
    pub fn among(cases: Vec<CaseSpread>) -> Option<Recommendation> {
        if cases.len() < 2 {
            return None;
        }
        let winner = cases.iter().position(|c| {
            cases
                .iter()
                .filter(|o| o.case != c.case)
                .all(|o| c.beats(o))
        });
        Some(match winner {
            Some(i) => {
                let mut others = cases;
                let case = others.remove(i);
                Recommendation::Preferred { case, others }
            }
            None => Recommendation::WithinSpread(cases),
        })
    }

    /// The valid runs the recommendation rests on, over all cases.
    pub fn rests_on(&self) -> usize {
        self.cases().map(|c| c.valid_runs).sum()
    }

    /// The picked case, if any.
    pub fn picked(&self) -> Option<&CaseSpread> {
        match self {
            Recommendation::Preferred { case, .. } => Some(case),
            Recommendation::WithinSpread(_) => None,
        }
    }

    fn cases(&self) -> impl Iterator<Item = &CaseSpread> {
        let (first, rest): (Option<&CaseSpread>, &[CaseSpread]) = match self {
            Recommendation::Preferred { case, others } => (Some(case), others),
            Recommendation::WithinSpread(all) => (None, all),
        };
        first.into_iter().chain(rest)
    }

    /// The recommendation as one line for people: the pick and the runs it rests
    /// on, or that no case is better beyond the spread, with each case's range.
    pub fn line(&self) -> String {
        let runs = self.rests_on();
        let invalid: usize = self.cases().map(|c| c.invalid_runs).sum();
        let rests = format!(
            "rests on {runs} valid run{}{}",
            if runs == 1 { "" } else { "s" },
            if invalid > 0 {
                format!(
                    "; {invalid} invalid run{} not counted",
                    if invalid == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            }
        );
        let others = |cases: &mut dyn Iterator<Item = &CaseSpread>| {
            cases
                .map(CaseSpread::range_text)
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Recommendation::Preferred { case, others: rest } => {
                let why = if rest.iter().any(|o| case.single_run(o)) {
                    "it lost nothing in every run and every other case lost requests in each of its runs; too few runs to know the spread beyond that"
                } else {
                    "its worst run beats every other case's best in downtime and failures"
                };
                format!(
                    "recommendation: {} ({why}: {}, against {}; {rests})",
                    case.case,
                    case.range_text(),
                    others(&mut rest.iter())
                )
            }
            Recommendation::WithinSpread(all) => format!(
                "recommendation: no case is better beyond the run-to-run spread ({}; {rests})",
                others(&mut all.iter())
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(case: &str, runs: &[(f64, u64)]) -> CaseSpread {
        let rows: Vec<MatrixRun> = runs
            .iter()
            .enumerate()
            .map(|(i, &(down, failed))| MatrixRun::for_tests(case, i as u32 + 1, down, failed))
            .collect();
        CaseSpread::of(case, &rows)
    }

    #[test]
    fn overlapping_ranges_pick_no_case() {
        let a = spread("a", &[(0.0, 0), (90.0, 5)]);
        let b = spread("b", &[(40.0, 2), (300.0, 15)]);
        assert!(!a.beats(&b) && !b.beats(&a));
        let r = Recommendation::among(vec![a, b]).unwrap();
        assert_eq!(r.picked(), None);
        assert_eq!(
            r.line(),
            "recommendation: no case is better beyond the run-to-run spread (a 0.000 s–0.090 s downtime, 0–5 failed (2 runs); b 0.040 s–0.300 s downtime, 2–15 failed (2 runs); rests on 4 valid runs)"
        );
    }

    #[test]
    fn disjoint_ranges_pick_the_better_case_and_name_the_run_count() {
        let r = Recommendation::among(vec![
            spread("recreate", &[(5000.0, 250), (5200.0, 260)]),
            spread("rolling", &[(0.0, 0), (40.0, 2), (90.0, 5)]),
        ])
        .unwrap();
        assert_eq!(r.picked().map(|c| c.case.as_str()), Some("rolling"));
        assert_eq!(r.rests_on(), 5);
        let line = r.line();
        assert!(
            line.starts_with("recommendation: rolling (its worst run beats every other case's best in downtime and failures: rolling 0.000 s–0.090 s downtime, 0–5 failed (3 runs), against recreate 5.000 s–5.200 s downtime, 250–260 failed (2 runs); rests on 5 valid runs)"),
            "{line}"
        );
        // Equal downtime ranges, fewer failures: still beyond the spread.
        assert!(spread("a", &[(0.0, 0), (0.0, 0)]).beats(&spread("b", &[(0.0, 1), (0.0, 3)])));
        // A pick must beat every other case, not only one.
        let r = Recommendation::among(vec![
            spread("a", &[(0.0, 0), (10.0, 1)]),
            spread("b", &[(500.0, 20), (600.0, 30)]),
            spread("c", &[(5.0, 0), (8.0, 1)]),
        ])
        .unwrap();
        assert_eq!(r.picked(), None);
    }

    #[test]
    fn one_run_each_picks_only_lost_nothing_against_lost_something() {
        // Issue 24 case 9: one run each, 30 ms apart, both lost requests.
        let r = Recommendation::among(vec![
            spread("slow-p99", &[(30.0, 3)]),
            spread("fast-p99", &[(60.0, 6)]),
        ])
        .unwrap();
        assert_eq!(r.picked(), None, "{}", r.line());
        // Both lost nothing: neither is better.
        let r = Recommendation::among(vec![spread("a", &[(0.0, 0)]), spread("b", &[(0.0, 0)])])
            .unwrap();
        assert_eq!(r.picked(), None);
        // One lost nothing, the other lost something.
        let r = Recommendation::among(vec![spread("a", &[(40.0, 2)]), spread("b", &[(0.0, 0)])])
            .unwrap();
        assert_eq!(r.picked().map(|c| c.case.as_str()), Some("b"));
        assert!(
            r.line().contains("too few runs to know the spread")
                && r.line().ends_with("rests on 2 valid runs)"),
            "{}",
            r.line()
        );
        // A case of one run against one of several: still the single-run rule.
        assert!(!spread("a", &[(10.0, 1)]).beats(&spread("b", &[(900.0, 40), (950.0, 45)])));
    }

    #[test]
    fn an_invalid_run_is_never_picked_even_with_the_least_downtime() {
        let mut rows = vec![
            MatrixRun::for_tests("overloaded", 1, 0.0, 0),
            MatrixRun::for_tests("recreate", 1, 5000.0, 250),
        ];
        rows[0].valid = false;
        let cases: Vec<CaseSpread> = ["overloaded", "recreate"]
            .iter()
            .map(|c| CaseSpread::of(c, &rows))
            .collect();
        assert_eq!(cases[0].valid_runs, 0);
        assert_eq!(cases[0].invalid_runs, 1);
        let r = Recommendation::among(cases).unwrap();
        assert_eq!(r.picked(), None);
        assert!(
            r.line().contains("overloaded no valid run")
                && r.line()
                    .ends_with("rests on 1 valid run; 1 invalid run not counted)"),
            "{}",
            r.line()
        );
        // An invalid repeat is left out of its case's range, not counted as a loss.
        let mut rows = vec![
            MatrixRun::for_tests("a", 1, 0.0, 0),
            MatrixRun::for_tests("a", 2, 0.0, 0),
            MatrixRun::for_tests("a", 3, 9000.0, 400),
            MatrixRun::for_tests("b", 1, 900.0, 40),
            MatrixRun::for_tests("b", 2, 950.0, 45),
        ];
        rows[2].valid = false;
        let a = CaseSpread::of("a", &rows);
        assert_eq!((a.valid_runs, a.downtime_ms), (2, (0.0, 0.0)));
        assert!(a.beats(&CaseSpread::of("b", &rows)));
    }
}
