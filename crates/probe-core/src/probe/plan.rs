//! The run's streams before it starts: one per [`VantagePoint`] and connection mode,
//! each with its own config, and the runtimes a probe makes to stand at a vantage
//! point. Planned before the clock starts, so a bad plan is refused before probing.

use std::sync::Arc;

use crate::config::{ConfigError, ProbeConfig, Target};
use crate::event::Vantage;
use crate::sample::StreamInfo;

use super::ProbeError;

/// A place to probe from: its name (the first half of its streams' names, e.g.
/// `client` or `pod1`), the URL a client there uses, and how a thread gets there.
///
/// ```
/// let local = probe_core::VantagePoint::local("http://127.0.0.1:8080/test/version");
/// assert_eq!(local.name, "local");
/// ```
#[derive(Clone)]
pub struct VantagePoint {
    /// The stream names' first half.
    pub name: String,
    /// The URL probed from there.
    pub url: String,
    /// Moves a thread there; `None` probes from this process's own network.
    pub vantage: Option<Arc<dyn Vantage>>,
}

impl VantagePoint {
    /// This machine, as it is.
    pub fn local(url: &str) -> VantagePoint {
        VantagePoint {
            name: "local".into(),
            url: url.to_string(),
            vantage: None,
        }
    }
}

/// The runtimes a probe made for itself, shut down in the background when dropped:
/// dropping a runtime inside async code (a probe dropped, or a start that failed
/// half-way) would panic.
#[derive(Default)]
pub(super) struct OwnRuntimes(pub(super) Vec<tokio::runtime::Runtime>);

impl Drop for OwnRuntimes {
    fn drop(&mut self) {
        for rt in self.0.drain(..) {
            rt.shutdown_background();
        }
    }
}

/// A runtime whose every thread has entered `vantage` for `url`.
///
/// A thread that cannot enter it must not open a socket from the host's own network
/// (the target's address could route somewhere real), so entering is tried once
/// before the runtime is built (an error the caller sees), and a worker thread that
/// still fails later aborts the process rather than probe from the wrong place.
pub(super) fn vantage_runtime(
    vantage: Arc<dyn Vantage>,
    url: &str,
) -> Result<tokio::runtime::Runtime, ProbeError> {
    let check = vantage.clone();
    let check_url = url.to_string();
    std::thread::spawn(move || check.enter(&check_url))
        .join()
        .map_err(|_| ProbeError::Internal("entering the vantage point panicked".into()))?
        .map_err(|e| {
            ProbeError::Internal(format!("cannot probe from where {url} is reached: {e}"))
        })?;
    let url = url.to_string();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rollprobe-probe")
        .enable_all()
        .on_thread_start(move || {
            if let Err(e) = vantage.enter(&url) {
                eprintln!(
                    "rollprobe: a probe thread cannot reach {url} from its vantage point: {e}"
                );
                std::process::abort();
            }
        })
        .build()
        .map_err(|e| ProbeError::Internal(format!("cannot start the probe runtime: {e}")))
}

/// The streams of a run: one per vantage point and connection mode.
pub(super) struct StreamPlan {
    /// The run's target: the first point's URL.
    pub(super) target: String,
    pub(super) streams: Vec<PlannedStream>,
}

pub(super) struct PlannedStream {
    pub(super) info: StreamInfo,
    /// The run's config with this stream's target, vantage and single connection mode.
    pub(super) config: Arc<ProbeConfig>,
    /// Index of its vantage point.
    pub(super) point: usize,
}

impl StreamPlan {
    pub(super) fn new(
        config: &ProbeConfig,
        points: &[VantagePoint],
    ) -> Result<StreamPlan, ProbeError> {
        let first = points
            .first()
            .ok_or_else(|| ProbeError::Internal("a probe needs a vantage point".into()))?;
        let mut streams: Vec<PlannedStream> = Vec::new();
        for (i, point) in points.iter().enumerate() {
            let target = Target::parse(&point.url)?;
            for mode in config.connection.stream_modes() {
                let mut info = StreamInfo::new(&point.name, mode);
                if streams.iter().any(|s| s.info.name == info.name) {
                    return Err(ConfigError::Value {
                        name: "vantage point",
                        value: point.name.clone(),
                        reason: "is given twice; each vantage point needs its own name".into(),
                    }
                    .into());
                }
                if point.url != first.url {
                    info.target = Some(point.url.clone());
                }
                let mut c = config.clone();
                c.target = target.clone();
                c.connection = mode;
                c.vantage = point.name.clone();
                streams.push(PlannedStream {
                    info,
                    config: Arc::new(c),
                    point: i,
                });
            }
        }
        Ok(StreamPlan {
            target: first.url.clone(),
            streams,
        })
    }
}

/// A run id that is unique enough to join logs by: the start time and the process.
pub(super) fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:010x}", mixed & 0xff_ffff_ffff)
}
