//! `rollprobe lab --proxy-mode`: IPVS, and nftables mode without `nft`, are refused with
//! their reason before anything runs, and a Service scaled to zero fails with the same
//! kinds in nftables mode as in iptables mode, as the binary measures and names them.
//! The lab runs need root, iproute2, iptables and nft (ROLLPROBE_NETNS_TESTS=1).

use std::collections::BTreeSet;

#[test]
fn ipvs_is_refused_in_one_line_naming_the_missing_kernel_support() {
    let manifest = format!("{}/examples/seed/rolling.yaml", crate::support::REPO);
    let out = crate::support::rollprobe()
        .args(["lab", "-f", &manifest, "--proxy-mode", "ipvs"])
        .args(["--step", "wait:1s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("--proxy-mode") && first.contains("CONFIG_IP_VS"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn nftables_mode_without_nft_is_one_line_naming_the_package() {
    let manifest = format!("{}/examples/seed/rolling.yaml", crate::support::REPO);
    let empty = crate::support::temp_dir("no-nft");
    let out = crate::support::rollprobe()
        .env("PATH", &empty)
        .args(["lab", "-f", &manifest, "--proxy-mode", "nftables"])
        .args(["--step", "wait:1s"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("nftables package"), "{stderr}");
}

/// The failure kinds of one run from node 1 against the seed's rolling.yaml Service (one
/// pod, quick to start) scaled to zero, in `mode`, on tuned kernels (no ICMP rate limit,
/// so every refusal shows as one).
fn kinds_when_scaled_to_zero(mode: &str) -> BTreeSet<String> {
    let yaml = std::fs::read_to_string(format!(
        "{}/examples/seed/rolling.yaml",
        crate::support::REPO
    ))
    .unwrap()
    .replacen("replicas: 2", "replicas: 1", 1)
    .replacen("minReadySeconds: 10", "minReadySeconds: 0", 1)
    .replacen(
        "        image: shop/backend:v1\n",
        "        image: shop/backend:v1\n        env:\n        - {name: STARTUP_DELAY_MS, value: \"300\"}\n",
        1,
    );
    let dir = crate::support::temp_dir(&format!("proxy-mode-{mode}"));
    let manifest = dir.join("rolling.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let out = crate::support::rollprobe()
        .args(["lab", "-f", manifest.to_str().unwrap()])
        .args(["--proxy-mode", mode, "--kernel", "tuned", "--from", "node"])
        .args(["--step", "scale:backend-deployment=0", "--step", "wait:2s"])
        .args(["--rate", "50", "--warmup", "1s", "--settle", "1s"])
        .args(["--quiet", "--format", "json"])
        .args(["--out", dir.join("run").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{mode}: {stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The report says which rules the requests went through, the file as the output.
    assert_eq!(report["lab"]["proxy_mode"], mode, "{}", report["lab"]);
    let written = crate::support::read_json(&dir.join("run").join("report.json"));
    assert_eq!(written["lab"], report["lab"]);
    let _ = std::fs::remove_dir_all(&dir);
    report["failures"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64().unwrap_or(0) > 0)
        .map(|(k, _)| k.clone())
        .collect()
}

#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn a_service_without_endpoints_is_refused_in_both_modes() {
    // The two labs run side by side: each has its own namespaces.
    let nft = std::thread::spawn(|| kinds_when_scaled_to_zero("nftables"));
    let ipt = kinds_when_scaled_to_zero("iptables");
    let nft = nft.join().unwrap();
    for (mode, kinds) in [("iptables", &ipt), ("nftables", &nft)] {
        assert!(kinds.contains("connection_refused"), "{mode}: {kinds:?}");
        for never in ["connect_timeout", "host_unreachable"] {
            assert!(!kinds.contains(never), "{mode}: {kinds:?}");
        }
    }
}
