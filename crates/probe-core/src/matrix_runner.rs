//! Running a strategy matrix: for each case and repetition, set the Deployment's
//! strategy, wait until it is stable, measure one [`Rollout`], and add its row.
//!
//! The cluster is anything that implements [`Deployments`] (the lab, a Kubernetes
//! namespace). matrix.csv, matrix.json and matrix.html are rewritten after every run, so an
//! interrupted matrix keeps the runs it finished; the original strategy (and image)
//! is restored at the end, also after an interruption or a failure.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::event::{BoxFuture, EventSource, Vantage};
use crate::matrix::{Matrix, MatrixRun};
use crate::output::export::{self, MatrixCsv, MatrixHtml, MatrixJson};
use crate::probe::{ProbeBuilder, ProbeError, ProbeHandle};
use crate::rollout::{
    Rollout, RolloutError, DEFAULT_ROLLOUT_TIMEOUT, DEFAULT_SETTLE, DEFAULT_WARMUP,
};
use crate::strategy::{Strategy, StrategyCase};

/// A place whose Deployments a matrix changes: the lab or a Kubernetes namespace.
/// Errors are one line saying what failed.
pub trait Deployments: Send + Sync {
    /// The Deployment's current strategy.
    fn strategy(&self, deployment: &str) -> BoxFuture<Result<Strategy, String>>;
    /// Changes the strategy (no rollout: the pod template is unchanged).
    fn set_strategy(&self, deployment: &str, strategy: Strategy) -> BoxFuture<Result<(), String>>;
    /// `kubectl rollout restart`.
    fn restart(&self, deployment: &str) -> BoxFuture<Result<(), String>>;
    /// Sets the image of the Deployment's container; returns the image it replaced.
    fn set_image(&self, deployment: &str, image: &str) -> BoxFuture<Result<String, String>>;
    /// Resolves when the Deployment's rollout is complete.
    fn wait_rollout_complete(
        &self,
        deployment: &str,
        timeout: Duration,
    ) -> BoxFuture<Result<(), String>>;
    /// `kubectl rollout undo`: back to the revision before the current one (a rollout
    /// with the Deployment's strategy). Places that cannot do it say so.
    fn undo(&self, deployment: &str) -> BoxFuture<Result<(), String>> {
        let e = format!("rolling back deployment {deployment} is not supported here: use --trigger restart or image=IMAGE");
        Box::pin(async move { Err(e) })
    }
    /// Sets the container's `preStop` hook to a sleep of `seconds`, or removes it with
    /// `None` (a rollout starts: the pod template changes). Returns the sleep it replaced
    /// (`None`: there was no hook); a hook that is not a sleep is an error rather than
    /// lost. Places that cannot do it say so.
    fn set_pre_stop_sleep(
        &self,
        deployment: &str,
        seconds: Option<u32>,
    ) -> BoxFuture<Result<Option<u32>, String>> {
        let _ = seconds;
        let e = format!("changing the preStop hook of deployment {deployment} is not supported here: drop the case's +prestop suffix");
        Box::pin(async move { Err(e) })
    }
}

/// What starts each run's rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixTrigger {
    /// `kubectl rollout restart`: a new pod template annotation.
    Restart,
    /// Set this image, then the original, alternately, so every run is a real change.
    Image(String),
    /// `kubectl rollout undo`: each run rolls back to the revision before, so runs
    /// alternate between the last two templates. Before the first run, an unmeasured
    /// restart makes sure there is a revision to go back to.
    Undo,
}

/// Why a matrix stopped early. The runs finished before it are kept in matrix.csv.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The cluster refused a change or a wait ran out.
    #[error("{0}")]
    Cluster(String),
    /// A run could not be measured.
    #[error(transparent)]
    Rollout(#[from] RolloutError),
    /// matrix.csv or matrix.json could not be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The matrix's result: every finished run, and how it ended.
pub struct MatrixOutcome {
    /// The runs, in order.
    pub matrix: Matrix,
    /// The strategy the Deployment has after the restore.
    pub strategy_after: Option<Strategy>,
    /// Stopped by the cancel signal.
    pub interrupted: bool,
    /// The first error, if the matrix stopped early or the restore failed.
    pub error: Option<MatrixError>,
}

/// A strategy matrix over one Deployment.
///
/// ```no_run
/// # async fn demo(cluster: std::sync::Arc<dyn probe_core::Deployments>) {
/// use probe_core::{MatrixRunner, Probe, Strategy};
/// use probe_core::StrategyCase;
/// let cases = vec![
///     StrategyCase::from(Strategy::Recreate),
///     StrategyCase::parse("rolling:1/0").unwrap(),
///     StrategyCase::parse("rolling:1/0+prestop=5s").unwrap(),
/// ];
/// let outcome = MatrixRunner::new("web", cases, "matrix-out")
///     .repeat(3)
///     .run(cluster, |_label| Probe::builder("http://10.96.0.10:8080/test/version").rate(50))
///     .await;
/// println!("{}", outcome.matrix.summary_text());
/// # }
/// ```
pub struct MatrixRunner {
    deployment: String,
    cases: Vec<StrategyCase>,
    out: PathBuf,
    repeat: u32,
    trigger: MatrixTrigger,
    warmup: Duration,
    settle: Duration,
    rollout_timeout: Duration,
    source: Option<Arc<dyn EventSource>>,
    vantage: Option<Arc<dyn Vantage>>,
    cancel: Option<BoxFuture<()>>,
    observer: Option<RunObserver>,
    after_each: Option<Box<RowObserver>>,
}

/// Told each run's label and probe handle when it starts.
type RunObserver = Arc<dyn Fn(&str, ProbeHandle) + Send + Sync>;
/// Told each run's row when it ends.
type RowObserver = dyn Fn(&MatrixRun) + Send + Sync;

impl MatrixRunner {
    /// Cases of `deployment` (strategies, or [`StrategyCase`]s with a preStop sleep), each
    /// run's folder under `out` (`out/CASE/RUN/`).
    pub fn new<C: Into<StrategyCase>>(
        deployment: &str,
        cases: impl IntoIterator<Item = C>,
        out: impl Into<PathBuf>,
    ) -> MatrixRunner {
        MatrixRunner {
            deployment: deployment.to_string(),
            cases: cases.into_iter().map(Into::into).collect(),
            out: out.into(),
            repeat: 1,
            trigger: MatrixTrigger::Restart,
            warmup: DEFAULT_WARMUP,
            settle: DEFAULT_SETTLE,
            rollout_timeout: DEFAULT_ROLLOUT_TIMEOUT,
            source: None,
            vantage: None,
            cancel: None,
            observer: None,
            after_each: None,
        }
    }

    /// Runs per case (default 1).
    pub fn repeat(mut self, n: u32) -> Self {
        self.repeat = n.max(1);
        self
    }

    /// What starts each rollout (default a restart).
    pub fn trigger(mut self, trigger: MatrixTrigger) -> Self {
        self.trigger = trigger;
        self
    }

    /// Warm-up and settle of each run (defaults 2 s and 5 s).
    pub fn timing(mut self, warmup: Duration, settle: Duration) -> Self {
        self.warmup = warmup;
        self.settle = settle;
        self
    }

    /// How long one rollout may take (default 10 minutes).
    pub fn rollout_timeout(mut self, d: Duration) -> Self {
        self.rollout_timeout = d;
        self
    }

    /// The cluster's events, on each run's clock.
    pub fn events(mut self, source: Arc<dyn EventSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Where each run probes from (a lab's client host or node).
    pub fn vantage(mut self, vantage: Arc<dyn Vantage>) -> Self {
        self.vantage = Some(vantage);
        self
    }

    /// Stops after the current run's probe, as interrupted, when `signal` resolves.
    pub fn cancel_on<F: Future<Output = ()> + Send + 'static>(mut self, signal: F) -> Self {
        self.cancel = Some(Box::pin(signal));
        self
    }

    /// Called with each run's label and probe handle when it starts (a progress line).
    pub fn observe(mut self, observer: impl Fn(&str, ProbeHandle) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// Called with each run's row when it has finished.
    pub fn after_each(mut self, report: impl Fn(&MatrixRun) + Send + Sync + 'static) -> Self {
        self.after_each = Some(Box::new(report));
        self
    }

    /// Runs every case `repeat` times against `cluster`; `probe(label)` describes each
    /// run's probe (the output folder is set here). Never panics on a failed run: the
    /// outcome keeps what was measured and the first error.
    pub async fn run(
        mut self,
        cluster: Arc<dyn Deployments>,
        probe: impl Fn(&str) -> ProbeBuilder,
    ) -> MatrixOutcome {
        let mut matrix = Matrix::default();
        let fail = |matrix, e| MatrixOutcome {
            matrix,
            strategy_after: None,
            interrupted: false,
            error: Some(MatrixError::Cluster(e)),
        };
        if self.trigger == MatrixTrigger::Undo
            && self.cases.iter().any(|c| c.pre_stop_seconds.is_some())
        {
            return fail(matrix, "a +prestop case cannot be measured with --trigger undo: each rollback would bring back the template without the hook".into());
        }
        let original = match cluster.strategy(&self.deployment).await {
            Ok(s) => s,
            Err(e) => return fail(matrix, e),
        };
        if self.trigger == MatrixTrigger::Undo {
            // `rollout undo` needs a revision before the current one.
            let d = &self.deployment;
            let prepared = match cluster.restart(d).await {
                Ok(()) => cluster.wait_rollout_complete(d, self.rollout_timeout).await,
                Err(e) => Err(e),
            };
            if let Err(e) = prepared {
                return fail(matrix, e);
            }
        }
        // The Deployment's own preStop sleep, once a case has changed it.
        let mut pre_stop = PreStopState::default();
        // One shared cancel signal for every run, and for the matrix itself.
        let (cancelled_tx, cancelled_rx) = tokio::sync::watch::channel(false);
        if let Some(cancel) = self.cancel.take() {
            tokio::spawn(async move {
                cancel.await;
                let _ = cancelled_tx.send(true);
            });
        }
        let mut original_image: Option<String> = None;
        let mut error = None;
        let mut changes = 0usize;
        'cases: for case in self.cases.clone() {
            for run in 1..=self.repeat {
                if *cancelled_rx.borrow() {
                    break 'cases;
                }
                let result = self
                    .one_run(
                        &cluster,
                        &probe,
                        case,
                        run,
                        changes,
                        &mut original_image,
                        &mut pre_stop,
                        &cancelled_rx,
                    )
                    .await;
                match result {
                    Ok(row) => {
                        if let Some(report) = &self.after_each {
                            report(&row);
                        }
                        matrix.runs.push(row);
                        changes += 1;
                        if let Err(e) = write_matrix(&self.out, &matrix, Some(case.strategy)) {
                            error = Some(e);
                            break 'cases;
                        }
                    }
                    Err(e) => {
                        error = Some(e);
                        break 'cases;
                    }
                }
            }
        }
        let interrupted = *cancelled_rx.borrow();
        // Restore what was changed, whatever happened above.
        let mut restored = cluster.set_strategy(&self.deployment, original).await;
        if let (Ok(()), Some(image), true) = (&restored, &original_image, changes % 2 == 1) {
            restored = cluster.set_image(&self.deployment, image).await.map(|_| ());
        }
        if let (Ok(()), Some(own)) = (&restored, pre_stop.original) {
            if pre_stop.current != own {
                restored = cluster
                    .set_pre_stop_sleep(&self.deployment, own)
                    .await
                    .map(|_| ());
            }
        }
        if let Err(e) = restored {
            error.get_or_insert(MatrixError::Cluster(format!(
                "could not restore deployment {}: {e}",
                self.deployment
            )));
        }
        let strategy_after = cluster.strategy(&self.deployment).await.ok();
        if let Err(e) = write_matrix(&self.out, &matrix, strategy_after) {
            error.get_or_insert(e);
        }
        MatrixOutcome {
            matrix,
            strategy_after,
            interrupted,
            error,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn one_run(
        &self,
        cluster: &Arc<dyn Deployments>,
        probe: &impl Fn(&str) -> ProbeBuilder,
        case: StrategyCase,
        run: u32,
        changes: usize,
        original_image: &mut Option<String>,
        pre_stop: &mut PreStopState,
        cancelled: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<MatrixRun, MatrixError> {
        let d = &self.deployment;
        cluster
            .set_strategy(d, case.strategy)
            .await
            .map_err(MatrixError::Cluster)?;
        // The case's preStop sleep, or the Deployment's own hook for a case without one
        // (a change of the pod template: its rollout is waited for, not measured).
        let wanted = match (case.pre_stop_seconds, pre_stop.original) {
            (Some(n), _) => Some(Some(n)),
            (None, Some(own)) => Some(own),
            (None, None) => None,
        };
        if let Some(wanted) =
            wanted.filter(|w| pre_stop.original.is_none() || *w != pre_stop.current)
        {
            let replaced = cluster
                .set_pre_stop_sleep(d, wanted)
                .await
                .map_err(MatrixError::Cluster)?;
            pre_stop.original.get_or_insert(replaced);
            pre_stop.current = wanted;
        }
        cluster
            .wait_rollout_complete(d, self.rollout_timeout)
            .await
            .map_err(MatrixError::Cluster)?;
        let label = format!("{case}#{run}");
        let out = self.out.join(case.slug()).join(run.to_string());
        std::fs::create_dir_all(&out).map_err(|source| MatrixError::Output {
            path: out.clone(),
            source,
        })?;
        let mut builder = probe(&label).label(label.clone()).out_dir(&out);
        if let Some(v) = &self.vantage {
            builder = builder.vantage(v.clone());
        }
        // Alternate between the new image and the original one.
        let image = match (&self.trigger, original_image.as_ref()) {
            (MatrixTrigger::Image(_), Some(original)) if changes % 2 == 1 => Some(original.clone()),
            (MatrixTrigger::Image(new), _) => Some(new.clone()),
            (MatrixTrigger::Restart | MatrixTrigger::Undo, _) => None,
        };
        let undo = self.trigger == MatrixTrigger::Undo;
        // The words of the CLI's --trigger, so a run's summary says what it did.
        let trigger_name = match (&image, undo) {
            (Some(image), _) => format!("image={image}"),
            (None, true) => "undo".to_string(),
            (None, false) => "restart".to_string(),
        };
        let replaced = Arc::new(std::sync::Mutex::new(None));
        // The trigger ends when the rollout it started is complete.
        let trigger = {
            let (replaced, cluster, d) = (replaced.clone(), cluster.clone(), d.clone());
            let (image, timeout) = (image.clone(), self.rollout_timeout);
            async move {
                let old = match &image {
                    Some(image) => cluster.set_image(&d, image).await?,
                    None if undo => cluster.undo(&d).await.map(|()| String::new())?,
                    None => cluster.restart(&d).await.map(|()| String::new())?,
                };
                *replaced.lock().unwrap_or_else(|p| p.into_inner()) = Some(old);
                cluster.wait_rollout_complete(&d, timeout).await
            }
        };
        let mut rollout = Rollout::new(builder)
            .warmup(self.warmup)
            .settle(self.settle)
            .rollout_timeout(self.rollout_timeout)
            .trigger(trigger)
            .trigger_name(format!("{trigger_name} deployment/{d}"));
        if let Some(source) = &self.source {
            rollout = rollout.events(source.clone());
        }
        let mut cancel = cancelled.clone();
        rollout = rollout.cancel_on(async move {
            let _ = cancel.wait_for(|c| *c).await;
        });
        if let Some(observer) = &self.observer {
            let observer = observer.clone();
            let label = label.clone();
            rollout = rollout.observe(move |h| observer(&label, h));
        }
        let report = match rollout.run().await {
            Ok(r) => r,
            Err(RolloutError::Probe(ProbeError::OutputLost { report, .. })) => *report,
            Err(e) => return Err(e.into()),
        };
        if image.is_some() && original_image.is_none() {
            *original_image = replaced.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
        Ok(MatrixRun::from_report(&case.to_string(), run, &report)
            .with_report_html(format!("{}/{run}/report.html", case.slug())))
    }
}

/// The Deployment's preStop sleep as the matrix changed it.
#[derive(Debug, Default)]
struct PreStopState {
    /// The Deployment's own sleep (`Some(None)`: no hook), known once a case changed it.
    original: Option<Option<u32>>,
    /// The sleep it has now, when `original` is known.
    current: Option<u32>,
}

fn write_matrix(dir: &Path, m: &Matrix, strategy_now: Option<Strategy>) -> Result<(), MatrixError> {
    let json = MatrixJson {
        strategy_after: strategy_now,
    };
    export::write_all(dir, m, &[&MatrixCsv, &json, &MatrixHtml]).map_err(|e| MatrixError::Output {
        path: e.path,
        source: e.source,
    })
}
