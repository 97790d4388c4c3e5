//! A session against the fake model server: real Governor, real toolbox (sandbox off, so the
//! tests run on any machine), scripted model turns.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use agent::{
    BoxFuture, CollectEvents, EndReason, EventKind, Session, SessionConfig, Tool, Transcript,
    TranscriptEntry,
};
use serde_json::json;
use std::path::Path;
use testkit::{FakeServer, LoggedRequest, Reply, Script, Turn};
use tokio_util::sync::CancellationToken;
use tools::{ToolOutcome, Toolbox, ToolboxConfig};

mod common;
use common::{governor_config, governor_for};
use governor::Governor;

struct Fixture {
    _dir: tempfile::TempDir,
    project: std::path::PathBuf,
    state: std::path::PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(project.join("notes.txt"), "first line\nsecond line\n").unwrap();
    Fixture {
        _dir: dir,
        project,
        state,
    }
}

fn toolbox(project: &Path) -> Toolbox {
    let mut config = ToolboxConfig::new(project);
    config.sandbox_mode = sandbox::SandboxMode::Off;
    Toolbox::new(config).unwrap()
}

fn config(f: &Fixture, task: &str) -> SessionConfig {
    let mut c = SessionConfig::new("s1", "You are a test agent.", task);
    c.transcript = Some(f.state.join("sessions").join("s1.jsonl"));
    c
}

/// The text blocks of the newest user message of a logged request.
fn last_user_texts(request: &LoggedRequest) -> Vec<String> {
    let last = request.messages().last().cloned().unwrap_or_default();
    last["content"]
        .as_array()
        .map(|blocks| {
            blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .map(|b| b["text"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn writes_a_file_then_completes_with_a_transcript() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(
            Reply::text("Writing it.")
                .with_tool_call("write_file", json!({"path": "out.txt", "content": "hi\n"})),
        ),
        Turn::text("Done."),
    ]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let events = CollectEvents::new();
    let outcome = Session::new(&governor, &tools, config(&f, "write out.txt"))
        .events(&events)
        .run()
        .await
        .unwrap();

    assert_eq!(outcome.end, EndReason::Completed);
    assert_eq!(outcome.turns, 2);
    assert_eq!(outcome.final_text, "Done.");
    assert_eq!(
        std::fs::read_to_string(f.project.join("out.txt")).unwrap(),
        "hi\n"
    );
    assert_eq!(outcome.cost, governor.spent());

    // The tool result went back as the first block of the next user message.
    let requests = server.requests();
    let second = requests[1].messages().last().unwrap().clone();
    assert_eq!(second["role"], "user");
    assert_eq!(second["content"][0]["type"], "tool_result");

    let types: Vec<&str> = events
        .events()
        .iter()
        .map(|e| match &e.kind {
            EventKind::SessionStarted { .. } => "session.started",
            EventKind::AssistantText { .. } => "assistant.text",
            EventKind::TurnCompleted { .. } => "turn.completed",
            EventKind::ToolStarted { .. } => "tool.started",
            EventKind::ToolCompleted { .. } => "tool.completed",
            EventKind::SessionCompleted { .. } => "session.completed",
            _ => "other",
        })
        .collect();
    assert_eq!(
        types,
        [
            "session.started",
            "assistant.text",
            "turn.completed",
            "tool.started",
            "tool.completed",
            "assistant.text",
            "turn.completed",
            "session.completed"
        ]
    );

    let entries = Transcript::read(&f.state.join("sessions").join("s1.jsonl")).unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| match e {
            TranscriptEntry::Session { .. } => "session",
            TranscriptEntry::Message { .. } => "message",
            TranscriptEntry::Response { .. } => "response",
            TranscriptEntry::ToolCall { .. } => "tool_call",
            TranscriptEntry::ToolResult { .. } => "tool_result",
            TranscriptEntry::End { .. } => "end",
            TranscriptEntry::Error { .. } => "error",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "session",
            "message",
            "response",
            "tool_call",
            "tool_result",
            "message",
            "response",
            "end"
        ]
    );
}

#[tokio::test]
async fn a_tool_error_goes_back_to_the_model_and_the_session_continues() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![
        Turn::tool_call("read_file", json!({"path": "missing.txt"})),
        Turn::tool_call("read_file", json!({"path": "notes.txt"})),
        Turn::text("Read it."),
    ]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let outcome = Session::new(&governor, &tools, config(&f, "read"))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.end, EndReason::Completed);
    assert_eq!(outcome.turns, 3);
    let requests = server.requests();
    let result = &requests[1].messages().last().unwrap()["content"][0];
    assert_eq!(result["is_error"], true, "{result}");
    assert!(requests[1]
        .last_tool_result()
        .unwrap()
        .contains("missing.txt"));
    assert!(requests[2]
        .last_tool_result()
        .unwrap()
        .contains("second line"));
}

#[tokio::test]
async fn stops_at_the_turn_limit() {
    let f = fixture();
    let server = FakeServer::start(Script::handler(|req: &LoggedRequest| {
        // A different call each time, so only the turn limit can stop it.
        Turn::tool_call("bash", json!({"command": format!("echo {}", req.seq)}))
    }))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let mut c = config(&f, "loop");
    c.max_turns = 3;
    let outcome = Session::new(&governor, &tools, c).run().await.unwrap();
    assert_eq!(outcome.end, EndReason::TurnLimit);
    assert_eq!(outcome.turns, 3);
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn repeating_the_same_call_earns_a_nudge_then_ends_the_session() {
    let f = fixture();
    let server = FakeServer::start(Script::handler(|_: &LoggedRequest| {
        Turn::tool_call("list_files", json!({}))
    }))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let events = CollectEvents::new();
    let outcome = Session::new(&governor, &tools, config(&f, "look around"))
        .events(&events)
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.end, EndReason::RepeatedAction);
    assert_eq!(outcome.turns, 4);
    let requests = server.requests();
    assert!(last_user_texts(&requests[2]).is_empty());
    let nudge = last_user_texts(&requests[3]).join(" ");
    assert!(nudge.contains("repeating yourself"), "{nudge}");
    assert!(events
        .events()
        .iter()
        .any(|e| matches!(e.kind, EventKind::Notice { .. })));
}

#[tokio::test]
async fn near_the_context_window_the_model_wraps_up_and_the_session_ends() {
    let f = fixture();
    let big = testkit::Usage::new(9_000, 50);
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(
            Reply::default()
                .with_tool_call("list_files", json!({}))
                .with_usage(big.clone()),
        ),
        Turn::Reply(
            Reply::default()
                .with_tool_call(
                    "write_file",
                    json!({"path": "progress.md", "content": "notes\n"}),
                )
                .with_usage(big),
        ),
        Turn::text("never asked for"),
    ]))
    .await;
    let mut gc = governor_config(&server, &f.state, None);
    gc.max_tokens = 1_000;
    let governor = Governor::new(gc).unwrap();
    let tools = toolbox(&f.project);
    let mut c = config(&f, "big job");
    c.context_window = Some(10_000);
    let outcome = Session::new(&governor, &tools, c).run().await.unwrap();
    assert_eq!(outcome.end, EndReason::ContextLimit);
    assert_eq!(outcome.turns, 2);
    assert_eq!(server.request_count(), 2);
    assert!(last_user_texts(&server.requests()[1])
        .join(" ")
        .contains("progress.md"));
    // The wrap-up turn's tool calls still ran.
    assert!(f.project.join("progress.md").exists());
}

#[tokio::test]
async fn a_prompt_that_would_not_fit_is_never_sent() {
    let f = fixture();
    // A tool result of ~120k characters (~30k tokens) in a 16k-token window.
    let big: String = (0..12_000).map(|i| format!("row {i:05}\n")).collect();
    std::fs::write(f.project.join("big.txt"), &big).unwrap();
    let server = FakeServer::start(Script::turns(vec![
        Turn::tool_call("bash", json!({"command": "cat big.txt"})),
        Turn::text("never asked for"),
    ]))
    .await;
    let mut gc = governor_config(&server, &f.state, None);
    gc.max_tokens = 1_000;
    let governor = Governor::new(gc).unwrap();
    let tools = toolbox(&f.project);
    let mut c = config(&f, "read it all");
    c.context_window = Some(16_000);
    c.max_tool_result_chars = 200_000;
    let outcome = Session::new(&governor, &tools, c).run().await.unwrap();
    assert_eq!(outcome.end, EndReason::ContextExhausted);
    assert!(
        outcome.end_detail.contains("context window"),
        "{}",
        outcome.end_detail
    );
    assert_eq!(
        server.request_count(),
        1,
        "the oversized prompt was not sent"
    );
}

#[tokio::test]
async fn a_provider_refusing_a_long_prompt_ends_the_session_without_an_error() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![Turn::Fault(testkit::Fault::Http(
        testkit::HttpFault::new(400)
            .with_error_type("invalid_request_error")
            .with_message("prompt is too long: 201000 tokens > 200000 maximum"),
    ))]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let outcome = Session::new(&governor, &tools, config(&f, "hi"))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.end, EndReason::ContextExhausted);
    assert_eq!(outcome.turns, 0);
}

#[tokio::test]
async fn a_long_tool_result_is_cut_in_the_middle_with_a_note() {
    let f = fixture();
    let big: String = (0..20_000).map(|i| format!("row {i:05}\n")).collect();
    std::fs::write(f.project.join("big.txt"), &big).unwrap();
    let server = FakeServer::start(Script::turns(vec![
        Turn::tool_call("bash", json!({"command": "cat big.txt"})),
        Turn::text("ok"),
    ]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let mut c = config(&f, "read");
    c.max_tool_result_chars = 5_000;
    Session::new(&governor, &tools, c).run().await.unwrap();
    let result = server.requests()[1].last_tool_result().unwrap();
    assert!(result.chars().count() < 5_500, "{}", result.len());
    assert!(result.contains("cut from the middle"), "{result}");
    assert!(
        result.contains("exit code: 0"),
        "the head is kept: {result}"
    );
}

#[tokio::test]
async fn a_small_context_use_does_not_trigger_the_guard() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(
            Reply::default()
                .with_tool_call("list_files", json!({}))
                .with_usage(testkit::Usage::new(5_000, 50)),
        ),
        Turn::text("ok"),
    ]))
    .await;
    let mut gc = governor_config(&server, &f.state, None);
    gc.max_tokens = 1_000;
    let governor = Governor::new(gc).unwrap();
    let tools = toolbox(&f.project);
    let mut c = config(&f, "small job");
    c.context_window = Some(10_000);
    let outcome = Session::new(&governor, &tools, c).run().await.unwrap();
    assert_eq!(outcome.end, EndReason::Completed);
    assert!(last_user_texts(&server.requests()[1]).is_empty());
}

#[tokio::test]
async fn an_answer_cut_at_max_tokens_is_not_run_and_the_model_is_told() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(
            Reply::default()
                .with_tool_call("write_file", json!({"path": "half.txt", "content": "par"}))
                .with_stop_reason("max_tokens"),
        ),
        Turn::text("I will go smaller."),
    ]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let outcome = Session::new(&governor, &tools, config(&f, "write"))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.end, EndReason::Completed);
    assert!(!f.project.join("half.txt").exists());
    let second = &server.requests()[1];
    assert!(second.last_tool_result().unwrap().contains("cut off"));
    assert!(last_user_texts(second).join(" ").contains("smaller steps"));
}

/// An extra tool that fires the cancellation token, as Ctrl-C would mid-step.
struct StopButton(CancellationToken);

impl Tool for StopButton {
    fn spec(&self) -> llm::ToolSpec {
        llm::ToolSpec {
            name: "stop_button".into(),
            description: "Presses the stop button.".into(),
            input_schema: json!({"type": "object", "properties": {}}),
        }
    }

    fn call<'a>(&'a self, _input: &'a serde_json::Value) -> BoxFuture<'a, ToolOutcome> {
        Box::pin(async move {
            self.0.cancel();
            ToolOutcome::success("stop_button: pressed", "pressed")
        })
    }
}

#[tokio::test]
async fn cancellation_finishes_the_current_step_then_ends() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![
        Turn::Reply(
            Reply::default()
                .with_tool_call("write_file", json!({"path": "before.txt", "content": "x"}))
                .with_tool_call("stop_button", json!({}))
                .with_tool_call("write_file", json!({"path": "after.txt", "content": "x"})),
        ),
        Turn::text("never asked for"),
    ]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let cancel = CancellationToken::new();
    let stop = StopButton(cancel.clone());
    let outcome = Session::new(&governor, &tools, config(&f, "stop"))
        .tool(&stop)
        .cancel_token(cancel)
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.end, EndReason::Cancelled);
    assert_eq!(outcome.turns, 1);
    assert_eq!(server.request_count(), 1);
    assert!(server.requests()[0]
        .tool_names()
        .contains(&"stop_button".to_string()));
    // Calls the extra tools do not handle go to the toolbox.
    assert!(f.project.join("before.txt").exists());
    // The call after the cancelled step was not run.
    assert!(!f.project.join("after.txt").exists());
    let entries = Transcript::read(&f.state.join("sessions").join("s1.jsonl")).unwrap();
    assert!(matches!(
        entries.last(),
        Some(TranscriptEntry::End {
            end: EndReason::Cancelled,
            ..
        })
    ));
}

#[tokio::test]
async fn cancellation_abandons_a_model_call_in_flight_and_settles_it() {
    let f = fixture();
    // The server starts answering, then says nothing for an hour.
    let server = FakeServer::start(Script::turns(vec![Turn::stall(2, 3_600_000)])).await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let cancel = CancellationToken::new();
    let session = Session::new(&governor, &tools, config(&f, "slow"))
        .cancel_token(cancel.clone())
        .run();
    // Ctrl-C once the request reached the server.
    let press = async {
        while server.request_count() == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        cancel.cancel();
    };
    let (outcome, ()) = tokio::join!(session, press);
    let outcome = outcome.unwrap();
    assert_eq!(outcome.end, EndReason::Cancelled);
    assert_eq!(outcome.turns, 0, "the abandoned call is not a turn");
    let ledger = governor.ledger().unwrap();
    let settle = ledger.entries.last().unwrap();
    assert_eq!(settle.outcome, Some(governor::AttemptOutcome::Cancelled));
    assert!(
        settle.cost > llm::Usd::ZERO,
        "the torn-attempt rule charged it"
    );
    assert_eq!(outcome.cost, settle.cost);
    assert_eq!(governor.spent(), settle.cost, "nothing left in flight");
}

#[tokio::test]
async fn a_governor_refusal_ends_the_session_with_its_stop_reason() {
    let f = fixture();
    let server = FakeServer::start(Script::turns(vec![Turn::Reply(
        Reply::text("hi").with_model("claude-3-haiku-20240307"),
    )]))
    .await;
    let governor = governor_for(&server, &f.state, None);
    let tools = toolbox(&f.project);
    let err = Session::new(&governor, &tools, config(&f, "hi"))
        .run()
        .await
        .unwrap_err();
    // The CLI maps it to exit 4.
    assert_eq!(err.stop_reason(), agent::StopReason::PinViolation, "{err}");
    let entries = Transcript::read(&f.state.join("sessions").join("s1.jsonl")).unwrap();
    assert!(matches!(
        entries.last(),
        Some(TranscriptEntry::Error { .. })
    ));
}
