//! The OpenAI-compatible Chat Completions wire, with the per-server quirks.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod common;

use common::{openai_request, post, Answer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use testkit::{FakeServer, Quirks, Reply, Script, Turn, Usage};

fn chat_url(base: &str) -> String {
    format!("{base}/chat/completions")
}

/// The JSON chunks of a stream, `[DONE]` excluded, and whether `[DONE]` came last.
fn chunks(answer: &Answer) -> (Vec<Value>, bool) {
    let events = answer.events();
    let done = events.last().map(|e| e.data() == "[DONE]").unwrap_or(false);
    let chunks = events
        .iter()
        .filter(|e| e.data() != "[DONE]")
        .map(|e| e.json())
        .collect();
    (chunks, done)
}

/// Tool-call arguments joined by index, with the id and name of each index's first fragment.
fn join_tool_calls(chunks: &[Value]) -> BTreeMap<u64, (String, String, String)> {
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    for chunk in chunks {
        let Some(deltas) = chunk["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        for delta in deltas {
            let entry = calls
                .entry(delta["index"].as_u64().unwrap_or(99))
                .or_default();
            if let Some(id) = delta["id"].as_str() {
                entry.0 = id.to_string();
            }
            if let Some(name) = delta["function"]["name"].as_str() {
                entry.1 = name.to_string();
            }
            entry
                .2
                .push_str(delta["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    calls
}

#[tokio::test]
async fn stream_sends_role_content_tool_fragments_finish_usage_and_done() {
    let first = json!({"path": "src/main.rs", "offset": 10});
    let second = json!({"pattern": "fn main", "glob": "*.rs"});
    let reply = Reply::text("Let me look around.")
        .with_tool_call("read_file", first.clone())
        .with_tool_call("grep", second.clone())
        .with_usage(Usage::new(100, 40).with_cache(900, 0))
        .with_cost(0.00123);
    let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
    let answer = post(
        &chat_url(&server.openai_base_url()),
        &openai_request("gpt-4.1-mini", true),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert!(answer.body_error.is_none());
    let (chunks, done) = chunks(&answer);
    assert!(done, "the stream ends with [DONE]");
    for chunk in &chunks {
        assert_eq!(chunk["model"], "gpt-4.1-mini");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk["id"].as_str().is_some_and(|id| !id.is_empty()));
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(content.len() >= 2);
    assert_eq!(content.concat(), "Let me look around.");

    let calls = join_tool_calls(&chunks);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[&0].1, "read_file");
    assert_eq!(calls[&1].1, "grep");
    assert_ne!(calls[&0].0, calls[&1].0);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[&0].2).unwrap_or_default(),
        first
    );
    assert_eq!(
        serde_json::from_str::<Value>(&calls[&1].2).unwrap_or_default(),
        second
    );
    // First fragment of a call: id, type, name, empty arguments; later ones only arguments.
    let fragments: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(fragments[0]["type"], "function");
    assert_eq!(fragments[0]["function"]["arguments"], "");
    assert!(fragments[1].get("id").is_none() && fragments[1]["function"].get("name").is_none());

    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    let usage_chunk = &chunks[chunks.len() - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"]["prompt_tokens"], 1000,
        "includes cached tokens"
    );
    assert_eq!(
        usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"],
        900
    );
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 40);
    assert!(usage_chunk["usage"]["cost"].is_number());
    assert_eq!(usage_chunk["usage"]["cost"].as_f64(), Some(0.00123));
}

#[tokio::test]
async fn no_usage_chunk_unless_asked() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("hi")])).await;
    let mut request = openai_request("m", true);
    request.as_object_mut().map(|o| o.remove("stream_options"));
    let answer = post(&chat_url(&server.openai_base_url()), &request).await;
    let (chunks, done) = chunks(&answer);
    assert!(done);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    assert_eq!(
        chunks
            .last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("stop"))
    );
}

#[tokio::test]
async fn ollama_quirk_sends_every_call_whole_at_index_zero() {
    let reply = Reply::default()
        .with_tool_call("read_file", json!({"path": "a.txt"}))
        .with_tool_call("read_file", json!({"path": "b.txt"}));
    let script = Script::turns(vec![reply.into()]).with_quirks(Quirks {
        ollama_index_zero: true,
        ..Quirks::none()
    });
    let server = FakeServer::start(script).await;
    let answer = post(
        &chat_url(&server.openai_base_url()),
        &openai_request("qwen2.5-coder:7b", true),
    )
    .await;
    let (chunks, _) = chunks(&answer);
    let fragments: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    assert_eq!(fragments.len(), 2);
    assert!(fragments.iter().all(|f| f["index"] == 0));
    assert_ne!(fragments[0]["id"], fragments[1]["id"]);
    assert_eq!(fragments[0]["function"]["arguments"], r#"{"path":"a.txt"}"#);
    assert_eq!(fragments[1]["function"]["arguments"], r#"{"path":"b.txt"}"#);
}

#[tokio::test]
async fn per_turn_quirks_stop_with_tools_null_choices_keep_alives() {
    let quirks = Quirks {
        finish_reason_stop_with_tools: true,
        usage_choices_null: true,
        keep_alive_comments: true,
        ..Quirks::none()
    };
    let reply = Reply::default()
        .with_tool_call("bash", json!({"command": "ls"}))
        .with_quirks(quirks);
    let server = FakeServer::start(Script::turns(vec![reply.into(), Turn::text("plain")])).await;
    let url = chat_url(&server.openrouter_base_url());
    let answer = post(&url, &openai_request("vendor/model", true)).await;
    let events = answer.events();
    let comments = events
        .iter()
        .filter(|e| matches!(e, common::Sse::Comment(_)))
        .count();
    assert!(comments >= 2, "{events:?}");
    assert!(answer.text.starts_with(": OPENROUTER PROCESSING"));
    let (chunks, done) = chunks(&answer);
    assert!(done);
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string());
    assert_eq!(
        finish.map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("stop"))
    );
    let usage = chunks
        .iter()
        .find(|c| c.get("usage").is_some())
        .cloned()
        .unwrap_or_default();
    assert!(usage["choices"].is_null());

    // The quirks were for that turn only.
    let plain = post(&url, &openai_request("vendor/model", true)).await;
    assert!(!plain.text.contains("OPENROUTER PROCESSING"));
    let (chunks, _) = self::chunks(&plain);
    assert!(chunks
        .iter()
        .any(|c| c["choices"] == json!([]) && c.get("usage").is_some()));
}

#[tokio::test]
async fn omit_usage_drops_the_usage_chunk_and_field() {
    let script = Script::turns(vec![Turn::text("a"), Turn::text("b")]).with_quirks(Quirks {
        omit_usage: true,
        ..Quirks::none()
    });
    let server = FakeServer::start(script).await;
    let url = chat_url(&server.openai_base_url());
    let streamed = post(&url, &openai_request("m", true)).await;
    let (chunks, done) = chunks(&streamed);
    assert!(done);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
    let whole = post(&url, &openai_request("m", false)).await.json();
    assert!(whole.get("usage").is_none());
    assert_eq!(whole["choices"][0]["message"]["content"], "b");
}

#[tokio::test]
async fn non_streaming_chat_completion() {
    let reply = Reply::default()
        .with_tool_call_id("call_1", "write_file", json!({"path": "x", "content": "y"}))
        .with_usage(Usage::new(10, 5).with_cache(2, 3))
        .with_cost(0.0);
    let server = FakeServer::start(Script::turns(vec![reply.into()])).await;
    let body = post(
        &chat_url(&server.openai_base_url()),
        &openai_request("gpt-4.1", false),
    )
    .await
    .json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4.1");
    let message = &body["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    assert!(message["content"].is_null());
    assert_eq!(message["tool_calls"][0]["id"], "call_1");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "write_file");
    let arguments = message["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap_or_default(),
        json!({"path": "x", "content": "y"})
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(body["usage"]["prompt_tokens"], 15);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cache_write_tokens"],
        3
    );
    assert_eq!(body["usage"]["cost"], json!(0.0));
}

#[tokio::test]
async fn openrouter_error_bodies_402_and_400() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::http_error(402),
        Turn::http_error(400),
    ]))
    .await;
    let url = chat_url(&server.openrouter_base_url());
    let answer = post(&url, &openai_request("x/y", true)).await;
    assert_eq!(answer.status, 402);
    assert_eq!(answer.json()["error"]["code"], 402);
    assert!(answer.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("credits")));
    let answer = post(&url, &openai_request("x/y", false)).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.json()["error"]["code"], 400);
}

#[tokio::test]
async fn error_object_after_200_and_cut_stream() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::stream_error(1),
        Turn::cut_stream(2),
    ]))
    .await;
    let url = chat_url(&server.openai_base_url());
    let answer = post(&url, &openai_request("m", true)).await;
    assert_eq!(answer.status, 200);
    let (chunks, done) = chunks(&answer);
    assert!(!done);
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["error"]["type"], "overloaded_error");
    assert!(chunks[1]["error"]["message"].is_string());

    let cut = post(&url, &openai_request("m", true)).await;
    assert!(cut.body_error.is_some());
    let (chunks, done) = self::chunks(&cut);
    assert!(!done);
    assert_eq!(chunks.len(), 2);
    assert!(chunks
        .iter()
        .all(|c| c["choices"][0]["finish_reason"].is_null()));
}

#[tokio::test]
async fn both_wires_share_one_turn_sequence() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::text("first"),
        Turn::text("second"),
    ]))
    .await;
    let openai = post(
        &chat_url(&server.openai_base_url()),
        &openai_request("m", false),
    )
    .await
    .json();
    assert_eq!(openai["choices"][0]["message"]["content"], "first");
    let anthropic = post(
        &format!("{}/v1/messages", server.anthropic_base_url()),
        &common::anthropic_request(false),
    )
    .await
    .json();
    assert_eq!(anthropic["content"][0]["text"], "second");
    assert_eq!(server.turns_left(), 0);
}
