//! The lab's timing model and addresses.
//!
//! Each default below stands for one real delay of a Kubernetes node; they are chosen so
//! that, with the seed manifests and a LoadBalancer Service, the classic experiment comes
//! out as it does on a real cluster (Recreate: "No route to host" and "Connection
//! refused"; RollingUpdate without a readinessProbe: only "Connection refused"; with a
//! readinessProbe or Blue/Green: nothing). The reasoning for each value is in its doc.

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

/// Neighbour (ARP) timers of the client host's interface, written to
/// `/proc/sys/net/ipv4/neigh/eth0/*` inside the client namespace.
///
/// Linux's defaults (reachable 30 s, first probe after 5 s) would keep a client sending
/// to a withdrawn LoadBalancer address for up to ~50 s, far longer than any lab outage;
/// real clients of a MetalLB address see the failure sooner mostly because they are idle
/// between requests. These shorter timers make the entry fail within about 1.5 s of the
/// last answered traffic, after which every new connection waits for the usual three
/// broadcast ARP requests one second apart and fails with EHOSTUNREACH after ~3 s —
/// the same ~3 s a real client waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighTimers {
    /// `base_reachable_time_ms` (default 500; Linux 30000): a confirmed entry stays
    /// REACHABLE for a random 0.5x-1.5x of this.
    pub base_reachable_time_ms: u32,
    /// `delay_first_probe_time` in seconds (default 1; Linux 5): STALE entry in use
    /// waits this long for a confirmation before probing.
    pub delay_first_probe_time_s: u32,
    /// `retrans_time_ms` (default 1000, as Linux): time between ARP requests.
    pub retrans_time_ms: u32,
    /// `ucast_solicit` (default 0; Linux 3): unicast re-probes before FAILED. With 0 an
    /// unconfirmed entry fails right after the DELAY state and is resolved afresh by
    /// broadcast, which a live node answers at once.
    pub ucast_solicit: u32,
    /// `mcast_solicit` (default 3, as Linux): broadcast requests of a new resolution;
    /// with `retrans_time_ms` this gives the ~3 s before EHOSTUNREACH.
    pub mcast_solicit: u32,
    /// `unres_qlen_bytes` (default 4 MiB; Linux 208 KiB): how much may wait for an ARP
    /// answer. A prober at 50+ requests/s queues more SYNs during a 3 s resolution than
    /// Linux keeps; the dropped ones would be retransmitted and end as timeouts, an
    /// artefact of the probe rate that a `curl` loop never sees.
    pub unres_qlen_bytes: u32,
}

impl Default for NeighTimers {
    fn default() -> Self {
        NeighTimers {
            base_reachable_time_ms: 500,
            delay_first_probe_time_s: 1,
            retrans_time_ms: 1000,
            ucast_solicit: 0,
            mcast_solicit: 3,
            unres_qlen_bytes: 4 << 20,
        }
    }
}

/// Configuration of one lab run.
///
/// ```
/// let cfg = probe_lab::LabConfig {
///     app_command: vec!["/usr/local/bin/rollprobe".into(), "lab-app".into()],
///     ..Default::default()
/// };
/// assert!(cfg.run_id.starts_with("rplab-"));
/// assert_eq!(cfg.startup_delay.as_millis(), 2000);
/// ```
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Unique name prefix of this run's namespaces: `rplab-<pid>-<counter>` (see
    /// [`crate::new_run_id`]). It must start with [`crate::NAME_PREFIX`] and contain the
    /// owning pid, so that [`crate::cleanup_leftovers`] can tell whose it is.
    pub run_id: String,
    /// The program each pod runs, e.g. `[current_exe, "lab-app"]`; it is started as
    /// `ip netns exec POD_NS <app_command...>` with the container's env. Default:
    /// `[current_exe, "lab-app"]`.
    pub app_command: Vec<String>,
    /// `STARTUP_DELAY_MS` given to the app unless the container's env sets it
    /// (default 2000 ms: a small Spring Boot service's start on a busy node).
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
    /// Neighbour timers of the client host (see [`NeighTimers`]).
    pub client_neigh: NeighTimers,
    /// Keep Linux's ICMP error rate limits in the node and client namespaces (default
    /// false: the lab lifts them).
    ///
    /// Linux sends at most about one ICMP error per second to one destination after a
    /// burst of 6 (`icmp_ratelimit`), and at most 1000/s with a burst of 50 overall
    /// (`icmp_msgs_per_sec`, `icmp_msgs_burst`); the "host unreachable" a client reports
    /// to its own sockets when ARP fails counts too. A `curl` loop never reaches these
    /// limits; a prober at 50+ requests/s does, and would then see kube-proxy's `REJECT`
    /// and failed ARP as timeouts (the error is silently not sent). So by default the lab
    /// lifts them, and the errno a client sees is decided by the mechanism, not by the
    /// probe rate. Set this to true to show the effect.
    pub icmp_ratelimit: bool,
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
        let exe = std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "rollprobe".to_string());
        LabConfig {
            run_id: crate::new_run_id(),
            app_command: vec![exe, "lab-app".to_string()],
            startup_delay: Duration::from_millis(2000),
            pod_start_latency: Duration::from_millis(2500),
            kill_latency: Duration::from_millis(1000),
            proxy_sync_delay: Duration::from_millis(500),
            sandbox_teardown_delay: Duration::from_millis(2000),
            client_neigh: NeighTimers::default(),
            icmp_ratelimit: false,
            time_scale: 1.0,
            app_output: false,
            max_lifetime: Duration::from_secs(6 * 3600),
        }
    }
}
