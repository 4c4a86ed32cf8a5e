//! A watch that cannot start fails `watch_rollout` itself with one line, before any
//! event: a missing Deployment or Service, a forbidden get or watch. Against the recorded
//! API on 127.0.0.1 (Kubernetes JSON wire format, hand-written to match the API's shapes;
//! see tests/common).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MockApi, Reply, Request};
use probe_kube::{watch_rollout, KubeError, WatchTarget};

fn target() -> WatchTarget {
    WatchTarget {
        namespace: "shop".into(),
        deployment: "backend".into(),
        service: Some("backend".into()),
    }
}

async fn refused(handler: common::Handler, t: WatchTarget) -> (KubeError, Vec<Request>) {
    let api = MockApi::start(handler).await;
    let err = tokio::time::timeout(Duration::from_secs(10), watch_rollout(api.client(), t))
        .await
        .unwrap()
        .err()
        .expect("refused");
    (err, api.requests())
}

#[tokio::test]
async fn missing_deployment_is_one_line_before_any_watch() {
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.path.ends_with("/deployments/nope") {
            return Reply::Json(404, common::fixture("status/notfound.json"));
        }
        common::rolling(req, nth)
    });
    let mut t = target();
    t.deployment = "nope".into();
    let (err, reqs) = refused(handler, t).await;
    assert_eq!(
        err,
        KubeError::NotFound {
            resource: "deployments".into(),
            name: "nope".into(),
            namespace: "shop".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "deployment \"nope\" not found in namespace \"shop\": check the name and the namespace (-n)"
    );
    assert!(reqs.iter().all(|r| !r.is_watch()));
}

#[tokio::test]
async fn missing_service_is_one_line() {
    let mut t = target();
    t.service = Some("frontend".into());
    let (err, _) = refused(Arc::new(common::rolling), t).await;
    assert_eq!(
        err.to_string(),
        "service \"frontend\" not found in namespace \"shop\": check the name and the namespace (-n)"
    );
}

#[tokio::test]
async fn forbidden_watch_is_one_line_naming_verb_and_resource() {
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.is_watch() && req.last() == "pods" {
            return Reply::Json(403, common::fixture("status/forbidden-watch-pods.json"));
        }
        common::rolling(req, nth)
    });
    let (err, _) = refused(handler, target()).await;
    assert_eq!(
        err,
        KubeError::Forbidden {
            verb: "watch".into(),
            resource: "pods".into(),
            namespace: "shop".into()
        }
    );
    let line = err.to_string();
    assert!(!line.contains('\n'));
    assert!(
        line.starts_with("no permission to watch pods in namespace \"shop\""),
        "{line}"
    );
    assert!(
        line.contains("kubectl auth can-i watch pods -n shop"),
        "{line}"
    );
}

#[tokio::test]
async fn forbidden_get_deployment() {
    let handler = Arc::new(|req: &Request, nth: usize| {
        if req.path.ends_with("/deployments/backend") {
            return Reply::Json(403, r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"backend\" is forbidden: User \"alice\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"shop\"","reason":"Forbidden","details":{"name":"backend","group":"apps","kind":"deployments"},"code":403}"#.into());
        }
        common::rolling(req, nth)
    });
    let (err, _) = refused(handler, target()).await;
    assert!(
        err.to_string()
            .starts_with("no permission to get deployments in namespace \"shop\""),
        "{err}"
    );
}
