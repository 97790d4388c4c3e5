//! A resumed run cross-checks `run.json`, the spend ledger and the project's git history: an
//! emptied, truncated or replaced ledger, a deleted `run.json` or state dir on a project with
//! the harness's commits, sessions with no ledger line, a history without the recorded commit —
//! each stops with exit 2, a message saying what is wrong and how to repair it, and nothing
//! sent to the model. Repaired (or started over knowingly), the run goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright;
use common::three_scripts::*;
use predicates::prelude::*;
use serde_json::{json, Value};
use testkit::{FakeServer, Script, Turn};

/// Build sessions that implement and verify the three features, one per session.
fn build_all() -> Vec<Turn> {
    (0..3)
        .flat_map(|n| {
            vec![
                call(
                    "write_file",
                    json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({})\n", n + 1)}),
                ),
                call("verify_feature", json!({"id": format!("F{}", n + 1)})),
                Turn::text("Done."),
            ]
        })
        .collect()
}

/// A run that planned (one session, then stopped at the session limit: exit 5).
fn planned() -> World {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    assert!(
        git_log(&w.project)[0].starts_with("loopwright: plan"),
        "{:?}",
        git_log(&w.project)
    );
    w
}

/// A server that must not be asked anything.
fn idle() -> FakeServer {
    FakeServer::start_blocking(Script::turns(vec![]))
}

fn run_json(w: &World) -> Value {
    serde_json::from_str(&std::fs::read_to_string(w.state.join("run.json")).unwrap()).unwrap()
}

#[test]
fn an_emptied_ledger_stops_the_resume_until_it_is_restored() {
    let w = planned();
    let recorded = run_json(&w)["ledger"].clone();
    assert!(recorded["total"].as_i64().unwrap() > 0, "{recorded}");
    let path = w.state.join("ledger.jsonl");
    let backup = std::fs::read(&path).unwrap();
    std::fs::write(&path, "").unwrap();
    let server = idle();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains(
            "ledger.jsonl does not hold what run.json recorded",
        ))
        .stderr(predicate::str::contains("truncated, emptied or replaced"))
        .stderr(predicate::str::contains(
            "restore ledger.jsonl from a backup",
        ))
        .stderr(predicate::str::contains("loopwright reset"));
    assert_eq!(server.request_count(), 0, "nothing sent");
    let status = status_json(&w);
    assert_eq!(status["last_stop"]["reason"], "bad_input");
    assert_eq!(run_json(&w)["ledger"], recorded, "the mark is kept");
    // Deleted rather than emptied: the same, and re-running does not launder it.
    std::fs::remove_file(&path).unwrap();
    run(&w, &server, &[]).code(2);
    run(&w, &server, &[]).code(2);
    assert_eq!(server.request_count(), 0);
    // Restored from the backup, the run finishes.
    std::fs::write(&path, &backup).unwrap();
    let server = FakeServer::start_blocking(Script::turns(build_all()));
    run(&w, &server, &[]).success();
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
}

#[test]
fn a_truncated_ledger_is_caught_by_its_line_count() {
    let w = planned();
    let path = w.state.join("ledger.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    // The last settle line removed: its reservation counts again (the total does not drop),
    // but a line is missing.
    let kept: Vec<&str> = text.lines().collect();
    let kept = &kept[..kept.len() - 1];
    std::fs::write(&path, format!("{}\n", kept.join("\n"))).unwrap();
    let server = idle();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains("lines were removed"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn sessions_with_no_ledger_line_are_caught_without_a_mark() {
    let w = planned();
    // A run state written before the mark existed, and the ledger emptied.
    let mut state = run_json(&w);
    state.as_object_mut().unwrap().remove("ledger");
    std::fs::write(w.state.join("run.json"), state.to_string()).unwrap();
    std::fs::write(w.state.join("ledger.jsonl"), "").unwrap();
    let server = idle();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains(
            "but the ledger has no line of session-001",
        ));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_deleted_run_json_does_not_plan_again_until_reset() {
    let w = planned();
    let log = git_log(&w.project);
    std::fs::remove_file(w.state.join("run.json")).unwrap();
    let server = idle();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains(
            "has no run.json, but a run happened here",
        ))
        .stderr(predicate::str::contains("the plan frozen in features.json"))
        .stderr(predicate::str::contains("spend of 1 run session(s)"))
        .stderr(predicate::str::contains("the harness's commits"))
        .stderr(predicate::str::contains("loopwright reset"));
    assert_eq!(server.request_count(), 0, "nothing planned, nothing spent");
    assert_eq!(git_log(&w.project), log, "no commit duplicated");
    assert!(
        !w.state.join("run.json").exists(),
        "no run state made up that would hide the loss"
    );
    // `reset` archives what is left (the ledger, the plan) and the next run starts over.
    loopwright(&w.home)
        .args(["reset", "--yes", "-C"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .assert()
        .success()
        .stderr(predicate::str::contains("archived"));
    let server =
        FakeServer::start_blocking(Script::turns([planning_turns(), build_all()].concat()));
    run(&w, &server, &[]).success();
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
    // Once the new run saved its state, losing it is caught again.
    assert!(!w.state.join("start-over.json").exists());
    std::fs::remove_file(w.state.join("run.json")).unwrap();
    let server = idle();
    run(&w, &server, &[]).code(2);
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_deleted_state_dir_is_caught_by_the_projects_history_and_fresh_starts_over() {
    let w = planned();
    std::fs::remove_dir_all(&w.state).unwrap();
    let server = idle();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains(
            "the harness's commits in the project's history (the last:",
        ))
        .stderr(predicate::str::contains("loopwright run --fresh"));
    assert_eq!(server.request_count(), 0);
    // Starting over knowingly works (the ledger of the refused attempt is empty).
    let server =
        FakeServer::start_blocking(Script::turns([planning_turns(), build_all()].concat()));
    run(&w, &server, &["--fresh", "--yes"]).success();
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
}

#[test]
fn a_history_without_the_recorded_commit_is_refused() {
    let w = planned();
    let recorded = run_json(&w)["last_commit"].as_str().unwrap().to_string();
    // The project's .git replaced by another repository, and the mirror lost with it.
    std::fs::remove_dir_all(w.project.join(".git")).unwrap();
    std::fs::remove_dir_all(w.state.join("history.git")).unwrap();
    std::fs::remove_file(w.state.join("history.json")).unwrap();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .arg("-C")
            .arg(&w.project)
            .args([
                "-c",
                "user.name=someone",
                "-c",
                "user.email=someone@example.com",
            ])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "another history"]);
    let server = idle();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains(format!(
            "does not contain the harness's last commit {}",
            &recorded[..12]
        )))
        .stderr(predicate::str::contains("restore the project"));
    assert_eq!(server.request_count(), 0);
}
