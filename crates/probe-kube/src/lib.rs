//! probe-kube: rollprobe's Kubernetes integration, on kube-rs and k8s-openapi.
//!
//! A report that says "213 requests failed" does not say why. The why is in the cluster:
//! which pods were ready, terminating or not yet listening, and when the Service's
//! endpoints changed. This crate turns those changes into probe-core's typed events
//! ([`probe_core::Event`]: a kind and a subject naming the pod, address, port, version,
//! node, Service or Deployment), the same events the lab gives for the same happenings,
//! and changes a Deployment's strategy and triggers rollouts for `rollprobe matrix`:
//!
//! - [`connect`]: find the cluster as kubectl does (`KUBECONFIG` with one or several
//!   files, `~/.kube/config`, a context, the in-cluster service account; tokens, client
//!   certificates, exec credential plugins such as EKS', GKE's and AKS', OIDC), and check
//!   that the API server answers.
//! - [`watch_rollout`]: a Deployment's rollout as a [`probe_core::EventSource`] (see
//!   [the rules](#the-rules)); a watch that drops is resumed and the gap is marked
//!   (`watch_gap`), never hidden.
//! - [`read_strategy`], [`set_strategy`], [`restart`], [`set_image`]: the same patches
//!   kubectl sends, on [`probe_core::Strategy`].
//! - [`rollout_status`], [`wait_rollout_complete`]: "complete" exactly as
//!   `kubectl rollout status` defines it.
//!
//! Every failure is a [`KubeError`] whose `Display` is one line saying what to do
//! ([`KubeError::is_usage`] tells the user's own mistakes apart), and the calls that a run
//! depends on fail before probing starts.
//!
//! # The rules
//!
//! Kinds: `rollout_start`, `replicaset_scaled`, `pod_created`, `pod_ready`, `pod_unready`,
//! `pod_terminating`, `pod_deleted`, `endpoint_added`, `endpoint_removed`,
//! `endpoint_terminating`, `service_selector_changed`, `rollout_complete`,
//! `rollout_deadline_exceeded`, `watch_gap`. Details, for people, start with the object's
//! name (`backend-7f9c-x2 10.244.0.5`); subjects carry the typed fields:
//!
//! - `rollout_start`: the Deployment's generation grew and its pod template changed (a
//!   strategy or scale change is not a rollout); `rollout_complete` when
//!   [`rollout_status`] turns complete; `rollout_deadline_exceeded` when it turns to
//!   `ProgressDeadlineExceeded`. Subject: the Deployment, and the version (image tag of
//!   the first container) of its pod template.
//! - `replicaset_scaled`: `spec.replicas` of a ReplicaSet owned by the Deployment changed
//!   (a new one counts as scaled from 0); the detail gives its role (`new` = highest
//!   revision) and the other ReplicaSets that still have replicas. Subject: the
//!   Deployment and the ReplicaSet's version.
//! - Pods owned by the Deployment's ReplicaSets: `pod_created`, `pod_ready` /
//!   `pod_unready` (the `Ready` condition), `pod_terminating` (`deletionTimestamp` set),
//!   `pod_deleted`. Subject: the pod, its address (`status.podIP`), its version (the tag
//!   after the last `:` of the first container's image, as the lab reads it) and its node.
//! - EndpointSlices of the Service, per address: `endpoint_added` when it enters the ready
//!   set (kube-proxy starts sending it traffic), `endpoint_terminating` when its
//!   `terminating` condition turns true, `endpoint_removed` when it leaves the ready set
//!   without terminating or disappears. An address that appears not ready is no event.
//!   Subject: the Service, the address, the port and the pod (`targetRef`).
//! - `service_selector_changed`: the Service's `spec.selector` changed. Subject: the Service.
//! - `watch_gap`: a watch was cut and resumed (or not, by the time it was stopped); the
//!   detail says which watch, for how long and why.
//!
//! Objects that exist when the watch starts are the baseline: they are the picture that
//! [`probe_core::EventSource::attach`] hands a sink first, and make no events.
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

mod connect;
mod control;
mod error;
mod namespace;
mod rules;
mod status;
mod watch;

pub use connect::connect;
pub use control::{
    read_strategy, restart, restart_patch, set_image, set_image_patch, set_strategy, strategy_of,
    strategy_patch, wait_rollout_complete, FIELD_MANAGER, RESTARTED_AT,
};
pub use error::KubeError;
pub use namespace::Namespace;
pub use status::{rollout_status, RolloutStatus};
pub use watch::{selector_string, watch_rollout, WatchHandle, WatchTarget, WATCH_TIMEOUT_SECS};

pub use k8s_openapi;
pub use kube;
