//! report.html in a real browser: a probe runs against a local service that goes
//! down for half a second and comes back as a new version, with the rollout's
//! events recorded as a lab would; then headless Chromium (networking off) opens
//! the report.html it wrote, takes a screenshot and dumps the DOM it built.
//!
//! matrix.html (and `rollprobe compare --format html`) is rendered the same way
//! from real runs of three cases against a local service.
//!
//! Needs Debian's `chromium` at /usr/bin/chromium (.ci/run installs it); the test
//! fails with that instruction when it is missing rather than pass unseen.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use probe_core::{Event, EventKind, Matrix, MatrixRun, Probe, Report, Strategy, Subject};

const CHROMIUM: &str = "/usr/bin/chromium";
const WINDOW: (u32, u32) = (1280, 2000);

/// A service answering its version on one loopback port until stopped.
struct Service {
    stop: Arc<AtomicBool>,
    answer: Arc<Mutex<(&'static str, u16)>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Service {
    fn start(addr: SocketAddr, version: &'static str) -> Service {
        // std sets SO_REUSEADDR: the port can be bound again right after a stop.
        let listener = TcpListener::bind(addr).expect("bind the service's loopback port");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(Mutex::new((version, 200)));
        let (stop2, answer2) = (stop.clone(), answer.clone());
        let thread = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 2048];
                        let mut got = Vec::new();
                        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => got.extend_from_slice(&buf[..n]),
                            }
                        }
                        let (version, status) = *answer2.lock().unwrap();
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{version}",
                            if status == 200 { "OK" } else { "Service Unavailable" },
                            version.len()
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Service {
            stop,
            answer,
            thread: Some(thread),
        }
    }

    /// From now on, answers `version` with `status`, on the same listener.
    fn answer(&self, version: &'static str, status: u16) {
        *self.answer.lock().unwrap() = (version, status);
    }

    /// Stops accepting and closes the port: connections are refused.
    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Chromium headless on `page` with `args`, networking off, in a fresh
/// profile; stdout, bounded to 90 s.
fn chromium(page: &Path, profile: &Path, args: &[String]) -> Vec<u8> {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: this test needs a real browser; install it with `apt-get install -y chromium`"
    );
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            // Any request leaving the page fails instead of reaching out.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", WINDOW.0, WINDOW.1))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s");
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    reader.join().unwrap()
}

/// A headless screenshot of `page`: a PNG of the window's size, not blank.
/// Returns its colours.
fn screenshot_colours(page: &Path, dir: &Path, name: &str) -> BTreeSet<[u8; 3]> {
    let shot = dir.join(format!("{name}.png"));
    chromium(
        page,
        &dir.join(format!("profile-shot-{name}")),
        &[format!("--screenshot={}", shot.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&shot).expect("chromium wrote the screenshot"),
    ));
    let mut reader = decoder.read_info().expect("the screenshot is a PNG");
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((info.width, info.height), WINDOW);
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let colours: BTreeSet<[u8; 3]> = pixels[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    assert!(
        colours.len() > 50,
        "the {name} screenshot has {} colours: blank?",
        colours.len()
    );
    colours
}

/// Text as the DOM serializer writes a text node.
fn as_dom_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_html_shows_every_window_kind_and_version_in_a_real_browser() {
    let dir = temp_dir("report-html");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ip: IpAddr = addr.ip();
    let v1 = Service::start(addr, "v1");
    let probe = Probe::builder(&format!("http://{addr}/test/version"))
        .rate(200)
        .label("html <e2e> & \"quotes\"")
        .out_dir(&dir)
        .start()
        .await
        .unwrap();
    let handle = probe.handle();
    let record = |kind: EventKind, subject: Subject, detail: &str| {
        handle.record(Event::observed(kind, subject, detail))
    };
    record(
        EventKind::PodReady,
        Subject::pod("app-v1", Some(ip)).with_version("v1"),
        "app-v1 v1",
    );
    record(
        EventKind::EndpointAdded,
        Subject::endpoint("app", ip, Some(port)),
        "app",
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    record(EventKind::RolloutStart, Subject::default(), "v1 -> v2");
    record(
        EventKind::PodTerminating,
        Subject::pod("app-v1", Some(ip)),
        "app-v1",
    );
    record(
        EventKind::EndpointRemoved,
        Subject::endpoint("app", ip, Some(port)),
        "app",
    );
    // As in a cluster, the process stops a moment after its pod is marked.
    tokio::time::sleep(Duration::from_millis(20)).await;
    tokio::task::spawn_blocking(move || v1.stop())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let v2 = Service::start(addr, "v2");
    record(
        EventKind::PodReady,
        Subject::pod("app-v2", Some(ip)).with_version("v2"),
        "app-v2 v2",
    );
    record(
        EventKind::EndpointAdded,
        Subject::endpoint("app", ip, Some(port)),
        "app",
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = probe.stop().await.unwrap();
    tokio::task::spawn_blocking(move || v2.stop())
        .await
        .unwrap();
    let summary = report.summary();

    // The run is what the test set up: one refused window between v1 and v2.
    let on_disk = Report::from_json(&std::fs::read_to_string(dir.join("report.json")).unwrap())
        .expect("report.json parses");
    assert_eq!(on_disk, report);
    assert!(!report.downtime.windows.is_empty(), "{summary}");
    assert!(
        report.failures.contains_key("connection_refused"),
        "{summary}"
    );
    let versions: Vec<&str> = report.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v1", "v2"], "{summary}");
    let causes: Vec<String> = report
        .downtime
        .windows
        .iter()
        .filter_map(|w| w.cause.as_ref().map(ToString::to_string))
        .collect();
    assert_eq!(causes.len(), report.downtime.windows.len(), "{summary}");
    assert_eq!(report.per_second.len(), 4, "{summary}");

    // timeline.csv: a header and one row per second.
    let csv = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let mut lines = csv.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("stream,second,sent,ok,connection_refused"),
        "{header}"
    );
    assert!(header.ends_with("versions,p50_ms,p99_ms"), "{header}");
    assert_eq!(lines.count(), report.per_second.len());

    // The file itself: self-contained, under 2 MB, label escaped.
    let page = dir.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.len() < 2_000_000);
    let elsewhere = html.replace(&report.target, "");
    for needle in ["http://", "https://", "src=", "href=", "<script", "<link"] {
        assert!(
            !elsewhere.contains(needle),
            "report.html contains {needle:?}"
        );
    }
    assert!(html.contains("html &lt;e2e&gt; &amp; &quot;quotes&quot;"));

    // The picture: a PNG of the window's size, not blank, with the ok bars'
    // green and the refused bars' vermillion in it.
    let colours = screenshot_colours(&page, &dir, "report");
    assert!(
        colours.contains(&[0x00, 0x9e, 0x73]),
        "no ok bar in the picture"
    );
    assert!(
        colours.contains(&[0xd5, 0x5e, 0x00]),
        "no refused bar in the picture"
    );

    // The DOM the browser built shows every window with its cause, every
    // failure kind and every version of report.json.
    let dom = String::from_utf8(chromium(
        &page,
        &dir.join("profile-dom"),
        &["--dump-dom".to_string()],
    ))
    .unwrap();
    assert!(dom.contains("</table>"), "{dom}");
    for (i, w) in report.downtime.windows.iter().enumerate() {
        let cause = &w.cause.as_ref().unwrap().to_string();
        let row = format!("<td class=\"n\">{}</td>", i + 1);
        assert!(dom.contains(&row), "window #{} has no row", i + 1);
        assert!(
            dom.contains(&format!("<td>{}</td>", as_dom_text(cause))),
            "window #{} has no cause {cause:?} in the DOM",
            i + 1
        );
    }
    for kind in report.failures.keys() {
        assert!(
            dom.contains(&format!("</b> {}</td>", as_dom_text(kind))),
            "{kind}"
        );
        assert!(
            dom.contains(&format!("</b> {}</span>", as_dom_text(kind))),
            "{kind}"
        );
    }
    for v in &report.versions {
        assert!(
            dom.contains(&format!("<td>{}</td>", as_dom_text(&v.version))),
            "{}",
            v.version
        );
    }
    for kind in [
        "rollout_start",
        "pod_terminating",
        "endpoint_removed",
        "pod_ready",
    ] {
        assert!(dom.contains(&format!("<td>{kind}</td>")), "{kind}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// How one run of the matrix test redeploys its local service.
#[derive(Clone, Copy)]
enum Redeploy {
    /// v1 stops, v2 listens 400 ms later: refused in between.
    Recreate,
    /// v2 takes over on the same listener; with `hiccup`, it first answers 503
    /// for 300 ms (an upstream that is not ready).
    Rolling { hiccup: bool },
}

/// One real run: a probe at 100 req/s against a local service redeployed as
/// `how`, with the rollout's pod events recorded as a cluster reports them
/// (one pod before, the new one created before the old one goes when rolling).
async fn matrix_run(dir: &Path, label: &str, how: Redeploy) -> Report {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ip: IpAddr = addr.ip();
    let v1 = Service::start(addr, "v1");
    let probe = Probe::builder(&format!("http://{addr}/test/version"))
        .rate(100)
        .label(label)
        .out_dir(dir)
        .start()
        .await
        .unwrap();
    let handle = probe.handle();
    let pod = |kind: EventKind, name: &str| {
        handle.record(Event::observed(kind, Subject::pod(name, Some(ip)), name))
    };
    pod(EventKind::PodReady, "app-old");
    tokio::time::sleep(Duration::from_millis(600)).await;
    handle.record(Event::observed(
        EventKind::RolloutStart,
        Subject::default(),
        "v1 -> v2",
    ));
    let v2 = match how {
        Redeploy::Recreate => {
            pod(EventKind::PodTerminating, "app-old");
            tokio::task::spawn_blocking(move || v1.stop())
                .await
                .unwrap();
            pod(EventKind::PodDeleted, "app-old");
            tokio::time::sleep(Duration::from_millis(400)).await;
            pod(EventKind::PodCreated, "app-new");
            let v2 = Service::start(addr, "v2");
            pod(EventKind::PodReady, "app-new");
            v2
        }
        Redeploy::Rolling { hiccup } => {
            pod(EventKind::PodCreated, "app-new");
            tokio::time::sleep(Duration::from_millis(200)).await;
            if hiccup {
                v1.answer("v2", 503);
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            v1.answer("v2", 200);
            pod(EventKind::PodReady, "app-new");
            pod(EventKind::PodTerminating, "app-old");
            tokio::time::sleep(Duration::from_millis(100)).await;
            pod(EventKind::PodDeleted, "app-old");
            v1
        }
    };
    handle.record(Event::observed(
        EventKind::RolloutComplete,
        Subject::default(),
        "",
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = probe.stop().await.unwrap();
    tokio::task::spawn_blocking(move || v2.stop())
        .await
        .unwrap();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_html_shows_every_case_kind_and_run_in_a_real_browser() {
    let dir = temp_dir("matrix-html");
    let cases = [
        ("recreate", [Redeploy::Recreate, Redeploy::Recreate]),
        (
            "rolling:1/0",
            [
                Redeploy::Rolling { hiccup: true },
                Redeploy::Rolling { hiccup: false },
            ],
        ),
        (
            "rolling:100%/0%",
            [
                Redeploy::Rolling { hiccup: false },
                Redeploy::Rolling { hiccup: false },
            ],
        ),
    ];
    // The runs, in the folders and with the labels rollprobe matrix gives them.
    let mut matrix = Matrix::default();
    let mut json_paths = Vec::new();
    for (case, runs) in cases {
        let slug = Strategy::parse_case(case).unwrap().slug();
        for (i, how) in runs.into_iter().enumerate() {
            let n = i as u32 + 1;
            let run_dir = dir.join(&slug).join(n.to_string());
            std::fs::create_dir_all(&run_dir).unwrap();
            let report = matrix_run(&run_dir, &format!("{case}#{n}"), how).await;
            assert!(
                report.is_valid(),
                "too loaded a machine to measure: {}",
                report.summary()
            );
            json_paths.push(run_dir.join("report.json"));
            matrix.runs.push(
                MatrixRun::from_report(case, n, &report)
                    .with_report_html(format!("{slug}/{n}/report.html")),
            );
        }
    }
    let summary = matrix.summary_text();
    // The runs are what the test set up.
    let kinds = matrix.kinds();
    // A stopping listener may also reset a connection it had accepted.
    for kind in ["connection_refused", "http_5xx"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}: {summary}");
    }
    for r in &matrix.runs {
        let expected = if r.case == "recreate" { 0 } else { 1 };
        assert_eq!(r.surge_pods_peak, Some(expected), "{summary}");
        assert!(r.rollout_ms.is_some(), "{summary}");
    }
    // rolling:1/0 lost nothing in one of its runs, as rolling:100%/0% did in both: their
    // ranges overlap, so neither is better beyond the run-to-run spread.
    let last = summary.lines().last().unwrap();
    assert!(
        last.starts_with(
            "recommendation: no case is better beyond the run-to-run spread (recreate "
        ),
        "{summary}"
    );

    // matrix.html as rollprobe matrix writes it.
    let page = dir.join("matrix.html");
    probe_core::output::html::write_matrix_html(&page, &matrix, "rollprobe matrix").unwrap();
    // rollprobe compare --format html on the same report.json files.
    let compare = crate::support::ROLLPROBE;
    let o = Command::new(compare)
        .arg("compare")
        .args(&json_paths)
        .args(["--format", "html"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let compare_page = dir.join("compare.html");
    std::fs::write(&compare_page, &o.stdout).unwrap();

    for (page, name) in [(&page, "matrix"), (&compare_page, "compare")] {
        // Self-contained: no address outside the file, links to local pages only.
        let html = std::fs::read_to_string(page).unwrap();
        for needle in ["://", "src=", "<script", "<link", "url(http", "@import"] {
            assert!(!html.contains(needle), "{name}.html contains {needle:?}");
        }
        let colours = screenshot_colours(page, &dir, name);
        assert!(
            colours.contains(&[0x56, 0xb4, 0xe9]),
            "no downtime bar in the {name} picture"
        );
        assert!(
            colours.contains(&[0xd5, 0x5e, 0x00]),
            "no refused bar in the {name} picture"
        );
        let dom = String::from_utf8(chromium(
            page,
            &dir.join(format!("profile-dom-{name}")),
            &["--dump-dom".to_string()],
        ))
        .unwrap();
        assert!(dom.contains("</table>"), "{dom}");
        for (case, _) in cases {
            assert!(
                dom.contains(&format!("<td>{}</td>", as_dom_text(case))),
                "{name}: case {case} has no row"
            );
        }
        for kind in &kinds {
            assert!(
                dom.contains(&format!("</b> {}</span>", as_dom_text(kind))),
                "{name}: kind {kind} not in the legend"
            );
        }
        assert!(
            dom.contains("recommendation: no case is better beyond the run-to-run spread"),
            "{name}: no recommendation"
        );
        // Every run's report.html is linked, and the link leads to the file.
        for (r, json) in matrix.runs.iter().zip(&json_paths) {
            let href = match name {
                "matrix" => r.report_html.clone().unwrap(),
                _ => json.with_file_name("report.html").display().to_string(),
            };
            assert!(
                dom.contains(&format!("href=\"{}\"", as_dom_text(&href))),
                "{name}: no link to {href}"
            );
            let target = if name == "matrix" {
                dir.join(&href)
            } else {
                PathBuf::from(&href)
            };
            assert!(target.is_file(), "{} is missing", target.display());
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real `rollprobe matrix` in the lab writes matrix.html beside matrix.csv,
/// linking every run's report.html, and JUnit with one testsuite per run.
#[test]
#[cfg_attr(not(netns_tests), ignore = "needs root and ROLLPROBE_NETNS_TESTS=1")]
fn lab_matrix_writes_matrix_html_and_junit_per_run() {
    let dir = temp_dir("lab-matrix-html");
    let out = dir.join("runs");
    let junit = dir.join("junit.xml");
    let manifest = format!("{}/examples/seed/readiness.yaml", crate::support::REPO);
    let o = crate::support::rollprobe()
        .args(["matrix", "--lab", "-f", &manifest])
        .args(["--deployment", "backend-deployment"])
        .args(["--case", "recreate", "--case", "rolling:100%/0%"])
        .args(["--trigger", "image=shop/backend:v2", "--rate", "50"])
        .args(["--settle", "2s", "--max-failures", "0", "--quiet"])
        .arg("--out")
        .arg(&out)
        .arg("--junit")
        .arg(&junit)
        .output()
        .expect("rollprobe matrix runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    // Recreate loses requests: the gate says so, naming the run.
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains("recreate#1: threshold breached"),
        "{stderr}"
    );
    assert!(
        stdout
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("recommendation: rolling:100%/0%"),
        "{stdout}"
    );

    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    for name in ["recreate#1", "rolling:100%/0%#1"] {
        assert!(
            xml.contains(&format!("<testsuite name=\"{name}\"")),
            "{xml}"
        );
    }
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");

    let csv = std::fs::read_to_string(out.join("matrix.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let surge = header.iter().position(|h| *h == "surge_pods_peak").unwrap();
    let peaks: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(surge).unwrap())
        .collect();
    // 2 replicas: Recreate none above, maxSurge 100% both new pods at once.
    assert_eq!(peaks, ["0", "2"], "{csv}");

    let page = out.join("matrix.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for needle in ["://", "src=", "<script", "<link"] {
        assert!(!html.contains(needle), "matrix.html contains {needle:?}");
    }
    screenshot_colours(&page, &dir, "lab-matrix");
    let dom = String::from_utf8(chromium(
        &page,
        &dir.join("profile-dom-lab"),
        &["--dump-dom".to_string()],
    ))
    .unwrap();
    for case in ["recreate", "rolling:100%/0%"] {
        assert!(dom.contains(&format!("<td>{case}</td>")), "{case}");
    }
    let report =
        Report::from_json(&std::fs::read_to_string(out.join("recreate/1/report.json")).unwrap())
            .unwrap();
    for kind in report.failures.keys() {
        assert!(dom.contains(&format!("</b> {kind}</span>")), "{kind}");
    }
    for href in [
        "recreate/1/report.html",
        "rolling-100pct-0pct/1/report.html",
    ] {
        assert!(dom.contains(&format!("href=\"{href}\"")), "{href}");
        assert!(out.join(href).is_file(), "{href}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
