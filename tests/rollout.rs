//! The library as a user's integration test uses it: `rollprobe::Rollout` around a
//! redeploy written as a future, against a real service on loopback.

mod support;

use std::time::Duration;

use rollprobe::{EventKind, Probe, Rollout};
use support::ServiceInstance;

#[tokio::test]
async fn a_redeploy_inside_the_trigger_is_one_window_between_two_versions() {
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let addr = v1.addr();
    let report = Rollout::new(Probe::builder(&format!("http://{addr}/test/version")).rate(100))
        .warmup(Duration::from_millis(500))
        .settle(Duration::from_millis(500))
        .trigger(async move {
            v1.stop().await;
            tokio::time::sleep(Duration::from_millis(400)).await;
            let v2 = ServiceInstance::start(addr, "v2", false).await?;
            // Keep v2 serving through the settle time, as a redeployed service would.
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                v2.stop().await;
            });
            Ok::<(), std::io::Error>(())
        })
        .run()
        .await
        .expect("the rollout is measured");
    let summary = report.summary();
    let kinds: Vec<&EventKind> = report.events.iter().map(|e| &e.kind).collect();
    assert_eq!(
        kinds,
        [&EventKind::TriggerStart, &EventKind::TriggerExit],
        "{summary}"
    );
    assert_eq!(report.events[1].detail, "ok");
    assert_eq!(report.downtime.windows.len(), 1, "{summary}");
    let w = &report.downtime.windows[0];
    // 400 ms without a listener at 100 req/s, give or take scheduling.
    assert!((300.0..=650.0).contains(&w.duration_ms), "{summary}");
    assert!(w.start_ms >= report.events[0].at_ms - 15.0, "{summary}");
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"], "{summary}");
    // Warm-up, trigger (~0.4 s) and settle: about 1.3 s of probing.
    assert!((110..=170).contains(&report.totals.sent), "{summary}");
}

#[tokio::test]
async fn a_failed_trigger_is_recorded_and_the_report_still_returned() {
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let url = format!("http://{}/test/version", v1.addr());
    let report = Rollout::new(Probe::builder(&url).rate(50))
        .warmup(Duration::from_millis(200))
        .settle(Duration::from_millis(200))
        .trigger(async { Err::<(), _>("the registry refused the image") })
        .trigger_name("push shop/web:v2")
        .run()
        .await
        .expect("a failed trigger is not an error of run()");
    v1.stop().await;
    let exit = report
        .events
        .iter()
        .find(|e| e.kind == EventKind::TriggerExit)
        .expect("trigger_exit is on the timeline");
    assert_eq!(exit.detail, "failed: the registry refused the image");
    // The name given to the future is what the timeline and the trigger's report say.
    let start = report
        .events
        .iter()
        .find(|e| e.kind == EventKind::TriggerStart);
    assert_eq!(start.map(|e| e.detail.as_str()), Some("push shop/web:v2"));
    let trigger = report
        .trigger
        .as_ref()
        .expect("the trigger's end is reported");
    assert_eq!(trigger.command, "push shop/web:v2");
    assert!(
        report.summary().contains("push shop/web:v2 failed"),
        "{}",
        report.summary()
    );
    assert_eq!(report.totals.failed, 0, "{}", report.summary());
    assert!(report.totals.ok > 0);
}

#[tokio::test]
async fn a_missing_trigger_command_is_refused_before_probing() {
    let err = Rollout::new(Probe::builder("http://127.0.0.1:9/").rate(10))
        .trigger_command(["rollprobe-no-such-command", "--flag"])
        .run()
        .await
        .expect_err("an unknown command cannot run");
    assert_eq!(
        err.to_string(),
        "trigger command 'rollprobe-no-such-command' not found: give a program on PATH or a path to one"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = Box::new(err);
    assert!(!boxed.to_string().is_empty());
}
