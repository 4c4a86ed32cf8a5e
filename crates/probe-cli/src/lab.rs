//! `rollprobe lab`: wires probe-lab's reproduction of a cluster to the library's
//! [`Rollout`], which probes from where a client of the Service stands and puts the
//! lab's events on the probe's clock.

use std::time::Duration;

use probe_core::AccessLog;
use probe_core::{ProbeBuilder, Rollout};
use probe_lab::{
    parse_manifests_with_warnings, Ingress, Lab, LabConfig, LabError, LabFrom, Object, ServiceType,
    Step,
};

use crate::args::{LabAction, LabArgs, LabOptions};
use crate::error::CliError;
use crate::exit::Exit;
use crate::finish::finish_rollout;
use crate::options::{check_new_out_dir, lab_pod_from, probe_config, OutKind};
use crate::progress::observe;

/// The steps of the rollout: `--step`s, or the one step of a shorthand.
fn steps_of(a: &LabArgs) -> Result<Vec<Step>, CliError> {
    let steps: Vec<Step> = a
        .set_image
        .iter()
        .chain(&a.set_selector)
        .chain(&a.steps)
        .cloned()
        .collect();
    if steps.is_empty() {
        return Err(CliError::Usage(
            "the lab needs a change to roll out: --step STEP (e.g. --step set-image:web=shop/web:v2), --set-image DEPLOYMENT=IMAGE or --set-selector SERVICE:KEY=VALUE".into(),
        ));
    }
    Ok(steps)
}

pub fn lab_error(e: LabError) -> CliError {
    match e {
        LabError::NotRoot(_)
        | LabError::Manifest { .. }
        | LabError::Invalid(_)
        | LabError::NotFound(_)
        // Pods that cannot start are the manifests' problem, found before probing.
        | LabError::CrashLoop(_) => CliError::Usage(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

/// `rollprobe lab`.
pub async fn lab(a: LabArgs) -> Result<Exit, CliError> {
    if let Some(LabAction::Cleanup) = a.action {
        let removed = probe_lab::cleanup_leftovers().map_err(lab_error)?;
        eprintln!("rollprobe: removed {removed} leftover lab namespace(s)");
        return Ok(Exit::Ok);
    }
    // Everything the user gave is checked before the lab is built.
    if a.files.is_empty() {
        return Err(CliError::Usage(
            "the lab needs manifests: -f FILE (Deployments and Services)".into(),
        ));
    }
    let steps = steps_of(&a)?;
    let mut objects = load_manifests(&a.files)?;
    let (service, is_lb) =
        probed_service(&mut objects, &a.topology, a.service.as_deref(), &a.probe)?;
    let from = vantage_points(&a.topology, is_lb)?;
    let services = services_of(&objects);
    for step in &steps {
        if let Some(d) = step.deployment() {
            if !objects
                .iter()
                .any(|o| matches!(o, Object::Deployment(x) if x.name == d))
            {
                return Err(CliError::Usage(format!(
                    "step '{step}': deployment {d} is not in the manifests"
                )));
            }
        }
        if let Some(s) = step.service() {
            if !services.iter().any(|x| x.name == s) {
                return Err(CliError::Usage(format!(
                    "step '{step}': service {s} is not in the manifests"
                )));
            }
        }
    }
    // Validate the probe options now; the URL is known once the lab runs.
    probe_config("http://127.0.0.1:8080/test/version", &a.probe, &a.output)?;
    if let Some(dir) = &a.output.out {
        check_new_out_dir(dir, a.output.force, OutKind::Run)?;
    }
    let mut output = a.output.clone();
    if output.label.is_none() {
        output.label = a.files[0]
            .file_stem()
            .map(|s| s.to_string_lossy().to_string());
    }

    // Signals are caught from before the first namespace exists: a SIGTERM while the
    // lab is being built must remove it, not kill the process and leave it behind.
    let interrupted = crate::signals::shutdown();
    let lab = start_lab(&a.topology).await?;
    eprintln!(
        "rollprobe lab {}: applying {} object(s), waiting until every Deployment is available ({} kernel settings, {} node{})",
        lab.run_id(),
        objects.len(),
        lab.kernel(),
        a.topology.nodes,
        if a.topology.nodes == 1 { "" } else { "s" },
    );
    let result = probe_rollout(
        &lab,
        objects,
        (&service, &from),
        steps,
        &a,
        &output,
        interrupted,
    )
    .await;
    let shutdown = lab.shutdown().await;
    let code = result?;
    shutdown.map_err(lab_error)?;
    Ok(code)
}

async fn probe_rollout(
    lab: &Lab,
    objects: Vec<Object>,
    (service, from): (&str, &[LabFrom]),
    steps: Vec<Step>,
    a: &LabArgs,
    output: &crate::args::OutputArgs,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<Exit, CliError> {
    let setup = async {
        lab.apply(objects).map_err(lab_error)?;
        lab.wait_available(Duration::from_secs(180))
            .await
            .map_err(lab_error)?;
        // A healthy baseline: the failures a report shows must belong to the change, not
        // to pods still starting.
        eprintln!("rollprobe lab: waiting until {service} answers steadily");
        lab.wait_serving(service, Duration::from_secs(120))
            .await
            .map_err(lab_error)
    };
    // A signal while the lab is still being set up ends it too: the caller removes the
    // lab either way, and without a measurement the run is not valid (exit 3).
    tokio::select! {
        done = setup => done?,
        () = interrupted => {
            return Err(CliError::Failed(
                "interrupted before probing began: nothing was measured".into(),
            ))
        }
    }
    let points = from
        .iter()
        .map(|f| lab.vantage_point(*f, service))
        .collect::<Result<Vec<_>, _>>()
        .map_err(lab_error)?;
    for at in &points {
        eprintln!("rollprobe lab: probing {} from {}", at.url, at.name);
    }
    let mut config = probe_config(&points[0].url, &a.probe, output)?;
    config.vantage = points[0].name.clone();
    lab_pod_from(&mut config);
    config.lab_kernel = Some(lab.kernel().to_string());
    let mut probe = ProbeBuilder::from(config);
    for at in points {
        probe = probe.vantage_point(at.name, at.url, at.vantage);
    }
    if let Some(dir) = &output.out {
        probe = probe.out_dir(dir);
    }
    let label = output.label.clone().unwrap_or_else(|| "lab".into());
    let (observer, progress) = observe(label, output.quiet, false);
    let changer = lab.clone();
    let trigger_name = steps
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let result = Rollout::new(probe)
        .events(lab.clone())
        .warmup(a.timing.warmup)
        .settle(a.timing.settle)
        .rollout_timeout(a.rollout_timeout)
        .cancel_on(crate::signals::shutdown())
        .observe(observer)
        .trigger(async move { run_steps(&changer, steps).await })
        .trigger_name(trigger_name)
        .run()
        .await;
    progress.clear();
    let result = match (&output.out, result) {
        (Some(dir), Ok(mut report)) => {
            describe_data_path(&mut report, service, &a.topology);
            complete_run(lab, dir, &mut report).await;
            Ok(report)
        }
        (None, Ok(mut report)) => {
            describe_data_path(&mut report, service, &a.topology);
            Ok(report)
        }
        (_, result) => result,
    };
    finish_rollout(result, output)
}

/// Says in the report's `lab` which path the requests took: kube-proxy's mode, the
/// ingress proxy in front when the probed Service is an ingress controller's, and the
/// mesh beside the pods.
pub fn describe_data_path(report: &mut probe_core::Report, service: &str, o: &LabOptions) {
    if let Some(lab) = report.lab.as_mut() {
        lab.proxy_mode = Some(o.proxy_mode.name().to_string());
        lab.mesh = o.mesh.map(|m| m.to_string());
        lab.ingress = probe_lab::IngressKind::ALL
            .iter()
            .find(|k| k.service_name() == service)
            .map(|k| k.class().to_string());
    }
}

/// Joins the lab's proxies' access logs (when it runs any) to a finished run in `dir`
/// and rewrites its report files, which the data path changed too. A failure is said
/// on stderr: the run's measurement stands without it.
pub async fn complete_run(lab: &Lab, dir: &std::path::Path, report: &mut probe_core::Report) {
    let joined = match proxy_access_log(lab).await {
        Ok(Some(log)) => crate::run::join_at_end(&log, dir, report).map(|()| true),
        Ok(None) => Ok(false),
        Err(e) => Err(e),
    };
    if let Err(CliError::Usage(e) | CliError::Failed(e)) = &joined {
        eprintln!("rollprobe: the proxies' access logs were not joined: {e}");
    }
    if !matches!(joined, Ok(true)) {
        if let Err(e) = probe_core::write_report_files(dir, report) {
            eprintln!("rollprobe: {e}");
        }
    }
}

/// The lab's proxies' access logs, read before the lab goes (which removes them);
/// `None` when the lab runs no proxy.
pub async fn proxy_access_log(lab: &Lab) -> Result<Option<AccessLog>, CliError> {
    let logs = lab.access_logs();
    if logs.is_empty() {
        return Ok(None);
    }
    // Envoy writes its log every 100 ms: let the last requests' lines in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut log = AccessLog::default();
    for path in &logs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", path.display())))?;
        text.lines().for_each(|line| log.add_line(line));
    }
    Ok(Some(log))
}

/// The Service the probe targets, and whether it is a LoadBalancer. With `--ingress
/// KIND` a catch-all Ingress of that class goes in front of the chosen Service and the
/// probe targets the proxy; with an Ingress in the manifests (and no `--service`) the
/// probe targets its proxy, as a user reaches it (the Host header of `-H`). A missing
/// proxy binary, or an Ingress that routes no request of the probe, is bad input.
pub fn probed_service(
    objects: &mut Vec<Object>,
    o: &LabOptions,
    named: Option<&str>,
    probe: &crate::args::ProbeArgs,
) -> Result<(String, bool), CliError> {
    let host = probe
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_str());
    let first_ingress = objects.iter().find_map(|o| match o {
        Object::Ingress(i) => Some(i.clone()),
        _ => None,
    });
    for o in objects.iter() {
        if let Object::Ingress(i) = o {
            i.class.binary().map_err(lab_error)?;
        }
    }
    let ingress = match (o.ingress, first_ingress) {
        (Some(kind), _) => {
            kind.binary().map_err(lab_error)?;
            let (service, _) = pick_service(objects, named)?;
            let port = services_of(objects)
                .iter()
                .find(|s| s.name == service)
                .map(|s| s.ports[0].port)
                .unwrap_or(80);
            let ingress = Ingress::catch_all(kind, &service, port);
            objects.push(Object::Ingress(ingress.clone()));
            ingress
        }
        (None, Some(ingress)) if named.is_none() => ingress,
        (None, _) => return pick_service(objects, named),
    };
    if ingress.backend_for(host, "/test/version").is_none() {
        let hosts: Vec<&str> = ingress
            .rules
            .iter()
            .filter_map(|r| r.host.as_deref())
            .collect();
        return Err(CliError::Usage(format!(
            "ingress {}: no rule routes /test/version for {}: add -H 'Host: NAME' for one of its hosts ({})",
            ingress.name,
            host.map_or("a request without a Host of its rules".to_string(), |h| format!("Host {h}")),
            hosts.join(", ")
        )));
    }
    Ok((ingress.class.service_name().to_string(), true))
}

/// The rollout's trigger: the steps, in order, each said on stderr as it starts.
async fn run_steps(lab: &Lab, steps: Vec<Step>) -> Result<(), LabError> {
    for step in &steps {
        eprintln!("rollprobe lab: step {step}");
        lab.run_steps(std::slice::from_ref(step)).await?;
    }
    Ok(())
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

/// The vantage points of `--from`, checked against the lab's shape before it is built:
/// by default the client host for a LoadBalancer Service, node 1 for a ClusterIP one.
pub fn vantage_points(o: &LabOptions, is_lb: bool) -> Result<Vec<LabFrom>, CliError> {
    if o.from.is_empty() {
        return Ok(vec![if is_lb {
            LabFrom::Client
        } else {
            LabFrom::Node(1)
        }]);
    }
    let nodes = usize::from(o.nodes);
    for from in &o.from {
        match from {
            LabFrom::Client if !is_lb => {
                return Err(CliError::Usage(
                    "--from client: the Service is not a LoadBalancer, and the client host reaches only LoadBalancer addresses; use --from node or --from pod".into(),
                ))
            }
            LabFrom::Node(n) | LabFrom::Pod(n) if *n > nodes => {
                return Err(CliError::Usage(format!(
                    "--from {from}: the lab has {nodes} node(s); add --nodes {n}"
                )))
            }
            _ => {}
        }
    }
    let mut seen = Vec::new();
    for from in &o.from {
        if seen.contains(from) {
            return Err(CliError::Usage(format!("--from {from} is given twice")));
        }
        seen.push(*from);
    }
    Ok(seen)
}

/// Starts a lab with the given kernel settings and nodes. Its pods run this very binary's
/// app (`rollprobe lab-app`) unless `ROLLPROBE_LAB_APP` names another: a `rollprobe`
/// found on PATH could be an older build than the one the user just ran.
pub async fn start_lab(o: &LabOptions) -> Result<Lab, CliError> {
    let node_sync_delays = match &o.sync_delays {
        Some(d) if d.0.len() > usize::from(o.nodes) => {
            return Err(CliError::Usage(format!(
            "--sync-delays lists {} delays for {} node(s): give at most one per node (see --nodes)",
            d.0.len(),
            o.nodes
        )))
        }
        Some(d) => d.0.clone(),
        None => Vec::new(),
    };
    o.proxy_mode
        .check_tools()
        .map_err(|e| CliError::Usage(format!("--proxy-mode {}: {e}", o.proxy_mode.name())))?;
    let own = std::env::var_os(probe_lab::LAB_APP_ENV)
        .is_none()
        .then(std::env::current_exe)
        .and_then(Result::ok)
        .map(|exe| vec![exe.to_string_lossy().into_owned(), "lab-app".into()]);
    let config = LabConfig {
        kernel: o.kernel,
        proxy_mode: o.proxy_mode,
        nodes: usize::from(o.nodes),
        node_sync_delays,
        app_command: own,
        mesh: o.mesh,
        ..LabConfig::default()
    };
    Lab::start(config).await.map_err(lab_error)
}
