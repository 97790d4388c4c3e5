//! The Anthropic Messages wire, streaming and not, replies and faults.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod common;

use common::{anthropic_request, post};
use serde_json::json;
use testkit::{FakeServer, Reply, Script, Turn, Usage};

fn messages_url(server: &FakeServer) -> String {
    format!("{}/v1/messages", server.anthropic_base_url())
}

#[tokio::test]
async fn stream_has_the_documented_event_order_and_joinable_fragments() {
    let input = json!({"command": "ls -la", "timeout_secs": 30});
    let reply = Reply::text("Hello there, listing files now.")
        .with_tool_call("bash", input.clone())
        .with_usage(Usage::new(120, 45).with_cache(300, 50));
    let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
    let answer = post(&messages_url(&server), &anthropic_request(true)).await;

    assert_eq!(answer.status, 200);
    assert!(answer.body_error.is_none(), "{:?}", answer.body_error);
    assert!(answer
        .header("request-id")
        .is_some_and(|id| id.starts_with("req_")));
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    let events = answer.events();
    let names: Vec<&str> = events.iter().filter_map(|e| e.name()).collect();
    assert_eq!(names.len(), events.len(), "every event is named");
    assert_eq!(
        &names[..3],
        &["message_start", "ping", "content_block_start"]
    );
    assert_eq!(
        &names[names.len() - 2..],
        &["message_delta", "message_stop"]
    );
    for event in &events {
        assert_eq!(event.json()["type"], event.name().unwrap_or_default());
    }

    let start = events[0].json();
    assert_eq!(start["message"]["model"], "claude-sonnet-4-5");
    assert_eq!(start["message"]["usage"]["input_tokens"], 120);
    assert_eq!(start["message"]["usage"]["cache_read_input_tokens"], 300);
    assert_eq!(start["message"]["usage"]["cache_creation_input_tokens"], 50);
    assert_eq!(start["message"]["usage"]["output_tokens"], 1);

    // Block 0: text in several deltas.
    let text_deltas: Vec<String> = events
        .iter()
        .map(|e| e.json())
        .filter(|j| j["delta"]["type"] == "text_delta")
        .map(|j| j["delta"]["text"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(text_deltas.len() >= 2, "{text_deltas:?}");
    assert_eq!(text_deltas.concat(), "Hello there, listing files now.");

    // Block 1: the tool call, first partial "", partials joining to the input.
    let tool_start = events
        .iter()
        .map(|e| e.json())
        .find(|j| j["content_block"]["type"] == "tool_use")
        .unwrap_or_default();
    assert_eq!(tool_start["index"], 1);
    assert_eq!(tool_start["content_block"]["name"], "bash");
    assert!(tool_start["content_block"]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("toolu_")));
    let partials: Vec<String> = events
        .iter()
        .map(|e| e.json())
        .filter(|j| j["delta"]["type"] == "input_json_delta")
        .map(|j| {
            j["delta"]["partial_json"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert!(partials.len() >= 3);
    assert_eq!(partials[0], "");
    let joined: serde_json::Value = serde_json::from_str(&partials.concat()).unwrap_or_default();
    assert_eq!(joined, input);
    assert_eq!(
        names.iter().filter(|n| **n == "content_block_stop").count(),
        2
    );

    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        delta["usage"]["output_tokens"], 45,
        "cumulative, not an increment"
    );
    assert_eq!(delta["usage"]["input_tokens"], 120);
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 300);
}

#[tokio::test]
async fn non_streaming_reply_is_a_full_message_with_estimated_usage() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("Hello!")])).await;
    let request = anthropic_request(false);
    let answer = post(&messages_url(&server), &request).await;
    assert_eq!(answer.status, 200);
    let body = answer.json();
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["content"], json!([{"type": "text", "text": "Hello!"}]));
    assert_eq!(body["stop_reason"], "end_turn");
    let body_len = server.requests()[0].body_len as u64;
    assert_eq!(body["usage"]["input_tokens"], body_len / 4);
    assert_eq!(body["usage"]["output_tokens"], 1, "6 bytes / 4");
}

#[tokio::test]
async fn tool_call_ids_are_generated_unique_or_kept() {
    let reply = Reply::default()
        .with_tool_call("read_file", json!({"path": "a"}))
        .with_tool_call("read_file", json!({"path": "b"}))
        .with_tool_call_id("toolu_fixed", "grep", json!({"pattern": "x"}));
    let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
    let body = post(&messages_url(&server), &anthropic_request(false))
        .await
        .json();
    let ids: Vec<&str> = body["content"]
        .as_array()
        .map(|c| c.iter().filter_map(|b| b["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids.len(), 3);
    assert_ne!(ids[0], ids[1]);
    assert_eq!(ids[2], "toolu_fixed");
    assert_eq!(body["content"][1]["input"], json!({"path": "b"}));
    assert_eq!(body["stop_reason"], "tool_use");
}

#[tokio::test]
async fn http_faults_carry_status_retry_after_and_anthropic_error_bodies() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::http_error_retry_after(429, "7"),
        Turn::http_error(529),
        Turn::http_error(500),
        Turn::text("recovered"),
    ]))
    .await;
    let url = messages_url(&server);
    let first = post(&url, &anthropic_request(false)).await;
    assert_eq!(first.status, 429);
    assert_eq!(first.header("retry-after").as_deref(), Some("7"));
    assert_eq!(first.json()["type"], "error");
    assert_eq!(first.json()["error"]["type"], "rate_limit_error");
    assert!(first.json()["request_id"].is_string());
    assert!(first.header("request-id").is_some());

    let second = post(&url, &anthropic_request(true)).await;
    assert_eq!(second.status, 529);
    assert_eq!(second.header("retry-after"), None);
    assert_eq!(second.json()["error"]["type"], "overloaded_error");

    let third = post(&url, &anthropic_request(false)).await;
    assert_eq!(third.status, 500);
    assert_eq!(third.json()["error"]["type"], "api_error");

    let fourth = post(&url, &anthropic_request(false)).await;
    assert_eq!(fourth.status, 200);
    assert_eq!(fourth.json()["content"][0]["text"], "recovered");
    assert_eq!(server.request_count(), 4);
}

#[tokio::test]
async fn cut_stream_ends_without_message_stop_or_terminal_chunk() {
    let server = FakeServer::start(Script::turns(vec![Turn::cut_stream(3)])).await;
    let answer = post(&messages_url(&server), &anthropic_request(true)).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body_error.is_some(),
        "the HTTP body must end abnormally"
    );
    let names: Vec<String> = answer
        .events()
        .iter()
        .filter_map(|e| e.name().map(str::to_string))
        .collect();
    assert_eq!(names, vec!["message_start", "ping", "content_block_start"]);
}

#[tokio::test]
async fn cut_non_streaming_body_is_short() {
    let server = FakeServer::start(Script::turns(vec![Turn::cut_stream(0)])).await;
    let answer = post(&messages_url(&server), &anthropic_request(false)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body_error.is_some());
    assert!(serde_json::from_str::<serde_json::Value>(&answer.text).is_err());
}

#[tokio::test]
async fn error_event_after_200_is_an_overloaded_error_event() {
    let server =
        FakeServer::start(Script::turns(vec![Turn::stream_error(2), Turn::text("ok")])).await;
    let answer = post(&messages_url(&server), &anthropic_request(true)).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body_error.is_none());
    let events = answer.events();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].name(), Some("error"));
    assert_eq!(events[2].json()["type"], "error");
    assert_eq!(events[2].json()["error"]["type"], "overloaded_error");
    // The retry gets the next turn.
    let retry = post(&messages_url(&server), &anthropic_request(true)).await;
    assert!(retry
        .events()
        .iter()
        .any(|e| e.name() == Some("message_stop")));
}

#[tokio::test]
async fn malformed_sse_sends_a_data_line_that_is_not_json() {
    let server = FakeServer::start(Script::turns(vec![Turn::malformed_sse(1)])).await;
    let answer = post(&messages_url(&server), &anthropic_request(true)).await;
    let events = answer.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].name(), Some("message_start"));
    assert!(serde_json::from_str::<serde_json::Value>(events[1].data()).is_err());
    assert!(!answer.text.contains("message_stop"));
}

#[tokio::test]
async fn stall_goes_silent_after_the_first_events() {
    use futures::StreamExt;
    let server = FakeServer::start(Script::turns(vec![Turn::stall(1, 30_000)])).await;
    let response = reqwest::Client::new()
        .post(messages_url(&server))
        .json(&anthropic_request(true))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.bytes_stream();
    let first = body.next().await.expect("a first chunk").expect("readable");
    let first = String::from_utf8_lossy(&first).into_owned();
    assert!(first.starts_with("event: message_start"), "{first}");
    // The next chunk is 30 s away; it must not be here within a fraction of that.
    let next = tokio::time::timeout(std::time::Duration::from_millis(300), body.next()).await;
    assert!(
        next.is_err(),
        "the stream should be silent during the stall"
    );
}

#[tokio::test]
async fn short_stall_then_the_whole_reply() {
    let server = FakeServer::start(Script::turns(vec![Turn::stall(2, 50)])).await;
    let answer = post(&messages_url(&server), &anthropic_request(true)).await;
    assert!(answer.body_error.is_none());
    assert!(answer
        .events()
        .iter()
        .any(|e| e.name() == Some("message_stop")));
}

#[tokio::test]
async fn served_model_and_stop_reason_overrides() {
    let reply = Reply::text("truncated")
        .with_model("claude-3-haiku-20240307")
        .with_stop_reason("length");
    let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
    let body = post(&messages_url(&server), &anthropic_request(false))
        .await
        .json();
    assert_eq!(body["model"], "claude-3-haiku-20240307");
    assert_eq!(
        body["stop_reason"], "max_tokens",
        "translated from the OpenAI spelling"
    );
}

#[tokio::test]
async fn exhausted_script_answers_400_naming_the_testkit() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("only one")])).await;
    let url = messages_url(&server);
    assert_eq!(post(&url, &anthropic_request(false)).await.status, 200);
    let answer = post(&url, &anthropic_request(true)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    let message = answer.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(message.contains("testkit script exhausted"), "{message}");
    assert_eq!(server.request_count(), 2);
}
