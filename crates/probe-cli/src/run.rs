//! `rollprobe run`, `report` and `compare`: wiring only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use probe_core::{Comparison, Probe, ProbeConfig, Report, Target, Thresholds};
use tokio::io::AsyncBufReadExt;

use crate::args::{CompareArgs, Format, OutputArgs, ProbeArgs, ReportArgs, RunArgs, TableFormat};
use crate::progress::Progress;
use crate::timeline::ClusterTimeline;
use crate::CliError;

/// Turns the parsed options into a validated configuration (exit 2 on error).
pub fn probe_config(url: &str, p: &ProbeArgs, o: &OutputArgs) -> Result<ProbeConfig, CliError> {
    let target = Target::parse(url).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut c = ProbeConfig::new(target);
    c.rate = p.rate;
    c.connection = p.connection;
    c.timeout = p.timeout;
    c.connect_timeout = p.connect_timeout;
    c.max_in_flight = p.max_in_flight.unwrap_or(0);
    c.expect_status = p.expect_status.clone();
    c.version_from = p.version_from.clone();
    c.method = p.method.clone();
    c.headers = p.headers.clone();
    c.body = p.data.clone();
    c.label = o.label.clone();
    c.validate().map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(c)
}

/// Checks that the output folder can be written, before probing.
pub fn check_out_dir(dir: &Path) -> Result<(), CliError> {
    let fail = |e: std::io::Error| {
        CliError::Usage(format!("cannot write to --out {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe_file = dir.join(".rollprobe-write-test");
    std::fs::write(&probe_file, b"").map_err(fail)?;
    let _ = std::fs::remove_file(probe_file);
    Ok(())
}

/// Prints the report and applies the thresholds: the end of every run.
pub fn finish_run(report: &Report, o: &OutputArgs) -> ExitCode {
    match o.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    if let Some(dir) = &o.out {
        eprintln!("rollprobe: wrote {}", dir.join("report.json").display());
    }
    let mut gate = Thresholds {
        max_downtime_ms: o.max_downtime.map(|d| d.as_secs_f64() * 1000.0),
        ..Thresholds::default()
    };
    for limit in &o.max_failures {
        match limit.kind {
            Some(kind) => {
                gate.max_by_kind.insert(kind, limit.max);
            }
            None => gate.max_failures = Some(limit.max),
        }
    }
    let breaches = gate.breaches(report);
    for b in &breaches {
        eprintln!("rollprobe: {b}");
    }
    if breaches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Stops the probe and turns an output failure into a printed report plus exit 3.
pub async fn stop_probe(
    probe: Probe,
    interrupted: bool,
    o: &OutputArgs,
) -> Result<ExitCode, CliError> {
    let stopped = if interrupted {
        probe.stop_interrupted().await
    } else {
        probe.stop().await
    };
    match stopped {
        Ok(report) => Ok(finish_run(&report, o)),
        Err(probe_core::ProbeError::OutputLost {
            report,
            path,
            source,
        }) => {
            finish_run(&report, o);
            Err(CliError::Failed(format!(
                "cannot write {}: {source} (the summary above is complete)",
                path.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// `rollprobe run`.
pub async fn run(a: RunArgs) -> Result<ExitCode, CliError> {
    let mut config = probe_config(&a.url, &a.probe, &a.output)?;
    config.duration = a.duration;
    if let Some(program) = a.trigger.first() {
        if find_program(program).is_none() {
            return Err(CliError::Usage(format!(
                "trigger command '{program}' not found: give a program on PATH or a path to one"
            )));
        }
    }
    if let Some(dir) = &a.output.out {
        check_out_dir(dir)?;
    }
    // The watch must work before probing starts: a wrong name is exit 2.
    let timeline = ClusterTimeline::default();
    let watch = match &a.watch {
        Some(deployment) => Some(start_watch(&a, deployment, &timeline).await?),
        None => None,
    };
    let probe = Probe::start_with(config, a.output.out.as_deref()).await?;
    let handle = probe.handle();
    timeline.attach(handle.clone());
    let label = a.output.label.clone().unwrap_or_else(|| "run".into());
    let progress = Progress::start(handle.clone(), &label, a.output.quiet);
    if a.marks_stdin {
        let marks = handle.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = line.trim();
                if !line.is_empty() {
                    marks.emit("mark", line);
                }
            }
        });
    }
    let interrupted = wait_for_end(&a, &probe, &handle).await;
    drop(progress);
    if let Some(w) = watch {
        w.stop().await;
    }
    timeline.detach();
    stop_probe(probe, interrupted, &a.output).await
}

async fn start_watch(
    a: &RunArgs,
    deployment: &str,
    timeline: &ClusterTimeline,
) -> Result<probe_kube::WatchHandle, CliError> {
    let usage = |e: probe_kube::KubeError| CliError::Usage(e.to_string());
    let client = probe_kube::connect(a.context.as_deref())
        .await
        .map_err(usage)?;
    let namespace = a
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let sink_timeline = timeline.clone();
    let sink: probe_kube::KubeEventSink = std::sync::Arc::new(move |e: probe_kube::KubeEvent| {
        sink_timeline.record(&e.kind, &e.detail, e.server_time.as_deref())
    });
    let watch = probe_kube::watch_rollout(
        client,
        probe_kube::WatchTarget {
            namespace,
            deployment: deployment.to_string(),
            service: a.service.clone(),
        },
        sink,
    )
    .await
    .map_err(usage)?;
    record_baseline(&watch, timeline);
    Ok(watch)
}

/// What the cluster looked like when the watch began: state for the timeline,
/// so the first window knows which pods were serving.
pub fn record_baseline(watch: &probe_kube::WatchHandle, timeline: &ClusterTimeline) {
    for e in watch.baseline() {
        timeline.record(&e.kind, &e.detail, e.server_time.as_deref());
    }
}

/// Waits through warm-up, trigger and settle (or the duration, or Ctrl-C);
/// true when Ctrl-C ended the run.
async fn wait_for_end(a: &RunArgs, probe: &Probe, handle: &probe_core::ProbeHandle) -> bool {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let cap = async {
        match a.duration {
            Some(_) => probe.schedule_finished().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(cap);
    if a.trigger.is_empty() {
        tokio::select! {
            _ = &mut ctrl_c => true,
            _ = &mut cap => false,
        }
    } else {
        let mut interrupted = tokio::select! {
            _ = &mut ctrl_c => true,
            _ = &mut cap => false,
            _ = tokio::time::sleep(a.timing.warmup) => false,
        };
        if !interrupted && !probe.schedule_is_finished() {
            let command_line = a.trigger.join(" ");
            let mut child = tokio::process::Command::new(&a.trigger[0]);
            child
                .args(&a.trigger[1..])
                .stdin(std::process::Stdio::null());
            handle.emit("trigger_start", &command_line);
            match child.spawn() {
                Err(e) => handle.emit("trigger_exit", &format!("could not start: {e}")),
                Ok(mut child) => {
                    tokio::select! {
                        status = child.wait() => {
                            let detail = match status {
                                Ok(s) => match s.code() {
                                    Some(code) => format!("exit code {code}"),
                                    None => format!("{s}"),
                                },
                                Err(e) => format!("wait failed: {e}"),
                            };
                            handle.emit("trigger_exit", &detail);
                        }
                        _ = &mut ctrl_c => {
                            let _ = child.kill().await;
                            handle.emit("trigger_exit", "killed by Ctrl-C");
                            interrupted = true;
                        }
                        _ = &mut cap => {
                            let _ = child.kill().await;
                            handle.emit("trigger_exit", "killed: --duration reached");
                        }
                    }
                }
            }
            if !interrupted && !probe.schedule_is_finished() {
                interrupted = tokio::select! {
                    _ = &mut ctrl_c => true,
                    _ = &mut cap => false,
                    _ = tokio::time::sleep(a.timing.settle) => false,
                };
            }
        }
        interrupted
    }
}

/// `rollprobe report`.
pub fn report(a: ReportArgs) -> Result<ExitCode, CliError> {
    let events_path = a.events.clone().or_else(|| {
        let beside = a.samples.with_file_name("events.csv");
        beside.is_file().then_some(beside)
    });
    let events = match events_path {
        Some(p) => probe_core::read_events(&p)
            .map_err(|e| CliError::Usage(format!("cannot read events {}: {e}", p.display())))?,
        None => Vec::new(),
    };
    let report = probe_core::analyze_samples_file(&a.samples, events)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    match a.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `rollprobe compare`.
pub fn compare(a: CompareArgs) -> Result<ExitCode, CliError> {
    let mut reports = Vec::new();
    for path in &a.reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        let mut report = Report::from_json(&text).map_err(|e| {
            CliError::Usage(format!(
                "{} is not a rollprobe report.json: {e}",
                path.display()
            ))
        })?;
        if report.label.is_none() {
            report.label = Some(run_name(path));
        }
        reports.push(report);
    }
    let table = Comparison::new(&reports);
    match a.format {
        TableFormat::Text => print!("{}", table.to_text()),
        TableFormat::Csv => print!("{}", table.to_csv()),
        TableFormat::Json => println!("{}", table.to_json()),
    }
    Ok(ExitCode::SUCCESS)
}

/// A name for an unlabelled report: its folder, or its file stem.
fn run_name(path: &Path) -> String {
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string());
    parent.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into())
    })
}
