//! Degraded windows end to end: a real loopback server that answers every request,
//! but a stretch of them slowly (as a proxy retrying behind the scenes would), must
//! show as one degraded window in report.json and windows.csv, not as an outage, and
//! `rollprobe report DIR --out` must rebuild both files as the run wrote them.

use std::process::Output;
use std::time::Duration;

use crate::support::{read_json, rollprobe, temp_dir, SlowForAWhile};

/// Requests numbered `SLOW` (in order of arrival) are answered after `DELAY`.
const SLOW: std::ops::Range<u64> = 50..90;
const DELAY: Duration = Duration::from_millis(400);

fn assert_ok(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_slow_stretch_is_a_degraded_window_in_json_and_csv() {
    let server = SlowForAWhile::start(SLOW, DELAY);
    let dir = temp_dir("degraded-slow-stretch");
    let url = format!("http://127.0.0.1:{}/", server.port);
    // 50 req/s for 3 s on fresh connections: requests 50..90 are the ticks of
    // 1.0 s .. 1.8 s.
    let o = rollprobe()
        .args(["run", &url, "--rate", "50", "--duration", "3s", "--quiet"])
        .args(["--connection", "fresh", "--out", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ok(&o);
    let report = read_json(&dir.join("report.json"));
    assert_eq!(report["totals"]["failed"], 0, "{report}");
    assert!(report["downtime"]["windows"].as_array().unwrap().is_empty());

    let degraded = &report["degraded"];
    let threshold = degraded["threshold_ms"].as_f64().unwrap();
    assert!(
        threshold >= 100.0 && threshold < DELAY.as_millis() as f64,
        "{degraded}"
    );
    // The slow stretch, whatever a loaded machine adds around it.
    let windows = degraded["windows"].as_array().unwrap();
    let slow_one = windows
        .iter()
        .find(|w| w["start_ms"] == 1000.0)
        .unwrap_or_else(|| panic!("no degraded window at 1.0 s: {degraded}"));
    assert_eq!(slow_one["slow"], 40, "{slow_one}");
    assert_eq!(slow_one["end_ms"], 1800.0, "{slow_one}");
    assert_eq!(slow_one["open"], false);
    // 40 answers, each at least the server's delay beyond a sub-threshold baseline.
    let extra = slow_one["extra_ms"].as_f64().unwrap();
    let baseline = degraded["baseline_p50_ms"].as_f64().unwrap();
    assert!(
        extra >= 40.0 * (DELAY.as_millis() as f64 - baseline),
        "{slow_one}"
    );

    let csv = std::fs::read_to_string(dir.join("windows.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        header[..11],
        [
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
            "cause"
        ]
    );
    assert_eq!(
        header[11..],
        ["kind", "slow", "extra_ms", "programming_latency"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), windows.len(), "{csv}");
    let row = rows
        .iter()
        .find(|r| r[1] == "1000")
        .unwrap_or_else(|| panic!("no row at 1000 ms: {csv}"));
    assert_eq!((row[2], row[11], row[12]), ("1800", "degraded", "40"));

    // Rebuilt from samples.csv: the same report.json and windows.csv.
    let again = dir.join("again");
    let o = rollprobe()
        .args([
            "report",
            dir.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(read_json(&again.join("report.json")), report);
    assert_eq!(
        std::fs::read_to_string(again.join("windows.csv")).unwrap(),
        csv
    );
    let _ = std::fs::remove_dir_all(&dir);
}
