//! matrix.html: the strategy matrix (or any reports `rollprobe compare` is
//! given) as one page: downtime, failures by kind and rollout duration per case,
//! rollout duration against downtime per run, and each run's report.html.
//!
//! A strategy's maxSurge/maxUnavailable trade speed against availability
//! against extra pods; the page puts the three side by side and names the case
//! the text summary recommends (only beyond the run-to-run spread), after a
//! banner for each run that is not a valid measurement. It uses report.html's
//! look (the same palette, patterns, letters and escaping) so a kind looks the
//! same on both pages, and
//! like report.html it loads nothing: its only links are relative ones to the
//! runs' own pages. Cases in the scatter are told apart by marker shape and
//! number as well as colour.

use std::fmt::Write as _;

use super::*;
use crate::matrix::{Matrix, MatrixCase, MatrixRun};

/// Room for case names left of the per-case charts.
const CASE_LEFT: f64 = 240.0;
/// Room for the value written right of each bar.
const CASE_RIGHT: f64 = 250.0;
const ROW: f64 = 30.0;
const SCATTER_HEIGHT: f64 = 360.0;

/// Colours of cases in the scatter, Okabe-Ito, with a shape each.
const CASE_COLOURS: [&str; 7] = [BLUE, VERMILLION, GREEN, ORANGE, PURPLE, SKY, BLACK];
const SHAPES: usize = 5;

/// Renders matrix.html; `title` names the page (e.g. "rollprobe matrix").
///
/// ```
/// let page = probe_core::output::html::render_matrix_html(&probe_core::Matrix::default(), "rollprobe matrix");
/// assert!(page.starts_with("<!DOCTYPE html>"));
/// ```
pub fn render_matrix_html(m: &Matrix, title: &str) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let kinds_owned = m.kinds();
    let kinds: Vec<&str> = kinds_owned.iter().map(String::as_str).collect();
    let cases = m.summary();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(title)
    );
    for r in m.runs.iter().filter(|r| !r.valid) {
        let reason = r.invalid_reason.as_deref().unwrap_or("the run says so");
        invalid_banner(&mut out, &format!("{} run {}: {reason}", r.case, r.run));
    }
    let _ = writeln!(
        out,
        "<header>\n<h1>{}</h1>\n<div class=\"meta\">{} case{}, {} run{}</div>",
        esc(title),
        cases.len(),
        if cases.len() == 1 { "" } else { "s" },
        m.runs.len(),
        if m.runs.len() == 1 { "" } else { "s" },
    );
    if let Some(r) = m.recommendation() {
        let picked = r.picked().map_or("no case", |c| c.case.as_str());
        let _ = writeln!(
            out,
            "<div class=\"figures\"><div class=\"figure\">recommended<b>{}</b></div></div>\n<p class=\"recommendation\">{}</p>",
            esc(picked),
            esc(&r.line())
        );
    }
    out.push_str("</header>\n");
    if m.runs.is_empty() {
        out.push_str("<p>No run finished.</p>\n</body>\n</html>\n");
        return out;
    }
    patterns(&mut out, &kinds);

    out.push_str("<h2>Downtime per case</h2>\n<p class=\"note\">Bar: the median run; line: the shortest to the longest; dots: each run.</p>\n");
    let downtime: Vec<Vec<f64>> = cases
        .iter()
        .map(|c| runs_of(m, c).map(|r| r.downtime_ms).collect())
        .collect();
    range_chart(&mut out, &cases, &downtime, "downtime");

    out.push_str("<h2>Failures per kind</h2>\n");
    if kinds.is_empty() {
        out.push_str("<p>No request failed in any run.</p>\n");
    } else {
        legend(&mut out, &kinds, "");
        failures_chart(&mut out, m, &cases, &kinds);
    }

    out.push_str("<h2>Rollout duration per case</h2>\n");
    let rollout: Vec<Vec<f64>> = cases
        .iter()
        .map(|c| runs_of(m, c).filter_map(|r| r.rollout_ms).collect())
        .collect();
    if rollout.iter().all(Vec::is_empty) {
        out.push_str("<p>No rollout was seen from start to completion.</p>\n");
    } else {
        range_chart(&mut out, &cases, &rollout, "rollout");
    }

    out.push_str("<h2>Rollout duration against downtime</h2>\n<p class=\"note\">One point per run: left is faster, lower lost less. The number beside a point is its case's.</p>\n");
    scatter(&mut out, m, &cases);

    cases_table(&mut out, m, &cases);
    runs_table(&mut out, m, &kinds);
    out.push_str("</body>\n</html>\n");
    out
}

/// Writes matrix.html.
pub fn write_matrix_html(path: &Path, m: &Matrix, title: &str) -> io::Result<()> {
    std::fs::write(path, render_matrix_html(m, title))
}

fn runs_of<'a>(m: &'a Matrix, c: &'a MatrixCase) -> impl Iterator<Item = &'a MatrixRun> {
    m.runs.iter().filter(move |r| r.case == c.case)
}

/// A value axis in ms from 0 to `max_ms`, mapped onto `[left, right]`.
struct ValueAxis {
    max_ms: f64,
    left: f64,
    right: f64,
}

impl ValueAxis {
    fn x(&self, ms: f64) -> f64 {
        self.left + (ms.clamp(0.0, self.max_ms) / self.max_ms) * (self.right - self.left)
    }

    /// Ticks and labels along a horizontal line at `y`.
    fn draw(&self, out: &mut String, y: f64, vertical_to: Option<f64>) {
        let step = tick_step_ms(self.max_ms);
        let _ = write!(
            out,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#333\"/>",
            self.left, self.right
        );
        let mut t = 0.0;
        while t <= self.max_ms + 1e-6 {
            let x = self.x(t);
            if let Some(top) = vertical_to {
                let _ = write!(
                    out,
                    "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>"
                );
            }
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y:.1}\" y2=\"{:.1}\" stroke=\"#333\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y + 4.0,
                y + 16.0,
                axis_label(t, step)
            );
            t += step;
        }
    }
}

fn axis_label(ms: f64, step: f64) -> String {
    if step < 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{:.0} s", ms / 1000.0)
    }
}

/// The largest value, rounded so that the axis ends on a tick.
fn axis_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0, f64::max).max(100.0);
    let step = tick_step_ms(max);
    (max / step).ceil() * step
}

fn case_label(out: &mut String, i: usize, case: &str, y: f64) {
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><tspan font-weight=\"bold\">{}</tspan> {}</text>",
        CASE_LEFT - 8.0,
        y + 4.0,
        i + 1,
        esc(&short(case, 34))
    );
}

/// Median bar, min-max line and a dot per run, one row per case.
fn range_chart(out: &mut String, cases: &[MatrixCase], values: &[Vec<f64>], what: &str) {
    let axis = ValueAxis {
        max_ms: axis_max(values.iter().flatten().copied()),
        left: CASE_LEFT,
        right: WIDTH - CASE_RIGHT,
    };
    let top = 8.0;
    let axis_y = top + ROW * cases.len() as f64 + 4.0;
    let height = axis_y + 24.0;
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"{what} per case: median, range and runs\">"
    );
    for (i, (c, v)) in cases.iter().zip(values).enumerate() {
        let y = top + ROW * i as f64 + ROW / 2.0;
        case_label(out, i, &c.case, y);
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        let Some((&lo, &hi)) = sorted.first().zip(sorted.last()) else {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\">not seen</text>",
                axis.left + 4.0,
                y + 4.0
            );
            continue;
        };
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        let text = format!(
            "median {} ({} .. {})",
            duration(median),
            duration(lo),
            duration(hi)
        );
        let _ = write!(
            out,
            "<g><title>{}: {what} {text}, {n} run{}</title><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{SKY}\" stroke=\"#333\" stroke-width=\"0.5\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#111\" stroke-width=\"2\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#111\" stroke-width=\"2\"/>\
             <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#111\" stroke-width=\"2\"/>",
            esc(&c.case),
            if n == 1 { "" } else { "s" },
            axis.left,
            y - 8.0,
            (axis.x(median) - axis.left).max(1.0),
            16.0,
            axis.x(lo),
            axis.x(hi),
            axis.x(lo),
            axis.x(lo),
            y - 5.0,
            y + 5.0,
            axis.x(hi),
            axis.x(hi),
            y - 5.0,
            y + 5.0,
        );
        for ms in v {
            let _ = write!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"#fff\" stroke=\"#111\"/>",
                axis.x(*ms)
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{text}</text></g>",
            axis.right + 8.0,
            y + 4.0
        );
    }
    axis.draw(out, axis_y, None);
    out.push_str("</svg>\n");
}

/// Failed requests per run (the mean over the case's runs), stacked by kind.
fn failures_chart(out: &mut String, m: &Matrix, cases: &[MatrixCase], kinds: &[&str]) {
    let means: Vec<Vec<f64>> = cases
        .iter()
        .map(|c| {
            kinds
                .iter()
                .map(|k| {
                    let runs: Vec<&MatrixRun> = runs_of(m, c).collect();
                    let sum: u64 = runs
                        .iter()
                        .map(|r| r.failures.get(*k).copied().unwrap_or(0))
                        .sum();
                    sum as f64 / runs.len().max(1) as f64
                })
                .collect()
        })
        .collect();
    let max = means
        .iter()
        .map(|v| v.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1.0);
    let (left, right) = (CASE_LEFT, WIDTH - CASE_RIGHT);
    let top = 8.0;
    let axis_y = top + ROW * cases.len() as f64 + 4.0;
    let height = axis_y + 24.0;
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"failed requests per run by kind, per case\">"
    );
    for (i, (c, v)) in cases.iter().zip(&means).enumerate() {
        let y = top + ROW * i as f64 + ROW / 2.0;
        case_label(out, i, &c.case, y);
        let mut x = left;
        for (j, n) in v.iter().enumerate() {
            if *n <= 0.0 {
                continue;
            }
            let w = (n / max * (right - left)).max(1.0);
            let kind = kinds[j];
            let _ = write!(
                out,
                "<g><title>{}: {} {} per run</title><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"18\" fill=\"url(#k{j})\" stroke=\"#333\" stroke-width=\"0.5\"/>",
                esc(&c.case),
                count(*n),
                esc(kind),
                y - 9.0
            );
            // The letter too, where it fits: the kind reads without colour.
            if w >= 16.0 {
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"13\" fill=\"#fff\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>",
                    x + w / 2.0 - 6.0,
                    y - 6.5,
                    x + w / 2.0,
                    y + 4.0,
                    esc(&letter(outcome(kind)).to_string())
                );
            }
            out.push_str("</g>");
            x += w;
        }
        let total: f64 = v.iter().sum();
        let parts: Vec<String> = kinds
            .iter()
            .zip(v)
            .filter(|(_, n)| **n > 0.0)
            .map(|(k, n)| format!("{} {}", letter(outcome(k)), count(*n)))
            .collect();
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\">{} failed per run{}{}</text>",
            right + 8.0,
            y + 4.0,
            count(total),
            if parts.is_empty() { "" } else { ": " },
            esc(&parts.join(", "))
        );
    }
    let _ = write!(
        out,
        "<line x1=\"{left:.1}\" x2=\"{right:.1}\" y1=\"{axis_y:.1}\" y2=\"{axis_y:.1}\" stroke=\"#333\"/><text x=\"{left:.1}\" y=\"{:.1}\">0</text><text x=\"{right:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} failed requests per run</text>",
        axis_y + 16.0,
        axis_y + 16.0,
        count(max)
    );
    out.push_str("</svg>\n");
}

/// A count that may be a mean: whole numbers without decimals.
fn count(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// A case's marker at (x, y): its shape and colour, and its number beside it.
fn marker(i: usize, x: f64, y: f64) -> String {
    let fill = CASE_COLOURS[i % CASE_COLOURS.len()];
    let shape = match i % SHAPES {
        0 => format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\""),
        1 => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"11\" height=\"11\"",
            x - 5.5,
            y - 5.5
        ),
        2 => format!("<path d=\"M{x:.1},{:.1} l7,12 h-14 z\"", y - 7.0),
        3 => format!("<path d=\"M{x:.1},{:.1} l7,7 l-7,7 l-7,-7 z\"", y - 7.0),
        _ => format!("<path d=\"M{x:.1},{:.1} l7,-12 h-14 z\"", y + 7.0),
    };
    format!("{shape} fill=\"{fill}\" stroke=\"#111\" stroke-width=\"1\"/>")
}

fn scatter(out: &mut String, m: &Matrix, cases: &[MatrixCase]) {
    let points: Vec<(usize, &MatrixRun, f64)> = m
        .runs
        .iter()
        .filter_map(|r| {
            let i = cases.iter().position(|c| c.case == r.case)?;
            Some((i, r, r.rollout_ms?))
        })
        .collect();
    out.push_str("<div class=\"legend\">");
    for (i, c) in cases.iter().enumerate() {
        let _ = write!(
            out,
            "<span><svg class=\"swatch\" viewBox=\"0 0 22 16\" aria-hidden=\"true\">{}</svg> <b>{}</b> {}</span>",
            marker(i, 11.0, 8.0),
            i + 1,
            esc(&c.case)
        );
    }
    out.push_str("</div>\n");
    if points.is_empty() {
        out.push_str("<p>No run saw its rollout complete: nothing to plot.</p>\n");
        return;
    }
    let left = 90.0;
    let x_axis = ValueAxis {
        max_ms: axis_max(points.iter().map(|p| p.2)),
        left,
        right: WIDTH - 30.0,
    };
    let y_max = axis_max(points.iter().map(|p| p.1.downtime_ms));
    let (top, bottom) = (12.0, 12.0 + SCATTER_HEIGHT);
    let y = |ms: f64| bottom - (ms.clamp(0.0, y_max) / y_max) * (bottom - top);
    let height = bottom + 44.0;
    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {WIDTH} {height:.0}\" role=\"img\" aria-label=\"rollout duration against downtime, one point per run\">"
    );
    // The downtime axis, on the left.
    let step = tick_step_ms(y_max);
    let mut t = 0.0;
    while t <= y_max + 1e-6 {
        let _ = write!(
            out,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x_axis.right,
            y(t),
            y(t),
            left - 6.0,
            y(t) + 4.0,
            axis_label(t, step)
        );
        t += step;
    }
    let _ = write!(
        out,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{bottom}\" stroke=\"#333\"/><text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">downtime</text>",
        (top + bottom) / 2.0,
        (top + bottom) / 2.0
    );
    x_axis.draw(out, bottom, Some(top));
    let _ = write!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">rollout duration</text>",
        (x_axis.left + x_axis.right) / 2.0,
        bottom + 36.0
    );
    for (i, r, rollout) in &points {
        let (px, py) = (x_axis.x(*rollout), y(r.downtime_ms));
        let _ = writeln!(
            out,
            "<g><title>{} run {}: rollout {}, downtime {}, {} failed{}</title>{}<text x=\"{:.1}\" y=\"{:.1}\" font-weight=\"bold\">{}</text></g>",
            esc(&r.case),
            r.run,
            duration(*rollout),
            duration(r.downtime_ms),
            r.failed,
            r.surge_pods_peak
                .map(|n| format!(", peak {n} extra pods"))
                .unwrap_or_default(),
            marker(*i, px, py),
            px + 8.0,
            py - 6.0,
            i + 1
        );
    }
    out.push_str("</svg>\n");
    let unseen = m.runs.iter().filter(|r| r.rollout_ms.is_none()).count();
    if unseen > 0 {
        let _ = writeln!(
            out,
            "<p class=\"note\">{unseen} run(s) did not see their rollout complete and are not plotted.</p>"
        );
    }
}

fn report_links(m: &Matrix, c: &MatrixCase) -> String {
    runs_of(m, c)
        .map(|r| match &r.report_html {
            Some(href) => format!("<a class=\"run\" href=\"{}\">run {}</a>", esc(href), r.run),
            None => format!("run {}", r.run),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the case lost nothing, and if not, why: a lost request or an invalid run.
fn lost_nothing(m: &Matrix, c: &MatrixCase) -> &'static str {
    if c.lost_nothing {
        "yes, every run"
    } else if runs_of(m, c).all(|r| r.failed == 0) {
        "no: a run is not a valid measurement"
    } else {
        "no"
    }
}

fn cases_table(out: &mut String, m: &Matrix, cases: &[MatrixCase]) {
    out.push_str("<h2>Cases</h2>\n<table><tr><th class=\"n\">#</th><th>case</th><th class=\"n\">runs</th><th class=\"n\">downtime median</th><th class=\"n\">min .. max</th><th class=\"n\">failed median</th><th class=\"n\">rollout median</th><th class=\"n\">min .. max</th><th class=\"n\">peak extra pods</th><th>lost nothing</th><th>reports</th></tr>\n");
    for (i, c) in cases.iter().enumerate() {
        let rollout_range = match (c.rollout_min_ms, c.rollout_max_ms) {
            (Some(lo), Some(hi)) => format!("{} .. {}", duration(lo), duration(hi)),
            _ => "-".into(),
        };
        let _ = writeln!(
            out,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} .. {}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{rollout_range}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&c.case),
            c.runs,
            duration(c.downtime_median_ms),
            duration(c.downtime_min_ms),
            duration(c.downtime_max_ms),
            count(c.failed_median),
            c.rollout_median_ms.map(duration).unwrap_or_else(|| "-".into()),
            c.surge_pods_peak
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            lost_nothing(m, c),
            report_links(m, c)
        );
    }
    out.push_str("</table>\n<p class=\"note\">Peak extra pods: the most pods above the desired replicas during the rollout, terminating pods included (they hold their resources until gone).</p>\n");
}

fn runs_table(out: &mut String, m: &Matrix, kinds: &[&str]) {
    out.push_str("<h2>Runs</h2>\n<table><tr><th>case</th><th class=\"n\">run</th><th class=\"n\">sent</th><th class=\"n\">failed</th><th>failures by kind</th><th class=\"n\">downtime</th><th class=\"n\">longest window</th><th class=\"n\">rollout</th><th class=\"n\">extra pods</th><th class=\"n\">p99</th><th>valid</th><th>report</th></tr>\n");
    for r in &m.runs {
        let by_kind: Vec<String> = kinds
            .iter()
            .enumerate()
            .filter_map(|(i, k)| {
                let n = r.failures.get(*k).copied().unwrap_or(0);
                (n > 0).then(|| {
                    format!(
                        "{} <b>{}</b> {} {n}",
                        swatch(i),
                        esc(&letter(outcome(k)).to_string()),
                        esc(k)
                    )
                })
            })
            .collect();
        let link = match &r.report_html {
            Some(href) => format!("<a href=\"{}\">report.html</a>", esc(href)),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1} ms</td><td>{}</td><td>{link}</td></tr>",
            esc(&r.case),
            r.run,
            r.sent,
            r.failed,
            by_kind.join("<br>"),
            duration(r.downtime_ms),
            duration(r.longest_ms),
            r.rollout_ms.map(duration).unwrap_or_else(|| "-".into()),
            r.surge_pods_peak
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
            r.p99_ms,
            if r.valid { "yes" } else { "<span class=\"warn\">no</span>" },
        );
    }
    out.push_str("</table>\n");
}
