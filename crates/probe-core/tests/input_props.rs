//! No input panics: the parsers of user-given values and the readers of files a
//! user hands to `rollprobe report` get arbitrary text and bytes, and must answer
//! with a value or an error, never a panic (fuzz-style, on stable, as plain tests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use probe_core::{
    analyze_recorded, analyze_samples_file, parse_duration, read_events, read_samples, HeaderMap,
    StatusSet, VersionSource, MAX_DURATION,
};
use proptest::prelude::*;

/// A real header line, so that the generated files reach the row readers.
const HEADER: &str = r#"# rollprobe.samples/v1 {"schema":"rollprobe.samples/v1","label":null,"target":"http://127.0.0.1:9/","config":{"rate":RATE,"connection":"fresh","timeout_ms":5000,"connect_timeout_ms":5000,"max_in_flight":116,"expect_status":"200-299","version_from":"body","method":"GET"},"started_at":"2026-11-27T03:26:29.799Z"}"#;
const COLUMNS: &str = "seq,intended_ms,sent_ms,wall_time,outcome,errno,errno_name,status,version,connect_ms,ttfb_ms,total_ms,connection,error";

/// A file of its own per case, removed when the case ends.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(bytes: &[u8]) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "rollprobe-input-props-{}-{}.csv",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Every reader of a samples file, and the analysis and rendering of what they
/// accept. Whatever they return is fine; a panic fails the property.
fn read_every_way(bytes: &[u8]) {
    let file = TempFile::new(bytes);
    if let Ok(run) = read_samples(&file.0) {
        let report = analyze_recorded(&run, Vec::new());
        let _ = report.summary();
        let _ = report.to_json();
    }
    if let Ok(report) = analyze_samples_file(&file.0, Vec::new()) {
        let _ = report.summary();
        let _ = report.to_json();
    }
    let _ = read_events(&file.0);
}

/// A number as a hostile file might spell it.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e308".to_string()),
        Just(String::new()),
        "[0-9.eE+-]{0,12}",
    ]
}

fn outcome() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ok".to_string()),
        Just("connection_refused".to_string()),
        Just("skipped".to_string()),
        Just("local_emfile".to_string()),
        "[a-z_]{0,20}",
    ]
}

/// A row with the right column count and hostile values.
fn row() -> impl Strategy<Value = String> {
    (
        number(),
        number(),
        number(),
        outcome(),
        number(),
        number(),
        ".{0,8}",
        number(),
    )
        .prop_map(
            |(seq, intended, sent, outcome, errno, status, version, total)| {
                let version = version.replace([',', '"', '\n', '\r'], "");
                format!(
                    "{seq},{intended},{sent},,{outcome},{errno},,{status},{version},,,{total},,"
                )
            },
        )
}

/// A samples file: a header with any rate, the column line, hostile rows, maybe a
/// footer with any duration, maybe torn at any byte.
fn samples_file() -> impl Strategy<Value = Vec<u8>> {
    (
        number(),
        proptest::collection::vec(row(), 0..40),
        proptest::option::of(number()),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(rate, rows, footer, cut, torn)| {
            let mut text = HEADER.replace("RATE", &rate);
            text.push('\n');
            text.push_str(COLUMNS);
            text.push('\n');
            for r in rows {
                text.push_str(&r);
                text.push('\n');
            }
            if let Some(d) = footer {
                text.push_str(&format!(
                    "# end {{\"ended_at\":\"2026-11-27T03:26:30.299Z\",\"duration_ms\":{d},\"interrupted\":false}}\n"
                ));
            }
            let mut bytes = text.into_bytes();
            if torn {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn duration_parser_never_panics(text in "\\PC{0,24}") {
        if let Ok(d) = parse_duration(&text) {
            // A parsed duration is a real one: it compares and converts without overflow.
            prop_assert!(d.as_secs_f64().is_finite());
        }
    }

    #[test]
    fn duration_parser_on_numbers_and_units(num in number(), unit in "(ms|s|m|h| s|x|)") {
        let text = format!("{num}{unit}");
        if let Ok(d) = parse_duration(&text) {
            prop_assert!(d.as_secs_f64() >= 0.0);
            let _ = probe_core::check_duration("duration", d);
            prop_assert_eq!(probe_core::check_duration("duration", d).is_ok(), d <= MAX_DURATION);
        }
    }

    #[test]
    fn status_list_parser_never_panics(text in "[0-9,\\- ]{0,30}|\\PC{0,30}") {
        if let Ok(set) = text.parse::<StatusSet>() {
            // What it accepted prints back as a list it accepts again.
            let again: StatusSet = set.to_string().parse().unwrap();
            prop_assert_eq!(again.to_string(), set.to_string());
        }
    }

    #[test]
    fn version_source_parser_and_extractor_never_panic(
        source in prop_oneof![
            Just("body".to_string()),
            "header:[A-Za-z-]{0,12}",
            "json:(/[a-z0-9~]{0,6}){0,3}",
            "regex:\\PC{0,16}",
            "\\PC{0,20}",
        ],
        header_value in proptest::collection::vec(any::<u8>(), 0..40),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        if let Ok(src) = source.parse::<VersionSource>() {
            let value = String::from_utf8_lossy(&header_value).into_owned();
            let headers =
                HeaderMap::try_from(&HashMap::from([("x-version".to_string(), value)]))
                    .unwrap_or_default();
            let version = src.extract(&headers, &body);
            if let (VersionSource::Body, Some(v)) = (&src, &version) {
                // The body is a version only when short and on one line.
                prop_assert!(!v.is_empty() && v.len() <= 64 && !v.contains('\n'), "{:?}", v);
            }
            // What parsed prints back as a source that parses again.
            prop_assert!(src.to_string().parse::<VersionSource>().is_ok());
        }
    }

    #[test]
    fn samples_readers_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        read_every_way(&bytes);
    }

    #[test]
    fn samples_readers_never_panic_on_hostile_samples_files(bytes in samples_file()) {
        read_every_way(&bytes);
    }
}
