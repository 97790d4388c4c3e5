//! `loopwright exec` end to end: the real binary against the fake model server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use testkit::{FakeServer, Reply, Script, Turn};

const MODEL: &str = "anthropic/claude-sonnet-4-5";

/// A project, a state dir and a home, all temporary.
struct Env {
    _dir: tempfile::TempDir,
    project: PathBuf,
    state: PathBuf,
    home: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let state = dir.path().join("state");
    let home = dir.path().join("home");
    for d in [&project, &state, &home] {
        std::fs::create_dir_all(d).unwrap();
    }
    Env {
        _dir: dir,
        project,
        state,
        home,
    }
}

/// `loopwright exec` with no real configuration or key in reach.
fn exec(e: &Env, server: Option<&FakeServer>) -> Command {
    Command::from_std(exec_std(e, server))
}

fn exec_std(e: &Env, server: Option<&FakeServer>) -> std::process::Command {
    let mut cmd = common::loopwright_std(&e.home);
    cmd.arg("exec")
        .arg("--project-dir")
        .arg(&e.project)
        .arg("--state-dir")
        .arg(&e.state);
    if let Some(server) = server {
        cmd.env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
            .env("ANTHROPIC_API_KEY", "test-key-not-real");
    }
    cmd
}

fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// Money in events: integer nano-dollars (docs/events.md).
fn usd(v: &Value) -> llm::Usd {
    llm::Usd::from_nanos(
        v.as_i64()
            .unwrap_or_else(|| panic!("not nano-dollars: {v}")),
    )
}

fn ledger(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("ledger.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_scripted_session_writes_runs_and_reads_a_file() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::Reply(Reply::text("I'll write the script.").with_tool_call(
            "write_file",
            json!({"path": "hello.py", "content": "print('hello from loopwright')\n"}),
        )),
        Turn::tool_call("bash", json!({"command": "python3 hello.py"})),
        Turn::tool_call("read_file", json!({"path": "hello.py"})),
        Turn::text("hello.py prints a greeting; I ran it and read it back."),
    ]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--budget", "1.00", "--json"])
        .arg("write hello.py that prints a greeting, run it")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(e.project.join("hello.py")).unwrap(),
        "print('hello from loopwright')\n"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 4);
    assert!(requests[2]
        .last_tool_result()
        .unwrap()
        .contains("hello from loopwright"));

    let events = events(&out.stdout);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    let of_interest: Vec<&str> = types
        .iter()
        .copied()
        // Warnings depend on the machine (running as root, say); text is the model's.
        .filter(|t| *t != "assistant.text" && *t != "warning")
        .collect();
    assert_eq!(
        of_interest,
        [
            "session.started",
            "turn.completed",
            "tool.started",
            "tool.completed",
            "turn.completed",
            "tool.started",
            "tool.completed",
            "turn.completed",
            "tool.started",
            "tool.completed",
            "turn.completed",
            "session.completed"
        ]
    );
    let tools: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "tool.completed")
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["write_file", "bash", "read_file"]);
    let bash = events
        .iter()
        .find(|e| e["type"] == "tool.completed" && e["name"] == "bash")
        .unwrap();
    assert_eq!(bash["exit_code"], 0);
    assert!(events
        .iter()
        .all(|e| e["session"].is_string() && e["ts"].is_string()));

    // Costs: the turns add up to the session, and the ledger settled the same amounts.
    let turn_costs: Vec<llm::Usd> = events
        .iter()
        .filter(|e| e["type"] == "turn.completed")
        .map(|e| usd(&e["cost"]))
        .collect();
    let total = turn_costs
        .iter()
        .fold(llm::Usd::ZERO, |a, b| a.saturating_add(*b));
    let done = events.last().unwrap();
    assert_eq!(done["end"], "completed");
    assert_eq!(done["turns"], 4);
    assert_eq!(usd(&done["cost"]), total);
    assert!(total > llm::Usd::ZERO);
    let last_turn = events
        .iter()
        .rev()
        .find(|e| e["type"] == "turn.completed")
        .unwrap();
    assert_eq!(usd(&last_turn["spent"]), total);

    let ledger = ledger(&e.state);
    let (reserves, settles) = ledger_split(&ledger);
    assert_eq!(reserves.len(), 4, "{ledger:#?}");
    assert_eq!(settles.len(), 4, "{ledger:#?}");
    let settled = settles
        .iter()
        .fold(llm::Usd::ZERO, |a, s| a.saturating_add(ledger_cost(s)));
    assert_eq!(settled, total);

    // A transcript was kept.
    let sessions: Vec<_> = std::fs::read_dir(e.state.join("transcripts"))
        .unwrap()
        .collect();
    assert_eq!(sessions.len(), 1);
}

#[test]
fn ctrl_c_finishes_the_current_step_then_exits_130() {
    use std::io::BufRead;
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::tool_call(
            "bash",
            json!({"command": "sleep 3 && echo slept > slept.txt"}),
        ),
        Turn::text("never asked for"),
    ]));
    let mut child = exec_std(&e, Some(&server))
        .args([
            "--model",
            MODEL,
            "--sandbox",
            "off",
            "--json",
            "sleep a bit",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let started = event["type"] == "tool.started";
        seen.push(event);
        if started {
            break;
        }
    }
    // Ctrl-C while the command runs.
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    seen.extend(lines.map(|l| serde_json::from_str::<Value>(&l.unwrap()).unwrap()));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    // The step under way finished; nothing after it was asked.
    assert!(e.project.join("slept.txt").exists());
    assert_eq!(server.request_count(), 1);
    let last = seen.last().unwrap();
    assert_eq!(last["type"], "session.completed", "{seen:#?}");
    assert_eq!(last["end"], "cancelled");
}

#[test]
fn human_mode_keeps_stdout_empty_and_logs_to_stderr() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::tool_call("list_files", json!({})),
        Turn::text("Nothing to do."),
    ]));
    exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "look around"])
        .assert()
        .code(0)
        .stdout("")
        .stderr(predicate::str::contains("list_files"))
        .stderr(predicate::str::contains("Nothing to do."));
}

#[test]
fn the_task_can_come_from_stdin() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::tool_call("list_files", json!({})),
        Turn::text("ok"),
    ]));
    exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "--json"])
        .write_stdin("say ok\n")
        .assert()
        .code(0);
    let first = &server.requests()[0];
    assert!(first.messages()[0].to_string().contains("say ok"));
}

#[test]
fn an_empty_task_is_a_usage_error() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![]));
    exec(&e, Some(&server))
        .args(["--model", MODEL])
        .write_stdin("  \n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("task is empty"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_bad_model_string_is_a_usage_error() {
    let e = env();
    exec(&e, None)
        .args(["--model", "not-a-model-string", "do it"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not-a-model-string"));
}

#[test]
fn a_missing_api_key_is_a_usage_error_naming_the_variable() {
    let e = env();
    exec(&e, None)
        .args(["--model", MODEL, "do it"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ANTHROPIC_API_KEY"));
}

#[test]
fn a_budget_too_small_for_one_call_exits_3_before_any_call() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("unreachable")]));
    exec(&e, Some(&server))
        .args([
            "--model",
            MODEL,
            "--budget",
            "0.000001",
            "--sandbox",
            "off",
            "do it",
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("budget"));
    assert_eq!(server.request_count(), 0);
}

#[test]
fn a_served_model_swap_exits_4() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::Reply(
        Reply::text("hi").with_model("claude-3-haiku-20240307"),
    )]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "--json", "say hi"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = events(&out.stdout);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["exit_code"], 4);
}

#[test]
fn a_provider_billing_above_the_ask_exits_4_and_is_flagged_in_the_ledger() {
    let e = env();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::Reply(
        Reply::text("hi").with_usage(testkit::Usage::new(10, 999_999)),
    )]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "--json", "say hi"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = events(&out.stdout);
    let last = events.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["exit_code"], 4);
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("billed above what was asked"),
        "{last}"
    );
    let settle = ledger(&e.state)
        .into_iter()
        .find(|l| l["kind"] == "settle")
        .unwrap();
    assert_eq!(settle["overbilled"], true);
    assert_eq!(settle["output_tokens"], 999_999, "recorded as reported");
}

#[test]
fn ctrl_c_during_a_model_call_that_never_ends_exits_130() {
    interrupt_a_call_that_never_ends(1);
}

/// `timeout -s INT` (and other supervisors) signal the process and then its group: the same
/// Ctrl-C arrives twice at once, and must not count as the second one that quits unsaved.
#[test]
fn the_same_ctrl_c_delivered_twice_still_saves_and_exits_130() {
    interrupt_a_call_that_never_ends(2);
}

/// Sends `signals` SIGINTs in one `kill` during a model call that never ends; checks the call
/// was cancelled and settled, the session ended as cancelled, and the exit was 130.
fn interrupt_a_call_that_never_ends(signals: usize) {
    let e = env();
    // The answer starts, then nothing for an hour: only cancelling the call ends it.
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::stall(2, 3_600_000)]));
    let mut child = exec_std(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "--json", "hang"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.request_count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no model call made");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .arg("-INT")
        .args(std::iter::repeat_n(&pid, signals))
        .status()
        .unwrap()
        .success());
    // Bounded wait, so a regression fails instead of hanging the suite.
    let waited = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > waited {
            child.kill().unwrap();
            panic!("the call was not cancelled");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("cancelling the model call"), "{stderr}");
    assert_eq!(server.request_count(), 1);
    let settle = ledger(&e.state)
        .into_iter()
        .find(|l| l["kind"] == "settle")
        .expect("the cancelled call is settled, not left at its reservation");
    assert_eq!(settle["outcome"], "cancelled");
    let last = events(&out.stdout).pop().unwrap();
    assert_eq!(last["type"], "session.completed", "{last}");
    assert_eq!(last["end"], "cancelled");
}

#[test]
fn a_bad_budget_is_a_usage_error() {
    let e = env();
    exec(&e, None)
        .args(["--model", MODEL, "--budget", "lots", "do it"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("budget"));
}

/// Reserve and settle entries of the ledger, told apart by their kind field.
fn ledger_split(ledger: &[Value]) -> (Vec<&Value>, Vec<&Value>) {
    let kind = |v: &Value| {
        ["kind", "type", "entry", "event"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_string))
            .unwrap_or_default()
    };
    let reserves = ledger
        .iter()
        .filter(|v| kind(v).contains("reserve"))
        .collect();
    let settles = ledger
        .iter()
        .filter(|v| kind(v).contains("settle"))
        .collect();
    (reserves, settles)
}

fn ledger_cost(entry: &Value) -> llm::Usd {
    let v = &entry["cost"];
    match v {
        Value::String(s) => s.parse().unwrap(),
        Value::Number(n) => llm::Usd::from_nanos(n.as_i64().unwrap()),
        other => panic!("no cost in ledger entry: {other}"),
    }
}

#[test]
fn a_config_written_by_a_program_of_the_agent_is_put_back() {
    let e = env();
    std::fs::write(e.project.join("loopwright.toml"), "max_turns = 7\n").unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::tool_call(
            "bash",
            json!({"command": "python3 -c \"open('loopwright.toml', 'w').write('sandbox = \\\"off\\\"\\n')\""}),
        ),
        Turn::text("Done."),
    ]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--json", "change the config"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(e.project.join("loopwright.toml")).unwrap(),
        "max_turns = 7\n"
    );
    assert!(events(&out.stdout)
        .iter()
        .any(|ev| ev["type"] == "frozen.restored" && ev["paths"] == json!(["loopwright.toml"])));
}

#[test]
fn a_model_that_never_calls_a_tool_ends_as_no_action_with_exit_5() {
    let e = env();
    // A model that writes its call as text the native protocol does not read.
    let written = "```json\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"hello.py\", \"content\": \"print('hello')\\n\"}}\n```";
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text(written)]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "Create hello.py"])
        .assert()
        .code(5)
        .stdout("");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.contains("the model answered without using any tool; nothing was changed")
            && last.contains("--tool-protocol text"),
        "{stderr}"
    );
    assert!(
        stderr.contains("session no_action after 1 turns"),
        "{stderr}"
    );
    assert!(!e.project.join("hello.py").exists());

    // The same in JSON: a distinct end reason.
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("Sure, done!")]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "--json", "do it"])
        .assert()
        .code(5);
    let evs = events(&out.get_output().stdout);
    let done = evs
        .iter()
        .find(|v| v["type"] == "session.completed")
        .expect("a session.completed event");
    assert_eq!(done["end"], "no_action", "{done}");
}

#[test]
fn with_the_text_protocol_calls_written_as_text_are_run() {
    let e = env();
    let written = "I'll create it.\n```json\n{\"name\": \"write_file\", \"arguments\": {\"path\": \"hello.py\", \"content\": \"print('hello')\\n\"}}\n```";
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::text(written),
        Turn::text("Created hello.py."),
    ]));
    exec(&e, Some(&server))
        .args([
            "--model",
            MODEL,
            "--sandbox",
            "off",
            "--tool-protocol",
            "text",
            "Create hello.py",
        ])
        .assert()
        .code(0);
    assert_eq!(
        std::fs::read_to_string(e.project.join("hello.py")).unwrap(),
        "print('hello')\n"
    );
    let second = &server.requests()[1];
    assert!(second.body.get("tools").is_none());
    let sent = second.body.to_string();
    assert!(
        sent.contains("<tool_result name=\\\"write_file\\\" id=\\\"text_call_1_0\\\">"),
        "{sent}"
    );
}

#[test]
fn the_first_byte_timeout_from_the_config_is_honoured() {
    let e = env();
    // One second instead of the remote default of 60: the first attempt, whose headers would
    // come after an hour, is torn by the configured timeout and the retry answers.
    std::fs::write(
        e.project.join("loopwright.toml"),
        "[providers.anthropic]\nfirst_byte_timeout_secs = 1\n",
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::delay(3_600_000, Reply::text("far too late")),
        Turn::text("done"),
    ]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--sandbox", "off", "--json", "say done"])
        .timeout(std::time::Duration::from_secs(300))
        .assert()
        .get_output()
        .clone();
    assert_eq!(server.request_count(), 2);
    let torn = ledger(&e.state)
        .into_iter()
        .find(|l| l["kind"] == "settle" && l["outcome"] == "torn")
        .expect("the first attempt is settled as torn");
    let note = torn["note"].as_str().unwrap_or_default().to_string();
    assert!(note.contains("no response headers within 1s"), "{note}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("done"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn limits_in_the_config_bound_the_agents_commands_and_the_model_is_told() {
    let e = env();
    std::fs::write(
        e.project.join("loopwright.toml"),
        "[limits]\nfile_size_mb = 1\n",
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::tool_call(
            "bash",
            json!({"command": "python3 -c \"open('big.bin', 'wb').write(b'x' * 3000000)\""}),
        ),
        Turn::text("done"),
    ]));
    let out = exec(&e, Some(&server))
        .args(["--model", MODEL, "--budget", "1.00", "--json"])
        .arg("write a big file")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    let size = std::fs::metadata(e.project.join("big.bin")).map_or(0, |m| m.len());
    assert!(size <= 1 << 20, "the file grew to {size} bytes");
    let result = server.requests()[1].last_tool_result().unwrap();
    assert!(result.contains("file-size limit (1 MiB)"), "{result}");
}

#[test]
fn an_unknown_limit_in_the_config_is_a_usage_error() {
    let e = env();
    std::fs::write(
        e.project.join("loopwright.toml"),
        "[limits]\nmemory_mb = 100\n",
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("never asked")]));
    exec(&e, Some(&server))
        .args(["--model", MODEL, "--budget", "1.00"])
        .arg("anything")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("[limits]").and(predicate::str::contains("memory_mb")));
    assert!(server.requests().is_empty());
}

#[test]
fn max_tokens_of_the_providers_table_is_asked_over_the_top_level_key() {
    let e = env();
    std::fs::write(
        e.project.join("loopwright.toml"),
        "max_tokens = 3000\n[providers.anthropic]\nmax_tokens = 1234\n",
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![
        Turn::tool_call("bash", json!({"command": "true"})),
        Turn::text("done"),
    ]));
    exec(&e, Some(&server))
        .args(["--model", MODEL, "--budget", "1.00"])
        .arg("say hello")
        .assert()
        .success();
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert_eq!(requests[0].body["max_tokens"], 1234);

    std::fs::write(
        e.project.join("loopwright.toml"),
        "[providers.anthropic]\nmax_tokens = 0\n",
    )
    .unwrap();
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("never asked")]));
    exec(&e, Some(&server))
        .args(["--model", MODEL, "--budget", "1.00"])
        .arg("say hello")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "[providers.anthropic] max_tokens = 0",
        ));
    assert!(server.requests().is_empty());
}
