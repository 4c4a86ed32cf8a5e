//! The [`Lab`]'s ingress side: applying an Ingress (which brings its controller's
//! Service), and what a caller needs of the running proxies (their Service, their
//! access logs, their pod's namespace).

use std::path::PathBuf;

use super::{access_log_path, IngressKind, INGRESS_PORT};
use crate::controller::{Desired, DesiredService};
use crate::error::LabError;
use crate::lab::Lab;
use crate::manifest::{Ingress, Service, ServicePort, ServiceType};
use crate::topology::allocate;

/// Adds (or replaces) `ing` in `d`, with its controller's LoadBalancer Service when it
/// is the first Ingress of its class. The proxy's binary must be installed.
pub(crate) fn apply_ingress(d: &mut Desired, ing: Ingress) -> Result<(), LabError> {
    ing.class.binary()?;
    let name = ing.class.service_name();
    if !d.services.contains_key(name) {
        let spec = Service {
            name: name.to_string(),
            // Its endpoint is the proxy pod, which the ingress controller publishes; a
            // selector of its own keeps the app's pods out.
            selector: [("app.kubernetes.io/name".to_string(), name.to_string())].into(),
            ports: vec![ServicePort {
                name: Some("http".into()),
                port: INGRESS_PORT,
                target_port: INGRESS_PORT,
            }],
            service_type: ServiceType::LoadBalancer,
            cluster_ip: None,
            load_balancer_ip: None,
        };
        let (cluster_ip, external_ip) = allocate(d, &spec)?;
        d.services.insert(
            name.to_string(),
            DesiredService {
                spec,
                cluster_ip,
                external_ip,
            },
        );
    }
    d.ingresses.insert(ing.name.clone(), ing);
    Ok(())
}

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
        self.apply(vec![crate::manifest::Object::Ingress(Ingress::catch_all(
            kind, service, port,
        ))])?;
        Ok(kind.service_name())
    }

    /// The access logs of the lab's running proxies, in the `rollprobe=<proxy>` line
    /// format probe-core's `AccessLog` reads. They live in the lab's folder: read them
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
