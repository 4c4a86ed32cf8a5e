//! Waiting on the controller's status: every wait of the lab polls the status the
//! controller publishes, until its condition holds, the lab stops, or time runs out.
//!
//! Waits hold only the controller's shared state, never a [`crate::Lab`] handle, so a
//! pending wait (for example the lab's `EventSource::rollout_complete` future) can
//! never be the last handle whose drop would tear the lab down inside async code. They
//! live beside the status they read, below the `Lab` handle that offers them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Shared, Status, TICK};
use crate::error::LabError;

/// The controller's latest status (a default one if its lock is poisoned).
pub(crate) fn status(shared: &Shared) -> Status {
    shared.status.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Polls the controller's status until `cond` holds, the lab stops, or `timeout` passes.
/// It holds only the shared state, never a [`crate::Lab`] handle (see the module doc).
pub(crate) async fn wait_until(
    shared: &Shared,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&Status) -> bool,
) -> Result<(), LabError> {
    let deadline = Instant::now() + timeout;
    // Let the controller take at least one full tick after the last change.
    tokio::time::sleep(TICK * 3).await;
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
        .map(|(n, d)| (n.clone(), d.generation))
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
