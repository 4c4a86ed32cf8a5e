//! Root-only tests of the lab with real namespaces, sockets and iptables.
//!
//! They run only with `ROLLPROBE_NETNS_TESTS=1` (as root); otherwise the test runner lists
//! them as ignored (this crate's build.rs sets the `netns_tests` cfg from that variable,
//! so a skipped suite never looks like a green one). When enabled, a lab that cannot be built fails the test loudly. Timings
//! are scaled down from the defaults so that each test takes well under a minute; every
//! lab gets its own run id, so the tests can run in parallel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use probe_lab::{enter_netns, parse_manifests, EventSink, Lab, LabConfig};

fn fast_config() -> LabConfig {
    LabConfig {
        app_command: vec![env!("CARGO_BIN_EXE_probe-lab-app").to_string()],
        startup_delay: Duration::from_millis(400),
        pod_start_latency: Duration::from_millis(200),
        kill_latency: Duration::from_millis(200),
        proxy_sync_delay: Duration::from_millis(100),
        sandbox_teardown_delay: Duration::from_millis(300),
        max_lifetime: Duration::from_secs(300),
        ..LabConfig::default()
    }
}

type Log = Arc<Mutex<Vec<(Instant, String, String)>>>;

fn recorder() -> (EventSink, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let sink: EventSink = Arc::new(move |k: &str, d: &str| {
        l.lock()
            .unwrap()
            .push((Instant::now(), k.to_string(), d.to_string()));
    });
    (sink, log)
}

/// Runs `f` on a thread inside namespace `ns`.
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_netns(&ns).expect("enter_netns");
        f()
    })
    .join()
    .unwrap()
}

/// connect() from namespace `ns`: Ok, or the error with how long it took.
fn connect(ns: &str, addr: SocketAddr) -> (std::io::Result<()>, Duration) {
    in_ns(ns, move || {
        let t = Instant::now();
        let r = TcpStream::connect_timeout(&addr, Duration::from_secs(8)).map(|_| ());
        (r, t.elapsed())
    })
}

/// GET /test/version from namespace `ns`.
fn version(ns: &str, addr: SocketAddr) -> std::io::Result<String> {
    in_ns(ns, move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(8))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /test/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut all = String::new();
        s.read_to_string(&mut all)?;
        Ok(all.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
    })
}

fn netns_list() -> String {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn deployment(name: &str, strategy: &str, image: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 2
  strategy: {strategy}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 5
      containers: [{{name: app, image: "{image}"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}-svc}}
spec:
  type: LoadBalancer
  selector: {{app: {name}}}
  ports: [{{port: 8080}}]
"#
    )
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn services_give_the_kernels_errno_and_answer_with_the_version() {
    rt().block_on(async {
        let (sink, log) = recorder();
        let lab = Lab::start(fast_config(), sink)
            .await
            .expect("the lab must build when ROLLPROBE_NETNS_TESTS=1");
        let run_id = lab.run_id().to_string();
        let mut yaml = deployment("web", "{type: RollingUpdate}", "shop/web:v1");
        yaml.push_str(
            r#"
---
apiVersion: v1
kind: Service
metadata: {name: web-cluster}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty-cluster}
spec: {selector: {app: nothing}, ports: [{port: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: empty-lb}
spec: {type: LoadBalancer, selector: {app: nothing}, ports: [{port: 8080}]}
"#,
        );
        lab.apply(parse_manifests(&yaml).unwrap()).unwrap();
        lab.wait_available(Duration::from_secs(20)).await.unwrap();

        // ClusterIP without endpoints: kube-proxy's REJECT -> ECONNREFUSED at once.
        let t = lab.probe_target("empty-cluster").unwrap();
        assert_eq!(t.netns, lab.node_netns());
        let (r, took) = connect(&t.netns, t.addr);
        let e = r.expect_err("connect to an empty ClusterIP must fail");
        eprintln!("empty ClusterIP: {e} after {took:?}");
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
        assert!(took < Duration::from_millis(500), "{took:?}");

        // LoadBalancer without endpoints: not announced -> EHOSTUNREACH after ~3 s of ARP.
        let t = lab.probe_target("empty-lb").unwrap();
        assert_eq!(t.netns, lab.client_netns());
        let (r, took) = connect(&t.netns, t.addr);
        let e = r.expect_err("connect to an unannounced LoadBalancer IP must fail");
        eprintln!("empty LoadBalancer: {e} after {took:?}");
        assert_eq!(e.raw_os_error(), Some(libc::EHOSTUNREACH), "{e}");
        assert!(
            took >= Duration::from_millis(2500) && took < Duration::from_secs(6),
            "{took:?}"
        );

        // Services with a ready pod answer with the image's tag.
        let t_lb = lab.probe_target("web-svc").unwrap();
        assert_eq!(t_lb.url, format!("http://{}/test/version", t_lb.addr));
        assert_eq!(version(&t_lb.netns, t_lb.addr).unwrap(), "v1");
        let t = lab.probe_target("web-cluster").unwrap();
        assert_eq!(t.addr.port(), 80);
        assert_eq!(version(&t.netns, t.addr).unwrap(), "v1");

        // Rules are kube-proxy's.
        let save = std::process::Command::new("ip")
            .args(["netns", "exec", lab.node_netns(), "iptables-save"])
            .output()
            .unwrap();
        let save = String::from_utf8_lossy(&save.stdout);
        assert!(
            save.contains("-m statistic --mode random --probability 0.50000000000"),
            "{save}"
        );
        assert!(
            save.contains("-j REJECT --reject-with icmp-port-unreachable"),
            "{save}"
        );

        // Scaled to zero: the endpoints go, and so does the announcement.
        assert!(lab.service_status("web-svc").unwrap().announced);
        lab.set_replicas("web", 0).unwrap();
        lab.wait_rollout_complete("web", Duration::from_secs(10))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while lab.service_status("web-svc").unwrap().announced {
            assert!(Instant::now() < deadline, "still announced");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let addrs = std::process::Command::new("ip")
            .args(["-n", lab.node_netns(), "addr", "show", "lb0"])
            .output()
            .unwrap();
        let addrs = String::from_utf8_lossy(&addrs.stdout);
        assert!(
            !addrs.contains(&format!("{}/32", t_lb.addr.ip())),
            "{addrs}"
        );

        lab.shutdown().await.unwrap();
        assert!(
            !netns_list().contains(&run_id),
            "leftovers: {}",
            netns_list()
        );
        let kinds: Vec<String> = log.lock().unwrap().iter().map(|e| e.1.clone()).collect();
        for k in &kinds {
            assert!(
                probe_lab::EVENT_KINDS.contains(&k.as_str()),
                "unknown kind {k}"
            );
        }
        for k in [
            "rollout_start",
            "pod_created",
            "pod_ready",
            "endpoint_added",
            "rollout_complete",
        ] {
            assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
        }
    });
}

/// Events of one deployment after its rollout started, as (kind, version) pairs.
fn rollout_events(log: &Log, name: &str) -> Vec<(String, String)> {
    let log = log.lock().unwrap();
    let start = log
        .iter()
        .rposition(|e| e.1 == "rollout_start" && e.2.starts_with(&format!("{name} ")))
        .expect("rollout_start");
    log[start..]
        .iter()
        .filter(|e| e.2.starts_with(&format!("{name}-")) || e.2.starts_with(&format!("{name} ")))
        .map(|e| (e.1.clone(), e.2.split(' ').nth(2).unwrap_or("").to_string()))
        .collect()
}

fn first(ev: &[(String, String)], kind: &str, version: &str) -> usize {
    ev.iter()
        .position(|e| e.0 == kind && e.1 == version)
        .unwrap_or_else(|| panic!("no {kind} {version} in {ev:?}"))
}

fn last(ev: &[(String, String)], kind: &str, version: &str) -> usize {
    ev.iter()
        .rposition(|e| e.0 == kind && e.1 == version)
        .unwrap_or_else(|| panic!("no {kind} {version} in {ev:?}"))
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn recreate_and_rolling_updates_happen_in_kubernetes_order() {
    rt().block_on(async {
        let (sink, log) = recorder();
        let lab = Lab::start(fast_config(), sink)
            .await
            .expect("the lab must build when ROLLPROBE_NETNS_TESTS=1");
        let run_id = lab.run_id().to_string();
        let yaml = [
            deployment("re", "{type: Recreate}", "shop/re:v1"),
            deployment(
                "ru",
                "{type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}",
                "shop/ru:v1",
            ),
            deployment(
                "sg",
                "{type: RollingUpdate, rollingUpdate: {maxSurge: 100%, maxUnavailable: 0%}}",
                "shop/sg:v1",
            ),
        ]
        .join("\n---\n");
        lab.apply(parse_manifests(&yaml).unwrap()).unwrap();
        lab.wait_available(Duration::from_secs(20)).await.unwrap();
        for d in ["re", "ru", "sg"] {
            lab.set_image(d, &format!("shop/{d}:v2")).unwrap();
        }
        for d in ["re", "ru", "sg"] {
            lab.wait_rollout_complete(d, Duration::from_secs(30))
                .await
                .unwrap();
            // Without a readinessProbe "complete" does not mean "listening" (that is the
            // point of the lab): ask until the app has started (bounded).
            let t = lab.probe_target(&format!("{d}-svc")).unwrap();
            let mut answer = version(&t.netns, t.addr);
            for _ in 0..40 {
                if answer.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                answer = version(&t.netns, t.addr);
            }
            assert_eq!(answer.unwrap(), "v2", "{d}");
        }
        // Recreate: every old pod is deleted before the first new pod is created.
        let re = rollout_events(&log, "re");
        assert!(
            last(&re, "pod_deleted", "v1") < first(&re, "pod_created", "v2"),
            "{re:?}"
        );
        // RollingUpdate 1/0: a new pod is ready before the first old one terminates, and
        // never more than one old pod goes at a time before a new one is ready.
        let ru = rollout_events(&log, "ru");
        assert!(
            first(&ru, "pod_ready", "v2") < first(&ru, "pod_terminating", "v1"),
            "{ru:?}"
        );
        assert!(first(&ru, "pod_created", "v2") < first(&ru, "pod_terminating", "v1"));
        let created: Vec<usize> = ru
            .iter()
            .enumerate()
            .filter(|(_, e)| e.0 == "pod_created" && e.1 == "v2")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(created.len(), 2, "{ru:?}");
        assert!(
            created[1] > first(&ru, "pod_terminating", "v1"),
            "surge 1: {ru:?}"
        );
        // maxSurge 100% / maxUnavailable 0%: both new pods before any old one terminates.
        let sg = rollout_events(&log, "sg");
        let second_created = sg
            .iter()
            .enumerate()
            .filter(|(_, e)| e.0 == "pod_created" && e.1 == "v2")
            .map(|(i, _)| i)
            .nth(1)
            .expect("two new pods");
        assert!(
            second_created < first(&sg, "pod_terminating", "v1"),
            "{sg:?}"
        );
        // `kubectl rollout status` does not wait for terminating pods to be deleted.
        for ev in [&re, &ru, &sg] {
            let done = first(ev, "rollout_complete", "");
            assert!(last(ev, "pod_ready", "v2") < done, "{ev:?}");
        }
        drop(lab); // cleanup on drop
        assert!(
            !netns_list().contains(&run_id),
            "leftovers: {}",
            netns_list()
        );
    });
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn cleanup_leftovers_removes_a_dead_runs_namespaces() {
    // A pid that is not running (bounded search downwards from a high pid).
    let dead = (0..100_000)
        .map(|i| 4_000_000 - i)
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .unwrap();
    let name = format!("rplab-{dead}-0-node");
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(ok.success());
    let removed = probe_lab::cleanup_leftovers().unwrap();
    assert!(removed >= 1);
    assert!(!netns_list().contains(&name));
}

/// The race the lab shows on demand: kube-proxy slower than the sandbox teardown, so
/// traffic is still DNATed to a pod IP that no longer exists and ARP fails (~3 s). Also:
/// a ready pod whose app does not listen yet refuses, and a readinessProbe holds a pod
/// back until its app answers.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn stale_rules_unlistening_pods_and_readiness_probes() {
    rt().block_on(async {
        let (sink, log) = recorder();
        let cfg = LabConfig {
            proxy_sync_delay: Duration::from_secs(6),
            kill_latency: Duration::ZERO,
            sandbox_teardown_delay: Duration::from_millis(100),
            time_scale: 0.5,
            ..fast_config()
        };
        let lab = Lab::start(cfg, sink)
            .await
            .expect("the lab must build when ROLLPROBE_NETNS_TESTS=1");
        let run_id = lab.run_id().to_string();
        let yaml = r#"
kind: Deployment
metadata: {name: gone}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app: gone}}
  template:
    metadata: {labels: {app: gone}}
    spec: {containers: [{name: app, image: "shop/gone:v1"}]}
---
kind: Service
metadata: {name: gone}
spec: {selector: {app: gone}, ports: [{port: 8080}]}
---
kind: Deployment
metadata: {name: slow}
spec:
  replicas: 1
  selector: {matchLabels: {app: slow}}
  template:
    metadata: {labels: {app: slow}}
    spec:
      containers:
      - {name: app, image: "shop/slow:v1", env: [{name: STARTUP_DELAY_MS, value: "120000"}]}
---
kind: Service
metadata: {name: slow}
spec: {selector: {app: slow}, ports: [{port: 8080}]}
---
kind: Deployment
metadata: {name: probed}
spec:
  replicas: 1
  selector: {matchLabels: {app: probed}}
  template:
    metadata: {labels: {app: probed}}
    spec:
      containers:
      - name: app
        image: "shop/probed:v1"
        env: [{name: STARTUP_DELAY_MS, value: "1500"}]
        readinessProbe:
          httpGet: {path: /test/version, port: 8080}
          periodSeconds: 1
          successThreshold: 2
"#;
        lab.apply(parse_manifests(yaml).unwrap()).unwrap();
        lab.wait_available(Duration::from_secs(30)).await.unwrap();

        // A ready pod (no readinessProbe) that does not listen yet: RST -> ECONNREFUSED.
        let t = lab.probe_target("slow").unwrap();
        let (r, took) = connect(&t.netns, t.addr);
        let e = r.expect_err("nothing listens in the slow pod");
        eprintln!("DNAT to a pod that does not listen: {e} after {took:?}");
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");

        // The readinessProbe made the pod ready only after the app listened (1.5 s).
        {
            let log = log.lock().unwrap();
            let at = |kind: &str| {
                log.iter()
                    .find(|e| e.1 == kind && e.2.starts_with("probed-"))
                    .map(|e| e.0)
                    .unwrap_or_else(|| panic!("no {kind} for probed"))
            };
            let waited = at("pod_ready") - at("pod_created");
            assert!(waited >= Duration::from_millis(200 + 1500), "{waited:?}");
        }

        // Replace the pod: its sandbox goes after 0.1 s, the rules follow only after 6 s.
        lab.set_image("gone", "shop/gone:v2").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log.lock().unwrap().iter().any(|e| e.1 == "pod_deleted") {
            assert!(Instant::now() < deadline, "old pod not deleted");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let st = lab.service_status("gone").unwrap();
        assert!(
            st.endpoints.is_empty() && !st.programmed_endpoints.is_empty(),
            "{st:?}"
        );
        let t = lab.probe_target("gone").unwrap();
        let (r, took) = connect(&t.netns, t.addr);
        let e = r.expect_err("the old pod IP is gone");
        eprintln!("DNAT to a deleted pod's IP: {e} after {took:?}");
        assert_eq!(e.raw_os_error(), Some(libc::EHOSTUNREACH), "{e}");
        assert!(took >= Duration::from_millis(2500), "{took:?}");

        lab.shutdown().await.unwrap();
        assert!(
            !netns_list().contains(&run_id),
            "leftovers: {}",
            netns_list()
        );
    });
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn a_panic_while_the_lab_runs_leaves_nothing_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let r = std::thread::spawn(move || {
        rt().block_on(async {
            let (sink, _log) = recorder();
            let lab = Lab::start(fast_config(), sink)
                .await
                .expect("the lab must build when ROLLPROBE_NETNS_TESTS=1");
            tx.send(lab.run_id().to_string()).unwrap();
            let yaml = deployment("p", "{type: Recreate}", "shop/p:v1");
            lab.apply(parse_manifests(&yaml).unwrap()).unwrap();
            lab.wait_available(Duration::from_secs(20)).await.unwrap();
            panic!("deliberate panic with a running lab");
        })
    })
    .join();
    assert!(r.is_err());
    let run_id = rx.recv().unwrap();
    assert!(
        !netns_list().contains(&run_id),
        "leftovers: {}",
        netns_list()
    );
}
