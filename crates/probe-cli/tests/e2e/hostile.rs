//! Real misbehaving servers on loopback, each probed by the `rollprobe` binary: none
//! may crash it, hang it or blow up its memory, and each must end in one stable,
//! named kind (the README's table of failure kinds).
//!
//! All the cases run at once, each in its own thread with its own server and child,
//! so the suite takes about as long as its slowest case (a few seconds).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{read_json, rollprobe, serve, temp_dir, Behaviour};

/// The peak resident memory a child run may reach; rollprobe needs a small fraction.
const MAX_PEAK_RSS_KIB: u64 = 200 * 1024;

/// A run takes 1 s plus at most the 2 s timeout of its last requests; anything far
/// beyond that is a hang.
const HANG_AFTER: Duration = Duration::from_secs(20);

/// The first bytes of a TLS 1.2 ServerHello record: what a TLS server's bytes look
/// like to a plain-HTTP client.
const SERVER_HELLO: &[u8] = &[
    0x16, 0x03, 0x03, 0x00, 0x4a, 0x02, 0x00, 0x00, 0x46, 0x03, 0x03, 0x5f, 0x1a, 0x2b, 0x3c, 0x4d,
    0x5e, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09, 0x1a, 0x2b, 0x3c, 0x4d,
    0x5e, 0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x00, 0xc0, 0x2f, 0x00,
];

struct Case {
    name: &'static str,
    behaviour: Behaviour,
    https: bool,
    /// The one kind every request must end in.
    kind: &'static str,
}

fn cases() -> Vec<Case> {
    let case = |name, behaviour, kind| Case {
        name,
        behaviour,
        https: false,
        kind,
    };
    vec![
        case(
            "garbage bytes",
            Behaviour::ReadThenSend(b"\x00\xff\x13garbage \x01\x02 not http\r\n\r\n"),
            "invalid_response",
        ),
        case(
            "HTTP/0.9 (a body, no status line)",
            Behaviour::ReadThenSend(b"v1\n"),
            "invalid_response",
        ),
        case(
            "TLS bytes to an http:// request",
            Behaviour::ReadThenSend(SERVER_HELLO),
            "invalid_response",
        ),
        Case {
            name: "https:// to a plain-HTTP server",
            behaviour: Behaviour::ReadThenSend(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            ),
            https: true,
            kind: "tls",
        },
        case(
            "a 10 MB header",
            Behaviour::HugeHeader(10 << 20),
            "invalid_response",
        ),
        case(
            "an endless body",
            Behaviour::EndlessBody { chunked: false },
            "response_timeout",
        ),
        case(
            "an endless chunked body",
            Behaviour::EndlessBody { chunked: true },
            "response_timeout",
        ),
        case(
            "10,000 `100 Continue`, then 200",
            Behaviour::Continues {
                count: 10_000,
                then_ok: true,
            },
            "ok",
        ),
        case(
            "10,000 `100 Continue`, then nothing",
            Behaviour::Continues {
                count: 10_000,
                then_ok: false,
            },
            "response_timeout",
        ),
        case(
            "headers dribbled one per second",
            Behaviour::DribbleHeaders,
            "response_timeout",
        ),
        case(
            "accept, never read",
            Behaviour::NeverRead,
            "response_timeout",
        ),
        case(
            "RST after the response head",
            Behaviour::ResetAfterHeaders,
            "connection_reset",
        ),
        case(
            "half-close (FIN before an answer)",
            Behaviour::HalfClose,
            "connection_closed",
        ),
    ]
}

/// What one run came to.
struct Seen {
    status: Option<i32>,
    stderr: String,
    sent: u64,
    ok: u64,
    failures: BTreeMap<String, u64>,
    peak_rss_kib: u64,
}

/// The child's peak resident set so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn probe(case: &Case, slot: usize) -> Seen {
    let server = serve(case.behaviour.clone());
    let url = format!(
        "{}://{}/test/version",
        if case.https { "https" } else { "http" },
        server.addr
    );
    let out = temp_dir(&format!("hostile-{slot}"));
    let mut child = rollprobe()
        .args([
            "run",
            &url,
            "--rate",
            "20",
            "--duration",
            "1s",
            "--timeout",
            "2s",
        ])
        .args(["--format", "json", "--quiet", "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rollprobe starts");
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        // VmHWM is the peak so far: the last reading before the exit is the run's peak,
        // give or take the final 10 ms.
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().expect("waiting for rollprobe") {
            break status;
        }
        if started.elapsed() > HANG_AFTER {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{}: rollprobe hung for {HANG_AFTER:?} against {url}",
                case.name
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    drop(server);
    let path = out.join("report.json");
    if !path.is_file() {
        panic!("{}: no report.json (exit {status}): {stderr}", case.name);
    }
    let report = read_json(&path);
    let _ = std::fs::remove_dir_all(&out);
    let failures = report["failures"]
        .as_object()
        .expect("report.json has failures")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("a count")))
        .collect();
    Seen {
        status: status.code(),
        stderr,
        sent: report["totals"]["sent"].as_u64().expect("totals.sent"),
        ok: report["totals"]["ok"].as_u64().expect("totals.ok"),
        failures,
        peak_rss_kib: peak,
    }
}

#[test]
fn every_hostile_server_ends_in_its_named_kind_without_a_crash_a_hang_or_a_memory_blowup() {
    let cases = cases();
    let seen: Vec<Seen> = thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(slot, case)| scope.spawn(move || probe(case, slot)))
            .collect();
        runs.into_iter()
            .map(|r| r.join().expect("a case panicked"))
            .collect()
    });

    let mut wrong = Vec::new();
    for (case, seen) in cases.iter().zip(&seen) {
        let kinds: Vec<String> = seen
            .failures
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!(
            "{:<40} exit {:?}  sent {}  ok {}  {}  peak {} KiB",
            case.name,
            seen.status,
            seen.sent,
            seen.ok,
            kinds.join(" "),
            seen.peak_rss_kib
        );
        let expected: BTreeMap<String, u64> = if case.kind == "ok" {
            BTreeMap::new()
        } else {
            BTreeMap::from([(case.kind.to_string(), seen.sent)])
        };
        let expected_ok = if case.kind == "ok" { seen.sent } else { 0 };
        let mut problems = Vec::new();
        if seen.status != Some(0) {
            problems.push(format!("exit {:?}: {}", seen.status, seen.stderr.trim()));
        }
        if seen.sent != 20 {
            problems.push(format!("sent {} requests, not 20", seen.sent));
        }
        if seen.ok != expected_ok || seen.failures != expected {
            problems.push(format!(
                "ok {} and {:?}, expected every request {}",
                seen.ok, seen.failures, case.kind
            ));
        }
        if seen.peak_rss_kib == 0 || seen.peak_rss_kib > MAX_PEAK_RSS_KIB {
            problems.push(format!(
                "peak RSS {} KiB (bound {MAX_PEAK_RSS_KIB} KiB)",
                seen.peak_rss_kib
            ));
        }
        if !problems.is_empty() {
            wrong.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}
