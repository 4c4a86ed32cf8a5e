//! The open-loop schedule: request `i` is due at `t0 + i/rate` whatever happened
//! to request `i-1`.
//!
//! A prober that waits for slow answers before sending the next request measures
//! its own patience, not the outage (coordinated omission). Each stream's schedule
//! and its requests live on one OS thread of their own, in a current-thread tokio
//! runtime: the schedule is a task that waits on an absolute high-resolution timer
//! (a `timerfd` armed with `TFD_TIMER_ABSTIME` for the next due instant, registered
//! in the runtime's reactor), releases every tick that is due when it wakes, and
//! spawns their requests on the same thread. So a tick costs one wake-up, and the
//! request it releases starts without any cross-thread hand-off (a sleeping thread
//! that then wakes a runtime worker costs two, and the earlier design measured
//! more than half of its CPU in that kernel work). An async timer alone would not
//! do: tokio's timers round to the millisecond.
//!
//! A cap on requests in flight protects the prober; a tick over the cap is
//! recorded as `skipped`, never dropped, and so is a tick the prober could only
//! send far behind its due time (it is overloaded).
//!
//! Finished samples are handed to a [`SampleSink`] in batches, at most
//! [`HAND_OVER_EVERY`] after they finished: at a tick's own wake-up when the next
//! tick would come too late, on a wake-up of their own only at rates under 4 req/s.
//! So the recorder, on another thread, is woken a few times a second rather than
//! once per request. A
//! batch is also handed over as soon as [`HAND_OVER_BATCH`] samples wait: when the
//! prober has one core, the recorder's work on a batch is time the schedule cannot
//! run, so a batch must be small enough (well under a millisecond of recording)
//! that no tick waits behind it. A request counts as in flight until its sample has
//! been handed over. The schedule knows nothing of the recorder behind the sink.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

use crate::clock::{round_ms, Clock};
use crate::config::{ExecutorChoice, ProbeConfig};
use crate::event::Vantage;
use crate::execute::{Attempt, Executor};
use crate::outcome::Outcome;
use crate::sample::Sample;

mod uring;

/// Where the schedule hands finished samples, a batch at a time.
pub(crate) type SampleSink = Arc<dyn Fn(Vec<Sample>) + Send + Sync>;

/// The longest a finished sample waits before it is handed to the sink.
pub(crate) const HAND_OVER_EVERY: Duration = Duration::from_millis(250);

/// Hand samples over at once when this many are waiting. The recorder spends a few
/// microseconds on a sample; 1000 at once (100 ms at 10,000 req/s) held a single
/// core for 2 ms and made every tick due meanwhile late.
pub(crate) const HAND_OVER_BATCH: usize = 64;

/// The longest the standing timer's period (see [`run`]) can be.
const STANDING_TIMER: Duration = Duration::from_secs(1);

/// Sleeps longer than this also wait for [`Schedule::stop`]; shorter ones end soon
/// enough, and skip the cost of waiting for two things.
const LONG_SLEEP: Duration = Duration::from_millis(20);

/// Tasks the runtime polls before it looks at its timer and sockets again while it
/// is busy (tokio's default is 61): a due tick waits for at most this many polls.
const EVENT_INTERVAL: u32 = 16;

/// The state the schedule thread shares with its request tasks and the probe.
pub(crate) struct Schedule {
    pub(crate) config: Arc<ProbeConfig>,
    pub(crate) clock: Clock,
    /// Set by the probe to end the schedule.
    pub(crate) stop: AtomicBool,
    /// Requests sent whose sample has not been handed to the sink yet.
    pub(crate) in_flight: AtomicUsize,
    /// Set by the schedule when its duration is over.
    pub(crate) done: AtomicBool,
    pub(crate) done_notify: Notify,
    /// Wakes a schedule that sleeps until a distant tick, when `stop` is set.
    stop_notify: Notify,
    /// The io_uring executor's eventfd, written by `stop` to wake it (it sleeps in
    /// the kernel, not in the runtime). Held locked while written, so the loop never
    /// closes it under a writer.
    wake_fd: Mutex<Option<RawFd>>,
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
            stop_notify: Notify::new(),
            wake_fd: Mutex::new(None),
        }
    }

    /// Sets (or, before it is closed, clears) the eventfd that `stop` writes.
    fn set_wake_fd(&self, fd: Option<RawFd>) {
        *self.wake_fd.lock().unwrap_or_else(|p| p.into_inner()) = fd;
    }

    /// Ends the schedule: it releases no tick once it has seen this, and a schedule
    /// that sleeps until its next tick wakes now.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        // A permit is kept when the schedule is not waiting yet.
        self.stop_notify.notify_one();
        if let Some(fd) = *self.wake_fd.lock().unwrap_or_else(|p| p.into_inner()) {
            let one = 1u64;
            // SAFETY: writes 8 bytes to an eventfd that stays open while the lock is held.
            unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
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

impl RequestIds {
    /// The `x-request-id` of request `seq`, when request ids are on.
    fn request_id(&self, seq: u64) -> Option<String> {
        self.enabled.then(|| format!("{}{seq}", self.prefix))
    }
}

/// Where a stream's requests leave from: its thread enters `vantage` for `url`
/// before it opens any socket.
pub(crate) struct StreamVantage {
    pub(crate) vantage: Arc<dyn Vantage>,
    pub(crate) url: String,
}

/// A stream's thread, started and ready to send (its runtime and timer exist, and it
/// stands at its vantage point), waiting for [`ReadyStream::go`].
///
/// Threads are made ready before the run's clock starts, so that building them (a
/// thread, a runtime, a timer, entering a namespace) is not counted against the first
/// ticks: at 10,000 req/s a first tick sent a millisecond late is a burst of ten
/// requests that each open a connection.
pub(crate) struct ReadyStream {
    thread: std::thread::JoinHandle<()>,
    go: std::sync::mpsc::Sender<Go>,
    /// The executor the stream will run.
    pub(crate) ran: ExecutorRan,
}

/// Which executor a stream runs: io_uring, or the tokio one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecutorRan {
    pub(crate) uring: bool,
    /// Why not io_uring, when not.
    pub(crate) why: Option<String>,
    /// Nothing to tell the user: they asked for the tokio executor, or it is the
    /// default for the stream's connection mode.
    pub(crate) quiet: bool,
}

impl ExecutorRan {
    fn tokio(why: impl Into<String>, quiet: bool) -> ExecutorRan {
        ExecutorRan {
            uring: false,
            why: Some(why.into()),
            quiet,
        }
    }
}

/// The environment variable that forces an executor: `tokio`, or `io_uring` (the
/// default where it works).
pub const EXECUTOR_ENV: &str = "ROLLPROBE_EXECUTOR";

/// Whether `executor`'s requests can go through io_uring (the target's addresses
/// then), or why not. Whether the kernel allows a ring is asked on the stream's thread.
fn uring_plan(executor: &Executor) -> Result<Vec<std::net::SocketAddr>, ExecutorRan> {
    let config = executor.config();
    if config.executor == ExecutorChoice::Tokio {
        return Err(ExecutorRan::tokio(
            "asked for (ExecutorChoice::Tokio)",
            true,
        ));
    }
    match std::env::var(EXECUTOR_ENV).ok().as_deref() {
        None | Some("") | Some("auto") | Some("io_uring") => {}
        Some("tokio") => {
            return Err(ExecutorRan::tokio(
                format!("asked for ({EXECUTOR_ENV}=tokio)"),
                true,
            ))
        }
        Some(other) => {
            return Err(ExecutorRan::tokio(
                format!("{EXECUTOR_ENV}={other} is neither tokio nor io_uring"),
                false,
            ))
        }
    }
    if config.target.https {
        return Err(ExecutorRan::tokio(
            "the target is https (TLS runs on the tokio executor)",
            false,
        ));
    }
    executor.addresses_without_dns().ok_or_else(|| {
        ExecutorRan::tokio(
            "the target's host is a name, resolved for each connection",
            false,
        )
    })
}

/// What a ready stream thread needs to run its schedule.
struct Go {
    shared: Arc<Schedule>,
    executor: Arc<Executor>,
    ids: RequestIds,
    sink: SampleSink,
}

/// Starts a stream's thread (entering `vantage` first, when given) for `executor`'s
/// requests and returns once it is ready, with the executor it will run (io_uring
/// where it works). Dropped without [`ReadyStream::go`], the thread ends at once.
pub(crate) fn prepare(
    vantage: Option<StreamVantage>,
    executor: &Executor,
) -> io::Result<ReadyStream> {
    let plan = uring_plan(executor);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<ExecutorRan>>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<Go>();
    let thread = std::thread::Builder::new()
        .name("rollprobe-schedule".into())
        .spawn(move || {
            let runtime = match stream_runtime(vantage.as_ref()) {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            // The ring is made here, where the requests will leave from.
            let (ring, ran) = match plan {
                Ok(addrs) => match uring::Ring::new() {
                    Ok(ring) => (
                        Some((ring, addrs)),
                        ExecutorRan {
                            uring: true,
                            why: None,
                            quiet: false,
                        },
                    ),
                    Err(why) => (None, ExecutorRan::tokio(why, false)),
                },
                Err(ran) => (None, ran),
            };
            if let Some((ring, addrs)) = ring {
                let _ = ready_tx.send(Ok(ran));
                if let Ok(go) = go_rx.recv() {
                    uring::run(ring, go.shared, go.executor, go.ids, go.sink, addrs);
                }
                return;
            }
            let timer = match runtime.block_on(async { DueTimer::new() }) {
                Ok(t) => t,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(ran));
            if let Ok(go) = go_rx.recv() {
                runtime.block_on(run(go.shared, go.executor, timer, go.ids, go.sink));
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(ran)) => Ok(ReadyStream {
            thread,
            go: go_tx,
            ran,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other(
            "the schedule thread ended before it started",
        )),
    }
}

impl ReadyStream {
    /// Starts the schedule: its first tick is due at `shared.clock`'s origin. The
    /// thread ends when the schedule is over (its duration, or `shared.stop`) and
    /// every request it sent has been handed to `sink`, or their timeouts (and a
    /// margin) have passed.
    pub(crate) fn go(
        self,
        shared: Arc<Schedule>,
        executor: Arc<Executor>,
        ids: RequestIds,
        sink: SampleSink,
    ) -> std::thread::JoinHandle<()> {
        // A thread that has ended already (it cannot: it waits for this) would make
        // the send fail; joining it then returns at once.
        let _ = self.go.send(Go {
            shared,
            executor,
            ids,
            sink,
        });
        self.thread
    }
}

/// The stream's own current-thread runtime, on the calling thread, which has entered
/// `vantage`; so does every thread the runtime starts (its blocking pool resolves
/// names), or the process aborts rather than probe from the wrong place.
fn stream_runtime(vantage: Option<&StreamVantage>) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    // Sockets and timers only: the signal and process drivers would look for
    // exited children on every wake-up.
    builder
        .enable_io()
        .enable_time()
        .event_interval(EVENT_INTERVAL);
    if let Some(v) = vantage {
        v.vantage.enter(&v.url).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot probe from where {} is reached: {e}", v.url),
            )
        })?;
        let (vantage, url) = (v.vantage.clone(), v.url.clone());
        builder.on_thread_start(move || {
            if let Err(e) = vantage.enter(&url) {
                eprintln!(
                    "rollprobe: a probe thread cannot reach {url} from its vantage point: {e}"
                );
                std::process::abort();
            }
        });
    }
    builder.build()
}

/// An absolute CLOCK_MONOTONIC timer (`timerfd`, `TFD_TIMER_ABSTIME`) in the
/// runtime's reactor: it wakes the thread at the due instant, to the microsecond,
/// with no relative-sleep drift.
struct DueTimer {
    fd: AsyncFd<OwnedFd>,
    monotonic: Monotonic,
}

/// `Instant`s as CLOCK_MONOTONIC nanoseconds, which the kernel's absolute timers take
/// (`Instant` does not expose its raw value).
#[derive(Clone, Copy)]
struct Monotonic {
    anchor: Instant,
    /// CLOCK_MONOTONIC at `anchor`, ns.
    anchor_ns: i128,
}

impl Monotonic {
    fn now() -> Monotonic {
        let anchor = Instant::now();
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes one timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let anchor_ns = i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec);
        Monotonic { anchor, anchor_ns }
    }

    /// `at` on CLOCK_MONOTONIC: seconds and nanoseconds, never 0 (which would disarm
    /// a timerfd: one nanosecond is "already due").
    fn at(&self, at: Instant) -> (u64, u32) {
        let ns = if at >= self.anchor {
            self.anchor_ns + (at - self.anchor).as_nanos() as i128
        } else {
            self.anchor_ns - (self.anchor - at).as_nanos() as i128
        };
        let ns = ns.max(1);
        ((ns / 1_000_000_000) as u64, (ns % 1_000_000_000) as u32)
    }
}

impl DueTimer {
    fn new() -> io::Result<DueTimer> {
        // SAFETY: plain syscall; the fd is checked and then owned.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the timerfd is owned by the AsyncFd and closed only when it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE)? };
        Ok(DueTimer {
            fd,
            monotonic: Monotonic::now(),
        })
    }

    /// Sleeps until `at` (returns at once if it has passed).
    async fn sleep_until(&self, at: Instant) -> io::Result<()> {
        let (sec, nsec) = self.monotonic.at(at);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: sec as libc::time_t,
                tv_nsec: nsec as libc::c_long,
            },
        };
        // SAFETY: the fd is a timerfd owned by `self`; `spec` is a valid itimerspec.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut guard = self.fd.readable().await?;
            // Arming reset the expiration count, so the usual wake-up needs no read
            // (a system call per tick less). Only a readiness left over from an
            // earlier arming wakes before `at`; the read tells it from a real expiry.
            if Instant::now() >= at {
                guard.clear_ready();
                return Ok(());
            }
            let mut expirations = 0u64;
            // SAFETY: reads 8 bytes into a u64 from the timerfd.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut expirations as *mut u64).cast(),
                    8,
                )
            };
            if n == 8 {
                // One read drains a timerfd: the next wait must not find it ready.
                guard.clear_ready();
                return Ok(());
            }
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::WouldBlock {
                guard.clear_ready();
                continue;
            }
            return Err(err);
        }
    }
}

/// Samples finished on the stream's thread, waiting to be handed to the sink.
#[derive(Default)]
struct Pending {
    samples: Mutex<Vec<Sample>>,
    /// When the oldest waiting sample finished.
    oldest: Mutex<Option<Instant>>,
}

impl Pending {
    fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.is_empty() {
            *self.oldest.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        }
        samples.push(sample);
    }

    /// When the oldest waiting sample finished, if any waits.
    fn oldest(&self) -> Option<Instant> {
        if self
            .samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
        {
            return None;
        }
        *self.oldest.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands the waiting samples to `sink` if the oldest must go before `next_wake`
    /// (the schedule's next wake-up), if a batch is full, or always when there is no
    /// next wake-up; each one ends its request's time in flight.
    fn hand_over(&self, shared: &Schedule, sink: &SampleSink, next_wake: Option<Instant>) {
        let batch = {
            let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
            if samples.is_empty() {
                return;
            }
            let oldest = *self.oldest.lock().unwrap_or_else(|p| p.into_inner());
            let must_go = match (oldest, next_wake) {
                (Some(t), Some(next)) => t + HAND_OVER_EVERY <= next,
                _ => true,
            };
            if !(must_go || samples.len() >= HAND_OVER_BATCH) {
                return;
            }
            std::mem::take(&mut *samples)
        };
        let n = batch.len();
        sink(batch);
        shared.in_flight.fetch_sub(n, Ordering::AcqRel);
    }
}

/// The schedule task: runs until its duration is over or `shared.stop` is set, then
/// waits for the requests it sent (bounded by their timeouts) and hands over the last
/// samples.
async fn run(
    shared: Arc<Schedule>,
    executor: Arc<Executor>,
    timer: DueTimer,
    ids: RequestIds,
    sink: SampleSink,
) {
    let ids = Arc::new(ids);
    let pending = Arc::new(Pending::default());
    let origin = shared.clock.origin();
    let rate = shared.config.rate;
    let end = shared.config.duration.map(|d| origin + d);
    let max_in_flight = shared.config.effective_max_in_flight();
    // A tick this late is shed (recorded as skipped) rather than sent in a burst
    // that an overloaded prober cannot afford.
    let shed_after = Duration::from_secs_f64(10.0 / rate).max(Duration::from_millis(50));
    // tokio's time driver writes its eventfd whenever a timer is set earlier than its
    // next wake-up (it cannot tell that its own thread is awake). With one request in
    // flight, each request's timeout would be such a timer: a self-wake per request.
    // A standing timer that is always due sooner keeps that to a few a second.
    let c = &shared.config;
    let standing_period =
        (c.timeout.min(c.connect_timeout) / 2).clamp(Duration::from_millis(100), STANDING_TIMER);
    let standing = tokio::spawn(async move {
        loop {
            tokio::time::sleep(standing_period).await;
        }
    });

    let mut seq: u64 = 0;
    'ticks: loop {
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        // Every tick due by now goes out in this wake-up.
        let now = Instant::now();
        loop {
            let due = origin + Duration::from_secs_f64(seq as f64 / rate);
            if end.is_some_and(|end| due >= end) {
                break 'ticks;
            }
            if due > now {
                break;
            }
            release(
                &shared,
                &executor,
                &ids,
                &pending,
                seq,
                due,
                max_in_flight,
                shed_after,
            );
            seq += 1;
        }
        let due = origin + Duration::from_secs_f64(seq as f64 / rate);
        let now = Instant::now();
        // While requests are out, look again within HAND_OVER_EVERY: their samples
        // must not wait for a distant tick.
        let mut wake = due;
        if shared.in_flight.load(Ordering::Acquire) > pending_len(&pending) {
            wake = wake.min(now + HAND_OVER_EVERY);
        }
        // What it keeps is still within HAND_OVER_EVERY of its end at `wake`, the
        // next look.
        pending.hand_over(&shared, &sink, Some(wake));
        if due <= now {
            // Due already: let the requests just spawned start, then go on.
            tokio::task::yield_now().await;
            continue;
        }
        let wake = wake.max(now);
        let slept = if wake.saturating_duration_since(now) > LONG_SLEEP {
            // A long sleep (a low rate) also ends when the probe stops.
            tokio::select! {
                slept = timer.sleep_until(wake) => slept,
                _ = shared.stop_notify.notified() => Ok(()),
            }
        } else {
            timer.sleep_until(wake).await
        };
        if let Err(e) = slept {
            // A timerfd that stops working is a kernel bug; fall back to tokio's
            // millisecond timer rather than stop measuring.
            eprintln!("rollprobe: the schedule's timer failed ({e}); using a coarser one");
            tokio::select! {
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = shared.stop_notify.notified() => {}
            }
        }
    }
    shared.done.store(true, Ordering::Release);
    shared.done_notify.notify_waiters();
    // Requests end by their own timeouts; wait for them, with a margin.
    let c = &shared.config;
    let limit = Instant::now() + c.connect_timeout + c.timeout + Duration::from_secs(2);
    while shared.in_flight.load(Ordering::Acquire) > pending_len(&pending) && Instant::now() < limit
    {
        pending.hand_over(
            &shared,
            &sink,
            Some(Instant::now() + Duration::from_millis(5)),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pending.hand_over(&shared, &sink, None);
    standing.abort();
}

fn pending_len(pending: &Pending) -> usize {
    pending
        .samples
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .len()
}

/// Sends tick `seq` (due at `due`), or records it as skipped when the prober is over
/// its in-flight cap or too far behind.
#[allow(clippy::too_many_arguments)]
fn release(
    shared: &Arc<Schedule>,
    executor: &Arc<Executor>,
    ids: &Arc<RequestIds>,
    pending: &Arc<Pending>,
    seq: u64,
    due: Instant,
    max_in_flight: usize,
    shed_after: Duration,
) {
    let intended_ms = round_ms(shared.clock.ms_at(due));
    let behind = Instant::now().saturating_duration_since(due);
    // A finished request whose sample waits for its hand-over is not in flight for
    // the cap: it holds no connection.
    let sending = shared
        .in_flight
        .load(Ordering::Acquire)
        .saturating_sub(pending_len(pending));
    if sending >= max_in_flight || behind > shed_after {
        let sample = if behind > shed_after {
            shed_sample(&ids.stream, seq, intended_ms, &shared.clock, behind)
        } else {
            skipped_sample(&ids.stream, seq, intended_ms, &shared.clock)
        };
        // Through the batch like any sample (an overloaded prober skips many ticks),
        // counted in flight until handed over, as every waiting sample is.
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        pending.push(sample);
        return;
    }
    shared.in_flight.fetch_add(1, Ordering::AcqRel);
    let shared = shared.clone();
    let executor = executor.clone();
    let ids = ids.clone();
    let pending = pending.clone();
    tokio::spawn(async move {
        let sent = Instant::now();
        // Started too late (the thread is overloaded): shed it rather than add a
        // connection to a backlog that only grows.
        if sent.saturating_duration_since(due) > shed_after {
            let behind = sent.saturating_duration_since(due);
            pending.push(shed_sample(
                &ids.stream,
                seq,
                intended_ms,
                &shared.clock,
                behind,
            ));
            return;
        }
        let request_id = ids.request_id(seq);
        let attempt = executor.execute(request_id.as_deref()).await;
        pending.push(sent_sample(
            &shared.clock,
            &ids.stream,
            seq,
            intended_ms,
            sent,
            request_id,
            attempt,
        ));
    });
}

/// The sample of a request that was sent at `sent`, whichever executor sent it.
fn sent_sample(
    clock: &Clock,
    stream: &str,
    seq: u64,
    intended_ms: f64,
    sent: Instant,
    request_id: Option<String>,
    attempt: Attempt,
) -> Sample {
    Sample {
        sent_ms: Some(round_ms(clock.ms_at(sent))),
        wall_time: clock.wall_at(intended_ms),
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
        proxy: attempt.proxy,
        ..Sample::new(stream, seq, intended_ms, attempt.outcome)
    }
}

fn skipped_sample(stream: &str, seq: u64, intended_ms: f64, clock: &Clock) -> Sample {
    Sample {
        wall_time: clock.wall_at(intended_ms),
        error: Some("not sent: max in flight reached".into()),
        ..Sample::new(stream, seq, intended_ms, Outcome::Skipped)
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
