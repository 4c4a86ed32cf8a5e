//! Live metrics, scraped by a real Prometheus: `rollprobe run --metrics-addr` against a
//! loopback service that goes down once, with Debian's `prometheus` scraping it every
//! second, then Prometheus's HTTP API asked what it saw. Its counts must be the
//! report's, `rollprobe_down` must have been 1 inside the outage, and every PromQL
//! expression of the Grafana dashboard in deploy/grafana must return data.
//!
//! Everything listens on 127.0.0.1 only. Prometheus gets its own folder and port and
//! is killed when the test ends.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const RATE: f64 = 100.0;
const LABEL: &str = "metrics-test";
/// The documented series (the README, "Live metrics"), as Prometheus stores them.
const SERIES: [&str; 10] = [
    "rollprobe_requests_total",
    "rollprobe_version_answers_total",
    "rollprobe_latency_seconds_bucket",
    "rollprobe_latency_seconds_sum",
    "rollprobe_latency_seconds_count",
    "rollprobe_down",
    "rollprobe_downtime_seconds_total",
    "rollprobe_send_lag_seconds_bucket",
    "rollprobe_send_lag_seconds_sum",
    "rollprobe_send_lag_seconds_count",
];

/// Debian's Prometheus, or a failure that says how to get it.
fn prometheus_bin() -> PathBuf {
    let path = PathBuf::from("/usr/bin/prometheus");
    assert!(
        path.is_file(),
        "/usr/bin/prometheus is missing: this test needs a real Prometheus; .ci/run installs it \
         (apt-get install prometheus)"
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A Prometheus process, killed when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second, and waits until it is ready.
    fn start(dir: &Path, target: SocketAddr) -> Prometheus {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: rollprobe\n    static_configs:\n      - targets: ['{target}']\n"
        );
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = Command::new(prometheus_bin())
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/bin/prometheus");
        let prometheus = Prometheus {
            child,
            addr,
            dir: dir.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Ready, and already scraping (a target's first scrape comes seconds after
            // start): from here on every second of the probe is seen.
            if let Some((200, _)) = http_get(addr, "/-/ready") {
                let targets = prometheus.api("/api/v1/targets");
                if targets["activeTargets"][0]["health"]
                    .as_str()
                    .unwrap_or("unknown")
                    != "unknown"
                {
                    return prometheus;
                }
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus was not ready within 60 s: {}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// An API call's `data`, which must have status `success`.
    fn api(&self, path_and_query: &str) -> Value {
        let (status, body) = http_get(self.addr, path_and_query)
            .unwrap_or_else(|| panic!("Prometheus did not answer {path_and_query}"));
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {body}"));
        assert_eq!(
            (status, v["status"].as_str()),
            (200, Some("success")),
            "{path_and_query}: {body}"
        );
        v["data"].clone()
    }

    /// The series of `query` over [start, end] at 1 s steps.
    fn range(&self, query: &str, start: f64, end: f64) -> Vec<Value> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step=1",
            encode(query)
        );
        self.api(&path)["result"].as_array().unwrap().clone()
    }

    /// The vector of `query` at `time`.
    fn instant(&self, query: &str, time: f64) -> Vec<Value> {
        let path = format!("/api/v1/query?query={}&time={time:.3}", encode(query));
        self.api(&path)["result"].as_array().unwrap().clone()
    }
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A plain HTTP/1.0 GET (no chunked answers): the status and body, or `None` if
/// nothing answered.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// A loopback service answering `v1` that can be taken down (its listener closed, so
/// connections are refused) and brought back on the same port.
struct Service {
    addr: SocketAddr,
    /// Connections accepted.
    accepted: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Service {
    fn start() -> Service {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = first.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (down2, stop2, accepted2) = (down.clone(), stop.clone(), accepted.clone());
        let thread = thread::spawn(move || {
            let mut listener = Some(first);
            while !stop2.load(Ordering::SeqCst) {
                if down2.load(Ordering::SeqCst) {
                    listener = None;
                } else if listener.is_none() {
                    // std sets SO_REUSEADDR: the port comes back despite TIME_WAIT.
                    listener = Some(TcpListener::bind(addr).expect("rebind the service's port"));
                }
                let Some(l) = &listener else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                l.set_nonblocking(true).unwrap();
                match l.accept() {
                    Ok((mut stream, _)) => {
                        accepted2.fetch_add(1, Ordering::SeqCst);
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut request = Vec::new();
                        let mut chunk = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut chunk) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => request.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nv1",
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Service {
            addr,
            accepted,
            down,
            stop,
            thread: Some(thread),
        }
    }
}

/// Every `rollprobe_*` name a PromQL expression uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("rollprobe_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// The PromQL expressions of the dashboard's panels.
fn dashboard_exprs() -> Vec<String> {
    let path = Path::new(crate::support::REPO).join("deploy/grafana/rollprobe.json");
    let dashboard = crate::support::read_json(&path);
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs
}

#[test]
fn dashboard_uses_only_the_documented_metrics() {
    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 6, "{exprs:?}");
    let mut used = Vec::new();
    for expr in &exprs {
        for name in metric_names(expr) {
            assert!(
                SERIES.contains(&name.as_str()),
                "{name} in {expr} is not documented"
            );
            used.push(name);
        }
    }
    // Every documented metric has a panel.
    for family in [
        "rollprobe_requests_total",
        "rollprobe_version_answers_total",
        "rollprobe_latency_seconds",
        "rollprobe_down",
        "rollprobe_downtime_seconds_total",
        "rollprobe_send_lag_seconds",
    ] {
        assert!(
            used.iter().any(|u| u.starts_with(family)),
            "no panel uses {family}"
        );
    }
}

#[test]
fn prometheus_scrapes_the_counts_of_the_report_and_the_outage() {
    let prometheus_dir = crate::support::temp_dir("metrics-prometheus");
    let out = crate::support::temp_dir("metrics-run");
    let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let prometheus = Prometheus::start(&prometheus_dir, metrics_addr);
    let service = Service::start();

    let started = unix_now();
    let probe = crate::support::rollprobe()
        .args(["run", &format!("http://{}/test/version", service.addr)])
        .args(["--rate", "100", "--duration", "16s", "--label", LABEL, "-q"])
        .arg("--metrics-addr")
        .arg(metrics_addr.to_string())
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Up for 5 s from when the probe serves its metrics, down for 4 s, up again until
    // the end.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(http_get(metrics_addr, "/metrics"), Some((200, _))) {
        assert!(Instant::now() < deadline, "the probe never served /metrics");
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_secs(5));
    service.down.store(true, Ordering::SeqCst);
    thread::sleep(Duration::from_secs(4));
    service.down.store(false, Ordering::SeqCst);
    let output = probe.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Let Prometheus notice the end (a failed scrape marks the series stale).
    thread::sleep(Duration::from_secs(2));
    let ended = unix_now();
    let report = crate::support::read_json(&out.join("report.json"));

    // Prometheus scraped the probe, and it is gone now.
    let up = prometheus.range("up{job=\"rollprobe\"}", started, ended);
    let ups: Vec<f64> = up[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ups.iter().filter(|&&u| u == 1.0).count() >= 10, "{ups:?}");

    // Counts by outcome as of the last scrape: the report's, less at most one scrape
    // interval of requests.
    let last = |query: &str| -> BTreeMap<String, f64> {
        prometheus
            .instant(&format!("last_over_time({query}[5m])"), ended)
            .iter()
            .map(|s| {
                let outcome = s["metric"]["outcome"].as_str().unwrap_or("").to_string();
                let value = s["value"][1].as_str().unwrap().parse().unwrap();
                (outcome, value)
            })
            .collect()
    };
    let scraped = last(&format!("rollprobe_requests_total{{label=\"{LABEL}\"}}"));
    let mut expected: BTreeMap<String, f64> = report["failures"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().unwrap()))
        .collect();
    expected.insert("ok".into(), report["totals"]["ok"].as_f64().unwrap());
    let skipped = report["totals"]["skipped"].as_f64().unwrap();
    if skipped > 0.0 {
        expected.insert("skipped".into(), skipped);
    }
    assert_eq!(
        scraped.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "scraped {scraped:?}, report {expected:?}"
    );
    let one_interval = RATE * 1.0;
    for (outcome, want) in &expected {
        let got = scraped[outcome];
        assert!(
            got <= *want && want - got <= one_interval,
            "{outcome}: Prometheus saw {got}, report.json says {want} (scraped {scraped:?})"
        );
    }
    assert!(
        expected.get("connection_refused").copied().unwrap_or(0.0) >= 100.0,
        "{expected:?}"
    );

    // rollprobe_down was 1 during the outage, and only around it.
    let windows = report["downtime"]["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "{windows:?}");
    let run_start = started_at_unix(&report);
    let (w_start, w_end) = (
        run_start + windows[0]["start_ms"].as_f64().unwrap() / 1000.0,
        run_start + windows[0]["end_ms"].as_f64().unwrap() / 1000.0,
    );
    let down = prometheus.range(
        &format!("rollprobe_down{{label=\"{LABEL}\"}}"),
        started,
        ended,
    );
    assert_eq!(down.len(), 1, "{down:?}");
    let points: Vec<(f64, f64)> = down[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v[0].as_f64().unwrap(),
                v[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let ones: Vec<f64> = points.iter().filter(|p| p.1 == 1.0).map(|p| p.0).collect();
    assert!(ones.len() >= 2, "down was never 1 for long: {points:?}");
    // A range query's point at t is the last scrape at or before t: up to one interval
    // (plus the scrape's own jitter) behind.
    for t in &ones {
        assert!(
            *t >= w_start && *t <= w_end + 2.0,
            "down=1 at {t}, outside the window {w_start}..{w_end}: {points:?}"
        );
    }
    assert!(
        points.iter().any(|p| p.1 == 0.0 && p.0 < w_start)
            && points.iter().any(|p| p.1 == 0.0 && p.0 > w_end),
        "down was not 0 before and after the outage: {points:?}"
    );
    let downtime = last(&format!(
        "rollprobe_downtime_seconds_total{{label=\"{LABEL}\"}}"
    ));
    let report_downtime = report["downtime"]["total_ms"].as_f64().unwrap() / 1000.0;
    let got = downtime[""];
    assert!(
        (got - report_downtime).abs() <= 0.05,
        "downtime: Prometheus {got} s, report.json {report_downtime} s"
    );

    // The dashboard's variable finds the run, and every panel's query returns data.
    let labels = prometheus.api(&format!(
        "/api/v1/label/label/values?match[]={}",
        encode("rollprobe_requests_total")
    ));
    assert!(
        labels.as_array().unwrap().iter().any(|l| l == LABEL),
        "{labels}"
    );
    for expr in dashboard_exprs() {
        // What Grafana puts in: the chosen label, and 4 x the scrape interval.
        let query = expr
            .replace("$label", LABEL)
            .replace("$__rate_interval", "4s");
        let result = prometheus.range(&query, started, ended);
        let points: usize = result
            .iter()
            .map(|s| s["values"].as_array().map_or(0, Vec::len))
            .sum();
        assert!(points > 0, "no data for the dashboard's {expr}");
    }
    drop(prometheus);
    let _ = std::fs::remove_dir_all(&out);
}

/// The report's `started_at` (RFC 3339, ms, `Z`) as Unix seconds, with the test's
/// own arithmetic (civil date to days, Howard Hinnant's algorithm).
fn started_at_unix(report: &Value) -> f64 {
    let text = report["started_at"].as_str().unwrap();
    let (date, time) = text.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

#[test]
fn a_bad_metrics_address_or_a_port_in_use_is_one_line_and_exit_2_before_probing() {
    let service = Service::start();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let in_use = taken.local_addr().unwrap().to_string();
    for (addr, says) in [
        ("9464", "use HOST:PORT"),
        ("example.com:9464", "use HOST:PORT"),
        (in_use.as_str(), "cannot listen there"),
    ] {
        let out =
            crate::support::temp_dir(&format!("metrics-bad-{}", addr.replace([':', '.'], "-")));
        let output = crate::support::rollprobe()
            .args(["run", &format!("http://{}/test/version", service.addr)])
            .args(["--duration", "2s", "--metrics-addr", addr, "--out"])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{addr}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{addr}: {stderr}");
        assert!(stderr.contains(says), "{addr}: {stderr}");
        // Refused before probing: no request reached the service, no samples written.
        assert!(!out.join("samples.csv").exists(), "{addr}: probing started");
        let _ = std::fs::remove_dir_all(&out);
    }
    assert_eq!(service.accepted.load(Ordering::SeqCst), 0);
}
