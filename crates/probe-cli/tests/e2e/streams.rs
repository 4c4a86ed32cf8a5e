//! Streams side by side (`--connection both`) and `rollprobe merge`, against a real
//! loopback service that is redeployed while it is probed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::support::{read_json, rollprobe, temp_dir};
use serde_json::Value;

/// A service that is redeployed the way a process is replaced: the old one stops
/// listening (new connections are refused) while its open connections are still
/// served; when the new one listens, the old one is killed, so a request arriving on
/// one of its kept-alive connections is reset.
struct Redeployable {
    addr: SocketAddr,
    listening: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Redeployable {
    fn start() -> Redeployable {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = first.local_addr().unwrap();
        let listening = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, g, s) = (listening.clone(), generation.clone(), stop.clone());
        let thread = thread::spawn(move || {
            let mut listener = Some(first);
            let mut workers = Vec::new();
            while !s.load(Ordering::SeqCst) {
                match (&listener, l.load(Ordering::SeqCst)) {
                    (Some(_), false) => listener = None,
                    (None, true) => listener = Some(TcpListener::bind(addr).unwrap()),
                    _ => {}
                }
                let Some(socket) = &listener else {
                    thread::sleep(Duration::from_millis(1));
                    continue;
                };
                socket.set_nonblocking(true).unwrap();
                match socket.accept() {
                    Ok((stream, _)) => {
                        let (g, s) = (g.clone(), s.clone());
                        workers.push(thread::spawn(move || serve_connection(stream, g, s)));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Redeployable {
            addr,
            listening,
            generation,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/test/version", self.addr)
    }

    /// Down for `gap` (refusing), then the new version listens and the old one dies.
    fn redeploy(&self, gap: Duration) {
        self.listening.store(false, Ordering::SeqCst);
        thread::sleep(gap);
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.listening.store(true, Ordering::SeqCst);
    }
}

impl Drop for Redeployable {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(mut stream: TcpStream, generation: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let mine = generation.load(Ordering::SeqCst);
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if generation.load(Ordering::SeqCst) != mine {
                // The old process is gone: the kernel resets its connections.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                return;
            }
            let body = format!("v{mine}");
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-pod-name: web-{mine}\r\n\r\n",
                body.len()
            );
            if stream.write_all((head + &body).as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn spawn_run(url: &str, out: &std::path::Path, extra: &[&str]) -> Child {
    rollprobe()
        .args([
            "run",
            url,
            "--rate",
            "50",
            "--duration",
            "3s",
            "--quiet",
            "--out",
        ])
        .arg(out)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rollprobe failed: {text}");
    text
}

fn stream<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stream {name} in {}", report["streams"]))
}

fn count(stream: &Value, kind: &str) -> u64 {
    stream["failures"][kind].as_u64().unwrap_or(0)
}

#[test]
fn both_streams_see_what_their_clients_would_see_of_one_redeploy() {
    let service = Redeployable::start();
    let dir = temp_dir("streams-both");
    let out = dir.join("run");
    let child = spawn_run(
        &service.url(),
        &out,
        &["--connection", "both", "--pod-from", "header:x-pod-name"],
    );
    thread::sleep(Duration::from_millis(1200));
    service.redeploy(Duration::from_millis(500));
    let text = finish(child);
    let report = read_json(&out.join("report.json"));
    let fresh = stream(&report, "local-fresh");
    let keepalive = stream(&report, "local-keepalive");

    // New connections were refused while nothing listened; a pooled connection
    // never connects, so it is the one that meets the killed process's reset. A new
    // connection meets it only when it waited in the old listener's queue as that
    // closed (this server accepts every millisecond): at 50 req/s, one at most.
    assert!(count(fresh, "connection_refused") > 0, "{text}");
    assert!(
        count(fresh, "connection_reset") + count(fresh, "connection_closed") <= 1,
        "{text}"
    );
    assert!(
        count(keepalive, "connection_reset") + count(keepalive, "connection_closed") > 0,
        "{text}"
    );
    assert_eq!(count(keepalive, "connection_refused"), 0, "{text}");

    // Top-level totals are the sum; top-level windows are the first stream's.
    let sent = |s: &Value| s["totals"]["sent"].as_u64().unwrap();
    assert_eq!(
        report["totals"]["sent"].as_u64().unwrap(),
        sent(fresh) + sent(keepalive)
    );
    assert_eq!(report["downtime"], fresh["downtime"]);
    // Both versions answered both streams, and the pods are named.
    for s in [fresh, keepalive] {
        let versions: Vec<&str> = s["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap())
            .collect();
        assert_eq!(versions, ["v1", "v2"], "{text}");
    }
    let pods: Vec<&str> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pod"].as_str().unwrap())
        .collect();
    assert_eq!(pods, ["web-1", "web-2"]);
    assert!(text.contains("local-keepalive"), "{text}");

    // The samples hold both streams, and `rollprobe report` rebuilds the same report.
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    assert!(samples.lines().any(|l| l.starts_with("local-keepalive,")));
    let rebuilt = rollprobe()
        .args(["report", "--format", "json"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(rebuilt.status.success());
    let rebuilt: Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(rebuilt, report);
    let timeline = std::fs::read_to_string(out.join("timeline.csv")).unwrap();
    assert!(timeline.starts_with("stream,second,sent,ok"));
    for name in ["local-fresh,", "local-keepalive,"] {
        assert!(timeline.lines().any(|l| l.starts_with(name)), "{timeline}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_puts_runs_started_apart_on_one_clock() {
    let service = Redeployable::start();
    let dir = temp_dir("streams-merge");
    let (a, b) = (dir.join("node-a"), dir.join("laptop"));
    let first = spawn_run(&service.url(), &a, &[]);
    thread::sleep(Duration::from_millis(300));
    let second = spawn_run(&service.url(), &b, &[]);
    thread::sleep(Duration::from_millis(1200));
    service.redeploy(Duration::from_millis(400));
    finish(first);
    finish(second);

    let merged = dir.join("merged");
    let out = rollprobe()
        .arg("merge")
        .args([&a, &b])
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = read_json(&merged.join("report.json"));
    let (ra, rb) = (
        stream(&report, "node-a-fresh"),
        stream(&report, "laptop-fresh"),
    );
    let shift = rb["merged_from"]["offset_ms"].as_f64().unwrap();
    // Started about 300 ms apart (each process takes its own time to start).
    assert!((100.0..1500.0).contains(&shift), "shift {shift}");
    assert_eq!(ra["merged_from"]["offset_ms"].as_f64(), Some(0.0));

    // The shared outage starts at the same time on the merged clock, within one tick
    // (20 ms at 50 req/s) and the two probers' own send lag.
    let start = |s: &Value| s["downtime"]["windows"][0]["start_ms"].as_f64().unwrap();
    let lag = |s: &Value| s["probe"]["send_lag_max_ms"].as_f64().unwrap();
    let tolerance = 20.0 + lag(ra) + lag(rb);
    assert!(
        (start(ra) - start(rb)).abs() <= tolerance,
        "windows at {} and {} (tolerance {tolerance} ms)\n{text}",
        start(ra),
        start(rb)
    );
    let total = &report["total_outage"];
    assert!(total["total_ms"].as_f64().unwrap() > 0.0, "{text}");
    assert!(text.contains("total outage"), "{text}");
    assert!(text.contains("shifted"), "{text}");

    // The merged folder is a run folder: `rollprobe report` rebuilds it.
    let rebuilt = rollprobe()
        .args(["report", "--format", "json"])
        .arg(&merged)
        .output()
        .unwrap();
    assert!(rebuilt.status.success());
    let rebuilt: Value = serde_json::from_slice(&rebuilt.stdout).unwrap();
    assert_eq!(rebuilt, report);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn merge_refuses_bad_input_in_one_line() {
    let dir = temp_dir("streams-merge-bad");
    let missing = dir.join("nope");
    let out = rollprobe()
        .arg("merge")
        .arg(&missing)
        .arg(&dir)
        .arg("--out")
        .arg(dir.join("m"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.join("m").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
