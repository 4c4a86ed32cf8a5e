//! Every failure kind produced by a real socket and a real server, classified
//! by the library exactly as a user's probe would.

mod support;

use std::time::Duration;

use probe_core::{ConnectionMode, Outcome, Probe, Report};
use support::{closed_port, serve, Behaviour, Exec};

on_both_executors!(
    refused_on_a_closed_port_with_its_errno,
    reset_when_the_server_aborts,
    closed_when_the_server_hangs_up_after_reading,
    closed_on_a_kept_alive_connection_too,
    response_timeout_when_no_answer_comes,
    a_reused_connection_gets_the_whole_time_limit,
    connect_timeout_when_syns_are_dropped,
    http_5xx_keeps_its_status,
    envoy_503_is_proxy_no_upstream,
    plain_503_is_http_5xx,
    unexpected_status_outside_the_expected_set,
    versions_from_header_and_json,
    ticks_over_the_in_flight_cap_are_skipped_not_dropped,
    a_finished_request_frees_its_place_under_the_cap_at_once,
);

/// A short probe of `url` on `exec`, which the report must say ran it.
async fn probe(
    exec: Exec,
    url: &str,
    configure: impl FnOnce(probe_core::ProbeBuilder) -> probe_core::ProbeBuilder,
) -> Report {
    let builder = Probe::builder(url)
        .rate(20)
        .duration(Duration::from_millis(500))
        .timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(800));
    exec.run(configure(exec.on(builder))).await
}

fn only_kind(r: &Report, kind: &str) {
    assert_eq!(r.totals.sent, 10, "{}", r.summary());
    assert_eq!(r.totals.ok, 0, "{}", r.summary());
    assert_eq!(
        r.failures.keys().collect::<Vec<_>>(),
        vec![kind],
        "{}",
        r.summary()
    );
    assert_eq!(r.failures[kind], 10);
    assert_eq!(r.downtime.windows.len(), 1);
    assert!(r.downtime.windows[0].open);
}

async fn refused_on_a_closed_port_with_its_errno(exec: Exec) {
    let closed = closed_port();
    let r = probe(exec, &format!("http://127.0.0.1:{}/", closed.port), |b| b).await;
    only_kind(&r, "connection_refused");
    let d = &r.failure_details[0];
    assert_eq!(d.errno, Some(111));
    assert_eq!(d.errno_name.as_deref(), Some("ECONNREFUSED"));
    assert_eq!(d.message.as_deref(), Some("Connection refused"));
}

async fn reset_when_the_server_aborts(exec: Exec) {
    let s = serve(Behaviour::Reset);
    let r = probe(exec, &s.url(), |b| b).await;
    only_kind(&r, "connection_reset");
    assert_eq!(r.failure_details[0].errno, Some(104));
}

async fn closed_when_the_server_hangs_up_after_reading(exec: Exec) {
    let s = serve(Behaviour::CloseAfterRead);
    let r = probe(exec, &s.url(), |b| b).await;
    only_kind(&r, "connection_closed");
}

async fn closed_on_a_kept_alive_connection_too(exec: Exec) {
    let s = serve(Behaviour::CloseAfterRead);
    let r = probe(exec, &s.url(), |b| b.connection(ConnectionMode::Keepalive)).await;
    only_kind(&r, "connection_closed");
}

async fn response_timeout_when_no_answer_comes(exec: Exec) {
    let s = serve(Behaviour::NeverAnswer);
    let r = probe(exec, &s.url(), |b| b.timeout(Duration::from_millis(200))).await;
    only_kind(&r, "response_timeout");
}

/// A kept-alive request's time limit counts from when it went out, as its times do: a
/// response timeout on a reused connection took at least the limit.
async fn a_reused_connection_gets_the_whole_time_limit(exec: Exec) {
    let s = serve(Behaviour::AnswerOnceThenHang);
    let dir = std::env::temp_dir().join(format!(
        "rollprobe-kinds-reused-limit-{}-{}",
        std::process::id(),
        exec.name()
    ));
    let limit = Duration::from_millis(200);
    let r = probe(exec, &s.url(), |b| {
        b.connection(ConnectionMode::Keepalive)
            .timeout(limit)
            .out_dir(&dir)
    })
    .await;
    let run = probe_core::read_samples(&dir.join("samples.csv")).unwrap();
    let timed_out: Vec<_> = run
        .samples
        .iter()
        .filter(|s| s.outcome == Outcome::ResponseTimeout)
        .collect();
    assert!(!timed_out.is_empty(), "{}", r.summary());
    for s in timed_out {
        assert_eq!(s.connection.as_deref(), Some("reused"), "{s:?}");
        let total = s.total_ms.expect("a timed-out request has its total");
        assert!(total >= limit.as_secs_f64() * 1000.0, "{s:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn connect_timeout_when_syns_are_dropped(exec: Exec) {
    // A listener that never accepts, with its tiny backlog already full: the
    // kernel drops further SYNs, as a DROP rule would.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(c) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(c);
        }
    }
    let r = probe(exec, &format!("http://{addr}/"), |b| {
        b.connect_timeout(Duration::from_millis(200))
    })
    .await;
    only_kind(&r, "connect_timeout");
}

fn respond(status: u16, headers: &[(&str, &str)], body: &str) -> support::TestServer {
    serve(Behaviour::Respond {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.to_string(),
    })
}

async fn http_5xx_keeps_its_status(exec: Exec) {
    let s = respond(502, &[], "bad gateway");
    let r = probe(exec, &s.url(), |b| b).await;
    only_kind(&r, "http_5xx");
}

async fn envoy_503_is_proxy_no_upstream(exec: Exec) {
    let s = respond(503, &[("server", "envoy")], "no healthy upstream");
    let r = probe(exec, &s.url(), |b| b).await;
    only_kind(&r, "proxy_no_upstream");
}

async fn plain_503_is_http_5xx(exec: Exec) {
    let s = respond(
        503,
        &[("server", "nginx")],
        "Service Temporarily Unavailable",
    );
    let r = probe(exec, &s.url(), |b| b).await;
    only_kind(&r, "http_5xx");
}

async fn unexpected_status_outside_the_expected_set(exec: Exec) {
    let s = respond(404, &[], "nope");
    let r = probe(exec, &s.url(), |b| b).await;
    only_kind(&r, "unexpected_status");
    let accepted = respond(404, &[], "nope");
    let r = probe(exec, &accepted.url(), |b| {
        b.expect_status("200-299,404".parse().unwrap())
    })
    .await;
    assert_eq!(r.totals.ok, 10, "{}", r.summary());
}

#[tokio::test]
async fn tls_when_the_server_does_not_speak_it() {
    let s = serve(Behaviour::SendOnAccept(b"HTTP/1.1 400 Bad Request\r\n\r\n"));
    // TLS runs on the tokio executor, whatever was asked: the report says so and why.
    let r = probe(Exec::Tokio, &format!("https://{}/", s.addr), |b| {
        b.executor(probe_core::ExecutorChoice::Auto)
    })
    .await;
    only_kind(&r, "tls");
    let used = r.probe.executor.as_ref().unwrap();
    assert!(used.why.as_deref().unwrap().contains("https"), "{used:?}");
}

async fn versions_from_header_and_json(exec: Exec) {
    let s = respond(200, &[("x-version", "v7")], r#"{"build":{"version":"v8"}}"#);
    let r = probe(exec, &s.url(), |b| {
        b.version_from("header:X-Version".parse().unwrap())
    })
    .await;
    assert_eq!(r.totals.ok, 10);
    assert_eq!(r.versions.len(), 1);
    assert_eq!(r.versions[0].version, "v7");
    let r = probe(exec, &s.url(), |b| {
        b.version_from("json:/build/version".parse().unwrap())
    })
    .await;
    assert_eq!(r.versions[0].version, "v8");
    assert_eq!(r.versions[0].count, 10);
}

async fn ticks_over_the_in_flight_cap_are_skipped_not_dropped(exec: Exec) {
    let s = serve(Behaviour::NeverAnswer);
    let r = probe(exec, &s.url(), |b| {
        b.max_in_flight(2).timeout(Duration::from_millis(300))
    })
    .await;
    // 10 ticks: at most the cap (2) in flight at once; each waits 300 ms at 20/s
    // (one tick per 50 ms), so most ticks find the cap full.
    assert_eq!(r.totals.sent + r.totals.skipped, 10, "{}", r.summary());
    assert!(r.totals.skipped >= 4, "{}", r.summary());
    assert_eq!(r.probe.skipped, r.totals.skipped);
    assert_eq!(r.failures.get("response_timeout"), Some(&r.totals.sent));
}

async fn a_finished_request_frees_its_place_under_the_cap_at_once(exec: Exec) {
    // One request at a time, each answered within a millisecond, a tick every
    // 100 ms: every tick finds the previous request over and is sent. (A finished
    // sample waits up to half a second for its hand-over to the recorder; it must not
    // hold a place under the cap meanwhile.)
    let s = respond(200, &[], "v1");
    let r = probe(exec, &s.url(), |b| {
        b.rate(10).duration(Duration::from_secs(1)).max_in_flight(1)
    })
    .await;
    assert_eq!(r.totals.sent, 10, "{}", r.summary());
    assert_eq!(r.totals.skipped, 0, "{}", r.summary());
    assert_eq!(r.totals.ok, 10, "{}", r.summary());
}
