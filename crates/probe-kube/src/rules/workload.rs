//! Deployments, their ReplicaSets and their pods: rollout, scaling and pod lifecycle events.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use probe_core::{Event, EventKind, Subject};

use super::{event, latest_spec_write, name, ts, version_of_spec, Tracker};
use crate::control::{rfc3339_seconds, RESTARTED_AT};
use crate::status::{rollout_status, RolloutStatus};

#[derive(Debug, Clone, PartialEq)]
pub(super) struct DeployState {
    generation: i64,
    template: serde_json::Value,
    images: BTreeMap<String, String>,
    version: Option<String>,
    status: RolloutStatus,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct RsState {
    pub(super) replicas: i32,
    revision: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct PodState {
    ip: Option<String>,
    pub(super) ready: bool,
    pub(super) terminating: bool,
    version: Option<String>,
    node: Option<String>,
}

/// What a pod event is about: the pod, its address, version and node.
pub(super) fn pod_subject(name: &str, p: &PodState) -> Subject {
    let address = p.ip.as_deref().and_then(|ip| ip.parse::<IpAddr>().ok());
    Subject {
        version: p.version.clone(),
        node: p.node.clone(),
        ..Subject::pod(name, address)
    }
}

pub(super) fn pod_detail(name: &str, p: &PodState) -> String {
    match &p.ip {
        Some(ip) => format!("{name} {ip}"),
        None => name.to_string(),
    }
}

impl Tracker {
    fn deployment_subject(&self, version: Option<String>) -> Subject {
        Subject {
            deployment: Some(self.deployment.clone()),
            version,
            ..Subject::default()
        }
    }

    pub(super) fn deployment_apply(&mut self, d: Deployment) -> Vec<Event> {
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
            version: version_of_spec(spec.template.spec.as_ref()),
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
                    EventKind::RolloutStart,
                    self.deployment_subject(next.version.clone()),
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
                let subject = self.deployment_subject(next.version.clone());
                match next.status {
                    RolloutStatus::Complete if !prev.status.is_complete() => out.push(event(
                        EventKind::RolloutComplete,
                        subject,
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
                        EventKind::RolloutDeadlineExceeded,
                        subject,
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

    pub(super) fn rs_apply(&mut self, rs: ReplicaSet) -> Vec<Event> {
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
        let version = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| version_of_spec(t.spec.as_ref()));
        vec![event(
            EventKind::ReplicasetScaled,
            self.deployment_subject(version),
            detail,
            when,
        )]
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

    pub(super) fn pod_apply(&mut self, p: Pod) -> Vec<Event> {
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
            version: version_of_spec(p.spec.as_ref()),
            node: p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .filter(|s| !s.is_empty()),
        };
        let prev = self.pods.insert(n.clone(), next.clone());
        let subject = pod_subject(&n, &next);
        let mut out = Vec::new();
        let ready_time = ready_cond
            .and_then(|c| c.last_transition_time.as_ref())
            .map(ts);
        let (was_ready, was_terminating) = match prev {
            Some(prev) => (prev.ready, prev.terminating),
            None => {
                out.push(event(
                    EventKind::PodCreated,
                    subject.clone(),
                    pod_detail(&n, &next),
                    p.metadata.creation_timestamp.as_ref().map(ts),
                ));
                (false, false)
            }
        };
        if next.terminating && !was_terminating {
            let grace = p.metadata.deletion_grace_period_seconds.unwrap_or(0);
            let requested = p
                .metadata
                .deletion_timestamp
                .as_ref()
                .and_then(|t| t.0.checked_sub(jiff::SignedDuration::from_secs(grace)).ok())
                .map(rfc3339_seconds);
            out.push(event(
                EventKind::PodTerminating,
                subject.clone(),
                format!("{} (grace {grace} s)", pod_detail(&n, &next)),
                requested,
            ));
        }
        if next.ready && !was_ready {
            out.push(event(
                EventKind::PodReady,
                subject,
                pod_detail(&n, &next),
                ready_time,
            ));
        } else if !next.ready && was_ready {
            out.push(event(
                EventKind::PodUnready,
                subject,
                pod_detail(&n, &next),
                ready_time,
            ));
        }
        out
    }

    pub(super) fn pod_delete(&mut self, p: Pod) -> Vec<Event> {
        let n = name(&p.metadata);
        match self.pods.remove(&n) {
            Some(prev) => {
                let ip = p
                    .status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .filter(|s| !s.is_empty())
                    .or(prev.ip.clone());
                let st = PodState { ip, ..prev };
                vec![event(
                    EventKind::PodDeleted,
                    pod_subject(&n, &st),
                    pod_detail(&n, &st),
                    None,
                )]
            }
            None => Vec::new(),
        }
    }
}
