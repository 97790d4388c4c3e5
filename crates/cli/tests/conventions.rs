//! The conventions of a command-line tool: shell completions and man pages generated from the
//! flags, output that survives a closed pipe, `-q`/`-v`/`RUST_LOG`, and `status --watch`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright;
use common::three_scripts::*;
use std::io::{BufRead, BufReader};
use testkit::{FakeServer, Script, Turn};

#[test]
fn completions_for_bash_zsh_and_fish_name_every_command() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = loopwright(home.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        for command in ["run", "status", "report", "init", "reset", "max-iterations"] {
            assert!(text.contains(command), "{shell}: {command} missing");
        }
    }
    let out = loopwright(home.path())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_man_page_is_roff_and_one_page_per_command_can_be_written() {
    let home = tempfile::tempdir().unwrap();
    let out = loopwright(home.path()).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH loopwright 1"), "{page}");
    assert!(page.contains("report"));
    let dir = home.path().join("man1");
    loopwright(home.path())
        .args(["man", "--dir"])
        .arg(&dir)
        .assert()
        .success();
    for name in ["loopwright.1", "loopwright-run.1", "loopwright-report.1"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.starts_with(".ie") || text.contains(".TH"), "{name}");
    }
    assert!(std::fs::read_to_string(dir.join("loopwright-run.1"))
        .unwrap()
        .contains("max\\-sessions"));
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        vec!["models", "--json"],
        vec!["models"],
        vec!["man"],
        vec!["completions", "bash"],
    ] {
        // The reading end is closed before the command writes anything.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = common::loopwright_std(home.path())
            .args(&args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn verbose_and_rust_log_show_diagnostics_on_stderr_and_quiet_is_exclusive() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    let status = |flags: &[&str], rust_log: Option<&str>| {
        let mut cmd = common::loopwright_std(&w.home);
        cmd.args(flags)
            .args(["status", "-C"])
            .arg(&w.project)
            .arg("--state-dir")
            .arg(&w.state);
        match rust_log {
            Some(v) => cmd.env("RUST_LOG", v),
            None => cmd.env_remove("RUST_LOG"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(!status(&[], None).contains("using the run's state dir"));
    assert!(status(&["-v"], None).contains("using the run's state dir"));
    assert!(status(&[], Some("loopwright=info")).contains("using the run's state dir"));
    assert!(
        !status(&["-v"], Some("error")).contains("using"),
        "RUST_LOG wins"
    );
    loopwright(&w.home)
        .args(["-q", "-v", "status"])
        .assert()
        .code(2);
}

#[test]
fn status_watch_prints_a_line_per_change_and_ends_when_the_run_stops() {
    let w = world();
    let slow = FakeServer::start_blocking(Script::turns(vec![Turn::stall(0, 60_000)]));
    let mut first = run_cmd(&w, &slow, &[]);
    first
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = first.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while slow.request_count() == 0 {
        assert!(std::time::Instant::now() < deadline, "the run never called");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut watch = common::loopwright_std(&w.home)
        .args(["status", "--watch", "--interval", "1", "-C"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first_line = lines.next().unwrap().unwrap();
    assert!(
        first_line.contains("running, session 1 (planning) running · planning · passing 0/0"),
        "{first_line}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = watch.wait().unwrap();
    assert!(status.success());
    assert_eq!(rest.len(), 1, "one line for the one change: {rest:?}");
    assert!(rest[0].contains("not running · planning"), "{rest:?}");
}
