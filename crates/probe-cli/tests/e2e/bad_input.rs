//! Out-of-range values are one line and exit 2 before anything runs, and a
//! hand-edited samples.csv is one line and exit 2, never a panic. The URLs point
//! at a loopback port that nothing is meant to answer: no request is sent anyway.

fn refused(args: &[&str]) -> String {
    let out = crate::support::rollprobe().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn out_of_range_flags_are_refused_before_anything_runs() {
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "http://127.0.0.1:9/"];
        args.extend_from_slice(extra);
        refused(&args)
    };
    assert!(run(&["--rate", "1e-19", "--duration", "1s"]).contains("0.01 to 1000000"));
    assert!(run(&["--rate", "0"]).contains("--rate"));
    assert!(run(&["--rate", "inf"]).contains("--rate"));
    assert!(run(&["--timeout", "0"]).contains("above zero"));
    assert!(run(&["--connect-timeout", "0s"]).contains("above zero"));
    assert!(run(&["--duration", "200h"]).contains("7 days"));
    assert!(run(&["--settle", "1000000000s"]).contains("7 days"));
    assert!(run(&["--max-in-flight", "100001"]).contains("100000"));
}

#[test]
fn a_samples_file_with_impossible_values_is_one_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("rollprobe-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = |rate: &str| {
        format!(
            r#"# rollprobe.samples/v1 {{"schema":"rollprobe.samples/v1","label":null,"target":"http://127.0.0.1:9/","config":{{"rate":{rate},"connection":"fresh","timeout_ms":5000,"connect_timeout_ms":5000,"max_in_flight":116,"expect_status":"200-299","version_from":"body","method":"GET"}},"started_at":"2026-11-27T03:26:29.799Z"}}
seq,intended_ms,sent_ms,wall_time,outcome,errno,errno_name,status,version,connect_ms,ttfb_ms,total_ms,connection,error
"#
        )
    };
    let row = |intended: &str| {
        format!("0,{intended},0.5,,connection_refused,111,ECONNREFUSED,,,,,0.4,new,refused\n")
    };
    for (name, text, says) in [
        ("rate0.csv", header("0.0") + &row("0.0"), "rate"),
        ("huge.csv", header("10.0") + &row("1e300"), "intended_ms"),
        ("inf.csv", header("10.0") + &row("inf"), "intended_ms"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let err = refused(&["report", path.to_str().unwrap()]);
        assert!(err.contains(says), "{name}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mistyped_flag_names_the_one_that_exists() {
    let o = crate::support::rollprobe()
        .args([
            "run",
            "http://127.0.0.1:9/",
            "--duration",
            "1s",
            "--rat",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        stderr.trim_end(),
        "rollprobe: unexpected argument '--rat' found; a similar argument exists: '--rate' (see rollprobe --help)"
    );
}

#[test]
fn lab_topology_options_are_refused_before_the_lab_is_built() {
    let seed = |name: &str| format!("{}/examples/seed/{name}", crate::support::REPO);
    let (recreate, bluegreen_slow) = (seed("recreate.yaml"), seed("bluegreen-slow.yaml"));
    let lab = |file: &str, extra: &[&str]| {
        let mut args = vec!["lab", "-f", file, "--set-image", "backend-deployment=x:v2"];
        args.extend_from_slice(extra);
        refused(&args)
    };
    assert!(lab(&recreate, &["--from", "router"]).contains("client, node[:N] or pod[:N]"));
    assert!(lab(&recreate, &["--nodes", "9"]).contains("--nodes"));
    assert!(lab(&recreate, &["--nodes", "0"]).contains("--nodes"));
    let e = lab(&recreate, &["--nodes", "2", "--from", "pod:3"]);
    assert!(e.contains("--from pod:3") && e.contains("--nodes 3"), "{e}");
    let e = lab(&recreate, &["--sync-delays", "0.5s,3s"]);
    assert!(e.contains("2 delays for 1 node"), "{e}");
    assert!(lab(&recreate, &["--sync-delays", "fast"]).contains("--sync-delays"));
    // A ClusterIP Service has no address the client host could reach.
    let e = refused(&[
        "lab",
        "-f",
        &bluegreen_slow,
        "--set-selector",
        "web-svc:color=green",
        "--from",
        "client",
    ]);
    assert!(e.contains("not a LoadBalancer"), "{e}");
}
