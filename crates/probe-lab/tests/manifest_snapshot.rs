//! Every manifest the lab ships parses to the same model as when the snapshots beside
//! this file were taken: the snapshots (`tests/manifests/*.txt`) are the `{:#?}` of
//! [`probe_lab::parse_manifests`] as it was before the parser moved onto k8s-openapi's
//! types, so a change of parsing layer cannot change what the controller is given.
//!
//! `ROLLPROBE_BLESS=1 cargo test -p probe-lab --test manifest_snapshot` rewrites the
//! snapshots; a rewrite is a change of model and shows as a diff to review.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (manifest path, snapshot path) for the seeds and this folder's own manifests.
fn cases() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for dir in [
        root().join("../../examples/seed"),
        root().join("tests/manifests"),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let stem = f.file_stem().unwrap().to_string_lossy().into_owned();
            let prefix = if dir.ends_with("seed") { "seed-" } else { "" };
            let snap = root().join(format!("tests/manifests/{prefix}{stem}.txt"));
            out.push((f, snap));
        }
    }
    out
}

#[test]
fn manifests_parse_to_their_snapshots() {
    let bless = std::env::var_os("ROLLPROBE_BLESS").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 6,
        "expected the five seeds and modelled-fields.yaml"
    );
    for (yaml, snap) in cases {
        let text = std::fs::read_to_string(&yaml).unwrap();
        let objs =
            probe_lab::parse_manifests(&text).unwrap_or_else(|e| panic!("{}: {e}", yaml.display()));
        let got = format!("{objs:#?}\n");
        if bless {
            std::fs::write(&snap, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&snap)
            .unwrap_or_else(|e| panic!("{}: {e} (run with ROLLPROBE_BLESS=1)", snap.display()));
        assert_eq!(
            got,
            want,
            "{} no longer parses to {}",
            yaml.display(),
            snap.display()
        );
    }
}
