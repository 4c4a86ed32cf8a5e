//! `--access-log` as a user runs it: a real run against a loopback server, then
//! `rollprobe report DIR --access-log FILE` with a log in the documented nginx
//! format fills samples.csv's `upstream` column and report.json's `proxy_retried`;
//! a wrong path is one line and exit 2 before anything runs. (What the real
//! proxies write is checked in probe-core's tests/proxies.rs.)

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

fn rollprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollprobe"))
        .args(args)
        .output()
        .unwrap()
}

/// Answers 200 to every request on a loopback port, until the test process ends;
/// with `log`, writes a line per request in the nginx format, as a proxy in front
/// of the app would.
fn ok_server(log: Option<std::path::PathBuf>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let mut head = Vec::new();
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nv1");
            if let Some(log) = &log {
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let id = head
                    .lines()
                    .find_map(|l| l.strip_prefix("x-request-id: "))
                    .unwrap_or("-")
                    .trim()
                    .to_string();
                let line = format!("rollprobe=nginx id={id} status=200 upstream=\"127.0.0.1:1, 127.0.0.1:2\" upstream_status=\"502, 200\"\n");
                let mut file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
                file.write_all(line.as_bytes()).unwrap();
            }
        }
    });
    port
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn request_ids(samples: &Path) -> Vec<String> {
    probe_core::read_samples(samples)
        .unwrap()
        .samples
        .into_iter()
        .map(|s| s.request_id.unwrap())
        .collect()
}

/// `rollprobe run` at 10/s for `duration` into `dir`; it must succeed.
fn record_run(port: u16, dir: &Path, duration: &str, extra: &[&str]) -> Output {
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = vec![
        "run",
        &url,
        "--rate",
        "10",
        "--duration",
        duration,
        "--quiet",
    ];
    args.extend_from_slice(&["--out", dir.to_str().unwrap()]);
    args.extend_from_slice(extra);
    let run = rollprobe(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

#[test]
fn report_joins_an_nginx_log_and_counts_the_retried_requests() {
    let port = ok_server(None);
    let dir = temp_dir("join");
    record_run(port, &dir, "500ms", &[]);
    let samples = dir.join("samples.csv");
    let ids = request_ids(&samples);
    assert_eq!(ids.len(), 5);
    // The second request went first to a refused server, then to the one that answered.
    let log = dir.join("access.log");
    let mut lines = String::from("a line of another format\n");
    for (i, id) in ids.iter().enumerate() {
        let (addr, status) = if i == 1 {
            ("10.0.0.1:80, 10.0.0.2:80", "502, 200")
        } else {
            ("10.0.0.2:80", "200")
        };
        lines.push_str(&format!(
            "rollprobe=nginx id={id} status=200 upstream=\"{addr}\" upstream_status=\"{status}\"\n"
        ));
    }
    std::fs::write(&log, lines).unwrap();

    let report = rollprobe(&[
        "report",
        dir.to_str().unwrap(),
        "--access-log",
        log.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(json["totals"]["proxy_retried"], 1, "{json}");
    assert_eq!(json["totals"]["ok"], 5);
    let text = std::fs::read_to_string(&samples).unwrap();
    assert!(
        text.contains("nginx 10.0.0.1:80,10.0.0.2:80 attempts=2 reason=upstream_status:502,200"),
        "{text}"
    );
    assert_eq!(
        text.matches("attempts=1 reason=upstream_status:200")
            .count(),
        4
    );
    // Without the log, the recorded join stays and the count is not made.
    let again = rollprobe(&["report", dir.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(json["totals"].get("proxy_retried").is_none(), "{json}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_access_log_is_one_line_and_exit_2() {
    let dir = temp_dir("missing");
    let out = rollprobe(&[
        "run",
        "http://127.0.0.1:9/",
        "--out",
        dir.to_str().unwrap(),
        "--access-log",
        "/nonexistent/access.log",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--access-log /nonexistent/access.log"),
        "{stderr}"
    );
    assert!(!dir.join("samples.csv").exists());
}

#[test]
fn run_joins_the_log_when_it_ends() {
    let dir = temp_dir("run-join");
    let log = std::env::temp_dir().join(format!("rollprobe-cli-log-{}", std::process::id()));
    std::fs::write(&log, "").unwrap();
    let port = ok_server(Some(log.clone()));
    let run = record_run(
        port,
        &dir,
        "300ms",
        &["--access-log", log.to_str().unwrap(), "--format", "json"],
    );
    // Every request was retried once, as the log says: stdout and report.json agree.
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["totals"]["proxy_retried"], 3, "{json}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(written["totals"]["proxy_retried"], 3);
    let rows = probe_core::read_samples(&dir).unwrap().samples;
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(
            row.upstream.as_deref(),
            Some("nginx 127.0.0.1:1,127.0.0.1:2 attempts=2 reason=upstream_status:502,200")
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_file(&log).unwrap();
}
