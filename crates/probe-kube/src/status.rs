//! When is a rollout done? Exactly when `kubectl rollout status` says so.
//!
//! People compare rollprobe's numbers with what kubectl printed, so "rollout complete" must
//! mean the same thing: kubectl's `DeploymentStatusViewer` (k8s.io/kubectl
//! `pkg/polymorphichelpers/rollout_status.go`). Its rules, in order:
//!
//! 1. `metadata.generation > status.observedGeneration`: the controller has not seen the
//!    change yet ("Waiting for deployment spec update to be observed...").
//! 2. The `Progressing` condition has reason `ProgressDeadlineExceeded`: failed
//!    (`progressDeadlineSeconds` elapsed without progress).
//! 3. `status.updatedReplicas < spec.replicas`: new replicas still being created.
//! 4. `status.replicas > status.updatedReplicas`: old replicas pending termination.
//! 5. `status.availableReplicas < status.updatedReplicas`: updated replicas not yet
//!    available (ready for `minReadySeconds`).
//! 6. Otherwise: successfully rolled out.
//!
//! Missing status counters count as 0, as in Go; a missing `spec.replicas` skips rule 3,
//! as kubectl does.

use k8s_openapi::api::apps::v1::Deployment;

/// Where a Deployment's rollout stands, by kubectl's rules (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutStatus {
    /// `observedGeneration < generation`.
    WaitingForObservation,
    /// `updatedReplicas < spec.replicas`.
    UpdatingReplicas {
        /// `status.updatedReplicas`.
        updated: i32,
        /// `spec.replicas`.
        desired: i32,
    },
    /// `status.replicas > updatedReplicas`.
    OldReplicasPending {
        /// How many old replicas remain.
        old: i32,
    },
    /// `availableReplicas < updatedReplicas`.
    WaitingForAvailable {
        /// `status.availableReplicas`.
        available: i32,
        /// `status.updatedReplicas`.
        updated: i32,
    },
    /// Done.
    Complete,
    /// The `Progressing` condition says `ProgressDeadlineExceeded`.
    DeadlineExceeded,
}

impl RolloutStatus {
    /// Whether the rollout is complete.
    pub fn is_complete(&self) -> bool {
        matches!(self, RolloutStatus::Complete)
    }

    /// kubectl's status line for it (without the trailing newline).
    ///
    /// ```
    /// use probe_kube::RolloutStatus;
    /// assert_eq!(
    ///     RolloutStatus::OldReplicasPending { old: 1 }.message("backend"),
    ///     "Waiting for deployment \"backend\" rollout to finish: 1 old replicas are pending termination..."
    /// );
    /// ```
    pub fn message(&self, name: &str) -> String {
        match self {
            RolloutStatus::WaitingForObservation => {
                "Waiting for deployment spec update to be observed...".to_string()
            }
            RolloutStatus::UpdatingReplicas { updated, desired } => format!(
                "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {desired} new replicas have been updated..."
            ),
            RolloutStatus::OldReplicasPending { old } => format!(
                "Waiting for deployment \"{name}\" rollout to finish: {old} old replicas are pending termination..."
            ),
            RolloutStatus::WaitingForAvailable { available, updated } => format!(
                "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
            ),
            RolloutStatus::Complete => format!("deployment \"{name}\" successfully rolled out"),
            RolloutStatus::DeadlineExceeded => {
                format!("deployment \"{name}\" exceeded its progress deadline")
            }
        }
    }
}

/// Applies `kubectl rollout status`'s rules to a Deployment object (a pure function).
///
/// ```
/// let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_str(r#"{
///   "metadata": {"name": "backend", "generation": 2},
///   "spec": {"replicas": 2, "selector": {}, "template": {}},
///   "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}
/// }"#).unwrap();
/// assert!(probe_kube::rollout_status(&d).is_complete());
/// ```
pub fn rollout_status(d: &Deployment) -> RolloutStatus {
    let generation = d.metadata.generation.unwrap_or(0);
    let st = d.status.clone().unwrap_or_default();
    if generation > st.observed_generation.unwrap_or(0) {
        return RolloutStatus::WaitingForObservation;
    }
    let deadline = st.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if deadline {
        return RolloutStatus::DeadlineExceeded;
    }
    let updated = st.updated_replicas.unwrap_or(0);
    let replicas = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if let Some(desired) = d.spec.as_ref().and_then(|s| s.replicas) {
        if updated < desired {
            return RolloutStatus::UpdatingReplicas { updated, desired };
        }
    }
    if replicas > updated {
        return RolloutStatus::OldReplicasPending {
            old: replicas - updated,
        };
    }
    if available < updated {
        return RolloutStatus::WaitingForAvailable { available, updated };
    }
    RolloutStatus::Complete
}
