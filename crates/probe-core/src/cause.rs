//! Why an outage window happened, as typed facts: which pods, nodes and addresses,
//! since when, until when, how many.
//!
//! Attribution (`attribute/`) finds these facts in the rollout's events and decides
//! which [`Cause`] a window has; the renderer (`output/cause.rs`) is the one place
//! that turns them into a sentence, for the text summary, report.html, windows.csv
//! and report.json's `cause`. Keeping the facts typed until then means no decision
//! ever reads a sentence back, and a test can check what attribution concluded
//! without matching English. This module sits with the shared vocabulary (below
//! both attribution and the report type) so that neither has to import the other's
//! stage to name a cause.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::event::EventKind;
use crate::outcome::Outcome;

/// A window's cause and what attribution adds to it.
///
/// report.json keeps only its sentence (the `cause` key); a report read back from
/// JSON holds that sentence as [`Cause::Recorded`], and equals the explanation it
/// was written from.
///
/// ```
/// use probe_core::{Cause, Explanation};
/// let why = Explanation::from(Cause::RefusedWhileTerminating { pod: "web-a".into(), since_ms: 9000.0 });
/// assert!(why.to_string().starts_with("connections refused while pod web-a was terminating (since +9.00 s)"));
/// ```
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The cause itself.
    pub cause: Cause,
    /// Connect timeouts that were, on a stock kernel, refusals or "no route" answers
    /// rate-limited away.
    pub rate_limited: Option<RateLimited>,
    /// Which pod answered last before the window and first after it (with `pod_from`).
    pub answered: AnsweredAround,
}

impl From<Cause> for Explanation {
    fn from(cause: Cause) -> Explanation {
        Explanation {
            cause,
            rate_limited: None,
            answered: AnsweredAround::default(),
        }
    }
}

/// A sentence from elsewhere (an older report.json, a caller's own words).
impl From<&str> for Explanation {
    fn from(sentence: &str) -> Explanation {
        Explanation::from(Cause::Recorded(sentence.to_string()))
    }
}

/// Connect timeouts beside refusals or "no route" answers, counted: a host sends one
/// client at most about one ICMP error per second, so the rest time out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// Failed connects that timed out.
    pub timeouts: u64,
    /// Failed connects whose refusal or "no route" got through.
    pub through: u64,
}

/// The pods that answered around a window, when the answers named their pods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnsweredAround {
    /// The pod of the last ok answer before the window.
    pub before: Option<String>,
    /// The pod of the ok answer that ended it.
    pub after: Option<String>,
}

/// A pod and a time on the probe's clock (ms): when it began terminating, or became ready.
#[derive(Debug, Clone, PartialEq)]
pub struct PodAt {
    /// The pod's name.
    pub pod: String,
    /// When, ms.
    pub at_ms: f64,
}

/// How the requests met a Service without a ready endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoEndpointSign {
    /// The LoadBalancer address is no longer announced (`host_unreachable`).
    AddressWithdrawn,
    /// kube-proxy rejects connections (refused, reset, timed out).
    ServiceRejects,
}

/// The latest event at or before a window's start, for a window no rollout event explains.
#[derive(Debug, Clone, PartialEq)]
pub struct LastEvent {
    /// What happened.
    pub kind: EventKind,
    /// Whom it was about: the pod, else the address, the Deployment or the Service.
    pub about: Option<String>,
    /// When, ms.
    pub at_ms: f64,
}

/// Why an outage window happened. Every time is on the probe's clock (ms since the start).
#[derive(Debug, Clone, PartialEq)]
pub enum Cause {
    /// The window ended before the rollout began: the service was already failing.
    Baseline {
        /// The window's failure kinds.
        kinds: Vec<Outcome>,
    },
    /// Nothing was serving: no endpoint, or no ready pod that was not terminating.
    NoReadyEndpoint {
        /// How the requests saw it.
        sign: NoEndpointSign,
        /// Pods of this rollout that had begun terminating, oldest first.
        terminating: Vec<PodAt>,
        /// The first pod to become ready at or after the window's start.
        next_ready: Option<PodAt>,
        /// The window's end, when connections were still refused well after that pod
        /// became ready (ready before its app listened).
        refused_until_ms: Option<f64>,
    },
    /// Requests still went to a deleted pod's address.
    DeletedPodStillRouted {
        /// The pod.
        pod: String,
        /// Its address.
        address: Option<IpAddr>,
        /// When it was deleted.
        deleted_ms: f64,
        /// When its endpoint left the Service (or turned terminating), if it did.
        endpoint_removed_ms: Option<f64>,
    },
    /// A terminating pod was still in the endpoints.
    TerminatingPodStillRouted {
        /// The pod.
        pod: String,
        /// When it began terminating (or was deleted).
        since_ms: f64,
        /// When its endpoint left the Service (or turned terminating), if it did.
        endpoint_removed_ms: Option<f64>,
        /// The window's most frequent failure kind.
        kind: Outcome,
    },
    /// Keep-alive connections to terminating pods were reset or closed when they stopped.
    OpenConnectionsLost {
        /// The pods, oldest termination first.
        pods: Vec<String>,
        /// When the first of them began terminating.
        since_ms: f64,
        /// Some connections were reset.
        reset: bool,
        /// Some connections were closed.
        closed: bool,
        /// A preStop sleep of one of these pods ran before the window.
        prestop_ran: bool,
    },
    /// A pod became ready before its app listened and refused connections.
    ReadyBeforeListening {
        /// The pod.
        pod: String,
        /// When it became ready.
        ready_ms: f64,
        /// The window's end.
        until_ms: f64,
    },
    /// Several pods of this rollout became ready before the window and none had
    /// answered yet, as far as the run knows: one of them, not yet listening, refused.
    ReadyBeforeListeningOneOf {
        /// The pods, with when each became ready, in that order.
        pods: Vec<PodAt>,
        /// The window's end.
        until_ms: f64,
    },
    /// New connections went to a terminating pod whose app had stopped.
    RefusedWhileTerminating {
        /// The pod.
        pod: String,
        /// When it began terminating.
        since_ms: f64,
    },
    /// One node's kube-proxy rules still sent connections to a pod that another
    /// node's rules had dropped.
    LaggingNode {
        /// The node whose rules lagged.
        node: String,
        /// The node that had dropped the endpoint first.
        other_node: String,
        /// The pod.
        pod: String,
        /// Its address.
        address: Option<IpAddr>,
        /// When it began terminating.
        terminating_ms: f64,
        /// When it was deleted, if within the window.
        deleted_ms: Option<f64>,
        /// When the lagging node dropped it.
        caught_up_ms: f64,
        /// When the other node dropped it.
        dropped_elsewhere_ms: f64,
        /// The window's failure kinds.
        kinds: Vec<Outcome>,
    },
    /// A proxy (an ingress or gateway) still sent requests to a pod the EndpointSlice
    /// had dropped: its own upstream list, which its controller updates after a sync
    /// delay of its own, lagged behind the Service.
    ProxyStaleUpstream {
        /// The proxy, by its pod's name.
        proxy: String,
        /// The upstream's pod, when an event named it, else its address.
        pod: String,
        /// The upstream's address.
        address: Option<IpAddr>,
        /// When the EndpointSlice dropped it (removed, or marked terminating).
        slice_dropped_ms: f64,
        /// When the proxy dropped it from its upstreams, if it did before the run ended.
        proxy_dropped_ms: Option<f64>,
        /// The window's most frequent failure kind.
        kind: Outcome,
    },
    /// A proxy had no upstream at all: its list was empty.
    ProxyNoUpstream {
        /// The proxy, by its pod's name.
        proxy: String,
        /// When its upstream list became empty.
        since_ms: f64,
        /// When the Service was left without a ready endpoint, as the EndpointSlice
        /// events say (before the proxy heard of it).
        service_empty_ms: Option<f64>,
        /// The first upstream the proxy was given back at or after the window's start.
        next_upstream: Option<PodAt>,
        /// The window's most frequent failure kind.
        kind: Outcome,
    },
    /// Every upstream a proxy had failed it: pods not yet listening, or draining.
    ProxyUpstreamsRefused {
        /// The proxy, by its pod's name.
        proxy: String,
        /// Upstream pods that became ready shortly before or during the window (or
        /// never did), with when: their app may not have listened yet.
        not_listening: Vec<PodAt>,
        /// Upstream pods that had begun terminating, with since when.
        draining: Vec<PodAt>,
        /// The window's most frequent failure kind.
        kind: Outcome,
    },
    /// A window through a proxy that went through several of the proxy causes above
    /// in turn, in time order: in a Recreate, the old pods the proxy still held, then
    /// no upstream at all, then new pods that could not answer yet. Each phase starts
    /// where the one before it stopped explaining the window.
    ProxyPhases(Vec<Cause>),
    /// No rollout event explains the window: what is known instead.
    Unexplained {
        /// The window's failure kinds with their counts.
        kinds: Vec<(Outcome, u64)>,
        /// The latest event at or before the window's start.
        last_event: Option<LastEvent>,
        /// Pods serving at the window's start.
        serving_pods: Vec<String>,
        /// Endpoints serving at the window's start that no pod event named.
        serving_endpoints: Vec<IpAddr>,
    },
    /// A sentence read back from a report.json, which keeps only the text.
    Recorded(String),
}

/// How often the last hit on a stale pod comes within [`ProgrammingLatency::slack_periods`]
/// probe periods of the real rule change: 19 times in 20.
pub const PROGRAMMING_SLACK_CONFIDENCE: f64 = 0.95;

/// The network programming latency as the client saw it: from the EndpointSlice
/// change that dropped a pod to the last request that still reached it.
///
/// It is a lower bound of the real delay until the rules changed: a new connection
/// meets the dropped pod only with probability 1/`endpoints` (random DNAT), so the
/// last hit comes some probe periods before the rules really moved. The number of
/// requests between the last hit and the change is geometric: more than `k` of them
/// in a row miss it with probability (1 - 1/`endpoints`)^k, so the last hit comes on
/// average `endpoints` periods early, and at most [`ProgrammingLatency::slack_periods`]
/// periods early in [`PROGRAMMING_SLACK_CONFIDENCE`] of runs.
///
/// ```
/// use probe_core::ProgrammingLatency;
/// let seen = ProgrammingLatency {
///     pod: "web-a".into(),
///     address: None,
///     slice_changed_ms: 10_000.0,
///     last_reached_ms: 10_480.0,
///     endpoints: 2,
///     period_ms: 10.0,
///     node_syncs: Vec::new(),
///     proxy_syncs: Vec::new(),
/// };
/// assert_eq!(seen.at_least_ms(), 480.0);
/// // 1 - 0.5^5 >= 0.95 > 1 - 0.5^4
/// assert_eq!((seen.slack_periods(), seen.slack_ms()), (5, 50.0));
/// ```
///
/// report.json keeps these facts under the window's `programming_latency` key, with
/// the derived `at_least_ms`, `slack_periods`, `slack_ms` and the sentence (`text`)
/// beside them; reading it back takes the facts and ignores the rest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProgrammingLatency {
    /// The pod the EndpointSlice dropped.
    pub pod: String,
    /// Its address, when an event named it.
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// When the EndpointSlice dropped it (its `endpoint_removed` or
    /// `endpoint_terminating` event without a node), ms.
    pub slice_changed_ms: f64,
    /// When the last new connection that reached it was sent (an answer it gave, or a
    /// failure of a window blamed on it), ms.
    pub last_reached_ms: f64,
    /// The Service's endpoints just before it was dropped, it included: a new
    /// connection met it with probability 1/`endpoints`.
    pub endpoints: u32,
    /// The stream's probe period, ms.
    pub period_ms: f64,
    /// When each node's rules dropped it, as the events say (the lab's kube-proxy
    /// syncs; a cluster's watch gives none).
    #[serde(default)]
    pub node_syncs: Vec<NodeSync>,
    /// When each proxy (an ingress or gateway) dropped it from its own upstreams, as
    /// the events say: the proxy's own sync, which is what a window seen through it
    /// waited for.
    #[serde(default)]
    pub proxy_syncs: Vec<ProxySync>,
}

impl ProgrammingLatency {
    /// The figure: the real programming delay was at least this long, ms.
    pub fn at_least_ms(&self) -> f64 {
        (self.last_reached_ms - self.slice_changed_ms).max(0.0)
    }

    /// The fewest probe periods `k` with 1 - (1 - 1/endpoints)^k >= the confidence:
    /// how many periods before the real change the last hit can come, 19 times in 20.
    /// One endpoint is hit by every request: one period.
    pub fn slack_periods(&self) -> u32 {
        slack_periods(self.endpoints)
    }

    /// [`ProgrammingLatency::slack_periods`] in ms.
    pub fn slack_ms(&self) -> f64 {
        f64::from(self.slack_periods()) * self.period_ms
    }
}

/// See [`ProgrammingLatency::slack_periods`].
fn slack_periods(endpoints: u32) -> u32 {
    if endpoints <= 1 {
        return 1;
    }
    let miss = 1.0 - 1.0 / f64::from(endpoints);
    ((1.0 - PROGRAMMING_SLACK_CONFIDENCE).ln() / miss.ln()).ceil() as u32
}

/// One proxy dropping an upstream from its own list, after the EndpointSlice change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxySync {
    /// The proxy, by its pod's name.
    pub proxy: String,
    /// How long after the EndpointSlice change, ms.
    pub after_ms: f64,
}

/// One node's rules dropping an endpoint, after the EndpointSlice change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSync {
    /// The node.
    pub node: String,
    /// How long after the EndpointSlice change, ms.
    pub after_ms: f64,
}
