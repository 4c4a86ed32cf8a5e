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

use crate::outcome::Outcome;
use crate::output::fmt::{duration, offset};
use crate::report::{Report, SecondStats};

/// Width of the pictures' coordinate system; they scale to the page.
const WIDTH: f64 = 1200.0;
/// Room for lane names left of the plots.
const LEFT: f64 = 120.0;
const RIGHT: f64 = 16.0;
/// At most this many bars: longer runs group seconds into wider bars.
const MAX_BARS: usize = 600;
/// Rows listed in the windows and events tables and drawn as shaded windows
/// and ticks; windows.csv and events.csv keep every row.
const MAX_WINDOWS: usize = 200;
const MAX_EVENTS: usize = 300;
/// Version lanes and rows; more versions than this means the version source
/// is not a version.
const MAX_VERSIONS: usize = 24;
/// Height of the band holding the event labels above the bars.
const EVENT_BAND: f64 = 150.0;
const BAR_HEIGHT: f64 = 220.0;
const LANE_HEIGHT: f64 = 16.0;
const LATENCY_HEIGHT: f64 = 160.0;

/// Okabe-Ito colours.
const GREEN: &str = "#009E73";
const ORANGE: &str = "#E69F00";
const SKY: &str = "#56B4E9";
const YELLOW: &str = "#F0E442";
const BLUE: &str = "#0072B2";
const VERMILLION: &str = "#D55E00";
const PURPLE: &str = "#CC79A7";
const BLACK: &str = "#000000";
const GREY: &str = "#999999";

#[derive(Clone, Copy)]
enum Pattern {
    Solid,
    Diagonal,
    BackDiagonal,
    Horizontal,
    Vertical,
    Cross,
    Dots,
}

/// How a kind is drawn: fill colour, pattern, the ink of the pattern.
struct Look {
    fill: &'static str,
    pattern: Pattern,
    ink: &'static str,
}

fn look(kind: &str) -> Look {
    use Pattern::*;
    let (fill, pattern) = match kind {
        "ok" => (GREEN, Solid),
        "connection_refused" => (VERMILLION, Diagonal),
        "host_unreachable" => (ORANGE, Cross),
        "network_unreachable" => (YELLOW, Horizontal),
        "connect_timeout" => (BLUE, Dots),
        "connection_reset" => (PURPLE, BackDiagonal),
        "connection_closed" => (SKY, Vertical),
        "response_timeout" => (BLACK, Dots),
        "http_5xx" => (VERMILLION, Cross),
        "proxy_no_upstream" => (PURPLE, Horizontal),
        "unexpected_status" => (ORANGE, Vertical),
        "dns" => (SKY, Diagonal),
        "tls" => (BLUE, Horizontal),
        k if k.starts_with("local_") => (GREY, BackDiagonal),
        _ => (BLACK, Diagonal),
    };
    let ink = match fill {
        BLACK | BLUE | VERMILLION => "#ffffff",
        _ => "#000000",
    };
    Look { fill, pattern, ink }
}

/// The kind's letter, as in the text report's strip.
fn letter(kind: &str) -> char {
    Outcome::ALL
        .iter()
        .find(|o| o.as_str() == kind)
        .map(|o| if *o == Outcome::Ok { '✓' } else { o.symbol() })
        .unwrap_or('?')
}

/// Escapes text for HTML element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Time (ms) to x in the pictures.
struct Scale {
    span_ms: f64,
}

impl Scale {
    fn x(&self, ms: f64) -> f64 {
        LEFT + (ms.clamp(0.0, self.span_ms) / self.span_ms) * (WIDTH - LEFT - RIGHT)
    }
}

/// Seconds grouped into one bar.
struct Bar<'a> {
    start_ms: f64,
    end_ms: f64,
    rows: &'a [SecondStats],
}

impl Bar<'_> {
    fn sent(&self) -> u64 {
        self.rows.iter().map(|r| r.sent).sum()
    }
    fn count(&self, kind: &str) -> u64 {
        self.rows
            .iter()
            .map(|r| {
                if kind == "ok" {
                    r.ok
                } else {
                    r.failures.get(kind).copied().unwrap_or(0)
                }
            })
            .sum()
    }
    fn has_version(&self, v: &str) -> bool {
        self.rows.iter().any(|r| r.versions.iter().any(|x| x == v))
    }
    /// The median of the seconds' medians (exact for one-second bars).
    fn p50(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.rows.iter().filter_map(|r| r.p50_ms).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
    /// The worst second's p99: never hides a bad second in a wide bar.
    fn p99(&self) -> Option<f64> {
        self.rows.iter().filter_map(|r| r.p99_ms).reduce(f64::max)
    }
}

fn bars(report: &Report, span_ms: f64) -> (Vec<Bar<'_>>, usize) {
    let rows = &report.per_second;
    let per_bar = rows.len().div_ceil(MAX_BARS).max(1);
    let bars = rows
        .chunks(per_bar)
        .map(|chunk| {
            let start_ms = chunk[0].second as f64 * 1000.0;
            let end_ms = ((chunk[chunk.len() - 1].second + 1) as f64 * 1000.0).min(span_ms);
            Bar {
                start_ms,
                end_ms: end_ms.max(start_ms),
                rows: chunk,
            }
        })
        .collect();
    (bars, per_bar)
}

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
    let kinds: Vec<&str> = std::iter::once("ok")
        .chain(report.failure_kinds())
        .collect();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    header(&mut out, report);
    patterns(&mut out, &kinds);
    legend(&mut out, &kinds);
    timeline(&mut out, report, &kinds);
    latency(&mut out, report);
    tables(&mut out, report, &kinds);
    out.push_str("</body>\n</html>\n");
    out
}

/// Writes report.html.
pub fn write(path: &Path, report: &Report) -> io::Result<()> {
    std::fs::write(path, render_html(report))
}

const STYLE: &str = r#"
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
th { background: #f2f2f2; }
.note { color: #555; font-size: .9em; }
* { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  h2 { break-after: avoid; }
  svg, .figures { break-inside: avoid; }
  tr { break-inside: avoid; }
  @page { size: A4 landscape; margin: 12mm; }
}
"#;

fn figure(out: &mut String, name: &str, value: &str, bad: bool) {
    let _ = write!(
        out,
        "<div class=\"figure{}\">{}<b>{}</b></div>",
        if bad { " bad" } else { "" },
        esc(name),
        esc(value)
    );
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
    figure(out, "availability", &availability, t.failed > 0);
    let n = r.downtime.windows.len();
    figure(
        out,
        &format!("downtime in {n} window{}", if n == 1 { "" } else { "s" }),
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

/// One pattern per kind of the run, shared by every picture of the page.
fn patterns(out: &mut String, kinds: &[&str]) {
    out.push_str(
        "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>",
    );
    for (i, kind) in kinds.iter().enumerate() {
        let l = look(kind);
        let ink = l.ink;
        let marks = match l.pattern {
            Pattern::Solid => String::new(),
            Pattern::Diagonal => format!("<path d=\"M-1,1 l2,-2 M0,6 l6,-6 M5,7 l2,-2\" stroke=\"{ink}\" stroke-width=\"1.3\"/>"),
            Pattern::BackDiagonal => format!("<path d=\"M-1,5 l2,2 M0,0 l6,6 M5,-1 l2,2\" stroke=\"{ink}\" stroke-width=\"1.3\"/>"),
            Pattern::Horizontal => format!("<path d=\"M0,3 h6\" stroke=\"{ink}\" stroke-width=\"1.3\"/>"),
            Pattern::Vertical => format!("<path d=\"M3,0 v6\" stroke=\"{ink}\" stroke-width=\"1.3\"/>"),
            Pattern::Cross => format!("<path d=\"M0,0 l6,6 M6,0 l-6,6\" stroke=\"{ink}\" stroke-width=\"1\"/>"),
            Pattern::Dots => format!("<circle cx=\"3\" cy=\"3\" r=\"1.3\" fill=\"{ink}\"/>"),
        };
        let _ = write!(
            out,
            "<pattern id=\"k{i}\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\"><rect width=\"6\" height=\"6\" fill=\"{}\"/>{marks}</pattern>",
            l.fill
        );
    }
    out.push_str("</defs></svg>\n");
}

fn swatch(i: usize) -> String {
    format!(
        "<svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><rect width=\"22\" height=\"14\" fill=\"url(#k{i})\" stroke=\"#333\"/></svg>"
    )
}

fn legend(out: &mut String, kinds: &[&str]) {
    out.push_str("<h2>Timeline</h2>\n<div class=\"legend\">");
    for (i, kind) in kinds.iter().enumerate() {
        let _ = write!(
            out,
            "<span>{} <b>{}</b> {}</span>",
            swatch(i),
            esc(&letter(kind).to_string()),
            esc(kind)
        );
    }
    out.push_str(
        "<span><svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><rect width=\"22\" height=\"14\" fill=\"#D55E00\" fill-opacity=\"0.15\" stroke=\"#D55E00\"/></svg> outage window</span></div>\n",
    );
}

/// Nice tick spacing for a time axis of `span_ms`.
fn tick_step_ms(span_ms: f64) -> f64 {
    const STEPS_S: [f64; 14] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ];
    STEPS_S
        .iter()
        .map(|s| s * 1000.0)
        .find(|step| span_ms / step <= 12.0)
        .unwrap_or(3_600_000.0)
}

fn axis(out: &mut String, scale: &Scale, y: f64) {
    let step = tick_step_ms(scale.span_ms);
    let mut t = 0.0;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#333\"/>",
        WIDTH - RIGHT
    );
    while t <= scale.span_ms + 1e-6 {
        let x = scale.x(t);
        let label = if step < 1000.0 {
            format!("{:.1} s", t / 1000.0)
        } else if scale.span_ms >= 120_000.0 {
            format!(
                "{}:{:02}",
                (t / 60_000.0) as u64,
                ((t / 1000.0) as u64) % 60
            )
        } else {
            format!("{:.0} s", t / 1000.0)
        };
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            y + 4.0,
            y + 16.0
        );
        t += step;
    }
}

fn timeline(out: &mut String, r: &Report, kinds: &[&str]) {
    let span_ms = r
        .duration_ms
        .max(r.per_second.len() as f64 * 1000.0 - 1000.0)
        .max(1.0);
    let scale = Scale { span_ms };
    let (bars, per_bar) = bars(r, span_ms);
    let versions: Vec<&str> = r
        .versions
        .iter()
        .take(MAX_VERSIONS)
        .map(|v| v.version.as_str())
        .collect();
    let bar_top = EVENT_BAND + 20.0;
    let bar_bottom = bar_top + BAR_HEIGHT;
    let axis_y = bar_bottom + 2.0;
    let lanes_top = axis_y + 30.0;
    let lanes_bottom = lanes_top + LANE_HEIGHT * versions.len().max(1) as f64;
    let height = lanes_bottom + 8.0;
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"requests per second by outcome, versions, events and outage windows\">"
    );

    // Outage windows behind everything, numbered as in the table.
    for (i, w) in r.downtime.windows.iter().enumerate().take(MAX_WINDOWS) {
        let (x0, x1) = (scale.x(w.start_ms), scale.x(w.end_ms));
        let width = (x1 - x0).max(2.0);
        let cause = w.cause.as_deref().unwrap_or("cause unknown");
        let _ = writeln!(
            out,
            "<g class=\"window\"><title>window #{} {} .. {} ({}), {} failed: {}</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"#D55E00\" fill-opacity=\"0.15\" stroke=\"#D55E00\" stroke-width=\"1\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">#{}</text></g>",
            i + 1,
            offset(w.start_ms),
            offset(w.end_ms),
            duration(w.duration_ms),
            w.failed,
            esc(cause),
            bar_top - 16.0,
            lanes_bottom - bar_top + 16.0,
            x0 + width / 2.0,
            bar_top - 4.0,
            i + 1
        );
    }

    // Stacked bars: requests per second by kind; height is the bar's rate so
    // that a partly covered last second does not look like a drop.
    let rate = |b: &Bar, n: u64| n as f64 / ((b.end_ms - b.start_ms) / 1000.0).max(0.001);
    let top_rate = bars.iter().map(|b| rate(b, b.sent())).fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{top_rate:.0}/s</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">requests</text>",
        LEFT - 6.0,
        bar_top + 10.0,
        LEFT - 6.0,
        bar_bottom,
        LEFT - 6.0,
        bar_top + BAR_HEIGHT / 2.0
    );
    for b in &bars {
        let sent = b.sent();
        if sent == 0 || top_rate <= 0.0 {
            continue;
        }
        let (x0, x1) = (scale.x(b.start_ms), scale.x(b.end_ms));
        let width = (x1 - x0 - if x1 - x0 > 3.0 { 0.5 } else { 0.0 }).max(0.5);
        let mut tip = format!(
            "{} .. {}: sent {sent}",
            offset(b.start_ms),
            offset(b.end_ms)
        );
        let mut y = bar_bottom;
        let mut rects = String::new();
        for (i, kind) in kinds.iter().enumerate() {
            let n = b.count(kind);
            if n == 0 {
                continue;
            }
            let _ = write!(tip, ", {} {n}", esc(kind));
            let h = rate(b, n) / top_rate * BAR_HEIGHT;
            y -= h;
            let _ = write!(
                rects,
                "<rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{width:.1}\" height=\"{h:.1}\" fill=\"url(#k{i})\"/>"
            );
            // The kind's letter, where there is room for it.
            if *kind != "ok" && width >= 9.0 && h >= 12.0 {
                let _ = write!(
                    rects,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" style=\"fill:{}\">{}</text>",
                    x0 + width / 2.0,
                    y + h / 2.0 + 4.0,
                    look(kind).ink,
                    esc(&letter(kind).to_string())
                );
            }
        }
        let versions_here: Vec<&str> = versions
            .iter()
            .copied()
            .filter(|v| b.has_version(v))
            .collect();
        if !versions_here.is_empty() {
            let _ = write!(tip, "; versions {}", esc(&versions_here.join(" ")));
        }
        if let (Some(p50), Some(p99)) = (b.p50(), b.p99()) {
            let _ = write!(tip, "; p50 {p50:.1} ms, p99 {p99:.1} ms");
        }
        let _ = writeln!(out, "<g><title>{tip}</title>{rects}</g>");
    }
    axis(out, &scale, axis_y);

    // The versions lane: which version answered when.
    let _ = writeln!(
        out,
        "<text x=\"4\" y=\"{:.1}\" font-weight=\"bold\">versions</text>",
        lanes_top - 6.0
    );
    const VERSION_COLOURS: [&str; 6] = [BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION];
    for (lane, v) in versions.iter().enumerate() {
        let y = lanes_top + lane as f64 * LANE_HEIGHT;
        let colour = VERSION_COLOURS[lane % VERSION_COLOURS.len()];
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y + 11.0,
            esc(&short(v, 18))
        );
        // Consecutive bars with this version make one segment.
        let mut run: Option<(f64, f64)> = None;
        let mut segments = Vec::new();
        for b in &bars {
            if b.has_version(v) {
                run = Some(match run {
                    Some((s, _)) => (s, b.end_ms),
                    None => (b.start_ms, b.end_ms),
                });
            } else if let Some(seg) = run.take() {
                segments.push(seg);
            }
        }
        segments.extend(run);
        for (s, e) in segments {
            let (x0, x1) = (scale.x(s), scale.x(e));
            let _ = write!(
                out,
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} answered {} .. {}</title></rect>",
                y + 2.0,
                (x1 - x0).max(1.0),
                LANE_HEIGHT - 4.0,
                esc(v),
                offset(s),
                offset(e)
            );
        }
        out.push('\n');
    }
    if versions.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{LEFT}\" y=\"{:.1}\">no version answered</text>",
            lanes_top + 11.0
        );
    }

    // Events: a tick across the picture each; events closer together than a
    // line of text share one label listing their kinds, so none overprints.
    let shown = &r.events[..r.events.len().min(MAX_EVENTS)];
    let mut group_start = 0;
    while group_start < shown.len() {
        let x = scale.x(shown[group_start].at_ms);
        let group_end = shown[group_start..]
            .iter()
            .position(|e| scale.x(e.at_ms) - x >= 12.0)
            .map_or(shown.len(), |n| group_start + n);
        let mut kinds: Vec<&str> = Vec::new();
        for e in &shown[group_start..group_end] {
            if !kinds.contains(&e.kind.as_str()) {
                kinds.push(e.kind.as_str());
            }
            let ex = scale.x(e.at_ms);
            let _ = writeln!(
                out,
                "<g class=\"event\"><title>{} {}{}{}</title><line x1=\"{ex:.1}\" x2=\"{ex:.1}\" y1=\"{:.1}\" y2=\"{lanes_bottom:.1}\" stroke=\"#333\" stroke-dasharray=\"3 2\" stroke-width=\"0.8\"/></g>",
                offset(e.at_ms),
                esc(e.kind.as_str()),
                if e.detail.is_empty() { "" } else { ": " },
                esc(&e.detail),
                EVENT_BAND - 2.0
            );
        }
        let _ = writeln!(
            out,
            "<text transform=\"translate({:.1},{:.1}) rotate(-55)\">{}</text>",
            x + 3.0,
            EVENT_BAND - 4.0,
            esc(&short(&kinds.join(", "), 28))
        );
        group_start = group_end;
    }
    out.push_str("</svg>\n");
    let mut note = format!(
        "Each bar is {} of intended send time; its height is requests per second, stacked by outcome (ok at the bottom). Shaded: outage windows, numbered as in the table below; dashed: events.",
        if per_bar == 1 {
            "one second".to_string()
        } else {
            format!("{per_bar} seconds")
        }
    );
    if r.events.len() > MAX_EVENTS {
        let _ = write!(
            note,
            " Only the first {MAX_EVENTS} of {} events are drawn.",
            r.events.len()
        );
    }
    if r.versions.len() > MAX_VERSIONS {
        let _ = write!(
            note,
            " Only the first {MAX_VERSIONS} of {} versions have a lane.",
            r.versions.len()
        );
    }
    let _ = writeln!(out, "<p class=\"note\">{note}</p>");
}

fn latency(out: &mut String, r: &Report) {
    out.push_str("<h2>Latency of ok answers (from the intended send time)</h2>\n");
    let span_ms = r
        .duration_ms
        .max(r.per_second.len() as f64 * 1000.0 - 1000.0)
        .max(1.0);
    let scale = Scale { span_ms };
    let (bars, per_bar) = bars(r, span_ms);
    let points: Vec<(f64, Option<f64>, Option<f64>)> = bars
        .iter()
        .map(|b| (scale.x((b.start_ms + b.end_ms) / 2.0), b.p50(), b.p99()))
        .collect();
    let top = points
        .iter()
        .filter_map(|p| p.2)
        .fold(0.0, f64::max)
        .max(1.0);
    // Round the axis up to a readable value.
    let magnitude = 10f64.powf(top.log10().floor());
    let top = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= top)
        .unwrap_or(top);
    let (y0, h) = (10.0, LATENCY_HEIGHT);
    let y = |ms: f64| y0 + h - ms / top * h;
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {:.0}\" role=\"img\" aria-label=\"latency p50 and p99 over time\">",
        y0 + h + 30.0
    );
    for frac in [0.0, 0.5, 1.0] {
        let yy = y(top * frac);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} ms</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            top * frac
        );
    }
    for (which, colour, dash) in [(1usize, BLUE, ""), (2, VERMILLION, "6 3")] {
        // A line per stretch of bars that had ok answers.
        let mut path = String::new();
        let mut pen_down = false;
        for p in &points {
            let value = if which == 1 { p.1 } else { p.2 };
            match value {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{:.1},{:.1} ",
                        if pen_down { "L" } else { "M" },
                        p.0,
                        y(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        if !path.is_empty() {
            let _ = writeln!(
                out,
                "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-dasharray=\"{dash}\"/>",
                path.trim_end()
            );
        }
    }
    axis(out, &scale, y0 + h + 2.0);
    out.push_str("</svg>\n");
    let _ = writeln!(
        out,
        "<div class=\"legend\"><span><svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><path d=\"M0,7 h22\" stroke=\"{BLUE}\" stroke-width=\"2\"/></svg> p50 (solid)</span><span><svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><path d=\"M0,7 h22\" stroke=\"{VERMILLION}\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/></svg> p99 (dashed)</span></div>\n<p class=\"note\">{}</p>",
        if per_bar == 1 {
            "Per second. Gaps: no ok answer in that second.".to_string()
        } else {
            format!("Per {per_bar} seconds: p50 is the median of the seconds' medians, p99 the worst second's p99. Gaps: no ok answer.")
        }
    );
}

fn tables(out: &mut String, r: &Report, kinds: &[&str]) {
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
                esc(&letter(&d.kind).to_string()),
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
                esc(w.cause.as_deref().unwrap_or("")),
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

    if !r.phases.is_empty() {
        out.push_str("<h2>Phases</h2>\n<table><tr><th>phase</th><th>from</th><th>to</th><th class=\"n\">sent</th><th class=\"n\">ok</th><th class=\"n\">failed</th><th class=\"n\">downtime</th><th class=\"n\">p99</th></tr>\n");
        for p in &r.phases {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1} ms</td></tr>",
                esc(&p.name),
                offset(p.start_ms),
                p.end_ms.map(offset).unwrap_or_else(|| "end".into()),
                p.sent,
                p.ok,
                p.failed,
                duration(p.downtime_ms),
                p.latency_ms.p99
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::{ConnectionMode, RecordedConfig};
    use crate::event::{Event, EventKind, Subject};
    use crate::report::OutageWindow;
    use crate::sample::{RunHeader, Sample};
    use crate::Analyzer;

    /// A real (small) report from the analyzer, for the tests to reshape: 3 s
    /// at 1000 req/s, v1 then 300 refused then v2.
    pub(crate) fn base_report(label: &str, target: &str) -> Report {
        let header = RunHeader {
            schema: crate::sample::SAMPLES_SCHEMA.into(),
            label: Some(label.into()),
            target: target.into(),
            config: RecordedConfig {
                rate: 1000.0,
                connection: ConnectionMode::Fresh,
                timeout_ms: 5000,
                connect_timeout_ms: 2000,
                max_in_flight: 5016,
                expect_status: "200-299".into(),
                version_from: "body".into(),
                method: "GET".into(),
                pod_from: String::new(),
                lab_kernel: None,
            },
            started_at: "2026-01-01T00:00:00.000Z".into(),
            run_id: String::new(),
            streams: Vec::new(),
        };
        let mut a = Analyzer::new(1000.0);
        for seq in 0..3000u64 {
            let failed = (1200..1500).contains(&seq);
            a.push(Sample {
                stream: String::new(),
                pod: None,
                request_id: None,
                syn_retransmits: None,
                seq,
                intended_ms: seq as f64,
                sent_ms: Some(seq as f64 + 0.1),
                wall_time: String::new(),
                outcome: if failed {
                    Outcome::ConnectionRefused
                } else {
                    Outcome::Ok
                },
                errno: failed.then_some(111),
                errno_name: failed.then(|| "ECONNREFUSED".into()),
                status: (!failed).then_some(200),
                version: (!failed).then(|| if seq < 1200 { "v1" } else { "v2" }.into()),
                connect_ms: Some(0.2),
                ttfb_ms: Some(1.0),
                total_ms: Some(1.0 + (seq % 7) as f64),
                connection: None,
                error: None,
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
                page.matches(&format!("<{tag}>")).count()
                    + page.matches(&format!("<{tag} ")).count(),
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
                cause: Some(cause.clone()),
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
            let l = look(o.as_str());
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
}
