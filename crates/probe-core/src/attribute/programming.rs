//! The network programming latency as the client saw it, for windows caused by a
//! stale route.
//!
//! When the EndpointSlice drops a pod, every node's kube-proxy still sends new
//! connections to it until its own rules are rewritten; that delay (kube-proxy's
//! "network programming latency") is what a preStop sleep must outlast. A client
//! cannot see the rules, but it sees the last request that still reached the pod:
//! an answer the pod gave (the samples' `pod` column) or a failure of a window that
//! attribution blamed on it. The time from the EndpointSlice change to that request
//! is a lower bound of the real delay, and how loose it is follows from random DNAT:
//! each new connection meets the dropped pod with probability 1/n over n endpoints,
//! so the last hit comes a geometric number of probe periods before the rules
//! moved ([`ProgrammingLatency`] holds the bound).
//!
//! Only new connections count: a reused keep-alive connection stays on its pod
//! whatever the rules say, so it says nothing about them. The send time is used, not
//! the answer's arrival: the route is chosen by the first SYN.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::cluster::Cluster;
use crate::cause::{Cause, NodeSync, ProgrammingLatency, ProxySync};
use crate::event::{Event, EventKind};
use crate::report::OutageWindow;
use crate::sample::Sample;

/// What the samples say about which pods new connections reached, kept while the
/// analyzer runs: per pod its first and last answer, per window its last failure. It grows
/// with the pods and the windows, never with the run's length.
#[derive(Debug, Default)]
pub(crate) struct Reached {
    /// Per pod, when the last new connection it answered was sent, ms.
    answered: BTreeMap<String, f64>,
    /// Per pod, when the first request it answered was sent, ms, on any connection:
    /// from then on its app listened.
    first_answered: BTreeMap<String, f64>,
    /// Per window (by its start's bits), when its last failed new connection was
    /// sent, ms.
    failed: BTreeMap<u64, f64>,
}

/// When a sample's route was chosen: its send time on a new connection (a reused
/// one says nothing about the rules), or on any connection when a proxy answered it
/// (a proxy picks an upstream per request, whatever the client's connection).
fn routed_ms(s: &Sample) -> Option<f64> {
    if s.connection.as_deref() == Some("reused") && s.proxy.is_none() {
        return None;
    }
    Some(s.sent_ms.unwrap_or(s.intended_ms))
}

impl Reached {
    /// An ok answer (not local, not skipped).
    pub(crate) fn answered(&mut self, s: &Sample) {
        if let Some(pod) = &s.pod {
            let sent = s.sent_ms.unwrap_or(s.intended_ms);
            let first = self.first_answered.entry(pod.clone()).or_insert(sent);
            *first = first.min(sent);
        }
        let (Some(pod), Some(at)) = (&s.pod, routed_ms(s)) else {
            return;
        };
        let last = self.answered.entry(pod.clone()).or_insert(at);
        *last = last.max(at);
    }

    /// A target failure inside the window that starts at `window_start_ms`.
    pub(crate) fn failed(&mut self, s: &Sample, window_start_ms: f64) {
        let Some(at) = routed_ms(s) else {
            return;
        };
        let last = self.failed.entry(window_start_ms.to_bits()).or_insert(at);
        *last = last.max(at);
    }

    /// Whether the samples saw `pod` answer a request sent before `at_ms`.
    pub(super) fn answered_before(&self, pod: &str, at_ms: f64) -> bool {
        self.first_answered.get(pod).is_some_and(|t| *t < at_ms)
    }

    fn last_failed_in(&self, w: &OutageWindow) -> Option<f64> {
        self.failed.get(&w.start_ms.to_bits()).copied()
    }
}

/// The pod a window's cause says was still routed to after it left, with its address.
fn routed_pod(cause: &Cause) -> Option<(&str, Option<IpAddr>)> {
    match cause {
        Cause::LaggingNode { pod, address, .. }
        | Cause::DeletedPodStillRouted { pod, address, .. }
        | Cause::ProxyStaleUpstream { pod, address, .. } => Some((pod, *address)),
        Cause::TerminatingPodStillRouted { pod, .. }
        | Cause::RefusedWhileTerminating { pod, .. } => Some((pod, None)),
        // A proxy's phases: the stale pod, if one of them was one.
        Cause::ProxyPhases(phases) => phases.iter().find_map(routed_pod),
        _ => None,
    }
}

/// Whether an event is about this pod's endpoint: by address, else by the pod's name.
fn about(e: &Event, pod: &str, address: Option<IpAddr>) -> bool {
    match (address, e.subject.address) {
        (Some(a), Some(b)) => a == b,
        _ => e.subject.pod.as_deref() == Some(pod),
    }
}

/// A slice-level (not a node's) endpoint event that takes the endpoint out of load
/// balancing.
fn drops(e: &Event) -> bool {
    matches!(
        e.kind,
        EventKind::EndpointRemoved | EventKind::EndpointTerminating
    )
}

/// The slice-level (not a node's) endpoint events about one pod, in time order.
pub(super) fn slice_events<'e>(
    events: &'e [Event],
    pod: &str,
    address: Option<IpAddr>,
) -> Vec<&'e Event> {
    events
        .iter()
        .filter(|e| e.subject.node.is_none() && e.kind.is_endpoint())
        .filter(|e| about(e, pod, address))
        .collect()
}

/// The EndpointSlice change that dropped the pod, when it came at or before `until`
/// and the pod was not put back since: the first of the slice-level drops (its
/// endpoint turning terminating, then leaving) after its last addition.
pub(super) fn slice_change(slice: &[&Event], until: f64) -> Option<f64> {
    let slice = &slice[..slice.partition_point(|e| e.at_ms <= until)];
    let since_added = slice.iter().rposition(|e| !drops(e)).map_or(0, |i| i + 1);
    slice.get(since_added).map(|e| e.at_ms)
}

/// The endpoints in the Service just before `at_ms`, the pod at `address` included.
/// The nodes' own endpoint events count too: a source that joined late (the lab's
/// state when a probe attaches) may give the endpoints only as the nodes' rules.
fn endpoints_before(events: &[Event], at_ms: f64, address: Option<IpAddr>) -> u32 {
    let before: Vec<Event> = events.iter().filter(|e| e.at_ms < at_ms).cloned().collect();
    let c = Cluster::replay(&before, at_ms);
    let serving: Vec<Option<IpAddr>> = c.serving().iter().map(|s| s.pod.ip).collect();
    let missing = address.is_none_or(|a| !serving.contains(&Some(a)));
    (serving.len() + usize::from(missing)) as u32
}

/// Each node's first sync that dropped the endpoint after the slice change.
fn node_syncs(events: &[Event], pod: &str, address: Option<IpAddr>, since: f64) -> Vec<NodeSync> {
    let mut first: BTreeMap<&str, f64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.at_ms >= since && drops(e)) {
        if let Some(node) = e.subject.node.as_deref().filter(|_| about(e, pod, address)) {
            first.entry(node).or_insert(e.at_ms - since);
        }
    }
    first
        .into_iter()
        .map(|(node, after_ms)| NodeSync {
            node: node.to_string(),
            after_ms,
        })
        .collect()
}

/// Each proxy's first drop of the upstream from its own list after the slice change.
fn proxy_syncs(events: &[Event], address: Option<IpAddr>, since: f64) -> Vec<ProxySync> {
    let mut first: BTreeMap<&str, f64> = BTreeMap::new();
    let removals = events
        .iter()
        .filter(|e| e.at_ms >= since && e.kind == EventKind::ProxyUpstreamRemoved);
    for e in removals.filter(|e| address.is_some() && e.subject.address == address) {
        if let Some(proxy) = e.subject.proxy.as_deref() {
            first.entry(proxy).or_insert(e.at_ms - since);
        }
    }
    first
        .into_iter()
        .map(|(proxy, after_ms)| ProxySync {
            proxy: proxy.to_string(),
            after_ms,
        })
        .collect()
}

/// Fills in `programming_latency` for every window whose cause is a stale route: a
/// pod the EndpointSlice had dropped before the window's last failure. The causes
/// must be attributed already.
pub(crate) fn measure_programming_latency(
    windows: &mut [OutageWindow],
    events: &[Event],
    reached: &Reached,
    period_ms: f64,
) {
    if !windows.iter().any(|w| w.cause.is_some()) {
        return;
    }
    let events = &super::by_time(events);
    // Per pod a stale-route cause names: its address and its slice-level events.
    let mut pods: BTreeMap<String, (Option<IpAddr>, Vec<&Event>)> = BTreeMap::new();
    // Per stale-route window: its pod, the slice change, its last failure.
    let mut stale: Vec<(usize, String, f64, f64)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let Some((pod, address)) = w.cause.as_ref().and_then(|c| routed_pod(&c.cause)) else {
            continue;
        };
        let Some(last_failed) = reached.last_failed_in(w) else {
            continue;
        };
        let (_, slice) = pods.entry(pod.to_string()).or_insert_with(|| {
            let address = address.or_else(|| {
                events
                    .iter()
                    .filter(|e| e.subject.pod.as_deref() == Some(pod))
                    .find_map(|e| e.subject.address)
            });
            (address, slice_events(events, pod, address))
        });
        if let Some(changed) = slice_change(slice, last_failed) {
            stale.push((i, pod.to_string(), changed, last_failed));
        }
    }
    // One figure per pod and slice change: the last hit over the whole stream, from
    // its answers and every window blamed on it since that change.
    let mut figures: BTreeMap<(&str, u64), ProgrammingLatency> = BTreeMap::new();
    for (_, pod, changed, last_failed) in &stale {
        let figure = figures
            .entry((pod.as_str(), changed.to_bits()))
            .or_insert_with(|| {
                let address = pods.get(pod).and_then(|(a, _)| *a);
                ProgrammingLatency {
                    pod: pod.clone(),
                    address,
                    slice_changed_ms: *changed,
                    last_reached_ms: reached.answered.get(pod).copied().unwrap_or(*last_failed),
                    endpoints: endpoints_before(events, *changed, address),
                    period_ms,
                    node_syncs: node_syncs(events, pod, address, *changed),
                    proxy_syncs: proxy_syncs(events, address, *changed),
                }
            });
        figure.last_reached_ms = figure.last_reached_ms.max(*last_failed);
    }
    for (i, pod, changed, _) in &stale {
        windows[*i].programming_latency = figures.get(&(pod.as_str(), changed.to_bits())).cloned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::attribute_causes;
    use crate::event::Subject;
    use crate::outcome::Outcome;

    const IP: &str = "10.244.16.2";

    /// A window of refused connections.
    fn window(start_ms: f64, end_ms: f64) -> OutageWindow {
        crate::attribute::tests::window(start_ms, end_ms, "connection_refused")
    }

    fn endpoint(at: f64, kind: EventKind, ip: &str, pod: &str, node: Option<&str>) -> Event {
        let subject = Subject::endpoint("svc", ip.parse().unwrap(), Some(8080)).with_pod(pod);
        let subject = match node {
            Some(node) => subject.with_node(node),
            None => subject,
        };
        Event::new(at, kind, "svc").with_subject(subject)
    }

    fn pod(at: f64, kind: EventKind, name: &str, ip: &str) -> Event {
        Event::new(at, kind, name).with_subject(Subject::pod(name, ip.parse().ok()))
    }

    /// web-old leaves the slice at +10 s; node1 drops it 100 ms later, node2 2 s later.
    fn lagging_node2() -> Vec<Event> {
        vec![
            pod(0.0, EventKind::PodReady, "web-old", IP),
            pod(0.0, EventKind::PodReady, "web-new", "10.244.0.3"),
            endpoint(0.0, EventKind::EndpointAdded, IP, "web-old", None),
            endpoint(0.0, EventKind::EndpointAdded, "10.244.0.3", "web-new", None),
            Event::new(9000.0, EventKind::TriggerStart, "kubectl"),
            pod(10_000.0, EventKind::PodTerminating, "web-old", IP),
            endpoint(10_000.0, EventKind::EndpointRemoved, IP, "web-old", None),
            endpoint(
                10_100.0,
                EventKind::EndpointRemoved,
                IP,
                "web-old",
                Some("node1"),
            ),
            pod(10_900.0, EventKind::PodDeleted, "web-old", IP),
            endpoint(
                12_000.0,
                EventKind::EndpointRemoved,
                IP,
                "web-old",
                Some("node2"),
            ),
        ]
    }

    fn sample(seq: u64, sent_ms: f64, outcome: Outcome, pod: Option<&str>) -> Sample {
        Sample {
            sent_ms: Some(sent_ms),
            pod: pod.map(str::to_string),
            connection: Some("new".into()),
            ..Sample::new("node2-fresh", seq, sent_ms, outcome)
        }
    }

    #[test]
    fn a_lagging_nodes_window_measures_from_the_slice_change_to_the_last_hit() {
        let events = lagging_node2();
        let mut ws = vec![window(11_000.0, 11_020.0), window(11_500.0, 11_520.0)];
        attribute_causes(&mut ws, &events);
        assert!(matches!(
            ws[0].cause.as_ref().unwrap().cause,
            Cause::LaggingNode { .. }
        ));
        let mut reached = Reached::default();
        reached.answered(&sample(1, 10_050.0, Outcome::Ok, Some("web-old")));
        reached.failed(
            &sample(2, 11_000.4, Outcome::ConnectionRefused, None),
            11_000.0,
        );
        reached.failed(
            &sample(3, 11_500.3, Outcome::ConnectionRefused, None),
            11_500.0,
        );
        // A reused connection stays on its pod whatever the rules say: not a hit.
        let reused = Sample {
            connection: Some("reused".into()),
            ..sample(4, 11_900.0, Outcome::Ok, Some("web-old"))
        };
        reached.answered(&reused);
        measure_programming_latency(&mut ws, &events, &reached, 10.0);
        let want = ProgrammingLatency {
            pod: "web-old".into(),
            address: IP.parse().ok(),
            slice_changed_ms: 10_000.0,
            last_reached_ms: 11_500.3,
            endpoints: 2,
            period_ms: 10.0,
            node_syncs: vec![
                NodeSync {
                    node: "node1".into(),
                    after_ms: 100.0,
                },
                NodeSync {
                    node: "node2".into(),
                    after_ms: 2000.0,
                },
            ],
            proxy_syncs: Vec::new(),
        };
        assert_eq!(ws[0].programming_latency.as_ref(), Some(&want));
        assert_eq!(ws[1].programming_latency.as_ref(), Some(&want));
        assert_eq!(
            want.to_string(),
            "network programming latency as the client saw it: at least 1.500 s from the EndpointSlice change at +10.00 s to the last new connection that reached pod web-old (10.244.16.2) at +11.50 s (a lower bound: over 2 endpoints a new connection met it 1 time in 2, so the last hit comes on average 2 probe periods (20 ms) and, 19 times in 20, at most 5 periods (50 ms) before the rules really changed); the nodes' rules dropped it: node1 after 100 ms, node2 after 2.000 s"
        );
    }

    #[test]
    fn the_pods_own_late_answer_can_be_the_last_hit() {
        let events = lagging_node2();
        let mut ws = vec![window(11_000.0, 11_020.0)];
        attribute_causes(&mut ws, &events);
        let mut reached = Reached::default();
        reached.failed(
            &sample(2, 11_000.4, Outcome::ConnectionRefused, None),
            11_000.0,
        );
        // Another node's traffic, answered by the pod while it drained.
        reached.answered(&sample(9, 11_800.0, Outcome::Ok, Some("web-old")));
        measure_programming_latency(&mut ws, &events, &reached, 10.0);
        let got = ws[0].programming_latency.as_ref().expect("a figure");
        assert_eq!((got.last_reached_ms, got.at_least_ms()), (11_800.0, 1800.0));
    }

    #[test]
    fn a_pod_still_in_the_slice_is_no_stale_route() {
        // Terminating but still an endpoint until +0.9 s: the window's requests were
        // routed by rules that were right.
        let events = vec![
            pod(0.0, EventKind::PodReady, "old-a", "10.244.0.2"),
            endpoint(0.0, EventKind::EndpointAdded, "10.244.0.2", "old-a", None),
            pod(500.0, EventKind::PodTerminating, "old-a", "10.244.0.2"),
            endpoint(
                900.0,
                EventKind::EndpointRemoved,
                "10.244.0.2",
                "old-a",
                None,
            ),
        ];
        let mut ws = vec![window(600.0, 800.0)];
        attribute_causes(&mut ws, &events);
        assert!(matches!(
            ws[0].cause.as_ref().unwrap().cause,
            Cause::TerminatingPodStillRouted { .. }
        ));
        let mut reached = Reached::default();
        reached.failed(&sample(1, 790.0, Outcome::ConnectionRefused, None), 600.0);
        measure_programming_latency(&mut ws, &events, &reached, 10.0);
        assert_eq!(ws[0].programming_latency, None);
    }

    #[test]
    fn a_window_without_a_stale_route_gets_no_figure() {
        let mut ws = vec![window(11_000.0, 11_020.0)];
        ws[0].cause = Some(
            Cause::ReadyBeforeListening {
                pod: "web-new".into(),
                ready_ms: 10_000.0,
                until_ms: 11_020.0,
            }
            .into(),
        );
        let mut reached = Reached::default();
        reached.failed(
            &sample(2, 11_000.4, Outcome::ConnectionRefused, None),
            11_000.0,
        );
        measure_programming_latency(&mut ws, &lagging_node2(), &reached, 10.0);
        assert_eq!(ws[0].programming_latency, None);
    }

    /// report.json: a new key on the window, typed numbers that read back as they
    /// were; absent on every other window, so older readers see nothing new.
    #[test]
    fn report_json_keeps_the_figure_on_its_window_only() {
        let events = lagging_node2();
        let mut ws = vec![window(11_000.0, 11_020.0), window(20_000.0, 20_010.0)];
        attribute_causes(&mut ws, &events);
        let mut reached = Reached::default();
        reached.failed(
            &sample(2, 11_000.4, Outcome::ConnectionRefused, None),
            11_000.0,
        );
        measure_programming_latency(&mut ws, &events, &reached, 10.0);
        let json = serde_json::to_value(&ws).unwrap();
        let figure = &json[0]["programming_latency"];
        assert_eq!(figure["slice_changed_ms"], 10_000.0);
        assert_eq!(figure["last_reached_ms"], 11_000.4);
        assert_eq!(figure["endpoints"], 2);
        assert_eq!(figure["node_syncs"][1]["node"], "node2");
        let facts = ws[0].programming_latency.as_ref().unwrap();
        assert_eq!(figure["at_least_ms"], facts.at_least_ms());
        assert_eq!(
            (figure["slack_periods"].clone(), figure["slack_ms"].clone()),
            (5.into(), 50.0.into())
        );
        assert_eq!(figure["text"], facts.to_string());
        assert!(json[1].get("programming_latency").is_none(), "{json}");
        let back: Vec<OutageWindow> = serde_json::from_value(json).unwrap();
        assert_eq!(back[0].programming_latency, ws[0].programming_latency);
    }

    /// The slice marks the endpoint terminating, then removes it: the change is the
    /// first of the two; the endpoints before it are counted from the nodes' own
    /// events when the slice's additions came before the source joined.
    #[test]
    fn the_slice_change_is_the_first_drop_after_the_last_addition() {
        let other = "10.244.0.3";
        let events = vec![
            pod(0.0, EventKind::PodReady, "web-old", IP),
            pod(0.0, EventKind::PodReady, "web-new", other),
            endpoint(0.0, EventKind::EndpointAdded, IP, "web-old", Some("node1")),
            endpoint(
                0.0,
                EventKind::EndpointAdded,
                other,
                "web-new",
                Some("node1"),
            ),
            Event::new(9000.0, EventKind::TriggerStart, "kubectl"),
            pod(10_000.0, EventKind::PodTerminating, "web-old", IP),
            endpoint(
                10_000.1,
                EventKind::EndpointTerminating,
                IP,
                "web-old",
                None,
            ),
            endpoint(10_000.2, EventKind::EndpointRemoved, IP, "web-old", None),
            endpoint(
                12_000.0,
                EventKind::EndpointRemoved,
                IP,
                "web-old",
                Some("node1"),
            ),
        ];
        let mut ws = vec![window(11_000.0, 11_020.0)];
        attribute_causes(&mut ws, &events);
        let mut reached = Reached::default();
        reached.failed(
            &sample(2, 11_900.0, Outcome::ConnectionRefused, None),
            11_000.0,
        );
        measure_programming_latency(&mut ws, &events, &reached, 10.0);
        let got = ws[0].programming_latency.as_ref().expect("a figure");
        assert_eq!((got.slice_changed_ms, got.endpoints), (10_000.1, 2));
        assert_eq!(got.node_syncs[0].after_ms, 12_000.0 - 10_000.1);
    }
}
