//! The live progress line on stderr: only for a terminal, and never in --quiet.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use probe_core::{EventKind, ProbeHandle};
use tokio::io::AsyncBufReadExt;

/// A progress line that follows a probe until dropped.
pub struct Progress {
    bar: Option<ProgressBar>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts the line if stderr is a terminal and `quiet` is off.
    pub fn start(probe: ProbeHandle, label: &str, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                task: None,
            };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_string());
        let shown = bar.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let mut last_sent = 0u64;
            loop {
                tick.tick().await;
                let live = probe.live();
                let rate = (live.sent - last_sent) * 4;
                last_sent = live.sent;
                let failures: Vec<String> = live
                    .by_kind
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                shown.set_message(format!(
                    "{:>6.1}s  sent {}  ok {}{}{}  version {}  {rate}/s",
                    probe.now_ms() / 1000.0,
                    live.sent,
                    live.ok,
                    if failures.is_empty() { "" } else { "  " },
                    failures.join("  "),
                    live.version.as_deref().unwrap_or("-"),
                ));
                shown.tick();
            }
        });
        Progress {
            bar: Some(bar),
            task: Some(task),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// Holds the progress line that a rollout's observer starts, so the command can end it
/// when the rollout returns.
#[derive(Clone, Default)]
pub struct ProgressSlot(std::sync::Arc<std::sync::Mutex<Option<Progress>>>);

impl ProgressSlot {
    pub(crate) fn set(&self, progress: Progress) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(progress);
    }

    /// Ends the line.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// What every command that probes shows while it runs: the progress line, and marks
/// read from stdin.
pub fn observe(
    label: String,
    quiet: bool,
    marks_stdin: bool,
) -> (impl FnOnce(ProbeHandle) + Send, ProgressSlot) {
    let slot = ProgressSlot::default();
    let filled = slot.clone();
    let observer = move |handle: ProbeHandle| {
        filled.set(Progress::start(handle.clone(), &label, quiet));
        if marks_stdin {
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let line = line.trim();
                    if !line.is_empty() {
                        handle.emit(EventKind::Mark, line);
                    }
                }
            });
        }
    };
    (observer, slot)
}
