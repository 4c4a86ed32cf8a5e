//! Rollout control for `rollprobe matrix`: read and set a Deployment's strategy, trigger a
//! rollout (restart or new image).
//!
//! Every change is sent as the same strategic merge patch that kubectl sends for the
//! equivalent command, so that what rollprobe does to a cluster is what a person would have
//! typed, and can be reviewed as such:
//!
//! | rollprobe | kubectl | body |
//! |---|---|---|
//! | [`set_strategy`] `Recreate` | `kubectl patch deploy NAME -p '{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}'` | `{"spec":{"strategy":{"rollingUpdate":null,"type":"Recreate"}}}` |
//! | [`set_strategy`] rolling | `kubectl patch deploy NAME -p '{"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{...}}}}'` | `{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":"25%"},"type":"RollingUpdate"}}}` |
//! | [`restart`] | `kubectl rollout restart deploy NAME` | `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-02T03:04:05Z"}}}}}` |
//! | [`set_image`] | `kubectl set image deploy NAME web=IMAGE` | `{"spec":{"template":{"spec":{"containers":[{"image":"IMAGE","name":"web"}]}}}}` |
//!
//! kubectl re-encodes a `-p` patch (YAML to JSON with Go's encoder), so its keys are sorted
//! and there is no whitespace; the bodies here are byte-for-byte the same, with Content-Type
//! `application/strategic-merge-patch+json`. Switching to `Recreate` must clear
//! `rollingUpdate` (`null`), or the API server rejects the Deployment
//! ("may not be specified when strategy `type` is 'Recreate'").

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use probe_core::{IntOrPercent, Strategy};
use serde_json::{json, Value};

use crate::error::{KubeError, Op};
use crate::status::{rollout_status, RolloutStatus};

/// The annotation `kubectl rollout restart` sets on the pod template.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The field manager rollprobe's patches are recorded under (`managedFields`).
pub const FIELD_MANAGER: &str = "rollprobe";

/// The JSON value Kubernetes uses for `maxSurge`/`maxUnavailable`: a number, or a string
/// like `"25%"`.
fn int_or_percent_json(v: IntOrPercent) -> Value {
    match v {
        IntOrPercent::Int(n) => json!(n),
        IntOrPercent::Percent(p) => json!(format!("{p}%")),
    }
}

fn int_or_percent_of(v: &IntOrString) -> Result<IntOrPercent, String> {
    match v {
        IntOrString::Int(n) => Ok(IntOrPercent::Int(*n)),
        IntOrString::String(s) => s.parse(),
    }
}

/// The strategic merge patch that sets `strategy` (what `kubectl patch` sends).
///
/// ```
/// use probe_core::Strategy;
/// use probe_kube::strategy_patch;
/// assert_eq!(
///     strategy_patch(&Strategy::Recreate).to_string(),
///     r#"{"spec":{"strategy":{"rollingUpdate":null,"type":"Recreate"}}}"#
/// );
/// ```
pub fn strategy_patch(strategy: &Strategy) -> Value {
    match strategy {
        Strategy::Recreate => {
            json!({"spec": {"strategy": {"rollingUpdate": null, "type": "Recreate"}}})
        }
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => json!({"spec": {"strategy": {
            "rollingUpdate": {
                "maxSurge": int_or_percent_json(*max_surge),
                "maxUnavailable": int_or_percent_json(*max_unavailable),
            },
            "type": "RollingUpdate"
        }}}),
    }
}

/// The patch `kubectl rollout restart` sends, for the given time.
///
/// ```
/// let at: jiff::Timestamp = "2026-01-02T03:04:05.678Z".parse().unwrap();
/// assert_eq!(
///     probe_kube::restart_patch(at).to_string(),
///     r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-02T03:04:05Z"}}}}}"#
/// );
/// ```
pub fn restart_patch(at: jiff::Timestamp) -> Value {
    json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: rfc3339_seconds(at)}}}}})
}

/// The patch `kubectl set image deploy/NAME CONTAINER=IMAGE` sends.
pub fn set_image_patch(container: &str, image: &str) -> Value {
    json!({"spec": {"template": {"spec": {"containers": [{"image": image, "name": container}]}}}})
}

/// RFC 3339 in UTC with one-second resolution, as Kubernetes writes times.
pub(crate) fn rfc3339_seconds(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub(crate) async fn get_deployment(
    api: &Api<Deployment>,
    ns: &str,
    name: &str,
) -> Result<Deployment, KubeError> {
    api.get(name).await.map_err(|e| {
        KubeError::from_kube(
            e,
            Op {
                verb: "get",
                resource: "deployments",
                namespace: ns,
                name: Some(name),
            },
        )
    })
}

async fn patch_deployment(
    client: Client,
    ns: &str,
    name: &str,
    body: &Value,
) -> Result<Deployment, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client, ns);
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        },
        &Patch::Strategic(body),
    )
    .await
    .map_err(|e| {
        KubeError::from_kube(
            e,
            Op {
                verb: "patch",
                resource: "deployments",
                namespace: ns,
                name: Some(name),
            },
        )
    })
}

/// Reads a Deployment's strategy, with Kubernetes' defaults filled in (a missing strategy
/// is RollingUpdate 25%/25%).
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;
/// let s = probe_kube::read_strategy(client, "shop", "backend").await?;
/// println!("{s}"); // e.g. rolling:25%/25%
/// # Ok(()) }
/// ```
pub async fn read_strategy(
    client: Client,
    ns: &str,
    deployment: &str,
) -> Result<Strategy, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let d = get_deployment(&api, ns, deployment).await?;
    strategy_of(&d).map_err(|reason| KubeError::Invalid { reason })
}

/// The strategy of a Deployment object, with defaults filled in.
pub fn strategy_of(d: &Deployment) -> Result<Strategy, String> {
    let st = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    let ty = st
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate");
    match ty {
        "Recreate" => Ok(Strategy::Recreate),
        "RollingUpdate" => {
            let ru = st.and_then(|s| s.rolling_update.as_ref());
            let pick = |v: Option<&IntOrString>| match v {
                Some(v) => int_or_percent_of(v),
                None => Ok(IntOrPercent::Percent(25)),
            };
            Ok(Strategy::RollingUpdate {
                max_surge: pick(ru.and_then(|r| r.max_surge.as_ref()))?,
                max_unavailable: pick(ru.and_then(|r| r.max_unavailable.as_ref()))?,
            })
        }
        other => Err(format!("unknown deployment strategy type \"{other}\"")),
    }
}

/// Sets the Deployment's strategy with [`strategy_patch`]. This bumps the Deployment's
/// generation but does not start a rollout (the pod template is unchanged).
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;
/// let case = probe_core::Strategy::parse_case("rolling:1/0").unwrap();
/// probe_kube::set_strategy(client, "shop", "backend", &case).await?;
/// # Ok(()) }
/// ```
pub async fn set_strategy(
    client: Client,
    ns: &str,
    deployment: &str,
    strategy: &Strategy,
) -> Result<(), KubeError> {
    patch_deployment(client, ns, deployment, &strategy_patch(strategy)).await?;
    Ok(())
}

/// Starts a rollout as `kubectl rollout restart` does: sets the pod template's
/// `kubectl.kubernetes.io/restartedAt` annotation to now. Returns the time written.
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;
/// probe_kube::restart(client, "shop", "backend").await?;
/// # Ok(()) }
/// ```
pub async fn restart(client: Client, ns: &str, deployment: &str) -> Result<String, KubeError> {
    let now = jiff::Timestamp::now();
    patch_deployment(client, ns, deployment, &restart_patch(now)).await?;
    Ok(rfc3339_seconds(now))
}

/// Sets a container's image as `kubectl set image` does. With `container: None` the
/// Deployment must have exactly one container. Returns the container's previous image (so
/// that a caller can restore it).
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;
/// let old = probe_kube::set_image(client, "shop", "backend", None, "ghcr.io/acme/backend:v2").await?;
/// # Ok(()) }
/// ```
pub async fn set_image(
    client: Client,
    ns: &str,
    deployment: &str,
    container: Option<&str>,
    image: &str,
) -> Result<String, KubeError> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let d = get_deployment(&api, ns, deployment).await?;
    let containers: Vec<(String, String)> = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|p| {
            p.containers
                .iter()
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    let names = || {
        containers
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, old) = match container {
        Some(want) => containers
            .iter()
            .find(|(n, _)| n == want)
            .cloned()
            .ok_or_else(|| KubeError::Invalid {
                reason: format!(
                    "deployment \"{deployment}\" has no container \"{want}\" (it has: {}): name one of them",
                    names()
                ),
            })?,
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(KubeError::Invalid {
                reason: format!(
                    "deployment \"{deployment}\" has {} containers ({}): say which one gets the image",
                    containers.len(),
                    names()
                ),
            })
        }
    };
    patch_deployment(client, ns, deployment, &set_image_patch(&name, image)).await?;
    Ok(old)
}

/// How often [`wait_rollout_complete`] polls the Deployment.
const POLL: Duration = Duration::from_millis(500);

/// Waits until the Deployment's rollout is complete by `kubectl rollout status`'s rules
/// ([`rollout_status`]). Fails at once when the progress deadline is exceeded, and after
/// `timeout` with kubectl's last status line.
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;
/// probe_kube::wait_rollout_complete(client, "shop", "backend", std::time::Duration::from_secs(300)).await?;
/// # Ok(()) }
/// ```
pub async fn wait_rollout_complete(
    client: Client,
    ns: &str,
    deployment: &str,
    timeout: Duration,
) -> Result<(), KubeError> {
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let start = Instant::now();
    loop {
        let d = get_deployment(&api, ns, deployment).await?;
        let status = rollout_status(&d);
        match status {
            RolloutStatus::Complete => return Ok(()),
            RolloutStatus::DeadlineExceeded => {
                return Err(KubeError::DeadlineExceeded {
                    deployment: deployment.to_string(),
                    namespace: ns.to_string(),
                })
            }
            _ => {}
        }
        if start.elapsed() >= timeout {
            return Err(KubeError::Timeout {
                deployment: deployment.to_string(),
                namespace: ns.to_string(),
                waited: start.elapsed(),
                last_status: status.message(deployment),
            });
        }
        tokio::time::sleep(POLL.min(timeout.saturating_sub(start.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_patch_uses_numbers_and_strings() {
        let s = Strategy::parse_case("rolling:1/25%").unwrap();
        assert_eq!(
            strategy_patch(&s).to_string(),
            r#"{"spec":{"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":"25%"},"type":"RollingUpdate"}}}"#
        );
    }

    #[test]
    fn set_image_patch_is_kubectls() {
        assert_eq!(
            set_image_patch("web", "nginx:1.27").to_string(),
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"nginx:1.27","name":"web"}]}}}}"#
        );
    }
}
