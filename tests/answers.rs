//! Hostile and unusual answers, read by both executors alike: each case is a real
//! loopback server, and both executors must name every request the same way.

mod support;

use std::time::Duration;

use probe_core::{ConnectionMode, Probe, ProbeBuilder, Report};
use support::{serve, Behaviour, Exec, ServiceInstance};

on_both_executors!(
    hostile_answers_are_named_alike,
    kept_alive_connections_follow_the_server,
    a_refused_address_gives_way_to_the_next,
);

/// Five requests (20 per second for 250 ms) of `url` on `exec`.
async fn five(
    exec: Exec,
    url: &str,
    configure: impl FnOnce(ProbeBuilder) -> ProbeBuilder,
) -> Report {
    let builder = Probe::builder(url)
        .rate(20)
        .duration(Duration::from_millis(250))
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300));
    let report = exec.run(configure(exec.on(builder))).await;
    assert_eq!(report.totals.sent, 5, "{}", report.summary());
    report
}

fn kinds(r: &Report) -> Vec<(&str, u64)> {
    let mut kinds: Vec<(&str, u64)> = r.failures.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    if r.totals.ok > 0 {
        kinds.push(("ok", r.totals.ok));
    }
    kinds
}

async fn hostile_answers_are_named_alike(exec: Exec) {
    let cases: Vec<(&str, Behaviour, &str)> = vec![
        (
            "not HTTP",
            Behaviour::ReadThenSend(b"v1\n"),
            "invalid_response",
        ),
        (
            "a head over 64 KiB",
            Behaviour::HugeHeader(70_000),
            "invalid_response",
        ),
        (
            "a chunked body that never ends",
            Behaviour::EndlessBody { chunked: true },
            "response_timeout",
        ),
        (
            "a body until close that never ends",
            Behaviour::EndlessBody { chunked: false },
            "response_timeout",
        ),
        (
            "200 interim answers, then ok",
            Behaviour::Continues {
                count: 200,
                then_ok: true,
            },
            "ok",
        ),
        (
            "interim answers only",
            Behaviour::Continues {
                count: 3,
                then_ok: false,
            },
            "response_timeout",
        ),
        (
            "a reset after the head",
            Behaviour::ResetAfterHeaders,
            "connection_reset",
        ),
        (
            "a FIN and no answer",
            Behaviour::HalfClose,
            "connection_closed",
        ),
        (
            "a server that never reads",
            Behaviour::NeverRead,
            "response_timeout",
        ),
    ];
    for (what, behaviour, kind) in cases {
        for mode in [ConnectionMode::Fresh, ConnectionMode::Keepalive] {
            let s = serve(behaviour.clone());
            let r = five(exec, &s.url(), |b| b.connection(mode)).await;
            assert_eq!(kinds(&r), [(kind, 5)], "{what} ({mode:?}): {}", r.summary());
        }
    }
}

async fn kept_alive_connections_follow_the_server(exec: Exec) {
    // A server that says `close`: every request needs a new connection, all ok.
    let closing = serve(Behaviour::Respond {
        status: 200,
        headers: vec![("connection".into(), "close".into())],
        body: "v1".into(),
    });
    let r = five(exec, &closing.url(), |b| {
        b.connection(ConnectionMode::Keepalive)
    })
    .await;
    assert_eq!(kinds(&r), [("ok", 5)], "{}", r.summary());
    assert_eq!(
        closing.accepted.load(std::sync::atomic::Ordering::SeqCst),
        5
    );
    // A server that keeps them (the demo's service): one connection carries the five
    // GETs; HEAD answers have no body whatever their length says (this service closes
    // after them: both executors open a connection for each).
    let keeping = ServiceInstance::start("127.0.0.1:0".parse().unwrap(), "v1", false)
        .await
        .unwrap();
    let url = format!("http://{}/test/version", keeping.addr());
    for method in ["GET", "HEAD"] {
        let dir = std::env::temp_dir().join(format!(
            "rollprobe-answers-{}-{}-{method}",
            std::process::id(),
            exec.name()
        ));
        let r = five(exec, &url, |b| {
            b.connection(ConnectionMode::Keepalive)
                .method(method)
                .out_dir(&dir)
        })
        .await;
        assert_eq!(r.totals.ok, 5, "{method}: {}", r.summary());
        let run = probe_core::read_samples(&dir.join("samples.csv")).unwrap();
        let connections: Vec<&str> = run
            .samples
            .iter()
            .map(|s| s.connection.as_deref().unwrap_or("-"))
            .collect();
        let expected = match method {
            "GET" => ["new", "reused", "reused", "reused", "reused"],
            _ => ["new"; 5],
        };
        assert_eq!(connections, expected, "{method}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    keeping.stop().await;
}

async fn a_refused_address_gives_way_to_the_next(exec: Exec) {
    // Nothing listens on 127.0.0.2 at the server's port: the first address is
    // refused, the second answers, as `--resolve a.test:PORT:127.0.0.2,127.0.0.1`.
    let s = serve(Behaviour::Respond {
        status: 200,
        headers: Vec::new(),
        body: "v1".into(),
    });
    let port = s.addr.port();
    let rule = format!("a.test:{port}:127.0.0.2,127.0.0.1");
    let r = five(exec, &format!("http://a.test:{port}/"), |b| {
        b.resolve(&rule)
    })
    .await;
    assert_eq!(kinds(&r), [("ok", 5)], "{}", r.summary());
}
