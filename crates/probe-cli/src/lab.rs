//! `rollprobe lab`: wires probe-lab's reproduction of a cluster to the prober.
//!
//! The prober's sockets must live in the lab's client (or node) namespace, so
//! the probe runs on its own runtime whose threads all enter that namespace as
//! they start; everything else (files, the controller) stays where it is. The
//! lab's events reach the probe through a [`ClusterTimeline`], which also hands
//! it the pods and endpoints that were serving before it started.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use probe_core::Probe;
use probe_lab::{parse_manifests, Lab, LabConfig, LabError, Labels, Object, ServiceType};

use crate::args::{LabAction, LabArgs};
use crate::progress::Progress;
use crate::run::{check_out_dir, probe_config, stop_probe};
use crate::timeline::ClusterTimeline;
use crate::CliError;

/// The change that starts the rollout.
enum Change {
    Image { deployment: String, image: String },
    Selector { service: String, labels: Labels },
}

fn parse_change(a: &LabArgs) -> Result<Change, CliError> {
    let usage = |m: &str| CliError::Usage(m.to_string());
    if let Some(spec) = &a.set_image {
        let (deployment, image) = spec
            .split_once('=')
            .filter(|(d, i)| !d.is_empty() && !i.is_empty())
            .ok_or_else(|| {
                usage("--set-image takes DEPLOYMENT=IMAGE, e.g. backend-deployment=shop/backend:v2")
            })?;
        return Ok(Change::Image {
            deployment: deployment.into(),
            image: image.into(),
        });
    }
    if let Some(spec) = &a.set_selector {
        let bad = || {
            usage("--set-selector takes SERVICE:KEY=VALUE[,KEY=VALUE], e.g. backend-svc:version=v2")
        };
        let (service, pairs) = spec.split_once(':').ok_or_else(bad)?;
        let mut labels = Labels::new();
        for pair in pairs.split(',') {
            let (k, v) = pair.split_once('=').ok_or_else(bad)?;
            if k.is_empty() || service.is_empty() {
                return Err(bad());
            }
            labels.insert(k.to_string(), v.to_string());
        }
        return Ok(Change::Selector {
            service: service.into(),
            labels,
        });
    }
    Err(usage(
        "the lab needs a change to roll out: --set-image DEPLOYMENT=IMAGE or --set-selector SERVICE:KEY=VALUE",
    ))
}

pub fn lab_error(e: LabError) -> CliError {
    match e {
        LabError::NotRoot(_)
        | LabError::Manifest { .. }
        | LabError::Invalid(_)
        | LabError::NotFound(_) => CliError::Usage(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

/// `rollprobe lab`.
pub async fn lab(a: LabArgs) -> Result<ExitCode, CliError> {
    if let Some(LabAction::Cleanup) = a.action {
        let removed = probe_lab::cleanup_leftovers().map_err(lab_error)?;
        eprintln!("rollprobe: removed {removed} leftover lab namespace(s)");
        return Ok(ExitCode::SUCCESS);
    }
    // Everything the user gave is checked before the lab is built.
    if a.files.is_empty() {
        return Err(CliError::Usage(
            "the lab needs manifests: -f FILE (Deployments and Services)".into(),
        ));
    }
    let change = parse_change(&a)?;
    let objects = load_manifests(&a.files)?;
    let (service, is_lb) = pick_service(&objects, a.service.as_deref())?;
    let services = services_of(&objects);
    match &change {
        Change::Image { deployment, .. } => {
            if !objects
                .iter()
                .any(|o| matches!(o, Object::Deployment(d) if &d.name == deployment))
            {
                return Err(CliError::Usage(format!(
                    "deployment {deployment} is not in the manifests"
                )));
            }
        }
        Change::Selector { service, .. } => {
            if !services.iter().any(|s| &s.name == service) {
                return Err(CliError::Usage(format!(
                    "service {service} is not in the manifests"
                )));
            }
        }
    }
    // Validate the probe options now; the URL is known once the lab runs.
    probe_config("http://127.0.0.1:8080/test/version", &a.probe, &a.output)?;
    if let Some(dir) = &a.output.out {
        check_out_dir(dir)?;
    }
    let mut output = a.output.clone();
    if output.label.is_none() {
        output.label = a.files[0]
            .file_stem()
            .map(|s| s.to_string_lossy().to_string());
    }

    let timeline = ClusterTimeline::default();
    let lab = start_lab(&timeline).await?;
    eprintln!(
        "rollprobe lab {}: applying {} object(s), waiting until every Deployment is available",
        lab.run_id(),
        objects.len()
    );
    let result = probe_rollout(
        &lab, objects, &service, is_lb, change, &a, &output, &timeline,
    )
    .await;
    let shutdown = lab.shutdown().await;
    let code = result?;
    shutdown.map_err(lab_error)?;
    Ok(code)
}

#[allow(clippy::too_many_arguments)]
async fn probe_rollout(
    lab: &Lab,
    objects: Vec<Object>,
    service: &str,
    is_lb: bool,
    change: Change,
    a: &LabArgs,
    output: &crate::args::OutputArgs,
    timeline: &ClusterTimeline,
) -> Result<ExitCode, CliError> {
    lab.apply(objects).map_err(lab_error)?;
    lab.wait_available(Duration::from_secs(180))
        .await
        .map_err(lab_error)?;
    let target = lab.probe_target(service).map_err(lab_error)?;
    eprintln!(
        "rollprobe lab: probing {} from the {} namespace",
        target.url,
        if is_lb { "client host" } else { "node" }
    );
    let config = probe_config(&target.url, &a.probe, output)?;

    let probe_runtime = netns_runtime(&target.netns)?;
    let out = output.out.clone();
    let probe = probe_runtime
        .spawn(async move { Probe::start_with(config, out.as_deref()).await })
        .await
        .map_err(|e| CliError::Failed(e.to_string()))??;
    timeline.attach(probe.handle());
    let progress = Progress::start(
        probe.handle(),
        output.label.as_deref().unwrap_or("lab"),
        output.quiet,
    );
    let interrupted = tokio::select! {
        _ = tokio::signal::ctrl_c() => true,
        r = roll_out(lab, change, a) => { r?; false }
    };
    drop(progress);
    let code = probe_runtime
        .spawn({
            let output = output.clone();
            async move { stop_probe(probe, interrupted, &output).await }
        })
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    timeline.detach();
    probe_runtime.shutdown_background();
    code
}

/// Reads and parses every manifest file (exit 2 on any error).
pub fn load_manifests(files: &[std::path::PathBuf]) -> Result<Vec<Object>, CliError> {
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        let parsed = parse_manifests(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
        objects.extend(parsed);
    }
    Ok(objects)
}

fn services_of(objects: &[Object]) -> Vec<&probe_lab::Service> {
    objects
        .iter()
        .filter_map(|o| match o {
            Object::Service(s) => Some(s),
            _ => None,
        })
        .collect()
}

/// The Service to probe: the named one, or the only one. Also says whether it
/// is a LoadBalancer (probed from the client host) or not (from the node).
pub fn pick_service(objects: &[Object], name: Option<&str>) -> Result<(String, bool), CliError> {
    let services = services_of(objects);
    let chosen = match (name, services.as_slice()) {
        (Some(name), _) => services
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| CliError::Usage(format!("service {name} is not in the manifests")))?,
        (None, [only]) => only,
        (None, []) => {
            return Err(CliError::Usage(
                "the manifests have no Service to probe".into(),
            ))
        }
        (None, _) => {
            return Err(CliError::Usage(
                "the manifests have several Services: name one with --service".into(),
            ))
        }
    };
    Ok((
        chosen.name.clone(),
        chosen.service_type == ServiceType::LoadBalancer,
    ))
}

/// Starts a lab whose events go to `timeline`.
pub async fn start_lab(timeline: &ClusterTimeline) -> Result<Lab, CliError> {
    let sink_timeline = timeline.clone();
    let sink: probe_lab::EventSink =
        Arc::new(move |kind: &str, detail: &str| sink_timeline.record(kind, detail, None));
    Lab::start(LabConfig::default(), sink)
        .await
        .map_err(lab_error)
}

/// A runtime whose every thread lives in the network namespace `netns`, so
/// every socket the probe opens there is in it.
pub fn netns_runtime(netns: &str) -> Result<tokio::runtime::Runtime, CliError> {
    let netns = netns.to_string();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            if let Err(e) = probe_lab::enter_netns(&netns) {
                eprintln!("rollprobe: cannot enter network namespace {netns}: {e}");
                std::process::abort();
            }
        })
        .build()
        .map_err(|e| CliError::Failed(format!("cannot start the probe runtime: {e}")))
}

async fn roll_out(lab: &Lab, change: Change, a: &LabArgs) -> Result<(), CliError> {
    tokio::time::sleep(a.timing.warmup).await;
    match change {
        Change::Image { deployment, image } => {
            eprintln!("rollprobe lab: set image {deployment}={image}");
            lab.set_image(&deployment, &image).map_err(lab_error)?;
            lab.wait_rollout_complete(&deployment, a.rollout_timeout)
                .await
                .map_err(lab_error)?;
        }
        Change::Selector { service, labels } => {
            eprintln!("rollprobe lab: switch the selector of {service}");
            lab.set_selector(&service, &labels).map_err(lab_error)?;
        }
    }
    tokio::time::sleep(a.timing.settle).await;
    Ok(())
}
