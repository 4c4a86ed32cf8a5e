//! Finding the cluster and the credentials as kubectl does.
//!
//! kube-rs does the work (kubeconfig parsing and merging, tokens, token files, client
//! certificates, exec credential plugins, OIDC with refresh, the in-cluster service
//! account); this module chooses between its sources in kubectl's order and turns its
//! failures into lines that say what to do. Two of kubectl's habits are kept here on
//! purpose: a file named in `KUBECONFIG` that does not exist is skipped (kube fails on
//! it), and a missing credential plugin is named, with the kubeconfig's install hint.

use std::path::PathBuf;
use std::time::Duration;

use kube::client::AuthError;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::error::{chain, KubeError, Op};

/// How long [`connect`] waits for the API server to answer `GET /version`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects as kubectl does: the kubeconfig from `KUBECONFIG` (several files separated by
/// `:` are merged, the first to set a value wins) or `~/.kube/config`, its current context
/// or `context` (like `kubectl --context`); without a kubeconfig, the in-cluster service
/// account. The user may authenticate with a token, a token file, a client certificate,
/// an exec credential plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`)
/// or OIDC. Then asks the API server for its version, so that an unreachable cluster or
/// rejected credentials are reported here, before any probing.
///
/// ```no_run
/// # async fn f() -> Result<(), probe_kube::KubeError> {
/// let client = probe_kube::connect(None).await?;             // current context
/// let staging = probe_kube::connect(Some("staging")).await?; // like kubectl --context staging
/// # Ok(()) }
/// ```
pub async fn connect(context: Option<&str>) -> Result<Client, KubeError> {
    let config = match load_kubeconfig()? {
        Some(kubeconfig) => {
            if let Some(ctx) = context {
                // Checked first: kube's message for a missing context is vague.
                if !kubeconfig.contexts.iter().any(|c| c.name == ctx) {
                    let known: Vec<&str> = kubeconfig
                        .contexts
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect();
                    return Err(KubeError::NoCluster {
                        reason: format!(
                            "context \"{ctx}\" is not in the kubeconfig; it has: {}",
                            if known.is_empty() {
                                "none".to_string()
                            } else {
                                known.join(", ")
                            }
                        ),
                    });
                }
            }
            let options = KubeConfigOptions {
                context: context.map(str::to_string),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| KubeError::NoCluster { reason: chain(&e) })?
        }
        None => {
            let place = kubeconfig_place();
            if let Some(ctx) = context {
                return Err(KubeError::NoCluster {
                    reason: format!("context \"{ctx}\" asked for, but no kubeconfig at {place}"),
                });
            }
            Config::incluster().map_err(|_| KubeError::NoCluster {
                reason: format!("no kubeconfig at {place} and not running in a pod"),
            })?
        }
    };
    let plugin = config
        .auth_info
        .exec
        .as_ref()
        .and_then(|e| Some((e.command.clone()?, e.install_hint.clone())));
    let server = config.cluster_url.to_string();
    // Building the client obtains the credentials: this is where an exec plugin runs.
    let client = Client::try_from(config).map_err(|e| credentials_error(e, plugin))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
        Err(_) => Err(KubeError::Unreachable {
            reason: format!(
                "{server} did not answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        }),
        Ok(Err(e)) => Err(
            match KubeError::from_kube(
                e,
                Op {
                    verb: "get",
                    resource: "/version",
                    namespace: "",
                    name: None,
                },
            ) {
                KubeError::Unreachable { reason } => KubeError::Unreachable {
                    reason: format!("{server}: {reason}"),
                },
                other => other,
            },
        ),
        Ok(Ok(_)) => Ok(client),
    }
}

/// The kubeconfig kubectl would use: the files of `KUBECONFIG` that exist, merged, or
/// `~/.kube/config`; `None` if there is none.
fn load_kubeconfig() -> Result<Option<Kubeconfig>, KubeError> {
    let unreadable = |path: &PathBuf, e: &(dyn std::error::Error + 'static)| KubeError::NoCluster {
        reason: format!("{}: {}", path.display(), chain(e)),
    };
    let paths: Vec<PathBuf> = match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => std::env::split_paths(&v)
            .filter(|p| !p.as_os_str().is_empty() && p.exists())
            .collect(),
        _ => home_kubeconfig()
            .into_iter()
            .filter(|p| p.exists())
            .collect(),
    };
    let mut merged: Option<Kubeconfig> = None;
    for path in &paths {
        let next = Kubeconfig::read_from(path).map_err(|e| unreadable(path, &e))?;
        merged = Some(match merged {
            None => next,
            Some(m) => m.merge(next).map_err(|e| unreadable(path, &e))?,
        });
    }
    Ok(merged)
}

fn home_kubeconfig() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"))?;
    Some(PathBuf::from(home).join(".kube").join("config"))
}

/// Where the kubeconfig was looked for, for messages.
fn kubeconfig_place() -> String {
    match std::env::var_os("KUBECONFIG") {
        Some(v) if !v.is_empty() => format!("KUBECONFIG={}", v.to_string_lossy()),
        _ => "~/.kube/config".to_string(),
    }
}

/// Why the credentials could not be obtained. A plugin that is not installed is the
/// usual first-day failure with a managed cluster, so it gets its own error.
fn credentials_error(err: kube::Error, plugin: Option<(String, Option<String>)>) -> KubeError {
    if let (kube::Error::Auth(AuthError::AuthExecStart(io)), Some((plugin, install_hint))) =
        (&err, plugin)
    {
        if io.kind() == std::io::ErrorKind::NotFound {
            return KubeError::AuthPluginMissing {
                plugin,
                install_hint,
            };
        }
    }
    match err {
        kube::Error::Auth(e) => KubeError::Unauthorized { reason: chain(&e) },
        other => KubeError::NoCluster {
            reason: chain(&other),
        },
    }
}
