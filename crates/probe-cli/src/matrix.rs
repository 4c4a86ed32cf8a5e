//! `rollprobe matrix`: the same rollout under several strategies, probed each
//! time, in the lab or on a real cluster. Wiring only: the library's
//! [`MatrixRunner`] runs the cases; probe-lab or probe-kube is the cluster.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use probe_core::{Deployments, EventSource, Matrix, MatrixRunner, ProbeBuilder, Report, Vantage};

use crate::args::{MatrixArgs, OutputArgs};
use crate::error::CliError;
use crate::exit::Exit;
use crate::lab::{lab_error, load_manifests, probed_service, start_lab, vantage_points};
use crate::options::{check_new_out_dir, lab_pod_from, probe_config, OutKind};
use crate::progress::{Progress, ProgressSlot};

/// Where the matrix's Deployment lives, as the library's traits see it.
struct Place {
    deployments: Arc<dyn Deployments>,
    events: Arc<dyn EventSource>,
    vantage: Option<Arc<dyn Vantage>>,
    /// The lab's vantage points (`--from`), one stream each per connection mode.
    points: Vec<probe_lab::LabVantage>,
    url: String,
    lab: Option<probe_lab::Lab>,
    /// The Service the lab's probe targets (an ingress controller's, behind `--ingress`).
    lab_service: Option<String>,
    watch: Option<Arc<probe_kube::WatchHandle>>,
}

/// `rollprobe matrix`.
pub async fn matrix(a: MatrixArgs) -> Result<Exit, CliError> {
    // Check everything the user gave before touching any cluster.
    let usage = |m: &str| Err(CliError::Usage(m.to_string()));
    match (a.lab, &a.namespace) {
        (true, Some(_)) => return usage("use either --lab -f FILE... or -n NAMESPACE, not both"),
        (false, None) => {
            return usage("say where: --lab -f FILE... (the lab) or -n NAMESPACE (a cluster)")
        }
        (true, None) if a.files.is_empty() => return usage("--lab needs manifests: -f FILE"),
        (false, Some(_)) if a.url.is_none() => {
            return usage("on a cluster, give the URL to probe: --url URL")
        }
        _ => {}
    }
    crate::finish::check_failure_limits(&a.max_failures)?;
    let no_output = OutputArgs {
        label: None,
        out: None,
        format: crate::args::Format::Text,
        max_failures: Vec::new(),
        max_downtime: None,
        junit: None,
        metrics_addr: None,
        quiet: a.quiet,
        force: a.force,
    };
    probe_config(
        a.url.as_deref().unwrap_or("http://127.0.0.1:8080/"),
        &a.probe,
        &no_output,
    )?;
    check_new_out_dir(&a.out, a.force, OutKind::Matrix)?;

    let place = if a.lab {
        in_lab(&a).await?
    } else {
        in_cluster(&a).await?
    };
    let mut config = probe_config(&place.url, &a.probe, &no_output)?;
    if let Some(lab) = &place.lab {
        if let Some(first) = place.points.first() {
            config.vantage = first.name.clone();
        }
        config.lab_kernel = Some(lab.kernel().to_string());
        lab_pod_from(&mut config);
    }
    let points = place.points.clone();
    let progress = ProgressSlot::default();
    let shown = progress.clone();
    let quiet = a.quiet;
    let mut runner = MatrixRunner::new(&a.deployment, a.cases.clone(), &a.out)
        .repeat(a.repeat)
        .trigger(a.trigger.clone())
        .timing(a.timing.warmup, a.timing.settle)
        .rollout_timeout(a.rollout_timeout)
        .events(place.events.clone())
        .cancel_on(crate::signals::shutdown())
        .observe(move |label, handle| shown.set(Progress::start(handle, label, quiet)))
        .after_each(|row| {
            eprintln!(
                "rollprobe matrix: {}#{}: {} failed, downtime {:.3} s, rollout {}",
                row.case,
                row.run,
                row.failed,
                row.downtime_ms / 1000.0,
                row.rollout_ms
                    .map(|ms| format!("{:.1} s", ms / 1000.0))
                    .unwrap_or_else(|| "-".into())
            )
        });
    if let Some(v) = &place.vantage {
        runner = runner.vantage(v.clone());
    }
    let outcome = runner
        .run(place.deployments.clone(), move |_label| {
            let mut probe = ProbeBuilder::from(config.clone());
            for at in &points {
                probe = probe.vantage_point(&at.name, &at.url, at.vantage.clone());
            }
            probe
        })
        .await;
    progress.clear();
    if outcome.interrupted {
        eprintln!("rollprobe matrix: interrupted; the original strategy was restored");
    }
    if let Some(s) = outcome.strategy_after {
        eprintln!(
            "rollprobe matrix: strategy of {} restored to {s}",
            a.deployment
        );
    }
    if let Some(lab) = &place.lab {
        if let Some(service) = &place.lab_service {
            complete_lab_runs(lab, &a.out, &outcome.matrix, (service, &a.topology)).await;
        }
        lab.shutdown().await.map_err(lab_error)?;
    }
    drop(place.events);
    if let Some(w) = place.watch.and_then(Arc::into_inner) {
        w.stop().await;
    }
    if let Some(e) = outcome.error {
        return Err(CliError::Failed(e.to_string()));
    }
    match a.format {
        crate::args::Format::Text => print!("{}", outcome.matrix.summary_text()),
        crate::args::Format::Json => println!("{}", outcome.matrix.to_json()),
    }
    eprintln!(
        "rollprobe: wrote {}, {} and {}",
        a.out.join("matrix.csv").display(),
        a.out.join("matrix.json").display(),
        a.out.join("matrix.html").display()
    );
    let reports = run_reports(&a.out, &outcome.matrix)?;
    let gate = crate::finish::thresholds(&a.max_failures, a.max_downtime);
    Ok(crate::finish::finish_matrix(
        &reports,
        &gate,
        a.junit.as_deref(),
    ))
}

/// A run's report.json, read back from its folder.
fn run_report(path: &Path) -> Result<Report, String> {
    std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| Report::from_json(&text).map_err(|e| e.to_string()))
}

/// Where a run's report.json is.
fn report_json_of(out: &Path, row: &probe_core::MatrixRun) -> std::path::PathBuf {
    let html = row.report_html.as_deref().unwrap_or_default();
    out.join(html).with_file_name("report.json")
}

/// Every run's report.json, read back from its folder (the gate needs whole reports).
fn run_reports(out: &Path, m: &Matrix) -> Result<Vec<Report>, CliError> {
    m.runs
        .iter()
        .map(|row| {
            let path = report_json_of(out, row);
            run_report(&path).map_err(|e| {
                CliError::Failed(format!("cannot read {} for the gate: {e}", path.display()))
            })
        })
        .collect()
}

/// Does for every run in the lab what `rollprobe lab` does for its one: the report's
/// `lab` says the data path, and the samples are joined to the proxies' access logs
/// (one log for all the runs: the join matches each run's own request ids).
async fn complete_lab_runs(
    lab: &probe_lab::Lab,
    out: &Path,
    m: &Matrix,
    (service, options): (&str, &crate::args::LabOptions),
) {
    for row in m.runs.iter().filter(|r| r.report_html.is_some()) {
        let path = report_json_of(out, row);
        let (Some(dir), Ok(mut report)) = (path.parent(), run_report(&path)) else {
            eprintln!("rollprobe matrix: cannot read {}", path.display());
            continue;
        };
        crate::lab::describe_data_path(&mut report, service, options);
        crate::lab::complete_run(lab, dir, &mut report).await;
    }
}

async fn in_lab(a: &MatrixArgs) -> Result<Place, CliError> {
    let mut objects = load_manifests(&a.files)?;
    let (service, is_lb) =
        probed_service(&mut objects, &a.topology, a.service.as_deref(), &a.probe)?;
    let from = vantage_points(&a.topology, is_lb)?;
    if !objects
        .iter()
        .any(|o| matches!(o, probe_lab::Object::Deployment(d) if d.name == a.deployment))
    {
        return Err(CliError::Usage(format!(
            "deployment {} is not in the manifests",
            a.deployment
        )));
    }
    let lab = start_lab(&a.topology).await?;
    let ready = async {
        lab.apply(objects)?;
        eprintln!(
            "rollprobe matrix: lab {} is starting the Deployments ({} kernel settings)",
            lab.run_id(),
            lab.kernel()
        );
        lab.wait_available(Duration::from_secs(180)).await?;
        // A healthy baseline: every ready endpoint listens and the Service answers steadily.
        lab.wait_serving(&service, Duration::from_secs(180)).await?;
        from.iter()
            .map(|f| lab.vantage_point(*f, &service))
            .collect::<Result<Vec<_>, _>>()
    };
    let mut points = match ready.await {
        Ok(points) => points,
        Err(e) => {
            let _ = lab.shutdown().await;
            return Err(lab_error(e));
        }
    };
    if let Some(url) = &a.url {
        // The user's URL, probed from each vantage point.
        for at in &mut points {
            at.url = url.clone();
        }
    }
    let shared = Arc::new(lab.clone());
    Ok(Place {
        deployments: shared.clone(),
        events: shared,
        vantage: None,
        url: points[0].url.clone(),
        points,
        lab: Some(lab),
        lab_service: Some(service),
        watch: None,
    })
}

async fn in_cluster(a: &MatrixArgs) -> Result<Place, CliError> {
    let usage = |e: probe_kube::KubeError| CliError::Usage(e.to_string());
    let (client, namespace) =
        crate::run::connect(a.context.as_deref(), a.namespace.as_deref()).await?;
    let watch = probe_kube::watch_rollout(
        client.clone(),
        probe_kube::WatchTarget {
            namespace: namespace.clone(),
            deployment: a.deployment.clone(),
            service: a.service.clone(),
        },
    )
    .await
    .map_err(usage)?;
    let watch = Arc::new(watch);
    Ok(Place {
        deployments: Arc::new(probe_kube::Namespace::new(client, namespace)),
        events: watch.clone(),
        vantage: None,
        points: Vec::new(),
        url: a.url.clone().unwrap_or_default(),
        lab: None,
        lab_service: None,
        watch: Some(watch),
    })
}
