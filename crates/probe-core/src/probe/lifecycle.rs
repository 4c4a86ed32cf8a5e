//! A running [`Probe`] and its [`ProbeHandle`]: start (wire the schedule threads,
//! the recorder task and the runtimes), events onto the one timeline, stop.
//!
//! Every completed request and every event goes through one channel to the
//! recorder. The channel's sender sits behind a mutex that is held while an
//! event's time is read, so no sample intended after an event can reach the
//! analyzer before it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::analyze::RunAnalyzer;
use crate::clock::{round_ms, Clock};
use crate::config::{ProbeConfig, RecordedConfig};
use crate::event::{Event, EventKind, EventSink, Vantage};
use crate::execute::Executor;
use crate::metrics::{Metrics, MetricsServer};
use crate::record::{self, Record, Recorded, RunFiles};
use crate::report::Report;
use crate::sample::{ExecutorUsed, RunFooter, RunHeader, StreamInfo, SAMPLES_SCHEMA};
use crate::schedule::{self, RequestIds, SampleSink, Schedule};
use crate::trigger::TriggerReport;

use super::plan::{new_run_id, vantage_runtime, OwnRuntimes, StreamPlan, VantagePoint};
use super::{write_report_files, LiveStats, ProbeError};

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
        let mut executors = Vec::new();
        for stream in &plan.streams {
            let point = &points[stream.point];
            let stream_vantage = point.vantage.as_ref().map(|v| schedule::StreamVantage {
                vantage: v.clone(),
                url: point.url.clone(),
            });
            let executor = Arc::new(Executor::new(stream.config.clone()));
            let thread = schedule::prepare(stream_vantage, &executor)
                .map_err(|e| ProbeError::Internal(format!("cannot start a schedule: {e}")))?;
            executors.push(thread.ran.clone());
            ready.push((thread, executor));
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
            // Which executor sends each stream's requests, kept in run.json so that a
            // report made again from the files says it too.
            streams: plan
                .streams
                .iter()
                .zip(&executors)
                .map(|(s, ran)| StreamInfo {
                    executor: Some(ExecutorUsed {
                        name: if ran.uring { "io_uring" } else { "tokio" }.to_string(),
                        why: ran.why.clone(),
                    }),
                    ..s.info.clone()
                })
                .collect(),
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
        // A fallback the user did not ask for is said once, whatever the streams.
        if let Some(why) = executors
            .iter()
            .find(|r| !r.uring && !r.quiet)
            .and_then(|r| r.why.as_deref())
        {
            eprintln!("rollprobe: sending with the tokio executor, not io_uring: {why}");
        }
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
