//! Waiting on the lab, and the lab as a source of events and a place to probe from.
//!
//! Waits hold only the controller's shared state, never a [`Lab`] handle, so a pending
//! wait (for example [`EventSource::rollout_complete`]'s future) can never be the last
//! handle whose drop would tear the lab down inside async code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use probe_core::{Attachment, BoxFuture, EventSink, EventSource, Vantage};

use crate::controller::{Shared, Status};
use crate::error::LabError;
use crate::lab::Lab;

pub(crate) fn status(shared: &Shared) -> Status {
    shared.status.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Polls the controller's status until `cond` holds, the lab stops, or `timeout` passes.
/// It holds only the shared state, never a [`Lab`] handle, so a pending wait can never be
/// the last handle whose drop tears the lab down inside async code.
pub(crate) async fn wait_until(
    shared: &Shared,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&Status) -> bool,
) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    // Let the controller take at least one full tick after the last change.
    tokio::time::sleep(crate::controller::TICK * 3).await;
    loop {
        let st = status(shared);
        if st.stopped {
            return Err(LabError::Setup("the lab has stopped".into()));
        }
        if let Some(why) = &st.crash_loop {
            return Err(LabError::CrashLoop(why.clone()));
        }
        if cond(&st) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            let mut why = String::new();
            if let Some(e) = &st.last_pod_exit {
                why.push_str(&format!("; {e}"));
            }
            if let Some(e) = &st.last_error {
                why.push_str(&format!("; last error: {e}"));
            }
            return Err(LabError::Timeout(format!(
                "timed out after {:.1}s waiting for {what}{why}",
                timeout.as_secs_f64()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every Deployment's rollout complete, as of the generations current at the call.
pub(crate) async fn all_rollouts_complete(
    shared: Arc<Shared>,
    timeout: Duration,
) -> Result<(), LabError> {
    let generations: Vec<(String, u64)> = shared
        .desired
        .lock()
        .map_err(|_| LabError::Setup("lab state poisoned".into()))?
        .deployments
        .iter()
        .map(|(n, (_, g))| (n.clone(), *g))
        .collect();
    wait_until(
        &shared,
        "every Deployment's rollout to complete",
        timeout,
        |st| {
            generations.iter().all(|(n, g)| {
                st.deployments
                    .get(n)
                    .is_some_and(|s| s.observed_generation >= *g && s.complete)
            })
        },
    )
    .await
}

impl EventSource for Lab {
    /// Replays each pod's latest state and each ready endpoint, then every lab action.
    fn attach(&self, sink: EventSink) -> Attachment {
        self.hub().attach(sink)
    }

    fn rollout_complete(&self, timeout: Duration) -> BoxFuture<Result<(), String>> {
        let shared = self.shared().clone();
        Box::pin(async move {
            all_rollouts_complete(shared, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

impl Vantage for Lab {
    /// Moves the calling thread into the client host (a LoadBalancer address) or the node
    /// (a ClusterIP); a URL that is no Service address of this lab is an error.
    fn enter(&self, url: &str) -> std::io::Result<()> {
        let ns = self.netns_for_url(url).map_err(|e| match e {
            LabError::NotFound(m) => std::io::Error::new(std::io::ErrorKind::NotFound, m),
            other => std::io::Error::new(std::io::ErrorKind::InvalidInput, other.to_string()),
        })?;
        crate::netns::enter_netns(&ns)
    }

    /// [`Lab::wait_serving`] for the Service whose address `url` names: the one wait for
    /// a healthy baseline, whether `rollprobe lab` or a user's `Rollout::lab` asks.
    fn wait_serving(&self, url: &str, timeout: Duration) -> BoxFuture<Result<(), String>> {
        let lab = self.clone();
        let url = url.to_string();
        Box::pin(async move {
            let service = lab.service_for_url(&url).map_err(|e| e.to_string())?;
            lab.wait_serving(&service, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
