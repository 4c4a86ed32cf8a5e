//! The lab's public handle: builds the namespaces, runs the controller thread, publishes
//! every action on its event hub, and tears everything down on shutdown, when the last
//! handle is dropped (so also when a panic unwinds) and, through `PR_SET_PDEATHSIG` and
//! [`crate::cleanup_leftovers`], after the process was killed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use probe_core::{Event, EventHub, EventKind, Strategy, Subject};

use crate::config::{find_app, LabConfig};
use crate::controller::waits::{all_rollouts_complete, status, wait_until};
use crate::controller::{
    DeploymentStatus, Desired, DesiredDeployment, DesiredService, Names, ServiceStatus, Shared,
    Status, World,
};
use crate::error::LabError;
use crate::kernel::Kernel;
use crate::manifest::{parse_manifests, Labels, Object, ServiceType};
use crate::netns::NAME_PREFIX;
use crate::topology::{allocate, build_network, destroy_fixed};

/// Where and how to probe a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// `http://ADDR:PORT/test/version`.
    pub url: String,
    /// The address and port in the URL.
    pub addr: SocketAddr,
    /// The network namespace the prober's sockets must be created in (see
    /// [`crate::enter_netns`]): the client host for a LoadBalancer Service, the node for a
    /// ClusterIP Service.
    pub netns: String,
}

/// A running lab: a node namespace with a pod bridge, a client host namespace on an L2
/// segment with it, and a controller that turns Deployments and Services into pods,
/// iptables rules and address announcements.
///
/// `Lab` is a cheap handle over shared state (`Clone + Send + Sync`): clone it into a
/// trigger future or a thread. [`Lab::shutdown`] is idempotent; when the last handle is
/// dropped without it, the drop stops the lab and removes its namespaces (blocking the
/// dropping thread for the teardown, usually well under a second).
///
/// It is an [`probe_core::EventSource`] (every action as a typed [`Event`]; rollout completion) and a
/// [`probe_core::Vantage`] (a probe thread enters the namespace a client of a Service URL stands in).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let lab = probe_lab::Lab::start(probe_lab::LabConfig::default()).await?;
/// lab.apply_yaml(&std::fs::read_to_string("rolling.yaml")?)?;
/// lab.wait_available(Duration::from_secs(60)).await?;
/// let url = lab.service_url("backend-svc")?; // probe it from a thread that called enter
/// let change = lab.clone();
/// change.set_image("backend-deployment", "shop/backend:v2")?;
/// lab.wait_rollout_complete("backend-deployment", Duration::from_secs(120)).await?;
/// lab.shutdown().await?;
/// # let _ = url; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Lab {
    inner: Arc<Inner>,
}

/// What every handle shares; dropping the last one stops the lab.
struct Inner {
    shared: Arc<Shared>,
    names: Names,
    hub: EventHub,
    kernel: Kernel,
    thread: Mutex<Option<JoinHandle<Result<(), LabError>>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("run_id", &self.inner.names.run_id)
            .field("kernel", &self.inner.kernel)
            .finish()
    }
}

impl Lab {
    /// Builds the lab's namespaces and starts its controller.
    ///
    /// Fails with [`LabError::NotRoot`] without root, [`LabError::AppNotFound`] when no
    /// app for the pods is found (see [`crate::find_app`]), and [`LabError::Setup`] /
    /// [`LabError::Command`] if a namespace, link or rule cannot be created (whatever was
    /// created is removed again).
    pub async fn start(config: LabConfig) -> Result<Lab, LabError> {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        if uid != 0 {
            return Err(LabError::NotRoot(uid));
        }
        if !config.run_id.starts_with(NAME_PREFIX) || config.run_id.contains('/') {
            return Err(LabError::Invalid(format!(
                "run_id must start with {NAME_PREFIX:?}: {:?}",
                config.run_id
            )));
        }
        if let Err(why) = config.proxy_mode.check_tools() {
            return Err(LabError::Setup(format!(
                "proxy mode {}: {why}",
                config.proxy_mode.name()
            )));
        }
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(LabError::Invalid(format!(
                "time_scale must be > 0, got {}",
                config.time_scale
            )));
        }
        let app = match &config.app_command {
            Some(c) if c.is_empty() => {
                return Err(LabError::Invalid("app_command is empty".into()));
            }
            Some(c) => c.clone(),
            None => find_app()?,
        };
        if let Some(mesh) = config.mesh {
            mesh.binary()?;
        }
        if !(1..=crate::config::MAX_NODES).contains(&config.nodes) {
            return Err(LabError::Invalid(format!(
                "nodes must be 1 to {}, got {}",
                crate::config::MAX_NODES,
                config.nodes
            )));
        }
        let names = Names::new(&config.run_id, config.nodes);
        for ns in names.all() {
            if std::path::Path::new(&format!("/run/netns/{ns}")).exists() {
                return Err(LabError::Invalid(format!(
                    "network namespace {ns} already exists (run id in use)"
                )));
            }
        }
        let shared = Arc::new(Shared {
            desired: Mutex::new(Desired::default()),
            status: Mutex::new(Status::default()),
            stop: AtomicBool::new(false),
        });
        let hub = EventHub::default();
        let kernel = config.kernel;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (t_names, t_shared, t_hub) = (names.clone(), shared.clone(), hub.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{}-ctl", config.run_id))
            .spawn(move || -> Result<(), LabError> {
                if let Err(e) = build_network(config.kernel, &t_names) {
                    let _ = destroy_fixed(&t_names);
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
                let _ = tx.send(Ok(()));
                let mut world = World::new(config, app, t_hub, t_shared.clone(), t_names.clone());
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run()));
                let a = world.teardown();
                let b = destroy_fixed(&t_names);
                if let Ok(mut s) = t_shared.status.lock() {
                    s.stopped = true;
                }
                if run.is_err() {
                    return Err(LabError::Setup("the lab controller panicked".into()));
                }
                a.and(b)
            })
            .map_err(|e| LabError::Setup(format!("cannot start the controller thread: {e}")))?;
        match rx.await {
            Ok(Ok(())) => Ok(Lab {
                inner: Arc::new(Inner {
                    shared,
                    names,
                    hub,
                    kernel,
                    thread: Mutex::new(Some(thread)),
                }),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(LabError::Setup(
                    "the lab controller died during setup".into(),
                ))
            }
        }
    }

    /// This run's id (the prefix of all its namespace names).
    pub fn run_id(&self) -> &str {
        &self.inner.names.run_id
    }

    /// The kernel settings its namespaces run with.
    pub fn kernel(&self) -> Kernel {
        self.inner.kernel
    }

    /// Node 1's namespace (its pods' bridge, its kube-proxy's rules, ClusterIP clients).
    pub fn node_netns(&self) -> &str {
        &self.inner.names.nodes[0]
    }

    /// The namespaces of all nodes, node 1 first (`<run>-node1`, `<run>-node2`, ...).
    pub fn node_netns_all(&self) -> &[String] {
        &self.inner.names.nodes
    }

    /// The node (1-based) that announces `service`'s LoadBalancer address (MetalLB's
    /// elected speaker), or `None` for a ClusterIP Service. With
    /// `externalTrafficPolicy: Local` the speaker is elected among the nodes with an
    /// endpoint of their own, so it is the one announcing now (`None` while none does).
    pub fn announcing_node(&self, service: &str) -> Result<Option<usize>, LabError> {
        let d = self.desired()?;
        let found = d.service(service)?;
        if found.spec.external_traffic_policy == crate::manifest::TrafficPolicy::Local {
            return Ok(self.service_status(service).and_then(|s| s.announced_by));
        }
        Ok(match (found.spec.service_type, &found.external_ip) {
            (ServiceType::LoadBalancer, Some(ip)) => {
                Some(crate::controller::elected_node(*ip, self.inner.names.nodes.len()) + 1)
            }
            _ => None,
        })
    }

    /// The client host namespace (LoadBalancer clients).
    pub fn client_netns(&self) -> &str {
        &self.inner.names.client
    }

    /// Parses multi-document YAML of Deployments, Services and Ingresses (see
    /// [`crate::parse_manifests`]) and applies it, like `kubectl apply -f`.
    pub fn apply_yaml(&self, yaml: &str) -> Result<(), LabError> {
        self.apply(parse_manifests(yaml)?)
    }

    /// Creates or updates Deployments, Services and Ingresses, like `kubectl apply`.
    /// Returns at once; the controller acts on its next tick. A changed Deployment spec
    /// bumps its generation (and a changed pod template starts a rollout). An Ingress
    /// brings its proxy's LoadBalancer Service; its proxy must be installed.
    pub fn apply(&self, objects: Vec<Object>) -> Result<(), LabError> {
        let mut d = self.desired()?;
        for obj in objects {
            match obj {
                Object::Deployment(dep) => {
                    let generation = match d.deployments.get(&dep.name) {
                        Some(old) if old.spec == dep => old.generation,
                        Some(old) => old.generation + 1,
                        None => 1,
                    };
                    d.deployments.insert(
                        dep.name.clone(),
                        DesiredDeployment {
                            spec: dep,
                            generation,
                        },
                    );
                }
                Object::Ingress(ing) => {
                    // Its proxy must be installed; the first of its class brings the
                    // controller's LoadBalancer Service.
                    ing.class.binary()?;
                    let spec = ing.class.service();
                    if !d.services.contains_key(&spec.name) {
                        let (cluster_ip, external_ip) = allocate(&d, &spec)?;
                        let service = DesiredService {
                            spec,
                            cluster_ip,
                            external_ip,
                        };
                        d.services.insert(service.spec.name.clone(), service);
                    }
                    d.ingresses.insert(ing.name.clone(), ing);
                }
                Object::Service(svc) => {
                    let (cip, eip) = match d.services.get(&svc.name) {
                        // Re-applied: keep its addresses, unless it became a LoadBalancer.
                        Some(old) => {
                            let (c, e) = (&old.cluster_ip, &old.external_ip);
                            let e = match (svc.service_type, e) {
                                (ServiceType::LoadBalancer, None) => {
                                    let mut others = d.clone();
                                    others.services.remove(&svc.name);
                                    allocate(&others, &svc)?.1
                                }
                                (ServiceType::LoadBalancer, Some(e)) => Some(*e),
                                (ServiceType::ClusterIp, _) => None,
                            };
                            (*c, e)
                        }
                        None => allocate(&d, &svc)?,
                    };
                    d.services.insert(
                        svc.name.clone(),
                        DesiredService {
                            spec: svc,
                            cluster_ip: cip,
                            external_ip: eip,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Changes the image of a Deployment's (first) container, like
    /// `kubectl set image deployment/NAME CONTAINER=IMAGE`: a rollout starts.
    pub fn set_image(&self, deployment: &str, image: &str) -> Result<(), LabError> {
        self.desired()?.update_deployment(deployment, |dep| {
            dep.template.container.image = image.to_string();
            Ok(())
        })
    }

    /// Scales a Deployment, like `kubectl scale deployment/NAME --replicas=N` (for
    /// example the old side of a Blue/Green pair to 0 after the switch).
    pub fn set_replicas(&self, deployment: &str, replicas: i32) -> Result<(), LabError> {
        if !(0..=10_000).contains(&replicas) {
            return Err(LabError::Invalid(format!(
                "replicas must be 0..=10000, got {replicas}"
            )));
        }
        self.desired()?.update_deployment(deployment, |dep| {
            dep.replicas = replicas;
            Ok(())
        })
    }

    /// Restarts a Deployment like `kubectl rollout restart`: sets the pod
    /// template's `kubectl.kubernetes.io/restartedAt` annotation, so a rollout
    /// starts with the same image.
    pub fn restart(&self, deployment: &str) -> Result<(), LabError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.desired()?.update_deployment(deployment, |dep| {
            // Kubernetes writes RFC 3339; a unique, increasing value is what matters here.
            dep.template.annotations.insert(
                "kubectl.kubernetes.io/restartedAt".into(),
                format!("{}.{:09}", now.as_secs(), now.subsec_nanos()),
            );
            Ok(())
        })
    }

    /// Changes a Deployment's strategy, like `kubectl patch` of `spec.strategy`:
    /// the generation moves on, but no rollout starts (the template is unchanged).
    pub fn set_strategy(&self, deployment: &str, strategy: Strategy) -> Result<(), LabError> {
        if let Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } = strategy
        {
            // The API server's validation, so the lab refuses what a cluster refuses.
            Strategy::rolling(max_surge, max_unavailable).map_err(LabError::Invalid)?;
        }
        self.desired()?.update_deployment(deployment, |dep| {
            dep.strategy = strategy;
            Ok(())
        })
    }

    /// The Deployment as the lab holds it now (its spec, not its status).
    pub fn deployment(&self, name: &str) -> Option<crate::manifest::Deployment> {
        self.desired()
            .ok()?
            .deployments
            .get(name)
            .map(|d| d.spec.clone())
    }

    /// Sets selector labels of a Service (merge: the given keys are set, the others kept),
    /// the Blue/Green switch. Endpoints follow at once, kube-proxy's rules after the
    /// sync delay. Emits `service_selector_changed`.
    pub fn set_selector(&self, service: &str, labels: &Labels) -> Result<(), LabError> {
        let detail = {
            let mut d = self.desired()?;
            let svc = &mut d
                .services
                .get_mut(service)
                .ok_or_else(|| LabError::NotFound(format!("service {service}")))?
                .spec;
            for (k, v) in labels {
                svc.selector.insert(k.clone(), v.clone());
            }
            let sel: Vec<String> = svc
                .selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{service} {}", sel.join(","))
        };
        let subject = Subject {
            service: Some(service.to_string()),
            ..Subject::default()
        };
        self.inner.hub.publish(Event::observed(
            EventKind::ServiceSelectorChanged,
            subject,
            detail,
        ));
        Ok(())
    }

    /// The current status of a Deployment, if it exists and the controller has seen it.
    pub fn deployment_status(&self, name: &str) -> Option<DeploymentStatus> {
        self.status().deployments.get(name).cloned()
    }

    /// The current status of a Service, if it exists and the controller has seen it.
    pub fn service_status(&self, name: &str) -> Option<ServiceStatus> {
        self.status().services.get(name).cloned()
    }

    /// Waits until every Deployment has all its replicas updated and available with no
    /// old ones left, and every Service's endpoints are programmed in kube-proxy's rules
    /// (and announced, for a LoadBalancer with endpoints): the steady state to start
    /// probing from.
    pub async fn wait_available(&self, timeout: Duration) -> Result<(), LabError> {
        let desired = self.desired()?.clone();
        wait_until(
            &self.inner.shared,
            "every Deployment to be available",
            timeout,
            |st| {
                desired.deployments.iter().all(|(n, d)| {
                    st.deployments.get(n).is_some_and(|s| {
                        s.observed_generation >= d.generation
                            && s.complete
                            && s.available_replicas >= s.desired_replicas
                    })
                }) && desired.services.keys().all(|n| {
                    st.services.get(n).is_some_and(|s| {
                        s.programmed_endpoints == s.endpoints
                            && (s.external_ip.is_none() || s.endpoints.is_empty() || s.announced)
                    })
                })
            },
        )
        .await
    }

    /// Waits until the Deployment's rollout is complete as `kubectl rollout status`
    /// defines it: the controller observed the latest generation, all replicas are
    /// updated, no old replicas remain (terminating ones do not count) and all updated
    /// replicas are available.
    pub async fn wait_rollout_complete(
        &self,
        deployment: &str,
        timeout: Duration,
    ) -> Result<(), LabError> {
        let generation = self.desired()?.deployment(deployment)?.generation;
        let what = format!("deployment {deployment} rollout to complete");
        wait_until(&self.inner.shared, &what, timeout, |st| {
            st.deployments
                .get(deployment)
                .is_some_and(|s| s.observed_generation >= generation && s.complete)
        })
        .await
    }

    /// Where to probe `service` from: for a LoadBalancer Service its external address from
    /// the client namespace, for a ClusterIP Service its ClusterIP from the node namespace.
    pub fn probe_target(&self, service: &str) -> Result<ProbeTarget, LabError> {
        let d = self.desired()?;
        let found = d.service(service)?;
        let (svc, cip, eip) = (&found.spec, &found.cluster_ip, &found.external_ip);
        let port = svc.ports[0].port;
        let (ip, netns) = match (svc.service_type, eip) {
            (ServiceType::LoadBalancer, Some(e)) => (*e, self.inner.names.client.clone()),
            _ => (*cip, self.inner.names.nodes[0].clone()),
        };
        let addr = SocketAddr::from((ip, port));
        Ok(ProbeTarget {
            url: format!("http://{addr}/test/version"),
            addr,
            netns,
        })
    }

    /// The URL a client of `service` uses: `http://ADDR:PORT/test/version`, where ADDR is
    /// the LoadBalancer address of a LoadBalancer Service, else the ClusterIP. Probe it
    /// from a thread that entered the lab through [`probe_core::Vantage::enter`].
    pub fn service_url(&self, service: &str) -> Result<String, LabError> {
        Ok(self.probe_target(service)?.url)
    }

    /// The namespace from which `url` is reached as a client would reach it: the client
    /// host for a LoadBalancer address, the node for a ClusterIP.
    pub fn netns_for_url(&self, url: &str) -> Result<String, LabError> {
        let (_, via_load_balancer) = self.service_at(url)?;
        Ok(if via_load_balancer {
            self.inner.names.client.clone()
        } else {
            self.inner.names.nodes[0].clone()
        })
    }

    /// The name of the Service whose ClusterIP or LoadBalancer address `url` names.
    pub fn service_for_url(&self, url: &str) -> Result<String, LabError> {
        self.service_at(url).map(|(name, _)| name)
    }

    /// The Service whose address `url` names, and whether that address is its
    /// LoadBalancer's (reached from the client host) rather than its ClusterIP.
    fn service_at(&self, url: &str) -> Result<(String, bool), LabError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| LabError::Invalid(format!("{url:?} is not a URL: {e}")))?;
        let ip: Option<Ipv4Addr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(ip),
            _ => None,
        };
        let d = self.desired()?;
        let found = ip.and_then(|ip| {
            d.services.values().find_map(|found| {
                let (svc, cip, eip) = (&found.spec, &found.cluster_ip, &found.external_ip);
                if svc.service_type == ServiceType::LoadBalancer && *eip == Some(ip) {
                    Some((svc.name.clone(), true))
                } else if *cip == ip {
                    Some((svc.name.clone(), false))
                } else {
                    None
                }
            })
        });
        found.ok_or_else(|| {
            LabError::NotFound(format!(
                "{url}: no Service address of lab {}",
                self.inner.names.run_id
            ))
        })
    }

    /// Waits until every Deployment's rollout is complete (see
    /// [`Lab::wait_rollout_complete`]).
    pub async fn wait_all_rollouts_complete(&self, timeout: Duration) -> Result<(), LabError> {
        all_rollouts_complete(self.inner.shared.clone(), timeout).await
    }

    /// Stops the controller, kills every pod and removes every namespace of this run.
    /// Idempotent: a second call (or one from another handle) waits until the lab is
    /// gone and returns `Ok`. Other handles stay valid; their waits report that the lab
    /// has stopped.
    pub async fn shutdown(&self) -> Result<(), LabError> {
        self.inner.shared.stop.store(true, Ordering::SeqCst);
        let handle = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        match handle {
            Some(h) => tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| LabError::Setup(format!("shutdown: {e}")))?
                .map_err(|_| LabError::Setup("the lab controller thread panicked".into()))?,
            None => {
                // Another caller is joining the thread: wait for its teardown (bounded).
                for _ in 0..3000 {
                    if status(&self.inner.shared).stopped {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(())
            }
        }
    }

    /// The pods' port behind `service` (its first port's targetPort).
    pub(crate) fn target_port(&self, service: &str) -> Result<u16, LabError> {
        Ok(self.desired()?.service(service)?.spec.ports[0].target_port)
    }

    pub(crate) fn desired(&self) -> Result<std::sync::MutexGuard<'_, Desired>, LabError> {
        self.inner
            .shared
            .desired
            .lock()
            .map_err(|_| LabError::Setup("lab state poisoned".into()))
    }

    fn status(&self) -> Status {
        status(&self.inner.shared)
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    pub(crate) fn names(&self) -> &Names {
        &self.inner.names
    }

    pub(crate) fn hub(&self) -> &EventHub {
        &self.inner.hub
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_can_be_shared_across_tasks() {
        fn send_sync<T: Clone + Send + Sync + 'static>() {}
        send_sync::<Lab>();
        send_sync::<ProbeTarget>();
        fn error<T: std::error::Error + Send + Sync + 'static>() {}
        error::<LabError>();
    }
}
