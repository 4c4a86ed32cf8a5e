//! Attribution's cases: each test replays the events of one rollout shape and
//! checks the cause a window gets, as typed facts and as the sentence users read.

use super::*;
use crate::event::Subject;

/// The window's cause as users read it.
fn sentence(w: &OutageWindow) -> String {
    w.cause.as_ref().expect("a cause").to_string()
}

pub(super) fn window(start: f64, end: f64, kind: &str) -> OutageWindow {
    OutageWindow {
        start_ms: start,
        end_ms: end,
        duration_ms: end - start,
        failed: 10,
        held_ok: 0,
        kinds: [(kind.to_string(), 10)].into(),
        open: false,
        after_event: None,
        cause: None,
        syn_retransmitted: 0,
        pod_before: None,
        pod_after: None,
        proxy_retried: None,
        programming_latency: None,
    }
}

#[test]
fn an_explained_window_names_the_pods_around_it() {
    let mut w = vec![window(1000.0, 2000.0, "connection_refused")];
    w[0].cause = Some("no ready endpoint".into());
    w[0].pod_before = Some("web-a".into());
    w[0].pod_after = Some("web-b".into());
    let mut unexplained = window(3000.0, 3100.0, "connection_refused");
    unexplained.pod_before = Some("web-b".into());
    w.push(unexplained);
    name_pods_around(&mut w);
    assert_eq!(
        w[0].cause.as_ref().map(ToString::to_string).as_deref(),
        Some("no ready endpoint; the last answer before it came from pod web-a, the first after it from pod web-b")
    );
    assert_eq!(w[1].cause, None);
}

fn ev(at: f64, kind: &str, detail: &str) -> Event {
    Event::new(at, kind, detail)
}

fn pod_ev(at: f64, kind: &str, name: &str, ip: &str) -> Event {
    ev(at, kind, name).with_subject(Subject::pod(name, ip.parse().ok()))
}

fn ep_ev(at: f64, kind: &str, ip: &str) -> Event {
    ev(at, kind, "svc").with_subject(Subject::endpoint("svc", ip.parse().unwrap(), Some(8080)))
}

fn base() -> Vec<Event> {
    vec![
        pod_ev(0.0, "pod_ready", "old-a", "10.244.0.2"),
        ep_ev(0.0, "endpoint_added", "10.244.0.2"),
    ]
}

#[test]
fn a_window_from_one_nodes_lagging_rules_says_so() {
    let ip = "10.244.16.2";
    let on_node = |at: f64, kind: &str, node: &str| {
        let mut e = ep_ev(at, kind, ip);
        e.subject = e.subject.with_pod("web-old").with_node(node);
        e
    };
    let mut events = base();
    events.extend([
        pod_ev(1000.0, "pod_terminating", "web-old", ip),
        ep_ev(1000.0, "endpoint_removed", ip),
        on_node(1100.0, "endpoint_removed", "node1"),
        pod_ev(1900.0, "pod_deleted", "web-old", ip),
        on_node(4000.0, "endpoint_removed", "node2"),
    ]);
    let mut ws = vec![window(1500.0, 3900.0, "connection_refused")];
    attribute_causes(&mut ws, &events);
    let cause = &sentence(&ws[0]);
    assert!(
        cause.starts_with("node2's kube-proxy rules lagged: they still sent new connections to pod web-old (10.244.16.2), terminating since +1.00 s, deleted at +1.90 s, until +4.00 s, though node1's rules had dropped it at +1.10 s"),
        "{cause}"
    );
    // Both nodes dropped it before the window: not a lag, the usual sentence.
    let mut ws = vec![window(4500.0, 5000.0, "connection_refused")];
    attribute_causes(&mut ws, &events);
    assert!(!sentence(&ws[0]).contains("lagged"), "{ws:?}");
    // A window that outlasts the lagging node's sync has another cause.
    let mut ws = vec![window(1500.0, 9000.0, "connection_refused")];
    attribute_causes(&mut ws, &events);
    assert!(!sentence(&ws[0]).contains("lagged"), "{ws:?}");
}

#[test]
fn plain_runs_get_no_cause() {
    let mut w = vec![window(100.0, 200.0, "connection_refused")];
    attribute_causes(
        &mut w,
        &[ev(50.0, "mark", "x"), ev(60.0, "trigger_start", "kubectl")],
    );
    assert_eq!(w[0].cause, None);
}

#[test]
fn refused_after_an_early_ready_names_the_pod() {
    let mut events = base();
    events.extend([
        pod_ev(1000.0, "pod_created", "new-b", "10.244.0.3"),
        pod_ev(1100.0, "pod_ready", "new-b", "10.244.0.3"),
        ep_ev(1150.0, "endpoint_added", "10.244.0.3"),
        pod_ev(1200.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(1210.0, "endpoint_removed", "10.244.0.2"),
    ]);
    let mut w = vec![window(1300.0, 3100.0, "connection_refused")];
    attribute_causes(&mut w, &events);
    assert_eq!(
        sentence(&w[0]),
        "pod new-b became ready at +1.10 s before its app listened (a pod without a readinessProbe is ready as soon as its process runs) and refused connections until +3.10 s"
    );
}

#[test]
fn terminating_pod_still_in_endpoints() {
    let mut events = base();
    events.push(pod_ev(500.0, "pod_terminating", "old-a", "10.244.0.2"));
    events.push(ep_ev(900.0, "endpoint_removed", "10.244.0.2"));
    let mut w = vec![window(600.0, 800.0, "connection_refused")];
    attribute_causes(&mut w, &events);
    assert_eq!(
        sentence(&w[0]),
        "terminating pod old-a (since +0.50 s) still received traffic until its endpoint was removed at +0.90 s: connection_refused"
    );
}

/// old-a is deleted at +2.6 s, its endpoint removed only at +4.0 s; new-b serves.
fn deleted_while_in_endpoints() -> Vec<Event> {
    let mut events = base();
    events.push(pod_ev(2000.0, "pod_ready", "new-b", "10.244.0.3"));
    events.push(ep_ev(2000.0, "endpoint_added", "10.244.0.3"));
    events.push(pod_ev(2500.0, "pod_terminating", "old-a", "10.244.0.2"));
    events.push(pod_ev(2600.0, "pod_deleted", "old-a", "10.244.0.2"));
    events.push(ep_ev(4000.0, "endpoint_removed", "10.244.0.2"));
    events
}

#[test]
fn deleted_pod_ip_is_host_unreachable() {
    let events = deleted_while_in_endpoints();
    let mut w = vec![window(2700.0, 4000.0, "host_unreachable")];
    attribute_causes(&mut w, &events);
    let cause = sentence(&w[0]);
    assert!(cause.starts_with("traffic still sent to pod old-a (10.244.0.2) after it was deleted at +2.60 s until its endpoint was removed at +4.00 s"), "{cause}");
}

#[test]
fn timeouts_beside_refusals_are_called_rate_limited() {
    let mut events = base();
    events.push(pod_ev(500.0, "pod_terminating", "old-a", "10.244.0.2"));
    events.push(ep_ev(510.0, "endpoint_removed", "10.244.0.2"));
    let mut w = vec![window(600.0, 2600.0, "connect_timeout")];
    w[0].kinds.insert("connection_refused".into(), 2);
    attribute_causes(&mut w, &events);
    let cause = sentence(&w[0]);
    assert!(cause.starts_with("no ready endpoint"), "{cause}");
    assert!(
        cause.ends_with("10 of 12 failed connects timed out instead of failing at once: a host sends one client at most about one ICMP error per second (Linux's icmp_ratelimit), so only 2 got the refusal or \"no route\" through"),
        "{cause}"
    );
}

#[test]
fn unexplained_windows_say_what_is_known() {
    let mut w = vec![window(600.0, 800.0, "http_5xx")];
    attribute_causes(&mut w, &base());
    assert_eq!(
        sentence(&w[0]),
        "no rollout event explains this window (http_5xx x 10); the last event before it: endpoint_added 10.244.0.2 at +0.00 s; serving: pods old-a"
    );
}

/// A Kubernetes watch's order for a rolling update's old pod: its endpoint turns
/// `terminating` at once and is removed from the EndpointSlice only when the pod is
/// gone. A terminating endpoint takes no new connections, so it is not "serving".
fn rolling_with_terminating_endpoint() -> Vec<Event> {
    vec![
        ev(0.0, "trigger_start", "kubectl"),
        pod_ev(0.0, "pod_ready", "old-a", "10.244.0.2"),
        ep_ev(0.0, "endpoint_added", "10.244.0.2"),
        ev(100.0, "rollout_start", "web"),
        pod_ev(150.0, "pod_created", "new-b", "10.244.0.3"),
        pod_ev(2650.0, "pod_ready", "new-b", "10.244.0.3"),
        ep_ev(2660.0, "endpoint_added", "10.244.0.3"),
        pod_ev(9000.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(9005.0, "endpoint_terminating", "10.244.0.2"),
        pod_ev(12000.0, "pod_deleted", "old-a", "10.244.0.2"),
        ep_ev(12010.0, "endpoint_removed", "10.244.0.2"),
    ]
}

#[test]
fn refusals_from_a_terminating_endpoint_blame_it_not_the_ready_pod() {
    let mut w = vec![window(9600.0, 9700.0, "connection_refused")];
    attribute_causes(&mut w, &rolling_with_terminating_endpoint());
    assert_eq!(
        sentence(&w[0]),
        "connections refused while pod old-a was terminating (since +9.00 s): new connections still routed to it met its stopped app; a preStop sleep keeps a pod accepting until kube-proxy's rules have moved"
    );
}

#[test]
fn a_pod_ready_long_before_the_window_is_not_blamed() {
    let mut events = base();
    events.push(ev(100.0, "rollout_start", "web"));
    let mut w = vec![window(20_000.0, 20_400.0, "connection_refused")];
    attribute_causes(&mut w, &events);
    let cause = sentence(&w[0]);
    assert_eq!(
        cause,
        "no rollout event explains this window (connection_refused x 10); the last event before it: rollout_start at +0.10 s; serving: pods old-a"
    );
}

#[test]
fn keepalive_resets_from_a_terminating_pod_say_so() {
    let mut w = vec![window(10_000.0, 10_060.0, "connection_reset")];
    w[0].kinds.insert("connection_closed".into(), 2);
    attribute_causes(&mut w, &rolling_with_terminating_endpoint());
    assert_eq!(
        sentence(&w[0]),
        "connections kept open to terminating pod old-a (since +9.00 s) were reset or closed when it stopped: established connections stay on their pod whatever kube-proxy's rules say; a preStop sleep with a graceful drain (answers with Connection: close) moves clients off first"
    );
}

/// The lab's order with a preStop sleep (`pod_prestop`) on an app that dies at
/// SIGTERM: the keep-alive losses come after the sleep, which did not prevent them.
#[test]
fn keepalive_resets_after_a_prestop_sleep_say_the_app_must_drain() {
    let mut events = rolling_with_terminating_endpoint();
    events.push(pod_ev(10_000.0, "pod_prestop", "old-a", "10.244.0.2"));
    events.sort_by(|a, b| a.at_ms.total_cmp(&b.at_ms));
    let mut w = vec![window(11_000.0, 11_010.0, "connection_reset")];
    w[0].kinds = [("connection_reset".to_string(), 1)].into();
    attribute_causes(&mut w, &events);
    assert_eq!(
        sentence(&w[0]),
        "connections kept open to terminating pod old-a (since +9.00 s) were reset when it stopped: established connections stay on their pod whatever kube-proxy's rules say; a preStop sleep ran first, but it moves no established connection: the app must drain (answer with Connection: close) before it exits"
    );
}

#[test]
fn an_endpoint_no_pod_event_names_is_not_called_a_pod() {
    let events = vec![
        ev(0.0, "trigger_start", "kubectl"),
        ep_ev(0.0, "endpoint_added", "10.244.0.9"),
    ];
    let mut w = vec![window(500.0, 700.0, "connection_reset")];
    attribute_causes(&mut w, &events);
    assert_eq!(
        sentence(&w[0]),
        "no rollout event explains this window (connection_reset x 10); the last event before it: endpoint_added 10.244.0.9 at +0.00 s; serving: endpoints 10.244.0.9"
    );
}

#[test]
fn no_list_is_ever_empty() {
    // Rollout events only: nothing is known to serve, and no list is printed.
    let events = vec![ev(0.0, "rollout_start", "web")];
    for kind in ["connection_refused", "host_unreachable", "http_5xx"] {
        let mut w = vec![window(500.0, 700.0, kind)];
        attribute_causes(&mut w, &events);
        let cause = sentence(&w[0]);
        assert_eq!(
            cause,
            format!("no rollout event explains this window ({kind} x 10); the last event before it: rollout_start at +0.00 s")
        );
        assert!(!cause.contains("()") && !cause.contains("  "), "{cause}");
    }
}

// What attribution concluded, as typed facts: the sentences above are the renderer's
// business, these are the decisions.

/// Attributes one window and returns its explanation.
fn explained(mut w: OutageWindow, events: &[Event]) -> Explanation {
    let mut ws = [w.clone()];
    attribute_causes(&mut ws, events);
    w.cause = ws[0].cause.take();
    w.cause.expect("a cause")
}

fn ip(s: &str) -> Option<std::net::IpAddr> {
    s.parse().ok()
}

#[test]
fn no_ready_endpoint_names_the_old_and_the_new_pod() {
    let mut events = base();
    events.extend([
        ev(900.0, "rollout_start", "web"),
        pod_ev(1000.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(1010.0, "endpoint_removed", "10.244.0.2"),
        pod_ev(3000.0, "pod_ready", "new-b", "10.244.0.3"),
    ]);
    let why = explained(window(1200.0, 3100.0, "host_unreachable"), &events);
    assert_eq!(
        why.cause,
        Cause::NoReadyEndpoint {
            sign: NoEndpointSign::AddressWithdrawn,
            terminating: vec![PodAt {
                pod: "old-a".into(),
                at_ms: 1000.0
            }],
            next_ready: Some(PodAt {
                pod: "new-b".into(),
                at_ms: 3000.0
            }),
            refused_until_ms: None,
        }
    );
    assert_eq!(why.rate_limited, None);
    // Refusals going on well after the new pod was ready: it did not listen yet.
    let why = explained(window(1200.0, 5000.0, "connection_refused"), &events);
    assert!(
        matches!(
            why.cause,
            Cause::NoReadyEndpoint {
                sign: NoEndpointSign::ServiceRejects,
                refused_until_ms: Some(t),
                ..
            } if t == 5000.0
        ),
        "{why:?}"
    );
}

#[test]
fn connect_timeouts_beside_refusals_are_counted() {
    let mut events = base();
    events.push(pod_ev(500.0, "pod_terminating", "old-a", "10.244.0.2"));
    events.push(ep_ev(510.0, "endpoint_removed", "10.244.0.2"));
    let mut w = window(600.0, 2600.0, "connect_timeout");
    w.kinds.insert("connection_refused".into(), 2);
    let why = explained(w, &events);
    assert!(
        matches!(
            why.cause,
            Cause::NoReadyEndpoint {
                next_ready: None,
                ..
            }
        ),
        "{why:?}"
    );
    assert_eq!(
        why.rate_limited,
        Some(RateLimited {
            timeouts: 10,
            through: 2
        })
    );
    // Timeouts alone, with endpoints serving: nothing says they were refusals.
    let why = explained(window(100.0, 200.0, "connect_timeout"), &base());
    assert!(matches!(why.cause, Cause::Unexplained { .. }), "{why:?}");
    assert_eq!(why.rate_limited, None);
}

#[test]
fn a_tie_between_kinds_goes_to_the_last_by_name() {
    // host_unreachable sorts after connection_refused: the address is withdrawn.
    let events = vec![
        ev(0.0, "rollout_start", "web"),
        pod_ev(0.0, "pod_terminating", "old-a", "10.244.0.2"),
    ];
    let mut w = window(100.0, 200.0, "connection_refused");
    w.kinds.insert("host_unreachable".into(), 10);
    let why = explained(w, &events);
    assert!(
        matches!(
            why.cause,
            Cause::NoReadyEndpoint {
                sign: NoEndpointSign::AddressWithdrawn,
                ..
            }
        ),
        "{why:?}"
    );
}

#[test]
fn pods_still_routed_while_leaving_are_named_with_their_times() {
    let events = deleted_while_in_endpoints();
    let why = explained(window(2700.0, 4000.0, "host_unreachable"), &events);
    assert_eq!(
        why.cause,
        Cause::DeletedPodStillRouted {
            pod: "old-a".into(),
            address: ip("10.244.0.2"),
            deleted_ms: 2600.0,
            endpoint_removed_ms: Some(4000.0),
        }
    );
    let why = explained(window(2700.0, 4000.0, "connection_reset"), &events);
    assert_eq!(
        why.cause,
        Cause::TerminatingPodStillRouted {
            pod: "old-a".into(),
            since_ms: 2500.0,
            endpoint_removed_ms: Some(4000.0),
            kind: Outcome::ConnectionReset,
        }
    );
}

#[test]
fn lost_keepalive_connections_say_whether_a_prestop_sleep_ran() {
    let mut w = window(11_000.0, 11_010.0, "connection_closed");
    w.kinds.insert("connection_reset".into(), 1);
    let lost = |events: &[Event]| explained(w.clone(), events).cause;
    let mut events = rolling_with_terminating_endpoint();
    let expected = |prestop_ran| Cause::OpenConnectionsLost {
        pods: vec!["old-a".into()],
        since_ms: 9000.0,
        reset: true,
        closed: true,
        prestop_ran,
    };
    assert_eq!(lost(&events), expected(false));
    events.push(
        Event::new(10_000.0, EventKind::PodPreStop, "old-a")
            .with_subject(Subject::pod("old-a", ip("10.244.0.2"))),
    );
    assert_eq!(lost(&events), expected(true));
    // Another pod's preStop sleep says nothing about old-a.
    let mut events = rolling_with_terminating_endpoint();
    events.push(
        Event::new(10_000.0, EventKind::PodPreStop, "x").with_subject(Subject::pod("x", None)),
    );
    assert_eq!(lost(&events), expected(false));
}

#[test]
fn refusals_name_the_pod_ready_too_early_or_the_one_terminating() {
    let mut events = base();
    events.extend([
        pod_ev(1100.0, "pod_ready", "new-b", "10.244.0.3"),
        ep_ev(1150.0, "endpoint_added", "10.244.0.3"),
        pod_ev(1200.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(1210.0, "endpoint_removed", "10.244.0.2"),
    ]);
    let why = explained(window(1300.0, 3100.0, "connection_refused"), &events);
    assert_eq!(
        why.cause,
        Cause::ReadyBeforeListening {
            pod: "new-b".into(),
            ready_ms: 1100.0,
            until_ms: 3100.0,
        }
    );
    let why = explained(
        window(9600.0, 9700.0, "connection_refused"),
        &rolling_with_terminating_endpoint(),
    );
    assert_eq!(
        why.cause,
        Cause::RefusedWhileTerminating {
            pod: "old-a".into(),
            since_ms: 9000.0,
        }
    );
}

#[test]
fn a_lagging_node_is_named_with_both_nodes_times() {
    let address = "10.244.16.2";
    let on_node = |at: f64, node: &str| {
        let mut e = ep_ev(at, "endpoint_removed", address);
        e.subject = e.subject.with_pod("web-old").with_node(node);
        e
    };
    let mut events = base();
    events.extend([
        pod_ev(1000.0, "pod_terminating", "web-old", address),
        on_node(1100.0, "node1"),
        on_node(4000.0, "node2"),
    ]);
    let why = explained(window(1500.0, 3900.0, "connection_refused"), &events);
    assert_eq!(
        why.cause,
        Cause::LaggingNode {
            node: "node2".into(),
            other_node: "node1".into(),
            pod: "web-old".into(),
            address: ip(address),
            terminating_ms: 1000.0,
            deleted_ms: None,
            caught_up_ms: 4000.0,
            dropped_elsewhere_ms: 1100.0,
            kinds: vec![Outcome::ConnectionRefused],
        }
    );
}

#[test]
fn unexplained_and_baseline_windows_keep_what_is_known() {
    let events = vec![
        ev(0.0, "trigger_start", "kubectl"),
        ep_ev(0.0, "endpoint_added", "10.244.0.9"),
        pod_ev(10.0, "pod_ready", "web-a", "10.244.0.5"),
    ];
    let why = explained(window(500.0, 700.0, "http_5xx"), &events);
    assert_eq!(
        why.cause,
        Cause::Unexplained {
            kinds: vec![(Outcome::Http5xx, 10)],
            last_event: Some(LastEvent {
                kind: EventKind::PodReady,
                about: Some("web-a".into()),
                at_ms: 10.0,
            }),
            serving_pods: vec![],
            serving_endpoints: vec![ip("10.244.0.9").unwrap()],
        }
    );
    let mut events = base();
    events.push(ev(1000.0, "trigger_start", "kubectl"));
    let why = explained(window(100.0, 300.0, "connection_refused"), &events);
    assert_eq!(
        why.cause,
        Cause::Baseline {
            kinds: vec![Outcome::ConnectionRefused]
        }
    );
}

#[test]
fn the_pods_answering_around_a_window_are_kept_beside_its_cause() {
    let mut w = vec![window(600.0, 800.0, "http_5xx")];
    w[0].pod_before = Some("web-a".into());
    attribute_causes(&mut w, &base());
    name_pods_around(&mut w);
    let why = w[0].cause.as_ref().unwrap();
    assert!(matches!(why.cause, Cause::Unexplained { .. }), "{why:?}");
    assert_eq!(
        why.answered,
        AnsweredAround {
            before: Some("web-a".into()),
            after: None
        }
    );
}

/// The lab's ingress-nginx pod, as its upstream events name it.
const PROXY: &str = "ingress-nginx-controller-0";

/// The proxy gains (`added`) or loses an upstream pod.
fn upstream_ev(at: f64, added: bool, pod: &str, ip: &str) -> Event {
    let kind = if added {
        "proxy_upstream_added"
    } else {
        "proxy_upstream_removed"
    };
    ev(at, kind, PROXY).with_subject(
        Subject::endpoint("svc", ip.parse().unwrap(), Some(8080))
            .with_pod(pod)
            .with_proxy(PROXY),
    )
}

/// old-a (10.244.0.2) and web-b (10.244.0.3) serve, in the slice and the proxy's list.
fn behind_proxy() -> Vec<Event> {
    let mut events = base();
    events.extend([
        pod_ev(0.0, "pod_ready", "web-b", "10.244.0.3"),
        ep_ev(0.0, "endpoint_added", "10.244.0.3"),
        upstream_ev(0.0, true, "old-a", "10.244.0.2"),
        upstream_ev(0.0, true, "web-b", "10.244.0.3"),
        ev(900.0, "trigger_start", "kubectl"),
    ]);
    events
}

/// old-a leaves the slice at +1 s, the proxy's list only at +2 s; the window between,
/// attributed.
fn proxy_dropped_late() -> (Vec<Event>, Vec<OutageWindow>) {
    let mut events = behind_proxy();
    events.extend([
        pod_ev(1000.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(1000.0, "endpoint_removed", "10.244.0.2"),
        upstream_ev(2000.0, false, "old-a", "10.244.0.2"),
    ]);
    let mut ws = vec![window(1100.0, 1900.0, "proxy_upstream_failed")];
    attribute_causes(&mut ws, &events);
    (events, ws)
}

#[test]
fn a_proxy_still_sending_to_a_pod_the_slice_dropped_names_both_times() {
    let (events, ws) = proxy_dropped_late();
    assert_eq!(
        ws[0].cause.as_ref().unwrap().cause,
        Cause::ProxyStaleUpstream {
            proxy: PROXY.into(),
            pod: "old-a".into(),
            address: "10.244.0.2".parse().ok(),
            slice_dropped_ms: 1000.0,
            proxy_dropped_ms: Some(2000.0),
            kind: Outcome::ProxyUpstreamFailed,
        }
    );
    assert_eq!(
        sentence(&ws[0]),
        "proxy ingress-nginx-controller-0 still sent requests to pod old-a (10.244.0.2), gone from the EndpointSlice at +1.00 s, dropped from the proxy's upstreams only at +2.00 s (its controller's sync: 1.000 s later): proxy_upstream_failed"
    );
    // The same window seen directly is kube-proxy's, not the proxy's.
    let mut direct = vec![window(1100.0, 1900.0, "connection_refused")];
    attribute_causes(&mut direct, &events);
    assert!(!sentence(&direct[0]).contains("proxy"), "{direct:?}");
}

#[test]
fn a_stale_upstreams_programming_latency_is_the_proxys_own_sync() {
    let (events, mut ws) = proxy_dropped_late();
    // The client keeps its connection to the proxy, which picks an upstream per
    // request: a failure the proxy answered counts even on a reused connection.
    let failed = crate::sample::Sample {
        sent_ms: Some(1890.0),
        connection: Some("reused".into()),
        proxy: Some(crate::outcome::Proxy::Nginx),
        ..crate::sample::Sample::new("lb-fresh", 1, 1890.0, Outcome::ProxyUpstreamFailed)
    };
    let mut reached = Reached::default();
    reached.failed(&failed, 1100.0);
    measure_programming_latency(&mut ws, &events, &reached, 10.0);
    let figure = ws[0].programming_latency.as_ref().expect("a figure");
    assert_eq!(
        (figure.slice_changed_ms, figure.last_reached_ms),
        (1000.0, 1890.0)
    );
    assert_eq!(
        figure.proxy_syncs,
        vec![crate::cause::ProxySync {
            proxy: PROXY.into(),
            after_ms: 1000.0
        }]
    );
    let text = figure.to_string();
    assert!(
        text.ends_with("; the proxies' own syncs dropped it from their upstreams: ingress-nginx-controller-0 after 1.000 s"),
        "{text}"
    );
    let json = serde_json::to_value(figure).unwrap();
    assert_eq!(json["proxy_syncs"][0]["after_ms"], 1000.0, "{json}");
}

/// Recreate behind the proxy: the only pod goes at +1 s, the proxy hears of it at
/// +1.5 s, a new pod is ready at +2.8 s and in the proxy's list at +3.2 s.
fn recreate_behind_proxy() -> Vec<Event> {
    let mut events = base();
    // The proxy's own Service keeps its endpoint throughout: not the app's.
    let mut own = ep_ev(0.0, "endpoint_added", "10.244.15.251");
    own.subject.service = Some("ingress-nginx-controller".into());
    events.extend([
        own,
        upstream_ev(0.0, true, "old-a", "10.244.0.2"),
        ev(900.0, "trigger_start", "kubectl"),
        pod_ev(1000.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(1000.0, "endpoint_removed", "10.244.0.2"),
        upstream_ev(1500.0, false, "old-a", "10.244.0.2"),
        pod_ev(2800.0, "pod_ready", "new-b", "10.244.0.4"),
        ep_ev(2800.0, "endpoint_added", "10.244.0.4"),
        upstream_ev(3200.0, true, "new-b", "10.244.0.4"),
    ]);
    events
}

#[test]
fn a_proxy_without_upstreams_says_since_when_and_why() {
    let events = recreate_behind_proxy();
    let mut ws = vec![
        window(1600.0, 3200.0, "proxy_no_upstream"),
        // Before the proxy heard: its old upstream was stale.
        window(1100.0, 1450.0, "proxy_upstream_failed"),
    ];
    attribute_causes(&mut ws, &events);
    assert_eq!(
        ws[0].cause.as_ref().unwrap().cause,
        Cause::ProxyNoUpstream {
            proxy: PROXY.into(),
            since_ms: 1500.0,
            service_empty_ms: Some(1000.0),
            next_upstream: Some(PodAt {
                pod: "new-b".into(),
                at_ms: 3200.0
            }),
            kind: Outcome::ProxyNoUpstream,
        }
    );
    assert_eq!(
        sentence(&ws[0]),
        "proxy ingress-nginx-controller-0 had no upstream from +1.50 s (Service without ready endpoints from +1.00 s) until it was given pod new-b at +3.20 s: it answered by itself (proxy_no_upstream)"
    );
    assert!(
        matches!(&ws[1].cause.as_ref().unwrap().cause, Cause::ProxyStaleUpstream { pod, .. } if pod == "old-a"),
        "{:?}",
        ws[1].cause
    );
}

#[test]
fn every_upstream_refusing_names_the_new_and_the_draining_pods() {
    let mut events = behind_proxy();
    events.extend([
        // web-b is replaced by new-c, ready at once (no readinessProbe).
        pod_ev(1000.0, "pod_ready", "new-c", "10.244.0.5"),
        ep_ev(1000.0, "endpoint_added", "10.244.0.5"),
        upstream_ev(1050.0, true, "new-c", "10.244.0.5"),
        pod_ev(1100.0, "pod_terminating", "web-b", "10.244.0.3"),
        pod_ev(1100.0, "pod_terminating", "old-a", "10.244.0.2"),
        // Still in the slice until after the window: not stale, draining.
        ep_ev(1600.0, "endpoint_removed", "10.244.0.3"),
        ep_ev(1600.0, "endpoint_removed", "10.244.0.2"),
    ]);
    let mut ws = vec![window(1200.0, 1500.0, "proxy_upstream_failed")];
    attribute_causes(&mut ws, &events);
    let at = |pod: &str, at_ms| PodAt {
        pod: pod.into(),
        at_ms,
    };
    assert_eq!(
        ws[0].cause.as_ref().unwrap().cause,
        Cause::ProxyUpstreamsRefused {
            proxy: PROXY.into(),
            not_listening: vec![at("new-c", 1000.0)],
            draining: vec![at("old-a", 1100.0), at("web-b", 1100.0)],
            kind: Outcome::ProxyUpstreamFailed,
        }
    );
    assert_eq!(
        sentence(&ws[0]),
        "every upstream proxy ingress-nginx-controller-0 had failed it (proxy_upstream_failed): pods new-c not yet listening (ready since +1.00 s); pods old-a, web-b draining (terminating since +1.10 s)"
    );
}

#[test]
fn a_proxy_window_its_upstreams_do_not_explain_stays_unexplained() {
    // Both upstreams had served for long and nothing changed: the events say nothing.
    let events = behind_proxy();
    let mut ws = vec![window(20_000.0, 20_100.0, "proxy_upstream_timeout")];
    attribute_causes(&mut ws, &events);
    assert!(
        matches!(
            ws[0].cause.as_ref().unwrap().cause,
            Cause::Unexplained { .. }
        ),
        "{:?}",
        ws[0].cause
    );
    assert!(sentence(&ws[0])
        .starts_with("no rollout event explains this window (proxy_upstream_timeout x 10)"));
}

/// The seed's rolling update of 2 replicas without a readinessProbe: each new pod is
/// ready 2.5 s after it was created but its app listens only 8 s later, and the
/// second one replaces the first old pod.
fn rolling_two_slow_starters() -> Vec<Event> {
    vec![
        pod_ev(0.0, "pod_ready", "old-a", "10.244.0.2"),
        ep_ev(0.0, "endpoint_added", "10.244.0.2"),
        pod_ev(0.0, "pod_ready", "old-b", "10.244.0.3"),
        ep_ev(0.0, "endpoint_added", "10.244.0.3"),
        ev(2000.0, "rollout_start", "web"),
        pod_ev(2100.0, "pod_created", "new-c", "10.244.0.4"),
        pod_ev(4500.0, "pod_ready", "new-c", "10.244.0.4"),
        ep_ev(4600.0, "endpoint_added", "10.244.0.4"),
        pod_ev(14_500.0, "pod_terminating", "old-a", "10.244.0.2"),
        ep_ev(14_510.0, "endpoint_removed", "10.244.0.2"),
        pod_ev(14_550.0, "pod_created", "new-d", "10.244.0.5"),
        pod_ev(17_000.0, "pod_ready", "new-d", "10.244.0.5"),
        ep_ev(17_100.0, "endpoint_added", "10.244.0.5"),
        pod_ev(17_600.0, "pod_deleted", "old-a", "10.244.0.2"),
    ]
}

#[test]
fn a_new_pod_still_refusing_past_the_ready_reach_is_named_by_its_first_answer() {
    let events = rolling_two_slow_starters();
    let ready_before_listening = |pod: &str, ready_ms, until_ms| Cause::ReadyBeforeListening {
        pod: pod.into(),
        ready_ms,
        until_ms,
    };
    let answer = |seq, sent_ms, pod: &str| crate::sample::Sample {
        sent_ms: Some(sent_ms),
        pod: Some(pod.into()),
        ..crate::sample::Sample::new("client-fresh", seq, sent_ms, Outcome::Ok)
    };
    let mut reached = Reached::default();
    reached.answered(&answer(0, 10.0, "old-a"));
    reached.answered(&answer(1, 30.0, "old-b"));
    reached.answered(&answer(2, 12_560.0, "new-c"));
    // More than READY_REACH_MS after new-c became ready, and it had not answered yet.
    let late_first = window(9560.0, 9580.0, "connection_refused");
    // More than READY_REACH_MS after new-d became ready; new-c had answered since.
    let late_second = window(22_280.0, 22_300.0, "connection_refused");
    let mut ws = [late_first.clone(), late_second.clone()];
    attribute_causes_seen(&mut ws, &events, &reached);
    let causes: Vec<Cause> = ws.into_iter().map(|w| w.cause.unwrap().cause).collect();
    assert_eq!(
        causes,
        [
            ready_before_listening("new-c", 4500.0, 9580.0),
            ready_before_listening("new-d", 17_000.0, 22_300.0),
        ]
    );
    // From the events alone the first is still new-c, the only pod of this rollout;
    // for the second both new pods fit, and the events cannot tell which refused.
    assert_eq!(
        explained(late_first, &events).cause,
        ready_before_listening("new-c", 4500.0, 9580.0)
    );
    let one_of = explained(late_second, &events);
    assert_eq!(
        one_of.cause,
        Cause::ReadyBeforeListeningOneOf {
            pods: vec![
                PodAt {
                    pod: "new-c".into(),
                    at_ms: 4500.0
                },
                PodAt {
                    pod: "new-d".into(),
                    at_ms: 17_000.0
                },
            ],
            until_ms: 22_300.0,
        }
    );
    assert_eq!(
        one_of.to_string(),
        "connections refused until +22.30 s by one of the pods that became ready before its app listened (a pod without a readinessProbe is ready as soon as its process runs): new-c since +4.50 s, new-d since +17.00 s"
    );
}

#[test]
fn a_recreate_through_a_proxy_is_told_phase_by_phase() {
    // One window from the old pod's stale entry to the new pod's first answer: the
    // proxy still held old-a, then had nothing, then had new-b, which did not listen yet.
    let events = recreate_behind_proxy();
    let mut w = window(1100.0, 5000.0, "proxy_upstream_failed");
    w.kinds.insert("proxy_no_upstream".into(), 4);
    let mut ws = vec![w];
    attribute_causes(&mut ws, &events);
    let Cause::ProxyPhases(phases) = &ws[0].cause.as_ref().unwrap().cause else {
        panic!("{:?}", ws[0].cause);
    };
    let names: Vec<&str> = phases
        .iter()
        .map(|p| match p {
            Cause::ProxyStaleUpstream { pod, .. } => pod.as_str(),
            Cause::ProxyNoUpstream { .. } => "none",
            Cause::ProxyUpstreamsRefused { not_listening, .. } => not_listening[0].pod.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, ["old-a", "none", "new-b"]);
    assert_eq!(
        sentence(&ws[0]),
        "proxy ingress-nginx-controller-0 still sent requests to pod old-a (10.244.0.2), gone from the EndpointSlice at +1.00 s, dropped from the proxy's upstreams only at +1.50 s (its controller's sync: 500 ms later); then proxy ingress-nginx-controller-0 had no upstream from +1.50 s (Service without ready endpoints from +1.00 s) until it was given pod new-b at +3.20 s: it answered by itself; then every upstream proxy ingress-nginx-controller-0 had failed it: pods new-b not yet listening (ready since +2.80 s) (mostly proxy_upstream_failed)"
    );
}
