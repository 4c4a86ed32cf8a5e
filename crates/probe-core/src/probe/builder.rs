//! [`ProbeBuilder`]: what to probe, how, and from where, validated before anything
//! starts; [`Probe::builder`] is where a user begins.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    ConfigError, ConnectionMode, ExecutorChoice, ProbeConfig, StatusSet, Target, VersionSource,
};
use crate::event::Vantage;

use super::lifecycle::Probe;
use super::plan::VantagePoint;
use super::ProbeError;

/// Builds a [`Probe`]; every setter documents its default.
///
/// ```
/// # async fn demo() -> Result<(), probe_core::ProbeError> {
/// let probe = probe_core::Probe::builder("http://127.0.0.1:8080/test/version")
///     .rate(200)
///     .duration(std::time::Duration::from_secs(10))
///     .start()
///     .await?;
/// probe.mark("rollout-start");
/// let report = probe.stop().await?;
/// println!("{}", report.summary());
/// # Ok(()) }
/// ```
pub struct ProbeBuilder {
    config: Result<ProbeConfig, ConfigError>,
    out_dir: Option<PathBuf>,
    vantage: Option<Arc<dyn Vantage>>,
    points: Vec<VantagePoint>,
}

impl Probe {
    /// Starts building a probe of `url`.
    pub fn builder(url: &str) -> ProbeBuilder {
        ProbeBuilder {
            config: Target::parse(url).map(ProbeConfig::new),
            out_dir: None,
            vantage: None,
            points: Vec::new(),
        }
    }
}

impl ProbeBuilder {
    /// Marks the run as having a source of rollout events (see
    /// [`ProbeConfig::rollout_events`]).
    pub(crate) fn with_rollout_events(self) -> Self {
        self.set(|c| c.rollout_events = true)
    }

    fn set(mut self, change: impl FnOnce(&mut ProbeConfig)) -> Self {
        if let Ok(c) = &mut self.config {
            change(c);
        }
        self
    }

    /// Keeps the first mistake: it is the one the user meets first.
    fn fail(mut self, e: ConfigError) -> Self {
        if self.config.is_ok() {
            self.config = Err(e);
        }
        self
    }

    /// Which executor sends the requests (default [`ExecutorChoice::Auto`]: io_uring
    /// where it works). `ExecutorChoice::Tokio` forces the portable one.
    pub fn executor(self, choice: ExecutorChoice) -> Self {
        self.set(|c| c.executor = choice)
    }

    /// Requests per second (default 50).
    pub fn rate(self, rate: impl Into<f64>) -> Self {
        let rate = rate.into();
        self.set(|c| c.rate = rate)
    }

    /// Stop by itself after this long (default: run until [`Probe::stop`]).
    pub fn duration(self, d: Duration) -> Self {
        self.set(|c| c.duration = Some(d))
    }

    /// Response timeout, from connected to the full response (default 5 s).
    pub fn timeout(self, d: Duration) -> Self {
        self.set(|c| c.timeout = d)
    }

    /// Connect timeout (default 5 s, above the 3 s of a failed ARP).
    pub fn connect_timeout(self, d: Duration) -> Self {
        self.set(|c| c.connect_timeout = d)
    }

    /// Cap on outstanding requests (default: enough for one full timeout).
    pub fn max_in_flight(self, n: usize) -> Self {
        self.set(|c| c.max_in_flight = n)
    }

    /// Fresh connection per request, or a keep-alive pool (default fresh).
    pub fn connection(self, mode: ConnectionMode) -> Self {
        self.set(|c| c.connection = mode)
    }

    /// Statuses that count as ok (default 200-299).
    pub fn expect_status(self, set: StatusSet) -> Self {
        self.set(|c| c.expect_status = set)
    }

    /// Where the version comes from (default: the short trimmed body).
    pub fn version_from(self, source: VersionSource) -> Self {
        self.set(|c| c.version_from = source)
    }

    /// HTTP method (default GET).
    pub fn method(self, method: impl Into<String>) -> Self {
        let method = method.into();
        self.set(|c| c.method = method)
    }

    /// Adds a request header. One named like a default (`Host`, `User-Agent`) replaces
    /// it; an empty value removes the header, as curl's `-H 'Name:'` does.
    ///
    /// ```
    /// // An ingress reached by its address, for the virtual host `a.test`.
    /// let builder = probe_core::Probe::builder("http://127.0.0.1:8080/")
    ///     .header("Host", "a.test")
    ///     .header("User-Agent", "");
    /// assert_eq!(builder.config().unwrap().headers.len(), 2);
    /// ```
    pub fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.set(|c| c.headers.push((name, value)))
    }

    /// Request body.
    pub fn body(self, body: impl Into<String>) -> Self {
        let body = body.into();
        self.set(|c| c.body = Some(body))
    }

    /// Names the run (e.g. the strategy under test).
    pub fn label(self, label: impl Into<String>) -> Self {
        let label = label.into();
        self.set(|c| c.label = Some(label))
    }

    /// Serves live OpenMetrics text at `http://ADDR/metrics` while probing (default:
    /// no server). The address is bound when the probe starts: a port in use is a
    /// [`ConfigError`] then, before the first request.
    ///
    /// ```
    /// # async fn demo() -> Result<(), probe_core::ProbeError> {
    /// let addr = probe_core::parse_metrics_addr("127.0.0.1:9464")?;
    /// let probe = probe_core::Probe::builder("http://127.0.0.1:8080/test/version")
    ///     .metrics_addr(addr)
    ///     .duration(std::time::Duration::from_secs(60))
    ///     .start()
    ///     .await?;
    /// let report = probe.stop().await?;
    /// # Ok(()) }
    /// ```
    pub fn metrics_addr(self, addr: std::net::SocketAddr) -> Self {
        self.set(|c| c.metrics_addr = Some(addr))
    }

    /// Connects to `ADDR` whenever the URL names `HOST:PORT`, as curl's `--resolve
    /// HOST:PORT:ADDR` does (repeatable): the Host header and the TLS server name keep
    /// the URL's name. A rule that does not parse is a [`ConfigError`] at start.
    ///
    /// ```
    /// // The ingress's virtual host `a.test`, reached at its address.
    /// let builder = probe_core::Probe::builder("https://a.test:8443/version")
    ///     .resolve("a.test:8443:127.0.0.1");
    /// assert_eq!(builder.config().unwrap().resolve[0].to_string(), "a.test:8443:127.0.0.1");
    /// assert!(probe_core::Probe::builder("http://a.test/").resolve("a.test").config().is_err());
    /// ```
    pub fn resolve(self, rule: &str) -> Self {
        match rule.parse::<crate::config::ResolveRule>() {
            Ok(rule) => self.set(|c| c.resolve.push(rule)),
            Err(e) => self.fail(e),
        }
    }

    /// Trusts the CA certificates of a PEM file too, beside the system's store (as
    /// curl's `--cacert`). The file is read here: a missing, unreadable or empty one is a
    /// [`ConfigError`] at start.
    ///
    /// ```no_run
    /// let builder = probe_core::Probe::builder("https://svc.internal/version")
    ///     .cacert("ca.pem");
    /// ```
    pub fn cacert(self, path: impl AsRef<std::path::Path>) -> Self {
        match crate::config::CaFile::load(path) {
            Ok(ca) => self.set(|c| c.cacert = Some(ca)),
            Err(e) => self.fail(e),
        }
    }

    /// Does not verify the server's certificate (as curl's `--insecure`; default
    /// false). The run records it, and the summary's first line says it.
    ///
    /// ```
    /// let builder = probe_core::Probe::builder("https://127.0.0.1:8443/").insecure(true);
    /// assert!(builder.config().unwrap().insecure);
    /// ```
    pub fn insecure(self, insecure: bool) -> Self {
        self.set(|c| c.insecure = insecure)
    }

    /// Writes samples.csv, events.csv, report.json and windows.csv into `dir`.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The output folder, when one was given.
    pub(crate) fn output_dir(&self) -> Option<&Path> {
        self.out_dir.as_deref()
    }

    /// Probes from where a client of the target stands (a lab's client host or node):
    /// the probe then runs on its own threads, each moved there by `vantage` before it
    /// opens a socket, so the caller's runtime and threads stay where they are.
    pub fn vantage(mut self, vantage: Arc<dyn Vantage>) -> Self {
        self.vantage = Some(vantage);
        self
    }

    /// Adds a vantage point: `name` (e.g. `client`, `pod1`), the URL a client there
    /// uses (a lab's LoadBalancer address or ClusterIP), and how to get there. Each
    /// point gets one stream per connection mode, all on one clock; the first point's
    /// URL is the run's target. Without any, the probe has one point, `local` (or the
    /// one [`ProbeBuilder::vantage`] gives), at the builder's URL.
    pub fn vantage_point(
        mut self,
        name: impl Into<String>,
        url: impl Into<String>,
        vantage: Arc<dyn Vantage>,
    ) -> Self {
        self.points.push(VantagePoint {
            name: name.into(),
            url: url.into(),
            vantage: Some(vantage),
        });
        self
    }

    /// The validated configuration, without starting anything.
    pub fn config(&self) -> Result<&ProbeConfig, ConfigError> {
        let c = self.config.as_ref().map_err(Clone::clone)?;
        c.validate()?;
        Ok(c)
    }

    /// Validates everything, opens the output files, and starts probing.
    /// Must be called inside a tokio runtime.
    pub async fn start(self) -> Result<Probe, ProbeError> {
        self.config()?;
        let config = self.config?;
        let points = if self.points.is_empty() {
            vec![VantagePoint {
                name: config.vantage.clone(),
                url: config.target.url.to_string(),
                vantage: self.vantage,
            }]
        } else {
            self.points
        };
        Probe::start_from(config, self.out_dir.as_deref(), points).await
    }
}

impl From<ProbeConfig> for ProbeBuilder {
    /// A builder that starts from a complete configuration (the CLI's options).
    fn from(config: ProbeConfig) -> ProbeBuilder {
        ProbeBuilder {
            config: Ok(config),
            out_dir: None,
            vantage: None,
            points: Vec::new(),
        }
    }
}
