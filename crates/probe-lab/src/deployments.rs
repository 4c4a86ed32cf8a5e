//! The lab as a place whose Deployments a strategy matrix changes
//! ([`probe_core::Deployments`]).

use std::time::Duration;

use probe_core::{BoxFuture, Deployments, Strategy};

use crate::lab::Lab;

impl Deployments for Lab {
    fn strategy(&self, deployment: &str) -> BoxFuture<Result<Strategy, String>> {
        let found = self
            .deployment(deployment)
            .map(|d| d.strategy)
            .ok_or_else(|| format!("deployment {deployment} is not in the lab"));
        Box::pin(async move { found })
    }

    fn set_strategy(&self, deployment: &str, strategy: Strategy) -> BoxFuture<Result<(), String>> {
        let done = self
            .set_strategy(deployment, strategy)
            .map_err(|e| e.to_string());
        Box::pin(async move { done })
    }

    fn restart(&self, deployment: &str) -> BoxFuture<Result<(), String>> {
        let done = Lab::restart(self, deployment).map_err(|e| e.to_string());
        Box::pin(async move { done })
    }

    fn set_image(&self, deployment: &str, image: &str) -> BoxFuture<Result<String, String>> {
        let old = self
            .deployment(deployment)
            .map(|d| d.template.container.image);
        let done = Lab::set_image(self, deployment, image)
            .map_err(|e| e.to_string())
            .and_then(|()| old.ok_or_else(|| format!("deployment {deployment} is not in the lab")));
        Box::pin(async move { done })
    }

    fn wait_rollout_complete(
        &self,
        deployment: &str,
        timeout: Duration,
    ) -> BoxFuture<Result<(), String>> {
        let lab = self.clone();
        let deployment = deployment.to_string();
        Box::pin(async move {
            lab.wait_rollout_complete(&deployment, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn undo(&self, deployment: &str) -> BoxFuture<Result<(), String>> {
        let done = Lab::undo(self, deployment, None)
            .map(|_| ())
            .map_err(|e| e.to_string());
        Box::pin(async move { done })
    }

    fn set_pre_stop_sleep(
        &self,
        deployment: &str,
        seconds: Option<u32>,
    ) -> BoxFuture<Result<Option<u32>, String>> {
        let done = Lab::set_pre_stop_sleep(self, deployment, seconds).map_err(|e| e.to_string());
        Box::pin(async move { done })
    }
}
