//! Markers on the prober's clock: the trigger's start and exit, marks from the
//! library or stdin, and rollout events from the lab or Kubernetes.
//!
//! Events share the samples' monotonic clock (ms since the start) so that an
//! outage window can name the latest event before it. They are few, so they are
//! kept in memory and also streamed to events.csv for `rollprobe report`.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Something that happened during the run, on the probe's clock.
///
/// ```
/// let e = probe_core::Event::new(1250.0, "pod_ready", "backend-1 10.244.0.7 v2");
/// assert_eq!(e.kind, "pod_ready");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it was observed, ms since the start.
    pub at_ms: f64,
    /// A short stable name: `trigger_start`, `trigger_exit`, `mark`, `pod_ready`, ...
    pub kind: String,
    /// Free text: the command, the exit code, the pod name ...
    pub detail: String,
    /// The source's own timestamp (e.g. Kubernetes' one-second resolution), if any.
    #[serde(default)]
    pub server_time: Option<String>,
}

impl Event {
    /// An event observed locally at `at_ms`.
    pub fn new(at_ms: f64, kind: impl Into<String>, detail: impl Into<String>) -> Event {
        Event {
            at_ms,
            kind: kind.into(),
            detail: detail.into(),
            server_time: None,
        }
    }
}

/// Appends events to events.csv (`at_ms,kind,detail,server_time`) as they happen,
/// flushing each one: they are rare and a killed run must keep them.
pub struct EventWriter {
    inner: csv::Writer<BufWriter<File>>,
}

impl EventWriter {
    /// Creates the file.
    pub fn create(path: &Path) -> io::Result<EventWriter> {
        let inner = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(BufWriter::new(File::create(path)?));
        let mut w = EventWriter { inner };
        w.inner
            .write_record(["at_ms", "kind", "detail", "server_time"])
            .map_err(io::Error::other)?;
        w.inner.flush()?;
        Ok(w)
    }

    /// Appends one event and flushes it to the file.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.inner.serialize(event).map_err(io::Error::other)?;
        // csv's flush also flushes the BufWriter beneath it.
        self.inner.flush()
    }
}

/// Reads events written by [`write_events`].
pub fn read_events(path: &Path) -> io::Result<Vec<Event>> {
    let mut r = csv::Reader::from_path(path).map_err(io::Error::other)?;
    r.deserialize()
        .collect::<Result<Vec<Event>, _>>()
        .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))
}
