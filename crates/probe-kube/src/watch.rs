//! The watches behind [`watch_rollout`]: list, then watch from the list's resourceVersion,
//! resume after drops, and say so.
//!
//! Why not `kube::runtime::watcher`? It resumes a dropped watch perfectly, but silently:
//! a stream that ends (the server closed it, a proxy cut it mid-chunk, which kube turns into
//! a clean end) is restarted from the last resourceVersion without a trace. For rollprobe a
//! silent gap is a lie on the timeline: events that happened during the gap are observed
//! late, so their local times are wrong by the gap's length. So each watch here is a small
//! loop over kube's [`Api::list`] and [`Api::watch`] that does what the watcher does
//! (resume from the last resourceVersion or bookmark, relist on 410 Gone, back off on
//! errors) and also measures each interruption and reports it as a `watch_gap` event.
//!
//! A watch normally ends when its `timeoutSeconds` ([`WATCH_TIMEOUT_SECS`]) is up; that
//! rotation loses nothing and is not reported. Any earlier end, an error, or a stream that
//! stays silent (no event, no bookmark) for longer than the timeout is a gap.
//!
//! All objects of all watches go through one channel into one [`Tracker`], so events come
//! out in the order they were observed, and are published into the handle's
//! [`EventHub`]: what stood at the start is its picture, every change after it an event.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::{Client, Resource, ResourceExt};
use probe_core::{Attachment, BoxFuture, EventHub, EventSink, EventSource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::control::{get_deployment, wait_rollout_complete};
use crate::error::{KubeError, Op};
use crate::rules::{Change, Msg, Tracker};

/// `timeoutSeconds` asked of every watch request (kube's watcher uses the same).
pub const WATCH_TIMEOUT_SECS: u32 = 290;

/// What to watch: a Deployment and, optionally, the Service in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTarget {
    /// The namespace of both.
    pub namespace: String,
    /// The Deployment's name.
    pub deployment: String,
    /// The Service's name, to watch its selector and EndpointSlices.
    pub service: Option<String>,
}

/// The running watches of one Deployment (and its Service), as an [`EventSource`].
///
/// What stood when the watch started (each pod's standing, each ready endpoint) is the
/// picture of its [`EventHub`], which [`EventSource::attach`] hands a sink first; every
/// change after it is an event. [`WatchHandle::stop`] ends the watches; dropping the
/// handle aborts them.
pub struct WatchHandle {
    hub: EventHub,
    client: Client,
    target: WatchTarget,
    stop: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
    consumer: Option<JoinHandle<()>>,
}

impl WatchHandle {
    /// The hub the watch publishes into (attach to it, or publish beside it).
    pub fn hub(&self) -> &EventHub {
        &self.hub
    }

    /// What is watched.
    pub fn target(&self) -> &WatchTarget {
        &self.target
    }

    /// Stops every watch, publishes the events already received (and a `watch_gap` for a
    /// watch that was interrupted and not yet resumed), and returns when the last one has
    /// been delivered to the attached sinks.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for l in std::mem::take(&mut self.loops) {
            let _ = tokio::time::timeout(Duration::from_secs(5), l).await;
        }
        if let Some(c) = self.consumer.take() {
            // The loops held the only senders; the consumer ends once they are gone.
            let _ = tokio::time::timeout(Duration::from_secs(5), c).await;
        }
    }
}

impl EventSource for WatchHandle {
    fn attach(&self, sink: EventSink) -> Attachment {
        self.hub.attach(sink)
    }

    /// The watched Deployment's rollout, by [`wait_rollout_complete`]; the error is its
    /// one-line [`KubeError`] text.
    fn rollout_complete(&self, timeout: Duration) -> BoxFuture<Result<(), String>> {
        let client = self.client.clone();
        let WatchTarget {
            namespace,
            deployment,
            ..
        } = self.target.clone();
        Box::pin(async move {
            wait_rollout_complete(client, &namespace, &deployment, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for l in &self.loops {
            l.abort();
        }
        if let Some(c) = &self.consumer {
            c.abort();
        }
    }
}

/// A label selector in the string syntax the API takes (`a=b,c in (d,e),!f`).
///
/// ```
/// let sel: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
///     serde_json::from_str(r#"{
///       "matchLabels": {"app": "backend"},
///       "matchExpressions": [
///         {"key": "track", "operator": "In", "values": ["blue", "green"]},
///         {"key": "canary", "operator": "DoesNotExist"}
///       ]
///     }"#).unwrap();
/// assert_eq!(
///     probe_kube::selector_string(&sel),
///     "app=backend,track in (blue,green),!canary"
/// );
/// ```
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let vals = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({vals})", e.key),
            "NotIn" => format!("{} notin ({vals})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({vals})", e.key),
        });
    }
    parts.join(",")
}

/// One kind of object to watch.
struct Spec<K> {
    api: Api<K>,
    /// For messages: `pods`, `endpointslices`...
    resource: &'static str,
    namespace: String,
    label: Option<String>,
    field: Option<String>,
    wrap: fn(Change<K>) -> Msg,
}

impl<K> Spec<K> {
    fn describe(&self) -> String {
        let sel = self
            .label
            .as_deref()
            .or(self.field.as_deref())
            .unwrap_or("");
        format!("{} ({sel})", self.resource)
    }

    fn op(&self, verb: &'static str) -> Op<'_> {
        Op {
            verb,
            resource: self.resource,
            namespace: &self.namespace,
            name: None,
        }
    }

    fn list_params(&self) -> ListParams {
        let mut lp = ListParams::default();
        lp.label_selector.clone_from(&self.label);
        lp.field_selector.clone_from(&self.field);
        lp
    }

    fn watch_params(&self) -> WatchParams {
        let mut wp = WatchParams::default().timeout(WATCH_TIMEOUT_SECS);
        wp.label_selector.clone_from(&self.label);
        wp.field_selector.clone_from(&self.field);
        wp
    }
}

type Events<K> = BoxStream<'static, Result<WatchEvent<K>, kube::Error>>;

/// A watch that has listed and opened its first stream.
struct Started<K> {
    spec: Spec<K>,
    rv: String,
    stream: Events<K>,
}

impl<K> Started<K>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    fn spawn(
        self,
        tx: &mpsc::UnboundedSender<Msg>,
        stop: &watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        tokio::spawn(run(
            self.spec,
            self.rv,
            self.stream,
            tx.clone(),
            stop.clone(),
        ))
    }
}

/// Lists (the baseline, fed to the tracker without events) and opens the first watch, so
/// that a refusal fails `watch_rollout` itself.
async fn prepare<K>(spec: Spec<K>, tracker: &mut Tracker) -> Result<Started<K>, KubeError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let list = spec
        .api
        .list(&spec.list_params())
        .await
        .map_err(|e| KubeError::from_kube(e, spec.op("list")))?;
    let rv = list.metadata.resource_version.clone().unwrap_or_default();
    let stream = spec
        .api
        .watch(&spec.watch_params(), &rv)
        .await
        .map_err(|e| KubeError::from_kube(e, spec.op("watch")))?
        .boxed();
    for o in list.items {
        tracker.baseline((spec.wrap)(Change::Apply(o)));
    }
    Ok(Started { spec, rv, stream })
}

/// How a stream ended.
enum End {
    Rotated,
    Gap(String),
    Relist(String),
    Stopped,
}

async fn run<K>(
    spec: Spec<K>,
    mut rv: String,
    mut stream: Events<K>,
    tx: mpsc::UnboundedSender<Msg>,
    mut stop: watch::Receiver<bool>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let idle = Duration::from_secs(u64::from(WATCH_TIMEOUT_SECS) + 30);
    let rotation = Duration::from_secs(u64::from(WATCH_TIMEOUT_SECS.saturating_sub(5)));
    loop {
        let opened = Instant::now();
        let end = loop {
            let next = tokio::select! {
                _ = stop.wait_for(|s| *s) => break End::Stopped,
                n = tokio::time::timeout(idle, stream.next()) => n,
            };
            match next {
                Err(_) => break End::Gap(format!("no event or bookmark for {} s", idle.as_secs())),
                Ok(None) if opened.elapsed() >= rotation => break End::Rotated,
                Ok(None) => {
                    break End::Gap(format!(
                        "stream closed by the server after {:.2} s",
                        opened.elapsed().as_secs_f64()
                    ))
                }
                Ok(Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)))) => {
                    rv = o.resource_version().unwrap_or(rv);
                    let _ = tx.send((spec.wrap)(Change::Apply(o)));
                }
                Ok(Some(Ok(WatchEvent::Deleted(o)))) => {
                    rv = o.resource_version().unwrap_or(rv);
                    let _ = tx.send((spec.wrap)(Change::Delete(o)));
                }
                Ok(Some(Ok(WatchEvent::Bookmark(b)))) => rv = b.metadata.resource_version,
                Ok(Some(Ok(WatchEvent::Error(status)))) if status.code == 410 => {
                    break End::Relist(format!("resourceVersion {rv} expired: {}", status.message))
                }
                Ok(Some(Ok(WatchEvent::Error(status)))) => {
                    break End::Gap(format!("server error {}: {}", status.code, status.message))
                }
                Ok(Some(Err(e))) => break End::Gap(crate::error::chain(&e)),
            }
        };
        let (mut reason, mut relist) = match end {
            End::Stopped => return,
            End::Rotated => (None, false),
            End::Gap(r) => (Some(r), false),
            End::Relist(r) => (Some(r), true),
        };
        let broke = Instant::now();
        let mut delay = Duration::from_millis(100);
        let mut resync = None;
        // Reconnect until it works or we are stopped. Each call also gives way to stop.
        let resumed = loop {
            if relist {
                let lp = spec.list_params();
                let listed = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break false,
                    l = spec.api.list(&lp) => l,
                };
                match listed {
                    Ok(list) => {
                        rv = list.metadata.resource_version.clone().unwrap_or_default();
                        resync = Some(list.items);
                        relist = false;
                    }
                    Err(e) => {
                        reason.get_or_insert_with(|| {
                            format!("relist failed: {}", crate::error::chain(&e))
                        });
                        if backoff(&mut stop, &mut delay).await {
                            break false;
                        }
                        continue;
                    }
                }
            }
            let wp = spec.watch_params();
            let opened = tokio::select! {
                _ = stop.wait_for(|s| *s) => break false,
                w = spec.api.watch(&wp, &rv) => w,
            };
            match opened {
                Ok(s) => {
                    stream = s.boxed();
                    break true;
                }
                Err(kube::Error::Api(status)) if status.code == 410 => {
                    reason.get_or_insert_with(|| format!("resourceVersion {rv} expired"));
                    relist = true;
                    resync = None;
                }
                Err(e) => {
                    // A rotation whose reconnect fails has become a gap too.
                    reason.get_or_insert_with(|| {
                        format!("watch could not be reopened: {}", crate::error::chain(&e))
                    });
                }
            }
            if backoff(&mut stop, &mut delay).await {
                break false;
            }
        };
        if let Some(reason) = reason {
            let _ = tx.send(Msg::Gap {
                watch: spec.describe(),
                lasted: broke.elapsed(),
                reason,
                resumed,
                resource_version: rv.clone(),
            });
        }
        if !resumed {
            return;
        }
        // What changed during the gap comes after the gap's mark.
        if let Some(items) = resync.take() {
            let _ = tx.send((spec.wrap)(Change::Resync(items)));
        }
    }
}

/// Sleeps `delay` (doubling it up to 5 s); true if stopped meanwhile.
async fn backoff(stop: &mut watch::Receiver<bool>, delay: &mut Duration) -> bool {
    let d = *delay;
    *delay = (*delay * 2).min(Duration::from_secs(5));
    let stopped = tokio::select! {
        _ = stop.wait_for(|s| *s) => true,
        _ = tokio::time::sleep(d) => false,
    };
    stopped || *stop.borrow()
}

/// Watches a Deployment's rollout: its events go into the returned handle's [`EventHub`].
///
/// First GETs the Deployment (and the Service), then lists and opens a watch on the
/// Deployment, its ReplicaSets and Pods (by the Deployment's selector), the Service and
/// its EndpointSlices (`kubernetes.io/service-name`). Any refusal (not found, forbidden,
/// no cluster) is returned here, before the caller starts probing. What exists at the
/// start is published into the hub before anyone can attach, so it is the picture a sink
/// receives first, never an event sent to a sink attached earlier. See the rules in the
/// crate docs.
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use probe_core::{Event, EventSource};
/// let client = probe_kube::connect(None).await?;
/// let target = probe_kube::WatchTarget {
///     namespace: "shop".into(),
///     deployment: "backend".into(),
///     service: Some("backend".into()),
/// };
/// let watch = probe_kube::watch_rollout(client, target).await?;
/// let attachment = watch.attach(Arc::new(|e: Event| println!("{} {}", e.kind, e.detail)));
/// // ... trigger and probe ...
/// watch.rollout_complete(std::time::Duration::from_secs(300)).await?;
/// drop(attachment);
/// watch.stop().await;
/// # Ok(()) }
/// ```
pub async fn watch_rollout(client: Client, target: WatchTarget) -> Result<WatchHandle, KubeError> {
    let ns = target.namespace.clone();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let dep = get_deployment(&deployments, &ns, &target.deployment).await?;
    if let Some(svc) = &target.service {
        let services: Api<Service> = Api::namespaced(client.clone(), &ns);
        services.get(svc).await.map_err(|e| {
            KubeError::from_kube(
                e,
                Op {
                    verb: "get",
                    resource: "services",
                    namespace: &ns,
                    name: Some(svc),
                },
            )
        })?;
    }
    let selector = dep
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default();
    if selector.is_empty() {
        return Err(KubeError::Invalid {
            reason: format!(
                "deployment \"{}\" has an empty selector: rollprobe cannot tell its pods",
                target.deployment
            ),
        });
    }

    let mut tracker = Tracker::new(&target.deployment, target.service.as_deref());
    let deps = prepare(
        Spec {
            api: deployments,
            resource: "deployments",
            namespace: ns.clone(),
            label: None,
            field: Some(format!("metadata.name={}", target.deployment)),
            wrap: Msg::Deployment,
        },
        &mut tracker,
    )
    .await?;
    let rss = prepare(
        Spec {
            api: Api::<ReplicaSet>::namespaced(client.clone(), &ns),
            resource: "replicasets",
            namespace: ns.clone(),
            label: Some(selector.clone()),
            field: None,
            wrap: Msg::ReplicaSet,
        },
        &mut tracker,
    )
    .await?;
    let pods = prepare(
        Spec {
            api: Api::<Pod>::namespaced(client.clone(), &ns),
            resource: "pods",
            namespace: ns.clone(),
            label: Some(selector.clone()),
            field: None,
            wrap: Msg::Pod,
        },
        &mut tracker,
    )
    .await?;
    let mut service_watches = None;
    if let Some(svc) = &target.service {
        let svcs = prepare(
            Spec {
                api: Api::<Service>::namespaced(client.clone(), &ns),
                resource: "services",
                namespace: ns.clone(),
                label: None,
                field: Some(format!("metadata.name={svc}")),
                wrap: Msg::Service,
            },
            &mut tracker,
        )
        .await?;
        let slices = prepare(
            Spec {
                api: Api::<EndpointSlice>::namespaced(client.clone(), &ns),
                resource: "endpointslices",
                namespace: ns.clone(),
                label: Some(format!("kubernetes.io/service-name={svc}")),
                field: None,
                wrap: Msg::EndpointSlice,
            },
            &mut tracker,
        )
        .await?;
        service_watches = Some((svcs, slices));
    }

    let hub = EventHub::default();
    for e in tracker.snapshot() {
        hub.publish(e);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut loops = vec![
        deps.spawn(&tx, &stop_rx),
        rss.spawn(&tx, &stop_rx),
        pods.spawn(&tx, &stop_rx),
    ];
    if let Some((svcs, slices)) = service_watches {
        loops.push(svcs.spawn(&tx, &stop_rx));
        loops.push(slices.spawn(&tx, &stop_rx));
    }
    drop(tx);

    let publish_to = hub.clone();
    let consumer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            for e in tracker.handle(msg) {
                publish_to.publish(e);
            }
        }
    });
    Ok(WatchHandle {
        hub,
        client,
        target,
        stop: stop_tx,
        loops,
        consumer: Some(consumer),
    })
}
