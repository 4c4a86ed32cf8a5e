//! The verdict of `rollprobe run` must not say something false about the rollout: a
//! trigger that failed or was cut short fails the gate, `--format json` keeps stdout to
//! the one document whatever the trigger prints, and `--out` never overwrites an
//! earlier run's samples. Each test runs the real binary against a real loopback server.

use std::path::Path;
use std::process::Output;

use crate::support::{read_json, serve, temp_dir, Behaviour, TestServer};

/// A loopback HTTP server that answers every request `200 v1`.
fn server() -> TestServer {
    serve(Behaviour::Respond {
        status: 200,
        headers: Vec::new(),
        body: "v1".into(),
    })
}

fn rollprobe(args: &[&str]) -> Output {
    crate::support::rollprobe()
        .args(args)
        .output()
        .expect("run rollprobe")
}

fn report_json(dir: &Path) -> serde_json::Value {
    read_json(&dir.join("report.json"))
}

const QUICK: [&str; 6] = ["--rate", "20", "--warmup", "300ms", "--settle", "300ms"];

#[test]
fn a_trigger_that_fails_fails_the_gate_in_the_summary_junit_and_report() {
    let server = server();
    let url = server.url();
    let dir = temp_dir("verdict-failed");
    let junit = dir.join("junit.xml");
    let out = dir.join("run");
    let mut args = vec!["run", &url, "-q", "--max-failures", "0"];
    args.extend(QUICK);
    let (junit_s, out_s) = (junit.to_str().unwrap(), out.to_str().unwrap());
    args.extend(["--junit", junit_s, "--out", out_s, "--"]);
    args.extend([
        "sh",
        "-c",
        "echo 'error: deployments.apps \"web\" not found' >&2; exit 1",
    ]);
    let o = rollprobe(&args);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("TRIGGER FAILED") && stdout.contains("exit code 1"),
        "{stdout}"
    );
    assert!(
        stderr.contains("rollprobe: the trigger failed:"),
        "{stderr}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let case = xml
        .split("<testcase")
        .find(|c| c.contains("name=\"trigger\""))
        .unwrap_or_else(|| panic!("no trigger testcase in {xml}"));
    assert!(case.contains("<failure"), "{case}");
    let trigger = &report_json(&out)["trigger"];
    assert_eq!(trigger["outcome"], "failed");
    assert_eq!(trigger["exit_code"], 1);
    assert_eq!(
        trigger["stderr_tail"],
        "error: deployments.apps \"web\" not found"
    );
    // The verdict is rebuilt from the recorded run.
    let rebuilt = rollprobe(&["report", out_s, "--format", "json"]);
    let rebuilt: serde_json::Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(&rebuilt["trigger"], trigger);
}

#[test]
fn a_trigger_killed_by_the_duration_fails_the_gate() {
    let server = server();
    let url = server.url();
    let o = rollprobe(&[
        "run",
        &url,
        "-q",
        "--rate",
        "20",
        "--warmup",
        "300ms",
        "--duration",
        "1500ms",
        "--max-failures",
        "0",
        "--format",
        "json",
        "--",
        "sleep",
        "100",
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(report["trigger"]["outcome"], "killed_by_duration");
    assert_eq!(report["trigger"]["killed_by"], "duration");
    // A run cut at its duration is not shorter than asked, and not much longer.
    let ms = report["duration_ms"].as_f64().unwrap();
    assert!((1400.0..3000.0).contains(&ms), "duration_ms {ms}");
}

#[test]
fn json_stdout_holds_only_the_report_and_the_trigger_output_goes_to_stderr_and_its_log() {
    let server = server();
    let url = server.url();
    let dir = temp_dir("verdict-json");
    let out = dir.join("run");
    let mut args = vec!["run", &url, "-q", "--format", "json"];
    args.extend(QUICK);
    args.extend(["--out", out.to_str().unwrap(), "--"]);
    args.extend([
        "sh",
        "-c",
        "echo deployment.apps/web restarted; echo warned >&2",
    ]);
    let o = rollprobe(&args);
    assert_eq!(o.status.code(), Some(0));
    let report: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(report["trigger"]["outcome"], "succeeded");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("trigger: deployment.apps/web restarted"),
        "{stderr}"
    );
    let log = std::fs::read_to_string(out.join("trigger.log")).unwrap();
    assert!(
        log.contains("deployment.apps/web restarted") && log.contains("warned"),
        "{log}"
    );
}

#[test]
fn out_never_overwrites_an_earlier_run_without_force() {
    let server = server();
    let url = server.url();
    let dir = temp_dir("verdict-out");
    let out = dir.join("run");
    let out_s = out.to_str().unwrap();
    let first = rollprobe(&["run", &url, "-q", "--duration", "500ms", "--out", out_s]);
    assert_eq!(first.status.code(), Some(0));
    let samples = std::fs::read(out.join("samples.csv")).unwrap();

    let again = rollprobe(&["run", &url, "-q", "--duration", "500ms", "--out", out_s]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("already holds a run") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(out.join("samples.csv")).unwrap(),
        samples,
        "the earlier samples are untouched"
    );

    // A stale file of the earlier run does not survive a forced replacement.
    std::fs::write(out.join("trigger.log"), "old").unwrap();
    let forced = rollprobe(&[
        "run",
        &url,
        "-q",
        "--duration",
        "500ms",
        "--out",
        out_s,
        "--force",
    ]);
    assert_eq!(forced.status.code(), Some(0));
    assert!(!out.join("trigger.log").exists());
    assert_ne!(std::fs::read(out.join("run.json")).unwrap(), b"");

    // `report DIR --out DIR` rewrites only the derived files.
    let samples = std::fs::read(out.join("samples.csv")).unwrap();
    let rebuilt = rollprobe(&["report", out_s, "--out", out_s]);
    assert_eq!(rebuilt.status.code(), Some(0));
    assert_eq!(std::fs::read(out.join("samples.csv")).unwrap(), samples);
}
