//! Starting and starting over: `init` then `run` on the scaffold, `--fresh` and `reset`
//! archiving, the project's lock and pointer (moved projects, deleted projects), the notify
//! hook, and every bad input refused before money is spent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::three_scripts::*;
use common::{loopwright, loopwright_std};
use predicates::prelude::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use testkit::{FakeServer, Script, Turn};

fn build(n: usize) -> Vec<Turn> {
    vec![
        call(
            "write_file",
            json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({})\n", n + 1)}),
        ),
        call("verify_feature", json!({"id": format!("F{}", n + 1)})),
        Turn::text("Done."),
    ]
}

fn whole_build() -> Vec<Turn> {
    [planning_turns(), build(0), build(1), build(2)].concat()
}

/// `loopwright run` on `project` with the fake server, without --state-dir unless given.
fn run_in(
    home: &Path,
    project: &Path,
    server: &FakeServer,
    extra: &[&str],
) -> std::process::Command {
    let mut cmd = loopwright_std(home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(project)
        .args(extra)
        .env("LOOPWRIGHT_MODEL", MODEL)
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", "sk-test");
    cmd
}

fn assert_run(cmd: std::process::Command) -> assert_cmd::assert::Assert {
    assert_cmd::Command::from_std(cmd).assert()
}

fn archived(dir: &Path) -> Vec<PathBuf> {
    let parent = dir.parent().unwrap();
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let mut out: Vec<PathBuf> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}.archived-"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn init_then_run_on_the_scaffold_builds_the_app() {
    let w = world();
    loopwright(&w.home)
        .arg("init")
        .arg(&w.project)
        .arg("--prompts")
        .assert()
        .success();
    for file in [
        "app_spec.txt",
        "loopwright.toml",
        "prompts/planning.md",
        "prompts/building.md",
        "prompts/wrapup.md",
    ] {
        assert!(w.project.join(file).is_file(), "{file}");
    }
    let toml = std::fs::read_to_string(w.project.join("loopwright.toml")).unwrap();
    assert!(toml.contains("# max_turns = 80"), "{toml}");
    assert!(toml.contains("# notify = "), "{toml}");
    // The untouched template is refused before anything is sent.
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    let prompts = w.project.join("prompts");
    let prompts = prompts.to_str().unwrap();
    assert_run(run_in(
        &w.home,
        &w.project,
        &idle,
        &[
            "--state-dir",
            w.state.to_str().unwrap(),
            "--prompts",
            prompts,
        ],
    ))
    .code(2)
    .stderr(predicate::str::contains("still the template"));
    assert_eq!(idle.request_count(), 0);
    // Filled in, with the model and a key of the scaffolded config set, it builds the app.
    std::fs::copy(&w.spec, w.project.join("app_spec.txt")).unwrap();
    std::fs::write(
        w.project.join("loopwright.toml"),
        toml.replace("# stall_sessions = 3", "stall_sessions = 2"),
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(whole_build()));
    assert_run(run_in(
        &w.home,
        &w.project,
        &server,
        &[
            "--state-dir",
            w.state.to_str().unwrap(),
            "--prompts",
            prompts,
        ],
    ))
    .success();
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
    // The project's own prompts were used (they are the defaults, so the text is the same),
    // and init does not overwrite what exists.
    std::fs::write(w.project.join("prompts/wrapup.md"), "mine {{reason}}").unwrap();
    loopwright(&w.home)
        .arg("init")
        .arg(&w.project)
        .arg("--prompts")
        .assert()
        .success()
        .stderr(predicate::str::contains("kept"));
    assert_eq!(
        std::fs::read_to_string(w.project.join("prompts/wrapup.md")).unwrap(),
        "mine {{reason}}"
    );
}

#[test]
fn fresh_archives_the_old_run_and_starts_over() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    let old_ledger = std::fs::read(w.state.join("ledger.jsonl")).unwrap();
    let again = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &again, &["--max-sessions", "1", "--fresh", "--yes"])
        .code(5)
        .stderr(predicate::str::contains(
            "archived the earlier run (--fresh)",
        ));
    let archives = archived(&w.state);
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert_eq!(
        std::fs::read(archives[0].join("ledger.jsonl")).unwrap(),
        old_ledger,
        "nothing of the old run is lost"
    );
    let status = status_json(&w);
    assert_eq!(status["sessions"].as_array().unwrap().len(), 1, "a new run");

    // `reset` archives too, and then status has no run to show.
    loopwright(&w.home)
        .args(["reset", "--yes", "-C"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .assert()
        .success()
        .stderr(predicate::str::contains("archived"));
    assert_eq!(archived(&w.state).len(), 2);
    loopwright(&w.home)
        .args(["status", "-C"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no run found"));
}

#[test]
fn a_second_run_on_one_project_is_refused_whatever_its_state_dir() {
    let w = world();
    // The first run's model call stalls for a minute: the run holds the project meanwhile.
    let slow = FakeServer::start_blocking(Script::turns(vec![Turn::stall(0, 60_000)]));
    let mut first = run_cmd(&w, &slow, &[]);
    first
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut first = first.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while slow.request_count() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never called"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let other_state = w.home.join("other-state");
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    assert_run(run_in(
        &w.home,
        &w.project,
        &idle,
        &[
            "--spec",
            w.spec.to_str().unwrap(),
            "--state-dir",
            other_state.to_str().unwrap(),
        ],
    ))
    .code(2)
    .stderr(predicate::str::contains("two runs never build one project"));
    assert_eq!(idle.request_count(), 0);
    assert!(!other_state.join("run.json").exists());
    // status sees the first run as live.
    let status = status_json(&w);
    assert_eq!(status["running"], true);
    assert_eq!(status["sessions"][0]["end"], "running");
    first.kill().unwrap();
    first.wait().unwrap();
    let status = status_json(&w);
    assert_eq!(status["running"], false);
    assert_eq!(status["sessions"][0]["end"], "cut off");
}

#[test]
fn redoing_a_run_after_deleting_its_project_archives_the_old_state() {
    let w = world();
    let home_state = |home: &Path| home.join(".local/state/loopwright");
    let server = FakeServer::start_blocking(Script::turns(whole_build()));
    let spec = w.spec.to_str().unwrap();
    assert_run(run_in(&w.home, &w.project, &server, &["--spec", spec])).success();
    std::fs::remove_dir_all(&w.project).unwrap();
    let again = FakeServer::start_blocking(Script::turns(whole_build()));
    assert_run(run_in(&w.home, &w.project, &again, &["--spec", spec]))
        .success()
        .stderr(predicate::str::contains("its project was deleted"));
    let dirs: Vec<String> = std::fs::read_dir(home_state(&w.home))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dirs.len(), 2, "the run and its archive: {dirs:?}");
    assert!(dirs.iter().any(|d| d.contains(".archived-")));
}

#[test]
fn a_moved_project_keeps_its_run() {
    let w = world();
    let spec = w.spec.to_str().unwrap();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    assert_run(run_in(
        &w.home,
        &w.project,
        &server,
        &["--spec", spec, "--max-sessions", "1"],
    ))
    .code(5);
    let moved = w.home.join("moved-project");
    std::fs::rename(&w.project, &moved).unwrap();
    let rest = FakeServer::start_blocking(Script::turns([build(0), build(1), build(2)].concat()));
    assert_run(run_in(&w.home, &moved, &rest, &["--spec", spec]))
        .success()
        .stderr(predicate::str::contains("the project moved from"));
    let out = loopwright(&w.home)
        .args(["status", "--json", "-C"])
        .arg(&moved)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["sessions"].as_array().unwrap().len(), 4, "{status}");
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
}

#[test]
fn the_notify_hook_gets_a_summary_and_its_failure_is_only_a_warning() {
    let w = world();
    std::fs::create_dir_all(&w.project).unwrap();
    let out = w.home.join("notified.json");
    std::fs::write(
        w.project.join("loopwright.toml"),
        format!("notify = [\"sh\", \"-c\", \"cat > '{}'\"]\n", out.display()),
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(summary["schema"], 1);
    assert_eq!(summary["type"], "run.stopped");
    assert_eq!(summary["reason"], "session_limit");
    assert_eq!(summary["exit_code"], 5);
    assert_eq!(summary["total"], 3);
    assert!(summary["spent"].as_i64().unwrap() > 0);

    std::fs::write(
        w.project.join("loopwright.toml"),
        "notify = [\"sh\", \"-c\", \"exit 3\"]\n",
    )
    .unwrap();
    let more = FakeServer::start_blocking(Script::turns(build(0)));
    run(&w, &more, &["--max-sessions", "1"])
        .code(5)
        .stderr(predicate::str::contains("notify command"));
}

#[test]
fn bad_inputs_are_refused_before_anything_is_sent() {
    let w = world();
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--budget".into(), "0".into()], "can pay for nothing"),
        (vec!["--budget".into(), "-1".into()], "negative"),
        (
            vec!["--budget".into(), "five".into()],
            "not a decimal amount",
        ),
        (
            vec!["--prompts".into(), "/nonexistent/prompts".into()],
            "does not exist",
        ),
        (
            vec!["--context-window".into(), "1024".into()],
            "context window",
        ),
        (
            vec!["--model".into(), "anthropc/claude-sonnet-4-5".into()],
            "did you mean anthropic/claude-sonnet-4-5?",
        ),
        (
            vec![
                "--model".into(),
                "anthropic/claude-sonet-4-5".into(),
                "--budget".into(),
                "1".into(),
            ],
            "did you mean anthropic/claude-sonnet-4-5?",
        ),
    ];
    // A spec of 4 kB is more than half of a 1024-token window.
    let big_spec = w.home.join("big_spec.txt");
    std::fs::write(&big_spec, "Make an app. ".repeat(400)).unwrap();
    for (extra, message) in cases {
        let spec = if extra.iter().any(|e| e == "--context-window") {
            &big_spec
        } else {
            &w.spec
        };
        let mut cmd = run_in(
            &w.home,
            &w.project,
            &idle,
            &["--spec", spec.to_str().unwrap()],
        );
        cmd.arg("--state-dir").arg(&w.state).args(&extra);
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(
            !stderr.contains("Usage:"),
            "our message, not clap's: {stderr}"
        );
    }
    // Stray or Python-named prompt files.
    let prompts = w.home.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(prompts.join("planing.md"), "typo").unwrap();
    let mut cmd = run_in(
        &w.home,
        &w.project,
        &idle,
        &["--spec", w.spec.to_str().unwrap()],
    );
    cmd.arg("--state-dir")
        .arg(&w.state)
        .arg("--prompts")
        .arg(&prompts);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("planing.md") && stderr.contains("initializer_prompt.md"),
        "{stderr}"
    );
    assert_eq!(idle.request_count(), 0);
    assert!(!w.state.join("ledger.jsonl").exists(), "nothing recorded");
}

#[test]
fn a_local_server_that_is_not_running_gets_a_hint() {
    let w = world();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--spec")
        .arg(&w.spec)
        .args(["--model", "ollama/qwen2.5-coder:7b"])
        .env("OLLAMA_HOST", format!("http://127.0.0.1:{port}"));
    assert_run(cmd)
        .code(2)
        .stderr(predicate::str::contains("connection refused"))
        .stderr(predicate::str::contains("ollama serve"));
}

#[test]
fn a_paid_openrouter_model_without_a_cached_price_fetches_the_price_list_once() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .arg("--spec")
        .arg(&w.spec)
        .args([
            "--model",
            "openrouter/anthropic/claude-sonnet-4.5",
            "--budget",
            "1",
            "--max-iterations",
            "1",
        ])
        .env("OPENROUTER_BASE_URL", server.openrouter_base_url())
        .env("OPENROUTER_API_KEY", "sk-or-test");
    assert_run(cmd)
        .code(5)
        .stderr(predicate::str::contains("fetched OpenRouter's prices"));
    assert!(w
        .home
        .join(".cache/loopwright/openrouter-models.json")
        .is_file());
    let requests = server.all_requests();
    assert!(
        requests[0].path.ends_with("/models"),
        "{}",
        requests[0].path
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.path.ends_with("/models"))
            .count(),
        1
    );
    assert!(status_json(&w)["spent"].as_i64().unwrap() > 0);
}

#[test]
fn max_sessions_counts_the_sessions_of_this_invocation_and_features_reaches_planning() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1", "--features", "3"]).code(5);
    let planning = server.requests()[0].body["system"].to_string();
    assert!(
        planning.contains("Aim for about 3 features in all."),
        "{planning}"
    );
    let more = FakeServer::start_blocking(Script::turns([build(0), build(1)].concat()));
    run(&w, &more, &["--max-iterations", "2"]).code(5);
    let status = status_json(&w);
    assert_eq!(status["sessions"].as_array().unwrap().len(), 3);
    assert_eq!(passing(&status), vec!["F1", "F2"]);
}

#[test]
fn an_imported_feature_list_is_checked_frozen_and_built_without_planning() {
    let w = world();
    std::fs::create_dir_all(w.project.join("tests")).unwrap();
    std::fs::write(w.project.join("tests/test_app.py"), TEST_FILE).unwrap();
    let list = w.home.join("feature_list.json");
    let mut features = vec![feature(0), feature(1), feature(2)];
    features[0]["passes"] = json!(true);
    std::fs::write(&list, serde_json::to_string(&features).unwrap()).unwrap();

    // Refused: a check the policy does not allow, a Python-harness entry without id and check.
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    let mut bad = features.clone();
    bad[2]["check"] = json!("sudo true");
    let bad_list = w.home.join("bad.json");
    std::fs::write(&bad_list, serde_json::to_string(&bad).unwrap()).unwrap();
    run(&w, &idle, &["--import", bad_list.to_str().unwrap()])
        .code(2)
        .stderr(predicate::str::contains(
            "imported feature list cannot be used",
        ))
        .stderr(predicate::str::contains("is not allowed"));
    std::fs::write(
        &bad_list,
        r#"[{"category": "functional", "description": "adds", "steps": [], "passes": false}]"#,
    )
    .unwrap();
    run(&w, &idle, &["--import", bad_list.to_str().unwrap()])
        .code(2)
        .stderr(predicate::str::contains(
            "needs an id, a description and a check",
        ));
    assert_eq!(idle.request_count(), 0);

    let server = FakeServer::start_blocking(Script::turns([build(0), build(1), build(2)].concat()));
    run(
        &w,
        &server,
        &["--import", list.to_str().unwrap(), "--fresh", "--yes"],
    )
    .success();
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    let kinds: Vec<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["building"; 3], "no planning session");
    assert!(server
        .requests()
        .iter()
        .all(|r| !r.tool_names().iter().any(|t| t == "add_features")));
    assert!(git_log(&w.project)
        .iter()
        .any(|m| m.starts_with("loopwright: plan — 3 features")));
}

const TEST_FOUR: &str = r#"import subprocess, sys, unittest

class TestFour(unittest.TestCase):
    def test_four(self):
        out = subprocess.run([sys.executable, "four.py"], capture_output=True, text=True).stdout
        self.assertEqual(out.strip(), "4")
"#;

#[test]
fn extend_plan_adds_features_for_a_changed_spec_and_leaves_the_frozen_ones_alone() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(whole_build()));
    run(&w, &server, &[]).success();
    let old_tests = std::fs::read(w.project.join("tests/test_app.py")).unwrap();

    std::fs::write(
        &w.spec,
        "Four scripts: one.py prints 1, two.py prints 2, three.py prints 3, four.py prints 4.\n",
    )
    .unwrap();
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    run(&w, &idle, &[])
        .code(2)
        .stderr(predicate::str::contains("--extend-plan"));

    let four = json!({
        "id": "F4",
        "category": "functional",
        "description": "four.py prints 4",
        "steps": ["python3 four.py"],
        "check": "python3 -m unittest tests.test_four",
        "test_files": ["tests/test_four.py"]
    });
    let turns = vec![
        // The extension session tries to weaken a frozen test: it is refused or put back.
        call(
            "write_file",
            json!({"path": "tests/test_app.py", "content": "# nothing to test\n"}),
        ),
        call(
            "write_file",
            json!({"path": "tests/test_four.py", "content": TEST_FOUR}),
        ),
        call("add_features", json!({"features": [feature(0)]})),
        call("add_features", json!({"features": [four]})),
        Turn::text("Added F4."),
        call(
            "write_file",
            json!({"path": "four.py", "content": "print(4)\n"}),
        ),
        call("verify_feature", json!({"id": "F4"})),
        Turn::text("F4 works."),
    ];
    let server = FakeServer::start_blocking(Script::turns(turns));
    run(&w, &server, &["--extend-plan"]).success();
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3", "F4"]);
    let kinds: Vec<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["planning", "building", "building", "building", "planning", "building"]
    );
    assert_eq!(
        std::fs::read(w.project.join("tests/test_app.py")).unwrap(),
        old_tests,
        "the frozen test is as it was"
    );
    let reqs = server.requests();
    let prompt = reqs[0].body["system"].to_string();
    assert!(
        prompt.contains("The specification changed after it was planned"),
        "{prompt}"
    );
    assert!(
        prompt.contains("four.py prints 4"),
        "the new spec is in the prompt"
    );
    assert!(
        reqs[3]
            .last_tool_result()
            .unwrap()
            .contains("\"F1\" is used twice"),
        "an existing feature cannot be added again"
    );
    assert!(std::fs::read_to_string(w.state.join("features.json"))
        .unwrap()
        .contains("tests/test_four.py"));
    assert_eq!(
        std::fs::read_to_string(w.project.join("app_spec.txt")).unwrap(),
        std::fs::read_to_string(&w.spec).unwrap()
    );
    // Nothing new: refused.
    run(&w, &idle, &["--extend-plan"])
        .code(2)
        .stderr(predicate::str::contains("has not changed"));
}
