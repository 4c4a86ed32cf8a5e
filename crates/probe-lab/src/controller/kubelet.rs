//! The kubelet: a pod's lifecycle on the node.
//!
//! A pod is created Pending; after the start latency its sandbox (a network namespace on
//! the node's bridge, with the lab's kernel settings) is built and the app started. Without
//! a readinessProbe it is ready as soon as its process runs (whether or not the app
//! listens yet: that is what makes "Connection refused" in a rolling update); with one, a
//! prober thread in the node namespace decides. Deletion runs the preStop sleep after the
//! kill latency (the pod is already out of the Service's endpoints), then sends SIGTERM,
//! and SIGKILL when the grace period (counted from the hook's start) runs out; the sandbox
//! goes after the teardown delay.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use probe_core::EventKind;

use super::{scaled, Phase, Pod, Shared, World};
use crate::error::LabError;
use crate::kernel::{self, Role};
use crate::manifest::{HttpProbe, PreStop};
use crate::netns::{destroy_netns, enter_netns, ip_batch, run};
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
    http_get_ok_as(ip, port, None, path, timeout)
}

/// [`http_get_ok`] with the Host header `host` (default `IP:PORT`), as a client of an
/// ingress rule for that host sends it.
pub(crate) fn http_get_ok_as(
    ip: Ipv4Addr,
    port: u16,
    host: Option<&str>,
    path: &str,
    timeout: Duration,
) -> bool {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from((ip, port));
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let host = host.map_or_else(|| format!("{ip}:{port}"), str::to_string);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.30\r\nConnection: close\r\n\r\n"
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

/// A pod's sandbox: namespace `netns` with address `ip` on its node's bridge (through
/// the veth `veth` in `node_ns`), routed via the node, with the lab's kernel settings.
pub(super) fn build_sandbox(
    kernel: crate::kernel::Kernel,
    node_ns: &str,
    netns: &str,
    veth: &str,
    ip: Ipv4Addr,
) -> Result<(), LabError> {
    let gw = crate::config::node_bridge_ip(crate::config::node_of_pod_ip(ip));
    run("ip", &["netns", "add", netns], None)?;
    ip_batch(
        Some(node_ns),
        &[
            format!("link add {veth} type veth peer name eth0 netns {netns}"),
            format!("link set {veth} master br0 up"),
        ],
    )?;
    ip_batch(
        Some(netns),
        &[
            "link set lo up".to_string(),
            format!("addr add {ip}/20 dev eth0"),
            "link set eth0 up".to_string(),
            format!("route add {} via {gw}", crate::config::POD_CIDR),
            format!("route add {} via {gw}", crate::config::CLIENT_SEGMENT),
            format!("route add {} via {gw}", crate::config::SERVICE_CIDR),
        ],
    )?;
    kernel::apply(kernel, Role::Pod, netns, &["eth0"])
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
    // --- kubelet -----------------------------------------------------------------------

    pub(super) fn probe_results(&mut self) {
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
                    let p = &self.pods[i];
                    self.emit_pod(EventKind::PodReady, p);
                }
            } else {
                p.probe_fail += 1;
                p.probe_ok = 0;
                if p.ready && p.probe_fail >= probe.failure_threshold {
                    p.ready = false;
                    p.ready_since = None;
                    let p = &self.pods[i];
                    self.emit_pod(EventKind::PodUnready, p);
                }
            }
        }
    }

    pub(super) fn create_sandbox(&self, p: &Pod) -> Result<(), LabError> {
        build_sandbox(self.cfg.kernel, self.node_ns(p), &p.netns, &p.veth, p.ip)
    }

    pub(super) fn spawn_app(&self, p: &Pod) -> Result<Child, LabError> {
        use std::os::unix::process::CommandExt;
        let c = &p.template.container;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &p.netns]);
        cmd.args(&self.app);
        for k in [
            "VERSION",
            "IMAGE",
            "PORT",
            "STARTUP_DELAY_MS",
            "SHUTDOWN_DELAY_MS",
            "RESPONSE_DELAY_MS",
            "EXIT_AT_START",
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
                p.name, self.app
            ))
        })
    }

    pub(super) fn start_process(&mut self, i: usize, now: Instant) {
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
                        let p = &self.pods[i];
                        self.emit_pod(EventKind::PodReady, p);
                    }
                    Some(probe) => {
                        let stop = Arc::new(AtomicBool::new(false));
                        p.probe_stop = Some(stop.clone());
                        let node =
                            self.names.nodes[crate::config::node_of_pod_ip(p.ip) - 1].clone();
                        let (id, ip) = (p.id, p.ip);
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

    pub(super) fn stop_probe(p: &mut Pod) {
        if let Some(s) = p.probe_stop.take() {
            s.store(true, Ordering::SeqCst);
        }
    }

    pub(super) fn kubelet(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.pods.len() {
            let terminating = self.pods[i].terminating_since;
            // Start pending pods after the start latency.
            if self.pods[i].phase == Phase::Pending && terminating.is_none() {
                if now >= self.pods[i].created + self.cfg.pod_start_latency {
                    if !self.pods[i].sandbox {
                        match self.create_sandbox(&self.pods[i]) {
                            Ok(()) => self.pods[i].sandbox = true,
                            Err(e) => {
                                let _ = destroy_netns(&self.pods[i].netns);
                                self.pods[i].created = now; // retry after another latency
                                self.note_err(e);
                            }
                        }
                    }
                    // A mesh's sidecar starts first; the app once it listens.
                    if self.pods[i].sandbox && self.sidecar_ready(i) {
                        self.start_process(i, now);
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
                        p.last_exit = Some(st);
                        p.restart_at = Some(now + backoff);
                        if p.restarts == super::CRASH_LOOP_EXITS {
                            let p = &self.pods[i];
                            self.emit(
                                EventKind::PodCrashLoop,
                                p.subject(&self.node_name_of(p)),
                                format!(
                                    "{} CrashLoopBackOff: {}",
                                    p.detail(),
                                    p.last_exit.as_deref().unwrap_or_default()
                                ),
                            );
                        }
                        if was_ready {
                            let p = &self.pods[i];
                            self.emit_pod(EventKind::PodUnready, p);
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
            // Termination, as the kubelet's killContainer does: after its latency it runs
            // the preStop hook (a sleep), then sends SIGTERM; the grace period counts from
            // the start of the hook and bounds both, then SIGKILL.
            if let Some(since) = terminating {
                if self.pods[i].kill_started.is_none() && now >= since + self.cfg.kill_latency {
                    let scale = self.cfg.time_scale;
                    let p = &mut self.pods[i];
                    p.kill_started = Some(now);
                    Self::stop_probe(p);
                    let grace = scaled(p.template.termination_grace_period_seconds, scale);
                    let hook = match (&p.template.container.pre_stop, p.phase) {
                        (Some(PreStop::Sleep { seconds }), Phase::Running) if *seconds > 0 => {
                            Some(scaled(*seconds, scale).min(grace))
                        }
                        _ => None,
                    };
                    p.sigterm_due = Some(now + hook.unwrap_or_default());
                    if let Some(d) = hook {
                        let p = &self.pods[i];
                        self.emit(
                            EventKind::PodPreStop,
                            p.subject(&self.node_name_of(p)),
                            format!(
                                "{} sleep {:.1}s before SIGTERM",
                                p.detail(),
                                d.as_secs_f64()
                            ),
                        );
                    }
                }
                let p = &mut self.pods[i];
                if p.sigterm_at.is_none() && p.sigterm_due.is_some_and(|t| now >= t) {
                    p.sigterm_at = Some(now);
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
                if let (Some(k), Some(t), Some(c)) =
                    (p.kill_started, p.sigterm_at, p.child.as_mut())
                {
                    // A hook that used up the grace period leaves SIGTERM the kubelet's
                    // one-off 2 s extension.
                    let kill_at = if t >= k + grace {
                        t + Duration::from_secs(2)
                    } else {
                        k + grace
                    };
                    if !p.sigkill_sent && now >= kill_at {
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
                                self.node_ns(&p),
                                "neigh",
                                "del",
                                &p.ip.to_string(),
                                "dev",
                                "br0",
                            ],
                            None,
                        );
                    }
                    self.emit_pod(EventKind::PodDeleted, &p);
                    continue;
                }
            }
            i += 1;
        }
    }
}
