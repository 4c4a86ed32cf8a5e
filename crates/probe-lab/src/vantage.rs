//! Vantage points: where in the lab a probe stands, and so which part of the data path it
//! crosses.
//!
//! Real users sit in several places at once, and they see the same rollout differently:
//! a client behind the LoadBalancer meets the L2 announcement (a withdrawn address is
//! "No route to host"), a node or a pod calling the ClusterIP meets only its own node's
//! kube-proxy rules ("Connection refused" from a `REJECT`). A [`LabFrom`] names one
//! such place; [`Lab::vantage_point`] turns it into the URL to probe from there and a
//! [`probe_core::Vantage`] that moves a probe's threads into the right namespace.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;

use probe_core::Vantage;

use crate::error::LabError;
use crate::lab::Lab;
use crate::manifest::ServiceType;

/// Where in the lab a probe stands (`--from`); [`Lab::vantage_point`] makes it a place to
/// probe from.
///
/// ```
/// use probe_lab::LabFrom;
/// assert_eq!("pod:2".parse::<LabFrom>().unwrap(), LabFrom::Pod(2));
/// assert_eq!("node".parse::<LabFrom>().unwrap(), LabFrom::Node(1));
/// assert_eq!(LabFrom::Client.to_string(), "client");
/// assert!("router".parse::<LabFrom>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LabFrom {
    /// The client host on the LAN, reaching a LoadBalancer address (`--from client`).
    Client,
    /// Node N itself, reaching the ClusterIP through its own rules (`--from node[:N]`).
    Node(usize),
    /// A client pod on node N's pod bridge, calling the ClusterIP: service-to-service
    /// traffic, through node N's rules (`--from pod[:N]`).
    Pod(usize),
}

impl LabFrom {
    /// The stream's vantage name: `client`, `node1`, `pod1`, ...
    pub fn name(&self) -> String {
        match self {
            LabFrom::Client => "client".into(),
            LabFrom::Node(n) => format!("node{n}"),
            LabFrom::Pod(n) => format!("pod{n}"),
        }
    }
}

impl fmt::Display for LabFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabFrom::Client => f.write_str("client"),
            LabFrom::Node(n) => write!(f, "node:{n}"),
            LabFrom::Pod(n) => write!(f, "pod:{n}"),
        }
    }
}

impl FromStr for LabFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<LabFrom, String> {
        let s = s.trim();
        let (what, node) = match s.split_once(':') {
            Some((w, n)) => {
                let n: usize = n.trim().parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    format!("bad vantage point \"{s}\": the node after ':' is a number from 1")
                })?;
                (w, Some(n))
            }
            None => (s, None),
        };
        match (what, node) {
            ("client", None) => Ok(LabFrom::Client),
            ("node", n) => Ok(LabFrom::Node(n.unwrap_or(1))),
            ("pod", n) => Ok(LabFrom::Pod(n.unwrap_or(1))),
            _ => Err(format!(
                "unknown vantage point \"{s}\": use client, node[:N] or pod[:N]"
            )),
        }
    }
}

/// One vantage point made concrete for one Service.
#[derive(Clone)]
pub struct LabVantage {
    /// The vantage point.
    pub from: LabFrom,
    /// The stream's vantage name (`client`, `node1`, `pod1`, ...).
    pub name: String,
    /// The URL to probe from there: the LoadBalancer address for the client, the
    /// ClusterIP otherwise (`http://ADDR:PORT/test/version`).
    pub url: String,
    /// Moves a probe's threads into the vantage point's namespace.
    pub vantage: Arc<dyn Vantage>,
}

impl fmt::Debug for LabVantage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabVantage")
            .field("from", &self.from)
            .field("name", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

/// A probe standing in one network namespace, whatever the URL.
struct NetnsVantage {
    netns: String,
}

impl Vantage for NetnsVantage {
    fn enter(&self, _url: &str) -> std::io::Result<()> {
        crate::netns::enter_netns(&self.netns)
    }
}

impl Lab {
    /// Where a probe of `service` stands by default: the client host for a LoadBalancer
    /// Service, node 1 for a ClusterIP Service.
    pub fn default_vantage_point(&self, service: &str) -> Result<LabFrom, LabError> {
        let d = self.desired()?;
        Ok(match d.service(service)?.spec.service_type {
            ServiceType::LoadBalancer => LabFrom::Client,
            ServiceType::ClusterIp => LabFrom::Node(1),
        })
    }

    /// The URL to probe `service` at from `from`, and the [`Vantage`] that stands there.
    ///
    /// Fails with [`LabError::Invalid`] for a node the lab does not have, or for the
    /// client host and a ClusterIP Service (the client reaches only LoadBalancer
    /// addresses, as outside a cluster).
    ///
    /// ```no_run
    /// # async fn demo(lab: probe_lab::Lab) -> Result<(), probe_lab::LabError> {
    /// use probe_lab::LabFrom;
    /// let pod = lab.vantage_point(LabFrom::Pod(2), "backend-svc")?;
    /// assert_eq!(pod.name, "pod2"); // probe pod.url through pod.vantage
    /// # Ok(()) }
    /// ```
    pub fn vantage_point(&self, from: LabFrom, service: &str) -> Result<LabVantage, LabError> {
        let names = self.names();
        let (port, cip, eip) = {
            let d = self.desired()?;
            let found = d.service(service)?;
            let (svc, cip, eip) = (&found.spec, &found.cluster_ip, &found.external_ip);
            let eip = match svc.service_type {
                ServiceType::LoadBalancer => *eip,
                ServiceType::ClusterIp => None,
            };
            (svc.ports[0].port, *cip, eip)
        };
        let nodes = names.nodes.len();
        let node_ok = |n: usize| {
            if (1..=nodes).contains(&n) {
                Ok(n)
            } else {
                Err(LabError::Invalid(format!(
                    "--from {from}: the lab has {nodes} node{} (see --nodes)",
                    if nodes == 1 { "" } else { "s" }
                )))
            }
        };
        let (ip, netns) = match from {
            LabFrom::Client => match eip {
                Some(e) => (e, names.client.clone()),
                None => {
                    return Err(LabError::Invalid(format!(
                        "--from client: service {service} is not a LoadBalancer, and the \
                         client host reaches only LoadBalancer addresses; use --from node \
                         or --from pod"
                    )))
                }
            },
            LabFrom::Node(n) => (cip, names.nodes[node_ok(n)? - 1].clone()),
            LabFrom::Pod(n) => (cip, names.client_pods[node_ok(n)? - 1].clone()),
        };
        let addr = SocketAddr::from((ip, port));
        Ok(LabVantage {
            from,
            name: from.name(),
            url: format!("http://{addr}/test/version"),
            vantage: Arc::new(NetnsVantage { netns }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vantage_points_parse_and_name_their_streams() {
        for (s, want, name) in [
            ("client", LabFrom::Client, "client"),
            ("node", LabFrom::Node(1), "node1"),
            ("node:3", LabFrom::Node(3), "node3"),
            ("pod", LabFrom::Pod(1), "pod1"),
            (" pod:2 ", LabFrom::Pod(2), "pod2"),
        ] {
            let v: LabFrom = s.parse().unwrap();
            assert_eq!(v, want);
            assert_eq!(v.name(), name);
            assert_eq!(v.to_string().parse::<LabFrom>().unwrap(), v);
        }
        for bad in ["", "client:1", "node:0", "pod:x", "host"] {
            let e = bad.parse::<LabFrom>().unwrap_err();
            assert!(e.contains("vantage point"), "{bad}: {e}");
        }
    }
}
