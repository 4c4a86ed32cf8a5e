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
            match e.kind {
                EventKind::EndpointAdded => {
                    self.endpoints.insert(ip, e.at_ms);
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

    /// Pods that receive traffic: from endpoint events if there are any, else
    /// the ready pods that are not terminating.
    fn serving(&self) -> Vec<(String, Pod)> {
        if self.ever_had_endpoint_events {
            self.endpoints
                .keys()
                .map(|ip| match self.pod_by_ip(*ip) {
                    Some((name, pod)) => (name.clone(), pod.clone()),
                    None => (
                        ip.to_string(),
                        Pod {
                            ip: Some(*ip),
                            ..Pod::default()
                        },
                    ),
                })
                .collect()
        } else {
            self.pods
                .iter()
                .filter(|(_, p)| {
                    p.ready_at.is_some() && p.terminating_at.is_none() && p.deleted_at.is_none()
                })
                .map(|(n, p)| (n.clone(), p.clone()))
                .collect()
        }
    }
}

fn at(ms: f64) -> String {
    format!("+{:.2} s", ms / 1000.0)
}

fn names(list: &[String]) -> String {
    match list.len() {
        0 => String::new(),
        1..=3 => list.join(", "),
        n => format!("{} and {} more", list[..3].join(", "), n - 3),
    }
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
    let mut terminating: Vec<(f64, String)> = c
        .pods
        .iter()
        .filter_map(|(n, p)| p.terminating_at.map(|t| (t, n.clone())))
        .filter(|(t, _)| *t >= rollout_began)
        .collect();
    terminating.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut sentence = format!("no ready endpoint ({what})");
    if let Some((since, _)) = terminating.first() {
        let who: Vec<String> = terminating.iter().map(|(_, n)| n.clone()).collect();
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

fn cause_of(w: &OutageWindow, events: &[Event]) -> String {
    let c = Cluster::replay(events, w.start_ms);
    let dominant = w
        .kinds
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(k, _)| k.as_str())
        .unwrap_or("");
    let serving = c.serving();
    let kinds_note = || w.kinds.keys().cloned().collect::<Vec<_>>().join(", ");
    // A pod still in the endpoints while terminating or gone.
    let leaving: Vec<(String, Pod)> = serving
        .iter()
        .filter(|(_, p)| p.terminating_at.is_some() || p.deleted_at.is_some())
        .cloned()
        .collect();
    let endpoint_removed_after = |pod: &Pod| -> Option<f64> {
        let ip = pod.ip?;
        events
            .iter()
            .find(|e| {
                e.kind == EventKind::EndpointRemoved
                    && e.at_ms >= w.start_ms
                    && e.subject.address == Some(ip)
            })
            .map(|e| e.at_ms)
    };
    match dominant {
        "host_unreachable" => {
            if serving.is_empty() {
                return no_endpoint_sentence(events, &c, w, "the address is no longer announced");
            }
            if let Some((name, pod)) = leaving.iter().find(|(_, p)| p.deleted_at.is_some()) {
                let removed = endpoint_removed_after(pod)
                    .map(|t| format!(" until its endpoint was removed at {}", at(t)))
                    .unwrap_or_default();
                return format!(
                    "traffic still sent to pod {name} ({}) after it was deleted at {}{removed}: its address no longer answers",
                    pod.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "?".into()),
                    at(pod.deleted_at.unwrap_or(w.start_ms)),
                );
            }
            format!(
                "the address stopped answering while {} served; no rollout event explains it ({})",
                names(&serving.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>()),
                kinds_note()
            )
        }
        "connection_refused" | "connection_reset" | "connection_closed" | "connect_timeout"
        | "response_timeout" => {
            if serving.is_empty() && (c.ever_had_endpoint_events || !c.pods.is_empty()) {
                return no_endpoint_sentence(events, &c, w, "the Service rejects connections");
            }
            if let Some((name, pod)) = leaving.first() {
                let removed = endpoint_removed_after(pod)
                    .map(|t| format!(" until its endpoint was removed at {}", at(t)))
                    .unwrap_or_default();
                return format!(
                    "terminating pod {name} (since {}) still received traffic{removed}: {dominant}",
                    at(pod.terminating_at.or(pod.deleted_at).unwrap_or(w.start_ms)),
                );
            }
            if dominant == "connection_refused" {
                // The newest ready pod that still refuses: ready before it listened.
                let newest = serving
                    .iter()
                    .filter_map(|(n, p)| p.ready_at.map(|t| (t, n)))
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((ready, name)) = newest {
                    return format!(
                        "pod {name} became ready at {} before its app listened (a pod without a readinessProbe is ready as soon as its process runs) and refused connections until {}",
                        at(ready),
                        at(w.end_ms)
                    );
                }
            }
            format!(
                "no rollout event explains this window ({}) while {} served",
                kinds_note(),
                names(&serving.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>())
            )
        }
        _ => format!("no rollout event explains this window ({})", kinds_note()),
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
///     start_ms: 1200.0, end_ms: 3100.0, duration_ms: 1900.0, failed: 190,
///     kinds: [("host_unreachable".to_string(), 190)].into(), open: false,
///     after_event: None, cause: None, syn_retransmitted: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: f64, end: f64, kind: &str) -> OutageWindow {
        OutageWindow {
            start_ms: start,
            end_ms: end,
            duration_ms: end - start,
            failed: 10,
            kinds: [(kind.to_string(), 10)].into(),
            open: false,
            after_event: None,
            cause: None,
            syn_retransmitted: 0,
        }
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
    fn unexplained_windows_say_so() {
        let mut w = vec![window(600.0, 800.0, "http_5xx")];
        attribute_causes(&mut w, &base());
        assert_eq!(
            w[0].cause.as_deref().unwrap(),
            "no rollout event explains this window (http_5xx)"
        );
    }
}
