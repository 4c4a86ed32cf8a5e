//! The rules that turn object changes into rollout events: the pure part of the watch.
//!
//! The watch loops (see `watch.rs`) only move objects; every decision about what counts as
//! an event, and what it is about, is made here from the previous and the new state of one
//! object, so that the rules can be read in one place and tested without a network:
//!
//! - **Deployment** (`workload.rs`): `rollout_start` when the generation grows and the pod
//!   template changed (a strategy or scale change is not a rollout); `rollout_complete`
//!   when [`rollout_status`](crate::rollout_status) turns complete;
//!   `rollout_deadline_exceeded` when it turns to `ProgressDeadlineExceeded`. Subject: the
//!   Deployment and the version (image tag) of its pod template.
//! - **ReplicaSet** (owned by the Deployment): `replicaset_scaled` when `spec.replicas`
//!   changes (a new ReplicaSet counts as scaled from 0). The detail names it, its role
//!   (`new` = the highest `deployment.kubernetes.io/revision`, else `old`) and the other
//!   ReplicaSets that still have replicas. Subject: the Deployment and the ReplicaSet's
//!   version.
//! - **Pod** (owned by one of the Deployment's ReplicaSets): `pod_created`, `pod_ready` /
//!   `pod_unready` (the `Ready` condition), `pod_terminating` (`deletionTimestamp` set),
//!   `pod_deleted`. Subject: the pod, its address (`status.podIP`), its version (the image
//!   tag of its first container) and its node (`spec.nodeName`).
//! - **EndpointSlice** (`service.rs`, of the Service), per address: `endpoint_added` when
//!   the address enters the ready set (kube-proxy starts sending it traffic),
//!   `endpoint_terminating` when its `terminating` condition turns true, `endpoint_removed`
//!   when it leaves the ready set without terminating, or disappears after terminating.
//!   An address that appears not ready is not an event (it gets no traffic); its pod's
//!   events cover it. Subject: the Service, the address, the port and the pod
//!   (`targetRef`).
//! - **Service**: `service_selector_changed`, about the Service.
//!
//! Objects that exist when the watch starts are a baseline and produce no events; the
//! watch hands their standing ([`Tracker::snapshot`]) to its hub as the picture.
//! `server_time` is the API server's time of the change, one-second resolution: the
//! condition's `lastTransitionTime`, the pod's `creationTimestamp`, the deletion request
//! (`deletionTimestamp - deletionGracePeriodSeconds`), the slice's
//! `endpoints.kubernetes.io/last-change-trigger-time`, or the latest spec write in
//! `managedFields`; `None` where the server keeps no such time (a pod's final deletion).

mod service;
mod workload;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, PodSpec, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use probe_core::{Event, EventKind, Subject};

use crate::control::rfc3339_seconds;
use service::Ep;
use workload::{pod_detail, pod_subject, DeployState, PodState, RsState};

/// A change to one kind of object, as a watch delivers it.
#[derive(Debug, Clone)]
pub(crate) enum Change<K> {
    /// Added or modified.
    Apply(K),
    /// Deleted.
    Delete(K),
    /// A full relist after the watch's resourceVersion expired (410 Gone): apply each,
    /// delete what is missing.
    Resync(Vec<K>),
}

/// Everything the rules consume.
#[derive(Debug, Clone)]
pub(crate) enum Msg {
    Deployment(Change<Deployment>),
    ReplicaSet(Change<ReplicaSet>),
    Pod(Change<Pod>),
    Service(Change<Service>),
    EndpointSlice(Change<EndpointSlice>),
    /// A watch was interrupted and resumed (or never resumed, if `resumed` is false).
    Gap {
        watch: String,
        lasted: Duration,
        reason: String,
        resumed: bool,
        resource_version: String,
    },
}

/// The last state seen of every object the watch follows, and the rules applied to each
/// change of it.
#[derive(Debug)]
pub(crate) struct Tracker {
    deployment: String,
    /// The watched Service, for slices that lack the `kubernetes.io/service-name` label.
    service: Option<String>,
    deploy: Option<DeployState>,
    replicasets: BTreeMap<String, RsState>,
    pods: BTreeMap<String, PodState>,
    selector: Option<BTreeMap<String, String>>,
    /// slice name -> address -> endpoint.
    slices: BTreeMap<String, BTreeMap<String, Ep>>,
}

fn ts(t: &Time) -> String {
    rfc3339_seconds(t.0)
}

/// The latest write to the object that was not to its status subresource.
fn latest_spec_write(meta: &ObjectMeta) -> Option<String> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref().unwrap_or("").is_empty())
        .filter_map(|m| m.time.as_ref())
        .max_by_key(|t| t.0)
        .map(ts)
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn event(kind: EventKind, subject: Subject, detail: String, server_time: Option<String>) -> Event {
    Event::observed(kind, subject, detail).with_server_time(server_time)
}

use probe_core::version_of_image;

/// The version of a pod spec: its first container's image tag.
fn version_of_spec(spec: Option<&PodSpec>) -> Option<String> {
    spec.and_then(|s| s.containers.first())
        .and_then(|c| c.image.as_deref())
        .filter(|i| !i.is_empty())
        .map(version_of_image)
}

impl Tracker {
    pub(crate) fn new(deployment: &str, service: Option<&str>) -> Tracker {
        Tracker {
            deployment: deployment.to_string(),
            service: service.map(str::to_string),
            deploy: None,
            replicasets: BTreeMap::new(),
            pods: BTreeMap::new(),
            selector: None,
            slices: BTreeMap::new(),
        }
    }

    /// Records the objects that exist at the start, without events.
    pub(crate) fn baseline(&mut self, msg: Msg) {
        let _ = self.handle(msg);
    }

    /// The state as events, for a consumer that must know what was already there: each
    /// pod's standing (`pod_ready`, `pod_terminating` or `pod_created`) and each ready
    /// endpoint (`endpoint_added`), no server time.
    pub(crate) fn snapshot(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self
            .pods
            .iter()
            .map(|(n, p)| {
                let kind = match (p.terminating, p.ready) {
                    (true, _) => EventKind::PodTerminating,
                    (false, true) => EventKind::PodReady,
                    (false, false) => EventKind::PodCreated,
                };
                event(kind, pod_subject(n, p), pod_detail(n, p), None)
            })
            .collect();
        for (addr, e) in self.endpoints() {
            if e.cond.ready {
                out.push(event(
                    EventKind::EndpointAdded,
                    self.endpoint_subject(&addr, &e),
                    e.detail(&addr),
                    None,
                ));
            }
        }
        out
    }

    /// Applies one change and returns the events it makes, in order.
    pub(crate) fn handle(&mut self, msg: Msg) -> Vec<Event> {
        match msg {
            Msg::Deployment(c) => self.changes(
                c,
                Self::deployment_apply,
                |t, d| {
                    if name(&d.metadata) == t.deployment {
                        t.deploy = None;
                    }
                    Vec::new()
                },
                |_, d| name(&d.metadata),
                |t| t.deploy.iter().map(|_| t.deployment.clone()).collect(),
            ),
            Msg::ReplicaSet(c) => self.changes(
                c,
                Self::rs_apply,
                |t, rs| {
                    t.replicasets.remove(&name(&rs.metadata));
                    Vec::new()
                },
                |_, rs| name(&rs.metadata),
                |t| t.replicasets.keys().cloned().collect(),
            ),
            Msg::Pod(c) => self.changes(
                c,
                Self::pod_apply,
                Self::pod_delete,
                |_, p| name(&p.metadata),
                |t| t.pods.keys().cloned().collect(),
            ),
            Msg::Service(c) => self.changes(
                c,
                Self::service_apply,
                |_, _| Vec::new(),
                |_, s| name(&s.metadata),
                |_| Vec::new(),
            ),
            Msg::EndpointSlice(c) => self.changes(
                c,
                Self::slice_apply,
                Self::slice_delete,
                |_, s| name(&s.metadata),
                |t| t.slices.keys().cloned().collect(),
            ),
            Msg::Gap {
                watch,
                lasted,
                reason,
                resumed,
                resource_version,
            } => {
                let detail = if resumed {
                    format!(
                        "{watch} watch interrupted for {:.2} s ({reason}); resumed from resourceVersion {resource_version}",
                        lasted.as_secs_f64()
                    )
                } else {
                    format!(
                        "{watch} watch interrupted for {:.2} s ({reason}); not resumed before the watch stopped",
                        lasted.as_secs_f64()
                    )
                };
                vec![event(EventKind::WatchGap, Subject::default(), detail, None)]
            }
        }
    }

    fn changes<K: Clone>(
        &mut self,
        change: Change<K>,
        apply: fn(&mut Self, K) -> Vec<Event>,
        delete: fn(&mut Self, K) -> Vec<Event>,
        key: fn(&Self, &K) -> String,
        known: fn(&Self) -> Vec<String>,
    ) -> Vec<Event> {
        match change {
            Change::Apply(o) => apply(self, o),
            Change::Delete(o) => delete(self, o),
            Change::Resync(list) => {
                let present: BTreeSet<String> = list.iter().map(|o| key(self, o)).collect();
                let missing: Vec<String> = known(self)
                    .into_iter()
                    .filter(|k| !present.contains(k))
                    .collect();
                let mut out = Vec::new();
                for o in list {
                    out.extend(apply(self, o));
                }
                for k in missing {
                    out.extend(self.forget(&k));
                }
                out
            }
        }
    }

    /// A relist no longer contains `key`: treat as deleted (only pods and slices say so).
    fn forget(&mut self, key: &str) -> Vec<Event> {
        let mut out = Vec::new();
        if let Some(p) = self.pods.remove(key) {
            out.push(event(
                EventKind::PodDeleted,
                pod_subject(key, &p),
                pod_detail(key, &p),
                None,
            ));
        }
        if self.slices.contains_key(key) {
            let before = self.endpoints();
            self.slices.remove(key);
            out.extend(self.endpoint_diff(&before, None));
        }
        self.replicasets.remove(key);
        out
    }
}

#[cfg(test)]
mod tests;
