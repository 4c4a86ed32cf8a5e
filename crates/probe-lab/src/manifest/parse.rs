//! Manifest YAML to the lab's model: permissive raw shapes first, then validation that
//! names the document, the object and the field of every error.

use probe_core::{IntOrPercent, Strategy};
use serde::Deserialize;

use super::{
    selects, Container, Deployment, HttpProbe, Labels, Object, PodTemplate, Service, ServicePort,
    ServiceType,
};
use crate::LabError;

// ---------------------------------------------------------------------------------------
// Raw, permissive shapes.

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    labels: Option<Labels>,
    annotations: Option<Labels>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawIntOrString {
    Int(i64),
    Str(String),
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawDeployment {
    metadata: Option<RawMeta>,
    spec: Option<RawDeploymentSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawDeploymentSpec {
    replicas: Option<i64>,
    min_ready_seconds: Option<i64>,
    strategy: Option<RawStrategy>,
    selector: Option<RawSelector>,
    template: Option<RawTemplate>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawStrategy {
    #[serde(rename = "type")]
    kind: Option<String>,
    rolling_update: Option<RawRollingUpdate>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawRollingUpdate {
    max_surge: Option<RawIntOrString>,
    max_unavailable: Option<RawIntOrString>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawSelector {
    match_labels: Option<Labels>,
    match_expressions: Option<serde_yaml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawTemplate {
    metadata: Option<RawMeta>,
    spec: Option<RawPodSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawPodSpec {
    containers: Option<Vec<RawContainer>>,
    termination_grace_period_seconds: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawContainer {
    name: Option<String>,
    image: Option<String>,
    env: Option<Vec<RawEnv>>,
    ports: Option<Vec<RawContainerPort>>,
    readiness_probe: Option<RawProbe>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawEnv {
    name: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawContainerPort {
    container_port: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawProbe {
    http_get: Option<RawHttpGet>,
    initial_delay_seconds: Option<i64>,
    period_seconds: Option<i64>,
    timeout_seconds: Option<i64>,
    success_threshold: Option<i64>,
    failure_threshold: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawHttpGet {
    path: Option<String>,
    port: Option<RawIntOrString>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawService {
    metadata: Option<RawMeta>,
    spec: Option<RawServiceSpec>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawServiceSpec {
    selector: Option<Labels>,
    ports: Option<Vec<RawServicePort>>,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "clusterIP")]
    cluster_ip: Option<String>,
    #[serde(rename = "loadBalancerIP")]
    load_balancer_ip: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawServicePort {
    name: Option<String>,
    port: Option<i64>,
    target_port: Option<RawIntOrString>,
    protocol: Option<String>,
}

// ---------------------------------------------------------------------------------------

/// Where an error is: document number (1-based) and `Kind name`.
struct Ctx {
    doc: usize,
    object: String,
}

impl Ctx {
    fn err(&self, message: impl Into<String>) -> LabError {
        LabError::Manifest {
            doc: self.doc,
            object: self.object.clone(),
            message: message.into(),
        }
    }

    fn missing(&self, field: &str) -> LabError {
        self.err(format!("missing required field {field}"))
    }

    fn non_negative(&self, field: &str, v: Option<i64>, default: u32) -> Result<u32, LabError> {
        match v {
            None => Ok(default),
            Some(v) if (0..=i64::from(u32::MAX)).contains(&v) => Ok(v as u32),
            Some(v) => Err(self.err(format!("{field} must be >= 0, got {v}"))),
        }
    }

    fn port(&self, field: &str, v: i64) -> Result<u16, LabError> {
        if (1..=65535).contains(&v) {
            Ok(v as u16)
        } else {
            Err(self.err(format!("{field} must be between 1 and 65535, got {v}")))
        }
    }
}

/// Parses a multi-document YAML string of Deployments and Services.
///
/// Empty documents are skipped; unknown fields are ignored; any other `kind` is an error
/// (the lab would otherwise silently not do what the file asks). Errors display as one
/// line naming the document, the object and the field, e.g.
/// `manifest document 1 (Deployment backend-deployment): missing required field spec.selector`.
///
/// ```
/// let objs = probe_lab::parse_manifests(r#"
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata: {name: web}
/// spec:
///   selector: {matchLabels: {app: web}}
///   template:
///     metadata: {labels: {app: web}}
///     spec: {containers: [{name: web, image: "shop/web:v1"}]}
/// ---
/// apiVersion: v1
/// kind: Service
/// metadata: {name: web-svc}
/// spec: {selector: {app: web}, ports: [{port: 8080}], type: LoadBalancer}
/// "#).unwrap();
/// assert_eq!(objs.len(), 2);
/// assert_eq!(objs[1].name(), "web-svc");
/// ```
pub fn parse_manifests(yaml: &str) -> Result<Vec<Object>, LabError> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(yaml).enumerate() {
        let doc_no = i + 1;
        let value = serde_yaml::Value::deserialize(doc).map_err(|e| LabError::Manifest {
            doc: doc_no,
            object: "?".into(),
            message: one_line(&e.to_string()),
        })?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string);
        let name = value
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(|n| n.as_str())
            .unwrap_or("?")
            .to_string();
        let ctx = Ctx {
            doc: doc_no,
            object: format!("{} {}", kind.as_deref().unwrap_or("?"), name),
        };
        let Some(kind) = kind else {
            return Err(ctx.missing("kind"));
        };
        match kind.as_str() {
            "Deployment" => {
                let raw: RawDeployment =
                    serde_yaml::from_value(value).map_err(|e| ctx.err(one_line(&e.to_string())))?;
                out.push(Object::Deployment(deployment(&ctx, raw)?));
            }
            "Service" => {
                let raw: RawService =
                    serde_yaml::from_value(value).map_err(|e| ctx.err(one_line(&e.to_string())))?;
                out.push(Object::Service(service(&ctx, raw)?));
            }
            other => {
                return Err(ctx.err(format!(
                    "kind {other} is not supported by the lab (only Deployment and Service)"
                )))
            }
        }
    }
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn int_or_percent(ctx: &Ctx, field: &str, v: RawIntOrString) -> Result<IntOrPercent, LabError> {
    match v {
        RawIntOrString::Int(i) if (0..=i64::from(i32::MAX)).contains(&i) => {
            Ok(IntOrPercent::Int(i as i32))
        }
        RawIntOrString::Int(i) => Err(ctx.err(format!("{field} must be >= 0, got {i}"))),
        RawIntOrString::Str(s) => {
            let p = s
                .trim()
                .strip_suffix('%')
                .and_then(|n| n.trim().parse::<u32>().ok());
            match p {
                Some(p) => Ok(IntOrPercent::Percent(p)),
                None => Err(ctx.err(format!(
                    "{field} must be an integer or a percentage such as \"25%\", got {s:?}"
                ))),
            }
        }
    }
}

fn deployment(ctx: &Ctx, raw: RawDeployment) -> Result<Deployment, LabError> {
    let name = raw
        .metadata
        .and_then(|m| m.name)
        .ok_or_else(|| ctx.missing("metadata.name"))?;
    let spec = raw.spec.ok_or_else(|| ctx.missing("spec"))?;
    let replicas = match spec.replicas {
        None => 1,
        Some(r) if (0..=10_000).contains(&r) => r as i32,
        Some(r) => return Err(ctx.err(format!("spec.replicas must be 0..=10000, got {r}"))),
    };
    let min_ready_seconds = ctx.non_negative("spec.minReadySeconds", spec.min_ready_seconds, 0)?;
    let strategy = match spec.strategy {
        None => Strategy::default(),
        Some(s) => match s.kind.as_deref().unwrap_or("RollingUpdate") {
            "Recreate" => {
                if s.rolling_update.is_some() {
                    return Err(ctx.err(
                        "spec.strategy.rollingUpdate may not be specified when strategy type is Recreate",
                    ));
                }
                Strategy::Recreate
            }
            "RollingUpdate" => {
                let ru = s.rolling_update.unwrap_or_default();
                let max_surge = match ru.max_surge {
                    Some(v) => int_or_percent(ctx, "spec.strategy.rollingUpdate.maxSurge", v)?,
                    None => IntOrPercent::Percent(25),
                };
                let max_unavailable = match ru.max_unavailable {
                    Some(v) => {
                        int_or_percent(ctx, "spec.strategy.rollingUpdate.maxUnavailable", v)?
                    }
                    None => IntOrPercent::Percent(25),
                };
                if max_surge.is_zero() && max_unavailable.is_zero() {
                    return Err(ctx.err(
                        "spec.strategy.rollingUpdate.maxUnavailable may not be 0 when maxSurge is 0",
                    ));
                }
                if let IntOrPercent::Percent(p) = max_unavailable {
                    if p > 100 {
                        return Err(ctx.err(
                            "spec.strategy.rollingUpdate.maxUnavailable must not be greater than 100%",
                        ));
                    }
                }
                Strategy::RollingUpdate {
                    max_surge,
                    max_unavailable,
                }
            }
            other => {
                return Err(ctx.err(format!(
                    "spec.strategy.type must be Recreate or RollingUpdate, got {other:?}"
                )))
            }
        },
    };
    let selector = spec.selector.ok_or_else(|| ctx.missing("spec.selector"))?;
    if selector.match_expressions.is_some() {
        return Err(ctx.err("spec.selector.matchExpressions is not supported by the lab"));
    }
    let selector = selector
        .match_labels
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ctx.missing("spec.selector.matchLabels"))?;
    let template = spec.template.ok_or_else(|| ctx.missing("spec.template"))?;
    let (labels, annotations) = match template.metadata {
        Some(m) => (m.labels, m.annotations.unwrap_or_default()),
        None => (None, Labels::new()),
    };
    let labels = labels.ok_or_else(|| ctx.missing("spec.template.metadata.labels"))?;
    if !selects(&selector, &labels) {
        return Err(
            ctx.err("spec.template.metadata.labels: `selector` does not match template `labels`")
        );
    }
    let pod = template
        .spec
        .ok_or_else(|| ctx.missing("spec.template.spec"))?;
    let grace = ctx.non_negative(
        "spec.template.spec.terminationGracePeriodSeconds",
        pod.termination_grace_period_seconds,
        30,
    )?;
    let mut containers = pod
        .containers
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ctx.missing("spec.template.spec.containers"))?;
    let c = containers.remove(0);
    let cname = c
        .name
        .ok_or_else(|| ctx.missing("spec.template.spec.containers[0].name"))?;
    let image = c
        .image
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ctx.missing("spec.template.spec.containers[0].image"))?;
    let mut env = Vec::new();
    for (i, e) in c.env.unwrap_or_default().into_iter().enumerate() {
        let n = e.name.ok_or_else(|| {
            ctx.missing(&format!("spec.template.spec.containers[0].env[{i}].name"))
        })?;
        if let Some(v) = e.value {
            env.push((n, v));
        }
    }
    let mut ports = Vec::new();
    for (i, p) in c.ports.unwrap_or_default().into_iter().enumerate() {
        let field = format!("spec.template.spec.containers[0].ports[{i}].containerPort");
        let v = p.container_port.ok_or_else(|| ctx.missing(&field))?;
        ports.push(ctx.port(&field, v)?);
    }
    let readiness_probe = match c.readiness_probe {
        None => None,
        Some(p) => {
            let base = "spec.template.spec.containers[0].readinessProbe";
            let hg = p.http_get.ok_or_else(|| {
                ctx.err(format!(
                    "{base}: only httpGet probes are supported by the lab (missing {base}.httpGet)"
                ))
            })?;
            let port = match hg.port {
                None => return Err(ctx.missing(&format!("{base}.httpGet.port"))),
                Some(RawIntOrString::Int(v)) => ctx.port(&format!("{base}.httpGet.port"), v)?,
                Some(RawIntOrString::Str(s)) => match s.parse::<i64>() {
                    Ok(v) => ctx.port(&format!("{base}.httpGet.port"), v)?,
                    Err(_) => {
                        return Err(ctx.err(format!(
                            "{base}.httpGet.port: named ports ({s:?}) are not supported by the lab"
                        )))
                    }
                },
            };
            let min1 = |field: &str, v: Option<i64>, d: u32| -> Result<u32, LabError> {
                let v = ctx.non_negative(&format!("{base}.{field}"), v, d)?;
                if v == 0 {
                    Err(ctx.err(format!("{base}.{field} must be >= 1")))
                } else {
                    Ok(v)
                }
            };
            Some(HttpProbe {
                path: hg.path.unwrap_or_else(|| "/".into()),
                port,
                initial_delay_seconds: ctx.non_negative(
                    &format!("{base}.initialDelaySeconds"),
                    p.initial_delay_seconds,
                    0,
                )?,
                period_seconds: min1("periodSeconds", p.period_seconds, 10)?,
                timeout_seconds: min1("timeoutSeconds", p.timeout_seconds, 1)?,
                success_threshold: min1("successThreshold", p.success_threshold, 1)?,
                failure_threshold: min1("failureThreshold", p.failure_threshold, 3)?,
            })
        }
    };
    Ok(Deployment {
        name,
        replicas,
        strategy,
        min_ready_seconds,
        selector,
        template: PodTemplate {
            labels,
            annotations,
            container: Container {
                name: cname,
                image,
                env,
                ports,
                readiness_probe,
            },
            termination_grace_period_seconds: grace,
        },
    })
}

fn service(ctx: &Ctx, raw: RawService) -> Result<Service, LabError> {
    let name = raw
        .metadata
        .and_then(|m| m.name)
        .ok_or_else(|| ctx.missing("metadata.name"))?;
    let spec = raw.spec.ok_or_else(|| ctx.missing("spec"))?;
    let service_type = match spec.kind.as_deref().unwrap_or("ClusterIP") {
        "ClusterIP" => ServiceType::ClusterIp,
        "LoadBalancer" => ServiceType::LoadBalancer,
        other => {
            return Err(ctx.err(format!(
                "spec.type {other} is not supported by the lab (ClusterIP or LoadBalancer)"
            )))
        }
    };
    let raw_ports = spec
        .ports
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ctx.missing("spec.ports"))?;
    let mut ports = Vec::new();
    for (i, p) in raw_ports.into_iter().enumerate() {
        if let Some(proto) = p.protocol.as_deref() {
            if proto != "TCP" {
                return Err(ctx.err(format!(
                    "spec.ports[{i}].protocol {proto} is not supported by the lab (TCP only)"
                )));
            }
        }
        let field = format!("spec.ports[{i}].port");
        let port = ctx.port(&field, p.port.ok_or_else(|| ctx.missing(&field))?)?;
        let tfield = format!("spec.ports[{i}].targetPort");
        let target_port = match p.target_port {
            None => port,
            Some(RawIntOrString::Int(v)) => ctx.port(&tfield, v)?,
            Some(RawIntOrString::Str(s)) => match s.parse::<i64>() {
                Ok(v) => ctx.port(&tfield, v)?,
                Err(_) => {
                    return Err(ctx.err(format!(
                        "{tfield}: named ports ({s:?}) are not supported by the lab"
                    )))
                }
            },
        };
        ports.push(ServicePort {
            name: p.name,
            port,
            target_port,
        });
    }
    let parse_ip =
        |field: &str, v: Option<String>| -> Result<Option<std::net::Ipv4Addr>, LabError> {
            match v.as_deref() {
                None | Some("") | Some("None") => Ok(None),
                Some(s) => s
                    .parse()
                    .map(Some)
                    .map_err(|_| ctx.err(format!("{field} is not an IPv4 address: {s:?}"))),
            }
        };
    Ok(Service {
        name,
        selector: spec.selector.unwrap_or_default(),
        ports,
        service_type,
        cluster_ip: parse_ip("spec.clusterIP", spec.cluster_ip)?,
        load_balancer_ip: parse_ip("spec.loadBalancerIP", spec.load_balancer_ip)?,
    })
}
