//! The rules on hand-written objects in the API's JSON shapes, no network.

use super::*;
use serde_json::json;

fn deployment(generation: i64, image: &str, strategy: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "backend", "generation": generation},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "backend"}},
            "strategy": {"type": strategy},
            "template": {"metadata": {"labels": {"app": "backend"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}}
        },
        "status": {"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2,
                   "availableReplicas": 2}
    }))
    .unwrap()
}

fn pod(name: &str, owner: &str, ready: bool) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": "u"}]},
        "spec": {"nodeName": "node-a",
                 "containers": [{"name": "web", "image": "registry:5000/shop/backend:v2"}]},
        "status": {"podIP": "10.244.0.9",
                   "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    }))
    .unwrap()
}

fn kinds(v: &[Event]) -> Vec<&str> {
    v.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn versions_are_image_tags_as_the_lab_reads_them() {
    assert_eq!(version_of_image("shop/web:v2"), "v2");
    assert_eq!(version_of_image("shop/web"), "latest");
    assert_eq!(version_of_image("localhost:5000/web:1.0"), "1.0");
    assert_eq!(version_of_image("web:v3@sha256:abc"), "v3");
}

#[test]
fn a_strategy_change_is_not_a_rollout_but_an_image_change_is() {
    let mut t = Tracker::new("backend", None);
    t.baseline(Msg::Deployment(Change::Apply(deployment(
        1,
        "shop/backend:v1",
        "RollingUpdate",
    ))));
    let e = t.handle(Msg::Deployment(Change::Apply(deployment(
        2,
        "shop/backend:v1",
        "Recreate",
    ))));
    assert!(e.is_empty(), "{e:?}");
    let e = t.handle(Msg::Deployment(Change::Apply(deployment(
        3,
        "shop/backend:v2",
        "Recreate",
    ))));
    assert_eq!(kinds(&e), ["rollout_start"]);
    assert_eq!(
        e[0].detail,
        "backend generation 3: image web=shop/backend:v2"
    );
    assert_eq!(e[0].subject.deployment.as_deref(), Some("backend"));
    assert_eq!(e[0].subject.version.as_deref(), Some("v2"));
}

#[test]
fn pods_of_another_deployment_with_the_same_labels_are_ignored() {
    let mut t = Tracker::new("backend", None);
    let e = t.handle(Msg::Pod(Change::Apply(pod(
        "backend-canary-5d4b8-aaaaa",
        "backend-canary-5d4b8",
        true,
    ))));
    assert!(e.is_empty(), "{e:?}");
    let e = t.handle(Msg::Pod(Change::Apply(pod(
        "backend-7f9c6d5b4-aaaaa",
        "backend-7f9c6d5b4",
        false,
    ))));
    assert_eq!(kinds(&e), ["pod_created"]);
    let e = t.handle(Msg::Pod(Change::Apply(pod(
        "backend-7f9c6d5b4-aaaaa",
        "backend-7f9c6d5b4",
        true,
    ))));
    assert_eq!(kinds(&e), ["pod_ready"]);
    assert_eq!(e[0].detail, "backend-7f9c6d5b4-aaaaa 10.244.0.9");
    let s = &e[0].subject;
    assert_eq!(s.pod.as_deref(), Some("backend-7f9c6d5b4-aaaaa"));
    assert_eq!(s.address, Some("10.244.0.9".parse().unwrap()));
    assert_eq!(s.version.as_deref(), Some("v2"));
    assert_eq!(s.node.as_deref(), Some("node-a"));
}

#[test]
fn snapshot_tells_the_baseline() {
    let mut t = Tracker::new("backend", None);
    t.baseline(Msg::Pod(Change::Apply(pod(
        "backend-7f9c6d5b4-aaaaa",
        "backend-7f9c6d5b4",
        true,
    ))));
    t.baseline(Msg::Pod(Change::Apply(pod(
        "backend-7f9c6d5b4-bbbbb",
        "backend-7f9c6d5b4",
        false,
    ))));
    let e = t.snapshot();
    assert_eq!(kinds(&e), ["pod_ready", "pod_created"]);
    assert_eq!(e[0].detail, "backend-7f9c6d5b4-aaaaa 10.244.0.9");
    assert_eq!(e[0].subject.pod.as_deref(), Some("backend-7f9c6d5b4-aaaaa"));
}

#[test]
fn baseline_objects_make_no_events_and_unknown_deletes_are_ignored() {
    let mut t = Tracker::new("backend", None);
    t.baseline(Msg::Pod(Change::Apply(pod(
        "backend-7f9c6d5b4-aaaaa",
        "backend-7f9c6d5b4",
        true,
    ))));
    let same = t.handle(Msg::Pod(Change::Apply(pod(
        "backend-7f9c6d5b4-aaaaa",
        "backend-7f9c6d5b4",
        true,
    ))));
    assert!(same.is_empty());
    let e = t.handle(Msg::Pod(Change::Delete(pod(
        "backend-7f9c6d5b4-zzzzz",
        "backend-7f9c6d5b4",
        true,
    ))));
    assert!(e.is_empty());
}

#[test]
fn an_endpoint_that_appears_not_ready_is_added_when_it_turns_ready() {
    // No service-name label: the watched Service names it.
    let slice = |ready: bool| -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "backend-x"},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.244.0.9"],
                           "conditions": {"ready": ready, "serving": ready, "terminating": false},
                           "targetRef": {"kind": "Pod", "name": "backend-7f9c6d5b4-aaaaa"}}]
        }))
        .unwrap()
    };
    let mut t = Tracker::new("backend", Some("backend-svc"));
    t.baseline(Msg::EndpointSlice(Change::Apply(
        serde_json::from_value(json!({
            "metadata": {"name": "backend-x"}, "addressType": "IPv4", "endpoints": []
        }))
        .unwrap(),
    )));
    assert!(t
        .handle(Msg::EndpointSlice(Change::Apply(slice(false))))
        .is_empty());
    let e = t.handle(Msg::EndpointSlice(Change::Apply(slice(true))));
    assert_eq!(kinds(&e), ["endpoint_added"]);
    let e = t.handle(Msg::EndpointSlice(Change::Apply(slice(false))));
    assert_eq!(kinds(&e), ["endpoint_removed"]);
    assert_eq!(
        e[0].detail,
        "backend-7f9c6d5b4-aaaaa 10.244.0.9 ready=false serving=false terminating=false"
    );
    let s = &e[0].subject;
    assert_eq!(s.service.as_deref(), Some("backend-svc"));
    assert_eq!(s.address, Some("10.244.0.9".parse().unwrap()));
    assert_eq!(s.port, Some(8080));
    assert_eq!(s.pod.as_deref(), Some("backend-7f9c6d5b4-aaaaa"));
}
