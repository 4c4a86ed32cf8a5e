//! The control plane: Deployment and ReplicaSet controllers, a kubelet, the EndpointSlice
//! controller, and the delayed hand-off to kube-proxy and the L2 announcer.
//!
//! It runs on one dedicated thread (see [`crate::Lab`]) as a level-triggered loop, like
//! Kubernetes' controllers: every tick (20 ms) it compares what is with what should be and
//! takes the next step. Keeping it on one long-lived thread matters for more than
//! simplicity: pods are spawned from it with `PR_SET_PDEATHSIG`, so if the lab's process
//! dies, the kernel kills every pod process with it.
//!
//! The Deployment logic transcribes `pkg/controller/deployment` (`rolling.go`,
//! `recreate.go`): the new ReplicaSet is scaled up within `replicas + maxSurge`, old ones
//! are scaled down (unhealthy pods first) while at least `replicas - maxUnavailable` pods
//! stay available, and Recreate scales old ReplicaSets to zero and waits until their pods
//! are gone before scaling the new one up.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{LabConfig, NODE_BRIDGE_IP};
use crate::manifest::{
    resolve_fenceposts, selects, version_of_image, Deployment, HttpProbe, Labels, PodTemplate,
    Service, ServiceType, Strategy,
};
use crate::netns::{destroy_netns, enter_netns, gratuitous_arp, ip_batch, run};
use crate::proxy::{render, ProxyState, SvcRules};
use crate::{EventSink, LabError};

/// The controller's tick.
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// What the user asked for (written by [`crate::Lab`], read by the controller).
#[derive(Debug, Default, Clone)]
pub(crate) struct Desired {
    pub deployments: BTreeMap<String, (Deployment, u64)>,
    pub services: BTreeMap<String, (Service, Ipv4Addr, Option<Ipv4Addr>)>,
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
}

/// Everything the API reads.
#[derive(Debug, Default, Clone)]
pub(crate) struct Status {
    pub deployments: BTreeMap<String, DeploymentStatus>,
    pub services: BTreeMap<String, ServiceStatus>,
    /// The last error of a lab action (a failed command), for diagnostics.
    pub last_error: Option<String>,
    /// The last unexpected pod process exit.
    pub last_pod_exit: Option<String>,
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
    pub node: String,
    pub client: String,
}

#[derive(Debug)]
struct ReplicaSet {
    id: u64,
    deployment: String,
    hash: String,
    template: PodTemplate,
    min_ready_seconds: u32,
    replicas: i32,
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
    ready: bool,
    ready_since: Option<Instant>,
    probe_ok: u32,
    probe_fail: u32,
    probe_stop: Option<Arc<AtomicBool>>,
    terminating_since: Option<Instant>,
    sigterm_at: Option<Instant>,
    sigkill_sent: bool,
}

impl Pod {
    fn detail(&self) -> String {
        format!("{} {} {}", self.name, self.ip, self.version)
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
    sink: EventSink,
    shared: Arc<Shared>,
    names: Names,
    pods: Vec<Pod>,
    rss: Vec<ReplicaSet>,
    next_id: u64,
    next_ip: u32,
    tracks: BTreeMap<String, Track>,
    endpoints: BTreeMap<String, Vec<(Ipv4Addr, String)>>,
    proxy_queue: VecDeque<(Instant, ProxyState)>,
    proxy_applied: ProxyState,
    announced: BTreeSet<Ipv4Addr>,
    probe_tx: Sender<(u64, bool)>,
    probe_rx: Receiver<(u64, bool)>,
    last_error: Option<String>,
    last_pod_exit: Option<String>,
}

const HASH_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv(s: &str, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

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
    encode(fnv(&format!("{t:?}"), 0), 10)
}

/// Seconds from a manifest, times the lab's `time_scale`.
fn scaled(secs: u32, scale: f64) -> Duration {
    Duration::from_secs_f64(f64::from(secs) * scale)
}

fn sleep_checked(d: Duration, stop: &AtomicBool, lab_stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::SeqCst) || lab_stop.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// One HTTP GET as the kubelet's prober does it: success is a 2xx/3xx status.
pub(crate) fn http_get_ok(ip: Ipv4Addr, port: u16, path: &str, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from((ip, port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.30\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let head = String::from_utf8_lossy(&buf[..got]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (200..400).contains(&code)
}

/// The kubelet's readiness prober for one pod: runs in the node namespace.
#[allow(clippy::too_many_arguments)]
fn probe_worker(
    node_ns: String,
    scale: f64,
    pod: u64,
    ip: Ipv4Addr,
    probe: HttpProbe,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    tx: Sender<(u64, bool)>,
) {
    if enter_netns(&node_ns).is_err() {
        return;
    }
    let lab_stop = &shared.stop;
    if !sleep_checked(scaled(probe.initial_delay_seconds, scale), &stop, lab_stop) {
        return;
    }
    let period = scaled(probe.period_seconds, scale);
    let timeout = scaled(probe.timeout_seconds, scale);
    // Bounded: at most one probe per period for a long lab run.
    for _ in 0..1_000_000u32 {
        let start = Instant::now();
        let ok = http_get_ok(ip, probe.port, &probe.path, timeout);
        if stop.load(Ordering::SeqCst) || tx.send((pod, ok)).is_err() {
            return;
        }
        if !sleep_checked(period.saturating_sub(start.elapsed()), &stop, lab_stop) {
            return;
        }
    }
}

impl World {
    pub(crate) fn new(cfg: LabConfig, sink: EventSink, shared: Arc<Shared>, names: Names) -> World {
        let (probe_tx, probe_rx) = std::sync::mpsc::channel();
        World {
            cfg,
            sink,
            shared,
            names,
            pods: Vec::new(),
            rss: Vec::new(),
            next_id: 0,
            next_ip: 0,
            tracks: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            proxy_queue: VecDeque::new(),
            proxy_applied: ProxyState::default(),
            announced: BTreeSet::new(),
            probe_tx,
            probe_rx,
            last_error: None,
            last_pod_exit: None,
        }
    }

    fn emit(&self, kind: &str, detail: &str) {
        (self.sink)(kind, detail);
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
        self.publish(&desired, now);
    }

    fn fresh_ip(&mut self) -> Ipv4Addr {
        // 10.244.0.2 upward; never reused within a run; skips .0 and .255.
        loop {
            let n = 2 + self.next_ip;
            self.next_ip += 1;
            let ip = Ipv4Addr::new(10, 244, (n >> 8) as u8, (n & 0xff) as u8);
            let last = n & 0xff;
            if last != 0 && last != 255 {
                return ip;
            }
        }
    }

    // --- kubelet -----------------------------------------------------------------------

    fn probe_results(&mut self) {
        let results: Vec<(u64, bool)> = self.probe_rx.try_iter().collect();
        for (id, ok) in results {
            let Some(i) = self.pods.iter().position(|p| p.id == id) else {
                continue;
            };
            let now = Instant::now();
            let p = &mut self.pods[i];
            if p.phase != Phase::Running || p.sigterm_at.is_some() {
                continue;
            }
            let Some(probe) = p.template.container.readiness_probe.clone() else {
                continue;
            };
            if ok {
                p.probe_ok += 1;
                p.probe_fail = 0;
                if !p.ready && p.probe_ok >= probe.success_threshold {
                    p.ready = true;
                    p.ready_since = Some(now);
                    let d = p.detail();
                    self.emit("pod_ready", &d);
                }
            } else {
                p.probe_fail += 1;
                p.probe_ok = 0;
                if p.ready && p.probe_fail >= probe.failure_threshold {
                    p.ready = false;
                    p.ready_since = None;
                    let d = p.detail();
                    self.emit("pod_unready", &d);
                }
            }
        }
    }

    fn create_sandbox(&self, p: &Pod) -> Result<(), LabError> {
        run("ip", &["netns", "add", &p.netns], None)?;
        ip_batch(
            Some(&self.names.node),
            &[
                format!(
                    "link add {} type veth peer name eth0 netns {}",
                    p.veth, p.netns
                ),
                format!("link set {} master br0 up", p.veth),
            ],
        )?;
        ip_batch(
            Some(&p.netns),
            &[
                "link set lo up".to_string(),
                format!("addr add {}/16 dev eth0", p.ip),
                "link set eth0 up".to_string(),
                format!(
                    "route add {} via {NODE_BRIDGE_IP}",
                    crate::config::CLIENT_SEGMENT
                ),
                format!(
                    "route add {} via {NODE_BRIDGE_IP}",
                    crate::config::SERVICE_CIDR
                ),
            ],
        )
    }

    fn spawn_app(&self, p: &Pod) -> Result<Child, LabError> {
        use std::os::unix::process::CommandExt;
        let c = &p.template.container;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &p.netns]);
        cmd.args(&self.cfg.app_command);
        for k in [
            "VERSION",
            "IMAGE",
            "PORT",
            "STARTUP_DELAY_MS",
            "SHUTDOWN_DELAY_MS",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("IMAGE", &c.image)
            .env(
                "STARTUP_DELAY_MS",
                self.cfg.startup_delay.as_millis().to_string(),
            )
            .env("POD_NAME", &p.name)
            .env("POD_IP", p.ip.to_string())
            .env(
                "LAB_APP_MAX_LIFETIME_S",
                self.cfg.max_lifetime.as_secs().max(1).to_string(),
            );
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        if !self.cfg.app_output {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                Ok(())
            });
        }
        cmd.spawn().map_err(|e| {
            LabError::Setup(format!(
                "cannot start pod {} with {:?}: {e}",
                p.name, self.cfg.app_command
            ))
        })
    }

    fn start_process(&mut self, i: usize, now: Instant) {
        match self.spawn_app(&self.pods[i]) {
            Ok(child) => {
                let p = &mut self.pods[i];
                p.child = Some(child);
                p.phase = Phase::Running;
                p.started_at = Some(now);
                p.exited_at = None;
                p.probe_ok = 0;
                p.probe_fail = 0;
                match p.template.container.readiness_probe.clone() {
                    None => {
                        // No readinessProbe: ready as soon as the process runs.
                        p.ready = true;
                        p.ready_since = Some(now);
                        let d = p.detail();
                        self.emit("pod_ready", &d);
                    }
                    Some(probe) => {
                        let stop = Arc::new(AtomicBool::new(false));
                        p.probe_stop = Some(stop.clone());
                        let (node, id, ip) = (self.names.node.clone(), p.id, p.ip);
                        let (shared, tx) = (self.shared.clone(), self.probe_tx.clone());
                        let scale = self.cfg.time_scale;
                        std::thread::spawn(move || {
                            probe_worker(node, scale, id, ip, probe, stop, shared, tx)
                        });
                    }
                }
            }
            Err(e) => {
                self.pods[i].phase = Phase::Exited;
                self.pods[i].exited_at = Some(now);
                self.pods[i].restart_at = Some(now + Duration::from_secs(1));
                self.note_err(e);
            }
        }
    }

    fn stop_probe(p: &mut Pod) {
        if let Some(s) = p.probe_stop.take() {
            s.store(true, Ordering::SeqCst);
        }
    }

    fn kubelet(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pods.len() {
            let terminating = self.pods[i].terminating_since;
            // Start pending pods after the start latency.
            if self.pods[i].phase == Phase::Pending && terminating.is_none() {
                if now >= self.pods[i].created + self.cfg.pod_start_latency {
                    match self.create_sandbox(&self.pods[i]) {
                        Ok(()) => {
                            self.pods[i].sandbox = true;
                            self.start_process(i, now);
                        }
                        Err(e) => {
                            let _ = destroy_netns(&self.pods[i].netns);
                            self.pods[i].created = now; // retry after another latency
                            self.note_err(e);
                        }
                    }
                }
                i += 1;
                continue;
            }
            // Notice process exits.
            if self.pods[i].phase == Phase::Running {
                let exited = match self.pods[i].child.as_mut().map(|c| c.try_wait()) {
                    Some(Ok(Some(st))) => Some(st.to_string()),
                    Some(Ok(None)) => None,
                    Some(Err(e)) => Some(e.to_string()),
                    None => Some("no process".into()),
                };
                if let Some(st) = exited {
                    let p = &mut self.pods[i];
                    p.phase = Phase::Exited;
                    p.exited_at = Some(now);
                    p.child = None;
                    Self::stop_probe(p);
                    let was_ready = std::mem::replace(&mut p.ready, false);
                    p.ready_since = None;
                    if terminating.is_none() {
                        self.last_pod_exit = Some(format!("pod {} exited: {st}", p.name));
                        let backoff = Duration::from_secs(1u64 << p.restarts.min(5));
                        p.restarts += 1;
                        p.restart_at = Some(now + backoff);
                        if was_ready {
                            let d = p.detail();
                            self.emit("pod_unready", &d);
                        }
                    }
                }
            }
            // Restart a crashed (not terminating) container, with back-off.
            if self.pods[i].phase == Phase::Exited
                && terminating.is_none()
                && self.pods[i].restart_at.is_some_and(|t| now >= t)
            {
                self.pods[i].restart_at = None;
                self.start_process(i, now);
            }
            // Termination: SIGTERM after the kubelet's latency, SIGKILL after the grace period.
            if let Some(since) = terminating {
                let p = &mut self.pods[i];
                if p.sigterm_at.is_none() && now >= since + self.cfg.kill_latency {
                    p.sigterm_at = Some(now);
                    Self::stop_probe(p);
                    if let Some(c) = &p.child {
                        // SAFETY: kill(2) of our own child.
                        unsafe {
                            libc::kill(c.id() as i32, libc::SIGTERM);
                        }
                    }
                }
                let grace = scaled(
                    p.template.termination_grace_period_seconds,
                    self.cfg.time_scale,
                );
                if let (Some(t), Some(c)) = (p.sigterm_at, p.child.as_mut()) {
                    if !p.sigkill_sent && now >= t + grace {
                        p.sigkill_sent = true;
                        let _ = c.kill();
                    }
                }
                let gone = match p.phase {
                    Phase::Pending => true,
                    Phase::Exited => p
                        .exited_at
                        .is_some_and(|t| now >= t + self.cfg.sandbox_teardown_delay),
                    Phase::Running => false,
                };
                if gone {
                    let p = self.pods.remove(i);
                    if p.sandbox {
                        if let Err(e) = destroy_netns(&p.netns) {
                            self.note_err(e);
                        }
                        // The pod's address is gone from the bridge: forget its MAC, as a
                        // CNI that deletes the pod's route does, so traffic still sent to
                        // it meets a failed ARP (EHOSTUNREACH) rather than a black hole.
                        let _ = run(
                            "ip",
                            &[
                                "-n",
                                &self.names.node,
                                "neigh",
                                "del",
                                &p.ip.to_string(),
                                "dev",
                                "br0",
                            ],
                            None,
                        );
                    }
                    self.emit("pod_deleted", &p.detail());
                    continue;
                }
            }
            i += 1;
        }
    }

    // --- Deployment controller ---------------------------------------------------------

    fn rs_status(&self, rs: &ReplicaSet, now: Instant) -> (i32, i32, i32) {
        let (mut active, mut ready, mut avail) = (0, 0, 0);
        for p in self.pods.iter().filter(|p| p.rs == rs.id && p.active()) {
            active += 1;
            if p.ready {
                ready += 1;
            }
            if p.available(scaled(rs.min_ready_seconds, self.cfg.time_scale), now) {
                avail += 1;
            }
        }
        (active, ready, avail)
    }

    fn deployments(&mut self, desired: &Desired, now: Instant) {
        for (name, (d, generation)) in &desired.deployments {
            let hash = template_hash(&d.template);
            let new_idx = match self
                .rss
                .iter()
                .position(|r| &r.deployment == name && r.hash == hash)
            {
                Some(i) => i,
                None => {
                    self.next_id += 1;
                    self.rss.push(ReplicaSet {
                        id: self.next_id,
                        deployment: name.clone(),
                        hash: hash.clone(),
                        template: d.template.clone(),
                        min_ready_seconds: d.min_ready_seconds,
                        replicas: 0,
                    });
                    self.rss.len() - 1
                }
            };
            self.rss[new_idx].min_ready_seconds = d.min_ready_seconds;
            let started = {
                let track = self.tracks.entry(name.clone()).or_default();
                let changed = track.hash.as_deref() != Some(hash.as_str());
                if changed {
                    track.hash = Some(hash.clone());
                    track.rollout_active = true;
                }
                changed
            };
            if started {
                let detail = format!("{name} {}", d.template.container.image);
                self.emit("rollout_start", &detail);
            }
            let new_id = self.rss[new_idx].id;
            let old_ids: Vec<u64> = self
                .rss
                .iter()
                .filter(|r| &r.deployment == name && r.id != new_id)
                .map(|r| r.id)
                .collect();
            match d.strategy {
                Strategy::Recreate => {
                    for r in self.rss.iter_mut().filter(|r| old_ids.contains(&r.id)) {
                        r.replicas = 0;
                    }
                    let old_pods = self.pods.iter().any(|p| old_ids.contains(&p.rs));
                    if !old_pods {
                        self.rss[new_idx].replicas = d.replicas;
                    }
                }
                Strategy::RollingUpdate {
                    max_surge,
                    max_unavailable,
                } => {
                    let (surge, unavail) =
                        resolve_fenceposts(max_surge, max_unavailable, d.replicas);
                    // reconcileNewReplicaSet
                    let new_rep = self.rss[new_idx].replicas;
                    if new_rep > d.replicas {
                        self.rss[new_idx].replicas = d.replicas;
                    } else if new_rep < d.replicas {
                        let current: i32 = self
                            .rss
                            .iter()
                            .filter(|r| &r.deployment == name)
                            .map(|r| r.replicas)
                            .sum();
                        let max_total = d.replicas + surge;
                        if current < max_total {
                            let up = (max_total - current).min(d.replicas - new_rep);
                            self.rss[new_idx].replicas += up;
                        }
                    }
                    // reconcileOldReplicaSets
                    let old_count: i32 = self
                        .rss
                        .iter()
                        .filter(|r| old_ids.contains(&r.id))
                        .map(|r| r.replicas)
                        .sum();
                    if old_count > 0 {
                        let all: i32 = self
                            .rss
                            .iter()
                            .filter(|r| &r.deployment == name)
                            .map(|r| r.replicas)
                            .sum();
                        let min_available = d.replicas - unavail;
                        let (_, _, new_avail) = self.rs_status(&self.rss[new_idx], now);
                        let new_unavailable = (self.rss[new_idx].replicas - new_avail).max(0);
                        let max_scaled_down = all - min_available - new_unavailable;
                        if max_scaled_down > 0 {
                            // cleanupUnhealthyReplicas (oldest first)
                            let mut budget = max_scaled_down;
                            for id in &old_ids {
                                if budget <= 0 {
                                    break;
                                }
                                let ri = self.rss.iter().position(|r| r.id == *id).unwrap();
                                let (_, _, avail) = self.rs_status(&self.rss[ri], now);
                                let unhealthy = self.rss[ri].replicas - avail;
                                if unhealthy <= 0 {
                                    continue;
                                }
                                let down = unhealthy.min(budget);
                                self.rss[ri].replicas -= down;
                                budget -= down;
                            }
                            // scaleDownOldReplicaSetsForRollingUpdate
                            let available_all: i32 = self
                                .rss
                                .iter()
                                .filter(|r| &r.deployment == name)
                                .map(|r| self.rs_status(r, now).2)
                                .sum();
                            let mut total = available_all - min_available;
                            for id in &old_ids {
                                if total <= 0 {
                                    break;
                                }
                                let ri = self.rss.iter().position(|r| r.id == *id).unwrap();
                                let down = self.rss[ri].replicas.min(total);
                                self.rss[ri].replicas -= down;
                                total -= down;
                            }
                        }
                    }
                }
            }
            let track = self.tracks.entry(name.clone()).or_default();
            track.observed = *generation;
        }
    }

    // --- ReplicaSet controller ---------------------------------------------------------

    fn replicasets(&mut self, now: Instant) {
        for ri in 0..self.rss.len() {
            let id = self.rss[ri].id;
            let want = self.rss[ri].replicas;
            let mut active: Vec<usize> = self
                .pods
                .iter()
                .enumerate()
                .filter(|(_, p)| p.rs == id && p.active())
                .map(|(i, _)| i)
                .collect();
            let have = active.len() as i32;
            if have < want {
                for _ in 0..(want - have) {
                    self.create_pod(ri, now);
                }
            } else if have > want {
                // Delete first: not started, not ready, ready for the shortest time, newest.
                active.sort_by_key(|&i| {
                    let p = &self.pods[i];
                    (
                        p.phase == Phase::Running,
                        p.ready,
                        std::cmp::Reverse(p.ready_since),
                        std::cmp::Reverse(p.created),
                    )
                });
                for &i in active.iter().take((have - want) as usize) {
                    let p = &mut self.pods[i];
                    p.terminating_since = Some(now);
                    let d = p.detail();
                    self.emit("pod_terminating", &d);
                }
            }
        }
    }

    fn create_pod(&mut self, ri: usize, now: Instant) {
        self.next_id += 1;
        let id = self.next_id;
        let ip = self.fresh_ip();
        let rs = &self.rss[ri];
        let suffix = encode(fnv(&format!("{}-{id}", self.names.run_id), 7), 5);
        let name = format!("{}-{}-{suffix}", rs.deployment, rs.hash);
        let mut labels = rs.template.labels.clone();
        labels.insert("pod-template-hash".into(), rs.hash.clone());
        let version = rs
            .template
            .container
            .env
            .iter()
            .find(|(k, _)| k == "VERSION")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| version_of_image(&rs.template.container.image));
        let pod = Pod {
            id,
            name,
            netns: format!("{}-p{id}", self.names.run_id),
            veth: format!("vp{id}"),
            ip,
            rs: rs.id,
            labels,
            template: rs.template.clone(),
            version,
            created: now,
            phase: Phase::Pending,
            sandbox: false,
            child: None,
            started_at: None,
            exited_at: None,
            restart_at: None,
            restarts: 0,
            ready: false,
            ready_since: None,
            probe_ok: 0,
            probe_fail: 0,
            probe_stop: None,
            terminating_since: None,
            sigterm_at: None,
            sigkill_sent: false,
        };
        self.emit("pod_created", &pod.detail());
        self.pods.push(pod);
    }

    // --- EndpointSlices and kube-proxy ---------------------------------------------------

    fn endpoint_slices(&mut self, desired: &Desired, now: Instant) {
        let mut state = ProxyState::default();
        for (name, (svc, cip, eip)) in &desired.services {
            let mut eps: Vec<(Ipv4Addr, String)> = self
                .pods
                .iter()
                .filter(|p| p.active() && p.ready && p.phase == Phase::Running)
                .filter(|p| selects(&svc.selector, &p.labels))
                .map(|p| (p.ip, p.name.clone()))
                .collect();
            eps.sort();
            let port = svc.ports.first().map(|p| p.target_port).unwrap_or(0);
            let old = self.endpoints.get(name).cloned().unwrap_or_default();
            for (ip, pod) in &old {
                if !eps.iter().any(|(i, _)| i == ip) {
                    self.emit("endpoint_removed", &format!("{name} {ip}:{port} {pod}"));
                }
            }
            for (ip, pod) in &eps {
                if !old.iter().any(|(i, _)| i == ip) {
                    self.emit("endpoint_added", &format!("{name} {ip}:{port} {pod}"));
                }
            }
            state.services.push(SvcRules {
                name: name.clone(),
                cluster_ip: *cip,
                external_ip: if svc.service_type == ServiceType::LoadBalancer {
                    *eip
                } else {
                    None
                },
                ports: svc.ports.iter().map(|p| (p.port, p.target_port)).collect(),
                endpoints: eps.iter().map(|(ip, _)| *ip).collect(),
            });
            self.endpoints.insert(name.clone(), eps);
        }
        let last = self
            .proxy_queue
            .back()
            .map(|(_, s)| s)
            .unwrap_or(&self.proxy_applied);
        if *last != state {
            self.proxy_queue.push_back((now, state));
        }
    }

    fn kube_proxy(&mut self, now: Instant) {
        // kube-proxy and the announcer see each change `proxy_sync_delay` after it happened.
        let mut due = None;
        while let Some((t, _)) = self.proxy_queue.front() {
            if now >= *t + self.cfg.proxy_sync_delay {
                due = self.proxy_queue.pop_front().map(|(_, s)| s);
            } else {
                break;
            }
        }
        if let Some(state) = due {
            if let Err(e) = self.apply_proxy(&state) {
                self.note_err(e);
            }
            self.proxy_applied = state;
        }
    }

    fn apply_proxy(&mut self, state: &ProxyState) -> Result<(), LabError> {
        run(
            "ip",
            &["netns", "exec", &self.names.node, "iptables-restore"],
            Some(&render(state)),
        )?;
        let want: BTreeSet<Ipv4Addr> = state.announced().into_iter().collect();
        let mut lines = Vec::new();
        for ip in want.difference(&self.announced) {
            lines.push(format!("addr add {ip}/32 dev lb0"));
        }
        for ip in self.announced.difference(&want) {
            lines.push(format!("addr del {ip}/32 dev lb0"));
        }
        if !lines.is_empty() {
            ip_batch(Some(&self.names.node), &lines)?;
        }
        let new: Vec<Ipv4Addr> = want.difference(&self.announced).copied().collect();
        self.announced = want;
        for ip in new {
            gratuitous_arp(&self.names.node, "lb0", ip)?;
        }
        Ok(())
    }

    // --- status ------------------------------------------------------------------------

    fn publish(&mut self, desired: &Desired, now: Instant) {
        let mut st = Status::default();
        for (name, (d, generation)) in &desired.deployments {
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
                    let detail = format!("{name} {}", d.template.container.image);
                    self.emit("rollout_complete", &detail);
                }
            }
            st.deployments.insert(name.clone(), ds);
        }
        for (name, (svc, cip, eip)) in &desired.services {
            let programmed = self
                .proxy_applied
                .services
                .iter()
                .find(|s| &s.name == name)
                .map(|s| s.endpoints.clone())
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
                    announced: eip.is_some_and(|ip| self.announced.contains(&ip)),
                },
            );
        }
        st.last_error = self.last_error.clone();
        st.last_pod_exit = self.last_pod_exit.clone();
        if let Ok(mut s) = self.shared.status.lock() {
            *s = st;
        }
    }

    /// Kills every pod and removes every pod namespace (the fixed namespaces are removed
    /// by the caller).
    pub(crate) fn teardown(&mut self) -> Result<(), LabError> {
        let mut first = None;
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
        let t = crate::parse_manifests(
            "kind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {x: y}}\n  template:\n    metadata: {labels: {x: y}}\n    spec: {containers: [{name: c, image: 'i:v1'}]}\n",
        )
        .unwrap();
        let crate::Object::Deployment(d) = &t[0] else {
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
