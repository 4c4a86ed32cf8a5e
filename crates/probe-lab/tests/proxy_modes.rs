//! kube-proxy's modes and traffic policies, measured through real namespaces: what a
//! client's `connect()` meets in nftables mode next to iptables mode, what a node without
//! a local endpoint does with `externalTrafficPolicy: Local` (and what its health check
//! says), and terminating endpoints serving while no ready one exists.
//!
//! Each test builds its lab from a seed manifest (examples/seed), changed in memory where
//! the case needs it. Root only: run with `ROLLPROBE_NETNS_TESTS=1`; without it the
//! runner lists them as ignored.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use probe_core::{Event, EventKind, EventSource};
use probe_lab::{Lab, LabConfig, ProxyMode};
use support::in_ns;

mod support;

fn config(mode: ProxyMode, nodes: usize) -> LabConfig {
    LabConfig {
        app_command: Some(vec![env!("CARGO_BIN_EXE_probe-lab-app").to_string()]),
        startup_delay: Duration::from_millis(300),
        pod_start_latency: Duration::from_millis(200),
        kill_latency: Duration::from_millis(200),
        proxy_sync_delay: Duration::from_millis(100),
        node_sync_delays: vec![Duration::from_millis(100); nodes],
        sandbox_teardown_delay: Duration::from_millis(300),
        max_lifetime: Duration::from_secs(120),
        proxy_mode: mode,
        nodes,
        ..LabConfig::default()
    }
}

/// A seed manifest with `edits` (from, to) applied, and no `minReadySeconds` wait.
fn seed(name: &str, edits: &[(&str, &str)]) -> String {
    let path = format!("{}/../../examples/seed/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut yaml = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    for (from, to) in [("minReadySeconds: 10", "minReadySeconds: 0")]
        .iter()
        .chain(edits)
    {
        assert!(yaml.contains(from), "{name} has no {from:?}");
        yaml = yaml.replacen(from, to, 1);
    }
    yaml
}

/// connect() from `ns` with `timeout`: Ok, or the error and how long it took.
fn connect(ns: &str, addr: SocketAddr, timeout: Duration) -> (std::io::Result<()>, Duration) {
    in_ns(ns, move || {
        let t = Instant::now();
        let r = TcpStream::connect_timeout(&addr, timeout).map(|_| ());
        (r, t.elapsed())
    })
}

/// `GET path` from `ns`: the status line and the body.
fn get(ns: &str, addr: SocketAddr, path: &str) -> std::io::Result<(String, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    in_ns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(request.as_bytes())?;
        let mut all = String::new();
        s.read_to_string(&mut all)?;
        let status = all.lines().next().unwrap_or_default().to_string();
        let body = all.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
        Ok((status, body))
    })
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

type Log = Arc<Mutex<Vec<Event>>>;

/// Starts a lab, records its events, applies `yaml` and waits until it serves.
async fn serving(cfg: LabConfig, yaml: &str) -> (Lab, probe_core::Attachment, Log) {
    let lab = Lab::start(cfg)
        .await
        .expect("the lab must build when ROLLPROBE_NETNS_TESTS=1");
    let log: Log = Arc::default();
    let l = log.clone();
    let attachment = lab.attach(Arc::new(move |e: Event| l.lock().unwrap().push(e)));
    lab.apply_yaml(yaml).unwrap();
    lab.wait_available(Duration::from_secs(15)).await.unwrap();
    lab.wait_serving("backend-svc", Duration::from_secs(10))
        .await
        .unwrap();
    (lab, attachment, log)
}

/// A Service without endpoints is refused at once in both modes; an address of the
/// Service CIDR that no Service holds is dropped by nftables mode (a timeout) and routed
/// on by iptables mode, where no one answers its ARP (No route to host after ~3 s).
async fn no_endpoints_and_unallocated_cluster_ip(mode: ProxyMode) {
    let yaml = seed("rolling.yaml", &[("replicas: 2", "replicas: 1")]);
    let (lab, _attachment, _log) = serving(config(mode, 1), &yaml).await;
    let cluster_ip = lab
        .service_status("backend-svc")
        .unwrap()
        .cluster_ip
        .unwrap();
    lab.set_replicas("backend-deployment", 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = lab.service_status("backend-svc").unwrap();
        if st.endpoints.is_empty() && st.programmed_endpoints.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the pod never left the rules: {st:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let node = lab.node_netns().to_string();
    let (r, took) = connect(
        &node,
        SocketAddr::from((cluster_ip, 8080)),
        Duration::from_secs(2),
    );
    let e = r.expect_err("a Service without endpoints refuses");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{mode:?}: {e}");
    assert!(took < Duration::from_millis(500), "{mode:?}: {took:?}");

    // Longer than a failed ARP resolution takes (three probes a second apart).
    let unallocated = SocketAddr::from((Ipv4Addr::new(10, 96, 0, 200), 8080));
    let (r, took) = connect(&node, unallocated, Duration::from_millis(4500));
    let e = r.expect_err("no Service holds this address");
    eprintln!("{mode:?}: unallocated ClusterIP: {e} after {took:?}");
    match mode {
        ProxyMode::Nftables => {
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
            assert!(took >= Duration::from_millis(4400), "{took:?}");
        }
        ProxyMode::Iptables => assert_eq!(e.raw_os_error(), Some(libc::EHOSTUNREACH), "{e}"),
    }
    lab.shutdown().await.unwrap();
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn nftables_refuses_a_service_without_endpoints_and_drops_unallocated_cluster_ips() {
    rt().block_on(no_endpoints_and_unallocated_cluster_ip(ProxyMode::Nftables));
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn iptables_refuses_a_service_without_endpoints_and_routes_unallocated_cluster_ips_on() {
    rt().block_on(no_endpoints_and_unallocated_cluster_ip(ProxyMode::Iptables));
}

/// One pod on node 1 of two, `externalTrafficPolicy: Local`: node 1 alone announces the
/// address and its health check says 200 with one local endpoint; node 2's says 503 with
/// none, and a client sent to node 2 (as a load balancer that ignored the health check
/// would) waits out its connect timeout: the node drops it.
async fn local_policy(mode: ProxyMode) {
    let yaml = seed(
        "rolling.yaml",
        &[
            ("replicas: 2", "replicas: 1"),
            (
                "  type: LoadBalancer",
                "  type: LoadBalancer\n  externalTrafficPolicy: Local",
            ),
        ],
    );
    let (lab, _attachment, log) = serving(config(mode, 2), &yaml).await;
    let st = lab.service_status("backend-svc").unwrap();
    let (ext, port) = (st.external_ip.unwrap(), st.health_check_node_port.unwrap());
    assert!((30000..=32767).contains(&port), "{port}");
    let announcers: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::AddressAnnounced)
        .filter_map(|e| e.subject.node.clone())
        .collect();
    assert_eq!(announcers, ["node1"], "{mode:?}");
    assert_eq!(lab.announcing_node("backend-svc").unwrap(), Some(1));
    assert_eq!(st.announced_by, Some(1));

    let client = lab.client_netns().to_string();
    let node1 = SocketAddr::from((probe_lab::NODE_CLIENT_IP, port));
    let node2 = SocketAddr::from((Ipv4Addr::new(172, 31, 254, 3), port));
    let (status, body) = get(&client, node1, "/healthz").unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{mode:?}: {body}");
    assert!(body.contains("\"localEndpoints\": 1"), "{body}");
    let (status, body) = get(&client, node2, "/healthz").unwrap();
    assert_eq!(
        status, "HTTP/1.1 503 Service Unavailable",
        "{mode:?}: {body}"
    );
    assert!(body.contains("\"localEndpoints\": 0"), "{body}");

    // Through the announcing node the Service answers.
    let service = SocketAddr::from((ext, 8080));
    let (status, body) = get(&client, service, "/test/version").unwrap();
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "v1"));
    // Sent to node 2, which has no endpoint of its own: dropped.
    let route = |verb: &str| {
        let out = std::process::Command::new("ip")
            .args(["-n", &client, "route", verb, &format!("{ext}/32")])
            .args(["via", "172.31.254.3"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    route("add");
    let (r, took) = connect(&client, service, Duration::from_secs(2));
    route("del");
    let e = r.expect_err("node 2 drops external traffic");
    eprintln!("{mode:?}: via node 2: {e} after {took:?}");
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{mode:?}: {e}");
    lab.shutdown().await.unwrap();
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn local_policy_in_iptables_mode_drops_on_a_node_without_a_local_endpoint() {
    rt().block_on(local_policy(ProxyMode::Iptables));
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn local_policy_in_nftables_mode_drops_on_a_node_without_a_local_endpoint() {
    rt().block_on(local_policy(ProxyMode::Nftables));
}

/// Recreate with a 3 s preStop sleep: while every old pod is terminating and none is
/// ready, kube-proxy keeps sending traffic to the terminating ones (they still serve),
/// so the Service answers with the old version instead of refusing.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn terminating_endpoints_serve_while_no_endpoint_is_ready() {
    rt().block_on(async {
        let yaml = seed(
            "recreate.yaml",
            &[(
                "        image: shop/backend:v1\n",
                "        image: shop/backend:v1\n        lifecycle: {preStop: {sleep: {seconds: 3}}}\n",
            )],
        );
        let (lab, _attachment, log) = serving(config(ProxyMode::Iptables, 1), &yaml).await;
        lab.set_image("backend-deployment", "shop/backend:v2").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.kind == EventKind::PodTerminating)
        {
            assert!(Instant::now() < deadline, "no pod began terminating");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Well past the sync delay, well inside the preStop sleep.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let st = lab.service_status("backend-svc").unwrap();
        assert!(st.endpoints.is_empty(), "no endpoint is ready: {st:?}");
        assert_eq!(st.programmed_endpoints.len(), 2, "{st:?}");
        assert!(st.announced, "MetalLB keeps announcing serving endpoints: {st:?}");
        let t = lab.probe_target("backend-svc").unwrap();
        let (status, body) = get(&t.netns, t.addr, "/test/version").unwrap();
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "v1"));
        lab.shutdown().await.unwrap();
    });
}
