//! The parsers against recorded response bodies (the providers' documented streams and the
//! quirks of compatible servers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm::sse::SseParser;
use llm::{
    anthropic, openai, parse_response_body, ContentPart, LlmError, Message, Request, Response,
    StopReason, StreamEvent, Usd, WireFormat,
};
use serde_json::json;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn request() -> Request {
    Request {
        model: "m".into(),
        system: "You are terse.".into(),
        messages: vec![Message::user_text("What's the weather?")],
        tools: vec![],
        max_tokens: 1000,
        temperature: None,
    }
}

fn parse(
    wire: WireFormat,
    streamed: bool,
    body: &[u8],
) -> (Result<Response, LlmError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let r = parse_response_body(wire, streamed, body, &request(), &mut |e| events.push(e));
    (r, events)
}

/// Feeds `body` to the live decoders in two chunks split at `cut`.
fn parse_split(wire: WireFormat, body: &[u8], cut: usize) -> Result<Response, LlmError> {
    let mut parser = SseParser::new();
    let mut sink = |_e: StreamEvent| {};
    let mut evs = parser.push(&body[..cut]);
    evs.extend(parser.push(&body[cut..]));
    evs.extend(parser.finish());
    match wire {
        WireFormat::Anthropic => {
            let mut d = anthropic::StreamDecoder::new();
            for e in &evs {
                d.feed(e, &mut sink)?;
            }
            d.finish()
        }
        WireFormat::Openai => {
            let mut d = openai::StreamDecoder::new(100);
            for e in &evs {
                d.feed(e, &mut sink)?;
            }
            d.finish()
        }
    }
}

#[test]
fn anthropic_text_and_tool_use_stream() {
    let (r, events) = parse(
        WireFormat::Anthropic,
        true,
        &fixture("anthropic_text_tool_use.sse"),
    );
    let r = r.unwrap();
    assert_eq!(
        r.text(),
        "Okay, let's check the weather for San Francisco, CA:"
    );
    let tools: Vec<_> = r.tool_uses().collect();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(tools[0].1, "get_weather");
    assert_eq!(
        *tools[0].2,
        json!({"location": "San Francisco, CA", "unit": "fahrenheit"})
    );
    // An empty join of partial JSON means no arguments.
    assert_eq!(*tools[1].2, json!({}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(r.served_model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        r.request_id.as_deref(),
        Some("msg_014p7gG3wDgGV9EUtLvnow3U")
    );
    assert_eq!(r.usage.input_tokens, 472);
    assert_eq!(r.usage.output_tokens, 89);
    assert!(!r.usage.estimated);
    // Deltas are reported as they arrive, tool starts in order.
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, r.text());
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolUseStarted { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(started, ["get_weather", "get_time"]);
}

#[test]
fn anthropic_stream_with_crlf_line_endings() {
    let body = String::from_utf8(fixture("anthropic_text_tool_use.sse"))
        .unwrap()
        .replace('\n', "\r\n");
    let (r, _) = parse(WireFormat::Anthropic, true, body.as_bytes());
    assert_eq!(r.unwrap().tool_uses().count(), 2);
}

#[test]
fn every_chunk_boundary_gives_the_same_answer() {
    for (wire, name) in [
        (WireFormat::Anthropic, "anthropic_text_tool_use.sse"),
        (WireFormat::Openai, "openai_tool_calls.sse"),
        (WireFormat::Openai, "openrouter_keepalive_cost.sse"),
    ] {
        let body = fixture(name);
        let whole = parse_split(wire, &body, 0).unwrap();
        for cut in 1..body.len() {
            let r = parse_split(wire, &body, cut).unwrap();
            assert_eq!(r, whole, "{name} split at byte {cut}");
        }
    }
}

proptest::proptest! {
    #[test]
    fn any_chunking_gives_the_same_answer(cuts in proptest::collection::vec(0usize..4000, 0..30)) {
        let body = fixture("openai_tool_calls.sse");
        let whole = parse_split(WireFormat::Openai, &body, 0).unwrap();
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % body.len()).collect();
        cuts.sort_unstable();
        let mut parser = SseParser::new();
        let mut d = openai::StreamDecoder::new(100);
        let mut sink = |_e: StreamEvent| {};
        let mut start = 0;
        for c in cuts.into_iter().chain([body.len()]) {
            for e in parser.push(&body[start..c]) {
                d.feed(&e, &mut sink).unwrap();
            }
            start = c;
        }
        for e in parser.finish() {
            d.feed(&e, &mut sink).unwrap();
        }
        proptest::prop_assert_eq!(d.finish().unwrap(), whole);
    }
}

#[test]
fn anthropic_usage_in_message_delta_is_cumulative_not_added() {
    let (r, _) = parse(
        WireFormat::Anthropic,
        true,
        &fixture("anthropic_cumulative_usage.sse"),
    );
    let u = r.unwrap().usage;
    assert_eq!(u.output_tokens, 57);
    assert_eq!(u.input_tokens, 12);
    assert_eq!(u.cache_write_tokens, 2048);
    assert_eq!(u.cache_read_tokens, 4096);
    assert_eq!(u.total_input(), 12 + 2048 + 4096);
}

#[test]
fn anthropic_error_event_after_200_is_a_retryable_stream_error() {
    let (r, events) = parse(
        WireFormat::Anthropic,
        true,
        &fixture("anthropic_error_after_200.sse"),
    );
    let err = r.unwrap_err();
    match &err {
        LlmError::StreamError { kind, message } => {
            assert_eq!(kind, "overloaded_error");
            assert_eq!(message, "Overloaded");
        }
        other => panic!("expected StreamError, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(events, vec![StreamEvent::TextDelta("Hello".into())]);
}

#[test]
fn truncated_streams_are_retryable_errors() {
    for (wire, name) in [
        (WireFormat::Anthropic, "anthropic_truncated.sse"),
        (WireFormat::Openai, "openai_truncated.sse"),
    ] {
        let (r, _) = parse(wire, true, &fixture(name));
        let err = r.unwrap_err();
        assert!(matches!(err, LlmError::Truncated(_)), "{name}: {err:?}");
        assert!(err.is_retryable());
    }
    // A complete stream cut anywhere before its end marker is truncated, never a short answer.
    let body = fixture("anthropic_text_tool_use.sse");
    let end = body.windows(12).position(|w| w == b"message_stop").unwrap();
    for cut in (0..end).step_by(97) {
        let (r, _) = parse(WireFormat::Anthropic, true, &body[..cut]);
        assert!(
            matches!(r, Err(LlmError::Truncated(_))),
            "cut at {cut}: {r:?}"
        );
    }
}

#[test]
fn anthropic_whole_json_response() {
    let (r, events) = parse(
        WireFormat::Anthropic,
        false,
        &fixture("anthropic_message.json"),
    );
    let r = r.unwrap();
    assert_eq!(r.text(), "I'll run the tests.");
    assert_eq!(
        r.tool_uses().next().unwrap().2,
        &json!({"command": "cargo test"})
    );
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.cache_write_tokens,
            r.usage.cache_read_tokens
        ),
        (2095, 100, 3000)
    );
    assert_eq!(events.len(), 2);
}

#[test]
fn openai_documented_tool_call_stream() {
    let (r, events) = parse(WireFormat::Openai, true, &fixture("openai_tool_calls.sse"));
    let r = r.unwrap();
    let tools: Vec<_> = r.tool_uses().collect();
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].0, "call_DdmO9pD3xa9XTPNJ32zg2hcA");
    assert_eq!(*tools[0].2, json!({"location": "Paris, France"}));
    assert_eq!(*tools[1].2, json!({"location": "Bogotá, Colombia"}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(r.served_model, "gpt-4o-2024-08-06");
    assert_eq!(
        r.request_id.as_deref(),
        Some("chatcmpl-9lvqd5JsQgq2yZ8k6pDn1zCmmXsHk")
    );
    // prompt_tokens includes cached ones.
    assert_eq!(r.usage.input_tokens, 1200 - 1024);
    assert_eq!(r.usage.cache_read_tokens, 1024);
    assert_eq!(r.usage.output_tokens, 48);
    assert_eq!(r.usage.total_input(), 1200);
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolUseStarted {
                id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                name: "get_weather".into()
            },
            StreamEvent::ToolUseStarted {
                id: "call_ABCDEF0123456789".into(),
                name: "get_weather".into()
            },
        ]
    );
}

#[test]
fn openrouter_keepalive_comments_and_reported_cost() {
    let (r, _) = parse(
        WireFormat::Openai,
        true,
        &fixture("openrouter_keepalive_cost.sse"),
    );
    let r = r.unwrap();
    assert_eq!(r.text(), "Hello there!");
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!(r.served_model, "anthropic/claude-3.5-sonnet");
    assert_eq!(r.usage.reported_cost, Some(Usd::from_nanos(123_000)));
    assert_eq!(r.usage.cache_read_tokens, 2000);
    assert_eq!(r.usage.cache_write_tokens, 500);
    assert_eq!(r.usage.input_tokens, 500);
    assert_eq!(r.usage.total_input(), 3000);
}

#[test]
fn ollama_parallel_calls_at_index_zero_are_told_apart_by_id() {
    let (r, _) = parse(
        WireFormat::Openai,
        true,
        &fixture("ollama_parallel_index0.sse"),
    );
    let r = r.unwrap();
    let tools: Vec<_> = r
        .tool_uses()
        .map(|(id, name, input)| (id.to_string(), name.to_string(), input.clone()))
        .collect();
    assert_eq!(
        tools,
        vec![
            (
                "call_a1b2c3d4".into(),
                "read_file".into(),
                json!({"path": "src/main.rs"})
            ),
            (
                "call_e5f6g7h8".into(),
                "list_files".into(),
                json!({"path": "."})
            ),
        ]
    );
    // finish_reason said "stop" but tools were called.
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    // No usage chunk: estimated from sizes.
    assert!(r.usage.estimated);
    assert!(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
}

#[test]
fn finish_reason_stop_with_tool_calls_means_tool_use() {
    let (r, _) = parse(
        WireFormat::Openai,
        true,
        &fixture("stop_with_tool_calls.sse"),
    );
    let r = r.unwrap();
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(r.tool_uses().next().unwrap().2, &json!({"command": "ls"}));
    assert!(!r.usage.estimated);
}

#[test]
fn vllm_usage_chunk_with_null_choices() {
    let (r, _) = parse(
        WireFormat::Openai,
        true,
        &fixture("vllm_usage_choices_null.sse"),
    );
    let r = r.unwrap();
    assert_eq!(r.text(), "All tests pass.");
    assert_eq!(r.usage.input_tokens, 812);
    assert_eq!(r.usage.output_tokens, 6);
    assert!(!r.usage.estimated);
}

#[test]
fn openrouter_error_object_under_200_is_a_stream_error() {
    let (r, _) = parse(
        WireFormat::Openai,
        true,
        &fixture("openrouter_error_after_200.sse"),
    );
    let err = r.unwrap_err();
    assert!(
        matches!(&err, LlmError::StreamError { kind, message } if kind == "server_error" && message.contains("disconnected")),
        "{err:?}"
    );
    assert!(err.is_retryable());
}

#[test]
fn openai_whole_json_keeps_calls_with_invalid_arguments() {
    let (r, _) = parse(
        WireFormat::Openai,
        false,
        &fixture("openai_completion.json"),
    );
    let r = r.unwrap();
    let tools: Vec<_> = r.tool_uses().collect();
    assert_eq!(tools.len(), 2);
    assert_eq!(*tools[0].2, json!({"path": "a.txt", "content": "hi"}));
    assert_eq!(*tools[1].2, json!({"__invalid_json": "{\"command\": \"ls"}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(r.usage.input_tokens, 1117);
}

#[test]
fn invalid_streamed_tool_arguments_are_kept_raw() {
    let body = "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"bash\",\"arguments\":\"{not json\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
    let (r, _) = parse(WireFormat::Openai, true, body.as_bytes());
    let r = r.unwrap();
    assert_eq!(
        r.parts,
        vec![ContentPart::ToolUse {
            id: "c1".into(),
            name: "bash".into(),
            input: json!({"__invalid_json": "{not json"})
        }]
    );
}

#[test]
fn length_finish_is_max_tokens() {
    let body = "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"abc\"},\"finish_reason\":\"length\"}]}\n\n";
    let (r, _) = parse(WireFormat::Openai, true, body.as_bytes());
    // finish_reason without [DONE] still completes the answer.
    assert_eq!(r.unwrap().stop_reason, StopReason::MaxTokens);
}
