use super::seconds::MAX_VERSIONS_PER_SECOND;
use super::*;
use crate::config::RecordedConfig;

fn header() -> RunHeader {
    RunHeader {
        schema: crate::sample::SAMPLES_SCHEMA.into(),
        label: None,
        target: "http://127.0.0.1:1/".into(),
        config: RecordedConfig::for_tests(100.0, 5000, 1016),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        run_id: String::new(),
        streams: Vec::new(),
    }
}

fn sample(seq: u64, outcome: Outcome, version: &str, latency_ms: f64) -> Sample {
    let intended = seq as f64 * 10.0;
    Sample {
        sent_ms: (outcome != Outcome::Skipped).then_some(intended),
        version: (outcome == Outcome::Ok).then(|| version.to_string()),
        ttfb_ms: Some(latency_ms),
        total_ms: Some(latency_ms),
        ..Sample::new("", seq, intended, outcome)
    }
}

/// 100 req/s for 3 s: second 0 all v1 at 1..100 ms, second 1 refused from
/// 1.5 s on, second 2 v2 with one reset and one skipped tick.
fn three_seconds() -> Report {
    let mut a = Analyzer::new(100.0);
    // Completion order must not matter: feed them backwards.
    for seq in (0..300u64).rev() {
        let (outcome, version) = match seq {
            0..=99 => (Outcome::Ok, "v1"),
            100..=149 => (Outcome::Ok, "v1"),
            150..=199 => (Outcome::ConnectionRefused, ""),
            250 => (Outcome::ConnectionReset, ""),
            251 => (Outcome::Skipped, ""),
            _ => (Outcome::Ok, "v2"),
        };
        let latency = if seq < 100 { (seq + 1) as f64 } else { 5.0 };
        a.push(sample(seq, outcome, version, latency));
    }
    a.finish(&header(), None)
}

#[test]
fn the_per_second_series_counts_each_second_of_intended_time() {
    let r = three_seconds();
    let s = &r.per_second;
    assert_eq!(s.len(), 3);
    assert_eq!((s[0].second, s[0].sent, s[0].ok), (0, 100, 100));
    assert!(s[0].failures.is_empty());
    assert_eq!(s[0].versions, ["v1"]);
    // Latencies 1..=100 ms: the histogram's percentiles, to its precision.
    assert!((s[0].p50_ms.unwrap() - 50.0).abs() < 0.1, "{:?}", s[0]);
    assert!((s[0].p99_ms.unwrap() - 99.0).abs() < 0.1, "{:?}", s[0]);
    assert_eq!((s[1].sent, s[1].ok), (100, 50));
    assert_eq!(s[1].failures["connection_refused"], 50);
    assert_eq!(s[1].versions, ["v1"]);
    assert!((s[1].p99_ms.unwrap() - 5.0).abs() < 0.01, "{:?}", s[1]);
    // The skipped tick is not a request.
    assert_eq!((s[2].sent, s[2].ok), (99, 98));
    assert_eq!(s[2].failures["connection_reset"], 1);
    assert_eq!(s[2].versions, ["v2"]);
    // The series adds up to the totals.
    assert_eq!(s.iter().map(|x| x.sent).sum::<u64>(), r.totals.sent);
    assert_eq!(s.iter().map(|x| x.ok).sum::<u64>(), r.totals.ok);
    for (kind, n) in &r.failures {
        let sum: u64 = s.iter().filter_map(|x| x.failures.get(kind)).sum();
        assert_eq!(sum, *n, "{kind}");
    }
}

#[test]
fn a_second_without_ok_answers_has_no_latency() {
    let mut a = Analyzer::new(100.0);
    for seq in 0..300u64 {
        let outcome = if (100..200).contains(&seq) {
            Outcome::HostUnreachable
        } else {
            Outcome::Ok
        };
        a.push(sample(seq, outcome, "v1", 2.0));
    }
    let r = a.finish(&header(), None);
    assert_eq!(r.per_second[1].p50_ms, None);
    assert_eq!(r.per_second[1].versions, Vec::<String>::new());
    assert!((r.per_second[2].p50_ms.unwrap() - 2.0).abs() < 0.01);
}

#[test]
fn a_report_json_written_before_the_series_still_reads() {
    let r = three_seconds();
    let mut json: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    json.as_object_mut().unwrap().remove("per_second");
    let old = Report::from_json(&json.to_string()).unwrap();
    assert!(old.per_second.is_empty());
    assert_eq!(Report::from_json(&r.to_json()).unwrap(), r);
}

#[test]
fn the_series_holds_one_small_row_per_second_however_many_samples() {
    // 20 minutes at 100 req/s: 1200 rows, each with its versions capped.
    let mut a = Analyzer::new(100.0);
    for seq in 0..120_000u64 {
        // A "version" that changes with every answer (a body that is not one).
        a.push(sample(seq, Outcome::Ok, &format!("body-{seq}"), 1.0));
    }
    let rows = &a.seconds.rows;
    assert_eq!(rows.len(), 1200);
    assert!(rows
        .iter()
        .all(|r| r.versions.len() == MAX_VERSIONS_PER_SECOND));
}

#[test]
fn with_rollout_events_the_rollout_phase_lasts_until_the_rollout_completes() {
    let phases = |rollout_events: bool| {
        let mut a = Analyzer::new(100.0).with_rollout_events(rollout_events);
        a.event(Event::new(100.0, EventKind::TriggerStart, "set image"));
        a.event(Event::new(110.0, EventKind::TriggerExit, "ok"));
        a.event(Event::new(120.0, EventKind::RolloutStart, "web"));
        a.event(Event::new(2000.0, EventKind::RolloutComplete, "web"));
        for seq in 0..300u64 {
            a.push(sample(seq, Outcome::Ok, "v1", 1.0));
        }
        a.finish(&header(), None).phases
    };
    let with = phases(true);
    assert_eq!((with[1].start_ms, with[1].end_ms), (100.0, Some(2000.0)));
    assert_eq!(with[1].sent, 190);
    // A plain trigger: the phase is the trigger's own run.
    let without = phases(false);
    assert_eq!(without[1].end_ms, Some(110.0));
}

#[test]
fn late_means_more_than_a_millisecond_behind_whatever_the_rate() {
    // At 100 req/s a period is 10 ms; at 10,000 req/s it is 0.1 ms: the bound is the same.
    for rate in [100.0, 10_000.0] {
        let mut a = Analyzer::new(rate);
        for (seq, lag) in [(0u64, 0.0), (1, 0.5), (2, 0.999), (3, 1.2), (4, 30.0)] {
            let mut s = sample(seq, Outcome::Ok, "v1", 1.0);
            s.sent_ms = Some(s.intended_ms + lag);
            a.push(s);
        }
        let report = a.finish(&header(), None);
        assert_eq!(report.probe.late, 2, "at {rate} req/s");
    }
}
