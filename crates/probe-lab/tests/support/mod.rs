//! What the lab's suites share: the lab's timings scaled down for the proxy suites
//! (ingress.rs, mesh.rs), the app they roll, what they read of a rollout through a
//! proxy, and running code inside a namespace.

#![allow(dead_code)] // each suite uses its own part

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use probe_core::{
    read_samples, AccessLog, Outcome, ProbeBuilder, Report, Rollout, Sample, UpstreamRecord,
};
use probe_lab::{enter_netns, Lab, LabConfig};

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

/// Runs `f` on a thread inside namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter_netns");
        f()
    })
    .join()
    .unwrap()
}

/// Sends `request` (one that asks for `Connection: close`) to `addr` from namespace
/// `ns`: the answer's status line, its headers (lower case) and its body.
pub fn exchange(ns: &str, addr: SocketAddr, request: String) -> (String, String, String) {
    in_ns(ns, move || {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut all = String::new();
        let _ = s.read_to_string(&mut all);
        let (head, body) = all.split_once("\r\n\r\n").unwrap_or((&all, ""));
        let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
        (
            status.to_string(),
            headers.to_ascii_lowercase(),
            body.to_string(),
        )
    })
}

/// Every access log of the lab's proxies in one, once it speaks of every one of
/// `samples` (Envoy flushes its log every 100 ms: waits at most 3 s).
pub fn joined_log(lab: &Lab, samples: &[Sample]) -> AccessLog {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let mut log = AccessLog::default();
        for path in lab.access_logs() {
            for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
                log.add_line(line);
            }
        }
        let all = samples.iter().all(|s| record(&log, s).is_some());
        if all || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What `log` says of `sample`'s request.
pub fn record<'a>(log: &'a AccessLog, sample: &Sample) -> Option<&'a UpstreamRecord> {
    sample.request_id.as_deref().and_then(|id| log.get(id))
}

/// The requests of `samples` that the proxy retried, by its log.
pub fn retried<'a>(samples: &'a [Sample], log: &AccessLog) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| record(log, s).is_some_and(|r| r.retried()))
        .collect()
}

/// Prints the first failed requests of `samples` with what `log` says of each.
pub fn show_failures(through: impl std::fmt::Display, samples: &[Sample], log: &AccessLog) {
    for s in samples.iter().filter(|s| s.outcome != Outcome::Ok).take(5) {
        eprintln!(
            "  failed through {through}: {} {:?}",
            s.outcome,
            record(log, s).map(|r| r.to_string())
        );
    }
}

/// Failed requests of the stream whose name starts with `prefix`.
pub fn failed(report: &Report, prefix: &str) -> u64 {
    report
        .streams
        .iter()
        .find(|s| s.name.starts_with(prefix))
        .map(|s| s.totals.failed)
        .unwrap_or_else(|| panic!("no stream {prefix}: {}", report.summary()))
}

/// Rolls `web` to v2 while `probe` runs (its samples in `out`): the report, the samples
/// of the streams whose name starts with `through`, and the proxies' joined log.
pub async fn roll_web_through(
    lab: &Lab,
    probe: ProbeBuilder,
    out: &Path,
    through: &str,
) -> Result<(Report, Vec<Sample>, AccessLog), Box<dyn std::error::Error>> {
    let change = lab.clone();
    let report = Rollout::new(probe.out_dir(out))
        .events(lab.clone())
        .warmup(Duration::from_millis(800))
        .settle(Duration::from_millis(1500))
        .rollout_timeout(Duration::from_secs(30))
        .trigger(async move { change.set_image("web", "shop/web:v2") })
        .run()
        .await?;
    let samples: Vec<Sample> = read_samples(out)?
        .samples
        .into_iter()
        .filter(|s| s.stream.starts_with(through))
        .collect();
    let log = joined_log(lab, &samples);
    Ok((report, samples, log))
}
