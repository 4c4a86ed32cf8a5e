//! The lab's timing model, its addresses, and how it finds the app its pods run.
//!
//! Each default below stands for one real delay of a Kubernetes node running a real
//! service; the reasoning for each value is in its doc. None is chosen to make an
//! experiment come out one way: the kernel's own settings are stock by default too (see
//! [`crate::Kernel`]). Tests that need speed set shorter values explicitly.

use std::net::Ipv4Addr;
use std::time::Duration;

/// The pod network: every pod gets a fresh address from it (never reused in a run). Node
/// N has its own /20 of it, `10.244.(16·(N-1)).0/20`, as a CNI gives each node a range.
pub const POD_CIDR: &str = "10.244.0.0/16";
/// Node 1's address on its pod bridge (its pods' gateway); node N's is
/// `10.244.(16·(N-1)).1`.
pub const NODE_BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The most nodes a lab can have (`LabConfig::nodes`): the LAN addresses below the
/// LoadBalancer pool (172.31.254.1 and .3-.9) fit eight.
pub const MAX_NODES: usize = 8;
/// The Service (ClusterIP) range; the node routes it onto the bridge.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The first ClusterIP handed out.
pub const FIRST_CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The L2 segment between the node and the client host. It exists only inside the lab.
pub const CLIENT_SEGMENT: &str = "172.31.254.0/24";
/// Node 1's own address on the client segment (the LAN every node and the client host
/// share); node N > 1 has `172.31.254.(N+1)`.
pub const NODE_CLIENT_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 254, 1);
/// The client host's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 254, 2);
/// The first LoadBalancer address of the pool (172.31.254.10 - 172.31.254.250).
pub const FIRST_EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 254, 10);

/// Configuration of one lab run.
///
/// ```
/// let cfg = probe_lab::LabConfig {
///     app_command: Some(vec!["/usr/local/bin/rollprobe".into(), "lab-app".into()]),
///     ..Default::default()
/// };
/// assert!(cfg.run_id.starts_with("rplab-"));
/// assert_eq!(cfg.kernel, probe_lab::Kernel::Stock);
/// assert_eq!(cfg.startup_delay.as_secs(), 8);
/// ```
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Unique name prefix of this run's namespaces: `rplab-<pid>-<counter>` (see
    /// [`crate::new_run_id`]). It must start with [`crate::NAME_PREFIX`] and contain the
    /// owning pid, so that [`crate::cleanup_leftovers`] can tell whose it is.
    pub run_id: String,
    /// The program each pod runs, started as `ip netns exec POD_NS <app_command...>` with
    /// the container's env. `None` (the default) finds the project's app as
    /// [`find_app`] describes; the lab's own tests name the `probe-lab-app` binary here.
    pub app_command: Option<Vec<String>>,
    /// `STARTUP_DELAY_MS` given to the app unless the container's env sets it (default
    /// 8 s). A small Spring Boot REST service on a node with about one CPU logs
    /// "Started ... in" 5 to 15 seconds, larger ones tens of seconds; 8 s is a small
    /// service's typical start, and a manifest's `env` can set its own.
    pub startup_delay: Duration,
    /// From a pod's creation to its process running (default 2500 ms): scheduling, the
    /// kubelet's pod worker, the CNI creating the sandbox, starting a cached image (well
    /// within Kubernetes' 5 s pod startup SLO).
    pub pod_start_latency: Duration,
    /// From a pod's deletion to the kubelet sending SIGTERM (default 1000 ms): the
    /// kubelet learns of the deletion by watch and runs its pod worker. It is longer than
    /// `proxy_sync_delay`, as it usually is in practice, so a terminating pod leaves the
    /// Service's rules before it stops listening.
    pub kill_latency: Duration,
    /// From an endpoint change to node 1's kube-proxy rules and (when node 1 announces
    /// it) the load balancer's announcement reflecting it (default 500 ms: EndpointSlice
    /// propagation plus an iptables sync on an idle node).
    pub proxy_sync_delay: Duration,
    /// How many nodes (1 to [`MAX_NODES`], default 1). Pods are spread over them (the
    /// node with the fewest running pods gets the next one, as the scheduler's spreading
    /// does); each runs its own kube-proxy rules after its own sync delay
    /// ([`LabConfig::sync_delay`]); one elected node announces each LoadBalancer address.
    pub nodes: usize,
    /// Per node (index 0 is node 1), the sync delay of its kube-proxy, overriding
    /// `proxy_sync_delay` for node 1 and the default of the others (see
    /// [`LabConfig::sync_delay`]). Empty by default.
    pub node_sync_delays: Vec<Duration>,
    /// From a pod's process exit to its network namespace (and so its IP) being removed
    /// (default 2000 ms: PLEG relist plus sandbox teardown). Set it below
    /// `proxy_sync_delay - kill_latency` to show the race where traffic still DNATed to a
    /// gone pod IP meets a failed ARP (EHOSTUNREACH after ~3 s).
    pub sandbox_teardown_delay: Duration,
    /// The kernel settings of every namespace (default [`crate::Kernel::Stock`]).
    pub kernel: crate::kernel::Kernel,
    /// How each node's kube-proxy writes its rules (default [`crate::ProxyMode::Iptables`]).
    pub proxy_mode: crate::proxy_mode::ProxyMode,
    /// Multiplies every duration that comes from a manifest (`minReadySeconds`,
    /// readinessProbe `initialDelaySeconds`/`periodSeconds`/`timeoutSeconds`,
    /// `terminationGracePeriodSeconds`), for fast tests (default 1.0). The lab's own
    /// delays above are not scaled: set them directly.
    pub time_scale: f64,
    /// Let pods' stdout/stderr through (for debugging the app); default false.
    pub app_output: bool,
    /// The lab stops by itself after this long (a safety net; default 6 h).
    pub max_lifetime: Duration,
    /// The ingress controllers' settings, for the proxies applied Ingresses ask for
    /// (see [`crate::Ingress`]).
    pub ingress: IngressConfig,
    /// The service mesh (default none): with [`crate::Mesh::Istio`] every app pod and
    /// client pod gets an Envoy sidecar, fed endpoints after the ingress controllers'
    /// sync delay (istiod's push delay, see [`IngressConfig::sync_delay`]).
    pub mesh: Option<crate::mesh::Mesh>,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            run_id: crate::netns::new_run_id(),
            app_command: None,
            startup_delay: Duration::from_secs(8),
            pod_start_latency: Duration::from_millis(2500),
            kill_latency: Duration::from_millis(1000),
            proxy_sync_delay: Duration::from_millis(500),
            nodes: 1,
            node_sync_delays: Vec::new(),
            sandbox_teardown_delay: Duration::from_millis(2000),
            kernel: crate::kernel::Kernel::Stock,
            proxy_mode: crate::proxy_mode::ProxyMode::Iptables,
            time_scale: 1.0,
            app_output: false,
            max_lifetime: Duration::from_secs(6 * 3600),
            ingress: Default::default(),
            mesh: None,
        }
    }
}

/// How long an ingress controller takes from an EndpointSlice change to the proxy's
/// upstreams reflecting it, by default (1 s): the controller's informer sees the change
/// within tens of milliseconds, then its sync runs; ingress-nginx's sync rate limiter
/// lets one sync through at once and later ones at 0.3 per second, istiod debounces
/// pushes for at least 100 ms. One second stands for an idle controller.
pub const DEFAULT_INGRESS_SYNC_DELAY: Duration = Duration::from_secs(1);

/// The ingress controllers' settings (the lab config's `ingress` field).
///
/// ```
/// let cfg = probe_lab::LabConfig::default();
/// assert_eq!(cfg.ingress.sync_delay, probe_lab::DEFAULT_INGRESS_SYNC_DELAY);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressConfig {
    /// From a change of a backend Service's ready endpoints to the proxy's upstreams
    /// reflecting it (default [`DEFAULT_INGRESS_SYNC_DELAY`]).
    pub sync_delay: Duration,
}

impl Default for IngressConfig {
    fn default() -> Self {
        IngressConfig {
            sync_delay: DEFAULT_INGRESS_SYNC_DELAY,
        }
    }
}

/// How much later than node 1 each further node's kube-proxy syncs by default: node N
/// waits `proxy_sync_delay + (N-1) × 1 s`. One second is kube-proxy's default
/// `--iptables-min-sync-period`: a busier node that synced moments ago for another change
/// holds the next sync back up to that long, and its `iptables-restore` of a larger rule
/// set takes longer too, so in a real cluster nodes disagree for about a second or more.
pub const SLOWER_NODE_SYNC_STEP: Duration = Duration::from_secs(1);

impl LabConfig {
    /// The kube-proxy sync delay of node `node` (1-based): `node_sync_delays[node-1]` if
    /// given, else `proxy_sync_delay` for node 1 and `proxy_sync_delay + (node-1) ×`
    /// [`SLOWER_NODE_SYNC_STEP`] for the others.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cfg = probe_lab::LabConfig { nodes: 3, ..Default::default() };
    /// assert_eq!(cfg.sync_delay(1), Duration::from_millis(500));
    /// assert_eq!(cfg.sync_delay(3), Duration::from_millis(2500));
    /// let cfg = probe_lab::LabConfig { node_sync_delays: vec![Duration::ZERO, Duration::from_secs(4)], ..cfg };
    /// assert_eq!(cfg.sync_delay(2), Duration::from_secs(4));
    /// ```
    pub fn sync_delay(&self, node: usize) -> Duration {
        let i = node.saturating_sub(1);
        self.node_sync_delays
            .get(i)
            .copied()
            .unwrap_or(self.proxy_sync_delay + SLOWER_NODE_SYNC_STEP * i as u32)
    }
}

/// Node `node`'s (1-based) address on its pod bridge, its pods' gateway.
pub(crate) fn node_bridge_ip(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, (16 * (node - 1)) as u8, 1)
}

/// Node `node`'s (1-based) pod range, `10.244.(16·(node-1)).0/20`.
pub(crate) fn node_pod_subnet(node: usize) -> String {
    format!("10.244.{}.0/20", 16 * (node - 1))
}

/// Node `node`'s (1-based) address on the LAN shared with the client host.
pub(crate) fn node_lan_ip(node: usize) -> Ipv4Addr {
    if node == 1 {
        NODE_CLIENT_IP
    } else {
        Ipv4Addr::new(172, 31, 254, node as u8 + 1)
    }
}

/// The node (1-based) whose pod range holds `ip`.
pub(crate) fn node_of_pod_ip(ip: Ipv4Addr) -> usize {
    usize::from(ip.octets()[2] / 16) + 1
}

/// The address of node `node`'s client pod (the `--from pod:N` vantage point): the top
/// of its range, which pods never get.
pub(crate) fn client_pod_ip(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, (16 * (node - 1) + 15) as u8, 254)
}

/// The environment variable that names the app lab pods run (a path).
pub const LAB_APP_ENV: &str = "ROLLPROBE_LAB_APP";

/// The command lab pods run when [`LabConfig::app_command`] is `None`.
///
/// In this order: `ROLLPROBE_LAB_APP` (a path to a `rollprobe` binary, or to the
/// `probe-lab-app` binary, which ignores its arguments) if set; else a `rollprobe` binary
/// on `PATH`; else the current executable, but only when it is the `rollprobe` binary
/// itself (a user's test binary is not the app). Each is run as `PROGRAM lab-app`.
///
/// ```
/// // A test binary is not the app: without the variable or PATH entry it says so.
/// std::env::remove_var("ROLLPROBE_LAB_APP");
/// std::env::set_var("PATH", "/nonexistent");
/// let e = probe_lab::find_app().unwrap_err();
/// assert!(e.to_string().contains("ROLLPROBE_LAB_APP"), "{e}");
/// ```
pub fn find_app() -> Result<Vec<String>, crate::error::LabError> {
    let command = |p: &std::path::Path| vec![p.to_string_lossy().into_owned(), "lab-app".into()];
    if let Some(path) = std::env::var_os(LAB_APP_ENV).filter(|v| !v.is_empty()) {
        let path = std::path::PathBuf::from(path);
        if !is_executable(&path) {
            return Err(crate::error::LabError::AppNotFound(format!(
                "{LAB_APP_ENV}={} is not an executable file: point it at a rollprobe binary",
                path.display()
            )));
        }
        return Ok(command(&path));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("rollprobe");
            if is_executable(&candidate) {
                return Ok(command(&candidate));
            }
        }
    }
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == "rollprobe") {
            return Ok(command(&exe));
        }
    }
    Err(crate::error::LabError::AppNotFound(format!(
        "the lab's pods run the rollprobe app, and none was found: set {LAB_APP_ENV} to a \
         rollprobe binary (e.g. target/debug/rollprobe) or put rollprobe on PATH"
    )))
}

pub(crate) fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::IngressKind;

    // Here rather than beside the proxies: the addresses are the configuration's, and
    // the ingress module stays free of it (no import circle through `Mesh`).
    #[test]
    fn the_proxy_pods_stand_on_node_1_apart_from_its_client_pod() {
        for k in IngressKind::ALL {
            assert_eq!(node_of_pod_ip(k.pod_ip()), 1);
            assert_ne!(k.pod_ip(), client_pod_ip(1));
        }
    }
}
