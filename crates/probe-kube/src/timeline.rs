//! The pure part of the rollout timeline: object changes in, [`KubeEvent`]s out.
//!
//! The watch loops (see `watch.rs`) only move objects; every decision about what counts as
//! an event is made here, from the previous and the new state of one object, so that the
//! rules can be read in one place and tested without a network:
//!
//! - **Deployment**: `rollout_start` when the generation grows and the pod template changed
//!   (a strategy or scale change is not a rollout); `rollout_complete` when
//!   [`rollout_status`] turns complete; `rollout_deadline_exceeded` when it turns to
//!   `ProgressDeadlineExceeded`.
//! - **ReplicaSet** (owned by the Deployment): `replicaset_scaled` when `spec.replicas`
//!   changes (a new ReplicaSet counts as scaled from 0). The detail names it, its role
//!   (`new` = the highest `deployment.kubernetes.io/revision`, else `old`) and the other
//!   ReplicaSets that still have replicas.
//! - **Pod** (owned by one of the Deployment's ReplicaSets): `pod_created`, `pod_ready` /
//!   `pod_unready` (the `Ready` condition), `pod_terminating` (`deletionTimestamp` set),
//!   `pod_deleted`.
//! - **EndpointSlice** (of the Service), per address: `endpoint_added` when the address
//!   enters the ready set (kube-proxy starts sending it traffic), `endpoint_terminating`
//!   when its `terminating` condition turns true, `endpoint_removed` when it leaves the
//!   ready set without terminating, or disappears after terminating. An address that
//!   appears not ready is not an event (it gets no traffic); its pod's events cover it.
//! - **Service**: `service_selector_changed`.
//!
//! Objects that exist when the watch starts are a baseline and produce no events.
//! `server_time` is the API server's time of the change, one-second resolution: the
//! condition's `lastTransitionTime`, the pod's `creationTimestamp`, the deletion request
//! (`deletionTimestamp - deletionGracePeriodSeconds`), the slice's
//! `endpoints.kubernetes.io/last-change-trigger-time`, or the latest spec write in
//! `managedFields`; `None` where the server keeps no such time (a pod's final deletion).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::control::{rfc3339_seconds, RESTARTED_AT};
use crate::status::{rollout_status, RolloutStatus};
use crate::KubeEvent;

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

/// Everything the timeline consumes.
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

#[derive(Debug, Clone, PartialEq)]
struct DeployState {
    generation: i64,
    template: serde_json::Value,
    images: BTreeMap<String, String>,
    status: RolloutStatus,
}

#[derive(Debug, Clone, PartialEq)]
struct RsState {
    replicas: i32,
    revision: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct PodState {
    ip: Option<String>,
    ready: bool,
    terminating: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct EpState {
    ready: bool,
    serving: bool,
    terminating: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Ep {
    pod: Option<String>,
    cond: EpState,
}

/// The state machine.
#[derive(Debug)]
pub(crate) struct Timeline {
    deployment: String,
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

fn event(kind: &str, detail: String, server_time: Option<String>) -> KubeEvent {
    KubeEvent {
        kind: kind.to_string(),
        detail,
        server_time,
    }
}

fn selector_string(sel: &Option<BTreeMap<String, String>>) -> String {
    match sel {
        None => "(none)".to_string(),
        Some(m) if m.is_empty() => "(none)".to_string(),
        Some(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

impl Timeline {
    pub(crate) fn new(deployment: &str) -> Timeline {
        Timeline {
            deployment: deployment.to_string(),
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

    /// The state as events, for a consumer that must know what was already
    /// there: each pod's standing (`pod_ready`, `pod_terminating` or
    /// `pod_created`) and each ready endpoint (`endpoint_added`), no server time.
    pub(crate) fn snapshot(&self) -> Vec<KubeEvent> {
        let mut out: Vec<KubeEvent> = self
            .pods
            .iter()
            .map(|(n, p)| {
                let kind = match (p.terminating, p.ready) {
                    (true, _) => "pod_terminating",
                    (false, true) => "pod_ready",
                    (false, false) => "pod_created",
                };
                event(kind, pod_detail(n, p), None)
            })
            .collect();
        for (addr, e) in self.endpoints() {
            if e.cond.ready {
                let pod = e.pod.as_deref().unwrap_or("(no pod)");
                let detail = format!(
                    "{pod} {addr} ready={} serving={} terminating={}",
                    e.cond.ready, e.cond.serving, e.cond.terminating
                );
                out.push(event("endpoint_added", detail, None));
            }
        }
        out
    }

    /// Applies one change and returns the events it makes, in order.
    pub(crate) fn handle(&mut self, msg: Msg) -> Vec<KubeEvent> {
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
                vec![event("watch_gap", detail, None)]
            }
        }
    }

    fn changes<K: Clone>(
        &mut self,
        change: Change<K>,
        apply: fn(&mut Self, K) -> Vec<KubeEvent>,
        delete: fn(&mut Self, K) -> Vec<KubeEvent>,
        key: fn(&Self, &K) -> String,
        known: fn(&Self) -> Vec<String>,
    ) -> Vec<KubeEvent> {
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
    fn forget(&mut self, key: &str) -> Vec<KubeEvent> {
        let mut out = Vec::new();
        if let Some(p) = self.pods.remove(key) {
            out.push(event("pod_deleted", pod_detail(key, &p), None));
        }
        if self.slices.contains_key(key) {
            let before = self.endpoints();
            self.slices.remove(key);
            out.extend(self.endpoint_diff(&before, None));
        }
        self.replicasets.remove(key);
        out
    }

    fn deployment_apply(&mut self, d: Deployment) -> Vec<KubeEvent> {
        if name(&d.metadata) != self.deployment {
            return Vec::new();
        }
        let spec = d.spec.clone().unwrap_or_default();
        let template = serde_json::to_value(&spec.template).unwrap_or_default();
        let images: BTreeMap<String, String> = spec
            .template
            .spec
            .iter()
            .flat_map(|p| p.containers.iter())
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect();
        let next = DeployState {
            generation: d.metadata.generation.unwrap_or(0),
            template,
            images,
            status: rollout_status(&d),
        };
        let mut out = Vec::new();
        if let Some(prev) = &self.deploy {
            if next.generation > prev.generation && next.template != prev.template {
                let mut what = Vec::new();
                for (c, img) in &next.images {
                    if prev.images.get(c) != Some(img) {
                        what.push(format!("image {c}={img}"));
                    }
                }
                let restarted = |v: &serde_json::Value| {
                    v.pointer("/metadata/annotations")
                        .and_then(|a| a.get(RESTARTED_AT))
                        .cloned()
                };
                if restarted(&next.template) != restarted(&prev.template) {
                    if let Some(serde_json::Value::String(at)) = restarted(&next.template) {
                        what.push(format!("restartedAt {at}"));
                    }
                }
                if what.is_empty() {
                    what.push("pod template changed".to_string());
                }
                out.push(event(
                    "rollout_start",
                    format!(
                        "{} generation {}: {}",
                        self.deployment,
                        next.generation,
                        what.join(", ")
                    ),
                    latest_spec_write(&d.metadata),
                ));
            }
            if next.status != prev.status {
                let cond_time = |ty: &str| {
                    d.status
                        .iter()
                        .flat_map(|s| s.conditions.iter().flatten())
                        .find(|c| c.type_ == ty)
                        .and_then(|c| {
                            c.last_update_time
                                .as_ref()
                                .or(c.last_transition_time.as_ref())
                        })
                        .map(ts)
                };
                let st = d.status.clone().unwrap_or_default();
                match next.status {
                    RolloutStatus::Complete if !prev.status.is_complete() => out.push(event(
                        "rollout_complete",
                        format!(
                            "{} generation {}: {} of {} replicas updated and available",
                            self.deployment,
                            next.generation,
                            st.available_replicas.unwrap_or(0),
                            spec.replicas.unwrap_or(st.replicas.unwrap_or(0)),
                        ),
                        cond_time("Progressing"),
                    )),
                    RolloutStatus::DeadlineExceeded => out.push(event(
                        "rollout_deadline_exceeded",
                        format!(
                            "{} generation {}: progress deadline ({} s) exceeded",
                            self.deployment,
                            next.generation,
                            spec.progress_deadline_seconds.unwrap_or(600)
                        ),
                        cond_time("Progressing"),
                    )),
                    _ => {}
                }
            }
        }
        self.deploy = Some(next);
        out
    }

    fn owned_by_deployment(&self, meta: &ObjectMeta) -> bool {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "Deployment" && o.name == self.deployment)
    }

    fn rs_apply(&mut self, rs: ReplicaSet) -> Vec<KubeEvent> {
        if !self.owned_by_deployment(&rs.metadata) {
            return Vec::new();
        }
        let n = name(&rs.metadata);
        let next = RsState {
            replicas: rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            revision: rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("deployment.kubernetes.io/revision"))
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
        };
        let prev = self.replicasets.insert(n.clone(), next.clone());
        let before = prev.as_ref().map(|p| p.replicas).unwrap_or(0);
        if before == next.replicas {
            return Vec::new();
        }
        let newest = self
            .replicasets
            .values()
            .map(|r| r.revision)
            .max()
            .unwrap_or(0);
        let role = |r: &RsState| if r.revision == newest { "new" } else { "old" };
        let mut detail = format!("{n} {before} -> {} ({})", next.replicas, role(&next));
        for (other, r) in &self.replicasets {
            if other != &n && r.replicas > 0 {
                detail.push_str(&format!("; {other} {} ({})", r.replicas, role(r)));
            }
        }
        let when = if prev.is_none() {
            rs.metadata.creation_timestamp.as_ref().map(ts)
        } else {
            latest_spec_write(&rs.metadata)
        };
        vec![event("replicaset_scaled", detail, when)]
    }

    fn pod_belongs(&self, meta: &ObjectMeta) -> bool {
        let refs = meta.owner_references.as_deref().unwrap_or_default();
        if refs.is_empty() {
            return true;
        }
        // A ReplicaSet not seen yet (the watches race) still counts if its name is the
        // Deployment's plus a pod-template-hash, which has no dash: `backend-7f9c6d5b4`
        // belongs to `backend`, `backend-canary-5d4b8` does not.
        let prefix = format!("{}-", self.deployment);
        refs.iter().any(|o| {
            o.kind == "ReplicaSet"
                && (self.replicasets.contains_key(&o.name)
                    || o.name
                        .strip_prefix(&prefix)
                        .is_some_and(|hash| !hash.is_empty() && !hash.contains('-')))
        })
    }

    fn pod_apply(&mut self, p: Pod) -> Vec<KubeEvent> {
        if !self.pod_belongs(&p.metadata) {
            return Vec::new();
        }
        let n = name(&p.metadata);
        let status = p.status.clone().unwrap_or_default();
        let ready_cond = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        let next = PodState {
            ip: status.pod_ip.clone().filter(|s| !s.is_empty()),
            ready: ready_cond.map(|c| c.status == "True").unwrap_or(false),
            terminating: p.metadata.deletion_timestamp.is_some(),
        };
        let prev = self.pods.insert(n.clone(), next.clone());
        let mut out = Vec::new();
        let ready_time = ready_cond
            .and_then(|c| c.last_transition_time.as_ref())
            .map(ts);
        let prev = match prev {
            Some(prev) => prev,
            None => {
                out.push(event(
                    "pod_created",
                    pod_detail(&n, &next),
                    p.metadata.creation_timestamp.as_ref().map(ts),
                ));
                PodState {
                    ip: None,
                    ready: false,
                    terminating: false,
                }
            }
        };
        if next.terminating && !prev.terminating {
            let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0);
            let requested = p
                .metadata
                .deletion_timestamp
                .as_ref()
                .and_then(|t| t.0.checked_sub(jiff::SignedDuration::from_secs(grace)).ok())
                .map(rfc3339_seconds);
            out.push(event(
                "pod_terminating",
                format!("{} (grace {grace} s)", pod_detail(&n, &next)),
                requested,
            ));
        }
        if next.ready && !prev.ready {
            out.push(event("pod_ready", pod_detail(&n, &next), ready_time));
        } else if !next.ready && prev.ready {
            out.push(event("pod_unready", pod_detail(&n, &next), ready_time));
        }
        out
    }

    fn pod_delete(&mut self, p: Pod) -> Vec<KubeEvent> {
        let n = name(&p.metadata);
        match self.pods.remove(&n) {
            Some(prev) => {
                let ip = p
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .or(prev.ip.clone());
                let st = PodState { ip, ..prev };
                vec![event("pod_deleted", pod_detail(&n, &st), None)]
            }
            None => Vec::new(),
        }
    }

    fn service_apply(&mut self, s: Service) -> Vec<KubeEvent> {
        let sel = s.spec.as_ref().and_then(|sp| sp.selector.clone());
        let mut out = Vec::new();
        if let Some(prev) = &self.selector {
            if Some(prev) != sel.as_ref() {
                out.push(event(
                    "service_selector_changed",
                    format!(
                        "{} {} -> {}",
                        name(&s.metadata),
                        selector_string(&Some(prev.clone())),
                        selector_string(&sel)
                    ),
                    latest_spec_write(&s.metadata),
                ));
            }
        }
        self.selector = Some(sel.unwrap_or_default());
        out
    }

    /// Every address across all slices, merged.
    fn endpoints(&self) -> BTreeMap<String, Ep> {
        let mut all: BTreeMap<String, Ep> = BTreeMap::new();
        for eps in self.slices.values() {
            for (addr, ep) in eps {
                let e = all.entry(addr.clone()).or_insert_with(|| Ep {
                    pod: ep.pod.clone(),
                    cond: EpState::default(),
                });
                e.cond.ready |= ep.cond.ready;
                e.cond.serving |= ep.cond.serving;
                e.cond.terminating |= ep.cond.terminating;
                if e.pod.is_none() {
                    e.pod.clone_from(&ep.pod);
                }
            }
        }
        all
    }

    fn slice_apply(&mut self, s: EndpointSlice) -> Vec<KubeEvent> {
        let before = self.endpoints();
        let mut eps = BTreeMap::new();
        for e in &s.endpoints {
            let c = e.conditions.clone().unwrap_or_default();
            // Per the API: a nil ready means ready; serving defaults to ready.
            let ready = c.ready.unwrap_or(true);
            let cond = EpState {
                ready,
                serving: c.serving.unwrap_or(ready),
                terminating: c.terminating.unwrap_or(false),
            };
            for addr in &e.addresses {
                eps.insert(
                    addr.clone(),
                    Ep {
                        pod: e.target_ref.as_ref().and_then(|r| r.name.clone()),
                        cond,
                    },
                );
            }
        }
        self.slices.insert(name(&s.metadata), eps);
        let when = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("endpoints.kubernetes.io/last-change-trigger-time"))
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(rfc3339_seconds)
            .or_else(|| latest_spec_write(&s.metadata));
        self.endpoint_diff(&before, when)
    }

    fn slice_delete(&mut self, s: EndpointSlice) -> Vec<KubeEvent> {
        let before = self.endpoints();
        self.slices.remove(&name(&s.metadata));
        self.endpoint_diff(&before, None)
    }

    fn endpoint_diff(&self, before: &BTreeMap<String, Ep>, when: Option<String>) -> Vec<KubeEvent> {
        let after = self.endpoints();
        let addrs: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        let mut out = Vec::new();
        for addr in addrs {
            let prev = before.get(addr);
            let next = after.get(addr);
            let pc = prev.map(|e| e.cond).unwrap_or_default();
            let detail = |e: &Ep| {
                format!(
                    "{} {addr} ready={} serving={} terminating={}",
                    e.pod.as_deref().unwrap_or("(no pod)"),
                    e.cond.ready,
                    e.cond.serving,
                    e.cond.terminating
                )
            };
            match next {
                Some(n) => {
                    if n.cond.terminating && !pc.terminating {
                        out.push(event("endpoint_terminating", detail(n), when.clone()));
                    } else if n.cond.ready && !pc.ready {
                        out.push(event("endpoint_added", detail(n), when.clone()));
                    } else if !n.cond.ready && pc.ready && !n.cond.terminating {
                        out.push(event("endpoint_removed", detail(n), when.clone()));
                    }
                }
                None => {
                    let p = prev.expect("address came from before or after");
                    if pc.ready || pc.terminating {
                        out.push(event(
                            "endpoint_removed",
                            format!(
                                "{} {addr} gone from the EndpointSlices",
                                p.pod.as_deref().unwrap_or("(no pod)")
                            ),
                            when.clone(),
                        ));
                    }
                }
            }
        }
        out
    }
}

fn pod_detail(name: &str, p: &PodState) -> String {
    match &p.ip {
        Some(ip) => format!("{name} {ip}"),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, image: &str, strategy: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "backend", "generation": generation},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "backend"}},
                "strategy": {"type": strategy},
                "template": {"metadata": {"labels": {"app": "backend"}},
                             "spec": {"containers": [{"name": "web", "image": image}]}}
            },
            "status": {"observedGeneration": generation, "replicas": 2, "updatedReplicas": 2,
                       "availableReplicas": 2}
        }))
        .unwrap()
    }

    fn pod(name: &str, owner: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner, "uid": "u"}]},
            "status": {"podIP": "10.244.0.9",
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    fn kinds(v: &[KubeEvent]) -> Vec<&str> {
        v.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn a_strategy_change_is_not_a_rollout_but_an_image_change_is() {
        let mut t = Timeline::new("backend");
        t.baseline(Msg::Deployment(Change::Apply(deployment(
            1,
            "v1",
            "RollingUpdate",
        ))));
        let e = t.handle(Msg::Deployment(Change::Apply(deployment(
            2, "v1", "Recreate",
        ))));
        assert!(e.is_empty(), "{e:?}");
        let e = t.handle(Msg::Deployment(Change::Apply(deployment(
            3, "v2", "Recreate",
        ))));
        assert_eq!(kinds(&e), ["rollout_start"]);
        assert_eq!(e[0].detail, "backend generation 3: image web=v2");
    }

    #[test]
    fn pods_of_another_deployment_with_the_same_labels_are_ignored() {
        let mut t = Timeline::new("backend");
        let e = t.handle(Msg::Pod(Change::Apply(pod(
            "backend-canary-5d4b8-aaaaa",
            "backend-canary-5d4b8",
            true,
        ))));
        assert!(e.is_empty(), "{e:?}");
        let e = t.handle(Msg::Pod(Change::Apply(pod(
            "backend-7f9c6d5b4-aaaaa",
            "backend-7f9c6d5b4",
            false,
        ))));
        assert_eq!(kinds(&e), ["pod_created"]);
        let e = t.handle(Msg::Pod(Change::Apply(pod(
            "backend-7f9c6d5b4-aaaaa",
            "backend-7f9c6d5b4",
            true,
        ))));
        assert_eq!(kinds(&e), ["pod_ready"]);
        assert_eq!(e[0].detail, "backend-7f9c6d5b4-aaaaa 10.244.0.9");
    }

    #[test]
    fn snapshot_tells_the_baseline() {
        let mut t = Timeline::new("backend");
        t.baseline(Msg::Pod(Change::Apply(pod(
            "backend-7f9c6d5b4-aaaaa",
            "backend-7f9c6d5b4",
            true,
        ))));
        t.baseline(Msg::Pod(Change::Apply(pod(
            "backend-7f9c6d5b4-bbbbb",
            "backend-7f9c6d5b4",
            false,
        ))));
        let e = t.snapshot();
        assert_eq!(kinds(&e), ["pod_ready", "pod_created"]);
        assert_eq!(e[0].detail, "backend-7f9c6d5b4-aaaaa 10.244.0.9");
    }

    #[test]
    fn baseline_objects_make_no_events_and_unknown_deletes_are_ignored() {
        let mut t = Timeline::new("backend");
        t.baseline(Msg::Pod(Change::Apply(pod(
            "backend-7f9c6d5b4-aaaaa",
            "backend-7f9c6d5b4",
            true,
        ))));
        let same = t.handle(Msg::Pod(Change::Apply(pod(
            "backend-7f9c6d5b4-aaaaa",
            "backend-7f9c6d5b4",
            true,
        ))));
        assert!(same.is_empty());
        let e = t.handle(Msg::Pod(Change::Delete(pod(
            "backend-7f9c6d5b4-zzzzz",
            "backend-7f9c6d5b4",
            true,
        ))));
        assert!(e.is_empty());
    }

    #[test]
    fn an_endpoint_that_appears_not_ready_is_added_when_it_turns_ready() {
        let slice = |ready: bool| -> EndpointSlice {
            serde_json::from_value(json!({
                "metadata": {"name": "backend-x"},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.244.0.9"],
                               "conditions": {"ready": ready, "serving": ready, "terminating": false},
                               "targetRef": {"kind": "Pod", "name": "backend-7f9c6d5b4-aaaaa"}}]
            }))
            .unwrap()
        };
        let mut t = Timeline::new("backend");
        t.baseline(Msg::EndpointSlice(Change::Apply(
            serde_json::from_value(json!({
                "metadata": {"name": "backend-x"}, "addressType": "IPv4", "endpoints": []
            }))
            .unwrap(),
        )));
        assert!(t
            .handle(Msg::EndpointSlice(Change::Apply(slice(false))))
            .is_empty());
        let e = t.handle(Msg::EndpointSlice(Change::Apply(slice(true))));
        assert_eq!(kinds(&e), ["endpoint_added"]);
        let e = t.handle(Msg::EndpointSlice(Change::Apply(slice(false))));
        assert_eq!(kinds(&e), ["endpoint_removed"]);
        assert_eq!(
            e[0].detail,
            "backend-7f9c6d5b4-aaaaa 10.244.0.9 ready=false serving=false terminating=false"
        );
    }
}
