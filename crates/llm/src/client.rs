//! The one model client: an endpoint, a wire format, retries, streaming, record/replay.
//!
//! [`ModelClient::send`] posts one request and returns the complete answer, retrying transient
//! failures per [`RetryPolicy`]. Text and tool-call starts reach `on_event` as they stream in;
//! when an attempt fails after some text was already shown, that text was real but the answer
//! is taken from the retry alone (callers that display deltas may show a fragment twice).

use crate::anthropic;
use crate::cassette::{
    request_shape, shape_difference, CassetteEntry, CassetteReader, CassetteWriter,
};
use crate::error::LlmError;
use crate::openai;
use crate::retry::{backoff_delay, error_from_http, parse_retry_after};
use crate::sse::{SseEvent, SseParser};
use crate::text_tools::{CallFilter, TextProtocol, ToolProtocol};
use crate::types::{Request, Response, StreamEvent};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Which wire format an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireFormat {
    /// Anthropic Messages (`POST {base}/v1/messages`).
    Anthropic,
    /// OpenAI-compatible Chat Completions (`POST {base}/chat/completions`).
    Openai,
}

/// Where and how to reach a provider.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub wire: WireFormat,
    /// Anthropic: `https://api.anthropic.com` (the client appends `/v1/messages`).
    /// OpenAI-compatible: the API root including `/v1` (`https://api.openai.com/v1`,
    /// `https://openrouter.ai/api/v1`, `http://localhost:11434/v1`); the client appends
    /// `/chat/completions`.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Extra headers (OpenRouter's `HTTP-Referer`, `X-Title`).
    pub extra_headers: Vec<(String, String)>,
}

/// Request-shaping choices made by the Governor.
#[derive(Debug, Clone)]
pub struct WireOptions {
    pub stream: bool,
    /// Anthropic: put `cache_control` breakpoints on tools+system and the newest user turn.
    pub prompt_caching: bool,
    /// OpenRouter: send `provider: {allow_fallbacks: false}` (and never a `models` list).
    pub openrouter_pin: bool,
    /// How tools reach the model: the API's tool calling, or described in the prompt and read
    /// from the answer's text ([`crate::text_tools`]).
    pub tool_protocol: ToolProtocol,
}

impl Default for WireOptions {
    fn default() -> Self {
        WireOptions {
            stream: true,
            prompt_caching: true,
            openrouter_pin: false,
            tool_protocol: ToolProtocol::Native,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A stream that sends nothing (not even a ping/keep-alive) for this long is abandoned.
    pub idle_timeout: Duration,
    /// Time allowed to connect and receive response headers.
    pub connect_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Where answers come from: the network, or a recording.
#[derive(Debug, Clone)]
enum Source {
    Http(reqwest::Client),
    Replay(Arc<CassetteReader>),
}

/// A client for one endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ModelClient {
    pub endpoint: Endpoint,
    pub options: WireOptions,
    pub retry: RetryPolicy,
    source: Source,
    recorder: Option<Arc<CassetteWriter>>,
}

/// One failed attempt and the wait the server asked for, if any.
struct AttemptFailure {
    error: LlmError,
    retry_after: Option<Duration>,
}

impl From<LlmError> for AttemptFailure {
    fn from(error: LlmError) -> Self {
        AttemptFailure {
            error,
            retry_after: None,
        }
    }
}

/// A successful attempt's answer and the raw body it was parsed from.
struct Answer {
    response: Response,
    streamed: bool,
    raw: Vec<u8>,
}

/// What parses a body while it arrives: the SSE parser, the decoder, and where events go.
type LiveStream<'a> = (
    &'a mut SseParser,
    &'a mut Decoder,
    &'a mut (dyn FnMut(StreamEvent) + Send),
);

/// An incremental decoder for either wire format.
enum Decoder {
    Anthropic(anthropic::StreamDecoder),
    Openai(openai::StreamDecoder),
}

impl Decoder {
    fn new(wire: WireFormat, prompt_bytes: usize) -> Decoder {
        match wire {
            WireFormat::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new()),
            WireFormat::Openai => Decoder::Openai(openai::StreamDecoder::new(prompt_bytes)),
        }
    }

    fn feed(
        &mut self,
        ev: &SseEvent,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<(), LlmError> {
        match self {
            Decoder::Anthropic(d) => d.feed(ev, on_event),
            Decoder::Openai(d) => d.feed(ev, on_event),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            Decoder::Anthropic(d) => d.is_done(),
            Decoder::Openai(d) => d.is_done(),
        }
    }

    fn finish(self) -> Result<Response, LlmError> {
        match self {
            Decoder::Anthropic(d) => d.finish(),
            Decoder::Openai(d) => d.finish(),
        }
    }
}

/// Parses a complete response body, exactly as live traffic is parsed: an SSE stream when
/// `streamed`, else one JSON document. Used for replay and by tests.
pub fn parse_response_body(
    wire: WireFormat,
    streamed: bool,
    body: &[u8],
    request: &Request,
    on_event: &mut dyn FnMut(StreamEvent),
) -> Result<Response, LlmError> {
    if !streamed {
        return match wire {
            WireFormat::Anthropic => anthropic::parse_json(body, on_event),
            WireFormat::Openai => openai::parse_json(body, request.approx_bytes(), on_event),
        };
    }
    let mut parser = SseParser::new();
    let mut decoder = Decoder::new(wire, request.approx_bytes());
    let events = parser.push(body).into_iter().chain(parser.finish());
    for ev in events {
        decoder.feed(&ev, on_event)?;
        if decoder.is_done() {
            break;
        }
    }
    decoder.finish()
}

fn header_str(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn transport(e: reqwest::Error) -> LlmError {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    LlmError::Transport(msg)
}

impl ModelClient {
    pub fn new(
        endpoint: Endpoint,
        options: WireOptions,
        retry: RetryPolicy,
    ) -> Result<ModelClient, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(retry.connect_timeout)
            .build()
            .map_err(|e| LlmError::InvalidRequest(format!("cannot build the HTTP client: {e}")))?;
        Ok(ModelClient {
            endpoint,
            options,
            retry,
            source: Source::Http(http),
            recorder: None,
        })
    }

    /// A client that answers from a recording instead of the network. Each `send` takes the
    /// next entry, checks the request's shape against the recorded one and parses the recorded
    /// body with the live parsers.
    pub fn replay(cassette: Arc<CassetteReader>) -> ModelClient {
        let wire = cassette.first_wire().unwrap_or(WireFormat::Openai);
        ModelClient {
            endpoint: Endpoint {
                wire,
                base_url: format!("replay:{}", cassette.source()),
                api_key: None,
                extra_headers: Vec::new(),
            },
            options: WireOptions::default(),
            retry: RetryPolicy::default(),
            source: Source::Replay(cassette),
            recorder: None,
        }
    }

    /// Records every successful response's raw body into `writer` (appended and fsynced).
    pub fn with_recorder(mut self, writer: Arc<CassetteWriter>) -> ModelClient {
        self.recorder = Some(writer);
        self
    }

    /// True when this client plays a recording.
    pub fn is_replay(&self) -> bool {
        matches!(self.source, Source::Replay(_))
    }

    /// Sends `request` (retrying per policy) and returns the complete answer. `on_event` sees
    /// text and tool calls as they stream in, and every retry (before its wait). With the text
    /// tool protocol the request goes out as [`TextProtocol::wire_request`] renders it, and the
    /// answer (and the stream) come back with the calls read from its text.
    pub async fn send(
        &self,
        request: &Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Response, LlmError> {
        let http = match &self.source {
            Source::Replay(cassette) => return replay_one(cassette, request, on_event),
            Source::Http(http) => http,
        };
        let text = (self.options.tool_protocol == ToolProtocol::Text)
            .then(|| TextProtocol::for_request(request));
        let wire_request = text.as_ref().map(|t| t.wire_request(request));
        let mut events = Events::new(text.as_ref(), on_event);
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let sent = wire_request.as_ref().unwrap_or(request);
            match self.attempt(http, sent, &mut |e| events.event(e)).await {
                Ok(answer) => {
                    let mut response = answer.response;
                    response.attempts = attempt;
                    if let Some(recorder) = &self.recorder {
                        recorder.append(&CassetteEntry {
                            wire: self.endpoint.wire,
                            streamed: answer.streamed,
                            status: 200,
                            body: String::from_utf8_lossy(&answer.raw).into_owned(),
                            request_shape: request_shape(request),
                            tool_protocol: self.options.tool_protocol,
                        })?;
                    }
                    events.finish();
                    return Ok(match &text {
                        Some(t) => t.parse_response(response),
                        None => response,
                    });
                }
                Err(failure) => {
                    if !failure.error.is_retryable() {
                        return Err(failure.error);
                    }
                    if attempt >= max_attempts {
                        return Err(LlmError::RetriesExhausted {
                            attempts: attempt,
                            last: Box::new(failure.error),
                        });
                    }
                    let wait = match failure.retry_after {
                        Some(d) => d.min(self.retry.max_delay),
                        None => backoff_delay(&self.retry, attempt, &mut rand::thread_rng()),
                    };
                    events.event(StreamEvent::Retry {
                        attempt,
                        wait_ms: wait.as_millis() as u64,
                        reason: failure.error.to_string(),
                    });
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base_url.trim_end_matches('/'))
    }

    fn authorize(&self, mut rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.endpoint.wire {
            WireFormat::Anthropic => {
                if let Some(key) = &self.endpoint.api_key {
                    rb = rb.header("x-api-key", key);
                }
                rb = rb.header("anthropic-version", anthropic::API_VERSION);
            }
            WireFormat::Openai => {
                // Always send one: Ollama and llama.cpp ignore it but some clients' proxies need it.
                let key = self.endpoint.api_key.as_deref().unwrap_or("no-key");
                rb = rb.bearer_auth(key);
            }
        }
        for (k, v) in &self.endpoint.extra_headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        rb
    }

    /// One HTTP attempt.
    async fn attempt(
        &self,
        http: &reqwest::Client,
        request: &Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Answer, AttemptFailure> {
        let (url, body) = match self.endpoint.wire {
            WireFormat::Anthropic => (
                self.url("/v1/messages"),
                anthropic::request_body(request, &self.options),
            ),
            WireFormat::Openai => (
                self.url("/chat/completions"),
                openai::request_body(request, &self.options, &self.endpoint.base_url),
            ),
        };
        let rb = self
            .authorize(http.post(url))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        let response = match tokio::time::timeout(self.retry.connect_timeout, rb.send()).await {
            Err(_) => {
                return Err(LlmError::Transport(format!(
                    "no response headers within {}s",
                    self.retry.connect_timeout.as_secs()
                ))
                .into())
            }
            Ok(Err(e)) => return Err(transport(e).into()),
            Ok(Ok(r)) => r,
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let header_id =
            header_str(&headers, "request-id").or_else(|| header_str(&headers, "x-request-id"));
        // Trust the content type over what was asked: some servers ignore `stream`.
        let content_type = header_str(&headers, "content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let streamed = if content_type.contains("text/event-stream") {
            true
        } else if content_type.contains("json") {
            false
        } else {
            self.options.stream
        };

        if !(200..300).contains(&status) {
            let raw = self.read_body(response, None).await.unwrap_or_default();
            let retry_after = header_str(&headers, "retry-after-ms")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_millis)
                .or_else(|| {
                    header_str(&headers, "retry-after")
                        .and_then(|v| parse_retry_after(&v, SystemTime::now()))
                });
            return Err(AttemptFailure {
                error: error_from_http(status, &raw, header_id),
                retry_after,
            });
        }

        let mut response_out = if streamed {
            let mut parser = SseParser::new();
            let mut decoder = Decoder::new(self.endpoint.wire, request.approx_bytes());
            let raw = self
                .read_body(response, Some((&mut parser, &mut decoder, &mut *on_event)))
                .await?;
            let mut sink = |e: StreamEvent| on_event(e);
            if !decoder.is_done() {
                for ev in parser.finish() {
                    decoder.feed(&ev, &mut sink)?;
                }
            }
            let resp = decoder.finish()?;
            Answer {
                response: resp,
                streamed: true,
                raw,
            }
        } else {
            let raw = self.read_body(response, None).await?;
            let mut sink = |e: StreamEvent| on_event(e);
            let resp = match self.endpoint.wire {
                WireFormat::Anthropic => anthropic::parse_json(&raw, &mut sink)?,
                WireFormat::Openai => openai::parse_json(&raw, request.approx_bytes(), &mut sink)?,
            };
            Answer {
                response: resp,
                streamed: false,
                raw,
            }
        };
        if header_id.is_some() {
            response_out.response.request_id = header_id;
        }
        Ok(response_out)
    }

    /// Reads a body chunk by chunk, giving up after `idle_timeout` without bytes. When a stream
    /// decoder is given, each chunk is parsed as it arrives, and reading stops at the end marker.
    async fn read_body(
        &self,
        response: reqwest::Response,
        mut stream: Option<LiveStream<'_>>,
    ) -> Result<Vec<u8>, LlmError> {
        let mut raw = Vec::new();
        let mut body = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.retry.idle_timeout, body.next())
                .await
                .map_err(|_| LlmError::IdleTimeout {
                    secs: self.retry.idle_timeout.as_secs(),
                })?;
            let chunk = match next {
                None => break,
                Some(Err(e)) => return Err(transport(e)),
                Some(Ok(chunk)) => chunk,
            };
            raw.extend_from_slice(&chunk);
            if let Some((parser, decoder, on_event)) = stream.as_mut() {
                let mut sink = |e: StreamEvent| on_event(e);
                for ev in parser.push(&chunk) {
                    decoder.feed(&ev, &mut sink)?;
                    if decoder.is_done() {
                        return Ok(raw);
                    }
                }
            }
        }
        Ok(raw)
    }

    /// `GET {base}/models` (Anthropic: `{base}/v1/models`) with the endpoint's authentication:
    /// the provider's model catalogue as JSON (OpenRouter's carries prices).
    pub async fn list_models(&self) -> Result<serde_json::Value, LlmError> {
        let http = match &self.source {
            Source::Http(http) => http,
            Source::Replay(_) => {
                return Err(LlmError::InvalidRequest(
                    "a replay client has no model catalogue; use a live model to list models"
                        .into(),
                ))
            }
        };
        let url = match self.endpoint.wire {
            WireFormat::Anthropic => self.url("/v1/models"),
            WireFormat::Openai => self.url("/models"),
        };
        let response = tokio::time::timeout(
            self.retry.connect_timeout,
            self.authorize(http.get(url)).send(),
        )
        .await
        .map_err(|_| {
            LlmError::Transport(format!(
                "no response headers within {}s",
                self.retry.connect_timeout.as_secs()
            ))
        })?
        .map_err(transport)?;
        let status = response.status().as_u16();
        let header_id = header_str(response.headers(), "request-id")
            .or_else(|| header_str(response.headers(), "x-request-id"));
        let raw = self.read_body(response, None).await?;
        if !(200..300).contains(&status) {
            return Err(error_from_http(status, &raw, header_id));
        }
        serde_json::from_slice(&raw)
            .map_err(|e| LlmError::Malformed(format!("model list is not JSON: {e}")))
    }
}

fn replay_one(
    cassette: &CassetteReader,
    request: &Request,
    on_event: &mut (dyn FnMut(StreamEvent) + Send),
) -> Result<Response, LlmError> {
    let (index, entry) = cassette.take_next()?;
    let shape = request_shape(request);
    if let Some(diff) = shape_difference(&entry.request_shape, &shape) {
        return Err(LlmError::ReplayDiverged(format!(
            "response {} of {}: {diff}",
            index + 1,
            cassette.source()
        )));
    }
    if !(200..300).contains(&entry.status) {
        return Err(error_from_http(entry.status, entry.body.as_bytes(), None));
    }
    let text =
        (entry.tool_protocol == ToolProtocol::Text).then(|| TextProtocol::for_request(request));
    let wire_request = text.as_ref().map(|t| t.wire_request(request));
    let mut events = Events::new(text.as_ref(), on_event);
    let mut response = parse_response_body(
        entry.wire,
        entry.streamed,
        entry.body.as_bytes(),
        wire_request.as_ref().unwrap_or(request),
        &mut |e| events.event(e),
    )?;
    events.finish();
    response.attempts = 1;
    Ok(match &text {
        Some(t) => t.parse_response(response),
        None => response,
    })
}

/// Where a call's stream events go: straight to the caller, or through the text protocol's
/// [`CallFilter`].
struct Events<'a> {
    out: &'a mut (dyn FnMut(StreamEvent) + Send),
    filter: Option<CallFilter>,
}

impl<'a> Events<'a> {
    fn new(
        text: Option<&TextProtocol>,
        out: &'a mut (dyn FnMut(StreamEvent) + Send),
    ) -> Events<'a> {
        Events {
            out,
            filter: text.map(TextProtocol::stream_filter),
        }
    }

    fn event(&mut self, event: StreamEvent) {
        match &mut self.filter {
            Some(filter) => filter.feed(event, &mut *self.out),
            None => (self.out)(event),
        }
    }

    fn finish(&mut self) {
        if let Some(filter) = &mut self.filter {
            filter.finish(&mut *self.out);
        }
    }
}
