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
    // The lab's pods run the rollprobe app; a test binary is not it.
    let lab = Lab::start(LabConfig {
        app_command: crate::support::lab_app(),
        ..Default::default()
    })
    .await?;
    let measured = async {
        lab.apply_yaml(&std::fs::read_to_string(manifest)?)?;
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
        let cause = w.cause.as_deref().unwrap_or("");
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
