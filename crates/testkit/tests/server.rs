//! The request log, the catalog, handler scripts, the script file format, the blocking
//! server and the `testkit-server` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test

mod common;

use common::{anthropic_request, openai_request, post};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use testkit::{CatalogModel, FakeServer, Fault, Reply, Route, Script, Turn};

const EXAMPLE: &str = include_str!("../scripts/example.json");

async fn get(url: &str) -> serde_json::Value {
    reqwest::get(url)
        .await
        .expect("sent")
        .json()
        .await
        .unwrap_or_default()
}

#[tokio::test]
async fn request_log_records_method_path_headers_body_and_model() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("a"), Turn::text("b")])).await;
    post(
        &format!("{}/v1/messages", server.anthropic_base_url()),
        &anthropic_request(true),
    )
    .await;
    post(
        &format!("{}/chat/completions", server.openrouter_base_url()),
        &openai_request("mistralai/mistral-7b-instruct:free", false),
    )
    .await;
    let catalog = get(&format!("{}/models", server.openrouter_base_url())).await;
    assert!(catalog["data"].is_array());

    let requests = server.requests();
    assert_eq!(requests.len(), 2, "model requests only");
    assert_eq!(server.request_count(), 2);
    assert_eq!(server.all_requests().len(), 3);

    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.route, Route::AnthropicMessages);
    assert_eq!(first.model.as_deref(), Some("claude-sonnet-4-5"));
    assert!(first.is_stream());
    assert_eq!(first.header("X-Api-Key"), Some("test-key"));
    assert!(first
        .headers
        .iter()
        .all(|(name, _)| *name == name.to_ascii_lowercase()));
    assert_eq!(first.body["max_tokens"], 1024);

    let second = &requests[1];
    assert_eq!(second.path, "/api/v1/chat/completions");
    assert_eq!(second.route, Route::ChatCompletions);
    assert_eq!(
        second.model.as_deref(),
        Some("mistralai/mistral-7b-instruct:free")
    );
    assert_eq!(second.header("authorization"), Some("Bearer test-key"));
    assert!(!second.is_stream());

    let all = server.all_requests();
    assert_eq!(all[2].method, "GET");
    assert_eq!(all[2].route, Route::Models);
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
}

#[tokio::test]
async fn default_catalog_has_priced_and_free_models_as_decimal_strings() {
    let server = FakeServer::start(Script::turns(vec![])).await;
    let catalog = get(&format!("{}/models", server.openrouter_base_url())).await;
    let models = catalog["data"].as_array().cloned().unwrap_or_default();
    assert!(models.len() >= 3);
    for model in &models {
        assert!(model["id"].is_string() && model["name"].is_string());
        assert!(model["context_length"].as_u64().is_some_and(|n| n > 0));
        for price in ["prompt", "completion"] {
            let text = model["pricing"][price].as_str().unwrap_or("not a string");
            assert!(text.parse::<f64>().is_ok(), "{text}");
        }
    }
    let free = models
        .iter()
        .find(|m| m["id"].as_str().is_some_and(|id| id.ends_with(":free")))
        .cloned()
        .unwrap_or_default();
    assert_eq!(free["pricing"]["prompt"], "0");
    assert_eq!(free["pricing"]["completion"], "0");
    let cached = models
        .iter()
        .find(|m| m["pricing"]["input_cache_read"].is_string())
        .cloned()
        .unwrap_or_default();
    assert!(cached["pricing"]["input_cache_write"].is_string());
    assert_eq!(
        server.request_count(),
        0,
        "a catalog fetch is not a model request"
    );
}

#[tokio::test]
async fn custom_catalog_is_served_under_any_prefix() {
    let script = Script::turns(vec![]).with_catalog(vec![CatalogModel::new(
        "acme/model-x",
        8192,
        "0.000001",
        "0.000002",
    )]);
    let server = FakeServer::start(script).await;
    let catalog = get(&format!("{}/models", server.openai_base_url())).await;
    assert_eq!(
        catalog["data"],
        json!([{"id": "acme/model-x", "name": "acme/model-x", "context_length": 8192,
                "pricing": {"prompt": "0.000001", "completion": "0.000002"},
                "supported_parameters": ["tools", "tool_choice", "max_tokens", "temperature"]}])
    );
}

#[tokio::test]
async fn unknown_route_is_404_and_not_a_model_request() {
    let server = FakeServer::start(Script::turns(vec![Turn::text("unused")])).await;
    let answer = post(&format!("{}/v1/embeddings", server.base_url()), &json!({})).await;
    assert_eq!(answer.status, 404);
    assert!(answer.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("testkit")));
    assert_eq!(server.request_count(), 0);
    assert_eq!(server.turns_left(), 1);
}

#[tokio::test]
async fn handler_script_reacts_to_the_last_tool_result() {
    let script = Script::handler(|request| match request.last_tool_result() {
        Some(result) => Turn::text(format!("the tool said: {result}")),
        None => Turn::tool_call("bash", json!({"command": "echo hi"})),
    });
    let server = FakeServer::start(script).await;
    let url = format!("{}/chat/completions", server.openai_base_url());
    let first = post(&url, &openai_request("m", false)).await.json();
    let call = &first["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "bash");

    let mut followup = openai_request("m", false);
    followup["messages"] = json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "hi\n"},
    ]);
    let second = post(&url, &followup).await.json();
    assert_eq!(
        second["choices"][0]["message"]["content"],
        "the tool said: hi\n"
    );

    let mut anthropic = anthropic_request(false);
    anthropic["messages"] = json!([
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "listing"}]}]},
    ]);
    let third = post(&format!("{}/v1/messages", server.base_url()), &anthropic)
        .await
        .json();
    assert_eq!(third["content"][0]["text"], "the tool said: listing");
    assert_eq!(server.request_count(), 3);
}

#[test]
fn example_script_file_parses_and_round_trips() {
    let script = Script::from_json(EXAMPLE).expect("example parses");
    let text = serde_json::to_string(&script).expect("serializes");
    let again = Script::from_json(&text).expect("parses again");
    assert_eq!(
        serde_json::to_value(&script).expect("value"),
        serde_json::to_value(&again).expect("value")
    );
    let value = serde_json::to_value(&script).expect("value");
    assert_eq!(value["turns"].as_array().map(Vec::len), Some(8));
    assert_eq!(
        value["catalog"][1]["id"],
        "mistralai/mistral-7b-instruct:free"
    );
}

#[test]
fn turns_serialize_in_the_documented_shape() {
    let turns = vec![
        Turn::text("hi"),
        Turn::http_error_retry_after(429, "0"),
        Turn::stall(1, 500),
        Reply::default()
            .with_tool_call("bash", json!({"command": "ls"}))
            .with_cost(0.5)
            .into(),
    ];
    let value = serde_json::to_value(&turns).expect("value");
    assert_eq!(
        value,
        json!([
            {"reply": {"text": "hi"}},
            {"fault": {"kind": "http", "status": 429, "retry_after": "0"}},
            {"fault": {"kind": "stall", "after_events": 1, "ms": 500}},
            {"reply": {"tool_calls": [{"name": "bash", "input": {"command": "ls"}}], "cost": 0.5}},
        ])
    );
    let back: Vec<Turn> = serde_json::from_value(value).expect("back");
    assert_eq!(back, turns);
    // A bare array is a script too.
    let script = Script::from_json(r#"[{"reply": {"text": "x"}}]"#).expect("bare array");
    assert!(format!("{script:?}").contains("\"x\""));
}

#[test]
fn bad_script_is_rejected_with_a_reason() {
    let error = Script::from_json(r#"{"turns": [{"fault": {"kind": "explode"}}]}"#)
        .expect_err("unknown fault kind");
    assert!(error.to_string().contains("explode"), "{error}");
    let error = Script::from_json(r#"{"turns": [{"reply": {"txt": "typo"}}]}"#).expect_err("typo");
    assert!(error.to_string().contains("txt"), "{error}");
    let handler = Script::handler(|_| Turn::text("x"));
    assert!(serde_json::to_string(&handler).is_err());
    assert!(matches!(
        serde_json::from_str::<Turn>(r#"{"fault": {"kind": "cut", "after_events": 2}}"#),
        Ok(Turn::Fault(Fault::Cut(_)))
    ));
}

/// A raw HTTP/1.1 exchange over std's TcpStream (no async runtime needed).
fn raw_post(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn blocking_server_answers_a_synchronous_client() {
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("sync hello")]));
    let body = anthropic_request(false).to_string();
    let answer = raw_post(server.addr(), "/v1/messages", &body);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"));
    assert!(answer.contains("sync hello"));
    assert_eq!(server.request_count(), 1);
    drop(server);
}

#[test]
fn binary_serves_a_script_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("script.json");
    std::fs::write(
        &path,
        r#"{"turns": [{"reply": {"text": "from the binary"}}]}"#,
    )
    .expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_testkit-server"))
        .arg("--script")
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line).expect("line");
    }
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_default()
        .to_string();
    let addr: std::net::SocketAddr = url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert_eq!(addr.ip(), std::net::IpAddr::from([127, 0, 0, 1]));
    let answer = raw_post(
        addr,
        "/v1/chat/completions",
        &openai_request("m", false).to_string(),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("from the binary"));
}

#[test]
fn binary_rejects_a_bad_script_with_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{not json").expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_testkit-server"))
        .arg("--script")
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a valid script"));
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let server = FakeServer::start(Script::turns(vec![])).await;
    let addr = server.addr();
    server.shutdown().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn fault_then_reply_pairs_with_the_clients_retry() {
    let server = FakeServer::start(Script::turns(vec![
        Turn::Fault(Fault::Http(
            testkit::HttpFault::new(503).with_message("no provider"),
        )),
        Reply::text("second try").into(),
    ]))
    .await;
    let url = format!("{}/chat/completions", server.openrouter_base_url());
    let first = post(&url, &openai_request("m", false)).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.json()["error"]["message"], "no provider");
    let second = post(&url, &openai_request("m", false)).await;
    assert_eq!(
        second.json()["choices"][0]["message"]["content"],
        "second try"
    );
}
