//! kube-proxy's nftables mode: the `ip kube-proxy` table, as kube-proxy's nftables
//! proxier writes it.
//!
//! Dispatch is by verdict maps rather than one rule per Service:
//!
//! - `services` looks `ip daddr . meta l4proto . th dport` up in the `service-ips` map,
//!   whose elements `goto` a per service-port chain `service-<hash>-ns/name/tcp/port`
//!   (for the ClusterIP) or `external-<hash>-...` (for the LoadBalancer address). The
//!   service chain picks an endpoint with `numgen random mod N vmap { 0 : goto
//!   endpoint-..., ... }`; each endpoint chain does `dnat to podIP:port`.
//! - A Service with no endpoint is not in `service-ips` but in `no-endpoint-services`,
//!   checked from the filter hooks for new connections, whose verdict is `goto
//!   reject-chain` (`reject`: ICMP port unreachable, so ECONNREFUSED as in iptables
//!   mode). With `externalTrafficPolicy: Local`, a node without an endpoint of its own
//!   has `drop` there for the LoadBalancer address instead, and its `external-` chain
//!   only short-circuits pod and node traffic to the service chain.
//! - An address in the Service CIDR that no Service holds is dropped (`cluster-ips-check`:
//!   the `cluster-ips` set, then `drop` for the rest of the CIDR), so a client waits for
//!   its connect timeout where iptables mode would route the packet on and fail its ARP.
//!
//! Each sync is one `nft -f` transaction that adds, deletes and re-adds the table, so the
//! node goes from the old rules to the new ones at once (kube-proxy flushes and refills
//! its maps and chains in one transaction to the same effect). Chain names use the lab's
//! stable hash where kube-proxy uses SHA-256: only their shape is kube-proxy's.
//!
//! One deviation, the same as in iptables mode: marked traffic is masqueraded only when
//! it leaves for another node (`oifname "lb0"`). Traffic to a local pod keeps its
//! source, so this node's ICMP errors reach the client as they always did.

use std::fmt::Write as _;

use super::{chain_hash, Endpoint, ProxyState};
use crate::config::{POD_CIDR, SERVICE_CIDR};

/// The table's fixed part: what kube-proxy's `setupNFTables` writes (NodePort sets and
/// maps stay empty: the lab has no NodePort Services).
const BASE: &str = r#"add table ip kube-proxy
delete table ip kube-proxy
add table ip kube-proxy { comment "rules for kube-proxy" ; }

add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }

add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }

add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check

add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { SERVICE_CIDR } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading oifname "lb0" masquerade fully-random
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
"#;

/// kube-proxy's chain name base: 8 hash characters, then the name itself.
fn chain_base(name: &str) -> String {
    format!("{}-{name}", &chain_hash(name)[..8])
}

/// The `nft -f` input that makes node `node`'s (1-based) `ip kube-proxy` table `state`.
pub(crate) fn render(state: &ProxyState, node: usize) -> String {
    let mut out = BASE.replace("SERVICE_CIDR", SERVICE_CIDR);
    let t = "ip kube-proxy";
    for svc in &state.services {
        let cluster = svc.cluster_endpoints();
        let external = svc.external_endpoints(node);
        for (i, &(port, target)) in svc.ports.iter().enumerate() {
            let port_name = svc.port_names.get(i).map(String::as_str).unwrap_or("");
            let name = format!("default/{}/tcp/{port_name}", svc.name);
            let comment = svc.port_name(i);
            let base = chain_base(&name);
            let (svc_chain, ext_chain, local_chain) = (
                format!("service-{base}"),
                format!("external-{base}"),
                format!("local-{base}"),
            );
            let cip = svc.cluster_ip;
            let _ = writeln!(out, "\n# {comment}");
            // Every chain first: a verdict may only name a chain that exists.
            let reachable = svc.reachable(node);
            let mut rules = String::new();
            if !cluster.is_empty() {
                let _ = writeln!(out, "add chain {t} {svc_chain}");
                let _ = writeln!(rules, "add rule {t} {svc_chain} ip daddr {cip} ip saddr != {POD_CIDR} jump mark-for-masquerade");
                pick(&mut rules, &svc_chain, &name, target, &cluster);
            }
            if let (Some(_), false) = (svc.external_ip, cluster.is_empty()) {
                let _ = writeln!(out, "add chain {t} {ext_chain}");
                if svc.external_local {
                    let _ = writeln!(rules, "add rule {t} {ext_chain} ip saddr {POD_CIDR} goto {svc_chain} comment \"short-circuit pod traffic\"");
                    let _ = writeln!(rules, "add rule {t} {ext_chain} fib saddr type local jump mark-for-masquerade comment \"masquerade local traffic\"");
                    let _ = writeln!(rules, "add rule {t} {ext_chain} fib saddr type local goto {svc_chain} comment \"short-circuit local traffic\"");
                    if !external.is_empty() {
                        let _ = writeln!(out, "add chain {t} {local_chain}");
                        let _ = writeln!(rules, "add rule {t} {ext_chain} goto {local_chain}");
                        pick(&mut rules, &local_chain, &name, target, &external);
                    }
                } else {
                    let _ = writeln!(rules, "add rule {t} {ext_chain} jump mark-for-masquerade");
                    let _ = writeln!(rules, "add rule {t} {ext_chain} goto {svc_chain}");
                }
            }
            for ep in &reachable {
                let chain = endpoint_chain(&name, ep, target);
                let ip = ep.ip;
                let _ = writeln!(out, "add chain {t} {chain}");
                let _ = writeln!(
                    rules,
                    "add rule {t} {chain} ip saddr {ip} jump mark-for-masquerade"
                );
                let _ = writeln!(
                    rules,
                    "add rule {t} {chain} meta l4proto tcp dnat to {ip}:{target}"
                );
            }
            out.push_str(&rules);
            let _ = writeln!(out, "add element {t} cluster-ips {{ {cip} }}");
            if cluster.is_empty() {
                let _ = writeln!(out, "add element {t} no-endpoint-services {{ {cip} . tcp . {port} comment \"{comment}\" : goto reject-chain }}");
            } else {
                let _ = writeln!(
                    out,
                    "add element {t} service-ips {{ {cip} . tcp . {port} : goto {svc_chain} }}"
                );
            }
            if let Some(ext) = svc.external_ip {
                if !cluster.is_empty() {
                    let _ = writeln!(
                        out,
                        "add element {t} service-ips {{ {ext} . tcp . {port} : goto {ext_chain} }}"
                    );
                }
                if external.is_empty() {
                    let verdict = if cluster.is_empty() {
                        "goto reject-chain"
                    } else {
                        "drop"
                    };
                    let _ = writeln!(out, "add element {t} no-endpoint-services {{ {ext} . tcp . {port} comment \"{comment}\" : {verdict} }}");
                }
            }
        }
    }
    out
}

/// `endpoint-<hash>-ns/name/tcp/port__ip/port`: the chain that DNATs to one endpoint.
fn endpoint_chain(name: &str, ep: &Endpoint, target: u16) -> String {
    format!(
        "endpoint-{}",
        chain_base(&format!("{name}__{}/{target}", ep.ip))
    )
}

/// The rule of a service or local chain: `numgen random mod N` over endpoint chains.
fn pick(out: &mut String, chain: &str, name: &str, target: u16, eps: &[&Endpoint]) {
    let arms: Vec<String> = eps
        .iter()
        .enumerate()
        .map(|(i, ep)| format!("{i} : goto {}", endpoint_chain(name, ep, target)))
        .collect();
    let _ = writeln!(
        out,
        "add rule ip kube-proxy {chain} numgen random mod {} vmap {{ {} }}",
        eps.len(),
        arms.join(" , ")
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::svc;
    use super::*;

    /// The service part of a rendering (what follows the fixed part).
    fn services(out: &str) -> &str {
        out.strip_prefix(&BASE.replace("SERVICE_CIDR", SERVICE_CIDR))
            .expect("the fixed part comes first")
    }

    // Checked by hand against kube-proxy's own expectations (its nftables proxier test,
    // `TestOverallNFTablesRules`): the chain names' shape, the masquerade rules, one
    // `numgen` vmap per service chain, the map elements, and the verdicts.
    #[test]
    fn two_endpoints_render_as_kube_proxy_writes_them() {
        let s = svc(&[(2, 1, true), (3, 1, true)], false);
        let h = |n: &str| chain_hash(n)[..8].to_string();
        let svc_h = h("default/backend-svc/tcp/");
        let (e2, e3) = (
            h("default/backend-svc/tcp/__10.244.0.2/8080"),
            h("default/backend-svc/tcp/__10.244.0.3/8080"),
        );
        let expected = format!(
            r#"
# default/backend-svc
add chain ip kube-proxy service-{svc_h}-default/backend-svc/tcp/
add chain ip kube-proxy external-{svc_h}-default/backend-svc/tcp/
add chain ip kube-proxy endpoint-{e2}-default/backend-svc/tcp/__10.244.0.2/8080
add chain ip kube-proxy endpoint-{e3}-default/backend-svc/tcp/__10.244.0.3/8080
add rule ip kube-proxy service-{svc_h}-default/backend-svc/tcp/ ip daddr 10.96.0.10 ip saddr != 10.244.0.0/16 jump mark-for-masquerade
add rule ip kube-proxy service-{svc_h}-default/backend-svc/tcp/ numgen random mod 2 vmap {{ 0 : goto endpoint-{e2}-default/backend-svc/tcp/__10.244.0.2/8080 , 1 : goto endpoint-{e3}-default/backend-svc/tcp/__10.244.0.3/8080 }}
add rule ip kube-proxy external-{svc_h}-default/backend-svc/tcp/ jump mark-for-masquerade
add rule ip kube-proxy external-{svc_h}-default/backend-svc/tcp/ goto service-{svc_h}-default/backend-svc/tcp/
add rule ip kube-proxy endpoint-{e2}-default/backend-svc/tcp/__10.244.0.2/8080 ip saddr 10.244.0.2 jump mark-for-masquerade
add rule ip kube-proxy endpoint-{e2}-default/backend-svc/tcp/__10.244.0.2/8080 meta l4proto tcp dnat to 10.244.0.2:8080
add rule ip kube-proxy endpoint-{e3}-default/backend-svc/tcp/__10.244.0.3/8080 ip saddr 10.244.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-{e3}-default/backend-svc/tcp/__10.244.0.3/8080 meta l4proto tcp dnat to 10.244.0.3:8080
add element ip kube-proxy cluster-ips {{ 10.96.0.10 }}
add element ip kube-proxy service-ips {{ 10.96.0.10 . tcp . 8080 : goto service-{svc_h}-default/backend-svc/tcp/ }}
add element ip kube-proxy service-ips {{ 172.31.254.10 . tcp . 8080 : goto external-{svc_h}-default/backend-svc/tcp/ }}
"#
        );
        let out = render(&s, 1);
        assert_eq!(services(&out), expected);
        assert!(out.starts_with("add table ip kube-proxy\ndelete table ip kube-proxy\n"));
        assert!(out.contains(
            "ip daddr { 10.96.0.0/16 } drop comment \"Drop traffic to unallocated ClusterIPs\""
        ));
    }

    #[test]
    fn no_endpoints_rejects_both_addresses() {
        let out = render(&svc(&[], false), 1);
        let expected = "
# default/backend-svc
add element ip kube-proxy cluster-ips { 10.96.0.10 }
add element ip kube-proxy no-endpoint-services { 10.96.0.10 . tcp . 8080 comment \"default/backend-svc\" : goto reject-chain }
add element ip kube-proxy no-endpoint-services { 172.31.254.10 . tcp . 8080 comment \"default/backend-svc\" : goto reject-chain }
";
        assert_eq!(services(&out), expected);
    }

    #[test]
    fn local_policy_drops_on_a_node_without_its_own_endpoint() {
        let s = svc(&[(2, 2, true)], true);
        let node1 = render(&s, 1);
        assert!(node1.contains("add element ip kube-proxy no-endpoint-services { 172.31.254.10 . tcp . 8080 comment \"default/backend-svc\" : drop }"), "{node1}");
        assert!(!node1.contains("add chain ip kube-proxy local-"), "{node1}");
        assert!(
            node1.contains("comment \"short-circuit pod traffic\""),
            "{node1}"
        );
        // The ClusterIP still reaches the pod on node 2.
        assert!(node1.contains("dnat to 10.244.16.2:8080"), "{node1}");
        let node2 = render(&s, 2);
        assert!(!node2.contains(": drop }"), "{node2}");
        let local = node2
            .lines()
            .find(|l| l.starts_with("add rule ip kube-proxy local-"))
            .expect("a local chain");
        assert!(
            local.contains("numgen random mod 1 vmap { 0 : goto endpoint-"),
            "{local}"
        );
    }

    /// `nft -c -f` accepts every rendering, in a network namespace of its own (a check
    /// only, but it talks to a kernel: none of the host's rules are near it). Needs nft
    /// and `unshare`, and root; without them it says so and checks nothing.
    #[test]
    #[cfg_attr(
        not(netns_tests),
        ignore = "needs root, nft and ROLLPROBE_NETNS_TESTS=1"
    )]
    fn nft_accepts_every_rendering() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        for (state, node) in [
            (svc(&[(2, 1, true), (3, 2, false)], false), 1),
            (svc(&[], false), 1),
            (svc(&[(2, 2, true)], true), 1),
            (svc(&[(2, 2, true)], true), 2),
        ] {
            let text = render(&state, node);
            let mut child = Command::new("unshare")
                .args(["--net", "nft", "-c", "-f", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("unshare and nft are installed");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            let o = child.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "{}\n{text}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}
