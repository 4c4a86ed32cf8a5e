//! kube-proxy (iptables mode) and a MetalLB-style L2 announcer, for the node namespace.
//!
//! The rules are written the way kube-proxy writes them, because the errno a client gets
//! is decided by exactly these rules:
//!
//! - `nat` `KUBE-SERVICES` matches each Service address and port and jumps to a per
//!   service-port chain `KUBE-SVC-<hash>`, which picks one endpoint chain
//!   `KUBE-SEP-<hash>` with `-m statistic --mode random --probability 1/n, 1/(n-1), ...`
//!   (the last one unconditionally), which DNATs to `podIP:targetPort`.
//! - A Service port with no ready endpoint gets a plain `REJECT` in the `filter` table
//!   (`KUBE-SERVICES` from OUTPUT and FORWARD, `KUBE-EXTERNAL-SERVICES` from INPUT and
//!   FORWARD for the load-balancer address): icmp-port-unreachable, so the client's
//!   `connect()` fails at once with ECONNREFUSED.
//!
//! The whole `nat` and `filter` tables of the node namespace are replaced atomically with
//! one `iptables-restore` per sync, as kube-proxy does. The node namespace belongs to the
//! lab, so replacing its tables touches nothing else.
//!
//! The L2 announcement is modelled by adding the external IP as a /32 on the node's
//! client-facing interface while the Service has a ready endpoint, and deleting it when it
//! has none. With the address present the node's kernel answers ARP for it (as MetalLB's
//! speaker does); without it nobody does, so the client's neighbour entry fails and its
//! `connect()` ends with EHOSTUNREACH ("No route to host"). No arptables or proxy_arp
//! are needed, and `ip -n NODE addr` shows what is announced. When an address is
//! announced again, the node sends a gratuitous ARP for it, as MetalLB's speaker does, so
//! a client still trying to resolve it learns the answer at once.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use crate::hash::fnv1a;

/// One Service as kube-proxy sees it at a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SvcRules {
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub external_ip: Option<Ipv4Addr>,
    /// (port, targetPort)
    pub ports: Vec<(u16, u16)>,
    /// Ready endpoint addresses, sorted.
    pub endpoints: Vec<Ipv4Addr>,
    /// The pod behind each endpoint (for the events of a node's sync).
    pub pods: Vec<String>,
}

/// Everything kube-proxy and the announcer act on, as of one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ProxyState {
    pub services: Vec<SvcRules>,
}

impl ProxyState {
    /// External IPs that should be announced (Services with at least one endpoint).
    pub fn announced(&self) -> Vec<Ipv4Addr> {
        self.services
            .iter()
            .filter(|s| !s.endpoints.is_empty())
            .filter_map(|s| s.external_ip)
            .collect()
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

/// Renders the `filter` and `nat` tables for `iptables-restore`.
pub(crate) fn render(state: &ProxyState) -> String {
    let mut filter = String::new();
    let mut nat_chains = String::new();
    let mut nat = String::new();
    for svc in &state.services {
        for &(port, target) in &svc.ports {
            let spn = format!("default/{}:{port}", svc.name);
            if svc.endpoints.is_empty() {
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
            let svc_chain = format!("KUBE-SVC-{}", chain_hash(&format!("{spn}/tcp")));
            let _ = writeln!(nat_chains, ":{svc_chain} - [0:0]");
            let _ = writeln!(
                nat,
                "-A KUBE-SERVICES -d {}/32 -p tcp -m comment --comment \"{spn} cluster IP\" -m tcp --dport {port} -j {svc_chain}",
                svc.cluster_ip
            );
            if let Some(ext) = svc.external_ip {
                let _ = writeln!(
                    nat,
                    "-A KUBE-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} loadbalancer IP\" -m tcp --dport {port} -j KUBE-MARK-MASQ"
                );
                let _ = writeln!(
                    nat,
                    "-A KUBE-SERVICES -d {ext}/32 -p tcp -m comment --comment \"{spn} loadbalancer IP\" -m tcp --dport {port} -j {svc_chain}"
                );
            }
            let n = svc.endpoints.len();
            for (i, ep) in svc.endpoints.iter().enumerate() {
                let sep = format!(
                    "KUBE-SEP-{}",
                    chain_hash(&format!("{spn}/tcp/{ep}:{target}"))
                );
                let _ = writeln!(nat_chains, ":{sep} - [0:0]");
                if i + 1 < n {
                    let p = 1.0 / (n - i) as f64;
                    let _ = writeln!(
                        nat,
                        "-A {svc_chain} -m comment --comment \"{spn} -> {ep}:{target}\" -m statistic --mode random --probability {p:.10} -j {sep}"
                    );
                } else {
                    let _ = writeln!(
                        nat,
                        "-A {svc_chain} -m comment --comment \"{spn} -> {ep}:{target}\" -j {sep}"
                    );
                }
                let _ = writeln!(
                    nat,
                    "-A {sep} -p tcp -m comment --comment \"{spn}\" -m tcp -j DNAT --to-destination {ep}:{target}"
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

/// The `iptables-restore` inputs that take a node's tables from `old` to `new`, in an
/// order in which no Service is ever left with neither its DNAT nor its `REJECT`.
///
/// kube-proxy hands both tables to one `iptables-restore`, which the nft backend commits
/// as one transaction; the legacy backend commits table by table, and a SYN that arrives
/// between the two commits, with the `REJECT` gone and the DNAT not there yet, is routed
/// un-NATed onto the bridge, waits ~3 s for an ARP answer no one gives and ends as "No
/// route to host" (its retransmissions follow its conntrack entry there too). So the lab
/// first writes `filter` with a `REJECT` for every Service that has no endpoint before
/// or after (harmless where a DNAT still rewrites the address), then `nat`, then the new
/// `filter`: each intermediate state is one a client could meet anyway.
pub(crate) fn transition(old: &ProxyState, new: &ProxyState) -> Vec<String> {
    let mut guard = new.clone();
    for svc in &mut guard.services {
        if old
            .services
            .iter()
            .any(|o| o.name == svc.name && o.endpoints.is_empty())
        {
            svc.endpoints.clear();
            svc.pods.clear();
        }
    }
    let tables = |state: &ProxyState| {
        let all = render(state);
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
    use super::*;

    fn svc(eps: &[Ipv4Addr]) -> ProxyState {
        ProxyState {
            services: vec![SvcRules {
                name: "backend-svc".into(),
                cluster_ip: Ipv4Addr::new(10, 96, 0, 10),
                external_ip: Some(Ipv4Addr::new(172, 31, 254, 10)),
                ports: vec![(8080, 8080)],
                endpoints: eps.to_vec(),
                pods: eps.iter().map(|ip| format!("pod-{ip}")).collect(),
            }],
        }
    }

    #[test]
    fn no_endpoints_is_a_plain_reject_and_no_announcement() {
        let s = svc(&[]);
        let r = render(&s);
        assert!(r.contains("-A KUBE-SERVICES -d 10.96.0.10/32 -p tcp -m comment --comment \"default/backend-svc:8080 has no endpoints\" -m tcp --dport 8080 -j REJECT"));
        assert!(r.contains("-A KUBE-EXTERNAL-SERVICES -d 172.31.254.10/32"));
        assert!(!r.contains("DNAT"));
        assert!(s.announced().is_empty());
    }

    #[test]
    fn no_step_of_a_sync_leaves_a_service_without_reject_or_dnat() {
        let ep = [Ipv4Addr::new(10, 244, 0, 2)];
        let (none, some) = (svc(&[]), svc(&ep));
        for (old, new) in [(&none, &some), (&some, &none)] {
            let steps = transition(old, new);
            // Replay the steps: which tables the node has after each.
            let (mut filter, mut nat) = (render(old), render(old));
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
        assert_eq!(transition(&some, &some).len(), 2);
    }

    #[test]
    fn endpoints_get_statistic_probabilities_like_kube_proxy() {
        let eps: Vec<Ipv4Addr> = (2..5).map(|i| Ipv4Addr::new(10, 244, 0, i)).collect();
        let s = svc(&eps);
        let r = render(&s);
        assert!(r.contains("--probability 0.3333333333 -j KUBE-SEP-"), "{r}");
        assert!(r.contains("--probability 0.5000000000 -j KUBE-SEP-"), "{r}");
        assert_eq!(r.matches("-m statistic").count(), 2);
        assert!(r.contains("-j DNAT --to-destination 10.244.0.4:8080"));
        assert!(!r.contains("REJECT"));
        assert_eq!(s.announced(), vec![Ipv4Addr::new(172, 31, 254, 10)]);
        // chain names stay within iptables' 28 character limit
        for line in r.lines().filter(|l| l.starts_with(':')) {
            let name = line[1..].split(' ').next().unwrap();
            assert!(name.len() <= 28, "{name}");
        }
    }
}
