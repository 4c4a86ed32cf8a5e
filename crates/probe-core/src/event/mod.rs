//! One event model: markers on the prober's clock, from every source.
//!
//! The trigger (its start and exit), marks from the library or stdin, the lab's
//! controller and a Kubernetes watch all say what happened in the same words: an
//! [`Event`] with a kind from one enum ([`EventKind`]) and a [`Subject`] whose
//! fields (pod, address, node, version, service, deployment) are typed. The same
//! happening gives the same event from the lab and from a cluster, so attribution
//! reads only these fields and never parses text back. The `detail` string is for
//! people (events.csv, the text report), nothing reads it.
//!
//! Events share the samples' monotonic clock (ms since the start) so that an
//! outage window can name the latest event before it. They are few, so they are
//! kept in memory and also streamed to events.csv for `rollprobe report`.
//!
//! A source of events ([`EventSource`]: the lab, a Kubernetes watch) hands a probe
//! what was standing when it attached (each pod's state, each endpoint) and then
//! every change; [`EventHub`] is the piece that every source uses for that.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod csv;
mod hub;

pub use self::csv::{read_events, EventWriter};

/// The events file of a run folder.
pub const EVENTS_FILE: &str = "events.csv";
pub use hub::{Attachment, BoxFuture, EventHub, EventSink, EventSource, Vantage};

/// What happened. Serialised as the snake_case names that events.csv and
/// report.json have always used (`pod_ready`, `endpoint_removed` ...).
///
/// ```
/// use probe_core::EventKind;
/// assert_eq!(EventKind::PodReady.as_str(), "pod_ready");
/// assert_eq!(EventKind::from("endpoint_removed"), EventKind::EndpointRemoved);
/// assert_eq!(EventKind::from("pod_prestop"), EventKind::PodPreStop);
/// assert_eq!(EventKind::from("my_own_kind"), EventKind::Other("my_own_kind".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// The trigger (a future or a command) started.
    TriggerStart,
    /// The trigger ended; the detail says how (exit code, error, killed).
    TriggerExit,
    /// A mark from the library, stdin or a lab step.
    Mark,
    /// A Deployment's pod template changed: a rollout began.
    RolloutStart,
    /// A ReplicaSet's desired replicas changed.
    ReplicasetScaled,
    /// A pod was created (it has an address once its sandbox runs).
    PodCreated,
    /// A pod's Ready condition turned true.
    PodReady,
    /// A pod's Ready condition turned false.
    PodUnready,
    /// A pod began terminating (deletion requested).
    PodTerminating,
    /// A pod is gone.
    PodDeleted,
    /// An address entered a Service's ready endpoints: kube-proxy sends it traffic.
    EndpointAdded,
    /// An endpoint's `terminating` condition turned true: no new connections.
    EndpointTerminating,
    /// An address left a Service's endpoints.
    EndpointRemoved,
    /// A Service's selector changed.
    ServiceSelectorChanged,
    /// A LoadBalancer address began to be announced (ARP).
    AddressAnnounced,
    /// A LoadBalancer address stopped being announced.
    AddressWithdrawn,
    /// The rollout completed (`kubectl rollout status` would return).
    RolloutComplete,
    /// The rollout exceeded its progress deadline.
    RolloutDeadlineExceeded,
    /// A watch was cut; events may be missing for the time it says.
    WatchGap,
    /// A pod's preStop hook began (the lab says so; a cluster's API does not).
    PodPreStop,
    /// A pod's container keeps crashing: the kubelet backs off its restarts.
    PodCrashLoop,
    /// The demo's own server instance stopped.
    InstanceStopped,
    /// The demo's own server instance listens.
    InstanceListening,
    /// An ingress proxy's controller gave it a Service's upstreams (the subject names
    /// the Service and the proxy's pod; the detail lists the addresses). Written by
    /// labs before the upstreams were typed; newer ones emit
    /// [`EventKind::ProxyUpstreamAdded`] and [`EventKind::ProxyUpstreamRemoved`].
    ProxyUpstreamsUpdated,
    /// A proxy began sending a Service's requests to an upstream: the subject's
    /// `pod` and `address` are the upstream, `proxy` the proxy, `service` the Service.
    ProxyUpstreamAdded,
    /// A proxy stopped sending a Service's requests to an upstream (subject as for
    /// [`EventKind::ProxyUpstreamAdded`]).
    ProxyUpstreamRemoved,
    /// Any other name (a user's own kinds, or a newer file's).
    Other(String),
}

const NAMED_KINDS: [(EventKind, &str); 26] = [
    (EventKind::TriggerStart, "trigger_start"),
    (EventKind::TriggerExit, "trigger_exit"),
    (EventKind::Mark, "mark"),
    (EventKind::RolloutStart, "rollout_start"),
    (EventKind::ReplicasetScaled, "replicaset_scaled"),
    (EventKind::PodCreated, "pod_created"),
    (EventKind::PodReady, "pod_ready"),
    (EventKind::PodUnready, "pod_unready"),
    (EventKind::PodTerminating, "pod_terminating"),
    (EventKind::PodDeleted, "pod_deleted"),
    (EventKind::EndpointAdded, "endpoint_added"),
    (EventKind::EndpointTerminating, "endpoint_terminating"),
    (EventKind::EndpointRemoved, "endpoint_removed"),
    (
        EventKind::ServiceSelectorChanged,
        "service_selector_changed",
    ),
    (EventKind::AddressAnnounced, "address_announced"),
    (EventKind::AddressWithdrawn, "address_withdrawn"),
    (EventKind::RolloutComplete, "rollout_complete"),
    (
        EventKind::RolloutDeadlineExceeded,
        "rollout_deadline_exceeded",
    ),
    (EventKind::WatchGap, "watch_gap"),
    (EventKind::PodPreStop, "pod_prestop"),
    (EventKind::PodCrashLoop, "pod_crash_loop"),
    (EventKind::InstanceStopped, "instance_stopped"),
    (EventKind::InstanceListening, "instance_listening"),
    (EventKind::ProxyUpstreamsUpdated, "proxy_upstreams_updated"),
    (EventKind::ProxyUpstreamAdded, "proxy_upstream_added"),
    (EventKind::ProxyUpstreamRemoved, "proxy_upstream_removed"),
];

impl EventKind {
    /// The stable name.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::Other(s) => s,
            named => NAMED_KINDS
                .iter()
                .find(|(k, _)| k == named)
                .map(|(_, s)| *s)
                .unwrap_or("other"),
        }
    }

    /// A pod's lifecycle: created, ready, unready, terminating, deleted.
    pub fn is_pod(&self) -> bool {
        matches!(
            self,
            EventKind::PodCreated
                | EventKind::PodReady
                | EventKind::PodUnready
                | EventKind::PodTerminating
                | EventKind::PodDeleted
        )
    }

    /// A Service endpoint's lifecycle: added, terminating, removed.
    pub fn is_endpoint(&self) -> bool {
        matches!(
            self,
            EventKind::EndpointAdded | EventKind::EndpointTerminating | EventKind::EndpointRemoved
        )
    }

    /// A proxy's own upstream list changed: one upstream added or removed.
    pub fn is_proxy_upstream(&self) -> bool {
        matches!(
            self,
            EventKind::ProxyUpstreamAdded | EventKind::ProxyUpstreamRemoved
        )
    }

    /// Reported by a cluster (the lab or Kubernetes), not by the prober or the user.
    pub fn is_rollout(&self) -> bool {
        self.is_pod()
            || self.is_endpoint()
            || self.is_proxy_upstream()
            || matches!(
                self,
                EventKind::RolloutStart
                    | EventKind::RolloutComplete
                    | EventKind::RolloutDeadlineExceeded
                    | EventKind::ReplicasetScaled
                    | EventKind::AddressAnnounced
                    | EventKind::AddressWithdrawn
                    | EventKind::ServiceSelectorChanged
            )
    }
}

impl From<&str> for EventKind {
    fn from(s: &str) -> EventKind {
        NAMED_KINDS
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(k, _)| k.clone())
            .unwrap_or_else(|| EventKind::Other(s.to_string()))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for EventKind {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EventKind, D::Error> {
        let s = String::deserialize(d)?;
        Ok(EventKind::from(s.as_str()))
    }
}

/// What an event is about, in typed fields; empty fields are unknown or do not apply.
///
/// A pod event names the pod and its address; an endpoint event names the
/// Service, the address (and port) and, when the source knows it, the pod. A proxy's
/// upstream event names the upstream as an endpoint (pod, address, port, Service) and
/// the proxy in its own field, so `pod` and `node` keep meaning the upstream's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The pod's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// A pod IP, an endpoint address or a LoadBalancer address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// The endpoint's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The node the pod runs on, or the node announcing an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The version (image tag) the pod runs, or a rollout's new image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// The proxy (an ingress or gateway, by its pod's name) whose own upstream list
    /// the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
}

impl Subject {
    /// No field set.
    pub fn is_empty(&self) -> bool {
        *self == Subject::default()
    }

    /// A pod (name, and address once it has one).
    pub fn pod(name: impl Into<String>, address: Option<IpAddr>) -> Subject {
        Subject {
            pod: Some(name.into()),
            address,
            ..Subject::default()
        }
    }

    /// An endpoint of `service` at `address:port`.
    pub fn endpoint(service: impl Into<String>, address: IpAddr, port: Option<u16>) -> Subject {
        Subject {
            service: Some(service.into()),
            address: Some(address),
            port,
            ..Subject::default()
        }
    }

    /// Sets the version.
    pub fn with_version(mut self, version: impl Into<String>) -> Subject {
        self.version = Some(version.into());
        self
    }

    /// Sets the node.
    pub fn with_node(mut self, node: impl Into<String>) -> Subject {
        self.node = Some(node.into());
        self
    }

    /// Sets the pod.
    pub fn with_pod(mut self, pod: impl Into<String>) -> Subject {
        self.pod = Some(pod.into());
        self
    }

    /// Sets the proxy whose upstream list the event is about.
    pub fn with_proxy(mut self, proxy: impl Into<String>) -> Subject {
        self.proxy = Some(proxy.into());
        self
    }

    /// Sets the Deployment.
    pub fn with_deployment(mut self, deployment: impl Into<String>) -> Subject {
        self.deployment = Some(deployment.into());
        self
    }
}

/// The version an app built from `image` reports (a [`Subject`]'s `version`): the tag
/// after the last `:` of the last path segment (`shop/web:v2` -> `v2`; no tag ->
/// `latest`; a digest is ignored). The lab and the Kubernetes watch name versions alike.
///
/// ```
/// assert_eq!(probe_core::version_of_image("shop/web:v2"), "v2");
/// assert_eq!(probe_core::version_of_image("registry:5000/shop/web"), "latest");
/// assert_eq!(probe_core::version_of_image("shop/web:v3@sha256:abc"), "v3");
/// ```
pub fn version_of_image(image: &str) -> String {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag.to_string(),
        _ => "latest".to_string(),
    }
}

/// Something that happened during the run, on the probe's clock.
///
/// ```
/// use probe_core::{Event, EventKind, Subject};
/// let ip = "10.244.0.7".parse().unwrap();
/// let e = Event::new(1250.0, EventKind::PodReady, "backend-1 10.244.0.7 v2")
///     .with_subject(Subject::pod("backend-1", Some(ip)).with_version("v2"));
/// assert_eq!(e.kind, EventKind::PodReady);
/// assert_eq!(e.subject.pod.as_deref(), Some("backend-1"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it was observed, ms since the start. Set by the probe that records it.
    pub at_ms: f64,
    /// What happened.
    pub kind: EventKind,
    /// For people: the command, the exit code, `NAME IP VERSION` ...; nothing parses it.
    pub detail: String,
    /// The source's own timestamp (e.g. Kubernetes' one-second resolution), if any.
    #[serde(default)]
    pub server_time: Option<String>,
    /// What it is about, typed.
    #[serde(default, skip_serializing_if = "Subject::is_empty")]
    pub subject: Subject,
}

impl Event {
    /// An event observed at `at_ms`.
    pub fn new(at_ms: f64, kind: impl Into<EventKind>, detail: impl Into<String>) -> Event {
        Event {
            at_ms,
            kind: kind.into(),
            detail: detail.into(),
            server_time: None,
            subject: Subject::default(),
        }
    }

    /// An event from a source, not yet on a probe's clock (`at_ms` is 0 until a
    /// probe records it).
    pub fn observed(kind: EventKind, subject: Subject, detail: impl Into<String>) -> Event {
        Event::new(0.0, kind, detail).with_subject(subject)
    }

    /// Sets the subject.
    pub fn with_subject(mut self, subject: Subject) -> Event {
        self.subject = subject;
        self
    }

    /// Sets the source's own timestamp.
    pub fn with_server_time(mut self, server_time: Option<String>) -> Event {
        self.server_time = server_time;
        self
    }
}

impl From<EventKind> for String {
    fn from(k: EventKind) -> String {
        k.as_str().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe that attaches late first hears each proxy's standing upstreams, kept
    /// apart from the Service's endpoints at the same address.
    #[test]
    fn a_late_sink_hears_the_proxies_standing_upstreams() {
        use std::sync::{Arc, Mutex};
        let ip: IpAddr = "10.244.0.2".parse().unwrap();
        let endpoint = Subject::endpoint("web", ip, Some(8080)).with_pod("web-a");
        let upstream = endpoint.clone().with_proxy("ingress-nginx-controller-0");
        let hub = EventHub::default();
        for (kind, subject) in [
            (EventKind::EndpointAdded, &endpoint),
            (EventKind::ProxyUpstreamAdded, &upstream),
            (EventKind::EndpointRemoved, &endpoint),
        ] {
            hub.publish(Event::observed(kind, subject.clone(), "x"));
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = seen.clone();
        let _attachment = hub.attach(Arc::new(move |e: Event| {
            sink_seen.lock().unwrap().push((e.kind, e.subject))
        }));
        assert_eq!(
            *seen.lock().unwrap(),
            [(EventKind::ProxyUpstreamAdded, upstream.clone())]
        );
        hub.publish(Event::observed(
            EventKind::ProxyUpstreamRemoved,
            upstream,
            "x",
        ));
        let seen = Arc::new(Mutex::new(0));
        let sink_seen = seen.clone();
        let _late = hub.attach(Arc::new(move |_| *sink_seen.lock().unwrap() += 1));
        assert_eq!(
            *seen.lock().unwrap(),
            0,
            "a dropped upstream is not standing"
        );
    }

    #[test]
    fn every_named_kind_round_trips() {
        for (kind, name) in NAMED_KINDS.iter() {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(&EventKind::from(*name), kind);
        }
    }
}
