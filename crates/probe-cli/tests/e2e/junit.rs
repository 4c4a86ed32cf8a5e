//! `--junit FILE`: the gate as JUnit XML, read back by a real consumer (Python's
//! junitparser from PyPI, installed into a fresh virtual environment by the test).

use std::path::Path;
use std::process::Command;

use crate::support::{closed_port, rollprobe, serve, temp_dir, Behaviour};

/// A virtual environment with junitparser: what a CI system's JUnit reader sees.
fn junitparser(dir: &Path) -> std::path::PathBuf {
    let venv = dir.join("venv");
    let made = Command::new("python3")
        .args(["-m", "venv", venv.to_str().unwrap()])
        .status()
        .expect("python3 runs");
    assert!(made.success(), "python3 -m venv failed");
    let python = venv.join("bin/python");
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "junitparser"])
        .status()
        .unwrap();
    assert!(installed.success(), "pip install junitparser failed");
    python
}

/// (name, failure message or "") of every testcase, as junitparser reads the file.
fn cases(python: &Path, xml: &Path) -> Vec<(String, String)> {
    let script = r#"
import sys
from junitparser import JUnitXml, Failure
for suite in JUnitXml.fromfile(sys.argv[1]):
    for case in suite:
        failures = [r for r in case.result if isinstance(r, Failure)]
        print(case.name + "\t" + (failures[0].message if failures else ""))
"#;
    let o = Command::new(python)
        .args(["-c", script, xml.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            let (name, message) = l.split_once('\t').unwrap();
            (name.to_string(), message.to_string())
        })
        .collect()
}

#[test]
fn a_breached_and_a_passed_gate_as_junit() {
    let dir = temp_dir("junit");
    let python = junitparser(&dir);

    let port = closed_port();
    let failed = dir.join("failed.xml");
    let o = rollprobe()
        .args(["run", &format!("http://127.0.0.1:{}/", port.port)])
        .args([
            "--rate",
            "50",
            "--duration",
            "1s",
            "--quiet",
            "--label",
            "down",
        ])
        .args(["--max-failures", "0", "--max-downtime", "100ms"])
        .args(["--junit", failed.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = cases(&python, &failed);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "measurement valid",
            "--max-failures 0",
            "--max-downtime 100 ms"
        ]
    );
    assert_eq!(got[0].1, "", "the measurement itself is valid");
    assert!(
        got[1]
            .1
            .starts_with("threshold breached: 50 requests failed, more than --max-failures 0"),
        "{}",
        got[1].1
    );
    assert!(
        got[2].1.contains("more than --max-downtime 100 ms"),
        "{}",
        got[2].1
    );

    let server = serve(Behaviour::Respond {
        status: 200,
        headers: Vec::new(),
        body: "v1".into(),
    });
    let passed = dir.join("passed.xml");
    let o = rollprobe()
        .args([
            "run",
            &server.url(),
            "--rate",
            "50",
            "--duration",
            "1s",
            "--quiet",
        ])
        .args(["--max-failures", "0", "--junit", passed.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = cases(&python, &passed);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, failure)| failure.is_empty()), "{got:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
