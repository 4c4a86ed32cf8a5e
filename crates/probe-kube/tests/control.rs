//! Rollout control through kube's real client against a recorded API on 127.0.0.1: the
//! patches sent are byte-for-byte what kubectl sends, with its Content-Type; strategy
//! reading; waiting for completion by kubectl's rules.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MockApi, Reply, Request};
use probe_core::{IntOrPercent, Strategy};
use probe_kube::KubeError;

const SMP: &str = "application/strategic-merge-patch+json";
const DEPLOY: &str = "/apis/apps/v1/namespaces/shop/deployments/backend";

/// Answers GET and PATCH of the Deployment with the recorded object.
fn deployment_api(req: &Request, nth: usize) -> Reply {
    if req.path == DEPLOY && (req.method == "GET" || req.method == "PATCH") {
        return Reply::Json(200, common::fixture("rolling/deployment-backend.json"));
    }
    common::rolling(req, nth)
}

fn patches(api: &MockApi) -> Vec<Request> {
    api.requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect()
}

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("answered in time")
}

#[tokio::test]
async fn strategy_patches_are_kubectls() {
    let api = MockApi::start(Arc::new(deployment_api)).await;
    let cases = [
        (
            "recreate",
            r#"{"spec":{"strategy":{"rollingUpdate":null,"type":"Recreate"}}}"#,
        ),
        (
            "rolling:25%/25%",
            r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"}}}"#,
        ),
        (
            "rolling:1/0",
            r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0},"type":"RollingUpdate"}}}"#,
        ),
        (
            "rolling:100%/0%",
            r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":"100%","maxUnavailable":"0%"},"type":"RollingUpdate"}}}"#,
        ),
    ];
    for (case, _) in &cases {
        let s = probe_core::Strategy::parse_case(case).unwrap();
        bounded(probe_kube::set_strategy(
            api.client(),
            "shop",
            "backend",
            &s,
        ))
        .await
        .unwrap();
    }
    let sent = patches(&api);
    assert_eq!(sent.len(), cases.len());
    for (req, (case, body)) in sent.iter().zip(cases) {
        assert_eq!(req.path, DEPLOY, "{case}");
        assert_eq!(req.content_type.as_deref(), Some(SMP), "{case}");
        assert_eq!(req.body, body, "{case}");
        assert_eq!(
            req.query.get("fieldManager").map(String::as_str),
            Some("rollprobe")
        );
    }
}

#[tokio::test]
async fn restart_patch_is_kubectl_rollout_restarts() {
    let api = MockApi::start(Arc::new(deployment_api)).await;
    let before = jiff::Timestamp::now();
    let at = bounded(probe_kube::restart(api.client(), "shop", "backend"))
        .await
        .unwrap();
    let after = jiff::Timestamp::now();
    let sent = patches(&api);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].content_type.as_deref(), Some(SMP));
    assert_eq!(
        sent[0].body,
        format!(
            r#"{{"spec":{{"template":{{"metadata":{{"annotations":{{"kubectl.kubernetes.io/restartedAt":"{at}"}}}}}}}}}}"#
        )
    );
    // RFC 3339, UTC, whole seconds, and now.
    assert_eq!(at.len(), "2026-01-15T10:00:10Z".len(), "{at}");
    assert!(at.ends_with('Z'));
    let t: jiff::Timestamp = at.parse().unwrap();
    assert!(t.as_second() >= before.as_second() && t.as_second() <= after.as_second());
}

#[tokio::test]
async fn set_image_patches_the_named_or_only_container() {
    let api = MockApi::start(Arc::new(deployment_api)).await;
    let old = bounded(probe_kube::set_image(
        api.client(),
        "shop",
        "backend",
        None,
        "ghcr.io/acme/backend:v2",
    ))
    .await
    .unwrap();
    assert_eq!(old, "ghcr.io/acme/backend:v1");
    bounded(probe_kube::set_image(
        api.client(),
        "shop",
        "backend",
        Some("web"),
        "ghcr.io/acme/backend:v1",
    ))
    .await
    .unwrap();
    let err = bounded(probe_kube::set_image(
        api.client(),
        "shop",
        "backend",
        Some("sidecar"),
        "x",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deployment \"backend\" has no container \"sidecar\" (it has: web): name one of them"
    );
    let sent = patches(&api);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].content_type.as_deref(), Some(SMP));
    assert_eq!(
        sent[0].body,
        r#"{"spec":{"template":{"spec":{"containers":[{"image":"ghcr.io/acme/backend:v2","name":"web"}]}}}}"#
    );
    assert_eq!(
        sent[1].body,
        r#"{"spec":{"template":{"spec":{"containers":[{"image":"ghcr.io/acme/backend:v1","name":"web"}]}}}}"#
    );
}

#[tokio::test]
async fn read_strategy_fills_kubernetes_defaults() {
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut recorded: serde_json::Value =
        serde_json::from_str(&common::fixture("rolling/deployment-backend.json")).unwrap();
    let rolling = recorded.to_string();
    recorded["spec"]["strategy"] = serde_json::json!({"type": "Recreate"});
    let recreate = recorded.to_string();
    recorded["spec"].as_object_mut().unwrap().remove("strategy");
    let missing = recorded.to_string();
    *bodies.lock().unwrap() = vec![rolling, recreate, missing];
    let b = bodies.clone();
    let api = MockApi::start(Arc::new(move |req: &Request, nth: usize| {
        if req.path == DEPLOY {
            return Reply::Json(200, b.lock().unwrap()[nth].clone());
        }
        common::rolling(req, nth)
    }))
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            bounded(probe_kube::read_strategy(api.client(), "shop", "backend"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        got,
        vec![
            Strategy::RollingUpdate {
                max_surge: IntOrPercent::Int(1),
                max_unavailable: IntOrPercent::Int(0)
            },
            Strategy::Recreate,
            Strategy::DEFAULT,
        ]
    );
}

#[tokio::test]
async fn patch_of_a_missing_deployment_is_one_line() {
    let api = MockApi::start(Arc::new(common::rolling)).await;
    let err = bounded(probe_kube::set_strategy(
        api.client(),
        "shop",
        "nope",
        &Strategy::Recreate,
    ))
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deployment \"nope\" not found in namespace \"shop\": check the name and the namespace (-n)"
    );
}

#[tokio::test]
async fn forbidden_patch_names_the_verb() {
    let api = MockApi::start(Arc::new(|req: &Request, nth: usize| {
        if req.method == "PATCH" {
            return Reply::Json(403, r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"backend\" is forbidden: User \"system:serviceaccount:shop:rollprobe\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"","reason":"Forbidden","details":{"name":"backend","group":"apps","kind":"deployments"},"code":403}"#.into());
        }
        deployment_api(req, nth)
    }))
    .await;
    let err = bounded(probe_kube::restart(api.client(), "shop", "backend"))
        .await
        .unwrap_err();
    assert!(matches!(err, KubeError::Forbidden { .. }));
    assert!(
        err.to_string()
            .starts_with("no permission to patch deployments in namespace \"shop\""),
        "{err}"
    );
}

/// A server whose Deployment GETs walk through `files` (the last one repeats).
async fn status_sequence(files: &'static [&'static str]) -> MockApi {
    MockApi::start(Arc::new(move |req: &Request, nth: usize| {
        if req.path == DEPLOY {
            let f = files[nth.min(files.len() - 1)];
            return Reply::Json(200, common::fixture(&format!("status/deployment-{f}.json")));
        }
        common::rolling(req, nth)
    }))
    .await
}

#[tokio::test]
async fn wait_rollout_complete_follows_the_status() {
    let api = status_sequence(&[
        "not-observed",
        "updating",
        "old-pending",
        "unavailable",
        "complete",
    ])
    .await;
    bounded(probe_kube::wait_rollout_complete(
        api.client(),
        "shop",
        "backend",
        Duration::from_secs(8),
    ))
    .await
    .unwrap();
    assert_eq!(
        api.requests().iter().filter(|r| r.path == DEPLOY).count(),
        5
    );
}

#[tokio::test]
async fn wait_rollout_complete_fails_on_the_progress_deadline() {
    let api = status_sequence(&["updating", "deadline"]).await;
    let err = bounded(probe_kube::wait_rollout_complete(
        api.client(),
        "shop",
        "backend",
        Duration::from_secs(8),
    ))
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "deployment \"backend\" exceeded its progress deadline: see `kubectl describe deployment backend -n shop`"
    );
}

#[tokio::test]
async fn wait_rollout_complete_times_out_with_kubectls_line() {
    let api = status_sequence(&["old-pending"]).await;
    let err = bounded(probe_kube::wait_rollout_complete(
        api.client(),
        "shop",
        "backend",
        Duration::from_millis(1200),
    ))
    .await
    .unwrap_err();
    let line = err.to_string();
    assert!(matches!(err, KubeError::Timeout { .. }), "{line}");
    assert!(
        line.contains("Waiting for deployment \"backend\" rollout to finish: 1 old replicas are pending termination..."),
        "{line}"
    );
}
