//! One error type whose `Display` is a single line that tells the user what to do.
//!
//! rollprobe fails before it starts probing when the cluster cannot be used, so the message
//! has to be actionable on its own: which verb on which resource was refused, which object
//! is missing, where the configuration was looked for, which credential plugin is absent.
//! kube's own errors carry the whole `Status` debug dump, which is not that.
//! [`KubeError::is_usage`] tells a caller which errors are the user's to fix (the CLI's
//! exit code 2).

use std::time::Duration;

/// What went wrong talking to Kubernetes. `Display` is always exactly one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeError {
    /// No kubeconfig (KUBECONFIG, ~/.kube/config) and not running in a pod, or the
    /// requested context does not exist.
    #[error("no Kubernetes cluster found ({}): set KUBECONFIG or create ~/.kube/config, pick a context with --context, or run inside a pod with a service account", one_line(.reason))]
    NoCluster {
        /// Why, in the words of the configuration loader.
        reason: String,
    },
    /// The kubeconfig's user gets its credentials from an exec plugin (EKS, GKE, AKS,
    /// kubelogin...) that is not installed or not on PATH.
    #[error("the kubeconfig's credential plugin \"{plugin}\" was not found: install it{} or add its directory to PATH (kubectl needs it too)", hint_suffix(.install_hint))]
    AuthPluginMissing {
        /// The command the kubeconfig names (`aws`, `gke-gcloud-auth-plugin`, `kubelogin`...).
        plugin: String,
        /// The kubeconfig's `installHint`, if it has one.
        install_hint: Option<String>,
    },
    /// The API server could not be reached (connection refused, DNS, TLS, timeout).
    #[error("cannot reach the Kubernetes API server ({}): check that the cluster is up and the kubeconfig's server address", one_line(.reason))]
    Unreachable {
        /// The underlying error.
        reason: String,
    },
    /// The API server rejected the credentials (401) or they could not be obtained.
    #[error("the Kubernetes API server rejected the credentials ({}): log in again or refresh the kubeconfig", one_line(.reason))]
    Unauthorized {
        /// The underlying error.
        reason: String,
    },
    /// RBAC said no (403).
    #[error("no permission to {verb} {resource} in namespace \"{namespace}\": grant it with a Role (see probe-kube's README); check with `kubectl auth can-i {verb} {resource} -n {namespace}`")]
    Forbidden {
        /// `get`, `list`, `watch` or `patch`.
        verb: String,
        /// Plural resource name, e.g. `deployments`.
        resource: String,
        /// The namespace.
        namespace: String,
    },
    /// The object does not exist (404).
    #[error("{} \"{name}\" not found in namespace \"{namespace}\": check the name and the namespace (-n)", singular(.resource))]
    NotFound {
        /// Plural resource name, e.g. `deployments`.
        resource: String,
        /// The object's name.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// The request itself is wrong (bad case, unknown container...).
    #[error("{}", one_line(.reason))]
    Invalid {
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// `wait_rollout_complete` ran out of time.
    #[error("deployment \"{deployment}\" in namespace \"{namespace}\" did not finish rolling out within {:.0} s ({}): raise the timeout or see `kubectl rollout status deployment/{deployment} -n {namespace}`", .waited.as_secs_f64(), one_line(.last_status))]
    Timeout {
        /// The Deployment.
        deployment: String,
        /// The namespace.
        namespace: String,
        /// How long it waited.
        waited: Duration,
        /// kubectl's last status line.
        last_status: String,
    },
    /// The Deployment's Progressing condition says ProgressDeadlineExceeded.
    #[error("deployment \"{deployment}\" exceeded its progress deadline: see `kubectl describe deployment {deployment} -n {namespace}`")]
    DeadlineExceeded {
        /// The Deployment.
        deployment: String,
        /// The namespace.
        namespace: String,
    },
    /// Any other API error.
    #[error("the Kubernetes API server refused to {verb} {resource} (HTTP {code}: {})", one_line(.message))]
    Api {
        /// The verb.
        verb: String,
        /// Plural resource name.
        resource: String,
        /// HTTP status code (0 if none).
        code: u16,
        /// The server's message.
        message: String,
    },
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn singular(resource: &str) -> &str {
    resource.strip_suffix('s').unwrap_or(resource)
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint.as_deref().map(one_line) {
        Some(h) if !h.is_empty() => format!(" ({h})"),
        _ => String::new(),
    }
}

impl KubeError {
    /// Whether the user fixes it in their input or setup (kubeconfig, context, plugin,
    /// names, RBAC, credentials) rather than it being the cluster failing at the time:
    /// the CLI's exit code 2. `Unreachable`, `Timeout`, `DeadlineExceeded` and other API
    /// errors are not.
    ///
    /// ```
    /// use probe_kube::KubeError;
    /// let missing = KubeError::AuthPluginMissing { plugin: "aws".into(), install_hint: None };
    /// assert!(missing.is_usage());
    /// assert!(!KubeError::Unreachable { reason: "connection refused".into() }.is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            KubeError::NoCluster { .. }
                | KubeError::AuthPluginMissing { .. }
                | KubeError::Unauthorized { .. }
                | KubeError::Forbidden { .. }
                | KubeError::NotFound { .. }
                | KubeError::Invalid { .. }
        )
    }
}

/// The operation an API error happened in, so that the error can name it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a> {
    pub verb: &'a str,
    pub resource: &'a str,
    pub namespace: &'a str,
    pub name: Option<&'a str>,
}

/// The error and its `source()` chain, as one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    one_line(&parts.join(": "))
}

impl KubeError {
    /// Maps a kube client error that happened during `op`.
    pub(crate) fn from_kube(err: kube::Error, op: Op<'_>) -> KubeError {
        match err {
            kube::Error::Api(status) => {
                let owned = |s: &str| s.to_string();
                match status.code {
                    401 => KubeError::Unauthorized {
                        reason: if status.message.is_empty() {
                            "401 Unauthorized".into()
                        } else {
                            status.message.clone()
                        },
                    },
                    403 => KubeError::Forbidden {
                        verb: owned(op.verb),
                        resource: owned(op.resource),
                        namespace: owned(op.namespace),
                    },
                    404 if op.name.is_some() => KubeError::NotFound {
                        resource: owned(op.resource),
                        name: owned(op.name.unwrap_or_default()),
                        namespace: owned(op.namespace),
                    },
                    code => KubeError::Api {
                        verb: owned(op.verb),
                        resource: owned(op.resource),
                        code,
                        message: if status.message.is_empty() {
                            status.reason.clone()
                        } else {
                            status.message.clone()
                        },
                    },
                }
            }
            kube::Error::Auth(e) => KubeError::Unauthorized { reason: chain(&e) },
            kube::Error::InferConfig(e) => KubeError::NoCluster { reason: chain(&e) },
            kube::Error::InferKubeconfig(e) => KubeError::NoCluster { reason: chain(&e) },
            e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                KubeError::Unreachable { reason: chain(&e) }
            }
            other => KubeError::Api {
                verb: op.verb.to_string(),
                resource: op.resource.to_string(),
                code: 0,
                message: chain(&other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_display_is_one_line() {
        let errs = [
            KubeError::NoCluster {
                reason: "no\nconfig".into(),
            },
            KubeError::AuthPluginMissing {
                plugin: "kubelogin".into(),
                install_hint: Some("a\nhint".into()),
            },
            KubeError::Forbidden {
                verb: "watch".into(),
                resource: "pods".into(),
                namespace: "shop".into(),
            },
            KubeError::NotFound {
                resource: "deployments".into(),
                name: "backend".into(),
                namespace: "shop".into(),
            },
            KubeError::Api {
                verb: "get".into(),
                resource: "pods".into(),
                code: 500,
                message: "a\n b".into(),
            },
        ];
        for e in errs {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_missing_plugin_is_named_with_its_hint() {
        let e = KubeError::AuthPluginMissing {
            plugin: "aws".into(),
            install_hint: Some("Please install\nthe aws cli".into()),
        };
        assert_eq!(
            e.to_string(),
            "the kubeconfig's credential plugin \"aws\" was not found: install it (Please install the aws cli) or add its directory to PATH (kubectl needs it too)"
        );
        assert!(e.is_usage());
    }

    #[test]
    fn it_goes_into_a_boxed_error() {
        fn boxable<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
        boxable(&KubeError::Invalid { reason: "x".into() });
    }

    #[test]
    fn not_found_names_the_object() {
        let e = KubeError::NotFound {
            resource: "deployments".into(),
            name: "backend".into(),
            namespace: "shop".into(),
        };
        assert_eq!(
            e.to_string(),
            "deployment \"backend\" not found in namespace \"shop\": check the name and the namespace (-n)"
        );
    }
}
