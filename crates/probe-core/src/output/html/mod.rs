//! report.html: one self-contained page a person can open offline, print, or
//! attach to a post-mortem.
//!
//! Everything is drawn from the [`Report`] alone (its per-second series, windows,
//! versions and events), so `rollprobe report` rebuilds the same page from a
//! recorded run. The pictures are inline SVG with no script: hover details are
//! SVG `<title>` elements, which browsers show as tooltips. The page loads
//! nothing (no fonts, scripts, images or links outside itself).
//!
//! Failure kinds are told apart by colour (the Okabe-Ito palette, chosen to stay
//! distinct for the common kinds of colour blindness) and also by a fill
//! pattern and a letter, because colour alone fails in print and for some
//! readers. Long runs are drawn with seconds grouped into wider bars so that the
//! page stays small (a 1-hour run is about 600 bars); long lists (windows,
//! events) are cut with a pointer to the CSV files that hold every row.
//!
//! All text from the report (label, target, causes, event details, versions,
//! kind names) is escaped: it comes from users and from servers.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use crate::format::times::{duration, offset};
use crate::outcome::Outcome;
use crate::report::{Report, SecondStats};

mod chart;
mod look;
mod matrix;
mod tables;
#[cfg(test)]
pub(crate) mod tests;

use chart::*;
use look::*;
use tables::*;

pub use matrix::{render_matrix_html, write_matrix_html};

/// Width of the pictures' coordinate system; they scale to the page.
pub(super) const WIDTH: f64 = 1200.0;
/// Room for lane names left of the plots.
pub(super) const LEFT: f64 = 120.0;
pub(super) const RIGHT: f64 = 16.0;
/// At most this many bars: longer runs group seconds into wider bars.
pub(super) const MAX_BARS: usize = 600;
/// Rows listed in the windows and events tables and drawn as shaded windows
/// and ticks; windows.csv and events.csv keep every row.
pub(super) const MAX_WINDOWS: usize = 200;
pub(super) const MAX_EVENTS: usize = 300;
/// Version lanes and rows; more versions than this means the version source
/// is not a version.
pub(super) const MAX_VERSIONS: usize = 24;
/// Height of the band holding the event labels above the bars.
pub(super) const EVENT_BAND: f64 = 150.0;
pub(super) const BAR_HEIGHT: f64 = 220.0;
pub(super) const LANE_HEIGHT: f64 = 16.0;
pub(super) const LATENCY_HEIGHT: f64 = 160.0;

/// Renders the whole page.
///
/// ```
/// # fn demo(report: &probe_core::Report) {
/// let page = probe_core::output::html::render_html(report);
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// # }
/// ```
pub fn render_html(report: &Report) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let title = format!(
        "rollprobe {}: {}",
        report.label.as_deref().unwrap_or("run"),
        report.target
    );
    let kinds: Vec<&str> = std::iter::once(Outcome::Ok.as_str())
        .chain(report.failure_kinds())
        .collect();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    if let Some(reason) = &report.invalid_reason {
        invalid_banner(&mut out, reason);
    }
    header(&mut out, report);
    patterns(&mut out, &kinds);
    if report.streams.len() > 1 {
        // One picture per stream, each with its own windows, versions and pods.
        for stream in &report.streams {
            let view = report.of_stream(stream);
            let _ = writeln!(out, "<h2>Timeline of {}</h2>", esc(&stream.name));
            legend(&mut out, &kinds, &window_legend(&view));
            timeline(&mut out, &view, &kinds);
            latency(&mut out, &view);
        }
    } else {
        out.push_str("<h2>Timeline</h2>\n");
        legend(&mut out, &kinds, &window_legend(report));
        timeline(&mut out, report, &kinds);
        latency(&mut out, report);
    }
    tables(&mut out, report, &kinds);
    out.push_str("</body>\n</html>\n");
    out
}

/// Writes report.html.
pub fn write(path: &Path, report: &Report) -> io::Result<()> {
    std::fs::write(path, render_html(report))
}

pub(super) const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em auto; max-width: 1240px; padding: 0 1em; color: #111; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.15em; margin: 1.6em 0 .4em; border-bottom: 1px solid #ccc; }
.target { font-family: ui-monospace, monospace; word-break: break-all; }
.meta { color: #444; }
.figures { display: flex; flex-wrap: wrap; gap: .6em; margin: .8em 0; }
.figure { border: 1px solid #bbb; border-radius: 4px; padding: .3em .7em; min-width: 7em; }
.figure b { display: block; font-size: 1.3em; }
.bad { border-color: #D55E00; border-width: 2px; }
.warn { color: #8a3300; font-weight: 600; }
svg { display: block; width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #111; }
.legend { display: flex; flex-wrap: wrap; gap: .4em 1.2em; margin: .4em 0; }
.legend span { display: inline-flex; align-items: center; gap: .35em; }
.swatch { width: 22px; height: 14px; display: inline-block; vertical-align: middle; }
table { border-collapse: collapse; margin: .4em 0; width: 100%; }
th, td { border: 1px solid #ccc; padding: .2em .5em; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td.n, a.run { white-space: nowrap; }
th { background: #f2f2f2; }
.note { color: #555; font-size: .9em; }
.recommendation { font-weight: 600; }
.invalid { border: 2px solid #D55E00; background: #fff3eb; color: #8a3300; font-weight: 600; padding: .5em .8em; margin: 0 0 .8em; }
a { color: #0072B2; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; }
  svg, .figures { break-inside: avoid; }
  tr { break-inside: avoid; }
  @page { size: A4 landscape; margin: 12mm; }
}
"#;

/// The first thing on a page whose figures do not measure the target: before any
/// of them, so nobody reads them as a result.
pub(super) fn invalid_banner(out: &mut String, reason: &str) {
    let _ = writeln!(
        out,
        "<p class=\"invalid\" role=\"alert\">not a valid measurement: {}</p>",
        esc(reason)
    );
}

fn figure(out: &mut String, name: &str, value: &str, bad: bool) {
    let _ = write!(
        out,
        "<div class=\"figure{}\">{}<b>{}</b></div>",
        if bad { " bad" } else { "" },
        esc(name),
        esc(value)
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn header(out: &mut String, r: &Report) {
    let _ = write!(
        out,
        "<header>\n<h1>rollprobe: {}</h1>\n<div class=\"target\">{}</div>\n\
         <div class=\"meta\">started {} · {} · {} req/s · {} · timeout {} ms{}</div>\n",
        esc(r.label.as_deref().unwrap_or("run")),
        esc(&r.target),
        esc(&r.started_at),
        duration(r.duration_ms),
        r.config.rate,
        esc(&r.config.connection.to_string()),
        r.config.timeout_ms,
        if r.interrupted {
            " · <span class=\"warn\">interrupted</span>"
        } else {
            ""
        }
    );
    let t = &r.totals;
    out.push_str("<div class=\"figures\">");
    figure(out, "sent", &t.sent.to_string(), false);
    figure(out, "ok", &t.ok.to_string(), false);
    figure(out, "failed", &t.failed.to_string(), t.failed > 0);
    if t.local > 0 {
        figure(
            out,
            "failed on the prober's side",
            &t.local.to_string(),
            true,
        );
    }
    let availability = t
        .availability
        .map(|a| format!("{:.3}%", a * 100.0))
        .unwrap_or_else(|| "n/a".into());
    if r.invalid_reason.is_some() {
        // A figure of the prober, not of the target: never shown as a good one.
        figure(out, "availability (not valid)", &availability, true);
    } else {
        figure(out, "availability", &availability, t.failed > 0);
    }
    if r.streams.len() > 1 {
        // The top-level downtime, windows and latency are the first stream's alone:
        // with several streams, each one's own figures stand side by side instead.
        out.push_str("</div>\n<div class=\"figures\">");
        for st in &r.streams {
            let n = st.downtime.windows.len();
            let name = &st.name;
            figure(
                out,
                &format!("{name}: failed"),
                &st.totals.failed.to_string(),
                st.totals.failed > 0,
            );
            figure(
                out,
                &format!("{name}: downtime in {n} window{}", plural(n)),
                &duration(st.downtime.total_ms),
                n > 0,
            );
            figure(
                out,
                &format!("{name}: latency p50 / p99"),
                &format!("{:.1} / {:.1} ms", st.latency_ms.p50, st.latency_ms.p99),
                false,
            );
        }
        out.push_str("</div>\n<div class=\"figures\">");
        figure(out, "versions", &r.versions.len().to_string(), false);
        out.push_str("</div>\n");
    } else {
        let n = r.downtime.windows.len();
        figure(
            out,
            &format!("downtime in {n} window{}", plural(n)),
            &duration(r.downtime.total_ms),
            n > 0,
        );
        figure(
            out,
            "longest window",
            &duration(r.downtime.longest_ms),
            n > 0,
        );
        figure(out, "versions", &r.versions.len().to_string(), false);
        if r.mixed.is_some() {
            figure(out, "mixed versions", &duration(r.mixed_ms), false);
        }
        figure(
            out,
            "latency p50 / p99",
            &format!("{:.1} / {:.1} ms", r.latency_ms.p50, r.latency_ms.p99),
            false,
        );
        out.push_str("</div>\n");
    }
    if t.local > 0 {
        let _ = writeln!(
            out,
            "<p class=\"warn\">{} request(s) failed on the prober's side (local_*): not counted as downtime.</p>",
            t.local
        );
    }
    let p = &r.probe;
    let _ = writeln!(
        out,
        "<p class=\"note\">Prober: send lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} late, {} skipped.</p>\n</header>",
        p.send_lag_p50_ms, p.send_lag_p99_ms, p.send_lag_max_ms, p.late, p.skipped
    );
}
