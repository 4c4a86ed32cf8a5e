//! What a probe run is asked to do, validated before the first request.
//!
//! Every check that can fail on the user's input lives here, so that bad input
//! is refused with one clear line before any probing starts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod answer;
mod reach;

pub use answer::{StatusSet, VersionSource};
pub use reach::{CaFile, ResolveRule};

/// A mistake in the probe's configuration, said in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The URL did not parse or is not http/https.
    #[error("invalid URL '{url}': {reason}")]
    Url {
        /// What was given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// A duration such as `5s` did not parse.
    #[error("invalid duration '{0}': use a number with ms, s, m or h, e.g. 500ms, 5s, 2m")]
    Duration(String),
    /// A numeric option is out of range.
    #[error("invalid {name} '{value}': {reason}")]
    Value {
        /// The option's name.
        name: &'static str,
        /// What was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// The lowest rate accepted, in requests per second: one request every 100 s.
/// Slower than that, a run of any practical length sends next to nothing, and
/// the schedule's times (`seq / rate`) soon leave the range of a `Duration`.
pub const MIN_RATE: f64 = 0.01;

/// The highest rate accepted, in requests per second: far above what one
/// machine can send, so only a typo reaches it.
pub const MAX_RATE: f64 = 1_000_000.0;

/// The longest value accepted for any duration of a run (its length, warmup,
/// settle, timeouts): 7 days. A week-long probe is plausible; a longer value is a
/// typo, and every time computed from it stays far inside `Duration`'s and
/// jiff's ranges.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The largest cap on requests in flight accepted: each one holds a socket, so
/// more than this runs out of file descriptors long before it measures anything.
pub const MAX_IN_FLIGHT: usize = 100_000;

/// Checks a rate against [`MIN_RATE`] and [`MAX_RATE`].
///
/// ```
/// assert!(probe_core::check_rate(50.0).is_ok());
/// assert!(probe_core::check_rate(1e-19).is_err());
/// assert!(probe_core::check_rate(f64::NAN).is_err());
/// ```
pub fn check_rate(rate: f64) -> Result<f64, ConfigError> {
    if rate.is_finite() && (MIN_RATE..=MAX_RATE).contains(&rate) {
        Ok(rate)
    } else {
        Err(ConfigError::Value {
            name: "rate",
            value: rate.to_string(),
            reason: format!(
                "use {MIN_RATE} to {MAX_RATE} requests per second (0.01 is one request every 100s)"
            ),
        })
    }
}

/// Checks a run's duration option (`name`, e.g. `timeout`) against [`MAX_DURATION`].
///
/// ```
/// use std::time::Duration;
/// assert!(probe_core::check_duration("settle", Duration::from_secs(5)).is_ok());
/// assert!(probe_core::check_duration("settle", Duration::from_secs(30 * 86_400)).is_err());
/// ```
pub fn check_duration(name: &'static str, d: Duration) -> Result<Duration, ConfigError> {
    if d <= MAX_DURATION {
        Ok(d)
    } else {
        Err(ConfigError::Value {
            name,
            value: format!("{}s", d.as_secs()),
            reason: "use at most 7 days (168h)".to_string(),
        })
    }
}

/// Parses `500ms`, `5s`, `2m`, `1h`, `1.5s`, `1m30s` (jiff's friendly duration
/// format, or ISO 8601 `PT5S`); a bare number means seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(probe_core::parse_duration("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(probe_core::parse_duration("2m").unwrap(), Duration::from_secs(120));
/// assert!(probe_core::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let refuse = || ConfigError::Duration(text.to_string());
    let t = text.trim();
    let d = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // jiff wants a unit; `--timeout 5` has always meant seconds.
        let seconds: f64 = t.parse().map_err(|_| refuse())?;
        jiff::SignedDuration::try_from_secs_f64(seconds).map_err(|_| refuse())?
    } else {
        t.parse::<jiff::SignedDuration>().map_err(|_| refuse())?
    };
    if d.is_negative() || d.as_secs_f64() > 1e9 {
        return Err(refuse());
    }
    Duration::try_from(d).map_err(|_| refuse())
}

/// How connections are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionMode {
    /// A new TCP connection per request, like curl: sees connect-level faults.
    #[default]
    Fresh,
    /// Reused connections from a pool, like real clients: sees resets and
    /// idle connections closed by terminating pods.
    Keepalive,
    /// Both side by side, one stream each (as OpenShift's disruption monitor does): the
    /// fresh stream sees connect-level faults, the keep-alive one what pooled clients see.
    Both,
}

impl ConnectionMode {
    /// The single modes of the streams this mode asks for: one, or fresh and keepalive.
    ///
    /// ```
    /// use probe_core::ConnectionMode::*;
    /// assert_eq!(Both.stream_modes(), vec![Fresh, Keepalive]);
    /// assert_eq!(Keepalive.stream_modes(), vec![Keepalive]);
    /// ```
    pub fn stream_modes(self) -> Vec<ConnectionMode> {
        match self {
            ConnectionMode::Both => vec![ConnectionMode::Fresh, ConnectionMode::Keepalive],
            single => vec![single],
        }
    }
}

impl FromStr for ConnectionMode {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fresh" => Ok(ConnectionMode::Fresh),
            "keepalive" | "keep-alive" => Ok(ConnectionMode::Keepalive),
            "both" => Ok(ConnectionMode::Both),
            _ => Err(ConfigError::Value {
                name: "connection mode",
                value: s.to_string(),
                reason: "use fresh, keepalive or both".into(),
            }),
        }
    }
}

impl fmt::Display for ConnectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionMode::Fresh => "fresh",
            ConnectionMode::Keepalive => "keepalive",
            ConnectionMode::Both => "both",
        })
    }
}

/// The validated target: scheme, host, port and the request to send.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: url::Url,
    /// Whether TLS is used.
    pub https: bool,
    /// Host name or address literal, without brackets.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Target {
    /// Parses and checks a target URL (http or https, with a host).
    ///
    /// ```
    /// let t = probe_core::Target::parse("http://127.0.0.1:8080/test/version").unwrap();
    /// assert_eq!((t.host.as_str(), t.port, t.https), ("127.0.0.1", 8080, false));
    /// assert!(probe_core::Target::parse("ftp://x/").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Target, ConfigError> {
        let bad = |reason: &str| ConfigError::Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let url = url::Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(bad("only http:// and https:// are supported")),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(bad("the URL has no host")),
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| bad("the URL has no port"))?;
        Ok(Target {
            url,
            https,
            host,
            port,
        })
    }

    /// The request target: path and query.
    pub fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(q) => format!("{}?{q}", self.url.path()),
            None => self.url.path().to_string(),
        }
    }

    /// The Host header value.
    pub fn authority(&self) -> String {
        let host = match self.url.host() {
            Some(url::Host::Ipv6(a)) => format!("[{a}]"),
            _ => self.host.clone(),
        };
        match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

/// Reads `--metrics-addr`'s `HOST:PORT`: an IP address (`127.0.0.1:9464`,
/// `[::1]:9464`, `0.0.0.0:9464` for every interface) or `localhost:PORT`.
///
/// ```
/// let addr = probe_core::parse_metrics_addr("localhost:9464").unwrap();
/// assert_eq!(addr.to_string(), "127.0.0.1:9464");
/// assert!(probe_core::parse_metrics_addr("9464").is_err());
/// ```
pub fn parse_metrics_addr(text: &str) -> Result<std::net::SocketAddr, ConfigError> {
    let refuse = || ConfigError::Value {
        name: "metrics address",
        value: text.to_string(),
        reason: "use HOST:PORT with an IP address or localhost, e.g. 127.0.0.1:9464".into(),
    };
    let text_ip = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    text_ip.parse().map_err(|_| refuse())
}

/// Everything a probe run needs; built with [`crate::ProbeBuilder`].
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// What is probed.
    pub target: Target,
    /// Requests per second (open loop).
    pub rate: f64,
    /// Stop by itself after this long (`None`: until [`crate::Probe::stop`]).
    pub duration: Option<Duration>,
    /// From connected to the full response.
    pub timeout: Duration,
    /// For the TCP (and TLS) handshake. Above 3 s, so that a failed ARP shows as
    /// `host_unreachable` rather than as a timeout.
    pub connect_timeout: Duration,
    /// Cap on outstanding requests; ticks beyond it are counted as skipped.
    pub max_in_flight: usize,
    /// Fresh connection per request, a keep-alive pool, or both (one stream each).
    pub connection: ConnectionMode,
    /// Statuses that count as ok.
    pub expect_status: StatusSet,
    /// Where the version comes from.
    pub version_from: VersionSource,
    /// HTTP method.
    pub method: String,
    /// Extra request headers. One named like a default header (`Host`, `User-Agent`,
    /// `Content-Length`) replaces it; one with an empty value removes the header of that
    /// name, as curl's `-H 'Name:'` does.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Option<String>,
    /// A name for the run, e.g. the strategy under test.
    pub label: Option<String>,
    /// Where the pod (instance) that answered comes from, if anywhere.
    pub pod_from: Option<VersionSource>,
    /// Send `x-request-id: <run id>-<stream>-<seq>` with every request (default on).
    pub request_id: bool,
    /// Where the prober stands: `local`, or a lab's `client`, `node`, `pod` (the first
    /// half of the stream's name).
    pub vantage: String,
    /// The lab's kernel settings (`stock` or `tuned`), for a run in the lab.
    pub lab_kernel: Option<String>,
    /// A source of rollout events (the lab, a Kubernetes watch) is attached: the rollout
    /// phase ends when the rollout completes, not when the trigger returns.
    pub rollout_events: bool,
    /// Serve live OpenMetrics text at `/metrics` on this address while probing.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Connect to these addresses instead of resolving the URL's host (`--resolve`).
    pub resolve: Vec<ResolveRule>,
    /// Trust these CA certificates too, beside the system's store (`--cacert`).
    pub cacert: Option<CaFile>,
    /// Do not verify the server's certificate (`--insecure`).
    pub insecure: bool,
    /// Which executor sends the requests (default: io_uring where it works).
    pub executor: ExecutorChoice,
}

/// Which executor sends a probe's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExecutorChoice {
    /// io_uring where the kernel allows it and the target is plain HTTP at known
    /// addresses; the tokio executor otherwise (and with `ROLLPROBE_EXECUTOR=tokio`).
    #[default]
    Auto,
    /// Always the tokio executor.
    Tokio,
}

impl ProbeConfig {
    /// The documented defaults (the README lists them) for a target.
    pub fn new(target: Target) -> ProbeConfig {
        ProbeConfig {
            target,
            rate: 50.0,
            duration: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            max_in_flight: 0,
            connection: ConnectionMode::Fresh,
            expect_status: StatusSet::default(),
            version_from: VersionSource::Body,
            method: "GET".into(),
            headers: Vec::new(),
            body: None,
            label: None,
            pod_from: None,
            request_id: true,
            vantage: "local".into(),
            lab_kernel: None,
            rollout_events: false,
            metrics_addr: None,
            resolve: Vec::new(),
            cacert: None,
            insecure: false,
            executor: ExecutorChoice::Auto,
        }
    }

    /// The stream's name: `<vantage>-<connection>`, e.g. `local-fresh`.
    pub fn stream_name(&self) -> String {
        format!("{}-{}", self.vantage, self.connection)
    }

    /// Checks the values that parsing alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let value = |name, value: String, reason: &str| ConfigError::Value {
            name,
            value,
            reason: reason.to_string(),
        };
        check_rate(self.rate)?;
        if let Some(d) = self.duration {
            check_duration("duration", d)?;
        }
        if self.timeout.is_zero() {
            return Err(value("timeout", "0".into(), "must be above zero"));
        }
        check_duration("timeout", self.timeout)?;
        if self.connect_timeout.is_zero() {
            return Err(value("connect timeout", "0".into(), "must be above zero"));
        }
        check_duration("connect timeout", self.connect_timeout)?;
        if self.max_in_flight > MAX_IN_FLIGHT {
            return Err(value(
                "max in flight",
                self.max_in_flight.to_string(),
                "use at most 100000 (0 picks rate x timeouts)",
            ));
        }
        if hyper::Method::from_bytes(self.method.as_bytes()).is_err() {
            return Err(value("method", self.method.clone(), "not an HTTP method"));
        }
        for (k, v) in &self.headers {
            if hyper::header::HeaderName::from_bytes(k.as_bytes()).is_err()
                || hyper::header::HeaderValue::from_str(v).is_err()
            {
                return Err(value("header", format!("{k}: {v}"), "use 'Name: value'"));
            }
            if k.eq_ignore_ascii_case("transfer-encoding") {
                return Err(value(
                    "header",
                    format!("{k}: {v}"),
                    "leave it out: the body is sent whole, with Content-Length",
                ));
            }
        }
        Ok(())
    }

    /// The in-flight cap in force: the configured one, or by default enough for
    /// every request of one full timeout period (so an outage never skips ticks).
    pub fn effective_max_in_flight(&self) -> usize {
        if self.max_in_flight > 0 {
            return self.max_in_flight;
        }
        let window = (self.timeout + self.connect_timeout).as_secs_f64();
        ((self.rate * window).ceil() as usize + 16).clamp(16, 100_000)
    }
}

/// The configuration as recorded in reports (plain values, stable keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedConfig {
    /// Requests per second.
    pub rate: f64,
    /// Fresh or keepalive.
    pub connection: ConnectionMode,
    /// Response timeout, ms.
    pub timeout_ms: u64,
    /// Connect timeout, ms.
    pub connect_timeout_ms: u64,
    /// The cap on outstanding requests in force.
    pub max_in_flight: usize,
    /// Expected statuses, e.g. `200-299`.
    pub expect_status: String,
    /// Version source, e.g. `body`.
    pub version_from: String,
    /// HTTP method.
    pub method: String,
    /// Pod source, e.g. `header:x-pod-name`; empty when none.
    #[serde(default)]
    pub pod_from: String,
    /// The lab's kernel settings (`stock` or `tuned`), for a run in the lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_kernel: Option<String>,
    /// The run had a source of rollout events (its rollout phase ends at rollout_complete).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rollout_events: bool,
    /// The `--resolve` rules, `HOST:PORT:ADDR`; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolve: Vec<String>,
    /// The `--cacert` file; left out when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<String>,
    /// The server's certificate was not verified (`--insecure`); left out when it was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

impl From<&ProbeConfig> for RecordedConfig {
    fn from(c: &ProbeConfig) -> Self {
        RecordedConfig {
            rate: c.rate,
            connection: c.connection,
            timeout_ms: c.timeout.as_millis() as u64,
            connect_timeout_ms: c.connect_timeout.as_millis() as u64,
            max_in_flight: c.effective_max_in_flight(),
            expect_status: c.expect_status.to_string(),
            version_from: c.version_from.to_string(),
            method: c.method.clone(),
            pod_from: c
                .pod_from
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            lab_kernel: c.lab_kernel.clone(),
            rollout_events: c.rollout_events,
            resolve: c.resolve.iter().map(ToString::to_string).collect(),
            cacert: c.cacert.as_ref().map(|ca| ca.path.display().to_string()),
            insecure: c.insecure,
        }
    }
}

#[cfg(test)]
impl RecordedConfig {
    /// A fresh-connection GET run's settings, for unit tests.
    pub(crate) fn for_tests(rate: f64, connect_timeout_ms: u64, max_in_flight: usize) -> Self {
        RecordedConfig {
            rate,
            connection: ConnectionMode::Fresh,
            timeout_ms: 5000,
            connect_timeout_ms,
            max_in_flight,
            expect_status: "200-299".into(),
            version_from: "body".into(),
            method: "GET".into(),
            pod_from: String::new(),
            lab_kernel: None,
            rollout_events: false,
            resolve: Vec::new(),
            cacert: None,
            insecure: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn status_sets() {
        assert!("600".parse::<StatusSet>().is_err());
        assert!("299-200".parse::<StatusSet>().is_err());
        assert_eq!(
            "200-299,304".parse::<StatusSet>().unwrap().to_string(),
            "200-299,304"
        );
    }

    #[test]
    fn version_sources() {
        let h: VersionSource = "header:X-Version".parse().unwrap();
        let mut headers = hyper::HeaderMap::new();
        headers.insert("x-version", "v3".parse().unwrap());
        assert_eq!(h.extract(&headers, b"").as_deref(), Some("v3"));
        let r: VersionSource = r"regex:version=(\w+)".parse().unwrap();
        assert_eq!(
            r.extract(&hyper::HeaderMap::new(), b"app version=v9 ok")
                .as_deref(),
            Some("v9")
        );
        assert!("regex:(".parse::<VersionSource>().is_err());
        assert!("xml:/a".parse::<VersionSource>().is_err());
        let long = vec![b'a'; 100];
        assert_eq!(
            VersionSource::Body.extract(&hyper::HeaderMap::new(), &long),
            None
        );
    }

    #[test]
    fn rate_must_be_positive() {
        let mut c = ProbeConfig::new(Target::parse("http://127.0.0.1:1/").unwrap());
        c.rate = 0.0;
        assert!(c.validate().is_err());
        c.rate = 10.0;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn values_out_of_bounds_are_refused_before_anything_runs() {
        let ok = ProbeConfig::new(Target::parse("http://127.0.0.1:1/").unwrap());
        let refused = |f: &dyn Fn(&mut ProbeConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(refused(&|c| c.rate = 1e-19).contains("0.01 to 1000000"));
        assert!(refused(&|c| c.rate = f64::INFINITY).contains("rate"));
        assert!(refused(&|c| c.rate = 2e6).contains("rate"));
        let week_and_a_bit = MAX_DURATION + Duration::from_secs(1);
        assert!(refused(&|c| c.duration = Some(week_and_a_bit)).contains("7 days"));
        assert!(refused(&|c| c.timeout = week_and_a_bit).contains("timeout"));
        assert!(refused(&|c| c.timeout = Duration::ZERO).contains("above zero"));
        assert!(refused(&|c| c.connect_timeout = week_and_a_bit).contains("connect timeout"));
        assert!(refused(&|c| c.max_in_flight = MAX_IN_FLIGHT + 1).contains("100000"));
        let chunked =
            |c: &mut ProbeConfig| c.headers = vec![("Transfer-Encoding".into(), "chunked".into())];
        assert!(refused(&chunked).contains("Content-Length"));
        let mut edge = ok.clone();
        edge.rate = MIN_RATE;
        edge.duration = Some(MAX_DURATION);
        edge.max_in_flight = MAX_IN_FLIGHT;
        assert!(edge.validate().is_ok());
    }
}
