//! The lab's fixed namespaces: the node (pod bridge, kube-proxy's tables, the
//! LoadBalancer's interface) and the client host on an L2 segment with it, each with the
//! lab's kernel settings.

use crate::config::{CLIENT_IP, NODE_BRIDGE_IP, NODE_CLIENT_IP, SERVICE_CIDR};
use crate::controller::Names;
use crate::kernel::{self, Kernel, Role};
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
