//! The lab's fixed namespaces: the nodes (each with its pod bridge and range, its own
//! kube-proxy tables, and a client pod for `--from pod:N`), the LAN that joins the nodes
//! and the client host (a bridge in its own namespace, standing for the switch), each with
//! the lab's kernel settings; and the Service address pools.
//!
//! The pod network is routed, as a CNI such as flannel's host-gw or Calico without
//! encapsulation routes it: node N owns `10.244.(16·(N-1)).0/20` on its bridge and routes
//! every other node's range via that node's LAN address. MetalLB L2 needs the nodes and
//! the client on one L2 segment, so the same LAN carries both.

use std::net::Ipv4Addr;

use crate::config::{
    client_pod_ip, node_bridge_ip, node_lan_ip, node_pod_subnet, CLIENT_IP, CLIENT_SEGMENT,
    FIRST_CLUSTER_IP, FIRST_EXTERNAL_IP, POD_CIDR, SERVICE_CIDR,
};
use crate::controller::Desired;
use crate::controller::Names;
use crate::error::LabError;
use crate::kernel::{self, Kernel, Role};
use crate::manifest::ServiceType;
use crate::netns::{destroy_netns, ip_batch, run, sysctls};

pub(crate) fn build_network(kernel: Kernel, names: &Names) -> Result<(), LabError> {
    run("ip", &["netns", "add", &names.lan], None)?;
    run("ip", &["netns", "add", &names.client], None)?;
    ip_batch(
        Some(&names.lan),
        &[
            "link set lo up".into(),
            "link add sw0 type bridge forward_delay 0".into(),
            "link set sw0 up".into(),
            format!(
                "link add c0 type veth peer name eth0 netns {}",
                names.client
            ),
            "link set c0 master sw0 up".into(),
        ],
    )?;
    ip_batch(
        Some(&names.client),
        &[
            "link set lo up".into(),
            format!("addr add {CLIENT_IP}/24 dev eth0"),
            "link set eth0 up".into(),
        ],
    )?;
    kernel::apply(kernel, Role::Client, &names.client, &["eth0"])?;
    let count = names.nodes.len();
    for (i, ns) in names.nodes.iter().enumerate() {
        let node = i + 1;
        run("ip", &["netns", "add", ns], None)?;
        let mut lines = vec![
            "link set lo up".into(),
            "link add br0 type bridge forward_delay 0".into(),
            // A fixed MAC, as the CNI bridge plugin sets one: a bridge otherwise takes the
            // lowest MAC of its ports and changes it when pods come and go, and a pod
            // calling out (a client pod) keeps sending to its gateway's old MAC until its
            // neighbour entry fails ("No route to host").
            format!("link set br0 address 02:72:70:00:00:{node:02x}"),
            format!("addr add {}/20 dev br0", node_bridge_ip(node)),
            "link set br0 up".into(),
            // The ClusterIP range is routed onto the bridge; without it a client in the
            // node gets ENETUNREACH before NAT could act. No default route: no uplink.
            format!("route add {SERVICE_CIDR} dev br0"),
            format!(
                "link add lb0 type veth peer name n{node} netns {}",
                names.lan
            ),
            format!("addr add {}/24 dev lb0", node_lan_ip(node)),
            "link set lb0 up".into(),
        ];
        for other in (1..=count).filter(|o| *o != node) {
            lines.push(format!(
                "route add {} via {}",
                node_pod_subnet(other),
                node_lan_ip(other)
            ));
        }
        ip_batch(Some(ns), &lines)?;
        ip_batch(
            Some(&names.lan),
            &[format!("link set n{node} master sw0 up")],
        )?;
        // The node routes between the LAN and its pod bridge, as a node does; it sends
        // no ICMP redirects (a pod's traffic to a Service leaves by the bridge it came in).
        sysctls(
            ns,
            &[
                ("net/ipv4/ip_forward", "1".to_string()),
                ("net/ipv4/conf/all/send_redirects", "0".to_string()),
                ("net/ipv4/conf/br0/send_redirects", "0".to_string()),
            ],
        )?;
        // ARP is spoken on br0 (pods) and lb0 (the LAN).
        kernel::apply(kernel, Role::Node, ns, &["br0", "lb0"])?;
        // Start with kube-proxy's empty rule set (so `iptables-save` shows the chains).
        run(
            "ip",
            &["netns", "exec", ns, "iptables-restore"],
            Some(&crate::proxy::render_iptables(&Default::default(), 1)),
        )?;
        build_client_pod(kernel, names, node)?;
    }
    Ok(())
}

/// Node `node`'s client pod: a pod namespace on its bridge that runs no app, from which
/// `--from pod:N` probes a ClusterIP (service-to-service traffic).
fn build_client_pod(kernel: Kernel, names: &Names, node: usize) -> Result<(), LabError> {
    let ns = &names.client_pods[node - 1];
    let gw = node_bridge_ip(node);
    run("ip", &["netns", "add", ns], None)?;
    ip_batch(
        Some(&names.nodes[node - 1]),
        &[
            format!("link add vc0 type veth peer name eth0 netns {ns}"),
            "link set vc0 master br0 up".into(),
        ],
    )?;
    ip_batch(
        Some(ns),
        &[
            "link set lo up".into(),
            format!("addr add {}/20 dev eth0", client_pod_ip(node)),
            "link set eth0 up".into(),
            format!("route add {POD_CIDR} via {gw}"),
            format!("route add {CLIENT_SEGMENT} via {gw}"),
            format!("route add {SERVICE_CIDR} via {gw}"),
        ],
    )?;
    kernel::apply(kernel, Role::Pod, ns, &["eth0"])
}

pub(crate) fn destroy_fixed(names: &Names) -> Result<(), LabError> {
    let mut result = destroy_netns(&names.client);
    for ns in names
        .client_pods
        .iter()
        .chain(&names.nodes)
        .chain(std::iter::once(&names.lan))
    {
        result = result.and(destroy_netns(ns));
    }
    result
}

/// A Service's ClusterIP and (for a LoadBalancer) external address: the ones it asks
/// for if free, else the next free ones of the lab's pools.
pub(crate) fn allocate(
    d: &Desired,
    svc: &crate::manifest::Service,
) -> Result<(Ipv4Addr, Option<Ipv4Addr>), LabError> {
    let used_c: Vec<Ipv4Addr> = d.services.values().map(|s| s.cluster_ip).collect();
    let used_e: Vec<Ipv4Addr> = d.services.values().filter_map(|s| s.external_ip).collect();
    let cip = match svc.cluster_ip {
        Some(ip) => {
            let o = ip.octets();
            if o[0] != 10 || o[1] != 96 || used_c.contains(&ip) {
                return Err(LabError::Invalid(format!(
                    "service {}: clusterIP {ip} is not free in {SERVICE_CIDR}",
                    svc.name
                )));
            }
            ip
        }
        None => (0..60_000u32)
            .map(|i| Ipv4Addr::from(u32::from(FIRST_CLUSTER_IP) + i))
            .find(|ip| !used_c.contains(ip))
            .ok_or_else(|| LabError::Invalid("no free ClusterIP".into()))?,
    };
    let eip = if svc.service_type == ServiceType::LoadBalancer {
        Some(match svc.load_balancer_ip {
            Some(ip) => {
                let o = ip.octets();
                if o[..3] != [172, 31, 254] || !(10..=250).contains(&o[3]) || used_e.contains(&ip) {
                    return Err(LabError::Invalid(format!(
                        "service {}: loadBalancerIP {ip} is not free in the lab's pool 172.31.254.10-250",
                        svc.name
                    )));
                }
                ip
            }
            None => (0..241u32)
                .map(|i| Ipv4Addr::from(u32::from(FIRST_EXTERNAL_IP) + i))
                .find(|ip| !used_e.contains(ip))
                .ok_or_else(|| LabError::Invalid("no free LoadBalancer address".into()))?,
        })
    } else {
        None
    };
    Ok((cip, eip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::DesiredService;

    #[test]
    fn addresses_are_allocated_from_the_lab_ranges() {
        let svc = |name: &str, lb: bool| crate::manifest::Service {
            name: name.into(),
            selector: Default::default(),
            ports: vec![],
            service_type: if lb {
                ServiceType::LoadBalancer
            } else {
                ServiceType::ClusterIp
            },
            cluster_ip: None,
            load_balancer_ip: None,
            external_traffic_policy: Default::default(),
            health_check_node_port: None,
        };
        let mut d = Desired::default();
        let (c1, e1) = allocate(&d, &svc("a", true)).unwrap();
        assert_eq!((c1, e1), (FIRST_CLUSTER_IP, Some(FIRST_EXTERNAL_IP)));
        d.services.insert(
            "a".into(),
            DesiredService {
                spec: svc("a", true),
                cluster_ip: c1,
                external_ip: e1,
            },
        );
        let (c2, e2) = allocate(&d, &svc("b", false)).unwrap();
        assert_eq!(c2, Ipv4Addr::new(10, 96, 0, 11));
        assert_eq!(e2, None);
        let mut bad = svc("c", true);
        bad.load_balancer_ip = Some(Ipv4Addr::new(192, 168, 1, 1));
        assert!(allocate(&d, &bad).is_err());
    }
}
