//! The two pictures: the timeline (requests per second stacked by outcome, outage
//! windows, events, versions) and the latency chart, as inline SVG.

use std::fmt::Write as _;

use super::*;

/// Time (ms) to x in the pictures.
pub(super) struct Scale {
    pub(super) span_ms: f64,
}

impl Scale {
    /// The run's whole length, or its per-second series if that is longer.
    pub(super) fn of(r: &Report) -> Scale {
        let span_ms = r
            .duration_ms
            .max(r.per_second.len() as f64 * 1000.0 - 1000.0)
            .max(1.0);
        Scale { span_ms }
    }

    pub(super) fn x(&self, ms: f64) -> f64 {
        LEFT + (ms.clamp(0.0, self.span_ms) / self.span_ms) * (WIDTH - LEFT - RIGHT)
    }
}

/// Seconds grouped into one bar.
pub(super) struct Bar<'a> {
    pub(super) start_ms: f64,
    pub(super) end_ms: f64,
    pub(super) rows: &'a [SecondStats],
}

impl Bar<'_> {
    pub(super) fn sent(&self) -> u64 {
        self.rows.iter().map(|r| r.sent).sum()
    }
    pub(super) fn count(&self, kind: &str) -> u64 {
        self.rows
            .iter()
            .map(|r| {
                if outcome(kind) == Outcome::Ok {
                    r.ok
                } else {
                    r.failures.get(kind).copied().unwrap_or(0)
                }
            })
            .sum()
    }
    pub(super) fn has_version(&self, v: &str) -> bool {
        self.rows.iter().any(|r| r.versions.iter().any(|x| x == v))
    }
    /// The median of the seconds' medians (exact for one-second bars).
    pub(super) fn p50(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.rows.iter().filter_map(|r| r.p50_ms).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }
    /// The worst second's p99: never hides a bad second in a wide bar.
    pub(super) fn p99(&self) -> Option<f64> {
        self.rows.iter().filter_map(|r| r.p99_ms).reduce(f64::max)
    }
}

pub(super) fn bars(report: &Report, span_ms: f64) -> (Vec<Bar<'_>>, usize) {
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

/// Nice tick spacing for a time axis of `span_ms`.
pub(super) fn tick_step_ms(span_ms: f64) -> f64 {
    pub(super) const STEPS_S: [f64; 14] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ];
    STEPS_S
        .iter()
        .map(|s| s * 1000.0)
        .find(|step| span_ms / step <= 12.0)
        .unwrap_or(3_600_000.0)
}

pub(super) fn axis(out: &mut String, scale: &Scale, y: f64) {
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

pub(super) fn timeline(out: &mut String, r: &Report, kinds: &[&str]) {
    let scale = Scale::of(r);
    let span_ms = scale.span_ms;
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
        let cause = w
            .cause
            .as_ref()
            .map_or_else(|| "cause unknown".to_string(), ToString::to_string);
        let _ = writeln!(
            out,
            "<g class=\"window\"><title>window #{} {} .. {} ({}), {} failed: {}</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"#D55E00\" fill-opacity=\"0.15\" stroke=\"#D55E00\" stroke-width=\"1\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">#{}</text></g>",
            i + 1,
            offset(w.start_ms),
            offset(w.end_ms),
            duration(w.duration_ms),
            w.failed,
            esc(&cause),
            bar_top - 16.0,
            lanes_bottom - bar_top + 16.0,
            x0 + width / 2.0,
            bar_top - 4.0,
            i + 1
        );
    }

    // Degraded windows beside them, told apart by colour, dash and their D label.
    for (i, w) in r.degraded.windows.iter().enumerate().take(MAX_WINDOWS) {
        let (x0, x1) = (scale.x(w.start_ms), scale.x(w.end_ms));
        let width = (x1 - x0).max(2.0);
        let _ = writeln!(
            out,
            "<g class=\"degraded\"><title>degraded window D{} {} .. {} ({}), {} slow answers, {} extra</title><rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"#0072B2\" fill-opacity=\"0.12\" stroke=\"#0072B2\" stroke-width=\"1\" stroke-dasharray=\"3 2\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\">D{}</text></g>",
            i + 1,
            offset(w.start_ms),
            offset(w.end_ms),
            duration(w.duration_ms),
            w.slow,
            duration(w.extra_ms),
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
            if outcome(kind) != Outcome::Ok && width >= 9.0 && h >= 12.0 {
                let _ = write!(
                    rects,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-weight=\"bold\" style=\"fill:{}\">{}</text>",
                    x0 + width / 2.0,
                    y + h / 2.0 + 4.0,
                    look(outcome(kind)).ink,
                    esc(&letter(outcome(kind)).to_string())
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
    pub(super) const VERSION_COLOURS: [&str; 6] = [BLUE, ORANGE, GREEN, PURPLE, SKY, VERMILLION];
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
        "Each bar is {} of intended send time; its height is requests per second, stacked by outcome (ok at the bottom). Shaded: outage windows, numbered as in the table below (and degraded windows, blue, D1 and on); dashed: events.",
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

pub(super) fn latency(out: &mut String, r: &Report) {
    out.push_str("<h2>Latency of ok answers (from the intended send time)</h2>\n");
    let scale = Scale::of(r);
    let span_ms = scale.span_ms;
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
