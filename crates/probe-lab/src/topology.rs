//! The lab's fixed namespaces: the node (pod bridge, kube-proxy's tables, the
//! LoadBalancer's interface) and the client host on an L2 segment with it, each with the
//! lab's kernel settings; and the Service address pools.

use std::net::Ipv4Addr;

use crate::config::{
    CLIENT_IP, FIRST_CLUSTER_IP, FIRST_EXTERNAL_IP, NODE_BRIDGE_IP, NODE_CLIENT_IP, SERVICE_CIDR,
};
use crate::controller::Desired;
use crate::controller::Names;
use crate::kernel::{self, Kernel, Role};
use crate::manifest::ServiceType;
use crate::netns::{destroy_netns, ip_batch, run, sysctls};
use crate::LabError;

pub(crate) fn build_network(kernel: Kernel, names: &Names) -> Result<(), LabError> {
    run("ip", &["netns", "add", &names.node], None)?;
    run("ip", &["netns", "add", &names.client], None)?;
    ip_batch(
        Some(&names.node),
        &[
            "link set lo up".into(),
            "link add br0 type bridge forward_delay 0".into(),
            format!("addr add {NODE_BRIDGE_IP}/16 dev br0"),
            "link set br0 up".into(),
            // The ClusterIP range is routed onto the bridge; without it a client in the
            // node gets ENETUNREACH before NAT could act. No default route: no uplink.
            format!("route add {SERVICE_CIDR} dev br0"),
            format!(
                "link add lb0 type veth peer name eth0 netns {}",
                names.client
            ),
            format!("addr add {NODE_CLIENT_IP}/24 dev lb0"),
            "link set lb0 up".into(),
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
    // The node routes between the client segment and the pod bridge, as a node does.
    sysctls(&names.node, &[("net/ipv4/ip_forward", "1".to_string())])?;
    // ARP is spoken on br0 (pods) and lb0 (the client segment); the client's on eth0.
    kernel::apply(kernel, Role::Node, &names.node, &["br0", "lb0"])?;
    kernel::apply(kernel, Role::Client, &names.client, &["eth0"])?;
    // Start with kube-proxy's empty rule set (so `iptables-save` shows the chains).
    run(
        "ip",
        &["netns", "exec", &names.node, "iptables-restore"],
        Some(&crate::proxy::render(&Default::default())),
    )?;
    Ok(())
}

pub(crate) fn destroy_fixed(names: &Names) -> Result<(), LabError> {
    let a = destroy_netns(&names.client);
    let b = destroy_netns(&names.node);
    a.and(b)
}

/// A Service's ClusterIP and (for a LoadBalancer) external address: the ones it asks
/// for if free, else the next free ones of the lab's pools.
pub(crate) fn allocate(
    d: &Desired,
    svc: &crate::manifest::Service,
) -> Result<(Ipv4Addr, Option<Ipv4Addr>), LabError> {
    let used_c: Vec<Ipv4Addr> = d.services.values().map(|(_, c, _)| *c).collect();
    let used_e: Vec<Ipv4Addr> = d.services.values().filter_map(|(_, _, e)| *e).collect();
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
        };
        let mut d = Desired::default();
        let (c1, e1) = allocate(&d, &svc("a", true)).unwrap();
        assert_eq!((c1, e1), (FIRST_CLUSTER_IP, Some(FIRST_EXTERNAL_IP)));
        d.services.insert("a".into(), (svc("a", true), c1, e1));
        let (c2, e2) = allocate(&d, &svc("b", false)).unwrap();
        assert_eq!(c2, Ipv4Addr::new(10, 96, 0, 11));
        assert_eq!(e2, None);
        let mut bad = svc("c", true);
        bad.load_balancer_ip = Some(Ipv4Addr::new(192, 168, 1, 1));
        assert!(allocate(&d, &bad).is_err());
    }
}
