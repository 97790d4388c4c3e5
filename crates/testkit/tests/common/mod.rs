//! Helpers shared by the wire tests: a plain HTTP client and an SSE splitter.
#![allow(dead_code, clippy::expect_used)]

use futures::StreamExt;
use serde_json::Value;

/// One SSE item: an event (optional name, data) or a comment.
#[derive(Debug, Clone, PartialEq)]
pub enum Sse {
    Event { name: Option<String>, data: String },
    Comment(String),
}

impl Sse {
    pub fn name(&self) -> Option<&str> {
        match self {
            Sse::Event { name, .. } => name.as_deref(),
            Sse::Comment(_) => None,
        }
    }

    pub fn json(&self) -> Value {
        match self {
            Sse::Event { data, .. } => serde_json::from_str(data).unwrap_or(Value::Null),
            Sse::Comment(_) => Value::Null,
        }
    }

    pub fn data(&self) -> &str {
        match self {
            Sse::Event { data, .. } => data,
            Sse::Comment(_) => "",
        }
    }
}

pub fn parse_sse(text: &str) -> Vec<Sse> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        if block.trim().is_empty() {
            continue;
        }
        let mut name = None;
        let mut data = Vec::new();
        let mut comment = None;
        for line in block.lines() {
            if let Some(rest) = line.strip_prefix(':') {
                comment = Some(rest.trim().to_string());
            } else if let Some(rest) = line.strip_prefix("event: ") {
                name = Some(rest.to_string());
            } else if let Some(rest) = line.strip_prefix("data: ") {
                data.push(rest.to_string());
            }
        }
        if data.is_empty() {
            if let Some(c) = comment {
                out.push(Sse::Comment(c));
            }
        } else {
            out.push(Sse::Event {
                name,
                data: data.join("\n"),
            });
        }
    }
    out
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    /// Set when reading the body failed (e.g. the connection was cut).
    pub body_error: Option<String>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn events(&self) -> Vec<Sse> {
        parse_sse(&self.text)
    }
}

pub async fn post(url: &str, body: &Value) -> Answer {
    let client = reqwest::Client::new();
    let response = client
        .post(url)
        .header("x-api-key", "test-key")
        .header("Authorization", "Bearer test-key")
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let mut stream = response.bytes_stream();
    let mut bytes = Vec::new();
    let mut body_error = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) => {
                body_error = Some(e.to_string());
                break;
            }
        }
    }
    Answer {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        body_error,
    }
}

pub fn anthropic_request(stream: bool) -> Value {
    serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello and list the files."}],
    })
}

pub fn openai_request(model: &str, stream: bool) -> Value {
    serde_json::json!({
        "model": model,
        "max_tokens": 1024,
        "stream": stream,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hello and list the files."}],
    })
}
