//! Kubernetes manifests: the subset of `apps/v1` Deployment, `v1` Service and
//! `networking.k8s.io/v1` Ingress that decides what a client sees during a rollout.
//!
//! Parsing (`parse.rs`, with one file per kind: `deployment.rs`, `service.rs`,
//! `ingress.rs`) reads each YAML document into k8s-openapi's type for its kind, the same
//! types probe-kube reads from a cluster. Those types know every field of the Kubernetes
//! API, so a manifest that kubectl accepts deserializes whatever else it sets (resources,
//! volumes, affinity, env from secrets...); what the lab does not model is dropped there,
//! and where dropping it would change a rollout (a second container, a liveness probe,
//! `valueFrom`) it is reported as a [`ManifestWarning`]. A kind or apiVersion the lab
//! does not run (ConfigMap, HorizontalPodAutoscaler, an Ingress without a class...) is
//! skipped with a warning too. The typed objects are then validated into the strict
//! model types below, so an error is one line naming the document, the object and the
//! field path
//! (`manifest document 2 (Deployment web): spec.strategy.rollingUpdate.maxSurge ...`).
//! A modelled field whose value the lab cannot honour (a NodePort Service, a named
//! port, an exec readiness probe, `matchExpressions`) stays an error: running the
//! rollout some other way than the file says would measure the wrong thing.
//!
//! The YAML layer is `yaml_serde`, serde_yaml's continuation under the YAML
//! organization. serde_yaml itself is deprecated and unmaintained; `serde_yml` is
//! deprecated by its own author (its last release only forwards to another crate); the
//! forks `serde_yaml_ng` and `serde_norway` see few releases. yaml_serde has a
//! maintainer of record, regular releases and serde_yaml's API, so multi-document
//! streams, merge keys (`<<`) and the alias and nesting limits behave as they did.
//!
//! The strategy is probe-core's [`Strategy`], the one type the lab, the Kubernetes
//! integration and the matrix share; its rounding (`Strategy::fenceposts`) follows the
//! Deployment controller.

use std::collections::BTreeMap;

use probe_core::Strategy;

mod ctx;
mod deployment;
mod ingress;
mod parse;
mod service;

pub(crate) use ingress::Route;
pub use ingress::{Ingress, IngressBackend, IngressKind, IngressPath, IngressRule};
pub use parse::{parse_manifests, parse_manifests_with_warnings};

/// Labels of an object, or a label selector's `matchLabels`.
pub type Labels = BTreeMap<String, String>;

/// One object from a manifest file.
// A manifest holds a handful of objects, read once: boxing the Deployment would save no
// memory worth having and would change every `Object::Deployment(d)` in the callers.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An `apps/v1` Deployment.
    Deployment(Deployment),
    /// A `v1` Service.
    Service(Service),
    /// A `networking.k8s.io/v1` Ingress whose class is one of the lab's proxies.
    Ingress(Ingress),
}

impl Object {
    /// The object's `metadata.name`.
    pub fn name(&self) -> &str {
        match self {
            Object::Deployment(d) => &d.name,
            Object::Service(s) => &s.name,
            Object::Ingress(i) => &i.name,
        }
    }
}

/// A Deployment, reduced to the fields the lab's controller acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// `metadata.name`.
    pub name: String,
    /// `spec.replicas` (default 1).
    pub replicas: i32,
    /// `spec.strategy` (default RollingUpdate 25%/25%).
    pub strategy: Strategy,
    /// `spec.minReadySeconds` (default 0): a ready pod counts as available only after this long.
    pub min_ready_seconds: u32,
    /// `spec.revisionHistoryLimit` (default 10): old ReplicaSets kept for rollbacks.
    pub revision_history_limit: u32,
    /// `spec.selector.matchLabels` (required).
    pub selector: Labels,
    /// `spec.template`.
    pub template: PodTemplate,
}

/// `spec.template` of a Deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct PodTemplate {
    /// `metadata.labels` (must match the Deployment's selector).
    pub labels: Labels,
    /// `metadata.annotations`: part of the template, so changing one (as
    /// `kubectl rollout restart` does) starts a rollout.
    pub annotations: Labels,
    /// The first container of `spec.containers` (the lab runs one process per pod).
    pub container: Container,
    /// `spec.terminationGracePeriodSeconds` (default 30): SIGTERM, then SIGKILL after this long.
    pub termination_grace_period_seconds: u32,
}

/// One container of a pod template.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// `name`.
    pub name: String,
    /// `image`, for example `shop/backend:v1`; its tag is the version the lab app reports.
    pub image: String,
    /// `env` entries with a literal `value` (others are ignored).
    pub env: Vec<(String, String)>,
    /// `ports[].containerPort` (informational: the app listens on `PORT`, default 8080).
    pub ports: Vec<u16>,
    /// `readinessProbe` with `httpGet`, if any.
    pub readiness_probe: Option<HttpProbe>,
    /// `lifecycle.preStop`, if it is a sleep or an exec command. The kubelet runs a sleep
    /// between a pod's removal and its SIGTERM; another command is not run (a warning
    /// says so).
    pub pre_stop: Option<PreStop>,
}

/// A container's `lifecycle.preStop` hook: what runs between a pod's removal and SIGTERM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreStop {
    /// A pause of this many seconds: the `sleep: {seconds: N}` action, or an `exec` of
    /// `sleep N` (directly or through `sh -c "sleep N"`), the usual way to let endpoints
    /// and load balancers drop a pod before it stops accepting connections.
    Sleep {
        /// How long the hook waits.
        seconds: u32,
    },
    /// Any other `exec` command, as written.
    Exec {
        /// `exec.command`.
        command: Vec<String>,
    },
}

/// A `readinessProbe` with an `httpGet` handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    /// `httpGet.path` (default `/`).
    pub path: String,
    /// `httpGet.port` (a number; named ports are not supported).
    pub port: u16,
    /// `initialDelaySeconds` (default 0).
    pub initial_delay_seconds: u32,
    /// `periodSeconds` (default 10).
    pub period_seconds: u32,
    /// `timeoutSeconds` (default 1).
    pub timeout_seconds: u32,
    /// `successThreshold` (default 1): consecutive successes to become ready.
    pub success_threshold: u32,
    /// `failureThreshold` (default 3): consecutive failures to become unready.
    pub failure_threshold: u32,
}

/// `spec.type` of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// A virtual IP reachable from the node (and pods).
    ClusterIp,
    /// A ClusterIP plus an external address announced on the client segment.
    LoadBalancer,
}

/// One entry of a Service's `spec.ports`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `name` (optional).
    pub name: Option<String>,
    /// `port`: the port on the Service's addresses.
    pub port: u16,
    /// `targetPort` (default: `port`): the port on the pods.
    pub target_port: u16,
}

/// A Service, reduced to what kube-proxy and the load balancer act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `metadata.name`.
    pub name: String,
    /// `spec.selector` (no selector: no endpoints).
    pub selector: Labels,
    /// `spec.ports` (at least one).
    pub ports: Vec<ServicePort>,
    /// `spec.type` (default ClusterIP).
    pub service_type: ServiceType,
    /// `spec.clusterIP`, if set (must lie in 10.96.0.0/16).
    pub cluster_ip: Option<std::net::Ipv4Addr>,
    /// `spec.loadBalancerIP`, if set (must lie in the lab's external pool).
    pub load_balancer_ip: Option<std::net::Ipv4Addr>,
    /// `spec.externalTrafficPolicy` (default Cluster; LoadBalancer Services only).
    pub external_traffic_policy: TrafficPolicy,
    /// `spec.healthCheckNodePort`, if set (30000-32767; `Local` policy only): where each
    /// node serves kube-proxy's health check for this Service. Unset, the lab allocates one.
    pub health_check_node_port: Option<u16>,
}

/// `spec.externalTrafficPolicy` of a LoadBalancer Service: which endpoints traffic to its
/// external address may reach from the node it arrives at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficPolicy {
    /// Any ready endpoint in the cluster (the node masquerades the client's address).
    #[default]
    Cluster,
    /// Only the arrival node's own endpoints; a node without one drops the traffic.
    Local,
}

/// What the lab left out of a manifest, as one line: the document, the object, what was
/// ignored and why (`manifest document 3 (ConfigMap settings): ignored: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestWarning {
    /// 1-based index of the YAML document.
    pub doc: usize,
    /// `Kind name` of the object (`?` where unknown).
    pub object: String,
    /// What was ignored, naming the field.
    pub message: String,
}

impl std::fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "manifest document {} ({}): {}",
            self.doc, self.object, self.message
        )
    }
}

/// The objects of a manifest file and what the lab ignored in it
/// (see [`parse_manifests_with_warnings`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    /// The Deployments and Services, in file order.
    pub objects: Vec<Object>,
    /// Kinds, objects and fields that were skipped, in file order.
    pub warnings: Vec<ManifestWarning>,
}

pub use probe_core::version_of_image;

/// Whether `selector` selects an object with `labels` (every selector pair present).
/// An empty selector selects nothing, as a Service without a selector has no endpoints.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests;
