//! probe-kube: rollprobe's Kubernetes integration, on kube-rs and k8s-openapi.
//!
//! A report that says "213 requests failed" does not say why. The why is in the cluster:
//! which pods were ready, terminating or not yet listening, and when the Service's
//! endpoints changed. This crate puts those changes on the prober's clock, and changes a
//! Deployment's strategy and triggers rollouts for `rollprobe matrix`:
//!
//! - [`connect`]: find the cluster as kubectl does (KUBECONFIG, `~/.kube/config`,
//!   in-cluster service account), and check that the API server answers.
//! - [`watch_rollout`]: the rollout timeline as [`KubeEvent`]s (see
//!   [the rules](#the-timeline)); a watch that drops is resumed and the gap is marked
//!   (`watch_gap`), never hidden.
//! - [`read_strategy`], [`set_strategy`], [`restart`], [`set_image`]: the same patches
//!   kubectl sends; [`parse_case`] reads matrix cases (`recreate`, `rolling:25%/0`).
//! - [`rollout_status`], [`wait_rollout_complete`]: "complete" exactly as
//!   `kubectl rollout status` defines it.
//!
//! Every failure is a [`KubeError`] whose `Display` is one line saying what to do, and the
//! calls that a run depends on fail before probing starts.
//!
//! # The timeline
//!
//! Kinds: `rollout_start`, `replicaset_scaled`, `pod_created`, `pod_ready`, `pod_unready`,
//! `pod_terminating`, `pod_deleted`, `endpoint_added`, `endpoint_removed`,
//! `endpoint_terminating`, `service_selector_changed`, `rollout_complete`,
//! `rollout_deadline_exceeded`, `watch_gap`. Details start with the object's name
//! (`backend-7f9c-x2 10.244.0.5`). The rules:
//!
//! - `rollout_start`: the Deployment's generation grew and its pod template changed (a
//!   strategy or scale change is not a rollout); `rollout_complete` when
//!   [`rollout_status`] turns complete; `rollout_deadline_exceeded` when it turns to
//!   `ProgressDeadlineExceeded`.
//! - `replicaset_scaled`: `spec.replicas` of a ReplicaSet owned by the Deployment changed
//!   (a new one counts as scaled from 0); the detail gives its role (`new` = highest
//!   revision) and the other ReplicaSets that still have replicas.
//! - Pods owned by the Deployment's ReplicaSets: `pod_created`, `pod_ready` /
//!   `pod_unready` (the `Ready` condition), `pod_terminating` (`deletionTimestamp` set),
//!   `pod_deleted`.
//! - EndpointSlices of the Service, per address: `endpoint_added` when it enters the ready
//!   set (kube-proxy starts sending it traffic), `endpoint_terminating` when its
//!   `terminating` condition turns true, `endpoint_removed` when it leaves the ready set
//!   without terminating or disappears. An address that appears not ready is no event.
//! - `service_selector_changed`: the Service's `spec.selector` changed.
//! - `watch_gap`: a watch was cut and resumed (or not, by the time it was stopped); the
//!   detail says which watch, for how long and why.
//!
//! Objects that exist when the watch starts are the baseline and make no events.
//! `server_time` is the API server's time of the change (RFC 3339, seconds): a condition's
//! `lastTransitionTime`, a pod's `creationTimestamp`, the deletion request
//! (`deletionTimestamp - deletionGracePeriodSeconds`), an EndpointSlice's
//! `endpoints.kubernetes.io/last-change-trigger-time`, or the latest spec write in
//! `managedFields`; `None` where the server keeps none (a pod's final deletion, a gap).
//!
//! # Testing
//!
//! No cluster is needed for the tests: they serve recorded responses in the Kubernetes
//! JSON wire format (List bodies, newline-delimited watch events, Status errors) from a
//! small HTTP server on 127.0.0.1 and drive kube's real client against it.

mod control;
mod error;
mod status;
mod timeline;
mod watch;

pub use control::{
    parse_case, read_strategy, restart, restart_patch, set_image, set_image_patch, set_strategy,
    strategy_of, strategy_patch, wait_rollout_complete, IntOrPercent, Strategy, FIELD_MANAGER,
    RESTARTED_AT,
};
pub use error::KubeError;
pub use status::{rollout_status, RolloutStatus};
pub use watch::{
    selector_string, watch_rollout, KubeEvent, KubeEventSink, WatchHandle, WatchTarget,
    WATCH_TIMEOUT_SECS,
};

pub use k8s_openapi;
pub use kube;

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// How long [`connect`] waits for the API server to answer `GET /version`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects as kubectl does: the kubeconfig from `KUBECONFIG` (a `:`-separated list) or
/// `~/.kube/config`, its current context or `context`; without a kubeconfig, the in-cluster
/// service account. Then asks the API server for its version, so that an unreachable
/// cluster or rejected credentials are reported here, before any probing.
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;             // current context
/// let staging = probe_kube::connect(Some("staging")).await?; // like kubectl --context staging
/// # Ok(()) }
/// ```
pub async fn connect(context: Option<&str>) -> Result<Client, KubeError> {
    let config = match context {
        Some(ctx) => {
            // Check the context exists first: kube's message for a missing one is vague.
            let kubeconfig = Kubeconfig::read().map_err(|e| KubeError::NoCluster {
                reason: error::chain(&e),
            })?;
            if !kubeconfig.contexts.iter().any(|c| c.name == ctx) {
                let known: Vec<&str> = kubeconfig
                    .contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect();
                return Err(KubeError::NoCluster {
                    reason: format!(
                        "context \"{ctx}\" is not in the kubeconfig; it has: {}",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                });
            }
            let options = KubeConfigOptions {
                context: Some(ctx.to_string()),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| KubeError::NoCluster {
                    reason: error::chain(&e),
                })?
        }
        None => Config::infer().await.map_err(|e| KubeError::NoCluster {
            reason: no_config_reason(&e),
        })?,
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| KubeError::NoCluster {
        reason: error::chain(&e),
    })?;
    match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
        Err(_) => Err(KubeError::Unreachable {
            reason: format!(
                "{server} did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }),
        Ok(Err(e)) => Err(
            match KubeError::from_kube(
                e,
                error::Op {
                    verb: "get",
                    resource: "/version",
                    namespace: "",
                    name: None,
                },
            ) {
                KubeError::Unreachable { reason } => KubeError::Unreachable {
                    reason: format!("{server}: {reason}"),
                },
                other => other,
            },
        ),
        Ok(Ok(_)) => Ok(client),
    }
}

/// Why no configuration was found, in kubectl's terms rather than kube's nested error.
fn no_config_reason(err: &kube::config::InferConfigError) -> String {
    let place = match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => format!("KUBECONFIG={}", v.to_string_lossy()),
        _ => "~/.kube/config".to_string(),
    };
    match Kubeconfig::read() {
        // The file is there but unusable: say why.
        Ok(_) => error::chain(err),
        Err(e) => {
            let why = error::chain(&e);
            if why.contains("No such file") || why.contains("os error 2") {
                format!("no kubeconfig at {place} and not running in a pod")
            } else {
                format!("{place}: {why}")
            }
        }
    }
}
