//! windows.csv: one row per outage window, every window of the run (the text
//! summary lists only the first few), then one per degraded window. The columns
//! that say which is which (`kind`) and what a degraded window cost (`slow`,
//! `extra_ms`) come last, so readers of the older header keep working; after them
//! `programming_latency`, for a window caused by a stale route.

use std::path::Path;

use crate::report::Report;

/// Writes windows.csv: one row per outage window, then one per degraded window,
/// numbered on.
pub fn write_windows_csv(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut w = csv::Writer::from_path(path).map_err(std::io::Error::other)?;
    w.write_record([
        "window",
        "start_ms",
        "end_ms",
        "duration_ms",
        "failed",
        "open",
        "kinds",
        "after_event",
        "after_event_detail",
        "after_event_offset_ms",
        "cause",
        "kind",
        "slow",
        "extra_ms",
        "programming_latency",
    ])?;
    for (i, win) in report.downtime.windows.iter().enumerate() {
        let kinds = win
            .kinds
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(";");
        let (ek, ed, eo) = match &win.after_event {
            Some(e) => (e.kind.clone(), e.detail.clone(), e.offset_ms.to_string()),
            None => (String::new(), String::new(), String::new()),
        };
        w.write_record([
            (i + 1).to_string(),
            win.start_ms.to_string(),
            win.end_ms.to_string(),
            win.duration_ms.to_string(),
            win.failed.to_string(),
            win.open.to_string(),
            kinds,
            ek,
            ed,
            eo,
            win.cause
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            "outage".to_string(),
            String::new(),
            String::new(),
            win.programming_latency
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ])?;
    }
    let outages = report.downtime.windows.len();
    for (i, win) in report.degraded.windows.iter().enumerate() {
        w.write_record([
            (outages + i + 1).to_string(),
            win.start_ms.to_string(),
            win.end_ms.to_string(),
            win.duration_ms.to_string(),
            "0".to_string(),
            win.open.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            "degraded".to_string(),
            win.slow.to_string(),
            win.extra_ms.to_string(),
            String::new(),
        ])?;
    }
    w.flush()
}
