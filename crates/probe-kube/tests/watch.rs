//! A Deployment's rollout as typed events, through kube's real client, against recorded API
//! responses served on 127.0.0.1 (no cluster): the baseline is the hub's picture, a
//! rolling update becomes the expected events in order with typed subjects, a dropped
//! watch is resumed and marked (refusals: tests/watch_refused.rs).
//!
//! The recorded responses (tests/fixtures, written by tests/fixtures/gen_fixtures.py) are
//! hand-written in the Kubernetes JSON wire format to match the API's shapes: List
//! bodies, newline-delimited watch events, Status errors. No cluster produced them.

mod common;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MockApi, Reply, Request};
use probe_core::{Attachment, Event, EventKind, EventSource, Subject};
use probe_kube::{watch_rollout, WatchHandle, WatchTarget};

fn target() -> WatchTarget {
    WatchTarget {
        namespace: "shop".into(),
        deployment: "backend".into(),
        service: Some("backend".into()),
    }
}

type Got = Arc<Mutex<Vec<Event>>>;

/// Attaches a collecting sink; returns the picture it was handed (the replay happens inside
/// `attach`) and what it receives afterwards.
fn attach(handle: &WatchHandle) -> (Attachment, Vec<Event>, Got) {
    let got: Got = Arc::default();
    let g = got.clone();
    let attachment = handle.attach(Arc::new(move |e| g.lock().unwrap().push(e)));
    let picture = std::mem::take(&mut *got.lock().unwrap());
    (attachment, picture, got)
}

async fn start(api: &MockApi) -> (WatchHandle, Attachment, Vec<Event>, Got) {
    let handle = tokio::time::timeout(
        Duration::from_secs(10),
        watch_rollout(api.client(), target()),
    )
    .await
    .expect("watch_rollout answered in time")
    .expect("watch_rollout");
    let (attachment, picture, got) = attach(&handle);
    (handle, attachment, picture, got)
}

/// Waits (bounded) until `done` holds.
async fn wait_for(got: &Got, done: impl Fn(&[Event]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if done(&got.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// A pod of the recorded scenario: image ghcr.io/acme/backend:v1, node kind-worker.
fn pod(name: &str, address: &str) -> Subject {
    Subject::pod(name, ip(address))
        .with_version("v1")
        .with_node("kind-worker")
}

fn endpoint(address: &str, pod: &str) -> Subject {
    Subject::endpoint("backend", ip(address).unwrap(), Some(8080)).with_pod(pod)
}

fn find<'a>(got: &'a [Event], kind: EventKind, detail_prefix: &str) -> &'a Event {
    got.iter()
        .find(|e| e.kind == kind && e.detail.starts_with(detail_prefix))
        .unwrap_or_else(|| panic!("no {kind} {detail_prefix} in {got:#?}"))
}

const T: &str = "2026-01-15T10:00:";

/// (kind, detail, server_time) expected from tests/fixtures/rolling, in order.
fn expected() -> Vec<(&'static str, &'static str, Option<String>)> {
    let t = |s: u32| Some(format!("{T}{s:02}Z"));
    vec![
        (
            "rollout_start",
            "backend generation 2: restartedAt 2026-01-15T10:00:10Z",
            t(10),
        ),
        (
            "replicaset_scaled",
            "backend-7f9c6d5b4 0 -> 1 (new); backend-5d4b8c7f9 2 (old)",
            t(10),
        ),
        ("pod_created", "backend-7f9c6d5b4-x2abc", t(10)),
        ("pod_ready", "backend-7f9c6d5b4-x2abc 10.244.0.7", t(16)),
        (
            "endpoint_added",
            "backend-7f9c6d5b4-x2abc 10.244.0.7 ready=true serving=true terminating=false",
            t(16),
        ),
        (
            "replicaset_scaled",
            "backend-5d4b8c7f9 2 -> 1 (old); backend-7f9c6d5b4 1 (new)",
            t(16),
        ),
        (
            "pod_terminating",
            "backend-5d4b8c7f9-aaaaa 10.244.0.5 (grace 30 s)",
            t(16),
        ),
        (
            "endpoint_terminating",
            "backend-5d4b8c7f9-aaaaa 10.244.0.5 ready=false serving=true terminating=true",
            t(16),
        ),
        ("pod_unready", "backend-5d4b8c7f9-aaaaa 10.244.0.5", t(17)),
        (
            "replicaset_scaled",
            "backend-7f9c6d5b4 1 -> 2 (new); backend-5d4b8c7f9 1 (old)",
            t(16),
        ),
        ("pod_created", "backend-7f9c6d5b4-y3def", t(16)),
        (
            "endpoint_removed",
            "backend-5d4b8c7f9-aaaaa 10.244.0.5 gone from the EndpointSlices",
            t(18),
        ),
        ("pod_deleted", "backend-5d4b8c7f9-aaaaa 10.244.0.5", None),
        ("pod_ready", "backend-7f9c6d5b4-y3def 10.244.0.8", t(22)),
        (
            "endpoint_added",
            "backend-7f9c6d5b4-y3def 10.244.0.8 ready=true serving=true terminating=false",
            t(22),
        ),
        (
            "replicaset_scaled",
            "backend-5d4b8c7f9 1 -> 0 (old); backend-7f9c6d5b4 2 (new)",
            t(22),
        ),
        (
            "pod_terminating",
            "backend-5d4b8c7f9-bbbbb 10.244.0.6 (grace 30 s)",
            t(22),
        ),
        (
            "endpoint_terminating",
            "backend-5d4b8c7f9-bbbbb 10.244.0.6 ready=false serving=true terminating=true",
            t(22),
        ),
        (
            "endpoint_removed",
            "backend-5d4b8c7f9-bbbbb 10.244.0.6 gone from the EndpointSlices",
            t(24),
        ),
        ("pod_deleted", "backend-5d4b8c7f9-bbbbb 10.244.0.6", None),
        (
            "rollout_complete",
            "backend generation 2: 2 of 2 replicas updated and available",
            t(24),
        ),
        (
            "service_selector_changed",
            "backend app=backend -> app=backend,track=green",
            Some("2026-01-15T10:01:00Z".into()),
        ),
    ]
}

fn as_tuples(got: &[Event]) -> Vec<(String, String, Option<String>)> {
    got.iter()
        .map(|e| (e.kind.to_string(), e.detail.clone(), e.server_time.clone()))
        .collect()
}

fn owned(v: Vec<(&str, &str, Option<String>)>) -> Vec<(String, String, Option<String>)> {
    v.into_iter()
        .map(|(k, d, t)| (k.to_string(), d.to_string(), t))
        .collect()
}

#[tokio::test]
async fn rolling_update_becomes_the_expected_events_in_order() {
    let api = MockApi::start(Arc::new(common::rolling)).await;
    let (handle, _attachment, picture, got) = start(&api).await;
    // The baseline (two ready pods, their endpoints) is the picture, not events.
    let want_picture = vec![
        (
            EventKind::PodReady,
            pod("backend-5d4b8c7f9-aaaaa", "10.244.0.5"),
        ),
        (
            EventKind::PodReady,
            pod("backend-5d4b8c7f9-bbbbb", "10.244.0.6"),
        ),
        (
            EventKind::EndpointAdded,
            endpoint("10.244.0.5", "backend-5d4b8c7f9-aaaaa"),
        ),
        (
            EventKind::EndpointAdded,
            endpoint("10.244.0.6", "backend-5d4b8c7f9-bbbbb"),
        ),
    ];
    let picture_kinds: Vec<(EventKind, Subject)> = picture
        .iter()
        .map(|e| (e.kind.clone(), e.subject.clone()))
        .collect();
    assert_eq!(picture_kinds, want_picture);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(got.lock().unwrap().is_empty(), "{:?}", got.lock().unwrap());
    api.release();
    let want = owned(expected());
    wait_for(&got, |g| g.len() >= want.len()).await;
    // A sink attached now is handed what stands now: the new pods and their endpoints.
    let (_late, late_picture, _) = attach(&handle);
    tokio::time::timeout(Duration::from_secs(10), handle.stop())
        .await
        .unwrap();
    let late: Vec<(EventKind, Subject)> = late_picture
        .iter()
        .map(|e| (e.kind.clone(), e.subject.clone()))
        .collect();
    assert_eq!(
        late,
        vec![
            (
                EventKind::PodReady,
                pod("backend-7f9c6d5b4-x2abc", "10.244.0.7")
            ),
            (
                EventKind::PodReady,
                pod("backend-7f9c6d5b4-y3def", "10.244.0.8")
            ),
            (
                EventKind::EndpointAdded,
                endpoint("10.244.0.7", "backend-7f9c6d5b4-x2abc"),
            ),
            (
                EventKind::EndpointAdded,
                endpoint("10.244.0.8", "backend-7f9c6d5b4-y3def"),
            ),
        ]
    );
    let got = got.lock().unwrap().clone();
    assert_eq!(as_tuples(&got), want);

    // Every event says what it is about in typed fields, as the lab does.
    let ready = find(&got, EventKind::PodReady, "backend-7f9c6d5b4-x2abc");
    assert_eq!(ready.subject, pod("backend-7f9c6d5b4-x2abc", "10.244.0.7"));
    let deleted = find(&got, EventKind::PodDeleted, "backend-5d4b8c7f9-aaaaa");
    assert_eq!(
        deleted.subject,
        pod("backend-5d4b8c7f9-aaaaa", "10.244.0.5")
    );
    let removed = find(&got, EventKind::EndpointRemoved, "backend-5d4b8c7f9-aaaaa");
    assert_eq!(
        removed.subject,
        endpoint("10.244.0.5", "backend-5d4b8c7f9-aaaaa")
    );
    let terminating = find(
        &got,
        EventKind::EndpointTerminating,
        "backend-5d4b8c7f9-bbbbb",
    );
    assert_eq!(
        terminating.subject,
        endpoint("10.244.0.6", "backend-5d4b8c7f9-bbbbb")
    );
    let deployment = Subject::default()
        .with_deployment("backend")
        .with_version("v1");
    assert_eq!(find(&got, EventKind::RolloutStart, "").subject, deployment);
    assert_eq!(
        find(&got, EventKind::RolloutComplete, "").subject,
        deployment
    );
    assert_eq!(
        find(
            &got,
            EventKind::ReplicasetScaled,
            "backend-7f9c6d5b4 0 -> 1"
        )
        .subject,
        deployment
    );
    let selector = find(&got, EventKind::ServiceSelectorChanged, "");
    assert_eq!(selector.subject.service.as_deref(), Some("backend"));
    assert!(
        got.iter().all(|e| e.at_ms == 0.0),
        "stamped by the probe, not here"
    );

    // kube sent what a real API server expects: lists, then watches from their
    // resourceVersion with bookmarks, by the Deployment's selector and the Service name.
    let reqs = api.requests();
    let watches: Vec<&Request> = reqs.iter().filter(|r| r.is_watch()).collect();
    assert_eq!(watches.len(), 5, "{watches:#?}");
    for w in &watches {
        assert_eq!(
            w.query.get("resourceVersion").map(String::as_str),
            Some("1000")
        );
        assert_eq!(
            w.query.get("allowWatchBookmarks").map(String::as_str),
            Some("true")
        );
        assert_eq!(
            w.query.get("timeoutSeconds").map(String::as_str),
            Some("290")
        );
    }
    let sel = |res: &str, key: &str| {
        watches
            .iter()
            .find(|r| r.last() == res)
            .and_then(|r| r.query.get(key).cloned())
    };
    assert_eq!(sel("pods", "labelSelector").as_deref(), Some("app=backend"));
    assert_eq!(
        sel("replicasets", "labelSelector").as_deref(),
        Some("app=backend")
    );
    assert_eq!(
        sel("endpointslices", "labelSelector").as_deref(),
        Some("kubernetes.io/service-name=backend")
    );
    assert_eq!(
        sel("deployments", "fieldSelector").as_deref(),
        Some("metadata.name=backend")
    );
    assert_eq!(
        sel("services", "fieldSelector").as_deref(),
        Some("metadata.name=backend")
    );
}

#[tokio::test]
async fn a_dropped_watch_is_resumed_and_the_gap_is_marked() {
    // The pods watch is cut mid-stream after resourceVersion 1007; the server takes
    // 400 ms to accept the next watch.
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.is_watch() && req.last() == "pods" {
            return Reply::Watch {
                lines: common::watch_lines("rolling/pods.watch.jsonl"),
                delay: if nth == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_millis(400)
                },
                drop_after_rv: if nth == 0 { Some(1007) } else { None },
            };
        }
        common::rolling(req, nth)
    });
    let api = MockApi::start(handler).await;
    let (handle, _attachment, _, got) = start(&api).await;
    api.release();
    let want = owned(expected());
    wait_for(&got, |g| g.len() > want.len()).await;
    tokio::time::timeout(Duration::from_secs(10), handle.stop())
        .await
        .unwrap();
    let got = got.lock().unwrap().clone();

    let gaps: Vec<&Event> = got
        .iter()
        .filter(|e| e.kind == EventKind::WatchGap)
        .collect();
    assert_eq!(gaps.len(), 1, "{got:#?}");
    let gap = &gaps[0].detail;
    assert!(
        gap.starts_with("pods (app=backend) watch interrupted for "),
        "{gap}"
    );
    assert!(gap.contains("stream closed by the server"), "{gap}");
    assert!(gap.ends_with("resumed from resourceVersion 1007"), "{gap}");
    let secs: f64 = gap["pods (app=backend) watch interrupted for ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.35..5.0).contains(&secs), "{gap}");
    assert_eq!(gaps[0].server_time, None);
    assert!(gaps[0].subject.is_empty());

    // Nothing was lost: every expected event is there, and each watch's own events keep
    // their order (events of the interrupted watch arrive late, after the gap).
    let rest: Vec<_> = as_tuples(&got)
        .into_iter()
        .filter(|e| e.0 != "watch_gap")
        .collect();
    let mut sorted_rest = rest.clone();
    sorted_rest.sort();
    let mut sorted_want = want.clone();
    sorted_want.sort();
    assert_eq!(sorted_rest, sorted_want);
    let pods = |v: &[(String, String, Option<String>)]| {
        v.iter()
            .filter(|e| e.0.starts_with("pod_"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(pods(&rest), pods(&want));
    // The pod events after the drop come after the gap mark.
    let gap_at = got.iter().position(|e| e.kind == "watch_gap").unwrap();
    let y_ready = got
        .iter()
        .position(|e| e.kind == "pod_ready" && e.detail.starts_with("backend-7f9c6d5b4-y3def"))
        .unwrap();
    assert!(gap_at < y_ready);

    // The resumed watch asked for the last resourceVersion seen.
    let pod_watches: Vec<Request> = api
        .requests()
        .into_iter()
        .filter(|r| r.is_watch() && r.last() == "pods")
        .collect();
    assert_eq!(pod_watches.len(), 2);
    assert_eq!(pod_watches[1].query["resourceVersion"], "1007");
}

#[tokio::test]
async fn a_gap_still_open_at_stop_is_reported() {
    // The pods watch drops and never comes back (every later watch request is refused).
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.is_watch() && req.last() == "pods" {
            if nth == 0 {
                return Reply::Watch {
                    lines: common::watch_lines("rolling/pods.watch.jsonl"),
                    delay: Duration::ZERO,
                    drop_after_rv: Some(1003),
                };
            }
            return Reply::Json(500, r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"etcdserver: request timed out","code":500}"#.into());
        }
        common::rolling(req, nth)
    });
    let api = MockApi::start(handler).await;
    let (handle, _attachment, _, got) = start(&api).await;
    api.release();
    wait_for(&got, |g| g.iter().any(|e| e.kind == "pod_created")).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    tokio::time::timeout(Duration::from_secs(10), handle.stop())
        .await
        .unwrap();
    let got = got.lock().unwrap().clone();
    let gap = got
        .iter()
        .find(|e| e.kind == "watch_gap")
        .unwrap_or_else(|| panic!("{got:#?}"));
    assert!(
        gap.detail
            .starts_with("pods (app=backend) watch interrupted"),
        "{gap:?}"
    );
    assert!(
        gap.detail.ends_with("not resumed before the watch stopped"),
        "{gap:?}"
    );
}

#[tokio::test]
async fn stop_interrupts_a_hanging_reconnect() {
    // The pods watch drops; the next watch request hangs (no headers for a minute).
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.is_watch() && req.last() == "pods" {
            return Reply::Watch {
                lines: common::watch_lines("rolling/pods.watch.jsonl"),
                delay: if nth == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs(60)
                },
                drop_after_rv: Some(1003),
            };
        }
        common::rolling(req, nth)
    });
    let api = MockApi::start(handler).await;
    let (handle, _attachment, _, got) = start(&api).await;
    api.release();
    wait_for(&got, |g| g.iter().any(|e| e.kind == "pod_created")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), handle.stop())
        .await
        .expect("stop returns promptly");
    assert!(started.elapsed() < Duration::from_secs(2));
    let got = got.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|e| e.kind == "watch_gap"
                && e.detail.ends_with("not resumed before the watch stopped")),
        "{got:#?}"
    );
}

#[tokio::test]
async fn expired_resource_version_relists_and_reports_changes() {
    // The pods watch answers 410 Gone at once; the relist shows pod bbbbb gone and a new
    // pod, which must come out as events (not be lost), with a gap mark.
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.last() == "pods" {
            if req.is_watch() {
                if nth == 0 {
                    return Reply::Watch {
                        lines: vec![common::fixture("status/gone.json").trim().to_string()],
                        delay: Duration::ZERO,
                        drop_after_rv: None,
                    };
                }
                return Reply::Watch {
                    lines: vec![],
                    delay: Duration::ZERO,
                    drop_after_rv: None,
                };
            }
            if nth > 0 {
                let mut list: serde_json::Value =
                    serde_json::from_str(&common::fixture("rolling/pods.list.json")).unwrap();
                list["metadata"]["resourceVersion"] = "1500".into();
                let items = list["items"].as_array_mut().unwrap();
                items.truncate(1);
                let mut newpod = items[0].clone();
                newpod["metadata"]["name"] = "backend-5d4b8c7f9-ccccc".into();
                newpod["status"]["podIP"] = "10.244.0.9".into();
                items.push(newpod);
                return Reply::Json(200, list.to_string());
            }
        }
        common::rolling(req, nth)
    });
    let api = MockApi::start(handler).await;
    let (handle, _attachment, _, got) = start(&api).await;
    api.release();
    wait_for(&got, |g| g.iter().any(|e| e.kind == "pod_deleted")).await;
    tokio::time::timeout(Duration::from_secs(10), handle.stop())
        .await
        .unwrap();
    let got = as_tuples(&got.lock().unwrap());
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|e| (e.0.as_str(), e.1.as_str()))
        .filter(|e| e.0.starts_with("pod_") || e.0 == "watch_gap")
        .collect();
    assert_eq!(kinds.len(), 4, "{got:#?}");
    assert_eq!(kinds[0].0, "watch_gap");
    assert!(kinds[0].1.contains("expired"), "{}", kinds[0].1);
    assert!(
        kinds[0].1.ends_with("resumed from resourceVersion 1500"),
        "{}",
        kinds[0].1
    );
    assert_eq!(
        kinds[1],
        ("pod_created", "backend-5d4b8c7f9-ccccc 10.244.0.9")
    );
    assert_eq!(
        kinds[2],
        ("pod_ready", "backend-5d4b8c7f9-ccccc 10.244.0.9")
    );
    assert_eq!(
        kinds[3],
        ("pod_deleted", "backend-5d4b8c7f9-bbbbb 10.244.0.6")
    );
}

#[tokio::test]
async fn rollout_complete_asks_the_watched_deployment() {
    // The Deployment reads complete while the watch starts, then past its deadline.
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.method == "GET"
            && req.path == "/apis/apps/v1/namespaces/shop/deployments/backend"
            && nth >= 2
        {
            return Reply::Json(200, common::fixture("status/deployment-deadline.json"));
        }
        common::rolling(req, nth)
    });
    let api = MockApi::start(handler).await;
    let (handle, _attachment, _, _) = start(&api).await;
    let source: &dyn EventSource = &handle;
    let bounded = Duration::from_secs(10);
    tokio::time::timeout(bounded, source.rollout_complete(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect("complete");
    let err = tokio::time::timeout(bounded, source.rollout_complete(Duration::from_secs(5)))
        .await
        .unwrap()
        .expect_err("past its deadline");
    assert_eq!(
        err,
        "deployment \"backend\" exceeded its progress deadline: see `kubectl describe deployment backend -n shop`"
    );
    handle.stop().await;
}
