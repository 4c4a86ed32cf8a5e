//! probe-core used exactly as a user's integration test would: a local service
//! is redeployed v1 -> gap -> v2 while probed, and the report is checked.

mod support;

use std::time::Duration;

use probe_core::{ConnectionMode, Probe};
use support::{Exec, ServiceInstance};

on_both_executors!(
    a_redeploy_with_a_gap_is_one_refused_window_between_two_versions,
    keepalive_reuses_connections_and_sees_the_restart,
    send_times_are_measured_not_the_due_instants,
);
on_both_executors!(multi_thread: a_one_second_outage_at_200_per_second_is_measured_to_the_tick);

async fn a_redeploy_with_a_gap_is_one_refused_window_between_two_versions(exec: Exec) {
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let addr = v1.addr();
    let probe = exec
        .on(Probe::builder(&format!("http://{addr}/test/version")))
        .rate(100)
        .label("gap")
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    probe.mark("stop v1");
    v1.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v2 = ServiceInstance::start(addr, "v2", false).await.unwrap();
    probe.mark("v2 listening");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let report = probe.stop().await.unwrap();
    exec.assert_ran(&report);
    v2.stop().await;
    let summary = report.summary();

    let t = &report.totals;
    assert_eq!(t.ok + t.failed + t.local, t.sent, "{summary}");
    assert!((240..=260).contains(&t.sent), "{summary}");
    assert_eq!(t.local, 0);
    // 500 ms at 100 req/s: about 50 refused, give or take scheduling.
    assert!((38..=62).contains(&t.failed), "{summary}");
    // Refused while nothing listens; the request in flight at the moment v1
    // stopped may instead be reset or closed, as on a real pod kill.
    let refused = report.failures["connection_refused"];
    assert!(refused + 2 >= t.failed, "{summary}");
    for kind in report.failures.keys() {
        assert!(
            [
                "connection_refused",
                "connection_reset",
                "connection_closed"
            ]
            .contains(&kind.as_str()),
            "{summary}"
        );
    }

    assert_eq!(report.downtime.windows.len(), 1, "{summary}");
    let w = &report.downtime.windows[0];
    assert!(!w.open);
    assert_eq!(w.failed, t.failed);
    assert!((380.0..=620.0).contains(&w.duration_ms), "{summary}");
    assert_eq!(report.downtime.total_ms, w.duration_ms);
    let stop = report
        .events
        .iter()
        .find(|e| e.detail == "stop v1")
        .expect("the mark is on the timeline");
    // The window opens at the mark, or one tick before it when the request in
    // flight at that moment was cut off.
    assert!((w.start_ms - stop.at_ms).abs() < 25.0, "{summary}");
    if let Some(before) = &w.after_event {
        assert_eq!(
            (before.kind.as_str(), before.detail.as_str()),
            ("mark", "stop v1")
        );
    }

    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"], "{summary}");
    assert_eq!(report.flips, 1);
    assert_eq!(report.mixed_ms, 0.0);
    // Versions are placed where the answers arrived: v1's last before v2's first,
    // which came back no earlier than the tick that ended the window.
    assert!(report.versions[0].last_ms < report.versions[1].first_ms);
    assert!(report.versions[1].first_ms >= w.end_ms, "{summary}");
    assert!(report.latency_ms.count == t.ok && report.latency_ms.p50 > 0.0);
}

async fn keepalive_reuses_connections_and_sees_the_restart(exec: Exec) {
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let addr = v1.addr();
    let dir = std::env::temp_dir().join(format!(
        "rollprobe-lib-keepalive-{}-{}",
        std::process::id(),
        exec.name()
    ));
    let probe = exec
        .on(Probe::builder(&format!("http://{addr}/test/version")))
        .rate(100)
        .connection(ConnectionMode::Keepalive)
        .out_dir(&dir)
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    v1.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v2 = ServiceInstance::start(addr, "v2", false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = probe.stop().await.unwrap();
    exec.assert_ran(&report);
    v2.stop().await;
    let summary = report.summary();
    assert!(report.totals.failed > 0, "{summary}");
    assert_eq!(report.versions.len(), 2, "{summary}");
    // Many requests rode on reused connections (fewer when a loaded machine
    // keeps more requests in flight at once, each needing its own connection).
    let run = probe_core::read_samples(&dir.join("samples.csv")).unwrap();
    let reused = run
        .samples
        .iter()
        .filter(|s| s.connection.as_deref() == Some("reused"))
        .count();
    assert!(
        reused * 4 > run.samples.len(),
        "{reused} of {}",
        run.samples.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn a_one_second_outage_at_200_per_second_is_measured_to_the_tick(exec: Exec) {
    let dir = std::env::temp_dir().join(format!(
        "rollprobe-lib-1s-{}-{}",
        std::process::id(),
        exec.name()
    ));
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let addr = v1.addr();
    let probe = exec
        .on(Probe::builder(&format!("http://{addr}/test/version")))
        .rate(200)
        .out_dir(&dir)
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    v1.stop().await;
    let down_at = probe.elapsed_ms();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let v2 = ServiceInstance::start(addr, "v2", false).await.unwrap();
    let up_at = probe.elapsed_ms();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let report = probe.stop().await.unwrap();
    exec.assert_ran(&report);
    v2.stop().await;
    let summary = report.summary();
    let actual = up_at - down_at;
    eprintln!("actual outage {actual:.3} ms\n{summary}");

    // 1 s at 200 req/s: 200 refused, give or take the ticks at the edges.
    let refused = report.failures["connection_refused"];
    assert!((180..=220).contains(&refused), "{summary}");
    assert_eq!(report.downtime.windows.len(), 1, "{summary}");
    let w = &report.downtime.windows[0];
    // Each edge is seen within one tick (5 ms) of when it happened.
    assert!(
        (w.duration_ms - actual).abs() <= 10.0,
        "window {} ms, outage {actual:.3} ms",
        w.duration_ms
    );
    assert!(
        (980.0..=1100.0).contains(&actual),
        "the test's own timing: {actual}"
    );
    // samples.csv has one row per scheduled request.
    let run = probe_core::read_samples(&dir.join("samples.csv")).unwrap();
    assert_eq!(
        run.samples.len() as u64,
        report.totals.sent + report.totals.skipped
    );
    let mut seqs: Vec<u64> = run.samples.iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    assert!(seqs.iter().enumerate().all(|(i, s)| *s == i as u64));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A sample's send time is when the request really went out (a new connection's
/// connect, a kept-alive one's send): never before its tick, and not the tick itself,
/// as it would be if an executor wrote the due instant down instead of measuring.
async fn send_times_are_measured_not_the_due_instants(exec: Exec) {
    let service = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    for mode in [ConnectionMode::Fresh, ConnectionMode::Keepalive] {
        let dir = std::env::temp_dir().join(format!(
            "rollprobe-lib-send-times-{}-{}-{mode:?}",
            std::process::id(),
            exec.name()
        ));
        let builder = Probe::builder(&format!("http://{}/test/version", service.addr()))
            .rate(200)
            .duration(Duration::from_millis(250))
            .connection(mode)
            .out_dir(&dir);
        let report = exec.run(exec.on(builder)).await;
        assert_eq!(report.totals.ok, 50, "{mode:?}: {}", report.summary());
        let run = probe_core::read_samples(&dir.join("samples.csv")).unwrap();
        let lags: Vec<f64> = run
            .samples
            .iter()
            .map(|s| s.sent_ms.expect("a sent request has its send time") - s.intended_ms)
            .collect();
        assert!(lags.iter().all(|lag| *lag >= 0.0), "{mode:?}: {lags:?}");
        // Samples keep microseconds: a measured send a few microseconds after its
        // tick shows; a few may round to the tick.
        let on_the_tick = lags.iter().filter(|lag| **lag == 0.0).count();
        assert!(on_the_tick * 10 < lags.len(), "{mode:?}: {lags:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    service.stop().await;
}
