//! Puts a cluster's events (from the lab or a Kubernetes watch) on the current
//! probe's timeline, and remembers the cluster's state between probes.
//!
//! Attribution needs to know which pods were serving when a rollout began, but
//! a probe only sees events from its own start. So every event also updates a
//! small picture of the cluster (each pod's latest event, the current
//! endpoints), and a probe that attaches first receives that picture as events
//! at its time zero. Events arriving while no probe is attached only update it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use probe_core::ProbeHandle;

#[derive(Default)]
struct State {
    probe: Option<ProbeHandle>,
    /// Pod name -> its latest (kind, detail).
    pods: BTreeMap<String, (String, String)>,
    /// Endpoint address -> the detail of its endpoint_added (not removed since).
    endpoints: BTreeMap<String, String>,
}

/// Shared between the event source (a callback) and the command that probes.
#[derive(Clone, Default)]
pub struct ClusterTimeline {
    state: Arc<Mutex<State>>,
}

impl ClusterTimeline {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one event and forwards it to the attached probe, if any.
    pub fn record(&self, kind: &str, detail: &str, server_time: Option<&str>) {
        let mut s = self.lock();
        if kind.starts_with("pod_") {
            if let Some(name) = detail.split_whitespace().next() {
                if kind == "pod_deleted" {
                    s.pods.remove(name);
                } else {
                    s.pods
                        .insert(name.to_string(), (kind.to_string(), detail.to_string()));
                }
            }
        } else if let Some(addr) = probe_core::event_address(detail) {
            // Sources word the same endpoint differently when it comes and goes.
            match kind {
                "endpoint_added" => {
                    s.endpoints.insert(addr, detail.to_string());
                }
                "endpoint_removed" => {
                    s.endpoints.remove(&addr);
                }
                _ => {}
            }
        }
        if let Some(p) = &s.probe {
            match server_time {
                Some(t) => p.emit_observed(kind, detail, t),
                None => p.emit(kind, detail),
            }
        }
    }

    /// Attaches a probe: it first receives the current picture, then every event.
    pub fn attach(&self, probe: ProbeHandle) {
        let mut s = self.lock();
        for (kind, detail) in s.pods.values() {
            probe.emit(kind, detail);
        }
        for detail in s.endpoints.values() {
            probe.emit("endpoint_added", detail);
        }
        s.probe = Some(probe);
    }

    /// Stops forwarding (the probe has stopped).
    pub fn detach(&self) {
        self.lock().probe = None;
    }
}
