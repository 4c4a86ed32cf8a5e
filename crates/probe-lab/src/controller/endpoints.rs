//! The EndpointSlice controller, each node's kube-proxy, and the L2 announcer.
//!
//! Endpoints follow pods' readiness at once (as the EndpointSlice controller does); each
//! node's kube-proxy rules follow each change after that node's own sync delay
//! ([`crate::LabConfig::sync_delay`]), which is where a client meets stale rules, and
//! where nodes disagree for a moment. Every sync that changes a node's endpoints is an
//! `endpoint_removed`/`endpoint_added` event with `subject.node` set (the EndpointSlice's
//! own events have no node), so attribution can see which node's rules lagged.
//!
//! Each LoadBalancer address is announced by one elected node (MetalLB's L2 mode elects
//! one speaker per address by hashing node names with the address; the lab hashes the
//! address over the node count), and only while that node's own rules have a ready
//! endpoint.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use probe_core::{EventKind, Subject};

use super::{node_name, Desired, Phase, World};
use crate::error::LabError;
use crate::hash::fnv1a;
use crate::manifest::{selects, ServiceType};
use crate::netns::{gratuitous_arp, ip_batch, run};
use crate::proxy::{transition, ProxyState, SvcRules};

/// The node (0-based) of `nodes` that announces LoadBalancer address `ip`.
pub(crate) fn elected_node(ip: Ipv4Addr, nodes: usize) -> usize {
    (fnv1a(&ip.to_string(), 0) % nodes.max(1) as u64) as usize
}

impl World {
    // --- EndpointSlices and kube-proxy ---------------------------------------------------

    pub(super) fn endpoint_slices(&mut self, desired: &Desired, now: Instant) {
        let mut state = ProxyState::default();
        for (name, desired) in &desired.services {
            let (svc, cip, eip) = (&desired.spec, &desired.cluster_ip, &desired.external_ip);
            let mut eps: Vec<(Ipv4Addr, String)> = self
                .pods
                .iter()
                .filter(|p| p.active() && p.ready && p.phase == Phase::Running)
                .filter(|p| selects(&svc.selector, &p.labels))
                .map(|p| (p.ip, p.name.clone()))
                .collect();
            if let Some(proxy) = self.ingress_endpoints(name) {
                eps = proxy;
            }
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
                pods: eps.iter().map(|(_, pod)| pod.clone()).collect(),
            });
            self.endpoints.insert(name.clone(), eps);
        }
        for node in &mut self.proxies {
            let last = node.queue.back().map(|(_, s)| s).unwrap_or(&node.applied);
            if *last != state {
                node.queue.push_back((now, state.clone()));
            }
        }
    }

    pub(super) fn kube_proxy(&mut self, now: Instant) {
        // Each node's kube-proxy (and, on the elected node, the announcer) sees each change
        // its own sync delay after it happened.
        for i in 0..self.proxies.len() {
            let delay = self.cfg.sync_delay(i + 1);
            let mut due = None;
            while let Some((t, _)) = self.proxies[i].queue.front() {
                if now >= *t + delay {
                    due = self.proxies[i].queue.pop_front().map(|(_, s)| s);
                } else {
                    break;
                }
            }
            if let Some(state) = due {
                if let Err(e) = self.apply_proxy(i, &state) {
                    self.note_err(e);
                }
                self.emit_sync(i, &state);
                self.proxies[i].applied = state;
            }
        }
    }

    /// The node (0-based) that announces LoadBalancer address `ip`.
    pub(super) fn elected(&self, ip: Ipv4Addr) -> usize {
        elected_node(ip, self.proxies.len())
    }

    /// One event per endpoint that node `i`'s rules gained or lost in this sync.
    fn emit_sync(&self, i: usize, state: &ProxyState) {
        let old = &self.proxies[i].applied;
        let node = node_name(i + 1);
        for svc in &state.services {
            let before = old.services.iter().find(|s| s.name == svc.name);
            let port = svc.ports.first().map(|p| p.1).unwrap_or(0);
            let event = |kind: EventKind, ip: Ipv4Addr, pod: &str| {
                let subject = Subject::endpoint(svc.name.clone(), IpAddr::V4(ip), Some(port))
                    .with_pod(pod)
                    .with_node(node.clone());
                let verb = if kind == EventKind::EndpointAdded {
                    "now sends traffic to"
                } else {
                    "no longer sends traffic to"
                };
                let detail = format!("{node}'s kube-proxy {verb} {} {ip}:{port} {pod}", svc.name);
                self.emit(kind, subject, detail);
            };
            if let Some(b) = before {
                for (ip, pod) in b.endpoints.iter().zip(&b.pods) {
                    if !svc.endpoints.contains(ip) {
                        event(EventKind::EndpointRemoved, *ip, pod);
                    }
                }
            }
            for (ip, pod) in svc.endpoints.iter().zip(&svc.pods) {
                if !before.is_some_and(|b| b.endpoints.contains(ip)) {
                    event(EventKind::EndpointAdded, *ip, pod);
                }
            }
        }
        for b in &old.services {
            if !state.services.iter().any(|s| s.name == b.name) {
                let port = b.ports.first().map(|p| p.1).unwrap_or(0);
                for (ip, pod) in b.endpoints.iter().zip(&b.pods) {
                    let subject = Subject::endpoint(b.name.clone(), IpAddr::V4(*ip), Some(port))
                        .with_pod(pod)
                        .with_node(node.clone());
                    self.emit(
                        EventKind::EndpointRemoved,
                        subject,
                        format!(
                            "{node}'s kube-proxy no longer sends traffic to {} {ip}:{port} {pod}",
                            b.name
                        ),
                    );
                }
            }
        }
    }

    /// Applies `state` to node `i` (0-based): its rules, and the addresses it announces.
    pub(super) fn apply_proxy(&mut self, i: usize, state: &ProxyState) -> Result<(), LabError> {
        let ns = self.names.nodes[i].clone();
        for tables in transition(&self.proxies[i].applied, state) {
            run(
                "ip",
                &["netns", "exec", &ns, "iptables-restore"],
                Some(&tables),
            )?;
        }
        let want: BTreeSet<Ipv4Addr> = state
            .announced()
            .into_iter()
            .filter(|ip| self.elected(*ip) == i)
            .collect();
        let announced = &self.proxies[i].announced;
        let mut lines = Vec::new();
        for ip in want.difference(announced) {
            lines.push(format!("addr add {ip}/32 dev lb0"));
        }
        for ip in announced.difference(&want) {
            lines.push(format!("addr del {ip}/32 dev lb0"));
        }
        if !lines.is_empty() {
            ip_batch(Some(&ns), &lines)?;
        }
        let new: Vec<Ipv4Addr> = want.difference(announced).copied().collect();
        let gone: Vec<Ipv4Addr> = announced.difference(&want).copied().collect();
        self.proxies[i].announced = want;
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
                    node: Some(node_name(i + 1)),
                    ..Subject::default()
                };
                self.emit(kind.clone(), subject, format!("{service} {ip}"));
            }
        }
        for ip in new {
            gratuitous_arp(&ns, "lb0", ip)?;
        }
        Ok(())
    }
}
