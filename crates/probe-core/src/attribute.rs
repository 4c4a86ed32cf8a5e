//! Why did a window happen? One sentence per outage window, derived from the
//! rollout's events around it and the window's failure kinds.
//!
//! "213 requests failed" is what any load generator says. An SRE needs "no
//! ready endpoint: old pods terminating since +12.31 s, new pod backend-x2 not
//! ready until +15.02 s". The events come from the lab or a Kubernetes watch
//! and speak one typed model ([`Event`]): pod events name the pod and its
//! address, endpoint events the address. We replay them up to the window's
//! start to know which pods were ready, terminating or gone, then match that
//! state against what the requests saw. Only the events' typed fields are read,
//! never their detail text. Where the events do not explain a window, the cause
//! says so plainly rather than guess.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use crate::event::{Event, EventKind};
use crate::report::OutageWindow;

#[derive(Default, Clone)]
struct Pod {
    ip: Option<IpAddr>,
    ready_at: Option<f64>,
    terminating_at: Option<f64>,
    deleted_at: Option<f64>,
}

#[derive(Default)]
struct Cluster {
    pods: BTreeMap<String, Pod>,
    /// Endpoint addresses currently in the Service, and when added.
    endpoints: BTreeMap<IpAddr, f64>,
    /// Endpoints whose `terminating` condition turned true, and when: kube-proxy sends
    /// them no new connections, so they are not serving.
    endpoints_terminating: BTreeMap<IpAddr, f64>,
    ever_had_endpoint_events: bool,
}

impl Cluster {
    fn replay(events: &[Event], until_ms: f64) -> Cluster {
        let mut c = Cluster::default();
        for e in events.iter().filter(|e| e.at_ms <= until_ms) {
            c.apply(e);
        }
        c
    }

    fn apply(&mut self, e: &Event) {
        if e.kind.is_pod() {
            let Some(name) = &e.subject.pod else {
                return;
            };
            let pod = self.pods.entry(name.clone()).or_default();
            if pod.ip.is_none() {
                pod.ip = e.subject.address;
            }
            match e.kind {
                EventKind::PodReady => pod.ready_at = Some(e.at_ms),
                EventKind::PodUnready => pod.ready_at = None,
                EventKind::PodTerminating => pod.terminating_at = Some(e.at_ms),
                EventKind::PodDeleted => pod.deleted_at = Some(e.at_ms),
                _ => {}
            }
        } else if e.kind.is_endpoint() {
            self.ever_had_endpoint_events = true;
            let Some(ip) = e.subject.address else {
                return;
            };
            // An endpoint event that names its pod names the pod at that address.
            if let Some(name) = &e.subject.pod {
                let pod = self.pods.entry(name.clone()).or_default();
                pod.ip.get_or_insert(ip);
            }
            match e.kind {
                EventKind::EndpointAdded => {
                    self.endpoints.insert(ip, e.at_ms);
                    self.endpoints_terminating.remove(&ip);
                }
                EventKind::EndpointTerminating => {
                    self.endpoints.remove(&ip);
                    self.endpoints_terminating.insert(ip, e.at_ms);
                }
                EventKind::EndpointRemoved => {
                    self.endpoints.remove(&ip);
                }
                _ => {}
            }
        }
    }

    fn pod_by_ip(&self, ip: IpAddr) -> Option<(&String, &Pod)> {
        self.pods
            .iter()
            .filter(|(_, p)| p.ip == Some(ip))
            .max_by(|a, b| {
                let t = |p: &Pod| p.ready_at.or(p.terminating_at).unwrap_or(0.0);
                t(a.1).total_cmp(&t(b.1))
            })
    }

    /// What receives new connections: the endpoints if there were endpoint events, else
    /// the ready pods that are not terminating. An endpoint no pod event names is known
    /// by its address only, and is never called a pod.
    fn serving(&self) -> Vec<Serving> {
        if self.ever_had_endpoint_events {
            self.endpoints
                .keys()
                .map(|ip| match self.pod_by_ip(*ip) {
                    Some((name, pod)) => Serving::named(name, pod),
                    None => Serving {
                        name: None,
                        pod: Pod {
                            ip: Some(*ip),
                            ..Pod::default()
                        },
                    },
                })
                .collect()
        } else {
            self.pods
                .iter()
                .filter(|(_, p)| {
                    p.ready_at.is_some() && p.terminating_at.is_none() && p.deleted_at.is_none()
                })
                .map(|(n, p)| Serving::named(n, p))
                .collect()
        }
    }

    /// Pods that began terminating (their own event, or their endpoint's `terminating`
    /// condition) at or before `until` and were not deleted before `after`, oldest first,
    /// with when they began.
    fn terminating_between(&self, after: f64, until: f64) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self
            .pods
            .iter()
            .filter_map(|(n, p)| {
                let endpoint = p.ip.and_then(|ip| self.endpoints_terminating.get(&ip));
                let since = match (p.terminating_at, endpoint) {
                    (Some(a), Some(b)) => a.min(*b),
                    (a, b) => a.or(b.copied())?,
                };
                let gone_before = p.deleted_at.is_some_and(|d| d < after);
                (since <= until && !gone_before).then(|| (n.clone(), since))
            })
            .collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1));
        v
    }
}

/// A pod or endpoint that receives new connections.
#[derive(Clone)]
struct Serving {
    /// The pod's name, when an event named it.
    name: Option<String>,
    pod: Pod,
}

impl Serving {
    fn named(name: &str, pod: &Pod) -> Serving {
        Serving {
            name: Some(name.to_string()),
            pod: pod.clone(),
        }
    }

    /// `web-a`, or `10.244.0.5` for an endpoint that no pod event named.
    fn label(&self) -> String {
        match (&self.name, self.pod.ip) {
            (Some(n), _) => n.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => "?".into(),
        }
    }
}

/// How long after a pod became ready its endpoint can first carry traffic, at most:
/// kube-proxy's sync and the load balancer's announcement, with room for a slow node.
/// A pod that became ready longer before a window than this had already been serving.
const READY_REACH_MS: f64 = 5000.0;

/// How far before a window a pod's termination still explains connections lost in it:
/// the kubelet's preStop hook and its SIGTERM come later than the deletion, bounded by
/// Kubernetes' default grace period (30 s).
const TERMINATING_REACH_MS: f64 = 30_000.0;

fn at(ms: f64) -> String {
    format!("+{:.2} s", ms / 1000.0)
}

/// A list of names for a sentence; never called with an empty list (callers say
/// something else then).
fn names(list: &[String]) -> String {
    match list.len() {
        0 => "none".into(),
        1..=3 => list.join(", "),
        n => format!("{} and {} more", list[..3].join(", "), n - 3),
    }
}

/// `connection_reset x 4, connection_closed x 2`: the window's kinds, most first.
fn kinds_of(w: &OutageWindow) -> String {
    let mut kinds: Vec<(&String, &u64)> = w.kinds.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    kinds
        .iter()
        .map(|(k, n)| format!("{k} x {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first pod to become ready at or after `from` (a new pod ending the gap).
fn next_ready(events: &[Event], from: f64) -> Option<(String, f64)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::PodReady && e.at_ms >= from)
        .find_map(|e| e.subject.pod.clone().map(|n| (n, e.at_ms)))
}

fn no_endpoint_sentence(events: &[Event], c: &Cluster, w: &OutageWindow, what: &str) -> String {
    // Only pods that began terminating in this rollout, not in an earlier one.
    let rollout_began = events
        .iter()
        .filter(|e| {
            (e.kind == EventKind::RolloutStart || e.kind == EventKind::TriggerStart)
                && e.at_ms <= w.start_ms
        })
        .map(|e| e.at_ms)
        .fold(0.0, f64::max);
    let terminating: Vec<(String, f64)> = c
        .terminating_between(f64::NEG_INFINITY, w.start_ms)
        .into_iter()
        .filter(|(_, t)| *t >= rollout_began)
        .collect();
    let mut sentence = format!("no ready endpoint ({what})");
    if let Some((_, since)) = terminating.first() {
        let who: Vec<String> = terminating.iter().map(|(n, _)| n.clone()).collect();
        sentence += &format!(
            ": old pods terminating since {} ({})",
            at(*since),
            names(&who)
        );
    }
    sentence += if terminating.is_empty() { ": " } else { ", " };
    match next_ready(events, w.start_ms) {
        Some((pod, t)) => {
            sentence += &format!("new pod {pod} not ready until {}", at(t));
            // Still failing well after it became ready: it was not listening yet.
            if w.end_ms > t + 1000.0 && w.kinds.contains_key("connection_refused") {
                sentence += &format!(
                    ", then refused connections until {} (ready before its app listened: no readinessProbe?)",
                    at(w.end_ms)
                );
            }
        }
        None => sentence += "no new pod became ready before the run ended",
    }
    sentence
}

/// What is known about a window no rollout event explains: its kinds, the last event
/// before it, and what was serving.
fn unexplained(w: &OutageWindow, events: &[Event], serving: &[Serving]) -> String {
    let mut sentence = format!("no rollout event explains this window ({})", kinds_of(w));
    if let Some(e) = events.iter().rev().find(|e| e.at_ms <= w.start_ms) {
        let whom = e
            .subject
            .pod
            .clone()
            .or_else(|| e.subject.address.map(|a| a.to_string()))
            .or_else(|| e.subject.deployment.clone())
            .or_else(|| e.subject.service.clone())
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        sentence += &format!(
            "; the last event before it: {}{whom} at {}",
            e.kind,
            at(e.at_ms)
        );
    }
    let pods: Vec<String> = serving
        .iter()
        .filter(|s| s.name.is_some())
        .map(Serving::label)
        .collect();
    let addresses: Vec<String> = serving
        .iter()
        .filter(|s| s.name.is_none())
        .map(Serving::label)
        .collect();
    if !pods.is_empty() {
        sentence += &format!("; serving: pods {}", names(&pods));
    }
    if !addresses.is_empty() {
        let and = if pods.is_empty() {
            "; serving:"
        } else {
            " and"
        };
        sentence += &format!("{and} endpoints {}", names(&addresses));
    }
    sentence
}

fn cause_of(w: &OutageWindow, events: &[Event]) -> String {
    let c = Cluster::replay(events, w.start_ms);
    let dominant = w
        .kinds
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, _)| k.as_str())
        .unwrap_or("");
    let serving = c.serving();
    // A pod still in the endpoints while terminating or gone.
    let leaving: Vec<&Serving> = serving
        .iter()
        .filter(|s| s.name.is_some())
        .filter(|s| s.pod.terminating_at.is_some() || s.pod.deleted_at.is_some())
        .collect();
    let endpoint_removed_after = |pod: &Pod| -> Option<f64> {
        let ip = pod.ip?;
        events
            .iter()
            .find(|e| {
                (e.kind == EventKind::EndpointRemoved || e.kind == EventKind::EndpointTerminating)
                    && e.at_ms >= w.start_ms
                    && e.subject.address == Some(ip)
            })
            .map(|e| e.at_ms)
    };
    // Pods whose termination reaches this window: they began terminating before it ended
    // and within the grace period before it began, and were not deleted before it.
    let recently_terminating: Vec<(String, f64)> = c
        .terminating_between(w.start_ms, w.end_ms)
        .into_iter()
        .filter(|(_, t)| *t >= w.start_ms - TERMINATING_REACH_MS)
        .collect();
    let lost_on_open_connections = !w.kinds.is_empty()
        && w.kinds
            .keys()
            .all(|k| k == "connection_reset" || k == "connection_closed");
    // "No ready endpoint" only when events said what the endpoints or pods were.
    let knows_endpoints = c.ever_had_endpoint_events || !c.pods.is_empty();
    match dominant {
        "host_unreachable" => {
            if serving.is_empty() && knows_endpoints {
                return no_endpoint_sentence(events, &c, w, "the address is no longer announced");
            }
            if let Some(s) = leaving.iter().find(|s| s.pod.deleted_at.is_some()) {
                let removed = endpoint_removed_after(&s.pod)
                    .map(|t| format!(" until its endpoint was removed at {}", at(t)))
                    .unwrap_or_default();
                return format!(
                    "traffic still sent to pod {} ({}) after it was deleted at {}{removed}: its address no longer answers",
                    s.label(),
                    s.pod.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "?".into()),
                    at(s.pod.deleted_at.unwrap_or(w.start_ms)),
                );
            }
            unexplained(w, events, &serving)
        }
        "connection_refused" | "connection_reset" | "connection_closed" | "connect_timeout"
        | "response_timeout" => {
            if serving.is_empty() && knows_endpoints {
                return no_endpoint_sentence(events, &c, w, "the Service rejects connections");
            }
            if let Some(s) = leaving.first() {
                let removed = endpoint_removed_after(&s.pod)
                    .map(|t| format!(" until its endpoint was removed at {}", at(t)))
                    .unwrap_or_default();
                return format!(
                    "terminating pod {} (since {}) still received traffic{removed}: {dominant}",
                    s.label(),
                    at(s.pod
                        .terminating_at
                        .or(s.pod.deleted_at)
                        .unwrap_or(w.start_ms)),
                );
            }
            if lost_on_open_connections && !recently_terminating.is_empty() {
                let who: Vec<String> = recently_terminating
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect();
                let pods = if who.len() == 1 { "pod" } else { "pods" };
                // The lab says when a preStop sleep ran: then the sleep was not the fix.
                let slept = events.iter().any(|e| {
                    e.kind.as_str() == "pod_prestop"
                        && e.at_ms <= w.start_ms
                        && e.subject.pod.as_ref().is_some_and(|p| who.contains(p))
                });
                let advice = if slept {
                    "; a preStop sleep ran first, but it moves no established connection: the app must drain (answer with Connection: close) before it exits"
                } else {
                    "; a preStop sleep with a graceful drain (answers with Connection: close) moves clients off first"
                };
                return format!(
                    "connections kept open to terminating {pods} {} (since {}) were {} when {} stopped: established connections stay on their pod whatever kube-proxy's rules say{advice}",
                    names(&who),
                    at(recently_terminating[0].1),
                    match (w.kinds.contains_key("connection_reset"), w.kinds.contains_key("connection_closed")) {
                        (true, true) => "reset or closed",
                        (true, false) => "reset",
                        _ => "closed",
                    },
                    if who.len() == 1 { "it" } else { "they" },
                );
            }
            if dominant == "connection_refused" {
                // The newest pod that became ready within reach of the window and still
                // refuses: ready before it listened.
                let newest = serving
                    .iter()
                    .filter(|s| s.name.is_some())
                    .filter_map(|s| s.pod.ready_at.map(|t| (t, s)))
                    .filter(|(t, _)| *t >= w.start_ms - READY_REACH_MS && *t <= w.end_ms)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((ready, s)) = newest {
                    return format!(
                        "pod {} became ready at {} before its app listened (a pod without a readinessProbe is ready as soon as its process runs) and refused connections until {}",
                        s.label(),
                        at(ready),
                        at(w.end_ms)
                    );
                }
                if let Some((name, since)) = recently_terminating.last() {
                    return format!(
                        "connections refused while pod {name} was terminating (since {}): new connections still routed to it met its stopped app; a preStop sleep keeps a pod accepting until kube-proxy's rules have moved",
                        at(*since)
                    );
                }
            }
            unexplained(w, events, &serving)
        }
        _ => unexplained(w, events, &serving),
    }
}

/// Connect timeouts beside refusals or failed address resolution are, on a stock Linux
/// kernel, mostly the same errors rate-limited away: a host answers one client with at
/// most about one ICMP error per second (`net.ipv4.icmp_ratelimit`, 1000 ms), and every
/// other SYN is dropped in silence and retried until the connect times out. Says so,
/// with the count that got through.
fn rate_limited_note(w: &OutageWindow, no_ready_endpoint: bool) -> Option<String> {
    let count = |k: &str| w.kinds.get(k).copied().unwrap_or(0);
    let timeouts = count("connect_timeout");
    let through = count("connection_refused") + count("host_unreachable");
    if timeouts == 0 || (through == 0 && !no_ready_endpoint) {
        return None;
    }
    Some(format!(
        "; {timeouts} of {} failed connects timed out instead of failing at once: a host sends one client at most about one ICMP error per second (Linux's icmp_ratelimit), so only {through} got the refusal or \"no route\" through",
        timeouts + through
    ))
}

/// A window that exists only because one node's kube-proxy rules lagged behind the
/// others': an endpoint whose pod was already terminating when the window began was
/// still in that node's rules (its `endpoint_removed` with `subject.node` came at or
/// after the start) though another node had dropped it before, and the window ended
/// when the lagging node caught up. Requests routed by that node met a pod already gone.
/// `None` when the events show no such disagreement between nodes.
fn lagging_node_cause(w: &OutageWindow, events: &[Event]) -> Option<String> {
    // A window's last failures are sent just before the node's sync lands.
    const CATCH_UP_SLACK_MS: f64 = 1000.0;
    let node_removals: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::EndpointRemoved && e.subject.node.is_some())
        .filter(|e| e.subject.address.is_some())
        .collect();
    node_removals.iter().find_map(|lag| {
        if lag.at_ms < w.start_ms || w.end_ms > lag.at_ms + CATCH_UP_SLACK_MS {
            return None;
        }
        let early = node_removals
            .iter()
            .filter(|e| e.subject.address == lag.subject.address)
            .filter(|e| e.subject.node != lag.subject.node && e.at_ms <= w.start_ms)
            .min_by(|a, b| a.at_ms.total_cmp(&b.at_ms))?;
        let pod = lag.subject.pod.as_deref()?;
        let pod_event = |kind: EventKind| {
            events
                .iter()
                .find(|e| e.kind == kind && e.subject.pod.as_deref() == Some(pod))
                .map(|e| e.at_ms)
        };
        let terminating = pod_event(EventKind::PodTerminating).filter(|t| *t <= w.start_ms)?;
        let gone = pod_event(EventKind::PodDeleted)
            .filter(|t| *t <= w.end_ms)
            .map(|t| format!(", deleted at {}", at(t)))
            .unwrap_or_default();
        Some(format!(
            "{lagging}'s kube-proxy rules lagged: they still sent new connections to pod {pod} ({ip}), terminating since {}{gone}, until {}, though {other}'s rules had dropped it at {}: requests routed by {lagging} met a pod already gone ({kinds})",
            at(terminating),
            at(lag.at_ms),
            at(early.at_ms),
            lagging = lag.subject.node.as_deref().unwrap_or("?"),
            other = early.subject.node.as_deref().unwrap_or("?"),
            ip = lag.subject.address.map(|a| a.to_string()).unwrap_or_default(),
            kinds = w.kinds.keys().cloned().collect::<Vec<_>>().join(", "),
        ))
    })
}

/// Fills in `cause` for every window, when the run has rollout events.
///
/// ```
/// use probe_core::{attribute_causes, Event, EventKind::*, OutageWindow, Subject};
/// let (a, b) = ("10.244.0.5".parse().ok(), "10.244.0.6".parse().ok());
/// let pod = |at, kind, name: &str, ip| Event::new(at, kind, name).with_subject(Subject::pod(name, ip));
/// let endpoint = |at, kind, ip: Option<_>| {
///     Event::new(at, kind, "svc").with_subject(Subject::endpoint("svc", ip.unwrap(), Some(8080)))
/// };
/// let events = vec![
///     pod(0.0, PodReady, "web-a", a),
///     endpoint(0.0, EndpointAdded, a),
///     pod(1000.0, PodTerminating, "web-a", a),
///     endpoint(1010.0, EndpointRemoved, a),
///     pod(3000.0, PodReady, "web-b", b),
/// ];
/// let mut windows = vec![OutageWindow {
///     start_ms: 1200.0, end_ms: 3100.0, duration_ms: 1900.0, failed: 190, held_ok: 0,
///     kinds: [("host_unreachable".to_string(), 190)].into(), open: false,
///     after_event: None, cause: None, syn_retransmitted: 0, pod_before: None, pod_after: None,
///     proxy_retried: None,
/// }];
/// attribute_causes(&mut windows, &events);
/// let cause = windows[0].cause.as_deref().unwrap();
/// assert!(cause.starts_with("no ready endpoint"), "{cause}");
/// assert!(cause.contains("web-a") && cause.contains("new pod web-b not ready until +3.00 s"), "{cause}");
/// ```
pub fn attribute_causes(windows: &mut [OutageWindow], events: &[Event]) {
    if !events.iter().any(|e| e.kind.is_rollout()) {
        return;
    }
    let mut sorted: Vec<Event> = events.to_vec();
    sorted.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let rollout_began = sorted
        .iter()
        .find(|e| e.kind == EventKind::TriggerStart || e.kind == EventKind::RolloutStart)
        .map(|e| e.at_ms);
    for w in windows.iter_mut() {
        if rollout_began.is_some_and(|t| w.end_ms <= t) {
            w.cause = Some(format!(
                "baseline failure: the service was already failing before the rollout began ({})",
                w.kinds.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        }
        let mut cause = lagging_node_cause(w, &sorted).unwrap_or_else(|| cause_of(w, &sorted));
        let no_ready_endpoint = cause.starts_with("no ready endpoint");
        if let Some(note) = rate_limited_note(w, no_ready_endpoint) {
            cause += &note;
        }
        w.cause = Some(cause);
    }
}

/// Adds to every explained window which pod answered last before it and first after it,
/// when the answers named their pods (`pod_from`): with the rollout's events beside it,
/// that says which pod went away and which one took over.
pub(crate) fn name_pods_around(windows: &mut [OutageWindow]) {
    for w in windows {
        let Some(cause) = w.cause.as_mut() else {
            continue;
        };
        match (&w.pod_before, &w.pod_after) {
            (Some(before), Some(after)) if before == after => {
                let _ = write!(
                    cause,
                    "; pod {before} answered just before it and again after it"
                );
            }
            (Some(before), Some(after)) => {
                let _ = write!(cause, "; the last answer before it came from pod {before}, the first after it from pod {after}");
            }
            (Some(before), None) => {
                let _ = write!(cause, "; the last answer before it came from pod {before}");
            }
            (None, Some(after)) => {
                let _ = write!(cause, "; the first answer after it came from pod {after}");
            }
            (None, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: f64, end: f64, kind: &str) -> OutageWindow {
        OutageWindow {
            start_ms: start,
            end_ms: end,
            duration_ms: end - start,
            failed: 10,
            held_ok: 0,
            kinds: [(kind.to_string(), 10)].into(),
            open: false,
            after_event: None,
            cause: None,
            syn_retransmitted: 0,
            pod_before: None,
            pod_after: None,
            proxy_retried: None,
        }
    }

    #[test]
    fn an_explained_window_names_the_pods_around_it() {
        let mut w = vec![window(1000.0, 2000.0, "connection_refused")];
        w[0].cause = Some("no ready endpoint".into());
        w[0].pod_before = Some("web-a".into());
        w[0].pod_after = Some("web-b".into());
        let mut unexplained = window(3000.0, 3100.0, "connection_refused");
        unexplained.pod_before = Some("web-b".into());
        w.push(unexplained);
        name_pods_around(&mut w);
        assert_eq!(
            w[0].cause.as_deref(),
            Some("no ready endpoint; the last answer before it came from pod web-a, the first after it from pod web-b")
        );
        assert_eq!(w[1].cause, None);
    }

    fn ev(at: f64, kind: &str, detail: &str) -> Event {
        Event::new(at, kind, detail)
    }

    fn pod_ev(at: f64, kind: &str, name: &str, ip: &str) -> Event {
        ev(at, kind, name).with_subject(crate::Subject::pod(name, ip.parse().ok()))
    }

    fn ep_ev(at: f64, kind: &str, ip: &str) -> Event {
        ev(at, kind, "svc").with_subject(crate::Subject::endpoint(
            "svc",
            ip.parse().unwrap(),
            Some(8080),
        ))
    }

    fn base() -> Vec<Event> {
        vec![
            pod_ev(0.0, "pod_ready", "old-a", "10.244.0.2"),
            ep_ev(0.0, "endpoint_added", "10.244.0.2"),
        ]
    }

    #[test]
    fn a_window_from_one_nodes_lagging_rules_says_so() {
        let ip = "10.244.16.2";
        let on_node = |at: f64, kind: &str, node: &str| {
            let mut e = ep_ev(at, kind, ip);
            e.subject = e.subject.with_pod("web-old").with_node(node);
            e
        };
        let mut events = base();
        events.extend([
            pod_ev(1000.0, "pod_terminating", "web-old", ip),
            ep_ev(1000.0, "endpoint_removed", ip),
            on_node(1100.0, "endpoint_removed", "node1"),
            pod_ev(1900.0, "pod_deleted", "web-old", ip),
            on_node(4000.0, "endpoint_removed", "node2"),
        ]);
        let mut ws = vec![window(1500.0, 3900.0, "connection_refused")];
        attribute_causes(&mut ws, &events);
        let cause = ws[0].cause.as_deref().unwrap();
        assert!(
            cause.starts_with("node2's kube-proxy rules lagged: they still sent new connections to pod web-old (10.244.16.2), terminating since +1.00 s, deleted at +1.90 s, until +4.00 s, though node1's rules had dropped it at +1.10 s"),
            "{cause}"
        );
        // Both nodes dropped it before the window: not a lag, the usual sentence.
        let mut ws = vec![window(4500.0, 5000.0, "connection_refused")];
        attribute_causes(&mut ws, &events);
        assert!(
            !ws[0].cause.as_deref().unwrap().contains("lagged"),
            "{ws:?}"
        );
        // A window that outlasts the lagging node's sync has another cause.
        let mut ws = vec![window(1500.0, 9000.0, "connection_refused")];
        attribute_causes(&mut ws, &events);
        assert!(
            !ws[0].cause.as_deref().unwrap().contains("lagged"),
            "{ws:?}"
        );
    }

    #[test]
    fn plain_runs_get_no_cause() {
        let mut w = vec![window(100.0, 200.0, "connection_refused")];
        attribute_causes(
            &mut w,
            &[ev(50.0, "mark", "x"), ev(60.0, "trigger_start", "kubectl")],
        );
        assert_eq!(w[0].cause, None);
    }

    #[test]
    fn refused_after_an_early_ready_names_the_pod() {
        let mut events = base();
        events.extend([
            pod_ev(1000.0, "pod_created", "new-b", "10.244.0.3"),
            pod_ev(1100.0, "pod_ready", "new-b", "10.244.0.3"),
            ep_ev(1150.0, "endpoint_added", "10.244.0.3"),
            pod_ev(1200.0, "pod_terminating", "old-a", "10.244.0.2"),
            ep_ev(1210.0, "endpoint_removed", "10.244.0.2"),
        ]);
        let mut w = vec![window(1300.0, 3100.0, "connection_refused")];
        attribute_causes(&mut w, &events);
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "pod new-b became ready at +1.10 s before its app listened (a pod without a readinessProbe is ready as soon as its process runs) and refused connections until +3.10 s"
        );
    }

    #[test]
    fn terminating_pod_still_in_endpoints() {
        let mut events = base();
        events.push(pod_ev(500.0, "pod_terminating", "old-a", "10.244.0.2"));
        events.push(ep_ev(900.0, "endpoint_removed", "10.244.0.2"));
        let mut w = vec![window(600.0, 800.0, "connection_refused")];
        attribute_causes(&mut w, &events);
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "terminating pod old-a (since +0.50 s) still received traffic until its endpoint was removed at +0.90 s: connection_refused"
        );
    }

    #[test]
    fn deleted_pod_ip_is_host_unreachable() {
        let mut events = base();
        events.push(pod_ev(2000.0, "pod_ready", "new-b", "10.244.0.3"));
        events.push(ep_ev(2000.0, "endpoint_added", "10.244.0.3"));
        events.push(pod_ev(2500.0, "pod_terminating", "old-a", "10.244.0.2"));
        events.push(pod_ev(2600.0, "pod_deleted", "old-a", "10.244.0.2"));
        events.push(ep_ev(4000.0, "endpoint_removed", "10.244.0.2"));
        let mut w = vec![window(2700.0, 4000.0, "host_unreachable")];
        attribute_causes(&mut w, &events);
        let cause = w[0].cause.clone().unwrap();
        assert!(cause.starts_with("traffic still sent to pod old-a (10.244.0.2) after it was deleted at +2.60 s until its endpoint was removed at +4.00 s"), "{cause}");
    }

    #[test]
    fn timeouts_beside_refusals_are_called_rate_limited() {
        let mut events = base();
        events.push(pod_ev(500.0, "pod_terminating", "old-a", "10.244.0.2"));
        events.push(ep_ev(510.0, "endpoint_removed", "10.244.0.2"));
        let mut w = vec![window(600.0, 2600.0, "connect_timeout")];
        w[0].kinds.insert("connection_refused".into(), 2);
        attribute_causes(&mut w, &events);
        let cause = w[0].cause.clone().unwrap();
        assert!(cause.starts_with("no ready endpoint"), "{cause}");
        assert!(
            cause.ends_with("10 of 12 failed connects timed out instead of failing at once: a host sends one client at most about one ICMP error per second (Linux's icmp_ratelimit), so only 2 got the refusal or \"no route\" through"),
            "{cause}"
        );
    }

    #[test]
    fn unexplained_windows_say_what_is_known() {
        let mut w = vec![window(600.0, 800.0, "http_5xx")];
        attribute_causes(&mut w, &base());
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "no rollout event explains this window (http_5xx x 10); the last event before it: endpoint_added 10.244.0.2 at +0.00 s; serving: pods old-a"
        );
    }

    /// A Kubernetes watch's order for a rolling update's old pod: its endpoint turns
    /// `terminating` at once and is removed from the EndpointSlice only when the pod is
    /// gone. A terminating endpoint takes no new connections, so it is not "serving".
    fn rolling_with_terminating_endpoint() -> Vec<Event> {
        vec![
            ev(0.0, "trigger_start", "kubectl"),
            pod_ev(0.0, "pod_ready", "old-a", "10.244.0.2"),
            ep_ev(0.0, "endpoint_added", "10.244.0.2"),
            ev(100.0, "rollout_start", "web"),
            pod_ev(150.0, "pod_created", "new-b", "10.244.0.3"),
            pod_ev(2650.0, "pod_ready", "new-b", "10.244.0.3"),
            ep_ev(2660.0, "endpoint_added", "10.244.0.3"),
            pod_ev(9000.0, "pod_terminating", "old-a", "10.244.0.2"),
            ep_ev(9005.0, "endpoint_terminating", "10.244.0.2"),
            pod_ev(12000.0, "pod_deleted", "old-a", "10.244.0.2"),
            ep_ev(12010.0, "endpoint_removed", "10.244.0.2"),
        ]
    }

    #[test]
    fn refusals_from_a_terminating_endpoint_blame_it_not_the_ready_pod() {
        let mut w = vec![window(9600.0, 9700.0, "connection_refused")];
        attribute_causes(&mut w, &rolling_with_terminating_endpoint());
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "connections refused while pod old-a was terminating (since +9.00 s): new connections still routed to it met its stopped app; a preStop sleep keeps a pod accepting until kube-proxy's rules have moved"
        );
    }

    #[test]
    fn a_pod_ready_long_before_the_window_is_not_blamed() {
        let mut events = base();
        events.push(ev(100.0, "rollout_start", "web"));
        let mut w = vec![window(20_000.0, 20_400.0, "connection_refused")];
        attribute_causes(&mut w, &events);
        let cause = w[0].cause.clone().unwrap();
        assert_eq!(
            cause,
            "no rollout event explains this window (connection_refused x 10); the last event before it: rollout_start at +0.10 s; serving: pods old-a"
        );
    }

    #[test]
    fn keepalive_resets_from_a_terminating_pod_say_so() {
        let mut w = vec![window(10_000.0, 10_060.0, "connection_reset")];
        w[0].kinds.insert("connection_closed".into(), 2);
        attribute_causes(&mut w, &rolling_with_terminating_endpoint());
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "connections kept open to terminating pod old-a (since +9.00 s) were reset or closed when it stopped: established connections stay on their pod whatever kube-proxy's rules say; a preStop sleep with a graceful drain (answers with Connection: close) moves clients off first"
        );
    }

    /// The lab's order with a preStop sleep (`pod_prestop`) on an app that dies at
    /// SIGTERM: the keep-alive losses come after the sleep, which did not prevent them.
    #[test]
    fn keepalive_resets_after_a_prestop_sleep_say_the_app_must_drain() {
        let mut events = rolling_with_terminating_endpoint();
        events.push(pod_ev(10_000.0, "pod_prestop", "old-a", "10.244.0.2"));
        events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        let mut w = vec![window(11_000.0, 11_010.0, "connection_reset")];
        w[0].kinds = [("connection_reset".to_string(), 1)].into();
        attribute_causes(&mut w, &events);
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "connections kept open to terminating pod old-a (since +9.00 s) were reset when it stopped: established connections stay on their pod whatever kube-proxy's rules say; a preStop sleep ran first, but it moves no established connection: the app must drain (answer with Connection: close) before it exits"
        );
    }

    #[test]
    fn an_endpoint_no_pod_event_names_is_not_called_a_pod() {
        let events = vec![
            ev(0.0, "trigger_start", "kubectl"),
            ep_ev(0.0, "endpoint_added", "10.244.0.9"),
        ];
        let mut w = vec![window(500.0, 700.0, "connection_reset")];
        attribute_causes(&mut w, &events);
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "no rollout event explains this window (connection_reset x 10); the last event before it: endpoint_added 10.244.0.9 at +0.00 s; serving: endpoints 10.244.0.9"
        );
    }

    #[test]
    fn no_list_is_ever_empty() {
        // Rollout events only: nothing is known to serve, and no list is printed.
        let events = vec![ev(0.0, "rollout_start", "web")];
        for kind in ["connection_refused", "host_unreachable", "http_5xx"] {
            let mut w = vec![window(500.0, 700.0, kind)];
            attribute_causes(&mut w, &events);
            let cause = w[0].cause.clone().unwrap();
            assert_eq!(
                cause,
                format!("no rollout event explains this window ({kind} x 10); the last event before it: rollout_start at +0.00 s")
            );
            assert!(!cause.contains("()") && !cause.contains("  "), "{cause}");
        }
    }
}
