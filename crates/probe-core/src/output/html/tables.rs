//! The tables under the pictures: windows, failures, versions, pods, events,
//! phases (cut to a length, with a pointer to the CSV files that hold every row).

use std::fmt::Write as _;

use super::*;
use crate::report::Phase;

pub(super) fn tables(out: &mut String, r: &Report, kinds: &[&str]) {
    out.push_str("<h2>Failure kinds</h2>\n");
    if r.failure_details.is_empty() {
        out.push_str("<p>No request failed.</p>\n");
    } else {
        out.push_str("<table><tr><th>kind</th><th>errno</th><th>message</th><th class=\"n\">count</th><th>what it usually means</th></tr>\n");
        let mut details: Vec<_> = r.failure_details.iter().collect();
        details.sort_by_key(|d| std::cmp::Reverse(d.count));
        for d in details {
            let i = kinds.iter().position(|k| *k == d.kind).unwrap_or(0);
            let errno = match (&d.errno_name, d.errno) {
                (Some(name), Some(n)) => format!("{} ({n})", esc(name)),
                (None, Some(n)) => n.to_string(),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{} <b>{}</b> {}</td><td>{errno}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                swatch(i),
                esc(&letter(outcome(&d.kind)).to_string()),
                esc(&d.kind),
                esc(d.message.as_deref().unwrap_or("")),
                d.count,
                esc(&d.hint)
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Outage windows</h2>\n");
    if r.downtime.windows.is_empty() {
        out.push_str("<p>No outage window: every failure-free stretch was unbroken.</p>\n");
    } else {
        out.push_str("<table><tr><th class=\"n\">#</th><th>from</th><th>to</th><th class=\"n\">length</th><th class=\"n\">failed</th><th>kinds</th><th>cause</th><th>after event</th></tr>\n");
        for (i, w) in r.downtime.windows.iter().enumerate().take(MAX_WINDOWS) {
            let mut kinds_text: Vec<(&String, &u64)> = w.kinds.iter().collect();
            kinds_text.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let kinds_text = kinds_text
                .iter()
                .map(|(k, n)| format!("{} {n}", esc(k)))
                .collect::<Vec<_>>()
                .join(", ");
            let after = w
                .after_event
                .as_ref()
                .map(|e| {
                    format!(
                        "{} after {}{}{}",
                        duration(e.offset_ms),
                        esc(&e.kind),
                        if e.detail.is_empty() { "" } else { ": " },
                        esc(&e.detail)
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{kinds_text}</td><td>{}</td><td>{after}</td></tr>",
                i + 1,
                offset(w.start_ms),
                offset(w.end_ms),
                if w.open { " (still open at the end)" } else { "" },
                duration(w.duration_ms),
                w.failed,
                esc(&[
                    w.cause.as_ref().map(ToString::to_string),
                    w.programming_latency.as_ref().map(ToString::to_string),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")),
            );
        }
        out.push_str("</table>\n");
        if r.downtime.windows.len() > MAX_WINDOWS {
            let _ = writeln!(
                out,
                "<p class=\"note\">The first {MAX_WINDOWS} of {} windows; windows.csv has every one.</p>",
                r.downtime.windows.len()
            );
        }
    }

    degraded_table(out, &r.degraded);

    out.push_str("<h2>Versions</h2>\n");
    if r.versions.is_empty() {
        out.push_str("<p>No version was read from the answers.</p>\n");
    } else {
        out.push_str("<table><tr><th>version</th><th>first answer</th><th>last answer</th><th class=\"n\">answers</th></tr>\n");
        for v in r.versions.iter().take(MAX_VERSIONS) {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                esc(&v.version),
                offset(v.first_ms),
                offset(v.last_ms),
                v.count
            );
        }
        out.push_str("</table>\n");
        if let Some(m) = &r.mixed {
            if r.mixed_ms > 0.0 {
                let _ = writeln!(
                    out,
                    "<p>Both {} and {} answered for {} ({} .. {}); {} version change(s) between consecutive answers.</p>",
                    esc(&m.old),
                    esc(&m.new),
                    duration(r.mixed_ms),
                    offset(m.start_ms),
                    offset(m.end_ms),
                    r.flips
                );
            } else {
                let _ = writeln!(
                    out,
                    "<p>{} and {} never answered in the same stretch: {} version change(s) between consecutive answers.</p>",
                    esc(&m.old),
                    esc(&m.new),
                    r.flips
                );
            }
        }
    }

    // The top-level phases are the first stream's: with several streams, each one's own.
    let phase_tables: Vec<(String, &[Phase])> = if r.streams.len() > 1 {
        r.streams
            .iter()
            .map(|st| (format!("Phases of {}", st.name), st.phases.as_slice()))
            .collect()
    } else {
        vec![("Phases".to_string(), r.phases.as_slice())]
    };
    for (title, phases) in phase_tables {
        if phases.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<h2>{}</h2>", esc(&title));
        out.push_str("<table><tr><th>phase</th><th>from</th><th>to</th><th class=\"n\">sent</th><th class=\"n\">ok</th><th class=\"n\">failed</th><th class=\"n\">downtime</th><th class=\"n\">p99</th></tr>\n");
        for p in phases {
            // A phase without an ok answer has no latency to show.
            let p99 = if p.ok > 0 {
                format!("{:.1} ms", p.latency_ms.p99)
            } else {
                "–".to_string()
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                esc(&p.name),
                offset(p.start_ms),
                p.end_ms.map(offset).unwrap_or_else(|| "end".into()),
                p.sent,
                p.ok,
                p.failed,
                duration(p.downtime_ms),
                p99
            );
        }
        out.push_str("</table>\n");
    }

    out.push_str("<h2>Events</h2>\n");
    if r.events.is_empty() {
        out.push_str("<p>No event was recorded.</p>\n");
    } else {
        out.push_str("<table><tr><th>at</th><th>kind</th><th>detail</th><th>about</th></tr>\n");
        for e in r.events.iter().take(MAX_EVENTS) {
            let s = &e.subject;
            let about: Vec<String> = [
                ("pod", s.pod.clone()),
                ("address", s.address.map(|a| a.to_string())),
                ("node", s.node.clone()),
                ("version", s.version.clone()),
                ("service", s.service.clone()),
                ("deployment", s.deployment.clone()),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {}", esc(&v))))
            .collect();
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                offset(e.at_ms),
                esc(e.kind.as_str()),
                esc(&e.detail),
                about.join(", ")
            );
        }
        out.push_str("</table>\n");
        if r.events.len() > MAX_EVENTS {
            let _ = writeln!(
                out,
                "<p class=\"note\">The first {MAX_EVENTS} of {} events; events.csv has every one.</p>",
                r.events.len()
            );
        }
    }
    let _ = writeln!(
        out,
        "<p class=\"note\">rollprobe report ({}), {} .. {}.</p>",
        esc(&r.schema),
        esc(&r.started_at),
        esc(&r.ended_at)
    );
}

/// The degraded windows, with the rule that found them.
fn degraded_table(out: &mut String, d: &crate::report::Degraded) {
    let (Some(threshold), Some(p50)) = (d.threshold_ms, d.baseline_p50_ms) else {
        return;
    };
    out.push_str("<h2>Degraded windows</h2>\n");
    let _ = writeln!(
        out,
        "<p class=\"note\">An ok answer is slow above {threshold:.1} ms from its intended send: max(5 x the baseline p50 {p50:.2} ms, p50 + 100 ms). A window is a run of slow answers, ended by three fast ones or by a failure.</p>"
    );
    if d.windows.is_empty() {
        out.push_str("<p>No degraded window.</p>\n");
        return;
    }
    out.push_str("<table><tr><th class=\"n\">#</th><th>from</th><th>to</th><th class=\"n\">length</th><th class=\"n\">slow answers</th><th class=\"n\">extra latency</th><th class=\"n\">slowest</th></tr>\n");
    for (i, w) in d.windows.iter().enumerate().take(MAX_WINDOWS) {
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">D{}</td><td>{}</td><td>{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            i + 1,
            offset(w.start_ms),
            offset(w.end_ms),
            if w.open { " (still slow at the end)" } else { "" },
            duration(w.duration_ms),
            w.slow,
            duration(w.extra_ms),
            duration(w.max_ms),
        );
    }
    out.push_str("</table>\n");
    if d.windows.len() > MAX_WINDOWS {
        let _ = writeln!(
            out,
            "<p class=\"note\">The first {MAX_WINDOWS} of {} degraded windows; windows.csv has every one.</p>",
            d.windows.len()
        );
    }
}
