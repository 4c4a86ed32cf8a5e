//! A cluster namespace as the place whose Deployments a strategy matrix changes
//! ([`probe_core::Deployments`]), with the same patches kubectl sends.

use std::time::Duration;

use kube::Client;
use probe_core::{BoxFuture, Deployments, Strategy};

/// The Deployments of one namespace of a cluster.
///
/// ```no_run
/// # async fn demo() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;
/// let place = probe_kube::Namespace::new(client, "shop");
/// # let _ = place; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Namespace {
    client: Client,
    namespace: String,
}

impl Namespace {
    /// The namespace `namespace` of the cluster `client` talks to.
    pub fn new(client: Client, namespace: impl Into<String>) -> Namespace {
        Namespace {
            client,
            namespace: namespace.into(),
        }
    }
}

impl Deployments for Namespace {
    fn strategy(&self, deployment: &str) -> BoxFuture<Result<Strategy, String>> {
        let (client, ns, d) = (
            self.client.clone(),
            self.namespace.clone(),
            deployment.to_string(),
        );
        Box::pin(async move {
            crate::control::read_strategy(client, &ns, &d)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn set_strategy(&self, deployment: &str, strategy: Strategy) -> BoxFuture<Result<(), String>> {
        let (client, ns, d) = (
            self.client.clone(),
            self.namespace.clone(),
            deployment.to_string(),
        );
        Box::pin(async move {
            crate::control::set_strategy(client, &ns, &d, &strategy)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn restart(&self, deployment: &str) -> BoxFuture<Result<(), String>> {
        let (client, ns, d) = (
            self.client.clone(),
            self.namespace.clone(),
            deployment.to_string(),
        );
        Box::pin(async move {
            crate::control::restart(client, &ns, &d)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn set_image(&self, deployment: &str, image: &str) -> BoxFuture<Result<String, String>> {
        let (client, ns, d) = (
            self.client.clone(),
            self.namespace.clone(),
            deployment.to_string(),
        );
        let image = image.to_string();
        Box::pin(async move {
            crate::control::set_image(client, &ns, &d, None, &image)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn wait_rollout_complete(
        &self,
        deployment: &str,
        timeout: Duration,
    ) -> BoxFuture<Result<(), String>> {
        let (client, ns, d) = (
            self.client.clone(),
            self.namespace.clone(),
            deployment.to_string(),
        );
        Box::pin(async move {
            crate::control::wait_rollout_complete(client, &ns, &d, timeout)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
