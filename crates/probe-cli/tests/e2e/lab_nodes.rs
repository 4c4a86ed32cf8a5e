//! The lab with several nodes: pods spread over nodes, each node's kube-proxy syncing
//! after its own delay, and what a client sees when one node's rules lag. Needs root,
//! iproute2 and iptables (ROLLPROBE_NETNS_TESTS=1).

use std::time::Duration;

use rollprobe::lab::{Kernel, Lab, LabConfig, LabFrom};
use rollprobe::{EventKind, Probe, Report, Rollout};

fn manifest(name: &str) -> String {
    let path = format!("{}/examples/seed/{name}", crate::support::REPO);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Two nodes, node 2's kube-proxy three seconds behind node 1's; a rolling update with a
/// readinessProbe, probed by a client pod on each node: node 1's loses nothing, node 2's
/// loses requests its node still routed to a pod already gone, and the cause says so.
#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn a_lagging_nodes_rules_route_requests_to_a_pod_already_gone() {
    let lab = Lab::start(LabConfig {
        app_command: crate::support::lab_app(),
        nodes: 2,
        node_sync_delays: vec![Duration::from_millis(100), Duration::from_secs(3)],
        startup_delay: Duration::from_millis(500),
        pod_start_latency: Duration::from_millis(200),
        kill_latency: Duration::from_millis(300),
        sandbox_teardown_delay: Duration::from_millis(300),
        time_scale: 0.1,
        kernel: Kernel::Tuned,
        max_lifetime: Duration::from_secs(300),
        ..Default::default()
    })
    .await
    .expect("lab starts");
    let measured = async {
        lab.apply_yaml(&manifest("readiness.yaml"))?;
        lab.wait_available(Duration::from_secs(60)).await?;
        lab.wait_serving("backend-svc", Duration::from_secs(60))
            .await?;
        // One elected node announces the LoadBalancer address; the others do not.
        let client = lab.vantage_point(LabFrom::Client, "backend-svc")?;
        let lb_ip = client
            .url
            .split(['/', ':'])
            .nth(3)
            .unwrap_or_default()
            .to_string();
        let speaker = lab.announcing_node("backend-svc")?.expect("a LoadBalancer");
        for (i, ns) in lab.node_netns_all().iter().enumerate() {
            let out = std::process::Command::new("ip")
                .args(["-n", ns, "addr", "show", "lb0"])
                .output()?;
            let addrs = String::from_utf8_lossy(&out.stdout);
            let has = addrs.contains(&format!("inet {lb_ip}/32"));
            assert_eq!(has, i + 1 == speaker, "node{} {lb_ip}: {addrs}", i + 1);
        }
        // Client pods on both nodes, on one clock: node 2's first (the report's first
        // stream), node 1's beside it.
        let lagging = lab.vantage_point(LabFrom::Pod(2), "backend-svc")?;
        let prompt = lab.vantage_point(LabFrom::Pod(1), "backend-svc")?;
        assert_eq!(
            (lagging.name.as_str(), prompt.name.as_str()),
            ("pod2", "pod1")
        );
        let change = lab.clone();
        let report = Rollout::new(
            Probe::builder(&lagging.url)
                .rate(100)
                .vantage_point(&lagging.name, &lagging.url, lagging.vantage.clone())
                .vantage_point(&prompt.name, &prompt.url, prompt.vantage.clone()),
        )
        .events(lab.clone())
        .warmup(Duration::from_secs(1))
        .settle(Duration::from_secs(4))
        .trigger(async move { change.set_image("backend-deployment", "shop/backend:v2") })
        .run()
        .await?;
        Ok::<Report, Box<dyn std::error::Error>>(report)
    }
    .await;
    lab.shutdown().await.unwrap();
    let report = measured.unwrap();
    let summary = report.summary();
    // Pods ran on both nodes.
    for node in ["node1", "node2"] {
        assert!(
            report
                .events
                .iter()
                .any(|e| e.kind == EventKind::PodReady && e.subject.node.as_deref() == Some(node)),
            "no pod on {node}\n{summary}"
        );
    }
    // Each node's sync is an event naming the node; node 2's come seconds later.
    let removed = |node: &str| -> Vec<(f64, Option<std::net::IpAddr>)> {
        report
            .events
            .iter()
            .filter(|e| e.kind == EventKind::EndpointRemoved)
            .filter(|e| e.subject.node.as_deref() == Some(node))
            .map(|e| (e.at_ms, e.subject.address))
            .collect()
    };
    let (on1, on2) = (removed("node1"), removed("node2"));
    assert!(!on1.is_empty() && on1.len() == on2.len(), "{on1:?} {on2:?}");
    for ((t1, a1), (t2, a2)) in on1.iter().zip(&on2) {
        assert_eq!(a1, a2);
        assert!(t2 - t1 > 2500.0, "node2 synced {t2} vs node1 {t1}");
    }
    let names: Vec<&str> = report.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["pod2-fresh", "pod1-fresh"], "{summary}");
    // Through node 1's prompt rules nothing was lost; through node 2's, requests were.
    assert_eq!(report.streams[1].totals.failed, 0, "{summary}");
    assert!(report.streams[0].totals.failed > 0, "{summary}");
    let lagged: Vec<String> = report
        .downtime
        .windows
        .iter()
        .filter_map(|w| w.cause.as_ref().map(ToString::to_string))
        .filter(|c| c.starts_with("node2's kube-proxy rules lagged"))
        .collect();
    assert!(
        !lagged.is_empty(),
        "no window blamed on node2's rules\n{summary}"
    );
    for cause in &lagged {
        assert!(
            cause.contains("though node1's rules had dropped it"),
            "{cause}"
        );
    }
}

/// The seed's Recreate with tuned kernel settings, seen by the LoadBalancer's client host
/// and by a client pod calling the ClusterIP, in one run on one clock (as `rollprobe lab
/// --from client --from pod` runs it): the client meets the withdrawn announcement ("No
/// route to host") besides kube-proxy's REJECT, the pod only the REJECT.
#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn recreate_from_the_client_and_from_a_pod() {
    let lab = Lab::start(LabConfig {
        app_command: crate::support::lab_app(),
        kernel: Kernel::Tuned,
        ..Default::default()
    })
    .await
    .expect("lab starts");
    let measured = async {
        lab.apply_yaml(&manifest("recreate.yaml"))?;
        lab.wait_available(Duration::from_secs(120)).await?;
        lab.wait_serving("backend-svc", Duration::from_secs(120))
            .await?;
        let client = lab.vantage_point(LabFrom::Client, "backend-svc")?;
        let pod = lab.vantage_point(LabFrom::Pod(1), "backend-svc")?;
        assert_eq!(
            (client.name.as_str(), pod.name.as_str()),
            ("client", "pod1")
        );
        assert_ne!(client.url, pod.url, "LoadBalancer address vs ClusterIP");
        let change = lab.clone();
        let probe = Probe::builder(&client.url)
            .rate(50)
            .vantage_point(&client.name, &client.url, client.vantage.clone())
            .vantage_point(&pod.name, &pod.url, pod.vantage.clone());
        let report = Rollout::new(probe)
            .events(lab.clone())
            .warmup(Duration::from_secs(1))
            .settle(Duration::from_secs(2))
            .trigger(async move { change.set_image("backend-deployment", "shop/backend:v2") })
            .run()
            .await?;
        Ok::<Report, Box<dyn std::error::Error>>(report)
    }
    .await;
    lab.shutdown().await.unwrap();
    let report = measured.unwrap();
    let summary = report.summary();
    let names: Vec<&str> = report.streams.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["client-fresh", "pod1-fresh"], "{summary}");
    let kinds = |i: usize| -> Vec<&str> {
        report.streams[i]
            .failures
            .keys()
            .map(String::as_str)
            .collect()
    };
    let (client, pod) = (kinds(0), kinds(1));
    eprintln!("client {client:?}, pod {pod:?}\n{summary}");
    assert!(
        client.contains(&"host_unreachable"),
        "client {client:?}\n{summary}"
    );
    assert!(
        client.contains(&"connection_refused"),
        "client {client:?}\n{summary}"
    );
    // From the pod, through the ClusterIP to pod addresses: refused, never
    // unreachable. A new connection still open to an old pod as it exits (in its
    // listener's queue, or its request unanswered) is reset by the kernel: at 50 req/s,
    // one per old pod at most (it happened once in a full run).
    assert!(pod.contains(&"connection_refused"), "pod\n{summary}");
    assert!(
        pod.iter()
            .all(|k| ["connection_refused", "connection_reset"].contains(k)),
        "pod\n{summary}"
    );
    let resets = report.streams[1].failures.get("connection_reset");
    assert!(resets.copied().unwrap_or(0) <= 2, "pod\n{summary}");
    // One clock: both streams' outages lie within the same rollout, between the old
    // pods' termination and the new pods' readiness.
    let at = |kind: EventKind| {
        report
            .events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.at_ms)
            .collect::<Vec<f64>>()
    };
    let (terminating, ready) = (at(EventKind::PodTerminating), at(EventKind::PodReady));
    let from = terminating.iter().cloned().fold(f64::INFINITY, f64::min);
    let until = ready.iter().cloned().fold(0.0, f64::max) + 10_000.0;
    for s in &report.streams {
        assert!(!s.downtime.windows.is_empty(), "{}\n{summary}", s.name);
        for w in &s.downtime.windows {
            assert!(w.start_ms >= from && w.end_ms <= until, "{} {w:?}", s.name);
        }
    }
}
