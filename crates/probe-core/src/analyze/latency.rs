//! Latency histograms (HDR, microseconds up to one hour) and their percentiles.

use hdrhistogram::Histogram;

use crate::report::Latency;

/// Latency histograms record microseconds up to one hour.
pub(super) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

pub(super) fn record_ms(h: &mut Histogram<u64>, value_ms: f64) {
    let us = (value_ms * 1000.0).round().clamp(1.0, 3_600_000_000.0) as u64;
    h.saturating_record(us);
}

pub(super) fn latency_of(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
    Latency {
        count: h.len(),
        p50: q(0.5),
        p90: q(0.9),
        p99: q(0.99),
        p999: q(0.999),
        max: h.max() as f64 / 1000.0,
    }
}
