//! The EndpointSlice controller, each node's kube-proxy, and the L2 announcer.
//!
//! Endpoints follow pods' readiness at once (as the EndpointSlice controller does); each
//! node's kube-proxy rules follow each change after that node's own sync delay
//! ([`crate::LabConfig::sync_delay`]), which is where a client meets stale rules, and
//! where nodes disagree for a moment. Every sync that changes a node's endpoints is an
//! `endpoint_removed`/`endpoint_added` event with `subject.node` set (the EndpointSlice's
//! own events have no node), so attribution can see which node's rules lagged.
//!
//! Which endpoints each node's rules send traffic to follows kube-proxy (see
//! [`crate::proxy`]): ready endpoints, else the serving and terminating ones; with
//! `externalTrafficPolicy: Local`, external traffic only to the node's own. The endpoint
//! events above stay the EndpointSlice's view (an endpoint that begins terminating is
//! `endpoint_terminating`, then `endpoint_removed` from the ready set at once); a node's
//! `endpoint_removed` comes when its rules stop sending to it, which for a serving,
//! terminating endpoint with no ready one beside it is when it stops serving. A
//! terminating pod serves while its process runs with its last readiness: the lab's
//! kubelet stops probing when it begins killing a pod, where a real kubelet keeps probing
//! and a pod that fails its probe while draining stops serving up to
//! `failureThreshold × periodSeconds` before its process exits.
//!
//! Each LoadBalancer address is announced by one node elected among the candidates
//! (MetalLB's L2 mode elects one speaker per address by hashing node names with the
//! address; the lab hashes the address over the candidates): every node, or with `Local`
//! the nodes with an endpoint of their own; only while that node's own rules have an
//! endpoint that can serve. With `Local`, every node also serves kube-proxy's health
//! check on the Service's `healthCheckNodePort` ([`crate::healthcheck`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use probe_core::{EventKind, Subject};

use super::{node_name, Desired, Phase, World};
use crate::error::LabError;
use crate::hash::fnv1a;
use crate::healthcheck::HealthServer;
use crate::manifest::{selects, ServiceType, TrafficPolicy};
use crate::netns::{gratuitous_arp, ip_batch, run};
use crate::proxy::{elected_index, sync_steps, Endpoint, ProxyState, SvcRules};

/// The node (0-based) of `nodes` that announces LoadBalancer address `ip` under
/// `externalTrafficPolicy: Cluster`.
pub(crate) fn elected_node(ip: Ipv4Addr, nodes: usize) -> usize {
    elected_index(ip, nodes)
}

/// Kubernetes' node port range, where a `Local` Service's health check port lies.
const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// Each `Local` Service's `healthCheckNodePort`: its manifest's, else one the lab
/// allocates from a hash of its name (stable across runs and syncs, as the API server
/// keeps the one it allocated), moved on past ports already taken.
pub(crate) fn health_check_ports(desired: &Desired) -> BTreeMap<String, u16> {
    let local = |d: &&super::DesiredService| {
        d.spec.external_traffic_policy == TrafficPolicy::Local
            && d.spec.service_type == ServiceType::LoadBalancer
    };
    let mut ports: BTreeMap<String, u16> = desired
        .services
        .iter()
        .filter(|(_, d)| local(d))
        .filter_map(|(n, d)| Some((n.clone(), d.spec.health_check_node_port?)))
        .collect();
    let span = u64::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
    for (name, _) in desired.services.iter().filter(|(_, d)| local(d)) {
        if ports.contains_key(name) {
            continue;
        }
        let mut offset = fnv1a(name, 0) % span;
        let port = loop {
            let p = NODE_PORTS.start() + offset as u16;
            if !ports.values().any(|q| *q == p) {
                break p;
            }
            offset = (offset + 1) % span;
        };
        ports.insert(name.clone(), port);
    }
    ports
}

impl World {
    // --- EndpointSlices and kube-proxy ---------------------------------------------------

    pub(super) fn endpoint_slices(&mut self, desired: &Desired, now: Instant) {
        let mut state = ProxyState::default();
        let health = health_check_ports(desired);
        for (name, desired) in &desired.services {
            let (svc, cip, eip) = (&desired.spec, &desired.cluster_ip, &desired.external_ip);
            // Endpoints that can serve: ready, or still serving while terminating (a
            // running pod being deleted whose readiness has not failed).
            let mut usable: Vec<Endpoint> = self
                .pods
                .iter()
                .filter(|p| p.ready && p.phase == Phase::Running)
                .filter(|p| selects(&svc.selector, &p.labels))
                .map(|p| Endpoint {
                    ip: p.ip,
                    pod: p.name.clone(),
                    node: crate::config::node_of_pod_ip(p.ip),
                    ready: p.active(),
                })
                .collect();
            // An ingress controller's Service has its proxy pod as its one endpoint.
            if let Some(proxy) = self.ingress_endpoints(name) {
                usable = proxy
                    .into_iter()
                    .map(|(ip, pod)| Endpoint {
                        ip,
                        pod,
                        node: crate::config::node_of_pod_ip(ip),
                        ready: true,
                    })
                    .collect();
            }
            usable.sort();
            let eps: Vec<(Ipv4Addr, String)> = usable
                .iter()
                .filter(|e| e.ready)
                .map(|e| (e.ip, e.pod.clone()))
                .collect();
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
            let load_balancer = svc.service_type == ServiceType::LoadBalancer;
            state.services.push(SvcRules {
                name: name.clone(),
                cluster_ip: *cip,
                external_ip: if load_balancer { *eip } else { None },
                ports: svc.ports.iter().map(|p| (p.port, p.target_port)).collect(),
                port_names: svc
                    .ports
                    .iter()
                    .map(|p| p.name.clone().unwrap_or_default())
                    .collect(),
                external_local: load_balancer
                    && svc.external_traffic_policy == TrafficPolicy::Local,
                health_check_node_port: health.get(name).copied(),
                endpoints: usable,
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

    /// One event per endpoint that node `i`'s rules began or stopped sending traffic to
    /// in this sync.
    fn emit_sync(&self, i: usize, state: &ProxyState) {
        let old = &self.proxies[i].applied;
        let node = node_name(i + 1);
        let event = |svc: &SvcRules, kind: EventKind, ep: &Endpoint| {
            let port = svc.ports.first().map(|p| p.1).unwrap_or(0);
            let subject = Subject::endpoint(svc.name.clone(), IpAddr::V4(ep.ip), Some(port))
                .with_pod(ep.pod.clone())
                .with_node(node.clone());
            let verb = if kind == EventKind::EndpointAdded {
                "now sends traffic to"
            } else {
                "no longer sends traffic to"
            };
            let detail = format!(
                "{node}'s kube-proxy {verb} {} {}:{port} {}",
                svc.name, ep.ip, ep.pod
            );
            self.emit(kind, subject, detail);
        };
        let ips = |eps: &[&Endpoint]| eps.iter().map(|e| e.ip).collect::<Vec<_>>();
        for svc in &state.services {
            let now = svc.reachable(i + 1);
            let before = old
                .services
                .iter()
                .find(|s| s.name == svc.name)
                .map(|b| (b, b.reachable(i + 1)));
            if let Some((b, was)) = &before {
                for ep in was.iter().filter(|e| !ips(&now).contains(&e.ip)) {
                    event(b, EventKind::EndpointRemoved, ep);
                }
            }
            let was = before.as_ref().map(|(_, w)| ips(w)).unwrap_or_default();
            for ep in now.iter().filter(|e| !was.contains(&e.ip)) {
                event(svc, EventKind::EndpointAdded, ep);
            }
        }
        for b in &old.services {
            if !state.services.iter().any(|s| s.name == b.name) {
                for ep in b.reachable(i + 1) {
                    event(b, EventKind::EndpointRemoved, ep);
                }
            }
        }
    }

    /// Applies `state` to node `i` (0-based): its rules, and the addresses it announces.
    pub(super) fn apply_proxy(&mut self, i: usize, state: &ProxyState) -> Result<(), LabError> {
        let ns = self.names.nodes[i].clone();
        for (program, input) in
            sync_steps(self.cfg.proxy_mode, &self.proxies[i].applied, state, i + 1)
        {
            let args: &[&str] = match program {
                "nft" => &["netns", "exec", &ns, "nft", "-f", "-"],
                _ => &["netns", "exec", &ns, program],
            };
            run("ip", args, Some(&input))?;
        }
        // A health check that cannot listen is noted, as a failed command is; the rules
        // and the announcement go on.
        if let Err(e) = self.sync_health_checks(i, state) {
            self.note_err(e);
        }
        let want: BTreeSet<Ipv4Addr> = state
            .announced_by(i + 1, self.proxies.len())
            .into_iter()
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

    /// Node `i`'s (0-based) health check servers after a sync: one per `Local` Service,
    /// each answering with the node's ready local endpoints in `state`.
    fn sync_health_checks(&mut self, i: usize, state: &ProxyState) -> Result<(), LabError> {
        let ns = self.names.nodes[i].clone();
        let servers = &mut self.proxies[i].health;
        servers.retain(|(name, port), _| {
            state
                .services
                .iter()
                .any(|s| &s.name == name && s.health_check_node_port == Some(*port))
        });
        for svc in &state.services {
            let Some(port) = svc.health_check_node_port else {
                continue;
            };
            let local = svc.local_ready(i + 1);
            match servers.get(&(svc.name.clone(), port)) {
                Some(server) => server.set_local_endpoints(local),
                None => {
                    let server = HealthServer::start(&ns, port, &svc.name, local)?;
                    servers.insert((svc.name.clone(), port), server);
                }
            }
        }
        Ok(())
    }
}
