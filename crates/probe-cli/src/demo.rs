//! `rollprobe demo`: the whole idea in twenty seconds, with no cluster and no root.
//!
//! A small versioned service runs in-process on a loopback port and is
//! redeployed twice while it is probed at 200 req/s:
//! - **Recreate**: v1 stops, and v2 listens only after a startup delay (as a
//!   Spring Boot app does), so every request in between is refused;
//! - **rolling**: v2 starts listening on the same port (SO_REUSEPORT) before v1
//!   stops, as a RollingUpdate with a readinessProbe hands over.
//!
//! Each redeploy is the trigger future of a [`Rollout`], the procedure `rollprobe run`
//! and users' tests go through, so the demo's reports are made as theirs are (its
//! trigger recorded, its phases from its start and end); the instances' stops and starts
//! are typed events on the probe's clock.
//!
//! Every instance names itself in an `x-pod-name` header, as the lab's app does, and the
//! demo reads it (`--pod-from header:x-pod-name`), so its reports list the pods that
//! answered. The service itself is `crate::service`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use probe_core::{
    Comparison, EventKind, ProbeBuilder, ProbeConfig, ProbeError, ProbeHandle, Report, Rollout,
    Target, VersionSource,
};

use crate::args::DemoArgs;
use crate::error::CliError;
use crate::exit::Exit;
use crate::service::ServiceInstance;

/// How long the new version takes to listen in the Recreate case, like a Spring Boot start.
const STARTUP_DELAY: Duration = Duration::from_millis(1500);
const WARMUP: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(2);

/// What a redeploy tells the run: its instances stopping and listening, as typed
/// events on the probe's clock (the probe's handle is known once probing starts,
/// before the trigger runs), and the instance left serving, stopped after the report.
#[derive(Clone, Default)]
struct Redeploy {
    probe: Arc<OnceLock<ProbeHandle>>,
    serving: Arc<Mutex<Option<ServiceInstance>>>,
}

impl Redeploy {
    fn event(&self, kind: EventKind, detail: &str) {
        if let Some(handle) = self.probe.get() {
            handle.emit(kind, detail);
        }
    }

    fn keep_serving(&self, instance: ServiceInstance) {
        *self.serving.lock().unwrap_or_else(|p| p.into_inner()) = Some(instance);
    }

    fn serving(&self) -> Option<ServiceInstance> {
        self.serving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Probes the service at `addr` through one redeploy, `redeploy` being its trigger: the same
/// warm-up, trigger and settle as `rollprobe run`, by the same [`Rollout`].
async fn measure<F, Fut>(
    label: &str,
    addr: SocketAddr,
    rate: f64,
    out: &Path,
    quiet: bool,
    redeploy: F,
) -> Result<Report, CliError>
where
    F: FnOnce(Redeploy) -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let dir = out.join(label);
    crate::options::check_out_dir(&dir)?;
    let url = format!("http://{addr}/test/version");
    let mut config = ProbeConfig::new(Target::parse(&url).map_err(ProbeError::from)?);
    config.pod_from = Some(VersionSource::Header(probe_lab::POD_HEADER.into()));
    let probe = ProbeBuilder::from(config)
        .rate(rate)
        .label(label)
        .out_dir(&dir);
    let run = Redeploy::default();
    let started = run.probe.clone();
    let (show_progress, progress) = crate::progress::observe(label.to_string(), quiet, false);
    let report = Rollout::new(probe)
        .warmup(WARMUP)
        .settle(SETTLE)
        .observe(move |handle| {
            let _ = started.set(handle.clone());
            show_progress(handle);
        })
        .trigger(redeploy(run.clone()))
        .trigger_name(format!("{label} redeploy v1 -> v2"))
        .run()
        .await;
    progress.clear();
    let report = report?;
    match run.serving() {
        Some(v2) => {
            v2.stop().await;
            Ok(report)
        }
        None => Err(CliError::Failed(format!(
            "the {label} redeploy failed: {}",
            report
                .trigger
                .as_ref()
                .map_or_else(|| "it did not run".to_string(), ToString::to_string)
        ))),
    }
}

fn failed(e: std::io::Error) -> String {
    format!("the demo service could not listen on loopback: {e}")
}

async fn v1(reuse_port: bool) -> Result<ServiceInstance, CliError> {
    ServiceInstance::start((Ipv4Addr::LOCALHOST, 0).into(), "v1", reuse_port)
        .await
        .map_err(|e| CliError::Failed(failed(e)))
}

async fn recreate(rate: f64, out: &Path, quiet: bool) -> Result<Report, CliError> {
    let v1 = v1(false).await?;
    let addr = v1.addr();
    measure("recreate", addr, rate, out, quiet, |run| async move {
        v1.stop().await;
        run.event(EventKind::InstanceStopped, "v1");
        tokio::time::sleep(STARTUP_DELAY).await;
        let v2 = ServiceInstance::start(addr, "v2", false)
            .await
            .map_err(failed)?;
        run.event(EventKind::InstanceListening, "v2");
        run.keep_serving(v2);
        Ok(())
    })
    .await
}

async fn rolling(rate: f64, out: &Path, quiet: bool) -> Result<Report, CliError> {
    let v1 = v1(true).await?;
    let addr = v1.addr();
    measure("rolling", addr, rate, out, quiet, |run| async move {
        // The new instance starts up while the old one keeps serving.
        tokio::time::sleep(STARTUP_DELAY).await;
        let v2 = ServiceInstance::start(addr, "v2", true)
            .await
            .map_err(failed)?;
        run.event(EventKind::InstanceListening, "v2");
        tokio::time::sleep(Duration::from_millis(500)).await;
        v1.stop().await;
        run.event(EventKind::InstanceStopped, "v1");
        run.keep_serving(v2);
        Ok(())
    })
    .await
}

/// `rollprobe demo`.
pub async fn demo(a: DemoArgs) -> Result<Exit, CliError> {
    crate::options::check_out_dir(&a.out)?;
    eprintln!(
        "rollprobe demo: a local service (v1 -> v2) is redeployed twice while probed at {} req/s, about 12 s",
        a.rate
    );
    let first = recreate(a.rate, &a.out, a.quiet).await?;
    println!("{}", first.summary());
    let second = rolling(a.rate, &a.out, a.quiet).await?;
    println!("{}", second.summary());
    println!("Comparison");
    print!("{}", Comparison::new(&[first, second]).to_text());
    eprintln!(
        "rollprobe: reports in {0}/recreate and {0}/rolling; compare them again with: rollprobe compare {0}/*/report.json",
        a.out.display()
    );
    Ok(Exit::Ok)
}
