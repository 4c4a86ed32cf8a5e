//! The Deployment and ReplicaSet controllers.
//!
//! The Deployment logic transcribes `pkg/controller/deployment` (`rolling.go`,
//! `recreate.go`): the new ReplicaSet is scaled up within `replicas + maxSurge`, old ones
//! are scaled down (unhealthy pods first) while at least `replicas - maxUnavailable` pods
//! stay available, and Recreate scales old ReplicaSets to zero and waits until their pods
//! are gone before scaling the new one up. The ReplicaSet controller then creates or
//! deletes pods to match, deleting first the pods Kubernetes deletes first.

use std::time::Instant;

use probe_core::{EventKind, Strategy};

use super::{encode, scaled, template_hash, Desired, Phase, Pod, ReplicaSet, World};
use crate::hash::fnv1a;
use crate::manifest::version_of_image;

impl World {
    // --- Deployment controller ---------------------------------------------------------

    pub(super) fn rs_status(&self, rs: &ReplicaSet, now: Instant) -> (i32, i32, i32) {
        let (mut active, mut ready, mut avail) = (0, 0, 0);
        for p in self.pods.iter().filter(|p| p.rs == rs.id && p.active()) {
            active += 1;
            if p.ready {
                ready += 1;
            }
            if p.available(scaled(rs.min_ready_seconds, self.cfg.time_scale), now) {
                avail += 1;
            }
        }
        (active, ready, avail)
    }

    pub(super) fn deployments(&mut self, desired: &Desired, now: Instant) {
        for (name, desired) in &desired.deployments {
            let (d, generation) = (&desired.spec, &desired.generation);
            let hash = template_hash(&d.template);
            let new_idx = match self
                .rss
                .iter()
                .position(|r| &r.deployment == name && r.hash == hash)
            {
                Some(i) => i,
                None => {
                    self.next_id += 1;
                    self.rss.push(ReplicaSet {
                        id: self.next_id,
                        deployment: name.clone(),
                        hash: hash.clone(),
                        template: d.template.clone(),
                        min_ready_seconds: d.min_ready_seconds,
                        replicas: 0,
                        revision: 0,
                    });
                    self.rss.len() - 1
                }
            };
            self.rss[new_idx].min_ready_seconds = d.min_ready_seconds;
            let started = {
                let track = self.tracks.entry(name.clone()).or_default();
                let changed = track.hash.as_deref() != Some(hash.as_str());
                if changed {
                    track.hash = Some(hash.clone());
                    track.rollout_active = true;
                }
                changed
            };
            if started {
                let top = self
                    .rss
                    .iter()
                    .filter(|r| &r.deployment == name && r.hash != hash)
                    .map(|r| r.revision)
                    .max()
                    .unwrap_or(0);
                self.rss[new_idx].revision = top + 1;
                self.emit_rollout(EventKind::RolloutStart, name, &d.template.container.image);
            }
            let new_id = self.rss[new_idx].id;
            let old_ids: Vec<u64> = self
                .rss
                .iter()
                .filter(|r| &r.deployment == name && r.id != new_id)
                .map(|r| r.id)
                .collect();
            match d.strategy {
                Strategy::Recreate => {
                    for r in self.rss.iter_mut().filter(|r| old_ids.contains(&r.id)) {
                        r.replicas = 0;
                    }
                    let old_pods = self.pods.iter().any(|p| old_ids.contains(&p.rs));
                    if !old_pods {
                        self.rss[new_idx].replicas = d.replicas;
                    }
                }
                Strategy::RollingUpdate {
                    max_surge,
                    max_unavailable,
                } => {
                    let (surge, unavail) = Strategy::RollingUpdate {
                        max_surge,
                        max_unavailable,
                    }
                    .fenceposts(d.replicas);
                    // reconcileNewReplicaSet
                    let new_rep = self.rss[new_idx].replicas;
                    if new_rep > d.replicas {
                        self.rss[new_idx].replicas = d.replicas;
                    } else if new_rep < d.replicas {
                        let current: i32 = self
                            .rss
                            .iter()
                            .filter(|r| &r.deployment == name)
                            .map(|r| r.replicas)
                            .sum();
                        let max_total = d.replicas + surge;
                        if current < max_total {
                            let up = (max_total - current).min(d.replicas - new_rep);
                            self.rss[new_idx].replicas += up;
                        }
                    }
                    // reconcileOldReplicaSets
                    let old_count: i32 = self
                        .rss
                        .iter()
                        .filter(|r| old_ids.contains(&r.id))
                        .map(|r| r.replicas)
                        .sum();
                    if old_count > 0 {
                        let all: i32 = self
                            .rss
                            .iter()
                            .filter(|r| &r.deployment == name)
                            .map(|r| r.replicas)
                            .sum();
                        let min_available = d.replicas - unavail;
                        let (_, _, new_avail) = self.rs_status(&self.rss[new_idx], now);
                        let new_unavailable = (self.rss[new_idx].replicas - new_avail).max(0);
                        let max_scaled_down = all - min_available - new_unavailable;
                        if max_scaled_down > 0 {
                            // cleanupUnhealthyReplicas (oldest first)
                            let mut budget = max_scaled_down;
                            for id in &old_ids {
                                if budget <= 0 {
                                    break;
                                }
                                let ri = self.rss.iter().position(|r| r.id == *id).unwrap();
                                let (_, _, avail) = self.rs_status(&self.rss[ri], now);
                                let unhealthy = self.rss[ri].replicas - avail;
                                if unhealthy <= 0 {
                                    continue;
                                }
                                let down = unhealthy.min(budget);
                                self.rss[ri].replicas -= down;
                                budget -= down;
                            }
                            // scaleDownOldReplicaSetsForRollingUpdate
                            let available_all: i32 = self
                                .rss
                                .iter()
                                .filter(|r| &r.deployment == name)
                                .map(|r| self.rs_status(r, now).2)
                                .sum();
                            let mut total = available_all - min_available;
                            for id in &old_ids {
                                if total <= 0 {
                                    break;
                                }
                                let ri = self.rss.iter().position(|r| r.id == *id).unwrap();
                                let down = self.rss[ri].replicas.min(total);
                                self.rss[ri].replicas -= down;
                                total -= down;
                            }
                        }
                    }
                }
            }
            self.trim_history(name, new_id, d.revision_history_limit);
            let track = self.tracks.entry(name.clone()).or_default();
            track.observed = *generation;
        }
    }

    /// Keeps at most `limit` old ReplicaSets of a Deployment, as `cleanupDeployment`
    /// does: only those scaled to zero with no pod left go, lowest revision first.
    fn trim_history(&mut self, deployment: &str, new_id: u64, limit: u32) {
        let mut idle: Vec<(u64, u64)> = self
            .rss
            .iter()
            .filter(|r| r.deployment == deployment && r.id != new_id && r.replicas == 0)
            .filter(|r| !self.pods.iter().any(|p| p.rs == r.id))
            .map(|r| (r.revision, r.id))
            .collect();
        let old = self
            .rss
            .iter()
            .filter(|r| r.deployment == deployment && r.id != new_id)
            .count();
        let excess = old.saturating_sub(limit as usize);
        idle.sort();
        let gone: Vec<u64> = idle.iter().take(excess).map(|(_, id)| *id).collect();
        if !gone.is_empty() {
            self.rss.retain(|r| !gone.contains(&r.id));
        }
    }

    // --- ReplicaSet controller ---------------------------------------------------------

    pub(super) fn replicasets(&mut self, now: Instant) {
        for ri in 0..self.rss.len() {
            let id = self.rss[ri].id;
            let want = self.rss[ri].replicas;
            let mut active: Vec<usize> = self
                .pods
                .iter()
                .enumerate()
                .filter(|(_, p)| p.rs == id && p.active())
                .map(|(i, _)| i)
                .collect();
            let have = active.len() as i32;
            if have < want {
                for _ in 0..(want - have) {
                    self.create_pod(ri, now);
                }
            } else if have > want {
                // Delete first: not started, not ready, ready for the shortest time, newest.
                active.sort_by_key(|&i| {
                    let p = &self.pods[i];
                    (
                        p.phase == Phase::Running,
                        p.ready,
                        std::cmp::Reverse(p.ready_since),
                        std::cmp::Reverse(p.created),
                    )
                });
                for &i in active.iter().take((have - want) as usize) {
                    self.pods[i].terminating_since = Some(now);
                    self.emit_pod(EventKind::PodTerminating, &self.pods[i]);
                    self.emit_endpoint_terminating(&self.pods[i]);
                }
            }
        }
    }

    pub(super) fn create_pod(&mut self, ri: usize, now: Instant) {
        self.next_id += 1;
        let id = self.next_id;
        let ip = self.fresh_ip();
        let rs = &self.rss[ri];
        let suffix = encode(fnv1a(&format!("{}-{id}", self.names.run_id), 7), 5);
        let name = format!("{}-{}-{suffix}", rs.deployment, rs.hash);
        let mut labels = rs.template.labels.clone();
        labels.insert("pod-template-hash".into(), rs.hash.clone());
        let version = rs
            .template
            .container
            .env
            .iter()
            .find(|(k, _)| k == "VERSION")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| version_of_image(&rs.template.container.image));
        let pod = Pod {
            id,
            name,
            netns: format!("{}-p{id}", self.names.run_id),
            veth: format!("vp{id}"),
            ip,
            rs: rs.id,
            labels,
            template: rs.template.clone(),
            version,
            created: now,
            phase: Phase::Pending,
            sandbox: false,
            child: None,
            started_at: None,
            exited_at: None,
            restart_at: None,
            restarts: 0,
            last_exit: None,
            ready: false,
            ready_since: None,
            probe_ok: 0,
            probe_fail: 0,
            probe_stop: None,
            terminating_since: None,
            kill_started: None,
            sigterm_due: None,
            sigterm_at: None,
            sigkill_sent: false,
            sidecar: None,
        };
        self.emit_pod(EventKind::PodCreated, &pod);
        self.pods.push(pod);
    }
}
