//! `LabError`, the lab's one error type, in a file of its own: every part of the lab
//! returns it, so it sits below all of them instead of in the crate root they re-export.

/// Errors of the lab. Each displays as one line.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A manifest is invalid: which document, which object, what is wrong.
    #[error("manifest document {doc} ({object}): {message}")]
    Manifest {
        /// 1-based index of the YAML document.
        doc: usize,
        /// `Kind name` of the object (`?` where unknown).
        object: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// No app for the lab's pods was found (see [`crate::find_app`]).
    #[error("{0}")]
    AppNotFound(String),
    /// The lab needs root.
    #[error("the lab needs root for network namespaces and iptables (running as uid {0})")]
    NotRoot(u32),
    /// Building or removing the lab failed.
    #[error("lab setup failed: {0}")]
    Setup(String),
    /// A command (`ip`, `iptables-restore`) failed.
    #[error("{0}")]
    Command(String),
    /// A named Deployment or Service does not exist in the lab.
    #[error("{0} not found in the lab")]
    NotFound(String),
    /// A wait ran out of time.
    #[error("{0}")]
    Timeout(String),
    /// A pod's app keeps exiting by itself (CrashLoopBackOff): waiting for it would never
    /// end. The line names the pod and its last exit status.
    #[error("{0}: the app cannot start; check the container's env in the manifest")]
    CrashLoop(String),
    /// An invalid argument or configuration.
    #[error("{0}")]
    Invalid(String),
}
