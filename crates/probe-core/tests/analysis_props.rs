//! Properties of the outage analysis over arbitrary runs, in any completion order.

use probe_core::{Analyzer, Outcome, ProbeConfig, RunFooter, RunHeader, Sample, Target};
use proptest::prelude::*;

const KINDS: [Outcome; 6] = [
    Outcome::Ok,
    Outcome::ConnectionRefused,
    Outcome::HostUnreachable,
    Outcome::ConnectionReset,
    Outcome::LocalEmfile,
    Outcome::Skipped,
];

fn header() -> RunHeader {
    let config = ProbeConfig {
        rate: 100.0,
        ..ProbeConfig::new(Target::parse("http://127.0.0.1:1/").unwrap())
    };
    RunHeader {
        started_at: "2026-01-01T00:00:00.000Z".into(),
        ..RunHeader::new(&config)
    }
}

fn sample(seq: usize, outcome: Outcome, version: u8) -> Sample {
    let intended = seq as f64 * 10.0;
    Sample {
        sent_ms: (outcome != Outcome::Skipped).then_some(intended + 0.1),
        version: (outcome == Outcome::Ok).then(|| format!("v{version}")),
        total_ms: Some(1.0),
        ..Sample::new("", seq as u64, intended, outcome)
    }
}

fn run() -> impl Strategy<Value = (Vec<(Outcome, u8)>, Vec<usize>)> {
    prop::collection::vec((prop::sample::select(KINDS.to_vec()), 1u8..3), 0..300).prop_flat_map(
        |outcomes| {
            let n = outcomes.len();
            (
                Just(outcomes),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            )
        },
    )
}

proptest! {
    #[test]
    fn windows_are_ordered_disjoint_and_add_up((outcomes, order) in run()) {
        let footer = RunFooter { ended_at: String::new(), duration_ms: outcomes.len() as f64 * 10.0, interrupted: false, unanswered: 0, trigger: None };
        let build = |order: &[usize]| {
            let mut a = Analyzer::new(100.0);
            for &i in order {
                let (k, v) = outcomes[i];
                a.push(sample(i, k, v));
            }
            a.finish(&header(), Some(&footer))
        };
        let shuffled = build(&order);
        let in_order = build(&(0..outcomes.len()).collect::<Vec<_>>());
        // Completion order does not matter.
        prop_assert_eq!(&shuffled, &in_order);
        let r = shuffled;

        let count = |k: Outcome| outcomes.iter().filter(|(o, _)| *o == k).count() as u64;
        prop_assert_eq!(r.totals.sent + r.totals.skipped, outcomes.len() as u64);
        prop_assert_eq!(r.totals.ok + r.totals.failed + r.totals.local, r.totals.sent);
        prop_assert_eq!(r.totals.local, count(Outcome::LocalEmfile));
        prop_assert_eq!(r.totals.skipped, count(Outcome::Skipped));

        let w = &r.downtime.windows;
        for pair in w.windows(2) {
            prop_assert!(pair[0].end_ms <= pair[1].start_ms, "overlap: {:?}", pair);
        }
        let mut sum = 0.0;
        for win in w {
            prop_assert!(win.end_ms > win.start_ms);
            prop_assert_eq!(win.kinds.values().sum::<u64>(), win.failed);
            sum += win.duration_ms;
        }
        prop_assert!((r.downtime.total_ms - sum).abs() < 1e-9);
        prop_assert_eq!(w.iter().map(|x| x.failed).sum::<u64>(), r.totals.failed);
        prop_assert!(w.iter().take(w.len().saturating_sub(1)).all(|x| !x.open));

        // Every target failure lies inside a window; every ok lies outside all.
        for (i, (k, _)) in outcomes.iter().enumerate() {
            let t = i as f64 * 10.0;
            let inside = w.iter().any(|x| x.start_ms <= t && t < x.end_ms);
            if k.is_target_failure() { prop_assert!(inside, "failure at {} outside", t); }
            // With answers as quick as these none is held through a window.
            if *k == Outcome::Ok { prop_assert!(!inside, "ok at {} inside", t); }
        }
        let versions: u64 = r.versions.iter().map(|v| v.count).sum();
        prop_assert_eq!(versions, r.totals.ok);
    }
}

/// One tick of a generated run: its outcome, how long it took, its SYN retransmits
/// and how late it went out.
type Tick = (Outcome, f64, Option<u32>, f64);

fn ticks() -> impl Strategy<Value = Vec<Tick>> {
    let took = prop_oneof![3 => Just(1.0), 1 => 0.5f64..3000.0];
    prop::collection::vec(
        (
            prop::sample::select(KINDS.to_vec()),
            took,
            prop::option::of(0u32..3),
            0.0f64..20.0,
        ),
        1..300,
    )
}

fn timed_sample(seq: usize, (outcome, took, syn, lag): Tick) -> Sample {
    let mut s = sample(seq, outcome, 1);
    if outcome != Outcome::Skipped {
        s.sent_ms = Some(s.intended_ms + lag);
        s.total_ms = Some(took);
        s.syn_retransmits = syn;
    }
    s
}

fn latency_in_order(l: &probe_core::Latency) -> bool {
    l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max
}

proptest! {
    /// The invariants ARCHITECTURE.md states for times: no window outlasts the run,
    /// downtime <= duration, phases cut windows at their borders (each phase's
    /// downtime <= its length, the phases add up), percentiles never above the max;
    /// and all of it whatever order the samples completed in.
    #[test]
    fn times_are_bounded_by_the_run_and_phases_add_up(
        ticks in ticks(),
        // When probing stopped, in periods after the last tick (None: killed, no footer).
        stop in prop::option::of(0.0f64..2.0),
        trigger in prop::option::of((0.0f64..1.2, 0.0f64..1.2)),
        seed in any::<u64>(),
    ) {
        let n = ticks.len();
        let last_tick_ms = (n - 1) as f64 * 10.0;
        let footer = stop.map(|periods| RunFooter {
            ended_at: String::new(),
            duration_ms: last_tick_ms + periods * 10.0,
            interrupted: false,
            unanswered: 0,
            trigger: None,
        });
        let samples: Vec<Sample> = ticks.iter().enumerate().map(|(i, t)| timed_sample(i, *t)).collect();
        let build = |order: &[Sample]| {
            let mut a = Analyzer::new(100.0);
            if let Some((start, len)) = trigger {
                let start = start * n as f64 * 10.0;
                a.event(probe_core::Event::new(start, probe_core::EventKind::TriggerStart, "t"));
                a.event(probe_core::Event::new(start + len * n as f64 * 10.0, probe_core::EventKind::TriggerExit, "exit code 0"));
            }
            for s in order {
                a.push(s.clone());
            }
            a.finish(&header(), footer.as_ref())
        };
        // Completion order, and a shuffle: the report is the same.
        let mut done = samples.clone();
        done.sort_by(|a, b| {
            let end = |s: &Sample| s.sent_ms.unwrap_or(s.intended_ms) + s.total_ms.unwrap_or(0.0);
            end(a).total_cmp(&end(b))
        });
        let mut shuffled = samples.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let r = build(&samples);
        prop_assert_eq!(&build(&done), &r);
        prop_assert_eq!(&build(&shuffled), &r);

        let duration = r.duration_ms;
        prop_assert!(r.downtime.total_ms <= duration + 1e-9, "downtime {} > duration {}", r.downtime.total_ms, duration);
        let w = &r.downtime.windows;
        for win in w {
            prop_assert!(win.start_ms <= win.end_ms && win.end_ms <= duration, "{:?} in {}", win, duration);
        }
        for pair in w.windows(2) {
            prop_assert!(pair[0].end_ms <= pair[1].start_ms, "overlap: {:?}", pair);
        }
        prop_assert_eq!(w.iter().map(|x| x.failed).sum::<u64>(), r.totals.failed);
        prop_assert!(w.iter().map(|x| x.held_ok).sum::<u64>() <= r.totals.ok);
        // Degraded windows: ordered, within the run, made of ok answers, and never
        // inside an outage window (there the outage tells).
        let d = &r.degraded.windows;
        for win in d {
            prop_assert!(win.start_ms <= win.end_ms && win.end_ms <= duration, "{:?} in {}", win, duration);
            prop_assert!(win.slow > 0 && win.max_ms > r.degraded.threshold_ms.unwrap(), "{:?}", win);
            for o in w {
                prop_assert!(win.end_ms <= o.start_ms || o.end_ms <= win.start_ms, "{:?} overlaps {:?}", win, o);
            }
        }
        for pair in d.windows(2) {
            prop_assert!(pair[0].end_ms <= pair[1].start_ms, "overlap: {:?}", pair);
        }
        prop_assert!(d.iter().map(|x| x.slow).sum::<u64>() <= r.totals.ok);
        prop_assert!((r.degraded.total_ms - d.iter().map(|x| x.duration_ms).sum::<f64>()).abs() < 1e-6);
        // Every target failure is inside a window.
        for (i, t) in ticks.iter().enumerate() {
            let at = i as f64 * 10.0;
            if t.0.is_target_failure() {
                prop_assert!(w.iter().any(|x| x.start_ms <= at && at <= x.end_ms), "failure at {} outside", at);
            }
        }

        if !r.phases.is_empty() {
            let mut sum = 0.0;
            for p in &r.phases {
                let length = p.end_ms.unwrap_or(duration) - p.start_ms;
                prop_assert!(p.downtime_ms <= length.max(0.0) + 1e-9, "{:?} in {}", p, duration);
                prop_assert!(latency_in_order(&p.latency_ms), "{:?}", p.latency_ms);
                sum += p.downtime_ms;
            }
            prop_assert!((sum - r.downtime.total_ms).abs() < 1e-6, "phases {} vs {}", sum, r.downtime.total_ms);
            prop_assert_eq!(r.phases.iter().map(|p| p.failed).sum::<u64>(), r.totals.failed);
        }
        prop_assert!(latency_in_order(&r.latency_ms), "{:?}", r.latency_ms);
        prop_assert!(latency_in_order(&r.service_ms), "{:?}", r.service_ms);
        prop_assert!(r.probe.send_lag_p50_ms <= r.probe.send_lag_p99_ms);
        prop_assert!(r.probe.send_lag_p99_ms <= r.probe.send_lag_max_ms, "{:?}", r.probe);
    }
}
