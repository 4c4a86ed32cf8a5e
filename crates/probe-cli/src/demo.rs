//! `rollprobe demo`: the whole idea in twenty seconds, with no cluster and no root.
//!
//! A small versioned service runs in-process on a loopback port and is
//! redeployed twice while it is probed at 200 req/s:
//! - **Recreate**: v1 stops, and v2 listens only after a startup delay (as a
//!   Spring Boot app does), so every request in between is refused;
//! - **rolling**: v2 starts listening on the same port (SO_REUSEPORT) before v1
//!   stops, as a RollingUpdate with a readinessProbe hands over.
//!
//! Every instance names itself in an `x-pod-name` header, as the lab's app does, and the
//! demo reads it (`--pod-from header:x-pod-name`), so its reports list the pods that
//! answered. The service itself is `crate::service`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use probe_core::{
    Comparison, Probe, ProbeBuilder, ProbeConfig, ProbeError, ProbeHandle, Report, Target,
    VersionSource,
};

use crate::args::DemoArgs;
use crate::error::CliError;
use crate::exit::Exit;
use crate::progress::Progress;
use crate::service::ServiceInstance;

/// How long the new version takes to listen in the Recreate case, like a Spring Boot start.
const STARTUP_DELAY: Duration = Duration::from_millis(1500);
const WARMUP: Duration = Duration::from_secs(2);
const SETTLE: Duration = Duration::from_secs(2);

async fn probe_one(
    label: &str,
    url: &str,
    rate: f64,
    out: &Path,
    quiet: bool,
) -> Result<(Probe, Progress), CliError> {
    let dir = out.join(label);
    crate::options::check_out_dir(&dir)?;
    let mut config = ProbeConfig::new(Target::parse(url).map_err(ProbeError::from)?);
    config.pod_from = Some(VersionSource::Header(probe_lab::POD_HEADER.into()));
    let probe = ProbeBuilder::from(config)
        .rate(rate)
        .label(label)
        .out_dir(&dir)
        .start()
        .await?;
    let progress = Progress::start(probe.handle(), label, quiet);
    Ok((probe, progress))
}

fn failed(e: std::io::Error) -> CliError {
    CliError::Failed(format!(
        "the demo service could not listen on loopback: {e}"
    ))
}

async fn recreate(rate: f64, out: &Path, quiet: bool) -> Result<Report, CliError> {
    let v1 = ServiceInstance::start((Ipv4Addr::LOCALHOST, 0).into(), "v1", false)
        .await
        .map_err(failed)?;
    let addr = v1.addr();
    let url = format!("http://{addr}/test/version");
    let (probe, progress) = probe_one("recreate", &url, rate, out, quiet).await?;
    let events: ProbeHandle = probe.handle();
    tokio::time::sleep(WARMUP).await;
    events.emit("trigger_start", "recreate: stop v1, then start v2");
    v1.stop().await;
    events.emit("instance_stopped", "v1");
    tokio::time::sleep(STARTUP_DELAY).await;
    let v2 = ServiceInstance::start(addr, "v2", false)
        .await
        .map_err(failed)?;
    events.emit("instance_listening", "v2");
    events.emit("trigger_exit", "exit code 0");
    tokio::time::sleep(SETTLE).await;
    drop(progress);
    let report = probe.stop().await?;
    v2.stop().await;
    Ok(report)
}

async fn rolling(rate: f64, out: &Path, quiet: bool) -> Result<Report, CliError> {
    let v1 = ServiceInstance::start((Ipv4Addr::LOCALHOST, 0).into(), "v1", true)
        .await
        .map_err(failed)?;
    let addr = v1.addr();
    let url = format!("http://{addr}/test/version");
    let (probe, progress) = probe_one("rolling", &url, rate, out, quiet).await?;
    let events = probe.handle();
    tokio::time::sleep(WARMUP).await;
    events.emit("trigger_start", "rolling: start v2 beside v1, then stop v1");
    // The new instance starts up while the old one keeps serving.
    tokio::time::sleep(STARTUP_DELAY).await;
    let v2 = ServiceInstance::start(addr, "v2", true)
        .await
        .map_err(failed)?;
    events.emit("instance_listening", "v2");
    tokio::time::sleep(Duration::from_millis(500)).await;
    v1.stop().await;
    events.emit("instance_stopped", "v1");
    events.emit("trigger_exit", "exit code 0");
    tokio::time::sleep(SETTLE).await;
    drop(progress);
    let report = probe.stop().await?;
    v2.stop().await;
    Ok(report)
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
