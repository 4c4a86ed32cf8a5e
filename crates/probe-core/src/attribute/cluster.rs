//! The cluster as the events tell it: which pods were ready, terminating or gone,
//! and which addresses were in the Service, at a given time.
//!
//! Replayed from the events' typed fields only (never their detail text), so the
//! lab and a Kubernetes watch give the same state for the same happenings.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::event::{Event, EventKind};

/// One pod's state, from its events.
#[derive(Default, Clone)]
pub(super) struct Pod {
    pub(super) ip: Option<IpAddr>,
    pub(super) ready_at: Option<f64>,
    pub(super) terminating_at: Option<f64>,
    pub(super) deleted_at: Option<f64>,
}

/// Pods and endpoints at one time.
#[derive(Default)]
pub(super) struct Cluster {
    pub(super) pods: BTreeMap<String, Pod>,
    /// Endpoint addresses currently in the Service, and when added.
    endpoints: BTreeMap<IpAddr, f64>,
    /// Endpoints whose `terminating` condition turned true, and when: kube-proxy sends
    /// them no new connections, so they are not serving.
    endpoints_terminating: BTreeMap<IpAddr, f64>,
    pub(super) ever_had_endpoint_events: bool,
}

impl Cluster {
    pub(super) fn replay(events: &[Event], until_ms: f64) -> Cluster {
        let mut c = Cluster::default();
        for e in events.iter().filter(|e| e.at_ms <= until_ms) {
            c.apply(e);
        }
        c
    }

    fn apply(&mut self, e: &Event) {
        if e.kind.is_pod() {
            let Some(name) = &e.subject.pod else {
                return;
            };
            let pod = self.pods.entry(name.clone()).or_default();
            if pod.ip.is_none() {
                pod.ip = e.subject.address;
            }
            match e.kind {
                EventKind::PodReady => pod.ready_at = Some(e.at_ms),
                EventKind::PodUnready => pod.ready_at = None,
                EventKind::PodTerminating => pod.terminating_at = Some(e.at_ms),
                EventKind::PodDeleted => pod.deleted_at = Some(e.at_ms),
                _ => {}
            }
        } else if e.kind.is_endpoint() {
            self.ever_had_endpoint_events = true;
            let Some(ip) = e.subject.address else {
                return;
            };
            // An endpoint event that names its pod names the pod at that address.
            if let Some(name) = &e.subject.pod {
                let pod = self.pods.entry(name.clone()).or_default();
                pod.ip.get_or_insert(ip);
            }
            match e.kind {
                EventKind::EndpointAdded => {
                    self.endpoints.insert(ip, e.at_ms);
                    self.endpoints_terminating.remove(&ip);
                }
                EventKind::EndpointTerminating => {
                    self.endpoints.remove(&ip);
                    self.endpoints_terminating.insert(ip, e.at_ms);
                }
                EventKind::EndpointRemoved => {
                    self.endpoints.remove(&ip);
                }
                _ => {}
            }
        }
    }

    fn pod_by_ip(&self, ip: IpAddr) -> Option<(&String, &Pod)> {
        self.pods
            .iter()
            .filter(|(_, p)| p.ip == Some(ip))
            .max_by(|a, b| {
                let t = |p: &Pod| p.ready_at.or(p.terminating_at).unwrap_or(0.0);
                t(a.1).total_cmp(&t(b.1))
            })
    }

    /// What receives new connections: the endpoints if there were endpoint events, else
    /// the ready pods that are not terminating. An endpoint no pod event names is known
    /// by its address only, and is never called a pod.
    pub(super) fn serving(&self) -> Vec<Serving> {
        if self.ever_had_endpoint_events {
            self.endpoints
                .keys()
                .map(|ip| match self.pod_by_ip(*ip) {
                    Some((name, pod)) => Serving::named(name, pod),
                    None => Serving {
                        name: None,
                        pod: Pod {
                            ip: Some(*ip),
                            ..Pod::default()
                        },
                    },
                })
                .collect()
        } else {
            self.pods
                .iter()
                .filter(|(_, p)| {
                    p.ready_at.is_some() && p.terminating_at.is_none() && p.deleted_at.is_none()
                })
                .map(|(n, p)| Serving::named(n, p))
                .collect()
        }
    }

    /// Pods that began terminating (their own event, or their endpoint's `terminating`
    /// condition) at or before `until` and were not deleted before `after`, oldest first,
    /// with when they began.
    pub(super) fn terminating_between(&self, after: f64, until: f64) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .pods
            .iter()
            .filter_map(|(n, p)| {
                let endpoint = p.ip.and_then(|ip| self.endpoints_terminating.get(&ip));
                let since = match (p.terminating_at, endpoint) {
                    (Some(a), Some(b)) => a.min(*b),
                    (a, b) => a.or(b.copied())?,
                };
                let gone_before = p.deleted_at.is_some_and(|d| d < after);
                (since <= until && !gone_before).then(|| (n.clone(), since))
            })
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v
    }
}

/// A pod or endpoint that receives new connections.
#[derive(Clone)]
pub(super) struct Serving {
    /// The pod's name, when an event named it.
    pub(super) name: Option<String>,
    pub(super) pod: Pod,
}

impl Serving {
    fn named(name: &str, pod: &Pod) -> Serving {
        Serving {
            name: Some(name.to_string()),
            pod: pod.clone(),
        }
    }
}
