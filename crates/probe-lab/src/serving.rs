//! The healthy baseline: waiting until a Service answers steadily before anything is
//! measured.
//!
//! "Every Deployment available" is not "the Service answers": a pod without a
//! readinessProbe is ready as soon as its process runs, long before its app listens. A
//! probe started then measures the lab's own start-up, and its failures would be blamed on
//! the rollout that follows. A user's running service is healthy before they roll it
//! out; these waits bring the lab to that state first, and check it the way a client
//! would (a TCP connect to each endpoint, then a burst of real requests to the Service).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::controller::http_get_ok_as;
use crate::controller::waits::status;
use crate::error::LabError;
use crate::lab::Lab;
use crate::netns::enter_netns;

/// Requests of the pre-probe; all must succeed.
const PRE_PROBE_REQUESTS: u32 = 20;
/// Spacing of the pre-probe's requests (20 over about one second).
const PRE_PROBE_SPACING: Duration = Duration::from_millis(50);
/// Per-connect and per-request bound of every check.
const CHECK_TIMEOUT: Duration = Duration::from_millis(1000);
/// Pause between two failed attempts.
const RETRY: Duration = Duration::from_millis(200);

/// Runs `f` on a thread of its own (a thread that enters a namespace must never be one of
/// the runtime's) and awaits its result.
async fn on_own_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LabError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("lab-serving".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| LabError::Setup(format!("cannot start a check thread: {e}")))?;
    rx.await
        .map_err(|_| LabError::Setup("a serving check thread died".into()))
}

/// From namespace `netns`, a TCP connect to every address; the first that fails, as text.
fn all_listen(netns: &str, targets: &[SocketAddr]) -> Result<(), String> {
    enter_netns(netns).map_err(|e| format!("cannot enter {netns}: {e}"))?;
    for t in targets {
        std::net::TcpStream::connect_timeout(t, CHECK_TIMEOUT)
            .map_err(|e| format!("{t} does not listen yet ({e})"))?;
    }
    Ok(())
}

/// From namespace `netns`, [`PRE_PROBE_REQUESTS`] GETs of `addr`'s `/test/version`, each
/// on a fresh connection as a new client's would be (with Host `host`, default the
/// address); the first that fails, as text.
fn pre_probe(netns: &str, addr: SocketAddr, host: Option<String>) -> Result<(), String> {
    enter_netns(netns).map_err(|e| format!("cannot enter {netns}: {e}"))?;
    let SocketAddr::V4(v4) = addr else {
        return Err(format!("{addr} is not an IPv4 address"));
    };
    for n in 0..PRE_PROBE_REQUESTS {
        let t = Instant::now();
        if !http_get_ok_as(
            *v4.ip(),
            v4.port(),
            host.as_deref(),
            "/test/version",
            CHECK_TIMEOUT,
        ) {
            return Err(format!(
                "request {} of {PRE_PROBE_REQUESTS} to http://{addr}/test/version failed",
                n + 1
            ));
        }
        std::thread::sleep(PRE_PROBE_SPACING.saturating_sub(t.elapsed()));
    }
    Ok(())
}

impl Lab {
    /// Waits until `service` answers steadily, the state a user's running service is in
    /// before a rollout: it has ready endpoints, kube-proxy's rules (and, for a
    /// LoadBalancer, the address announcement) match them, the app of every ready endpoint
    /// accepts a TCP connection from the node, and 20 consecutive GETs of the Service's
    /// URL over about one second, from where its clients stand, all answer 2xx/3xx.
    ///
    /// Call it after [`Lab::wait_available`] and before the measured probe starts, so the
    /// baseline is healthy. Fails with [`LabError::Timeout`] naming the last check that
    /// failed.
    ///
    /// ```no_run
    /// # async fn demo(lab: probe_lab::Lab) -> Result<(), probe_lab::LabError> {
    /// use std::time::Duration;
    /// lab.wait_available(Duration::from_secs(60)).await?;
    /// lab.wait_serving("backend-svc", Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_serving(&self, service: &str, timeout: Duration) -> Result<(), LabError> {
        let target = self.probe_target(service)?;
        let port = self.target_port(service)?;
        let deadline = Instant::now() + timeout;
        loop {
            let last: String;
            let st = status(self.shared());
            if st.stopped {
                return Err(LabError::Setup("the lab has stopped".into()));
            }
            if let Some(why) = st.crash_loop {
                return Err(LabError::CrashLoop(why));
            }
            let ready = st.services.get(service).map(|s| {
                let mut eps = s.endpoints.clone();
                let mut programmed = s.programmed_endpoints.clone();
                eps.sort();
                programmed.sort();
                let synced = eps == programmed && (s.external_ip.is_none() || s.announced);
                (eps, synced)
            });
            match ready {
                None => last = format!("service {service} is not known to the controller yet"),
                Some((eps, _)) if eps.is_empty() => {
                    last = format!("service {service} has no ready endpoint")
                }
                Some((_, false)) => {
                    last = format!("kube-proxy has not synced service {service}'s endpoints yet")
                }
                Some(_) if !st.mesh_ready => {
                    last = "the mesh's client sidecars are not ready".into()
                }
                Some((eps, true)) => {
                    let targets: Vec<SocketAddr> =
                        eps.iter().map(|ip| SocketAddr::from((*ip, port))).collect();
                    let node = self.node_netns().to_string();
                    let (netns, addr) = (target.netns.clone(), target.addr);
                    // An ingress whose rules all name hosts routes only those.
                    let host = self.ingress_host(service);
                    let checked = on_own_thread(move || {
                        all_listen(&node, &targets)?;
                        pre_probe(&netns, addr, host)
                    })
                    .await?;
                    match checked {
                        Ok(()) => return Ok(()),
                        Err(why) => last = why,
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout(format!(
                    "service {service} did not answer steadily within {:.1}s ({last}): \
                     check the pods' startup time and the Service's selector and ports",
                    timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Waits until the app of every running pod of `deployment` accepts TCP connections
    /// on its port (the container's `PORT` env, default 8080), checked from the node.
    /// Without a readinessProbe "available" does not mean listening: this is the wait for
    /// an idle Blue/Green side to be able to serve before the selector points at it.
    pub async fn wait_listening(
        &self,
        deployment: &str,
        timeout: Duration,
    ) -> Result<(), LabError> {
        if self.deployment(deployment).is_none() {
            return Err(LabError::NotFound(format!("deployment {deployment}")));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let last: String;
            let st = status(self.shared());
            if st.stopped {
                return Err(LabError::Setup("the lab has stopped".into()));
            }
            if let Some(why) = st.crash_loop {
                return Err(LabError::CrashLoop(why));
            }
            let pods: Vec<(Ipv4Addr, u16)> = st.pods.get(deployment).cloned().unwrap_or_default();
            let want = st
                .deployments
                .get(deployment)
                .map(|d| d.desired_replicas)
                .unwrap_or(0);
            if pods.len() as i32 != want {
                last = format!(
                    "{} of {want} pods of deployment {deployment} are running",
                    pods.len()
                );
            } else {
                let targets: Vec<SocketAddr> = pods.into_iter().map(SocketAddr::from).collect();
                let node = self.node_netns().to_string();
                match on_own_thread(move || all_listen(&node, &targets)).await? {
                    Ok(()) => return Ok(()),
                    Err(why) => last = why,
                }
            }
            if Instant::now() >= deadline {
                return Err(LabError::Timeout(format!(
                    "deployment {deployment}'s pods did not listen within {:.1}s ({last})",
                    timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}
