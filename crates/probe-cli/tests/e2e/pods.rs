//! Which pod answered (`--pod-from header:x-pod-name`), counted exactly: three instances of
//! the demo's service share one loopback port (SO_REUSEPORT, the kernel spreads the fresh
//! connections), each counts the answers it wrote, and report.json's `pods` must give
//! the same count per pod.

use std::collections::BTreeMap;

use crate::support::ServiceInstance;
use crate::support::{read_json, rollprobe, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_from_header_counts_each_instances_answers_exactly() {
    let names = ["web-a", "web-b", "web-c"];
    let first = ServiceInstance::start_pod("127.0.0.1:0".parse().unwrap(), "v1", names[0], true)
        .await
        .unwrap();
    let addr = first.addr();
    let mut instances = vec![first];
    for name in &names[1..] {
        instances.push(
            ServiceInstance::start_pod(addr, "v1", name, true)
                .await
                .unwrap(),
        );
    }
    let dir = temp_dir("pods");
    let out = dir.join("run");
    let url = format!("http://{addr}/test/version");
    let args: Vec<String> = [
        "run",
        &url,
        "--duration",
        "2s",
        "--rate",
        "100",
        "--pod-from",
        "header:x-pod-name",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let o = tokio::task::spawn_blocking(move || rollprobe().args(&args).output().unwrap())
        .await
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The server's side: what each instance answered, by name.
    let mut answered = BTreeMap::new();
    for (name, instance) in names.iter().zip(instances) {
        let n = instance.stop().await;
        if n > 0 {
            answered.insert(name.to_string(), n);
        }
    }
    // The probe's side.
    let report = read_json(&out.join("report.json"));
    let pods = report["pods"].as_array().expect("report.json has pods");
    let counted: BTreeMap<String, u64> = pods
        .iter()
        .map(|p| {
            (
                p["pod"].as_str().unwrap().to_string(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted.len(), pods.len(), "a pod listed twice: {pods:?}");
    assert_eq!(counted, answered, "report.json pods vs the server's counts");
    assert!(
        answered.len() >= 2,
        "the kernel sent every connection to one instance: {answered:?}"
    );
    let ok = report["totals"]["ok"].as_u64().unwrap();
    assert_eq!(answered.values().sum::<u64>(), ok, "{report}");
    assert_eq!(ok, report["totals"]["sent"].as_u64().unwrap(), "{report}");
    for p in pods {
        assert_eq!(p["version"], "v1", "{p}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
