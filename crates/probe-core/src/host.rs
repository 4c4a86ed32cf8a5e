//! What the prober's own kernel will do to the errors it came to see.
//!
//! A client keeps a neighbour (ARP) entry REACHABLE for 15-45 s after its last
//! confirmation (`base_reachable_time_ms`, 30 s by default), so after a LoadBalancer
//! address is withdrawn it keeps sending SYNs into silence for that long before
//! "No route to host"; and a node answers one client with at most about one ICMP error
//! per second, so at more than one request per second most refusals arrive as connect
//! timeouts. At start, rollprobe reads the first setting for the interface the target is
//! routed through and says in one line what it means at the chosen rate. Linux only;
//! elsewhere, and for loopback targets, there is nothing to say.

use std::net::Ipv4Addr;

/// The interface that `/proc/net/route` (its text) sends `addr` through: the longest
/// matching prefix.
fn route_interface(routes: &str, addr: Ipv4Addr) -> Option<String> {
    let target = u32::from(addr);
    routes
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; addresses are
            // little-endian hex.
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            (target & mask == dest & mask).then(|| (mask.count_ones(), f[0].to_string()))
        })
        .max_by_key(|(prefix, _)| *prefix)
        .map(|(_, iface)| iface)
}

/// One line about what this host's kernel settings mean for a probe of `addr` at
/// `rate` requests per second, or `None` when they do not matter (loopback, a rate of
/// one per second or less, not Linux).
///
/// ```
/// assert_eq!(probe_core::host_kernel_note("127.0.0.1".parse().unwrap(), 50.0), None);
/// assert_eq!(probe_core::host_kernel_note("10.96.0.10".parse().unwrap(), 1.0), None);
/// ```
pub fn host_kernel_note(addr: Ipv4Addr, rate: f64) -> Option<String> {
    if addr.is_loopback() || rate <= 1.0 {
        return None;
    }
    let routes = std::fs::read_to_string("/proc/net/route").ok()?;
    let iface = route_interface(&routes, addr)?;
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/neigh/{iface}/{name}"))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let reachable_ms = read("base_reachable_time_ms")?;
    Some(note(&iface, reachable_ms, rate))
}

fn note(iface: &str, reachable_ms: u64, rate: f64) -> String {
    let secs = reachable_ms as f64 / 1000.0;
    format!(
        "at {rate} req/s, expect connect timeouts where a slower client would see errnos: a node answers one client with about one ICMP error per second, and this host ({iface}) keeps an address it has reached for {:.0}-{:.0} s (net.ipv4.neigh.{iface}.base_reachable_time_ms={reachable_ms}) before \"No route to host\"; the report's causes say when this happened",
        secs / 2.0,
        secs * 1.5
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
lb0\t00001FAC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

    #[test]
    fn the_longest_prefix_names_the_interface() {
        assert_eq!(
            route_interface(ROUTES, "172.31.254.10".parse().unwrap()).as_deref(),
            Some("lb0")
        );
        assert_eq!(
            route_interface(ROUTES, "192.168.0.7".parse().unwrap()).as_deref(),
            Some("eth0")
        );
        // Only the default route matches: still eth0.
        assert_eq!(
            route_interface(ROUTES, "10.96.0.10".parse().unwrap()).as_deref(),
            Some("eth0")
        );
        assert_eq!(
            route_interface("Iface\n", "10.0.0.1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn the_note_gives_the_reachable_range_and_the_setting() {
        let n = note("eth0", 30000, 50.0);
        assert!(n.contains("for 15-45 s"), "{n}");
        assert!(
            n.contains("net.ipv4.neigh.eth0.base_reachable_time_ms=30000"),
            "{n}"
        );
        assert!(!n.contains('\n'));
    }
}
