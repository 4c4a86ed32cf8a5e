//! The binary's own front door: help, version and a usage error.

use crate::support::rollprobe;

#[test]
fn help_version_and_usage_errors() {
    let help = rollprobe().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for sub in ["run", "report", "compare", "demo", "lab"] {
        assert!(text.contains(sub), "{sub} missing from --help: {text}");
    }
    assert!(!text.contains("lab-app"), "the pods' app is not for users");
    let version = rollprobe().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("rollprobe "));
    let bad = rollprobe().args(["run"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
}
