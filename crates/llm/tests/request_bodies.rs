//! The request bodies both wire formats send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm::{anthropic, openai, ContentPart, Message, Request, Role, ToolSpec, WireOptions};
use serde_json::{json, Value};

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("the {name} tool"),
        input_schema: json!({"type": "object", "properties": {"command": {"type": "string"}}}),
    }
}

/// A conversation with a tool round trip whose results arrive after some text in the same turn.
fn conversation() -> Request {
    Request {
        model: "claude-sonnet-4-5".into(),
        system: "You build software.".into(),
        messages: vec![
            Message::user_text("Build it."),
            Message::assistant(vec![
                ContentPart::Text {
                    text: "Running.".into(),
                },
                ContentPart::ToolUse {
                    id: "t1".into(),
                    name: "bash".into(),
                    input: json!({"command": "ls"}),
                },
                ContentPart::ToolUse {
                    id: "t2".into(),
                    name: "read_file".into(),
                    input: json!({"__invalid_json": "{\"path\": "}),
                },
            ]),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text {
                        text: "Note: hurry.".into(),
                    },
                    ContentPart::ToolResult {
                        tool_use_id: "t1".into(),
                        content: "Cargo.toml".into(),
                        is_error: false,
                    },
                    ContentPart::ToolResult {
                        tool_use_id: "t2".into(),
                        content: "invalid arguments".into(),
                        is_error: true,
                    },
                ],
            },
        ],
        tools: vec![tool("bash"), tool("read_file"), tool("write_file")],
        max_tokens: 4096,
        temperature: Some(0.0),
    }
}

/// Paths of every object carrying `cache_control`.
fn cache_points(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("cache_control") {
                assert_eq!(m["cache_control"], json!({"type": "ephemeral"}));
                out.push(path.clone());
            }
            for (k, v) in m {
                cache_points(v, format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                cache_points(v, format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn anthropic_body_shape() {
    let body = anthropic::request_body(&conversation(), &WireOptions::default());
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stream"], true);
    assert_eq!(body["system"][0]["type"], "text");
    assert_eq!(body["system"][0]["text"], "You build software.");
    assert_eq!(body["tools"][0]["name"], "bash");
    assert!(body["tools"][0]["input_schema"].is_object());
    let assistant = &body["messages"][1]["content"];
    assert_eq!(
        assistant[1],
        json!({"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}})
    );
}

#[test]
fn anthropic_tool_results_lead_the_user_turn() {
    let body = anthropic::request_body(&conversation(), &WireOptions::default());
    let kinds: Vec<&str> = body["messages"][2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["tool_result", "tool_result", "text"]);
    assert_eq!(body["messages"][2]["content"][1]["is_error"], true);
    assert!(body["messages"][2]["content"][0].get("is_error").is_none());
}

#[test]
fn anthropic_cache_breakpoints_on_last_tool_system_and_newest_user_turn() {
    let body = anthropic::request_body(&conversation(), &WireOptions::default());
    let mut points = Vec::new();
    cache_points(&body, String::new(), &mut points);
    points.sort();
    assert_eq!(points, ["/messages/2/content/2", "/system/0", "/tools/2"]);
    assert!(points.len() <= anthropic::MAX_CACHE_BREAKPOINTS);
}

#[test]
fn anthropic_cache_breakpoints_never_exceed_four_and_can_be_off() {
    // However long the conversation, the count stays bounded.
    let mut req = conversation();
    for i in 0..20 {
        req.messages
            .push(Message::assistant(vec![ContentPart::Text {
                text: format!("a{i}"),
            }]));
        req.messages.push(Message::user_text(format!("u{i}")));
    }
    let body = anthropic::request_body(&req, &WireOptions::default());
    let mut points = Vec::new();
    cache_points(&body, String::new(), &mut points);
    assert!(points.len() <= 4, "{points:?}");
    assert!(points.contains(&format!("/messages/{}/content/0", req.messages.len() - 1)));

    let off = WireOptions {
        prompt_caching: false,
        ..WireOptions::default()
    };
    let mut points = Vec::new();
    cache_points(
        &anthropic::request_body(&req, &off),
        String::new(),
        &mut points,
    );
    assert!(points.is_empty());
}

#[test]
fn openai_body_shape_and_tool_messages() {
    let opts = WireOptions {
        prompt_caching: false,
        ..WireOptions::default()
    };
    let body = openai::request_body(&conversation(), &opts, "http://localhost:11434/v1");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(
        msgs[0],
        json!({"role": "system", "content": "You build software."})
    );
    assert_eq!(msgs[1], json!({"role": "user", "content": "Build it."}));
    assert_eq!(msgs[2]["role"], "assistant");
    assert_eq!(msgs[2]["content"], "Running.");
    assert_eq!(msgs[2]["tool_calls"][0]["type"], "function");
    assert_eq!(msgs[2]["tool_calls"][0]["function"]["name"], "bash");
    // Arguments travel as a JSON string; invalid ones go back exactly as the model wrote them.
    assert_eq!(
        msgs[2]["tool_calls"][0]["function"]["arguments"],
        "{\"command\":\"ls\"}"
    );
    assert_eq!(
        msgs[2]["tool_calls"][1]["function"]["arguments"],
        "{\"path\": "
    );
    // Tool results first, then the user's text.
    assert_eq!(
        msgs[3],
        json!({"role": "tool", "tool_call_id": "t1", "content": "Cargo.toml"})
    );
    assert_eq!(msgs[4]["role"], "tool");
    assert!(msgs[4]["content"]
        .as_str()
        .unwrap()
        .contains("invalid arguments"));
    assert_eq!(msgs[5], json!({"role": "user", "content": "Note: hurry."}));
    assert_eq!(
        body["tools"][0],
        json!({"type": "function", "function": {"name": "bash", "description": "the bash tool",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}}})
    );
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_tokens"], 4096);
    assert!(body.get("provider").is_none());
    assert!(body.get("models").is_none());
}

#[test]
fn openrouter_pin_fields_and_never_a_models_list() {
    let opts = WireOptions {
        openrouter_pin: true,
        ..WireOptions::default()
    };
    let body = openai::request_body(&conversation(), &opts, "https://openrouter.ai/api/v1");
    assert_eq!(body["provider"], json!({"allow_fallbacks": false}));
    assert_eq!(body["usage"], json!({"include": true}));
    assert!(body.get("models").is_none());
    assert_eq!(body["model"], "claude-sonnet-4-5");
}

#[test]
fn openai_itself_gets_max_completion_tokens_and_no_stream_options_when_not_streaming() {
    let opts = WireOptions {
        stream: false,
        ..WireOptions::default()
    };
    let body = openai::request_body(&conversation(), &opts, "https://api.openai.com/v1");
    assert_eq!(body["max_completion_tokens"], 4096);
    assert!(body.get("max_tokens").is_none());
    assert!(body.get("stream").is_none());
    assert!(body.get("stream_options").is_none());
}
