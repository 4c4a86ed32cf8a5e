//! `rollprobe matrix`: the same rollout under several strategies, probed each
//! time, in the lab or on a real cluster. Wiring only: probe-core measures and
//! summarises, probe-lab and probe-kube change the Deployment.
//!
//! Each run: set the case's strategy and wait until the Deployment is stable,
//! start probing, trigger a rollout (a restart, or an image change that
//! alternates with the original so every run is a real change), wait until the
//! rollout is complete, settle, stop. matrix.csv and matrix.json are rewritten
//! after every run, so an interrupted matrix keeps the runs it finished. The
//! original strategy (and image) is restored at the end, also after Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use probe_core::{Matrix, MatrixRun, Probe, ProbeConfig};
use probe_kube::{IntOrPercent, Strategy};
use probe_lab::Lab;

use crate::args::{MatrixArgs, OutputArgs, Trigger};
use crate::lab::{lab_error, load_manifests, netns_runtime, pick_service, start_lab};
use crate::progress::Progress;
use crate::run::{check_out_dir, probe_config};
use crate::timeline::ClusterTimeline;
use crate::CliError;

/// Where the Deployment lives.
enum Cluster {
    Lab(Lab),
    Kube {
        client: probe_kube::kube::Client,
        namespace: String,
        watch: probe_kube::WatchHandle,
    },
}

fn to_lab(s: &Strategy) -> probe_lab::Strategy {
    let v = |x: IntOrPercent| match x {
        IntOrPercent::Int(n) => probe_lab::IntOrPercent::Int(n),
        IntOrPercent::Percent(p) => probe_lab::IntOrPercent::Percent(p as i32),
    };
    match *s {
        Strategy::Recreate => probe_lab::Strategy::Recreate,
        Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => probe_lab::Strategy::RollingUpdate {
            max_surge: v(max_surge),
            max_unavailable: v(max_unavailable),
        },
    }
}

fn from_lab(s: &probe_lab::Strategy) -> Strategy {
    let v = |x: probe_lab::IntOrPercent| match x {
        probe_lab::IntOrPercent::Int(n) => IntOrPercent::Int(n),
        probe_lab::IntOrPercent::Percent(p) => IntOrPercent::Percent(p.max(0) as u32),
    };
    match *s {
        probe_lab::Strategy::Recreate => Strategy::Recreate,
        probe_lab::Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } => Strategy::RollingUpdate {
            max_surge: v(max_surge),
            max_unavailable: v(max_unavailable),
        },
    }
}

fn kube_error(e: probe_kube::KubeError) -> CliError {
    CliError::Failed(e.to_string())
}

impl Cluster {
    async fn strategy(&self, deployment: &str) -> Result<Strategy, CliError> {
        match self {
            Cluster::Lab(lab) => lab
                .deployment(deployment)
                .map(|d| from_lab(&d.strategy))
                .ok_or_else(|| {
                    CliError::Usage(format!("deployment {deployment} is not in the manifests"))
                }),
            Cluster::Kube {
                client, namespace, ..
            } => probe_kube::read_strategy(client.clone(), namespace, deployment)
                .await
                .map_err(|e| CliError::Usage(e.to_string())),
        }
    }

    async fn set_strategy(&self, deployment: &str, s: &Strategy) -> Result<(), CliError> {
        match self {
            Cluster::Lab(lab) => lab.set_strategy(deployment, to_lab(s)).map_err(lab_error),
            Cluster::Kube {
                client, namespace, ..
            } => probe_kube::set_strategy(client.clone(), namespace, deployment, s)
                .await
                .map_err(kube_error),
        }
    }

    async fn wait_complete(&self, deployment: &str, timeout: Duration) -> Result<(), CliError> {
        match self {
            Cluster::Lab(lab) => lab
                .wait_rollout_complete(deployment, timeout)
                .await
                .map_err(lab_error),
            Cluster::Kube {
                client, namespace, ..
            } => probe_kube::wait_rollout_complete(client.clone(), namespace, deployment, timeout)
                .await
                .map_err(kube_error),
        }
    }

    /// Starts a rollout; returns the image that was replaced, for an image trigger.
    async fn trigger(
        &self,
        deployment: &str,
        trigger: &Trigger,
        image: &str,
    ) -> Result<Option<String>, CliError> {
        match (self, trigger) {
            (Cluster::Lab(lab), Trigger::Restart) => {
                lab.restart(deployment).map_err(lab_error)?;
                Ok(None)
            }
            (Cluster::Lab(lab), Trigger::Image(_)) => {
                let old = lab
                    .deployment(deployment)
                    .map(|d| d.template.container.image);
                lab.set_image(deployment, image).map_err(lab_error)?;
                Ok(old)
            }
            (
                Cluster::Kube {
                    client, namespace, ..
                },
                Trigger::Restart,
            ) => {
                probe_kube::restart(client.clone(), namespace, deployment)
                    .await
                    .map_err(kube_error)?;
                Ok(None)
            }
            (
                Cluster::Kube {
                    client, namespace, ..
                },
                Trigger::Image(_),
            ) => probe_kube::set_image(client.clone(), namespace, deployment, None, image)
                .await
                .map(Some)
                .map_err(kube_error),
        }
    }
}

/// `rollprobe matrix`.
pub async fn matrix(a: MatrixArgs) -> Result<ExitCode, CliError> {
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
    let no_output = OutputArgs {
        label: None,
        out: None,
        format: crate::args::Format::Text,
        max_failures: Vec::new(),
        max_downtime: None,
        quiet: a.quiet,
    };
    probe_config(
        a.url.as_deref().unwrap_or("http://127.0.0.1:8080/"),
        &a.probe,
        &no_output,
    )?;
    check_out_dir(&a.out)?;

    let timeline = ClusterTimeline::default();
    let (cluster, url, netns) = if a.lab {
        let objects = load_manifests(&a.files)?;
        let (service, _) = pick_service(&objects, a.service.as_deref())?;
        if !objects
            .iter()
            .any(|o| matches!(o, probe_lab::Object::Deployment(d) if d.name == a.deployment))
        {
            return usage(&format!(
                "deployment {} is not in the manifests",
                a.deployment
            ));
        }
        let lab = start_lab(&timeline).await?;
        lab.apply(objects).map_err(lab_error)?;
        eprintln!(
            "rollprobe matrix: lab {} is starting the Deployments",
            lab.run_id()
        );
        lab.wait_available(Duration::from_secs(180))
            .await
            .map_err(lab_error)?;
        let target = lab.probe_target(&service).map_err(lab_error)?;
        let url = a.url.clone().unwrap_or(target.url);
        (Cluster::Lab(lab), url, Some(target.netns))
    } else {
        let client = probe_kube::connect(a.context.as_deref())
            .await
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let namespace = a
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let sink_timeline = timeline.clone();
        let sink: probe_kube::KubeEventSink = Arc::new(move |e: probe_kube::KubeEvent| {
            sink_timeline.record(&e.kind, &e.detail, e.server_time.as_deref())
        });
        let watch = probe_kube::watch_rollout(
            client.clone(),
            probe_kube::WatchTarget {
                namespace: namespace.clone(),
                deployment: a.deployment.clone(),
                service: a.service.clone(),
            },
            sink,
        )
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
        crate::run::record_baseline(&watch, &timeline);
        let url = a.url.clone().expect("checked above");
        (
            Cluster::Kube {
                client,
                namespace,
                watch,
            },
            url,
            None,
        )
    };

    let original = cluster.strategy(&a.deployment).await?;
    let mut matrix = Matrix::default();
    let mut original_image: Option<String> = None;
    let outcome = tokio::select! {
        r = run_cases(&a, &cluster, &url, netns.as_deref(), &timeline, &mut matrix, &mut original_image) => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("rollprobe matrix: interrupted; restoring the original strategy");
            Ok(())
        }
    };
    // Restore what we changed, whatever happened above.
    let mut restored = cluster.set_strategy(&a.deployment, &original).await;
    if let (Ok(()), Some(image)) = (&restored, &original_image) {
        // An even number of image changes has already put it back.
        restored = cluster
            .trigger(&a.deployment, &Trigger::Image(image.clone()), image)
            .await
            .map(|_| ());
    }
    let now_strategy = cluster.strategy(&a.deployment).await?;
    eprintln!(
        "rollprobe matrix: strategy of {} restored to {now_strategy}",
        a.deployment
    );
    write_matrix(&a.out, &matrix, &now_strategy)?;
    match cluster {
        Cluster::Lab(lab) => lab.shutdown().await.map_err(lab_error)?,
        Cluster::Kube { watch, .. } => watch.stop().await,
    }
    outcome?;
    restored?;
    println!("{}", matrix.summary_text());
    eprintln!(
        "rollprobe: wrote {} and {}",
        a.out.join("matrix.csv").display(),
        a.out.join("matrix.json").display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_matrix(dir: &Path, m: &Matrix, strategy_now: &Strategy) -> Result<(), CliError> {
    let fail = |p: &Path, e: std::io::Error| {
        CliError::Failed(format!("cannot write {}: {e}", p.display()))
    };
    let csv = dir.join("matrix.csv");
    std::fs::write(&csv, m.to_csv()).map_err(|e| fail(&csv, e))?;
    let json = dir.join("matrix.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&m.to_json()).expect("the matrix's own JSON parses");
    value["strategy_after"] = serde_json::Value::String(strategy_now.to_string());
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&value).unwrap_or_default(),
    )
    .map_err(|e| fail(&json, e))
}

async fn run_cases(
    a: &MatrixArgs,
    cluster: &Cluster,
    url: &str,
    netns: Option<&str>,
    timeline: &ClusterTimeline,
    matrix: &mut Matrix,
    original_image: &mut Option<String>,
) -> Result<(), CliError> {
    let mut changes = 0usize;
    for case in &a.cases {
        for run in 1..=a.repeat {
            cluster.set_strategy(&a.deployment, case).await?;
            cluster
                .wait_complete(&a.deployment, a.rollout_timeout)
                .await?;
            let label = format!("{case}#{run}");
            let out = a.out.join(case.slug()).join(run.to_string());
            check_out_dir(&out)?;
            let output = OutputArgs {
                label: Some(label.clone()),
                out: Some(out.clone()),
                format: crate::args::Format::Text,
                max_failures: Vec::new(),
                max_downtime: None,
                quiet: a.quiet,
            };
            let config = probe_config(url, &a.probe, &output)?;
            // Alternate between the new image and the original one.
            let image = match (&a.trigger, original_image.as_ref()) {
                (Trigger::Image(_), Some(original)) if changes % 2 == 1 => original.clone(),
                (Trigger::Image(new), _) => new.clone(),
                (Trigger::Restart, _) => String::new(),
            };
            let (report, replaced) =
                probe_one_rollout(a, cluster, config, &out, netns, timeline, &label, &image)
                    .await?;
            if original_image.is_none() {
                *original_image = replaced;
            }
            let row = MatrixRun::from_report(&case.to_string(), run, &report);
            eprintln!(
                "rollprobe matrix: {label}: {} failed, downtime {:.3} s, rollout {}",
                row.failed,
                row.downtime_ms / 1000.0,
                row.rollout_ms
                    .map(|ms| format!("{:.1} s", ms / 1000.0))
                    .unwrap_or_else(|| "-".into())
            );
            matrix.runs.push(row);
            let now = cluster.strategy(&a.deployment).await?;
            write_matrix(&a.out, matrix, &now)?;
            changes += 1;
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn probe_one_rollout(
    a: &MatrixArgs,
    cluster: &Cluster,
    config: ProbeConfig,
    out: &Path,
    netns: Option<&str>,
    timeline: &ClusterTimeline,
    label: &str,
    image: &str,
) -> Result<(probe_core::Report, Option<String>), CliError> {
    let runtime = match netns {
        Some(ns) => Some(netns_runtime(ns)?),
        None => None,
    };
    let out_dir = out.to_path_buf();
    let start = async move { Probe::start_with(config, Some(&out_dir)).await };
    let probe = match &runtime {
        Some(rt) => rt
            .spawn(start)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))??,
        None => start.await?,
    };
    timeline.attach(probe.handle());
    let progress = Progress::start(probe.handle(), label, a.quiet);
    let rolled = async {
        tokio::time::sleep(a.timing.warmup).await;
        let what = match &a.trigger {
            Trigger::Restart => format!("restart deployment/{}", a.deployment),
            Trigger::Image(_) => format!("set image deployment/{} {image}", a.deployment),
        };
        probe.event("trigger_start", &what);
        let replaced = cluster.trigger(&a.deployment, &a.trigger, image).await?;
        cluster
            .wait_complete(&a.deployment, a.rollout_timeout)
            .await?;
        probe.event("trigger_exit", "rollout complete");
        tokio::time::sleep(a.timing.settle).await;
        Ok::<Option<String>, CliError>(replaced)
    }
    .await;
    drop(progress);
    let stop = probe.stop();
    let report = match &runtime {
        Some(rt) => rt
            .spawn(stop)
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?,
        None => stop.await,
    };
    timeline.detach();
    if let Some(rt) = runtime {
        rt.shutdown_background();
    }
    let replaced = rolled?;
    Ok((report?, replaced))
}
