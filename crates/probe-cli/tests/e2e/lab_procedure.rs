//! The lab's whole procedure through the library: a healthy baseline before probing,
//! several steps per rollout, preStop hooks and graceful drains. Needs root, iproute2 and
//! iptables (ROLLPROBE_NETNS_TESTS=1); each case costs tens of seconds.

use std::time::Duration;

use rollprobe::lab::{Lab, LabConfig, Step};
use rollprobe::{ConnectionMode, Probe, Report, Rollout};

fn manifest(name: &str) -> String {
    let path = format!("{}/examples/seed/{name}", crate::support::REPO);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn start() -> Lab {
    // The lab's pods run the rollprobe app; a test binary is not it.
    Lab::start(LabConfig {
        app_command: crate::support::lab_app(),
        ..Default::default()
    })
    .await
    .expect("lab starts")
}

/// A newcomer's Blue/Green (no readinessProbe, 1.5 s to listen, ClusterIP): the lab
/// waits for a healthy baseline, green is scaled up and waited for until it listens, and
/// the selector switch then loses nothing and leaves no baseline warning.
#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn bluegreen_switch_from_a_healthy_baseline_loses_nothing() {
    let lab = start().await;
    let measured = async {
        lab.apply_yaml(&manifest("bluegreen-slow.yaml"))?;
        lab.wait_available(Duration::from_secs(60)).await?;
        lab.wait_serving("web-svc", Duration::from_secs(60)).await?;
        lab.set_replicas("web-green", 2)?;
        lab.wait_available(Duration::from_secs(60)).await?;
        lab.wait_listening("web-green", Duration::from_secs(60))
            .await?;
        let change = lab.clone();
        let switch: Vec<Step> = vec!["selector:web-svc:color=green".parse()?];
        let report = Rollout::new(Probe::builder(&lab.service_url("web-svc")?).rate(100))
            .lab(&lab)
            .warmup(Duration::from_secs(1))
            .settle(Duration::from_secs(2))
            .trigger(async move { change.run_steps(&switch).await })
            .run()
            .await?;
        Ok::<Report, Box<dyn std::error::Error>>(report)
    }
    .await;
    lab.shutdown().await.unwrap();
    let report = measured.unwrap();
    let summary = report.summary();
    assert_eq!(report.totals.failed, 0, "{summary}");
    assert!(
        report.warnings.is_empty(),
        "{:?}\n{summary}",
        report.warnings
    );
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["blue", "green"], "{summary}");
    assert!(
        report
            .events
            .iter()
            .any(|e| e.detail == "step selector:web-svc:color=green"),
        "the step is an event on the probe's clock: {summary}"
    );
}

/// The seed's readiness manifest, rolled out while a keep-alive client probes at 100/s,
/// with `extra` inserted into its container (a preStop hook, env).
async fn readiness_keepalive(extra: &str) -> Report {
    let yaml = manifest("readiness.yaml").replace(
        "        image: shop/backend:v1\n",
        &format!("        image: shop/backend:v1\n{extra}"),
    );
    let lab = start().await;
    let measured = async {
        lab.apply_yaml(&yaml)?;
        lab.wait_available(Duration::from_secs(120)).await?;
        lab.wait_serving("backend-svc", Duration::from_secs(60))
            .await?;
        let change = lab.clone();
        let roll: Vec<Step> = vec!["set-image:backend-deployment=shop/backend:v2".parse()?];
        let probe = Probe::builder(&lab.service_url("backend-svc")?)
            .rate(100)
            .connection(ConnectionMode::Keepalive);
        let report = Rollout::new(probe)
            .lab(&lab)
            .warmup(Duration::from_secs(1))
            .settle(Duration::from_secs(2))
            .trigger(async move { change.run_steps(&roll).await })
            .run()
            .await?;
        Ok::<Report, Box<dyn std::error::Error>>(report)
    }
    .await;
    lab.shutdown().await.unwrap();
    measured.unwrap()
}

/// Without a preStop hook the old pods' app dies at SIGTERM while keep-alive
/// connections to it are still open (kube-proxy's rule changes do not move established
/// connections), so the client loses requests on them. A preStop sleep alone does not
/// change that for a server that dies at once; with a graceful drain behind it
/// (`SHUTDOWN_DELAY_MS`: each request still arriving is answered with
/// `Connection: close`, the client reconnects through the updated rules) nothing is lost,
/// even with 50 ms of service time per answer keeping requests in flight.
#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn keepalive_needs_prestop_and_a_graceful_drain() {
    let service_time = "        env:\n        - {name: RESPONSE_DELAY_MS, value: \"50\"}\n";
    let bare = readiness_keepalive(service_time).await;
    let lost = |r: &Report| -> u64 {
        ["connection_reset", "connection_closed"]
            .iter()
            .map(|k| r.failures.get(*k).copied().unwrap_or(0))
            .sum()
    };
    eprintln!("keep-alive, no preStop: {:?}", bare.failures);
    assert!(lost(&bare) > 0, "{}", bare.summary());
    let graceful = readiness_keepalive(
        "        env:\n        - {name: SHUTDOWN_DELAY_MS, value: \"3000\"}\n        - {name: RESPONSE_DELAY_MS, value: \"50\"}\n        lifecycle:\n          preStop: {sleep: {seconds: 5}}\n",
    )
    .await;
    let summary = graceful.summary();
    eprintln!("keep-alive, preStop and drain: {:?}", graceful.failures);
    assert_eq!(graceful.totals.failed, 0, "{summary}");
    assert!(
        graceful.warnings.is_empty(),
        "{:?}\n{summary}",
        graceful.warnings
    );
    assert!(
        graceful
            .events
            .iter()
            .any(|e| e.kind.as_str() == "pod_prestop"),
        "{summary}"
    );
}

/// Steps are checked before any lab is built (no root needed): one line, exit 2.
#[test]
fn bad_steps_are_usage_errors_before_the_lab_starts() {
    let file = format!("{}/examples/seed/bluegreen-slow.yaml", crate::support::REPO);
    for (step, says) in [
        (
            "grow:web-green=2",
            "step 'grow:web-green=2': unknown kind 'grow'",
        ),
        ("scale:web-green=x", "'x' is not a replica count"),
        (
            "scale:web-red=2",
            "step 'scale:web-red=2': deployment web-red is not in the manifests",
        ),
        (
            "selector:other-svc:color=green",
            "service other-svc is not in the manifests",
        ),
    ] {
        let out = crate::support::rollprobe()
            .args(["lab", "-f", &file, "--step", step])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{step}: {stderr}");
        assert!(stderr.contains(says), "{step}: {stderr}");
    }
}
