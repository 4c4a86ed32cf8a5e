//! The seed walkthrough's experiment, end to end in the lab: real network
//! namespaces, kube-proxy-style iptables rules, a MetalLB-style announcer and a
//! Deployment controller, probed by the `rollprobe` binary from the client host
//! of a LoadBalancer Service. Needs root, iproute2 and iptables: run with
//! ROLLPROBE_NETNS_TESTS=1 (as .ci/run does); without it the test runner lists them as ignored.
//!
//! The lab runs on stock kernel settings unless told otherwise, so these tests assert
//! what a real client at rollprobe's 50 requests/s sees: Recreate's refusals mostly
//! arrive as connect timeouts, because a node sends one client at most about one ICMP
//! error per second. Only the `--kernel tuned` test asserts the mechanism-level story
//! (refused, then "No route to host", then refused). The full table of the seed's cases
//! at 1 and 50 requests/s on both settings is scripts/seed-kernels.py's job, not CI's
//! (docs/kernels.md).

use std::process::Command;

/// One lab run: its report and, per request, when it was sent (ms) and its outcome.
struct Run {
    report: serde_json::Value,
    samples: Vec<(f64, String)>,
}

fn lab(case: &str, change: &[&str], kernel: &str) -> Run {
    let manifest = format!("{}/examples/seed/{case}.yaml", crate::support::REPO);
    lab_on(&manifest, case, change, kernel)
}

/// One lab run on the manifest at `manifest`, `case` naming it.
fn lab_on(manifest: &str, case: &str, change: &[&str], kernel: &str) -> Run {
    let out = std::env::temp_dir().join(format!(
        "rollprobe-lab-{case}-{kernel}-{}",
        std::process::id()
    ));
    let child = Command::new(crate::support::ROLLPROBE)
        .args(["lab", "-f", manifest])
        .args(change)
        .args(["--kernel", kernel])
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
    assert_eq!(
        report["lab"]["kernel"], kernel,
        "the report names the kernel"
    );
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
    let samples = read_samples(&out.join("samples.csv"));
    let _ = std::fs::remove_dir_all(&out);
    Run { report, samples }
}

/// (sent_ms, outcome) per request, in the order they were sent.
fn read_samples(path: &std::path::Path) -> Vec<(f64, String)> {
    let csv = std::fs::read_to_string(path).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (sent, outcome) = (col("intended_ms"), col("outcome"));
    // Only `error`, the last column, may hold commas; the columns read come before it.
    let mut v: Vec<(f64, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[sent].parse().unwrap(), f[outcome].to_string())
        })
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
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

/// When the first event of `kind` happened (ms, the samples' clock).
fn event_ms(r: &serde_json::Value, kind: &str) -> f64 {
    r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} event"))["at_ms"]
        .as_f64()
        .unwrap()
}

const SET_V2: [&str; 2] = ["--set-image", "backend-deployment=shop/backend:v2"];

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn recreate_on_stock_kernel_turns_refusals_into_connect_timeouts() {
    let Run { report: r, samples } = lab("recreate", &SET_V2, "stock");
    let (refused, timeouts) = (
        failures(&r, "connection_refused"),
        failures(&r, "connect_timeout"),
    );
    assert!(refused > 0, "{}", r["failures"]);
    // Measured: 14-17 timeouts, connects sent soon after the address was withdrawn, whose
    // 5 s ran out before it came back (later ones are refused by the new pod on a
    // retransmitted SYN). The old pods serve while terminating until they exit (no pod is
    // ready: kube-proxy's terminating-endpoint rule), so the address goes ~1.6 s after the
    // pods began terminating, not ~0.5 s; with the earlier withdrawal it was 60-67. A
    // third of that still shows the mechanism.
    assert!(timeouts >= 5, "{}", r["failures"]);
    // The address is back ~5.5 s after it was withdrawn, long before a stock client's
    // neighbour entry (reachable 15-45 s) is even questioned: no "No route to host".
    assert_eq!(failures(&r, "host_unreachable"), 0, "{}", r["failures"]);
    // Every timeout began with no ready endpoint and before the address came back.
    let (removed, announced) = (
        event_ms(&r, "endpoint_removed"),
        event_ms(&r, "address_announced"),
    );
    for (at, _) in samples.iter().filter(|(_, o)| o == "connect_timeout") {
        assert!(
            *at >= removed && *at < announced,
            "a timeout sent at {at} ms, outside {removed}..{announced} ms"
        );
    }
    // Each timed-out connect retransmitted its SYN, and some later connects got through
    // only after a retransmission.
    assert!(
        r["totals"]["syn_retransmitted"].as_u64().unwrap() > timeouts,
        "{}",
        r["totals"]
    );
    assert_eq!(versions(&r), ["v1", "v2"]);
    assert_eq!(r["mixed_ms"], 0.0, "Recreate: v1 is gone before v2 answers");
    let windows = r["downtime"]["windows"].as_array().unwrap();
    assert!(!windows.is_empty());
    for w in windows {
        let cause = w["cause"].as_str().unwrap_or_default();
        assert!(
            cause.contains("backend-deployment-"),
            "a cause names the pods: {cause}"
        );
    }
    assert!(
        windows.iter().any(|w| w["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("icmp_ratelimit")),
        "a cause says the refusals were rate-limited: {windows:?}"
    );
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn recreate_on_tuned_kernel_gives_refused_then_no_route_then_refused() {
    // Tuned settings (no ICMP limit, short client neighbour timers) show each
    // mechanism's own errno; they demonstrate mechanisms, not what users see.
    let Run { report: r, samples } = lab("recreate", &SET_V2, "tuned");
    let first = |kind: &str| samples.iter().position(|(_, o)| o == kind);
    let last = |kind: &str| samples.iter().rposition(|(_, o)| o == kind);
    let refused = first("connection_refused").expect("refusals");
    let unreachable = first("host_unreachable").expect("No route to host");
    assert!(
        refused < unreachable,
        "REJECT (refused) before the neighbour entry fails: {}",
        r["failures"]
    );
    assert!(
        last("connection_refused").unwrap() > last("host_unreachable").unwrap(),
        "refused again once the address is back and the app is not listening: {}",
        r["failures"]
    );
    // No ICMP error is withheld, so hardly any connect waits for its timeout.
    assert!(
        failures(&r, "connect_timeout") * 10 < failures(&r, "connection_refused"),
        "{}",
        r["failures"]
    );
    assert_eq!(versions(&r), ["v1", "v2"]);
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
    // The refusals are the new pod's own RSTs (it is in the Service before its app
    // listens): no ICMP is involved, so no rate limit turns them into timeouts.
    let r = lab("rolling", &SET_V2, "stock").report;
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
    let r = lab("readiness", &SET_V2, "stock").report;
    assert_eq!(r["totals"]["failed"], 0, "{}", r["failures"]);
    assert_eq!(versions(&r), ["v1", "v2"]);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn surge_with_readiness_loses_nothing_and_starts_both_new_pods_first() {
    // maxUnavailable 0% / maxSurge 100%: both new pods start before any old one
    // goes. (surge.yaml keeps readiness.yaml's probe: without it the new pods
    // join the Service before their app listens, as rolling.yaml shows.)
    let r = lab("surge", &SET_V2, "stock").report;
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
    let r = lab(
        "bluegreen",
        &["--set-selector", "backend-svc:version=v2"],
        "stock",
    )
    .report;
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
    let manifest = format!("{}/examples/seed/readiness.yaml", crate::support::REPO);
    let out = std::env::temp_dir().join(format!("rollprobe-matrix-{}", std::process::id()));
    let o = Command::new(crate::support::ROLLPROBE)
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
    let recreate = crate::support::read_json(&out.join("recreate/1/report.json"));
    let windows = recreate["downtime"]["windows"].as_array().unwrap();
    assert!(!windows.is_empty());
    for w in windows {
        let cause = w["cause"].as_str().unwrap_or_default();
        assert!(cause.contains("backend-deployment-"), "{cause}");
    }
    let m = crate::support::read_json(&out.join("matrix.json"));
    assert_eq!(
        m["strategy_after"], "rolling:25%/25%",
        "the original strategy is back"
    );
    assert_eq!(m["summary"].as_array().unwrap().len(), 3);
    let _ = std::fs::remove_dir_all(&out);
}

/// A keep-alive client of a rolling update without readinessProbe also meets the
/// terminating pods: kube-proxy's rule changes do not move established connections, so
/// when an old pod's app dies at SIGTERM the requests in flight on its connections are
/// reset or closed, and the window's cause names the terminating pod. Each answer takes
/// 100 ms, as a real service's may (with instant answers a keep-alive connection is almost
/// never busy at the moment its pod dies).
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn rolling_keepalive_shows_resets_or_closed_connections_from_terminating_pods() {
    let yaml = std::fs::read_to_string(format!(
        "{}/examples/seed/rolling.yaml",
        crate::support::REPO
    ))
    .unwrap()
    .replace(
        "        image: shop/backend:v1\n",
        "        image: shop/backend:v1\n        env:\n        - {name: RESPONSE_DELAY_MS, value: \"100\"}\n",
    );
    let manifest = std::env::temp_dir().join(format!(
        "rollprobe-rolling-keepalive-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&manifest, yaml).unwrap();
    let args = [
        SET_V2[0],
        SET_V2[1],
        "--connection",
        "keepalive",
        "--pod-from",
        "header:x-pod-name",
    ];
    let r = lab_on(
        manifest.to_str().unwrap(),
        "rolling-keepalive",
        &args,
        "stock",
    )
    .report;
    let _ = std::fs::remove_file(&manifest);
    let lost = failures(&r, "connection_reset") + failures(&r, "connection_closed");
    assert!(lost > 0, "{}", r["failures"]);
    assert_eq!(versions(&r), ["v1", "v2"]);
    let windows = r["downtime"]["windows"].as_array().unwrap();
    let by_terminating = windows.iter().any(|w| {
        let cause = w["cause"].as_str().unwrap_or_default();
        cause.contains("terminating pod") && cause.contains("backend-deployment-")
    });
    assert!(by_terminating, "{windows:#?}");
}

/// The lab's app names itself in `x-pod-name`: with `--pod-from header:x-pod-name` the
/// pods in report.json are exactly the pods the lab made ready (its `pod_ready` events,
/// including the standing ones replayed when the probe attached).
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn pods_in_the_report_are_the_pods_the_lab_made_ready() {
    let args = [SET_V2[0], SET_V2[1], "--pod-from", "header:x-pod-name"];
    let r = lab("readiness", &args, "stock").report;
    let mut answered: Vec<String> = r["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pod"].as_str().unwrap().to_string())
        .collect();
    let mut ready: Vec<String> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "pod_ready")
        .map(|e| e["subject"]["pod"].as_str().unwrap().to_string())
        .collect();
    answered.sort();
    ready.sort();
    ready.dedup();
    assert_eq!(answered.len(), 4, "two old and two new pods: {answered:?}");
    assert_eq!(answered, ready);
    // Each pod answered with its own version.
    for p in r["pods"].as_array().unwrap() {
        let events = r["events"].as_array().unwrap();
        let version = events
            .iter()
            .find(|e| e["kind"] == "pod_ready" && e["subject"]["pod"] == p["pod"])
            .map(|e| e["subject"]["version"].clone());
        assert_eq!(Some(p["version"].clone()), version, "{p}");
    }
}

/// matrix.csv's rows as (header, rows), from a matrix run's folder.
fn matrix_rows(out: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let csv = std::fs::read_to_string(out.join("matrix.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// The same rolling update with and without a preStop sleep, keep-alive clients, on an
/// app that drains on SIGTERM: the `+prestop=5s` case gives the Deployment the hook for
/// its runs (its report shows `pod_prestop`), keeps its name in matrix.csv, loses
/// nothing, and the Deployment gets its own (no) hook back at the end. The case without
/// the hook is printed, not asserted: on the lab's default timing (the kubelet's SIGTERM
/// 1 s after the deletion, kube-proxy's sync 0.5 s) the drain alone already moves
/// keep-alive clients off in time (measured: nothing lost in either case).
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn matrix_compares_a_rolling_update_with_and_without_a_prestop_sleep() {
    let manifest = format!(
        "{}/examples/seed/readiness-drain.yaml",
        crate::support::REPO
    );
    let out = std::env::temp_dir().join(format!("rollprobe-matrix-prestop-{}", std::process::id()));
    let o = Command::new(crate::support::ROLLPROBE)
        .args(["matrix", "--lab", "-f", &manifest])
        .args(["--deployment", "backend-deployment"])
        .args(["--case", "rolling:1/0", "--case", "rolling:1/0+prestop=5s"])
        .args([
            "--trigger",
            "image=shop/backend:v2",
            "--connection",
            "keepalive",
        ])
        .args([
            "--rate",
            "100",
            "--settle",
            "2s",
            "--pod-from",
            "header:x-pod-name",
        ])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .output()
        .expect("rollprobe matrix runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let (header, rows) = matrix_rows(&out);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let cases: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(cases, ["rolling:1/0", "rolling:1/0+prestop=5s"]);
    let failed: Vec<u64> = rows
        .iter()
        .map(|r| r[col("failed")].parse().unwrap())
        .collect();
    let kinds = |dir: &str| {
        let r = crate::support::read_json(&out.join(dir).join("1/report.json"));
        let prestop = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "pod_prestop");
        (r["failures"].clone(), prestop)
    };
    let (without, hook_without) = kinds("rolling-1-0");
    let (with, hook_with) = kinds("rolling-1-0-prestop-5s");
    eprintln!("keep-alive, no preStop: {without}; with a 5 s preStop sleep: {with}");
    assert!(!hook_without && hook_with, "the hook is the case's alone");
    assert_eq!(
        failed[1], 0,
        "with the preStop sleep nothing is lost: {with}"
    );
    let m = crate::support::read_json(&out.join("matrix.json"));
    assert_eq!(m["strategy_after"], "rolling:25%/25%");
    let _ = std::fs::remove_dir_all(&out);
}

/// `--trigger undo`: every run is `kubectl rollout undo` (an unmeasured restart first
/// gives it a revision to return to), a real rollout with the case's strategy.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn matrix_trigger_undo_rolls_back_in_every_run() {
    let manifest = format!("{}/examples/seed/readiness.yaml", crate::support::REPO);
    let out = std::env::temp_dir().join(format!("rollprobe-matrix-undo-{}", std::process::id()));
    let o = Command::new(crate::support::ROLLPROBE)
        .args(["matrix", "--lab", "-f", &manifest])
        .args(["--deployment", "backend-deployment"])
        .args([
            "--case",
            "rolling:100%/0%",
            "--repeat",
            "2",
            "--trigger",
            "undo",
        ])
        .args(["--rate", "50", "--settle", "2s"])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .output()
        .expect("rollprobe matrix runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let (header, rows) = matrix_rows(&out);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (run, r) in rows.iter().enumerate() {
        assert!(
            !r[col("rollout_ms")].is_empty(),
            "run {} rolled out: {r:?}",
            run + 1
        );
        let report = crate::support::read_json(
            &out.join(format!("rolling-100pct-0pct/{}/report.json", run + 1)),
        );
        let kinds: Vec<&str> = report["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert!(
            kinds.contains(&"rollout_start") && kinds.contains(&"pod_terminating"),
            "run {}: {kinds:?}",
            run + 1
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
