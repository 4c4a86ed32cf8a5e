//! The `rollprobe` binary end to end, against real local servers.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::{closed_port, read_json, rollprobe, serve, temp_dir, Behaviour};

fn ok_server(version: &str) -> crate::support::TestServer {
    serve(Behaviour::Respond {
        status: 200,
        headers: vec![],
        body: version.to_string(),
    })
}

fn run(args: &[&str]) -> Output {
    rollprobe().args(args).output().expect("rollprobe runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn bad_input_is_one_line_and_exit_2_before_any_request() {
    let server = ok_server("v1");
    let url = server.url();
    let cases: Vec<Vec<&str>> = vec![
        vec!["run", "ftp://127.0.0.1:1/"],
        vec!["run", "not a url"],
        vec!["run", &url, "--rate", "0"],
        vec!["run", &url, "--rate", "lots"],
        vec!["run", &url, "--duration", "5 parsecs"],
        vec!["run", &url, "--timeout", "0s"],
        vec!["run", &url, "--max-failures", "no_such_kind=1"],
        vec!["run", &url, "--expect-status", "700"],
        vec!["run", &url, "--version-from", "xml:/a"],
        vec!["run", &url, "--connection", "sometimes"],
        vec!["run", &url, "--out", "/proc/rollprobe-cannot-write-here"],
        vec![
            "run",
            &url,
            "--duration",
            "1s",
            "--",
            "no-such-command-rollprobe",
        ],
        vec!["report", "/nonexistent/samples.csv"],
        vec!["compare", "/nonexistent/report.json"],
        vec!["frobnicate"],
        vec!["run", &url, "--watch", "pods/backend"],
        // No kubeconfig anywhere (see the environment below): no cluster to watch.
        vec![
            "run",
            &url,
            "--watch",
            "deployment/backend",
            "--duration",
            "1s",
        ],
        vec![
            "matrix",
            "--deployment",
            "backend",
            "--case",
            "rolling:0/0",
            "--out",
            "/tmp/x",
        ],
        vec![
            "matrix",
            "--deployment",
            "backend",
            "--case",
            "recreate",
            "--out",
            "/tmp/x",
        ],
        vec!["lab", "-f", "/nonexistent.yaml", "--set-image", "a=b"],
    ];
    let no_kube = temp_dir("no-kube");
    for args in cases {
        let o = rollprobe()
            .args(&args)
            .env("HOME", &no_kube)
            .env("KUBECONFIG", no_kube.join("missing-config"))
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .expect("rollprobe runs");
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(
            err.lines().count(),
            1,
            "{args:?} printed more than one line: {err}"
        );
        assert!(err.starts_with("rollprobe: "), "{args:?}: {err}");
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(
        server.accepted.load(Ordering::SeqCst),
        0,
        "a request was sent"
    );
}

#[test]
fn a_trigger_is_wrapped_in_warmup_and_settle_and_recorded() {
    let server = ok_server("v1");
    let dir = temp_dir("trigger");
    let out = dir.join("run");
    let o = run(&[
        "run",
        &server.url(),
        "--rate",
        "50",
        "--warmup",
        "400ms",
        "--settle",
        "400ms",
        "--label",
        "triggered",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--",
        "sh",
        "-c",
        "sleep 0.4; exit 3",
    ]);
    // A trigger that exits non-zero fails the gate: the rollout did not happen as asked.
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let report = read_json(&out.join("report.json"));
    assert_eq!(printed, report);
    assert_eq!(report["schema"], "rollprobe.report/v1");
    assert_eq!(report["label"], "triggered");
    assert_eq!(report["interrupted"], false);
    let events = report["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["trigger_start", "trigger_exit"]);
    assert_eq!(events[0]["detail"], "sh -c sleep 0.4; exit 3");
    assert_eq!(events[1]["detail"], "exit code 3");
    let start = events[0]["at_ms"].as_f64().unwrap();
    let exit = events[1]["at_ms"].as_f64().unwrap();
    assert!((350.0..700.0).contains(&start), "warm-up: {start}");
    assert!(
        (exit - start) >= 390.0,
        "the trigger ran {} ms",
        exit - start
    );
    let duration = report["duration_ms"].as_f64().unwrap();
    assert!(duration - exit >= 390.0, "settle: {}", duration - exit);
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(phases, ["before", "during", "after"]);
    assert_eq!(report["totals"]["failed"], 0);
    assert_eq!(report["versions"][0]["version"], "v1");
    for f in ["samples.csv", "events.csv", "windows.csv", "report.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn report_rebuilds_the_same_report_from_samples() {
    use crate::support::ServiceInstance;
    let dir = temp_dir("rebuild");
    let v1 = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let addr = v1.addr();
    let probe = probe_core::Probe::builder(&format!("http://{addr}/test/version"))
        .rate(100)
        .label("rebuild")
        .out_dir(&dir)
        .start()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    probe.event("trigger_start", "redeploy");
    v1.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v2 = ServiceInstance::start(addr, "v2", false).await.unwrap();
    probe.event("trigger_exit", "exit code 0");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let live = probe.stop().await.unwrap();
    v2.stop().await;
    assert!(
        live.totals.failed > 0 && live.versions.len() == 2,
        "{}",
        live.summary()
    );

    let o = run(&[
        "report",
        dir.join("samples.csv").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let rebuilt: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rebuilt, read_json(&dir.join("report.json")));
    let text = run(&["report", dir.join("samples.csv").to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&text.stdout), live.summary());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compare_prints_one_row_per_run_in_three_formats() {
    let server = ok_server("v1");
    let dir = temp_dir("compare");
    let closed = closed_port();
    let refused_url = format!("http://127.0.0.1:{}/", closed.port);
    for (label, url) in [("good", server.url()), ("bad", refused_url)] {
        let out = dir.join(label);
        let o = run(&[
            "run",
            &url,
            "--rate",
            "20",
            "--duration",
            "300ms",
            "--label",
            label,
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let reports = [dir.join("good/report.json"), dir.join("bad/report.json")];
    let paths: Vec<&str> = reports.iter().map(|p| p.to_str().unwrap()).collect();
    let text = run(&[&["compare"][..], &paths].concat());
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    // The table (header and a row per run), then the recommendation line that the
    // JSON and the html page have too: one run each, and only "good" lost nothing.
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[3].starts_with("recommendation: good"), "{text}");
    assert!(
        lines[0].starts_with("label") && lines[0].contains("connection_refused"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("good") && lines[2].starts_with("bad"),
        "{text}"
    );

    let csv = run(&[&["compare", "--format", "csv"][..], &paths].concat());
    let csv = String::from_utf8_lossy(&csv.stdout).to_string();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let bad: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    let col = header
        .iter()
        .position(|h| *h == "connection_refused")
        .unwrap();
    assert_eq!(bad[0], "bad");
    assert_eq!(bad[col], "6", "{csv}");

    let json = run(&[&["compare", "--format", "json"][..], &paths].concat());
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 2);
    assert_eq!(json["rows"][1]["failed"], 6);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn thresholds_exit_1_and_say_which() {
    let closed = closed_port();
    let url = format!("http://127.0.0.1:{}/", closed.port);
    let base = [
        "run",
        &url,
        "--rate",
        "20",
        "--duration",
        "300ms",
        "--quiet",
    ];
    let o = run(&[&base[..], &["--max-failures", "0"]].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("6 requests failed, more than --max-failures 0"),
        "{}",
        stderr(&o)
    );
    let o = run(&[&base[..], &["--max-failures", "connection_refused=2"]].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o)
        .contains("with connection_refused, more than --max-failures connection_refused=2"));
    let o = run(&[&base[..], &["--max-failures", "connection_reset=0"]].concat());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = run(&[&base[..], &["--max-downtime", "100ms"]].concat());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--max-downtime 100 ms"),
        "{}",
        stderr(&o)
    );
    let o = run(&[&base[..], &["--max-downtime", "10s"]].concat());
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn marks_from_stdin_land_on_the_timeline() {
    let server = ok_server("v1");
    let mut child = rollprobe()
        .args([
            "run",
            &server.url(),
            "--rate",
            "20",
            "--duration",
            "800ms",
            "--marks-stdin",
            "--format",
            "json",
            "--quiet",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"kubectl apply done\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let e = &report["events"][0];
    assert_eq!(e["kind"], "mark");
    assert_eq!(e["detail"], "kubectl apply done");
    assert!(e["at_ms"].as_f64().unwrap() > 200.0);
}

#[test]
fn ctrl_c_stops_cleanly_and_says_interrupted() {
    let server = ok_server("v1");
    let dir = temp_dir("ctrlc");
    let child = rollprobe()
        .args([
            "run",
            &server.url(),
            "--rate",
            "50",
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let report = read_json(&dir.join("report.json"));
    assert_eq!(report["interrupted"], true);
    assert!(report["totals"]["sent"].as_u64().unwrap() >= 25);
    assert!(String::from_utf8_lossy(&o.stdout).contains("interrupted"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `rollprobe run` against `server` at `rate` into `dir`, and SIGKILLs it after
/// 2.5 s.
fn kill_a_run_after_2500_ms(server: &crate::support::TestServer, rate: &str, dir: &Path) {
    let mut child = rollprobe()
        .args([
            "run",
            &server.url(),
            "--rate",
            rate,
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_killed_slow_run_keeps_the_samples_of_its_finished_requests() {
    // One tick every 4 s: the first request ends within milliseconds, and its sample
    // must be on disk within a second, not when the next tick comes.
    let server = ok_server("v1");
    let dir = temp_dir("killed-slow");
    kill_a_run_after_2500_ms(&server, "0.25", &dir);
    let rows = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    assert_eq!(rows.lines().count(), 2, "header and one sample:\n{rows}");
    assert!(rows.lines().nth(1).unwrap().contains(",ok,"), "{rows}");
}

#[test]
fn a_killed_run_keeps_its_samples() {
    let server = ok_server("v1");
    let dir = temp_dir("killed");
    kill_a_run_after_2500_ms(&server, "100", &dir);
    assert!(!dir.join("report.json").exists());
    let o = run(&[
        "report",
        dir.join("samples.csv").to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    // At most the last second is lost.
    assert!(
        report["totals"]["sent"].as_u64().unwrap() >= 140,
        "{report}"
    );
    assert_eq!(report["totals"]["failed"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn running_out_of_file_descriptors_is_local_and_not_downtime() {
    let server = serve(Behaviour::NeverAnswer);
    let mut cmd = rollprobe();
    cmd.args([
        "run",
        &server.url(),
        "--rate",
        "200",
        "--duration",
        "500ms",
        "--timeout",
        "1s",
        "--format",
        "json",
        "--quiet",
    ]);
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 32,
                rlim_max: 32,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    // Mostly the prober's own failures: the report is written, and says it is not a
    // valid measurement (exit 3), whatever the gates.
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a valid measurement"),
        "{}",
        stderr(&o)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["valid"], false);
    let local = report["totals"]["local"].as_u64().unwrap();
    assert!(local > 0, "{report}");
    assert_eq!(report["failures"]["local_emfile"].as_u64(), Some(local));
    for w in report["downtime"]["windows"].as_array().unwrap() {
        assert!(w["kinds"].get("local_emfile").is_none(), "{w}");
    }
    let sent = report["totals"]["sent"].as_u64().unwrap();
    let ok = report["totals"]["ok"].as_u64().unwrap();
    let failed = report["totals"]["failed"].as_u64().unwrap();
    assert_eq!(ok + failed + local, sent);
}

#[test]
fn demo_shows_recreate_refusing_and_rolling_not() {
    let dir = temp_dir("demo");
    let o = run(&["demo", "--quiet", "--out", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Comparison"), "{stdout}");
    let recreate = read_json(&dir.join("recreate/report.json"));
    let rolling = read_json(&dir.join("rolling/report.json"));
    let refused = recreate["failures"]["connection_refused"].as_u64().unwrap();
    // 1.5 s of startup delay at 200 req/s.
    assert!((240..=360).contains(&refused), "{recreate}");
    let down = recreate["downtime"]["total_ms"].as_f64().unwrap();
    assert!((1200.0..=2000.0).contains(&down), "{down}");
    let rolling_down = rolling["downtime"]["total_ms"].as_f64().unwrap();
    assert!(rolling_down < 100.0, "rolling lost {rolling_down} ms");
    for r in [&recreate, &rolling] {
        let versions: Vec<&str> = r["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v1", "v2"]);
    }
    assert!(rolling["mixed_ms"].as_f64().unwrap() > 0.0);
    // The demo reads `x-pod-name`: each instance is a pod of the report.
    for r in [&recreate, &rolling] {
        let pods: Vec<&str> = r["pods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pod"].as_str().unwrap())
            .collect();
        assert_eq!(pods, ["demo-v1", "demo-v2"], "{r}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
