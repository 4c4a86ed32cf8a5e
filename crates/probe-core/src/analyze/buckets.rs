//! The run in time buckets: counts by outcome per bucket, for the report's strip.
//!
//! Buckets start at 100 ms; whenever the run outgrows [`MAX_BUCKETS`], adjacent
//! ones are merged and the width doubles, so memory stays flat. At the end they
//! are reduced to at most [`STRIP_WIDTH`] cells of data ([`StripCell`]); how a
//! cell is written is the report's business.

use crate::outcome::Outcome;
use crate::report::{StripCell, Timeline};

/// Buckets kept for the timeline before adjacent ones are merged.
const MAX_BUCKETS: usize = 4096;
/// Cells in the report's strip.
const STRIP_WIDTH: usize = 72;

#[derive(Clone, Default)]
pub(super) struct Bucket {
    pub(super) sent: u32,
    pub(super) by_kind: [u32; Outcome::ALL.len()],
    pub(super) version_changed: bool,
}

impl Bucket {
    pub(super) fn merge(&mut self, other: &Bucket) {
        self.sent += other.sent;
        for (a, b) in self.by_kind.iter_mut().zip(other.by_kind.iter()) {
            *a += b;
        }
        self.version_changed |= other.version_changed;
    }

    /// What the bucket amounts to: its most common failure, else whether the
    /// version changed in it, else all ok; nothing when no request was sent.
    fn cell(&self) -> StripCell {
        if self.sent == 0 {
            return StripCell::Idle;
        }
        let worst = Outcome::ALL
            .iter()
            .zip(self.by_kind.iter())
            .filter(|(k, n)| k.is_failure() && **n > 0)
            .max_by_key(|(_, n)| **n);
        match worst {
            Some((k, _)) => StripCell::Failure(*k),
            None if self.version_changed => StripCell::VersionChanged,
            None => StripCell::Ok,
        }
    }
}

pub(super) fn kind_index(k: Outcome) -> usize {
    Outcome::ALL
        .iter()
        .position(|x| *x == k)
        .expect("every outcome is in ALL")
}

/// Every bucket of the run so far, all of one width.
pub(super) struct Buckets {
    width_ms: f64,
    rows: Vec<Bucket>,
}

impl Buckets {
    pub(super) fn new() -> Buckets {
        Buckets {
            width_ms: 100.0,
            rows: Vec::new(),
        }
    }

    /// The bucket of `intended_ms`, halving the resolution while the run outgrows
    /// [`MAX_BUCKETS`].
    pub(super) fn at(&mut self, intended_ms: f64) -> &mut Bucket {
        let mut index = (intended_ms / self.width_ms).max(0.0) as usize;
        while index >= MAX_BUCKETS {
            let merged: Vec<Bucket> = self
                .rows
                .chunks(2)
                .map(|pair| {
                    let mut b = pair[0].clone();
                    if let Some(second) = pair.get(1) {
                        b.merge(second);
                    }
                    b
                })
                .collect();
            self.rows = merged;
            self.width_ms *= 2.0;
            index = (intended_ms / self.width_ms).max(0.0) as usize;
        }
        if self.rows.len() <= index {
            self.rows.resize(index + 1, Bucket::default());
        }
        &mut self.rows[index]
    }

    /// The strip: the buckets merged into at most [`STRIP_WIDTH`] cells.
    pub(super) fn timeline(&self) -> Timeline {
        let per_cell = self.rows.len().div_ceil(STRIP_WIDTH).max(1);
        let cells = self.rows.chunks(per_cell).map(|chunk| {
            let mut b = Bucket::default();
            for x in chunk {
                b.merge(x);
            }
            b.cell()
        });
        Timeline::from_cells(self.width_ms * per_cell as f64, cells)
    }
}
