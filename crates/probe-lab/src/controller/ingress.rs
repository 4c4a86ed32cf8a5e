//! The ingress controllers: one per proxy kind that an applied Ingress names.
//!
//! Each runs its proxy in a pod of its own on node 1 (a namespace on the bridge at the
//! kind's fixed address), publishes that address as the endpoint of its LoadBalancer
//! Service once the proxy listens, and follows the ready endpoints of the Services its
//! Ingresses name. Like a real controller it sees each change only after its own sync
//! delay ([`crate::IngressConfig::sync_delay`]), which is where a proxy still sends to a
//! pod that is already gone, and each time it hands the proxy new upstreams it emits,
//! per upstream gained or lost, a `proxy_upstream_added` or `proxy_upstream_removed`
//! event: the upstream typed as an endpoint (pod, address, port, Service) and the proxy
//! in the subject's `proxy` field, so attribution replays the proxy's own list. Upstreams change through each proxy's live mechanism, never a reload; a
//! change of the routes themselves (a re-applied Ingress) restarts the proxy, as the
//! lab keeps no reload path.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use probe_core::{EventKind, Subject};

use super::kubelet::build_sandbox;
use super::{Desired, World};
use crate::error::LabError;
use crate::ingress::{lab_dir, ProxyConfig, ProxyProcess};
use crate::manifest::{IngressKind, Route};
use crate::netns::destroy_netns;

/// Per backend (`<service>-<port>`), its upstreams.
type Upstreams = BTreeMap<String, Vec<SocketAddrV4>>;

/// How long after a proxy exited by itself its controller starts it again.
const RESTART_BACKOFF: Duration = Duration::from_secs(1);

/// One ingress controller and its proxy.
struct Controller {
    config: ProxyConfig,
    netns: String,
    sandbox: bool,
    process: Option<ProxyProcess>,
    listening: bool,
    restart_at: Option<Instant>,
    /// Upstream states waiting out the sync delay.
    queue: VecDeque<(Instant, Upstreams)>,
    /// The newest state whose sync delay has passed.
    due: Upstreams,
    /// What the running proxy was given.
    applied: Upstreams,
}

/// The lab's ingress controllers, by proxy kind.
#[derive(Default)]
pub(crate) struct Ingresses {
    controllers: BTreeMap<IngressKind, Controller>,
}

/// The proxy's config for the Ingresses of class `kind`.
fn proxy_config(desired: &Desired, kind: IngressKind) -> ProxyConfig {
    let mut config = ProxyConfig::default();
    for ing in desired.ingresses.values().filter(|i| i.class == kind) {
        config.routes.extend(ing.routes());
    }
    config.routes.sort_by_key(Route::order);
    config.backends = config.routes.iter().map(|r| r.backend.clone()).collect();
    config.backends.sort();
    config.backends.dedup();
    config
}

impl World {
    /// The endpoints of an ingress controller's own Service (its proxy pod, once it
    /// listens), or `None` when `service` is not one.
    pub(super) fn ingress_endpoints(&self, service: &str) -> Option<Vec<(Ipv4Addr, String)>> {
        let (kind, c) = self
            .ingress
            .controllers
            .iter()
            .find(|(k, _)| k.service_name() == service)?;
        Some(if c.listening {
            vec![(kind.pod_ip(), kind.pod_name())]
        } else {
            Vec::new()
        })
    }

    /// One step of every ingress controller: start, restart or stop proxies as the
    /// Ingresses ask, queue the backends' endpoints, and hand each proxy what its sync
    /// delay lets it see.
    pub(super) fn ingress_controllers(&mut self, desired: &Desired, now: Instant) {
        let kinds: Vec<IngressKind> = {
            let mut k: Vec<IngressKind> = desired.ingresses.values().map(|i| i.class).collect();
            k.sort();
            k.dedup();
            k
        };
        let gone: Vec<IngressKind> = self
            .ingress
            .controllers
            .keys()
            .filter(|k| !kinds.contains(k))
            .copied()
            .collect();
        for kind in gone {
            if let Some(c) = self.ingress.controllers.remove(&kind) {
                self.stop_controller(c);
            }
        }
        for kind in kinds {
            let config = proxy_config(desired, kind);
            let wanted = self.upstreams_of(desired, &config);
            let netns = format!("{}-ing-{kind}", self.names.run_id);
            let c = self
                .ingress
                .controllers
                .entry(kind)
                .or_insert_with(|| Controller {
                    config: config.clone(),
                    netns,
                    sandbox: false,
                    process: None,
                    listening: false,
                    restart_at: Some(now),
                    queue: VecDeque::new(),
                    due: Upstreams::new(),
                    applied: Upstreams::new(),
                });
            if c.config != config {
                c.config = config;
                c.process = None;
                c.listening = false;
                c.restart_at = Some(now);
            }
            let last = c.queue.back().map(|(_, u)| u).unwrap_or(&c.due);
            if *last != wanted {
                c.queue.push_back((now, wanted));
            }
            while c
                .queue
                .front()
                .is_some_and(|(t, _)| now >= *t + self.cfg.ingress.sync_delay)
            {
                if let Some((_, u)) = c.queue.pop_front() {
                    c.due = u;
                }
            }
            if let Err(e) = self.run_proxy(kind, now) {
                self.note_err(e);
            }
            if let Err(e) = self.push_upstreams(kind) {
                self.note_err(e);
            }
        }
    }

    /// Per backend of `config`, its Service's ready endpoints at the Service's
    /// targetPort for that port.
    pub(super) fn upstreams_of(&self, desired: &Desired, config: &ProxyConfig) -> Upstreams {
        let mut out = Upstreams::new();
        for route in &config.routes {
            if out.contains_key(&route.backend) {
                continue;
            }
            let Some((service, port)) = route.backend.rsplit_once('-') else {
                continue;
            };
            let port: u16 = port.parse().unwrap_or(0);
            let target = desired.services.get(service).and_then(|s| {
                let ports = &s.spec.ports;
                ports
                    .iter()
                    .find(|p| p.port == port)
                    .or(ports.first())
                    .map(|p| p.target_port)
            });
            let addrs = match target {
                Some(t) => self
                    .endpoints
                    .get(service)
                    .map(|eps| {
                        eps.iter()
                            .map(|(ip, _)| SocketAddrV4::new(*ip, t))
                            .collect()
                    })
                    .unwrap_or_default(),
                None => Vec::new(),
            };
            out.insert(route.backend.clone(), addrs);
        }
        out
    }

    /// Keeps `kind`'s proxy running: builds its pod, starts it (again after an exit),
    /// and notes when it listens.
    fn run_proxy(&mut self, kind: IngressKind, now: Instant) -> Result<(), LabError> {
        let node_ns = self.names.nodes[0].clone();
        let (run_id, kernel) = (self.names.run_id.clone(), self.cfg.kernel);
        let Some(c) = self.ingress.controllers.get_mut(&kind) else {
            return Ok(());
        };
        if let Some(p) = c.process.as_mut() {
            if let Some(exit) = p.exited() {
                c.process = None;
                c.listening = false;
                c.restart_at = Some(now + RESTART_BACKOFF);
                return Err(LabError::Setup(exit));
            }
            if !c.listening && p.listening() {
                c.listening = true;
            }
            return Ok(());
        }
        if c.restart_at.is_none_or(|t| now < t) {
            return Ok(());
        }
        c.restart_at = None;
        if !c.sandbox {
            let veth = format!("ing-{kind}");
            if let Err(e) = build_sandbox(kernel, &node_ns, &c.netns, &veth, kind.pod_ip()) {
                let _ = destroy_netns(&c.netns);
                c.restart_at = Some(now + RESTART_BACKOFF);
                return Err(e);
            }
            c.sandbox = true;
        }
        c.applied.clear();
        match ProxyProcess::start(kind, &run_id, &c.netns, &c.config) {
            Ok(p) => {
                c.process = Some(p);
                Ok(())
            }
            Err(e) => {
                c.restart_at = Some(now + RESTART_BACKOFF);
                Err(e)
            }
        }
    }

    /// Gives `kind`'s listening proxy every backend whose due upstreams differ from what
    /// it has, one event each.
    fn push_upstreams(&mut self, kind: IngressKind) -> Result<(), LabError> {
        let Some(c) = self.ingress.controllers.get_mut(&kind) else {
            return Ok(());
        };
        let Some(p) = c.process.as_mut().filter(|_| c.listening) else {
            return Ok(());
        };
        let (mut pushed, mut failed) = (Vec::new(), None);
        for (backend, upstreams) in &c.due {
            let before = c.applied.get(backend).cloned().unwrap_or_default();
            if c.applied.contains_key(backend) && before == *upstreams {
                continue;
            }
            // A refused update is tried again on the next tick.
            if let Err(e) = p.set_upstreams(backend, upstreams) {
                failed = Some(e);
                break;
            }
            c.applied.insert(backend.clone(), upstreams.clone());
            pushed.push((backend.clone(), before, upstreams.clone()));
        }
        for (backend, before, after) in pushed {
            let proxy = kind.pod_name();
            self.emit_upstream_changes((&proxy, kind.class()), &backend, &before, &after);
        }
        failed.map_or(Ok(()), Err)
    }

    /// One typed event per upstream that proxy `proxy` (its pod's name; `(kind)` after
    /// it in the detail) gained or lost when its list for `backend` (`<service>-<port>`)
    /// went from `before` to `after`: the upstream as an endpoint of the Service, with
    /// its pod when the lab knows the address, and the proxy in the subject's own field.
    pub(super) fn emit_upstream_changes(
        &self,
        (proxy, kind): (&str, &str),
        backend: &str,
        before: &[SocketAddrV4],
        after: &[SocketAddrV4],
    ) {
        let service = backend.rsplit_once('-').map_or(backend, |(s, _)| s);
        let changes = after
            .iter()
            .filter(|u| !before.contains(u))
            .map(|u| (EventKind::ProxyUpstreamAdded, u, "sends"))
            .chain(
                before
                    .iter()
                    .filter(|u| !after.contains(u))
                    .map(|u| (EventKind::ProxyUpstreamRemoved, u, "no longer sends")),
            );
        for (event, upstream, verb) in changes {
            let mut subject =
                Subject::endpoint(service, IpAddr::V4(*upstream.ip()), Some(upstream.port()))
                    .with_proxy(proxy);
            subject.pod = self
                .pods
                .iter()
                .find(|p| p.ip == *upstream.ip())
                .map(|p| p.name.clone());
            let pod = subject.pod.as_deref().unwrap_or("");
            let detail = format!("{proxy} ({kind}) {verb} {backend} to {upstream} {pod}");
            self.emit(event, subject, detail.trim_end().to_string());
        }
    }

    /// Ends a controller: its proxy, then its pod.
    fn stop_controller(&mut self, mut c: Controller) {
        c.process = None;
        if c.sandbox {
            if let Err(e) = destroy_netns(&c.netns) {
                self.note_err(e);
            }
        }
    }

    /// Ends every proxy and pod of the lab's ingress controllers and removes the lab's
    /// folder (their configs and logs).
    pub(super) fn ingress_teardown(&mut self) -> Result<(), LabError> {
        let controllers = std::mem::take(&mut self.ingress.controllers);
        let mut first = None;
        for (_, mut c) in controllers {
            c.process = None;
            if c.sandbox {
                if let Err(e) = destroy_netns(&c.netns) {
                    first.get_or_insert(e);
                }
            }
        }
        let _ = std::fs::remove_dir_all(lab_dir(&self.names.run_id));
        first.map_or(Ok(()), Err)
    }
}
