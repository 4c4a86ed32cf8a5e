//! `rollprobe run`: the library's [`Rollout`] around a trigger command, with a
//! Kubernetes watch as its source of events when asked.

use std::sync::Arc;

use probe_core::{ProbeBuilder, Rollout};

use crate::args::RunArgs;
use crate::error::CliError;
use crate::exit::Exit;
use crate::finish::finish_rollout;
use crate::options::{check_new_out_dir, probe_config, OutKind};
use crate::progress::observe;

/// `rollprobe run`.
pub async fn run(a: RunArgs) -> Result<Exit, CliError> {
    let mut config = probe_config(&a.url, &a.probe, &a.output)?;
    config.duration = a.duration;
    if !a.output.quiet {
        if let Ok(std::net::IpAddr::V4(ip)) = config.target.host.parse() {
            if let Some(note) = probe_core::host_kernel_note(ip, config.rate) {
                eprintln!("rollprobe: {note}");
            }
        }
    }
    if let Some(dir) = &a.output.out {
        check_new_out_dir(dir, a.output.force, OutKind::Run)?;
    }
    if let Some(log) = &a.access_log {
        // Read at the end, when the proxy has logged every request; a wrong path is
        // bad input now, before probing.
        if !log.is_file() {
            return Err(CliError::Usage(format!(
                "--access-log {}: no such file",
                log.display()
            )));
        }
    }
    let mut probe = ProbeBuilder::from(config);
    if let Some(dir) = &a.output.out {
        probe = probe.out_dir(dir);
    }
    let label = a.output.label.clone().unwrap_or_else(|| "run".into());
    let (observer, progress) = observe(label, a.output.quiet, a.marks_stdin);
    let mut rollout = Rollout::new(probe)
        .warmup(a.timing.warmup)
        .settle(a.timing.settle)
        .cancel_on(crate::signals::shutdown())
        .observe(observer);
    if !a.trigger.is_empty() {
        rollout = rollout.trigger_command(a.trigger.clone());
    }
    // The watch must work before probing starts: a wrong name is exit 2.
    let watch = match &a.watch {
        Some(deployment) => Some(Arc::new(start_watch(&a, deployment).await?)),
        None => None,
    };
    if let Some(w) = &watch {
        rollout = rollout.events(w.clone());
    }
    let result = rollout.run().await;
    progress.clear();
    if let Some(w) = watch.and_then(Arc::into_inner) {
        w.stop().await;
    }
    let result = match (&a.access_log, &a.output.out, result) {
        (Some(log), Some(dir), Ok(mut report)) => {
            let joined = crate::report::read_access_log(log)
                .and_then(|log| join_at_end(&log, dir, &mut report));
            if let Err(CliError::Usage(e) | CliError::Failed(e)) = joined {
                eprintln!("rollprobe: the access log was not joined: {e}");
            }
            Ok(report)
        }
        (_, _, result) => result,
    };
    finish_rollout(result, &a.output)
}

/// Joins a proxy's access log to the finished run's samples and rewrites its report
/// files (`--access-log`, and the lab's proxies).
pub fn join_at_end(
    log: &probe_core::AccessLog,
    dir: &std::path::Path,
    report: &mut probe_core::Report,
) -> Result<(), CliError> {
    crate::report::join_access_log(log, dir)?;
    crate::report::count_retries(report, dir)?;
    probe_core::write_report_files(dir, report).map_err(|e| CliError::Failed(e.to_string()))
}

/// Connects as kubectl does and picks the namespace (the kubeconfig's unless given):
/// any error is exit 2, before probing.
pub async fn connect(
    context: Option<&str>,
    namespace: Option<&str>,
) -> Result<(probe_kube::kube::Client, String), CliError> {
    let client = probe_kube::connect(context)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let namespace = namespace
        .map(str::to_string)
        .unwrap_or_else(|| client.default_namespace().to_string());
    Ok((client, namespace))
}

/// Connects to the cluster and starts watching `deployment`: any error is exit 2.
pub async fn start_watch(
    a: &RunArgs,
    deployment: &str,
) -> Result<probe_kube::WatchHandle, CliError> {
    let (client, namespace) = connect(a.context.as_deref(), a.namespace.as_deref()).await?;
    probe_kube::watch_rollout(
        client,
        probe_kube::WatchTarget {
            namespace,
            deployment: deployment.to_string(),
            service: a.service.clone(),
        },
    )
    .await
    .map_err(|e| CliError::Usage(e.to_string()))
}
