//! `ModelClient` against a tiny scripted HTTP server on 127.0.0.1: one attempt each — what a
//! failure reports (how far the request got, the wait asked for), timeouts, cancellation,
//! recording and replay, headers and paths. Retrying is the Governor's (its tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use llm::cassette::{request_shape, CassetteEntry};
use llm::retry::{error_from_http, parse_retry_after};
use llm::{
    AttemptError, CassetteReader, CassetteWriter, ContentPart, Delivery, Endpoint, LlmError,
    Message, ModelClient, Request, StreamEvent, Timeouts, WireFormat, WireOptions,
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

/// Generous limits for servers that answer at once; the tests of timeouts shorten theirs.
fn fast() -> Timeouts {
    Timeouts {
        first_byte: Duration::from_secs(10),
        idle: Duration::from_secs(10),
        call: Duration::from_secs(60),
    }
}

fn client(wire: WireFormat, base: &str, timeouts: Timeouts) -> ModelClient {
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
        timeouts,
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

/// One attempt; the error alone.
async fn send(
    c: &ModelClient,
    req: &Request,
) -> (Result<llm::Response, LlmError>, Vec<StreamEvent>) {
    let (r, events) = attempt(c, req).await;
    (r.map_err(|f| f.error), events)
}

/// One attempt, with how far a failure got.
async fn attempt(
    c: &ModelClient,
    req: &Request,
) -> (Result<llm::Response, AttemptError>, Vec<StreamEvent>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let never = tokio_util::sync::CancellationToken::new();
    let r = c
        .send(req, &never, &mut move |e| sink.lock().unwrap().push(e))
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
    let (r, events) = send(&client(WireFormat::Anthropic, &base, fast()), &request()).await;
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
        fast(),
    )
    .unwrap();
    let (r, _) = send(&c, &request()).await;
    assert_eq!(r.unwrap().text(), "All tests pass.");
    let req = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(req.starts_with("post /v1/chat/completions "), "{req}");
    assert!(req.contains("authorization: bearer no-key"));
}

#[tokio::test]
async fn each_failure_says_how_far_the_request_got() {
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
    let c = client(WireFormat::Anthropic, &base, fast());
    // A refusal: the status, the wait asked for, nothing billed.
    let (r, _) = attempt(&c, &request()).await;
    let f = r.unwrap_err();
    assert!(matches!(f.error, LlmError::Http { status: 529, .. }), "{f}");
    assert!(f.error.is_retryable());
    assert_eq!(
        f.delivery,
        Delivery::Refused {
            status: 529,
            usage: None
        }
    );
    assert_eq!(f.retry_after, Some(Duration::ZERO));
    // An error event after HTTP 200: torn, with the input counts the stream began with.
    let (r, _) = attempt(&c, &request()).await;
    let f = r.unwrap_err();
    assert!(
        matches!(&f.error, LlmError::StreamError { kind, .. } if kind == "overloaded_error"),
        "{f}"
    );
    assert!(f.error.is_retryable());
    match &f.delivery {
        Delivery::Torn { seen } => {
            assert!(seen.input.as_ref().unwrap().input_tokens > 0, "{seen:?}");
            assert_eq!(seen.last, None, "the generation had not ended");
        }
        other => panic!("{other:?}"),
    }
    // And an answer.
    let (r, _) = attempt(&c, &request()).await;
    let r = r.unwrap();
    assert_eq!(r.text(), "Done.");
    assert_eq!(r.attempts, 1);
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_refused_connection_sent_nothing() {
    let c = client(WireFormat::Openai, &testkit::refused_base_url(), fast());
    let (r, _) = attempt(&c, &request()).await;
    let f = r.unwrap_err();
    assert_eq!(f.delivery, Delivery::NotSent, "{f}");
    assert!(matches!(f.error, LlmError::Transport(_)), "{f}");
    assert!(f.error.is_retryable());
}

#[tokio::test]
async fn no_headers_within_the_first_byte_timeout_is_torn() {
    let (base, _) = serve(vec![Reply::Stall(String::new())]).await;
    let c = client(
        WireFormat::Anthropic,
        &base,
        Timeouts {
            first_byte: Duration::from_millis(300),
            ..fast()
        },
    );
    let (r, _) = attempt(&c, &request()).await;
    let f = r.unwrap_err();
    assert!(matches!(f.error, LlmError::FirstByteTimeout { .. }), "{f}");
    assert!(
        f.error.to_string().contains("first_byte_timeout_secs"),
        "{f}"
    );
    assert!(
        matches!(f.delivery, Delivery::Torn { .. }),
        "the request was sent"
    );
}

#[tokio::test]
async fn cancelling_abandons_the_attempt_in_flight() {
    // Headers and the stream's start, then silence far beyond every timeout.
    let (base, seen) = serve(vec![Reply::Stall(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-sonnet-4-5\",\"usage\":{\"input_tokens\":42,\"output_tokens\":1}}}\n\n".into(),
    )])
    .await;
    let c = client(
        WireFormat::Anthropic,
        &base,
        Timeouts {
            idle: Duration::from_secs(3600),
            call: Duration::from_secs(3600),
            ..fast()
        },
    );
    let cancel = tokio_util::sync::CancellationToken::new();
    let req = request();
    let mut ignore = |_: StreamEvent| {};
    let attempt = c.send(&req, &cancel, &mut ignore);
    let press = async {
        while seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Give the client a moment to read the stream's start (it is charged either way).
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    };
    let (r, ()) = tokio::join!(attempt, press);
    let f = r.unwrap_err();
    assert!(matches!(f.error, LlmError::Cancelled), "{f}");
    assert!(!f.error.is_retryable());
    assert!(
        matches!(f.delivery, Delivery::Torn { .. }),
        "{:?}",
        f.delivery
    );
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
        let (r, events) = attempt(&client(WireFormat::Openai, &base, fast()), &request()).await;
        let f = r.unwrap_err();
        assert!(!f.error.is_retryable());
        assert!(matches!(f.delivery, Delivery::Refused { usage: None, .. }));
        match Err::<(), _>(f.error) {
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
        assert_eq!(seen.lock().unwrap().len(), 1);
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
    let c = client(WireFormat::Openai, &base, fast());
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
async fn a_silent_stream_is_an_idle_timeout_and_torn() {
    let (base, _) = serve(vec![
        Reply::Stall(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\nevent: ping\ndata: {\"type\":\"ping\"}\n\n".into(),
        ),
        // Keep-alives reset the idle timer, but these stop too.
        Reply::Stall(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n: OPENROUTER PROCESSING\n\n"
                .into(),
        ),
    ])
    .await;
    let short_idle = Timeouts {
        idle: Duration::from_millis(300),
        ..fast()
    };
    for wire in [WireFormat::Anthropic, WireFormat::Openai] {
        let (r, _) = attempt(&client(wire, &base, short_idle), &request()).await;
        let f = r.unwrap_err();
        assert!(matches!(f.error, LlmError::IdleTimeout { .. }), "{f}");
        assert!(f.error.is_retryable());
        assert!(f.error.to_string().contains("sent nothing"), "{f}");
        assert!(matches!(f.delivery, Delivery::Torn { .. }));
    }
}

#[tokio::test]
async fn a_truncated_stream_is_torn_and_what_it_showed_was_shown() {
    let (base, _) = serve(vec![sse(&fixture("openai_truncated.sse"))]).await;
    let (r, events) = attempt(&client(WireFormat::Openai, &base, fast()), &request()).await;
    let f = r.unwrap_err();
    assert!(matches!(f.error, LlmError::Truncated(_)), "{f}");
    assert!(f.error.is_retryable());
    assert_eq!(
        f.delivery,
        Delivery::Torn {
            seen: Default::default()
        },
        "no usage came before the cut"
    );
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
    let (r, _) = send(&client(WireFormat::Openai, &base, fast()), &request()).await;
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
    let models = client(WireFormat::Openai, &base, fast())
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
    let live = client(WireFormat::Anthropic, &base, fast()).with_recorder(writer);
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
async fn the_wait_a_server_asks_for_is_reported_as_asked() {
    let (base, _) = serve(vec![http(
        "429 Too Many Requests",
        &[("retry-after", "86400")],
        r#"{"error":{"code":429,"message":"Rate limit exceeded: free-models-per-day"}}"#,
    )])
    .await;
    let (r, _) = attempt(&client(WireFormat::Openai, &base, fast()), &request()).await;
    let f = r.unwrap_err();
    assert_eq!(f.retry_after, Some(Duration::from_secs(86_400)));
    assert!(
        f.error.is_retryable(),
        "whether to wait that long is the Governor's call"
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
