//! What sources of events implement ([`EventSource`], [`Vantage`]) and the piece
//! they share ([`EventHub`]): publish events, attach sinks, and replay the
//! standing picture (pods, endpoints) to a sink that attaches late.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Event, EventKind};

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

    /// Resolves when what `url` reaches answers steadily, or with a one-line reason when
    /// it cannot within `timeout`: a measurement starts from a healthy baseline, as a
    /// user's running service would be, so start-up failures are never blamed on the
    /// rollout. By default there is nothing to wait for.
    fn wait_serving(&self, url: &str, timeout: Duration) -> BoxFuture<Result<(), String>> {
        let _ = (url, timeout);
        Box::pin(async { Ok(()) })
    }
}

#[derive(Default)]
struct HubState {
    sinks: BTreeMap<u64, EventSink>,
    next_id: u64,
    /// Pod name -> its latest event (a deleted pod is forgotten).
    pods: BTreeMap<String, Event>,
    /// (proxy, Service, address) -> its endpoint_added or, for a proxy's own
    /// upstream, its proxy_upstream_added (until removed).
    endpoints: BTreeMap<(Option<String>, Option<String>, IpAddr), Event>,
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
                let subject = &event.subject;
                let key = (subject.proxy.clone(), subject.service.clone(), addr);
                match event.kind {
                    EventKind::EndpointAdded | EventKind::ProxyUpstreamAdded => {
                        s.endpoints.insert(key, event.clone());
                    }
                    EventKind::EndpointRemoved | EventKind::ProxyUpstreamRemoved => {
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
