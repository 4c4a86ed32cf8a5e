//! Kubernetes manifests: the subset of `apps/v1` Deployment and `v1` Service that decides
//! what a client sees during a rollout.
//!
//! Parsing (in `parse.rs`) is two-step on purpose. Each YAML document is first read into permissive raw
//! structs (every field optional, unknown fields ignored, as the API server's decoder does
//! for fields it does not know), and then validated into the strict model types below.
//! That second step is what lets a missing required field be reported as one line that
//! names the object and the field path (`spec.selector`), instead of a serde message about
//! a struct the user never wrote.
//!
//! The strategy is probe-core's [`Strategy`], the one type the lab, the Kubernetes
//! integration and the matrix share; its rounding (`Strategy::fenceposts`) follows the
//! Deployment controller.

use std::collections::BTreeMap;

use probe_core::Strategy;

mod parse;

pub use parse::parse_manifests;

/// Labels of an object, or a label selector's `matchLabels`.
pub type Labels = BTreeMap<String, String>;

/// One object from a manifest file.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// An `apps/v1` Deployment.
    Deployment(Deployment),
    /// A `v1` Service.
    Service(Service),
}

impl Object {
    /// The object's `metadata.name`.
    pub fn name(&self) -> &str {
        match self {
            Object::Deployment(d) => &d.name,
            Object::Service(s) => &s.name,
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
}

/// The version a lab app reports for an image: the tag after the last `:` of the last
/// path segment (`shop/web:v2` -> `v2`; no tag -> `latest`; a digest is ignored).
///
/// ```
/// assert_eq!(probe_lab::version_of_image("shop/web:v2"), "v2");
/// assert_eq!(probe_lab::version_of_image("registry:5000/shop/web"), "latest");
/// ```
pub fn version_of_image(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// Whether `selector` selects an object with `labels` (every selector pair present).
/// An empty selector selects nothing, as a Service without a selector has no endpoints.
pub fn selects(selector: &Labels, labels: &Labels) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_core::IntOrPercent::*;

    const DEPLOY: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend-deployment
  annotations: {unknown: field}
spec:
  replicas: 2
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0%
      maxSurge: 100%
  minReadySeconds: 10
  selector:
    matchLabels:
      type: backend
  template:
    metadata:
      labels:
        type: backend
    spec:
      containers:
      - name: backend
        image: shop/backend:v1
        env: [{name: SHUTDOWN_DELAY_MS, value: "500"}]
        readinessProbe:
          httpGet: {path: /test/version, port: 8080}
          initialDelaySeconds: 5
          periodSeconds: 2
          successThreshold: 3
      terminationGracePeriodSeconds: 5
"#;

    #[test]
    fn parses_a_full_deployment() {
        let objs = parse_manifests(DEPLOY).unwrap();
        let Object::Deployment(d) = &objs[0] else {
            panic!()
        };
        assert_eq!(d.replicas, 2);
        assert_eq!(d.min_ready_seconds, 10);
        assert_eq!(
            d.strategy,
            Strategy::RollingUpdate {
                max_surge: Percent(100),
                max_unavailable: Percent(0)
            }
        );
        assert_eq!(d.template.termination_grace_period_seconds, 5);
        let p = d.template.container.readiness_probe.as_ref().unwrap();
        assert_eq!(
            (
                p.initial_delay_seconds,
                p.period_seconds,
                p.success_threshold
            ),
            (5, 2, 3)
        );
        assert_eq!((p.timeout_seconds, p.failure_threshold), (1, 3));
        assert_eq!(d.template.container.env[0].1, "500");
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let y = "kind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {x: y}}\n  template:\n    metadata: {labels: {x: y}}\n    spec: {containers: [{name: c, image: i}]}\n";
        let Object::Deployment(d) = &parse_manifests(y).unwrap()[0] else {
            panic!()
        };
        assert_eq!(d.replicas, 1);
        assert_eq!(d.strategy, Strategy::default());
        assert_eq!(d.template.termination_grace_period_seconds, 30);
        assert_eq!(d.min_ready_seconds, 0);
    }

    #[test]
    fn missing_fields_name_field_and_object_on_one_line() {
        let y = DEPLOY.replace("  selector:\n    matchLabels:\n      type: backend\n", "");
        let e = parse_manifests(&y).unwrap_err().to_string();
        assert_eq!(
            e,
            "manifest document 1 (Deployment backend-deployment): missing required field spec.selector"
        );
        let y = "---\n---\nkind: Service\nmetadata: {name: s}\nspec: {selector: {a: b}}\n";
        let e = parse_manifests(y).unwrap_err().to_string();
        assert!(e.contains("(Service s)") && e.contains("spec.ports"), "{e}");
        assert!(!e.contains('\n'));
        let e = parse_manifests("kind: ConfigMap\nmetadata: {name: c}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ConfigMap is not supported"), "{e}");
        let e = parse_manifests("metadata: {name: c}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing required field kind"), "{e}");
        let e = parse_manifests(&DEPLOY.replace("image: shop/backend:v1", "imagex: a"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("containers[0].image"), "{e}");
    }

    #[test]
    fn invalid_rolling_update_values() {
        let both0 = DEPLOY.replace("maxSurge: 100%", "maxSurge: 0");
        let e = parse_manifests(&both0).unwrap_err().to_string();
        assert!(e.contains("may not be 0 when maxSurge is 0"), "{e}");
        let bad = DEPLOY.replace("maxSurge: 100%", "maxSurge: lots");
        let e = parse_manifests(&bad).unwrap_err().to_string();
        assert!(
            e.contains("maxSurge must be an integer or a percentage"),
            "{e}"
        );
        let int = DEPLOY.replace("maxSurge: 100%", "maxSurge: 3");
        let Object::Deployment(d) = &parse_manifests(&int).unwrap()[0] else {
            panic!()
        };
        assert!(matches!(
            d.strategy,
            Strategy::RollingUpdate {
                max_surge: Int(3),
                ..
            }
        ));
    }

    /// The examples of the Kubernetes documentation and the controller's own tests.
    #[test]
    fn fencepost_rounding() {
        let f = |surge, unavail, replicas| {
            Strategy::RollingUpdate {
                max_surge: surge,
                max_unavailable: unavail,
            }
            .fenceposts(replicas)
        };
        // docs: 10 replicas, 30% -> surge 3, unavailable 3
        assert_eq!(f(Percent(30), Percent(30), 10), (3, 3));
        // 25%/25% defaults
        assert_eq!(f(Percent(25), Percent(25), 1), (1, 0));
        assert_eq!(f(Percent(25), Percent(25), 4), (1, 1));
        assert_eq!(f(Percent(25), Percent(25), 5), (2, 1));
        // seed: 100% / 0% with 2 replicas -> 2 new pods at once, none unavailable
        assert_eq!(f(Percent(100), Percent(0), 2), (2, 0));
        // both resolve to 0: the controller uses maxUnavailable 1
        assert_eq!(f(Int(0), Percent(25), 2), (0, 1));
        assert_eq!(f(Percent(25), Percent(25), 0), (0, 1));
        assert_eq!(Strategy::Recreate.fenceposts(3), (0, 3));
    }

    #[test]
    fn services() {
        let y = "kind: Service\nmetadata: {name: s}\nspec:\n  selector: {a: b}\n  ports: [{port: 80, targetPort: 8080}]\n";
        let Object::Service(s) = &parse_manifests(y).unwrap()[0] else {
            panic!()
        };
        assert_eq!(s.service_type, ServiceType::ClusterIp);
        assert_eq!(s.ports[0].target_port, 8080);
        let e = parse_manifests(&y.replace("{a: b}", "{a: b}\n  type: NodePort"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("NodePort is not supported"), "{e}");
    }

    #[test]
    fn versions_from_images() {
        assert_eq!(version_of_image("shop/web:v2"), "v2");
        assert_eq!(version_of_image("shop/web"), "latest");
        assert_eq!(version_of_image("localhost:5000/web:1.0"), "1.0");
        assert_eq!(version_of_image("web:v3@sha256:abc"), "v3");
    }
}
