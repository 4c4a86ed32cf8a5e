//! The extra capacity a rollout really took: the peak number of pods above the
//! desired replicas, replayed from the run's pod events.
//!
//! maxSurge and maxUnavailable trade rollout speed against availability and
//! against extra pods; the third side is what this module measures. Neither the
//! report nor the events carry the Deployment's `replicas`, so the desired count
//! is read from the picture at `rollout_start`: a matrix only triggers a rollout
//! once the previous one is complete, so the pods that are then ready and not
//! terminating are the desired replicas. From `rollout_start` until
//! `rollout_complete` (or the end of the run) every pod that exists counts, from
//! `pod_created` until `pod_deleted`: a terminating pod still holds its node's
//! resources through its preStop hook and grace period, so it is capacity the
//! rollout costs, even though the Deployment controller no longer counts it
//! against maxSurge.

use std::collections::BTreeMap;

use crate::event::{Event, EventKind};

#[derive(Clone, Copy, PartialEq)]
enum PodState {
    Starting,
    Ready,
    Terminating,
}

/// The peak number of pods above the desired replicas during the rollout, or
/// `None` when the events hold no `rollout_start` or no ready pod before it
/// (then the desired count is unknown).
///
/// ```
/// use probe_core::{Event, EventKind, Subject};
/// let pod = |at: f64, kind, name: &str| Event::new(at, kind, name).with_subject(Subject::pod(name, None));
/// let events = vec![
///     pod(0.0, EventKind::PodReady, "web-a"),
///     Event::new(100.0, EventKind::RolloutStart, "restart"),
///     pod(110.0, EventKind::PodCreated, "web-b"),
///     pod(900.0, EventKind::PodReady, "web-b"),
///     pod(910.0, EventKind::PodTerminating, "web-a"),
///     pod(950.0, EventKind::PodDeleted, "web-a"),
///     Event::new(960.0, EventKind::RolloutComplete, ""),
/// ];
/// assert_eq!(probe_core::surge_pods_peak(&events), Some(1));
/// ```
pub fn surge_pods_peak(events: &[Event]) -> Option<u32> {
    let mut pods: BTreeMap<&str, PodState> = BTreeMap::new();
    let mut desired: Option<usize> = None;
    let mut peak = 0usize;
    for e in events {
        if let (true, Some(name)) = (e.kind.is_pod(), e.subject.pod.as_deref()) {
            match e.kind {
                EventKind::PodCreated => {
                    pods.entry(name).or_insert(PodState::Starting);
                }
                EventKind::PodReady => {
                    pods.insert(name, PodState::Ready);
                }
                EventKind::PodUnready => {
                    // A terminating pod that turns unready is still terminating.
                    let state = pods.entry(name).or_insert(PodState::Starting);
                    if *state == PodState::Ready {
                        *state = PodState::Starting;
                    }
                }
                EventKind::PodTerminating => {
                    pods.insert(name, PodState::Terminating);
                }
                EventKind::PodDeleted => {
                    pods.remove(name);
                }
                _ => {}
            }
        }
        match (&e.kind, desired) {
            (EventKind::RolloutStart, None) => {
                let ready = pods.values().filter(|s| **s == PodState::Ready).count();
                if ready == 0 {
                    return None;
                }
                desired = Some(ready);
            }
            (EventKind::RolloutComplete, Some(_)) => break,
            _ => {}
        }
        if let Some(d) = desired {
            peak = peak.max(pods.len().saturating_sub(d));
        }
    }
    desired.map(|_| peak as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Subject;

    fn pod(at: f64, kind: EventKind, name: &str) -> Event {
        Event::new(at, kind, name).with_subject(Subject::pod(name, None))
    }

    /// The lab's `rolling:1/0` over three replicas, as its controller and
    /// kubelet emit it: one new pod at a time, the old one terminating (preStop)
    /// while the next new one is already created.
    #[test]
    fn rolling_with_a_terminating_pod_still_present_counts_it() {
        use EventKind::*;
        let ev = vec![
            pod(0.0, PodReady, "web-1"),
            pod(0.0, PodReady, "web-2"),
            pod(0.0, PodReady, "web-3"),
            Event::new(2000.0, RolloutStart, "restart"),
            pod(2001.0, PodCreated, "web-4"),
            pod(3000.0, PodReady, "web-4"),
            pod(3001.0, PodTerminating, "web-1"),
            pod(3002.0, PodCreated, "web-5"),
            pod(4000.0, PodReady, "web-5"),
            pod(4001.0, PodTerminating, "web-2"),
            pod(4002.0, PodCreated, "web-6"),
            // web-1's preStop ends only now: six pods for desired three.
            pod(4100.0, PodDeleted, "web-1"),
            pod(5000.0, PodReady, "web-6"),
            pod(5001.0, PodTerminating, "web-3"),
            pod(5100.0, PodDeleted, "web-2"),
            pod(6100.0, PodDeleted, "web-3"),
            Event::new(6200.0, RolloutComplete, ""),
        ];
        assert_eq!(surge_pods_peak(&ev), Some(3));
        // Had every old pod gone at once (no preStop), maxSurge 1 would hold.
        let mut instant = Vec::new();
        for e in ev.into_iter().filter(|e| e.kind != PodDeleted) {
            let gone = e.kind == PodTerminating;
            let at = e.at_ms;
            let name = e.subject.pod.clone();
            instant.push(e);
            if let (true, Some(name)) = (gone, name) {
                instant.push(pod(at, PodDeleted, &name));
            }
        }
        assert_eq!(surge_pods_peak(&instant), Some(1));
    }

    fn lab_run(name: &str) -> Vec<Event> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/matrix/testdata")
            .join(format!("lab-{name}.events.csv"));
        crate::event::read_events(&path).unwrap()
    }

    /// events.csv of real `rollprobe matrix --lab` runs of examples/seed/readiness.yaml
    /// (2 replicas, readinessProbe, graceful drain) with `--trigger image=shop/backend:v2`.
    #[test]
    fn real_lab_runs() {
        // Old pods gone before new ones are created.
        assert_eq!(surge_pods_peak(&lab_run("recreate")), Some(0));
        // maxSurge 1 (25% of 2, rounded up), but the first old pod is still
        // draining when the second new one is created: two pods above two.
        assert_eq!(surge_pods_peak(&lab_run("rolling-25pct-25pct")), Some(2));
        // maxSurge 100%: both new pods at once. A pod of the previous run that
        // was still terminating when the probe attached is gone before the
        // rollout starts, and does not count.
        assert_eq!(surge_pods_peak(&lab_run("rolling-100pct-0pct")), Some(2));
    }

    #[test]
    fn recreate_takes_no_extra_pod() {
        use EventKind::*;
        let ev = vec![
            pod(0.0, PodReady, "web-1"),
            pod(0.0, PodReady, "web-2"),
            Event::new(1000.0, RolloutStart, "v1 -> v2"),
            pod(1001.0, PodTerminating, "web-1"),
            pod(1001.0, PodTerminating, "web-2"),
            pod(1500.0, PodDeleted, "web-1"),
            pod(1510.0, PodDeleted, "web-2"),
            pod(1520.0, PodCreated, "web-3"),
            pod(1520.0, PodCreated, "web-4"),
            pod(2500.0, PodReady, "web-3"),
            pod(2600.0, PodReady, "web-4"),
            Event::new(2600.0, RolloutComplete, ""),
        ];
        assert_eq!(surge_pods_peak(&ev), Some(0));
    }

    #[test]
    fn pods_after_the_rollout_and_runs_without_one_are_not_counted() {
        use EventKind::*;
        let mut ev = vec![
            pod(0.0, PodReady, "web-1"),
            Event::new(100.0, RolloutStart, ""),
            pod(150.0, PodCreated, "web-2"),
            pod(200.0, PodReady, "web-2"),
            pod(210.0, PodDeleted, "web-1"),
            Event::new(220.0, RolloutComplete, ""),
            // A scale-up after the rollout is not the rollout's surge.
            pod(300.0, PodCreated, "web-3"),
            pod(300.0, PodCreated, "web-4"),
        ];
        assert_eq!(surge_pods_peak(&ev), Some(1));
        ev.remove(1);
        assert_eq!(surge_pods_peak(&ev), None, "no rollout_start");
        let not_ready = vec![
            pod(0.0, PodCreated, "web-1"),
            Event::new(100.0, RolloutStart, ""),
        ];
        assert_eq!(surge_pods_peak(&not_ready), None, "desired unknown");
    }
}
