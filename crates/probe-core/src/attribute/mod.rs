//! Why did a window happen? One [`Cause`] per outage window, derived from the
//! rollout's events around it and the window's failure kinds.
//!
//! "213 requests failed" is what any load generator says. An SRE needs "no
//! ready endpoint: old pods terminating since +12.31 s, new pod backend-x2 not
//! ready until +15.02 s". The events come from the lab or a Kubernetes watch
//! and speak one typed model ([`Event`]): pod events name the pod and its
//! address, endpoint events the address. We replay them up to the window's
//! start to know which pods were ready, terminating or gone (`cluster.rs`), then
//! match that state against what the requests saw. Only the events' typed fields
//! are read, never their detail text. Where the events do not explain a window,
//! the cause says so plainly rather than guess.
//!
//! The result is typed facts (pods, nodes, times, counts), not English: the
//! sentences are written by the renderer in `output/cause.rs`, so no decision
//! here or later reads a sentence back, and the failure kinds are [`Outcome`]s
//! from the moment they leave the window's serde-shaped map.

use crate::cause::{
    AnsweredAround, Cause, Explanation, LastEvent, NoEndpointSign, PodAt, RateLimited,
};
use crate::event::{Event, EventKind};
use crate::outcome::Outcome;
use crate::report::OutageWindow;

mod cluster;
mod programming;
mod proxy;
#[cfg(test)]
mod tests;

use cluster::{Cluster, Pod, Serving};
pub(crate) use programming::{measure_programming_latency, Reached};

/// How long after a pod became ready its endpoint can first carry traffic, at most:
/// kube-proxy's sync and the load balancer's announcement, with room for a slow node.
/// A pod that became ready longer before a window than this had already been serving.
const READY_REACH_MS: f64 = 5000.0;

/// How far before a window a pod's termination still explains connections lost in it:
/// the kubelet's preStop hook and its SIGTERM come later than the deletion, bounded by
/// Kubernetes' default grace period (30 s).
const TERMINATING_REACH_MS: f64 = 30_000.0;

/// A window's failure kinds as [`Outcome`]s with their counts, in the window's order
/// (by name). A name that is no `Outcome` (only a hand-built window has one) counts
/// as `other`.
fn kinds_of(w: &OutageWindow) -> Vec<(Outcome, u64)> {
    w.kinds
        .iter()
        .map(|(k, n)| (k.parse().unwrap_or(Outcome::Other), *n))
        .collect()
}

fn count(kinds: &[(Outcome, u64)], kind: Outcome) -> u64 {
    kinds
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, n)| n)
        .sum()
}

fn has(kinds: &[(Outcome, u64)], kind: Outcome) -> bool {
    kinds.iter().any(|(k, _)| *k == kind)
}

/// The window's most frequent kind; on a tie, the last by name.
fn dominant(kinds: &[(Outcome, u64)]) -> Option<Outcome> {
    kinds.iter().max_by_key(|(_, n)| *n).map(|(k, _)| *k)
}

/// The first pod to become ready at or after `from` (a new pod ending the gap).
fn next_ready(events: &[Event], from: f64) -> Option<PodAt> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::PodReady && e.at_ms >= from)
        .find_map(|e| {
            e.subject.pod.clone().map(|pod| PodAt {
                pod,
                at_ms: e.at_ms,
            })
        })
}

/// When the rollout under way at `at_ms` began (its trigger or its start, the later);
/// 0 when no event says.
fn rollout_began_before(events: &[Event], at_ms: f64) -> f64 {
    events
        .iter()
        .filter(|e| {
            (e.kind == EventKind::RolloutStart || e.kind == EventKind::TriggerStart)
                && e.at_ms <= at_ms
        })
        .map(|e| e.at_ms)
        .fold(0.0, f64::max)
}

fn no_ready_endpoint(
    events: &[Event],
    c: &Cluster,
    w: &OutageWindow,
    kinds: &[(Outcome, u64)],
    sign: NoEndpointSign,
) -> Cause {
    // Only pods that began terminating in this rollout, not in an earlier one.
    let rollout_began = rollout_began_before(events, w.start_ms);
    let terminating = c
        .terminating_between(f64::NEG_INFINITY, w.start_ms)
        .into_iter()
        .filter(|(_, t)| *t >= rollout_began)
        .map(|(pod, at_ms)| PodAt { pod, at_ms })
        .collect();
    let next_ready = next_ready(events, w.start_ms);
    // Still failing well after it became ready: it was not listening yet.
    let refused_until_ms = next_ready
        .as_ref()
        .filter(|p| w.end_ms > p.at_ms + 1000.0 && has(kinds, Outcome::ConnectionRefused))
        .map(|_| w.end_ms);
    Cause::NoReadyEndpoint {
        sign,
        terminating,
        next_ready,
        refused_until_ms,
    }
}

/// What is known about a window no rollout event explains: its kinds, the last event
/// before it, and what was serving.
fn unexplained(
    kinds: Vec<(Outcome, u64)>,
    w: &OutageWindow,
    events: &[Event],
    serving: &[Serving],
) -> Cause {
    let last_event = events
        .iter()
        .rev()
        .find(|e| e.at_ms <= w.start_ms)
        .map(|e| LastEvent {
            kind: e.kind.clone(),
            about: e
                .subject
                .pod
                .clone()
                .or_else(|| e.subject.address.map(|a| a.to_string()))
                .or_else(|| e.subject.deployment.clone())
                .or_else(|| e.subject.service.clone()),
            at_ms: e.at_ms,
        });
    Cause::Unexplained {
        kinds,
        last_event,
        serving_pods: serving.iter().filter_map(|s| s.name.clone()).collect(),
        serving_endpoints: serving
            .iter()
            .filter(|s| s.name.is_none())
            .filter_map(|s| s.pod.ip)
            .collect(),
    }
}

fn cause_of(w: &OutageWindow, events: &[Event], reached: &Reached) -> Cause {
    let c = Cluster::replay(events, w.start_ms);
    let kinds = kinds_of(w);
    let serving = c.serving();
    // A pod still in the endpoints while terminating or gone.
    let leaving: Vec<(&String, &Pod)> = serving
        .iter()
        .filter_map(|s| s.name.as_ref().map(|name| (name, &s.pod)))
        .filter(|(_, pod)| pod.terminating_at.is_some() || pod.deleted_at.is_some())
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
    let lost_on_open_connections = !kinds.is_empty()
        && kinds
            .iter()
            .all(|(k, _)| matches!(k, Outcome::ConnectionReset | Outcome::ConnectionClosed));
    // "No ready endpoint" only when events said what the endpoints or pods were.
    let knows_endpoints = c.ever_had_endpoint_events || !c.pods.is_empty();
    let Some(dominant) = dominant(&kinds) else {
        return unexplained(kinds, w, events, &serving);
    };
    match dominant {
        Outcome::HostUnreachable => {
            if serving.is_empty() && knows_endpoints {
                return no_ready_endpoint(events, &c, w, &kinds, NoEndpointSign::AddressWithdrawn);
            }
            if let Some((name, pod)) = leaving.iter().find(|(_, p)| p.deleted_at.is_some()) {
                return Cause::DeletedPodStillRouted {
                    pod: (*name).clone(),
                    address: pod.ip,
                    deleted_ms: pod.deleted_at.unwrap_or(w.start_ms),
                    endpoint_removed_ms: endpoint_removed_after(pod),
                };
            }
            unexplained(kinds, w, events, &serving)
        }
        Outcome::ConnectionRefused
        | Outcome::ConnectionReset
        | Outcome::ConnectionClosed
        | Outcome::ConnectTimeout
        | Outcome::ResponseTimeout => {
            if serving.is_empty() && knows_endpoints {
                return no_ready_endpoint(events, &c, w, &kinds, NoEndpointSign::ServiceRejects);
            }
            if let Some((name, pod)) = leaving.first() {
                return Cause::TerminatingPodStillRouted {
                    pod: (*name).clone(),
                    since_ms: pod.terminating_at.or(pod.deleted_at).unwrap_or(w.start_ms),
                    endpoint_removed_ms: endpoint_removed_after(pod),
                    kind: dominant,
                };
            }
            if lost_on_open_connections && !recently_terminating.is_empty() {
                let pods: Vec<String> = recently_terminating
                    .iter()
                    .map(|(n, _)| n.clone())
                    .collect();
                // The lab says when a preStop sleep ran: then the sleep was not the fix.
                let prestop_ran = events.iter().any(|e| {
                    e.kind == EventKind::PodPreStop
                        && e.at_ms <= w.start_ms
                        && e.subject.pod.as_ref().is_some_and(|p| pods.contains(p))
                });
                return Cause::OpenConnectionsLost {
                    since_ms: recently_terminating[0].1,
                    pods,
                    reset: has(&kinds, Outcome::ConnectionReset),
                    closed: has(&kinds, Outcome::ConnectionClosed),
                    prestop_ran,
                };
            }
            if dominant == Outcome::ConnectionRefused {
                // The newest pod that became ready within reach of the window and still
                // refuses: ready before it listened.
                let newest = serving
                    .iter()
                    .filter_map(|s| Some((s.pod.ready_at?, s.name.as_ref()?)))
                    .filter(|(t, _)| *t >= w.start_ms - READY_REACH_MS && *t <= w.end_ms)
                    .max_by(|a, b| a.0.total_cmp(&b.0));
                if let Some((ready_ms, pod)) = newest {
                    return Cause::ReadyBeforeListening {
                        pod: pod.clone(),
                        ready_ms,
                        until_ms: w.end_ms,
                    };
                }
                if let Some((pod, since_ms)) = recently_terminating.last() {
                    return Cause::RefusedWhileTerminating {
                        pod: pod.clone(),
                        since_ms: *since_ms,
                    };
                }
                // A pod terminating in the window is the likelier refuser; past it, a
                // new pod whose app was slower to start than its readiness.
                let mut silent = not_listening_yet(w, events, &serving, reached);
                if silent.len() == 1 {
                    let PodAt { pod, at_ms } = silent.remove(0);
                    return Cause::ReadyBeforeListening {
                        pod,
                        ready_ms: at_ms,
                        until_ms: w.end_ms,
                    };
                }
                if !silent.is_empty() {
                    return Cause::ReadyBeforeListeningOneOf {
                        pods: silent,
                        until_ms: w.end_ms,
                    };
                }
            }
            unexplained(kinds, w, events, &serving)
        }
        _ => unexplained(kinds, w, events, &serving),
    }
}

/// The pods of this rollout still serving that became ready before the window's end
/// and had answered nothing before it, with when each became ready, in that order.
/// An app can take longer to listen than kube-proxy takes to route to its pod, so
/// such a pod keeps refusing long after [`READY_REACH_MS`]; the samples' first answer
/// from a pod says when it stopped. One pod is the refuser; of several (no answers
/// named their pods) the events cannot say which one it was.
fn not_listening_yet(
    w: &OutageWindow,
    events: &[Event],
    serving: &[Serving],
    reached: &Reached,
) -> Vec<PodAt> {
    let rollout_began = rollout_began_before(events, w.start_ms);
    let mut silent: Vec<PodAt> = serving
        .iter()
        .filter_map(|s| {
            Some(PodAt {
                pod: s.name.clone()?,
                at_ms: s.pod.ready_at?,
            })
        })
        .filter(|p| {
            p.at_ms >= rollout_began
                && p.at_ms <= w.end_ms
                && !reached.answered_before(&p.pod, w.start_ms)
        })
        .collect();
    silent.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    silent
}

/// Connect timeouts beside refusals or failed address resolution are, on a stock Linux
/// kernel, mostly the same errors rate-limited away: a host answers one client with at
/// most about one ICMP error per second (`net.ipv4.icmp_ratelimit`, 1000 ms), and every
/// other SYN is dropped in silence and retried until the connect times out. Counts
/// them, with the number that got through.
fn rate_limited(w: &OutageWindow, no_ready_endpoint: bool) -> Option<RateLimited> {
    let kinds = kinds_of(w);
    let timeouts = count(&kinds, Outcome::ConnectTimeout);
    let through =
        count(&kinds, Outcome::ConnectionRefused) + count(&kinds, Outcome::HostUnreachable);
    if timeouts == 0 || (through == 0 && !no_ready_endpoint) {
        return None;
    }
    Some(RateLimited { timeouts, through })
}

/// A window that exists only because one node's kube-proxy rules lagged behind the
/// others': an endpoint whose pod was already terminating when the window began was
/// still in that node's rules (its `endpoint_removed` with `subject.node` came at or
/// after the start) though another node had dropped it before, and the window ended
/// when the lagging node caught up. Requests routed by that node met a pod already gone.
/// `None` when the events show no such disagreement between nodes.
fn lagging_node(w: &OutageWindow, events: &[Event]) -> Option<Cause> {
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
        let terminating_ms = pod_event(EventKind::PodTerminating).filter(|t| *t <= w.start_ms)?;
        Some(Cause::LaggingNode {
            node: lag.subject.node.clone().unwrap_or_default(),
            other_node: early.subject.node.clone().unwrap_or_default(),
            pod: pod.to_string(),
            address: lag.subject.address,
            terminating_ms,
            deleted_ms: pod_event(EventKind::PodDeleted).filter(|t| *t <= w.end_ms),
            caught_up_ms: lag.at_ms,
            dropped_elsewhere_ms: early.at_ms,
            kinds: kinds_of(w).into_iter().map(|(k, _)| k).collect(),
        })
    })
}

/// The cause of one window, when the run has rollout events; the events in time order.
fn explain(
    w: &OutageWindow,
    sorted: &[Event],
    rollout_began: Option<f64>,
    reached: &Reached,
) -> Explanation {
    if rollout_began.is_some_and(|t| w.end_ms <= t) {
        return Explanation::from(Cause::Baseline {
            kinds: kinds_of(w).into_iter().map(|(k, _)| k).collect(),
        });
    }
    // A proxy's answers are its own list's doing, not kube-proxy's: asked first.
    let cause = proxy::proxy_cause(w, sorted, &kinds_of(w))
        .or_else(|| lagging_node(w, sorted))
        .unwrap_or_else(|| cause_of(w, sorted, reached));
    let no_ready_endpoint = matches!(cause, Cause::NoReadyEndpoint { .. });
    Explanation {
        rate_limited: rate_limited(w, no_ready_endpoint),
        ..Explanation::from(cause)
    }
}

/// The events in time order.
fn by_time(events: &[Event]) -> Vec<Event> {
    let mut sorted: Vec<Event> = events.to_vec();
    sorted.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    sorted
}

/// Fills in `cause` for every window, when the run has rollout events.
///
/// ```
/// use probe_core::{attribute_causes, Cause, Event, EventKind::*, OutageWindow, Subject};
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
///     proxy_retried: None, programming_latency: None,
/// }];
/// attribute_causes(&mut windows, &events);
/// let why = windows[0].cause.as_ref().unwrap();
/// assert!(matches!(&why.cause, Cause::NoReadyEndpoint { next_ready: Some(p), .. } if p.pod == "web-b"));
/// let cause = why.to_string();
/// assert!(cause.starts_with("no ready endpoint"), "{cause}");
/// assert!(cause.contains("web-a") && cause.contains("new pod web-b not ready until +3.00 s"), "{cause}");
/// ```
pub fn attribute_causes(windows: &mut [OutageWindow], events: &[Event]) {
    attribute_causes_seen(windows, events, &Reached::default());
}

/// [`attribute_causes`] knowing also which pods the samples saw answer, and when.
pub(crate) fn attribute_causes_seen(
    windows: &mut [OutageWindow],
    events: &[Event],
    reached: &Reached,
) {
    if !events.iter().any(|e| e.kind.is_rollout()) {
        return;
    }
    let sorted = by_time(events);
    let rollout_began = sorted
        .iter()
        .find(|e| e.kind == EventKind::TriggerStart || e.kind == EventKind::RolloutStart)
        .map(|e| e.at_ms);
    for w in windows.iter_mut() {
        w.cause = Some(explain(w, &sorted, rollout_began, reached));
    }
}

/// Adds to every explained window which pod answered last before it and first after it,
/// when the answers named their pods (`pod_from`): with the rollout's events beside it,
/// that says which pod went away and which one took over.
pub(crate) fn name_pods_around(windows: &mut [OutageWindow]) {
    for w in windows {
        if let Some(why) = w.cause.as_mut() {
            why.answered = AnsweredAround {
                before: w.pod_before.clone(),
                after: w.pod_after.clone(),
            };
        }
    }
}
