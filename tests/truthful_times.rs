//! Times that are measured, never computed from the request, through the `rollprobe`
//! binary: a run's length is when probing stopped, downtime never exceeds it, a
//! killed run still says its requests went out; and `merge` refuses one run twice.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{closed_port, read_json, rollprobe, serve, temp_dir, Behaviour};

/// `rollprobe run` with a JSON report and its folder at `out`.
fn run_command(args: &[&str], out: &std::path::Path) -> Command {
    let mut c = rollprobe();
    c.args([
        "run",
        "--quiet",
        "--format",
        "json",
        "--out",
        out.to_str().unwrap(),
    ])
    .args(args);
    c
}

fn run_to_end(args: &[&str], out: &std::path::Path) -> (Output, serde_json::Value) {
    let o = run_command(args, out).output().unwrap();
    (o, read_json(&out.join("report.json")))
}

fn spawn_run(args: &[&str], out: &std::path::Path) -> Child {
    run_command(args, out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollprobe runs")
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn a_low_rate_run_says_how_long_it_really_probed() {
    // One tick every 10 s in a 5 s run: the only tick goes out at once and the
    // schedule is over; the report used to say 5.000 s.
    let port = closed_port();
    let dir = temp_dir("times-low-rate");
    let url = format!("http://127.0.0.1:{}/", port.port);
    let started = Instant::now();
    let (_, report) = run_to_end(&[&url, "--rate", "0.1", "--duration", "5s"], &dir);
    let took = started.elapsed();
    let duration = report["duration_ms"].as_f64().unwrap();
    assert!(
        duration <= took.as_secs_f64() * 1000.0,
        "duration_ms {duration} but the process ran {took:?}"
    );
    assert!(duration < 2000.0, "duration_ms {duration}");
    assert!(report["downtime"]["total_ms"].as_f64().unwrap() <= duration);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn downtime_never_exceeds_the_run() {
    // A dead port at 1 req/s for 2.5 s: ticks at 0, 1 and 2 s; the open window used to
    // close one period after the last failure, at 3 s.
    let port = closed_port();
    let dir = temp_dir("times-dead-port");
    let url = format!("http://127.0.0.1:{}/", port.port);
    let (_, report) = run_to_end(&[&url, "--rate", "1", "--duration", "2500ms"], &dir);
    let duration = report["duration_ms"].as_f64().unwrap();
    let downtime = report["downtime"]["total_ms"].as_f64().unwrap();
    assert!(downtime > 0.0, "{report}");
    assert!(
        downtime <= duration,
        "downtime {downtime} > duration {duration}"
    );
    assert!(duration <= 2500.0, "duration_ms {duration}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_early_in_a_long_run_reports_when_it_stopped() {
    let server = serve(Behaviour::Respond {
        status: 200,
        headers: Vec::new(),
        body: "v1".into(),
    });
    let dir = temp_dir("times-ctrl-c");
    let child = spawn_run(&[&server.url(), "--rate", "50", "--duration", "30s"], &dir);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGINT);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.code().is_some(), "{o:?}");
    let report = read_json(&dir.join("report.json"));
    assert_eq!(report["interrupted"], true);
    let duration = report["duration_ms"].as_f64().unwrap();
    // Interrupted at about 1.5 s of 30 s (the process start is not counted).
    assert!(
        (1000.0..5000.0).contains(&duration),
        "duration_ms {duration}"
    );
    let run = read_json(&dir.join("run.json"));
    assert_eq!(run["duration_ms"], report["duration_ms"]);
    assert_eq!(run["ended_at"], report["ended_at"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_killed_with_requests_in_flight_still_says_they_went_out() {
    // Requests that never end keep the first stop waiting; the second signal kills
    // the process before any of them is answered.
    let server = serve(Behaviour::NeverAnswer);
    let dir = temp_dir("times-killed");
    let child = spawn_run(&[&server.url(), "--rate", "100", "--timeout", "20s"], &dir);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let o = rollprobe()
        .args(["report", dir.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    let reason = report["invalid_reason"].as_str().unwrap_or_default();
    assert!(!reason.contains("no request was sent"), "{reason}");
    assert!(reason.contains("went out"), "{reason}");
    let duration = report["duration_ms"].as_f64().unwrap();
    assert!(
        (1000.0..5000.0).contains(&duration),
        "duration_ms {duration}"
    );
    let text = rollprobe()
        .args(["report", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(!text.contains("no request was sent"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_the_same_run_twice_in_one_line() {
    let port = closed_port();
    let dir = temp_dir("times-merge-twice");
    let run = dir.join("a");
    let url = format!("http://127.0.0.1:{}/", port.port);
    run_to_end(&[&url, "--rate", "20", "--duration", "300ms"], &run);
    let merged = dir.join("m");
    let o = rollprobe()
        .arg("merge")
        .arg(&run)
        .arg(&run)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("given twice"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
