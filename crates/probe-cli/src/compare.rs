//! `rollprobe compare`: reports side by side, as a table or as matrix.html's page.

use std::path::Path;

use probe_core::output::html::render_matrix_html;
use probe_core::{Comparison, Matrix, Report};

use crate::args::{CompareArgs, TableFormat};
use crate::error::CliError;
use crate::exit::Exit;

/// `rollprobe compare`.
pub fn compare(a: CompareArgs) -> Result<Exit, CliError> {
    let mut reports = Vec::new();
    let mut pages = Vec::new();
    for path in &a.reports {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        let mut report = Report::from_json(&text).map_err(|e| {
            CliError::Usage(format!(
                "{} is not a rollprobe report.json: {e}",
                path.display()
            ))
        })?;
        if report.label.is_none() {
            report.label = Some(run_name(path));
        }
        reports.push(report);
        // Each report's own page, linked as the path was given.
        let page = path.with_file_name("report.html");
        pages.push(page.is_file().then(|| page.to_string_lossy().to_string()));
    }
    let table = Comparison::new(&reports);
    match a.format {
        TableFormat::Text => print!("{}", table.to_text()),
        TableFormat::Csv => print!("{}", table.to_csv()),
        TableFormat::Json => println!("{}", table.to_json()),
        TableFormat::Html => {
            let runs: Vec<(Report, Option<String>)> = reports.into_iter().zip(pages).collect();
            let matrix = Matrix::from_reports(&runs);
            print!("{}", render_matrix_html(&matrix, "rollprobe compare"));
        }
    }
    Ok(Exit::Ok)
}

/// A name for an unlabelled report: its folder, or its file stem.
fn run_name(path: &Path) -> String {
    let parent = path
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string());
    parent.unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "run".into())
    })
}
