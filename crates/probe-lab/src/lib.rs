//! probe-lab: the Kubernetes data path on one machine, with the real kernel.
//!
//! No cluster can run where rollprobe is developed and tested, and a mock would prove
//! nothing about which errno a client really gets during a rollout. The lab therefore
//! rebuilds, in Linux network namespaces, the two mechanisms that decide what a client
//! sees, and runs them on the real network stack:
//!
//! - **kube-proxy**: a ClusterIP is
//!   a virtual address routed onto the pod bridge of an isolated *node* namespace, with
//!   iptables NAT rules written as kube-proxy writes them (DNAT per endpoint with
//!   `-m statistic --mode random --probability`, and a plain `REJECT` when there is no
//!   ready endpoint, hence ECONNREFUSED at once). Rule changes land after a sync delay.
//! - **a MetalLB-style L2 load balancer**: a separate *client* namespace shares an L2
//!   segment with the node; the node answers ARP for a LoadBalancer address only while the
//!   Service has a ready endpoint. When the last one goes, the client's neighbour entry
//!   fails and it gets EHOSTUNREACH ("No route to host").
//! - **the Deployment controller and the kubelet** ([`Lab`]): pods are namespaces on the
//!   bridge running a small versioned app ([`run_app`]) that, like a Spring Boot service,
//!   listens only after a startup delay; Recreate and RollingUpdate with
//!   maxSurge/maxUnavailable, minReadySeconds, readinessProbe httpGet, grace periods and
//!   label selectors behave as in Kubernetes.
//!
//! Nothing in the lab can reach the outside: the node has no uplink and no default route,
//! every address (10.244.0.0/16 pods, 10.96.0.0/16 Services, 172.31.254.0/24 client
//! segment) exists only inside the lab's namespaces, and every namespace carries a per-run
//! name prefix (`rplab-<pid>-<n>-`) so that parallel runs never collide.
//!
//! # Which mechanism gives which failure
//!
//! | client sees | produced by |
//! |---|---|
//! | ECONNREFUSED at once | kube-proxy's `REJECT` for a Service without ready endpoints; or a DNAT to a pod whose app is not listening (starting, or already exited) |
//! | EHOSTUNREACH after ~3 s | the LoadBalancer address is no longer announced (no ready endpoint); or a DNAT to a pod IP whose sandbox is already gone (sync slower than teardown) |
//! | ENETUNREACH | no route (the lab always routes the Service range, so only by misuse) |
//!
//! # Seeing what the lab built
//!
//! `ip netns list` shows a run's namespaces (`<run>-node`, `<run>-client`, `<run>-pN`);
//! `ip netns exec <run>-node iptables-save` shows kube-proxy's rules, and
//! `ip -n <run>-node addr show lb0` the announced LoadBalancer addresses.
//!
//! # Defaults and the probe rate
//!
//! The timing defaults of [`LabConfig`] are documented one by one. Two settings exist
//! only because a prober sends far more requests than a `curl` loop: the lab lifts
//! Linux's ICMP error rate limits ([`LabConfig::icmp_ratelimit`]) and enlarges the
//! client's ARP queue ([`NeighTimers::unres_qlen_bytes`]); otherwise the errors that
//! the mechanisms produce would partly turn into timeouts at 50 requests/s.
//!
//! Everything here needs root (network namespaces, iptables) except manifest parsing and
//! the app.

#![warn(missing_docs)]

mod app;
mod config;
mod controller;
mod lab;
mod manifest;
mod netns;
mod proxy;

pub use app::{run_app, AppConfig};
pub use config::{
    LabConfig, NeighTimers, CLIENT_IP, CLIENT_SEGMENT, FIRST_CLUSTER_IP, FIRST_EXTERNAL_IP,
    NODE_BRIDGE_IP, NODE_CLIENT_IP, POD_CIDR, SERVICE_CIDR,
};
pub use controller::{DeploymentStatus, ServiceStatus};
pub use lab::{Lab, ProbeTarget};
pub use manifest::{
    parse_manifests, resolve_fenceposts, selects, version_of_image, Container, Deployment,
    HttpProbe, IntOrPercent, Labels, Object, PodTemplate, Service, ServicePort, ServiceType,
    Strategy,
};
pub use netns::{cleanup_leftovers, cleanup_own, enter_netns, new_run_id, NAME_PREFIX};

/// Receives every lab action as `sink(kind, detail)`.
///
/// Kinds: `pod_created`, `pod_ready`, `pod_unready`, `endpoint_added`,
/// `endpoint_removed`, `pod_terminating`, `pod_deleted`, `rollout_start`,
/// `rollout_complete`, `service_selector_changed`. Details are short human strings:
/// pods as `NAME IP VERSION` (`backend-deployment-7bq5x2kzcd-x2m4p 10.244.0.5 v2`),
/// endpoints as `SERVICE IP:PORT POD`, rollouts as `DEPLOYMENT IMAGE`, selector changes
/// as `SERVICE k=v,...`. The sink is called from the lab's controller thread (and from
/// the caller's thread for `service_selector_changed`); keep it cheap.
pub type EventSink = std::sync::Arc<dyn Fn(&str, &str) + Send + Sync>;

/// Every event kind the lab reports through its [`EventSink`].
pub const EVENT_KINDS: [&str; 10] = [
    "pod_created",
    "pod_ready",
    "pod_unready",
    "endpoint_added",
    "endpoint_removed",
    "pod_terminating",
    "pod_deleted",
    "rollout_start",
    "rollout_complete",
    "service_selector_changed",
];

/// Errors of the lab. Each displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A manifest is invalid: which document, which object, what is wrong.
    #[error("manifest document {doc} ({object}): {message}")]
    Manifest {
        /// 1-based index of the YAML document.
        doc: usize,
        /// `Kind name` of the object (`?` where unknown).
        object: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// The lab needs root.
    #[error("the lab needs root for network namespaces and iptables (running as uid {0})")]
    NotRoot(u32),
    /// Building or removing the lab failed.
    #[error("lab setup failed: {0}")]
    Setup(String),
    /// A command (`ip`, `iptables-restore`) failed.
    #[error("{0}")]
    Command(String),
    /// A named Deployment or Service does not exist in the lab.
    #[error("{0} not found in the lab")]
    NotFound(String),
    /// A wait ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// An invalid argument or configuration.
    #[error("{0}")]
    Invalid(String),
}
