//! The stable name of every way a request can end.
//!
//! These names are a public contract: they appear in samples.csv, report.json,
//! `--max-failures` gates and people's dashboards, so a variant is never renamed.
//! Each kind carries a one-line hint of what it usually means during a Kubernetes
//! rollout, because "Connection refused" alone tells an SRE nothing about *why*.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The proxy that produced a non-OK answer (samples.csv's `proxy` column): an
/// ingress, gateway or sidecar decided that failure, not the application.
///
/// ```
/// use probe_core::Proxy;
/// assert_eq!(Proxy::Haproxy.as_str(), "haproxy");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proxy {
    /// Envoy (an Istio sidecar or gateway, Envoy Gateway, Contour ...).
    Envoy,
    /// nginx (ingress-nginx and plain nginx).
    Nginx,
    /// HAProxy (its ingress controller and plain HAProxy).
    Haproxy,
}

impl Proxy {
    /// The stable name used in CSV and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Proxy::Envoy => "envoy",
            Proxy::Nginx => "nginx",
            Proxy::Haproxy => "haproxy",
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one scheduled request ended.
///
/// ```
/// use probe_core::Outcome;
/// let kind: Outcome = "host_unreachable".parse().unwrap();
/// assert!(kind.is_failure());
/// assert!(!kind.is_local());
/// assert_eq!(kind.as_str(), "host_unreachable");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Expected status and the body could be read.
    Ok,
    /// ECONNREFUSED: nothing listens, or kube-proxy's REJECT rule answered.
    ConnectionRefused,
    /// EHOSTUNREACH: the address stopped answering ARP/neighbour discovery.
    HostUnreachable,
    /// ENETUNREACH: no route to the address.
    NetworkUnreachable,
    /// The TCP handshake did not finish within the connect timeout.
    ConnectTimeout,
    /// ECONNRESET: the peer aborted the connection.
    ConnectionReset,
    /// The peer closed the connection before a full response.
    ConnectionClosed,
    /// No full response within the response timeout.
    ResponseTimeout,
    /// A 5xx status that the application itself sent, or that no known proxy claims.
    Http5xx,
    /// A proxy (Envoy, nginx, HAProxy) had no upstream to send the request to.
    ProxyNoUpstream,
    /// A proxy's connection to the upstream it chose failed or broke before the
    /// answer's head (refused, reset, closed early, invalid answer).
    ProxyUpstreamFailed,
    /// A proxy gave up waiting for its upstream (its own 504).
    ProxyUpstreamTimeout,
    /// A proxy shed the request itself (Envoy's circuit breaker or overflow).
    ProxyOverloaded,
    /// Any other status outside the expected set.
    UnexpectedStatus,
    /// Name resolution failed.
    Dns,
    /// The TLS handshake failed.
    Tls,
    /// The answer was not HTTP (garbage, HTTP/0.9, TLS bytes) or its header section
    /// was over the limit: something other than an HTTP server on that port.
    InvalidResponse,
    /// EMFILE: the prober ran out of file descriptors.
    LocalEmfile,
    /// ENFILE: the system ran out of file descriptors.
    LocalEnfile,
    /// EADDRNOTAVAIL: the prober ran out of local ports.
    LocalEaddrnotavail,
    /// ENOBUFS: the kernel ran out of buffer space.
    LocalEnobufs,
    /// ENOMEM: out of memory.
    LocalEnomem,
    /// Anything else; the errno and message are kept in the sample.
    Other,
    /// The tick was not sent: `max_in_flight` requests were outstanding, or the
    /// prober had fallen far behind its schedule (it was overloaded). Not a
    /// request, not a failure: counted so that nothing is silently dropped.
    Skipped,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 24] = [
        Outcome::Ok,
        Outcome::ConnectionRefused,
        Outcome::HostUnreachable,
        Outcome::NetworkUnreachable,
        Outcome::ConnectTimeout,
        Outcome::ConnectionReset,
        Outcome::ConnectionClosed,
        Outcome::ResponseTimeout,
        Outcome::Http5xx,
        Outcome::ProxyNoUpstream,
        Outcome::ProxyUpstreamFailed,
        Outcome::ProxyUpstreamTimeout,
        Outcome::ProxyOverloaded,
        Outcome::UnexpectedStatus,
        Outcome::Dns,
        Outcome::Tls,
        Outcome::InvalidResponse,
        Outcome::LocalEmfile,
        Outcome::LocalEnfile,
        Outcome::LocalEaddrnotavail,
        Outcome::LocalEnobufs,
        Outcome::LocalEnomem,
        Outcome::Other,
        Outcome::Skipped,
    ];

    /// The stable name used in CSV and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ConnectionRefused => "connection_refused",
            Outcome::HostUnreachable => "host_unreachable",
            Outcome::NetworkUnreachable => "network_unreachable",
            Outcome::ConnectTimeout => "connect_timeout",
            Outcome::ConnectionReset => "connection_reset",
            Outcome::ConnectionClosed => "connection_closed",
            Outcome::ResponseTimeout => "response_timeout",
            Outcome::Http5xx => "http_5xx",
            Outcome::ProxyNoUpstream => "proxy_no_upstream",
            Outcome::ProxyUpstreamFailed => "proxy_upstream_failed",
            Outcome::ProxyUpstreamTimeout => "proxy_upstream_timeout",
            Outcome::ProxyOverloaded => "proxy_overloaded",
            Outcome::UnexpectedStatus => "unexpected_status",
            Outcome::Dns => "dns",
            Outcome::Tls => "tls",
            Outcome::InvalidResponse => "invalid_response",
            Outcome::LocalEmfile => "local_emfile",
            Outcome::LocalEnfile => "local_enfile",
            Outcome::LocalEaddrnotavail => "local_eaddrnotavail",
            Outcome::LocalEnobufs => "local_enobufs",
            Outcome::LocalEnomem => "local_enomem",
            Outcome::Other => "other",
            Outcome::Skipped => "skipped",
        }
    }

    /// A request was sent and did not end `ok` (local failures included).
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Skipped)
    }

    /// The prober's own fault: never counted as the target's downtime.
    pub fn is_local(self) -> bool {
        matches!(
            self,
            Outcome::LocalEmfile
                | Outcome::LocalEnfile
                | Outcome::LocalEaddrnotavail
                | Outcome::LocalEnobufs
                | Outcome::LocalEnomem
        )
    }

    /// A failure that counts against the target (not local, not skipped).
    pub fn is_target_failure(self) -> bool {
        self.is_failure() && !self.is_local()
    }

    /// One character for the timeline strip.
    pub fn symbol(self) -> char {
        match self {
            Outcome::Ok => '.',
            Outcome::ConnectionRefused => 'R',
            Outcome::HostUnreachable => 'H',
            Outcome::NetworkUnreachable => 'N',
            Outcome::ConnectTimeout => 'T',
            Outcome::ConnectionReset => 'X',
            Outcome::ConnectionClosed => 'C',
            Outcome::ResponseTimeout => 'W',
            Outcome::Http5xx => '5',
            Outcome::ProxyNoUpstream => 'P',
            Outcome::ProxyUpstreamFailed => 'B',
            Outcome::ProxyUpstreamTimeout => 'G',
            Outcome::ProxyOverloaded => 'O',
            Outcome::UnexpectedStatus => 'U',
            Outcome::Dns => 'D',
            Outcome::Tls => 'S',
            Outcome::InvalidResponse => 'I',
            Outcome::LocalEmfile
            | Outcome::LocalEnfile
            | Outcome::LocalEaddrnotavail
            | Outcome::LocalEnobufs
            | Outcome::LocalEnomem => 'L',
            Outcome::Other => '?',
            Outcome::Skipped => ' ',
        }
    }

    /// What this failure usually means: during a Kubernetes rollout when `cluster` (the
    /// run had a cluster's events), else in plain words for a server restarted on its
    /// own host, with no kube-proxy, Service, endpoint or pod to blame.
    ///
    /// ```
    /// use probe_core::Outcome;
    /// assert!(Outcome::ConnectionRefused.hint_for(true).contains("kube-proxy"));
    /// assert!(!Outcome::ConnectionRefused.hint_for(false).contains("kube-proxy"));
    /// ```
    pub fn hint_for(self, cluster: bool) -> &'static str {
        if cluster {
            return self.hint();
        }
        match self {
            Outcome::ConnectionRefused => {
                "nothing accepted the connection: nothing listened on that port (the server was stopped, \
                 restarting, or not listening yet)"
            }
            Outcome::HostUnreachable => {
                "the address stopped answering: the host is down, gone, or no longer on this network"
            }
            Outcome::ConnectionReset => {
                "the connection was aborted: the server was killed or restarted with it open"
            }
            Outcome::ConnectionClosed => {
                "the server closed the connection before answering: a keep-alive connection to a server shutting down"
            }
            Outcome::ResponseTimeout => "no full answer in time: an overloaded or hung server",
            Outcome::ProxyNoUpstream => {
                "a proxy had nothing to send to: its upstreams were all down or refused"
            }
            Outcome::ProxyUpstreamFailed => {
                "a proxy's upstream refused, reset or was gone (it was restarted under the proxy)"
            }
            Outcome::ProxyUpstreamTimeout => {
                "a proxy gave up waiting: the upstream hung or was unreachable until the proxy's timeout"
            }
            other => other.hint(),
        }
    }

    /// What this failure usually means during a Kubernetes rollout.
    pub fn hint(self) -> &'static str {
        match self {
            Outcome::Ok => "answered as expected",
            Outcome::ConnectionRefused => {
                "nothing accepted the connection: the Service had no ready endpoint (kube-proxy REJECT), \
                 or the pod was routed to before its app listened (no readinessProbe) or after it exited"
            }
            Outcome::HostUnreachable => {
                "the address stopped answering: a LoadBalancer IP with no ready endpoint behind it, \
                 or a pod IP that is gone"
            }
            Outcome::NetworkUnreachable => "no route to the address from the prober",
            Outcome::ConnectTimeout => {
                "no answer to the SYNs: a REJECT or a failed ARP whose ICMP error the kernel rate-limited away (about one per second per client gets through), or packets dropped (DROP policy, removed real server, stale conntrack)"
            }
            Outcome::ConnectionReset => "the connection was aborted: a pod killed with it open",
            Outcome::ConnectionClosed => {
                "the server closed the connection before answering: a keep-alive connection to a pod shutting down"
            }
            Outcome::ResponseTimeout => "no full answer in time: an overloaded or hung pod",
            Outcome::Http5xx => {
                "the application answered 5xx itself (or a proxy rollprobe does not recognise did)"
            }
            Outcome::ProxyNoUpstream => {
                "a proxy had nothing to send to: an ingress, gateway or sidecar whose Service had no ready endpoint, or whose only pod refused"
            }
            Outcome::ProxyUpstreamFailed => {
                "a proxy still routed to a pod that refused, reset or was gone (stale endpoint, no preStop)"
            }
            Outcome::ProxyUpstreamTimeout => {
                "a proxy gave up waiting: the pod hung or was unreachable until the proxy's timeout"
            }
            Outcome::ProxyOverloaded => {
                "the proxy shed the request itself (circuit breaker or overflow)"
            }
            Outcome::UnexpectedStatus => "a status outside --expect-status",
            Outcome::Dns => "the name did not resolve",
            Outcome::Tls => "the TLS handshake failed",
            Outcome::InvalidResponse => {
                "bytes that are not HTTP, or a header section over the limit: not an HTTP server on that port, or a broken proxy"
            }
            Outcome::LocalEmfile
            | Outcome::LocalEnfile
            | Outcome::LocalEaddrnotavail
            | Outcome::LocalEnobufs
            | Outcome::LocalEnomem => {
                "the PROBER ran out of a resource (not the target's fault): lower --rate or --max-in-flight, or raise ulimit -n"
            }
            Outcome::Other => "an error rollprobe has no name for yet; see the error column",
            Outcome::Skipped => {
                "not sent: --max-in-flight requests were outstanding, or the prober had fallen behind its schedule"
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name is not one of [`Outcome::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown failure kind '{0}' (known: {known})", known = known_names())]
pub struct UnknownOutcome(pub String);

fn known_names() -> String {
    Outcome::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Outcome {
    type Err = UnknownOutcome;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Outcome::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownOutcome(s.to_string()))
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for k in Outcome::ALL {
            assert!(seen.insert(k.as_str()), "duplicate name {k}");
            assert_eq!(k.as_str().parse::<Outcome>().unwrap(), k);
        }
        assert!("no_such_kind".parse::<Outcome>().is_err());
    }

    #[test]
    fn local_kinds_are_failures_but_not_target_failures() {
        assert!(Outcome::LocalEmfile.is_failure());
        assert!(!Outcome::LocalEmfile.is_target_failure());
        assert!(!Outcome::Skipped.is_failure());
        assert!(Outcome::ConnectionRefused.is_target_failure());
    }

    #[test]
    fn plain_hints_have_no_kubernetes_words_and_cluster_hints_keep_them() {
        let cluster_words = [
            "kube",
            "endpoint",
            "pod",
            "readiness",
            "service",
            "ingress",
            "sidecar",
        ];
        for k in Outcome::ALL {
            let plain = k.hint_for(false).to_lowercase();
            for word in cluster_words {
                assert!(!plain.contains(word), "{k}: {plain}");
            }
            assert_eq!(k.hint_for(true), k.hint(), "{k}");
        }
        assert!(Outcome::ConnectionRefused.hint().contains("kube-proxy"));
    }
}
