//! The exit codes of `rollprobe`, named once: scripts and CI jobs branch on them, so
//! each number means one thing in every command.

use std::process::ExitCode;

/// How a command ended, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, and every gate passed.
    Ok = 0,
    /// 1: a gate failed (a threshold was breached, or the trigger failed); the line says which.
    Breached = 1,
    /// 2: bad usage or input, said in one line before any request was sent.
    Usage = 2,
    /// 3: the prober itself failed, or the measurement is not valid.
    Failed = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}
