//! Reaching a service as users do, through the library: a private CA trusted with
//! `cacert`, refused without it (and the reason named), `insecure`, a certificate for
//! another name, `resolve` keeping the URL's name for Host and SNI, and the user's
//! headers replacing the defaults. Every server is a real one on loopback.

#[path = "reach_servers/mod.rs"]
mod servers;

use std::sync::Arc;
use std::time::Duration;

use probe_core::{Attempt, Executor, Outcome, Probe, ProbeBuilder, TlsReason};
use servers::Ca;

/// One request with the builder's configuration.
async fn one(builder: ProbeBuilder) -> Attempt {
    let config = builder.config().expect("a valid configuration").clone();
    let attempt = Executor::new(Arc::new(config)).execute(None).await;
    assert!(attempt.total_ms < 10_000.0, "bounded by the timeouts");
    attempt
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-reach-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The TLS reason of a failed attempt, read back from its error text as the summary
/// reads it.
fn tls_reason(a: &Attempt) -> Option<TlsReason> {
    assert_eq!(a.outcome, Outcome::Tls, "{:?}", a.error);
    TlsReason::in_message(a.error.as_deref().unwrap_or_default())
}

#[tokio::test]
async fn a_private_ca_is_trusted_with_cacert_and_named_without_it() {
    let ca = Ca::new();
    let server = servers::https(ca.issue(&["localhost"])).await;
    let dir = temp_dir("cacert");
    let ca_file = ca.write_pem(&dir);
    let url = format!("https://localhost:{}/version", server.addr.port());

    let trusted = one(Probe::builder(&url).cacert(&ca_file)).await;
    assert_eq!(trusted.outcome, Outcome::Ok, "{:?}", trusted.error);
    assert_eq!(trusted.version.as_deref(), Some("v1"));

    let refused = one(Probe::builder(&url)).await;
    assert_eq!(tls_reason(&refused), Some(TlsReason::UnknownIssuer));
    let text = refused.error.unwrap();
    assert!(text.contains("UnknownIssuer"), "the detail is kept: {text}");

    let insecure = one(Probe::builder(&url).insecure(true)).await;
    assert_eq!(insecure.outcome, Outcome::Ok, "{:?}", insecure.error);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_certificate_for_another_name_or_out_of_date_is_named() {
    let ca = Ca::new();
    let dir = temp_dir("names");
    let ca_file = ca.write_pem(&dir);
    let other = servers::https(ca.issue(&["other.test"])).await;
    let url = format!("https://a.test:{}/", other.addr.port());
    let rule = format!("a.test:{}:127.0.0.1", other.addr.port());
    let mismatch = one(Probe::builder(&url).resolve(&rule).cacert(&ca_file)).await;
    assert_eq!(tls_reason(&mismatch), Some(TlsReason::NameMismatch));

    let expired = servers::https(ca.issue_with(&["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }))
    .await;
    let url = format!("https://localhost:{}/", expired.addr.port());
    let old = one(Probe::builder(&url).cacert(&ca_file)).await;
    assert_eq!(tls_reason(&old), Some(TlsReason::Expired));
    // --insecure accepts even that one.
    let insecure = one(Probe::builder(&url).insecure(true)).await;
    assert_eq!(insecure.outcome, Outcome::Ok, "{:?}", insecure.error);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_server_that_refuses_or_drops_the_handshake_is_named() {
    let alert = servers::replies(servers::HANDSHAKE_FAILURE_ALERT).await;
    let refused = one(Probe::builder(&format!("https://{}/", alert.addr))).await;
    assert_eq!(tls_reason(&refused), Some(TlsReason::AlertFromServer));

    let closes = servers::replies(b"").await;
    let dropped = one(Probe::builder(&format!("https://{}/", closes.addr))).await;
    assert_eq!(tls_reason(&dropped), Some(TlsReason::ClosedByServer));

    let http = servers::replies(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n").await;
    let plain = one(Probe::builder(&format!("https://{}/", http.addr))).await;
    assert_eq!(tls_reason(&plain), Some(TlsReason::NotTls));
}

#[tokio::test]
async fn resolve_connects_to_the_address_and_keeps_the_name_for_host_and_sni() {
    let ca = Ca::new();
    let dir = temp_dir("resolve");
    let ca_file = ca.write_pem(&dir);
    let server = servers::https(ca.issue(&["a.test"])).await;
    let port = server.addr.port();
    // a.test resolves nowhere: only the rule can bring the connection to loopback.
    let attempt = one(Probe::builder(&format!("https://a.test:{port}/v"))
        .resolve(&format!("other.test:{port}:127.0.0.2"))
        .resolve(&format!("a.test:{port}:127.0.0.1"))
        .cacert(&ca_file))
    .await;
    assert_eq!(attempt.outcome, Outcome::Ok, "{:?}", attempt.error);
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].sni.as_deref(), Some("a.test"));
    assert_eq!(
        seen[0].header_values("host"),
        vec![format!("a.test:{port}")]
    );
    assert!(
        seen[0].head.starts_with("GET /v HTTP/1.1\r\n"),
        "{}",
        seen[0].head
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_users_headers_replace_the_defaults_and_an_empty_one_removes_it() {
    let server = servers::plain().await;
    let url = format!("http://{}/", server.addr);
    let attempt = one(Probe::builder(&url)
        .header("Host", "a.test")
        .header("user-agent", "")
        .header("X-Extra", "1")
        .header("X-Extra", "2"))
    .await;
    assert_eq!(attempt.outcome, Outcome::Ok, "{:?}", attempt.error);
    let default = one(Probe::builder(&url).header("USER-AGENT", "curl/8")).await;
    assert_eq!(default.outcome, Outcome::Ok, "{:?}", default.error);

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let replaced = &seen[0];
    assert_eq!(replaced.header_values("host"), vec!["a.test"]);
    assert!(
        replaced.header_values("user-agent").is_empty(),
        "{}",
        replaced.head
    );
    // Headers that are not defaults are sent as given, repeats included.
    assert_eq!(replaced.header_values("x-extra"), vec!["1", "2"]);
    assert_eq!(seen[1].header_values("user-agent"), vec!["curl/8"]);
    assert_eq!(seen[1].header_values("host"), vec![server.addr.to_string()]);
}

#[tokio::test]
async fn the_summary_names_the_tls_reason_and_says_insecure() {
    let ca = Ca::new();
    let server = servers::https(ca.issue(&["localhost"])).await;
    let url = format!("https://localhost:{}/", server.addr.port());
    let run = |builder: ProbeBuilder| async move {
        let probe = builder
            .rate(20)
            .duration(Duration::from_millis(500))
            .timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(2))
            .start()
            .await
            .expect("probe starts");
        probe.schedule_finished().await;
        probe.stop().await.expect("probe stops")
    };

    let refused = run(Probe::builder(&url)).await;
    let failed = refused.failures.get("tls").copied().unwrap_or(0);
    assert!(
        failed > 0 && failed == refused.totals.sent,
        "{:?}",
        refused.failures
    );
    let summary = refused.summary();
    let line = format!(
        "tls x {failed}: certificate from an unknown issuer (pass --cacert FILE, or --insecure)"
    );
    assert!(summary.contains(&line), "{summary}");
    assert!(!refused.config.insecure);

    let insecure = run(Probe::builder(&url).insecure(true)).await;
    assert_eq!(insecure.totals.ok, insecure.totals.sent);
    assert!(insecure.config.insecure);
    let first = insecure.summary().lines().next().unwrap().to_string();
    assert!(first.contains("TLS not verified (--insecure)"), "{first}");
}
