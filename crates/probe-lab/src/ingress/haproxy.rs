//! HAProxy as its Kubernetes ingress controllers run it.
//!
//! The HAProxy ingress controllers keep a fixed number of server slots per backend and
//! move pod addresses in and out of them through the runtime API (`set server B/S addr
//! IP port P`, `set server B/S state ready|maint`), so an endpoint change never reloads
//! HAProxy. Retries are theirs too: `retries 3` with `option redispatch` (the last retry
//! goes to another server). A request no route matches gets HAProxy's own 404; a backend
//! whose slots are all in maintenance answers HAProxy's 503 "No server is available".
//! The access log goes to stdout, which the lab keeps as the log file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddrV4;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{hosts, write_file, ProxyConfig, INGRESS_PORT};
use crate::error::LabError;

/// Server slots per backend: the most ready endpoints one Service can have behind it.
pub(super) const SLOTS: usize = 16;

/// Per backend, the upstream each slot holds (`None`: the slot is in maintenance).
#[derive(Debug, Default, Clone)]
pub(super) struct Slots(BTreeMap<String, Vec<Option<SocketAddrV4>>>);

impl Slots {
    pub(super) fn new(backends: &[String]) -> Slots {
        Slots(
            backends
                .iter()
                .map(|b| (b.clone(), vec![None; SLOTS]))
                .collect(),
        )
    }

    /// The runtime API commands that take `backend`'s slots to `upstreams`: an address
    /// that stays keeps its slot, a gone one's slot goes to maintenance, a new one takes a
    /// free slot. Returns `None` when the backend is unknown or the slots are too few.
    fn commands(&mut self, backend: &str, upstreams: &[SocketAddrV4]) -> Option<Vec<String>> {
        let slots = self.0.get_mut(backend)?;
        let mut out = Vec::new();
        for (i, slot) in slots.iter_mut().enumerate() {
            if slot.is_some_and(|a| !upstreams.contains(&a)) {
                *slot = None;
                out.push(format!("set server {backend}/s{} state maint", i + 1));
            }
        }
        for up in upstreams {
            if slots.contains(&Some(*up)) {
                continue;
            }
            let i = slots.iter().position(Option::is_none)?;
            slots[i] = Some(*up);
            out.push(format!(
                "set server {backend}/s{} addr {} port {}",
                i + 1,
                up.ip(),
                up.port()
            ));
            out.push(format!("set server {backend}/s{} state ready", i + 1));
        }
        Some(out)
    }
}

/// Writes `haproxy.cfg` into `dir`; returns HAProxy's arguments.
pub(super) fn write_config(dir: &Path, config: &ProxyConfig) -> Result<Vec<String>, LabError> {
    let d = dir.display();
    let mut rules = String::new();
    for (h, host) in hosts(&config.routes).into_iter().enumerate() {
        if let Some(host) = host {
            rules.push_str(&format!(
                "  acl host{h} req.hdr(host),field(1,:) -i {host}\n"
            ));
        }
        for (p, r) in config
            .routes
            .iter()
            .filter(|r| r.host.as_deref() == host)
            .enumerate()
        {
            let matcher = if r.exact { "path" } else { "path_beg" };
            rules.push_str(&format!("  acl path{h}_{p} {matcher} {}\n", r.path));
            let cond = match host {
                Some(_) => format!("host{h} path{h}_{p}"),
                None => format!("path{h}_{p}"),
            };
            rules.push_str(&format!("  use_backend {} if {cond}\n", r.backend));
        }
        if host.is_some() {
            // A host a rule names takes only its own routes, as nginx's servers do.
            rules.push_str(&format!("  use_backend no_route if host{h}\n"));
        }
    }
    let mut backends = String::new();
    for b in &config.backends {
        backends.push_str(&format!("backend {b}\n  balance roundrobin\n"));
        for s in 1..=SLOTS {
            // A placeholder address, in maintenance until the controller fills the slot.
            backends.push_str(&format!("  server s{s} 127.0.0.1:1 disabled\n"));
        }
    }
    let conf = format!(
        r#"global
  log stdout format raw local0
  stats socket {d}/admin.sock mode 600 level admin
defaults
  mode http
  log global
  log-format "rollprobe=haproxy id=%[var(txn.rid)] status=%ST upstream=%si:%sp server=%b/%s retries=%rc termination=%ts"
  timeout connect 5s
  timeout client 50s
  timeout server 50s
  retries 3
  option redispatch
frontend ingress
  bind :{INGRESS_PORT}
  http-request set-var(txn.rid) req.hdr(x-request-id)
{rules}  default_backend no_route
backend no_route
  http-request deny deny_status 404
{backends}"#
    );
    let path = dir.join("haproxy.cfg");
    write_file(&path, &conf)?;
    Ok(vec!["-db".into(), "-f".into(), path.display().to_string()])
}

/// Moves `backend`'s slots to `upstreams` through the runtime API socket.
pub(super) fn set_upstreams(
    dir: &Path,
    slots: &mut Slots,
    backend: &str,
    upstreams: &[SocketAddrV4],
) -> Result<(), LabError> {
    // The slots change only once HAProxy has taken the commands.
    let mut next = slots.clone();
    let commands = next.commands(backend, upstreams).ok_or_else(|| {
        LabError::Invalid(format!(
            "haproxy backend {backend}: unknown, or more than {SLOTS} endpoints"
        ))
    })?;
    if commands.is_empty() {
        return Ok(());
    }
    let socket = dir.join("admin.sock");
    let fail = |e: std::io::Error| {
        LabError::Command(format!("haproxy runtime API {}: {e}", socket.display()))
    };
    let mut s = UnixStream::connect(&socket).map_err(fail)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(fail)?;
    s.write_all(format!("{}\n", commands.join("; ")).as_bytes())
        .map_err(fail)?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(fail)?;
    let refused = answer
        .lines()
        .find(|l| l.contains("No such") || l.contains("Require") || l.contains("Unknown"));
    match refused {
        Some(line) => Err(LabError::Command(format!(
            "haproxy refused a runtime command for {backend}: {line}"
        ))),
        None => {
            *slots = next;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_keep_their_slots_and_gone_ones_go_to_maintenance() {
        let a: SocketAddrV4 = "10.244.0.2:8080".parse().unwrap();
        let b: SocketAddrV4 = "10.244.0.3:8080".parse().unwrap();
        let c: SocketAddrV4 = "10.244.0.4:8080".parse().unwrap();
        let mut slots = Slots::new(&["web-80".into()]);
        let first = slots.commands("web-80", &[a, b]).unwrap();
        assert_eq!(
            first,
            [
                "set server web-80/s1 addr 10.244.0.2 port 8080",
                "set server web-80/s1 state ready",
                "set server web-80/s2 addr 10.244.0.3 port 8080",
                "set server web-80/s2 state ready",
            ]
        );
        let second = slots.commands("web-80", &[b, c]).unwrap();
        assert_eq!(
            second,
            [
                "set server web-80/s1 state maint",
                "set server web-80/s1 addr 10.244.0.4 port 8080",
                "set server web-80/s1 state ready",
            ]
        );
        assert!(slots.commands("web-80", &[b, c]).unwrap().is_empty());
        assert!(slots.commands("other", &[a]).is_none());
    }
}
