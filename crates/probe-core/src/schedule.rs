//! The open-loop schedule: request `i` is due at `t0 + i/rate` whatever happened
//! to request `i-1`.
//!
//! A prober that waits for slow answers before sending the next request measures
//! its own patience, not the outage (coordinated omission). The schedule runs on
//! its own OS thread, because a thread sleeping in `nanosleep` wakes within tens
//! of microseconds, while an async timer rounds to the millisecond; each due tick
//! becomes a task on the tokio runtime that runs one [`Executor`] request. A cap
//! on requests in flight protects the prober; a tick over the cap is recorded as
//! `skipped`, never dropped.
//!
//! The schedule hands every finished [`Sample`] to a [`SampleSink`]; it knows
//! nothing of the recorder behind it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::clock::{round_ms, Clock};
use crate::config::ProbeConfig;
use crate::execute::Executor;
use crate::outcome::Outcome;
use crate::sample::Sample;

/// Where the schedule hands each finished sample.
pub(crate) type SampleSink = Arc<dyn Fn(Sample) + Send + Sync>;

/// The state the schedule thread shares with its request tasks and the probe.
pub(crate) struct Schedule {
    pub(crate) config: Arc<ProbeConfig>,
    pub(crate) clock: Clock,
    /// Set by the probe to end the schedule.
    pub(crate) stop: AtomicBool,
    pub(crate) in_flight: AtomicUsize,
    /// Set by the schedule when its duration is over.
    pub(crate) done: AtomicBool,
    pub(crate) done_notify: Notify,
}

impl Schedule {
    pub(crate) fn new(config: Arc<ProbeConfig>, clock: Clock) -> Schedule {
        Schedule {
            config,
            clock,
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            done_notify: Notify::new(),
        }
    }
}

/// How a stream names its samples and requests.
pub(crate) struct RequestIds {
    /// `<run id>-<stream>-`: the request id is this and the sequence number.
    pub(crate) prefix: String,
    pub(crate) stream: String,
    pub(crate) enabled: bool,
}

/// Runs the schedule until its duration is over or `shared.stop` is set; call it on
/// a thread of its own.
pub(crate) fn run(
    shared: Arc<Schedule>,
    executor: Arc<Executor>,
    runtime: tokio::runtime::Handle,
    ids: RequestIds,
    sink: SampleSink,
) {
    let ids = Arc::new(ids);
    let origin = shared.clock.origin();
    let rate = shared.config.rate;
    let end = shared.config.duration.map(|d| origin + d);
    let max_in_flight = shared.config.effective_max_in_flight();
    // A tick this late is shed (recorded as skipped) rather than sent in a burst
    // that an overloaded prober cannot afford.
    let shed_after = Duration::from_secs_f64(10.0 / rate).max(Duration::from_millis(50));
    let mut seq: u64 = 0;
    'ticks: loop {
        let due = origin + Duration::from_secs_f64(seq as f64 / rate);
        if end.is_some_and(|end| due >= end) {
            break;
        }
        loop {
            if shared.stop.load(Ordering::Acquire) {
                break 'ticks;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            // Short naps so that stop() is seen quickly even at low rates.
            std::thread::sleep((due - now).min(Duration::from_millis(50)));
        }
        let intended_ms = round_ms(shared.clock.ms_at(due));
        let behind = Instant::now().saturating_duration_since(due);
        if shared.in_flight.load(Ordering::Acquire) >= max_in_flight || behind > shed_after {
            let sample = if behind > shed_after {
                shed_sample(&ids.stream, seq, intended_ms, &shared.clock, behind)
            } else {
                skipped_sample(&ids.stream, seq, intended_ms, &shared.clock)
            };
            sink(sample);
        } else {
            shared.in_flight.fetch_add(1, Ordering::AcqRel);
            let shared = shared.clone();
            let executor = executor.clone();
            let ids = ids.clone();
            let sink = sink.clone();
            runtime.spawn(async move {
                let sent = Instant::now();
                // Started too late (the runtime is overloaded): shed it rather than
                // add a connection to a backlog that only grows.
                if sent.saturating_duration_since(due) > shed_after {
                    shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                    let behind = sent.saturating_duration_since(due);
                    let sample = shed_sample(&ids.stream, seq, intended_ms, &shared.clock, behind);
                    sink(sample);
                    return;
                }
                let request_id = ids.enabled.then(|| format!("{}{seq}", ids.prefix));
                let attempt = executor.execute(request_id.as_deref()).await;
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
                let sample = Sample {
                    stream: ids.stream.clone(),
                    seq,
                    intended_ms,
                    sent_ms: Some(round_ms(shared.clock.ms_at(sent))),
                    wall_time: shared.clock.wall_at(intended_ms),
                    outcome: attempt.outcome,
                    errno: attempt.errno,
                    errno_name: attempt.errno_name().map(str::to_string),
                    status: attempt.status,
                    version: attempt.version,
                    pod: attempt.pod,
                    request_id,
                    connect_ms: attempt.connect_ms.map(round_ms),
                    syn_retransmits: attempt.syn_retransmits,
                    ttfb_ms: attempt.ttfb_ms.map(round_ms),
                    total_ms: Some(round_ms(attempt.total_ms)),
                    connection: Some(if attempt.reused { "reused" } else { "new" }.to_string()),
                    error: attempt.error,
                };
                sink(sample);
            });
        }
        seq += 1;
    }
    shared.done.store(true, Ordering::Release);
    shared.done_notify.notify_waiters();
}

fn skipped_sample(stream: &str, seq: u64, intended_ms: f64, clock: &Clock) -> Sample {
    Sample {
        stream: stream.to_string(),
        seq,
        intended_ms,
        sent_ms: None,
        wall_time: clock.wall_at(intended_ms),
        outcome: Outcome::Skipped,
        errno: None,
        errno_name: None,
        status: None,
        version: None,
        pod: None,
        request_id: None,
        connect_ms: None,
        syn_retransmits: None,
        ttfb_ms: None,
        total_ms: None,
        connection: None,
        error: Some("not sent: max in flight reached".into()),
    }
}

/// A tick shed because the prober had fallen this far behind its schedule:
/// sending it now, in a burst with the others, would only deepen the overload.
fn shed_sample(
    stream: &str,
    seq: u64,
    intended_ms: f64,
    clock: &Clock,
    behind: Duration,
) -> Sample {
    let mut sample = skipped_sample(stream, seq, intended_ms, clock);
    sample.error = Some(format!(
        "not sent: the prober was {} ms behind its schedule",
        behind.as_millis()
    ));
    sample
}
