//! The in-cluster Job's probe arguments run the real binary: deploy/kubernetes/job.yaml's
//! init container args, with `$(NODE_NAME)` expanded as the kubelet does, the Service URL
//! replaced by a local server, `--duration` by 1s and the volume's mount path by a
//! temporary folder. `--watch` talks to a local stand-in for the API server (found through
//! KUBECONFIG, as kubectl finds a cluster) that answers with the recorded responses of
//! crates/probe-kube/tests/fixtures/rolling; it must see the watches the Role allows.
//! Nothing else of the args is changed: if they do not parse, this test fails.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::support::{read_json, rollprobe, serve, temp_dir, Behaviour};
use rollprobe::kube::k8s_openapi::api::batch::v1::Job;
use serde_json::Value;

/// What the downward API gives `NODE_NAME` in this test.
const NODE: &str = "kind-worker";

fn repo() -> PathBuf {
    PathBuf::from(crate::support::REPO)
}

/// Expands `$(VAR)` from `env` as the kubelet does in a container's args.
fn expand(arg: &str, env: &[(String, String)]) -> String {
    env.iter().fold(arg.to_string(), |a, (k, v)| {
        a.replace(&format!("$({k})"), v)
    })
}

/// A stand-in for the API server on 127.0.0.1: the recorded GETs and lists of the
/// "rolling" scenario, and watches that stay open (no events) until the client goes.
/// Records `(path, watch)` of every request.
struct ApiStandIn {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, bool)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ApiStandIn {
    fn start() -> ApiStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = crate::support::accept_until_stopped(
            listener,
            stop.clone(),
            Arc::default(),
            move |stream| answer(stream, &seen2, &stop2),
        );
        ApiStandIn {
            addr,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<(String, bool)> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn fixture(name: &str) -> Option<String> {
    let path = repo()
        .join("crates/probe-kube/tests/fixtures/rolling")
        .join(name);
    std::fs::read_to_string(path).ok()
}

/// Answers one request (then closes), or holds a watch open for at most 60 s.
fn answer(mut stream: TcpStream, seen: &Mutex<Vec<(String, bool)>>, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if Instant::now() < deadline && !stop.load(Ordering::SeqCst) => {}
            Err(_) => return,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let target = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let watch = query.split('&').any(|kv| kv == "watch=true");
    seen.lock().unwrap().push((path.to_string(), watch));
    if watch {
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
            match stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
        return;
    }
    let last = path.rsplit('/').next().unwrap_or("");
    let body = match path {
        "/version" => Some(r#"{"major":"1","minor":"33","gitVersion":"v1.33.1"}"#.to_string()),
        "/apis/apps/v1/namespaces/shop/deployments/backend" => fixture("deployment-backend.json"),
        "/api/v1/namespaces/shop/services/backend" => fixture("service-backend.json"),
        _ if path.contains("/namespaces/shop/") => fixture(&format!("{last}.list.json")),
        _ => None,
    };
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => (
            "404 Not Found",
            r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#
                .to_string(),
        ),
    };
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
}

fn kubeconfig(dir: &Path, api: SocketAddr) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: http://{api}\n\
             users:\n- name: local\n  user: {{}}\ncontexts:\n- name: local\n  context:\n    cluster: local\n    user: local\n\
             current-context: local\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_jobs_probe_args_run_the_real_binary() {
    let text = std::fs::read_to_string(repo().join("deploy/kubernetes/job.yaml")).unwrap();
    let job: Job = yaml_serde::from_str(&text).unwrap();
    let spec = job.spec.unwrap().template.spec.unwrap();
    let probe = &spec.init_containers.unwrap()[0];
    let env: Vec<(String, String)> = probe
        .env
        .iter()
        .flatten()
        .map(|e| {
            let from_node = e
                .value_from
                .as_ref()
                .and_then(|v| v.field_ref.as_ref())
                .is_some_and(|f| f.field_path == "spec.nodeName");
            let value = if from_node {
                NODE.to_string()
            } else {
                e.value.clone().expect("a plain value")
            };
            (e.name.clone(), value)
        })
        .collect();
    let mount = &probe.volume_mounts.as_ref().unwrap()[0].mount_path;

    let target = serve(Behaviour::Respond {
        status: 200,
        headers: vec![("x-pod-name".into(), "backend-a".into())],
        body: "v1".into(),
    });
    let api = ApiStandIn::start();
    let dir = temp_dir("deploy-args");
    let volume = dir.join("results");
    let args: Vec<String> = probe
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, &env))
        .map(|a| {
            if a.starts_with("http://") {
                target.url()
            } else if a.starts_with("--duration=") {
                "--duration=1s".into()
            } else {
                a.replace(&format!("={mount}/"), &format!("={}/", volume.display()))
            }
        })
        .collect();
    assert!(
        args.contains(&format!("--out={}/job-{NODE}", volume.display())),
        "{args:?}"
    );

    let o = rollprobe()
        .args(&args)
        .env("KUBECONFIG", kubeconfig(&dir, api.addr))
        .output()
        .unwrap();
    let requests = api.finish();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // --format json: report.json on stdout, the same as in the run folder.
    let stdout: Value = serde_json::from_slice(&o.stdout).expect("stdout is report.json");
    let folder = volume.join(format!("job-{NODE}"));
    assert_eq!(stdout, read_json(&folder.join("report.json")));
    assert!(folder.join("samples.csv").is_file());
    assert_eq!(stdout["label"], format!("job-{NODE}"));
    let sent = stdout["totals"]["sent"].as_u64().unwrap();
    assert!(sent >= 50, "{stdout}");
    assert_eq!(stdout["totals"]["ok"].as_u64(), Some(sent), "{stdout}");
    // --connection both: a fresh and a keep-alive stream.
    let connections: BTreeSet<&str> = stdout["streams"]
        .as_array()
        .expect("report.json has streams")
        .iter()
        .map(|s| s["connection"].as_str().unwrap())
        .collect();
    assert_eq!(connections, BTreeSet::from(["fresh", "keepalive"]));
    // --pod-from header:x-pod-name.
    assert_eq!(stdout["pods"][0]["pod"], "backend-a", "{stdout}");

    // --watch, --service and --namespace: the watches the Role allows, in `shop`.
    let watched: BTreeSet<&str> = requests
        .iter()
        .filter(|(_, watch)| *watch)
        .map(|(path, _)| path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        watched,
        BTreeSet::from([
            "deployments",
            "endpointslices",
            "pods",
            "replicasets",
            "services"
        ]),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .all(|(p, _)| p == "/version" || p.contains("/namespaces/shop/")),
        "{requests:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
