//! The lab under faults, through the `rollprobe` binary: pods that crash-loop, two lab
//! runs at once, SIGTERM in the middle of a run, SIGKILL followed by `rollprobe lab
//! cleanup`. Every case checks that no network namespace outlives it. Needs root,
//! iproute2 and iptables (ROLLPROBE_NETNS_TESTS=1); without it the test runner lists
//! them as ignored.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{namespaces_of, signal};

fn seed(name: &str) -> String {
    format!("{}/examples/seed/{name}.yaml", crate::support::REPO)
}

fn out_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `rollprobe lab -f MANIFEST ARGS... --out OUT`, its output captured.
fn start_lab(manifest: &str, args: &[&str], out: &Path) -> Child {
    Command::new(crate::support::ROLLPROBE)
        .args(["lab", "-f", manifest])
        .args(args)
        .args([
            "--quiet",
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollprobe lab runs")
}

/// Waits (bounded) for the child to exit and returns its output, read while it runs (a
/// report on stdout is larger than a pipe's buffer).
fn wait_bounded(child: Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill(2) of our own child, which has not been reaped.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            panic!("rollprobe lab (pid {pid}) still ran after {limit:?}");
        }
    }
}

/// Waits until the run's samples.csv has more than its header: probing has begun.
fn wait_probing(out: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let lines = std::fs::read_to_string(out.join("samples.csv"))
            .map(|s| s.lines().count())
            .unwrap_or(0);
        if lines > 10 {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rollprobe lab ended before probing: {status}");
        }
        assert!(Instant::now() < deadline, "no samples after 240 s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Pods whose app exits at start (EXIT_AT_START=3): the lab notices the crash loop
/// itself, as `kubectl get pods` shows CrashLoopBackOff, says so in one line naming the
/// pod and its exit status, and exits 2 (the manifests' pods cannot run: an input
/// problem, found before any request is measured) long before its 180 s wait runs out.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn crash_looping_pods_end_the_run_with_one_line() {
    let yaml = std::fs::read_to_string(seed("rolling")).unwrap().replace(
        "        image: shop/backend:v1\n",
        "        image: shop/backend:v1\n        env:\n        - {name: EXIT_AT_START, value: \"3\"}\n",
    );
    let dir = out_dir("crashloop");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("crashloop.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let out = dir.join("run");
    let started = Instant::now();
    let child = start_lab(
        manifest.to_str().unwrap(),
        &["--set-image", "backend-deployment=shop/backend:v2"],
        &out,
    );
    let pid = child.id();
    let o = wait_bounded(child, Duration::from_secs(120));
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("CrashLoopBackOff"))
        .unwrap_or_else(|| panic!("no CrashLoopBackOff line: {stderr}"));
    assert!(
        line.contains("pod backend-deployment-") && line.contains("exit status: 3"),
        "{line}"
    );
    assert!(
        took < Duration::from_secs(60),
        "noticed after {took:?}, not by the wait's timeout"
    );
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two `rollprobe lab` runs at once, on different manifests: each has its own
/// namespaces, addresses and rules, so each report shows its own case (Blue/Green's
/// switch loses nothing; a rolling update without readinessProbe is refused while its new
/// pods start), and neither leaves a namespace behind.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn two_lab_runs_at_once_do_not_collide() {
    let (out_a, out_b) = (out_dir("twice-bluegreen"), out_dir("twice-rolling"));
    let common_args = ["--rate", "50", "--settle", "3s"];
    let a = start_lab(
        &seed("bluegreen"),
        &[
            &["--set-selector", "backend-svc:version=v2"][..],
            &common_args,
        ]
        .concat(),
        &out_a,
    );
    let b = start_lab(
        &seed("rolling"),
        &[
            &["--set-image", "backend-deployment=shop/backend:v2"][..],
            &common_args,
        ]
        .concat(),
        &out_b,
    );
    let (pid_a, pid_b) = (a.id(), b.id());
    let (oa, ob) = (
        wait_bounded(a, Duration::from_secs(400)),
        wait_bounded(b, Duration::from_secs(400)),
    );
    for (o, name) in [(&oa, "bluegreen"), (&ob, "rolling")] {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let ra: serde_json::Value = serde_json::from_slice(&oa.stdout).unwrap();
    let rb: serde_json::Value = serde_json::from_slice(&ob.stdout).unwrap();
    let versions = |r: &serde_json::Value| -> Vec<String> {
        r["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(versions(&ra), ["v1", "v2"], "{}", ra["failures"]);
    assert_eq!(versions(&rb), ["v1", "v2"], "{}", rb["failures"]);
    assert_eq!(ra["totals"]["failed"], 0, "bluegreen: {}", ra["failures"]);
    let failures = rb["failures"].as_object().unwrap();
    assert!(
        failures.keys().all(|k| k == "connection_refused") && !failures.is_empty(),
        "rolling without readinessProbe: only refusals, {failures:?}"
    );
    // Each run's events are its own: no pod of one manifest in the other's report.
    let pods = |r: &serde_json::Value| -> Vec<String> {
        r["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["subject"]["pod"].as_str().map(str::to_string))
            .collect()
    };
    assert!(
        pods(&ra)
            .iter()
            .all(|p| p.starts_with("backend-deployment-1-")
                || p.starts_with("backend-deployment-2-")),
        "{:?}",
        pods(&ra)
    );
    assert!(
        pods(&rb)
            .iter()
            .all(|p| !p.starts_with("backend-deployment-1-")
                && !p.starts_with("backend-deployment-2-")),
        "{:?}",
        pods(&rb)
    );
    assert!(namespaces_of(pid_a).is_empty() && namespaces_of(pid_b).is_empty());
    let _ = (
        std::fs::remove_dir_all(&out_a),
        std::fs::remove_dir_all(&out_b),
    );
}

/// SIGTERM while the lab probes: the report is written with `interrupted: true`, the
/// exit code is the gates' (0 without one), and the pods, rules and namespaces are gone.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn sigterm_writes_the_report_and_leaves_no_namespaces() {
    let out = out_dir("lab-sigterm");
    // A long warm-up: the signal comes before the change.
    let mut child = start_lab(
        &seed("readiness"),
        &[
            "--set-image",
            "backend-deployment=shop/backend:v2",
            "--warmup",
            "60s",
        ],
        &out,
    );
    let pid = child.id();
    wait_probing(&out, &mut child);
    signal(&child, libc::SIGTERM);
    let o = wait_bounded(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let report = crate::support::read_json(&out.join("report.json"));
    assert_eq!(report["interrupted"], true, "{stderr}");
    assert!(report["totals"]["sent"].as_u64().unwrap() > 0);
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    let _ = std::fs::remove_dir_all(&out);
}

/// SIGKILL leaves the namespaces behind (nothing can run after it); the pods die with
/// the lab (PR_SET_PDEATHSIG), and `rollprobe lab cleanup` removes every namespace of the
/// dead run.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn sigkill_then_lab_cleanup_leaves_nothing() {
    let out = out_dir("lab-sigkill");
    let mut child = start_lab(
        &seed("rolling"),
        &[
            "--set-image",
            "backend-deployment=shop/backend:v2",
            "--warmup",
            "60s",
        ],
        &out,
    );
    let pid = child.id();
    wait_probing(&out, &mut child);
    assert!(!namespaces_of(pid).is_empty(), "the run has namespaces");
    signal(&child, libc::SIGKILL);
    let _ = wait_bounded(child, Duration::from_secs(10));
    assert!(
        !namespaces_of(pid).is_empty(),
        "SIGKILL cannot clean up: the namespaces are still there for cleanup to find"
    );
    let o = crate::support::rollprobe()
        .args(["lab", "cleanup"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("removed"), "{stderr}");
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    // Samples written before the kill stay readable.
    let rebuilt = crate::support::rollprobe()
        .args(["report", out.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        rebuilt.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// SIGTERM while the lab is still starting (its pods not serving yet): nothing was
/// measured, so the run says so and exits 3, and the lab is removed all the same.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn sigterm_while_the_lab_starts_removes_it() {
    let out = out_dir("lab-sigterm-setup");
    let mut child = start_lab(
        &seed("readiness"),
        &["--set-image", "backend-deployment=shop/backend:v2"],
        &out,
    );
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while namespaces_of(pid).len() < 3 {
        assert!(child.try_wait().unwrap().is_none(), "the lab ended early");
        assert!(Instant::now() < deadline, "no lab namespaces after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&child, libc::SIGTERM);
    let o = wait_bounded(child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("interrupted before probing began"),
        "{stderr}"
    );
    assert!(!out.join("report.json").exists());
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    let _ = std::fs::remove_dir_all(&out);
}
