//! Causes for windows seen through a proxy (an ingress or gateway).
//!
//! Behind a proxy the client never meets a pod: the proxy picks an upstream from its
//! own list, which its controller rewrites from the EndpointSlices after a sync delay
//! of its own, retries, and answers by itself when nothing is left (`proxy_*` kinds).
//! So what explains such a window is the proxy's list, not kube-proxy's rules: a pod
//! the slice had dropped but the proxy still held, an empty list, or a list whose
//! every pod could not answer. The lab says each change of that list as a typed
//! `proxy_upstream_added` / `proxy_upstream_removed` event; this replays them, with
//! the slice's own events beside them, and names the proxy, the pod and both times.
//! A window the replay does not explain is left to the other rules, which say so.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::cluster::Cluster;
use super::programming::{slice_change, slice_events};
use super::{dominant, READY_REACH_MS};
use crate::cause::{Cause, PodAt};
use crate::event::{Event, EventKind};
use crate::outcome::Outcome;
use crate::report::OutageWindow;

/// The proxy's own failure kinds: it answered, not a pod.
fn is_proxy_kind(kind: Outcome) -> bool {
    matches!(
        kind,
        Outcome::ProxyNoUpstream
            | Outcome::ProxyUpstreamFailed
            | Outcome::ProxyUpstreamTimeout
            | Outcome::ProxyOverloaded
    )
}

/// One upstream in a proxy's list.
#[derive(Debug, Clone)]
struct Upstream {
    /// Its pod, when the event named it.
    pod: Option<String>,
}

/// A proxy's list as its events tell it, at one time.
#[derive(Debug, Default)]
struct ProxyList {
    /// The Service its upstreams come from, as its latest event says.
    service: Option<String>,
    upstreams: BTreeMap<IpAddr, Upstream>,
    /// When the list last became empty (after having had an upstream).
    emptied_at: Option<f64>,
}

/// Every proxy's list at `until_ms`, by proxy.
fn replay(events: &[Event], until_ms: f64) -> BTreeMap<&str, ProxyList> {
    let mut proxies: BTreeMap<&str, ProxyList> = BTreeMap::new();
    for e in events.iter().filter(|e| e.at_ms <= until_ms) {
        let (Some(proxy), Some(ip)) = (e.subject.proxy.as_deref(), e.subject.address) else {
            continue;
        };
        let list = proxies.entry(proxy).or_default();
        if e.kind.is_proxy_upstream() && e.subject.service.is_some() {
            list.service.clone_from(&e.subject.service);
        }
        match e.kind {
            EventKind::ProxyUpstreamAdded => {
                let pod = e.subject.pod.clone();
                list.upstreams.insert(ip, Upstream { pod });
                list.emptied_at = None;
            }
            EventKind::ProxyUpstreamRemoved
                if list.upstreams.remove(&ip).is_some() && list.upstreams.is_empty() =>
            {
                list.emptied_at = Some(e.at_ms);
            }
            _ => {}
        }
    }
    proxies
}

/// When the proxy dropped `ip` from its list at or after `since`.
fn proxy_dropped(events: &[Event], proxy: &str, ip: IpAddr, since: f64) -> Option<f64> {
    events
        .iter()
        .find(|e| {
            e.kind == EventKind::ProxyUpstreamRemoved
                && e.at_ms >= since
                && e.subject.proxy.as_deref() == Some(proxy)
                && e.subject.address == Some(ip)
        })
        .map(|e| e.at_ms)
}

/// When `service` was left without a ready endpoint, as of `at_ms`: the start of the
/// stretch without one that `at_ms` is in, from its slice-level endpoint events (other
/// Services' endpoints, such as the proxy's own, do not count).
fn service_emptied(events: &[Event], service: Option<&str>, at_ms: f64) -> Option<f64> {
    let ours: Vec<Event> = events
        .iter()
        .filter(|e| !e.kind.is_endpoint() || e.subject.service.as_deref() == service)
        .cloned()
        .collect();
    let mut empty_since = None;
    let slice = ours
        .iter()
        .filter(|e| e.at_ms <= at_ms && e.kind.is_endpoint() && e.subject.node.is_none());
    for e in slice {
        if Cluster::replay(&ours, e.at_ms).serving().is_empty() {
            empty_since.get_or_insert(e.at_ms);
        } else {
            empty_since = None;
        }
    }
    empty_since
}

/// The upstream's name in a sentence: its pod, else its address.
fn upstream_name(ip: IpAddr, u: &Upstream) -> String {
    u.pod.clone().unwrap_or_else(|| ip.to_string())
}

/// One proxy's list at a window, with what is needed to blame it.
struct AtWindow<'a> {
    events: &'a [Event],
    w: &'a OutageWindow,
    proxy: &'a str,
    list: &'a ProxyList,
    /// The window's most frequent kind.
    kind: Outcome,
}

impl AtWindow<'_> {
    /// A stale upstream: in the list at the window's start though the EndpointSlice
    /// had dropped it by the window's end (the earliest dropped, when several were).
    fn stale(&self) -> Option<Cause> {
        let (ip, name, dropped) = self
            .list
            .upstreams
            .iter()
            .filter_map(|(ip, u)| {
                let name = upstream_name(*ip, u);
                let slice = slice_events(self.events, &name, Some(*ip));
                let dropped = slice_change(&slice, self.w.end_ms)?;
                Some((*ip, name, dropped))
            })
            .min_by(|a, b| a.2.total_cmp(&b.2))?;
        Some(Cause::ProxyStaleUpstream {
            proxy: self.proxy.to_string(),
            pod: name,
            address: Some(ip),
            slice_dropped_ms: dropped,
            proxy_dropped_ms: proxy_dropped(self.events, self.proxy, ip, dropped),
            kind: self.kind,
        })
    }

    /// Every upstream in the list could not answer: its pod became ready within reach
    /// of the window, or had begun terminating. `None` when one of them had been
    /// serving for a while (or no pod event names it): the events cannot blame it.
    fn all_refused(&self) -> Option<Cause> {
        let c = Cluster::replay(self.events, self.w.end_ms);
        let (mut not_listening, mut draining) = (Vec::new(), Vec::new());
        for (ip, u) in &self.list.upstreams {
            let pod = c.pods.get(u.pod.as_ref()?)?;
            let name = upstream_name(*ip, u);
            if let Some(since) = pod.terminating_at.filter(|t| *t <= self.w.end_ms) {
                draining.push(PodAt {
                    pod: name,
                    at_ms: since,
                });
            } else if let Some(ready) = pod
                .ready_at
                .filter(|t| *t >= self.w.start_ms - READY_REACH_MS)
            {
                not_listening.push(PodAt {
                    pod: name,
                    at_ms: ready,
                });
            } else {
                return None;
            }
        }
        let by_time = |v: &mut Vec<PodAt>| v.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
        by_time(&mut not_listening);
        by_time(&mut draining);
        Some(Cause::ProxyUpstreamsRefused {
            proxy: self.proxy.to_string(),
            not_listening,
            draining,
            kind: self.kind,
        })
    }
}

/// At most this many phases in one window's cause: a Recreate has three (stale, empty,
/// not listening); more would be a list nobody reads.
const MAX_PHASES: usize = 4;

/// The cause of a window whose failures the proxy answered itself, from the proxies'
/// lists; `None` when the window is not one, or the lists do not explain it. When the
/// first explanation ends before the window does (the proxy dropped the stale pod, or
/// was given an upstream), what the lists say from there is the next phase. The
/// events in time order.
pub(super) fn proxy_cause(
    w: &OutageWindow,
    events: &[Event],
    kinds: &[(Outcome, u64)],
) -> Option<Cause> {
    let kind = dominant(kinds).filter(|k| is_proxy_kind(*k))?;
    let mut phases: Vec<Cause> = Vec::new();
    let mut from = w.start_ms;
    while phases.len() < MAX_PHASES {
        let rest = OutageWindow {
            start_ms: from,
            ..w.clone()
        };
        let Some(cause) = cause_from(&rest, events, kind) else {
            break;
        };
        let ends = phase_end(&cause);
        // Old pods the proxy dropped one after the other are one phase: the first
        // named, the window told on from the last one's drop.
        let again = matches!(
            (phases.last(), &cause),
            (
                Some(Cause::ProxyStaleUpstream { .. }),
                Cause::ProxyStaleUpstream { .. }
            )
        );
        if !again {
            phases.push(cause);
        }
        match ends {
            Some(t) if t > from && t < w.end_ms => from = t,
            _ => break,
        }
    }
    match phases.len() {
        0 => None,
        1 => phases.pop(),
        _ => Some(Cause::ProxyPhases(phases)),
    }
}

/// Where a phase stops explaining the window: the stale pod left the proxy's list, or
/// the empty list got an upstream. Refusing upstreams explain the window to its end.
fn phase_end(cause: &Cause) -> Option<f64> {
    match cause {
        Cause::ProxyStaleUpstream {
            proxy_dropped_ms, ..
        } => *proxy_dropped_ms,
        Cause::ProxyNoUpstream { next_upstream, .. } => next_upstream.as_ref().map(|p| p.at_ms),
        _ => None,
    }
}

/// The proxies' lists as of `w.start_ms`, and the first cause they give.
fn cause_from(w: &OutageWindow, events: &[Event], kind: Outcome) -> Option<Cause> {
    let at_start = replay(events, w.start_ms);
    for (proxy, list) in &at_start {
        if list.upstreams.is_empty() {
            let Some(since_ms) = list.emptied_at else {
                continue;
            };
            let next_upstream = events
                .iter()
                .filter(|e| e.kind == EventKind::ProxyUpstreamAdded && e.at_ms >= w.start_ms)
                .filter(|e| e.subject.proxy.as_deref() == Some(*proxy))
                .find_map(|e| {
                    Some(PodAt {
                        pod: e.subject.pod.clone()?,
                        at_ms: e.at_ms,
                    })
                });
            return Some(Cause::ProxyNoUpstream {
                proxy: proxy.to_string(),
                since_ms,
                service_empty_ms: service_emptied(events, list.service.as_deref(), since_ms),
                next_upstream,
                kind,
            });
        }
        let at = AtWindow {
            events,
            w,
            proxy,
            list,
            kind,
        };
        if let Some(cause) = at.stale().or_else(|| at.all_refused()) {
            return Some(cause);
        }
    }
    None
}
