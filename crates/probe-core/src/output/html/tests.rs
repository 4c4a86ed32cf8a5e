use super::*;
use crate::analyze::Analyzer;
use crate::config::RecordedConfig;
use crate::event::{Event, EventKind, Subject};
use crate::report::OutageWindow;
use crate::sample::{RunHeader, Sample};

/// A real (small) report from the analyzer, for the tests to reshape: 3 s
/// at 1000 req/s, v1 then 300 refused then v2.
pub(crate) fn base_report(label: &str, target: &str) -> Report {
    let header = RunHeader {
        schema: crate::sample::SAMPLES_SCHEMA.into(),
        label: Some(label.into()),
        target: target.into(),
        config: RecordedConfig::for_tests(1000.0, 2000, 5016),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        run_id: String::new(),
        streams: Vec::new(),
    };
    let mut a = Analyzer::new(1000.0);
    for seq in 0..3000u64 {
        let failed = (1200..1500).contains(&seq);
        let outcome = if failed {
            Outcome::ConnectionRefused
        } else {
            Outcome::Ok
        };
        a.push(Sample {
            sent_ms: Some(seq as f64 + 0.1),
            errno: failed.then_some(111),
            errno_name: failed.then(|| "ECONNREFUSED".into()),
            status: (!failed).then_some(200),
            version: (!failed).then(|| if seq < 1200 { "v1" } else { "v2" }.into()),
            connect_ms: Some(0.2),
            ttfb_ms: Some(1.0),
            total_ms: Some(1.0 + (seq % 7) as f64),
            ..Sample::new("", seq, seq as f64, outcome)
        });
    }
    a.finish(&header, None)
}

fn seconds(n: u64, rate: u64) -> Vec<SecondStats> {
    (0..n)
        .map(|second| {
            let bad = second % 97 < 3;
            let mut failures = std::collections::BTreeMap::new();
            if bad {
                failures.insert("connection_refused".into(), rate / 2);
                failures.insert("host_unreachable".into(), rate / 4);
            }
            SecondStats {
                second,
                sent: rate,
                ok: if bad { rate / 4 } else { rate },
                failures,
                versions: vec![if second < n / 2 { "v1" } else { "v2" }.into()],
                p50_ms: Some(1.25 + (second % 10) as f64),
                p99_ms: Some(9.5 + (second % 13) as f64),
            }
        })
        .collect()
}

/// The page with every occurrence of the (escaped) target text taken out.
fn without_target(page: &str, target: &str) -> String {
    page.replace(&esc(target), "")
}

#[test]
fn a_small_run_draws_its_bars_window_versions_and_events() {
    let mut r = base_report("gap", "http://127.0.0.1:8080/test/version");
    r.events.push(
        Event::new(1190.0, EventKind::PodTerminating, "backend-1")
            .with_subject(Subject::pod("backend-1", None)),
    );
    r.downtime.windows[0].cause = Some("no ready endpoint".into());
    let page = render_html(&r);
    assert_eq!(r.per_second.len(), 3);
    // Three one-second bars, each with its tooltip.
    assert_eq!(page.matches("<g><title>+").count(), 3, "{page}");
    assert!(page.contains("connection_refused 300"), "{page}");
    assert!(page.contains("window #1 +1.200 s .. +1.500 s"), "{page}");
    assert!(page.contains("<td>no ready endpoint</td>"));
    assert!(page.contains(">pod_terminating</text>"), "{page}");
    assert!(page.contains("<td>v1</td>") && page.contains("<td>v2</td>"));
    assert!(page.contains("ECONNREFUSED (111)"));
    // Closed tags balance: a rough check that nothing was cut short.
    for tag in ["svg", "table", "g", "title", "pattern"] {
        assert_eq!(
            page.matches(&format!("<{tag}>")).count() + page.matches(&format!("<{tag} ")).count(),
            page.matches(&format!("</{tag}>")).count(),
            "<{tag}> opened and closed unequally"
        );
    }
}

#[test]
fn text_from_users_and_servers_is_escaped() {
    let evil = "<script>alert('x')</script>&\"";
    let target = "http://127.0.0.1/<img src=x onerror=alert(1)>";
    let mut r = base_report(evil, target);
    r.downtime.windows[0].cause = Some(evil.into());
    r.versions[0].version = evil.into();
    r.per_second[0].versions = vec![evil.into()];
    r.events.push(
        Event::new(10.0, EventKind::Other(evil.into()), evil)
            .with_subject(Subject::pod(evil, None).with_node(evil)),
    );
    r.failures.insert(evil.into(), 1);
    r.failure_details[0].hint = evil.into();
    let page = render_html(&r);
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("alert('x')"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"));
    assert!(page.contains(&esc(target)));
}

#[test]
fn the_page_refers_to_nothing_outside_itself() {
    let target = "https://example.invalid/health";
    let mut r = base_report("offline", target);
    r.per_second = seconds(120, 1000);
    let page = without_target(&render_html(&r), target);
    for needle in [
        "http://", "https://", "//", "src=", "href=", "@import", "<script", "<link",
    ] {
        assert!(!page.contains(needle), "the page contains {needle:?}");
    }
    // The only url() references are the page's own patterns.
    for (i, _) in page.match_indices("url(") {
        assert!(page[i..].starts_with("url(#k"), "{}", &page[i..i + 20]);
    }
}

#[test]
fn a_one_hour_run_at_1000_per_second_stays_under_2_mb() {
    let target = "http://10.96.0.10/test/version";
    let mut r = base_report("one-hour", target);
    r.duration_ms = 3_600_000.0;
    r.per_second = seconds(3600, 1000);
    // A flapping service: many windows with long causes, many events.
    let cause = "no ready endpoint (the Service rejects connections): old pods terminating since +12.31 s (backend-a, backend-b, backend-c and 2 more), new pod backend-x not ready until +15.02 s".to_string();
    let template = r.downtime.windows[0].clone();
    r.downtime.windows = (0..2000)
        .map(|i| OutageWindow {
            start_ms: i as f64 * 1800.0,
            end_ms: i as f64 * 1800.0 + 300.0,
            cause: Some(cause.as_str().into()),
            ..template.clone()
        })
        .collect();
    r.events = (0..5000)
        .map(|i| {
            Event::new(
                i as f64 * 700.0,
                EventKind::PodReady,
                format!("backend-{i} 10.244.1.{} v2", i % 250),
            )
            .with_subject(Subject::pod(format!("backend-{i}"), None).with_version("v2"))
        })
        .collect();
    let page = render_html(&r);
    assert!(page.len() < 2_000_000, "{} bytes", page.len());
    // Seconds were grouped: 3600 seconds in 600 bars of 6 s.
    assert_eq!(page.matches("<g><title>+").count(), 600);
    assert!(page.contains("Each bar is 6 seconds"));
    assert!(page.contains("windows.csv has every one"));
}

#[test]
fn every_failure_kind_has_its_own_colour_and_pattern_pair() {
    let mut seen = std::collections::BTreeSet::new();
    for o in Outcome::ALL
        .iter()
        .filter(|o| o.is_failure() && !o.is_local())
    {
        let l = look(*o);
        assert!(
            !matches!(l.pattern, Pattern::Solid),
            "{o:?} is not patterned"
        );
        assert!(
            seen.insert((l.fill, l.pattern as u8)),
            "{o:?} looks like another kind"
        );
    }
}

#[test]
fn matrix_page_escapes_cases_and_links_and_groups_repeats() {
    let evil = "<b>\"x\"&";
    let reports = vec![
        (
            base_report(&format!("{evil}#1"), "http://127.0.0.1:1/"),
            Some(format!("{evil}/1/report.html")),
        ),
        (
            base_report(&format!("{evil}#2"), "http://127.0.0.1:1/"),
            None,
        ),
        (base_report("plain", "http://127.0.0.1:1/"), None),
    ];
    let m = crate::matrix::Matrix::from_reports(&reports);
    assert_eq!(m.summary().len(), 2, "{evil}#1 and #2 are one case");
    assert_eq!(m.runs[1].run, 2);
    let page = render_matrix_html(&m, "rollprobe compare");
    assert!(!page.contains(evil));
    assert!(page.contains(&esc(evil)));
    assert!(page.contains(&format!("href=\"{}/1/report.html\"", esc(evil))));
    // Failures stacked by kind, told apart by pattern and letter too.
    assert!(page.contains("fill=\"url(#k0)\""));
    assert!(page.contains("</b> connection_refused</span>"));
    assert!(!page.contains("://"), "no address outside the page");
}

/// A report like issue 24 case 4's `--rate 100000` run: nothing failed at the
/// target, the prober skipped most ticks.
pub(crate) fn invalid_report(label: &str) -> Report {
    let mut r = base_report(label, "http://127.0.0.1:1/");
    r.totals.failed = 0;
    r.totals.availability = Some(1.0);
    r.downtime.total_ms = 0.0;
    r.downtime.longest_ms = 0.0;
    r.downtime.windows.clear();
    r.failures.clear();
    r.valid = false;
    r.invalid_reason =
        Some("91983 of 94983 ticks failed on the prober's side or were skipped".into());
    r
}

#[test]
fn an_invalid_run_opens_its_page_with_the_banner_before_any_figure() {
    let page = render_html(&invalid_report("overloaded"));
    let banner = page
        .find("<p class=\"invalid\" role=\"alert\">not a valid measurement: 91983 of 94983 ticks")
        .expect("the banner");
    let body = page.find("<body>").unwrap();
    let first_figure = page.find("<div class=\"figure").unwrap();
    assert!(
        body < banner && banner < first_figure,
        "banner after a figure"
    );
    assert!(banner < page.find("<header>").unwrap());
    // Its 100 % availability is the prober's figure: marked, never a plain good one.
    assert!(
        page.contains("<div class=\"figure bad\">availability (not valid)<b>100.000%</b></div>"),
        "{}",
        &page[first_figure..first_figure + 600]
    );
    // A valid run has neither.
    let valid = render_html(&base_report("fine", "http://127.0.0.1:1/"));
    assert!(!valid.contains("not a valid measurement"));
    assert!(valid.contains("<div class=\"figure bad\">availability<b>"));
}

#[test]
fn matrix_page_bans_an_invalid_run_and_never_recommends_it() {
    let reports = vec![
        (invalid_report("overloaded"), None),
        (base_report("recreate", "http://127.0.0.1:1/"), None),
    ];
    let m = crate::matrix::Matrix::from_reports(&reports);
    let page = render_matrix_html(&m, "rollprobe compare");
    let banner = page
        .find("not a valid measurement: overloaded run 1: 91983 of 94983 ticks")
        .expect("the banner");
    assert!(banner < page.find("<div class=\"figure").unwrap());
    // The invalid run lost less than the valid one, yet is not recommended.
    assert!(
        page.contains("recommended<b>no case</b>"),
        "{}",
        &page[banner..banner + 800]
    );
    assert!(page.contains(
        "recommendation: no case is better beyond the run-to-run spread (overloaded no valid run; recreate"
    ));
    assert!(page.contains("rests on 1 valid run; 1 invalid run not counted)"));
}

#[test]
fn degraded_windows_are_shaded_apart_from_outages_with_their_legend() {
    let plain = render_html(&base_report("fast", "http://127.0.0.1:1/"));
    assert!(plain.contains("outage window</span>"));
    assert!(!plain.contains("class=\"degraded\""));
    assert!(!plain.contains("degraded window (slow answers)"));

    let mut r = base_report("slow", "http://127.0.0.1:1/");
    r.degraded.windows.push(crate::report::DegradedWindow {
        start_ms: 2000.0,
        end_ms: 2500.0,
        duration_ms: 500.0,
        slow: 500,
        extra_ms: 450_000.0,
        max_ms: 1200.0,
        open: false,
    });
    r.degraded.total_ms = 500.0;
    let page = render_html(&r);
    // Drawn (blue, dashed, labelled D1), in the legend and in its own table.
    assert!(page.contains("<g class=\"degraded\"><title>degraded window D1 +2.000 s .. +2.500 s (500 ms), 500 slow answers"));
    assert!(page.contains("degraded window (slow answers)</span>"));
    assert!(page.contains("<h2>Degraded windows</h2>"));
    assert!(page.contains("<td class=\"n\">D1</td><td>+2.000 s</td><td>+2.500 s</td>"));
    // The outage keeps its own shading.
    assert!(page.contains("<g class=\"window\">"));
}

#[test]
fn with_several_streams_the_header_shows_each_streams_failed_and_downtime() {
    // Issue 24 case 5: the header said "downtime in 0 windows" (the first stream's)
    // beside "failed 5" (every stream's). Here the fresh stream is healthy and the
    // keep-alive one fails for 50 ms.
    let header = RunHeader {
        schema: crate::sample::SAMPLES_SCHEMA.into(),
        label: Some("both".into()),
        target: "http://127.0.0.1:1/".into(),
        config: RecordedConfig::for_tests(1000.0, 2000, 5016),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        run_id: String::new(),
        streams: Vec::new(),
    };
    let trigger = vec![
        Event::new(400.0, EventKind::TriggerStart, "redeploy"),
        Event::new(600.0, EventKind::TriggerExit, "exit code 0"),
    ];
    let mut a = crate::analyze::RunAnalyzer::with_events(&header, trigger);
    for stream in ["local-fresh", "local-keepalive"] {
        for seq in 0..1000u64 {
            let failed = stream == "local-keepalive" && (500..550).contains(&seq);
            let outcome = if failed {
                Outcome::ConnectionReset
            } else {
                Outcome::Ok
            };
            a.push(Sample {
                sent_ms: Some(seq as f64),
                total_ms: Some(1.0),
                version: (!failed).then(|| "v1".into()),
                ..Sample::new(stream, seq, seq as f64, outcome)
            });
        }
    }
    let r = a.finish(&header, None);
    assert_eq!(r.streams.len(), 2);
    let page = render_html(&r);
    let head = &page[..page.find("</header>").expect("a header")];
    for needle in [
        "local-fresh: failed",
        "local-fresh: downtime in 0 windows",
        "local-keepalive: failed",
        "local-keepalive: downtime in 1 window",
        "local-keepalive: latency p50 / p99",
    ] {
        assert!(head.contains(needle), "{needle} missing from the header");
    }
    assert!(
        !head.contains(">downtime in"),
        "no unlabelled first-stream downtime beside the summed failures"
    );
    // Each stream's phases are a table of their own; the first stream's are not shown
    // as if they were the run's.
    assert!(page.contains("<h2>Phases of local-fresh</h2>"), "{page}");
    assert!(page.contains("<h2>Phases of local-keepalive</h2>"));
    assert!(!page.contains("<h2>Phases</h2>"));
}

/// A stale-route window's programming latency stands in its cause cell, escaped,
/// after the cause.
#[test]
fn the_programming_latency_follows_the_cause_in_the_windows_table() {
    let mut r = base_report("stale", "http://127.0.0.1:8080/test/version");
    let w = &mut r.downtime.windows[0];
    w.cause = Some("connections refused while pod web<a> was terminating".into());
    let figure = crate::cause::ProgrammingLatency {
        pod: "web<a>".into(),
        address: None,
        slice_changed_ms: 1000.0,
        last_reached_ms: 1499.0,
        endpoints: 2,
        period_ms: 1.0,
        node_syncs: Vec::new(),
        proxy_syncs: Vec::new(),
    };
    w.programming_latency = Some(figure.clone());
    let page = render_html(&r);
    let cell = format!(
        "{}; {}",
        esc("connections refused while pod web<a> was terminating"),
        esc(&figure.to_string())
    );
    assert!(page.contains(&cell), "{page}");
    assert!(!page.contains("web<a>"), "unescaped");
}
