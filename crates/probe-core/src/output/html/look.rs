//! How failure kinds look on the page: colour (Okabe-Ito), fill pattern and
//! letter, so that no kind is told apart by colour alone; and escaping.

use std::fmt::Write as _;

use super::*;

/// Okabe-Ito colours.
pub(super) const GREEN: &str = "#009E73";
pub(super) const ORANGE: &str = "#E69F00";
pub(super) const SKY: &str = "#56B4E9";
pub(super) const YELLOW: &str = "#F0E442";
pub(super) const BLUE: &str = "#0072B2";
pub(super) const VERMILLION: &str = "#D55E00";
pub(super) const PURPLE: &str = "#CC79A7";
pub(super) const BLACK: &str = "#000000";
pub(super) const GREY: &str = "#999999";

#[derive(Clone, Copy)]
pub(super) enum Pattern {
    Solid,
    Diagonal,
    BackDiagonal,
    Horizontal,
    Vertical,
    Cross,
    Dots,
}

/// How a kind is drawn: fill colour, pattern, the ink of the pattern.
pub(super) struct Look {
    pub(super) fill: &'static str,
    pub(super) pattern: Pattern,
    pub(super) ink: &'static str,
}

/// The kind a name from the report stands for. The page lists the report's own
/// names (a report written by a newer build may hold kinds this one does not
/// know); such a name looks like `other`.
pub(super) fn outcome(name: &str) -> Outcome {
    name.parse().unwrap_or(Outcome::Other)
}

pub(super) fn look(kind: Outcome) -> Look {
    use Pattern::*;
    let (fill, pattern) = match kind {
        Outcome::Ok => (GREEN, Solid),
        Outcome::ConnectionRefused => (VERMILLION, Diagonal),
        Outcome::HostUnreachable => (ORANGE, Cross),
        Outcome::NetworkUnreachable => (YELLOW, Horizontal),
        Outcome::ConnectTimeout => (BLUE, Dots),
        Outcome::ConnectionReset => (PURPLE, BackDiagonal),
        Outcome::ConnectionClosed => (SKY, Vertical),
        Outcome::ResponseTimeout => (BLACK, Dots),
        Outcome::Http5xx => (VERMILLION, Cross),
        Outcome::ProxyNoUpstream => (PURPLE, Horizontal),
        Outcome::ProxyUpstreamFailed => (PURPLE, Diagonal),
        Outcome::ProxyUpstreamTimeout => (PURPLE, Dots),
        Outcome::ProxyOverloaded => (PURPLE, Cross),
        Outcome::UnexpectedStatus => (ORANGE, Vertical),
        Outcome::Dns => (SKY, Diagonal),
        Outcome::Tls => (BLUE, Horizontal),
        Outcome::InvalidResponse => (YELLOW, Dots),
        k if k.is_local() => (GREY, BackDiagonal),
        _ => (BLACK, Diagonal),
    };
    let ink = match fill {
        BLACK | BLUE | VERMILLION => "#ffffff",
        _ => "#000000",
    };
    Look { fill, pattern, ink }
}

/// The kind's letter, as in the text report's strip.
pub(super) fn letter(kind: Outcome) -> char {
    if kind == Outcome::Ok {
        '✓'
    } else {
        kind.symbol()
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn esc(s: &str) -> String {
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

pub(super) fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        s.chars().take(max - 1).chain(['…']).collect()
    }
}

/// One pattern per kind of the run, shared by every picture of the page.
pub(super) fn patterns(out: &mut String, kinds: &[&str]) {
    out.push_str(
        "<svg width=\"0\" height=\"0\" style=\"position:absolute\" aria-hidden=\"true\"><defs>",
    );
    for (i, kind) in kinds.iter().enumerate() {
        let l = look(outcome(kind));
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

pub(super) fn swatch(i: usize) -> String {
    format!(
        "<svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><rect width=\"22\" height=\"14\" fill=\"url(#k{i})\" stroke=\"#333\"/></svg>"
    )
}

/// The kinds' swatches, letters and names, then `extra` (more entries).
pub(super) fn legend(out: &mut String, kinds: &[&str], extra: &str) {
    out.push_str("<div class=\"legend\">");
    for (i, kind) in kinds.iter().enumerate() {
        let _ = write!(
            out,
            "<span>{} <b>{}</b> {}</span>",
            swatch(i),
            esc(&letter(outcome(kind)).to_string()),
            esc(kind)
        );
    }
    out.push_str(extra);
    out.push_str("</div>\n");
}

/// The legend's entry for the timeline's shaded outage windows.
pub(super) const WINDOW_LEGEND: &str = "<span><svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><rect width=\"22\" height=\"14\" fill=\"#D55E00\" fill-opacity=\"0.15\" stroke=\"#D55E00\"/></svg> outage window</span>";

/// The legend's entry for the timeline's shaded degraded windows (blue and
/// dashed, where outages are vermillion and solid).
pub(super) const DEGRADED_LEGEND: &str = "<span><svg class=\"swatch\" viewBox=\"0 0 22 14\" aria-hidden=\"true\"><rect width=\"22\" height=\"14\" fill=\"#0072B2\" fill-opacity=\"0.12\" stroke=\"#0072B2\" stroke-dasharray=\"3 2\"/></svg> degraded window (slow answers)</span>";

/// The legend's window entries: outages always, degraded windows when there are any.
pub(super) fn window_legend(r: &crate::report::Report) -> String {
    if r.degraded.windows.is_empty() {
        WINDOW_LEGEND.to_string()
    } else {
        format!("{WINDOW_LEGEND}{DEGRADED_LEGEND}")
    }
}
