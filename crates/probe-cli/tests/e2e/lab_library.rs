//! The seed's cases through the library only, as a user's integration test would run
//! them: `rollprobe::lab::Lab` and `Rollout::lab`, no CLI. Needs root, iproute2 and
//! iptables (ROLLPROBE_NETNS_TESTS=1). The errnos that Recreate shows depend on the
//! kernel settings; this suite asserts what holds on every setting.

use std::collections::BTreeSet;
use std::time::Duration;

use rollprobe::lab::{Lab, LabConfig};
use rollprobe::{Probe, Report, Rollout};

async fn seed_case(case: &str) -> Result<Report, Box<dyn std::error::Error>> {
    let manifest = format!("{}/examples/seed/{case}.yaml", crate::support::REPO);
    measure(&std::fs::read_to_string(manifest)?).await
}

/// The documented example: apply, wait until available, then `Rollout::lab` around a
/// set-image of `backend-deployment` to `shop/backend:v2`, probing `backend-svc`.
async fn measure(manifest: &str) -> Result<Report, Box<dyn std::error::Error>> {
    // The lab's pods run the rollprobe app; a test binary is not it.
    let lab = Lab::start(LabConfig {
        app_command: crate::support::lab_app(),
        ..Default::default()
    })
    .await?;
    let measured = async {
        lab.apply_yaml(manifest)?;
        lab.wait_available(Duration::from_secs(120)).await?;
        let change = lab.clone();
        let report = Rollout::new(Probe::builder(&lab.service_url("backend-svc")?).rate(50))
            .lab(&lab)
            .warmup(Duration::from_secs(1))
            .settle(Duration::from_secs(2))
            .trigger(async move { change.set_image("backend-deployment", "shop/backend:v2") })
            .run()
            .await?;
        Ok::<Report, Box<dyn std::error::Error>>(report)
    }
    .await;
    lab.shutdown().await?;
    measured
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn recreate_loses_requests_and_every_window_names_a_pod() {
    let report = seed_case("recreate").await.unwrap();
    let summary = report.summary();
    assert!(report.totals.failed > 0, "{summary}");
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"], "{summary}");
    let pods: BTreeSet<String> = report
        .events
        .iter()
        .filter_map(|e| e.subject.pod.clone())
        .collect();
    assert!(!report.downtime.windows.is_empty(), "{summary}");
    for w in &report.downtime.windows {
        let cause = w
            .cause
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            pods.iter().any(|p| cause.contains(p.as_str())),
            "window at {} ms names no pod: {cause}\n{summary}",
            w.start_ms
        );
    }
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn readiness_loses_nothing() {
    let report = seed_case("readiness").await.unwrap();
    let summary = report.summary();
    assert_eq!(report.totals.failed, 0, "{summary}");
    assert!(report.totals.ok > 100, "{summary}");
    assert!(
        report.versions.iter().any(|v| v.version == "v2"),
        "the new version answered: {summary}"
    );
}

/// The documented example (wait_available, then `Rollout::lab`) on a manifest whose pods
/// have no readinessProbe and listen two seconds after they start: `Rollout::lab` waits
/// for the Service to answer steadily first, as `rollprobe lab` does, so the baseline
/// holds no start-up failures that a test asserting "no request lost" would trip over.
#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn the_documented_example_starts_from_a_serving_baseline() {
    // Available as soon as its process runs (no readinessProbe, no minReadySeconds), and
    // listening 1.5 s later.
    let manifest = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend-deployment}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {type: backend}}
  template:
    metadata: {labels: {type: backend}}
    spec:
      containers:
      - name: backend
        image: shop/backend:v1
        env: [{name: STARTUP_DELAY_MS, value: "1500"}]
---
apiVersion: v1
kind: Service
metadata: {name: backend-svc}
spec:
  selector: {type: backend}
  ports: [{port: 8080, targetPort: 8080}]
  type: LoadBalancer
"#;
    let report = measure(manifest).await.unwrap();
    let summary = report.summary();
    let before = report
        .phases
        .iter()
        .find(|p| p.name == "before")
        .unwrap_or_else(|| panic!("a phase before the trigger: {summary}"));
    assert!(before.sent > 0, "{summary}");
    assert_eq!(before.failed, 0, "the baseline failed: {summary}");
    let trigger = report
        .events
        .iter()
        .find(|e| e.kind == rollprobe::EventKind::TriggerStart)
        .map(|e| e.at_ms)
        .unwrap();
    for w in &report.downtime.windows {
        assert!(
            w.start_ms >= trigger,
            "a window before the trigger: {summary}"
        );
    }
}
