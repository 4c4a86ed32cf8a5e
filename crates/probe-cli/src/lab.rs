//! `rollprobe lab`: wires probe-lab's reproduction of a cluster to the library's
//! [`Rollout`], which probes from where a client of the Service stands and puts the
//! lab's events on the probe's clock.

use std::process::ExitCode;
use std::time::Duration;

use probe_core::{ProbeBuilder, Rollout};
use probe_lab::{
    parse_manifests_with_warnings, Kernel, Lab, LabConfig, LabError, Labels, Object, ServiceType,
};

use crate::args::{LabAction, LabArgs};
use crate::finish::finish_rollout;
use crate::options::{check_out_dir, probe_config};
use crate::progress::observe;
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

    let lab = start_lab(a.kernel).await?;
    eprintln!(
        "rollprobe lab {}: applying {} object(s), waiting until every Deployment is available ({} kernel settings)",
        lab.run_id(),
        objects.len(),
        lab.kernel(),
    );
    let result = probe_rollout(&lab, objects, &service, is_lb, change, &a, &output).await;
    let shutdown = lab.shutdown().await;
    let code = result?;
    shutdown.map_err(lab_error)?;
    Ok(code)
}

async fn probe_rollout(
    lab: &Lab,
    objects: Vec<Object>,
    service: &str,
    is_lb: bool,
    change: Change,
    a: &LabArgs,
    output: &crate::args::OutputArgs,
) -> Result<ExitCode, CliError> {
    lab.apply(objects).map_err(lab_error)?;
    lab.wait_available(Duration::from_secs(180))
        .await
        .map_err(lab_error)?;
    let url = lab.service_url(service).map_err(lab_error)?;
    let vantage = if is_lb { "client" } else { "node" };
    eprintln!("rollprobe lab: probing {url} from the {vantage} host");
    let mut config = probe_config(&url, &a.probe, output)?;
    config.vantage = vantage.into();
    config.lab_kernel = Some(lab.kernel().to_string());
    let mut probe = ProbeBuilder::from(config);
    if let Some(dir) = &output.out {
        probe = probe.out_dir(dir);
    }
    let label = output.label.clone().unwrap_or_else(|| "lab".into());
    let (observer, progress) = observe(label, output.quiet, false);
    let changer = lab.clone();
    let result = Rollout::new(probe)
        .lab(lab)
        .warmup(a.timing.warmup)
        .settle(a.timing.settle)
        .rollout_timeout(a.rollout_timeout)
        .cancel_on(crate::signals::shutdown())
        .observe(observer)
        .trigger(async move { apply_change(&changer, change) })
        .run()
        .await;
    progress.clear();
    finish_rollout(result, output)
}

/// The rollout's trigger: one change to the lab's objects.
fn apply_change(lab: &Lab, change: Change) -> Result<(), LabError> {
    match change {
        Change::Image { deployment, image } => {
            eprintln!("rollprobe lab: set image {deployment}={image}");
            lab.set_image(&deployment, &image)
        }
        Change::Selector { service, labels } => {
            eprintln!("rollprobe lab: switch the selector of {service}");
            lab.set_selector(&service, &labels)
        }
    }
}

/// Reads and parses every manifest file (exit 2 on any error).
pub fn load_manifests(files: &[std::path::PathBuf]) -> Result<Vec<Object>, CliError> {
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
        let parsed = parse_manifests_with_warnings(&text)
            .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
        for warning in &parsed.warnings {
            eprintln!("rollprobe: {}: {warning}", file.display());
        }
        objects.extend(parsed.objects);
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

/// Starts a lab with the given kernel settings.
pub async fn start_lab(kernel: Kernel) -> Result<Lab, CliError> {
    let config = LabConfig {
        kernel,
        ..LabConfig::default()
    };
    Lab::start(config).await.map_err(lab_error)
}
