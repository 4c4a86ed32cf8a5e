//! What the proxy suites of the lab (ingress.rs, mesh.rs) share: the lab's timings
//! scaled down for tests, the app they roll, and small helpers.

#![allow(dead_code)] // each suite uses its own part

use std::path::PathBuf;
use std::time::Duration;

use probe_lab::LabConfig;

/// The lab's timings scaled down so each test takes well under 20 s.
pub fn fast_config() -> LabConfig {
    LabConfig {
        app_command: Some(vec![env!("CARGO_BIN_EXE_probe-lab-app").to_string()]),
        startup_delay: Duration::from_millis(1000),
        pod_start_latency: Duration::from_millis(200),
        kill_latency: Duration::from_millis(300),
        proxy_sync_delay: Duration::from_millis(100),
        sandbox_teardown_delay: Duration::from_millis(300),
        max_lifetime: Duration::from_secs(120),
        ingress: probe_lab::IngressConfig {
            sync_delay: Duration::from_millis(500),
        },
        ..LabConfig::default()
    }
}

/// Two replicas of a versioned app without a readinessProbe (a pod is ready before its
/// app listens), rolled 25%/25% (one surge pod, none unavailable), behind `web-svc`.
pub const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers: [{name: app, image: "shop/web:v1"}]
---
apiVersion: v1
kind: Service
metadata: {name: web-svc}
spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 8080}]}
"#;

/// A scratch folder for a test's run (`suite` names the test file), removed first.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The pids in a namespace.
pub fn pids(ns: &str) -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
