//! kube-proxy's iptables mode.
//!
//! The rules are written the way kube-proxy writes them, because the errno a client gets
//! is decided by exactly these rules:
//!
//! - `nat` `KUBE-SERVICES` matches each Service address and port and jumps to a per
//!   service-port chain `KUBE-SVC-<hash>`, which picks one endpoint chain
//!   `KUBE-SEP-<hash>` with `-m statistic --mode random --probability 1/n, 1/(n-1), ...`
//!   (the last one unconditionally), which DNATs to `podIP:targetPort`.
//! - A Service port with no endpoint gets a plain `REJECT` in the `filter` table
//!   (`KUBE-SERVICES` from OUTPUT and FORWARD, `KUBE-EXTERNAL-SERVICES` from INPUT and
//!   FORWARD for the load-balancer address): icmp-port-unreachable, so the client's
//!   `connect()` fails at once with ECONNREFUSED.
//! - With `externalTrafficPolicy: Local` the load-balancer address jumps to
//!   `KUBE-EXT-<hash>`, which sends pod and node traffic on to the Service's
//!   `KUBE-SVC` chain and everything else to `KUBE-SVL-<hash>` (this node's endpoints
//!   only); a node without one has a `DROP` in `KUBE-EXTERNAL-SERVICES` instead, so a
//!   client sent there waits for its connect timeout.
//!
//! The whole `nat` and `filter` tables of the node namespace are replaced atomically with
//! one `iptables-restore` per sync, as kube-proxy does. The node namespace belongs to the
//! lab, so replacing its tables touches nothing else.

use std::fmt::Write as _;

use super::{chain_hash, Endpoint, ProxyState};

/// The pod network, as kube-proxy's `--cluster-cidr` (its local traffic detector).
const CLUSTER_CIDR: &str = crate::config::POD_CIDR;

/// Renders node `node`'s (1-based) `filter` and `nat` tables for `iptables-restore`.
pub(crate) fn render(state: &ProxyState, node: usize) -> String {
    let mut filter = String::new();
    let mut nat_chains = String::new();
    let mut nat = String::new();
    for svc in &state.services {
        let cluster = svc.cluster_endpoints();
        let local = svc.external_endpoints(node);
        for &(port, target) in &svc.ports {
            let spn = format!("default/{}:{port}", svc.name);
            if cluster.is_empty() {
                let _ = writeln!(
                    filter,
                    "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{spn} has no endpoints\" -m tcp --dport {port} -j REJECT --reject-with icmp-port-unreachable",
                    svc.cluster_ip
                );
                if let Some(ext) = svc.external_ip {
                    let _ = writeln!(
                        filter,
                        "-A KUBE-EXTERNAL-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} has no endpoints\" -m tcp --dport {port} -j REJECT --reject-with icmp-port-unreachable"
                    );
                }
                continue;
            }
            let hash = chain_hash(&format!("{spn}/tcp"));
            let svc_chain = format!("KUBE-SVC-{hash}");
            let _ = writeln!(nat_chains, ":{svc_chain} - [0:0]");
            let _ = writeln!(
                nat,
                "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{spn} cluster IP\" -m tcp --dport {port} -j {svc_chain}",
                svc.cluster_ip
            );
            match svc.external_ip {
                Some(ext) if svc.external_local => {
                    let ext_chain = format!("KUBE-EXT-{hash}");
                    let _ = writeln!(nat_chains, ":{ext_chain} - [0:0]");
                    let _ = writeln!(
                        nat,
                        "-A KUBE-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} loadbalancer IP\" -m tcp --dport {port} -j {ext_chain}"
                    );
                    let _ = writeln!(
                        nat,
                        "-A {ext_chain} -s {CLUSTER_CIDR} -m comment --comment \"pod traffic for {spn} external destinations\" -j {svc_chain}"
                    );
                    let _ = writeln!(
                        nat,
                        "-A {ext_chain} -m comment --comment \"masquerade LOCAL traffic for {spn} external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ"
                    );
                    let _ = writeln!(
                        nat,
                        "-A {ext_chain} -m comment --comment \"route LOCAL traffic for {spn} external destinations\" -m addrtype --src-type LOCAL -j {svc_chain}"
                    );
                    if local.is_empty() {
                        let _ = writeln!(
                            filter,
                            "-A KUBE-EXTERNAL-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} has no local endpoints\" -m tcp --dport {port} -j DROP"
                        );
                    } else {
                        let svl_chain = format!("KUBE-SVL-{hash}");
                        let _ = writeln!(nat_chains, ":{svl_chain} - [0:0]");
                        let _ = writeln!(nat, "-A {ext_chain} -j {svl_chain}");
                        pick(&mut nat, &svl_chain, &spn, target, &local);
                    }
                }
                Some(ext) => {
                    let _ = writeln!(
                        nat,
                        "-A KUBE-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} loadbalancer IP\" -m tcp --dport {port} -j KUBE-MARK-MASQ"
                    );
                    let _ = writeln!(
                        nat,
                        "-A KUBE-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} loadbalancer IP\" -m tcp --dport {port} -j {svc_chain}"
                    );
                }
                None => {}
            }
            pick(&mut nat, &svc_chain, &spn, target, &cluster);
            for ep in svc.reachable(node) {
                let sep = sep_chain(&spn, ep, target);
                let _ = writeln!(nat_chains, ":{sep} - [0:0]");
                let _ = writeln!(
                    nat,
                    "-A {sep} -p tcp -m comment --comment \"{spn}\" -m tcp -j DNAT --to-destination {}:{target}",
                    ep.ip
                );
            }
        }
    }
    let mut out = String::new();
    out.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    out.push_str(":KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n");
    out.push_str("-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n");
    out.push_str("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    out.push_str("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n");
    out.push_str("-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    out.push_str(&filter);
    out.push_str("COMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\n");
    out.push_str(&nat_chains);
    // External (LoadBalancer) traffic is marked for masquerading, as kube-proxy marks it
    // (externalTrafficPolicy: Cluster). The lab masquerades it only where the reply path
    // needs it, when it leaves for a pod on another node: that pod's node would
    // otherwise answer the client directly, past this node's NAT. Traffic to a local pod
    // keeps its source, so this node's ICMP errors reach the client as they always did.
    out.push_str(
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n",
    );
    out.push_str("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
    out.push_str("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n");
    out.push_str("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n");
    out.push_str("-A KUBE-POSTROUTING -o lb0 -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n");
    out.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    out.push_str(
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    out.push_str(&nat);
    out.push_str("COMMIT\n");
    out
}

/// `KUBE-SEP-<hash>`: the chain that DNATs to one endpoint.
fn sep_chain(spn: &str, ep: &Endpoint, target: u16) -> String {
    format!(
        "KUBE-SEP-{}",
        chain_hash(&format!("{spn}/tcp/{}:{target}", ep.ip))
    )
}

/// The rules of a `KUBE-SVC`/`KUBE-SVL` chain: one endpoint chain each, picked with
/// `-m statistic` probabilities 1/n, 1/(n-1), ..., the last one unconditionally.
fn pick(nat: &mut String, chain: &str, spn: &str, target: u16, eps: &[&Endpoint]) {
    let n = eps.len();
    for (i, ep) in eps.iter().enumerate() {
        let sep = sep_chain(spn, ep, target);
        let ip = ep.ip;
        if i + 1 < n {
            let p = 1.0 / (n - i) as f64;
            let _ = writeln!(
                nat,
                "-A {chain} -m comment --comment \"{spn} -> {ip}:{target}\" -m statistic --mode random --probability {p:.10} -j {sep}"
            );
        } else {
            let _ = writeln!(
                nat,
                "-A {chain} -m comment --comment \"{spn} -> {ip}:{target}\" -j {sep}"
            );
        }
    }
}

/// The `iptables-restore` inputs that take node `node`'s tables from `old` to `new`, in
/// an order in which no Service is ever left with neither its DNAT nor its `REJECT` (or,
/// for a `Local` address, its `DROP`).
///
/// kube-proxy hands both tables to one `iptables-restore`, which the nft backend commits
/// as one transaction; the legacy backend commits table by table, and a SYN that arrives
/// between the two commits, with the `REJECT` gone and the DNAT not there yet, is routed
/// un-NATed onto the bridge, waits ~3 s for an ARP answer no one gives and ends as "No
/// route to host" (its retransmissions follow its conntrack entry there too). So the lab
/// first writes `filter` with a `REJECT` (`DROP`) for every Service that has no endpoint
/// (no local endpoint) before or after (harmless where a DNAT still rewrites the
/// address), then `nat`, then the new `filter`: each intermediate state is one a client
/// could meet anyway.
pub(crate) fn transition(old: &ProxyState, new: &ProxyState, node: usize) -> Vec<String> {
    let mut guard = new.clone();
    for svc in &mut guard.services {
        let Some(before) = old.services.iter().find(|o| o.name == svc.name) else {
            continue;
        };
        if before.cluster_endpoints().is_empty() {
            svc.endpoints.clear();
        } else if svc.external_local && before.external_endpoints(node).is_empty() {
            // Its endpoints stay in the Service, as if on no node: the guard keeps the
            // node's DROP without touching its cluster rules.
            svc.endpoints
                .iter_mut()
                .filter(|e| e.node == node)
                .for_each(|e| e.node = 0);
        }
    }
    let tables = |state: &ProxyState| {
        let all = render(state, node);
        let nat = all.find("*nat\n").unwrap_or(all.len());
        (all[..nat].to_string(), all[nat..].to_string())
    };
    let (filter_guard, _) = tables(&guard);
    let (filter_new, nat_new) = tables(new);
    if filter_guard == filter_new {
        vec![filter_new, nat_new]
    } else {
        vec![filter_guard, nat_new, filter_new]
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::svc;
    use super::*;

    fn cluster(eps: &[u8]) -> ProxyState {
        let eps: Vec<(u8, usize, bool)> = eps.iter().map(|&l| (l, 1, true)).collect();
        svc(&eps, false)
    }

    #[test]
    fn no_endpoints_is_a_plain_reject_and_no_announcement() {
        let s = cluster(&[]);
        let r = render(&s, 1);
        assert!(r.contains("-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/backend-svc:8080 has no endpoints\" -m tcp --dport 8080 -j REJECT"));
        assert!(r.contains("-A KUBE-EXTERNAL-SERVICES -d 172.31.254.10/32"));
        assert!(!r.contains("DNAT"));
        assert!(s.announced_by(1, 1).is_empty());
    }

    #[test]
    fn no_step_of_a_sync_leaves_a_service_without_reject_or_dnat() {
        let (none, some) = (cluster(&[]), cluster(&[2]));
        for (old, new) in [(&none, &some), (&some, &none)] {
            let steps = transition(old, new, 1);
            // Replay the steps: which tables the node has after each.
            let (mut filter, mut nat) = (render(old, 1), render(old, 1));
            for step in &steps {
                if step.starts_with("*filter") {
                    filter = step.clone();
                } else {
                    assert!(step.starts_with("*nat"), "{step}");
                    nat = step.clone();
                }
                let reject = filter.contains("-d 10.96.0.10/32") && filter.contains("REJECT");
                let dnat = nat.contains("DNAT --to-destination 10.244.0.2:8080");
                assert!(reject || dnat, "a gap after {step}");
            }
            assert_eq!(
                filter.contains("REJECT"),
                new.services[0].endpoints.is_empty()
            );
        }
        assert_eq!(transition(&some, &some, 1).len(), 2);
    }

    #[test]
    fn endpoints_get_statistic_probabilities_like_kube_proxy() {
        let s = cluster(&[2, 3, 4]);
        let r = render(&s, 1);
        assert!(r.contains("--probability 0.3333333333 -j KUBE-SEP-"), "{r}");
        assert!(r.contains("--probability 0.5000000000 -j KUBE-SEP-"), "{r}");
        assert_eq!(r.matches("-m statistic").count(), 2);
        assert!(r.contains("-j DNAT --to-destination 10.244.0.4:8080"));
        assert!(!r.contains("REJECT"));
        assert_eq!(
            s.announced_by(1, 1),
            vec![std::net::Ipv4Addr::new(172, 31, 254, 10)]
        );
        // chain names stay within iptables' 28 character limit
        for line in r.lines().filter(|l| l.starts_with(':')) {
            let name = line[1..].split(' ').next().unwrap();
            assert!(name.len() <= 28, "{name}");
        }
    }

    #[test]
    fn local_policy_drops_external_traffic_on_a_node_without_its_own_endpoint() {
        // The pod runs on node 2.
        let s = svc(&[(2, 2, true)], true);
        let node1 = render(&s, 1);
        assert!(node1.contains("-A KUBE-EXTERNAL-SERVICES -d 172.31.254.10/32 -p tcp -m comment --comment \"default/backend-svc:8080 has no local endpoints\" -m tcp --dport 8080 -j DROP"), "{node1}");
        assert!(!node1.contains("KUBE-SVL-"), "{node1}");
        // ClusterIP traffic still reaches the pod on the other node.
        assert!(
            node1.contains("-j DNAT --to-destination 10.244.16.2:8080"),
            "{node1}"
        );
        assert!(
            node1.contains("-m addrtype --src-type LOCAL -j KUBE-SVC-"),
            "{node1}"
        );
        let node2 = render(&s, 2);
        assert!(!node2.contains("DROP"), "{node2}");
        assert!(node2.contains(":KUBE-SVL-"), "{node2}");
        let svl = node2
            .lines()
            .find(|l| l.starts_with("-A KUBE-SVL-"))
            .expect("an SVL rule");
        assert!(
            svl.ends_with(&sep_chain(
                "default/backend-svc:8080",
                &s.services[0].endpoints[0],
                8080
            )),
            "{svl}"
        );
        // A node gaining its first local endpoint keeps its DROP until the DNAT is in.
        let none = svc(&[(2, 1, true)], true);
        let steps = transition(&none, &s, 2);
        assert_eq!(steps.len(), 3, "{steps:?}");
        assert!(steps[0].contains("has no local endpoints"), "{}", steps[0]);
        assert!(!steps[2].contains("DROP"), "{}", steps[2]);
    }
}
