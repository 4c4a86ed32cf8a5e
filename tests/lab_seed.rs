//! The seed walkthrough's experiment, end to end in the lab: real network
//! namespaces, kube-proxy-style iptables rules, a MetalLB-style announcer and a
//! Deployment controller, probed by the `rollprobe` binary from the client host
//! of a LoadBalancer Service. Needs root, iproute2 and iptables: run with
//! ROLLPROBE_NETNS_TESTS=1 (as .ci/run does); without it the test runner lists them as
//! ignored (the root package's build.rs sets the `netns_tests` cfg from that variable).

mod common;

use std::process::Command;

fn lab(case: &str, change: &[&str]) -> serde_json::Value {
    let manifest = format!("{}/examples/seed/{case}.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("rollprobe-lab-{case}-{}", std::process::id()));
    let child = Command::new(common::rollprobe_bin())
        .args(["lab", "-f", &manifest])
        .args(change)
        .args([
            "--rate", "50", "--settle", "3s", "--quiet", "--format", "json",
        ])
        .args(["--out", out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("rollprobe lab runs");
    let run_prefix = format!("rplab-{}-", child.id());
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{case}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The lab's events are in the report, and every namespace is gone.
    let kinds: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"pod_ready") && kinds.contains(&"endpoint_added"),
        "{kinds:?}"
    );
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let left: Vec<String> = String::from_utf8_lossy(&netns.stdout)
        .lines()
        .filter(|l| l.starts_with(&run_prefix))
        .map(str::to_string)
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
    report
}

fn failures(r: &serde_json::Value, kind: &str) -> u64 {
    r["failures"][kind].as_u64().unwrap_or(0)
}

fn versions(r: &serde_json::Value) -> Vec<String> {
    r["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap().to_string())
        .collect()
}

const SET_V2: [&str; 2] = ["--set-image", "backend-deployment=shop/backend:v2"];

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn recreate_gives_no_route_to_host_and_connection_refused() {
    let r = lab("recreate", &SET_V2);
    assert!(failures(&r, "host_unreachable") > 0, "{}", r["failures"]);
    assert!(failures(&r, "connection_refused") > 0, "{}", r["failures"]);
    assert_eq!(versions(&r), ["v1", "v2"]);
    // Recreate: v1 is gone before v2 answers.
    assert_eq!(r["mixed_ms"], 0.0);
    for w in r["downtime"]["windows"].as_array().unwrap() {
        let cause = w["cause"].as_str().unwrap_or_default();
        assert!(
            cause.contains("backend-deployment-"),
            "a cause names the pods: {cause}"
        );
    }
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn rolling_without_readiness_gives_only_connection_refused() {
    let r = lab("rolling", &SET_V2);
    let refused = failures(&r, "connection_refused");
    assert!(refused > 0, "{}", r["failures"]);
    assert_eq!(
        r["totals"]["failed"].as_u64().unwrap(),
        refused,
        "{}",
        r["failures"]
    );
    assert_eq!(versions(&r), ["v1", "v2"]);
    assert!(r["mixed_ms"].as_f64().unwrap() > 0.0);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn rolling_with_readiness_loses_nothing() {
    let r = lab("readiness", &SET_V2);
    assert_eq!(r["totals"]["failed"], 0, "{}", r["failures"]);
    assert_eq!(versions(&r), ["v1", "v2"]);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn surge_with_readiness_loses_nothing_and_starts_both_new_pods_first() {
    // maxUnavailable 0% / maxSurge 100%: both new pods start before any old one
    // goes. (surge.yaml keeps readiness.yaml's probe: without it the new pods
    // join the Service before their app listens, as rolling.yaml shows.)
    let r = lab("surge", &SET_V2);
    assert_eq!(r["totals"]["failed"], 0, "{}", r["failures"]);
    let events = r["events"].as_array().unwrap();
    let start = events
        .iter()
        .position(|e| e["kind"] == "rollout_start")
        .expect("rollout_start");
    let first_terminating = events
        .iter()
        .position(|e| e["kind"] == "pod_terminating")
        .expect("old pods terminate");
    let created = events[start..first_terminating]
        .iter()
        .filter(|e| e["kind"] == "pod_created")
        .count();
    assert_eq!(created, 2, "both new pods before any old one terminates");
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn blue_green_switch_loses_nothing() {
    let r = lab("bluegreen", &["--set-selector", "backend-svc:version=v2"]);
    assert_eq!(r["totals"]["failed"], 0, "{}", r["failures"]);
    assert_eq!(versions(&r), ["v1", "v2"]);
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"service_selector_changed"));
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn matrix_compares_strategies_and_restores_the_original() {
    let manifest = format!(
        "{}/examples/seed/readiness.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = std::env::temp_dir().join(format!("rollprobe-matrix-{}", std::process::id()));
    let o = Command::new(common::rollprobe_bin())
        .args([
            "matrix",
            "--lab",
            "-f",
            &manifest,
            "--deployment",
            "backend-deployment",
        ])
        .args([
            "--case",
            "recreate",
            "--case",
            "rolling:25%/25%",
            "--case",
            "rolling:100%/0%",
        ])
        .args([
            "--trigger",
            "image=shop/backend:v2",
            "--rate",
            "50",
            "--settle",
            "2s",
        ])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .output()
        .expect("rollprobe matrix runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("case"), "summary table: {stdout}");

    let csv = std::fs::read_to_string(out.join("matrix.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let cases: Vec<&str> = rows.iter().map(|r| r[0]).collect();
    assert_eq!(
        cases,
        ["recreate", "rolling:25%/25%", "rolling:100%/0%"],
        "{csv}"
    );
    let failed: Vec<u64> = rows
        .iter()
        .map(|r| r[col("failed")].parse().unwrap())
        .collect();
    assert!(failed[0] > 0, "recreate loses requests: {csv}");
    assert_eq!(
        &failed[1..],
        [0, 0],
        "rolling with a readinessProbe loses none: {csv}"
    );
    for r in &rows {
        assert!(
            !r[col("rollout_ms")].is_empty(),
            "every rollout completed: {csv}"
        );
    }

    // Recreate's windows say why, naming pods.
    let recreate = common::read_json(&out.join("recreate/1/report.json"));
    let windows = recreate["downtime"]["windows"].as_array().unwrap();
    assert!(!windows.is_empty());
    for w in windows {
        let cause = w["cause"].as_str().unwrap_or_default();
        assert!(cause.contains("backend-deployment-"), "{cause}");
    }
    let m = common::read_json(&out.join("matrix.json"));
    assert_eq!(
        m["strategy_after"], "rolling:25%/25%",
        "the original strategy is back"
    );
    assert_eq!(m["summary"].as_array().unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&out);
}
