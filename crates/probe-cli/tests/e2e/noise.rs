//! `rollprobe compare` end to end, against real local servers: a recommendation
//! only beyond the run-to-run spread, and an invalid run marked and never picked
//! (issue 24, cases 4 and 9).

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{closed_port, read_json, rollprobe, serve, temp_dir, Behaviour};

fn run(args: &[&str]) -> Output {
    rollprobe().args(args).output().expect("rollprobe runs")
}

/// Probes `url` at 20 req/s for `duration`, labelled `label`, into `dir/label`;
/// returns its report.json.
fn probe(dir: &Path, label: &str, url: &str, duration: &str) -> PathBuf {
    let out = dir.join(label);
    let o = run(&[
        "run",
        url,
        "--rate",
        "20",
        "--duration",
        duration,
        "--label",
        label,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(
        o.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out.join("report.json")
}

fn compare(format: &str, reports: &[&Path]) -> String {
    let mut args = vec!["compare", "--format", format];
    args.extend(reports.iter().map(|p| p.to_str().unwrap()));
    let o = run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn compare_recommends_only_beyond_the_noise_and_never_an_invalid_run() {
    let server = serve(Behaviour::Respond {
        status: 200,
        headers: vec![],
        body: "v1".into(),
    });
    let closed = closed_port();
    let refused = format!("http://127.0.0.1:{}/", closed.port);
    let dir = temp_dir("noise");

    // Case 9: one run each, both lost requests, different downtime: noise.
    let short = probe(&dir, "short", &refused, "300ms");
    let long = probe(&dir, "long", &refused, "600ms");
    let json: serde_json::Value = serde_json::from_str(&compare("json", &[&short, &long])).unwrap();
    assert!(
        json["recommendation"]
            .as_str()
            .unwrap()
            .starts_with("recommendation: no case is better beyond the run-to-run spread (short "),
        "{json}"
    );
    let html = compare("html", &[&short, &long]);
    assert!(html.contains("recommended<b>no case</b>"), "{html}");

    // One run each, one lost nothing and the other lost something: a pick that
    // says what it rests on.
    let good = probe(&dir, "good", &server.url(), "300ms");
    let json: serde_json::Value = serde_json::from_str(&compare("json", &[&short, &good])).unwrap();
    let line = json["recommendation"].as_str().unwrap();
    assert!(line.starts_with("recommendation: good ("), "{line}");
    assert!(line.ends_with("rests on 2 valid runs)"), "{line}");

    // Case 4: the same lossless run, but not a valid measurement (as a
    // `--rate 100000` run is): marked in every format, never recommended.
    let overloaded_dir = dir.join("overloaded");
    std::fs::create_dir_all(&overloaded_dir).unwrap();
    let mut report = read_json(&good);
    report["label"] = "overloaded".into();
    report["valid"] = false.into();
    report["invalid_reason"] = "91983 of 94983 ticks were skipped".into();
    let overloaded = overloaded_dir.join("report.json");
    std::fs::write(&overloaded, report.to_string()).unwrap();

    let text = compare("text", &[&overloaded, &short]);
    let columns: Vec<Vec<&str>> = text
        .lines()
        .take(3)
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert_eq!(
        columns,
        [["label", "valid"], ["overloaded", "NO"], ["short", "yes"]],
        "{text}"
    );
    assert!(
        text.contains("overloaded: not a valid measurement: 91983 of 94983 ticks were skipped"),
        "{text}"
    );
    let csv = compare("csv", &[&overloaded, &short]);
    assert!(csv.lines().next().unwrap().ends_with(",valid"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().ends_with(",false"), "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&compare("json", &[&overloaded, &short])).unwrap();
    assert_eq!(json["rows"][0]["valid"], false, "{json}");
    assert_eq!(json["rows"][1]["valid"], true, "{json}");
    let line = json["recommendation"].as_str().unwrap();
    assert!(
        line.starts_with("recommendation: no case is better beyond the run-to-run spread (overloaded no valid run"),
        "{line}"
    );
    let html = compare("html", &[&overloaded, &short]);
    let banner = html
        .find("not a valid measurement: overloaded run 1: 91983 of 94983 ticks were skipped")
        .expect("the banner");
    assert!(banner < html.find("<div class=\"figure").unwrap(), "{html}");
    assert!(!html.contains("recommended<b>overloaded</b>"), "{html}");
    std::fs::remove_dir_all(&dir).unwrap();
}
