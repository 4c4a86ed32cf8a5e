//! A rollout, measured: start probing, warm up, trigger, wait for the trigger (and,
//! with an event source, for the rollout to complete), settle, stop, report.
//!
//! This is the one implementation of that procedure: the CLI's `run`, `lab` and
//! `matrix` wrap it, and an integration test calls it directly. The trigger is
//! anything that redeploys: a future (its start and end become `trigger_start` and
//! `trigger_exit`) or a command. A failed trigger is recorded in `trigger_exit` and the
//! report is still returned: the outage it caused, if any, is the measurement.

use std::fmt::Display;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{BoxFuture, EventKind, EventSource, Vantage};
use crate::probe::{Probe, ProbeBuilder, ProbeError, ProbeHandle};
use crate::report::Report;
use crate::trigger::{OutputRelay, TriggerOutcome, TriggerReport};

/// The default warm-up before the trigger: long enough to see the service healthy.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(2);
/// The default settle time after the trigger (and the rollout) ended.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(5);
/// How long a rollout may take to complete, after its trigger ended, by default.
pub const DEFAULT_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(600);
/// How long [`Rollout::lab`] waits for the probed Service to answer steadily before
/// probing starts.
pub const BASELINE_TIMEOUT: Duration = Duration::from_secs(120);

/// What a trigger future may return: `()`, or `Result<(), E>` with a displayable error.
pub trait TriggerOutput {
    /// `Err` with a one-line reason when the trigger failed.
    fn into_result(self) -> Result<(), String>;
}

impl TriggerOutput for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> TriggerOutput for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

enum Trigger {
    /// A future and what it does, in words (`trigger_start`'s detail, the summary's line).
    Future(String, BoxFuture<Result<(), String>>),
    Command(Vec<String>),
}

/// Why a rollout could not be measured. A failed trigger is not one of these: it is
/// recorded in the report.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The rollout was asked for something impossible (a trigger command that does not
    /// exist, no way to end); nothing was probed.
    #[error("{0}")]
    Usage(String),
    /// The probe could not start or finish (see [`ProbeError::OutputLost`]: the report
    /// survives an unwritable output folder).
    #[error(transparent)]
    Probe(#[from] ProbeError),
    /// The probed service never answered steadily, so there was no healthy baseline to
    /// measure the rollout from; nothing was probed.
    #[error("no healthy baseline before probing: {0}")]
    Baseline(String),
}

/// Measures one redeploy. See the crate docs for the whole example.
///
/// ```no_run
/// # async fn redeploy() -> Result<(), std::io::Error> { Ok(()) }
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use probe_core::{Probe, Rollout};
/// let report = Rollout::new(Probe::builder("http://127.0.0.1:8080/test/version").rate(200))
///     .warmup(Duration::from_millis(500))
///     .settle(Duration::from_millis(500))
///     .trigger(async move { redeploy().await })
///     .run()
///     .await?;
/// assert_eq!(report.totals.failed, 0, "{}", report.summary());
/// # Ok(()) }
/// ```
pub struct Rollout {
    probe: ProbeBuilder,
    warmup: Duration,
    settle: Duration,
    trigger: Option<Trigger>,
    source: Option<Arc<dyn EventSource>>,
    /// With [`Rollout::lab`]: where to wait for a serving baseline before probing.
    baseline: Option<Arc<dyn Vantage>>,
    rollout_timeout: Duration,
    cancel: Option<BoxFuture<()>>,
    observer: Option<Box<dyn FnOnce(ProbeHandle) + Send>>,
}

impl Rollout {
    /// A rollout probed as `probe` describes (rate, target, output folder ...).
    pub fn new(probe: ProbeBuilder) -> Rollout {
        Rollout {
            probe,
            warmup: DEFAULT_WARMUP,
            settle: DEFAULT_SETTLE,
            trigger: None,
            source: None,
            baseline: None,
            rollout_timeout: DEFAULT_ROLLOUT_TIMEOUT,
            cancel: None,
            observer: None,
        }
    }

    /// Probing before the trigger (default 2 s): the baseline.
    pub fn warmup(mut self, d: Duration) -> Rollout {
        self.warmup = d;
        self
    }

    /// Probing after the trigger and the rollout ended (default 5 s).
    pub fn settle(mut self, d: Duration) -> Rollout {
        self.settle = d;
        self
    }

    /// The redeploy, as a future: anything `Send + 'static` whose output is `()` or
    /// `Result<(), E: Display>`.
    pub fn trigger<F>(mut self, redeploy: F) -> Rollout
    where
        F: Future + Send + 'static,
        F::Output: TriggerOutput,
    {
        self.trigger = Some(Trigger::Future(
            "trigger".to_string(),
            Box::pin(async move { redeploy.await.into_result() }),
        ));
        self
    }

    /// Says what the trigger future does (`set-image:web=shop/web:v2`), for
    /// `trigger_start` and the summary's trigger line [default: `trigger`]. A command
    /// is named by its own words.
    ///
    /// ```
    /// use probe_core::{Probe, Rollout};
    /// let rollout = Rollout::new(Probe::builder("http://127.0.0.1:8080/"))
    ///     .trigger(async {})
    ///     .trigger_name("restart:web");
    /// # drop(rollout);
    /// ```
    pub fn trigger_name(mut self, name: impl Into<String>) -> Rollout {
        if let Some(Trigger::Future(named, _)) = &mut self.trigger {
            *named = name.into();
        }
        self
    }

    /// The redeploy, as a command (`["kubectl", "rollout", "restart", "deployment/web"]`);
    /// its exit code goes into `trigger_exit`.
    pub fn trigger_command<I, S>(mut self, command: I) -> Rollout
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trigger = Some(Trigger::Command(
            command.into_iter().map(Into::into).collect(),
        ));
        self
    }

    /// Puts a cluster's events on the probe's clock (a Kubernetes watch, a lab) and,
    /// after the trigger, keeps probing until the rollout completes.
    pub fn events<S: EventSource + 'static>(mut self, source: S) -> Rollout {
        self.probe = self.probe.with_rollout_events();
        self.source = Some(Arc::new(source));
        self
    }

    /// Runs against a lab: waits until the probed Service answers steadily (the same
    /// wait as `rollprobe lab`, so the baseline is healthy and start-up failures are not
    /// blamed on the rollout; at most [`BASELINE_TIMEOUT`]), probes from where a client
    /// of that Service stands, puts the lab's events on the probe's clock, and runs until
    /// the rollout completes.
    pub fn lab<L: EventSource + Vantage + Clone + 'static>(mut self, lab: &L) -> Rollout {
        let lab = Arc::new(lab.clone());
        self.probe = self.probe.vantage(lab.clone()).with_rollout_events();
        self.source = Some(lab.clone());
        self.baseline = Some(lab);
        self
    }

    /// How long the rollout may take to complete after the trigger ended (default 10
    /// minutes); past it the run settles and ends, and the report says so.
    pub fn rollout_timeout(mut self, d: Duration) -> Rollout {
        self.rollout_timeout = d;
        self
    }

    /// Ends the run early, as interrupted, when `signal` resolves (Ctrl-C in the CLI).
    /// A running trigger command is killed.
    pub fn cancel_on<F: Future<Output = ()> + Send + 'static>(mut self, signal: F) -> Rollout {
        self.cancel = Some(Box::pin(signal));
        self
    }

    /// Called once with the running probe's handle (for a progress line, marks ...).
    pub fn observe(mut self, observer: impl FnOnce(ProbeHandle) + Send + 'static) -> Rollout {
        self.observer = Some(Box::new(observer));
        self
    }

    /// Runs the whole procedure and returns the report.
    pub async fn run(self) -> Result<Report, RolloutError> {
        let duration = self.probe.config().map_err(ProbeError::from)?.duration;
        match &self.trigger {
            Some(Trigger::Command(cmd)) => check_command(cmd)?,
            Some(Trigger::Future(..)) => {}
            None if duration.is_none() && self.cancel.is_none() => {
                return Err(RolloutError::Usage(
                    "a rollout needs a trigger, a duration or a way to be stopped".into(),
                ))
            }
            None => {}
        }
        if let Some(place) = &self.baseline {
            let url = self
                .probe
                .config()
                .map_err(ProbeError::from)?
                .target
                .url
                .to_string();
            place
                .wait_serving(&url, BASELINE_TIMEOUT)
                .await
                .map_err(RolloutError::Baseline)?;
        }
        let out_dir = self.probe.output_dir().map(std::path::Path::to_path_buf);
        let probe = self.probe.start().await?;
        let handle = probe.handle();
        let attachment = self.source.as_ref().map(|s| s.attach(handle.sink()));
        if let Some(observer) = self.observer {
            observer(handle.clone());
        }
        let mut ends = Ends {
            cancel: self
                .cancel
                .unwrap_or_else(|| Box::pin(std::future::pending())),
            probe: &probe,
            duration: duration.is_some(),
        };
        let interrupted = match self.trigger {
            // Without a trigger the run lasts its duration, or until it is cancelled.
            None => matches!(
                ends.race(std::future::pending::<()>()).await,
                End::Interrupted
            ),
            Some(trigger) => {
                let mut interrupted = false;
                match ends.race(sleep(self.warmup)).await {
                    End::Interrupted => interrupted = true,
                    End::Finished => {}
                    End::Done(()) => {
                        let report =
                            run_trigger(trigger, &handle, &mut ends, out_dir.as_deref()).await;
                        interrupted = report.outcome == TriggerOutcome::Interrupted;
                        let finished = report.outcome == TriggerOutcome::KilledByDuration;
                        probe.record_trigger(report);
                        if !interrupted && !finished {
                            if let Some(source) = &self.source {
                                let complete = source.rollout_complete(self.rollout_timeout);
                                match ends.race(complete).await {
                                    End::Interrupted => interrupted = true,
                                    End::Finished => {}
                                    End::Done(result) => note_incomplete(&handle, result),
                                }
                            }
                            if !interrupted && !probe.schedule_is_finished() {
                                interrupted =
                                    matches!(ends.race(sleep(self.settle)).await, End::Interrupted);
                            }
                        }
                    }
                }
                interrupted
            }
        };
        drop(ends);
        drop(attachment);
        let report = if interrupted {
            probe.stop_interrupted().await?
        } else {
            probe.stop().await?
        };
        Ok(report)
    }
}

fn sleep(d: Duration) -> Pin<Box<tokio::time::Sleep>> {
    Box::pin(tokio::time::sleep(d))
}

/// A rollout that did not complete is a fact of the run, on its timeline.
fn note_incomplete(handle: &ProbeHandle, result: Result<(), String>) {
    if let Err(reason) = result {
        handle.emit(
            EventKind::Mark,
            &format!("the rollout did not complete: {reason}"),
        );
    }
}

/// The things that end a wait early: the cancel signal, and the probe's own duration.
struct Ends<'a> {
    cancel: BoxFuture<()>,
    probe: &'a Probe,
    duration: bool,
}

enum End<T> {
    /// The cancel signal.
    Interrupted,
    /// The probe's duration ran out.
    Finished,
    /// The awaited thing finished first.
    Done(T),
}

impl Ends<'_> {
    async fn race<T>(&mut self, work: impl Future<Output = T>) -> End<T> {
        let duration = self.duration;
        let probe = self.probe;
        let cap = async move {
            if duration {
                probe.schedule_finished().await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = &mut self.cancel => End::Interrupted,
            _ = cap => End::Finished,
            v = work => End::Done(v),
        }
    }
}

/// Runs the trigger between `trigger_start` and `trigger_exit`; a command's output is
/// relayed (see [`OutputRelay`]), never mixed into stdout.
async fn run_trigger(
    trigger: Trigger,
    handle: &ProbeHandle,
    ends: &mut Ends<'_>,
    out_dir: Option<&std::path::Path>,
) -> TriggerReport {
    let report = match trigger {
        Trigger::Future(name, redeploy) => {
            handle.emit(EventKind::TriggerStart, &name);
            let (outcome, error) = match ends.race(redeploy).await {
                End::Done(Ok(())) => (TriggerOutcome::Succeeded, None),
                End::Done(Err(reason)) => (TriggerOutcome::Failed, Some(reason)),
                End::Interrupted => (TriggerOutcome::Interrupted, None),
                End::Finished => (TriggerOutcome::KilledByDuration, None),
            };
            TriggerReport::ended(name, outcome, None, error)
        }
        Trigger::Command(command) => {
            let line = command.join(" ");
            handle.emit(EventKind::TriggerStart, &line);
            let relay = OutputRelay::new(out_dir);
            let (outcome, exit_code, error) = run_command(&command, ends, &relay).await;
            TriggerReport {
                stderr_tail: relay.stderr_tail(),
                ..TriggerReport::ended(line, outcome, exit_code, error)
            }
        }
    };
    handle.emit(EventKind::TriggerExit, &report.event_detail());
    report
}

/// Runs a trigger command to its end (or the run's), its output through `relay`:
/// how it ended, its exit code, and why when no exit code says it.
async fn run_command(
    command: &[String],
    ends: &mut Ends<'_>,
    relay: &OutputRelay,
) -> (TriggerOutcome, Option<i32>, Option<String>) {
    let mut child = tokio::process::Command::new(&command[0]);
    child
        .args(&command[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match child.spawn() {
        Ok(child) => child,
        Err(e) => return (TriggerOutcome::NotStarted, None, Some(e.to_string())),
    };
    let stdout = child
        .stdout
        .take()
        .map(|out| tokio::spawn(relay.clone().relay(out, false)));
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(relay.clone().relay(err, true)));
    let end = match ends.race(child.wait()).await {
        End::Done(Ok(status)) => match status.code() {
            Some(0) => (TriggerOutcome::Succeeded, Some(0), None),
            Some(code) => (TriggerOutcome::Failed, Some(code), None),
            None => (TriggerOutcome::Failed, None, Some(status.to_string())),
        },
        End::Done(Err(e)) => (
            TriggerOutcome::Failed,
            None,
            Some(format!("wait failed: {e}")),
        ),
        End::Interrupted => {
            let _ = child.kill().await;
            (TriggerOutcome::Interrupted, None, None)
        }
        End::Finished => {
            let _ = child.kill().await;
            (TriggerOutcome::KilledByDuration, None, None)
        }
    };
    // The pipes close when the command (and whatever it started that kept them) ends;
    // a grandchild that holds them open must not hold the run.
    for relay in [stdout, stderr].into_iter().flatten() {
        let _ = tokio::time::timeout(Duration::from_secs(1), relay).await;
    }
    end
}

/// A trigger command must exist before anything is probed.
fn check_command(command: &[String]) -> Result<(), RolloutError> {
    let Some(program) = command.first() else {
        return Err(RolloutError::Usage("the trigger command is empty".into()));
    };
    let found = if program.contains('/') {
        PathBuf::from(program).is_file()
    } else {
        std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
        })
    };
    if found {
        Ok(())
    } else {
        Err(RolloutError::Usage(format!(
            "trigger command '{program}' not found: give a program on PATH or a path to one"
        )))
    }
}
