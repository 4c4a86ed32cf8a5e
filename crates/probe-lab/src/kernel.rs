//! The kernel settings of every lab namespace: stock Linux values by default, or the
//! tuned set that makes mechanisms easy to see.
//!
//! A namespace does not start from the host's settings alone: its ICMP limits are the
//! kernel's built-in defaults, but each interface's neighbour (ARP) parameters are copied
//! from the *host's* defaults when the interface is created. A host tuned for something
//! else would therefore leak into the lab. So the lab writes every setting that decides
//! which errno a client sees, explicitly, in every namespace, and each write below
//! carries its reason. The stock values are those a fresh `ip netns add` namespace shows
//! on Linux 6.x (and the values in the kernel's `ip-sysctl` and `arp(7)` documentation).
//!
//! What the two choices mean for a prober:
//!
//! - [`Kernel::Stock`]: a node answers at most about one ICMP error per second to one
//!   client, after a burst of six (`icmp_ratelimit=1000` ms per token, `icmp_ratemask`
//!   covering destination-unreachable). kube-proxy's `REJECT` is such an error, and so is
//!   the "host unreachable" a client's own stack raises when ARP fails. At 50 requests/s
//!   most refusals are therefore never sent: the SYN is dropped silently and the client
//!   retransmits it until its connect timeout. A client keeps a neighbour entry for 15-45
//!   s after its last confirmation (`base_reachable_time_ms=30000`), so "No route to host"
//!   for a withdrawn LoadBalancer address comes late. This is what a user's machines show.
//! - [`Kernel::Tuned`]: the node and the client send ICMP errors without limit, and the
//!   client's neighbour entries fail within about 1.5 s of the last answered traffic,
//!   with an ARP queue 20 times larger. Each mechanism then shows its own errno at any
//!   probe rate. Use it to demonstrate mechanisms, never to predict what users see.

use std::fmt;
use std::str::FromStr;

use crate::error::LabError;
use crate::netns::sysctls;

/// Which kernel settings the lab's namespaces run with.
///
/// ```
/// use probe_lab::Kernel;
/// assert_eq!(Kernel::default(), Kernel::Stock);
/// assert_eq!("tuned".parse::<Kernel>(), Ok(Kernel::Tuned));
/// assert_eq!(Kernel::Stock.to_string(), "stock");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kernel {
    /// Stock Linux values, written explicitly (the default): what a user's machines show.
    #[default]
    Stock,
    /// ICMP error limits lifted in the node and client, short client neighbour timers and
    /// a large ARP queue: every mechanism shows its own errno at any probe rate.
    Tuned,
}

impl Kernel {
    /// `"stock"` or `"tuned"` (report.json's `lab.kernel`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kernel::Stock => "stock",
            Kernel::Tuned => "tuned",
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kernel {
    type Err = String;

    fn from_str(s: &str) -> Result<Kernel, String> {
        match s.trim() {
            "stock" => Ok(Kernel::Stock),
            "tuned" => Ok(Kernel::Tuned),
            other => Err(format!(
                "unknown kernel setting \"{other}\": use stock or tuned"
            )),
        }
    }
}

/// Which namespace a set of settings is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The node: kube-proxy's REJECTs and the LoadBalancer's ARP answers come from here.
    Node,
    /// The client host of a LoadBalancer Service.
    Client,
    /// A pod.
    Pod,
}

/// One sysctl write (path under /proc/sys) and why the lab makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sysctl {
    pub key: String,
    pub value: String,
    pub why: &'static str,
}

fn set(key: impl Into<String>, value: impl ToString, why: &'static str) -> Sysctl {
    Sysctl {
        key: key.into(),
        value: value.to_string(),
        why,
    }
}

/// The ICMP error limits of one namespace.
fn icmp(kernel: Kernel, role: Role) -> Vec<Sysctl> {
    let lifted = kernel == Kernel::Tuned && matches!(role, Role::Node | Role::Client);
    if lifted {
        let why = "tuned: no ICMP error is withheld, so a REJECT or a failed ARP reaches \
                   the client as ECONNREFUSED/EHOSTUNREACH at any probe rate";
        return vec![
            set("net/ipv4/icmp_ratelimit", 0, why),
            set("net/ipv4/icmp_msgs_per_sec", 1_000_000, why),
            set("net/ipv4/icmp_msgs_burst", 1_000_000, why),
            set(
                "net/ipv4/icmp_ratemask",
                6168,
                "stock mask (which ICMP types are limited); moot with icmp_ratelimit=0",
            ),
        ];
    }
    vec![
        set(
            "net/ipv4/icmp_ratelimit",
            1000,
            "stock: one ICMP error per second per destination after a burst of 6, so a \
             fast prober gets most REJECTs as silent drops (connect timeouts)",
        ),
        set(
            "net/ipv4/icmp_ratemask",
            6168,
            "stock: the limit covers destination-unreachable, source-quench, time-exceeded \
             and parameter-problem",
        ),
        set(
            "net/ipv4/icmp_msgs_per_sec",
            1000,
            "stock: at most 1000 ICMP errors per second from this namespace in all",
        ),
        set(
            "net/ipv4/icmp_msgs_burst",
            50,
            "stock: burst of the namespace-wide ICMP error budget",
        ),
    ]
}

/// The neighbour (ARP) parameters of one interface.
fn neigh(kernel: Kernel, role: Role, iface: &str) -> Vec<Sysctl> {
    let k = |name: &str| format!("net/ipv4/neigh/{iface}/{name}");
    if kernel == Kernel::Tuned && role == Role::Client {
        return vec![
            set(
                k("base_reachable_time_ms"),
                500,
                "tuned: an entry stays REACHABLE 0.25-0.75 s, so a withdrawn LoadBalancer \
                 address fails within ~1.5 s instead of 15-45 s",
            ),
            set(
                k("delay_first_probe_time"),
                1,
                "tuned: a STALE entry in use is probed after 1 s (stock 5 s)",
            ),
            set(
                k("ucast_solicit"),
                0,
                "tuned: no unicast re-probes; an unconfirmed entry fails at once and is \
                 resolved afresh by broadcast, which a live node answers at once",
            ),
            set(
                k("mcast_solicit"),
                3,
                "stock: three broadcast requests, one per retrans_time: EHOSTUNREACH after ~3 s",
            ),
            set(
                k("retrans_time_ms"),
                1000,
                "stock: one second between ARP requests",
            ),
            set(
                k("unres_qlen_bytes"),
                4 << 20,
                "tuned: 4 MiB may wait for an ARP answer (stock 208 KiB), so SYNs of a fast \
                 prober are not dropped while an address resolves",
            ),
            set(
                k("gc_stale_time"),
                60,
                "stock: unused entries are collected after 60 s",
            ),
        ];
    }
    vec![
        set(
            k("base_reachable_time_ms"),
            30000,
            "stock: a confirmed entry stays REACHABLE for 15-45 s, so a client keeps \
             sending to a withdrawn address that long before ARP is asked again",
        ),
        set(
            k("delay_first_probe_time"),
            5,
            "stock: a STALE entry in use waits 5 s for a confirmation before probing",
        ),
        set(
            k("ucast_solicit"),
            3,
            "stock: three unicast probes before an entry fails",
        ),
        set(
            k("mcast_solicit"),
            3,
            "stock: three broadcast requests, one per retrans_time: EHOSTUNREACH after ~3 s",
        ),
        set(
            k("retrans_time_ms"),
            1000,
            "stock: one second between ARP requests",
        ),
        set(
            k("unres_qlen_bytes"),
            212_992,
            "stock: 208 KiB of packets may wait for an ARP answer; a fast prober's extra \
             SYNs are dropped and retransmitted",
        ),
        set(
            k("gc_stale_time"),
            60,
            "stock: unused entries are collected after 60 s",
        ),
    ]
}

/// Every write for a namespace of `role` whose ARP-speaking interfaces are `ifaces`.
pub(crate) fn settings(kernel: Kernel, role: Role, ifaces: &[&str]) -> Vec<Sysctl> {
    let mut v = icmp(kernel, role);
    for iface in ifaces {
        v.extend(neigh(kernel, role, iface));
    }
    v
}

/// Writes the settings of `role` into namespace `ns`.
pub(crate) fn apply(kernel: Kernel, role: Role, ns: &str, ifaces: &[&str]) -> Result<(), LabError> {
    let writes = settings(kernel, role, ifaces);
    let pairs: Vec<(&str, String)> = writes
        .iter()
        .map(|s| (s.key.as_str(), s.value.clone()))
        .collect();
    sysctls(ns, &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &[Sysctl], key: &str) -> String {
        v.iter()
            .find(|s| s.key == key)
            .map(|s| s.value.clone())
            .unwrap_or_else(|| panic!("no {key} in {v:?}"))
    }

    #[test]
    fn stock_is_linux_everywhere() {
        for role in [Role::Node, Role::Client, Role::Pod] {
            let v = settings(Kernel::Stock, role, &["eth0"]);
            assert_eq!(value(&v, "net/ipv4/icmp_ratelimit"), "1000");
            assert_eq!(value(&v, "net/ipv4/icmp_ratemask"), "6168");
            assert_eq!(value(&v, "net/ipv4/icmp_msgs_per_sec"), "1000");
            assert_eq!(value(&v, "net/ipv4/icmp_msgs_burst"), "50");
            let n = |k: &str| value(&v, &format!("net/ipv4/neigh/eth0/{k}"));
            assert_eq!(n("base_reachable_time_ms"), "30000");
            assert_eq!(n("delay_first_probe_time"), "5");
            assert_eq!(n("ucast_solicit"), "3");
            assert_eq!(n("mcast_solicit"), "3");
            assert_eq!(n("retrans_time_ms"), "1000");
            assert_eq!(n("unres_qlen_bytes"), "212992");
            assert_eq!(n("gc_stale_time"), "60");
            assert!(v.iter().all(|s| s.why.starts_with("stock")), "{v:?}");
        }
    }

    #[test]
    fn tuned_lifts_only_node_and_client() {
        let client = settings(Kernel::Tuned, Role::Client, &["eth0"]);
        assert_eq!(value(&client, "net/ipv4/icmp_ratelimit"), "0");
        assert_eq!(
            value(&client, "net/ipv4/neigh/eth0/base_reachable_time_ms"),
            "500"
        );
        let node = settings(Kernel::Tuned, Role::Node, &["lb0"]);
        assert_eq!(value(&node, "net/ipv4/icmp_ratelimit"), "0");
        assert_eq!(
            value(&node, "net/ipv4/neigh/lb0/base_reachable_time_ms"),
            "30000"
        );
        let pod = settings(Kernel::Tuned, Role::Pod, &["eth0"]);
        assert_eq!(pod, settings(Kernel::Stock, Role::Pod, &["eth0"]));
        for s in client.iter().chain(&node) {
            assert!(!s.why.is_empty());
        }
    }
}
