//! `merge` of runs that did not probe at the same time: only where they overlap can
//! every vantage point have failed at once, and the report says how far apart they
//! were. The same run given twice is refused.

use std::path::{Path, PathBuf};

use probe_core::{
    merge_runs, MergeError, Outcome, RunFooter, RunHeader, RunRecord, Sample, SampleWriter,
};

/// A fresh folder under the system's temp folder.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a run folder: 3 s at 10 req/s from `started_at`, refused in `down` (ms of
/// its own clock).
fn write_run(dir: &Path, started_at: &str, down: std::ops::Range<f64>) {
    std::fs::create_dir_all(dir).unwrap();
    let header: RunHeader = serde_json::from_str(&format!(
        r#"{{"schema":"rollprobe.samples/v1","label":null,"target":"http://127.0.0.1:8080/",
        "started_at":"{started_at}","config":{{"rate":10,"connection":"fresh","timeout_ms":5000,
        "connect_timeout_ms":5000,"max_in_flight":116,"expect_status":"200-299",
        "version_from":"body","method":"GET"}}}}"#
    ))
    .unwrap();
    let footer = RunFooter {
        ended_at: String::new(),
        duration_ms: 3000.0,
        interrupted: false,
        unanswered: 0,
        trigger: None,
    };
    RunRecord {
        header,
        end: Some(footer),
    }
    .write(dir)
    .unwrap();
    let mut w = SampleWriter::create(&dir.join("samples.csv")).unwrap();
    for seq in 0..30u64 {
        let at = seq as f64 * 100.0;
        let outcome = if down.contains(&at) {
            Outcome::ConnectionRefused
        } else {
            Outcome::Ok
        };
        w.write(&Sample {
            stream: "local-fresh".into(),
            seq,
            intended_ms: at,
            sent_ms: Some(at),
            wall_time: String::new(),
            outcome,
            errno: None,
            errno_name: None,
            status: None,
            version: None,
            pod: None,
            request_id: None,
            connect_ms: None,
            syn_retransmits: None,
            ttfb_ms: None,
            total_ms: Some(1.0),
            connection: None,
            error: None,
            proxy: None,
            upstream: None,
        })
        .unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn runs_that_never_overlapped_say_so_and_claim_no_served_moment() {
    let dir = temp_dir("merge-apart");
    let (a, b) = (dir.join("a"), dir.join("b"));
    write_run(&a, "2026-01-01T00:00:00Z", 1000.0..2000.0);
    write_run(&b, "2026-01-01T00:00:10Z", 1000.0..2000.0);
    let report = merge_runs(&[&a, &b], &dir.join("m")).unwrap();
    let total = report.total_outage.as_ref().unwrap();
    assert!(total.spans.is_empty());
    assert_eq!(total.overlap_ms, Some(0.0));
    let warning = report
        .warnings
        .iter()
        .find(|w| w.contains("never probed at the same time"))
        .unwrap_or_else(|| panic!("{:?}", report.warnings));
    // a probed 0..3 s, b 10..13 s on the merged clock.
    assert!(warning.contains("7.000 s"), "{warning}");
    let summary = report.summary();
    assert!(
        summary.contains("no total outage can be measured"),
        "{summary}"
    );
    assert!(!summary.contains("some stream was served"), "{summary}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_the_overlap_of_runs_can_hold_a_total_outage() {
    let dir = temp_dir("merge-partial");
    let (a, b) = (dir.join("a"), dir.join("b"));
    // a is down 0.5..1.5 s, before b began; b is down its first 2 s (2..4 s merged).
    write_run(&a, "2026-01-01T00:00:00Z", 500.0..1500.0);
    write_run(&b, "2026-01-01T00:00:02Z", 0.0..2000.0);
    let report = merge_runs(&[&a, &b], &dir.join("m")).unwrap();
    let total = report.total_outage.as_ref().unwrap();
    assert!(total.spans.is_empty(), "{total:?}");
    assert_eq!(total.overlap_ms, Some(1000.0));
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("probed together for only 1.000 s")),
        "{:?}",
        report.warnings
    );
    let summary = report.summary();
    assert!(
        summary.contains("no total outage in the 1.000 s in which every stream probed"),
        "{summary}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_same_run_twice_is_refused() {
    let dir = temp_dir("merge-twice");
    let a = dir.join("a");
    write_run(&a, "2026-01-01T00:00:00Z", 1000.0..2000.0);
    let out = dir.join("m");
    for second in [a.clone(), a.join("samples.csv"), dir.join("./a/")] {
        match merge_runs(&[&a, &second], &out) {
            Err(e @ MergeError::Input(_)) => {
                assert!(e.is_input());
                assert!(e.to_string().contains("given twice"), "{e}");
            }
            other => panic!("{}: {:?}", second.display(), other.map(|r| r.totals)),
        }
    }
    assert!(!out.exists(), "nothing is written for a refused merge");
    let _ = std::fs::remove_dir_all(&dir);
}
