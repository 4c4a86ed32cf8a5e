//! `rollprobe run` reaching a service as users do: `--cacert`, the system's store through
//! `SSL_CERT_FILE`, `--insecure` said in the summary and run.json, `--resolve`, `-H`
//! replacing a default header, bad values refused before probing, and a real nginx's
//! virtual host reached by its address with `-H 'Host: a.test'`. Every server is a real
//! one on loopback.

#[path = "../../../probe-core/tests/reach_servers/mod.rs"]
mod servers;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use servers::Ca;

/// The `rollprobe` binary under test, as an async command.
fn rollprobe() -> tokio::process::Command {
    tokio::process::Command::new(crate::support::ROLLPROBE)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("rollprobe-reach-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A short run (10 requests) of `url` with `extra` options, its files in `out`.
async fn run(url: &str, out: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = rollprobe();
    command
        .args([
            "run",
            url,
            "--rate",
            "10",
            "--duration",
            "1s",
            "--timeout",
            "2s",
        ])
        .args(["--connect-timeout", "2s", "--out"])
        .arg(out)
        .args(extra);
    for (k, v) in env {
        command.env(k, v);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("a 1 s run ends")
        .unwrap();
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    output
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// sent and ok of a run's report.json.
fn sent_ok(out: &Path) -> (u64, u64) {
    let report = json(&out.join("report.json"));
    let totals = &report["totals"];
    (
        totals["sent"].as_u64().unwrap(),
        totals["ok"].as_u64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_through_cacert_the_system_store_or_insecure() {
    let ca = Ca::new();
    let server = servers::https(ca.issue(&["localhost"])).await;
    let dir = temp_dir("ca");
    let ca_file = ca.write_pem(&dir);
    let url = format!("https://localhost:{}/", server.addr.port());
    let ca_arg = ca_file.to_str().unwrap();

    let out = dir.join("cacert");
    let o = run(&url, &out, &["--cacert", ca_arg], &[]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (sent, ok) = sent_ok(&out);
    assert!(sent > 0 && ok == sent, "{}", stdout(&o));
    let recorded = json(&out.join("run.json"));
    assert_eq!(recorded["config"]["cacert"], ca_arg);
    assert!(recorded["config"].get("insecure").is_none(), "{recorded}");

    let out = dir.join("system");
    run(&url, &out, &[], &[("SSL_CERT_FILE", &ca_file)]).await;
    let (sent, ok) = sent_ok(&out);
    assert!(sent > 0 && ok == sent, "the system store's file is trusted");

    let out = dir.join("untrusted");
    let o = run(&url, &out, &[], &[]).await;
    let (sent, ok) = sent_ok(&out);
    assert_eq!(ok, 0);
    let line = format!(
        "tls x {sent}: certificate from an unknown issuer (pass --cacert FILE, or --insecure)"
    );
    assert!(stdout(&o).contains(&line), "{}", stdout(&o));

    let out = dir.join("insecure");
    let o = run(&url, &out, &["--insecure"], &[]).await;
    let (sent, ok) = sent_ok(&out);
    assert!(sent > 0 && ok == sent);
    let first = stdout(&o).lines().next().unwrap_or_default().to_string();
    assert!(first.contains("TLS not verified (--insecure)"), "{first}");
    assert_eq!(json(&out.join("run.json"))["config"]["insecure"], true);
    assert_eq!(json(&out.join("report.json"))["config"]["insecure"], true);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_and_header_options_reach_a_virtual_host_by_its_address() {
    let ca = Ca::new();
    let tls = servers::https(ca.issue(&["a.test"])).await;
    let dir = temp_dir("resolve");
    let ca_file = ca.write_pem(&dir);
    let port = tls.addr.port();
    let rule = format!("a.test:{port}:127.0.0.1");
    let out = dir.join("resolve");
    let url = format!("https://a.test:{port}/");
    let extra = ["--resolve", &rule, "--cacert", ca_file.to_str().unwrap()];
    run(&url, &out, &extra, &[]).await;
    let (sent, ok) = sent_ok(&out);
    assert!(sent > 0 && ok == sent);
    let seen = tls.seen();
    assert_eq!(seen.len() as u64, sent);
    assert!(seen.iter().all(|s| s.sni.as_deref() == Some("a.test")));
    let host = format!("a.test:{port}");
    assert!(seen
        .iter()
        .all(|s| s.header_values("host") == [host.as_str()]));
    assert_eq!(
        json(&out.join("run.json"))["config"]["resolve"],
        serde_json::json!([rule])
    );

    let plain = servers::plain().await;
    let out = dir.join("headers");
    let url = format!("http://{}/", plain.addr);
    run(
        &url,
        &out,
        &["-H", "Host: a.test", "-H", "User-Agent:"],
        &[],
    )
    .await;
    let seen = plain.seen();
    assert!(!seen.is_empty());
    for s in &seen {
        assert_eq!(s.header_values("host"), ["a.test"], "{}", s.head);
        assert!(s.header_values("user-agent").is_empty(), "{}", s.head);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_reach_options_are_one_line_and_exit_2_before_any_request() {
    let server = servers::plain().await;
    let dir = temp_dir("bad");
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let url = format!("http://{}/", server.addr);
    let missing = dir.join("missing.pem");
    let cases: [(&[&str], &str); 5] = [
        (&["--resolve", "a.test:80"], "HOST:PORT:ADDR"),
        (&["--resolve", "a.test:80:localhost"], "HOST:PORT:ADDR"),
        (&["--resolve", "a.test:99999:127.0.0.1"], "HOST:PORT:ADDR"),
        (&["--cacert", empty.to_str().unwrap()], "no PEM certificate"),
        (&["--cacert", missing.to_str().unwrap()], "cannot read it"),
    ];
    for (extra, says) in cases {
        let o = run(&url, &dir.join("out"), extra, &[]).await;
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
    }
    assert!(server.seen().is_empty(), "nothing was probed");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A real nginx, run as a non-daemon child with its own prefix, killed when dropped.
struct Nginx {
    child: std::process::Child,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with a default server (404) and a `server_name a.test` virtual host (200
/// `v1`) on one loopback port.
async fn nginx(dir: &Path) -> Nginx {
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is not installed: .ci/run installs nginx-light");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
           server {{ listen 127.0.0.1:{port} default_server; server_name _; return 404 \"default\"; }}\n\
           server {{ listen 127.0.0.1:{port}; server_name a.test;\n\
             location / {{ default_type text/plain; return 200 \"v1\"; }} }}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = std::process::Command::new(binary)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return nginx;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not listen on {port} within 5 s: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_header_reaches_nginx_s_virtual_host() {
    let dir = temp_dir("nginx");
    let nginx = nginx(&dir).await;
    let url = format!("http://127.0.0.1:{}/", nginx.port);

    let out = dir.join("vhost");
    let o = run(&url, &out, &["-H", "Host: a.test"], &[]).await;
    let (sent, ok) = sent_ok(&out);
    assert!(sent > 0 && ok == sent, "{}", stdout(&o));
    let report = json(&out.join("report.json"));
    assert_eq!(report["versions"][0]["version"], "v1", "{report}");

    // Without the header nginx's default server answers: the virtual host was chosen
    // by the one Host header sent.
    let out = dir.join("default");
    run(&url, &out, &[], &[]).await;
    let report = json(&out.join("report.json"));
    let sent = report["totals"]["sent"].as_u64().unwrap();
    assert_eq!(report["failures"]["unexpected_status"], sent, "{report}");
    drop(nginx);
    std::fs::remove_dir_all(&dir).unwrap();
}
