//! Choosing the executor: io_uring by default where the kernel allows it, for kept-alive
//! and new connections alike, the tokio executor when forced (`ROLLPROBE_EXECUTOR=tokio`
//! or `ExecutorChoice::Tokio`); report.json's `probe` says which ran and why.
//!
//! One test in its own file (its own process): it sets the environment variable,
//! which no other test may see.

mod support;

use std::time::Duration;

use probe_core::{ConnectionMode, ExecutorUsed, Probe};
use support::{serve, Behaviour};

async fn executor_of(url: &str, connection: ConnectionMode) -> ExecutorUsed {
    let probe = Probe::builder(url)
        .connection(connection)
        .rate(50)
        .duration(Duration::from_millis(200))
        .start()
        .await
        .expect("probe starts");
    probe.schedule_finished().await;
    let report = probe.stop().await.expect("probe stops");
    assert_eq!(report.totals.ok, 10, "{}", report.summary());
    assert_eq!(report.streams[0].probe.executor, report.probe.executor);
    report
        .probe
        .executor
        .expect("a live run names its executor")
}

#[tokio::test]
async fn the_environment_forces_the_fallback_and_the_report_says_so() {
    let s = serve(Behaviour::Respond {
        status: 200,
        headers: Vec::new(),
        body: "v1".into(),
    });
    // SAFETY (edition 2024's concern): no other thread of this process reads the
    // environment meanwhile; this file has one test.
    std::env::set_var("ROLLPROBE_EXECUTOR", "tokio");
    let forced = executor_of(&s.url(), ConnectionMode::Keepalive).await;
    assert_eq!(forced.name, "tokio");
    assert_eq!(
        forced.why.as_deref(),
        Some("asked for (ROLLPROBE_EXECUTOR=tokio)")
    );
    std::env::set_var("ROLLPROBE_EXECUTOR", "epoll");
    let unknown = executor_of(&s.url(), ConnectionMode::Keepalive).await;
    assert_eq!(unknown.name, "tokio");
    assert!(unknown.why.unwrap().contains("neither tokio nor io_uring"));
    let uring = ExecutorUsed {
        name: "io_uring".into(),
        why: None,
    };
    std::env::set_var("ROLLPROBE_EXECUTOR", "io_uring");
    let asked = executor_of(&s.url(), ConnectionMode::Fresh).await;
    assert_eq!(asked, uring);
    std::env::remove_var("ROLLPROBE_EXECUTOR");
    let default = executor_of(&s.url(), ConnectionMode::Keepalive).await;
    assert_eq!(default, uring);
    let fresh = executor_of(&s.url(), ConnectionMode::Fresh).await;
    assert_eq!(fresh, uring);
}
