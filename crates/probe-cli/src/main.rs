//! The `rollprobe` binary: everything it does is in the probe-cli library (`probe_cli::main`).

fn main() -> std::process::ExitCode {
    probe_cli::main()
}
