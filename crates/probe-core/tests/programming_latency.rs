//! The network programming latency's bound, over generated runs whose true delay is
//! known.
//!
//! Each run is what a client sees when a pod leaves the EndpointSlice while the
//! node's rules keep it for `delay` ms: new connections are spread at random over
//! `n` endpoints (random DNAT), the dropped pod refuses once its app stopped, and the
//! rules drop it at a known time. The figure must never exceed the true delay (it is
//! a lower bound), and it must come within its stated slack as often as the
//! geometric distribution says: the k-th request before the rule change is the last
//! one to hit the pod with probability (1 - 1/n)^(k-1) / n, so the last hit lies
//! within K periods with probability 1 - (1 - 1/n)^K. The seeds are fixed, so the
//! test is deterministic; the fractions it asserts are derived from that law with
//! four standard deviations of room for the finite number of seeds.

use std::net::IpAddr;

use probe_core::{
    write_windows_csv, Analyzer, Event, EventKind, Outcome, ProbeConfig, ProgrammingLatency,
    Report, RunHeader, Sample, Subject, Target, PROGRAMMING_SLACK_CONFIDENCE,
};

const RATE: f64 = 100.0;
const PERIOD_MS: f64 = 1000.0 / RATE;
/// When the pod leaves the EndpointSlice (its pods were ready long before, so no
/// other pod is suspected of having become ready too early).
const SLICE_CHANGE_MS: f64 = 8000.0;
/// From the slice change to the pod's app refusing connections.
const STOPS_AFTER_MS: f64 = 100.0;
const SEEDS: u64 = 400;

/// splitmix64: a small, well-mixed generator, so the runs need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize
    }
}

fn pod(i: usize) -> String {
    format!("web-{i}")
}

fn ip(i: usize) -> IpAddr {
    format!("10.244.0.{}", 10 + i).parse().unwrap()
}

fn endpoint(at_ms: f64, kind: EventKind, i: usize, node: Option<&str>) -> Event {
    let subject = Subject::endpoint("web", ip(i), Some(8080)).with_pod(pod(i));
    let subject = match node {
        Some(node) => subject.with_node(node),
        None => subject,
    };
    Event::new(at_ms, kind, "web").with_subject(subject)
}

/// The events of one run: `n` pods ready from the start, pod 0 terminating and
/// dropped from the EndpointSlice at [`SLICE_CHANGE_MS`], node-1's rules dropping it
/// `delay_ms` later.
fn events(n: usize, delay_ms: f64) -> Vec<Event> {
    let mut events = Vec::new();
    for i in 0..n {
        events.push(
            Event::new(0.0, EventKind::PodReady, "web")
                .with_subject(Subject::pod(pod(i), Some(ip(i)))),
        );
        events.push(endpoint(0.0, EventKind::EndpointAdded, i, None));
        events.push(endpoint(0.0, EventKind::EndpointAdded, i, Some("node-1")));
    }
    events.push(Event::new(7000.0, EventKind::TriggerStart, "kubectl scale"));
    events.push(
        Event::new(SLICE_CHANGE_MS, EventKind::PodTerminating, "web")
            .with_subject(Subject::pod(pod(0), Some(ip(0)))),
    );
    events.push(endpoint(
        SLICE_CHANGE_MS,
        EventKind::EndpointRemoved,
        0,
        None,
    ));
    events.push(endpoint(
        SLICE_CHANGE_MS + delay_ms,
        EventKind::EndpointRemoved,
        0,
        Some("node-1"),
    ));
    events
}

/// The samples of one run: until the rules change each new connection goes to one of
/// the `n` pods at random, after it to one of the others; pod 0 answers until its app
/// stops, then refuses.
fn samples(n: usize, delay_ms: f64, rng: &mut Rng) -> Vec<Sample> {
    let rules_change = SLICE_CHANGE_MS + delay_ms;
    let first = ((SLICE_CHANGE_MS - 1000.0) / PERIOD_MS) as u64;
    let last = ((rules_change + 1000.0) / PERIOD_MS) as u64;
    (first..=last)
        .map(|seq| {
            let intended_ms = seq as f64 * PERIOD_MS;
            let sent_ms = intended_ms + 0.05 + rng.unit() * 0.5;
            let to = if sent_ms < rules_change {
                rng.below(n)
            } else {
                1 + rng.below(n - 1)
            };
            let refused = to == 0 && sent_ms >= SLICE_CHANGE_MS + STOPS_AFTER_MS;
            let outcome = if refused {
                Outcome::ConnectionRefused
            } else {
                Outcome::Ok
            };
            Sample {
                sent_ms: Some(sent_ms),
                total_ms: Some(if refused { 0.2 } else { 1.5 }),
                pod: (!refused).then(|| pod(to)),
                status: (!refused).then_some(200),
                connection: Some("new".into()),
                ..Sample::new("local-fresh", seq, intended_ms, outcome)
            }
        })
        .collect()
}

fn header() -> RunHeader {
    let config = ProbeConfig {
        rate: RATE,
        ..ProbeConfig::new(Target::parse("http://127.0.0.1:1/").unwrap())
    };
    RunHeader {
        started_at: "2026-01-01T00:00:00.000Z".into(),
        ..RunHeader::new(&config)
    }
}

/// The report of one generated run.
fn run(n: usize, delay_ms: f64, seed: u64) -> Report {
    let mut rng = Rng(seed);
    let mut a = Analyzer::new(RATE);
    for e in events(n, delay_ms) {
        a.event(e);
    }
    for s in samples(n, delay_ms, &mut rng) {
        a.push(s);
    }
    a.finish(&header(), None)
}

/// The figure every stale-route window of one generated run carries (they must agree).
fn measure(n: usize, delay_ms: f64, seed: u64) -> ProgrammingLatency {
    let report = run(n, delay_ms, seed);
    let windows = &report.downtime.windows;
    let figures: Vec<&ProgrammingLatency> = windows
        .iter()
        .filter_map(|w| w.programming_latency.as_ref())
        .collect();
    assert!(
        !figures.is_empty(),
        "seed {seed}: no window carries the figure: {windows:#?}"
    );
    assert!(
        figures.iter().all(|f| f == &figures[0]),
        "seed {seed}: windows disagree"
    );
    figures[0].clone()
}

/// 1 - (1 - 1/n)^k: the chance that the last hit is among the k requests before the
/// rule change.
fn within(n: usize, k: u32) -> f64 {
    1.0 - (1.0 - 1.0 / n as f64).powi(k as i32)
}

/// The least fraction of `SEEDS` runs that an event of probability `p` reaches,
/// four standard deviations below its mean.
fn at_least_fraction(p: f64) -> f64 {
    p - 4.0 * (p * (1.0 - p) / SEEDS as f64).sqrt()
}

fn check_bound(n: usize) {
    let mut within_slack = 0;
    let mut within_n = 0;
    let mut slack_periods = None;
    for seed in 0..SEEDS {
        // A true delay between 300 ms and 1.5 s, not aligned with the ticks.
        let delay_ms = 300.0 + (seed as f64 * 37.3) % 1200.0;
        let f = measure(n, delay_ms, seed * 7919 + n as u64);
        assert_eq!(f.pod, "web-0");
        assert_eq!(f.endpoints, n as u32, "{f:?}");
        assert_eq!(f.slice_changed_ms, SLICE_CHANGE_MS);
        assert_eq!(f.node_syncs.len(), 1);
        assert!((f.node_syncs[0].after_ms - delay_ms).abs() < 1e-9, "{f:?}");
        // A lower bound, always.
        assert!(
            f.at_least_ms() <= delay_ms,
            "seed {seed}: measured {} ms > true {delay_ms} ms",
            f.at_least_ms()
        );
        let early_ms = delay_ms - f.at_least_ms();
        within_slack += u32::from(early_ms <= f.slack_ms());
        within_n += u32::from(early_ms <= n as f64 * PERIOD_MS);
        slack_periods = Some(f.slack_periods());
    }
    let k = slack_periods.unwrap();
    let p_slack = within(n, k);
    assert!(
        p_slack >= PROGRAMMING_SLACK_CONFIDENCE && within(n, k - 1) < PROGRAMMING_SLACK_CONFIDENCE
    );
    let seeds = SEEDS as f64;
    let frac_slack = f64::from(within_slack) / seeds;
    assert!(
        frac_slack >= at_least_fraction(p_slack),
        "n = {n}: within the slack ({k} periods) in {within_slack} of {SEEDS} runs, expected about {p_slack:.3}"
    );
    // Within n periods ("about n probe periods early"): about 1 - (1 - 1/n)^n of the
    // runs, neither much less nor much more (the bound is as tight as stated).
    let p_n = within(n, n as u32);
    let frac_n = f64::from(within_n) / seeds;
    let room = p_n - at_least_fraction(p_n);
    assert!(
        (frac_n - p_n).abs() <= room,
        "n = {n}: within {n} periods in {within_n} of {SEEDS} runs, expected {p_n:.3} ± {room:.3}"
    );
}

#[test]
fn the_figure_is_a_lower_bound_within_its_slack_over_two_endpoints() {
    check_bound(2);
}

#[test]
fn the_figure_is_a_lower_bound_within_its_slack_over_three_endpoints() {
    check_bound(3);
}

/// The summary, windows.csv (its last column) and report.json say the same figure.
#[test]
fn the_figure_reads_the_same_in_the_summary_csv_and_json() {
    let report = run(2, 800.0, 1);
    let w = report
        .downtime
        .windows
        .iter()
        .find(|w| w.programming_latency.is_some())
        .expect("a stale-route window");
    let sentence = w.programming_latency.as_ref().unwrap().to_string();
    assert!(
        sentence.starts_with("network programming latency as the client saw it: at least "),
        "{sentence}"
    );
    // Once in the summary, however many windows share it; the others point to it.
    let summary = report.summary();
    assert_eq!(summary.matches(&sentence).count(), 1, "{summary}");
    assert!(
        summary.contains("network programming latency: as for window #"),
        "{summary}"
    );

    let dir = std::env::temp_dir().join(format!("rollprobe-programming-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("windows.csv");
    write_windows_csv(&path, &report).unwrap();
    let mut csv = csv::Reader::from_path(&path).unwrap();
    let header = csv.headers().unwrap().clone();
    assert_eq!(header.iter().next_back(), Some("programming_latency"));
    let rows: Vec<csv::StringRecord> = csv.records().map(Result::unwrap).collect();
    std::fs::remove_dir_all(&dir).unwrap();
    let first = report
        .downtime
        .windows
        .iter()
        .position(|w| w.programming_latency.is_some())
        .unwrap();
    assert_eq!(rows[first].iter().next_back(), Some(sentence.as_str()));

    let json = serde_json::to_value(&report).unwrap();
    let key = &json["downtime"]["windows"][first]["programming_latency"];
    assert_eq!(key["endpoints"], 2, "{key}");
    assert_eq!(key["slice_changed_ms"], SLICE_CHANGE_MS);
    assert_eq!(key["text"], sentence.as_str());
}
