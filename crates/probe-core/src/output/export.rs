//! Writing a finished run's (or matrix's) files: one [`Exporter`] per file, and one
//! function that writes a set of them into a folder.
//!
//! Why one interface: the run folder's files were written by four functions with
//! four naming schemes, and each caller (the probe, the matrix runner) listed the file
//! names and wrapped the errors itself. Here each file is a value that knows its
//! name and how to write itself, so the probe and the matrix runner only say which set
//! they write (hyperfine's `export/` is the model: one exporter per format).

use std::io;
use std::path::{Path, PathBuf};

use crate::matrix::Matrix;
use crate::report::Report;
use crate::strategy::Strategy;

/// One file written from a finished `T` (a [`Report`] or a [`Matrix`]).
pub(crate) trait Exporter<T: ?Sized> {
    /// The file's name in the output folder.
    fn file_name(&self) -> &'static str;
    /// Writes the file at `path`.
    fn write(&self, of: &T, path: &Path) -> io::Result<()>;
}

/// A file that could not be written, with its path.
#[derive(Debug)]
pub(crate) struct ExportError {
    /// The file that failed.
    pub path: PathBuf,
    /// Why.
    pub source: io::Error,
}

/// Writes every exporter's file into `dir`, in order; stops at the first failure.
pub(crate) fn write_all<T: ?Sized>(
    dir: &Path,
    of: &T,
    exporters: &[&dyn Exporter<T>],
) -> Result<(), ExportError> {
    for exporter in exporters {
        let path = dir.join(exporter.file_name());
        exporter
            .write(of, &path)
            .map_err(|source| ExportError { path, source })?;
    }
    Ok(())
}

/// report.json: the report as its serde wire format.
pub(crate) struct ReportJson;
/// windows.csv: one row per outage window.
pub(crate) struct WindowsCsv;
/// timeline.csv: the run in time buckets.
pub(crate) struct TimelineCsv;
/// report.html: the report as one page.
pub(crate) struct ReportHtml;

/// The files of a finished run, in the order they are written.
pub(crate) const REPORT_FILES: &[&dyn Exporter<Report>] =
    &[&ReportJson, &WindowsCsv, &TimelineCsv, &ReportHtml];

impl Exporter<Report> for ReportJson {
    fn file_name(&self) -> &'static str {
        "report.json"
    }
    fn write(&self, report: &Report, path: &Path) -> io::Result<()> {
        std::fs::write(path, report.to_json())
    }
}

impl Exporter<Report> for WindowsCsv {
    fn file_name(&self) -> &'static str {
        "windows.csv"
    }
    fn write(&self, report: &Report, path: &Path) -> io::Result<()> {
        super::windows_csv::write_windows_csv(path, report)
    }
}

impl Exporter<Report> for TimelineCsv {
    fn file_name(&self) -> &'static str {
        "timeline.csv"
    }
    fn write(&self, report: &Report, path: &Path) -> io::Result<()> {
        super::timeline_csv::write(path, report)
    }
}

impl Exporter<Report> for ReportHtml {
    fn file_name(&self) -> &'static str {
        "report.html"
    }
    fn write(&self, report: &Report, path: &Path) -> io::Result<()> {
        super::html::write(path, report)
    }
}

/// Every file rollprobe may leave in a run's or a matrix's output folder, so that a
/// new run can tell whether a folder already holds one (and what `--force` replaces).
///
/// ```
/// let names = probe_core::output_file_names();
/// assert!(names.contains(&"samples.csv") && names.contains(&"matrix.json"));
/// ```
pub fn output_file_names() -> Vec<&'static str> {
    let matrix: [&dyn Exporter<Matrix>; 3] = [
        &MatrixCsv,
        &MatrixJson {
            strategy_after: None,
        },
        &MatrixHtml,
    ];
    let mut names = vec![
        crate::sample::RUN_FILE,
        crate::sample::SAMPLES_FILE,
        crate::event::EVENTS_FILE,
        crate::trigger::TRIGGER_LOG,
    ];
    names.extend(REPORT_FILES.iter().map(|e| e.file_name()));
    names.extend(matrix.iter().map(|e| e.file_name()));
    names
}

/// matrix.csv: one row per run.
pub(crate) struct MatrixCsv;
/// matrix.json: the matrix, with the strategy the Deployment was left with.
pub(crate) struct MatrixJson {
    /// The strategy after the matrix (`strategy_after`), once it is known.
    pub strategy_after: Option<Strategy>,
}
/// matrix.html: the matrix as one page.
pub(crate) struct MatrixHtml;

impl Exporter<Matrix> for MatrixCsv {
    fn file_name(&self) -> &'static str {
        "matrix.csv"
    }
    fn write(&self, m: &Matrix, path: &Path) -> io::Result<()> {
        std::fs::write(path, m.to_csv())
    }
}

impl Exporter<Matrix> for MatrixJson {
    fn file_name(&self) -> &'static str {
        "matrix.json"
    }
    fn write(&self, m: &Matrix, path: &Path) -> io::Result<()> {
        let mut value: serde_json::Value =
            serde_json::from_str(&m.to_json()).unwrap_or(serde_json::Value::Null);
        if let (Some(s), serde_json::Value::Object(map)) = (&self.strategy_after, &mut value) {
            map.insert("strategy_after".into(), s.to_string().into());
        }
        std::fs::write(
            path,
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        )
    }
}

impl Exporter<Matrix> for MatrixHtml {
    fn file_name(&self) -> &'static str {
        "matrix.html"
    }
    fn write(&self, m: &Matrix, path: &Path) -> io::Result<()> {
        super::html::write_matrix_html(path, m, "rollprobe matrix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_folder_gets_every_report_file_and_a_failure_names_its_path() {
        let dir = std::env::temp_dir().join(format!("rollprobe-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let report = crate::output::html::tests::base_report("export", "http://127.0.0.1:1/");
        write_all(&dir, &report, REPORT_FILES).unwrap();
        for name in ["report.json", "windows.csv", "timeline.csv", "report.html"] {
            let len = std::fs::metadata(dir.join(name)).unwrap().len();
            assert!(len > 0, "{name} is empty");
        }
        let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
        assert_eq!(json, report.to_json());
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = dir.join("not-there");
        let err = write_all(&missing, &report, REPORT_FILES).unwrap_err();
        assert_eq!(err.path, missing.join("report.json"));
    }
}
