//! `rollprobe run`, `report` and `compare`: wiring only; the procedure is the
//! library's [`Rollout`].

use std::path::Path;
use std::process::ExitCode;

use std::sync::Arc;

use probe_core::{
    Comparison, EventKind, ProbeBuilder, ProbeConfig, ProbeHandle, Report, Rollout, RolloutError,
    Target, Thresholds,
};
use tokio::io::AsyncBufReadExt;

use crate::args::{CompareArgs, Format, OutputArgs, ProbeArgs, ReportArgs, RunArgs, TableFormat};
use crate::progress::{Progress, ProgressSlot};
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
    if let Some(reason) = &report.invalid_reason {
        // No gate passes on a measurement that does not hold.
        eprintln!("rollprobe: not a valid measurement: {reason}");
        return ExitCode::from(3);
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

/// Prints the report of a finished rollout; an output folder that could not be written
/// still prints the complete report, then exits 3.
pub fn finish_rollout(
    result: Result<Report, RolloutError>,
    o: &OutputArgs,
) -> Result<ExitCode, CliError> {
    match result {
        Ok(report) => Ok(finish_run(&report, o)),
        Err(RolloutError::Probe(probe_core::ProbeError::OutputLost {
            report,
            path,
            source,
        })) => {
            finish_run(&report, o);
            Err(CliError::Failed(format!(
                "cannot write {}: {source} (the summary above is complete)",
                path.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// What every command that probes shows while it runs: the progress line, and marks
/// read from stdin.
pub fn observe(
    label: String,
    quiet: bool,
    marks_stdin: bool,
) -> (impl FnOnce(ProbeHandle) + Send, ProgressSlot) {
    let slot = ProgressSlot::default();
    let filled = slot.clone();
    let observer = move |handle: ProbeHandle| {
        filled.set(Progress::start(handle.clone(), &label, quiet));
        if marks_stdin {
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = line.trim();
                    if !line.is_empty() {
                        handle.emit(EventKind::Mark, line);
                    }
                }
            });
        }
    };
    (observer, slot)
}

/// `rollprobe run`.
pub async fn run(a: RunArgs) -> Result<ExitCode, CliError> {
    let mut config = probe_config(&a.url, &a.probe, &a.output)?;
    config.duration = a.duration;
    if let Some(dir) = &a.output.out {
        check_out_dir(dir)?;
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
    finish_rollout(result, &a.output)
}

/// Connects to the cluster and starts watching `deployment`: any error is exit 2.
pub async fn start_watch(
    a: &RunArgs,
    deployment: &str,
) -> Result<probe_kube::WatchHandle, CliError> {
    let usage = |e: probe_kube::KubeError| CliError::Usage(e.to_string());
    let client = probe_kube::connect(a.context.as_deref())
        .await
        .map_err(usage)?;
    let namespace = a
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    probe_kube::watch_rollout(
        client,
        probe_kube::WatchTarget {
            namespace,
            deployment: deployment.to_string(),
            service: a.service.clone(),
        },
    )
    .await
    .map_err(usage)
}

/// `rollprobe report`.
pub fn report(a: ReportArgs) -> Result<ExitCode, CliError> {
    let samples = probe_core::samples_path(&a.samples);
    let events_path = a.events.clone().or_else(|| {
        let beside = samples.with_file_name("events.csv");
        beside.is_file().then_some(beside)
    });
    let events = match events_path {
        Some(p) => probe_core::read_events(&p)
            .map_err(|e| CliError::Usage(format!("cannot read events {}: {e}", p.display())))?,
        None => Vec::new(),
    };
    let report = probe_core::analyze_samples_file(&samples, events)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    match a.format {
        Format::Text => print!("{}", report.summary()),
        Format::Json => println!("{}", report.to_json()),
    }
    if let Some(dir) = &a.out {
        check_out_dir(dir)?;
        probe_core::write_report_files(dir, &report)?;
        eprintln!(
            "rollprobe: wrote report.json, windows.csv, timeline.csv and report.html in {}",
            dir.display()
        );
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
