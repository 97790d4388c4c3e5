//! `loopwright run` end to end, the parts `run.rs` does not cover: `add_features` validation
//! going back to the model, planning sessions that record nothing or are cut off, resuming a
//! stopped planning, regressions, spend by feature, and a spec changed after planning.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::three_scripts::*;
use predicates::prelude::*;
use serde_json::{json, Value};
use testkit::{FakeServer, LoggedRequest, Reply, Script, Turn, Usage};

fn session_kinds(status: &Value) -> Vec<String> {
    status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect()
}

fn write_script(n: usize, value: &str) -> Turn {
    call(
        "write_file",
        json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({value})\n")}),
    )
}

fn verify(n: usize) -> Turn {
    call("verify_feature", json!({"id": format!("F{}", n + 1)}))
}

/// A build model that writes all three scripts, verifies all three and stops.
fn build_everything(req: &LoggedRequest) -> Turn {
    match req.messages().len() {
        1 => Turn::Reply(
            NAMES
                .iter()
                .enumerate()
                .fold(Reply::default(), |r, (i, name)| {
                    r.with_tool_call(
                        "write_file",
                        json!({"path": format!("{name}.py"), "content": format!("print({})\n", i + 1)}),
                    )
                }),
        ),
        3 => Turn::Reply(
            (1..=3).fold(Reply::default(), |r, i| {
                r.with_tool_call("verify_feature", json!({"id": format!("F{i}")}))
            }),
        ),
        _ => Turn::text("All three work."),
    }
}

fn is_planning(req: &LoggedRequest) -> bool {
    req.tool_names().iter().any(|t| t == "add_features")
}

fn system(req: &LoggedRequest) -> String {
    req.body["system"].to_string()
}

/// The first request of each session (a session's conversation starts with one message).
fn session_starts(server: &FakeServer) -> Vec<LoggedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.messages().len() == 1)
        .collect()
}

fn run_json(w: &World) -> Value {
    serde_json::from_str(&std::fs::read_to_string(w.state.join("run.json")).unwrap()).unwrap()
}

/// `$0.018000` → nanodollars.
/// Money in `status --json` and events: integer nano-dollars (docs/events.md).
fn nanos(usd: &Value) -> i64 {
    usd.as_i64()
        .unwrap_or_else(|| panic!("not nano-dollars: {usd}"))
}

#[test]
fn add_features_errors_go_back_to_the_model_and_a_corrected_batch_is_accepted() {
    let w = world();
    let mut missing_test = feature(0);
    missing_test["test_files"] = json!(["tests/missing.py"]);
    let mut network = feature(0);
    network["check"] = json!("ssh x true");
    // A check nested 2000 deep is refused by the policy's limits, not a crash of the harness.
    let mut deep = feature(1);
    deep["check"] = json!(format!("{}true{}", "{ ".repeat(2000), "; }".repeat(2000)));
    let mut empty = feature(0);
    empty["check"] = json!("  ");
    let server = FakeServer::start_blocking(Script::turns(vec![
        write_tests(),
        call(
            "add_features",
            json!({"features": [feature(0), feature(0)]}),
        ),
        call("add_features", json!({"features": [missing_test]})),
        call("add_features", json!({"features": [network, deep]})),
        call("add_features", json!({"features": [empty]})),
        call(
            "add_features",
            json!({"features": [feature(0), feature(1)]}),
        ),
        // F1 is recorded now: adding it again is refused, the new one is not recorded either.
        call(
            "add_features",
            json!({"features": [feature(0), feature(2)]}),
        ),
        call("add_features", json!({"features": [feature(2)]})),
        Turn::text("Planned."),
    ]));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    assert_eq!(server.turns_left(), 0);

    let reqs = server.requests();
    let result = |i: usize| reqs[i].last_tool_result().unwrap();
    let expect = [
        (2, "\"F1\" is used twice"),
        (3, "tests/missing.py\" does not exist"),
        (4, "ssh x true` is not allowed"),
        (4, "nests too deeply"),
        (5, "empty `check`"),
    ];
    for (i, needle) in expect {
        let r = result(i);
        assert!(r.contains("No feature of this batch was recorded"), "{r}");
        assert!(r.contains(needle), "request {i}: {needle:?} in {r}");
    }
    assert!(
        result(6).contains("Recorded 2 feature(s): F1, F2"),
        "{}",
        result(6)
    );
    assert!(result(7).contains("\"F1\" is used twice"), "{}", result(7));
    assert!(result(8).contains("3 feature(s) in all"), "{}", result(8));
    // All in one session: the errors did not end it.
    assert_eq!(session_starts(&server).len(), 1);

    let status = status_json(&w);
    assert_eq!(status["phase"], "building");
    assert_eq!(ids_where(&status, |_| true), vec!["F1", "F2", "F3"]);
    assert_eq!(
        git_log(&w.project),
        vec!["loopwright: plan — 3 features, 2 files frozen"]
    );
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(w.project.join("feature_list.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let canonical: Value =
        serde_json::from_str(&std::fs::read_to_string(w.state.join("features.json")).unwrap())
            .unwrap();
    assert_eq!(canonical, run_json(&w)["features"]);
}

#[test]
fn a_planning_session_that_records_nothing_is_followed_by_another_and_the_stall_rule_applies() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::text("I would rather chat."),
        Turn::text("Still nothing to record."),
    ]));
    run(&w, &server, &["--stall-sessions", "2"])
        .code(5)
        .stderr(predicate::str::contains("no progress"));
    assert_eq!(server.turns_left(), 0);
    let starts = session_starts(&server);
    assert_eq!(starts.len(), 2);
    assert!(starts.iter().all(is_planning));
    assert!(
        system(&starts[1]).contains("recorded no features"),
        "the second planning session is told: {}",
        system(&starts[1])
    );
    let status = status_json(&w);
    assert_eq!(status["phase"], "planning");
    assert_eq!(session_kinds(&status), vec!["planning", "planning"]);
    assert_eq!(status["last_stop"]["reason"], "stalled");
    assert_eq!(status["last_stop"]["exit_code"], 5);
    let detail = status["last_stop"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("planning") && detail.contains("2 sessions"),
        "the stop says what stalled: {detail}"
    );
    assert!(!w.state.join("features.json").exists());
}

#[test]
fn kill_9_during_planning_keeps_the_batch_and_the_next_planning_prompt_lists_it() {
    let w = world();
    let server = FakeServer::start_blocking(Script::handler(|req: &LoggedRequest| {
        match req.messages().len() {
            1 => write_tests(),
            3 => call("add_features", json!({"features": [feature(0)]})),
            _ => Turn::stall(1, 60_000),
        }
    }));
    let mut child = run_cmd(&w, &server, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !server.requests().iter().any(|r| r.messages().len() == 5) {
        assert!(std::time::Instant::now() < deadline, "never reached turn 3");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let saved = run_json(&w);
    assert_eq!(saved["phase"], "planning");
    assert_eq!(saved["features"][0]["id"], "F1", "{saved}");

    let server2 = FakeServer::start_blocking(Script::handler(|req: &LoggedRequest| {
        if !is_planning(req) {
            return build_everything(req);
        }
        match req.messages().len() {
            1 => call(
                "add_features",
                json!({"features": [feature(1), feature(2)]}),
            ),
            _ => Turn::text("Added the rest."),
        }
    }));
    run(&w, &server2, &[]).success();
    let first = &server2.requests()[0];
    assert!(is_planning(first));
    let prompt = system(first);
    assert!(
        prompt.contains("already recorded") && prompt.contains("| F1 |"),
        "{prompt}"
    );
    assert!(
        prompt.contains("stopped before it finished (interrupted)"),
        "the model is told planning was cut off: {prompt}"
    );
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(
        session_kinds(&status),
        vec!["planning", "planning", "building"]
    );
    assert_eq!(status["sessions"][0]["end"], "interrupted");
}

#[test]
fn a_regression_flips_the_feature_back_at_the_session_end_and_is_recorded() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(
        [
            planning_turns(),
            vec![write_script(0, "1"), verify(0), Turn::text("F1 works.")],
            // Session 3 breaks F1 while doing F2.
            vec![
                write_script(0, "0"),
                write_script(1, "2"),
                verify(1),
                Turn::text("F2 works."),
            ],
            // Session 4 is told, repairs F1 and does F3.
            vec![
                write_script(0, "1"),
                verify(0),
                write_script(2, "3"),
                verify(2),
                Turn::text("All done."),
            ],
        ]
        .concat(),
    ));
    run(&w, &server, &["--max-sessions", "3"]).code(5);
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F2"]);
    let f1 = &status["features"][0];
    assert_eq!(f1["passes"], false);
    assert_eq!(f1["regressions"], 1);
    assert_eq!(f1["verified_in"], 2);
    assert_eq!(status["sessions"][2]["regressions"], json!(["F1"]));
    assert_eq!(status["sessions"][2]["newly_passing"], json!(["F2"]));
    assert!(events(&w.state)
        .iter()
        .any(|e| e["type"] == "feature.regressed" && e["id"] == "F1"));
    assert_eq!(
        git_log(&w.project)[0],
        "loopwright: session 3 — verified F2"
    );
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(w.project.join("feature_list.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(list[0]["passes"], false);

    run(&w, &server, &[]).success();
    let prompt = system(&session_starts(&server)[3]);
    assert!(
        prompt.contains("Regressed") && prompt.contains("F1"),
        "{prompt}"
    );
    assert!(prompt.contains("| F1 | no |"), "{prompt}");
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
}

#[test]
fn status_attributes_spend_to_the_features_first_verified_and_planning_apart() {
    let w = world();
    let usage = Usage::new(1_000, 100);
    let priced = |t: Turn| match t {
        Turn::Reply(r) => Turn::Reply(r.with_usage(usage.clone())),
        t => t,
    };
    let turns: Vec<Turn> = [
        planning_turns(),
        vec![write_script(0, "1"), verify(0), Turn::text("F1 works.")],
        vec![Turn::text("Thinking about F2.")],
        vec![
            write_script(1, "2"),
            write_script(2, "3"),
            verify(1),
            verify(2),
            Turn::text("F2 and F3 work."),
        ],
    ]
    .concat()
    .into_iter()
    .map(priced)
    .collect();
    let server = FakeServer::start_blocking(Script::turns(turns));
    run(&w, &server, &["--budget", "5"]).success();
    let status = status_json(&w);
    let sessions = status["sessions"].as_array().unwrap();
    let cost = |i: usize| nanos(&sessions[i]["cost"]);
    let feature_cost = |i: usize| nanos(&status["features"][i]["cost"]);
    assert!(cost(0) > 0 && cost(1) > 0 && cost(2) > 0 && cost(3) > 0);
    assert_eq!(nanos(&status["planning_cost"]), cost(0));
    assert_eq!(feature_cost(0), cost(1));
    // Session 3 made nothing pass: its cost goes with session 4's to F2 and F3, split evenly.
    assert_eq!(feature_cost(1) + feature_cost(2), cost(2) + cost(3));
    assert!((feature_cost(1) - feature_cost(2)).abs() <= 1);
    assert_eq!(nanos(&status["unattributed_cost"]), 0);
    let total: i64 = (0..4).map(cost).sum();
    assert_eq!(nanos(&status["spent"]), total);
    assert_eq!(
        nanos(&status["planning_cost"]) + (0..3).map(feature_cost).sum::<i64>(),
        total
    );
}

#[test]
fn a_spec_changed_after_planning_is_refused_with_exit_2_and_nothing_is_lost() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    let before = std::fs::read(w.state.join("run.json")).unwrap();
    std::fs::write(&w.spec, "Something else entirely.\n").unwrap();
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    run(&w, &idle, &[])
        .code(2)
        .stderr(predicate::str::contains("spec changed"))
        .stderr(predicate::str::contains("--fresh"));
    assert_eq!(idle.request_count(), 0);
    assert_eq!(std::fs::read(w.state.join("run.json")).unwrap(), before);
    assert_ne!(
        std::fs::read_to_string(w.project.join("app_spec.txt")).unwrap(),
        "Something else entirely.\n",
        "the frozen spec in the project is untouched"
    );
}

#[test]
fn a_plan_that_fails_validation_at_freeze_goes_back_to_planning() {
    let w = world();
    let mut two = feature(1);
    two["test_files"] = json!(["tests/test_app.py", "tests/data.txt"]);
    let server = FakeServer::start_blocking(Script::turns(vec![
        write_tests(),
        call(
            "write_file",
            json!({"path": "tests/data.txt", "content": "2\n"}),
        ),
        call(
            "add_features",
            json!({"features": [feature(0), two.clone()]}),
        ),
        // The session deletes a test file it listed: the plan cannot be frozen as it is.
        call("bash", json!({"command": "rm tests/data.txt"})),
        Turn::text("Planned."),
        // The next planning session is told why, and redoes F2.
        call(
            "write_file",
            json!({"path": "tests/data.txt", "content": "2\n"}),
        ),
        call("add_features", json!({"features": [two]})),
        Turn::text("Re-added F2."),
    ]));
    run(&w, &server, &["--max-sessions", "2"]).code(5);
    let status = status_json(&w);
    assert_eq!(session_kinds(&status), vec!["planning", "planning"]);
    assert_eq!(ids_where(&status, |_| true), vec!["F1", "F2"]);
    assert_eq!(status["phase"], "building");
    let prompt = system(&session_starts(&server)[1]);
    assert!(
        prompt.contains("tests/data.txt") && prompt.contains("does not exist"),
        "{prompt}"
    );
}

#[test]
fn a_planning_session_stopped_by_an_error_is_resumed_by_planning_not_frozen_half_done() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(vec![
        write_tests(),
        call("add_features", json!({"features": [feature(0)]})),
        // The provider swaps the model before planning is finished: exit 4.
        Turn::Reply(Reply::text("more to come").with_model("claude-opus-4-1")),
    ]));
    run(&w, &server, &[]).code(4);
    assert_eq!(run_json(&w)["phase"], "planning");

    let server2 = FakeServer::start_blocking(Script::handler(|req: &LoggedRequest| {
        if !is_planning(req) {
            return build_everything(req);
        }
        match req.messages().len() {
            1 => call(
                "add_features",
                json!({"features": [feature(1), feature(2)]}),
            ),
            _ => Turn::text("Added the rest."),
        }
    }));
    run(&w, &server2, &[]).success();
    let status = status_json(&w);
    assert_eq!(ids_where(&status, |_| true), vec!["F1", "F2", "F3"]);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(
        session_kinds(&status),
        vec!["planning", "planning", "building"]
    );
}

#[test]
fn a_feature_broken_in_a_session_that_stopped_with_an_error_is_rechecked_on_resume() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(
        [
            planning_turns(),
            vec![
                write_script(0, "1"),
                write_script(1, "2"),
                write_script(2, "3"),
                verify(0),
                verify(1),
                // Breaks F1 after it passed (before every feature passes, which would end the
                // session); then the session stops on a pin violation, before its
                // end-of-session re-check.
                write_script(0, "0"),
                Turn::Reply(Reply::text("oops").with_model("claude-opus-4-1")),
            ],
        ]
        .concat(),
    ));
    run(&w, &server, &[]).code(4);

    let server2 = FakeServer::start_blocking(Script::turns(vec![
        write_script(0, "1"),
        verify(0),
        verify(2),
    ]));
    run(&w, &server2, &[]).success();
    assert_eq!(
        server2.turns_left(),
        0,
        "the resumed run did not take the broken F1 for passing"
    );
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(status["features"][0]["regressions"], 1);
    assert!(events(&w.state)
        .iter()
        .any(|e| e["type"] == "feature.regressed" && e["id"] == "F1"));
}

#[test]
fn kill_9_mid_build_session_credits_its_verified_features_and_commits_its_work() {
    let w = world();
    let usage = Usage::new(1_000, 100);
    let priced = move |t: Turn| match t {
        Turn::Reply(r) => Turn::Reply(r.with_usage(usage.clone())),
        t => t,
    };
    let server = FakeServer::start_blocking(Script::handler(move |req: &LoggedRequest| {
        let turn = if is_planning(req) {
            match req.messages().len() {
                1 => write_tests(),
                3 => call(
                    "add_features",
                    json!({"features": [feature(0), feature(1), feature(2)]}),
                ),
                _ => Turn::text("Planned."),
            }
        } else {
            match req.messages().len() {
                1 => write_script(0, "1"),
                3 => verify(0),
                _ => Turn::stall(1, 60_000),
            }
        };
        priced(turn)
    }));
    let mut child = run_cmd(&w, &server, &["--budget", "5"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !server
        .requests()
        .iter()
        .any(|r| !is_planning(r) && r.messages().len() == 5)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never reached the stall"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let server2 =
        FakeServer::start_blocking(Script::handler(|req: &LoggedRequest| build_everything(req)));
    run(&w, &server2, &["--budget", "5"]).success();
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    let killed = &status["sessions"][1];
    assert_eq!(killed["end"], "interrupted");
    assert_eq!(killed["newly_passing"], json!(["F1"]));
    assert!(nanos(&killed["cost"]) > 0);
    assert_eq!(
        nanos(&status["features"][0]["cost"]),
        nanos(&killed["cost"]),
        "F1 carries the cost of the session that verified it: {status}"
    );
    assert_eq!(status["sessions"][2]["newly_passing"], json!(["F2", "F3"]));
    let log = git_log(&w.project);
    assert_eq!(
        log[..2],
        [
            "loopwright: session 3 — verified F2, F3",
            "loopwright: session 2 (cut off) — verified F1",
        ],
        "{log:?}"
    );
}

#[test]
fn a_frozen_feature_list_that_differs_from_the_run_state_is_refused_and_status_says_why() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(planning_turns()));
    run(&w, &server, &["--max-sessions", "1"]).code(5);
    let path = w.state.join("features.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("one.py prints 1", "one.py prints 7")).unwrap();
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    run(&w, &idle, &[])
        .code(2)
        .stderr(predicate::str::contains("features.json"));
    assert_eq!(idle.request_count(), 0);
    let status = status_json(&w);
    assert_eq!(status["last_stop"]["reason"], "bad_input");
    assert_eq!(status["last_stop"]["exit_code"], 2);
    assert!(status["last_stop"]["detail"]
        .as_str()
        .unwrap()
        .contains("frozen feature list differs"));
}
