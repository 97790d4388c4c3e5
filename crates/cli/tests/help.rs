//! `--help` of every command, as snapshots: the flags are the CLI's public interface.

#![allow(clippy::unwrap_used, clippy::expect_used)]

fn help(args: &[&str]) -> String {
    let out = assert_cmd::Command::cargo_bin("loopwright")
        .unwrap()
        .args(args)
        .arg("--help")
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help_lists_every_command() {
    let text = help(&[]);
    for command in [
        "run",
        "status",
        "exec",
        "models",
        "doctor",
        "report",
        "reset",
        "init",
        "completions",
        "man",
    ] {
        assert!(
            text.contains(&format!("  {command} ")),
            "{command} missing from:\n{text}"
        );
    }
    insta::assert_snapshot!(text);
}

#[test]
fn run_help() {
    insta::assert_snapshot!(help(&["run"]));
}

#[test]
fn status_help() {
    insta::assert_snapshot!(help(&["status"]));
}

#[test]
fn exec_help() {
    insta::assert_snapshot!(help(&["exec"]));
}

#[test]
fn models_help() {
    insta::assert_snapshot!(help(&["models"]));
}

#[test]
fn doctor_help() {
    insta::assert_snapshot!(help(&["doctor"]));
}

#[test]
fn report_help() {
    insta::assert_snapshot!(help(&["report"]));
}

#[test]
fn reset_help() {
    insta::assert_snapshot!(help(&["reset"]));
}

#[test]
fn init_help() {
    insta::assert_snapshot!(help(&["init"]));
}

#[test]
fn completions_help() {
    insta::assert_snapshot!(help(&["completions"]));
}

#[test]
fn man_help() {
    insta::assert_snapshot!(help(&["man"]));
}

#[test]
fn unknown_flags_are_usage_errors() {
    let out = assert_cmd::Command::cargo_bin("loopwright")
        .unwrap()
        .args(["run", "--frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
