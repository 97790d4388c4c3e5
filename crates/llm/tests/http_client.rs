//! `ModelClient` against a tiny scripted HTTP server on 127.0.0.1: retries, errors, idle
//! timeouts, recording and replay, headers and paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm::cassette::{request_shape, CassetteEntry};
use llm::retry::{error_from_http, parse_retry_after};
use llm::{
    CassetteReader, CassetteWriter, ContentPart, Endpoint, LlmError, Message, ModelClient, Request,
    RetryPolicy, StreamEvent, WireFormat, WireOptions,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

enum Reply {
    /// A complete HTTP response; the connection is closed after it.
    Full(String),
    /// Writes this, then holds the connection open without sending anything more.
    Stall(String),
}

fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    Reply::Full(s)
}

fn sse(body: &str) -> Reply {
    http("200 OK", &[("content-type", "text/event-stream")], body)
}

/// Serves `replies` in order, one per connection; returns the base URL and the requests seen.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for reply in replies {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then the body by content-length.
            loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf).to_string());
            match reply {
                Reply::Full(s) => {
                    let _ = sock.write_all(s.as_bytes()).await;
                    let _ = sock.shutdown().await;
                }
                Reply::Stall(s) => {
                    let _ = sock.write_all(s.as_bytes()).await;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(sock);
                    });
                }
            }
        }
    });
    (format!("http://{addr}"), seen)
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        idle_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(5),
    }
}

fn client(wire: WireFormat, base: &str, retry: RetryPolicy) -> ModelClient {
    let base_url = match wire {
        WireFormat::Anthropic => base.to_string(),
        WireFormat::Openai => format!("{base}/v1"),
    };
    ModelClient::new(
        Endpoint {
            wire,
            base_url,
            api_key: Some("sk-test".into()),
            extra_headers: vec![("X-Title".into(), "loopwright".into())],
        },
        WireOptions::default(),
        retry,
    )
    .unwrap()
}

fn request() -> Request {
    Request {
        model: "claude-sonnet-4-5".into(),
        system: "s".into(),
        messages: vec![Message::user_text("hi")],
        tools: vec![],
        max_tokens: 100,
        temperature: None,
    }
}

async fn send(
    c: &ModelClient,
    req: &Request,
) -> (Result<llm::Response, LlmError>, Vec<StreamEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let r = c
        .send(req, &mut move |e| sink.lock().unwrap().push(e))
        .await;
    let events = events.lock().unwrap().clone();
    (r, events)
}

#[tokio::test]
async fn anthropic_headers_path_and_streamed_answer() {
    let (base, seen) = serve(vec![http(
        "200 OK",
        &[
            ("content-type", "text/event-stream"),
            ("request-id", "req_123"),
        ],
        &fixture("anthropic_text_tool_use.sse"),
    )])
    .await;
    let (r, events) = send(
        &client(WireFormat::Anthropic, &base, fast_retry(3)),
        &request(),
    )
    .await;
    let r = r.unwrap();
    assert_eq!(r.attempts, 1);
    assert_eq!(r.request_id.as_deref(), Some("req_123"));
    assert_eq!(r.tool_uses().count(), 2);
    assert!(events
        .iter()
        .any(|e| matches!(e, StreamEvent::TextDelta(_))));
    let req = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(req.starts_with("post /v1/messages "), "{req}");
    assert!(req.contains("x-api-key: sk-test"));
    assert!(req.contains("anthropic-version: 2023-06-01"));
    assert!(req.contains("content-type: application/json"));
    assert!(req.contains("x-title: loopwright"));
}

#[tokio::test]
async fn openai_sends_a_bearer_even_without_a_key() {
    let (base, seen) = serve(vec![sse(&fixture("vllm_usage_choices_null.sse"))]).await;
    let c = ModelClient::new(
        Endpoint {
            wire: WireFormat::Openai,
            base_url: format!("{base}/v1/"),
            api_key: None,
            extra_headers: vec![],
        },
        WireOptions::default(),
        fast_retry(1),
    )
    .unwrap();
    let (r, _) = send(&c, &request()).await;
    assert_eq!(r.unwrap().text(), "All tests pass.");
    let req = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(req.starts_with("post /v1/chat/completions "), "{req}");
    assert!(req.contains("authorization: bearer no-key"));
}

#[tokio::test]
async fn overloaded_then_success_retries_and_reports_the_retry() {
    let (base, seen) = serve(vec![
        http(
            "529 Overloaded",
            &[("content-type", "application/json"), ("retry-after", "0")],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_x"}"#,
        ),
        sse(&fixture("anthropic_error_after_200.sse")),
        sse(&fixture("anthropic_cumulative_usage.sse")),
    ])
    .await;
    let (r, events) = send(
        &client(WireFormat::Anthropic, &base, fast_retry(5)),
        &request(),
    )
    .await;
    let r = r.unwrap();
    assert_eq!(r.attempts, 3);
    assert_eq!(r.text(), "Done.");
    assert_eq!(seen.lock().unwrap().len(), 3);
    let retries: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retry {
                attempt,
                wait_ms,
                reason,
            } => Some((*attempt, *wait_ms, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!((retries[0].0, retries[0].1), (1, 0)); // retry-after: 0 honoured
    assert!(retries[0].2.contains("529"));
    assert_eq!(retries[1].0, 2);
    assert!(retries[1].2.contains("overloaded_error"));
}

#[tokio::test]
async fn client_errors_are_never_retried() {
    for status in [
        "400 Bad Request",
        "401 Unauthorized",
        "403 Forbidden",
        "404 Not Found",
        "413 Payload Too Large",
    ] {
        let (base, seen) = serve(vec![
            http(
                status,
                &[("content-type", "application/json")],
                r#"{"error":{"message":"nope","type":"invalid_request_error","code":null}}"#,
            ),
            sse(&fixture("vllm_usage_choices_null.sse")),
        ])
        .await;
        let (r, events) = send(
            &client(WireFormat::Openai, &base, fast_retry(5)),
            &request(),
        )
        .await;
        match r {
            Err(LlmError::Http {
                status: s,
                kind,
                message,
                ..
            }) => {
                assert_eq!(s.to_string(), status[..3]);
                assert_eq!(kind, "invalid_request_error");
                assert_eq!(message, "nope");
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "{status} must not be retried"
        );
        assert!(events.is_empty());
    }
}

#[tokio::test]
async fn spend_limits_are_final() {
    let (base, seen) = serve(vec![
        http("402 Payment Required", &[], r#"{"error":{"code":402,"message":"Insufficient credits. Add more using https://openrouter.ai/credits"}}"#),
        http(
            "429 Too Many Requests",
            &[],
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your spend limit for this workspace."}}"#,
        ),
    ])
    .await;
    let c = client(WireFormat::Openai, &base, fast_retry(5));
    let (r, _) = send(&c, &request()).await;
    assert!(
        matches!(r, Err(LlmError::SpendLimit { status: 402, .. })),
        "{r:?}"
    );
    let (r, _) = send(&c, &request()).await;
    assert!(
        matches!(r, Err(LlmError::SpendLimit { status: 429, .. })),
        "{r:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn attempts_are_bounded_and_the_last_error_kept() {
    let replies = (0..3)
        .map(|_| {
            http(
                "503 Service Unavailable",
                &[],
                r#"{"error":{"code":503,"message":"No instances available"}}"#,
            )
        })
        .collect();
    let (base, seen) = serve(replies).await;
    let (r, events) = send(
        &client(WireFormat::Openai, &base, fast_retry(3)),
        &request(),
    )
    .await;
    match r {
        Err(LlmError::RetriesExhausted { attempts, last }) => {
            assert_eq!(attempts, 3);
            assert!(matches!(*last, LlmError::Http { status: 503, .. }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, StreamEvent::Retry { .. }))
            .count(),
        2
    );
}

#[tokio::test]
async fn a_silent_stream_times_out_and_is_retried() {
    let (base, seen) = serve(vec![
        Reply::Stall(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: ping\ndata: {\"type\":\"ping\"}\n\n".into(),
        ),
        sse(&fixture("anthropic_cumulative_usage.sse")),
    ])
    .await;
    let (r, events) = send(
        &client(WireFormat::Anthropic, &base, fast_retry(2)),
        &request(),
    )
    .await;
    assert_eq!(r.unwrap().attempts, 2);
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(
        matches!(&events[0], StreamEvent::Retry { reason, .. } if reason.contains("sent nothing"))
    );
}

#[tokio::test]
async fn idle_timeout_alone_exhausts_attempts() {
    let (base, _) = serve(vec![Reply::Stall(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n: OPENROUTER PROCESSING\n\n"
            .into(),
    )])
    .await;
    let (r, _) = send(
        &client(WireFormat::Openai, &base, fast_retry(1)),
        &request(),
    )
    .await;
    match r {
        Err(LlmError::RetriesExhausted { attempts: 1, last }) => {
            assert!(matches!(*last, LlmError::IdleTimeout { .. }), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_truncated_stream_is_retried() {
    let (base, seen) = serve(vec![
        sse(&fixture("openai_truncated.sse")),
        sse(&fixture("openrouter_keepalive_cost.sse")),
    ])
    .await;
    let (r, events) = send(
        &client(WireFormat::Openai, &base, fast_retry(3)),
        &request(),
    )
    .await;
    let r = r.unwrap();
    assert_eq!(r.attempts, 2);
    assert_eq!(r.text(), "Hello there!");
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Text shown before the failed attempt ended is still reported; the answer is the retry's.
    assert_eq!(events[0], StreamEvent::TextDelta("Let me".into()));
}

#[tokio::test]
async fn a_server_that_ignores_stream_gets_its_json_parsed() {
    let (base, _) = serve(vec![http(
        "200 OK",
        &[("content-type", "application/json")],
        &fixture("openai_completion.json"),
    )])
    .await;
    let (r, _) = send(
        &client(WireFormat::Openai, &base, fast_retry(1)),
        &request(),
    )
    .await;
    assert_eq!(r.unwrap().tool_uses().count(), 2);
}

#[tokio::test]
async fn list_models_uses_the_same_auth() {
    let (base, seen) = serve(vec![http(
        "200 OK",
        &[("content-type", "application/json")],
        r#"{"data":[{"id":"mistralai/mistral-7b-instruct:free","pricing":{"prompt":"0","completion":"0"}}]}"#,
    )])
    .await;
    let models = client(WireFormat::Openai, &base, fast_retry(1))
        .list_models()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["pricing"]["prompt"], "0");
    let req = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(req.starts_with("get /v1/models "), "{req}");
    assert!(req.contains("authorization: bearer sk-test"));
}

#[tokio::test]
async fn record_then_replay_gives_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session.jsonl");
    let (base, _) = serve(vec![
        sse(&fixture("anthropic_text_tool_use.sse")),
        http(
            "200 OK",
            &[("content-type", "application/json")],
            &fixture("anthropic_message.json"),
        ),
    ])
    .await;
    let writer = Arc::new(CassetteWriter::open(&path).unwrap());
    let live = client(WireFormat::Anthropic, &base, fast_retry(1)).with_recorder(writer);
    let first = request();
    let (a1, _) = send(&live, &first).await;
    let a1 = a1.unwrap();
    let mut second = first.clone();
    second.messages.push(Message::assistant(a1.parts.clone()));
    second.messages.push(Message {
        role: llm::Role::User,
        content: vec![ContentPart::ToolResult {
            tool_use_id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            content: "sunny".into(),
            is_error: false,
        }],
    });
    let (a2, _) = send(&live, &second).await;
    let a2 = a2.unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<CassetteEntry> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].streamed && !lines[1].streamed);
    assert_eq!(lines[0].body, fixture("anthropic_text_tool_use.sse"));
    assert_eq!(lines[1].request_shape, request_shape(&second));
    assert!(
        !text.contains("sunny"),
        "the request's text is not recorded"
    );

    let replay = ModelClient::replay(Arc::new(CassetteReader::open(&path).unwrap()));
    // Different text, same structure: still matches.
    let mut varied = first.clone();
    varied.messages[0] = Message::user_text("something else entirely");
    let (r1, events) = send(&replay, &varied).await;
    let r1 = r1.unwrap();
    assert_eq!(r1.parts, a1.parts);
    assert_eq!(r1.usage, a1.usage);
    assert!(events
        .iter()
        .any(|e| matches!(e, StreamEvent::ToolUseStarted { .. })));
    let (r2, _) = send(&replay, &second).await;
    assert_eq!(r2.unwrap().parts, a2.parts);
    let (r3, _) = send(&replay, &second).await;
    assert!(
        matches!(r3, Err(LlmError::ReplayExhausted { used: 2 })),
        "{r3:?}"
    );
}

#[tokio::test]
async fn replay_divergence_says_what_differs() {
    let req = request();
    let entry = CassetteEntry {
        wire: WireFormat::Openai,
        streamed: true,
        status: 200,
        body: fixture("vllm_usage_choices_null.sse"),
        request_shape: request_shape(&req),
        tool_protocol: llm::ToolProtocol::Native,
    };
    let replay = ModelClient::replay(Arc::new(CassetteReader::from_entries(vec![
        entry.clone(),
        entry,
    ])));
    let mut other = req.clone();
    other.messages[0].content.push(ContentPart::ToolResult {
        tool_use_id: "x".into(),
        content: "y".into(),
        is_error: false,
    });
    let (r, _) = send(&replay, &other).await;
    match r {
        Err(LlmError::ReplayDiverged(msg)) => {
            assert!(msg.contains("message 0"), "{msg}");
            assert!(
                msg.contains("user[text]") && msg.contains("user[text, tool_result]"),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut longer = req.clone();
    longer
        .messages
        .push(Message::assistant(vec![ContentPart::Text {
            text: "x".into(),
        }]));
    let (r, _) = send(&replay, &longer).await;
    assert!(
        matches!(r, Err(LlmError::ReplayDiverged(m)) if m.contains("1 messages but this run sent 2"))
    );
}

#[test]
fn a_broken_cassette_line_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.jsonl");
    std::fs::write(&path, "{\"wire\":\"openai\"}\n").unwrap();
    let err = CassetteReader::open(&path).unwrap_err();
    assert!(
        matches!(&err, LlmError::Cassette { message, .. } if message.contains("line 1")),
        "{err}"
    );
}

#[test]
fn retry_after_seconds_dates_and_garbage() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
    assert_eq!(
        parse_retry_after(" 1.5 ", now),
        Some(Duration::from_millis(1500))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
    assert_eq!(
        parse_retry_after(&later, now),
        Some(Duration::from_secs(30))
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
    assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
    assert_eq!(parse_retry_after("soon", now), None);
    assert_eq!(parse_retry_after("-3", now), None);
}

#[tokio::test]
async fn retry_after_is_capped_at_max_delay() {
    let (base, _) = serve(vec![
        http(
            "429 Too Many Requests",
            &[("retry-after", "3600")],
            r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#,
        ),
        sse(&fixture("vllm_usage_choices_null.sse")),
    ])
    .await;
    let (r, events) = send(
        &client(WireFormat::Openai, &base, fast_retry(2)),
        &request(),
    )
    .await;
    assert_eq!(r.unwrap().attempts, 2);
    assert!(
        matches!(events[0], StreamEvent::Retry { wait_ms: 5, .. }),
        "{:?}",
        events[0]
    );
}

#[test]
fn error_bodies_of_both_formats() {
    let e = error_from_http(
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#,
        None,
    );
    assert!(
        matches!(&e, LlmError::Http { status: 529, kind, message, request_id: Some(id) }
            if kind == "overloaded_error" && message == "Overloaded" && id == "req_011"),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let e = error_from_http(
        400,
        br#"{"error":{"message":"Invalid 'messages'","type":"invalid_request_error","param":"messages","code":null}}"#,
        Some("hdr".into()),
    );
    assert!(
        matches!(&e, LlmError::Http { status: 400, kind, request_id: Some(id), .. } if kind == "invalid_request_error" && id == "hdr")
    );
    assert!(!e.is_retryable());
    let e = error_from_http(
        503,
        br#"{"error":{"code":503,"message":"No endpoints found"}}"#,
        None,
    );
    assert!(matches!(&e, LlmError::Http { kind, .. } if kind == "503"));
    let e = error_from_http(
        404,
        br#"{"error":"model \"qwen9\" not found, try pulling it first"}"#,
        None,
    );
    assert!(matches!(&e, LlmError::Http { message, .. } if message.contains("try pulling")));
    let e = error_from_http(502, b"<html>Bad Gateway</html>", None);
    assert!(matches!(&e, LlmError::Http { message, .. } if message.contains("Bad Gateway")));
    let e = error_from_http(
        429,
        br#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        None,
    );
    assert!(matches!(e, LlmError::SpendLimit { status: 429, .. }));
    let e = error_from_http(429, br#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#, None);
    assert!(matches!(e, LlmError::Http { status: 429, .. }));
    assert!(e.is_retryable());
}
