//! Why did a window happen? One sentence per outage window, derived from the
//! rollout's events around it and the window's failure kinds.
//!
//! "213 requests failed" is what any load generator says. An SRE needs "no
//! ready endpoint: old pods terminating since +12.31 s, new pod backend-x2 not
//! ready until +15.02 s". The events come from the lab or a Kubernetes watch
//! and share one vocabulary: `pod_created`, `pod_ready`, `pod_unready`,
//! `pod_terminating`, `pod_deleted` (detail starts with `POD IP ...`) and
//! `endpoint_added`, `endpoint_removed`, `endpoint_terminating` (the detail
//! holds the endpoint's `IP` or `IP:PORT`, and often the pod's name). We replay
//! them up to the window's start to know which pods were ready, terminating or
//! gone, then match that state against what the requests saw. Where the events
//! do not explain a window, the cause says so plainly rather than guess.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::event::Event;
use crate::report::OutageWindow;

/// Only runs with rollout events get causes: a plain run has nothing to explain with.
fn is_rollout_event(kind: &str) -> bool {
    kind.starts_with("pod_") || kind.starts_with("endpoint_") || kind.starts_with("rollout_")
}

#[derive(Default, Clone)]
struct Pod {
    ip: Option<String>,
    ready_at: Option<f64>,
    terminating_at: Option<f64>,
    deleted_at: Option<f64>,
}

#[derive(Default)]
struct Cluster {
    pods: BTreeMap<String, Pod>,
    /// Endpoint addresses (IPs) currently in the Service, and when added.
    endpoints: BTreeMap<String, f64>,
    ever_had_endpoint_events: bool,
}

fn first_token(detail: &str) -> Option<&str> {
    detail.split_whitespace().next()
}

/// The IP address in an event's detail (`IP` or `IP:PORT`, anywhere in it):
/// how endpoint and pod events are matched, whatever their source's wording.
///
/// ```
/// assert_eq!(probe_core::event_address("svc 10.244.0.5:8080 web-a").as_deref(), Some("10.244.0.5"));
/// assert_eq!(probe_core::event_address("web-a 10.244.0.5 ready=true").as_deref(), Some("10.244.0.5"));
/// assert_eq!(probe_core::event_address("web-a"), None);
/// ```
pub fn event_address(detail: &str) -> Option<String> {
    detail.split_whitespace().find_map(|tok| {
        let host = tok.rsplit_once(':').map(|(h, _)| h).unwrap_or(tok);
        host.parse::<IpAddr>().ok().map(|ip| ip.to_string())
    })
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
        let kind = e.kind.as_str();
        if kind.starts_with("pod_") {
            let Some(name) = first_token(&e.detail) else {
                return;
            };
            let pod = self.pods.entry(name.to_string()).or_default();
            if pod.ip.is_none() {
                pod.ip = event_address(&e.detail);
            }
            match kind {
                "pod_ready" => pod.ready_at = Some(e.at_ms),
                "pod_unready" => pod.ready_at = None,
                "pod_terminating" => pod.terminating_at = Some(e.at_ms),
                "pod_deleted" => pod.deleted_at = Some(e.at_ms),
                _ => {}
            }
        } else if kind.starts_with("endpoint_") {
            self.ever_had_endpoint_events = true;
            let Some(ip) = event_address(&e.detail) else {
                return;
            };
            match kind {
                "endpoint_added" => {
                    self.endpoints.insert(ip, e.at_ms);
                }
                "endpoint_removed" => {
                    self.endpoints.remove(&ip);
                }
                _ => {}
            }
        }
    }

    fn pod_by_ip(&self, ip: &str) -> Option<(&String, &Pod)> {
        self.pods
            .iter()
            .filter(|(_, p)| p.ip.as_deref() == Some(ip))
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
                .map(|ip| match self.pod_by_ip(ip) {
                    Some((name, pod)) => (name.clone(), pod.clone()),
                    None => (
                        ip.clone(),
                        Pod {
                            ip: Some(ip.clone()),
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
        .filter(|e| e.kind == "pod_ready" && e.at_ms >= from)
        .find_map(|e| first_token(&e.detail).map(|n| (n.to_string(), e.at_ms)))
}

fn no_endpoint_sentence(events: &[Event], c: &Cluster, w: &OutageWindow, what: &str) -> String {
    // Only pods that began terminating in this rollout, not in an earlier one.
    let rollout_began = events
        .iter()
        .filter(|e| {
            (e.kind == "rollout_start" || e.kind == "trigger_start") && e.at_ms <= w.start_ms
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
        let ip = pod.ip.as_deref()?;
        events
            .iter()
            .find(|e| {
                e.kind == "endpoint_removed"
                    && e.at_ms >= w.start_ms
                    && event_address(&e.detail).as_deref() == Some(ip)
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
                    pod.ip.as_deref().unwrap_or("?"),
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

/// Fills in `cause` for every window, when the run has rollout events.
///
/// ```
/// use probe_core::{attribute_causes, Event, OutageWindow};
/// let events = vec![
///     Event::new(0.0, "pod_ready", "web-a 10.244.0.5 v1"),
///     Event::new(0.0, "endpoint_added", "svc 10.244.0.5:8080 web-a"),
///     Event::new(1000.0, "pod_terminating", "web-a 10.244.0.5 v1"),
///     Event::new(1010.0, "endpoint_removed", "svc 10.244.0.5:8080 web-a"),
///     Event::new(3000.0, "pod_ready", "web-b 10.244.0.6 v2"),
/// ];
/// let mut windows = vec![OutageWindow {
///     start_ms: 1200.0, end_ms: 3100.0, duration_ms: 1900.0, failed: 190,
///     kinds: [("host_unreachable".to_string(), 190)].into(), open: false,
///     after_event: None, cause: None,
/// }];
/// attribute_causes(&mut windows, &events);
/// let cause = windows[0].cause.as_deref().unwrap();
/// assert!(cause.starts_with("no ready endpoint"), "{cause}");
/// assert!(cause.contains("web-a") && cause.contains("new pod web-b not ready until +3.00 s"), "{cause}");
/// ```
pub fn attribute_causes(windows: &mut [OutageWindow], events: &[Event]) {
    if !events.iter().any(|e| is_rollout_event(&e.kind)) {
        return;
    }
    let mut sorted: Vec<Event> = events.to_vec();
    sorted.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    for w in windows.iter_mut() {
        w.cause = Some(cause_of(w, &sorted));
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
        }
    }

    fn ev(at: f64, kind: &str, detail: &str) -> Event {
        Event::new(at, kind, detail)
    }

    fn base() -> Vec<Event> {
        vec![
            ev(0.0, "pod_ready", "old-a 10.244.0.2 v1"),
            ev(0.0, "endpoint_added", "svc 10.244.0.2:8080 old-a"),
        ]
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
            ev(1000.0, "pod_created", "new-b 10.244.0.3 v2"),
            ev(1100.0, "pod_ready", "new-b 10.244.0.3 v2"),
            ev(1150.0, "endpoint_added", "svc 10.244.0.3:8080 new-b"),
            ev(1200.0, "pod_terminating", "old-a 10.244.0.2 v1"),
            ev(1210.0, "endpoint_removed", "svc 10.244.0.2:8080 old-a"),
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
        events.push(ev(500.0, "pod_terminating", "old-a 10.244.0.2 v1"));
        events.push(ev(900.0, "endpoint_removed", "svc 10.244.0.2:8080 old-a"));
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
        events.push(ev(2000.0, "pod_ready", "new-b 10.244.0.3 v2"));
        events.push(ev(2000.0, "endpoint_added", "svc 10.244.0.3:8080 new-b"));
        events.push(ev(2500.0, "pod_terminating", "old-a 10.244.0.2 v1"));
        events.push(ev(2600.0, "pod_deleted", "old-a 10.244.0.2 v1"));
        events.push(ev(4000.0, "endpoint_removed", "svc 10.244.0.2:8080 old-a"));
        let mut w = vec![window(2700.0, 4000.0, "host_unreachable")];
        attribute_causes(&mut w, &events);
        let cause = w[0].cause.clone().unwrap();
        assert!(cause.starts_with("traffic still sent to pod old-a (10.244.0.2) after it was deleted at +2.60 s until its endpoint was removed at +4.00 s"), "{cause}");
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
