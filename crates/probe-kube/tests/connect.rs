//! `connect` finds the cluster as kubectl does. One test function, because it changes
//! process environment (KUBECONFIG, HOME, KUBERNETES_SERVICE_HOST) and runs the cases in
//! sequence; the API server is the recorded one on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::MockApi;
use probe_kube::KubeError;

fn kubeconfig(server: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: {server}
contexts:
- name: lab
  context:
    cluster: lab
    user: tester
    namespace: shop
- name: other
  context:
    cluster: lab
    user: tester
current-context: lab
users:
- name: tester
  user:
    token: not-a-secret
"#
    )
}

#[tokio::test]
async fn connect_finds_the_cluster_like_kubectl() {
    let api = MockApi::start(Arc::new(common::rolling)).await;
    let dir = std::env::temp_dir().join(format!("probe-kube-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("config");
    std::fs::write(&cfg, kubeconfig(&format!("http://{}", api.addr))).unwrap();
    std::env::remove_var("KUBERNETES_SERVICE_HOST");
    std::env::remove_var("KUBERNETES_SERVICE_PORT");
    let connect = |ctx: Option<&'static str>| async move {
        tokio::time::timeout(Duration::from_secs(20), probe_kube::connect(ctx))
            .await
            .expect("connect answered in time")
    };

    // KUBECONFIG, current context: asks the server for its version.
    std::env::set_var("KUBECONFIG", &cfg);
    let client = connect(None).await.unwrap();
    assert_eq!(client.default_namespace(), "shop");
    assert!(api.requests().iter().any(|r| r.path == "/version"));
    // An explicit context.
    connect(Some("other")).await.unwrap();
    // A context that does not exist.
    let err = connect(Some("prod")).await.err().unwrap();
    let line = err.to_string();
    assert!(matches!(err, KubeError::NoCluster { .. }), "{line}");
    assert!(
        line.contains("context \"prod\" is not in the kubeconfig; it has: lab, other"),
        "{line}"
    );
    assert!(!line.contains('\n'));

    // ~/.kube/config when KUBECONFIG is unset.
    std::env::remove_var("KUBECONFIG");
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".kube")).unwrap();
    std::fs::copy(&cfg, home.join(".kube/config")).unwrap();
    let old_home = std::env::var_os("HOME");
    std::env::set_var("HOME", &home);
    connect(None).await.unwrap();

    // No kubeconfig anywhere and not in a pod.
    std::fs::remove_file(home.join(".kube/config")).unwrap();
    let err = connect(None).await.err().unwrap();
    let line = err.to_string();
    assert!(matches!(err, KubeError::NoCluster { .. }), "{line}");
    assert!(line.starts_with("no Kubernetes cluster found ("), "{line}");
    assert!(line.contains("set KUBECONFIG"), "{line}");
    assert!(!line.contains('\n'));

    // A kubeconfig whose server does not answer.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    std::fs::write(&cfg, kubeconfig(&format!("http://{dead_addr}"))).unwrap();
    std::env::set_var("KUBECONFIG", &cfg);
    let err = connect(None).await.err().unwrap();
    let line = err.to_string();
    assert!(matches!(err, KubeError::Unreachable { .. }), "{line}");
    assert!(
        line.starts_with("cannot reach the Kubernetes API server ("),
        "{line}"
    );

    match old_home {
        Some(h) => std::env::set_var("HOME", h),
        None => std::env::remove_var("HOME"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
