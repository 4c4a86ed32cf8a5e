//! The control plane: Deployment and ReplicaSet controllers, a kubelet, the EndpointSlice
//! controller, and the delayed hand-off to kube-proxy and the L2 announcer.
//!
//! It runs on one dedicated thread (see [`crate::Lab`]) as a level-triggered loop, like
//! Kubernetes' controllers: every tick (20 ms) it compares what is with what should be and
//! takes the next step. Keeping it on one long-lived thread matters for more than
//! simplicity: pods are spawned from it with `PR_SET_PDEATHSIG`, so if the lab's process
//! dies, the kernel kills every pod process with it.
//!
//! One role per file, as in Kubernetes:
//!
//! - [`kubelet`]: a pod's lifecycle on the node: sandbox, process, readiness probes,
//!   restarts, SIGTERM/SIGKILL, teardown.
//! - [`deployment`]: the Deployment and ReplicaSet controllers (strategies, surge and
//!   unavailability budgets, pod creation and deletion order).
//! - [`endpoints`]: the EndpointSlice controller and the delayed hand-off to kube-proxy's
//!   rules and the L2 announcer.
//! - this file: the shared state, the loop, and the status that [`crate::Lab`] reads.
//!
//! Every action is published as a typed [`probe_core::Event`] on the lab's
//! [`probe_core::EventHub`], with the same kinds and subject fields a Kubernetes watch
//! gives for the same happening; the `detail` strings are for people.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use probe_core::{Event, EventHub, EventKind, Subject};

use crate::config::LabConfig;
use crate::error::LabError;
use crate::hash::fnv1a;
use crate::manifest::{Deployment, Labels, PodTemplate, Service, ServiceType};
use crate::netns::destroy_netns;
use crate::proxy::ProxyState;

mod deployment;
mod endpoints;
mod ingress;
mod kubelet;
mod mesh;
pub(crate) mod waits;

pub(crate) use endpoints::elected_node;
pub(crate) use kubelet::http_get_ok_as;

/// A pod whose app exited by itself this many times is in CrashLoopBackOff, as
/// `kubectl get pods` shows from the second exit on.
pub(crate) const CRASH_LOOP_EXITS: u32 = 2;

/// The controller's tick.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// What the user asked for (written by [`crate::Lab`], read by the controller).
#[derive(Debug, Default, Clone)]
pub(crate) struct Desired {
    /// By name.
    pub deployments: BTreeMap<String, DesiredDeployment>,
    /// By name.
    pub services: BTreeMap<String, DesiredService>,
    /// By name: the Ingresses whose proxies the lab runs.
    pub ingresses: BTreeMap<String, crate::manifest::Ingress>,
}

impl Desired {
    /// The Deployment named `name`, or [`LabError::NotFound`].
    pub(crate) fn deployment(&self, name: &str) -> Result<&DesiredDeployment, LabError> {
        self.deployments
            .get(name)
            .ok_or_else(|| LabError::NotFound(format!("deployment {name}")))
    }

    /// The Service named `name`, or [`LabError::NotFound`].
    pub(crate) fn service(&self, name: &str) -> Result<&DesiredService, LabError> {
        self.services
            .get(name)
            .ok_or_else(|| LabError::NotFound(format!("service {name}")))
    }

    /// Changes the spec of the Deployment named `name` with `change`; if the spec is
    /// different afterwards, its generation moves on (the API server's
    /// `metadata.generation`), which is what the controller and every wait watch.
    pub(crate) fn update_deployment<T>(
        &mut self,
        name: &str,
        change: impl FnOnce(&mut Deployment) -> Result<T, LabError>,
    ) -> Result<T, LabError> {
        let d = self
            .deployments
            .get_mut(name)
            .ok_or_else(|| LabError::NotFound(format!("deployment {name}")))?;
        let before = d.spec.clone();
        let out = change(&mut d.spec)?;
        if d.spec != before {
            d.generation += 1;
        }
        Ok(out)
    }
}

/// A Deployment as applied, with its `metadata.generation`.
#[derive(Debug, Clone)]
pub(crate) struct DesiredDeployment {
    /// Its spec.
    pub spec: Deployment,
    /// Bumped by every change of the spec.
    pub generation: u64,
}

/// A Service as applied, with the addresses the lab gave it.
#[derive(Debug, Clone)]
pub(crate) struct DesiredService {
    /// Its spec.
    pub spec: Service,
    /// Its ClusterIP.
    pub cluster_ip: Ipv4Addr,
    /// Its LoadBalancer address (`None` for a ClusterIP Service).
    pub external_ip: Option<Ipv4Addr>,
}

/// The state of one Deployment, as `kubectl get deployment -o yaml` would show it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// `metadata.generation`: bumped by every change of the spec.
    pub generation: u64,
    /// The generation the controller has acted on.
    pub observed_generation: u64,
    /// `spec.replicas`.
    pub desired_replicas: i32,
    /// `status.replicas`: non-terminating pods of all its ReplicaSets.
    pub replicas: i32,
    /// `status.updatedReplicas`: non-terminating pods of the current template.
    pub updated_replicas: i32,
    /// `status.readyReplicas`.
    pub ready_replicas: i32,
    /// `status.availableReplicas`: ready for at least `minReadySeconds`.
    pub available_replicas: i32,
    /// Pods being terminated (not counted above).
    pub terminating: i32,
    /// Whether the rollout is complete as `kubectl rollout status` defines it.
    pub complete: bool,
}

/// The state of one Service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceStatus {
    /// The ClusterIP.
    pub cluster_ip: Option<Ipv4Addr>,
    /// The LoadBalancer address (LoadBalancer Services only).
    pub external_ip: Option<Ipv4Addr>,
    /// Ready endpoints now (the EndpointSlice).
    pub endpoints: Vec<Ipv4Addr>,
    /// Endpoints that kube-proxy's rules currently send traffic to.
    pub programmed_endpoints: Vec<Ipv4Addr>,
    /// Whether the node currently answers ARP for the external address.
    pub announced: bool,
    /// The node (1-based) that answers ARP for it now, if one does.
    pub announced_by: Option<usize>,
    /// Where each node serves kube-proxy's health check for it
    /// (`externalTrafficPolicy: Local` only).
    pub health_check_node_port: Option<u16>,
}

/// Everything the API reads.
#[derive(Debug, Default, Clone)]
pub(crate) struct Status {
    pub deployments: BTreeMap<String, DeploymentStatus>,
    pub services: BTreeMap<String, ServiceStatus>,
    /// Per Deployment, its rollout history: (revision, template), oldest first, as
    /// `kubectl rollout history` lists it.
    pub history: BTreeMap<String, Vec<(u64, PodTemplate)>>,
    /// Per Deployment, the address and app port of each running, non-terminating pod.
    pub pods: BTreeMap<String, Vec<(Ipv4Addr, u16)>>,
    /// The last error of a lab action (a failed command), for diagnostics.
    pub last_error: Option<String>,
    /// The last unexpected pod process exit.
    pub last_pod_exit: Option<String>,
    /// A pod in CrashLoopBackOff (its app keeps exiting by itself), as one line naming
    /// the pod and its last exit status: a wait for it to serve would never end.
    pub crash_loop: Option<String>,
    /// Whether every client pod's mesh sidecar catches its traffic (true without one).
    pub mesh_ready: bool,
    /// Set when the controller thread has stopped.
    pub stopped: bool,
}

pub(crate) struct Shared {
    pub desired: Mutex<Desired>,
    pub status: Mutex<Status>,
    pub stop: AtomicBool,
}

/// Names of the lab's fixed namespaces.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub run_id: String,
    /// Node namespaces, node 1 first: `<run>-node1`, `<run>-node2`, ...
    pub nodes: Vec<String>,
    /// The client host of LoadBalancer addresses.
    pub client: String,
    /// The LAN switch joining the nodes and the client host.
    pub lan: String,
    /// Per node, its client pod (the `--from pod:N` vantage point).
    pub client_pods: Vec<String>,
}

impl Names {
    pub(crate) fn new(run_id: &str, nodes: usize) -> Names {
        Names {
            run_id: run_id.to_string(),
            nodes: (1..=nodes).map(|n| format!("{run_id}-node{n}")).collect(),
            client: format!("{run_id}-client"),
            lan: format!("{run_id}-lan"),
            client_pods: (1..=nodes).map(|n| format!("{run_id}-cpod{n}")).collect(),
        }
    }

    /// Every fixed namespace.
    pub(crate) fn all(&self) -> impl Iterator<Item = &String> {
        self.nodes
            .iter()
            .chain(&self.client_pods)
            .chain([&self.client, &self.lan])
    }
}

/// The name events give node `node` (1-based), as a Kubernetes node name: `node1`.
pub(crate) fn node_name(node: usize) -> String {
    format!("node{node}")
}

/// One node's kube-proxy and L2 speaker: the rule states waiting out its sync delay, the
/// state its rules show now, and the addresses it announces.
#[derive(Default)]
struct NodeProxy {
    queue: VecDeque<(Instant, ProxyState)>,
    applied: ProxyState,
    announced: BTreeSet<Ipv4Addr>,
    /// Its health check servers, by Service and port (`Local` Services only).
    health: BTreeMap<(String, u16), crate::healthcheck::HealthServer>,
}

#[derive(Debug)]
struct ReplicaSet {
    id: u64,
    deployment: String,
    hash: String,
    template: PodTemplate,
    min_ready_seconds: u32,
    replicas: i32,
    /// `deployment.kubernetes.io/revision`: set when it becomes the Deployment's new
    /// ReplicaSet, one above every other revision of the Deployment (a rollback moves the
    /// old ReplicaSet to the top again).
    revision: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Created, sandbox and process not started yet.
    Pending,
    /// Process running.
    Running,
    /// Process exited.
    Exited,
}

struct Pod {
    id: u64,
    name: String,
    netns: String,
    veth: String,
    ip: Ipv4Addr,
    rs: u64,
    labels: Labels,
    template: PodTemplate,
    version: String,
    created: Instant,
    phase: Phase,
    sandbox: bool,
    child: Option<Child>,
    started_at: Option<Instant>,
    exited_at: Option<Instant>,
    restart_at: Option<Instant>,
    restarts: u32,
    /// How its app last exited, when it exited by itself.
    last_exit: Option<String>,
    ready: bool,
    ready_since: Option<Instant>,
    probe_ok: u32,
    probe_fail: u32,
    probe_stop: Option<Arc<AtomicBool>>,
    terminating_since: Option<Instant>,
    /// When the kubelet began killing it (the preStop hook, then SIGTERM).
    kill_started: Option<Instant>,
    /// When its preStop sleep ends and SIGTERM is due.
    sigterm_due: Option<Instant>,
    sigterm_at: Option<Instant>,
    sigkill_sent: bool,
    /// Its inbound Envoy, with a mesh.
    sidecar: Option<crate::mesh::Sidecar>,
}

impl Pod {
    /// For people: `NAME IP VERSION`.
    fn detail(&self) -> String {
        format!("{} {} {}", self.name, self.ip, self.version)
    }
    /// As a Kubernetes watch names a pod: name, address, version, node.
    fn subject(&self, node: &str) -> Subject {
        Subject::pod(self.name.clone(), Some(IpAddr::V4(self.ip)))
            .with_version(self.version.clone())
            .with_node(node)
    }
    fn active(&self) -> bool {
        self.terminating_since.is_none()
    }
    fn available(&self, min_ready: Duration, now: Instant) -> bool {
        self.active() && self.ready && self.ready_since.is_some_and(|t| now >= t + min_ready)
    }
}

#[derive(Default)]
struct Track {
    hash: Option<String>,
    rollout_active: bool,
    observed: u64,
}

pub(crate) struct World {
    cfg: LabConfig,
    /// The resolved command every pod runs.
    app: Vec<String>,
    hub: EventHub,
    shared: Arc<Shared>,
    names: Names,
    pods: Vec<Pod>,
    rss: Vec<ReplicaSet>,
    next_id: u64,
    /// Per node, the next offset in its pod range.
    next_ip: Vec<u32>,
    tracks: BTreeMap<String, Track>,
    endpoints: BTreeMap<String, Vec<(Ipv4Addr, String)>>,
    /// Per node, node 1 first.
    proxies: Vec<NodeProxy>,
    probe_tx: Sender<(u64, bool)>,
    probe_rx: Receiver<(u64, bool)>,
    last_error: Option<String>,
    last_pod_exit: Option<String>,
    /// The ingress controllers and their proxies.
    ingress: ingress::Ingresses,
    /// The client pods' mesh sidecars.
    mesh: mesh::MeshSidecars,
}

const HASH_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn encode(mut v: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = HASH_ALPHABET[(v % HASH_ALPHABET.len() as u64) as usize] as char;
            v /= HASH_ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// `pod-template-hash`: a stable hash of the template, 10 characters like Kubernetes'.
fn template_hash(t: &PodTemplate) -> String {
    encode(fnv1a(&format!("{t:?}"), 0), 10)
}

/// The port the lab's app listens on in a pod of this template (its `PORT` env).
fn app_port(t: &PodTemplate) -> u16 {
    t.container
        .env
        .iter()
        .find(|(k, _)| k == "PORT")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(8080)
}

/// Seconds from a manifest, times the lab's `time_scale`.
fn scaled(secs: u32, scale: f64) -> Duration {
    Duration::from_secs_f64(f64::from(secs) * scale)
}

impl World {
    pub(crate) fn new(
        cfg: LabConfig,
        app: Vec<String>,
        hub: EventHub,
        shared: Arc<Shared>,
        names: Names,
    ) -> World {
        let (probe_tx, probe_rx) = std::sync::mpsc::channel();
        let nodes = names.nodes.len();
        World {
            cfg,
            app,
            hub,
            shared,
            names,
            pods: Vec::new(),
            rss: Vec::new(),
            next_id: 0,
            next_ip: vec![0; nodes],
            tracks: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            proxies: (0..nodes).map(|_| NodeProxy::default()).collect(),
            probe_tx,
            probe_rx,
            last_error: None,
            last_pod_exit: None,
            ingress: Default::default(),
            mesh: Default::default(),
        }
    }

    fn emit(&self, kind: EventKind, subject: Subject, detail: String) {
        self.hub.publish(Event::observed(kind, subject, detail));
    }

    /// A pod event, with the pod's typed subject and its `NAME IP VERSION` detail.
    fn emit_pod(&self, kind: EventKind, pod: &Pod) {
        self.emit(kind, pod.subject(&self.node_name_of(pod)), pod.detail());
    }

    /// The namespace of the node `pod` runs on.
    fn node_ns(&self, pod: &Pod) -> &str {
        &self.names.nodes[crate::config::node_of_pod_ip(pod.ip) - 1]
    }

    /// The name of the node `pod` runs on (`node1`, ...).
    fn node_name_of(&self, pod: &Pod) -> String {
        node_name(crate::config::node_of_pod_ip(pod.ip))
    }

    /// `endpoint_terminating` for each Service endpoint of a pod that begins terminating,
    /// as the EndpointSlice controller sets the endpoint's `terminating` condition (a
    /// Kubernetes watch gives the same event): kube-proxy sends it no new connections.
    /// The endpoint then leaves the lab's ready set (`endpoint_removed`) in the same tick.
    fn emit_endpoint_terminating(&self, pod: &Pod) {
        // Every node's rules hold the same Services; node 1's newest state names the port.
        let node1 = &self.proxies[0];
        let rules = node1.queue.back().map(|(_, s)| s);
        for (service, eps) in &self.endpoints {
            if !eps.iter().any(|(ip, _)| *ip == pod.ip) {
                continue;
            }
            let port = rules
                .unwrap_or(&node1.applied)
                .services
                .iter()
                .find(|s| &s.name == service)
                .and_then(|s| s.ports.first().map(|(_, target)| *target));
            let subject = Subject::endpoint(service.clone(), IpAddr::V4(pod.ip), port)
                .with_pod(pod.name.clone());
            let detail = format!(
                "{service} {}:{} {}",
                pod.ip,
                port.map(|p| p.to_string()).unwrap_or_default(),
                pod.name
            );
            self.emit(EventKind::EndpointTerminating, subject, detail);
        }
    }

    /// A rollout event: `DEPLOYMENT IMAGE`, with the new image's tag as the version.
    fn emit_rollout(&self, kind: EventKind, deployment: &str, image: &str) {
        let subject = Subject {
            deployment: Some(deployment.to_string()),
            version: Some(crate::manifest::version_of_image(image)),
            ..Subject::default()
        };
        self.emit(kind, subject, format!("{deployment} {image}"));
    }

    fn note_err(&mut self, e: LabError) {
        self.last_error = Some(e.to_string());
    }

    /// Runs the control loop until the lab is stopped or `max_lifetime` passes.
    pub(crate) fn run(&mut self) {
        let deadline = Instant::now() + self.cfg.max_lifetime;
        while !self.shared.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            let t = Instant::now();
            self.tick();
            let spent = t.elapsed();
            if spent < TICK {
                std::thread::sleep(TICK - spent);
            }
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let desired = self
            .shared
            .desired
            .lock()
            .map(|d| d.clone())
            .unwrap_or_default();
        self.probe_results();
        self.kubelet(now);
        self.deployments(&desired, now);
        self.replicasets(now);
        self.endpoint_slices(&desired, now);
        self.kube_proxy(now);
        self.ingress_controllers(&desired, now);
        self.mesh_clients(&desired, now);
        self.publish(&desired, now);
    }

    /// A fresh address for the next pod, which also places it: on the node with the
    /// fewest pods not terminating (node 1 first on a tie), as the scheduler's default
    /// spreading does. From `10.244.(16·(N-1)).2` upward in node N's /20; never reused
    /// within a run; skips .0, .255 and the client pod's address.
    fn fresh_ip(&mut self) -> Ipv4Addr {
        let nodes = self.names.nodes.len();
        let node = (1..=nodes)
            .min_by_key(|n| {
                self.pods
                    .iter()
                    .filter(|p| p.active() && crate::config::node_of_pod_ip(p.ip) == *n)
                    .count()
            })
            .unwrap_or(1);
        let base = (16 * (node as u32 - 1)) << 8;
        loop {
            let n = 2 + self.next_ip[node - 1];
            self.next_ip[node - 1] += 1;
            let offset = n % (16 << 8);
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + base + offset);
            let last = offset & 0xff;
            if last != 0
                && last != 255
                && ip != crate::config::client_pod_ip(node)
                && !crate::ingress::is_proxy_ip(ip)
            {
                return ip;
            }
        }
    }

    // --- status ------------------------------------------------------------------------

    fn publish(&mut self, desired: &Desired, now: Instant) {
        let mut st = Status::default();
        for (name, desired) in &desired.deployments {
            let (d, generation) = (&desired.spec, &desired.generation);
            let hash = template_hash(&d.template);
            let mut ds = DeploymentStatus {
                generation: *generation,
                observed_generation: self.tracks.get(name).map(|t| t.observed).unwrap_or(0),
                desired_replicas: d.replicas,
                ..Default::default()
            };
            for r in self.rss.iter().filter(|r| &r.deployment == name) {
                let (active, ready, avail) = self.rs_status(r, now);
                ds.replicas += active;
                ds.ready_replicas += ready;
                ds.available_replicas += avail;
                if r.hash == hash {
                    ds.updated_replicas = active;
                }
                ds.terminating += self
                    .pods
                    .iter()
                    .filter(|p| p.rs == r.id && !p.active())
                    .count() as i32;
            }
            // kubectl rollout status
            ds.complete = ds.observed_generation >= ds.generation
                && ds.updated_replicas >= d.replicas
                && ds.replicas <= ds.updated_replicas
                && ds.available_replicas >= ds.updated_replicas;
            if ds.complete {
                let finished = self
                    .tracks
                    .get_mut(name)
                    .is_some_and(|t| std::mem::replace(&mut t.rollout_active, false));
                if finished {
                    self.emit_rollout(
                        EventKind::RolloutComplete,
                        name,
                        &d.template.container.image,
                    );
                }
            }
            st.deployments.insert(name.clone(), ds);
        }
        let health = endpoints::health_check_ports(desired);
        for (name, desired) in &desired.services {
            let (svc, cip, eip) = (&desired.spec, &desired.cluster_ip, &desired.external_ip);
            let now_ready: Vec<Ipv4Addr> = self
                .endpoints
                .get(name)
                .map(|v| v.iter().map(|(ip, _)| *ip).collect())
                .unwrap_or_default();
            // What the nodes' rules send traffic to: the first node that lags behind the
            // endpoints, so "programmed" means programmed on every node.
            let per_node: Vec<Vec<Ipv4Addr>> = self
                .proxies
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    p.applied
                        .services
                        .iter()
                        .find(|s| &s.name == name)
                        .map(|s| s.reachable(i + 1).iter().map(|e| e.ip).collect())
                        .unwrap_or_default()
                })
                .collect();
            let programmed = per_node
                .iter()
                .find(|e| **e != now_ready)
                .or(per_node.first())
                .cloned()
                .unwrap_or_default();
            let eip = if svc.service_type == ServiceType::LoadBalancer {
                *eip
            } else {
                None
            };
            st.services.insert(
                name.clone(),
                ServiceStatus {
                    cluster_ip: Some(*cip),
                    external_ip: eip,
                    endpoints: self
                        .endpoints
                        .get(name)
                        .map(|v| v.iter().map(|(ip, _)| *ip).collect())
                        .unwrap_or_default(),
                    programmed_endpoints: programmed,
                    announced: eip
                        .is_some_and(|ip| self.proxies.iter().any(|p| p.announced.contains(&ip))),
                    announced_by: eip.and_then(|ip| {
                        self.proxies
                            .iter()
                            .position(|p| p.announced.contains(&ip))
                            .map(|i| i + 1)
                    }),
                    health_check_node_port: health.get(name).copied(),
                },
            );
        }
        for r in &self.rss {
            st.history
                .entry(r.deployment.clone())
                .or_default()
                .push((r.revision, r.template.clone()));
        }
        for h in st.history.values_mut() {
            h.sort_by_key(|(rev, _)| *rev);
        }
        for p in self
            .pods
            .iter()
            .filter(|p| p.active() && p.phase == Phase::Running)
        {
            if let Some(r) = self.rss.iter().find(|r| r.id == p.rs) {
                st.pods
                    .entry(r.deployment.clone())
                    .or_default()
                    .push((p.ip, app_port(&p.template)));
            }
        }
        st.mesh_ready = self.mesh_ready();
        st.last_error = self.last_error.clone();
        st.last_pod_exit = self.last_pod_exit.clone();
        st.crash_loop = self
            .pods
            .iter()
            .find(|p| p.active() && !p.ready && p.restarts >= CRASH_LOOP_EXITS)
            .map(|p| {
                format!(
                    "pod {} is in CrashLoopBackOff: its app exited by itself {} times, last with {}",
                    p.name,
                    p.restarts,
                    p.last_exit.as_deref().unwrap_or("an unknown status")
                )
            });
        if let Ok(mut s) = self.shared.status.lock() {
            *s = st;
        }
    }

    /// Kills every pod and removes every pod namespace (the fixed namespaces are removed
    /// by the caller).
    pub(crate) fn teardown(&mut self) -> Result<(), LabError> {
        self.mesh_teardown();
        let mut first = self.ingress_teardown().err();
        // Health check sockets would keep their node's namespace alive.
        self.proxies.iter_mut().for_each(|p| p.health.clear());
        for p in &mut self.pods {
            Self::stop_probe(p);
            if let Some(c) = p.child.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        for p in std::mem::take(&mut self.pods) {
            if p.sandbox {
                if let Err(e) = destroy_netns(&p.netns) {
                    first.get_or_insert(e);
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable_and_kubernetes_shaped() {
        let t = crate::manifest::parse_manifests(
            "kind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {x: y}}\n  template:\n    metadata: {labels: {x: y}}\n    spec: {containers: [{name: c, image: 'i:v1'}]}\n",
        )
        .unwrap();
        let crate::manifest::Object::Deployment(d) = &t[0] else {
            panic!()
        };
        let h = template_hash(&d.template);
        assert_eq!(h.len(), 10);
        assert_eq!(h, template_hash(&d.template.clone()));
        let mut t2 = d.template.clone();
        t2.container.image = "i:v2".into();
        assert_ne!(h, template_hash(&t2));
        assert!(h.bytes().all(|b| HASH_ALPHABET.contains(&b)));
    }
}
