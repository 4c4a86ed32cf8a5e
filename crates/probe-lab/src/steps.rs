//! Steps: the changes a rollout is made of, in order, each an event on the probe's clock.
//!
//! A real procedure is often more than one change: the seed's Blue/Green practice is
//! "scale the idle Deployment up, switch the Service's selector, scale the old one to
//! zero", and a rollback is `kubectl rollout undo --to-revision`. [`Step`] is one such
//! change in the command-line form users write (`scale:web-green=2`), and
//! [`Lab::run_steps`] runs a list of them as one trigger.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use probe_core::{Event, EventKind, Subject};

use crate::controller::waits::status;
use crate::error::LabError;
use crate::lab::Lab;
use crate::manifest::{Labels, PodTemplate, PreStop};

/// How long a `wait:rollout` or `wait:available` step waits at most.
pub const STEP_WAIT_TIMEOUT: Duration = Duration::from_secs(300);

/// One change of a lab procedure (see [`Lab::run_steps`]).
///
/// ```
/// use probe_lab::Step;
/// let step: Step = "scale:web-green=2".parse().unwrap();
/// assert_eq!(step, Step::Scale { deployment: "web-green".into(), replicas: 2 });
/// assert_eq!(step.to_string(), "scale:web-green=2");
/// let e = "scale:web-green".parse::<Step>().unwrap_err();
/// assert!(e.to_string().starts_with("step 'scale:web-green':"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `set-image:DEPLOY=IMAGE`: `kubectl set image` of the Deployment's container.
    SetImage {
        /// The Deployment.
        deployment: String,
        /// The new image.
        image: String,
    },
    /// `scale:DEPLOY=N`: `kubectl scale --replicas=N`.
    Scale {
        /// The Deployment.
        deployment: String,
        /// Its new replica count.
        replicas: i32,
    },
    /// `selector:SERVICE:K=V[,K=V]`: sets these selector labels of a Service (the others
    /// are kept), the Blue/Green switch.
    Selector {
        /// The Service.
        service: String,
        /// The labels to set.
        labels: Labels,
    },
    /// `undo:DEPLOY[=REVISION]`: `kubectl rollout undo [--to-revision=REVISION]`; without
    /// a revision, the one before the current.
    Undo {
        /// The Deployment.
        deployment: String,
        /// The revision to go back to (`None`: the previous one).
        revision: Option<u64>,
    },
    /// `restart:DEPLOY`: `kubectl rollout restart`.
    Restart {
        /// The Deployment.
        deployment: String,
    },
    /// `wait:rollout|available|DURATION`.
    Wait(WaitFor),
}

/// What a `wait:` step waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// Every Deployment's rollout complete ([`Lab::wait_all_rollouts_complete`]).
    Rollout,
    /// Every Deployment available and every Service's rules synced
    /// ([`Lab::wait_available`]).
    Available,
    /// A pause.
    Duration(Duration),
}

const FORMS: &str = "use set-image:DEPLOY=IMAGE, scale:DEPLOY=N, selector:SERVICE:K=V[,K=V], \
                     undo:DEPLOY[=REVISION], restart:DEPLOY or wait:rollout|available|DURATION";

fn name_ok(s: &str) -> bool {
    !s.is_empty() && !s.contains(char::is_whitespace)
}

impl FromStr for Step {
    type Err = LabError;

    fn from_str(text: &str) -> Result<Step, LabError> {
        let bad = |why: &str| LabError::Invalid(format!("step '{text}': {why}"));
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| bad(&format!("no step kind; {FORMS}")))?;
        let pair = |what: &str| -> Result<(String, String), LabError> {
            match rest.split_once('=') {
                Some((a, b)) if name_ok(a) && !b.is_empty() => Ok((a.into(), b.into())),
                _ => Err(bad(&format!("{kind} takes {what}"))),
            }
        };
        let name = |what: &str| -> Result<String, LabError> {
            if name_ok(rest) {
                Ok(rest.to_string())
            } else {
                Err(bad(&format!("{kind} takes {what}")))
            }
        };
        match kind {
            "set-image" => {
                let (deployment, image) = pair("DEPLOY=IMAGE, e.g. set-image:web=shop/web:v2")?;
                Ok(Step::SetImage { deployment, image })
            }
            "scale" => {
                let (deployment, n) = pair("DEPLOY=N, e.g. scale:web-green=2")?;
                let replicas = n
                    .parse()
                    .ok()
                    .filter(|r| (0..=10_000).contains(r))
                    .ok_or_else(|| bad(&format!("'{n}' is not a replica count (0 to 10000)")))?;
                Ok(Step::Scale {
                    deployment,
                    replicas,
                })
            }
            "selector" => {
                let usage = "SERVICE:K=V[,K=V], e.g. selector:web-svc:color=green";
                let (service, pairs) = rest
                    .split_once(':')
                    .filter(|(s, p)| name_ok(s) && !p.is_empty())
                    .ok_or_else(|| bad(&format!("selector takes {usage}")))?;
                let mut labels = Labels::new();
                for kv in pairs.split(',') {
                    match kv.split_once('=') {
                        Some((k, v)) if name_ok(k) => {
                            labels.insert(k.to_string(), v.to_string());
                        }
                        _ => {
                            return Err(bad(&format!("'{kv}' is not K=V; selector takes {usage}")))
                        }
                    }
                }
                Ok(Step::Selector {
                    service: service.to_string(),
                    labels,
                })
            }
            "undo" => match rest.split_once('=') {
                None => Ok(Step::Undo {
                    deployment: name("DEPLOY[=REVISION], e.g. undo:web=2")?,
                    revision: None,
                }),
                Some((deployment, rev)) if name_ok(deployment) => {
                    let revision = rev.parse().ok().filter(|r| *r > 0).ok_or_else(|| {
                        bad(&format!(
                            "'{rev}' is not a revision (a whole number from 1)"
                        ))
                    })?;
                    Ok(Step::Undo {
                        deployment: deployment.to_string(),
                        revision: Some(revision),
                    })
                }
                Some(_) => Err(bad("undo takes DEPLOY[=REVISION], e.g. undo:web=2")),
            },
            "restart" => Ok(Step::Restart {
                deployment: name("DEPLOY, e.g. restart:web")?,
            }),
            "wait" => match rest {
                "rollout" => Ok(Step::Wait(WaitFor::Rollout)),
                "available" => Ok(Step::Wait(WaitFor::Available)),
                d => probe_core::parse_duration(d)
                    .map(|d| Step::Wait(WaitFor::Duration(d)))
                    .map_err(|_| {
                        bad("wait takes rollout, available or a duration such as 2s or 500ms")
                    }),
            },
            other => Err(bad(&format!("unknown kind '{other}'; {FORMS}"))),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::SetImage { deployment, image } => write!(f, "set-image:{deployment}={image}"),
            Step::Scale {
                deployment,
                replicas,
            } => write!(f, "scale:{deployment}={replicas}"),
            Step::Selector { service, labels } => {
                let kv: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "selector:{service}:{}", kv.join(","))
            }
            Step::Undo {
                deployment,
                revision: None,
            } => write!(f, "undo:{deployment}"),
            Step::Undo {
                deployment,
                revision: Some(r),
            } => write!(f, "undo:{deployment}={r}"),
            Step::Restart { deployment } => write!(f, "restart:{deployment}"),
            Step::Wait(WaitFor::Rollout) => write!(f, "wait:rollout"),
            Step::Wait(WaitFor::Available) => write!(f, "wait:available"),
            Step::Wait(WaitFor::Duration(d)) if d.subsec_nanos() == 0 => {
                write!(f, "wait:{}s", d.as_secs())
            }
            Step::Wait(WaitFor::Duration(d)) => write!(f, "wait:{}ms", d.as_millis()),
        }
    }
}

impl Step {
    /// The Deployment the step changes, if it changes one.
    pub fn deployment(&self) -> Option<&str> {
        match self {
            Step::SetImage { deployment, .. }
            | Step::Scale { deployment, .. }
            | Step::Undo { deployment, .. }
            | Step::Restart { deployment } => Some(deployment),
            Step::Selector { .. } | Step::Wait(_) => None,
        }
    }

    /// The Service the step changes, if it changes one.
    pub fn service(&self) -> Option<&str> {
        match self {
            Step::Selector { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// One revision of a Deployment's rollout history (see [`Lab::rollout_history`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// `deployment.kubernetes.io/revision`.
    pub number: u64,
    /// The pod template of that revision.
    pub template: PodTemplate,
    /// Whether it is the Deployment's template now.
    pub current: bool,
}

impl Lab {
    /// Runs steps in order, like a script of kubectl commands: each is first published as
    /// a `mark` event (`step scale:web-green=2`), so it lands on the probe's clock, then
    /// applied; `wait:` steps wait (at most [`STEP_WAIT_TIMEOUT`]). Stops at the first
    /// step that fails, with its error.
    ///
    /// ```no_run
    /// # async fn demo(lab: probe_lab::Lab) -> Result<(), probe_lab::LabError> {
    /// let steps: Vec<probe_lab::Step> = ["scale:web-green=2", "wait:available",
    ///     "selector:web-svc:color=green", "scale:web-blue=0"]
    ///     .iter().map(|s| s.parse()).collect::<Result<_, _>>()?;
    /// lab.run_steps(&steps).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run_steps(&self, steps: &[Step]) -> Result<(), LabError> {
        for step in steps {
            let subject = Subject {
                deployment: step.deployment().map(str::to_string),
                service: step.service().map(str::to_string),
                ..Subject::default()
            };
            self.hub().publish(Event::observed(
                EventKind::Mark,
                subject,
                format!("step {step}"),
            ));
            self.run_step(step).await?;
        }
        Ok(())
    }

    async fn run_step(&self, step: &Step) -> Result<(), LabError> {
        match step {
            Step::SetImage { deployment, image } => self.set_image(deployment, image),
            Step::Scale {
                deployment,
                replicas,
            } => self.set_replicas(deployment, *replicas),
            Step::Selector { service, labels } => self.set_selector(service, labels),
            Step::Undo {
                deployment,
                revision,
            } => self.undo(deployment, *revision).map(|_| ()),
            Step::Restart { deployment } => self.restart(deployment),
            Step::Wait(WaitFor::Rollout) => {
                self.wait_all_rollouts_complete(STEP_WAIT_TIMEOUT).await
            }
            Step::Wait(WaitFor::Available) => self.wait_available(STEP_WAIT_TIMEOUT).await,
            Step::Wait(WaitFor::Duration(d)) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
        }
    }

    /// The Deployment's rollout history as the controller holds it now, oldest revision
    /// first: the ReplicaSets it keeps (at most `revisionHistoryLimit` old ones).
    pub fn rollout_history(&self, deployment: &str) -> Result<Vec<Revision>, LabError> {
        let current = self
            .deployment(deployment)
            .ok_or_else(|| LabError::NotFound(format!("deployment {deployment}")))?
            .template;
        let history = status(self.shared())
            .history
            .remove(deployment)
            .unwrap_or_default();
        Ok(history
            .into_iter()
            .map(|(number, template)| Revision {
                number,
                current: template == current,
                template,
            })
            .collect())
    }

    /// Rolls a Deployment back like `kubectl rollout undo [--to-revision=N]`: its pod
    /// template becomes that revision's (without a revision, the newest one before the
    /// current), so a rollout with the Deployment's own strategy starts and the old
    /// ReplicaSet becomes the newest revision. Returns the revision rolled back to; a
    /// revision the history does not hold (never existed, or trimmed by
    /// `revisionHistoryLimit`) is an error, and undoing to the current template changes
    /// nothing.
    pub fn undo(&self, deployment: &str, revision: Option<u64>) -> Result<u64, LabError> {
        let history = self.rollout_history(deployment)?;
        let target = match revision {
            Some(n) => history.iter().find(|r| r.number == n).ok_or_else(|| {
                let kept: Vec<String> = history.iter().map(|r| r.number.to_string()).collect();
                LabError::Invalid(format!(
                    "deployment {deployment} has no revision {n} in its history (it keeps: {})",
                    if kept.is_empty() {
                        "none".into()
                    } else {
                        kept.join(", ")
                    }
                ))
            })?,
            None => history.iter().rev().find(|r| !r.current).ok_or_else(|| {
                LabError::Invalid(format!(
                    "deployment {deployment} has no previous revision to roll back to"
                ))
            })?,
        };
        let (number, template) = (target.number, target.template.clone());
        self.desired()?.update_deployment(deployment, |dep| {
            dep.template = template;
            Ok(())
        })?;
        Ok(number)
    }

    /// Sets the `preStop` hook of a Deployment's container to a sleep of `seconds` (the
    /// `sleep` action), or removes the hook with `None`, like a `kubectl patch` of the pod
    /// template: a rollout starts when it changes. Returns the sleep it replaced (`None`:
    /// no hook). A hook that is not a sleep is refused rather than lost. The strategy
    /// matrix's `+prestop=` cases use it.
    pub fn set_pre_stop_sleep(
        &self,
        deployment: &str,
        seconds: Option<u32>,
    ) -> Result<Option<u32>, LabError> {
        self.desired()?.update_deployment(deployment, |dep| {
            let hook = &mut dep.template.container.pre_stop;
            let before = match hook {
                None => None,
                Some(PreStop::Sleep { seconds }) => Some(*seconds),
                Some(other) => {
                    return Err(LabError::Invalid(format!(
                        "deployment {deployment} has a preStop hook that is not a sleep ({other:?}): a +prestop case would replace it"
                    )))
                }
            };
            if before != seconds {
                *hook = seconds.map(|seconds| PreStop::Sleep { seconds });
            }
            Ok(before)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_prints_back() {
        for text in [
            "set-image:web=shop/web:v2",
            "scale:web-green=2",
            "selector:web-svc:color=green,tier=web",
            "undo:web",
            "undo:web=3",
            "restart:web",
            "wait:rollout",
            "wait:available",
            "wait:1500ms",
            "wait:2s",
        ] {
            let step: Step = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(step.to_string(), text);
        }
        assert_eq!(
            "wait:2s".parse::<Step>().unwrap(),
            Step::Wait(WaitFor::Duration(Duration::from_secs(2)))
        );
        assert_eq!(
            "wait:2000ms".parse::<Step>().unwrap().to_string(),
            "wait:2s"
        );
    }

    #[test]
    fn bad_steps_are_one_line_naming_the_step() {
        for (text, says) in [
            ("scale", "no step kind"),
            ("grow:web=2", "unknown kind 'grow'"),
            ("scale:web=-1", "not a replica count"),
            ("scale:=2", "scale takes DEPLOY=N"),
            ("set-image:web", "set-image takes DEPLOY=IMAGE"),
            ("selector:web-svc", "selector takes SERVICE:K=V"),
            ("selector:web-svc:color", "'color' is not K=V"),
            ("undo:web=0", "not a revision"),
            ("undo:web=x", "not a revision"),
            ("restart:", "restart takes DEPLOY"),
            (
                "wait:forever",
                "wait takes rollout, available or a duration",
            ),
        ] {
            let e = text.parse::<Step>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("step '{text}': ")), "{e}");
            assert!(e.contains(says), "{text}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
