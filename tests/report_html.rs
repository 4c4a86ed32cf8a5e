//! report.html in a real browser: a probe runs against a local service that goes
//! down for half a second and comes back as a new version, with the rollout's
//! events recorded as a lab would; then headless Chromium (networking off) opens
//! the report.html it wrote, takes a screenshot and dumps the DOM it built.
//!
//! Needs Debian's `chromium` at /usr/bin/chromium (.ci/run installs it); the test
//! fails with that instruction when it is missing rather than pass unseen.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use probe_core::{Event, EventKind, Probe, Report, Subject};

const CHROMIUM: &str = "/usr/bin/chromium";
const WINDOW: (u32, u32) = (1280, 2000);

/// A service answering its version on one loopback port until stopped.
struct Service {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Service {
    fn start(addr: SocketAddr, version: &'static str) -> Service {
        // std sets SO_REUSEADDR: the port can be bound again right after a stop.
        let listener = TcpListener::bind(addr).expect("bind the service's loopback port");
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
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
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{version}",
                            version.len()
                        );
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        Service {
            stop,
            thread: Some(thread),
        }
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
    let causes: Vec<&str> = report
        .downtime
        .windows
        .iter()
        .filter_map(|w| w.cause.as_deref())
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
    let shot = dir.join("report.png");
    chromium(
        &page,
        &dir.join("profile-shot"),
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
        "the screenshot has {} colours: blank?",
        colours.len()
    );
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
        let cause = w.cause.as_deref().unwrap();
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
