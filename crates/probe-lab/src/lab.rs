//! The lab's public handle: builds the namespaces, runs the controller thread, and tears
//! everything down on shutdown, on drop (so also when a panic unwinds) and, through
//! `PR_SET_PDEATHSIG` and [`crate::cleanup_leftovers`], after the process was killed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{
    LabConfig, CLIENT_IP, FIRST_CLUSTER_IP, FIRST_EXTERNAL_IP, NODE_BRIDGE_IP, NODE_CLIENT_IP,
    SERVICE_CIDR,
};
use crate::controller::{DeploymentStatus, Desired, Names, ServiceStatus, Shared, Status, World};
use crate::manifest::{IntOrPercent, Labels, Object, ServiceType, Strategy};
use crate::netns::{destroy_netns, ip_batch, run, sysctls, NAME_PREFIX};
use crate::{EventSink, LabError};

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

/// A running lab: one node namespace with a pod bridge, a client host namespace on an
/// L2 segment with it, and a controller that turns Deployments and Services into pods,
/// iptables rules and address announcements.
///
/// ```no_run
/// # async fn demo() -> Result<(), probe_lab::LabError> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// let sink: probe_lab::EventSink = Arc::new(|kind, detail| println!("{kind}: {detail}"));
/// let lab = probe_lab::Lab::start(probe_lab::LabConfig::default(), sink).await?;
/// lab.apply(probe_lab::parse_manifests(&std::fs::read_to_string("rolling.yaml").unwrap())?)?;
/// lab.wait_available(Duration::from_secs(60)).await?;
/// let target = lab.probe_target("backend-svc")?; // probe target.url from target.netns
/// lab.set_image("backend-deployment", "shop/backend:v2")?;
/// lab.wait_rollout_complete("backend-deployment", Duration::from_secs(120)).await?;
/// lab.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Lab {
    shared: Arc<Shared>,
    names: Names,
    sink: EventSink,
    thread: Mutex<Option<JoinHandle<Result<(), LabError>>>>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("run_id", &self.names.run_id)
            .finish()
    }
}

fn build_network(cfg: &LabConfig, names: &Names) -> Result<(), LabError> {
    run("ip", &["netns", "add", &names.node], None)?;
    run("ip", &["netns", "add", &names.client], None)?;
    ip_batch(
        Some(&names.node),
        &[
            "link set lo up".into(),
            "link add br0 type bridge forward_delay 0".into(),
            format!("addr add {NODE_BRIDGE_IP}/16 dev br0"),
            "link set br0 up".into(),
            // The ClusterIP range is routed onto the bridge; without it a client in the
            // node gets ENETUNREACH before NAT could act. No default route: no uplink.
            format!("route add {SERVICE_CIDR} dev br0"),
            format!(
                "link add lb0 type veth peer name eth0 netns {}",
                names.client
            ),
            format!("addr add {NODE_CLIENT_IP}/24 dev lb0"),
            "link set lb0 up".into(),
        ],
    )?;
    ip_batch(
        Some(&names.client),
        &[
            "link set lo up".into(),
            format!("addr add {CLIENT_IP}/24 dev eth0"),
            "link set eth0 up".into(),
        ],
    )?;
    sysctls(&names.node, &[("net/ipv4/ip_forward", "1".to_string())])?;
    if !cfg.icmp_ratelimit {
        let lift = [
            ("net/ipv4/icmp_ratelimit", "0".to_string()),
            ("net/ipv4/icmp_msgs_per_sec", "1000000".to_string()),
            ("net/ipv4/icmp_msgs_burst", "1000000".to_string()),
        ];
        sysctls(&names.node, &lift)?;
        sysctls(&names.client, &lift)?;
    }
    let n = cfg.client_neigh;
    let base = "net/ipv4/neigh/eth0";
    sysctls(
        &names.client,
        &[
            (
                &format!("{base}/base_reachable_time_ms"),
                n.base_reachable_time_ms.to_string(),
            ),
            (
                &format!("{base}/delay_first_probe_time"),
                n.delay_first_probe_time_s.to_string(),
            ),
            (
                &format!("{base}/retrans_time_ms"),
                n.retrans_time_ms.to_string(),
            ),
            (
                &format!("{base}/ucast_solicit"),
                n.ucast_solicit.to_string(),
            ),
            (
                &format!("{base}/mcast_solicit"),
                n.mcast_solicit.to_string(),
            ),
            (
                &format!("{base}/unres_qlen_bytes"),
                n.unres_qlen_bytes.to_string(),
            ),
        ],
    )?;
    // Start with kube-proxy's empty rule set (so `iptables-save` shows the chains).
    run(
        "ip",
        &["netns", "exec", &names.node, "iptables-restore"],
        Some(&crate::proxy::render(&Default::default())),
    )?;
    Ok(())
}

fn destroy_fixed(names: &Names) -> Result<(), LabError> {
    let a = destroy_netns(&names.client);
    let b = destroy_netns(&names.node);
    a.and(b)
}

impl Lab {
    /// Builds the lab's namespaces and starts its controller.
    ///
    /// Fails with [`LabError::NotRoot`] without root, and with [`LabError::Setup`] /
    /// [`LabError::Command`] if a namespace, link or rule cannot be created (whatever was
    /// created is removed again).
    pub async fn start(config: LabConfig, sink: EventSink) -> Result<Lab, LabError> {
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
        if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
            return Err(LabError::Invalid(format!(
                "time_scale must be > 0, got {}",
                config.time_scale
            )));
        }
        if config.app_command.is_empty() {
            return Err(LabError::Invalid("app_command is empty".into()));
        }
        let names = Names {
            run_id: config.run_id.clone(),
            node: format!("{}-node", config.run_id),
            client: format!("{}-client", config.run_id),
        };
        for ns in [&names.node, &names.client] {
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
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (t_names, t_shared, t_sink) = (names.clone(), shared.clone(), sink.clone());
        let thread = std::thread::Builder::new()
            .name(format!("{}-ctl", config.run_id))
            .spawn(move || -> Result<(), LabError> {
                if let Err(e) = build_network(&config, &t_names) {
                    let _ = destroy_fixed(&t_names);
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
                let _ = tx.send(Ok(()));
                let mut world = World::new(config, t_sink, t_shared.clone(), t_names.clone());
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
                shared,
                names,
                sink,
                thread: Mutex::new(Some(thread)),
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
        &self.names.run_id
    }

    /// The node namespace (pods' bridge, kube-proxy's rules, ClusterIP clients).
    pub fn node_netns(&self) -> &str {
        &self.names.node
    }

    /// The client host namespace (LoadBalancer clients).
    pub fn client_netns(&self) -> &str {
        &self.names.client
    }

    /// Creates or updates Deployments and Services, like `kubectl apply`. Returns at once;
    /// the controller acts on its next tick. A changed Deployment spec bumps its
    /// generation (and a changed pod template starts a rollout).
    pub fn apply(&self, objects: Vec<Object>) -> Result<(), LabError> {
        let mut d = self.desired()?;
        for obj in objects {
            match obj {
                Object::Deployment(dep) => {
                    let generation = match d.deployments.get(&dep.name) {
                        Some((old, g)) if *old == dep => *g,
                        Some((_, g)) => g + 1,
                        None => 1,
                    };
                    d.deployments.insert(dep.name.clone(), (dep, generation));
                }
                Object::Service(svc) => {
                    let (cip, eip) = match d.services.get(&svc.name) {
                        // Re-applied: keep its addresses, unless it became a LoadBalancer.
                        Some((_, c, e)) => {
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
                    d.services.insert(svc.name.clone(), (svc, cip, eip));
                }
            }
        }
        Ok(())
    }

    /// Changes the image of a Deployment's (first) container, like
    /// `kubectl set image deployment/NAME CONTAINER=IMAGE`: a rollout starts.
    pub fn set_image(&self, deployment: &str, image: &str) -> Result<(), LabError> {
        let mut d = self.desired()?;
        let (dep, generation) = d
            .deployments
            .get_mut(deployment)
            .ok_or_else(|| LabError::NotFound(format!("deployment {deployment}")))?;
        if dep.template.container.image != image {
            dep.template.container.image = image.to_string();
            *generation += 1;
        }
        Ok(())
    }

    /// Scales a Deployment, like `kubectl scale deployment/NAME --replicas=N` (for
    /// example the old side of a Blue/Green pair to 0 after the switch).
    pub fn set_replicas(&self, deployment: &str, replicas: i32) -> Result<(), LabError> {
        if !(0..=10_000).contains(&replicas) {
            return Err(LabError::Invalid(format!(
                "replicas must be 0..=10000, got {replicas}"
            )));
        }
        let mut d = self.desired()?;
        let (dep, generation) = d
            .deployments
            .get_mut(deployment)
            .ok_or_else(|| LabError::NotFound(format!("deployment {deployment}")))?;
        if dep.replicas != replicas {
            dep.replicas = replicas;
            *generation += 1;
        }
        Ok(())
    }

    /// Restarts a Deployment like `kubectl rollout restart`: sets the pod
    /// template's `kubectl.kubernetes.io/restartedAt` annotation, so a rollout
    /// starts with the same image.
    pub fn restart(&self, deployment: &str) -> Result<(), LabError> {
        let mut d = self.desired()?;
        let (dep, generation) = d
            .deployments
            .get_mut(deployment)
            .ok_or_else(|| LabError::NotFound(format!("deployment {deployment}")))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // Kubernetes writes RFC 3339; a unique, increasing value is what matters here.
        dep.template.annotations.insert(
            "kubectl.kubernetes.io/restartedAt".into(),
            format!("{}.{:09}", now.as_secs(), now.subsec_nanos()),
        );
        *generation += 1;
        Ok(())
    }

    /// Changes a Deployment's strategy, like `kubectl patch` of `spec.strategy`:
    /// the generation moves on, but no rollout starts (the template is unchanged).
    pub fn set_strategy(&self, deployment: &str, strategy: Strategy) -> Result<(), LabError> {
        if let Strategy::RollingUpdate {
            max_surge,
            max_unavailable,
        } = strategy
        {
            let zero =
                |v: IntOrPercent| matches!(v, IntOrPercent::Int(0) | IntOrPercent::Percent(0));
            if zero(max_surge) && zero(max_unavailable) {
                return Err(LabError::Invalid(
                    "maxSurge and maxUnavailable cannot both be 0".into(),
                ));
            }
        }
        let mut d = self.desired()?;
        let (dep, generation) = d
            .deployments
            .get_mut(deployment)
            .ok_or_else(|| LabError::NotFound(format!("deployment {deployment}")))?;
        if dep.strategy != strategy {
            dep.strategy = strategy;
            *generation += 1;
        }
        Ok(())
    }

    /// The Deployment as the lab holds it now (its spec, not its status).
    pub fn deployment(&self, name: &str) -> Option<crate::manifest::Deployment> {
        self.desired()
            .ok()?
            .deployments
            .get(name)
            .map(|(d, _)| d.clone())
    }

    /// Sets selector labels of a Service (merge: the given keys are set, the others kept),
    /// the Blue/Green switch. Endpoints follow at once, kube-proxy's rules after the
    /// sync delay. Emits `service_selector_changed`.
    pub fn set_selector(&self, service: &str, labels: &Labels) -> Result<(), LabError> {
        let detail = {
            let mut d = self.desired()?;
            let (svc, _, _) = d
                .services
                .get_mut(service)
                .ok_or_else(|| LabError::NotFound(format!("service {service}")))?;
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
        (self.sink)("service_selector_changed", &detail);
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
        self.wait_until("every Deployment to be available", timeout, |st| {
            desired.deployments.iter().all(|(n, (_, g))| {
                st.deployments.get(n).is_some_and(|s| {
                    s.observed_generation >= *g
                        && s.complete
                        && s.available_replicas >= s.desired_replicas
                })
            }) && desired.services.keys().all(|n| {
                st.services.get(n).is_some_and(|s| {
                    s.programmed_endpoints == s.endpoints
                        && (s.external_ip.is_none() || s.endpoints.is_empty() || s.announced)
                })
            })
        })
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
        let generation = self
            .desired()?
            .deployments
            .get(deployment)
            .map(|(_, g)| *g)
            .ok_or_else(|| LabError::NotFound(format!("deployment {deployment}")))?;
        let what = format!("deployment {deployment} rollout to complete");
        self.wait_until(&what, timeout, |st| {
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
        let (svc, cip, eip) = d
            .services
            .get(service)
            .ok_or_else(|| LabError::NotFound(format!("service {service}")))?;
        let port = svc.ports[0].port;
        let (ip, netns) = match (svc.service_type, eip) {
            (ServiceType::LoadBalancer, Some(e)) => (*e, self.names.client.clone()),
            _ => (*cip, self.names.node.clone()),
        };
        let addr = SocketAddr::from((ip, port));
        Ok(ProbeTarget {
            url: format!("http://{addr}/test/version"),
            addr,
            netns,
        })
    }

    /// Stops the controller, kills every pod and removes every namespace of this run.
    pub async fn shutdown(self) -> Result<(), LabError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        match handle {
            None => Ok(()),
            Some(h) => tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| LabError::Setup(format!("shutdown: {e}")))?
                .map_err(|_| LabError::Setup("the lab controller thread panicked".into()))?,
        }
    }

    fn desired(&self) -> Result<std::sync::MutexGuard<'_, Desired>, LabError> {
        self.shared
            .desired
            .lock()
            .map_err(|_| LabError::Setup("lab state poisoned".into()))
    }

    fn status(&self) -> Status {
        self.shared
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&Status) -> bool,
    ) -> Result<(), LabError> {
        let deadline = Instant::now() + timeout;
        // Let the controller take at least one full tick after the last change.
        tokio::time::sleep(crate::controller::TICK * 3).await;
        loop {
            let st = self.status();
            if st.stopped {
                return Err(LabError::Setup("the lab has stopped".into()));
            }
            if cond(&st) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let mut why = String::new();
                if let Some(e) = &st.last_pod_exit {
                    why.push_str(&format!("; {e}"));
                }
                if let Some(e) = &st.last_error {
                    why.push_str(&format!("; last error: {e}"));
                }
                return Err(LabError::Timeout(format!(
                    "timed out after {:.1}s waiting for {what}{why}",
                    timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn allocate(
    d: &Desired,
    svc: &crate::manifest::Service,
) -> Result<(Ipv4Addr, Option<Ipv4Addr>), LabError> {
    let used_c: Vec<Ipv4Addr> = d.services.values().map(|(_, c, _)| *c).collect();
    let used_e: Vec<Ipv4Addr> = d.services.values().filter_map(|(_, _, e)| *e).collect();
    let cip = match svc.cluster_ip {
        Some(ip) => {
            let o = ip.octets();
            if o[0] != 10 || o[1] != 96 || used_c.contains(&ip) {
                return Err(LabError::Invalid(format!(
                    "service {}: clusterIP {ip} is not free in {SERVICE_CIDR}",
                    svc.name
                )));
            }
            ip
        }
        None => (0..60_000u32)
            .map(|i| Ipv4Addr::from(u32::from(FIRST_CLUSTER_IP) + i))
            .find(|ip| !used_c.contains(ip))
            .ok_or_else(|| LabError::Invalid("no free ClusterIP".into()))?,
    };
    let eip = if svc.service_type == ServiceType::LoadBalancer {
        Some(match svc.load_balancer_ip {
            Some(ip) => {
                let o = ip.octets();
                if o[..3] != [172, 31, 254] || !(10..=250).contains(&o[3]) || used_e.contains(&ip) {
                    return Err(LabError::Invalid(format!(
                        "service {}: loadBalancerIP {ip} is not free in the lab's pool 172.31.254.10-250",
                        svc.name
                    )));
                }
                ip
            }
            None => (0..241u32)
                .map(|i| Ipv4Addr::from(u32::from(FIRST_EXTERNAL_IP) + i))
                .find(|ip| !used_e.contains(ip))
                .ok_or_else(|| LabError::Invalid("no free LoadBalancer address".into()))?,
        })
    } else {
        None
    };
    Ok((cip, eip))
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Lab>();
        send_sync::<ProbeTarget>();
    }

    #[test]
    fn addresses_are_allocated_from_the_lab_ranges() {
        let svc = |name: &str, lb: bool| crate::manifest::Service {
            name: name.into(),
            selector: Default::default(),
            ports: vec![],
            service_type: if lb {
                ServiceType::LoadBalancer
            } else {
                ServiceType::ClusterIp
            },
            cluster_ip: None,
            load_balancer_ip: None,
        };
        let mut d = Desired::default();
        let (c1, e1) = allocate(&d, &svc("a", true)).unwrap();
        assert_eq!((c1, e1), (FIRST_CLUSTER_IP, Some(FIRST_EXTERNAL_IP)));
        d.services.insert("a".into(), (svc("a", true), c1, e1));
        let (c2, e2) = allocate(&d, &svc("b", false)).unwrap();
        assert_eq!(c2, Ipv4Addr::new(10, 96, 0, 11));
        assert_eq!(e2, None);
        let mut bad = svc("c", true);
        bad.load_balancer_ip = Some(Ipv4Addr::new(192, 168, 1, 1));
        assert!(allocate(&d, &bad).is_err());
    }
}
