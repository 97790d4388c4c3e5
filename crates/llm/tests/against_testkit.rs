//! End to end: `ModelClient` against testkit's scripted fake server, on both wires — one
//! attempt per `send`: what each fault reports (how far the request got, retryable or not),
//! deadlines, quirks, usage, cost and served model. Retrying is the Governor's.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

use llm::{
    AttemptError, ContentPart, Delivery, Endpoint, LlmError, Message, ModelClient, Request,
    Response, StopReason, StreamEvent, Timeouts, ToolSpec, Usd, WireFormat, WireOptions,
};
use serde_json::json;
use std::time::Duration;
use testkit::{FakeServer, HttpFault, Quirks, Reply, Script, Turn, Usage};

fn timeouts() -> Timeouts {
    Timeouts {
        first_byte: Duration::from_secs(10),
        idle: Duration::from_secs(10),
        call: Duration::from_secs(60),
    }
}

fn client(wire: WireFormat, base_url: String, stream: bool, timeouts: Timeouts) -> ModelClient {
    let endpoint = Endpoint {
        wire,
        base_url,
        api_key: Some("test-key".into()),
        extra_headers: Vec::new(),
    };
    let options = WireOptions {
        stream,
        ..WireOptions::default()
    };
    ModelClient::new(endpoint, options, timeouts).expect("client")
}

fn anthropic(server: &FakeServer, stream: bool) -> ModelClient {
    client(
        WireFormat::Anthropic,
        server.anthropic_base_url(),
        stream,
        timeouts(),
    )
}

fn openai(server: &FakeServer, stream: bool) -> ModelClient {
    client(
        WireFormat::Openai,
        server.openai_base_url(),
        stream,
        timeouts(),
    )
}

fn request(model: &str) -> Request {
    Request {
        model: model.into(),
        system: "You are a test.".into(),
        messages: vec![Message::user_text("List the files.")],
        tools: vec![ToolSpec {
            name: "read_file".into(),
            description: "Read a file".into(),
            input_schema: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }],
        max_tokens: 512,
        temperature: None,
    }
}

async fn send(client: &ModelClient, model: &str) -> (Result<Response, LlmError>, Vec<StreamEvent>) {
    let (result, events) = attempt(client, model).await;
    (result.map_err(|f| f.error), events)
}

async fn attempt(
    client: &ModelClient,
    model: &str,
) -> (Result<Response, AttemptError>, Vec<StreamEvent>) {
    let mut events = Vec::new();
    let never = tokio_util::sync::CancellationToken::new();
    let result = client
        .send(&request(model), &never, &mut |e| events.push(e))
        .await;
    (result, events)
}

const WIRES: [WireFormat; 2] = [WireFormat::Anthropic, WireFormat::Openai];

fn for_wire(server: &FakeServer, wire: WireFormat, stream: bool) -> ModelClient {
    match wire {
        WireFormat::Anthropic => anthropic(server, stream),
        WireFormat::Openai => openai(server, stream),
    }
}

#[tokio::test]
async fn text_and_tool_call_round_trip_on_both_wires_streamed_and_not() {
    for wire in WIRES {
        for stream in [true, false] {
            let input = json!({"path": "src/lib.rs"});
            let reply = Reply::text("Reading it.").with_tool_call("read_file", input.clone());
            let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
            let (result, events) = send(&for_wire(&server, wire, stream), "model-a").await;
            let response = result.unwrap_or_else(|e| panic!("{wire:?} stream={stream}: {e}"));
            assert_eq!(response.text(), "Reading it.");
            let calls: Vec<_> = response.tool_uses().collect();
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].1, "read_file");
            assert_eq!(calls[0].2, &input);
            assert_eq!(response.stop_reason, StopReason::ToolUse);
            assert_eq!(response.attempts, 1);
            assert_eq!(response.served_model, "model-a");
            assert!(!response.usage.estimated);
            if stream {
                assert!(events
                    .iter()
                    .any(|e| matches!(e, StreamEvent::TextDelta(_))));
                assert!(events.iter().any(
                    |e| matches!(e, StreamEvent::ToolUseStarted { name, .. } if name == "read_file")
                ));
            }
            let seen = server.requests();
            assert_eq!(seen.len(), 1);
            assert_eq!(seen[0].model.as_deref(), Some("model-a"));
            assert_eq!(seen[0].is_stream(), stream);
        }
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable_refusals() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![
            Turn::http_error_retry_after(429, "0"),
            Turn::http_error(529),
            Turn::http_error(500),
            Turn::text("fourth time"),
        ]))
        .await;
        let c = for_wire(&server, wire, true);
        for status in [429, 529, 500] {
            let (result, events) = attempt(&c, "m").await;
            let f = result.unwrap_err();
            assert!(f.error.is_retryable(), "{wire:?} {status}: {f}");
            assert_eq!(
                f.delivery,
                Delivery::Refused {
                    status,
                    usage: None
                },
                "{wire:?}"
            );
            assert_eq!(
                f.retry_after,
                (status == 429).then_some(Duration::ZERO),
                "{wire:?} {status}"
            );
            assert!(events.is_empty());
        }
        let (result, _) = send(&c, "m").await;
        assert_eq!(result.unwrap().text(), "fourth time");
        assert_eq!(server.request_count(), 4, "one request per send");
    }
}

#[tokio::test]
async fn bad_request_is_a_final_refusal() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![
            Turn::http_error(400),
            Turn::text("never served"),
        ]))
        .await;
        let (result, _) = send(&for_wire(&server, wire, true), "m").await;
        match result {
            Err(e @ LlmError::Http { status: 400, .. }) => assert!(!e.is_retryable()),
            other => panic!("{wire:?}: expected HTTP 400, got {other:?}"),
        }
        assert_eq!(server.request_count(), 1);
        assert_eq!(server.turns_left(), 1);
    }
}

#[tokio::test]
async fn insufficient_credits_is_a_final_spend_limit() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::http_error(402),
        Turn::text("never served"),
    ]))
    .await;
    let client = client(
        WireFormat::Openai,
        server.openrouter_base_url(),
        true,
        timeouts(),
    );
    let (result, _) = send(&client, "vendor/model").await;
    assert!(
        matches!(result, Err(LlmError::SpendLimit { status: 402, .. })),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 1);
    assert_eq!(server.requests()[0].path, "/api/v1/chat/completions");
}

#[tokio::test]
async fn anthropic_spend_limit_429_is_not_retried() {
    let fault = HttpFault::new(429)
        .with_error_type("rate_limit_error")
        .with_message("You have reached your specified API usage limits.");
    let server = FakeServer::start(Script::turns(vec![
        Turn::Fault(testkit::Fault::Http(fault)),
        Turn::text("never served"),
    ]))
    .await;
    let (result, _) = send(&anthropic(&server, true), "m").await;
    assert!(
        matches!(result, Err(LlmError::SpendLimit { .. })),
        "{result:?}"
    );
    assert_eq!(server.request_count(), 1);
}

#[tokio::test]
async fn a_cut_stream_is_torn_with_what_it_reported() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![
            Turn::cut_stream(3),
            Turn::text("complete answer"),
        ]))
        .await;
        let c = for_wire(&server, wire, true);
        let (result, _) = attempt(&c, "m").await;
        let f = result.unwrap_err();
        assert!(f.error.is_retryable(), "{wire:?}: {f}");
        let Delivery::Torn { seen } = &f.delivery else {
            panic!("{wire:?}: {:?}", f.delivery)
        };
        assert_eq!(seen.last, None, "{wire:?}: the generation had not ended");
        assert_eq!(
            seen.input.is_some(),
            wire == WireFormat::Anthropic,
            "{wire:?}: only Anthropic reports input at the start"
        );
        let (result, _) = send(&c, "m").await;
        assert_eq!(result.unwrap().text(), "complete answer");
    }
}

#[tokio::test]
async fn an_error_event_after_200_is_torn_and_retryable() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![Turn::stream_error(2)])).await;
        let (result, _) = attempt(&for_wire(&server, wire, true), "m").await;
        let f = result.unwrap_err();
        assert!(
            matches!(f.error, LlmError::StreamError { .. }),
            "{wire:?}: {f}"
        );
        assert!(f.error.is_retryable());
        assert!(matches!(f.delivery, Delivery::Torn { .. }));
    }
}

#[tokio::test]
async fn a_malformed_event_is_a_retryable_transport_error() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![Turn::malformed_sse(2)])).await;
        let (result, _) = attempt(&for_wire(&server, wire, true), "m").await;
        let f = result.unwrap_err();
        assert!(matches!(f.error, LlmError::Malformed(_)), "{wire:?}: {f}");
        assert!(f.error.is_retryable(), "{wire:?}");
        assert!(matches!(f.delivery, Delivery::Torn { .. }));
    }
}

#[tokio::test]
async fn an_idle_stall_is_an_idle_timeout() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![Turn::stall(1, 20_000)])).await;
        let base = for_wire(&server, wire, true).endpoint.base_url;
        let c = client(
            wire,
            base,
            true,
            Timeouts {
                idle: Duration::from_millis(200),
                ..timeouts()
            },
        );
        let (result, _) = attempt(&c, "m").await;
        let f = result.unwrap_err();
        assert!(
            matches!(f.error, LlmError::IdleTimeout { .. }),
            "{wire:?}: {f}"
        );
        assert!(f.error.is_retryable());
        assert!(matches!(f.delivery, Delivery::Torn { .. }));
    }
}

#[tokio::test]
async fn a_keep_alive_drip_ends_at_the_per_call_deadline() {
    for wire in WIRES {
        // Keep-alives every 20 ms, for ever: the idle timeout never fires.
        let server = FakeServer::start(Script::turns(vec![Turn::drip(1, 20)])).await;
        let base = for_wire(&server, wire, true).endpoint.base_url;
        let c = client(
            wire,
            base,
            true,
            Timeouts {
                idle: Duration::from_secs(30),
                call: Duration::from_millis(400),
                ..timeouts()
            },
        );
        let (result, _) = attempt(&c, "m").await;
        let f = result.unwrap_err();
        assert!(
            matches!(f.error, LlmError::DeadlineExceeded { .. }),
            "{wire:?}: {f}"
        );
        assert!(!f.error.is_retryable(), "a drip would drip again");
        assert!(f.error.to_string().contains("call_timeout_secs"), "{f}");
        assert!(matches!(f.delivery, Delivery::Torn { .. }));
    }
}

#[tokio::test]
async fn no_headers_within_the_first_byte_timeout() {
    for wire in WIRES {
        let server = FakeServer::start(Script::turns(vec![Turn::delay(
            20_000,
            Reply::text("too late"),
        )]))
        .await;
        let base = for_wire(&server, wire, true).endpoint.base_url;
        let c = client(
            wire,
            base,
            true,
            Timeouts {
                first_byte: Duration::from_millis(300),
                ..timeouts()
            },
        );
        let (result, _) = attempt(&c, "m").await;
        let f = result.unwrap_err();
        assert!(
            matches!(f.error, LlmError::FirstByteTimeout { .. }),
            "{wire:?}: {f}"
        );
        assert!(matches!(f.delivery, Delivery::Torn { .. }));
    }
}

#[tokio::test]
async fn a_slow_first_byte_within_the_timeout_is_waited_for() {
    let server = FakeServer::start(Script::turns(vec![Turn::delay(
        300,
        Reply::text("worth the wait"),
    )]))
    .await;
    let (result, _) = send(&anthropic(&server, true), "m").await;
    assert_eq!(result.unwrap().text(), "worth the wait");
}

#[tokio::test]
async fn ollama_parallel_calls_at_index_zero_stay_apart() {
    let reply = Reply::default()
        .with_tool_call("read_file", json!({"path": "a.txt"}))
        .with_tool_call("read_file", json!({"path": "b.txt"}));
    let script = Script::turns(vec![reply.into()]).with_quirks(Quirks {
        ollama_index_zero: true,
        ..Quirks::none()
    });
    let server = FakeServer::start(script).await;
    let (result, _) = send(&openai(&server, true), "qwen2.5-coder:7b").await;
    let response = result.expect("answer");
    let calls: Vec<_> = response.tool_uses().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(calls[0].0, calls[1].0);
    assert_eq!(calls[0].2, &json!({"path": "a.txt"}));
    assert_eq!(calls[1].2, &json!({"path": "b.txt"}));
    assert_eq!(response.stop_reason, StopReason::ToolUse);
}

#[tokio::test]
async fn finish_reason_stop_with_tools_still_means_tool_use() {
    for stream in [true, false] {
        let reply = Reply::default()
            .with_tool_call("read_file", json!({"path": "x"}))
            .with_quirks(Quirks {
                finish_reason_stop_with_tools: true,
                ..Quirks::none()
            });
        let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
        let (result, _) = send(&openai(&server, stream), "m").await;
        let response = result.expect("answer");
        assert_eq!(response.stop_reason, StopReason::ToolUse, "stream={stream}");
        assert_eq!(response.tool_uses().count(), 1);
    }
}

#[tokio::test]
async fn usage_less_stream_is_marked_estimated() {
    let script = Script::turns(vec![Turn::text("no usage here")]).with_quirks(Quirks {
        omit_usage: true,
        ..Quirks::none()
    });
    let server = FakeServer::start(script).await;
    let (result, _) = send(&openai(&server, true), "m").await;
    let response = result.expect("answer");
    assert_eq!(response.text(), "no usage here");
    assert!(response.usage.estimated);
    assert!(response.usage.input_tokens > 0 && response.usage.output_tokens > 0);
}

#[tokio::test]
async fn vllm_null_choices_and_openrouter_keep_alives_are_tolerated() {
    let script = Script::turns(vec![Reply::text("fine")
        .with_usage(Usage::new(11, 7))
        .into()])
    .with_quirks(Quirks {
        usage_choices_null: true,
        keep_alive_comments: true,
        ..Quirks::none()
    });
    let server = FakeServer::start(script).await;
    let (result, _) = send(&openai(&server, true), "m").await;
    let response = result.expect("answer");
    assert_eq!(response.text(), "fine");
    assert_eq!(response.usage.input_tokens, 11);
    assert_eq!(response.usage.output_tokens, 7);
    assert!(!response.usage.estimated);
}

#[tokio::test]
async fn usage_and_cache_figures_are_read_on_both_wires() {
    for wire in WIRES {
        for stream in [true, false] {
            let reply = Reply::text("cached").with_usage(Usage::new(100, 20).with_cache(800, 50));
            let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
            let (result, _) = send(&for_wire(&server, wire, stream), "m").await;
            let usage = result.expect("answer").usage;
            assert_eq!(usage.input_tokens, 100, "{wire:?} stream={stream}");
            assert_eq!(usage.output_tokens, 20);
            assert_eq!(usage.cache_read_tokens, 800);
            assert_eq!(usage.cache_write_tokens, 50);
            assert_eq!(usage.total_input(), 950);
        }
    }
}

#[tokio::test]
async fn openrouter_cost_is_read() {
    for stream in [true, false] {
        let reply = Reply::text("priced").with_cost(0.00123);
        let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
        let client = client(
            WireFormat::Openai,
            server.openrouter_base_url(),
            stream,
            timeouts(),
        );
        let (result, _) = send(&client, "anthropic/claude-sonnet-4.5").await;
        let usage = result.expect("answer").usage;
        assert_eq!(
            usage.reported_cost,
            Some(Usd::parse_decimal("0.00123").expect("usd")),
            "stream={stream}"
        );
    }
}

#[tokio::test]
async fn served_model_is_what_the_server_says() {
    for wire in WIRES {
        let reply = Reply::text("from elsewhere").with_model("some-other-model");
        let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
        let (result, _) = send(&for_wire(&server, wire, true), "pinned-model").await;
        let response = result.expect("answer");
        assert_eq!(response.served_model, "some-other-model");
        assert_eq!(server.requests()[0].model.as_deref(), Some("pinned-model"));
    }
}

#[tokio::test]
async fn request_id_comes_from_the_header() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("hi")])).await;
    let (result, _) = send(&anthropic(&server, true), "m").await;
    let id = result.expect("answer").request_id.unwrap_or_default();
    assert!(id.starts_with("req_testkit_"), "{id}");
}

#[tokio::test]
async fn tool_results_reach_the_server_in_wire_form() {
    for wire in WIRES {
        let script = Script::handler(|req| match req.last_tool_result() {
            Some(result) => Turn::text(format!("saw {result}")),
            None => Turn::tool_call("read_file", json!({"path": "a"})),
        });
        let server = FakeServer::start(script).await;
        let client = for_wire(&server, wire, true);
        let mut req = request("m");
        let first = client
            .send(
                &req,
                &tokio_util::sync::CancellationToken::new(),
                &mut |_| {},
            )
            .await
            .expect("first");
        let (id, _, _) = first.tool_uses().next().expect("a tool call");
        let id = id.to_string();
        req.messages.push(Message::assistant(first.parts.clone()));
        req.messages.push(Message {
            role: llm::Role::User,
            content: vec![ContentPart::ToolResult {
                tool_use_id: id,
                content: "file contents".into(),
                is_error: false,
            }],
        });
        let second = client
            .send(
                &req,
                &tokio_util::sync::CancellationToken::new(),
                &mut |_| {},
            )
            .await
            .expect("second");
        assert_eq!(second.text(), "saw file contents", "{wire:?}");
        assert_eq!(server.request_count(), 2);
    }
}

#[tokio::test]
async fn exhausted_script_fails_the_call_without_retry() {
    let server = FakeServer::start(Script::turns(vec![])).await;
    let (result, _) = send(&openai(&server, true), "m").await;
    match result {
        Err(LlmError::Http {
            status: 400,
            message,
            ..
        }) => {
            assert!(message.contains("testkit script exhausted"), "{message}")
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    assert_eq!(server.request_count(), 1);
}
