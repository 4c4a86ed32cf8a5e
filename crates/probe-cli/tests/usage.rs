//! The binary's own front door: help, version and a usage error. (Having an
//! integration test here also makes `cargo test` build the `rollprobe` binary,
//! which the end-to-end suites in the root package's tests/ run.)

use std::process::Command;

#[test]
fn help_version_and_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_rollprobe");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for sub in ["run", "report", "compare", "demo", "lab"] {
        assert!(text.contains(sub), "{sub} missing from --help: {text}");
    }
    assert!(!text.contains("lab-app"), "the pods' app is not for users");
    let version = Command::new(bin).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("rollprobe "));
    let bad = Command::new(bin).args(["run"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}
