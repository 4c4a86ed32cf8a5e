//! The mesh's control plane: which pod gets which sidecar, and istiod's pushes.
//!
//! Server side, each app pod runs an inbound sidecar as Istio's native sidecar does: the
//! kubelet starts it in the pod's sandbox (behind istio-init's redirect of the app's
//! port) before the app, and the app starts only once Envoy listens, so the pod cannot
//! be ready before its proxy. The sidecar ends with the pod's sandbox, not with its
//! app: Istio's proxy, told to stop once the app has exited, drains for its
//! `terminationDrainDuration` (5 s) and answers meanwhile (a 503 for the gone app, which
//! a caller's sidecar retries elsewhere); the sandbox's teardown delay stands for that
//! drain.
//!
//! Client side, each node's client pod (the `--from pod:N` vantage point) runs an
//! outbound sidecar with a listener per Service port. Like istiod, the controller sees
//! each change of a Service's ready endpoints only after its push delay (the ingress
//! controllers' sync delay) and then replaces the cluster's EDS file, one
//! `proxy_upstream_added`/`proxy_upstream_removed` event per upstream (the client pod's
//! sidecar as the proxy). The redirect of the pod's traffic to Envoy is
//! installed once Envoy listens and has had its first push (before that the pod's
//! traffic goes the kube-proxy way, as a pod's would before Istio injects it); a change
//! of the Services themselves restarts the sidecar, as the lab keeps no reload path.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

use super::{app_port, Desired, World};
use crate::error::LabError;
use crate::ingress::ProxyConfig;
use crate::mesh::{
    default_route, install_redirect, sidecar_dir, write_inbound, write_outbound, Outbound, Sidecar,
    INBOUND_PORT, OUTBOUND_PORT,
};

/// Per cluster (`<service>-<port>`), its endpoints.
type Upstreams = BTreeMap<String, Vec<SocketAddrV4>>;

/// How long after a sidecar exited by itself it is started again.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// One client pod's outbound sidecar.
#[derive(Default)]
struct ClientSidecar {
    services: Vec<Outbound>,
    process: Option<Sidecar>,
    listening: bool,
    redirected: bool,
    restart_at: Option<Instant>,
    /// Endpoint states waiting out the push delay.
    queue: VecDeque<(Instant, Upstreams)>,
    /// The newest state whose push delay has passed.
    due: Upstreams,
    /// What the running sidecar was given.
    applied: Upstreams,
}

/// The client pods' sidecars, node 1's first.
#[derive(Default)]
pub(crate) struct MeshSidecars {
    clients: Vec<ClientSidecar>,
}

/// The name events give node `node`'s client pod.
fn client_pod_name(node: usize) -> String {
    format!("client-pod{node}")
}

impl World {
    /// Whether pod `i` may start its app: always without a mesh; with one, once its
    /// inbound sidecar listens (started here, behind the redirect, if it is not yet).
    pub(super) fn sidecar_ready(&mut self, i: usize) -> bool {
        if self.cfg.mesh.is_none() {
            return true;
        }
        let p = &mut self.pods[i];
        if let Some(s) = p.sidecar.as_mut() {
            if let Some(exit) = s.exited() {
                p.sidecar = None;
                self.note_err(LabError::Setup(exit));
                return false;
            }
            return s.listening(INBOUND_PORT);
        }
        let port = app_port(&p.template);
        let started = sidecar_dir(&self.names.run_id, &p.name).and_then(|dir| {
            let args = write_inbound(&dir, &dir.join("access.log"), &p.name, port)?;
            install_redirect(&p.netns, Some(port), &[])?;
            Sidecar::start(&p.netns, &dir, &args)
        });
        match started {
            Ok(s) => p.sidecar = Some(s),
            Err(e) => self.note_err(e),
        }
        false
    }

    /// Whether every client pod's sidecar catches its traffic (true without a mesh).
    pub(super) fn mesh_ready(&self) -> bool {
        self.cfg.mesh.is_none() || self.mesh.clients.iter().all(|c| c.redirected)
    }

    /// One step of the client pods' sidecars: (re)start them for the Services there
    /// are, queue the endpoints, push what the push delay lets them see, and redirect
    /// the pod's traffic once a sidecar is ready.
    pub(super) fn mesh_clients(&mut self, desired: &Desired, now: Instant) {
        if self.cfg.mesh.is_none() {
            return;
        }
        let services: Vec<Outbound> = desired
            .services
            .values()
            .flat_map(|s| {
                s.spec.ports.iter().map(|p| Outbound {
                    cluster: format!("{}-{}", s.spec.name, p.port),
                    cluster_ip: s.cluster_ip,
                    port: p.port,
                })
            })
            .collect();
        let config = ProxyConfig {
            routes: services.iter().map(|s| default_route(&s.cluster)).collect(),
            backends: services.iter().map(|s| s.cluster.clone()).collect(),
        };
        let wanted = self.upstreams_of(desired, &config);
        let nodes = self.names.client_pods.len();
        self.mesh.clients.resize_with(nodes, ClientSidecar::default);
        for node in 1..=nodes {
            if let Err(e) = self.mesh_client(node, &services, &wanted, now) {
                self.note_err(e);
            }
        }
    }

    fn mesh_client(
        &mut self,
        node: usize,
        services: &[Outbound],
        wanted: &Upstreams,
        now: Instant,
    ) -> Result<(), LabError> {
        let netns = self.names.client_pods[node - 1].clone();
        let push_delay = self.cfg.ingress.sync_delay;
        let c = &mut self.mesh.clients[node - 1];
        if c.services != services {
            if c.redirected {
                install_redirect(&netns, None, &[])?;
            }
            *c = ClientSidecar {
                services: services.to_vec(),
                restart_at: Some(now),
                queue: std::mem::take(&mut c.queue),
                due: std::mem::take(&mut c.due),
                ..ClientSidecar::default()
            };
        }
        if c.queue.back().map_or(&c.due, |(_, u)| u) != wanted {
            c.queue.push_back((now, wanted.clone()));
        }
        while let Some((t, _)) = c.queue.front() {
            if now < *t + push_delay {
                break;
            }
            if let Some((_, u)) = c.queue.pop_front() {
                c.due = u;
            }
        }
        if let Some(p) = c.process.as_mut() {
            if let Some(exit) = p.exited() {
                if c.redirected {
                    install_redirect(&netns, None, &[])?;
                }
                c.process = None;
                c.listening = false;
                c.redirected = false;
                c.applied.clear();
                c.restart_at = Some(now + RESTART_BACKOFF);
                return Err(LabError::Setup(exit));
            }
            c.listening = c.listening || p.listening(OUTBOUND_PORT);
        } else if c.restart_at.is_some_and(|t| now >= t) && !services.is_empty() {
            c.restart_at = Some(now + RESTART_BACKOFF);
            let dir = sidecar_dir(&self.names.run_id, &client_pod_name(node))?;
            let args = write_outbound(&dir, &dir.join("access.log"), &netns, services)?;
            c.process = Some(Sidecar::start(&netns, &dir, &args)?);
            c.restart_at = None;
        }
        let Some(p) = c.process.as_mut().filter(|_| c.listening) else {
            return Ok(());
        };
        let mut pushed = Vec::new();
        for (cluster, upstreams) in &c.due {
            if c.applied.get(cluster) == Some(upstreams) {
                continue;
            }
            p.push(cluster, upstreams)?;
            let before = c.applied.insert(cluster.clone(), upstreams.clone());
            pushed.push((
                cluster.clone(),
                before.unwrap_or_default(),
                upstreams.clone(),
            ));
        }
        if !c.redirected && services.iter().all(|s| c.applied.contains_key(&s.cluster)) {
            install_redirect(&netns, None, services)?;
            c.redirected = true;
        }
        for (cluster, before, after) in pushed {
            let proxy = client_pod_name(node);
            self.emit_upstream_changes((&proxy, "istio-proxy"), &cluster, &before, &after);
        }
        Ok(())
    }

    /// Ends every client pod's sidecar (the app pods' end with their pods).
    pub(super) fn mesh_teardown(&mut self) {
        self.mesh = MeshSidecars::default();
    }
}
