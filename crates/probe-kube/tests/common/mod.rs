//! A tiny Kubernetes API server stand-in on 127.0.0.1: answers kube's real client with
//! recorded bodies (tests/fixtures), records every request, and plays watch streams.
//!
//! The recorded bodies are hand-written in the Kubernetes JSON wire format to match the
//! API's shapes (tests/fixtures/gen_fixtures.py says how); no cluster produced them.
//!
//! Watch lines are released on a shared clock by their resourceVersion (one slot of
//! [`STEP`] per version after [`BASE_RV`]), as etcd orders them, so that events from
//! different watches arrive in the recorded order. A watch resumed from a resourceVersion
//! gets only the lines after it, as from the real API server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

/// The resourceVersion of the lists; watch lines count from here.
pub const BASE_RV: u64 = 1000;
/// Time between two consecutive resourceVersions on the shared clock.
pub const STEP: Duration = Duration::from_millis(100);

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The `Authorization` header, to check which credentials the client sent.
    pub authorization: Option<String>,
    pub body: String,
}

impl Request {
    pub fn is_watch(&self) -> bool {
        self.query.get("watch").map(String::as_str) == Some("true")
    }
    /// The last path segment: `pods`, `deployments`, `backend`...
    pub fn last(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }
}

/// What to answer.
pub enum Reply {
    Json(u16, String),
    /// A watch stream: `lines` (full `{"type":..,"object":..}` JSON), sent after `delay`
    /// (before the headers), closed abruptly after the line with `drop_after_rv`.
    Watch {
        lines: Vec<String>,
        delay: Duration,
        drop_after_rv: Option<u64>,
    },
}

pub type Handler = Arc<dyn Fn(&Request, usize) -> Reply + Send + Sync>;

pub struct MockApi {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
    release: watch::Sender<Option<Instant>>,
}

impl MockApi {
    pub async fn start(handler: Handler) -> MockApi {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let (release, release_rx) = watch::channel(None);
        let reqs = requests.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let (h, r, rx) = (handler.clone(), reqs.clone(), release_rx.clone());
                tokio::spawn(async move {
                    let _ = serve(sock, h, r, rx).await;
                });
            }
        });
        MockApi {
            addr,
            requests,
            release,
        }
    }

    /// Starts the shared clock of the watch streams.
    pub fn release(&self) {
        let _ = self.release.send(Some(Instant::now()));
    }

    /// A kube client for this server: plain http, no auth.
    pub fn client(&self) -> kube::Client {
        let mut config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        config.default_namespace = "shop".into();
        kube::Client::try_from(config).unwrap()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn read_request(sock: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let header_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let mut headers = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[header_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect();
    Some(Request {
        method,
        path: path.to_string(),
        query,
        content_type: headers.get("content-type").cloned(),
        authorization: headers.get("authorization").cloned(),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn rv_of(line: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v.pointer("/object/metadata/resourceVersion")
        .and_then(|r| r.as_str())
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

async fn serve(
    mut sock: TcpStream,
    handler: Handler,
    reqs: Arc<Mutex<Vec<Request>>>,
    mut release: watch::Receiver<Option<Instant>>,
) -> std::io::Result<()> {
    let Some(req) = read_request(&mut sock).await else {
        return Ok(());
    };
    let nth = {
        let mut r = reqs.lock().unwrap();
        let nth = r
            .iter()
            .filter(|o| {
                o.method == req.method && o.path == req.path && o.is_watch() == req.is_watch()
            })
            .count();
        r.push(req.clone());
        nth
    };
    match handler(&req, nth) {
        Reply::Json(code, body) => {
            let reason = match code {
                200 => "OK",
                201 => "Created",
                403 => "Forbidden",
                404 => "Not Found",
                410 => "Gone",
                _ => "Error",
            };
            let head = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(body.as_bytes()).await?;
            sock.shutdown().await?;
        }
        Reply::Watch {
            lines,
            delay,
            drop_after_rv,
        } => {
            tokio::time::sleep(delay).await;
            sock.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            )
            .await?;
            sock.flush().await?;
            let from: u64 = req
                .query
                .get("resourceVersion")
                .and_then(|r| r.parse().ok())
                .unwrap_or(0);
            let t0 = loop {
                if let Some(t) = *release.borrow() {
                    break t;
                }
                if release.changed().await.is_err() {
                    return Ok(());
                }
            };
            for line in lines {
                let rv = rv_of(&line);
                if rv != 0 && rv <= from {
                    continue;
                }
                if let Some(d) = drop_after_rv {
                    if rv > d {
                        // Cut the connection mid-stream, without the final chunk.
                        return Ok(());
                    }
                }
                let at = t0 + STEP * u32::try_from(rv.saturating_sub(BASE_RV)).unwrap();
                tokio::time::sleep_until(at).await;
                let chunk = format!("{}\n", line);
                sock.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                    .await?;
                sock.flush().await?;
            }
            // Stay open like a real watch until the client goes away (bounded).
            let mut b = [0u8; 64];
            let _ = tokio::time::timeout(Duration::from_secs(30), sock.read(&mut b)).await;
        }
    }
    Ok(())
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

pub fn watch_lines(rel: &str) -> Vec<String> {
    fixture(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

pub const VERSION: &str = r#"{"major":"1","minor":"33","emulationMajor":"1","emulationMinor":"33","minCompatibilityMajor":"1","minCompatibilityMinor":"32","gitVersion":"v1.33.1","gitCommit":"8adc0f041b8e7ad1d30e29cc59c6ae7a15e19828","gitTreeState":"clean","buildDate":"2025-05-15T08:19:08Z","goVersion":"go1.24.2","compiler":"gc","platform":"linux/amd64"}"#;

/// The "rolling" scenario: GETs, lists and watches from tests/fixtures/rolling.
pub fn rolling(req: &Request, _nth: usize) -> Reply {
    let p = req.path.as_str();
    if p == "/version" {
        return Reply::Json(200, VERSION.to_string());
    }
    if req.method == "GET" && p == "/apis/apps/v1/namespaces/shop/deployments/backend" {
        return Reply::Json(200, fixture("rolling/deployment-backend.json"));
    }
    if req.method == "GET" && p == "/api/v1/namespaces/shop/services/backend" {
        return Reply::Json(200, fixture("rolling/service-backend.json"));
    }
    let lists = [
        "/apis/apps/v1/namespaces/shop/deployments",
        "/apis/apps/v1/namespaces/shop/replicasets",
        "/api/v1/namespaces/shop/pods",
        "/api/v1/namespaces/shop/services",
        "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices",
    ];
    if req.method == "GET" && lists.contains(&p) {
        let res = req.last().to_string();
        return if req.is_watch() {
            Reply::Watch {
                lines: watch_lines(&format!("rolling/{res}.watch.jsonl")),
                delay: Duration::ZERO,
                drop_after_rv: None,
            }
        } else {
            Reply::Json(200, fixture(&format!("rolling/{res}.list.json")))
        };
    }
    not_found(req)
}

pub fn not_found(req: &Request) -> Reply {
    Reply::Json(
        404,
        format!(
            r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"the server could not find the requested resource ({})","reason":"NotFound","details":{{}},"code":404}}"#,
            req.path
        ),
    )
}
