//! Summaries that are true (issue 24, case 10): a lone samples.csv is reported, marks
//! show in the summary and under the strip, the mixed-versions sentence says what
//! really overlapped, Kubernetes words only with cluster events, "nothing ever
//! answered" when nothing did, and the demo measured through `Rollout` with typed
//! events. Every run probes real servers on loopback, for a second or two.

use std::io::Write;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::{closed_port, read_json, rollprobe, serve, temp_dir, Behaviour};
use crate::support::{ServiceInstance, TestServer};

fn ok_server(version: &str) -> TestServer {
    serve(Behaviour::Respond {
        status: 200,
        headers: vec![],
        body: version.to_string(),
    })
}

fn run(args: &[&str]) -> Output {
    rollprobe().args(args).output().expect("rollprobe runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// `rollprobe run URL` for `duration` at 20 req/s into `out`, plus `extra` arguments.
fn probe(url: &str, duration: &str, out: &Path, extra: &[&str]) -> Output {
    let base = [
        "run",
        url,
        "--rate",
        "20",
        "--duration",
        duration,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    run(&[&base[..], extra].concat())
}

#[test]
fn report_reads_a_lone_samples_csv_and_says_what_it_inferred() {
    let server = ok_server("v1");
    let dir = temp_dir("summaries-lone");
    let o = probe(&server.url(), "1s", &dir.join("run"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    // Only samples.csv, as copied off a CI runner.
    let solo = dir.join("solo");
    std::fs::create_dir_all(&solo).unwrap();
    std::fs::copy(dir.join("run/samples.csv"), solo.join("samples.csv")).unwrap();
    let samples = solo.join("samples.csv");
    let recorded = read_json(&dir.join("run/run.json"));

    let o = run(&["report", samples.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let summary = text(&o.stdout);
    assert!(
        summary.starts_with("rollprobe run: (target unknown)  (fresh, 20 req/s,"),
        "{summary}"
    );
    let missing = solo.join("run.json");
    assert!(
        summary.contains(&format!(
            "warning: {} was missing: inferred from the rows the rate (local-fresh 20 req/s",
            missing.display()
        )),
        "{summary}"
    );

    let o = run(&["report", samples.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["config"]["rate"], 20.0);
    assert_eq!(report["target"], "");
    // The start is the run's own, to the millisecond it was written with.
    assert_eq!(report["started_at"], recorded["started_at"]);
    assert_eq!(report["totals"]["sent"], 20);
    let warning = report["warnings"][0].as_str().unwrap();
    assert!(warning.contains("the target"), "{warning}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn marks_from_stdin_are_listed_and_marked_under_the_timeline() {
    let server = ok_server("v1");
    let dir = temp_dir("summaries-marks");
    let out = dir.join("run");
    let mut child = rollprobe()
        .args([
            "run",
            &server.url(),
            "--rate",
            "20",
            "--duration",
            "2s",
            "--quiet",
            "--marks-stdin",
            "--out",
            out.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"scaled to zero\n").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let summary = text(&o.stdout);
    let lines: Vec<&str> = summary.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "Marks")
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(lines[at + 1].starts_with("  1  +"), "{summary}");
    assert!(lines[at + 1].ends_with("  scaled to zero"), "{summary}");
    let strip = lines.iter().position(|l| l.starts_with("  [")).unwrap();
    let under = lines[strip + 1];
    assert_eq!(under.trim(), "1", "{summary}");
    // Under its time: 0.5 s or a little later, of a 2 s strip.
    let report = read_json(&out.join("report.json"));
    let bucket = report["timeline"]["bucket_ms"].as_f64().unwrap();
    let mark = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "mark")
        .unwrap();
    let column = 3 + (mark["at_ms"].as_f64().unwrap() / bucket) as usize;
    assert_eq!(under.find('1'), Some(column), "{summary}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mixed_sentence_ends_where_the_new_version_stopped() {
    // v1 serves alone, then v2 beside it on the same port (SO_REUSEPORT) from +0.3 s
    // to +1.0 s (a rollout rolled back), and v1 serves on.
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", true)
        .await
        .unwrap();
    let addr = v1.addr();
    let dir = temp_dir("summaries-mixed");
    let out = dir.join("run");
    let url = format!("http://{addr}/test/version");
    let args: Vec<String> = [
        "run",
        &url,
        "--rate",
        "50",
        "--duration",
        "2500ms",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec();
    let probing = tokio::task::spawn_blocking(move || rollprobe().args(&args).output().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v2 = ServiceInstance::start(addr, "v2", true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    v2.stop().await;
    let o = probing.await.unwrap();
    v1.stop().await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report = read_json(&out.join("report.json"));
    let versions = report["versions"].as_array().unwrap();
    let last = |v: &str| {
        versions
            .iter()
            .find(|x| x["version"] == v)
            .unwrap_or_else(|| panic!("{report}"))["last_ms"]
            .as_f64()
            .unwrap()
    };
    let (v1_last, v2_last) = (last("v1"), last("v2"));
    assert!(v2_last < 1500.0 && v1_last > 2000.0, "{report}");
    let mixed = &report["mixed"];
    assert_eq!(mixed["end_ms"].as_f64(), Some(v2_last.min(v1_last)));
    let summary = text(&o.stdout);
    let line = summary
        .lines()
        .find(|l| l.trim_start().starts_with("mixed"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(
        (mixed["old"].as_str(), mixed["new"].as_str()),
        (Some("v1"), Some("v2"))
    );
    assert!(
        line.contains("; then v2 answered no more, and v1 answered until +"),
        "{line}"
    );
    assert!(line.contains("v1 and v2 both answered from +"), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_dead_port_says_nothing_ever_answered_with_plain_hints() {
    let closed = closed_port();
    let url = format!("http://127.0.0.1:{}/", closed.port);
    let dir = temp_dir("summaries-dead");
    let out = dir.join("run");
    let o = probe(&url, "500ms", &out, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let summary = text(&o.stdout);
    assert!(
        summary.contains("warning: nothing ever answered: none of the 10 requests succeeded (mostly connection_refused)"),
        "{summary}"
    );
    assert!(summary.contains("check the host and port"), "{summary}");
    // No cluster took part: no kube-proxy, endpoint or pod to blame.
    let failures = summary
        .lines()
        .find(|l| l.trim_start().starts_with("connection_refused"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(
        failures.contains("nothing listened on that port"),
        "{failures}"
    );
    for word in ["kube", "endpoint", "pod", "readinessProbe"] {
        assert!(!summary.contains(word), "{word}: {summary}");
    }
    let report = read_json(&out.join("report.json"));
    let warnings = report["warnings"].as_array().unwrap();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("nothing ever answered")),
        "{report}"
    );
    assert!(
        !report["failure_details"][0]["hint"]
            .as_str()
            .unwrap()
            .contains("kube"),
        "{report}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_healthy_run_has_no_nothing_answered_warning() {
    let server = ok_server("v1");
    let dir = temp_dir("summaries-healthy");
    let o = probe(&server.url(), "500ms", &dir.join("run"), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("nothing ever answered"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_demo_is_measured_through_rollout_with_typed_events() {
    let dir = temp_dir("summaries-demo");
    let o = run(&["demo", "--quiet", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for (case, order) in [
        (
            "recreate",
            [
                "trigger_start",
                "instance_stopped",
                "instance_listening",
                "trigger_exit",
            ],
        ),
        (
            "rolling",
            [
                "trigger_start",
                "instance_listening",
                "instance_stopped",
                "trigger_exit",
            ],
        ),
    ] {
        let report = read_json(&dir.join(case).join("report.json"));
        // Rollout records how the trigger ended; the old demo's string events did not.
        assert_eq!(report["trigger"]["outcome"], "succeeded", "{report}");
        let kinds: Vec<&str> = report["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, order, "{case}");
        // The phases come from the trigger's events.
        let phases: Vec<&str> = report["phases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(phases, ["before", "during", "after"], "{case}");
    }
    let stdout = text(&o.stdout);
    // The comparison ends with its recommendation, as compare's text now does.
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("recommendation: "), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}
