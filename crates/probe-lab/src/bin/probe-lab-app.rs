//! The lab app as a standalone binary (the same code as `rollprobe lab-app`).
fn main() -> std::process::ExitCode {
    probe_lab::run_app()
}
