//! Latency histograms (HDR, microseconds up to one hour) and their percentiles.
//!
//! An HDR histogram answers a quantile with the highest value equivalent to the
//! recorded one (within its 3 significant digits), which can lie just above the
//! largest value actually recorded: a p99 of 5.231 ms beside a max of 5.228 ms. The
//! exact max is kept beside the histogram and every figure is clamped to it, so a
//! percentile never exceeds the max it is printed next to.

use hdrhistogram::Histogram;

use crate::report::Latency;

/// A latency histogram and the exact largest value recorded in it.
pub(super) struct Latencies {
    histogram: Histogram<u64>,
    max_ms: f64,
}

impl Latencies {
    /// Records microseconds up to one hour.
    pub(super) fn new() -> Latencies {
        Latencies {
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static bounds are valid"),
            max_ms: 0.0,
        }
    }

    pub(super) fn record(&mut self, value_ms: f64) {
        let us = (value_ms * 1000.0).round().clamp(1.0, 3_600_000_000.0) as u64;
        self.histogram.saturating_record(us);
        self.max_ms = self.max_ms.max(value_ms);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    pub(super) fn reset(&mut self) {
        self.histogram.reset();
        self.max_ms = 0.0;
    }

    /// The percentiles (each at most the recorded max) and the max.
    pub(super) fn summary(&self) -> Latency {
        let h = &self.histogram;
        if h.is_empty() {
            return Latency::default();
        }
        let q = |p: f64| (h.value_at_quantile(p) as f64 / 1000.0).min(self.max_ms);
        Latency {
            count: h.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: self.max_ms,
        }
    }
}
