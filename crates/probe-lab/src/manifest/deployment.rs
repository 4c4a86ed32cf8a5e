//! An `apps/v1` Deployment, as k8s-openapi reads it, validated into the lab's
//! [`Deployment`]: the fields the controller acts on keep the API server's defaults and
//! validation, and those that would change a rollout but are not modelled are warnings.

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use probe_core::{IntOrPercent, Strategy};

use super::ctx::Ctx;
use super::{selects, Container, Deployment, HttpProbe, Labels, PodTemplate, PreStop};
use crate::error::LabError;

const POD: &str = "spec.template.spec";
const FIRST: &str = "spec.template.spec.containers[0]";

pub(super) fn deployment(ctx: &Ctx, d: apps::Deployment) -> Result<Deployment, LabError> {
    let name = d
        .metadata
        .name
        .ok_or_else(|| ctx.missing("metadata.name"))?;
    let spec = d.spec.ok_or_else(|| ctx.missing("spec"))?;
    let replicas = match spec.replicas {
        None => 1,
        Some(r) if (0..=10_000).contains(&r) => r,
        Some(r) => return Err(ctx.err(format!("spec.replicas must be 0..=10000, got {r}"))),
    };
    let min_ready_seconds = ctx.non_negative("spec.minReadySeconds", spec.min_ready_seconds, 0)?;
    let revision_history_limit =
        ctx.non_negative("spec.revisionHistoryLimit", spec.revision_history_limit, 10)?;
    let strategy = strategy(ctx, spec.strategy)?;
    if spec.paused == Some(true) {
        ctx.warn("spec.paused ignored: the lab rolls a paused Deployment out like any other");
    }
    ctx.require("spec.selector")?;
    if spec.selector.match_expressions.is_some() {
        return Err(ctx.err("spec.selector.matchExpressions is not supported by the lab"));
    }
    let selector = spec
        .selector
        .match_labels
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ctx.missing("spec.selector.matchLabels"))?;
    ctx.require("spec.template")?;
    let (labels, annotations) = match spec.template.metadata {
        Some(m) => (m.labels, m.annotations.unwrap_or_default()),
        None => (None, Labels::new()),
    };
    let labels = labels.ok_or_else(|| ctx.missing("spec.template.metadata.labels"))?;
    if !selects(&selector, &labels) {
        return Err(
            ctx.err("spec.template.metadata.labels: `selector` does not match template `labels`")
        );
    }
    let pod = spec.template.spec.ok_or_else(|| ctx.missing(POD))?;
    let grace = ctx.non_negative(
        &format!("{POD}.terminationGracePeriodSeconds"),
        pod.termination_grace_period_seconds,
        30,
    )?;
    let mut containers = pod.containers.into_iter();
    let first = containers
        .next()
        .ok_or_else(|| ctx.missing(&format!("{POD}.containers")))?;
    for (i, c) in containers.enumerate() {
        ctx.warn(format!(
            "{POD}.containers[{}] ({}) ignored: the lab runs the first container of a pod",
            i + 1,
            c.name
        ));
    }
    if let Some(init) = pod.init_containers.filter(|c| !c.is_empty()) {
        ctx.warn(format!(
            "{POD}.initContainers ({} of them) ignored: the lab starts the app at once",
            init.len()
        ));
    }
    let container = container(ctx, first, grace)?;
    Ok(Deployment {
        name,
        replicas,
        strategy,
        min_ready_seconds,
        revision_history_limit,
        selector,
        template: PodTemplate {
            labels,
            annotations,
            container,
            termination_grace_period_seconds: grace,
        },
    })
}

/// `spec.strategy`, validated as the API server does: Recreate has no `rollingUpdate`,
/// maxSurge and maxUnavailable may not both be zero, maxUnavailable is at most 100%.
fn strategy(ctx: &Ctx, s: Option<apps::DeploymentStrategy>) -> Result<Strategy, LabError> {
    let Some(s) = s else {
        return Ok(Strategy::default());
    };
    match s.type_.as_deref().unwrap_or("RollingUpdate") {
        "Recreate" => {
            if s.rolling_update.is_some() {
                return Err(ctx.err(
                    "spec.strategy.rollingUpdate may not be specified when strategy type is Recreate",
                ));
            }
            Ok(Strategy::Recreate)
        }
        "RollingUpdate" => {
            let ru = s.rolling_update.unwrap_or_default();
            let field = |name: &str, v: Option<_>| match v {
                Some(v) => ctx.int_or_percent(&format!("spec.strategy.rollingUpdate.{name}"), &v),
                None => Ok(IntOrPercent::Percent(25)),
            };
            let max_surge = field("maxSurge", ru.max_surge)?;
            let max_unavailable = field("maxUnavailable", ru.max_unavailable)?;
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
            Ok(Strategy::RollingUpdate {
                max_surge,
                max_unavailable,
            })
        }
        other => Err(ctx.err(format!(
            "spec.strategy.type must be Recreate or RollingUpdate, got {other:?}"
        ))),
    }
}

fn container(ctx: &Ctx, c: core::Container, grace: u32) -> Result<Container, LabError> {
    ctx.require(&format!("{FIRST}.name"))?;
    let image = c
        .image
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ctx.missing(&format!("{FIRST}.image")))?;
    let mut env = Vec::new();
    for (i, e) in c.env.unwrap_or_default().into_iter().enumerate() {
        ctx.require(&format!("{FIRST}.env[{i}].name"))?;
        match (e.value, e.value_from) {
            (Some(v), _) => env.push((e.name, v)),
            (None, Some(_)) => ctx.warn(format!(
                "{FIRST}.env[{i}] ({}) ignored: the lab passes only literal values, not valueFrom",
                e.name
            )),
            (None, None) => {}
        }
    }
    if c.env_from.is_some_and(|e| !e.is_empty()) {
        ctx.warn(format!(
            "{FIRST}.envFrom ignored: the lab passes only literal env values"
        ));
    }
    let mut ports = Vec::new();
    for (i, p) in c.ports.unwrap_or_default().into_iter().enumerate() {
        let field = format!("{FIRST}.ports[{i}].containerPort");
        ctx.require(&field)?;
        ports.push(ctx.port(&field, i64::from(p.container_port))?);
    }
    for (field, probe) in [
        ("livenessProbe", c.liveness_probe.is_some()),
        ("startupProbe", c.startup_probe.is_some()),
    ] {
        if probe {
            ctx.warn(format!(
                "{FIRST}.{field} ignored: the lab runs readiness probes only"
            ));
        }
    }
    let readiness_probe = c
        .readiness_probe
        .map(|p| readiness_probe(ctx, p))
        .transpose()?;
    let lifecycle = c.lifecycle.unwrap_or_default();
    if lifecycle.post_start.is_some() {
        ctx.warn(format!(
            "{FIRST}.lifecycle.postStart ignored: the lab runs no lifecycle hooks"
        ));
    }
    let pre_stop = lifecycle
        .pre_stop
        .and_then(|h| pre_stop(ctx, h, grace).transpose())
        .transpose()?;
    if let Some(PreStop::Exec { command }) = &pre_stop {
        ctx.warn(format!(
            "{FIRST}.lifecycle.preStop exec {command:?} not run: the lab's kubelet runs only \
             sleep hooks, and sends SIGTERM at once"
        ));
    }
    Ok(Container {
        name: c.name,
        image,
        env,
        ports,
        readiness_probe,
        pre_stop,
    })
}

fn readiness_probe(ctx: &Ctx, p: core::Probe) -> Result<HttpProbe, LabError> {
    let base = format!("{FIRST}.readinessProbe");
    let hg = p.http_get.ok_or_else(|| {
        ctx.err(format!(
            "{base}: only httpGet probes are supported by the lab (missing {base}.httpGet)"
        ))
    })?;
    let port_field = format!("{base}.httpGet.port");
    ctx.require(&port_field)?;
    let port = ctx.int_or_string_port(&port_field, &hg.port)?;
    let at_least_1 = |field: &str, v: Option<i32>, default: u32| -> Result<u32, LabError> {
        match ctx.non_negative(&format!("{base}.{field}"), v, default)? {
            0 => Err(ctx.err(format!("{base}.{field} must be >= 1"))),
            v => Ok(v),
        }
    };
    Ok(HttpProbe {
        path: hg.path.unwrap_or_else(|| "/".into()),
        port,
        initial_delay_seconds: ctx.non_negative(
            &format!("{base}.initialDelaySeconds"),
            p.initial_delay_seconds,
            0,
        )?,
        period_seconds: at_least_1("periodSeconds", p.period_seconds, 10)?,
        timeout_seconds: at_least_1("timeoutSeconds", p.timeout_seconds, 1)?,
        success_threshold: at_least_1("successThreshold", p.success_threshold, 1)?,
        failure_threshold: at_least_1("failureThreshold", p.failure_threshold, 3)?,
    })
}

/// `lifecycle.preStop`: the sleep action (checked as the API server does, 0 to the grace
/// period), or an exec command, recognised as a sleep when it is `sleep N` run directly
/// or through a shell. An httpGet or tcpSocket hook is a warning and `None`.
fn pre_stop(ctx: &Ctx, h: core::LifecycleHandler, grace: u32) -> Result<Option<PreStop>, LabError> {
    let base = format!("{FIRST}.lifecycle.preStop");
    if let Some(s) = h.sleep {
        return match u32::try_from(s.seconds) {
            Ok(seconds) if seconds <= grace => Ok(Some(PreStop::Sleep { seconds })),
            _ => Err(ctx.err(format!(
                "{base}.sleep.seconds must be non-negative and at most \
                 terminationGracePeriodSeconds ({grace}), got {}",
                s.seconds
            ))),
        };
    }
    if let Some(exec) = h.exec {
        let command = exec
            .command
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ctx.missing(&format!("{base}.exec.command")))?;
        return Ok(Some(match sleep_seconds(&command) {
            Some(seconds) => PreStop::Sleep { seconds },
            None => PreStop::Exec { command },
        }));
    }
    if h.http_get.is_some() || h.tcp_socket.is_some() {
        ctx.warn(format!(
            "{base} ignored: the lab models only sleep and exec hooks"
        ));
        return Ok(None);
    }
    Err(ctx.err(format!(
        "{base} must set one of exec, sleep, httpGet or tcpSocket"
    )))
}

/// N for `["sleep", "N"]` or `["sh", "-c", "sleep N"]` (any shell, absolute or not, and
/// `N` or `Ns` in whole seconds).
fn sleep_seconds(command: &[String]) -> Option<u32> {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    let words: Vec<String> = match command {
        [sh, c, script]
            if matches!(base(sh).as_str(), "sh" | "bash" | "ash" | "dash") && c == "-c" =>
        {
            script.split_whitespace().map(str::to_string).collect()
        }
        _ => command.to_vec(),
    };
    match words.as_slice() {
        [sleep, n] if base(sleep) == "sleep" => n.strip_suffix('s').unwrap_or(n).parse().ok(),
        _ => None,
    }
}
