//! The one place where a window's cause becomes a sentence.
//!
//! Attribution hands over typed facts ([`Cause`], [`Explanation`]); the text
//! summary, report.html, windows.csv and report.json's `cause` key all print the
//! sentence written here (through `Display`), so the same run reads the same
//! everywhere. report.json is the serde edge: [`Explanation`] serialises as its
//! sentence, and a report read back holds that sentence as [`Cause::Recorded`].
//! The wording is part of what users read and grep, so it only changes on purpose.

use std::fmt::{self, Display, Formatter};

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cause::{
    AnsweredAround, Cause, Explanation, NoEndpointSign, ProgrammingLatency, RateLimited,
    PROGRAMMING_SLACK_CONFIDENCE,
};
use crate::format::times::duration;
use crate::outcome::Outcome;

/// `+12.31 s`: a time on the probe's clock.
fn at(ms: f64) -> String {
    format!("+{:.2} s", ms / 1000.0)
}

/// A list of names for a sentence: `a, b, c`, or `a, b, c and 2 more`.
fn names<T: Display>(list: &[T]) -> String {
    let shown: Vec<String> = list.iter().take(3).map(ToString::to_string).collect();
    match list.len() {
        0 => "none".into(),
        1..=3 => shown.join(", "),
        n => format!("{} and {} more", shown.join(", "), n - 3),
    }
}

/// `connection_refused, host_unreachable`: kinds by name.
fn kind_names(kinds: &[Outcome]) -> String {
    let mut names: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

/// `connection_reset x 4, connection_closed x 2`: kinds with counts, most first.
fn kind_counts(kinds: &[(Outcome, u64)]) -> String {
    let mut kinds: Vec<(&str, u64)> = kinds.iter().map(|(k, n)| (k.as_str(), *n)).collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    kinds
        .iter()
        .map(|(k, n)| format!("{k} x {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Display for Cause {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Baseline { kinds } => write!(
                f,
                "baseline failure: the service was already failing before the rollout began ({})",
                kind_names(kinds)
            ),
            Cause::NoReadyEndpoint {
                sign,
                terminating,
                next_ready,
                refused_until_ms,
            } => {
                let what = match sign {
                    NoEndpointSign::AddressWithdrawn => "the address is no longer announced",
                    NoEndpointSign::ServiceRejects => "the Service rejects connections",
                };
                write!(f, "no ready endpoint ({what})")?;
                match terminating.first() {
                    Some(first) => {
                        let who: Vec<&str> = terminating.iter().map(|p| p.pod.as_str()).collect();
                        write!(
                            f,
                            ": old pods terminating since {} ({}), ",
                            at(first.at_ms),
                            names(&who)
                        )?;
                    }
                    None => f.write_str(": ")?,
                }
                match next_ready {
                    Some(p) => {
                        write!(f, "new pod {} not ready until {}", p.pod, at(p.at_ms))?;
                        if let Some(until) = refused_until_ms {
                            write!(
                                f,
                                ", then refused connections until {} (ready before its app listened: no readinessProbe?)",
                                at(*until)
                            )?;
                        }
                        Ok(())
                    }
                    None => f.write_str("no new pod became ready before the run ended"),
                }
            }
            Cause::DeletedPodStillRouted {
                pod,
                address,
                deleted_ms,
                endpoint_removed_ms,
            } => {
                let address = address.map_or_else(|| "?".to_string(), |a| a.to_string());
                write!(
                    f,
                    "traffic still sent to pod {pod} ({address}) after it was deleted at {}{}: its address no longer answers",
                    at(*deleted_ms),
                    until_removed(*endpoint_removed_ms),
                )
            }
            Cause::TerminatingPodStillRouted {
                pod,
                since_ms,
                endpoint_removed_ms,
                kind,
            } => write!(
                f,
                "terminating pod {pod} (since {}) still received traffic{}: {kind}",
                at(*since_ms),
                until_removed(*endpoint_removed_ms),
            ),
            Cause::OpenConnectionsLost {
                pods,
                since_ms,
                reset,
                closed,
                prestop_ran,
            } => {
                let (pods_word, they) = if pods.len() == 1 {
                    ("pod", "it")
                } else {
                    ("pods", "they")
                };
                let how = match (reset, closed) {
                    (true, true) => "reset or closed",
                    (true, false) => "reset",
                    _ => "closed",
                };
                let advice = if *prestop_ran {
                    "a preStop sleep ran first, but it moves no established connection: the app must drain (answer with Connection: close) before it exits"
                } else {
                    "a preStop sleep with a graceful drain (answers with Connection: close) moves clients off first"
                };
                write!(
                    f,
                    "connections kept open to terminating {pods_word} {} (since {}) were {how} when {they} stopped: established connections stay on their pod whatever kube-proxy's rules say; {advice}",
                    names(pods),
                    at(*since_ms),
                )
            }
            Cause::ReadyBeforeListening {
                pod,
                ready_ms,
                until_ms,
            } => write!(
                f,
                "pod {pod} became ready at {} before its app listened (a pod without a readinessProbe is ready as soon as its process runs) and refused connections until {}",
                at(*ready_ms),
                at(*until_ms)
            ),
            Cause::ReadyBeforeListeningOneOf { pods, until_ms } => {
                let since: Vec<String> = pods
                    .iter()
                    .map(|p| format!("{} since {}", p.pod, at(p.at_ms)))
                    .collect();
                write!(
                    f,
                    "connections refused until {} by one of the pods that became ready before its app listened (a pod without a readinessProbe is ready as soon as its process runs): {}",
                    at(*until_ms),
                    names(&since)
                )
            }
            Cause::RefusedWhileTerminating { pod, since_ms } => write!(
                f,
                "connections refused while pod {pod} was terminating (since {}): new connections still routed to it met its stopped app; a preStop sleep keeps a pod accepting until kube-proxy's rules have moved",
                at(*since_ms)
            ),
            Cause::LaggingNode {
                node,
                other_node,
                pod,
                address,
                terminating_ms,
                deleted_ms,
                caught_up_ms,
                dropped_elsewhere_ms,
                kinds,
            } => {
                let ip = address.map(|a| a.to_string()).unwrap_or_default();
                let gone = deleted_ms
                    .map(|t| format!(", deleted at {}", at(t)))
                    .unwrap_or_default();
                write!(
                    f,
                    "{node}'s kube-proxy rules lagged: they still sent new connections to pod {pod} ({ip}), terminating since {}{gone}, until {}, though {other_node}'s rules had dropped it at {}: requests routed by {node} met a pod already gone ({})",
                    at(*terminating_ms),
                    at(*caught_up_ms),
                    at(*dropped_elsewhere_ms),
                    kind_names(kinds),
                )
            }
            Cause::ProxyStaleUpstream { .. }
            | Cause::ProxyNoUpstream { .. }
            | Cause::ProxyUpstreamsRefused { .. } => proxy_sentence(f, self, true),
            Cause::ProxyPhases(phases) => {
                // Every phase carries the window's most frequent kind: said once, at the
                // end, since each phase's own share is not known.
                for (i, phase) in phases.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; then ")?;
                    }
                    proxy_sentence(f, phase, false)?;
                }
                match phases.first().and_then(proxy_kind) {
                    Some(kind) => write!(f, " (mostly {kind})"),
                    None => Ok(()),
                }
            }
            Cause::Unexplained {
                kinds,
                last_event,
                serving_pods,
                serving_endpoints,
            } => {
                write!(
                    f,
                    "no rollout event explains this window ({})",
                    kind_counts(kinds)
                )?;
                if let Some(e) = last_event {
                    let whom = e.about.as_ref().map(|n| format!(" {n}")).unwrap_or_default();
                    write!(
                        f,
                        "; the last event before it: {}{whom} at {}",
                        e.kind,
                        at(e.at_ms)
                    )?;
                }
                if !serving_pods.is_empty() {
                    write!(f, "; serving: pods {}", names(serving_pods))?;
                }
                if !serving_endpoints.is_empty() {
                    let and = if serving_pods.is_empty() {
                        "; serving:"
                    } else {
                        " and"
                    };
                    write!(f, "{and} endpoints {}", names(serving_endpoints))?;
                }
                Ok(())
            }
            Cause::Recorded(sentence) => f.write_str(sentence),
        }
    }
}

/// ` until its endpoint was removed at +4.00 s`, or nothing.
/// A proxy cause's sentence; `show_kind` adds the window's most frequent kind (left
/// out inside [`Cause::ProxyPhases`], which says it once).
fn proxy_sentence(f: &mut Formatter<'_>, cause: &Cause, show_kind: bool) -> fmt::Result {
    match cause {
        Cause::ProxyStaleUpstream {
            proxy,
            pod,
            address,
            slice_dropped_ms,
            proxy_dropped_ms,
            kind,
        } => {
            let address = address.map(|a| format!(" ({a})")).unwrap_or_default();
            write!(
                    f,
                    "proxy {proxy} still sent requests to pod {pod}{address}, gone from the EndpointSlice at {}, ",
                    at(*slice_dropped_ms)
                )?;
            match proxy_dropped_ms {
                    Some(t) => write!(
                        f,
                        "dropped from the proxy's upstreams only at {} (its controller's sync: {} later)",
                        at(*t),
                        duration((t - slice_dropped_ms).max(0.0))
                    )?,
                    None => f.write_str("still among the proxy's upstreams when the run ended")?,
                }
            if show_kind {
                write!(f, ": {kind}")?;
            }
            Ok(())
        }
        Cause::ProxyNoUpstream {
            proxy,
            since_ms,
            service_empty_ms,
            next_upstream,
            kind,
        } => {
            write!(f, "proxy {proxy} had no upstream from {}", at(*since_ms))?;
            if let Some(t) = service_empty_ms {
                write!(f, " (Service without ready endpoints from {})", at(*t))?;
            }
            match next_upstream {
                Some(p) => write!(f, " until it was given pod {} at {}", p.pod, at(p.at_ms))?,
                None => f.write_str(" and was given none back before the run ended")?,
            }
            f.write_str(": it answered by itself")?;
            match (show_kind, *kind) {
                (false, _) => Ok(()),
                (true, Outcome::ProxyNoUpstream) => write!(f, " ({kind})"),
                // Its own answers were not most of the window: once it had an
                // upstream again, that upstream failed the rest.
                (true, kind) => write!(f, ", and its upstreams failed the rest ({kind})"),
            }
        }
        Cause::ProxyUpstreamsRefused {
            proxy,
            not_listening,
            draining,
            kind,
        } => {
            write!(f, "every upstream proxy {proxy} had failed it")?;
            if show_kind {
                write!(f, " ({kind})")?;
            }
            let mut sep = ": ";
            if let Some(first) = not_listening.first() {
                let who: Vec<&str> = not_listening.iter().map(|p| p.pod.as_str()).collect();
                write!(
                    f,
                    "{sep}pods {} not yet listening (ready since {})",
                    names(&who),
                    at(first.at_ms)
                )?;
                sep = "; ";
            }
            if let Some(first) = draining.first() {
                let who: Vec<&str> = draining.iter().map(|p| p.pod.as_str()).collect();
                write!(
                    f,
                    "{sep}pods {} draining (terminating since {})",
                    names(&who),
                    at(first.at_ms)
                )?;
            }
            Ok(())
        }
        other => write!(f, "{other}"),
    }
}

/// The window's most frequent kind a proxy cause carries.
fn proxy_kind(cause: &Cause) -> Option<Outcome> {
    match cause {
        Cause::ProxyStaleUpstream { kind, .. }
        | Cause::ProxyNoUpstream { kind, .. }
        | Cause::ProxyUpstreamsRefused { kind, .. } => Some(*kind),
        _ => None,
    }
}

fn until_removed(endpoint_removed_ms: Option<f64>) -> String {
    endpoint_removed_ms
        .map(|t| format!(" until its endpoint was removed at {}", at(t)))
        .unwrap_or_default()
}

impl Display for RateLimited {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let RateLimited { timeouts, through } = self;
        write!(
            f,
            "{timeouts} of {} failed connects timed out instead of failing at once: a host sends one client at most about one ICMP error per second (Linux's icmp_ratelimit), so only {through} got the refusal or \"no route\" through",
            timeouts + through
        )
    }
}

impl Display for AnsweredAround {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match (&self.before, &self.after) {
            (Some(before), Some(after)) if before == after => {
                write!(f, "pod {before} answered just before it and again after it")
            }
            (Some(before), Some(after)) => write!(
                f,
                "the last answer before it came from pod {before}, the first after it from pod {after}"
            ),
            (Some(before), None) => write!(f, "the last answer before it came from pod {before}"),
            (None, Some(after)) => write!(f, "the first answer after it came from pod {after}"),
            (None, None) => Ok(()),
        }
    }
}

/// windows.csv's `programming_latency`, the summary's and report.html's line: the
/// figure as a lower bound with its slack, then the nodes' own syncs.
impl Display for ProgrammingLatency {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let n = self.endpoints;
        let odds = if n <= 1 {
            "every new connection met it".to_string()
        } else {
            format!("over {n} endpoints a new connection met it 1 time in {n}")
        };
        let address = self.address.map(|a| format!(" ({a})")).unwrap_or_default();
        write!(
            f,
            "network programming latency as the client saw it: at least {} from the EndpointSlice change at {} to the last new connection that reached pod {}{address} at {} (a lower bound: {odds}, so the last hit comes on average {n} probe period{} ({}) and, {} times in {}, at most {} ({}) before the rules really changed)",
            duration(self.at_least_ms()),
            at(self.slice_changed_ms),
            self.pod,
            at(self.last_reached_ms),
            if n == 1 { "" } else { "s" },
            duration(f64::from(n) * self.period_ms),
            (PROGRAMMING_SLACK_CONFIDENCE * 20.0).round(),
            20,
            periods(self.slack_periods()),
            duration(self.slack_ms()),
        )?;
        if !self.node_syncs.is_empty() {
            let syncs: Vec<String> = self
                .node_syncs
                .iter()
                .map(|s| format!("{} after {}", s.node, duration(s.after_ms)))
                .collect();
            write!(f, "; the nodes' rules dropped it: {}", syncs.join(", "))?;
        }
        if !self.proxy_syncs.is_empty() {
            let syncs: Vec<String> = self
                .proxy_syncs
                .iter()
                .map(|s| format!("{} after {}", s.proxy, duration(s.after_ms)))
                .collect();
            write!(
                f,
                "; the proxies' own syncs dropped it from their upstreams: {}",
                syncs.join(", ")
            )?;
        }
        Ok(())
    }
}

/// `1 period`, `5 periods`.
fn periods(n: u32) -> String {
    format!("{n} period{}", if n == 1 { "" } else { "s" })
}

/// report.json's `programming_latency`: the facts, what follows from them, and the
/// sentence, so a reader of the JSON needs neither the bound's formula nor the text's.
impl Serialize for ProgrammingLatency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_struct("ProgrammingLatency", 13)?;
        m.serialize_field("pod", &self.pod)?;
        if self.address.is_some() {
            m.serialize_field("address", &self.address)?;
        }
        m.serialize_field("slice_changed_ms", &self.slice_changed_ms)?;
        m.serialize_field("last_reached_ms", &self.last_reached_ms)?;
        m.serialize_field("endpoints", &self.endpoints)?;
        m.serialize_field("period_ms", &self.period_ms)?;
        if !self.node_syncs.is_empty() {
            m.serialize_field("node_syncs", &self.node_syncs)?;
        }
        if !self.proxy_syncs.is_empty() {
            m.serialize_field("proxy_syncs", &self.proxy_syncs)?;
        }
        m.serialize_field("at_least_ms", &self.at_least_ms())?;
        m.serialize_field("slack_periods", &self.slack_periods())?;
        m.serialize_field("slack_ms", &self.slack_ms())?;
        m.serialize_field("text", &self.to_string())?;
        m.end()
    }
}

/// The cause, then what attribution adds, each after a `; `.
impl Display for Explanation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cause)?;
        if let Some(note) = &self.rate_limited {
            write!(f, "; {note}")?;
        }
        if self.answered != AnsweredAround::default() {
            write!(f, "; {}", self.answered)?;
        }
        Ok(())
    }
}

/// Typed explanations are equal when their facts are; one read back from report.json
/// (a sentence) equals any explanation with that sentence, so a report read back
/// equals the report it was written from.
impl PartialEq for Explanation {
    fn eq(&self, other: &Explanation) -> bool {
        match (&self.cause, &other.cause) {
            (Cause::Recorded(_), _) | (_, Cause::Recorded(_)) => {
                self.to_string() == other.to_string()
            }
            _ => {
                self.cause == other.cause
                    && self.rate_limited == other.rate_limited
                    && self.answered == other.answered
            }
        }
    }
}

/// report.json's `cause`: the sentence.
impl Serialize for Explanation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A report read back keeps the sentence only.
impl<'de> Deserialize<'de> for Explanation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Explanation, D::Error> {
        let sentence = String::deserialize(d)?;
        Ok(Explanation::from(Cause::Recorded(sentence)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cause::PodAt;

    fn pod_at(pod: &str, at_ms: f64) -> PodAt {
        PodAt {
            pod: pod.into(),
            at_ms,
        }
    }

    #[test]
    fn a_long_list_of_pods_is_cut_after_three() {
        let cause = Cause::NoReadyEndpoint {
            sign: NoEndpointSign::ServiceRejects,
            terminating: ["a", "b", "c", "d", "e"]
                .iter()
                .enumerate()
                .map(|(i, p)| pod_at(p, 12_310.0 + i as f64))
                .collect(),
            next_ready: Some(pod_at("x", 15_020.0)),
            refused_until_ms: None,
        };
        assert_eq!(
            cause.to_string(),
            "no ready endpoint (the Service rejects connections): old pods terminating since +12.31 s (a, b, c and 2 more), new pod x not ready until +15.02 s"
        );
    }

    #[test]
    fn notes_follow_the_cause_in_order() {
        let why = Explanation {
            cause: Cause::RefusedWhileTerminating {
                pod: "web-a".into(),
                since_ms: 500.0,
            },
            rate_limited: Some(RateLimited {
                timeouts: 3,
                through: 1,
            }),
            answered: AnsweredAround {
                before: Some("web-a".into()),
                after: Some("web-b".into()),
            },
        };
        let sentence = why.to_string();
        let rate = sentence.find("; 3 of 4 failed connects timed out").unwrap();
        let pods = sentence
            .find("; the last answer before it came from pod web-a, the first after it from pod web-b")
            .unwrap();
        assert!(rate < pods && sentence.ends_with("pod web-b"), "{sentence}");
    }

    /// report.json's `cause` is the sentence; read back, it is kept word for word.
    #[test]
    fn report_json_holds_the_sentence_and_reads_it_back() {
        let why = Explanation::from(Cause::Baseline {
            kinds: vec![Outcome::HostUnreachable, Outcome::ConnectionRefused],
        });
        let json = serde_json::to_string(&why).unwrap();
        assert_eq!(
            json,
            "\"baseline failure: the service was already failing before the rollout began (connection_refused, host_unreachable)\""
        );
        let back: Explanation = serde_json::from_str(&json).unwrap();
        assert!(matches!(back.cause, Cause::Recorded(_)), "{back:?}");
        assert_eq!(back, why);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        let other = Explanation::from(Cause::Baseline {
            kinds: vec![Outcome::HostUnreachable],
        });
        assert_ne!(back, other);
        assert_ne!(why, other);
    }
}
