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
        let footer = RunFooter { ended_at: String::new(), duration_ms: outcomes.len() as f64 * 10.0, interrupted: false };
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
            if *k == Outcome::Ok { prop_assert!(!inside, "ok at {} inside", t); }
        }
        let versions: u64 = r.versions.iter().map(|v| v.count).sum();
        prop_assert_eq!(versions, r.totals.ok);
    }
}
