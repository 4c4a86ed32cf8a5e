//! kubectl's rollout-status rules on recorded Deployment objects (tests/fixtures/status).

mod common;

use k8s_openapi::api::apps::v1::Deployment;
use probe_kube::{rollout_status, RolloutStatus};

fn load(name: &str) -> Deployment {
    serde_json::from_str(&common::fixture(&format!("status/deployment-{name}.json"))).unwrap()
}

#[test]
fn each_recorded_status_gets_kubectls_verdict_and_line() {
    let cases = [
        ("complete", RolloutStatus::Complete, "deployment \"backend\" successfully rolled out"),
        (
            "not-observed",
            RolloutStatus::WaitingForObservation,
            "Waiting for deployment spec update to be observed...",
        ),
        (
            "updating",
            RolloutStatus::UpdatingReplicas { updated: 1, desired: 2 },
            "Waiting for deployment \"backend\" rollout to finish: 1 out of 2 new replicas have been updated...",
        ),
        (
            "old-pending",
            RolloutStatus::OldReplicasPending { old: 1 },
            "Waiting for deployment \"backend\" rollout to finish: 1 old replicas are pending termination...",
        ),
        (
            "unavailable",
            RolloutStatus::WaitingForAvailable { available: 1, updated: 2 },
            "Waiting for deployment \"backend\" rollout to finish: 1 of 2 updated replicas are available...",
        ),
        (
            "deadline",
            RolloutStatus::DeadlineExceeded,
            "deployment \"backend\" exceeded its progress deadline",
        ),
        ("scaled-to-zero", RolloutStatus::Complete, "deployment \"backend\" successfully rolled out"),
    ];
    for (file, want, line) in cases {
        let d = load(file);
        let got = rollout_status(&d);
        assert_eq!(got, want, "{file}");
        assert_eq!(got.message("backend"), line, "{file}");
        assert_eq!(got.is_complete(), want == RolloutStatus::Complete, "{file}");
    }
}

#[test]
fn an_unobserved_generation_hides_an_old_complete_status() {
    // Same counters as "complete", but the controller has not seen generation 3 yet.
    let mut d = load("complete");
    d.metadata.generation = Some(3);
    assert_eq!(rollout_status(&d), RolloutStatus::WaitingForObservation);
}

#[test]
fn the_deadline_is_only_believed_for_the_observed_generation() {
    let mut d = load("deadline");
    d.metadata.generation = Some(3);
    assert_eq!(rollout_status(&d), RolloutStatus::WaitingForObservation);
}

#[test]
fn missing_spec_replicas_skips_the_updated_check_like_kubectl() {
    let mut d = load("updating");
    d.spec.as_mut().unwrap().replicas = None;
    // updated 1 < replicas 3: old replicas pending.
    assert_eq!(
        rollout_status(&d),
        RolloutStatus::OldReplicasPending { old: 2 }
    );
}
