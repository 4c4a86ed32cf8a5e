//! One clock for samples and events: monotonic ms since the start, anchored to
//! the wall clock once so that every record can also be placed in UTC.

use std::time::Instant;

use jiff::fmt::temporal::DateTimePrinter;
use jiff::{SignedDuration, Timestamp};

/// The probe's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    wall_start: Timestamp,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
            wall_start: Timestamp::now(),
        }
    }

    /// The monotonic instant of 0 ms.
    pub fn origin(&self) -> Instant {
        self.start
    }

    /// Milliseconds since the start.
    pub fn now_ms(&self) -> f64 {
        self.ms_at(Instant::now())
    }

    /// Milliseconds from the start to `t`.
    pub fn ms_at(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64() * 1000.0
    }

    /// The wall-clock time of the start, RFC 3339.
    pub fn started_at(&self) -> String {
        format_wall(self.wall_start)
    }

    /// The wall-clock time `ms` after the start, RFC 3339; empty if `ms` is not a
    /// time of this run (not finite, or beyond the year 9999).
    pub fn wall_at(&self, ms: f64) -> String {
        wall_after(self.wall_start, ms)
            .map(format_wall)
            .unwrap_or_default()
    }
}

/// `start` plus `ms` milliseconds, or `None` when that is not a representable
/// time. Checked, because `ms` can come from a file a user hands to
/// `rollprobe report`, and jiff's `+` panics on overflow.
///
/// ```
/// let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
/// let t = probe_core::wall_after(t0, 1500.0).unwrap();
/// assert_eq!(probe_core::format_wall(t), "2026-01-01T00:00:01.500Z");
/// assert_eq!(probe_core::format_wall(t0), "2026-01-01T00:00:00.000Z");
/// assert!(probe_core::wall_after(t0, 1e300).is_none());
/// assert!(probe_core::wall_after(t0, f64::NAN).is_none());
/// ```
pub fn wall_after(start: Timestamp, ms: f64) -> Option<Timestamp> {
    let micros = ms * 1000.0;
    // i64's range as f64: a float outside it would saturate silently in `as`.
    if !micros.is_finite() || micros.abs() >= 9.2e18 {
        return None;
    }
    start
        .checked_add(SignedDuration::from_micros(micros as i64))
        .ok()
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T10:00:00.250Z`.
pub fn format_wall(t: Timestamp) -> String {
    DateTimePrinter::new()
        .precision(Some(3))
        .timestamp_to_string(&t)
}

/// Rounds to the microsecond, so values survive the CSV round trip unchanged.
pub(crate) fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
