//! kube-proxy and a MetalLB-style L2 announcer, for the node namespaces.
//!
//! What a client meets during a rollout is decided by exactly these rules, so the lab
//! writes them as kube-proxy writes them, in either of its Linux modes
//! ([`ProxyMode`]): `iptables.rs` (`iptables-restore` of the `filter` and `nat` tables)
//! and `nftables.rs` (one `nft -f` transaction replacing the `ip kube-proxy` table).
//! IPVS mode needs the kernel's IPVS modules (`CONFIG_IP_VS`), which the machines this
//! runs on lack, so it is left out rather than imitated with something else.
//!
//! This file holds what both modes share: which endpoints a node's rules send traffic
//! to. kube-proxy's rules there, as of Kubernetes 1.28 (KEP-1669,
//! ProxyTerminatingEndpoints, GA), are:
//!
//! - *cluster* traffic (the ClusterIP; the LoadBalancer address with
//!   `externalTrafficPolicy: Cluster`) goes to the ready endpoints; only when no endpoint
//!   is ready does it go to the endpoints that are serving and terminating (a pod being
//!   deleted that still passes its readiness probe), so a Service whose every pod is
//!   terminating keeps being served until they stop;
//! - *external* traffic with `externalTrafficPolicy: Local` goes only to this node's own
//!   endpoints, by the same rule (ready ones, else serving and terminating ones); a node
//!   without any drops it (a drop, not a reject: the load balancer's health check is
//!   expected to have steered traffic away, and a reject would tell a client the Service
//!   is down when another node serves it);
//! - a Service with no usable endpoint anywhere is rejected (ICMP port unreachable, so
//!   the client's `connect()` fails at once with ECONNREFUSED).
//!
//! The announcer follows MetalLB's L2 mode: an address is announced while its Service has
//! an endpoint that can serve (ready, or serving while terminating: MetalLB's
//! `EndpointCanServe`), by one node elected per address; with `Local`, only nodes that
//! have such an endpoint of their own are candidates. The announcement itself is the
//! address added as a /32 on the node's LAN interface, so the node's kernel answers ARP
//! for it; without it nobody does, and the client's `connect()` ends with EHOSTUNREACH.
//! When an address is announced again the node sends a gratuitous ARP, as MetalLB does.

use std::net::Ipv4Addr;

use crate::hash::fnv1a;
use crate::proxy_mode::ProxyMode;

mod iptables;
mod nftables;

pub(crate) use iptables::render as render_iptables;

impl ProxyMode {
    /// Whether the program this mode writes its rules with is installed (on `PATH`), as
    /// one line naming the package to install when it is not. (iptables the lab needs in
    /// any mode, and its setup says so when it is missing.)
    pub fn check_tools(self) -> Result<(), String> {
        let (program, package) = match self {
            ProxyMode::Iptables => return Ok(()),
            ProxyMode::Nftables => ("nft", "nftables"),
        };
        let found = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|d| crate::config::is_executable(&d.join(program)))
        });
        if found {
            Ok(())
        } else {
            Err(format!(
                "{program} is not installed: install the {package} package"
            ))
        }
    }
}

/// One endpoint kube-proxy may send traffic to: ready, or serving while terminating
/// (endpoints that can serve nothing are never in a [`SvcRules`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Endpoint {
    pub ip: Ipv4Addr,
    /// The pod behind it (for the events of a node's sync).
    pub pod: String,
    /// The node (1-based) its pod runs on.
    pub node: usize,
    /// Ready (`false`: serving and terminating).
    pub ready: bool,
}

/// One Service as kube-proxy sees it at a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SvcRules {
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub external_ip: Option<Ipv4Addr>,
    /// (port, targetPort)
    pub ports: Vec<(u16, u16)>,
    /// Each port's name (empty when unnamed), in the order of `ports`.
    pub port_names: Vec<String>,
    /// `externalTrafficPolicy: Local` (LoadBalancer Services only).
    pub external_local: bool,
    /// Where each node serves the health check (`Local` Services only).
    pub health_check_node_port: Option<u16>,
    /// Endpoints that can serve, sorted by address.
    pub endpoints: Vec<Endpoint>,
}

/// Ready endpoints of `eps` if there is one, else the serving and terminating ones.
fn usable<'a>(eps: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<&'a Endpoint> {
    let ready: Vec<&Endpoint> = eps.clone().filter(|e| e.ready).collect();
    if ready.is_empty() {
        eps.collect()
    } else {
        ready
    }
}

impl SvcRules {
    /// kube-proxy's cluster endpoints: the ready ones, else the serving and terminating
    /// ones.
    pub fn cluster_endpoints(&self) -> Vec<&Endpoint> {
        usable(self.endpoints.iter())
    }

    /// kube-proxy's local endpoints on `node` (1-based), by the same rule.
    pub fn local_endpoints(&self, node: usize) -> Vec<&Endpoint> {
        usable(self.endpoints.iter().filter(move |e| e.node == node))
    }

    /// What external traffic (to the LoadBalancer address) arriving at `node` may reach.
    pub fn external_endpoints(&self, node: usize) -> Vec<&Endpoint> {
        if self.external_local {
            self.local_endpoints(node)
        } else {
            self.cluster_endpoints()
        }
    }

    /// Every endpoint `node`'s rules send some traffic to, sorted by address.
    pub fn reachable(&self, node: usize) -> Vec<&Endpoint> {
        let mut all = self.cluster_endpoints();
        for e in self.external_endpoints(node) {
            if !all.contains(&e) {
                all.push(e);
            }
        }
        all.sort();
        all
    }

    /// The ready endpoints on `node`: the count kube-proxy's health check reports as
    /// `localEndpoints`.
    pub fn local_ready(&self, node: usize) -> usize {
        self.endpoints
            .iter()
            .filter(|e| e.node == node && e.ready)
            .count()
    }

    /// `ns/name`, then `:portname` for a named port, as kube-proxy names a service port.
    fn port_name(&self, i: usize) -> String {
        match self.port_names.get(i).filter(|n| !n.is_empty()) {
            Some(n) => format!("default/{}:{n}", self.name),
            None => format!("default/{}", self.name),
        }
    }
}

/// Everything kube-proxy and the announcer act on, as of one moment (the same on every
/// node; what a node makes of it depends on which node it is).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ProxyState {
    pub services: Vec<SvcRules>,
}

impl ProxyState {
    /// The LoadBalancer addresses node `node` (1-based) of `nodes` announces.
    pub fn announced_by(&self, node: usize, nodes: usize) -> Vec<Ipv4Addr> {
        self.services
            .iter()
            .filter_map(|s| {
                let ip = s.external_ip?;
                let candidates: Vec<usize> = if s.external_local {
                    (1..=nodes)
                        .filter(|n| s.endpoints.iter().any(|e| e.node == *n))
                        .collect()
                } else if s.endpoints.is_empty() {
                    Vec::new()
                } else {
                    (1..=nodes).collect()
                };
                let elected = candidates.get(elected_index(ip, candidates.len()))?;
                (*elected == node).then_some(ip)
            })
            .collect()
    }
}

/// Which of `candidates` nodes announces address `ip`: MetalLB's L2 mode elects one
/// speaker per address from a hash of the address; the lab hashes the address over the
/// candidate count.
pub(crate) fn elected_index(ip: Ipv4Addr, candidates: usize) -> usize {
    (fnv1a(&ip.to_string(), 0) % candidates.max(1) as u64) as usize
}

/// What one sync runs on a node: each step is a program and its standard input.
pub(crate) type SyncStep = (&'static str, String);

/// The steps that take node `node`'s (1-based) rules from `old` to `new` in `mode`.
pub(crate) fn sync_steps(
    mode: ProxyMode,
    old: &ProxyState,
    new: &ProxyState,
    node: usize,
) -> Vec<SyncStep> {
    match mode {
        ProxyMode::Iptables => iptables::transition(old, new, node)
            .into_iter()
            .map(|tables| ("iptables-restore", tables))
            .collect(),
        ProxyMode::Nftables => vec![("nft", nftables::render(new, node))],
    }
}

/// kube-proxy-like chain suffix: 16 base32 characters of a hash of `key`.
fn chain_hash(key: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (a, b) = (fnv1a(key, 0), fnv1a(key, 0x9e37_79b9_7f4a_7c15));
    (0..16)
        .map(|i| {
            let v = if i < 8 {
                a >> (i * 5)
            } else {
                b >> ((i - 8) * 5)
            };
            ALPHABET[(v & 31) as usize] as char
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `backend-svc` (LoadBalancer) with endpoints `(last octet, node, ready)`.
    pub(crate) fn svc(eps: &[(u8, usize, bool)], local: bool) -> ProxyState {
        ProxyState {
            services: vec![SvcRules {
                name: "backend-svc".into(),
                cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
                external_ip: Some(Ipv4Addr::new(172, 31, 254, 10)),
                ports: vec![(8080, 8080)],
                port_names: vec![String::new()],
                external_local: local,
                health_check_node_port: local.then_some(30000),
                endpoints: eps
                    .iter()
                    .map(|&(last, node, ready)| {
                        let ip = Ipv4Addr::new(10, 244, 16 * (node as u8 - 1), last);
                        Endpoint {
                            ip,
                            pod: format!("pod-{ip}"),
                            node,
                            ready,
                        }
                    })
                    .collect(),
            }],
        }
    }

    fn ips(eps: Vec<&Endpoint>) -> Vec<String> {
        eps.iter().map(|e| e.ip.to_string()).collect()
    }

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        // One ready pod and one terminating one: only the ready one gets traffic.
        let s = &svc(&[(2, 1, false), (3, 1, true)], false).services[0];
        assert_eq!(ips(s.cluster_endpoints()), ["10.244.0.3"]);
        // Every pod terminating (Recreate): they keep serving until they stop.
        let s = &svc(&[(2, 1, false), (3, 1, false)], false).services[0];
        assert_eq!(ips(s.cluster_endpoints()), ["10.244.0.2", "10.244.0.3"]);
        // The same rule per node under Local: node 2 has only a terminating pod of its
        // own, so its external traffic goes there although node 1 has a ready one.
        let s = &svc(&[(2, 1, true), (3, 2, false)], true).services[0];
        assert_eq!(ips(s.cluster_endpoints()), ["10.244.0.2"]);
        assert_eq!(ips(s.external_endpoints(2)), ["10.244.16.3"]);
        assert_eq!(ips(s.reachable(2)), ["10.244.0.2", "10.244.16.3"]);
        assert_eq!((s.local_ready(1), s.local_ready(2)), (1, 0));
    }

    #[test]
    fn local_policy_is_announced_only_by_a_node_with_an_endpoint() {
        let ext = Ipv4Addr::new(172, 31, 254, 10);
        for node_with_pod in 1..=3 {
            let s = svc(&[(2, node_with_pod, true)], true);
            for node in 1..=3 {
                let want = if node == node_with_pod {
                    vec![ext]
                } else {
                    vec![]
                };
                assert_eq!(s.announced_by(node, 3), want, "pod on {node_with_pod}");
            }
        }
        // Cluster policy: exactly one node of three announces, wherever the pod runs.
        let s = svc(&[(2, 3, true)], false);
        let announcing = (1..=3)
            .filter(|n| !s.announced_by(*n, 3).is_empty())
            .count();
        assert_eq!(announcing, 1);
        // No endpoint that can serve: nobody announces.
        let s = svc(&[], false);
        assert!((1..=3).all(|n| s.announced_by(n, 3).is_empty()));
    }

    #[test]
    fn ipvs_is_refused_with_the_reason() {
        let e = "ipvs".parse::<ProxyMode>().unwrap_err();
        assert!(e.contains("CONFIG_IP_VS"), "{e}");
        assert!("nft".parse::<ProxyMode>().is_err());
    }
}
