//! The io_uring executor: the kernel keeps the schedule.
//!
//! The tokio executor wakes the process twice per request: once at the tick (to send)
//! and once for the answer, and each wake-up costs several system calls (the timer,
//! the poll, the send, the read). Here each request is handed to the kernel a little
//! ahead of its due time as a chain in one io_uring: an absolute `IORING_OP_TIMEOUT`
//! at the due instant, linked to the request's `SEND` on a connection reserved for it
//! (kept alive and known idle), or to `CONNECT`, `SEND` and `RECV` on a socket made in
//! user space (a new connection). The kernel's high-resolution timer fires the chain;
//! the thread, asleep in `io_uring_enter`, runs the chain's work in the kernel and
//! returns with the send's completion: one system call per wake-up, not four. It
//! parses answers (with the same code as the tokio executor, `http1.rs`) and hands
//! over samples.
//!
//! Why `COOP_TASKRUN` and not `DEFER_TASKRUN`: the kernel ends a wait whenever a
//! timeout completes, whatever the number of completions asked for. With deferred task
//! work the expiry returned to user space with nothing done and the `SEND` ran only at
//! the next `io_uring_enter`: a third system call per request and a later send
//! (`strace -c` at 1000 req/s: 2.9 `io_uring_enter` per request, 1.9 now). With
//! cooperative task work the expiry's work, the `SEND` included, runs before the wait
//! returns.
//!
//! The timeout is a plain link with `IORING_TIMEOUT_ETIME_SUCCESS`: without that flag a
//! timeout that expires "fails" with `-ETIME` and cancels a soft-linked chain, and a
//! hard link would still send after a timeout that was cancelled (a stop, or a
//! connection found closed before its tick). With it, an expiry starts the chain and
//! a cancel ends it. A kept-alive request's timeout posts no completion of its own
//! (`CQE_SKIP_SUCCESS`): its `SEND`'s completion times it. A new connection's posts
//! one, which times its connect.
//!
//! Only a short horizon is submitted ahead (a millisecond; up to two periods at low
//! rates when a connection is ready for the tick), so a stop is prompt and the in-flight cap counts what is really out; only a
//! connection known idle takes a request: every open connection has a `RECV` posted,
//! so a server that closes it or sends anything unasked is seen, and a request already
//! reserved on it is moved to a new connection. Errors are the completions' negative
//! errnos, named by the same classification as the tokio executor's, so every kind
//! comes out the same. The SYN retransmissions of a connect are read with `TCP_INFO`
//! after its completion.
//!
//! The send time of a request on a kept-alive connection is when its `SEND`
//! completion was harvested (the kernel had sent it by then); a new connection's is
//! when its timer's completion was harvested (or its submission, when that came late),
//! as the tokio executor's is the start of its connect. Both are measured, not the due
//! instant: the thread that runs the timer's work in the kernel issues the `SEND` or
//! `CONNECT` there and returns with its completion, a few microseconds later. A thread
//! kept from running sends late and its samples say so. A connect's time runs from that
//! harvest to its own completion's. When the connect completes before the thread next
//! harvests (on loopback, inside the task work that issued it; anywhere, when the
//! thread was busy), both come back together and it reads 0 ms: what one harvest cannot
//! resolve is not guessed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use io_uring::{opcode, squeue, types, IoUring};

use super::{
    pending_len, sent_sample, shed_sample, skipped_sample, Monotonic, Pending, RequestIds,
    SampleSink, Schedule, HAND_OVER_EVERY,
};
use crate::classify::classify_error;
use crate::clock::round_ms;
use crate::config::ConnectionMode;
use crate::execute::{ms, tcp_info, timed_out, Attempt, Executor, Failure, MAX_BODY_BYTES};
use crate::http1::{closed_early, parse_head, BodyReader, Head};
use crate::outcome::Outcome;

/// Submission queue entries; a chain takes at most four.
const RING_ENTRIES: u32 = 512;

/// What one `RECV` reads at most.
const READ_ROOM: usize = 16 * 1024;

/// How far ahead requests are submitted. Long enough that a wake-up a little late
/// still submits a tick before it is due, and at high rates many ticks at once;
/// short enough that a stop is prompt and the cap counts what is out.
const HORIZON: Duration = Duration::from_millis(1);

/// Ahead of a tick on a kept-alive connection when none is idle but requests are
/// out: an answer on loopback comes within a tenth of a millisecond, and frees one.
const BUSY_HORIZON: Duration = Duration::from_micros(200);

/// At low rates, up to two periods ahead (at most this) when a connection is ready
/// for the tick: then the previous answer's wake-up submits it, and the tick costs
/// no wake-up of its own.
const EARLY_HORIZON: Duration = Duration::from_millis(250);

/// Receive buffers kept for new connections (1 MiB of them at most).
const MAX_SPARE_BUFFERS: usize = 64;

/// The longest the last operations of a stopped stream are waited for.
const DRAIN: Duration = Duration::from_secs(2);

// What a completion is for: the low byte of its user data.
const OP_TIMEOUT: u64 = 1;
const OP_CONNECT: u64 = 2;
const OP_SEND: u64 = 3;
const OP_RECV: u64 = 4;
const OP_CANCEL: u64 = 5;
const OP_WAKE: u64 = 6;

/// A stream's ring, made on its own thread before the run starts.
pub(crate) struct Ring {
    ring: IoUring,
}

impl Ring {
    /// A ring with what this executor needs, or why there is none: io_uring refused
    /// (`EPERM` under seccomp or `kernel.io_uring_disabled`, `ENOSYS` on a kernel
    /// without it) or too old a kernel.
    pub(crate) fn new() -> Result<Ring, String> {
        // One thread submits and waits; completions' work runs when it enters the
        // kernel, without interrupting it in user space (the module doc says why not
        // deferred to its next wait).
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .build(RING_ENTRIES)
            .or_else(|_| IoUring::builder().build(RING_ENTRIES))
            .map_err(|e| format!("io_uring_setup failed: {e}"))?;
        let params = ring.params();
        // ETIME_SUCCESS came in 5.16, linked files (a feature flag to test) in 5.17.
        if !(params.is_feature_linked_file()
            && params.is_feature_skip_cqe_on_success()
            && params.is_feature_ext_arg())
        {
            return Err("the kernel's io_uring is older than 5.17".into());
        }
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| format!("io_uring cannot list its operations: {e}"))?;
        let needed = [
            opcode::Timeout::CODE,
            opcode::Connect::CODE,
            opcode::Send::CODE,
            opcode::Recv::CODE,
            opcode::AsyncCancel::CODE,
            opcode::AsyncCancel2::CODE,
            opcode::Read::CODE,
        ];
        if !needed.iter().all(|op| probe.is_supported(*op)) {
            return Err("the kernel's io_uring lacks an operation it needs".into());
        }
        Ok(Ring { ring })
    }
}

fn user_data(slot: usize, gen: u32, op: u64) -> u64 {
    (u64::from(gen) << 40) | ((slot as u64) << 8) | op
}

fn split(user_data: u64) -> (usize, u32, u64) {
    (
        ((user_data >> 8) & 0xffff_ffff) as usize,
        (user_data >> 40) as u32,
        user_data & 0xff,
    )
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its new connection's `CONNECT` has not completed.
    Connecting,
    /// Its `SEND` has not completed.
    Sending,
    /// Sent: its answer is being read.
    Answer,
}

/// A request on its connection.
struct Req {
    seq: u64,
    due: Instant,
    intended_ms: f64,
    request_id: Option<String>,
    /// When its attempt started: when its `SEND` (kept alive) or its timer (a new
    /// connection) completed, until then its due time, or its submission when late.
    start: Instant,
    sent: Option<Instant>,
    reused: bool,
    phase: Phase,
    connect_ms: Option<f64>,
    syn_retransmits: Option<u32>,
    ttfb_ms: Option<f64>,
    status: Option<u16>,
    head: Option<Head>,
    body: Option<BodyReader>,
    prefix: Vec<u8>,
    /// The end of its connect, then of its answer.
    deadline: Instant,
    /// Which of the target's addresses its connection is to.
    addr_index: usize,
    /// The probe stopped before its tick: its timeout is being cancelled.
    withdrawn: bool,
}

/// An open connection and the memory its operations read and write: it lives until
/// the last of them has completed.
struct Conn {
    fd: OwnedFd,
    gen: u32,
    /// Submitted operations whose completion has not been seen.
    ops: u32,
    /// Of those, a kept-alive request's `SEND` waits behind its timeout, which skips
    /// its completion: cancelled, the timeout posts one after all and the kernel skips
    /// the `SEND`'s, so the timeout's completion ends both. (A new connection's timeout
    /// posts its completions, and so do the operations behind it.)
    send_behind_timeout: bool,
    recv_posted: bool,
    closing: bool,
    rbuf: Box<[u8]>,
    buf: BytesMut,
    send: Vec<u8>,
    sent: usize,
    timespec: types::Timespec,
    addr: socket2::SockAddr,
    req: Option<Req>,
}

/// The stream's loop: its ring, its connections and its schedule.
struct Loop {
    ring: IoUring,
    shared: Arc<Schedule>,
    exec: Arc<Executor>,
    ids: RequestIds,
    sink: SampleSink,
    pending: Pending,
    monotonic: Monotonic,
    addrs: Vec<SocketAddr>,
    conns: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    /// Receive buffers of closed connections, for the next ones: a new connection per
    /// request would otherwise allocate (and the allocator map) 16 KiB each time.
    spare_buffers: Vec<Box<[u8]>>,
    /// Kept-alive connections known idle, the newest last.
    idle: Vec<usize>,
    deadlines: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    next_gen: u32,
    wake_fd: OwnedFd,
    wake_buf: Box<u64>,
}

/// Runs the stream's schedule on `ring` until its duration is over or `shared.stop`
/// is set, then waits for the requests it sent (bounded by their timeouts) and hands
/// over the last samples. `addrs` are the target's (no DNS on this path).
pub(crate) fn run(
    ring: Ring,
    shared: Arc<Schedule>,
    exec: Arc<Executor>,
    ids: RequestIds,
    sink: SampleSink,
    addrs: Vec<SocketAddr>,
) {
    // SAFETY: plain syscall; the fd is checked and then owned.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
    if raw < 0 {
        eprintln!(
            "rollprobe: the io_uring executor cannot make its eventfd: {}",
            io::Error::last_os_error()
        );
        shared.done.store(true, Ordering::Release);
        shared.done_notify.notify_waiters();
        return;
    }
    // SAFETY: `raw` is a new fd that nothing else owns.
    let wake_fd = unsafe { OwnedFd::from_raw_fd(raw) };
    shared.set_wake_fd(Some(raw));
    let mut lp = Loop {
        ring: ring.ring,
        shared,
        exec,
        ids,
        sink,
        pending: Pending::default(),
        monotonic: Monotonic::now(),
        addrs,
        conns: Vec::new(),
        free: Vec::new(),
        spare_buffers: Vec::new(),
        idle: Vec::new(),
        deadlines: BinaryHeap::new(),
        next_gen: 0,
        wake_fd,
        wake_buf: Box::new(0),
    };
    lp.run();
}

impl Loop {
    fn run(&mut self) {
        self.post_wake_read();
        let config = self.exec.config();
        let origin = self.shared.clock.origin();
        let rate = config.rate;
        let end = config.duration.map(|d| origin + d);
        let max_in_flight = config.effective_max_in_flight();
        let shed_after = Duration::from_secs_f64(10.0 / rate).max(Duration::from_millis(50));
        // At low rates a tick goes to the kernel as soon as a connection is idle for
        // it (on the wake-up of the previous answer), not on a wake-up of its own.
        let early = Duration::from_secs_f64(2.0 / rate).clamp(HORIZON, EARLY_HORIZON);
        let drain_limit = config.connect_timeout + config.timeout + Duration::from_secs(2);
        let mut seq: u64 = 0;
        let mut stopped_at: Option<Instant> = None;
        // The schedule's own end: the due time of its last tick, once released.
        let mut last_due: Option<Instant> = None;
        let mut cqes = Vec::with_capacity(256);
        loop {
            cqes.clear();
            cqes.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
            let now = Instant::now();
            for &(data, res) in &cqes {
                self.complete(data, res, now);
            }
            self.expire(now);
            if stopped_at.is_none() && self.shared.stop.load(Ordering::Acquire) {
                stopped_at = Some(now);
                self.withdraw(now);
                self.schedule_done();
            }
            let mut at_cap = false;
            if stopped_at.is_none() && last_due.is_none() {
                loop {
                    let due = self.due_of(seq);
                    if end.is_some_and(|end| due >= end) {
                        last_due = Some(if seq == 0 {
                            origin
                        } else {
                            self.due_of(seq - 1)
                        });
                        break;
                    }
                    if due > now + self.ahead(early) {
                        break;
                    }
                    // At the cap, a tick waits for its own time to be judged: an
                    // answer may free a place before then.
                    if due > now && self.sending() >= max_in_flight {
                        at_cap = true;
                        break;
                    }
                    self.release(seq, due, now, max_in_flight, shed_after);
                    seq += 1;
                }
            }
            // Over when its last tick has gone out, as the tokio schedule is.
            if let (None, Some(last)) = (stopped_at, last_due) {
                if now >= last {
                    stopped_at = Some(now);
                    self.schedule_done();
                }
            }
            let next_tick = match (stopped_at, last_due) {
                (Some(_), _) => None,
                (None, Some(last)) => Some(last),
                (None, None) if at_cap => Some(self.due_of(seq)),
                (None, None) => Some(self.due_of(seq) - self.ahead(early)),
            };
            let mut wake = next_tick;
            if let Some(Reverse((deadline, _, _))) = self.deadlines.peek() {
                wake = Some(wake.map_or(*deadline, |w| w.min(*deadline)));
            }
            // A request out wakes the loop by its own completion or deadline; only a
            // finished sample needs a wake-up for its hand-over.
            if let Some(oldest) = self.pending.oldest() {
                let by = oldest + HAND_OVER_EVERY;
                wake = Some(wake.map_or(by, |w| w.min(by)));
            }
            self.pending.hand_over(&self.shared, &self.sink, wake);
            if let Some(stopped) = stopped_at {
                let waiting =
                    self.shared.in_flight.load(Ordering::Acquire) > pending_len(&self.pending);
                if !waiting || now >= stopped + drain_limit {
                    break;
                }
            }
            self.wait(wake, now);
        }
        self.pending.hand_over(&self.shared, &self.sink, None);
        self.close_all();
    }

    /// Submits what is queued and sleeps until a completion or `wake`.
    fn wait(&mut self, wake: Option<Instant>, now: Instant) {
        let result = match wake {
            Some(at) if at <= now => self.ring.submit(),
            Some(at) => {
                let d = at - now;
                let ts = types::Timespec::new()
                    .sec(d.as_secs())
                    .nsec(d.subsec_nanos());
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submit_and_wait(1),
        };
        if let Err(e) = result {
            match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => {
                    eprintln!("rollprobe: io_uring_enter failed ({e}); retrying in 1 ms");
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// Whether a tick can be handed to the kernel well before it is due: a new
    /// connection's socket costs nothing to make early, a kept-alive one must be idle
    /// (reserving one that is still answering would open another).
    fn can_go_early(&self) -> bool {
        self.exec.config().connection != ConnectionMode::Keepalive || !self.idle.is_empty()
    }

    /// How far ahead of its due time the next tick is handed to the kernel.
    fn ahead(&self, early: Duration) -> Duration {
        if self.can_go_early() {
            early
        } else if self.sending() > 0 {
            // Kept alive, none idle, but an answer due soon may free one: waiting for
            // it spares a new connection, and a wake-up of its own for the tick.
            BUSY_HORIZON
        } else {
            HORIZON
        }
    }

    /// Requests out (a finished one waiting for its hand-over holds no place).
    fn sending(&self) -> usize {
        self.shared
            .in_flight
            .load(Ordering::Acquire)
            .saturating_sub(pending_len(&self.pending))
    }

    /// When tick `seq` is due.
    fn due_of(&self, seq: u64) -> Instant {
        let rate = self.exec.config().rate;
        self.shared.clock.origin() + Duration::from_secs_f64(seq as f64 / rate)
    }

    /// The schedule is over: say so.
    fn schedule_done(&self) {
        self.shared.done.store(true, Ordering::Release);
        self.shared.done_notify.notify_waiters();
    }

    /// The probe stopped: the requests whose tick has not come are withdrawn, their
    /// timeouts cancelled. A chain whose timer fires before the cancel arrives goes
    /// out and is recorded like any other; one that is cancelled was never released
    /// and leaves no sample (see [`Loop::forget_withdrawn`]).
    fn withdraw(&mut self, now: Instant) {
        let mut cancels = Vec::new();
        for (slot, conn) in self.conns.iter_mut().enumerate() {
            let Some(conn) = conn.as_mut() else {
                continue;
            };
            if let Some(req) = conn
                .req
                .as_mut()
                .filter(|r| r.sent.is_none() && r.due > now)
            {
                req.withdrawn = true;
                cancels.push(
                    opcode::AsyncCancel::new(user_data(slot, conn.gen, OP_TIMEOUT))
                        .build()
                        .flags(squeue::Flags::SKIP_SUCCESS)
                        .user_data(OP_CANCEL),
                );
            }
        }
        for cancel in cancels {
            self.room(1);
            self.push_all(&[cancel]);
        }
    }

    /// A withdrawn request's chain was cancelled before it went out: it is dropped,
    /// and so is its place in flight. Whether that was so.
    fn forget_withdrawn(&mut self, slot: usize, res: i32) -> bool {
        let conn = self.conns[slot].as_mut().expect("checked");
        if res != -libc::ECANCELED || !conn.req.as_ref().is_some_and(|r| r.withdrawn) {
            return false;
        }
        conn.req = None;
        self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.close(slot);
        true
    }

    /// Sends tick `seq` (due at `due`), or records it as skipped when the prober is
    /// over its in-flight cap or too far behind.
    fn release(
        &mut self,
        seq: u64,
        due: Instant,
        now: Instant,
        max_in_flight: usize,
        shed_after: Duration,
    ) {
        let clock = self.shared.clock;
        let intended_ms = round_ms(clock.ms_at(due));
        let behind = now.saturating_duration_since(due);
        let sending = self.sending();
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if sending >= max_in_flight || behind > shed_after {
            let sample = if behind > shed_after {
                shed_sample(&self.ids.stream, seq, intended_ms, &clock, behind)
            } else {
                skipped_sample(&self.ids.stream, seq, intended_ms, &clock)
            };
            self.pending.push(sample);
            return;
        }
        let request_id = self.ids.request_id(seq);
        let start = due.max(now);
        let timeout = self.exec.config().timeout;
        let mut req = Req {
            seq,
            due,
            intended_ms,
            request_id,
            start,
            sent: None,
            reused: false,
            phase: Phase::Sending,
            connect_ms: None,
            syn_retransmits: None,
            ttfb_ms: None,
            status: None,
            head: None,
            body: None,
            prefix: Vec::new(),
            deadline: start + timeout,
            addr_index: 0,
            withdrawn: false,
        };
        if self.exec.config().connection == ConnectionMode::Keepalive {
            if let Some(slot) = self.idle.pop() {
                req.reused = true;
                self.send_on(slot, req, now);
                return;
            }
        }
        self.open(req, now);
    }

    /// Submits `req` on the idle connection `slot`: its `SEND`, after its timeout.
    fn send_on(&mut self, slot: usize, req: Req, now: Instant) {
        let bytes = self.exec.request(req.request_id.as_deref());
        let (sec, nsec) = self.monotonic.at(req.due);
        let timed = req.due > now;
        self.room(2);
        let deadline = req.deadline;
        let conn = self.conns[slot].as_mut().expect("an idle slot is open");
        conn.send = bytes;
        conn.sent = 0;
        conn.timespec = types::Timespec::new().sec(sec).nsec(nsec);
        conn.req = Some(req);
        conn.ops += 1;
        conn.send_behind_timeout = timed;
        let fd = types::Fd(conn.fd.as_raw_fd());
        let gen = conn.gen;
        let send = opcode::Send::new(fd, conn.send.as_ptr(), conn.send.len() as u32)
            .build()
            .user_data(user_data(slot, gen, OP_SEND));
        let mut entries = Vec::with_capacity(2);
        if timed {
            entries.push(timeout_entry(&conn.timespec, slot, gen, false));
        }
        entries.push(send);
        self.push_all(&entries);
        self.deadlines.push(Reverse((deadline, slot, gen)));
    }

    /// Opens a new connection for `req`: `CONNECT`, `SEND` and `RECV`, after its
    /// timeout; a socket that cannot be made fails the request at once.
    fn open(&mut self, mut req: Req, now: Instant) {
        let addr = self.addrs[req.addr_index];
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM.cloexec(),
            Some(socket2::Protocol::TCP),
        );
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                let failure = Failure::at_connect(classify_error(&e, Outcome::Other), None);
                let total = ms(now - req.start);
                self.finish(req, failure.into_attempt(total, false));
                return;
            }
        };
        // No TCP_NODELAY (a system call per connection saved): a request is one
        // write, made when nothing is unacknowledged (a connection's first, or after
        // an answer that acknowledged the request before it), so Nagle never holds it.
        let fd = OwnedFd::from(socket);
        req.phase = Phase::Connecting;
        req.deadline = req.start + self.exec.config().connect_timeout;
        let bytes = self.exec.request(req.request_id.as_deref());
        let (sec, nsec) = self.monotonic.at(req.due);
        let timed = req.due > now;
        let deadline = req.deadline;
        let gen = self.gen();
        let conn = Box::new(Conn {
            fd,
            gen,
            ops: 3,
            send_behind_timeout: false,
            recv_posted: true,
            closing: false,
            rbuf: self
                .spare_buffers
                .pop()
                .unwrap_or_else(|| vec![0u8; READ_ROOM].into_boxed_slice()),
            buf: BytesMut::new(),
            send: bytes,
            sent: 0,
            timespec: types::Timespec::new().sec(sec).nsec(nsec),
            addr: addr.into(),
            req: Some(req),
        });
        let slot = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.conns.len() - 1
        });
        self.conns[slot] = Some(conn);
        let conn = self.conns[slot].as_mut().expect("just stored");
        let fd = types::Fd(conn.fd.as_raw_fd());
        let mut entries = Vec::with_capacity(4);
        if timed {
            entries.push(timeout_entry(&conn.timespec, slot, gen, true));
        }
        entries.push(
            opcode::Connect::new(fd, conn.addr.as_ptr().cast(), conn.addr.len())
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(user_data(slot, gen, OP_CONNECT)),
        );
        entries.push(
            opcode::Send::new(fd, conn.send.as_ptr(), conn.send.len() as u32)
                .build()
                .flags(squeue::Flags::IO_LINK)
                .user_data(user_data(slot, gen, OP_SEND)),
        );
        entries.push(
            opcode::Recv::new(fd, conn.rbuf.as_mut_ptr(), conn.rbuf.len() as u32)
                .build()
                .user_data(user_data(slot, gen, OP_RECV)),
        );
        self.room(entries.len());
        self.push_all(&entries);
        self.deadlines.push(Reverse((deadline, slot, gen)));
    }

    fn gen(&mut self) -> u32 {
        self.next_gen = (self.next_gen + 1) & 0x00ff_ffff;
        self.next_gen
    }

    /// Makes room for `n` entries in the submission queue, so a chain is never split
    /// between two submissions.
    fn room(&mut self, n: usize) {
        let free = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        if free < n {
            let _ = self.ring.submit();
        }
    }

    fn push_all(&mut self, entries: &[squeue::Entry]) {
        // SAFETY: every buffer, address and timespec an entry points to is owned by its
        // boxed connection, which lives until the entry's completion has been seen.
        let pushed = unsafe { self.ring.submission().push_multiple(entries) };
        if pushed.is_err() {
            let _ = self.ring.submit();
            // SAFETY: as above.
            let again = unsafe { self.ring.submission().push_multiple(entries) };
            if again.is_err() {
                eprintln!("rollprobe: the io_uring submission queue stays full");
            }
        }
    }

    fn post_wake_read(&mut self) {
        let entry = opcode::Read::new(
            types::Fd(self.wake_fd.as_raw_fd()),
            (&mut *self.wake_buf as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(OP_WAKE);
        self.room(1);
        self.push_all(&[entry]);
    }

    /// One completion.
    fn complete(&mut self, data: u64, res: i32, now: Instant) {
        let (slot, gen, op) = split(data);
        match op {
            OP_WAKE => {
                if !self.shared.stop.load(Ordering::Acquire) {
                    self.post_wake_read();
                }
                return;
            }
            OP_TIMEOUT if res == -libc::ETIME => {
                self.timer_fired(slot, gen, now);
                return;
            }
            OP_TIMEOUT => {
                self.timeout_failed(slot, gen);
                return;
            }
            // A cancel that found nothing left to cancel.
            OP_CANCEL => return,
            _ => {}
        }
        let Some(conn) = self.conns.get_mut(slot).and_then(|c| c.as_mut()) else {
            return;
        };
        if conn.gen != gen {
            return;
        }
        conn.ops = conn.ops.saturating_sub(1);
        if op == OP_RECV {
            conn.recv_posted = false;
        } else {
            // A send ran: its timer fired, a cancel no longer ends it. (A receive may be
            // a kept-alive connection's own, not the chain's.)
            conn.send_behind_timeout = false;
        }
        if conn.closing {
            self.free_if_done(slot);
            return;
        }
        match op {
            OP_CONNECT => self.connected(slot, res, now),
            OP_SEND => self.sent(slot, res, now),
            OP_RECV => self.received(slot, res, now),
            _ => {}
        }
    }

    /// A new connection's timer fired and its connect was issued just before this
    /// completion: that is the request's start, and its connect deadline counts from it.
    fn timer_fired(&mut self, slot: usize, gen: u32, now: Instant) {
        let Some(conn) = self.conns.get_mut(slot).and_then(|c| c.as_mut()) else {
            return;
        };
        if conn.gen != gen {
            return;
        }
        let connect_timeout = self.exec.config().connect_timeout;
        let Some(req) = conn.req.as_mut().filter(|r| r.phase == Phase::Connecting) else {
            return;
        };
        req.start = now;
        req.deadline = now + connect_timeout;
        self.deadlines.push(Reverse((req.deadline, slot, gen)));
    }

    /// A chain's timeout completed without firing (cancelled). Behind a kept-alive
    /// request's, the `SEND` was cancelled without a completion of its own (the kernel
    /// skips the links' after a head that skips its success); a new connection's
    /// operations post theirs.
    fn timeout_failed(&mut self, slot: usize, gen: u32) {
        let Some(conn) = self.conns.get_mut(slot).and_then(|c| c.as_mut()) else {
            return;
        };
        if conn.gen != gen {
            return;
        }
        if std::mem::take(&mut conn.send_behind_timeout) {
            conn.ops = conn.ops.saturating_sub(1);
        }
        if conn.closing {
            self.free_if_done(slot);
            return;
        }
        self.forget_withdrawn(slot, -libc::ECANCELED);
    }

    fn connected(&mut self, slot: usize, res: i32, now: Instant) {
        if self.forget_withdrawn(slot, res) {
            return;
        }
        let conn = self.conns[slot].as_mut().expect("checked");
        let retransmits = tcp_info(conn.fd.as_raw_fd()).map(|(_, r)| r);
        let timeout = self.exec.config().timeout;
        let Some(req) = conn.req.as_mut() else {
            return;
        };
        if res >= 0 {
            req.connect_ms = Some(ms(now - req.start));
            req.syn_retransmits = Some(retransmits.unwrap_or(0));
            req.phase = Phase::Sending;
            req.deadline = now + timeout;
            let entry = Reverse((req.deadline, slot, conn.gen));
            self.deadlines.push(entry);
            return;
        }
        if res == -libc::ECANCELED {
            return;
        }
        let mut req = conn.req.take().expect("checked");
        self.close(slot);
        let error = io::Error::from_raw_os_error(-res);
        if req.addr_index + 1 < self.addrs.len() {
            // As the tokio executor does: the next address, within the same connect
            // deadline (it counts from the request's start).
            req.addr_index += 1;
            self.open(req, now);
            return;
        }
        let failure = Failure::at_connect(classify_error(&error, Outcome::Other), retransmits);
        let total = ms(now - req.start);
        self.finish(req, failure.into_attempt(total, false));
    }

    fn sent(&mut self, slot: usize, res: i32, now: Instant) {
        if self.forget_withdrawn(slot, res) {
            return;
        }
        let conn = self.conns[slot].as_mut().expect("checked");
        let Some(req) = conn.req.as_mut() else {
            return;
        };
        if res < 0 {
            // A connect that failed cancelled its send: its own completion says why.
            if res == -libc::ECANCELED && req.phase == Phase::Connecting {
                return;
            }
            let error = io::Error::from_raw_os_error(-res);
            self.fail(slot, classify_error(&error, Outcome::ConnectionClosed), now);
            return;
        }
        conn.sent += res as usize;
        if req.sent.is_none() {
            if req.reused {
                // Its answer's times, and its time limit, count from the send, as a new
                // connection's count from its connect, not from the due instant.
                req.start = now;
                req.deadline = now + self.exec.config().timeout;
                self.deadlines.push(Reverse((req.deadline, slot, conn.gen)));
            }
            req.sent = Some(req.start);
        }
        if conn.sent < conn.send.len() {
            // The rest follows unacknowledged bytes: Nagle must not hold it.
            let _ = socket2::SockRef::from(&conn.fd).set_nodelay(true);
            let fd = types::Fd(conn.fd.as_raw_fd());
            let rest = &conn.send[conn.sent..];
            let entry = opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                .build()
                .user_data(user_data(slot, conn.gen, OP_SEND));
            conn.ops += 1;
            self.room(1);
            self.push_all(&[entry]);
            return;
        }
        req.phase = Phase::Answer;
    }

    fn received(&mut self, slot: usize, res: i32, now: Instant) {
        let head_request = self.exec.head_request();
        let conn = self.conns[slot].as_mut().expect("checked");
        let Some(req) = conn.req.as_mut() else {
            // Idle: the server closed it or sent something unasked.
            self.close(slot);
            return;
        };
        if res == -libc::ECANCELED {
            return;
        }
        if req.phase != Phase::Answer {
            // Closed, or spoken to, before this request went out on it: the request
            // moves to a new connection (on a new one, the failed send says why).
            if req.reused {
                let req = conn.req.take().expect("checked");
                self.close(slot);
                let mut req = req;
                req.reused = false;
                self.open(req, now);
            }
            return;
        }
        if res < 0 {
            let error = io::Error::from_raw_os_error(-res);
            self.fail(slot, classify_error(&error, Outcome::ConnectionClosed), now);
            return;
        }
        if res == 0 {
            let ended = match req.body.as_ref() {
                None => Err(closed_early()),
                Some(body) => body.at_end(),
            };
            match ended {
                Ok(reusable) => self.answered(slot, reusable, now),
                Err(c) => self.fail(slot, c, now),
            }
            return;
        }
        conn.buf.extend_from_slice(&conn.rbuf[..res as usize]);
        if req.head.is_none() {
            match parse_head(&mut conn.buf, head_request, self.exec.wanted_headers()) {
                Ok(Some(head)) => {
                    req.ttfb_ms = Some(ms(now - req.start));
                    req.status = Some(head.status);
                    req.body = Some(BodyReader::new(&head));
                    req.head = Some(head);
                }
                Ok(None) => {}
                Err(c) => {
                    self.fail(slot, c, now);
                    return;
                }
            }
        }
        if let Some(body) = req.body.as_mut() {
            match body.advance(&mut conn.buf, &mut req.prefix, MAX_BODY_BYTES) {
                Ok(Some(reusable)) => {
                    self.answered(slot, reusable, now);
                    return;
                }
                Ok(None) => {}
                Err(c) => {
                    self.fail(slot, c, now);
                    return;
                }
            }
        }
        self.post_recv(slot);
    }

    fn post_recv(&mut self, slot: usize) {
        let conn = self.conns[slot].as_mut().expect("checked");
        if conn.recv_posted || conn.closing {
            return;
        }
        conn.recv_posted = true;
        conn.ops += 1;
        let entry = opcode::Recv::new(
            types::Fd(conn.fd.as_raw_fd()),
            conn.rbuf.as_mut_ptr(),
            conn.rbuf.len() as u32,
        )
        .build()
        .user_data(user_data(slot, conn.gen, OP_RECV));
        self.room(1);
        self.push_all(&[entry]);
    }

    /// A complete answer: judged, its sample handed on, its connection kept or closed.
    fn answered(&mut self, slot: usize, reusable: bool, now: Instant) {
        let conn = self.conns[slot].as_mut().expect("checked");
        let req = conn.req.take().expect("an answer has its request");
        let head = req.head.as_ref().expect("an answer has its head");
        let mut attempt = self.exec.judge(
            head,
            &req.prefix,
            req.connect_ms,
            req.syn_retransmits,
            req.ttfb_ms,
        );
        attempt.total_ms = ms(now - req.start);
        attempt.reused = req.reused;
        let max_idle = self.exec.config().effective_max_in_flight();
        if self.exec.keeps(reusable) && self.idle.len() < max_idle {
            self.idle.push(slot);
            self.post_recv(slot);
        } else {
            self.close(slot);
        }
        self.finish(req, attempt);
    }

    /// The request on `slot` failed: its sample, and its connection closed.
    fn fail(&mut self, slot: usize, classified: crate::classify::Classified, now: Instant) {
        let conn = self.conns[slot].as_mut().expect("checked");
        let req = conn.req.take().expect("a failure has its request");
        self.close(slot);
        let failure = Failure {
            classified,
            connect_ms: req.connect_ms,
            syn_retransmits: req.syn_retransmits,
            ttfb_ms: req.ttfb_ms,
            status: req.status,
        };
        let reused = req.reused;
        let total = ms(now - req.start);
        self.finish(req, failure.into_attempt(total, reused));
    }

    fn finish(&mut self, req: Req, attempt: Attempt) {
        let sent = req.sent.unwrap_or(req.start);
        let sample = sent_sample(
            &self.shared.clock,
            &self.ids.stream,
            req.seq,
            req.intended_ms,
            sent,
            req.request_id,
            attempt,
        );
        self.pending.push(sample);
    }

    /// Requests whose connect or answer is over its time.
    fn expire(&mut self, now: Instant) {
        while let Some(Reverse((deadline, slot, gen))) = self.deadlines.peek().copied() {
            if deadline > now {
                return;
            }
            self.deadlines.pop();
            let Some(conn) = self.conns.get_mut(slot).and_then(|c| c.as_mut()) else {
                continue;
            };
            if conn.gen != gen || conn.closing {
                continue;
            }
            let fd = conn.fd.as_raw_fd();
            let Some(req) = conn.req.as_ref() else {
                continue;
            };
            if req.deadline != deadline {
                continue;
            }
            if req.phase == Phase::Connecting {
                let retransmits = tcp_info(fd).map(|(_, r)| r);
                let req = conn.req.take().expect("checked");
                self.close(slot);
                let failure = self.exec.connect_timed_out(retransmits);
                let total = ms(now - req.start);
                self.finish(req, failure.into_attempt(total, false));
            } else {
                let limit = self.exec.config().timeout;
                self.fail(
                    slot,
                    timed_out(Outcome::ResponseTimeout, "the response", limit),
                    now,
                );
            }
        }
    }

    /// Closes `slot`: at once when nothing of it is in the kernel, else after its
    /// operations, cancelled now, have completed.
    fn close(&mut self, slot: usize) {
        self.idle.retain(|s| *s != slot);
        let conn = self.conns[slot].as_mut().expect("checked");
        if conn.closing {
            return;
        }
        conn.closing = true;
        if conn.ops > 0 {
            let fd = conn.fd.as_raw_fd();
            let gen = conn.gen;
            let entries = [
                opcode::AsyncCancel::new(user_data(slot, gen, OP_TIMEOUT))
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(OP_CANCEL),
                opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
                    .build()
                    .flags(squeue::Flags::SKIP_SUCCESS)
                    .user_data(OP_CANCEL),
            ];
            self.room(entries.len());
            self.push_all(&entries);
        }
        self.free_if_done(slot);
    }

    fn free_if_done(&mut self, slot: usize) {
        let done = self.conns[slot]
            .as_ref()
            .is_some_and(|c| c.closing && c.ops == 0);
        if done {
            // Dropping the connection closes its socket.
            if let Some(conn) = self.conns[slot].take() {
                // Its socket closes here; its buffer serves the next connection.
                let Conn { rbuf, .. } = *conn;
                if self.spare_buffers.len() < MAX_SPARE_BUFFERS {
                    self.spare_buffers.push(rbuf);
                }
            }
            self.free.push(slot);
        }
    }

    /// At the end: every connection closed, and its memory freed once the kernel is
    /// done with it (or kept, if the kernel is not done within [`DRAIN`]).
    fn close_all(&mut self) {
        for slot in 0..self.conns.len() {
            if let Some(conn) = self.conns[slot].as_mut() {
                // Unblocks a receive that a cancel might find already running.
                // SAFETY: shutdown on a socket this connection owns.
                unsafe { libc::shutdown(conn.fd.as_raw_fd(), libc::SHUT_RDWR) };
                // A request still out stays counted in flight: the run's `unanswered`.
                conn.req = None;
                self.close(slot);
            }
        }
        let limit = Instant::now() + DRAIN;
        while self.conns.iter().any(Option::is_some) && Instant::now() < limit {
            let ts = types::Timespec::new().nsec(10_000_000);
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = self.ring.submitter().submit_with_args(1, &args);
            let cqes: Vec<(u64, i32)> = self
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result()))
                .collect();
            let now = Instant::now();
            for (data, res) in cqes {
                self.complete(data, res, now);
            }
        }
        // What the kernel still holds must outlive the ring.
        for conn in self.conns.drain(..).flatten() {
            std::mem::forget(conn);
        }
        self.shared.set_wake_fd(None);
    }
}

/// The absolute timeout that starts a chain at its request's due instant. `fired`:
/// whether it posts a completion when it fires (`-ETIME`), as a new connection's does
/// to time its connect; a cancelled one always posts one.
fn timeout_entry(timespec: &types::Timespec, slot: usize, gen: u32, fired: bool) -> squeue::Entry {
    let flags = if fired {
        squeue::Flags::IO_LINK
    } else {
        squeue::Flags::IO_LINK | squeue::Flags::SKIP_SUCCESS
    };
    opcode::Timeout::new(timespec)
        .flags(types::TimeoutFlags::ABS | types::TimeoutFlags::ETIME_SUCCESS)
        .build()
        .flags(flags)
        .user_data(user_data(slot, gen, OP_TIMEOUT))
}
