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

use probe_core::{Attachment, Event, EventKind, EventSource, Vantage};
use probe_lab::{Kernel, Lab, LabConfig};
use support::in_ns;

mod support;

fn fast_config() -> LabConfig {
    LabConfig {
        app_command: Some(vec![env!("CARGO_BIN_EXE_probe-lab-app").to_string()]),
        startup_delay: Duration::from_millis(400),
        pod_start_latency: Duration::from_millis(200),
        kill_latency: Duration::from_millis(200),
        proxy_sync_delay: Duration::from_millis(100),
        sandbox_teardown_delay: Duration::from_millis(300),
        max_lifetime: Duration::from_secs(300),
        ..LabConfig::default()
    }
}

type Log = Arc<Mutex<Vec<(Instant, Event)>>>;

/// Records every event of `lab` with the time it arrived, until the attachment drops.
fn recorder(lab: &Lab) -> (Attachment, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let attachment = lab.attach(Arc::new(move |e: Event| {
        l.lock().unwrap().push((Instant::now(), e));
    }));
    (attachment, log)
}

/// Starts a lab and attaches a recorder before anything is applied.
async fn start(cfg: LabConfig) -> (Lab, Attachment, Log) {
    let lab = Lab::start(cfg)
        .await
        .expect("the lab must build when ROLLPROBE_NETNS_TESTS=1");
    let (attachment, log) = recorder(&lab);
    (lab, attachment, log)
}

/// The value of a sysctl (path under /proc/sys) as namespace `ns` sees it.
fn sysctl(ns: &str, key: &str) -> String {
    let path = format!("/proc/sys/{key}");
    in_ns(ns, move || {
        std::fs::read_to_string(&path).expect("read sysctl")
    })
    .trim()
    .to_string()
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
        let (lab, _attachment, log) = start(fast_config()).await;
        assert_eq!(lab.kernel(), Kernel::Stock);
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
        lab.apply_yaml(&yaml).unwrap();
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

        // The URL a client uses, reached from where `Vantage::enter` puts a thread.
        let url = lab.service_url("web-svc").unwrap();
        assert_eq!(url, t_lb.url);
        let (vantage, addr) = (lab.clone(), t_lb.addr);
        let answer = std::thread::spawn(move || {
            vantage.enter(&url)?;
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(8))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(b"GET /test/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut all = String::new();
            s.read_to_string(&mut all)?;
            Ok::<_, std::io::Error>(all)
        })
        .join()
        .unwrap()
        .unwrap();
        assert!(answer.ends_with("\r\n\r\nv1"), "{answer}");
        let unknown = lab.clone();
        let e = std::thread::spawn(move || unknown.enter("http://192.0.2.1:8080/"))
            .join()
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");

        // A probe attaching now first receives what stands: the ready pods and endpoints.
        let (late, late_log) = recorder(&lab);
        let replayed: Vec<EventKind> = late_log
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.1.kind.clone())
            .collect();
        drop(late);
        assert!(replayed.contains(&EventKind::PodReady), "{replayed:?}");
        assert!(replayed.contains(&EventKind::EndpointAdded), "{replayed:?}");

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
        lab.rollout_complete(Duration::from_secs(10)).await.unwrap();
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

        let node = lab.node_netns().to_string();
        lab.shutdown().await.unwrap();
        lab.shutdown().await.unwrap(); // idempotent
        assert!(
            !netns_list().contains(&run_id),
            "leftovers: {}",
            netns_list()
        );
        let events: Vec<Event> = log.lock().unwrap().iter().map(|e| e.1.clone()).collect();
        for e in &events {
            assert!(!matches!(e.kind, EventKind::Other(_)), "untyped kind {e:?}");
        }
        for k in [
            EventKind::RolloutStart,
            EventKind::PodCreated,
            EventKind::PodReady,
            EventKind::EndpointAdded,
            EventKind::AddressAnnounced,
            EventKind::RolloutComplete,
        ] {
            assert!(events.iter().any(|e| e.kind == k), "no {k} in {events:?}");
        }
        // Typed subjects, as a Kubernetes watch gives them.
        let ready = events
            .iter()
            .find(|e| e.kind == EventKind::PodReady)
            .unwrap();
        let s = &ready.subject;
        assert!(
            s.pod.as_deref().is_some_and(|p| p.starts_with("web-")),
            "{ready:?}"
        );
        assert!(
            matches!(s.address, Some(std::net::IpAddr::V4(ip)) if ip.octets()[..2] == [10, 244]),
            "{ready:?}"
        );
        assert_eq!(s.version.as_deref(), Some("v1"), "{ready:?}");
        assert_eq!(s.node.as_deref(), Some("node1"), "{ready:?}");
        assert!(node.ends_with("-node1"), "{node}");
        assert_eq!(
            ready.detail,
            format!("{} {} v1", s.pod.as_deref().unwrap(), s.address.unwrap())
        );
        let removed = events
            .iter()
            .find(|e| {
                e.kind == EventKind::EndpointRemoved
                    && e.subject.service.as_deref() == Some("web-svc")
            })
            .unwrap_or_else(|| panic!("no endpoint_removed for web-svc in {events:?}"));
        let s = &removed.subject;
        assert!(s.address.is_some() && s.pod.is_some(), "{removed:?}");
        assert_eq!(s.port, Some(8080), "{removed:?}");
        assert_eq!(
            removed.detail,
            format!(
                "web-svc {}:8080 {}",
                s.address.unwrap(),
                s.pod.as_deref().unwrap()
            )
        );
        let withdrawn = events
            .iter()
            .find(|e| e.kind == EventKind::AddressWithdrawn)
            .unwrap_or_else(|| panic!("no address_withdrawn in {events:?}"));
        assert_eq!(withdrawn.subject.address, Some(t_lb.addr.ip()));
        assert_eq!(withdrawn.subject.service.as_deref(), Some("web-svc"));
        let start = events
            .iter()
            .find(|e| e.kind == EventKind::RolloutStart)
            .unwrap();
        assert_eq!(start.subject.deployment.as_deref(), Some("web"));
        assert_eq!(start.subject.version.as_deref(), Some("v1"));
        assert_eq!(start.detail, "web shop/web:v1");
    });
}

/// Events of one deployment after its rollout started, as (kind, version) pairs.
fn rollout_events(log: &Log, name: &str) -> Vec<(String, String)> {
    let log = log.lock().unwrap();
    let start = log
        .iter()
        .rposition(|e| {
            e.1.kind == EventKind::RolloutStart && e.1.subject.deployment.as_deref() == Some(name)
        })
        .expect("rollout_start");
    let prefix = format!("{name}-");
    log[start..]
        .iter()
        .map(|e| &e.1)
        .filter(|e| {
            e.subject.deployment.as_deref() == Some(name)
                || (e.kind.is_pod()
                    && e.subject
                        .pod
                        .as_deref()
                        .is_some_and(|p| p.starts_with(&prefix)))
        })
        .map(|e| {
            (
                e.kind.to_string(),
                e.subject.version.clone().unwrap_or_default(),
            )
        })
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
        let (lab, attachment, log) = start(fast_config()).await;
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
        lab.apply_yaml(&yaml).unwrap();
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
            let done = first(ev, "rollout_complete", "v2");
            assert!(last(ev, "pod_ready", "v2") < done, "{ev:?}");
        }
        // A clone dropped is not the last handle: the lab stays.
        let other = lab.clone();
        drop(other);
        assert!(netns_list().contains(&run_id), "{}", netns_list());
        drop(attachment);
        drop(lab); // the last handle: cleanup on drop
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
        let cfg = LabConfig {
            proxy_sync_delay: Duration::from_secs(6),
            kill_latency: Duration::ZERO,
            sandbox_teardown_delay: Duration::from_millis(100),
            time_scale: 0.5,
            ..fast_config()
        };
        let (lab, _attachment, log) = start(cfg).await;
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
        lab.apply_yaml(yaml).unwrap();
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
                    .find(|e| {
                        e.1.kind == kind
                            && e.1
                                .subject
                                .pod
                                .as_deref()
                                .is_some_and(|p| p.starts_with("probed-"))
                    })
                    .map(|e| e.0)
                    .unwrap_or_else(|| panic!("no {kind} for probed"))
            };
            let waited = at("pod_ready") - at("pod_created");
            assert!(waited >= Duration::from_millis(200 + 1500), "{waited:?}");
        }

        // Replace the pod: its sandbox goes after 0.1 s, the rules follow only after 6 s.
        lab.set_image("gone", "shop/gone:v2").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.1.kind == EventKind::PodDeleted)
        {
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
            let (lab, _attachment, _log) = start(fast_config()).await;
            tx.send(lab.run_id().to_string()).unwrap();
            let yaml = deployment("p", "{type: Recreate}", "shop/p:v1");
            lab.apply_yaml(&yaml).unwrap();
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

/// Every node, pod and client namespace gets the chosen kernel settings written, whatever
/// the host has: stock Linux values by default, the lifted limits and short timers when
/// tuned.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn kernel_settings_are_written_in_every_namespace() {
    rt().block_on(async {
        for kernel in [Kernel::Stock, Kernel::Tuned] {
            let cfg = LabConfig {
                kernel,
                ..fast_config()
            };
            let (lab, _attachment, log) = start(cfg).await;
            assert_eq!(lab.kernel(), kernel);
            lab.apply_yaml(&deployment("k", "{type: Recreate}", "shop/k:v1"))
                .unwrap();
            lab.wait_available(Duration::from_secs(20)).await.unwrap();
            let pod = log
                .lock()
                .unwrap()
                .iter()
                .find_map(|e| e.1.subject.pod.clone())
                .expect("a pod event");
            let pod_ns = netns_list()
                .lines()
                .map(|l| l.split(' ').next().unwrap_or("").to_string())
                .find(|n| n.starts_with(&format!("{}-p", lab.run_id())))
                .unwrap_or_else(|| panic!("no pod namespace for {pod}: {}", netns_list()));
            let (client, node) = (lab.client_netns().to_string(), lab.node_netns().to_string());
            let stock = kernel == Kernel::Stock;
            let limit = if stock { "1000" } else { "0" };
            assert_eq!(sysctl(&client, "net/ipv4/icmp_ratelimit"), limit);
            assert_eq!(sysctl(&node, "net/ipv4/icmp_ratelimit"), limit);
            assert_eq!(sysctl(&pod_ns, "net/ipv4/icmp_ratelimit"), "1000");
            assert_eq!(
                sysctl(&node, "net/ipv4/icmp_msgs_burst"),
                if stock { "50" } else { "1000000" }
            );
            let reach = if stock { "30000" } else { "500" };
            assert_eq!(
                sysctl(&client, "net/ipv4/neigh/eth0/base_reachable_time_ms"),
                reach
            );
            let queue = if stock { "212992" } else { "4194304" };
            assert_eq!(
                sysctl(&client, "net/ipv4/neigh/eth0/unres_qlen_bytes"),
                queue
            );
            assert_eq!(
                sysctl(&node, "net/ipv4/neigh/lb0/base_reachable_time_ms"),
                "30000"
            );
            assert_eq!(sysctl(&node, "net/ipv4/neigh/br0/ucast_solicit"), "3");
            assert_eq!(
                sysctl(&pod_ns, "net/ipv4/neigh/eth0/delay_first_probe_time"),
                "5"
            );
            lab.shutdown().await.unwrap();
        }
    });
}

/// The history's revision numbers once the old pods are gone (trimming waits for them).
async fn settled_history(lab: &Lab, want: &[u64]) -> Vec<probe_lab::Revision> {
    let mut history = Vec::new();
    for _ in 0..100 {
        history = lab.rollout_history("web").unwrap();
        if history.iter().map(|r| r.number).collect::<Vec<_>>() == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    history
}

fn steps(list: &[&str]) -> Vec<probe_lab::Step> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn undo_follows_the_rollout_history_and_its_limit() {
    rt().block_on(async {
        let (lab, _attachment, log) = start(fast_config()).await;
        lab.apply_yaml(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1\n  revisionHistoryLimit: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      containers: [{name: web, image: 'shop/web:v1'}]\n",
        )
        .unwrap();
        lab.wait_available(Duration::from_secs(30)).await.unwrap();
        for v in ["v2", "v3", "v4"] {
            let set = format!("set-image:web=shop/web:{v}");
            lab.run_steps(&steps(&[&set, "wait:rollout"])).await.unwrap();
        }
        let image = |h: &[probe_lab::Revision]| -> Vec<(u64, String, bool)> {
            h.iter()
                .map(|r| (r.number, r.template.container.image.clone(), r.current))
                .collect()
        };
        // revisionHistoryLimit 2: two old ReplicaSets beside the current one.
        let h = settled_history(&lab, &[2, 3, 4]).await;
        assert_eq!(
            image(&h),
            [
                (2, "shop/web:v2".into(), false),
                (3, "shop/web:v3".into(), false),
                (4, "shop/web:v4".into(), true)
            ]
        );
        // Revision 1 was trimmed: a clear error, and nothing changes.
        let e = lab.run_steps(&steps(&["undo:web=1"])).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "deployment web has no revision 1 in its history (it keeps: 2, 3, 4)"
        );
        // Plain undo goes back one revision, which becomes the newest (5).
        lab.run_steps(&steps(&["undo:web", "wait:rollout"]))
            .await
            .unwrap();
        let h = settled_history(&lab, &[2, 4, 5]).await;
        assert_eq!(image(&h).last().unwrap(), &(5, "shop/web:v3".into(), true));
        // --to-revision, and the rollback is a rollout of its own.
        lab.run_steps(&steps(&["undo:web=2", "wait:rollout"]))
            .await
            .unwrap();
        let h = settled_history(&lab, &[4, 5, 6]).await;
        assert_eq!(image(&h).last().unwrap(), &(6, "shop/web:v2".into(), true));
        let details: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| {
                e.kind == EventKind::Mark || e.kind == EventKind::RolloutStart
            })
            .map(|(_, e)| format!("{} {}", e.kind, e.detail))
            .collect();
        let undo = details
            .iter()
            .position(|d| d == "mark step undo:web=2")
            .unwrap_or_else(|| panic!("no mark for the step: {details:?}"));
        assert!(
            details[undo..].contains(&"rollout_start web shop/web:v2".to_string()),
            "{details:?}"
        );
        lab.shutdown().await.unwrap();
    });
}
