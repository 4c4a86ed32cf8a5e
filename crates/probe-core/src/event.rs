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

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What happened. Serialised as the snake_case names that events.csv and
/// report.json have always used (`pod_ready`, `endpoint_removed` ...).
///
/// ```
/// use probe_core::EventKind;
/// assert_eq!(EventKind::PodReady.as_str(), "pod_ready");
/// assert_eq!(EventKind::from("endpoint_removed"), EventKind::EndpointRemoved);
/// assert_eq!(EventKind::from("instance_stopped"), EventKind::Other("instance_stopped".into()));
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
    /// Any other name (a user's own kinds, or a newer file's).
    Other(String),
}

const NAMED_KINDS: [(EventKind, &str); 19] = [
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

    /// Reported by a cluster (the lab or Kubernetes), not by the prober or the user.
    pub fn is_rollout(&self) -> bool {
        self.is_pod()
            || self.is_endpoint()
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
/// Service, the address (and port) and, when the source knows it, the pod.
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

    /// Sets the Deployment.
    pub fn with_deployment(mut self, deployment: impl Into<String>) -> Subject {
        self.deployment = Some(deployment.into());
        self
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

/// The columns of events.csv: the original four, then the subject's typed fields.
const EVENT_COLUMNS: [&str; 11] = [
    "at_ms",
    "kind",
    "detail",
    "server_time",
    "pod",
    "address",
    "port",
    "node",
    "version",
    "service",
    "deployment",
];

fn event_record(e: &Event) -> [String; 11] {
    let s = &e.subject;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        e.at_ms.to_string(),
        e.kind.as_str().to_string(),
        e.detail.clone(),
        opt(&e.server_time),
        opt(&s.pod),
        s.address.map(|a| a.to_string()).unwrap_or_default(),
        s.port.map(|p| p.to_string()).unwrap_or_default(),
        opt(&s.node),
        opt(&s.version),
        opt(&s.service),
        opt(&s.deployment),
    ]
}

/// Appends events to events.csv as they happen, flushing each one: they are rare
/// and a killed run must keep them.
pub struct EventWriter {
    inner: csv::Writer<BufWriter<File>>,
}

impl EventWriter {
    /// Creates the file.
    pub fn create(path: &Path) -> io::Result<EventWriter> {
        let inner = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(File::create(path)?));
        let mut w = EventWriter { inner };
        w.inner
            .write_record(EVENT_COLUMNS)
            .map_err(io::Error::other)?;
        w.inner.flush()?;
        Ok(w)
    }

    /// Appends one event and flushes it to the file.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.inner
            .write_record(event_record(event))
            .map_err(io::Error::other)?;
        // csv's flush also flushes the BufWriter beneath it.
        self.inner.flush()
    }
}

/// Reads events.csv, of this version or an older one.
///
/// Files written before events had typed columns hold only `at_ms,kind,detail,server_time`;
/// their subjects are recovered from the detail's wording here, at the reader's boundary
/// ([`legacy_subject`]), so that nothing after it ever parses text.
pub fn read_events(path: &Path) -> io::Result<Vec<Event>> {
    let fail = |what: String| io::Error::other(format!("{}: {what}", path.display()));
    let mut r = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| fail(e.to_string()))?;
    let headers = r.headers().map_err(|e| fail(e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(at), Some(kind), Some(detail)) = (col("at_ms"), col("kind"), col("detail")) else {
        return Err(fail(
            "not an events.csv (its header lacks at_ms, kind or detail)".into(),
        ));
    };
    let server_time = col("server_time");
    let typed = col("pod").is_some();
    let mut events = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.map_err(|e| fail(e.to_string()))?;
        let field = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let line = i + 2;
        let at_ms: f64 = row
            .get(at)
            .unwrap_or("")
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| fail(format!("line {line}: at_ms is not a number")))?;
        let kind = EventKind::from(row.get(kind).unwrap_or(""));
        let detail = row.get(detail).unwrap_or("").to_string();
        let subject = if typed {
            Subject {
                pod: field(col("pod")),
                address: field(col("address")).and_then(|a| a.parse().ok()),
                port: field(col("port")).and_then(|p| p.parse().ok()),
                node: field(col("node")),
                version: field(col("version")),
                service: field(col("service")),
                deployment: field(col("deployment")),
            }
        } else {
            legacy_subject(&kind, &detail)
        };
        events.push(Event {
            at_ms,
            kind,
            detail,
            server_time: field(server_time),
            subject,
        });
    }
    Ok(events)
}

/// The subject of an event written before events were typed, from its detail's
/// wording: pods as `NAME IP [VERSION]`, endpoints as `SERVICE IP:PORT [POD]` (the lab)
/// or `NAME IP ...` (the Kubernetes watch). Used only by [`read_events`].
fn legacy_subject(kind: &EventKind, detail: &str) -> Subject {
    let tokens: Vec<&str> = detail.split_whitespace().collect();
    let address_at = tokens.iter().position(|t| {
        let host = t.rsplit_once(':').map(|(h, _)| h).unwrap_or(t);
        host.parse::<IpAddr>().is_ok()
    });
    let (address, port) = match address_at {
        Some(i) => match tokens[i].rsplit_once(':') {
            Some((h, p)) if h.parse::<IpAddr>().is_ok() => (h.parse().ok(), p.parse().ok()),
            _ => (tokens[i].parse().ok(), None),
        },
        None => (None, None),
    };
    if kind.is_pod() {
        Subject {
            pod: tokens.first().map(|t| t.to_string()),
            address,
            version: address_at
                .and_then(|i| tokens.get(i + 1))
                .filter(|t| !t.contains('='))
                .map(|t| t.to_string()),
            ..Subject::default()
        }
    } else if kind.is_endpoint() {
        Subject {
            service: tokens
                .first()
                .filter(|_| address_at != Some(0))
                .map(|t| t.to_string()),
            address,
            port,
            pod: address_at
                .and_then(|i| tokens.get(i + 1))
                .map(|t| t.to_string()),
            ..Subject::default()
        }
    } else {
        Subject::default()
    }
}

/// Where a source delivers its events. Called from the source's threads or tasks,
/// in order, one at a time; keep it cheap.
pub type EventSink = Arc<dyn Fn(Event) + Send + Sync>;

/// A boxed future, as [`EventSource`] returns (object-safe without an extra crate).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Ends an [`EventSource::attach`]ment when dropped.
pub struct Attachment {
    detach: Option<Box<dyn FnOnce() + Send>>,
}

impl Attachment {
    /// An attachment that runs `detach` when dropped.
    pub fn new(detach: impl FnOnce() + Send + 'static) -> Attachment {
        Attachment {
            detach: Some(Box::new(detach)),
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        if let Some(detach) = self.detach.take() {
            detach();
        }
    }
}

/// A source of rollout events: the lab, a Kubernetes watch. [`crate::Rollout::events`]
/// takes one.
pub trait EventSource: Send + Sync {
    /// Delivers to `sink` first what stands now (each pod's latest state and each ready
    /// endpoint, as events), then every change, until the attachment is dropped.
    fn attach(&self, sink: EventSink) -> Attachment;

    /// Resolves when the rollouts in progress have completed (as `kubectl rollout status`
    /// defines it), or with a one-line reason when they cannot within `timeout`.
    fn rollout_complete(&self, timeout: Duration) -> BoxFuture<Result<(), String>>;
}

impl<T: EventSource + ?Sized> EventSource for Arc<T> {
    fn attach(&self, sink: EventSink) -> Attachment {
        (**self).attach(sink)
    }

    fn rollout_complete(&self, timeout: Duration) -> BoxFuture<Result<(), String>> {
        (**self).rollout_complete(timeout)
    }
}

/// Where a probe must stand to reach a URL: a lab's client host or node. Called on each
/// of the probe's own threads before it opens a socket; [`crate::Rollout::lab`] uses it.
pub trait Vantage: Send + Sync {
    /// Moves the calling thread to where a client of `url` stands (for the lab, into a
    /// network namespace). Must only affect the calling thread.
    fn enter(&self, url: &str) -> io::Result<()>;
}

#[derive(Default)]
struct HubState {
    sinks: BTreeMap<u64, EventSink>,
    next_id: u64,
    /// Pod name -> its latest event (a deleted pod is forgotten).
    pods: BTreeMap<String, Event>,
    /// (Service, address) -> its endpoint_added (until removed).
    endpoints: BTreeMap<(Option<String>, IpAddr), Event>,
}

/// The fan-out that every [`EventSource`] is built on: publishes events to the attached
/// sinks, and remembers the cluster's picture (each pod's latest event, the ready
/// endpoints) so that a probe attaching later first receives what stands.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use probe_core::{Event, EventHub, EventKind, Subject};
/// let hub = EventHub::default();
/// hub.publish(Event::observed(EventKind::PodReady, Subject::pod("web-a", None), "web-a"));
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let sink_seen = seen.clone();
/// let attachment = hub.attach(Arc::new(move |e: Event| sink_seen.lock().unwrap().push(e.kind)));
/// hub.publish(Event::observed(EventKind::PodTerminating, Subject::pod("web-a", None), "web-a"));
/// drop(attachment);
/// hub.publish(Event::observed(EventKind::PodDeleted, Subject::pod("web-a", None), "web-a"));
/// assert_eq!(*seen.lock().unwrap(), [EventKind::PodReady, EventKind::PodTerminating]);
/// ```
#[derive(Clone, Default)]
pub struct EventHub {
    state: Arc<Mutex<HubState>>,
}

impl EventHub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records one event in the picture and forwards it to every attached sink.
    pub fn publish(&self, event: Event) {
        let sinks: Vec<EventSink> = {
            let mut s = self.lock();
            if event.kind.is_pod() {
                if let Some(pod) = event.subject.pod.clone() {
                    if event.kind == EventKind::PodDeleted {
                        s.pods.remove(&pod);
                    } else {
                        s.pods.insert(pod, event.clone());
                    }
                }
            } else if let Some(addr) = event.subject.address {
                let key = (event.subject.service.clone(), addr);
                match event.kind {
                    EventKind::EndpointAdded => {
                        s.endpoints.insert(key, event.clone());
                    }
                    EventKind::EndpointRemoved => {
                        s.endpoints.remove(&key);
                    }
                    _ => {}
                }
            }
            s.sinks.values().cloned().collect()
        };
        for sink in sinks {
            sink(event.clone());
        }
    }

    /// Attaches a sink: it first receives the picture, then every event until the
    /// attachment is dropped.
    pub fn attach(&self, sink: EventSink) -> Attachment {
        let id = {
            let mut s = self.lock();
            // Replayed under the lock, so no event published meanwhile comes first.
            for e in s.pods.values().chain(s.endpoints.values()) {
                sink(e.clone());
            }
            let id = s.next_id;
            s.next_id += 1;
            s.sinks.insert(id, sink);
            id
        };
        let hub = self.clone();
        Attachment::new(move || {
            hub.lock().sinks.remove(&id);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_kind_round_trips() {
        for (kind, name) in NAMED_KINDS.iter() {
            assert_eq!(kind.as_str(), *name);
            assert_eq!(&EventKind::from(*name), kind);
        }
    }

    #[test]
    fn legacy_details_give_typed_subjects() {
        let pod = legacy_subject(&EventKind::PodReady, "backend-7bq5x-x2m4p 10.244.0.5 v2");
        assert_eq!(pod.pod.as_deref(), Some("backend-7bq5x-x2m4p"));
        assert_eq!(pod.address, Some("10.244.0.5".parse().unwrap()));
        assert_eq!(pod.version.as_deref(), Some("v2"));
        let lab_endpoint = legacy_subject(
            &EventKind::EndpointRemoved,
            "backend-svc 10.244.0.3:8080 backend-x",
        );
        assert_eq!(lab_endpoint.service.as_deref(), Some("backend-svc"));
        assert_eq!(lab_endpoint.address, Some("10.244.0.3".parse().unwrap()));
        assert_eq!(lab_endpoint.port, Some(8080));
        assert_eq!(lab_endpoint.pod.as_deref(), Some("backend-x"));
        let nothing = legacy_subject(&EventKind::Mark, "10.0.0.1 deploy");
        assert!(nothing.is_empty());
    }

    #[test]
    fn events_csv_round_trips_typed_and_reads_legacy() {
        let dir = std::env::temp_dir().join(format!("rollprobe-events-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.csv");
        let ip: IpAddr = "10.244.0.9".parse().unwrap();
        let written = vec![
            Event::new(12.5, EventKind::PodReady, "web-a 10.244.0.9 v1")
                .with_subject(Subject::pod("web-a", Some(ip)).with_version("v1")),
            Event::new(20.0, EventKind::Other("custom".into()), "with, a comma")
                .with_server_time(Some("2026-01-01T00:00:00Z".into())),
        ];
        let mut w = EventWriter::create(&path).unwrap();
        for e in &written {
            w.write(e).unwrap();
        }
        assert_eq!(read_events(&path).unwrap(), written);
        std::fs::write(
            &path,
            "at_ms,kind,detail,server_time\n5,endpoint_added,svc 10.244.0.9:8080 web-a,\n",
        )
        .unwrap();
        let legacy = read_events(&path).unwrap();
        assert_eq!(legacy[0].subject.address, Some(ip));
        assert_eq!(legacy[0].subject.pod.as_deref(), Some("web-a"));
        std::fs::write(&path, "at_ms,kind,detail\nNaN,mark,x\n").unwrap();
        assert!(read_events(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
