//! Times that are measured, never computed from the request, through the `rollprobe`
//! binary: a run's length is when probing stopped, downtime never exceeds it, a
//! killed run still says its requests went out; and `merge` refuses one run twice.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{closed_port, read_json, rollprobe, serve, signal, temp_dir, Behaviour};

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

/// A network namespace with only loopback (nothing leaves the machine), removed on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("rpt-{tag}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ns = Netns(name);
        ns.run(&["ip", "netns", "add", &ns.0]);
        ns.run(&["ip", "-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    fn run(&self, args: &[&str]) {
        let status = Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run {args:?}: {e} (needs root, iproute2, iptables)")
            });
        assert!(status.success(), "{args:?}: {status}");
    }

    fn iptables(&self, rule: &[&str]) {
        let mut args = vec!["ip", "netns", "exec", &self.0, "iptables"];
        args.extend_from_slice(rule);
        self.run(&args);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// An HTTP server on 127.0.0.1:`port` inside `ns`: a thread joins the namespace and
/// binds there (a socket stays in the namespace it was made in). Answers `v1` to
/// every request, one connection at a time, until `stop`.
fn serve_in(
    ns: &Netns,
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    let path = format!("/var/run/netns/{}", ns.0);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns(2) on this thread only, with a namespace file we hold open.
        assert_eq!(
            unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        while !stop.load(std::sync::atomic::Ordering::Acquire) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut buf = [0u8; 4096];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = conn.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv1",
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the server listens");
    handle
}

/// Case 11 on a real kernel: while "the app is down", the kernel refuses most SYNs
/// (a RST, as a REJECT does) and drops every third (as when the ICMP error of a
/// REJECT is rate-limited away). The dropped ones are retransmitted and connect once
/// the outage is over: those successes were held through it and must not split it.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn successes_held_by_dropped_syns_do_not_split_the_outage() {
    let ns = Netns::new("held");
    let port = "8080";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = serve_in(&ns, 8080, stop.clone());
    let dir = temp_dir("times-held-syn");
    let probe = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(crate::support::ROLLPROBE)
        .args([
            "run",
            "http://127.0.0.1:8080/",
            "--rate",
            "20",
            "--duration",
            "6s",
        ])
        .args(["--connect-timeout", "5s", "--timeout", "8s"])
        .args([
            "--quiet",
            "--format",
            "json",
            "--out",
            dir.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ip netns exec runs");
    std::thread::sleep(Duration::from_millis(1000));
    let syn = ["-p", "tcp", "--dport", port, "--syn"];
    let drop_rule = [
        &syn[..],
        &[
            "-m",
            "statistic",
            "--mode",
            "nth",
            "--every",
            "3",
            "--packet",
            "0",
            "-j",
            "DROP",
        ],
    ]
    .concat();
    let reject_rule = [&syn[..], &["-j", "REJECT", "--reject-with", "tcp-reset"]].concat();
    ns.iptables(&[&["-A", "INPUT"], &drop_rule[..]].concat());
    ns.iptables(&[&["-A", "INPUT"], &reject_rule[..]].concat());
    std::thread::sleep(Duration::from_millis(2500));
    ns.iptables(&[&["-D", "INPUT"], &drop_rule[..]].concat());
    ns.iptables(&[&["-D", "INPUT"], &reject_rule[..]].concat());
    let o = probe.wait_with_output().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Release);
    server.join().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = read_json(&dir.join("report.json"));

    // The kernel really held some SYNs and those requests succeeded late.
    let samples = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    let header: Vec<&str> = samples.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (outcome, syn_retransmits) = (col("outcome"), col("syn_retransmits"));
    let held = samples
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[outcome] == "ok" && f[syn_retransmits].parse::<u32>().is_ok_and(|n| n > 0))
        .count();
    assert!(held > 0, "no SYN was held: {}", report["downtime"]);

    let windows = report["downtime"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "one outage, one window: {windows:#?}");
    let w = &windows[0];
    assert!(w["failed"].as_u64().unwrap() >= 10, "{w}");
    assert!(w["held_ok"].as_u64().unwrap() >= 1, "{w}");
    let (start, end) = (
        w["start_ms"].as_f64().unwrap(),
        w["end_ms"].as_f64().unwrap(),
    );
    // The rules were in place from about +1.0 s (after the process started) for 2.5 s.
    assert!((500.0..2500.0).contains(&start), "{w}");
    assert!((2000.0..4500.0).contains(&(end - start)), "{w}");
    let _ = std::fs::remove_dir_all(&dir);
}
