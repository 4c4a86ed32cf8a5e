//! Degraded windows: where the service answered, but far slower than usual.
//!
//! A proxy that retries (or a paused pod, or a queue) turns a failure into a slow
//! success, which no outage window shows and a percentile hides. The rule is one
//! that a person can check from report.json: an ok answer is slow when its latency
//! from the intended send is above max(5 x baseline p50, baseline p50 + 100 ms).
//!
//! The baseline is the baseline phase's median (known as soon as the first sample
//! after the trigger comes in) or, without a trigger, the whole run's median (known
//! only at the end). Until it is known, the answers are kept in compact form: every
//! answer at or below [`FLOOR_MS`] is fast whatever the baseline turns out to be
//! (the threshold is at least the floor), so only the answers above it are kept one
//! by one, and the fast ones between them as a count. Memory is thus the number of
//! answers slower than 100 ms before the baseline is known, and nothing after.

use crate::report::{Degraded, DegradedWindow, FAST_TO_END};

/// The least margin over the baseline median for an answer to be slow, ms.
pub(super) const FLOOR_MS: f64 = 100.0;
/// How many times the baseline median an answer must take to be slow.
const TIMES_BASELINE: f64 = 5.0;

/// The latency above which an ok answer is slow, given the baseline median.
pub(super) fn threshold_for(baseline_p50_ms: f64) -> f64 {
    (TIMES_BASELINE * baseline_p50_ms).max(baseline_p50_ms + FLOOR_MS)
}

/// One step of the run in send order, as the degraded rule needs it.
#[derive(Clone, Copy)]
enum Step {
    /// An ok answer that may be slow.
    Answer { intended_ms: f64, latency_ms: f64 },
    /// Ok answers known to be fast, the first intended at `first_ms`; `count` stops
    /// growing at [`FAST_TO_END`] since more change nothing.
    Fast { first_ms: f64, count: u32 },
    /// A target failure or a held answer: an outage takes over.
    Outage { intended_ms: f64 },
}

struct OpenSpan {
    start_ms: f64,
    slow: u64,
    extra_ms: f64,
    max_ms: f64,
    /// The fast answers in a row since its last slow one, and the first's time.
    fast: u32,
    first_fast_ms: f64,
}

/// The degraded windows of one stream, built in send order.
pub(super) struct SlowSpans {
    /// The baseline median and threshold, once known.
    rule: Option<(f64, f64)>,
    /// Steps waiting for the baseline, compact (see the module's docs).
    waiting: Vec<Step>,
    open: Option<OpenSpan>,
    windows: Vec<DegradedWindow>,
}

impl SlowSpans {
    pub(super) fn new() -> SlowSpans {
        SlowSpans {
            rule: None,
            waiting: Vec::new(),
            open: None,
            windows: Vec::new(),
        }
    }

    pub(super) fn has_baseline(&self) -> bool {
        self.rule.is_some()
    }

    /// Fixes the baseline median and replays what waited for it.
    pub(super) fn set_baseline(&mut self, baseline_p50_ms: f64) {
        if self.rule.is_some() {
            return;
        }
        self.rule = Some((baseline_p50_ms, threshold_for(baseline_p50_ms)));
        for step in std::mem::take(&mut self.waiting) {
            self.step(step);
        }
    }

    /// An ok answer (not one held through an outage) and its latency.
    pub(super) fn answer(&mut self, intended_ms: f64, latency_ms: f64) {
        if self.rule.is_some() {
            self.step(Step::Answer {
                intended_ms,
                latency_ms,
            });
        } else if latency_ms > FLOOR_MS {
            self.waiting.push(Step::Answer {
                intended_ms,
                latency_ms,
            });
        } else if let Some(Step::Fast { count, .. }) = self.waiting.last_mut() {
            *count = (*count + 1).min(FAST_TO_END);
        } else {
            self.waiting.push(Step::Fast {
                first_ms: intended_ms,
                count: 1,
            });
        }
    }

    /// A target failure, or an answer held through an outage: the outage window
    /// takes over from `intended_ms`.
    pub(super) fn outage(&mut self, intended_ms: f64) {
        let step = Step::Outage { intended_ms };
        if self.rule.is_some() {
            self.step(step);
        } else if !matches!(self.waiting.last(), Some(Step::Outage { .. })) {
            // Only the first of consecutive outage steps can end a window.
            self.waiting.push(step);
        }
    }

    fn step(&mut self, step: Step) {
        let (baseline, threshold) = self.rule.expect("called with a rule");
        match step {
            Step::Answer {
                intended_ms,
                latency_ms,
            } if latency_ms > threshold => {
                let w = self.open.get_or_insert(OpenSpan {
                    start_ms: intended_ms,
                    slow: 0,
                    extra_ms: 0.0,
                    max_ms: 0.0,
                    fast: 0,
                    first_fast_ms: 0.0,
                });
                w.slow += 1;
                w.extra_ms += latency_ms - baseline;
                w.max_ms = w.max_ms.max(latency_ms);
                w.fast = 0;
            }
            Step::Answer { intended_ms, .. } => self.fast(intended_ms, 1),
            Step::Fast { first_ms, count } => self.fast(first_ms, count),
            Step::Outage { intended_ms } => {
                if let Some(w) = self.open.take() {
                    let end = if w.fast > 0 {
                        w.first_fast_ms
                    } else {
                        intended_ms
                    };
                    self.close(w, end, false);
                }
            }
        }
    }

    fn fast(&mut self, first_ms: f64, count: u32) {
        let Some(w) = self.open.as_mut() else {
            return;
        };
        if w.fast == 0 {
            w.first_fast_ms = first_ms;
        }
        w.fast += count;
        if w.fast >= FAST_TO_END {
            let w = self.open.take().expect("open");
            let end = w.first_fast_ms;
            self.close(w, end, false);
        }
    }

    fn close(&mut self, w: OpenSpan, end_ms: f64, open: bool) {
        self.windows.push(DegradedWindow {
            start_ms: w.start_ms,
            end_ms,
            duration_ms: (end_ms - w.start_ms).max(0.0),
            slow: w.slow,
            extra_ms: w.extra_ms,
            max_ms: w.max_ms,
            open,
        });
    }

    /// The windows, with `fallback_p50_ms` (the run's median) as the baseline if
    /// none was set; an open window ends at `end_ms`.
    pub(super) fn finish(mut self, fallback_p50_ms: Option<f64>, end_ms: f64) -> Degraded {
        if let Some(p50) = fallback_p50_ms {
            self.set_baseline(p50);
        }
        if let Some(w) = self.open.take() {
            // Fast answers after the last slow one ended it, if fewer than needed.
            let (end, open) = if w.fast > 0 {
                (w.first_fast_ms, false)
            } else {
                (end_ms.max(w.start_ms), true)
            };
            self.close(w, end, open);
        }
        let total_ms = self.windows.iter().fold(0.0, |acc, w| acc + w.duration_ms);
        Degraded {
            baseline_p50_ms: self.rule.map(|(p50, _)| p50),
            threshold_ms: self.rule.map(|(_, t)| t),
            total_ms,
            windows: self.windows,
        }
    }
}
