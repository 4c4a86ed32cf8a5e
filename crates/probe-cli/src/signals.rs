//! How a run is stopped from outside: SIGINT (Ctrl-C), SIGTERM (`kubectl delete`, a CI
//! timeout, systemd, container runtimes) and SIGHUP (a closed terminal) all end it the
//! same way: the trigger is killed, the report is written with `interrupted: true`.
//! A second signal exits at once; the samples already on disk stay readable
//! (`rollprobe report DIR` rebuilds the rest).

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

/// The exit status of a second signal: 128 + SIGINT, as a shell reports Ctrl-C.
const EXIT_AT_ONCE: i32 = 130;

/// Resolves at the first SIGINT, SIGTERM or SIGHUP, after saying so on stderr; from
/// then on, another of them exits the process at once.
pub fn shutdown() -> impl Future<Output = ()> + Send + 'static {
    let streams = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ]
    .map(|(kind, name)| (signal(kind).ok(), name));
    async move {
        let [(mut int, a), (mut term, b), (mut hup, c)] = streams;
        let name = tokio::select! {
            Some(()) = recv(&mut int) => a,
            Some(()) = recv(&mut term) => b,
            Some(()) = recv(&mut hup) => c,
        };
        eprintln!(
            "rollprobe: {name}: stopping and writing the report (signal again to exit at once)"
        );
        tokio::spawn(async move {
            tokio::select! {
                Some(()) = recv(&mut int) => {},
                Some(()) = recv(&mut term) => {},
                Some(()) = recv(&mut hup) => {},
            }
            eprintln!("rollprobe: exiting at once; the samples written so far stay readable");
            std::process::exit(EXIT_AT_ONCE);
        });
    }
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}
