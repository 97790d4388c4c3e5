//! `loopwright run` and `loopwright status` end to end: the real binary against the fake model
//! server, building a three-feature app whose checks really run (Python unittest, sandboxed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::three_scripts::*;
use common::{loopwright, loopwright_std};
use predicates::prelude::*;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use testkit::{FakeServer, LoggedRequest, Reply, Script, Turn, Usage};

/// A build session that implements and verifies feature `n` (0-based).
fn build_turns(n: usize) -> Vec<Turn> {
    vec![
        call(
            "write_file",
            json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({})\n", n + 1)}),
        ),
        call("verify_feature", json!({"id": format!("F{}", n + 1)})),
        call(
            "write_file",
            json!({"path": "progress.md", "content": format!("F{} done\n", n + 1)}),
        ),
        Turn::text(format!("F{} works.", n + 1)),
    ]
}

fn concat(parts: Vec<Vec<Turn>>) -> Vec<Turn> {
    parts.into_iter().flatten().collect()
}

/// A model that reacts to where the conversation is: planning (by the tools offered) or
/// building, and how many messages it holds. It completes a run from any phase. With
/// `stall_once`, its first verification of F2/F3 stalls the stream for a minute.
fn adaptive_model(stall_once: bool, usage: Option<Usage>) -> Script {
    adaptive_model_stalling(if stall_once { Some(60_000) } else { None }, usage)
}

/// How many answers of the model the conversation already holds (either wire: the OpenAI wire
/// adds a system message and one message per tool result).
fn answered(req: &LoggedRequest) -> usize {
    req.messages()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .count()
}

/// [`adaptive_model`] with the first F2/F3 turn stalled for `stall_ms` (then answered).
fn adaptive_model_stalling(stall_ms: Option<u64>, usage: Option<Usage>) -> Script {
    let stalled = Arc::new(AtomicBool::new(stall_ms.is_none()));
    let stall_ms = stall_ms.unwrap_or(0);
    Script::handler(move |req: &LoggedRequest| {
        let planning = req.tool_names().iter().any(|t| t == "add_features");
        let turn = if planning {
            match answered(req) {
                0 => call(
                    "write_file",
                    json!({"path": "tests/test_app.py", "content": TEST_FILE}),
                ),
                1 => call(
                    "add_features",
                    json!({"features": [feature(0), feature(1), feature(2)]}),
                ),
                _ => Turn::text("Planned."),
            }
        } else {
            match answered(req) {
                0 => Turn::Reply(
                    NAMES.iter().enumerate().fold(Reply::default(), |r, (i, name)| {
                        r.with_tool_call(
                            "write_file",
                            json!({"path": format!("{name}.py"), "content": format!("print({})\n", i + 1)}),
                        )
                    }),
                ),
                1 => call("verify_feature", json!({"id": "F1"})),
                2 if !stalled.swap(true, Ordering::SeqCst) => Turn::Fault(testkit::Fault::Stall(testkit::StallFault {
                    after_events: 1,
                    ms: stall_ms,
                    reply: Some(
                        Reply::default()
                            .with_tool_call("verify_feature", json!({"id": "F2"}))
                            .with_tool_call("verify_feature", json!({"id": "F3"})),
                    ),
                })),
                2 => Turn::Reply(
                    Reply::default()
                        .with_tool_call("verify_feature", json!({"id": "F2"}))
                        .with_tool_call("verify_feature", json!({"id": "F3"})),
                ),
                _ => Turn::text("All three work."),
            }
        };
        match (turn, &usage) {
            (Turn::Reply(r), Some(u)) => Turn::Reply(r.with_usage(u.clone())),
            (t, _) => t,
        }
    })
}

fn ledger_total_nanos(state: &Path) -> i64 {
    // Settled costs, plus reservations a crash left without a settle (as the Governor counts).
    let text = std::fs::read_to_string(state.join("ledger.jsonl")).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let settled: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "settle")
        .map(|e| e["call"].as_str().unwrap())
        .collect();
    entries
        .iter()
        .map(|e| match e["kind"].as_str().unwrap() {
            "settle" => e["cost"].as_i64().unwrap(),
            _ if !settled.contains(e["call"].as_str().unwrap()) => e["reserved"].as_i64().unwrap(),
            _ => 0,
        })
        .sum()
}

#[test]
fn a_plan_and_three_build_sessions_reach_all_passing() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(concat(vec![
        planning_turns(),
        build_turns(0),
        build_turns(1),
        build_turns(2),
    ])));
    run(&w, &server, &["--json"])
        .success()
        .stdout(predicate::str::contains(r#""type":"plan.frozen""#))
        .stdout(predicate::str::contains(r#""type":"run.completed""#));
    assert_eq!(
        server.turns_left(),
        2,
        "every scripted turn was used but the last session's notes and last words: it ends as \
         soon as every feature passes"
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.model.as_deref() == Some("claude-sonnet-4-5")));

    let status = status_json(&w);
    assert_eq!(status["phase"], "complete");
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(status["sessions"].as_array().unwrap().len(), 4);
    assert_eq!(status["last_stop"]["reason"], "complete");
    for (i, s) in status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1)
        .enumerate()
    {
        assert_eq!(s["newly_passing"], json!([format!("F{}", i + 1)]));
    }
    // Spend by feature adds up with planning to the ledger total.
    let total: i64 = ledger_total_nanos(&w.state);
    assert!(total > 0);

    let log = git_log(&w.project);
    assert_eq!(
        log,
        vec![
            "loopwright: session 4 — verified F3",
            "loopwright: session 3 — verified F2",
            "loopwright: session 2 — verified F1",
            "loopwright: plan — 3 features, 2 files frozen",
        ]
    );
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(w.project.join("feature_list.json")).unwrap(),
    )
    .unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["passes"] == json!(true)));
    assert_eq!(
        std::fs::read_to_string(w.project.join("app_spec.txt")).unwrap(),
        std::fs::read_to_string(&w.spec).unwrap()
    );

    // A second build session's prompt carried the feature table and the last session's notes.
    let third_session_start = server
        .requests()
        .into_iter()
        .filter(|r| r.messages().len() == 1)
        .nth(2)
        .unwrap();
    let system = third_session_start.body["system"].to_string();
    assert!(system.contains("| F1 | yes |"), "{system}");
    assert!(
        system.contains("F1 done"),
        "progress.md is in the prompt: {system}"
    );

    // Running the finished run again re-verifies it and changes nothing.
    let idle = FakeServer::start_blocking(Script::turns(vec![]));
    run(&w, &idle, &[]).success();
    assert_eq!(idle.request_count(), 0);
}

#[test]
fn rewriting_a_frozen_test_through_bash_does_not_pass_a_feature() {
    let w = world();
    let tamper = "printf 'import unittest\\nclass TestOne(unittest.TestCase):\\n    def test_one(self): pass\\n' > tests/test_app.py";
    let server = FakeServer::start_blocking(Script::turns(concat(vec![
        planning_turns(),
        vec![
            call("bash", json!({"command": tamper})),
            call("verify_feature", json!({"id": "F1"})),
            call(
                "write_file",
                json!({"path": "tests/test_app.py", "content": "# gone\n"}),
            ),
            // A program the agent runs tries to switch the sandbox off for the next run.
            call(
                "bash",
                json!({"command": "python3 -c \"open('loopwright.toml', 'w').write('sandbox = \\\"off\\\"\\n')\""}),
            ),
            Turn::text("F1 is done."),
        ],
    ])));
    run(&w, &server, &["--max-sessions", "2"]).code(5);

    assert_eq!(
        std::fs::read_to_string(w.project.join("tests/test_app.py")).unwrap(),
        TEST_FILE
    );
    let status = status_json(&w);
    assert!(passing(&status).is_empty(), "{status}");
    assert_eq!(status["last_stop"]["reason"], "session_limit");

    let reqs = server.requests();
    let after_bash = reqs[planning_turns().len() + 1].last_tool_result().unwrap();
    assert!(
        after_bash.contains("frozen"),
        "the model is told: {after_bash}"
    );
    let after_verify = reqs[planning_turns().len() + 2].last_tool_result().unwrap();
    assert!(after_verify.contains("F1 failed"), "{after_verify}");
    let after_write = reqs[planning_turns().len() + 3].last_tool_result().unwrap();
    assert!(after_write.contains("frozen"), "{after_write}");
    assert!(events(&w.state)
        .iter()
        .any(|e| e["type"] == "frozen.restored"));
    assert!(
        !w.project.join("loopwright.toml").exists(),
        "a config the agent wrote is removed when the session ends"
    );
    assert!(events(&w.state)
        .iter()
        .any(|e| e["type"] == "frozen.restored" && e["paths"] == json!(["loopwright.toml"])));
}

#[test]
fn a_model_saying_done_flips_nothing_and_a_stall_ends_with_exit_5() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(concat(vec![
        planning_turns(),
        vec![Turn::text("All features are implemented and pass. Done!")],
        vec![Turn::text("Everything works, trust me.")],
    ])));
    run(&w, &server, &["--stall-sessions", "2"])
        .code(5)
        .stderr(predicate::str::contains("no progress"));
    let status = status_json(&w);
    assert!(passing(&status).is_empty());
    assert_eq!(status["last_stop"]["reason"], "stalled");
    assert_eq!(status["last_stop"]["exit_code"], 5);
    assert_eq!(status["sessions"].as_array().unwrap().len(), 3);
    let list: Value = serde_json::from_str(
        &std::fs::read_to_string(w.project.join("feature_list.json")).unwrap(),
    )
    .unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["passes"] == json!(false)));
}

#[test]
fn a_budget_stop_saves_state_and_a_rerun_with_more_budget_finishes() {
    let w = world();
    // Every call reports 10k input tokens: $0.03 at $3/Mtok, so $0.15 runs out in the build.
    let big = Usage::new(10_000, 100);
    let server = FakeServer::start_blocking(adaptive_model(false, Some(big.clone())));
    run(&w, &server, &["--budget", "0.15"])
        .code(3)
        .stderr(predicate::str::contains("budget"));
    let spent = ledger_total_nanos(&w.state);
    assert!(
        spent <= 150_000_000,
        "ledger total {spent} nanos must stay within the budget"
    );
    let status = status_json(&w);
    assert_eq!(status["last_stop"]["reason"], "budget");
    assert_eq!(status["last_stop"]["exit_code"], 3);
    assert_ne!(status["phase"], "complete");
    let sent_before = server.request_count();
    assert!(sent_before >= 3);

    // The same budget again sends nothing more than what fits (it is already spent).
    run(&w, &server, &["--budget", "0.15"]).code(3);

    let server2 = FakeServer::start_blocking(adaptive_model(false, Some(big)));
    run(&w, &server2, &["--budget", "5"]).success();
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(status["phase"], "complete");
    assert!(ledger_total_nanos(&w.state) > spent);
}

#[test]
fn kill_9_mid_session_then_the_same_command_finishes_with_nothing_lost() {
    let w = world();
    let server = FakeServer::start_blocking(adaptive_model(true, None));
    let mut child = run_cmd(&w, &server, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_stalled_call(&server, &mut child);
    // A second run on the same state dir meanwhile is refused, and sends nothing.
    let sent = server.request_count();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains("two runs never build one project"));
    assert_eq!(server.request_count(), sent);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let run_json: Value =
        serde_json::from_str(&std::fs::read_to_string(w.state.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        run_json["status"]["F1"]["passes"],
        json!(true),
        "F1's verdict was saved before the kill"
    );
    assert!(
        run_json["sessions"][1]["end"].is_null(),
        "the killed session has no end yet"
    );
    let ledger = std::fs::read_to_string(w.state.join("ledger.jsonl")).unwrap();
    let last: Value = serde_json::from_str(ledger.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["kind"], "reserve",
        "the stalled call is reserved and never settled"
    );
    let spent_at_kill = ledger_total_nanos(&w.state);
    // What a program of the agent's could have written before the harness died: a config the
    // next run would read (a key it rejects, so reading it would fail the run with exit 2).
    assert!(
        w.state.join("config-guard.json").is_file(),
        "the session's config snapshot: {:?}",
        std::fs::read_dir(&w.state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect::<Vec<_>>()
    );
    std::fs::write(
        w.project.join("loopwright.toml"),
        "sandbox = \"off\"\nmodle = 1\n",
    )
    .unwrap();

    let server2 = FakeServer::start_blocking(adaptive_model(false, None));
    run(&w, &server2, &[])
        .success()
        .stderr(predicate::str::contains(
            "loopwright.toml was changed during a session that was cut off",
        ));
    assert!(
        !w.project.join("loopwright.toml").exists(),
        "put back as it was: absent"
    );
    assert!(!w.state.join("config-guard.json").exists());
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    let ends: Vec<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["end"].as_str().unwrap())
        .collect();
    assert_eq!(ends, vec!["completed", "interrupted", "all_passing"]);
    // The ledger is intact: every line parses and nothing spent before the kill is forgotten.
    assert!(ledger_total_nanos(&w.state) >= spent_at_kill);
    let text = std::fs::read_to_string(w.state.join("ledger.jsonl")).unwrap();
    assert!(text.starts_with(&ledger));
}

/// Waits until the run sent the build session's third request (the stalled one, after F1 was
/// verified).
fn wait_for_stalled_call(server: &FakeServer, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let stalled = server
            .requests()
            .iter()
            .any(|r| answered(r) == 2 && r.tool_names().iter().any(|t| t == "verify_feature"));
        if stalled {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached the stalled call"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended too early"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn ctrl_c_finishes_the_step_saves_state_exits_130_and_the_rerun_finishes() {
    let w = world();
    // The interrupted call stalls: Ctrl-C abandons it (settled by the torn-attempt rule).
    let server = FakeServer::start_blocking(adaptive_model_stalling(Some(4_000), None));
    let mut child = run_cmd(&w, &server, &[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_stalled_call(&server, &mut child);
    let sent = server.request_count();
    // SIGINT, as Ctrl-C sends it.
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        server.request_count(),
        sent,
        "no model call after the interrupt"
    );

    let status = status_json(&w);
    assert_eq!(status["last_stop"]["reason"], "interrupted");
    // F1's verdict was saved; the tool calls of the answer that arrived after the interrupt were
    // not run.
    assert_eq!(passing(&status), vec!["F1"]);
    assert_eq!(status["sessions"][1]["end"], "cancelled");
    assert!(
        git_log(&w.project)[0].starts_with("loopwright: session 2"),
        "the work was committed"
    );

    let server2 = FakeServer::start_blocking(adaptive_model(false, None));
    run(&w, &server2, &[]).success();
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
}

#[test]
fn replay_of_a_recording_rebuilds_the_app_offline_and_divergence_is_reported() {
    let w = world();
    let cassette = w.home.join("run.cassette.jsonl");
    let server = FakeServer::start_blocking(Script::turns(concat(vec![
        planning_turns(),
        build_turns(0),
        build_turns(1),
        build_turns(2),
    ])));
    run(&w, &server, &["--record", cassette.to_str().unwrap()]).success();
    assert_eq!(
        std::fs::read_to_string(&cassette).unwrap().lines().count(),
        server.request_count()
    );

    let w2 = world();
    loopwright(&w2.home)
        .arg("run")
        .arg("--project-dir")
        .arg(&w2.project)
        .arg("--state-dir")
        .arg(&w2.state)
        .arg("--spec")
        .arg(&w2.spec)
        .arg("--model")
        .arg(format!("replay/{}", cassette.display()))
        .assert()
        .success();
    assert_eq!(passing(&status_json(&w2)), vec!["F1", "F2", "F3"]);
    assert_eq!(
        std::fs::read_to_string(w2.project.join("two.py")).unwrap(),
        "print(2)\n"
    );

    // A run that goes another way than the recording (a one-turn session limit) is told so.
    let w3 = world();
    loopwright(&w3.home)
        .arg("run")
        .arg("--project-dir")
        .arg(&w3.project)
        .arg("--state-dir")
        .arg(&w3.state)
        .arg("--spec")
        .arg(&w3.spec)
        .args(["--max-turns", "1"])
        .arg("--model")
        .arg(format!("replay/{}", cassette.display()))
        .assert()
        .failure()
        .stderr(predicate::str::contains("replay diverged"));
}

#[test]
fn bad_input_is_refused_with_exit_2_and_nothing_is_lost() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(vec![]));
    // A missing spec.
    let mut cmd = run_cmd(&w, &server, &[]);
    cmd.args(["--spec", "/nonexistent/spec.txt"]);
    assert_cmd::Command::from_std(cmd)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("spec"));
    // An empty spec.
    std::fs::write(&w.spec, "  \n").unwrap();
    run(&w, &server, &[])
        .code(2)
        .stderr(predicate::str::contains("empty"));
    // A prompt template with an unknown placeholder.
    std::fs::write(&w.spec, "Build it.\n").unwrap();
    let prompts = w.home.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(prompts.join("building.md"), "{{nonsense}}").unwrap();
    run(&w, &server, &["--prompts", prompts.to_str().unwrap()])
        .code(2)
        .stderr(predicate::str::contains("nonsense"));
    // A bad model string, a missing key.
    let mut cmd = run_cmd(&w, &server, &[]);
    cmd.args(["--model", "claude"]);
    assert_cmd::Command::from_std(cmd).assert().code(2);
    let mut cmd = run_cmd(&w, &server, &[]);
    cmd.env_remove("ANTHROPIC_API_KEY");
    assert_cmd::Command::from_std(cmd)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ANTHROPIC_API_KEY"));
    assert_eq!(server.request_count(), 0);
    // status without a run.
    loopwright(&w.home)
        .args(["status", "--project-dir"])
        .arg(&w.home)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no run"));
}

#[test]
fn a_served_model_swap_stops_the_run_with_exit_4() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::Reply(
        Reply::text("hi").with_model("claude-opus-4-1"),
    )]));
    run(&w, &server, &[])
        .code(4)
        .stderr(predicate::str::contains("pin"));
    let status = status_json(&w);
    assert_eq!(status["last_stop"]["reason"], "pin_violation");
    assert_eq!(status["last_stop"]["exit_code"], 4);
    let ledger = std::fs::read_to_string(w.state.join("ledger.jsonl")).unwrap();
    assert!(ledger.contains("claude-opus-4-1"));
}

/// `loopwright run` with another model and the endpoints of `server` for every provider.
fn run_with_model(
    w: &World,
    server: &FakeServer,
    model: &str,
    extra: &[&str],
) -> assert_cmd::assert::Assert {
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .arg("--spec")
        .arg(&w.spec)
        .args(["--model", model])
        .args(extra)
        .env("OPENROUTER_BASE_URL", server.openrouter_base_url())
        .env("OPENROUTER_API_KEY", "sk-or-test")
        .env("OLLAMA_HOST", server.base_url());
    assert_cmd::Command::from_std(cmd).assert()
}

#[test]
fn a_run_on_ollama_survives_its_stream_quirks() {
    // Parallel tool calls all at index 0, finish_reason "stop" with tools, no usage at all.
    let w = world();
    let quirks = testkit::Quirks {
        ollama_index_zero: true,
        finish_reason_stop_with_tools: true,
        omit_usage: true,
        ..testkit::Quirks::none()
    };
    let server = FakeServer::start_blocking(adaptive_model(false, None).with_quirks(quirks));
    run_with_model(&w, &server, "ollama/qwen2.5-coder:7b", &["--free-only"]).success();
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    for name in NAMES {
        assert!(
            w.project.join(format!("{name}.py")).is_file(),
            "{name}.py from one parallel turn"
        );
    }
    assert!(server
        .requests()
        .iter()
        .all(|r| r.path.ends_with("/v1/chat/completions")
            && r.model.as_deref() == Some("qwen2.5-coder:7b")));
    assert_eq!(status["spent"], 0);
}

#[test]
fn a_run_on_an_openrouter_free_model_is_pinned_and_free() {
    let w = world();
    let quirks = testkit::Quirks {
        keep_alive_comments: true,
        ..testkit::Quirks::none()
    };
    let server = FakeServer::start_blocking(adaptive_model(false, None).with_quirks(quirks));
    run_with_model(
        &w,
        &server,
        "openrouter/mistralai/mistral-7b-instruct:free",
        &["--free-only"],
    )
    .success();
    assert_eq!(passing(&status_json(&w)), vec!["F1", "F2", "F3"]);
    let requests = server.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert_eq!(r.path, "/api/v1/chat/completions");
        assert_eq!(
            r.model.as_deref(),
            Some("mistralai/mistral-7b-instruct:free")
        );
        assert_eq!(
            r.body["provider"]["allow_fallbacks"],
            json!(false),
            "pinned: {}",
            r.body
        );
        assert!(r.body.get("models").is_none(), "never a fallback list");
    }
}

#[test]
fn free_only_with_a_priced_model_sends_nothing() {
    let w = world();
    let server = FakeServer::start_blocking(adaptive_model(false, None));
    run_with_model(
        &w,
        &server,
        "openrouter/anthropic/claude-3.5-sonnet",
        &["--free-only"],
    )
    .code(3)
    .stderr(predicate::str::contains("free-only"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn switching_the_sandbox_off_is_warned_about() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::Reply(
        Reply::text("hi").with_model("claude-opus-4-1"),
    )]));
    let out = assert_cmd::Command::from_std(run_cmd(&w, &server, &["--sandbox", "off", "--json"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let events: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "warning"
                && e["message"].as_str().unwrap().contains("sandbox is off")),
        "{events:?}"
    );
    assert_eq!(events.last().unwrap()["type"], "error");
}

#[test]
fn breaking_and_repairing_the_same_feature_is_not_progress() {
    let w = world();
    let server = FakeServer::start_blocking(Script::turns(concat(vec![
        planning_turns(),
        build_turns(0),
        // Session 3 breaks F1 (the harness flips it back at the session's end)...
        vec![
            call(
                "write_file",
                json!({"path": "one.py", "content": "print(0)\n"}),
            ),
            Turn::text("Refactored one.py."),
        ],
        // ...session 4 repairs it: F1 passes again, but no more features pass than before.
        build_turns(0),
    ])));
    run(&w, &server, &["--stall-sessions", "2"])
        .code(5)
        .stderr(predicate::str::contains("no progress"));
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1"]);
    let sessions = status["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 4);
    assert_eq!(sessions[2]["regressions"], json!(["F1"]));
    assert_eq!(sessions[3]["newly_passing"], json!(["F1"]));
    assert_eq!(status["last_stop"]["reason"], "stalled");
}

#[test]
fn prompt_templates_can_be_replaced_with_prompts_dir() {
    let w = world();
    let prompts = w.home.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(
        prompts.join("planning.md"),
        "CUSTOM PLANNER. Spec:\n{{spec}}\n{{previous}}",
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(concat(vec![
        planning_turns(),
        build_turns(0),
        build_turns(1),
        build_turns(2),
    ])));
    run(&w, &server, &["--prompts", prompts.to_str().unwrap()]).success();
    let requests = server.requests();
    let planning_system = requests[0].body["system"].to_string();
    assert!(
        planning_system.contains("CUSTOM PLANNER"),
        "{planning_system}"
    );
    assert!(
        planning_system.contains("one.py prints 1"),
        "the spec is filled in"
    );
    // building.md was not replaced: the built-in one is used.
    let building_system = requests[planning_turns().len()].body["system"].to_string();
    assert!(
        building_system.contains("verify_feature"),
        "{building_system}"
    );
    assert!(!building_system.contains("CUSTOM PLANNER"));
}
