//! The `rollprobe` command line: parses arguments and wires probe-core's
//! pipeline together. No measurement logic lives here.
//!
//! Exit codes ([`Exit`]): 0 ok, 1 a gate failed, 2 bad usage or input (one line on
//! stderr, before any request is sent), 3 the prober itself failed or the measurement
//! is not valid.

mod args;
mod compare;
mod completions;
mod demo;
mod error;
mod exit;
mod finish;
mod lab;
mod matrix;
mod merge;
mod options;
mod progress;
mod report;
mod run;
mod service;
mod signals;

use std::process::ExitCode;

use clap::Parser;

pub use args::Cli;
pub use error::CliError;
pub use exit::Exit;

/// Runs the command line and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    Exit::Usage.into()
                } else {
                    Exit::Ok.into()
                };
            }
            // One clear line: clap's first line and its suggestion ("a similar argument
            // exists: '--rate'"), without the usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid usage");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            // "the following required arguments were not provided:" lists them on the
            // lines below: keep them on the one line.
            let listed: Vec<&str> = text
                .lines()
                .skip(1)
                .take_while(|l| l.starts_with("  "))
                .map(str::trim)
                .collect();
            let first = if first.ends_with(':') && !listed.is_empty() {
                format!("{first} {}", listed.join(", "))
            } else {
                first.to_string()
            };
            let tip = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("tip: "))
                .map(|t| format!("; {t}"))
                .unwrap_or_default();
            eprintln!("rollprobe: {first}{tip} (see rollprobe --help)");
            return Exit::Usage.into();
        }
    };
    match cli.command {
        // The pod's app runs alone in its process, with its own runtime.
        args::Command::LabApp => return probe_lab::run_app(),
        // Printing a script or a page needs no runtime.
        args::Command::Completions { shell } => return completions::completions(shell).into(),
        args::Command::Man { dir } => return completions::man(dir.as_deref()).into(),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rollprobe: cannot start the async runtime: {e}");
            return Exit::Failed.into();
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            args::Command::Run(a) => run::run(*a).await,
            args::Command::Report(a) => report::report(a),
            args::Command::Compare(a) => compare::compare(a),
            args::Command::Merge(a) => merge::merge(a),
            args::Command::Demo(a) => demo::demo(a).await,
            args::Command::Lab(a) => lab::lab(*a).await,
            args::Command::Matrix(a) => matrix::matrix(*a).await,
            args::Command::LabApp
            | args::Command::Completions { .. }
            | args::Command::Man { .. } => {
                unreachable!("handled before the runtime starts")
            }
        }
    });
    match result {
        Ok(code) => code.into(),
        Err(CliError::Usage(msg)) => {
            eprintln!("rollprobe: {msg}");
            Exit::Usage.into()
        }
        Err(CliError::Failed(msg)) => {
            eprintln!("rollprobe: {msg}");
            Exit::Failed.into()
        }
    }
}
