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
use crate::cause::{Cause, NodeSync, ProgrammingLatency};
use crate::event::{Event, EventKind};
use crate::report::OutageWindow;
use crate::sample::Sample;

/// What the samples say about which pods new connections reached, kept while the
/// analyzer runs: per pod its last answer, per window its last failure. It grows
/// with the pods and the windows, never with the run's length.
#[derive(Debug, Default)]
pub(crate) struct Reached {
    /// Per pod, when the last new connection it answered was sent, ms.
    answered: BTreeMap<String, f64>,
    /// Per window (by its start), when its last failed new connection was sent, ms.
    failed: Vec<(f64, f64)>,
}

/// When a sample's route was chosen: its send time on a new connection (a reused
/// one says nothing about the rules).
fn routed_ms(s: &Sample) -> Option<f64> {
    if s.connection.as_deref() == Some("reused") {
        return None;
    }
    Some(s.sent_ms.unwrap_or(s.intended_ms))
}

impl Reached {
    /// An ok answer (not local, not skipped).
    pub(crate) fn answered(&mut self, s: &Sample) {
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
        match self.failed.last_mut() {
            Some((start, last)) if *start == window_start_ms => *last = last.max(at),
            _ => self.failed.push((window_start_ms, at)),
        }
    }

    fn last_failed_in(&self, w: &OutageWindow) -> Option<f64> {
        self.failed
            .iter()
            .find(|(start, _)| *start == w.start_ms)
            .map(|(_, last)| *last)
    }
}

/// The pod a window's cause says was still routed to after it left, with its address.
fn routed_pod(cause: &Cause) -> Option<(&str, Option<IpAddr>)> {
    match cause {
        Cause::LaggingNode { pod, address, .. }
        | Cause::DeletedPodStillRouted { pod, address, .. } => Some((pod, *address)),
        Cause::TerminatingPodStillRouted { pod, .. }
        | Cause::RefusedWhileTerminating { pod, .. } => Some((pod, None)),
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

/// The EndpointSlice change that dropped the pod, when it came at or before `until`
/// and the pod was not put back since: the latest slice-level event about its
/// endpoint up to then is a drop.
fn slice_change(events: &[Event], pod: &str, address: Option<IpAddr>, until: f64) -> Option<f64> {
    events
        .iter()
        .filter(|e| e.at_ms <= until && e.subject.node.is_none() && e.kind.is_endpoint())
        .rfind(|e| about(e, pod, address))
        .filter(|e| drops(e))
        .map(|e| e.at_ms)
}

/// The endpoints in the Service just before `at_ms`, the pod at `address` included.
fn endpoints_before(events: &[Event], at_ms: f64, address: Option<IpAddr>) -> u32 {
    let slice: Vec<Event> = events
        .iter()
        .filter(|e| e.at_ms < at_ms && !(e.kind.is_endpoint() && e.subject.node.is_some()))
        .cloned()
        .collect();
    let c = Cluster::replay(&slice, at_ms);
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
    // (window, pod, address, slice change) of every stale-route window.
    let mut stale: Vec<(usize, String, Option<IpAddr>, f64)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let Some((pod, address)) = w.cause.as_ref().and_then(|c| routed_pod(&c.cause)) else {
            continue;
        };
        let Some(last_failed) = reached.last_failed_in(w) else {
            continue;
        };
        let address = address.or_else(|| {
            events
                .iter()
                .filter(|e| e.subject.pod.as_deref() == Some(pod))
                .find_map(|e| e.subject.address)
        });
        if let Some(changed) = slice_change(events, pod, address, last_failed) {
            stale.push((i, pod.to_string(), address, changed));
        }
    }
    for (i, pod, address, changed) in &stale {
        // The last hit over the whole stream: its answers and every window blamed on
        // it since the same slice change.
        let failed = stale
            .iter()
            .filter(|(_, p, _, c)| p == pod && c == changed)
            .filter_map(|(j, ..)| reached.last_failed_in(&windows[*j]));
        let answered = reached.answered.get(pod).copied();
        let Some(last_reached_ms) = failed.chain(answered).reduce(f64::max) else {
            continue;
        };
        windows[*i].programming_latency = Some(ProgrammingLatency {
            pod: pod.clone(),
            address: *address,
            slice_changed_ms: *changed,
            last_reached_ms,
            endpoints: endpoints_before(events, *changed, *address),
            period_ms,
            node_syncs: node_syncs(events, pod, *address, *changed),
        });
    }
}
