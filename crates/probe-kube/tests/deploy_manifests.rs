//! The in-cluster probes of deploy/kubernetes/, checked without a cluster: every document
//! is the Kubernetes object it says it is (k8s-openapi's types, with no field they do not
//! know), the probes run the image and the arguments the README shows, and the Role allows
//! exactly the requests that `--watch` makes: those are not copied from the code but
//! recorded, by running [`watch_rollout`] with the Job's own arguments against the recorded
//! API responses of tests/common.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::MockApi;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use probe_core::EventSource;
use probe_kube::{watch_rollout, WatchTarget};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every object of deploy/kubernetes/*.yaml, by type.
#[derive(Default)]
struct Manifests {
    jobs: Vec<Job>,
    daemon_sets: Vec<DaemonSet>,
    service_accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
}

/// Reads one document as `T` and requires that writing it back gives the same document:
/// k8s-openapi ignores fields it does not know, so a misspelled field would otherwise
/// vanish without a word.
fn typed<T: DeserializeOwned + Serialize>(doc: &serde_json::Value, at: &str) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{at}: not a {}: {e}", doc["kind"]));
    let back = serde_json::to_value(&object).unwrap();
    assert_eq!(
        &back, doc,
        "{at}: a field that k8s-openapi does not know (misspelled or misplaced?)"
    );
    object
}

fn load() -> Manifests {
    let dir = repo().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in {}", dir.display());
    let mut m = Manifests::default();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (i, doc) in yaml_serde::Deserializer::from_str(&text).enumerate() {
            let at = format!("{} document {}", file.display(), i + 1);
            let yaml = yaml_serde::Value::deserialize(doc).unwrap_or_else(|e| panic!("{at}: {e}"));
            let doc = serde_json::to_value(&yaml).unwrap();
            match doc["kind"].as_str() {
                Some("Job") => m.jobs.push(typed(&doc, &at)),
                Some("DaemonSet") => m.daemon_sets.push(typed(&doc, &at)),
                Some("ServiceAccount") => m.service_accounts.push(typed(&doc, &at)),
                Some("Role") => m.roles.push(typed(&doc, &at)),
                Some("RoleBinding") => m.role_bindings.push(typed(&doc, &at)),
                other => panic!("{at}: unexpected kind {other:?}"),
            }
        }
    }
    m
}

fn one<'a, T>(items: &'a [T], what: &str) -> &'a T {
    assert_eq!(items.len(), 1, "expected one {what}");
    &items[0]
}

fn pod_specs(m: &Manifests) -> Vec<(&'static str, &PodSpec)> {
    let job = one(&m.jobs, "Job");
    let ds = one(&m.daemon_sets, "DaemonSet");
    vec![
        (
            "job",
            job.spec.as_ref().unwrap().template.spec.as_ref().unwrap(),
        ),
        (
            "daemonset",
            ds.spec.as_ref().unwrap().template.spec.as_ref().unwrap(),
        ),
    ]
}

/// The init container that runs the probe.
fn probe(spec: &PodSpec) -> &Container {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    one(init, "init container (the probe)")
}

fn args(c: &Container) -> Vec<String> {
    c.args.clone().expect("the probe has args")
}

/// The value of `--name=value` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    let prefix = format!("--{name}=");
    let found: Vec<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix(&prefix))
        .collect();
    assert_eq!(found.len(), 1, "{name} once in {args:?}");
    found[0]
}

fn readme() -> String {
    std::fs::read_to_string(repo().join("README.md")).unwrap()
}

#[test]
fn every_document_is_the_kubernetes_object_it_says() {
    let m = load();
    let namespaces: BTreeSet<Option<String>> = [
        one(&m.jobs, "Job").metadata.namespace.clone(),
        one(&m.daemon_sets, "DaemonSet").metadata.namespace.clone(),
        one(&m.service_accounts, "ServiceAccount")
            .metadata
            .namespace
            .clone(),
        one(&m.roles, "Role").metadata.namespace.clone(),
        one(&m.role_bindings, "RoleBinding")
            .metadata
            .namespace
            .clone(),
    ]
    .into();
    assert_eq!(namespaces, BTreeSet::from([Some("shop".to_string())]));
}

#[test]
fn the_probes_run_the_image_and_the_args_the_readme_shows() {
    let m = load();
    let readme = readme();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("In the cluster"))
        .expect("README has an \"In the cluster\" section");
    let image = section
        .lines()
        .find_map(|l| l.trim().strip_prefix("docker build -t "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the README shows `docker build -t IMAGE .`");
    // The image is tagged with the version it packages.
    assert_eq!(image, format!("rollprobe:{}", env!("CARGO_PKG_VERSION")));
    let shown: Vec<String> = section
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rollprobe run http"))
        .expect("the README shows the probe's command line")
        .split_whitespace()
        .map(String::from)
        .collect();

    // The Dockerfile's user, which the pods run as (and own their emptyDir as).
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let uid: i64 = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the Dockerfile sets USER")
        .trim()
        .parse()
        .expect("USER is a number: runAsNonRoot needs one");
    assert!(
        dockerfile.contains("ENTRYPOINT [\"rollprobe\"]"),
        "{dockerfile}"
    );

    for (what, spec) in pod_specs(&m) {
        let probe = probe(spec);
        let mut command = vec!["rollprobe".to_string()];
        command.extend(args(probe));
        let expected: Vec<String> = match what {
            "job" => shown.clone(),
            // The same probe, its run named by the node it runs on.
            _ => shown
                .iter()
                .map(|a| a.replace("job-$(NODE_NAME)", "node-$(NODE_NAME)"))
                .collect(),
        };
        assert_eq!(command, expected, "{what}: args vs README");
        assert!(
            probe.command.is_none(),
            "{what}: the image's ENTRYPOINT runs"
        );
        let args = args(probe);
        assert_eq!(args[0], "run");
        assert!(
            flag(&args, "duration").ends_with('m'),
            "{what}: a bounded run"
        );
        assert_eq!(
            flag(&args, "format"),
            "json",
            "{what}: report.json on stdout"
        );
        assert_eq!(flag(&args, "connection"), "both");
        assert_eq!(flag(&args, "pod-from"), "header:x-pod-name");
        assert!(flag(&args, "out").ends_with("-$(NODE_NAME)"), "{what}");

        let containers: Vec<&Container> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .collect();
        for c in &containers {
            assert_eq!(c.image.as_deref(), Some(image), "{what}/{}", c.name);
        }

        // $(NODE_NAME) is the node, from the downward API.
        let env = probe.env.as_deref().unwrap_or_default();
        let node = env
            .iter()
            .find(|e| e.name == "NODE_NAME")
            .expect("NODE_NAME");
        let field = node.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
        assert_eq!(field.map(|f| f.field_path.as_str()), Some("spec.nodeName"));

        // --out is on an emptyDir that the `hold` container keeps for `kubectl cp`.
        let out = flag(&args, "out");
        let mount = probe
            .volume_mounts
            .iter()
            .flatten()
            .find(|v| out.starts_with(&format!("{}/", v.mount_path)))
            .unwrap_or_else(|| panic!("{what}: --out {out} is on no volume"));
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == mount.name)
            .unwrap();
        assert!(volume.empty_dir.is_some(), "{what}: {volume:?}");
        let hold = one(&spec.containers, "main container (hold)");
        assert!(
            hold.volume_mounts
                .iter()
                .flatten()
                .any(|v| v.name == mount.name && v.mount_path == mount.mount_path),
            "{what}: hold does not mount {}",
            mount.mount_path
        );

        let security = spec.security_context.as_ref().expect("securityContext");
        assert_eq!(security.run_as_user, Some(uid), "{what}");
        assert_eq!(
            security.fs_group,
            Some(uid),
            "{what}: the probe writes the emptyDir"
        );
    }
}

/// One request to the API as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    namespace: String,
    group: String,
    resource: String,
    verb: String,
}

/// `/api/v1/namespaces/NS/RES[/NAME]` or `/apis/GROUP/VERSION/namespaces/NS/RES[/NAME]`.
fn access(r: &common::Request) -> Access {
    let parts: Vec<&str> = r.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
        _ => panic!("not a resource request: {r:?}"),
    };
    let (namespace, resource, name) = match rest {
        ["namespaces", ns, res] => (ns, res, None),
        ["namespaces", ns, res, name] => (ns, res, Some(name)),
        _ => panic!("not a namespaced request: {r:?}"),
    };
    let verb = match (r.method.as_str(), name, r.is_watch()) {
        ("GET", Some(_), _) => "get",
        ("GET", None, true) => "watch",
        ("GET", None, false) => "list",
        (m, ..) => panic!("an unexpected {m}: {r:?}"),
    };
    Access {
        namespace: namespace.to_string(),
        group,
        resource: resource.to_string(),
        verb: verb.into(),
    }
}

#[tokio::test]
async fn the_role_allows_what_watch_requests_and_nothing_more() {
    let m = load();
    let sa = one(&m.service_accounts, "ServiceAccount");
    let role = one(&m.roles, "Role");
    let binding = one(&m.role_bindings, "RoleBinding");
    let sa_name = sa.metadata.name.clone().unwrap();
    for (what, spec) in pod_specs(&m) {
        assert_eq!(spec.service_account_name.as_ref(), Some(&sa_name), "{what}");
    }
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(subjects[0].name, sa_name);
    assert_eq!(subjects[0].namespace, sa.metadata.namespace);
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());

    // What --watch asks of the API, with the Job's own arguments.
    let job = probe(pod_specs(&m)[0].1);
    let args = args(job);
    let target = WatchTarget {
        namespace: flag(&args, "namespace").to_string(),
        deployment: flag(&args, "watch")
            .strip_prefix("deployment/")
            .expect("--watch=deployment/NAME")
            .to_string(),
        service: Some(flag(&args, "service").to_string()),
    };
    let api = MockApi::start(std::sync::Arc::new(common::rolling)).await;
    let bounded = Duration::from_secs(10);
    let handle = tokio::time::timeout(bounded, watch_rollout(api.client(), target))
        .await
        .expect("watch_rollout answered in time")
        .expect("watch_rollout against the recorded API");
    api.release();
    tokio::time::timeout(bounded, handle.rollout_complete(Duration::from_secs(5)))
        .await
        .expect("rollout_complete answered in time")
        .expect("the recorded rollout completes");
    tokio::time::timeout(bounded, handle.stop()).await.unwrap();

    // `GET /version` (kube's check that the server answers) is a non-resource URL that
    // every authenticated user may read (system:public-info-viewer): no Role grants it.
    let needed: BTreeSet<Access> = api
        .requests()
        .iter()
        .filter(|r| r.path != "/version")
        .map(access)
        .collect();
    let resources: BTreeSet<&str> = needed.iter().map(|a| a.resource.as_str()).collect();
    assert_eq!(
        resources,
        BTreeSet::from([
            "deployments",
            "endpointslices",
            "pods",
            "replicasets",
            "services"
        ]),
        "the watch's requests: {needed:?}"
    );

    let role_ns = role.metadata.namespace.clone().unwrap();
    let mut granted = BTreeSet::new();
    for rule in role.rules.iter().flatten() {
        assert!(rule.resource_names.is_none(), "{rule:?}");
        assert!(rule.non_resource_urls.is_none(), "{rule:?}");
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    granted.insert(Access {
                        namespace: role_ns.clone(),
                        group: group.clone(),
                        resource: resource.clone(),
                        verb: verb.clone(),
                    });
                }
            }
        }
    }
    let missing: Vec<&Access> = needed.difference(&granted).collect();
    assert!(missing.is_empty(), "the Role does not allow {missing:?}");
    let extra: Vec<&Access> = granted.difference(&needed).collect();
    assert!(
        extra.is_empty(),
        "the Role allows more than --watch needs: {extra:?}"
    );
}
