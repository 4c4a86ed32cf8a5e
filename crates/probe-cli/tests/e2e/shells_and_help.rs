//! Completions, the man page and the help, all generated from the clap
//! definitions, checked the way a user meets them: the bash script loaded into a
//! real bash, the page rendered by a real `man`.

use std::process::Command;

fn rollprobe(args: &[&str]) -> std::process::Output {
    crate::support::rollprobe().args(args).output().unwrap()
}

#[test]
fn bash_completes_r_to_report_and_run() {
    let script = rollprobe(&["completions", "bash"]);
    assert!(script.status.success());
    let path =
        std::env::temp_dir().join(format!("rollprobe-completion-{}.bash", std::process::id()));
    std::fs::write(&path, &script.stdout).unwrap();
    // What bash does on <Tab> after `rollprobe r`: set the words and call the
    // function the script registered for rollprobe.
    let driver = format!(
        r#"source '{}' || exit 10
func=$(complete -p rollprobe | sed -n 's/.*-F \([^ ]*\).*/\1/p')
[ -n "$func" ] || exit 11
COMP_WORDS=(rollprobe r); COMP_CWORD=1; COMP_LINE='rollprobe r'; COMP_POINT=${{#COMP_LINE}}
"$func" rollprobe r rollprobe
printf '%s\n' "${{COMPREPLY[@]}}" | sort"#,
        path.display()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &driver])
        .output()
        .expect("bash must be installed");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offered = String::from_utf8_lossy(&out.stdout);
    let offered: Vec<&str> = offered.lines().collect();
    assert_eq!(offered, ["report", "run"]);
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = rollprobe(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("rollprobe") && text.contains("matrix"),
            "{shell}: {text}"
        );
    }
    let bad = rollprobe(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_man_page_renders_with_man_and_names_the_subcommands() {
    let page = rollprobe(&["man"]);
    assert!(page.status.success());
    let path = std::env::temp_dir().join(format!("rollprobe-{}.1", std::process::id()));
    std::fs::write(&path, &page.stdout).unwrap();
    let text = crate::support::man_page_text(&path);
    let _ = std::fs::remove_file(&path);
    // Rendered, not raw roff.
    assert!(!text.contains(".TH"), "{text}");
    assert!(text.contains("NAME") && text.contains("rollprobe - Measure how much a service"));
    for sub in [
        "run",
        "report",
        "compare",
        "demo",
        "lab",
        "matrix",
        "completions",
    ] {
        assert!(
            text.contains(&format!("rollprobe-{sub}")),
            "{sub} missing: {text}"
        );
    }
    assert!(text.contains("Exit codes"), "{text}");
}

#[test]
fn help_speaks_to_users_and_explains_exit_codes() {
    let short = String::from_utf8_lossy(&rollprobe(&["-h"]).stdout).into_owned();
    assert!(
        short.starts_with("Measure how much a service is really down"),
        "{short}"
    );
    assert!(!short.contains("wiring"), "{short}");
    let long = String::from_utf8_lossy(&rollprobe(&["--help"]).stdout).into_owned();
    for needle in [
        "connection_refused",
        "host_unreachable",
        "Exit codes",
        "2  bad usage or input",
        "3  the prober itself failed, or the measurement is not valid",
    ] {
        assert!(long.contains(needle), "{needle} missing: {long}");
    }
    for sub in [
        "run",
        "report",
        "compare",
        "demo",
        "lab",
        "matrix",
        "completions",
        "man",
    ] {
        let help = String::from_utf8_lossy(&rollprobe(&[sub, "--help"]).stdout).into_owned();
        assert!(help.contains("Example: "), "{sub} has no example: {help}");
    }
}
