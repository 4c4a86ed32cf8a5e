//! The EndpointSlice controller, kube-proxy and the L2 announcer.
//!
//! Endpoints follow pods' readiness at once (as the EndpointSlice controller does);
//! kube-proxy's rules and the LoadBalancer address's announcement follow each change
//! `proxy_sync_delay` later, which is where a client meets stale rules.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use probe_core::{EventKind, Subject};

use super::{Desired, Phase, World};
use crate::manifest::{selects, ServiceType};
use crate::netns::{gratuitous_arp, ip_batch, run};
use crate::proxy::{render, ProxyState, SvcRules};
use crate::LabError;

impl World {
    // --- EndpointSlices and kube-proxy ---------------------------------------------------

    pub(super) fn endpoint_slices(&mut self, desired: &Desired, now: Instant) {
        let mut state = ProxyState::default();
        for (name, (svc, cip, eip)) in &desired.services {
            let mut eps: Vec<(Ipv4Addr, String)> = self
                .pods
                .iter()
                .filter(|p| p.active() && p.ready && p.phase == Phase::Running)
                .filter(|p| selects(&svc.selector, &p.labels))
                .map(|p| (p.ip, p.name.clone()))
                .collect();
            eps.sort();
            let port = svc.ports.first().map(|p| p.target_port).unwrap_or(0);
            let old = self.endpoints.get(name).cloned().unwrap_or_default();
            let endpoint = |kind: EventKind, ip: &Ipv4Addr, pod: &str| {
                let subject =
                    Subject::endpoint(name.clone(), IpAddr::V4(*ip), Some(port)).with_pod(pod);
                (kind, subject, format!("{name} {ip}:{port} {pod}"))
            };
            let mut changes = Vec::new();
            for (ip, pod) in &old {
                if !eps.iter().any(|(i, _)| i == ip) {
                    changes.push(endpoint(EventKind::EndpointRemoved, ip, pod));
                }
            }
            for (ip, pod) in &eps {
                if !old.iter().any(|(i, _)| i == ip) {
                    changes.push(endpoint(EventKind::EndpointAdded, ip, pod));
                }
            }
            for (kind, subject, detail) in changes {
                self.emit(kind, subject, detail);
            }
            state.services.push(SvcRules {
                name: name.clone(),
                cluster_ip: *cip,
                external_ip: if svc.service_type == ServiceType::LoadBalancer {
                    *eip
                } else {
                    None
                },
                ports: svc.ports.iter().map(|p| (p.port, p.target_port)).collect(),
                endpoints: eps.iter().map(|(ip, _)| *ip).collect(),
            });
            self.endpoints.insert(name.clone(), eps);
        }
        let last = self
            .proxy_queue
            .back()
            .map(|(_, s)| s)
            .unwrap_or(&self.proxy_applied);
        if *last != state {
            self.proxy_queue.push_back((now, state));
        }
    }

    pub(super) fn kube_proxy(&mut self, now: Instant) {
        // kube-proxy and the announcer see each change `proxy_sync_delay` after it happened.
        let mut due = None;
        while let Some((t, _)) = self.proxy_queue.front() {
            if now >= *t + self.cfg.proxy_sync_delay {
                due = self.proxy_queue.pop_front().map(|(_, s)| s);
            } else {
                break;
            }
        }
        if let Some(state) = due {
            if let Err(e) = self.apply_proxy(&state) {
                self.note_err(e);
            }
            self.proxy_applied = state;
        }
    }

    pub(super) fn apply_proxy(&mut self, state: &ProxyState) -> Result<(), LabError> {
        run(
            "ip",
            &["netns", "exec", &self.names.node, "iptables-restore"],
            Some(&render(state)),
        )?;
        let want: BTreeSet<Ipv4Addr> = state.announced().into_iter().collect();
        let mut lines = Vec::new();
        for ip in want.difference(&self.announced) {
            lines.push(format!("addr add {ip}/32 dev lb0"));
        }
        for ip in self.announced.difference(&want) {
            lines.push(format!("addr del {ip}/32 dev lb0"));
        }
        if !lines.is_empty() {
            ip_batch(Some(&self.names.node), &lines)?;
        }
        let new: Vec<Ipv4Addr> = want.difference(&self.announced).copied().collect();
        let gone: Vec<Ipv4Addr> = self.announced.difference(&want).copied().collect();
        self.announced = want;
        for (kind, ips) in [
            (EventKind::AddressWithdrawn, &gone),
            (EventKind::AddressAnnounced, &new),
        ] {
            for ip in ips {
                let service = state
                    .services
                    .iter()
                    .find(|s| s.external_ip == Some(*ip))
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let subject = Subject {
                    address: Some(IpAddr::V4(*ip)),
                    service: Some(service.clone()),
                    node: Some(self.names.node.clone()),
                    ..Subject::default()
                };
                self.emit(kind.clone(), subject, format!("{service} {ip}"));
            }
        }
        for ip in new {
            gratuitous_arp(&self.names.node, "lb0", ip)?;
        }
        Ok(())
    }
}
