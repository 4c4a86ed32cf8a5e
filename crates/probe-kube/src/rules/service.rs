//! The Service and its EndpointSlices: selector changes and, per address, the endpoint
//! lifecycle that kube-proxy follows.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use probe_core::{Event, EventKind, Subject};

use super::{event, latest_spec_write, name, Tracker};
use crate::control::rfc3339_seconds;

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct EpState {
    pub(super) ready: bool,
    serving: bool,
    terminating: bool,
}

/// One address of the Service's endpoints.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ep {
    pod: Option<String>,
    service: Option<String>,
    port: Option<u16>,
    pub(super) cond: EpState,
}

impl Ep {
    /// `POD ADDRESS ready=.. serving=.. terminating=..`.
    pub(super) fn detail(&self, addr: &str) -> String {
        format!(
            "{} {addr} ready={} serving={} terminating={}",
            self.pod.as_deref().unwrap_or("(no pod)"),
            self.cond.ready,
            self.cond.serving,
            self.cond.terminating
        )
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

impl Tracker {
    /// What an endpoint event is about: the Service, the address and port, the pod.
    pub(super) fn endpoint_subject(&self, addr: &str, e: &Ep) -> Subject {
        Subject {
            service: e.service.clone().or_else(|| self.service.clone()),
            address: addr.parse::<IpAddr>().ok(),
            port: e.port,
            pod: e.pod.clone(),
            ..Subject::default()
        }
    }

    pub(super) fn service_apply(&mut self, s: Service) -> Vec<Event> {
        let sel = s.spec.as_ref().and_then(|sp| sp.selector.clone());
        let mut out = Vec::new();
        if let Some(prev) = &self.selector {
            if Some(prev) != sel.as_ref() {
                let service = name(&s.metadata);
                out.push(event(
                    EventKind::ServiceSelectorChanged,
                    Subject {
                        service: Some(service.clone()),
                        ..Subject::default()
                    },
                    format!(
                        "{service} {} -> {}",
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
    pub(super) fn endpoints(&self) -> BTreeMap<String, Ep> {
        let mut all: BTreeMap<String, Ep> = BTreeMap::new();
        for eps in self.slices.values() {
            for (addr, ep) in eps {
                let e = all.entry(addr.clone()).or_insert_with(|| Ep {
                    cond: EpState::default(),
                    ..ep.clone()
                });
                e.cond.ready |= ep.cond.ready;
                e.cond.serving |= ep.cond.serving;
                e.cond.terminating |= ep.cond.terminating;
                if e.pod.is_none() {
                    e.pod.clone_from(&ep.pod);
                }
                if e.port.is_none() {
                    e.port = ep.port;
                }
            }
        }
        all
    }

    pub(super) fn slice_apply(&mut self, s: EndpointSlice) -> Vec<Event> {
        let before = self.endpoints();
        let service = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned();
        // A slice lists its ports once for all its endpoints; the first is the one a
        // single-port Service (the usual case) sends traffic to.
        let port = s
            .ports
            .iter()
            .flatten()
            .find_map(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
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
                        service: service.clone(),
                        port,
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

    pub(super) fn slice_delete(&mut self, s: EndpointSlice) -> Vec<Event> {
        let before = self.endpoints();
        self.slices.remove(&name(&s.metadata));
        self.endpoint_diff(&before, None)
    }

    pub(super) fn endpoint_diff(
        &self,
        before: &BTreeMap<String, Ep>,
        when: Option<String>,
    ) -> Vec<Event> {
        let after = self.endpoints();
        let addrs: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        let mut out = Vec::new();
        for addr in addrs {
            let prev = before.get(addr);
            let pc = prev.map(|e| e.cond).unwrap_or_default();
            let mut emit = |kind: EventKind, e: &Ep, detail: String| {
                out.push(event(
                    kind,
                    self.endpoint_subject(addr, e),
                    detail,
                    when.clone(),
                ));
            };
            match after.get(addr) {
                Some(n) => {
                    if n.cond.terminating && !pc.terminating {
                        emit(EventKind::EndpointTerminating, n, n.detail(addr));
                    } else if n.cond.ready && !pc.ready {
                        emit(EventKind::EndpointAdded, n, n.detail(addr));
                    } else if !n.cond.ready && pc.ready && !n.cond.terminating {
                        emit(EventKind::EndpointRemoved, n, n.detail(addr));
                    }
                }
                None => {
                    let p = prev.expect("address came from before or after");
                    if pc.ready || pc.terminating {
                        let detail = format!(
                            "{} {addr} gone from the EndpointSlices",
                            p.pod.as_deref().unwrap_or("(no pod)")
                        );
                        emit(EventKind::EndpointRemoved, p, detail);
                    }
                }
            }
        }
        out
    }
}
