//! One clock for samples and events: monotonic ms since the start, anchored to
//! the wall clock once so that every record can also be placed in UTC.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};

/// The probe's clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    wall_start: DateTime<Utc>,
}

impl Clock {
    /// Starts the clock now.
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
            wall_start: Utc::now(),
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

    /// The wall-clock time `ms` after the start, RFC 3339.
    pub fn wall_at(&self, ms: f64) -> String {
        format_wall(self.wall_start + chrono::Duration::microseconds((ms * 1000.0) as i64))
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T10:00:00.250Z`.
pub fn format_wall(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
