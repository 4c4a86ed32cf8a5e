//! Live metrics: the run's counters as OpenMetrics text at `/metrics`, so that a
//! Prometheus scraping the prober shows it beside the mesh's own metrics while the
//! rollout happens, not only in the report afterwards.
//!
//! The recorder hands every sample to [`Metrics::observe`] (one call per sample,
//! nothing else), with whether the analyzer has an outage window open: the
//! metrics never decide what "down" means, the analyzer does. Everything else
//! (names, labels, buckets, the downtime counter) lives here, and the metric
//! families are written with atomics, so a scrape never holds up the recorder.
//!
//! The listener is bound when the probe starts, on the caller's thread, so a bad
//! address or a port in use is refused before the first request (and a probe
//! that stands in a lab's namespace still serves on the host's network). The
//! server runs on the probe's own runtime; the schedule is on its own thread and
//! is never touched by a scrape.
//!
//! The names are the README's ("Live metrics"), each series labelled with the run's `label`:
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `rollprobe_requests_total` | counter | `stream`, `outcome` (skipped ticks as `skipped`) |
//! | `rollprobe_version_answers_total` | counter | `stream`, `version` |
//! | `rollprobe_latency_seconds` | histogram of ok answers, from the intended send | |
//! | `rollprobe_down` | gauge, 1 inside an open outage window | `stream` |
//! | `rollprobe_downtime_seconds_total` | counter | `stream` |
//! | `rollprobe_send_lag_seconds` | histogram of how late requests went out | |

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::ConfigError;
use crate::outcome::Outcome;
use crate::sample::Sample;

/// The content type of OpenMetrics text, as Prometheus asks for it.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets, seconds: from a loopback answer (1 ms) to a full timeout (10 s).
const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Send-lag buckets, seconds: a healthy prober is well under a millisecond late, and
/// anything above a period (1 ms at 1000 req/s) is worth seeing.
const SEND_LAG_BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamOutcome {
    stream: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamVersion {
    stream: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    stream: String,
}

/// The live metrics of one run; [`Metrics::off`] when `--metrics-addr` was not given,
/// so the recorder's hook is the same call either way.
pub(crate) struct Metrics {
    live: Option<Live>,
}

struct Live {
    registry: Arc<Registry>,
    requests: Family<StreamOutcome, Counter>,
    versions: Family<StreamVersion, Counter>,
    latency: Histogram,
    down: Family<StreamLabel, Gauge>,
    downtime: Family<StreamLabel, Counter<f64, AtomicU64>>,
    send_lag: Histogram,
    /// Per stream: the latest intended time seen, ms, which the downtime counter
    /// advances from.
    last_ms: HashMap<String, f64>,
}

impl Metrics {
    /// No metrics: [`Metrics::observe`] does nothing.
    pub(crate) fn off() -> Metrics {
        Metrics { live: None }
    }

    /// Metrics whose every series carries `label="<label>"`.
    pub(crate) fn new(label: &str) -> Metrics {
        let const_labels = [(Cow::Borrowed("label"), Cow::Owned(label.to_string()))];
        let mut registry = Registry::with_labels(const_labels.into_iter());
        let requests = Family::<StreamOutcome, Counter>::default();
        let versions = Family::<StreamVersion, Counter>::default();
        let latency = Histogram::new(LATENCY_BUCKETS);
        let down = Family::<StreamLabel, Gauge>::default();
        let downtime = Family::<StreamLabel, Counter<f64, AtomicU64>>::default();
        let send_lag = Histogram::new(SEND_LAG_BUCKETS);
        // prometheus-client adds `_total` to counters' names.
        registry.register(
            "rollprobe_requests",
            "Ticks of the schedule by how they ended (skipped: not sent, over the in-flight cap)",
            requests.clone(),
        );
        registry.register(
            "rollprobe_version_answers",
            "Ok answers by the version that gave them",
            versions.clone(),
        );
        registry.register(
            "rollprobe_latency_seconds",
            "Latency of ok answers, from the intended send time",
            latency.clone(),
        );
        registry.register(
            "rollprobe_down",
            "1 while an outage window is open",
            down.clone(),
        );
        registry.register(
            "rollprobe_downtime_seconds",
            "Time inside outage windows, on the probe's clock",
            downtime.clone(),
        );
        registry.register(
            "rollprobe_send_lag_seconds",
            "How late requests were sent after their intended time",
            send_lag.clone(),
        );
        Metrics {
            live: Some(Live {
                registry: Arc::new(registry),
                requests,
                versions,
                latency,
                down,
                downtime,
                send_lag,
                last_ms: HashMap::new(),
            }),
        }
    }

    /// Counts one sample. `down` is whether its stream's analyzer had an outage
    /// window open before this sample: a window runs from its first failure to the
    /// ok answer that closes it, so the downtime counter adds the time up to each
    /// sample seen while down and ends up with the windows' lengths.
    pub(crate) fn observe(&mut self, sample: &Sample, down: bool) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        let stream = StreamLabel {
            stream: sample.stream.clone(),
        };
        live.requests
            .get_or_create(&StreamOutcome {
                stream: sample.stream.clone(),
                outcome: sample.outcome.as_str(),
            })
            .inc();
        if let Some(lag) = sample.send_lag_ms() {
            live.send_lag.observe(lag / 1000.0);
        }
        if sample.outcome == Outcome::Ok {
            if let Some(ms) = sample.response_ms() {
                live.latency.observe(ms / 1000.0);
            }
            if let Some(version) = &sample.version {
                live.versions
                    .get_or_create(&StreamVersion {
                        stream: sample.stream.clone(),
                        version: version.clone(),
                    })
                    .inc();
            }
        }
        let last = live
            .last_ms
            .entry(sample.stream.clone())
            .or_insert(sample.intended_ms);
        if down && sample.intended_ms > *last {
            live.downtime
                .get_or_create(&stream)
                .inc_by((sample.intended_ms - *last) / 1000.0);
        }
        *last = last.max(sample.intended_ms);
        live.down.get_or_create(&stream).set(i64::from(down));
    }

    /// The registry a server renders, when metrics are on.
    pub(crate) fn registry(&self) -> Option<Arc<Registry>> {
        self.live.as_ref().map(|l| l.registry.clone())
    }
}

/// Renders the registry as OpenMetrics text (ends with `# EOF`).
pub(crate) fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut text, registry);
    text
}

/// Binds `addr` for the metrics server, now, so that a bad address or a port in use
/// is a one-line refusal before probing.
pub(crate) fn bind(addr: SocketAddr) -> Result<TcpListener, ConfigError> {
    let refuse = |e: std::io::Error| ConfigError::Value {
        name: "metrics address",
        value: addr.to_string(),
        reason: format!("cannot listen there ({e}); pick a free port or another address"),
    };
    let listener = TcpListener::bind(addr).map_err(refuse)?;
    listener.set_nonblocking(true).map_err(refuse)?;
    Ok(listener)
}

/// The metrics server: stops when dropped.
pub(crate) struct MetricsServer {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsServer {
    /// Serves `registry` at `/metrics` on `listener`, on the runtime of `handle`.
    pub(crate) fn start(
        listener: TcpListener,
        registry: Arc<Registry>,
        handle: &tokio::runtime::Handle,
    ) -> MetricsServer {
        let task = handle.spawn(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(_) => return,
            };
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let registry = registry.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let registry = registry.clone();
                        async move { Ok::<_, Infallible>(answer(&request, &registry)) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    // A scraper that hangs up mid-answer is its own business.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        MetricsServer { task }
    }
}

fn answer<B>(request: &Request<B>, registry: &Registry) -> Response<Full<Bytes>> {
    let response = |status, content_type, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    if request.uri().path() == "/metrics" {
        response(StatusCode::OK, CONTENT_TYPE, render(registry))
    } else {
        response(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "rollprobe serves its metrics at /metrics\n".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64, outcome: Outcome, version: Option<&str>) -> Sample {
        let intended_ms = seq as f64 * 10.0;
        Sample {
            sent_ms: (outcome != Outcome::Skipped).then_some(intended_ms + 0.5),
            version: version.map(str::to_string),
            total_ms: Some(2.0),
            ..Sample::new("local-fresh", seq, intended_ms, outcome)
        }
    }

    /// One sample line: its name, labels and value.
    type Series = (String, Vec<(String, String)>, f64);

    /// The metric families, their types, and each sample line's labels, read from
    /// OpenMetrics text strictly: a line that fits no rule fails the test.
    struct Parsed {
        types: Vec<(String, String)>,
        lines: Vec<Series>,
    }

    fn parse(text: &str) -> Parsed {
        let name_ok = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !n.starts_with(|c: char| c.is_ascii_digit())
        };
        assert!(
            text.ends_with("# EOF\n"),
            "OpenMetrics text ends with # EOF"
        );
        let mut parsed = Parsed {
            types: Vec::new(),
            lines: Vec::new(),
        };
        for line in text.lines().filter(|l| *l != "# EOF") {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                assert!(name_ok(name), "bad family name in {line}");
                parsed.types.push((name.into(), kind.into()));
                continue;
            }
            if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("series value");
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("labels end with }");
                    let labels = inner
                        .split(",")
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').expect("k=v");
                            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
                            (k.to_string(), v.expect("quoted value").to_string())
                        })
                        .collect();
                    (name, labels)
                }
                None => (series, Vec::new()),
            };
            assert!(name_ok(name), "bad metric name in {line}");
            parsed.lines.push((name.into(), labels, value));
        }
        parsed
    }

    fn value(p: &Parsed, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        p.lines
            .iter()
            .find(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| *v)
    }

    #[test]
    fn the_text_has_the_documented_names_types_and_labels() {
        let mut m = Metrics::new("recreate");
        m.observe(&sample(0, Outcome::Ok, Some("v1")), false);
        m.observe(&sample(1, Outcome::ConnectionRefused, None), false);
        m.observe(&sample(2, Outcome::Skipped, None), true);
        let text = render(&m.registry().expect("metrics are on"));
        let p = parse(&text);

        let mut types = p.types.clone();
        types.sort();
        let want = [
            ("rollprobe_down", "gauge"),
            ("rollprobe_downtime_seconds", "counter"),
            ("rollprobe_latency_seconds", "histogram"),
            ("rollprobe_requests", "counter"),
            ("rollprobe_send_lag_seconds", "histogram"),
            ("rollprobe_version_answers", "counter"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(n, k)| (n.to_string(), k.to_string()))
            .collect();
        assert_eq!(types, want, "{text}");

        let mut names: Vec<&str> = p.lines.iter().map(|(n, _, _)| n.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(
            names,
            [
                "rollprobe_down",
                "rollprobe_downtime_seconds_total",
                "rollprobe_latency_seconds_bucket",
                "rollprobe_latency_seconds_count",
                "rollprobe_latency_seconds_sum",
                "rollprobe_requests_total",
                "rollprobe_send_lag_seconds_bucket",
                "rollprobe_send_lag_seconds_count",
                "rollprobe_send_lag_seconds_sum",
                "rollprobe_version_answers_total",
            ],
            "{text}"
        );
        for (name, labels, _) in &p.lines {
            assert!(
                labels.iter().any(|(k, v)| k == "label" && v == "recreate"),
                "{name} lacks label=\"recreate\": {text}"
            );
        }
        let stream = ("stream", "local-fresh");
        let requests = |outcome| {
            value(
                &p,
                "rollprobe_requests_total",
                &[stream, ("outcome", outcome)],
            )
        };
        assert_eq!(requests("ok"), Some(1.0));
        assert_eq!(requests("connection_refused"), Some(1.0));
        assert_eq!(requests("skipped"), Some(1.0));
        let v1 = value(
            &p,
            "rollprobe_version_answers_total",
            &[stream, ("version", "v1")],
        );
        assert_eq!(v1, Some(1.0));
        assert_eq!(value(&p, "rollprobe_down", &[stream]), Some(1.0));
        // One ok answer in the latency histogram; two sent requests in the lag one.
        assert_eq!(value(&p, "rollprobe_latency_seconds_count", &[]), Some(1.0));
        assert_eq!(
            value(&p, "rollprobe_send_lag_seconds_count", &[]),
            Some(2.0)
        );
    }

    #[test]
    fn downtime_adds_up_to_the_window_from_first_failure_to_the_ok_that_closes_it() {
        let mut m = Metrics::new("run");
        // ok at 0, 10; failures at 20..=50 (window opens at 20); ok at 60 closes it.
        let outcomes = [
            Outcome::Ok,
            Outcome::Ok,
            Outcome::ConnectionRefused,
            Outcome::ConnectionRefused,
            Outcome::ConnectionRefused,
            Outcome::ConnectionRefused,
            Outcome::Ok,
            Outcome::Ok,
        ];
        let mut open = false;
        for (seq, outcome) in outcomes.into_iter().enumerate() {
            // What the analyzer says before each sample.
            m.observe(&sample(seq as u64, outcome, None), open);
            open = outcome != Outcome::Ok;
        }
        let p = parse(&render(&m.registry().unwrap()));
        let stream = [("stream", "local-fresh")];
        let downtime = value(&p, "rollprobe_downtime_seconds_total", &stream).unwrap();
        assert!((downtime - 0.040).abs() < 1e-9, "{downtime}");
        assert_eq!(value(&p, "rollprobe_down", &stream), Some(0.0));
    }

    #[test]
    fn off_records_nothing_and_has_no_registry() {
        let mut m = Metrics::off();
        m.observe(&sample(0, Outcome::Ok, None), false);
        assert!(m.registry().is_none());
    }

    #[tokio::test]
    async fn the_server_answers_metrics_on_a_real_socket_and_404_elsewhere() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut m = Metrics::new("served");
        m.observe(&sample(0, Outcome::Ok, Some("v2")), false);
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = MetricsServer::start(
            listener,
            m.registry().unwrap(),
            &tokio::runtime::Handle::current(),
        );
        let get = |path: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            s.write_all(request.as_bytes()).await.unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).await.unwrap();
            answer
        };
        let answer = get("/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer
                .to_lowercase()
                .contains("content-type: application/openmetrics-text; version=1.0.0"),
            "{answer}"
        );
        assert!(answer.contains("rollprobe_version_answers_total{label=\"served\",stream=\"local-fresh\",version=\"v2\"} 1"), "{answer}");
        assert!(get("/").await.starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn a_port_in_use_is_refused_in_one_line() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let e = bind(addr).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "invalid metrics address '{addr}': cannot listen there"
            )),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}
