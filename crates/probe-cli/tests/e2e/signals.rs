//! Stopping a run from outside: every stop signal writes the report, a hanging server
//! still leaves its last second on disk, and a full disk loses nothing measured.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::{read_json, rollprobe, serve, signal, temp_dir, Behaviour};

fn ok_server() -> crate::support::TestServer {
    serve(Behaviour::Respond {
        status: 200,
        headers: Vec::new(),
        body: "v1".into(),
    })
}

fn start_run(url: &str, out: &std::path::Path, extra: &[&str]) -> Child {
    rollprobe()
        .args(["run", url, "--rate", "100", "--quiet", "--format", "json"])
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollprobe runs")
}

#[test]
fn sigterm_and_sighup_stop_a_run_like_ctrl_c_and_write_the_report() {
    let server = ok_server();
    for (sig, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
    ] {
        let dir = temp_dir(&format!("signal-{name}"));
        let child = start_run(&server.url(), &dir, &[]);
        std::thread::sleep(Duration::from_millis(1500));
        signal(&child, sig);
        let o = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        let printed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(printed["interrupted"], true, "{name}");
        let written = read_json(&dir.join("report.json"));
        assert_eq!(written["interrupted"], true, "{name}");
        assert!(written["totals"]["sent"].as_u64().unwrap() >= 100, "{name}");
        assert_eq!(read_json(&dir.join("run.json"))["interrupted"], true);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_trigger_command_is_killed_by_the_signal_and_the_timeline_says_so() {
    let server = ok_server();
    let dir = temp_dir("signal-trigger");
    let child = start_run(
        &server.url(),
        &dir,
        &["--warmup", "200ms", "--", "sleep", "30"],
    );
    std::thread::sleep(Duration::from_millis(1200));
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report = read_json(&dir.join("report.json"));
    let exit = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "trigger_exit")
        .expect("trigger_exit is on the timeline");
    assert_eq!(exit["detail"], "killed: the run was interrupted");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_signal_exits_at_once_and_the_samples_stay_readable() {
    // Requests that never end keep the first stop waiting for their timeouts.
    let server = serve(Behaviour::NeverAnswer);
    let dir = temp_dir("signal-twice");
    let child = start_run(&server.url(), &dir, &["--timeout", "20s"]);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGTERM);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    // The samples on disk are read back: the recorder's timer flushed them even though
    // no request had completed.
    let o = rollprobe()
        .args(["report", dir.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["interrupted"], true);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run whose output folder fills up keeps probing, says so, and prints the complete
/// report (exit 3). Needs root to mount a small tmpfs.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn a_full_disk_loses_nothing_measured() {
    let server = ok_server();
    let dir = temp_dir("disk-full");
    let mount = std::process::Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k",
            "tmpfs",
            dir.to_str().unwrap(),
        ])
        .status()
        .expect("mount runs");
    assert!(mount.success(), "mounting a tmpfs needs root");
    let o = rollprobe()
        .args(["run", &server.url(), "--rate", "500", "--duration", "3s"])
        .args([
            "--quiet",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let _ = std::process::Command::new("umount")
        .arg(dir.to_str().unwrap())
        .status();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot write"), "{stderr}");
    assert!(
        stderr.contains("No space left on device"),
        "the OS error is named: {stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Every tick of the 3 s at 500 req/s was measured, whatever the disk did.
    let sent = report["totals"]["sent"].as_u64().unwrap();
    assert!((1450..=1500).contains(&sent), "{sent}");
    assert_eq!(report["totals"]["failed"], 0);
    let _ = std::fs::remove_dir_all(&dir);
}
