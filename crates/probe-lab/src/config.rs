//! The lab's timing model, its addresses, and how it finds the app its pods run.
//!
//! Each default below stands for one real delay of a Kubernetes node running a real
//! service; the reasoning for each value is in its doc. None is chosen to make an
//! experiment come out one way: the kernel's own settings are stock by default too (see
//! [`crate::Kernel`]). Tests that need speed set shorter values explicitly.

use std::net::Ipv4Addr;
use std::time::Duration;

/// The pod network: every pod gets a fresh address from it (never reused in a run).
pub const POD_CIDR: &str = "10.244.0.0/16";
/// The node's address on the pod bridge (the pods' gateway).
pub const NODE_BRIDGE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 1);
/// The Service (ClusterIP) range; the node routes it onto the bridge.
pub const SERVICE_CIDR: &str = "10.96.0.0/16";
/// The first ClusterIP handed out.
pub const FIRST_CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// The L2 segment between the node and the client host. It exists only inside the lab.
pub const CLIENT_SEGMENT: &str = "172.31.254.0/24";
/// The node's own address on the client segment.
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
    /// From an endpoint change to kube-proxy's rules and the load balancer's announcement
    /// reflecting it (default 500 ms: EndpointSlice propagation plus an iptables sync).
    pub proxy_sync_delay: Duration,
    /// From a pod's process exit to its network namespace (and so its IP) being removed
    /// (default 2000 ms: PLEG relist plus sandbox teardown). Set it below
    /// `proxy_sync_delay - kill_latency` to show the race where traffic still DNATed to a
    /// gone pod IP meets a failed ARP (EHOSTUNREACH after ~3 s).
    pub sandbox_teardown_delay: Duration,
    /// The kernel settings of every namespace (default [`crate::Kernel::Stock`]).
    pub kernel: crate::Kernel,
    /// Multiplies every duration that comes from a manifest (`minReadySeconds`,
    /// readinessProbe `initialDelaySeconds`/`periodSeconds`/`timeoutSeconds`,
    /// `terminationGracePeriodSeconds`), for fast tests (default 1.0). The lab's own
    /// delays above are not scaled: set them directly.
    pub time_scale: f64,
    /// Let pods' stdout/stderr through (for debugging the app); default false.
    pub app_output: bool,
    /// The lab stops by itself after this long (a safety net; default 6 h).
    pub max_lifetime: Duration,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            run_id: crate::new_run_id(),
            app_command: None,
            startup_delay: Duration::from_secs(8),
            pod_start_latency: Duration::from_millis(2500),
            kill_latency: Duration::from_millis(1000),
            proxy_sync_delay: Duration::from_millis(500),
            sandbox_teardown_delay: Duration::from_millis(2000),
            kernel: crate::Kernel::Stock,
            time_scale: 1.0,
            app_output: false,
            max_lifetime: Duration::from_secs(6 * 3600),
        }
    }
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
pub fn find_app() -> Result<Vec<String>, crate::LabError> {
    let command = |p: &std::path::Path| vec![p.to_string_lossy().into_owned(), "lab-app".into()];
    if let Some(path) = std::env::var_os(LAB_APP_ENV).filter(|v| !v.is_empty()) {
        let path = std::path::PathBuf::from(path);
        if !is_executable(&path) {
            return Err(crate::LabError::AppNotFound(format!(
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
    Err(crate::LabError::AppNotFound(format!(
        "the lab's pods run the rollprobe app, and none was found: set {LAB_APP_ENV} to a \
         rollprobe binary (e.g. target/debug/rollprobe) or put rollprobe on PATH"
    )))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
