//! Failures that only a real network can produce, made by the real kernel in a
//! network namespace that the test creates (loopback only, no uplink: nothing
//! leaves the machine). Needs root, iproute2 and iptables.
//!
//! Run with ROLLPROBE_NETNS_TESTS=1 (as .ci/run does): then a namespace that
//! cannot be made fails the test loudly. Without it the test runner lists them as
//! ignored (probe-cli's build.rs sets the `netns_tests` cfg from that variable).

use std::process::Command;

/// A network namespace with only loopback, removed on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rpt-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns(name);
        sh(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.0];
        full.extend_from_slice(args);
        sh(&full);
    }

    fn rollprobe(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .arg(crate::support::ROLLPROBE)
            .args(args)
            .args(["--format", "json", "--quiet"])
            .output()
            .expect("ip netns exec runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("a JSON report")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn sh(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e} (needs root, iproute2, iptables)"));
    assert!(
        status.success(),
        "{args:?} failed: needs root, iproute2, iptables"
    );
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn host_unreachable_with_its_errno() {
    let ns = Netns::new("hu");
    // What a stale route to a gone host answers: ICMP host-unreachable.
    ns.exec(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-p",
        "tcp",
        "--dport",
        "9",
        "-j",
        "REJECT",
        "--reject-with",
        "icmp-host-unreachable",
    ]);
    let r = ns.rollprobe(&[
        "run",
        "http://127.0.0.1:9/",
        "--rate",
        "20",
        "--duration",
        "500ms",
    ]);
    assert_eq!(r["totals"]["sent"], 10, "{r}");
    assert_eq!(r["failures"]["host_unreachable"], 10, "{r}");
    let d = &r["failure_details"][0];
    assert_eq!(d["errno"], 113);
    assert_eq!(d["errno_name"], "EHOSTUNREACH");
    assert_eq!(d["message"], "No route to host");
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn network_unreachable_without_a_route() {
    let ns = Netns::new("nu");
    // The namespace has no route but loopback: the kernel refuses at once.
    let r = ns.rollprobe(&[
        "run",
        "http://10.255.0.1:80/",
        "--rate",
        "20",
        "--duration",
        "500ms",
    ]);
    assert_eq!(r["failures"]["network_unreachable"], 10, "{r}");
    assert_eq!(r["failure_details"][0]["errno_name"], "ENETUNREACH");
}
