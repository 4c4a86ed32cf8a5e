//! A running probe: [`ProbeBuilder`], [`Probe`] and [`ProbeHandle`], which wire
//! the schedule (its own thread, see [`crate::schedule`]), the recorder (a task) and, at the end, the
//! output files.
//!
//! Every completed request and every event goes through one channel to the
//! recorder. The channel's sender sits behind a mutex that is held while an
//! event's time is read, so no sample intended after an event can reach the
//! analyzer before it.
//!
//! The recorder returns the report; the probe writes report.json, windows.csv,
//! timeline.csv and report.html after it, so recording never waits on rendering.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::analyze::RunAnalyzer;
use crate::clock::{round_ms, Clock};
use crate::config::{
    ConfigError, ConnectionMode, ProbeConfig, RecordedConfig, StatusSet, Target, VersionSource,
};
use crate::event::{Event, EventKind, EventSink, Vantage};
use crate::execute::Executor;
use crate::metrics::{Metrics, MetricsServer};
use crate::output::export;
pub use crate::record::LiveStats;
use crate::record::{self, Record, Recorded, RunFiles};
use crate::report::Report;
use crate::sample::{RunFooter, RunHeader, StreamInfo, SAMPLES_SCHEMA};
use crate::schedule::{self, RequestIds, SampleSink, Schedule};
use crate::trigger::TriggerReport;

/// Why a probe could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Writing an output file failed during or at the end of the run. The
    /// measurement itself is complete and is kept here, so nothing is lost.
    #[error("cannot write {path}: {source} (the report itself is complete)")]
    OutputLost {
        /// The full report of the run.
        report: Box<Report>,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The probe's own machinery failed.
    #[error("the prober failed: {0}")]
    Internal(String),
}

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

/// A place to probe from: its name (the first half of its streams' names, e.g.
/// `client` or `pod1`), the URL a client there uses, and how a thread gets there.
///
/// ```
/// let local = probe_core::VantagePoint::local("http://127.0.0.1:8080/test/version");
/// assert_eq!(local.name, "local");
/// ```
#[derive(Clone)]
pub struct VantagePoint {
    /// The stream names' first half.
    pub name: String,
    /// The URL probed from there.
    pub url: String,
    /// Moves a thread there; `None` probes from this process's own network.
    pub vantage: Option<Arc<dyn Vantage>>,
}

impl VantagePoint {
    /// This machine, as it is.
    pub fn local(url: &str) -> VantagePoint {
        VantagePoint {
            name: "local".into(),
            url: url.to_string(),
            vantage: None,
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

struct Shared {
    /// One schedule per stream.
    schedules: Vec<Arc<Schedule>>,
    clock: Clock,
    tx: Mutex<mpsc::UnboundedSender<Record>>,
    live: Arc<Mutex<LiveStats>>,
    /// How the run's trigger ended, for run.json's end and the verdict.
    trigger: Mutex<Option<TriggerReport>>,
}

impl Shared {
    fn sender(&self) -> MutexGuard<'_, mpsc::UnboundedSender<Record>> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stamps `event` with the probe's clock and records it. The sender's lock is held
    /// while the time is read, so no sample intended later can overtake the event.
    fn event(&self, mut event: Event) {
        let tx = self.sender();
        event.at_ms = round_ms(self.clock.now_ms());
        let _ = tx.send(Record::Event(event));
    }
}

/// A handle on a running probe, cheap to clone and send to other tasks or
/// threads: emits events onto its timeline (a trigger runner, the lab's
/// controller ...) and reads its live counters (a progress line).
///
/// ```
/// # async fn demo(probe: &probe_core::Probe) {
/// let handle = probe.handle();
/// std::thread::spawn(move || handle.emit("pod_ready", "backend-1 10.244.0.7"));
/// # }
/// ```
#[derive(Clone)]
pub struct ProbeHandle {
    shared: Arc<Shared>,
}

impl ProbeHandle {
    /// Live counters, for a progress line.
    pub fn live(&self) -> LiveStats {
        self.shared
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts an event of `kind` on the timeline, stamped now.
    pub fn emit(&self, kind: impl Into<EventKind>, detail: &str) {
        self.shared.event(Event::new(0.0, kind, detail));
    }

    /// Records an event from a source (the lab, a Kubernetes watch), stamped now;
    /// its `server_time`, if any, keeps the source's own timestamp.
    pub fn record(&self, event: Event) {
        self.shared.event(event);
    }

    /// An [`EventSink`] that records into this probe.
    pub fn sink(&self) -> EventSink {
        let handle = self.clone();
        Arc::new(move |event| handle.record(event))
    }

    /// Milliseconds since the probe started.
    pub fn now_ms(&self) -> f64 {
        self.shared.clock.now_ms()
    }
}

/// A running probe. See [`ProbeBuilder`] for an example.
pub struct Probe {
    shared: Arc<Shared>,
    /// One schedule thread per stream.
    schedulers: Vec<std::thread::JoinHandle<()>>,
    recorder: tokio::task::JoinHandle<()>,
    /// The runtime of the recorder, of its own when the first vantage point is not
    /// here: held for the probe's life, shut down when it is dropped.
    _runtimes: OwnRuntimes,
    /// Serves `/metrics` until the probe is finished (dropped).
    _metrics: Option<MetricsServer>,
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

    /// Starts a probe from a complete configuration.
    pub async fn start_with(
        config: ProbeConfig,
        out_dir: Option<&Path>,
    ) -> Result<Probe, ProbeError> {
        Probe::start_in(config, out_dir, None).await
    }

    /// Starts a probe from a complete configuration, from `vantage` if given
    /// (see [`ProbeBuilder::vantage`]).
    pub async fn start_in(
        config: ProbeConfig,
        out_dir: Option<&Path>,
        vantage: Option<Arc<dyn Vantage>>,
    ) -> Result<Probe, ProbeError> {
        let point = VantagePoint {
            name: config.vantage.clone(),
            url: config.target.url.to_string(),
            vantage,
        };
        Probe::start_from(config, out_dir, vec![point]).await
    }

    /// Starts a probe with one stream per vantage point and connection mode (see
    /// [`ProbeBuilder::vantage_point`]); `config`'s target is replaced by each point's URL.
    pub async fn start_from(
        config: ProbeConfig,
        out_dir: Option<&Path>,
        points: Vec<VantagePoint>,
    ) -> Result<Probe, ProbeError> {
        config.validate()?;
        let plan = StreamPlan::new(&config, &points)?;
        // Bound here, on the caller's thread: refused before probing, and on the
        // caller's network even when the probe stands in a lab's namespace.
        let metrics_listener = config.metrics_addr.map(crate::metrics::bind).transpose()?;
        // Each stream's schedule sends from a thread of its own that has entered its
        // vantage point; the recorder and the metrics server only need a runtime, which
        // is the caller's unless the first point stands elsewhere.
        let mut runtimes = OwnRuntimes::default();
        let handle = match &points[0].vantage {
            Some(v) => {
                let rt = vantage_runtime(v.clone(), &points[0].url)?;
                let handle = rt.handle().clone();
                runtimes.0.push(rt);
                handle
            }
            None => tokio::runtime::Handle::current(),
        };
        // Every stream's thread is ready before the clock starts: its first tick is
        // due at the clock's origin, and must not wait for threads to be built.
        let mut ready = Vec::new();
        for stream in &plan.streams {
            let point = &points[stream.point];
            let stream_vantage = point.vantage.as_ref().map(|v| schedule::StreamVantage {
                vantage: v.clone(),
                url: point.url.clone(),
            });
            let thread = schedule::prepare(stream_vantage)
                .map_err(|e| ProbeError::Internal(format!("cannot start a schedule: {e}")))?;
            ready.push((thread, Arc::new(Executor::new(stream.config.clone()))));
        }
        // So are the files, the analyzer and the metrics: an unwritable folder is
        // refused before probing, and little work is left to compete with the first
        // ticks. run.json is written now with the time of writing, and again by the
        // recorder, at once, with the clock's start.
        let mut header = RunHeader {
            schema: SAMPLES_SCHEMA.to_string(),
            label: config.label.clone(),
            target: plan.target.clone(),
            config: RecordedConfig::from(&config),
            started_at: crate::clock::format_wall(jiff::Timestamp::now()),
            run_id: new_run_id(),
            streams: plan.streams.iter().map(|s| s.info.clone()).collect(),
        };
        let outputs = match out_dir {
            Some(dir) => Some(
                RunFiles::create(dir, &header)
                    .map_err(|(path, source)| ProbeError::Output { path, source })?,
            ),
            None => None,
        };
        let analyzer = RunAnalyzer::new(&header);
        let metrics = match metrics_listener {
            Some(_) => Metrics::new(config.label.as_deref().unwrap_or(&header.target)),
            None => Metrics::off(),
        };
        let metrics_server = metrics_listener
            .zip(metrics.registry())
            .map(|(listener, registry)| MetricsServer::start(listener, registry, &handle));
        let clock = Clock::start();
        header.started_at = clock.started_at();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            schedules: plan
                .streams
                .iter()
                .map(|s| Arc::new(Schedule::new(s.config.clone(), clock)))
                .collect(),
            clock,
            tx: Mutex::new(tx),
            live: Arc::new(Mutex::new(LiveStats::default())),
            trigger: Mutex::new(None),
        });
        let run_id = header.run_id.clone();
        let recorder = handle.spawn(record::run(
            rx,
            header,
            analyzer,
            outputs,
            shared.live.clone(),
            metrics,
        ));
        let mut schedulers = Vec::new();
        let streams = plan.streams.iter().zip(&shared.schedules).zip(ready);
        for ((stream, schedule), (thread, executor)) in streams {
            let ids = RequestIds {
                prefix: format!("{run_id}-{}-", stream.info.name),
                stream: stream.info.name.clone(),
                enabled: stream.config.request_id,
            };
            let for_sink = shared.clone();
            let sink: SampleSink = Arc::new(move |samples| {
                let _ = for_sink.sender().send(Record::Samples(samples));
            });
            schedulers.push(thread.go(schedule.clone(), executor, ids, sink));
        }
        Ok(Probe {
            shared,
            schedulers,
            recorder,
            _runtimes: runtimes,
            _metrics: metrics_server,
        })
    }

    /// Puts a `mark` event on the timeline.
    pub fn mark(&self, detail: &str) {
        self.shared.event(Event::new(0.0, EventKind::Mark, detail));
    }

    /// Puts an event of any kind on the timeline.
    pub fn event(&self, kind: impl Into<EventKind>, detail: &str) {
        self.shared.event(Event::new(0.0, kind, detail));
    }

    /// A handle for emitting events and reading counters from elsewhere.
    pub fn handle(&self) -> ProbeHandle {
        ProbeHandle {
            shared: self.shared.clone(),
        }
    }

    /// Milliseconds since the probe started.
    pub fn elapsed_ms(&self) -> f64 {
        self.shared.clock.now_ms()
    }

    /// Live counters, for a progress line.
    pub fn live(&self) -> LiveStats {
        self.handle().live()
    }

    /// Records how the run's trigger ended: it goes into run.json's end and the report,
    /// whose verdict reads it (see [`TriggerOutcome`](crate::TriggerOutcome)).
    pub fn record_trigger(&self, trigger: TriggerReport) {
        *self
            .shared
            .trigger
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(trigger);
    }

    /// Whether the schedule has ended by itself (its duration is over).
    pub fn schedule_is_finished(&self) -> bool {
        self.shared
            .schedules
            .iter()
            .all(|s| s.done.load(Ordering::Acquire))
    }

    /// Resolves when the schedule has ended by itself (its duration is over).
    /// Never resolves for a probe without a duration.
    pub async fn schedule_finished(&self) {
        for schedule in &self.shared.schedules {
            loop {
                let notified = schedule.done_notify.notified();
                if schedule.done.load(Ordering::Acquire) {
                    break;
                }
                notified.await;
            }
        }
    }

    /// Stops sending, waits for requests in flight, and returns the report.
    pub async fn stop(self) -> Result<Report, ProbeError> {
        self.finish(false).await
    }

    /// Like [`Probe::stop`], but the report says the run was interrupted.
    pub async fn stop_interrupted(self) -> Result<Report, ProbeError> {
        self.finish(true).await
    }

    async fn finish(mut self, interrupted: bool) -> Result<Report, ProbeError> {
        // Probing stops now (or stopped when the schedule ran out, if it did): that
        // is the run's length, whatever was asked for; answers still in flight are
        // waited for below but were meant for earlier ticks.
        let mut duration_ms = round_ms(self.shared.clock.now_ms());
        let c = &self.shared.schedules[0].config;
        if let (Some(d), true) = (c.duration, self.schedule_is_finished()) {
            duration_ms = duration_ms.min(d.as_secs_f64() * 1000.0);
        }
        for s in &self.shared.schedules {
            s.stop();
        }
        let in_flight = |s: &Arc<Schedule>| s.in_flight.load(Ordering::Acquire);
        // The trigger has ended (or was killed) before the probe stops.
        let trigger = self
            .shared
            .trigger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let end = |unanswered: usize| RunFooter {
            ended_at: self.shared.clock.wall_at(duration_ms),
            duration_ms,
            interrupted,
            trigger: trigger.clone(),
            unanswered: unanswered as u64,
        };
        // Waiting for the requests in flight can take their whole timeout, and a
        // second signal may kill the process meanwhile: run.json says now when
        // probing stopped and how many requests were still out.
        let stopping = end(self.shared.schedules.iter().map(in_flight).sum());
        let _ = self.shared.sender().send(Record::Stopping(stopping));
        for t in std::mem::take(&mut self.schedulers) {
            tokio::task::spawn_blocking(move || t.join())
                .await
                .map_err(|e| ProbeError::Internal(e.to_string()))?
                .map_err(|_| ProbeError::Internal("a scheduler thread panicked".into()))?;
        }
        // Requests end by their own timeouts; wait for them, with a margin.
        let c = &self.shared.schedules[0].config;
        let limit = Instant::now() + c.connect_timeout + c.timeout + Duration::from_secs(2);
        while self.shared.schedules.iter().map(in_flight).sum::<usize>() > 0
            && Instant::now() < limit
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let footer = end(self.shared.schedules.iter().map(in_flight).sum());
        let (done_tx, done_rx) = oneshot::channel();
        let _ = self.shared.sender().send(Record::Finish(footer, done_tx));
        let Recorded {
            report,
            dir,
            write_error,
        } = done_rx
            .await
            .map_err(|_| ProbeError::Internal("the recorder stopped early".into()))?;
        let _ = (&mut self.recorder).await;
        let written = match (write_error, dir) {
            (Some((path, source)), _) => Err(ProbeError::Output { path, source }),
            (None, Some(dir)) => write_report_files(&dir, &report),
            (None, None) => Ok(()),
        };
        match written {
            Ok(()) => Ok(report),
            Err(ProbeError::Output { path, source }) => Err(ProbeError::OutputLost {
                report: Box::new(report),
                path,
                source,
            }),
            Err(other) => Err(other),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // A probe dropped without stop(): end the schedule thread anyway.
        for s in &self.shared.schedules {
            s.stop();
        }
    }
}

/// The runtimes a probe made for itself, shut down in the background when dropped:
/// dropping a runtime inside async code (a probe dropped, or a start that failed
/// half-way) would panic.
#[derive(Default)]
struct OwnRuntimes(Vec<tokio::runtime::Runtime>);

impl Drop for OwnRuntimes {
    fn drop(&mut self) {
        for rt in self.0.drain(..) {
            rt.shutdown_background();
        }
    }
}

/// A runtime whose every thread has entered `vantage` for `url`.
///
/// A thread that cannot enter it must not open a socket from the host's own network
/// (the target's address could route somewhere real), so entering is tried once
/// before the runtime is built (an error the caller sees), and a worker thread that
/// still fails later aborts the process rather than probe from the wrong place.
fn vantage_runtime(
    vantage: Arc<dyn Vantage>,
    url: &str,
) -> Result<tokio::runtime::Runtime, ProbeError> {
    let check = vantage.clone();
    let check_url = url.to_string();
    std::thread::spawn(move || check.enter(&check_url))
        .join()
        .map_err(|_| ProbeError::Internal("entering the vantage point panicked".into()))?
        .map_err(|e| {
            ProbeError::Internal(format!("cannot probe from where {url} is reached: {e}"))
        })?;
    let url = url.to_string();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rollprobe-probe")
        .enable_all()
        .on_thread_start(move || {
            if let Err(e) = vantage.enter(&url) {
                eprintln!(
                    "rollprobe: a probe thread cannot reach {url} from its vantage point: {e}"
                );
                std::process::abort();
            }
        })
        .build()
        .map_err(|e| ProbeError::Internal(format!("cannot start the probe runtime: {e}")))
}

/// The streams of a run: one per vantage point and connection mode.
struct StreamPlan {
    /// The run's target: the first point's URL.
    target: String,
    streams: Vec<PlannedStream>,
}

struct PlannedStream {
    info: StreamInfo,
    /// The run's config with this stream's target, vantage and single connection mode.
    config: Arc<ProbeConfig>,
    /// Index of its vantage point.
    point: usize,
}

impl StreamPlan {
    fn new(config: &ProbeConfig, points: &[VantagePoint]) -> Result<StreamPlan, ProbeError> {
        let first = points
            .first()
            .ok_or_else(|| ProbeError::Internal("a probe needs a vantage point".into()))?;
        let mut streams: Vec<PlannedStream> = Vec::new();
        for (i, point) in points.iter().enumerate() {
            let target = Target::parse(&point.url)?;
            for mode in config.connection.stream_modes() {
                let mut info = StreamInfo::new(&point.name, mode);
                if streams.iter().any(|s| s.info.name == info.name) {
                    return Err(ConfigError::Value {
                        name: "vantage point",
                        value: point.name.clone(),
                        reason: "is given twice; each vantage point needs its own name".into(),
                    }
                    .into());
                }
                if point.url != first.url {
                    info.target = Some(point.url.clone());
                }
                let mut c = config.clone();
                c.target = target.clone();
                c.connection = mode;
                c.vantage = point.name.clone();
                streams.push(PlannedStream {
                    info,
                    config: Arc::new(c),
                    point: i,
                });
            }
        }
        Ok(StreamPlan {
            target: first.url.clone(),
            streams,
        })
    }
}

/// A run id that is unique enough to join logs by: the start time and the process.
fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:010x}", mixed & 0xff_ffff_ffff)
}

/// Writes report.json, windows.csv, timeline.csv and report.html for a finished report.
pub fn write_report_files(dir: &Path, report: &Report) -> Result<(), ProbeError> {
    export::write_all(dir, report, export::REPORT_FILES).map_err(|e| ProbeError::Output {
        path: e.path,
        source: e.source,
    })
}
