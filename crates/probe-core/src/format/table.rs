//! Aligned text tables (the comparison and the matrix summary).
//!
//! Hand-written on purpose: the layout is two spaces between columns, numbers
//! right-aligned, no borders and no trailing spaces, which scripts and the tests
//! read line by line. comfy-table and tabled draw borders or pad the last column
//! by default, and matching this byte for byte with them takes more code than the
//! twenty lines here.

use std::fmt::Write as _;

/// Lays out rows as a table: the first column left-aligned, the others
/// right-aligned (numbers), and the last one left-aligned when `text_last`.
pub(crate) fn aligned_table(rows: &[Vec<String>], text_last: bool) -> String {
    let columns = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c == 0 || (text_last && c + 1 == columns) {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}
