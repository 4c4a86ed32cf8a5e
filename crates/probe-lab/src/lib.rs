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
//!   ready endpoint, hence ECONNREFUSED at once), or as its nftables mode writes them
//!   ([`ProxyMode`]). Rule changes land after a sync delay. Terminating endpoints that
//!   still serve get traffic only while no endpoint is ready, and
//!   `externalTrafficPolicy: Local` keeps external traffic on the arrival node's own
//!   endpoints (dropped where there is none), as kube-proxy does.
//! - **a MetalLB-style L2 load balancer**: a separate *client* namespace shares an L2
//!   segment with the node; the node answers ARP for a LoadBalancer address only while the
//!   Service has a ready endpoint. When the last one goes, the client's neighbour entry
//!   fails (once its neighbour timers run out: tens of seconds with stock settings) and
//!   it gets EHOSTUNREACH ("No route to host").
//! - **several nodes** ([`LabConfig::nodes`]): pods spread over node namespaces joined
//!   by a routed pod network (each node its own /20 and bridge); each node runs its own
//!   kube-proxy rules after its own sync delay ([`LabConfig::sync_delay`]), so nodes
//!   disagree for a moment as in a cluster, and each sync is an `endpoint_removed` /
//!   `endpoint_added` event naming the node; one elected node announces each
//!   LoadBalancer address.
//! - **vantage points** ([`Lab::vantage_point`]): the client host (LoadBalancer), a node
//!   or a client pod on a node's bridge (ClusterIP), each a [`probe_core::Vantage`].
//! - **the Deployment controller and the kubelet** ([`Lab`]): pods are namespaces on the
//!   bridge running a small versioned app ([`run_app`]) that, like a Spring Boot service,
//!   listens only after a startup delay; Recreate and RollingUpdate with
//!   maxSurge/maxUnavailable, minReadySeconds, readinessProbe httpGet, preStop sleeps,
//!   grace periods, rollout history under revisionHistoryLimit (and undo) and label
//!   selectors behave as in Kubernetes.
//! - **ingress proxies** ([`Ingress`], [`Lab::expose_through`]): the real nginx,
//!   HAProxy or Envoy in a proxy pod behind its own LoadBalancer, set up as
//!   ingress-nginx, the HAProxy controllers and an Istio gateway set them up (their
//!   retries, endpoints changed without a reload after the controller's own sync delay,
//!   [`LabConfig::ingress`]), each writing the access log probe-core joins by request id.
//! - **the procedure**: [`Lab::wait_serving`] waits for a healthy baseline before anything
//!   is measured, and [`Lab::run_steps`] runs a rollout made of several [`Step`]s (scale,
//!   switch a selector, set an image, undo, restart, wait), each an event.
//!
//! Nothing in the lab can reach the outside: the node has no uplink and no default route,
//! every address (10.244.0.0/16 pods, 10.96.0.0/16 Services, 172.31.254.0/24 client
//! LAN) exists only inside the lab's namespaces, and every namespace carries a per-run
//! name prefix (`rplab-<pid>-<n>-`) so that parallel runs never collide.
//!
//! # Which mechanism gives which failure
//!
//! What the kernel does, and what a client sees with the default [`Kernel::Stock`]
//! settings (those of any Linux machine) and with [`Kernel::Tuned`]:
//!
//! | mechanism | the kernel's answer | stock: a client sees | tuned: a client sees |
//! |---|---|---|---|
//! | kube-proxy's `REJECT` (a Service without ready endpoints) | ICMP port unreachable from the node | ECONNREFUSED at once for about one connect per second (after a burst of 6); at a higher rate the other SYNs get no answer and end as connect timeouts | ECONNREFUSED at once, every time |
//! | a DNAT to a pod whose app is not listening (starting, or already exited) | TCP RST from the pod | ECONNREFUSED at once (an RST is not rate-limited) | the same |
//! | a LoadBalancer address no longer announced (no ready endpoint) | ARP gets no answer | a client that talked to it recently keeps its neighbour entry for 15-45 s and its connects time out; then ~3 s of ARP and EHOSTUNREACH, about one per second, the rest timeouts | the entry fails within ~1.5 s, then EHOSTUNREACH after ~3 s of ARP for every connect |
//! | a DNAT to a pod IP whose sandbox is already gone (sync slower than teardown) | ARP on the node's bridge gets no answer; ICMP host unreachable from the node | EHOSTUNREACH after ~3 s, rate-limited as above | EHOSTUNREACH after ~3 s |
//! | no route (the lab always routes the Service range, so only by misuse) | ENETUNREACH | ENETUNREACH | ENETUNREACH |
//!
//! # Seeing what the lab built
//!
//! `ip netns list` shows a run's namespaces (`<run>-node1`..`<run>-nodeN`, `<run>-client`,
//! `<run>-lan` (the switch), `<run>-cpodN` (node N's client pod), `<run>-pN` (pods));
//! `ip netns exec <run>-node1 iptables-save` shows node 1's kube-proxy rules,
//! `ip -n <run>-node1 addr show lb0` the LoadBalancer addresses it announces, and
//! `ip netns exec <run>-client sysctl net.ipv4.icmp_ratelimit` the kernel settings.
//!
//! # Defaults and the probe rate
//!
//! The timing defaults of [`LabConfig`] are a real node's and a real service's (an 8 s
//! application start, as a small Spring Boot service takes), documented one by one. The
//! kernel settings are stock Linux by default ([`Kernel::Stock`]), written explicitly in
//! every node, pod and client namespace so a tuned host does not leak in: the lab shows
//! what a user's machines show at the same probe rate. That includes the limits a fast
//! prober runs into: about one ICMP error per second per client gets through, and a
//! 208 KiB ARP queue, so at 50 requests/s most refusals and failed ARPs arrive as connect
//! timeouts. [`Kernel::Tuned`] lifts the ICMP limits in the node and client, shortens
//! the client's neighbour timers 60-fold and enlarges its ARP queue 20-fold, so that each
//! mechanism shows its own errno at any rate: for demonstrating mechanisms, never for
//! predicting what users see. [`Lab::kernel`] says which one a lab runs with; the
//! `kernel` module's source lists every write with its reason.
//!
//! # The app its pods run
//!
//! Pods run the project's app ([`run_app`], as `rollprobe lab-app`), found by
//! [`find_app`]: `ROLLPROBE_LAB_APP` if set, else `rollprobe` on `PATH`, else the current
//! executable when it is `rollprobe` itself. [`LabConfig::app_command`] overrides it.
//!
//! Everything here needs root (network namespaces, iptables) except manifest parsing and
//! the app.

mod app;
mod config;
mod controller;
mod deployments;
mod error;
mod hash;
mod healthcheck;
mod ingress;
mod ingresses;
mod kernel;
mod lab;
mod manifest;
mod mesh;
mod netns;
mod proxy;
mod proxy_mode;
mod serving;
mod sources;
mod steps;
mod topology;
mod vantage;

pub use app::{run_app, AppConfig, POD_HEADER};
pub use config::{
    find_app, IngressConfig, LabConfig, CLIENT_IP, CLIENT_SEGMENT, DEFAULT_INGRESS_SYNC_DELAY,
    FIRST_CLUSTER_IP, FIRST_EXTERNAL_IP, LAB_APP_ENV, MAX_NODES, NODE_BRIDGE_IP, NODE_CLIENT_IP,
    POD_CIDR, SERVICE_CIDR, SLOWER_NODE_SYNC_STEP,
};
pub use controller::{DeploymentStatus, ServiceStatus};
pub use error::LabError;
pub use ingress::{lab_dir, INGRESS_PORT};
pub use kernel::Kernel;
pub use lab::{Lab, ProbeTarget};
pub use manifest::{
    parse_manifests, parse_manifests_with_warnings, selects, version_of_image, Container,
    Deployment, HttpProbe, Ingress, IngressBackend, IngressKind, IngressPath, IngressRule, Labels,
    ManifestWarning, Object, Parsed, PodTemplate, PreStop, Service, ServicePort, ServiceType,
    TrafficPolicy,
};
pub use mesh::{Mesh, INBOUND_PORT, OUTBOUND_PORT};
pub use netns::{cleanup_leftovers, cleanup_own, enter_netns, new_run_id, NAME_PREFIX};
/// The rollout strategy type the lab shares with the rest of rollprobe.
pub use probe_core::{IntOrPercent, Strategy};
pub use proxy_mode::ProxyMode;
pub use steps::{Revision, Step, WaitFor, STEP_WAIT_TIMEOUT};
pub use vantage::{LabFrom, LabVantage};
