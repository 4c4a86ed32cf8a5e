//! The [`Lab`]'s ingress side: putting a proxy in front of a Service, and what a caller
//! needs of the running proxies (their access logs, their pod's namespace, the Host
//! their rules route). The proxies themselves are `ingress/` and
//! `controller/ingress.rs`.

use std::path::PathBuf;

use crate::error::LabError;
use crate::ingress::access_log_path;
use crate::lab::Lab;
use crate::manifest::{Ingress, IngressKind, Object};

impl Lab {
    /// Puts an ingress proxy of `kind` in front of `service`'s `port` (an Ingress that
    /// sends every request there, see [`Ingress::catch_all`]) and returns the name of
    /// the proxy's LoadBalancer Service, the one to probe.
    ///
    /// ```no_run
    /// # async fn demo(lab: probe_lab::Lab) -> Result<(), probe_lab::LabError> {
    /// let front = lab.expose_through(probe_lab::IngressKind::Nginx, "web-svc", 8080)?;
    /// let url = lab.service_url(front)?; // http://172.31.254.10:80/test/version
    /// # let _ = url; Ok(()) }
    /// ```
    pub fn expose_through(
        &self,
        kind: IngressKind,
        service: &str,
        port: u16,
    ) -> Result<&'static str, LabError> {
        self.apply(vec![Object::Ingress(Ingress::catch_all(
            kind, service, port,
        ))])?;
        Ok(kind.service_name())
    }

    /// The access logs of the lab's running proxies (and of its client pods' mesh
    /// sidecars), in the `rollprobe=<proxy>` line format probe-core's `AccessLog` reads. They live in the lab's folder: read them
    /// before the lab shuts down.
    pub fn access_logs(&self) -> Vec<PathBuf> {
        let kinds: Vec<IngressKind> = match self.desired() {
            Ok(d) => d.ingresses.values().map(|i| i.class).collect(),
            Err(_) => Vec::new(),
        };
        let mut logs: Vec<PathBuf> = kinds
            .into_iter()
            .map(|k| access_log_path(self.run_id(), k))
            .filter(|p| p.is_file())
            .collect();
        logs.extend(crate::mesh::access_logs(self.run_id()));
        logs.sort();
        logs.dedup();
        logs
    }

    /// The Host a client of `service` must send when it is an ingress controller's
    /// Service whose routes all name hosts (the first of them); `None` otherwise.
    pub(crate) fn ingress_host(&self, service: &str) -> Option<String> {
        let d = self.desired().ok()?;
        let kind = IngressKind::ALL
            .into_iter()
            .find(|k| k.service_name() == service)?;
        let routes: Vec<_> = d
            .ingresses
            .values()
            .filter(|i| i.class == kind)
            .flat_map(|i| i.routes())
            .collect();
        if routes.iter().any(|r| r.host.is_none()) {
            return None;
        }
        routes.into_iter().find_map(|r| r.host)
    }

    /// The network namespace of `kind`'s proxy pod (`<run>-ing-<kind>`), where
    /// `ip netns pids` shows the proxy process.
    pub fn ingress_netns(&self, kind: IngressKind) -> String {
        format!("{}-ing-{kind}", self.run_id())
    }
}
