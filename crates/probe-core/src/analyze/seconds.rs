//! The per-second series: one small row per second of intended time.

use super::buckets::{kind_index, Bucket};
use super::latency::Latencies;
use crate::outcome::Outcome;
use crate::report::{SecondStats, VersionSeen};

/// Versions remembered for one second: more than this in a second means the
/// version source is not a version (a body that changes every answer), and
/// the series must not grow with it.
pub(super) const MAX_VERSIONS_PER_SECOND: usize = 16;

/// One second of intended time: the strip's [`Bucket`] counts, the versions
/// that answered and the latency percentiles of its ok answers.
#[derive(Clone, Default)]
pub(super) struct Second {
    counts: Bucket,
    pub(super) versions: Vec<usize>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// The per-second series. Samples reach it in send order, so seconds complete
/// one after the other: a single latency histogram serves the open second and
/// is reduced to its two percentiles when the next second begins. Memory is one
/// small row per second of the run, never a list of samples.
pub(super) struct Seconds {
    pub(super) rows: Vec<Second>,
    open: usize,
    latency: Latencies,
}

impl Seconds {
    pub(super) fn new() -> Seconds {
        Seconds {
            rows: Vec::new(),
            open: 0,
            latency: Latencies::new(),
        }
    }

    fn row(&mut self, intended_ms: f64) -> (usize, &mut Second) {
        let index = (intended_ms / 1000.0).max(0.0) as usize;
        if index > self.open {
            self.close_open();
            self.open = index;
        }
        if self.rows.len() <= index {
            self.rows.resize(index + 1, Second::default());
        }
        (index, &mut self.rows[index])
    }

    pub(super) fn count(&mut self, intended_ms: f64, outcome: Outcome) {
        let (_, row) = self.row(intended_ms);
        row.counts.sent += 1;
        row.counts.by_kind[kind_index(outcome)] += 1;
    }

    pub(super) fn ok_answer(
        &mut self,
        intended_ms: f64,
        latency_ms: Option<f64>,
        version: Option<usize>,
    ) {
        let open = self.open;
        let (index, row) = self.row(intended_ms);
        if let Some(v) = version {
            if !row.versions.contains(&v) && row.versions.len() < MAX_VERSIONS_PER_SECOND {
                row.versions.push(v);
            }
        }
        // A second already reduced to its percentiles cannot take more values;
        // send order makes that a corrupt file's case only.
        if let (Some(ms), true) = (latency_ms, index >= open) {
            self.latency.record(ms);
        }
    }

    fn close_open(&mut self) {
        if let Some(row) = self.rows.get_mut(self.open) {
            if !self.latency.is_empty() {
                let l = self.latency.summary();
                row.p50_ms = Some(l.p50);
                row.p99_ms = Some(l.p99);
            }
        }
        self.latency.reset();
    }

    pub(super) fn finish(mut self, versions: &[VersionSeen]) -> Vec<SecondStats> {
        self.close_open();
        self.rows
            .into_iter()
            .enumerate()
            .map(|(second, row)| SecondStats {
                second: second as u64,
                sent: u64::from(row.counts.sent),
                ok: u64::from(row.counts.by_kind[kind_index(Outcome::Ok)]),
                failures: Outcome::ALL
                    .iter()
                    .zip(row.counts.by_kind.iter())
                    .filter(|(k, n)| k.is_failure() && **n > 0)
                    .map(|(k, n)| (k.as_str().to_string(), u64::from(*n)))
                    .collect(),
                versions: row
                    .versions
                    .iter()
                    .map(|&i| versions[i].version.clone())
                    .collect(),
                p50_ms: row.p50_ms,
                p99_ms: row.p99_ms,
            })
            .collect()
    }
}
