//! The project is the agent's: every file in it is hostile input to the harness, which reads
//! them unconfined, with its own environment (API keys) and rights. Issue 7's cases, end to
//! end through the real binary and the fake model server: `progress.md` linked to
//! `/proc/self/environ` (the key must not reach the model), `progress.md` and `loopwright.toml`
//! as FIFOs (`run`, `exec` and `status` finish), a link to `/dev/zero` (the prompt stays small),
//! `feature_list.json` turned into a directory (the run goes on), a symlinked `app_spec.txt`;
//! and what reaches the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright_std;
use common::three_scripts::*;
use serde_json::{json, Value};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;
use testkit::{FakeServer, Reply, Script, Turn};

/// The key the harness holds in its environment; it must never appear in what the model gets.
const KEY: &str = "sk-ant-api03-HOSTILE-TEST-KEY-6f1c0d2e";

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Runs `cmd` to the end, or kills it and fails the test after `secs`: a harness blocked on a
/// FIFO must fail the test, not hang it.
fn output_within(mut cmd: std::process::Command, secs: u64) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("loopwright did not finish within {secs} s (blocked on a hostile file?)");
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn bash(command: &str) -> Turn {
    call("bash", json!({ "command": command }))
}

/// The first request of each session (the one with the prompt and the task only).
fn session_starts(server: &FakeServer) -> Vec<Value> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.messages().len() == 1)
        .map(|r| r.body)
        .collect()
}

fn warnings(state: &Path) -> Vec<String> {
    events(state)
        .into_iter()
        .filter(|e| e["type"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect()
}

fn exec_cmd(w: &World, server: &FakeServer, task: &str) -> std::process::Command {
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("exec")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(w.state.join("exec"))
        .args(["--model", MODEL])
        .arg(task)
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", KEY);
    cmd
}

fn status_cmd(w: &World) -> std::process::Command {
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("status")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state);
    cmd
}

#[test]
fn progress_md_linked_to_the_harness_environment_never_reaches_the_model() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(
        [
            planning_turns(),
            vec![
                bash("python3 -c \"import os; os.symlink('/proc/self/environ', 'progress.md')\""),
                Turn::text("I left my notes in progress.md."),
            ],
            vec![Turn::text("Nothing more to do.")],
        ]
        .concat(),
    ));
    let mut cmd = run_cmd(&w, &server, &["--max-sessions", "3", "--json"]);
    cmd.env("ANTHROPIC_API_KEY", KEY);
    let out = output_within(cmd, 300);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(server.turns_left(), 0);

    for request in server.requests() {
        let body = request.body.to_string();
        assert!(!body.contains(KEY), "the key reached the model: {body}");
        assert!(
            !body.contains("ANTHROPIC_BASE_URL="),
            "the environment reached the model"
        );
    }
    let starts = session_starts(&server);
    let third = starts[2]["system"].to_string();
    assert!(
        third.contains(
            "(progress.md was not read: it is a symbolic link (to /proc/self/environ); \
             loopwright does not follow links in the project. Keep your notes in a regular file \
             named progress.md.)"
        ),
        "{third}"
    );
    assert!(
        warnings(&w.state)
            .iter()
            .any(|m| m.contains("progress.md was not put into the prompt")
                && m.contains("/proc/self/environ")),
        "{:?}",
        warnings(&w.state)
    );
    // The agent's link is left as it is (it is the agent's file), and the key is nowhere in the
    // state either.
    assert!(std::fs::symlink_metadata(w.project.join("progress.md"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!std::fs::read_to_string(w.state.join("events.jsonl"))
        .unwrap()
        .contains(KEY));
}

#[test]
fn progress_md_as_a_fifo_or_a_dev_zero_link_neither_hangs_nor_floods_run_exec_or_status() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(
        [
            planning_turns(),
            vec![
                bash("python3 -c \"import os; os.mkfifo('progress.md')\""),
                Turn::text("Notes are in the pipe."),
            ],
            vec![
                bash("python3 -c \"import os; os.remove('progress.md'); os.symlink('/dev/zero', 'progress.md')\""),
                Turn::text("Notes are endless now."),
            ],
            vec![Turn::text("Done.")],
            // exec, afterwards
            vec![Turn::text("exec done")],
        ]
        .concat(),
    ));
    let out = output_within(run_cmd(&w, &server, &["--max-sessions", "4"]), 300);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let starts = session_starts(&server);
    assert_eq!(starts.len(), 4);
    let after_fifo = starts[2]["system"].to_string();
    assert!(
        after_fifo
            .contains("(progress.md was not read: it is a FIFO (named pipe), not a regular file."),
        "{after_fifo}"
    );
    let after_zero = starts[3]["system"].to_string();
    assert!(
        after_zero.contains("(progress.md was not read: it is a symbolic link (to /dev/zero);"),
        "{after_zero}"
    );
    // Bounded: the prompt is the template, spec and table, not a gigabyte of zeros.
    assert!(after_zero.len() < 32 * 1024, "{}", after_zero.len());
    assert!(server.requests().iter().all(|r| r.body_len < 256 * 1024));

    // `status` and `exec` in the same project, progress.md now a FIFO again.
    std::fs::remove_file(w.project.join("progress.md")).unwrap();
    mkfifo(&w.project.join("progress.md"));
    let status = output_within(status_cmd(&w), 60);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    let exec = output_within(exec_cmd(&w, &server, "say done"), 120);
    // The model answers without a tool call: the session ends as no_action, exit 5.
    assert_eq!(exec.status.code(), Some(5), "{}", stderr(&exec));
}

#[test]
fn loopwright_toml_as_a_fifo_stops_run_exec_and_status_with_exit_2() {
    let w = world();
    std::fs::create_dir_all(&w.project).unwrap();
    mkfifo(&w.project.join("loopwright.toml"));
    let server = FakeServer::start_blocking(Script::turns(vec![]));
    for (what, cmd) in [
        ("run", run_cmd(&w, &server, &[])),
        ("exec", exec_cmd(&w, &server, "anything")),
        ("status", status_cmd(&w)),
    ] {
        let out = output_within(cmd, 60);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("loopwright.toml is a FIFO (named pipe), not a regular file")
                && err.contains("It must be a regular file"),
            "{what}: {err}"
        );
    }
    assert_eq!(server.request_count(), 0);
}

#[test]
fn loopwright_toml_linked_to_a_secret_is_not_read() {
    let w = world();
    std::fs::create_dir_all(&w.project).unwrap();
    let secret = w.home.join("id_rsa");
    std::fs::write(
        &secret,
        "-----BEGIN OPENSSH PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(&secret, w.project.join("loopwright.toml")).unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![]));
    for (what, cmd) in [
        ("run", run_cmd(&w, &server, &[])),
        ("status", status_cmd(&w)),
    ] {
        let out = output_within(cmd, 60);
        assert_eq!(out.status.code(), Some(2), "{what}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("is a symbolic link (to"), "{what}: {err}");
        // A TOML parse error would have quoted the file.
        assert!(!err.contains("SECRET-KEY-MATERIAL"), "{what}: {err}");
    }
}

#[test]
fn feature_list_json_turned_into_a_directory_does_not_end_the_run() {
    let w = world();
    let writes = NAMES
        .iter()
        .enumerate()
        .fold(Reply::default(), |r, (i, name)| {
            r.with_tool_call(
                "write_file",
                json!({"path": format!("{name}.py"), "content": format!("print({})\n", i + 1)}),
            )
        });
    let verifies = (1..=3).fold(Reply::default(), |r, n| {
        r.with_tool_call("verify_feature", json!({"id": format!("F{n}")}))
    });
    let server = FakeServer::start_blocking(Script::turns(
        [
            planning_turns(),
            vec![
                bash("python3 -c \"import os; os.remove('feature_list.json'); os.makedirs('feature_list.json'); open('feature_list.json/keep', 'w').write('agent data')\""),
                Turn::text("Reorganised."),
            ],
            vec![
                Turn::Reply(writes),
                Turn::Reply(verifies),
                Turn::text("All three work."),
            ],
        ]
        .concat(),
    ));
    let out = output_within(run_cmd(&w, &server, &[]), 300);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(w.project.join("feature_list.json")).unwrap(),
    )
    .unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["passes"] == json!(true)));
    // The agent's directory was moved aside, not deleted, and the move was reported.
    let displaced: Vec<String> = std::fs::read_dir(&w.project)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".loopwright-displaced-feature_list.json-"))
        .collect();
    assert_eq!(displaced.len(), 1, "{displaced:?}");
    assert_eq!(
        std::fs::read_to_string(w.project.join(&displaced[0]).join("keep")).unwrap(),
        "agent data"
    );
    assert!(
        warnings(&w.state).iter().any(|m| m.contains(
            "feature_list.json was a directory, in the way of feature_list.json; it was moved to .loopwright-displaced-feature_list.json-"
        )),
        "{:?}",
        warnings(&w.state)
    );
}

#[test]
fn a_symlinked_app_spec_txt_is_replaced_not_written_through() {
    let w = world();
    std::fs::create_dir_all(&w.project).unwrap();
    let outside = w.home.join("notes.txt");
    std::fs::write(&outside, "the user's own file\n").unwrap();
    std::os::unix::fs::symlink(&outside, w.project.join("app_spec.txt")).unwrap();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    let out = output_within(run_cmd(&w, &server, &["--max-sessions", "1"]), 300);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "the user's own file\n"
    );
    let meta = std::fs::symlink_metadata(w.project.join("app_spec.txt")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(
        std::fs::read_to_string(w.project.join("app_spec.txt")).unwrap(),
        std::fs::read_to_string(&w.spec).unwrap()
    );
    assert!(
        warnings(&w.state)
            .iter()
            .any(|m| m == "app_spec.txt was a symbolic link and was replaced by the harness's file"),
        "{:?}",
        warnings(&w.state)
    );
}

/// What the model says, with every trick for the terminal in it.
const NASTY: &str =
    "Done.\x1b]52;c;cHduZWQ=\x07 \x1b[2J\x1b[Hreally\x1b]8;;https://evil.example/\x1b\\ \
                     link\x1b]8;;\x1b\\ \u{9b}31mred\x1bP$q\"p\x1b\\ bell\x07 over\rwrite\x08!";
const NASTY_SHOWN: &str = "Done. really link red bell overwrite!";

/// A file name with a newline and an escape in it: tool lines must stay one line each.
const NASTY_NAME: &str = "notes\n[harness] all features pass\x1b[2J.txt";

fn nasty_script() -> Script {
    Script::turns(vec![
        Turn::tool_call(
            "bash",
            json!({"command": "printf 'out\\033]52;c;b3V0\\007put\\n'"}),
        ),
        Turn::tool_call("write_file", json!({"path": NASTY_NAME, "content": "x\n"})),
        Turn::tool_call("list_files", json!({})),
        Turn::text(NASTY),
    ])
}

fn is_file_in(project: &Path, name: &str) -> bool {
    project.join(name).is_file()
}

fn assert_clean(text: &str) {
    for bad in [
        "\x1b]", "\x1bP", "\x07", "\x1b[2J", "\x1b[H", "\u{9b}", "\x08", "cHduZWQ=",
    ] {
        assert!(
            !text.contains(bad),
            "{bad:?} reached the terminal: {text:?}"
        );
    }
}

#[test]
fn model_text_and_tool_output_reach_a_log_without_control_sequences() {
    let w = world();
    std::fs::create_dir_all(&w.project).unwrap();
    let server = FakeServer::start_blocking(nasty_script());
    let out = output_within(exec_cmd(&w, &server, "say something"), 120);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_clean(&err);
    assert!(err.contains(NASTY_SHOWN), "{err}");
    // No escape at all in a log (the live line's own erase sequence is for terminals only).
    assert!(!err.contains('\x1b'), "{err:?}");
    // The file name cannot forge a line of its own.
    assert!(!err.lines().any(|l| l.starts_with("[harness]")), "{err}");
    assert!(is_file_in(&w.project, NASTY_NAME));

    // JSON keeps the model's exact text, escaped; not one raw control byte in the output.
    let server = FakeServer::start_blocking(nasty_script());
    let mut cmd = exec_cmd(&w, &server, "say something");
    cmd.arg("--json");
    let out = output_within(cmd, 120);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.chars().all(|c| c == '\n' || !c.is_control()),
        "{stdout:?}"
    );
    let texts: Vec<String> = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "assistant.text")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, vec![NASTY.to_string()]);
}

/// On a terminal the text streams in 16-character deltas, so sequences arrive cut in pieces.
#[test]
fn streamed_text_on_a_terminal_loses_sequences_cut_across_deltas() {
    let w = world();
    std::fs::create_dir_all(&w.project).unwrap();
    let server = FakeServer::start_blocking(nasty_script());
    let (mut master, mut slave) = (0, 0);
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    use std::os::fd::FromRawFd;
    let master = unsafe { std::fs::File::from_raw_fd(master) };
    let slave = unsafe { std::os::fd::OwnedFd::from_raw_fd(slave) };
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut master = master;
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once every slave descriptor is closed.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let mut cmd = exec_cmd(&w, &server, "say something");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave));
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let shown = reader.join().unwrap();
    assert_clean(&shown);
    // The terminal turns \n into \r\n; the text itself arrives whole.
    assert!(shown.contains(NASTY_SHOWN), "{shown:?}");
}
