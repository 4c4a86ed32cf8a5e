//! The `rollprobe` binary end to end: every suite that runs the command line, and the
//! lab suites whose pods run its `lab-app`, as modules of one test binary (ripgrep's
//! layout). One binary links once and finds the command it tests through Cargo
//! (`CARGO_BIN_EXE_rollprobe`, see `support`), never by guessing a path.
//!
//! Suites that need only the library stay in the root package's tests/.

mod support;

mod access_log;
mod bad_input;
mod cli;
mod degraded;
mod deploy_args;
mod help;
mod hostile;
mod junit;
mod lab_faults;
mod lab_ingress;
mod lab_library;
mod lab_mesh;
mod lab_nodes;
mod lab_procedure;
mod lab_proxy_modes;
mod lab_seed;
mod metrics;
mod noise;
mod pods;
mod reach;
mod report_html;
mod request_ids;
mod shells_and_help;
mod signals;
mod streams;
mod summaries;
mod truthful_times;
mod unreachable_errnos;
mod usage;
mod verdict;
