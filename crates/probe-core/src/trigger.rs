//! How the trigger ended, as a fact of the run that the verdict reads.
//!
//! A CI job that wraps `kubectl rollout` must not be green when the rollout never
//! happened, so the trigger's outcome is typed ([`TriggerOutcome`]) rather than left
//! in the text of a `trigger_exit` event: a trigger that could not start makes the
//! measurement invalid, one that failed or was killed by the run's duration fails the
//! gate. It is kept in run.json's end (so `rollprobe report DIR` rebuilds the same
//! verdict) and in report.json's `trigger`.
//!
//! A trigger command's own output is not the report's: its stdout and stderr are
//! relayed line by line to the prober's stderr (prefixed `trigger: `) and to
//! `trigger.log` in the output folder, so `--format json` keeps stdout to one JSON
//! document. The last lines of its stderr are kept as the reason a person reads first.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// The file in the output folder that keeps a trigger command's output.
pub const TRIGGER_LOG: &str = "trigger.log";

/// How many of the last stderr lines a report keeps, and at most how many bytes.
const TAIL_LINES: usize = 10;
const TAIL_BYTES: usize = 2000;

/// How the trigger ended.
///
/// ```
/// use probe_core::TriggerOutcome;
/// assert!(TriggerOutcome::Failed.fails_gate());
/// assert!(!TriggerOutcome::Succeeded.fails_gate());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerOutcome {
    /// It finished and said it succeeded (exit code 0, `Ok`).
    Succeeded,
    /// It finished and said it failed (a non-zero exit code, a signal, `Err`).
    Failed,
    /// The run's duration ran out first, and the trigger was killed.
    KilledByDuration,
    /// The run was interrupted (Ctrl-C, a signal) while the trigger ran.
    Interrupted,
    /// It could not be started: nothing was redeployed, so the run measured nothing.
    NotStarted,
}

impl TriggerOutcome {
    /// Whether a gate fails on it: the redeploy was asked for and did not happen as asked.
    pub fn fails_gate(self) -> bool {
        matches!(
            self,
            TriggerOutcome::Failed | TriggerOutcome::KilledByDuration
        )
    }
}

/// The trigger of a run: what it was and how it ended (report.json's `trigger`).
///
/// ```
/// use probe_core::{TriggerOutcome, TriggerReport};
/// let t = TriggerReport {
///     command: "kubectl rollout restart deployment/web".into(),
///     outcome: TriggerOutcome::Failed,
///     exit_code: Some(1),
///     killed_by: None,
///     error: None,
///     stderr_tail: Some("error: deployments.apps \"web\" not found".into()),
/// };
/// assert_eq!(
///     t.to_string(),
///     "kubectl rollout restart deployment/web failed with exit code 1: error: deployments.apps \"web\" not found"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerReport {
    /// The command line, or a future's name (`Rollout::trigger_name`, `trigger` unless
    /// named).
    pub command: String,
    /// How it ended.
    pub outcome: TriggerOutcome,
    /// A command's exit code, when it exited by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// What killed it, when the run did: `duration` or `interrupt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub killed_by: Option<String>,
    /// Why it failed when no exit code says it: a future's error, a signal, a spawn error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The last lines of a command's stderr (at most 10 lines, 2000 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr_tail: Option<String>,
}

impl TriggerReport {
    /// How `command` ended, without its stderr: what killed it follows from `outcome`.
    pub(crate) fn ended(
        command: impl Into<String>,
        outcome: TriggerOutcome,
        exit_code: Option<i32>,
        error: Option<String>,
    ) -> TriggerReport {
        let killed_by = match outcome {
            TriggerOutcome::KilledByDuration => Some("duration".to_string()),
            TriggerOutcome::Interrupted => Some("interrupt".to_string()),
            _ => None,
        };
        TriggerReport {
            command: command.into(),
            outcome,
            exit_code,
            killed_by,
            error,
            stderr_tail: None,
        }
    }

    /// The `trigger_exit` event's detail: the words events.csv has always used, for
    /// people; the verdict reads the typed report.
    pub(crate) fn event_detail(&self) -> String {
        let reason = || self.error.as_deref().unwrap_or("unknown");
        match (self.outcome, self.exit_code) {
            (TriggerOutcome::Succeeded, None) => "ok".to_string(),
            (TriggerOutcome::Interrupted, _) => "killed: the run was interrupted".to_string(),
            (TriggerOutcome::KilledByDuration, _) => "killed: --duration reached".to_string(),
            (_, Some(code)) => format!("exit code {code}"),
            (TriggerOutcome::NotStarted, None) => format!("could not start: {}", reason()),
            (_, None) => format!("failed: {}", reason()),
        }
    }

    /// The last line of the stderr tail, which is where tools say why they failed.
    pub fn last_stderr_line(&self) -> Option<&str> {
        self.stderr_tail
            .as_deref()
            .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()))
    }
}

impl fmt::Display for TriggerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let command = &self.command;
        match self.outcome {
            TriggerOutcome::Succeeded => write!(f, "{command} succeeded")?,
            TriggerOutcome::Failed => match self.exit_code {
                Some(code) => write!(f, "{command} failed with exit code {code}")?,
                None => write!(f, "{command} failed")?,
            },
            TriggerOutcome::KilledByDuration => write!(
                f,
                "{command} was killed: the run's duration ran out before it finished"
            )?,
            TriggerOutcome::Interrupted => {
                write!(f, "{command} was killed: the run was interrupted")?
            }
            TriggerOutcome::NotStarted => write!(f, "{command} could not start")?,
        }
        if let Some(reason) = self.error.as_deref().or_else(|| {
            (self.outcome != TriggerOutcome::Succeeded)
                .then(|| self.last_stderr_line())
                .flatten()
        }) {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// Where a trigger command's output goes: the prober's stderr, `trigger.log`, and the
/// kept tail of its stderr.
#[derive(Clone)]
pub(crate) struct OutputRelay {
    log: Option<Arc<Mutex<std::fs::File>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl OutputRelay {
    /// A relay that also writes `trigger.log` into `dir` when there is one; a log that
    /// cannot be created is said once and the output still reaches stderr.
    pub(crate) fn new(dir: Option<&Path>) -> OutputRelay {
        let log = dir.and_then(|dir| {
            let path = dir.join(TRIGGER_LOG);
            match std::fs::File::create(&path) {
                Ok(file) => Some(Arc::new(Mutex::new(file))),
                Err(e) => {
                    eprintln!("rollprobe: cannot write {}: {e}", path.display());
                    None
                }
            }
        });
        OutputRelay {
            log,
            tail: Arc::default(),
        }
    }

    /// Relays `reader` line by line until it ends; `keep` keeps the last lines.
    pub(crate) async fn relay(self, reader: impl AsyncRead + Unpin, keep: bool) {
        let mut lines = BufReader::new(reader).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("trigger: {line}");
            if let Some(log) = &self.log {
                if let Ok(mut file) = log.lock() {
                    let _ = writeln!(file, "{line}");
                }
            }
            if keep {
                if let Ok(mut tail) = self.tail.lock() {
                    tail.push_back(line);
                    while tail.len() > TAIL_LINES {
                        tail.pop_front();
                    }
                }
            }
        }
    }

    /// The kept end of stderr, at most [`TAIL_BYTES`] (cut at a character boundary).
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let tail = self.tail.lock().ok()?;
        let text = tail.iter().cloned().collect::<Vec<_>>().join("\n");
        if text.trim().is_empty() {
            return None;
        }
        let mut start = text.len().saturating_sub(TAIL_BYTES);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        Some(text[start..].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_error_or_the_last_stderr_line() {
        let mut t = TriggerReport {
            command: "sh -c x".into(),
            outcome: TriggerOutcome::Failed,
            exit_code: Some(3),
            killed_by: None,
            error: None,
            stderr_tail: Some("first\nthe reason\n\n".into()),
        };
        assert_eq!(t.to_string(), "sh -c x failed with exit code 3: the reason");
        t.outcome = TriggerOutcome::Succeeded;
        t.exit_code = Some(0);
        assert_eq!(t.to_string(), "sh -c x succeeded");
        t.outcome = TriggerOutcome::NotStarted;
        t.error = Some("No such file or directory (os error 2)".into());
        assert_eq!(
            t.to_string(),
            "sh -c x could not start: No such file or directory (os error 2)"
        );
    }

    #[tokio::test]
    async fn a_relay_keeps_the_last_lines_and_writes_the_log() {
        let dir = std::env::temp_dir().join(format!("rollprobe-relay-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let relay = OutputRelay::new(Some(&dir));
        let text: String = (0..15).map(|i| format!("line {i}\n")).collect();
        relay.clone().relay(text.as_bytes(), true).await;
        let tail = relay.stderr_tail().unwrap();
        assert_eq!(tail.lines().count(), TAIL_LINES);
        assert!(tail.ends_with("line 14"), "{tail}");
        let log = std::fs::read_to_string(dir.join(TRIGGER_LOG)).unwrap();
        assert_eq!(log, text);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
