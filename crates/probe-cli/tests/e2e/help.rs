//! Help that helps: usage errors that name what is missing, one man page per command
//! (the pages the top page refers to), completion that offers the values an option
//! takes, and gates that refuse limits they could only guess at. Checked as a user meets
//! them: the real binary, a real `man`, a real bash.

use std::path::Path;
use std::process::{Command, Output};

fn rollprobe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollprobe"))
        .args(args)
        .output()
        .expect("run rollprobe")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_missing_argument_is_named_on_the_one_line() {
    let o = rollprobe(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not provided: <URL>"), "{err}");
    let o = rollprobe(&["matrix", "--out", "x"]);
    let err = stderr(&o);
    assert!(
        err.contains("--deployment <NAME>") && err.contains("--case <CASE>"),
        "{err}"
    );
}

#[test]
fn max_failures_refuses_ok_and_a_kind_given_twice_before_probing() {
    // Port 9 on loopback: nothing is sent, the options are refused first.
    let url = "http://127.0.0.1:9/";
    for args in [
        vec!["run", url, "--duration", "1s", "--max-failures", "ok=3"],
        vec![
            "run",
            url,
            "--duration",
            "1s",
            "--max-failures",
            "http_5xx=0",
            "--max-failures",
            "http_5xx=3",
        ],
        vec![
            "run",
            url,
            "--duration",
            "1s",
            "--max-failures",
            "1",
            "--max-failures",
            "2",
        ],
    ] {
        let o = rollprobe(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(o.stdout.is_empty(), "nothing measured for {args:?}");
    }
}

#[test]
fn man_dir_writes_a_page_per_command_that_man_renders() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("help-man");
    let _ = std::fs::remove_dir_all(&dir);
    let o = rollprobe(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for page in [
        "rollprobe",
        "rollprobe-run",
        "rollprobe-report",
        "rollprobe-compare",
        "rollprobe-merge",
        "rollprobe-lab",
        "rollprobe-matrix",
        "rollprobe-demo",
    ] {
        assert!(dir.join(format!("{page}.1")).is_file(), "{page}.1 missing");
    }
    let text = crate::support::man_page_text(&dir.join("rollprobe-run.1"));
    assert!(text.contains("rollprobe-run"), "{text}");
    assert!(
        text.contains("--max-failures") && text.contains("--resolve"),
        "{text}"
    );
}

#[test]
fn bash_completion_offers_the_connection_modes() {
    let script = rollprobe(&["completions", "bash"]);
    assert!(script.status.success());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("help-completion.bash");
    std::fs::write(&path, &script.stdout).unwrap();
    // What bash does on <Tab> after `rollprobe run --connection `.
    let driver = format!(
        r#"source '{}' || exit 10
func=$(complete -p rollprobe | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[ -n "$func" ] || exit 11
COMP_WORDS=(rollprobe run --connection ''); COMP_CWORD=3
COMP_LINE='rollprobe run --connection '; COMP_POINT=${{#COMP_LINE}}
"$func" rollprobe '' --connection
printf '%s\n' "${{COMPREPLY[@]}}" | sort"#,
        path.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &driver])
        .output()
        .expect("bash must be installed");
    assert!(out.status.success(), "{}", stderr(&out));
    let offered = String::from_utf8_lossy(&out.stdout);
    let offered: Vec<&str> = offered.lines().collect();
    assert_eq!(offered, ["both", "fresh", "keepalive"]);
}

#[test]
fn the_man_pages_failure_kind_table_keeps_one_row_per_line() {
    let page = rollprobe(&["man"]);
    assert!(page.status.success());
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("help-table.1");
    std::fs::write(&path, &page.stdout).unwrap();
    let text = crate::support::man_page_text(&path);
    // man used to refill the table, so a row's text ran onto the next line.
    for (kind, words) in [
        ("connection_refused", "the app not listening yet"),
        (
            "proxy_upstream_failed",
            "refused, reset or closed the connection",
        ),
        ("skipped", "--max-in-flight requests were out"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(kind) && l.contains(words)),
            "the {kind} row is not on one line:\n{text}"
        );
    }
}
