//! Credentials as kubectl finds them, through kube's real client against the recorded API
//! server on 127.0.0.1 (Kubernetes JSON wire format, hand-written to match the API's
//! shapes; see tests/common): an exec credential plugin is run and its token sent, a
//! missing plugin is one line naming it, several KUBECONFIG files merge as kubectl merges
//! them, an OIDC id-token is sent. One test function, because it changes the process
//! environment (KUBECONFIG) and runs the cases in sequence.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::MockApi;
use probe_kube::KubeError;

/// A kubeconfig with one cluster (`server`), one context and the given user entry.
fn kubeconfig(server: &str, context: &str, namespace: &str, user: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: {context}-cluster
  cluster:
    server: {server}
contexts:
- name: {context}
  context:
    cluster: {context}-cluster
    user: {context}-user
    namespace: {namespace}
current-context: {context}
users:
- name: {context}-user
  user:
{user}
"#
    )
}

fn exec_user(command: &str) -> String {
    format!(
        r#"    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: {command}
      args: ["eks", "get-token", "--cluster-name", "lab"]
      interactiveMode: Never
      installHint: "Install the AWS CLI: https://docs.aws.amazon.com/cli/"
"#
    )
}

/// The `Authorization` header of the latest `GET /version`.
fn last_version_auth(api: &MockApi) -> Option<String> {
    api.requests()
        .iter()
        .rev()
        .find(|r| r.path == "/version")
        .and_then(|r| r.authorization.clone())
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn credentials_are_found_as_kubectl_finds_them() {
    let api = MockApi::start(Arc::new(common::rolling)).await;
    let server = format!("http://{}", api.addr);
    let dir = std::env::temp_dir().join(format!("probe-kube-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::env::remove_var("KUBERNETES_SERVICE_HOST");
    let connect = |ctx: Option<&'static str>| async move {
        tokio::time::timeout(Duration::from_secs(20), probe_kube::connect(ctx))
            .await
            .expect("connect answered in time")
    };

    // (a) An exec plugin (as EKS, GKE and AKS kubeconfigs have): a script that prints an
    // ExecCredential. Its token must be what the API server receives.
    let plugin = dir.join("fake-aws");
    let seen = dir.join("plugin-saw");
    write(
        &plugin,
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" \"$KUBERNETES_EXEC_INFO\" > '{}'\n\
             echo '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"token-from-the-plugin\"}}}}'\n",
            seen.display()
        ),
    );
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = dir.join("exec.yaml");
    write(
        &cfg,
        &kubeconfig(
            &server,
            "eks",
            "shop",
            &exec_user(&plugin.display().to_string()),
        ),
    );
    std::env::set_var("KUBECONFIG", &cfg);
    let client = connect(None).await.unwrap();
    assert_eq!(client.default_namespace(), "shop");
    assert_eq!(
        last_version_auth(&api).as_deref(),
        Some("Bearer token-from-the-plugin")
    );
    let saw = std::fs::read_to_string(&seen).unwrap();
    let mut lines = saw.lines();
    assert_eq!(lines.next(), Some("eks get-token --cluster-name lab"));
    assert!(
        lines
            .next()
            .unwrap_or("")
            .contains("\"kind\":\"ExecCredential\""),
        "{saw}"
    );

    // (b) The plugin is not installed: one line naming it and saying what to do.
    write(
        &cfg,
        &kubeconfig(
            &server,
            "eks",
            "shop",
            &exec_user("rollprobe-test-no-such-credential-plugin"),
        ),
    );
    let requests_before = api.requests().len();
    let err = connect(None).await.err().expect("a missing plugin fails");
    let line = err.to_string();
    assert!(
        matches!(&err, KubeError::AuthPluginMissing { plugin, .. } if plugin == "rollprobe-test-no-such-credential-plugin"),
        "{err:?}"
    );
    assert!(err.is_usage());
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(
        line,
        "the kubeconfig's credential plugin \"rollprobe-test-no-such-credential-plugin\" was not found: \
         install it (Install the AWS CLI: https://docs.aws.amazon.com/cli/) or add its directory to PATH \
         (kubectl needs it too)"
    );
    assert_eq!(api.requests().len(), requests_before, "nothing sent");

    // (c) Several files in KUBECONFIG merge as kubectl merges them: the first to set a
    // value wins (current-context), later files add contexts and users, and a listed file
    // that does not exist is skipped.
    let first = dir.join("first.yaml");
    let second = dir.join("second.yaml");
    write(
        &first,
        &kubeconfig(&server, "lab", "shop", "    token: token-of-the-first-file"),
    );
    write(
        &second,
        &kubeconfig(
            &server,
            "staging",
            "web",
            "    token: token-of-the-second-file",
        ),
    );
    let list = std::env::join_paths([&first, &dir.join("absent.yaml"), &second]).unwrap();
    std::env::set_var("KUBECONFIG", &list);
    let client = connect(None).await.unwrap();
    assert_eq!(
        client.default_namespace(),
        "shop",
        "first file's current-context"
    );
    assert_eq!(
        last_version_auth(&api).as_deref(),
        Some("Bearer token-of-the-first-file")
    );
    let client = connect(Some("staging")).await.unwrap();
    assert_eq!(client.default_namespace(), "web");
    assert_eq!(
        last_version_auth(&api).as_deref(),
        Some("Bearer token-of-the-second-file")
    );
    let err = connect(Some("prod")).await.err().unwrap();
    assert!(
        err.to_string()
            .contains("context \"prod\" is not in the kubeconfig; it has: lab, staging"),
        "{err}"
    );

    // (d) An OIDC auth provider with a valid id-token (exp in 2100): the token is sent.
    let id_token = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5pbnZhbGlkIiwic3ViIjoiYWxpY2UiLCJleHAiOjQxMDI0NDQ4MDB9.sig";
    write(
        &cfg,
        &kubeconfig(
            &server,
            "oidc",
            "shop",
            &format!(
                "    auth-provider:\n      name: oidc\n      config:\n        client-id: rollprobe\n        idp-issuer-url: https://issuer.invalid\n        id-token: {id_token}\n"
            ),
        ),
    );
    std::env::set_var("KUBECONFIG", &cfg);
    connect(None).await.unwrap();
    assert_eq!(last_version_auth(&api), Some(format!("Bearer {id_token}")));

    std::env::remove_var("KUBECONFIG");
    let _ = std::fs::remove_dir_all(&dir);
}
