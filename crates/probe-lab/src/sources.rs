//! The lab as a source of events and a place to probe from: `Lab`'s `EventSource` and
//! `Vantage` sides, beside its `Deployments` side in deployments.rs.
//!
//! Its waits are the controller's (controller/waits.rs): a pending
//! [`EventSource::rollout_complete`] future holds only the controller's shared state,
//! never a [`Lab`] handle whose drop would tear the lab down inside async code.

use std::time::Duration;

use probe_core::{Attachment, BoxFuture, EventSink, EventSource, Vantage};

use crate::controller::waits::all_rollouts_complete;
use crate::error::LabError;
use crate::lab::Lab;

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
