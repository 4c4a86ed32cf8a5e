//! Criterion benches of rollprobe's hot paths (issue 5).
//!
//! * `classify/*`: naming one outcome: `classify_error` over an `io::Error`
//!   wrapped two levels deep (a connect error under two wrappers), with and without an
//!   errno, and `outcome_for_status` / `outcome_for_errno`.
//! * `stamp/sample`: what the probe does per request after the answer: build
//!   the [`Sample`] (wall-clock formatting, errno name, strings).
//! * `analyze/*`: the [`Analyzer`] over 1,000,000 samples arriving slightly out
//!   of order (windows, versions, flips, histograms), and the report built from it.
//! * `csv/write`: streaming 1,000,000 samples to samples.csv with [`SampleWriter`].
//! * `report/*`: what `rollprobe report DIR --format json --out OUT` does on a
//!   1,000,000-row run: [`analyze_samples_file`] (the rows streamed through the
//!   analyzer), the JSON, the report files, and the whole command in process.
//!
//! `ROLLPROBE_BENCH_ROWS` changes the row count (default 1,000,000), e.g. for a
//! quick check: `ROLLPROBE_BENCH_ROWS=100000 cargo bench --bench hot_paths`.
//! Run one group with `cargo bench --bench hot_paths -- analyze`.

// criterion_group! defines a public function that cannot carry a doc comment.
#![allow(missing_docs)]

use std::error::Error as StdError;
use std::fmt;
use std::hint::black_box;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use probe_core::{
    analyze_samples_file, classify_error, errno_name, outcome_for_errno, outcome_for_status,
    write_report_files, Analyzer, Clock, Outcome, ProbeConfig, RunFooter, RunHeader, RunRecord,
    Sample, SampleWriter, Target,
};

fn rows() -> usize {
    std::env::var("ROLLPROBE_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A wrapper error around its cause, as a library or a caller's own code makes one.
#[derive(Debug)]
struct Wrapped {
    what: &'static str,
    source: Box<dyn StdError + Send + Sync + 'static>,
}

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }
}

impl StdError for Wrapped {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.source.as_ref())
    }
}

fn chain(inner: io::Error) -> Wrapped {
    Wrapped {
        what: "client error (Connect)",
        source: Box::new(Wrapped {
            what: "tcp connect error",
            source: Box::new(inner),
        }),
    }
}

fn bench_classify(c: &mut Criterion) {
    let mut g = c.benchmark_group("classify");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let refused = chain(io::Error::from_raw_os_error(libc::ECONNREFUSED));
    g.bench_function("classify_error/errno_under_2_wrappers", |b| {
        b.iter(|| classify_error(black_box(&refused), Outcome::Other))
    });
    let eof = chain(io::Error::new(io::ErrorKind::UnexpectedEof, "early eof"));
    g.bench_function("classify_error/eof_without_errno", |b| {
        b.iter(|| classify_error(black_box(&eof), Outcome::Other))
    });
    g.bench_function("outcome_for_errno+errno_name", |b| {
        b.iter(|| {
            let e = black_box(libc::EHOSTUNREACH);
            (outcome_for_errno(e), errno_name(e))
        })
    });
    let envoy = b"no healthy upstream".as_slice();
    g.bench_function("outcome_for_status/503_envoy_body", |b| {
        b.iter(|| outcome_for_status(black_box(503), None, black_box(envoy)))
    });
    let html = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
    g.bench_function("outcome_for_status/502_nginx", |b| {
        b.iter(|| outcome_for_status(black_box(502), Some("nginx"), black_box(html.as_slice())))
    });
    g.finish();
}

fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

fn bench_stamp(c: &mut Criterion) {
    let mut g = c.benchmark_group("stamp");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    let clock = Clock::start();
    let mut seq = 0u64;
    // The same work as the per-request task in schedule.rs after `execute()`.
    g.bench_function("sample", |b| {
        b.iter(|| {
            seq += 1;
            let intended_ms = round_ms(seq as f64 * 0.2);
            Sample {
                sent_ms: Some(round_ms(intended_ms + 0.013)),
                wall_time: clock.wall_at(intended_ms),
                errno: None,
                errno_name: None::<i32>.and_then(errno_name).map(str::to_string),
                status: Some(200),
                version: Some("v1".to_string()),
                request_id: Some(format!("0f3a9c2b7d-local-fresh-{seq}")),
                connect_ms: Some(round_ms(0.081)),
                ttfb_ms: Some(round_ms(0.152)),
                total_ms: Some(round_ms(0.163)),
                connection: Some("new".to_string()),
                error: None,
                ..Sample::new("local-fresh".to_string(), seq, intended_ms, Outcome::Ok)
            }
        })
    });
    g.finish();
}

/// A synthetic run at 1000 req/s: two versions with a mixed rollover in the
/// middle, an outage (refused, then unreachable) every 100,000 requests, a few
/// 503s and skipped ticks, in completion order (out of order within 8).
fn synthetic(n: usize) -> Vec<Sample> {
    let clock = Clock::start();
    let mut out: Vec<Sample> = (0..n as u64)
        .map(|seq| {
            let intended_ms = seq as f64;
            let phase = seq % 100_000;
            let outcome = if (50_000..50_300).contains(&phase) {
                Outcome::HostUnreachable
            } else if (50_300..50_800).contains(&phase) {
                Outcome::ConnectionRefused
            } else if seq.is_multiple_of(9973) {
                Outcome::Http5xx
            } else if seq.is_multiple_of(49_999) {
                Outcome::Skipped
            } else {
                Outcome::Ok
            };
            let errno = match outcome {
                Outcome::HostUnreachable => Some(libc::EHOSTUNREACH),
                Outcome::ConnectionRefused => Some(libc::ECONNREFUSED),
                _ => None,
            };
            let half = n as u64 / 2;
            let new_version = seq > half + 1000 || (seq > half && seq.is_multiple_of(2));
            let sent = outcome != Outcome::Skipped;
            Sample {
                sent_ms: sent.then(|| round_ms(intended_ms + 0.021 + (seq % 7) as f64 * 0.01)),
                wall_time: clock.wall_at(intended_ms),
                errno,
                errno_name: errno.and_then(errno_name).map(str::to_string),
                status: match outcome {
                    Outcome::Ok => Some(200),
                    Outcome::Http5xx => Some(503),
                    _ => None,
                },
                version: (outcome == Outcome::Ok)
                    .then(|| if new_version { "v2" } else { "v1" }.to_string()),
                request_id: sent.then(|| format!("0f3a9c2b7d-local-fresh-{seq}")),
                connect_ms: sent.then_some(0.081),
                ttfb_ms: (sent && errno.is_none()).then_some(0.152),
                total_ms: sent.then(|| round_ms(0.163 + (seq % 13) as f64 * 0.017)),
                connection: sent.then(|| "new".to_string()),
                error: match outcome {
                    Outcome::ConnectionRefused => Some(
                        "client error (Connect): tcp connect error: Connection refused (os error 111)"
                            .to_string(),
                    ),
                    Outcome::HostUnreachable => Some(
                        "client error (Connect): tcp connect error: No route to host (os error 113)"
                            .to_string(),
                    ),
                    Outcome::Http5xx => Some("HTTP 503: Service Unavailable".to_string()),
                    Outcome::Skipped => Some("not sent: max in flight reached".to_string()),
                    _ => None,
                },
                ..Sample::new("local-fresh", seq, intended_ms, outcome)
            }
        })
        .collect();
    // Completion order: within each block of 8, the second half finishes first.
    for block in out.chunks_mut(8) {
        block.rotate_left(block.len() / 2);
    }
    out
}

fn header() -> RunHeader {
    let config = ProbeConfig {
        rate: 1000.0,
        label: Some("bench".into()),
        ..ProbeConfig::new(Target::parse("http://127.0.0.1:18080/").unwrap())
    };
    RunHeader {
        started_at: "2026-01-01T00:00:00.000Z".into(),
        run_id: "0f3a9c2b7d".into(),
        streams: vec!["local-fresh".into()],
        ..RunHeader::new(&config)
    }
}

fn footer(n: usize) -> RunFooter {
    RunFooter {
        ended_at: "2026-01-01T00:16:40.000Z".into(),
        duration_ms: n as f64,
        interrupted: false,
        trigger: None,
        unanswered: 0,
    }
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the bench's scratch folder");
    dir
}

fn big_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    n: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(n as u64));
    g
}

fn bench_analyze(c: &mut Criterion) {
    let n = rows();
    let samples = synthetic(n);
    let head = header();
    let foot = footer(n);
    let mut g = big_group(c, "analyze", n);
    g.bench_function(format!("push/{n}"), |b| {
        b.iter_batched(
            || samples.clone(),
            |samples| {
                let mut a = Analyzer::new(1000.0);
                for s in samples {
                    a.push(s);
                }
                a
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function(format!("push+finish/{n}"), |b| {
        b.iter_batched(
            || samples.clone(),
            |samples| {
                let mut a = Analyzer::new(1000.0);
                for s in samples {
                    a.push(s);
                }
                let report = a.finish(&head, Some(&foot));
                assert_eq!(report.versions.len(), 2);
                report
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_csv(c: &mut Criterion) {
    let n = rows();
    let samples = synthetic(n);
    let head = header();
    let foot = footer(n);
    let dir = scratch_dir();
    let path = dir.join("write.csv");
    let mut g = big_group(c, "csv", n);
    g.bench_function(format!("write/{n}"), |b| {
        b.iter(|| {
            RunRecord {
                header: head.clone(),
                end: None,
            }
            .write(&dir)
            .expect("write run.json");
            let mut w = SampleWriter::create(&path).expect("create samples.csv");
            for s in &samples {
                w.write(s).expect("write a sample");
            }
            w.finish().expect("finish samples.csv");
            RunRecord {
                header: head.clone(),
                end: Some(foot.clone()),
            }
            .write(&dir)
            .expect("complete run.json");
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench_report(c: &mut Criterion) {
    let n = rows();
    let dir = scratch_dir();
    let run_dir = dir.join("run");
    let out_dir = dir.join("report");
    std::fs::create_dir_all(&run_dir).expect("create the run folder");
    std::fs::create_dir_all(&out_dir).expect("create the report folder");
    let path = run_dir.join("samples.csv");
    {
        let head = header();
        let mut w = SampleWriter::create(&path).expect("create samples.csv");
        for s in &synthetic(n) {
            w.write(s).expect("write a sample");
        }
        w.finish().expect("finish samples.csv");
        RunRecord {
            header: head,
            end: Some(footer(n)),
        }
        .write(&run_dir)
        .expect("write run.json");
    }
    let report = analyze_samples_file(&path, Vec::new()).expect("read back");
    assert_eq!(report.totals.sent + report.totals.skipped, n as u64);
    let mut g = big_group(c, "report", n);
    // The parts of `rollprobe report`, then the whole command in process.
    g.bench_function(format!("stream+analyze/{n}"), |b| {
        b.iter(|| analyze_samples_file(&path, Vec::new()).expect("read samples.csv"))
    });
    g.bench_function(format!("json/{n}"), |b| b.iter(|| report.to_json()));
    g.bench_function(format!("write_report_files/{n}"), |b| {
        b.iter(|| write_report_files(&out_dir, &report).expect("write the report files"))
    });
    g.bench_function(format!("rollprobe_report_all_outputs/{n}"), |b| {
        b.iter(|| {
            let report = analyze_samples_file(&path, Vec::new()).expect("read samples.csv");
            black_box(report.to_json());
            write_report_files(&out_dir, &report).expect("write the report files");
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(
    benches,
    bench_classify,
    bench_stamp,
    bench_analyze,
    bench_csv,
    bench_report
);
criterion_main!(benches);
