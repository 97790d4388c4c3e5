//! The text tool protocol end to end: `ModelClient` with `tool_protocol = text` against testkit's
//! fake server, on both wires, streamed and not — what goes on the wire, the calls read back,
//! the stream the caller sees, malformed blocks, and record/replay.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use llm::{
    CassetteReader, CassetteWriter, ContentPart, Endpoint, Message, ModelClient, Request, Response,
    Role, StopReason, StreamEvent, Timeouts, ToolProtocol, ToolSpec, WireFormat, WireOptions,
};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use testkit::{FakeServer, LoggedRequest, Reply, Script, Turn};

const WIRES: [WireFormat; 2] = [WireFormat::Anthropic, WireFormat::Openai];

fn client(server: &FakeServer, wire: WireFormat, stream: bool) -> ModelClient {
    let base_url = match wire {
        WireFormat::Anthropic => server.anthropic_base_url(),
        WireFormat::Openai => server.openai_base_url(),
    };
    ModelClient::new(
        Endpoint {
            wire,
            base_url,
            api_key: Some("k".into()),
            extra_headers: Vec::new(),
        },
        WireOptions {
            stream,
            tool_protocol: ToolProtocol::Text,
            ..WireOptions::default()
        },
        Timeouts {
            first_byte: Duration::from_secs(10),
            idle: Duration::from_secs(10),
            call: Duration::from_secs(60),
        },
    )
    .unwrap()
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "bash".into(),
            description: "Run a shell command.".into(),
            input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
        },
        ToolSpec {
            name: "read_file".into(),
            description: "Read a file.".into(),
            input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        },
    ]
}

fn request(messages: Vec<Message>) -> Request {
    Request {
        model: "local-model".into(),
        system: "You are a test.".into(),
        messages,
        tools: tools(),
        max_tokens: 256,
        temperature: None,
    }
}

async fn send(client: &ModelClient, req: &Request) -> (Response, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let response = client
        .send(req, &tokio_util::sync::CancellationToken::new(), &mut |e| {
            events.push(e)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (response, events)
}

fn shown(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn calls(r: &Response) -> Vec<(String, String, Value)> {
    r.tool_uses()
        .map(|(id, n, i)| (id.to_string(), n.to_string(), i.clone()))
        .collect()
}

/// Every text of a logged request (system and message contents), joined.
fn all_text(req: &LoggedRequest) -> String {
    let mut out = String::new();
    match &req.body["system"] {
        Value::String(s) => out.push_str(s),
        Value::Array(blocks) => {
            for b in blocks {
                out.push_str(b["text"].as_str().unwrap_or_default());
            }
        }
        _ => {}
    }
    for m in req.messages() {
        match &m["content"] {
            Value::String(s) => out.push_str(s),
            Value::Array(blocks) => {
                for b in blocks {
                    out.push_str(b["text"].as_str().unwrap_or_default());
                }
            }
            _ => {}
        }
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn calls_in_text_come_back_as_tool_calls_on_both_wires_streamed_and_not() {
    let answers = [
        "Let me look.\n```json\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.txt\"}}\n```",
        "Let me look.\n<tool_call>\n{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.txt\"}}\n</tool_call>",
        "Let me look.\n<tools>{\"name\": \"read_file\", \"arguments\": {\"path\": \"a.txt\"}}</tools>",
        "Let me look.\n{\"name\": \"read_file\", \"arguments\": \"{\\\"path\\\": \\\"a.txt\\\"}\"}",
    ];
    for wire in WIRES {
        for stream in [true, false] {
            for answer in answers {
                let server = FakeServer::start(Script::turns(vec![Turn::text(answer)])).await;
                let (r, events) = send(
                    &client(&server, wire, stream),
                    &request(vec![Message::user_text("show a.txt")]),
                )
                .await;
                let what = format!("{wire:?} stream={stream} {answer:?}");
                assert_eq!(
                    calls(&r),
                    [(
                        "text_call_1_0".to_string(),
                        "read_file".to_string(),
                        json!({"path": "a.txt"})
                    )],
                    "{what}"
                );
                assert_eq!(r.text(), "Let me look.", "{what}");
                assert_eq!(r.stop_reason, StopReason::ToolUse, "{what}");
                assert_eq!(shown(&events).trim(), "Let me look.", "{what}");
                assert!(
                    events.contains(&StreamEvent::ToolUseStarted {
                        id: "text_call_1_0".into(),
                        name: "read_file".into()
                    }),
                    "{what}: {events:?}"
                );
                // On the wire: no tools field; the tools are in the system prompt.
                let seen = &server.requests()[0];
                assert!(seen.body.get("tools").is_none(), "{what}");
                assert!(seen.tool_names().is_empty());
                let text = all_text(seen);
                assert!(
                    text.contains("# Tools") && text.contains("## read_file"),
                    "{what}"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_history_goes_back_as_text_with_the_call_ids() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![Turn::text("All done.")])).await;
        let history = vec![
            Message::user_text("show a.txt"),
            Message::assistant(vec![ContentPart::ToolUse {
                id: "text_call_1_0".into(),
                name: "read_file".into(),
                input: json!({"path": "a.txt"}),
            }]),
            Message {
                role: Role::User,
                content: vec![ContentPart::ToolResult {
                    tool_use_id: "text_call_1_0".into(),
                    content: "hello from a.txt".into(),
                    is_error: false,
                }],
            },
        ];
        let (r, _) = send(&client(&server, wire, true), &request(history)).await;
        assert_eq!(r.text(), "All done.");
        assert_eq!(r.stop_reason, StopReason::EndTurn);
        let seen = &server.requests()[0];
        let msgs = seen.messages();
        let roles: Vec<&str> = msgs.iter().filter_map(|m| m["role"].as_str()).collect();
        let want: &[&str] = match wire {
            WireFormat::Anthropic => &["user", "assistant", "user"],
            WireFormat::Openai => &["system", "user", "assistant", "user"],
        };
        assert_eq!(roles, want, "{wire:?}: only text messages, no tool roles");
        let text = all_text(seen);
        assert!(
            text.contains(
                "```json\n{\"name\": \"read_file\", \"arguments\": {\"path\":\"a.txt\"}}\n```"
            ),
            "{wire:?}: {text}"
        );
        assert!(
            text.contains(
                "<tool_result name=\"read_file\" id=\"text_call_1_0\">\nhello from a.txt\n</tool_result>"
            ),
            "{wire:?}: {text}"
        );
        assert!(!serde_json::to_string(&seen.body)
            .unwrap()
            .contains("tool_use\""));
    }
}

#[tokio::test]
async fn a_malformed_block_is_a_call_whose_input_is_marked_invalid() {
    for wire in WIRES {
        let answer =
            "```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\" \"-la\"}}\n```";
        let server = FakeServer::start(Script::turns(vec![Turn::text(answer)])).await;
        let (r, events) = send(
            &client(&server, wire, true),
            &request(vec![Message::user_text("list")]),
        )
        .await;
        let got = calls(&r);
        assert_eq!(got.len(), 1, "{wire:?}");
        assert_eq!(got[0].1, "bash");
        assert!(
            got[0].2.get(llm::INVALID_JSON_KEY).is_some(),
            "{wire:?}: {:?}",
            got[0].2
        );
        assert_eq!(
            shown(&events),
            "",
            "a broken call is not shown as text either"
        );
    }
}

#[tokio::test]
async fn native_tool_calls_are_kept_when_a_server_sends_them_anyway() {
    let reply = Reply::text("Both.").with_tool_call_id("call_x", "bash", json!({"command": "ls"}));
    let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
    let (r, _) = send(
        &client(&server, WireFormat::Openai, true),
        &request(vec![Message::user_text("go")]),
    )
    .await;
    assert_eq!(
        calls(&r),
        [(
            "call_x".to_string(),
            "bash".to_string(),
            json!({"command": "ls"})
        )]
    );
}

#[tokio::test]
async fn a_recording_replays_to_the_same_calls_and_ids() {
    for wire in WIRES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        let answers = [
            "```json\n{\"name\": \"bash\", \"arguments\": {\"command\": \"ls\"}}\n```",
            "<tool_call>{\"name\": \"read_file\", \"arguments\": {\"path\": \"x\"}}</tool_call>",
            "Done.",
        ];
        let server = FakeServer::start(Script::turns(
            answers.iter().map(|a| Turn::text(*a)).collect(),
        ))
        .await;
        let live = client(&server, wire, true)
            .with_recorder(Arc::new(CassetteWriter::open(&path).unwrap()));
        let mut conversation = vec![Message::user_text("go")];
        let mut recorded = Vec::new();
        for _ in answers {
            let (r, _) = send(&live, &request(conversation.clone())).await;
            conversation.push(Message::assistant(r.parts.clone()));
            let results: Vec<ContentPart> = r
                .tool_uses()
                .map(|(id, _, _)| ContentPart::ToolResult {
                    tool_use_id: id.to_string(),
                    content: "ok".into(),
                    is_error: false,
                })
                .collect();
            if !results.is_empty() {
                conversation.push(Message {
                    role: Role::User,
                    content: results,
                });
            }
            recorded.push(r);
        }
        assert_eq!(calls(&recorded[1])[0].0, "text_call_2_0", "{wire:?}");
        let cassette = std::fs::read_to_string(&path).unwrap();
        assert_eq!(cassette.matches("\"tool_protocol\":\"text\"").count(), 3);

        let replay = ModelClient::replay(Arc::new(CassetteReader::open(&path).unwrap()));
        let mut conversation = vec![Message::user_text("go")];
        for want in &recorded {
            let (r, _) = send(&replay, &request(conversation.clone())).await;
            assert_eq!(r.parts, want.parts, "{wire:?}");
            assert_eq!(r.stop_reason, want.stop_reason);
            conversation.push(Message::assistant(r.parts.clone()));
            let results: Vec<ContentPart> = r
                .tool_uses()
                .map(|(id, _, _)| ContentPart::ToolResult {
                    tool_use_id: id.to_string(),
                    content: "ok".into(),
                    is_error: false,
                })
                .collect();
            if !results.is_empty() {
                conversation.push(Message {
                    role: Role::User,
                    content: results,
                });
            }
        }
    }
}
