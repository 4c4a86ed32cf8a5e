//! A run rebuilt from its files alone, as `rollprobe report` does: the analyzer reading a
//! samples.csv that lost its run.json, and what a rebuilt report keeps of a failure's
//! text. These go through the public API (`analyze_samples_file`), above the reader that
//! sample/read.rs tests on its own.

use std::path::PathBuf;

use probe_core::{
    analyze_samples_file, format_wall, wall_after, Outcome, ProbeConfig, RunHeader, RunRecord,
    Sample, SampleWriter, Target, TlsReason,
};

/// A samples.csv alone in its folder, as copied off a CI runner: two streams at 50 and
/// 20 req/s, their clock started at 10:00:10.
fn write_lone_samples(name: &str, rows_per_stream: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("samples.csv");
    let t0: jiff::Timestamp = "2026-01-01T10:00:10Z".parse().unwrap();
    let mut w = SampleWriter::create(&path).unwrap();
    // Completion order, not send order: the second row of each stream first.
    for seq in (0..rows_per_stream).rev() {
        for (stream, period) in [("local-fresh", 20.0), ("local-keepalive", 50.0)] {
            let intended = seq as f64 * period;
            let outcome = if seq == 1 {
                Outcome::ConnectionRefused
            } else {
                Outcome::Ok
            };
            w.write(&Sample {
                sent_ms: Some(intended + 0.1),
                total_ms: Some(1.0),
                wall_time: format_wall(wall_after(t0, intended).unwrap()),
                ..Sample::new(stream, seq, intended, outcome)
            })
            .unwrap();
        }
    }
    w.finish().unwrap();
    path
}

#[test]
fn a_lone_samples_csv_is_read_with_a_header_inferred_from_its_rows() {
    let path = write_lone_samples("rp-lone", 40);
    let report = analyze_samples_file(&path, Vec::new()).unwrap();
    assert_eq!(report.target, "");
    assert_eq!(report.config.rate, 50.0);
    assert_eq!(report.started_at, "2026-01-01T10:00:10.000Z");
    let names: Vec<&str> = report.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["local-fresh", "local-keepalive"]);
    assert_eq!(report.totals.sent, 80);
    assert_eq!(report.totals.failed, 2);
    let warning = &report.warnings[0];
    assert!(
        warning.starts_with(&format!(
            "{} was missing: ",
            path.with_file_name("run.json").display()
        )),
        "{warning}"
    );
    for said in [
        "local-fresh 50 req/s, local-keepalive 20 req/s",
        "the start (2026-01-01T10:00:10.000Z) from the first row's wall_time",
        "the target",
    ] {
        assert!(warning.contains(said), "{said}: {warning}");
    }
    let summary = report.summary();
    assert!(summary.contains("(target unknown)"), "{summary}");
    assert!(summary.contains(warning.as_str()), "{summary}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_lone_samples_csv_too_short_to_tell_the_rate_is_refused_naming_run_json() {
    let path = write_lone_samples("rp-lone-short", 1);
    let err = analyze_samples_file(&path, Vec::new())
        .unwrap_err()
        .to_string();
    assert!(err.contains("run.json"), "{err}");
    assert!(err.contains("too few to tell the rate"), "{err}");
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn a_rebuilt_report_names_the_tls_reason() {
    let dir = std::env::temp_dir().join(format!("rp-tls-reason-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("samples.csv");
    let config = ProbeConfig::new(Target::parse("https://127.0.0.1:1/").unwrap());
    RunRecord {
        header: RunHeader {
            started_at: "2026-01-01T00:00:00.000Z".into(),
            run_id: "r1".into(),
            streams: vec!["local-fresh".into()],
            ..RunHeader::new(&config)
        },
        end: None,
    }
    .write(&dir)
    .unwrap();
    let mut w = SampleWriter::create(&path).unwrap();
    let reason = TlsReason::UnknownIssuer;
    w.write(&Sample {
        sent_ms: Some(0.1),
        total_ms: Some(1.0),
        error: Some(format!("{}: invalid peer certificate", reason.as_str())),
        ..Sample::new("local-fresh", 0, 0.0, Outcome::Tls)
    })
    .unwrap();
    w.finish().unwrap();
    let report = analyze_samples_file(&path, Vec::new()).unwrap();
    let hints: Vec<&str> = report
        .failure_details
        .iter()
        .filter(|d| d.kind == "tls")
        .map(|d| d.hint.as_str())
        .collect();
    assert_eq!(hints, [reason.summary()]);
    std::fs::remove_dir_all(&dir).unwrap();
}
