//! `rollprobe completions SHELL` and `rollprobe man`: both generated from the
//! same clap definitions as the parser, so they can never drift from the flags.

use std::io::Write;
use std::path::Path;

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

/// Prints the man page (roff) on stdout, or with `dir` writes `rollprobe.1` and one
/// `rollprobe-COMMAND.1` per visible command there (the pages the top page refers to).
pub fn man(dir: Option<&Path>) -> Exit {
    let Some(dir) = dir else {
        return match page(Cli::command()) {
            Ok(out) => write_stdout(&out),
            Err(e) => {
                eprintln!("rollprobe: cannot render the man page: {e}");
                Exit::Failed
            }
        };
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("rollprobe: cannot write to --dir {}: {e}", dir.display());
        return Exit::Usage;
    }
    let mut top = Cli::command();
    top.build();
    let mut pages = vec![("rollprobe".to_string(), top.clone())];
    // `help` is clap's own, and its page would only repeat this one.
    let commands = top
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help");
    for sub in commands {
        // clap_mangen names a subcommand's page after the command it is given.
        let name = format!("rollprobe-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().name(name)));
    }
    for (name, cmd) in pages {
        let path = dir.join(format!("{name}.1"));
        if let Err(e) = page(cmd).and_then(|roff| std::fs::write(&path, roff)) {
            eprintln!("rollprobe: cannot write {}: {e}", path.display());
            return Exit::Failed;
        }
    }
    eprintln!("rollprobe: wrote the man pages into {}", dir.display());
    Exit::Ok
}

fn page(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    Ok(verbatim_extra(&String::from_utf8_lossy(&out)).into_bytes())
}

/// The EXTRA section (the long help's examples and tables) is laid out in columns for a
/// terminal: man must not refill it, or the failure-kind table wraps into a jumble.
fn verbatim_extra(roff: &str) -> String {
    let Some(start) = roff.find(".SH EXTRA\n") else {
        return roff.to_string();
    };
    let body = start + ".SH EXTRA\n".len();
    let end = roff[body..]
        .find("\n.SH ")
        .map(|i| body + i + 1)
        .unwrap_or(roff.len());
    format!(
        "{}.nf\n{}.fi\n{}",
        &roff[..body],
        &roff[body..end],
        &roff[end..]
    )
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
