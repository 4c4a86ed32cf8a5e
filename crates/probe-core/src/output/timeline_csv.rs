//! timeline.csv: the report's per-second series as a plain table (one header
//! row, then one row per second), for spreadsheets and plotting tools.

use std::io;
use std::path::Path;

use crate::report::{Report, SecondStats};

/// Writes timeline.csv, one row per second per stream: `stream, second, sent, ok`, one column per failure kind seen in
/// the run (in report order), `versions` (the versions that answered in that
/// second, separated by spaces), `p50_ms, p99_ms` (latency of its ok answers
/// from the intended time; empty when none answered).
///
/// ```no_run
/// # fn demo(report: &probe_core::Report) -> std::io::Result<()> {
/// probe_core::output::timeline_csv::write(std::path::Path::new("out/timeline.csv"), report)?;
/// # Ok(()) }
/// ```
pub fn write(path: &Path, report: &Report) -> io::Result<()> {
    std::fs::write(path, to_string(report))
}

fn header(report: &Report) -> Vec<String> {
    let mut h: Vec<String> = ["stream", "second", "sent", "ok"].map(String::from).into();
    h.extend(report.failure_kinds().into_iter().map(String::from));
    h.extend(["versions", "p50_ms", "p99_ms"].map(String::from));
    h
}

/// Each stream's seconds in turn; a report written before streams existed has its
/// one series at the top level.
fn series(report: &Report) -> Vec<(&str, &[SecondStats])> {
    if report.streams.is_empty() {
        let name = report.config.connection.to_string();
        return vec![(
            if name == "keepalive" {
                "local-keepalive"
            } else {
                "local-fresh"
            },
            &report.per_second,
        )];
    }
    report
        .streams
        .iter()
        .map(|s| (s.name.as_str(), s.per_second.as_slice()))
        .collect()
}

fn rows(report: &Report) -> impl Iterator<Item = Vec<String>> + '_ {
    let kinds = report.failure_kinds();
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
    let flat = series(report)
        .into_iter()
        .flat_map(|(name, seconds)| seconds.iter().map(move |s| (name, s)));
    flat.map(move |(name, s)| {
        let mut row = vec![
            name.to_string(),
            s.second.to_string(),
            s.sent.to_string(),
            s.ok.to_string(),
        ];
        row.extend(
            kinds
                .iter()
                .map(|k| s.failures.get(*k).copied().unwrap_or(0).to_string()),
        );
        row.push(s.versions.join(" "));
        row.push(ms(s.p50_ms));
        row.push(ms(s.p99_ms));
        row
    })
}

/// The whole file as a string.
pub fn to_string(report: &Report) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let rows = std::iter::once(header(report)).chain(rows(report));
    for row in rows {
        w.write_record(row)
            .expect("writing CSV to memory cannot fail");
    }
    let bytes = w.into_inner().expect("flushing to memory cannot fail");
    String::from_utf8(bytes).expect("every field is UTF-8")
}

#[cfg(test)]
mod tests {
    use crate::output::html::tests::base_report;

    #[test]
    fn one_row_per_second_with_a_column_per_kind_of_the_run() {
        let mut r = base_report("csv", "http://127.0.0.1:1/");
        r.failures.insert("host_unreachable".into(), 0);
        let text = super::to_string(&r);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(
            header,
            [
                "stream",
                "second",
                "sent",
                "ok",
                "connection_refused",
                "host_unreachable",
                "versions",
                "p50_ms",
                "p99_ms"
            ]
        );
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 3);
        let first: Vec<&str> = rows[1].iter().take(6).collect();
        assert_eq!(first, ["local-fresh", "1", "1000", "700", "300", "0"]);
        assert_eq!(&rows[1][6], "v1 v2");
        assert!(rows[1][7].parse::<f64>().unwrap() > 0.0);
        assert_eq!(&rows[2][6], "v2");
    }
}
