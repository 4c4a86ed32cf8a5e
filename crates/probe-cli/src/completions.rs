//! `rollprobe completions SHELL` and `rollprobe man`: both generated from the
//! same clap definitions as the parser, so they can never drift from the flags.

use std::io::Write;

use clap::CommandFactory;

use crate::args::Cli;
use crate::exit::Exit;

/// Prints the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Exit {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "rollprobe", &mut out);
    write_stdout(&out)
}

/// Prints the man page (roff) on stdout.
pub fn man() -> Exit {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        eprintln!("rollprobe: cannot render the man page: {e}");
        return Exit::Failed;
    }
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Exit {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Exit::Ok,
        // A closed pipe (`rollprobe man | head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("rollprobe: cannot write to stdout: {e}");
            Exit::Failed
        }
    }
}
