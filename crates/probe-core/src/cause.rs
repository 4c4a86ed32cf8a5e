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
