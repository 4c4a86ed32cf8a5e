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

/// The seed's Recreate on a stock kernel, at 100 req/s for 10 s: nothing served from
/// +2.52 s until the new app listened at +9.08 s, but the requests intended at +5.0,
/// +6.0, +7.0 and +8.1 s lost their SYNs (the REJECT's ICMP error rate-limited away),
/// retransmitted them and connected at +9.1 s. `syn_column`: whether the file had the
/// retransmit count (a run recorded elsewhere has only the times).
fn held_recreate(syn_column: bool) -> Vec<Sample> {
    let held = [(500u64, 1u32), (600, 2), (700, 3), (810, 4)];
    (0..1000u64)
        .map(|seq| {
            let mut s = match seq {
                252..=907 => sample(seq, Outcome::ConnectionRefused, "", 1.0),
                0..=251 => sample(seq, Outcome::Ok, "v1", 1.0),
                _ => sample(seq, Outcome::Ok, "v2", 1.0),
            };
            if let Some(&(_, retransmits)) = held.iter().find(|(at, _)| *at == seq) {
                s = sample(seq, Outcome::Ok, "v2", 9100.0 - s.intended_ms);
                s.syn_retransmits = syn_column.then_some(retransmits);
            }
            s
        })
        .collect()
}

/// Feeds samples in the order they completed, as the live run does.
fn in_completion_order(mut samples: Vec<Sample>) -> Analyzer {
    samples.sort_by(|a, b| {
        let done = |s: &Sample| s.sent_ms.unwrap_or(s.intended_ms) + s.total_ms.unwrap_or(0.0);
        done(a).total_cmp(&done(b))
    });
    let mut a = Analyzer::new(100.0);
    for s in samples {
        a.push(s);
    }
    a
}

#[test]
fn successes_held_through_an_outage_do_not_split_its_window() {
    for syn_column in [true, false] {
        for completion_order in [true, false] {
            let samples = held_recreate(syn_column);
            let a = if completion_order {
                in_completion_order(samples)
            } else {
                // samples.csv order (send order), as `rollprobe report` reads it.
                let mut a = Analyzer::new(100.0);
                samples.into_iter().for_each(|s| a.push(s));
                a
            };
            let r = a.finish(&header(), None);
            let case = format!("syn column {syn_column}, completion order {completion_order}");
            let w = &r.downtime.windows;
            assert_eq!(w.len(), 1, "{case}: {w:?}");
            assert_eq!((w[0].start_ms, w[0].end_ms), (2520.0, 9080.0), "{case}");
            assert_eq!((w[0].failed, w[0].held_ok), (652, 4), "{case}");
            // Held successes stay ok answers.
            assert_eq!(r.totals.ok, 1000 - 652, "{case}");
            assert!(r.summary().contains("4 late successes inside it"), "{case}");
        }
    }
}

#[test]
fn a_slow_answer_that_came_back_before_any_later_failure_ends_the_window() {
    // Refused at 0..90 ms, then a 50 ms answer at 100 ms and failures after it that
    // failed only once that answer was in: the service did answer at 100 ms.
    let mut samples: Vec<Sample> = (0..10)
        .map(|seq| sample(seq, Outcome::ConnectionRefused, "", 1.0))
        .collect();
    samples.push(sample(10, Outcome::Ok, "v1", 50.0));
    samples.extend((11..20).map(|seq| sample(seq, Outcome::ConnectionRefused, "", 45.0)));
    samples.extend((20..30).map(|seq| sample(seq, Outcome::Ok, "v1", 1.0)));
    let r = in_completion_order(samples).finish(&header(), None);
    let spans: Vec<(f64, f64, u64)> = r
        .downtime
        .windows
        .iter()
        .map(|w| (w.start_ms, w.end_ms, w.held_ok))
        .collect();
    assert_eq!(spans, [(0.0, 100.0, 0), (110.0, 200.0, 0)]);
}

#[test]
fn a_retransmitted_syn_in_a_healthy_run_opens_no_window() {
    let mut samples: Vec<Sample> = (0..50)
        .map(|seq| sample(seq, Outcome::Ok, "v1", 1.0))
        .collect();
    // One SYN lost on the way and sent again 1 s later: slow, but served.
    samples[20] = sample(20, Outcome::Ok, "v1", 1001.0);
    samples[20].syn_retransmits = Some(1);
    let r = in_completion_order(samples).finish(&header(), None);
    assert!(r.downtime.windows.is_empty(), "{:?}", r.downtime.windows);
    assert_eq!(r.totals.ok, 50);
}

#[test]
fn a_held_success_before_the_first_failure_starts_the_window() {
    // The first request into the outage lost its SYN and got through at 500 ms; the
    // ones after it were refused at once.
    let mut samples = vec![sample(0, Outcome::Ok, "v1", 1.0)];
    samples.push(sample(1, Outcome::Ok, "v2", 490.0));
    samples.extend((2..40).map(|seq| sample(seq, Outcome::ConnectionRefused, "", 1.0)));
    samples.extend((40..50).map(|seq| sample(seq, Outcome::Ok, "v2", 1.0)));
    let r = in_completion_order(samples).finish(&header(), None);
    let w = &r.downtime.windows;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].start_ms, w[0].end_ms, w[0].held_ok), (10.0, 400.0, 1));
}

fn footer(duration_ms: f64) -> RunFooter {
    RunFooter {
        ended_at: String::new(),
        duration_ms,
        interrupted: false,
        unanswered: 0,
        trigger: None,
    }
}

#[test]
fn an_open_window_ends_when_probing_stopped() {
    // `--rate 1 --duration 2500ms` against a dead port: ticks at 0, 1 and 2 s, all
    // refused, and probing stopped right after the last one went out.
    let mut a = Analyzer::new(1.0);
    for seq in 0..3u64 {
        let mut s = sample(seq, Outcome::ConnectionRefused, "", 0.2);
        s.intended_ms = seq as f64 * 1000.0;
        s.sent_ms = Some(s.intended_ms);
        a.push(s);
    }
    let r = a.finish(&header(), Some(&footer(2001.0)));
    assert_eq!(r.duration_ms, 2001.0);
    let w = &r.downtime.windows;
    assert_eq!((w[0].start_ms, w[0].end_ms, w[0].open), (0.0, 2001.0, true));
    assert_eq!(r.downtime.total_ms, 2001.0);
    // Probing went on past the last tick: the window ends one period after it.
    let mut a = Analyzer::new(1.0);
    for seq in 0..3u64 {
        let mut s = sample(seq, Outcome::ConnectionRefused, "", 0.2);
        s.intended_ms = seq as f64 * 1000.0;
        a.push(s);
    }
    let r = a.finish(&header(), Some(&footer(4000.0)));
    assert_eq!(r.downtime.windows[0].end_ms, 3000.0);
}

/// 3 s at 100 req/s with a trigger from `trigger.0` to `trigger.1` ms, refused at
/// the ticks in `down`.
fn triggered_run(trigger: (f64, f64), down: std::ops::Range<u64>) -> Report {
    let mut a = Analyzer::new(100.0);
    a.event(Event::new(trigger.0, EventKind::TriggerStart, "deploy"));
    a.event(Event::new(trigger.1, EventKind::TriggerExit, "exit code 0"));
    for seq in 0..300u64 {
        let outcome = if down.contains(&seq) {
            Outcome::ConnectionRefused
        } else {
            Outcome::Ok
        };
        a.push(sample(seq, outcome, "v1", 1.0));
    }
    a.finish(&header(), Some(&footer(3000.0)))
}

#[test]
fn a_window_crossing_a_phase_border_is_cut_there() {
    // The trigger runs from 1.0 s to 1.5 s; the service is down from 1.2 s to 2.0 s.
    let r = triggered_run((1000.0, 1500.0), 120..200);
    let down: Vec<(&str, f64, u64)> = r
        .phases
        .iter()
        .map(|p| (p.name.as_str(), p.downtime_ms, p.failed))
        .collect();
    assert_eq!(
        down,
        [
            ("before", 0.0, 0),
            ("during", 300.0, 30),
            ("after", 500.0, 50)
        ]
    );
    assert_eq!(r.downtime.total_ms, 800.0);
}

#[test]
fn percentiles_are_never_above_the_max_they_are_printed_with() {
    // 5.228 ms is recorded as 5228 us; HDR's bucket for it reaches 5.231 ms.
    let mut a = Analyzer::new(100.0);
    for seq in 0..100u64 {
        let mut s = sample(seq, Outcome::Ok, "v1", 1.0);
        s.intended_ms = 0.0;
        s.sent_ms = Some(if seq % 2 == 0 { 5.228 } else { 5.0 });
        a.push(s);
    }
    let r = a.finish(&header(), None);
    assert_eq!(r.probe.send_lag_max_ms, 5.228);
    assert!(r.probe.send_lag_p99_ms <= 5.228, "{:?}", r.probe);
    assert_eq!(
        r.probe.send_lag_p99_ms, 5.228,
        "the highest equivalent, clamped"
    );
    let l = &r.latency_ms;
    assert!(l.p99 <= l.max && l.p999 <= l.max, "{l:?}");
}

#[test]
fn a_phase_without_ok_answers_shows_a_dash_not_a_latency() {
    let summary = triggered_run((1000.0, 2000.0), 100..200).summary();
    let during = summary
        .lines()
        .find(|l| l.trim_start().starts_with("during"))
        .expect("a during row");
    assert!(during.contains("p99 –"), "{during}");
    assert!(!during.contains("0.00 ms"), "{during}");
}

#[test]
fn a_run_killed_with_requests_in_flight_says_they_went_out() {
    // run.json's end as written when probing stopped: 150 requests out, none in.
    let mut end = footer(1500.0);
    end.unanswered = 150;
    end.interrupted = true;
    let r = RunAnalyzer::new(&header()).finish(&header(), Some(&end));
    let reason = r.invalid_reason.as_deref().unwrap();
    assert!(
        reason.starts_with("150 requests went out but none was answered"),
        "{reason}"
    );
    assert!(!r.valid);
    assert_eq!(r.duration_ms, 1500.0);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.starts_with("150 requests still in flight")));
}

#[test]
fn every_stream_has_its_own_phases_and_the_summary_names_them() {
    // `--connection both`: the keep-alive stream lost 5 requests, the fresh one none.
    let mut h = header();
    h.streams = vec!["local-fresh".into(), "local-keepalive".into()];
    let mut a = RunAnalyzer::new(&h);
    a.event(Event::new(1000.0, EventKind::TriggerStart, "deploy"));
    a.event(Event::new(2000.0, EventKind::TriggerExit, "exit code 0"));
    for stream in ["local-fresh", "local-keepalive"] {
        for seq in 0..300u64 {
            let down = stream == "local-keepalive" && (150..155).contains(&seq);
            let outcome = if down {
                Outcome::ConnectionClosed
            } else {
                Outcome::Ok
            };
            let mut s = sample(seq, outcome, "v1", 1.0);
            s.stream = stream.into();
            a.push(s);
        }
    }
    let r = a.finish(&h, Some(&footer(3000.0)));
    let failed = |i: usize| -> Vec<u64> { r.streams[i].phases.iter().map(|p| p.failed).collect() };
    assert_eq!(failed(0), [0, 0, 0]);
    assert_eq!(failed(1), [0, 5, 0]);
    assert_eq!(r.streams[1].phases[1].downtime_ms, 50.0);
    let summary = r.summary();
    assert!(summary.contains("Phases of local-keepalive"), "{summary}");
    assert!(
        summary.contains("Latency of ok answers of local-fresh"),
        "{summary}"
    );
}

/// 100 req/s for 3 s, answered by `version_of` after `latency_of` ms, with a
/// trigger at 1 s when `trigger` (else the run's own median is the baseline).
fn paced_run(
    trigger: bool,
    latency_of: impl Fn(u64) -> f64,
    version_of: impl Fn(u64) -> &'static str,
) -> Report {
    let mut a = Analyzer::new(100.0);
    if trigger {
        a.event(Event::new(1000.0, EventKind::TriggerStart, "deploy"));
    }
    // Completion order must not matter: feed them backwards.
    for seq in (0..300u64).rev() {
        a.push(sample(seq, Outcome::Ok, version_of(seq), latency_of(seq)));
    }
    a.finish(&header(), Some(&footer(3000.0)))
}

/// Each degraded window's start, end and slow answers.
fn degraded_spans(r: &Report) -> Vec<(f64, f64, u64)> {
    r.degraded
        .windows
        .iter()
        .map(|w| (w.start_ms, w.end_ms, w.slow))
        .collect()
}

#[test]
fn a_slow_span_after_a_fast_baseline_is_one_degraded_window() {
    // Held 1 s from 1.5 s to 1.7 s (a proxy's slow retry), 2 ms otherwise.
    let slow = |seq: u64| {
        if (150..170).contains(&seq) {
            1000.0
        } else {
            2.0
        }
    };
    for trigger in [true, false] {
        let r = paced_run(trigger, slow, |_| "v1");
        let d = &r.degraded;
        assert_eq!(d.baseline_p50_ms, Some(2.0), "trigger {trigger}");
        // max(5 x 2 ms, 2 ms + 100 ms)
        assert_eq!(d.threshold_ms, Some(102.0));
        assert_eq!(d.windows.len(), 1, "{d:?}");
        let w = &d.windows[0];
        assert_eq!(
            (w.start_ms, w.end_ms, w.duration_ms),
            (1500.0, 1700.0, 200.0)
        );
        assert_eq!((w.slow, w.max_ms, w.open), (20, 1000.0, false));
        assert_eq!(w.extra_ms, 20.0 * 998.0);
        assert_eq!(d.total_ms, 200.0);
        // Slow is not down.
        assert!(r.downtime.windows.is_empty());
        assert_eq!(r.totals.ok, 300);
    }
}

#[test]
fn noise_below_the_rule_gives_no_degraded_window() {
    // 1..10 ms, with a 60 ms hiccup every half second: all under 5 x p50 + 100 ms.
    let noisy = |seq: u64| {
        if seq % 50 == 7 {
            60.0
        } else {
            (seq % 10 + 1) as f64
        }
    };
    for trigger in [true, false] {
        let r = paced_run(trigger, noisy, |_| "v1");
        assert!(r.degraded.windows.is_empty(), "{:?}", r.degraded);
        assert!(r.degraded.threshold_ms.unwrap() > 100.0);
        assert_eq!(r.degraded.total_ms, 0.0);
    }
}

#[test]
fn fewer_fast_answers_than_needed_do_not_split_a_degraded_window() {
    // Slow at 1.0 s and 1.2 s, two fast answers between: one window of two slow
    // answers, ended by the first of the three fast ones after 1.02 s.
    let slow = |seq: u64| if seq == 100 || seq == 103 { 500.0 } else { 1.0 };
    let r = paced_run(false, slow, |_| "v1");
    assert_eq!(degraded_spans(&r), [(1000.0, 1040.0, 2)]);
}

#[test]
fn a_failure_ends_a_degraded_window_and_an_outage_follows() {
    // The timeouts complete after the slow answers, which were therefore not held
    // through an outage (that would put them inside its window instead).
    let mut a = Analyzer::new(100.0);
    for seq in 0..300u64 {
        let (outcome, latency) = match seq {
            100..=109 => (Outcome::Ok, 800.0),
            110..=119 => (Outcome::ResponseTimeout, 1000.0),
            _ => (Outcome::Ok, 1.0),
        };
        a.push(sample(seq, outcome, "v1", latency));
    }
    let r = a.finish(&header(), Some(&footer(3000.0)));
    assert_eq!(degraded_spans(&r), [(1000.0, 1100.0, 10)]);
    let o: Vec<(f64, f64)> = r
        .downtime
        .windows
        .iter()
        .map(|w| (w.start_ms, w.end_ms))
        .collect();
    assert_eq!(o, [(1100.0, 1200.0)]);
}

#[test]
fn a_held_answer_is_placed_where_it_arrived() {
    // v2 starts at 3.5 s; the requests of 1.5 s .. 1.6 s were held 2 s by a proxy
    // and answered by v2 when they came back, at 3.5 s .. 3.6 s.
    let held = |seq: u64| (150..160).contains(&seq);
    let r = paced_run(
        true,
        |seq| if held(seq) { 2000.0 } else { 2.0 },
        |seq| if held(seq) || seq >= 350 { "v2" } else { "v1" },
    );
    let seen: Vec<(&str, f64, f64, u64)> = r
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.first_ms, v.last_ms, v.count))
        .collect();
    // Only ticks up to 2.99 s were sent: v1 answers to 2.992 s, v2's held ones
    // from 3.5 s.
    assert_eq!(seen, [("v1", 2.0, 2992.0, 290), ("v2", 3500.0, 3590.0, 10)]);
    // In order of arrival the version changed once, not three times.
    assert_eq!(r.flips, 1);
    assert_eq!(r.mixed_ms, 0.0);
    // The holding shows as slowness on intended time.
    assert_eq!(degraded_spans(&r), [(1500.0, 1600.0, 10)]);
}

#[test]
fn every_stream_has_its_own_degraded_windows() {
    // The fresh stream waited 1 s for its connects from 1.5 s to 1.6 s; the
    // keep-alive one was served at once throughout.
    let mut h = header();
    h.streams = vec!["local-fresh".into(), "local-keepalive".into()];
    let mut a = RunAnalyzer::new(&h);
    for stream in ["local-fresh", "local-keepalive"] {
        for seq in 0..300u64 {
            let slow = stream == "local-fresh" && (150..160).contains(&seq);
            let mut s = sample(seq, Outcome::Ok, "v1", if slow { 1000.0 } else { 1.0 });
            s.stream = stream.into();
            a.push(s);
        }
    }
    let r = a.finish(&h, Some(&footer(3000.0)));
    assert_eq!(degraded_spans(&r), [(1500.0, 1600.0, 10)]);
    let per_stream: Vec<usize> = r.streams.iter().map(|s| s.degraded.windows.len()).collect();
    assert_eq!(per_stream, [1, 0]);
    let summary = r.summary();
    assert!(
        summary.contains("Degraded windows of local-fresh: ok answers slower than 101.0 ms"),
        "{summary}"
    );
    assert!(
        !summary.contains("Degraded windows of local-keepalive"),
        "{summary}"
    );
}
