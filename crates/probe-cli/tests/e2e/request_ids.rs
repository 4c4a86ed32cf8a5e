//! Request ids, as the server sees them: a real loopback server records the
//! `x-request-id` of every request it receives, and must have received exactly the ids of
//! samples.csv's `request_id` column (`<run id>-<stream>-<seq>`, the run id from
//! run.json), once each; with `--no-request-id` it receives none.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::support::{read_json, rollprobe, temp_dir};
use rollprobe::{read_samples, Outcome};

/// A loopback HTTP/1.1 server (keep-alive or not, as the client asks) that answers `v1`
/// and records each request's `x-request-id` (`None` when it had none).
struct RecordingServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl RecordingServer {
    fn start() -> RecordingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = crate::support::accept_until_stopped(
            listener,
            stop.clone(),
            Arc::default(),
            move |stream| serve(stream, &seen2, &stop2),
        );
        RecordingServer {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/test/version", self.addr)
    }

    /// Stops the server; returns what it recorded.
    fn finish(mut self) -> Vec<Option<String>> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Serves the requests of one connection until the client closes it, asks to close, or
/// the server stops (reads time out every 100 ms to notice).
fn serve(mut stream: TcpStream, seen: &Mutex<Vec<Option<String>>>, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if !stop.load(Ordering::SeqCst) => {}
                Err(_) => return,
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let mut id = None;
        let mut close = false;
        for line in head.lines().skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "x-request-id" => id = Some(value.trim().to_string()),
                "connection" => close = value.trim().eq_ignore_ascii_case("close"),
                _ => {}
            }
        }
        seen.lock().unwrap().push(id);
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nv1";
        if stream.write_all(answer).is_err() || close {
            return;
        }
    }
}

/// Runs the real binary against `server` for one second at 100 req/s, plus `extra` args.
fn run(server: &RecordingServer, out: &Path, extra: &[&str]) {
    let o = rollprobe()
        .args(["run", &server.url(), "--duration", "1s", "--rate", "100"])
        .args(["--quiet", "--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_server_receives_exactly_the_request_ids_of_samples_csv() {
    let dir = temp_dir("request-ids");
    for (connection, stream) in [("fresh", "local-fresh"), ("keepalive", "local-keepalive")] {
        let server = RecordingServer::start();
        let out = dir.join(connection);
        run(&server, &out, &["--connection", connection]);
        let received = server.finish();

        let run_id = read_json(&out.join("run.json"))["run_id"]
            .as_str()
            .expect("run.json has run_id")
            .to_string();
        assert!(!run_id.is_empty() && !run_id.contains(','), "{run_id:?}");
        let recorded = read_samples(&out).unwrap().samples;
        assert!(recorded.len() >= 50, "{} samples", recorded.len());
        let mut in_csv = BTreeMap::new();
        for s in &recorded {
            assert_eq!(s.outcome, Outcome::Ok, "{s:?}");
            assert_eq!(s.stream, stream, "{s:?}");
            let id = s.request_id.clone().expect("every sent request has an id");
            assert_eq!(id, format!("{run_id}-{stream}-{}", s.seq), "{s:?}");
            assert!(
                in_csv.insert(id, s.seq).is_none(),
                "an id twice in samples.csv"
            );
        }

        let received: Vec<String> = received
            .into_iter()
            .map(|id| id.expect("a request without x-request-id"))
            .collect();
        let unique: BTreeSet<&String> = received.iter().collect();
        assert_eq!(
            unique.len(),
            received.len(),
            "the server received an id twice"
        );
        assert_eq!(received.len(), in_csv.len(), "{connection}: count");
        let in_csv: BTreeSet<&String> = in_csv.keys().collect();
        assert_eq!(
            unique, in_csv,
            "{connection}: the ids received vs samples.csv"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn no_request_id_sends_none() {
    let dir = temp_dir("no-request-id");
    let server = RecordingServer::start();
    let out = dir.join("run");
    run(&server, &out, &["--no-request-id"]);
    let received = server.finish();
    let recorded = read_samples(&out).unwrap().samples;
    assert!(received.len() >= 50, "{} requests", received.len());
    assert_eq!(received.len(), recorded.len());
    assert!(
        received.iter().all(Option::is_none),
        "the server received an x-request-id: {:?}",
        received.iter().flatten().next()
    );
    assert!(recorded.iter().all(|s| s.request_id.is_none()));
    std::fs::remove_dir_all(&dir).unwrap();
}
