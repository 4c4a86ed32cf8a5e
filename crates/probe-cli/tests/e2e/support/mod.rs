//! What the end-to-end suites share: the binary under test, the repository's files, and
//! the loopback fixtures. The fixtures are included by path from where they live
//! (the root package's tests/support/ and this crate's private versioned service), so
//! the library's suites and these probe the very same servers, and the binary needs no
//! public API for its tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "../../../../../tests/support/loopback.rs"]
mod loopback;
#[path = "../../../src/service.rs"]
mod service;
mod slow_server;

pub use loopback::*;
pub use service::ServiceInstance;
pub use slow_server::SlowForAWhile;

/// The `rollprobe` binary under test, as Cargo built it for this test.
pub const ROLLPROBE: &str = env!("CARGO_BIN_EXE_rollprobe");

/// The rollprobe binary, as a command.
pub fn rollprobe() -> Command {
    Command::new(ROLLPROBE)
}

/// The command lab pods run: this build's `rollprobe lab-app`, given to the lab
/// explicitly (`LabConfig::app_command`) instead of through the environment.
pub fn lab_app() -> Option<Vec<String>> {
    Some(vec![ROLLPROBE.to_string(), "lab-app".to_string()])
}

/// The repository's root (the seed's manifests, deploy/, examples/ are read from there).
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A fresh, empty folder for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rollprobe-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// A man page (roff) rendered by the real `man` at 100 columns, as a reader sees it;
/// panics with man's own error when it fails.
pub fn man_page_text(page: &Path) -> String {
    let out = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .expect("`man` must be installed to render the page (apt-get install man-db)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Sends `sig` to a child this test started (a run to stop as a user or CI would).
pub fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid, which is not reaped before this returns.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// The lab namespaces of process `pid` that still exist.
pub fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("rplab-{pid}-");
    let list = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect()
}
