//! The one model client: an endpoint, a wire format, streaming, deadlines, record/replay.
//!
//! [`ModelClient::send`] makes one attempt and returns the complete answer, or an
//! [`AttemptError`] saying how far the request got ([`Delivery`]): the Governor decides whether
//! to retry and what the attempt cost, and records every attempt in its ledger. Text and
//! tool-call starts reach `on_event` as they stream in; when an attempt fails after some text
//! was already shown, that text was real but a retry's answer replaces it (callers that display
//! deltas may show a fragment twice).

use crate::anthropic;
use crate::cassette::{
    request_shape, shape_difference, CassetteEntry, CassetteReader, CassetteWriter,
};
use crate::error::LlmError;
use crate::openai;
use crate::retry::{error_from_http, parse_retry_after, usage_in_error_body};
use crate::sse::{SseEvent, SseParser};
use crate::text_tools::{CallFilter, TextProtocol, ToolProtocol};
use crate::types::{Request, Response, SeenUsage, StreamEvent, Usage};
use futures::StreamExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

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

/// How long one attempt may take, stage by stage. Each is configurable per provider
/// (`[providers.NAME] first_byte_timeout_secs`, `idle_timeout_secs`, `call_timeout_secs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From sending the request to the response headers. A local server reads the whole prompt
    /// before it answers (llama.cpp on a CPU: about 40 tokens a second), so it needs long.
    pub first_byte: Duration,
    /// The longest silence between two pieces of the body; keep-alive comments count.
    pub idle: Duration,
    /// The whole attempt, from sending to the last byte: this is what ends a stream that only
    /// ever sends keep-alives.
    pub call: Duration,
}

impl Timeouts {
    /// Remote APIs: headers within 60 s, no silence over 120 s, at most 10 minutes a call.
    pub const REMOTE: Timeouts = Timeouts {
        first_byte: Duration::from_secs(60),
        idle: Duration::from_secs(120),
        call: Duration::from_secs(600),
    };
    /// Servers on this machine (Ollama, llama.cpp, vLLM): 10 minutes to read a prompt, 5
    /// minutes of silence, 30 minutes a call.
    pub const LOCAL: Timeouts = Timeouts {
        first_byte: Duration::from_secs(600),
        idle: Duration::from_secs(300),
        call: Duration::from_secs(1800),
    };

    /// The time allowed to open the connection (part of the first-byte time): at most 30 s.
    fn connect(&self) -> Duration {
        self.first_byte.min(Duration::from_secs(30))
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::REMOTE
    }
}

/// How far a failed attempt got, which decides what it may have cost.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Nothing reached the provider: the connection could not be opened (refused, DNS, TLS,
    /// connect timeout), the request could not be built, or it was a replay.
    NotSent,
    /// The provider refused with an HTTP error status; `usage` is what its body says was used
    /// (almost always nothing).
    Refused { status: u16, usage: Option<Usage> },
    /// The request was sent and no complete answer came back: a stream cut after HTTP 200, a
    /// timeout, a malformed event, an error event after HTTP 200, a cancellation, an answer that
    /// could not be recorded. `seen` is what the answer had reported before it broke.
    Torn { seen: SeenUsage },
}

/// One failed attempt: the error, how far the request got, and the wait the server asked for.
#[derive(Debug)]
pub struct AttemptError {
    pub error: LlmError,
    pub delivery: Delivery,
    pub retry_after: Option<Duration>,
}

impl AttemptError {
    fn not_sent(error: LlmError) -> AttemptError {
        AttemptError {
            error,
            delivery: Delivery::NotSent,
            retry_after: None,
        }
    }

    fn torn(error: LlmError, seen: &SeenUsage) -> AttemptError {
        AttemptError {
            error,
            delivery: Delivery::Torn { seen: seen.clone() },
            retry_after: None,
        }
    }
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
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
    pub timeouts: Timeouts,
    source: Source,
    recorder: Option<Arc<CassetteWriter>>,
}

/// A successful attempt's answer and the raw body it was parsed from.
struct Answer {
    response: Response,
    streamed: bool,
    raw: Vec<u8>,
}

/// What parses a body while it arrives: the SSE parser, the decoder, where events go, and
/// where what the stream reported so far is kept.
type LiveStream<'a> = (
    &'a mut SseParser,
    &'a mut Decoder,
    &'a mut (dyn FnMut(StreamEvent) + Send),
    &'a mut SeenUsage,
);

/// What ended an attempt from outside it.
enum Interrupt {
    Cancelled,
    Deadline,
}

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

    fn seen(&self) -> SeenUsage {
        match self {
            Decoder::Anthropic(d) => d.seen(),
            Decoder::Openai(d) => d.seen(),
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

/// A transport failure as an attempt error: a failure to connect (refused, DNS, TLS, connect
/// timeout) sent nothing; any other may have left after the request was written.
fn transport_failure(e: reqwest::Error, seen: &SeenUsage) -> AttemptError {
    let connect = e.is_connect();
    let error = transport(e);
    if connect {
        AttemptError::not_sent(error)
    } else {
        AttemptError::torn(error, seen)
    }
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
        timeouts: Timeouts,
    ) -> Result<ModelClient, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect())
            .build()
            .map_err(|e| LlmError::InvalidRequest(format!("cannot build the HTTP client: {e}")))?;
        Ok(ModelClient {
            endpoint,
            options,
            timeouts,
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
            timeouts: Timeouts::LOCAL,
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

    /// Makes one attempt at `request` and returns the complete answer. `on_event` sees text and
    /// tool calls as they stream in. The attempt ends early, as torn, when `cancel` fires or
    /// the per-call deadline passes; the first-byte and idle timeouts end it too. With the text
    /// tool protocol the request goes out as [`TextProtocol::wire_request`] renders it, and the
    /// answer (and the stream) come back with the calls read from its text.
    pub async fn send(
        &self,
        request: &Request,
        cancel: &CancellationToken,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
    ) -> Result<Response, AttemptError> {
        let http = match &self.source {
            Source::Replay(cassette) => {
                return replay_one(cassette, request, on_event).map_err(AttemptError::not_sent)
            }
            Source::Http(http) => http,
        };
        let text = (self.options.tool_protocol == ToolProtocol::Text)
            .then(|| TextProtocol::for_request(request));
        let wire_request = text.as_ref().map(|t| t.wire_request(request));
        let sent = wire_request.as_ref().unwrap_or(request);
        let mut events = Events::new(text.as_ref(), on_event);
        let mut seen = SeenUsage::default();
        let ended = {
            let mut sink = |e: StreamEvent| events.event(e);
            let attempt = self.attempt(http, sent, &mut sink, &mut seen);
            tokio::pin!(attempt);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => Err(Interrupt::Cancelled),
                _ = tokio::time::sleep(self.timeouts.call) => Err(Interrupt::Deadline),
                result = &mut attempt => Ok(result),
            }
        };
        let answer = match ended {
            Ok(result) => result?,
            Err(Interrupt::Cancelled) => {
                return Err(AttemptError::torn(LlmError::Cancelled, &seen))
            }
            Err(Interrupt::Deadline) => {
                return Err(AttemptError::torn(
                    LlmError::DeadlineExceeded {
                        secs: self.timeouts.call.as_secs(),
                    },
                    &seen,
                ))
            }
        };
        if let Some(recorder) = &self.recorder {
            let recorded = recorder.append(&CassetteEntry {
                wire: self.endpoint.wire,
                streamed: answer.streamed,
                status: 200,
                body: String::from_utf8_lossy(&answer.raw).into_owned(),
                request_shape: request_shape(request),
                tool_protocol: self.options.tool_protocol,
            });
            if let Err(error) = recorded {
                // The answer came (and was billed) but the run cannot keep its promise to
                // record it: charge what it reported, and stop.
                let seen = SeenUsage {
                    input: None,
                    last: Some(answer.response.usage.clone()),
                };
                return Err(AttemptError::torn(error, &seen));
            }
        }
        events.finish();
        Ok(match &text {
            Some(t) => t.parse_response(answer.response),
            None => answer.response,
        })
    }

    /// Bytes of text `request` puts on the wire: more than [`Request::approx_bytes`] with the
    /// text tool protocol, which describes the tools in the system prompt and renders past calls
    /// and results as text. The Governor bounds a call's input with it.
    pub fn wire_bytes(&self, request: &Request) -> usize {
        match self.options.tool_protocol {
            ToolProtocol::Text if !self.is_replay() => TextProtocol::for_request(request)
                .wire_request(request)
                .approx_bytes(),
            _ => request.approx_bytes(),
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

    /// One HTTP attempt, without the per-call deadline and cancellation (see `send`). `seen`
    /// follows what the stream reports, for the charge of an attempt that breaks.
    async fn attempt(
        &self,
        http: &reqwest::Client,
        request: &Request,
        on_event: &mut (dyn FnMut(StreamEvent) + Send),
        seen: &mut SeenUsage,
    ) -> Result<Answer, AttemptError> {
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
        let response = match tokio::time::timeout(self.timeouts.first_byte, rb.send()).await {
            Err(_) => {
                let error = LlmError::FirstByteTimeout {
                    secs: self.timeouts.first_byte.as_secs(),
                };
                return Err(AttemptError::torn(error, seen));
            }
            Ok(Err(e)) => return Err(transport_failure(e, seen)),
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
            return Err(AttemptError {
                error: error_from_http(status, &raw, header_id),
                delivery: Delivery::Refused {
                    status,
                    usage: usage_in_error_body(self.endpoint.wire, &raw),
                },
                retry_after,
            });
        }

        let torn = |error: LlmError, seen: &SeenUsage| AttemptError::torn(error, seen);
        let mut answer = if streamed {
            let mut parser = SseParser::new();
            let mut decoder = Decoder::new(self.endpoint.wire, request.approx_bytes());
            let read = self
                .read_body(
                    response,
                    Some((&mut parser, &mut decoder, &mut *on_event, &mut *seen)),
                )
                .await;
            let raw = read.map_err(|e| torn(e, seen))?;
            let mut sink = |e: StreamEvent| on_event(e);
            if !decoder.is_done() {
                for ev in parser.finish() {
                    let fed = decoder.feed(&ev, &mut sink);
                    *seen = decoder.seen();
                    fed.map_err(|e| torn(e, seen))?;
                }
            }
            let response = decoder.finish().map_err(|e| torn(e, seen))?;
            Answer {
                response,
                streamed: true,
                raw,
            }
        } else {
            let raw = self
                .read_body(response, None)
                .await
                .map_err(|e| torn(e, seen))?;
            let mut sink = |e: StreamEvent| on_event(e);
            let parsed = match self.endpoint.wire {
                WireFormat::Anthropic => anthropic::parse_json(&raw, &mut sink),
                WireFormat::Openai => openai::parse_json(&raw, request.approx_bytes(), &mut sink),
            };
            Answer {
                response: parsed.map_err(|e| torn(e, seen))?,
                streamed: false,
                raw,
            }
        };
        if header_id.is_some() {
            answer.response.request_id = header_id;
        }
        Ok(answer)
    }

    /// Reads a body chunk by chunk, giving up after the idle timeout without bytes. When a
    /// stream decoder is given, each chunk is parsed as it arrives (and what it reported kept
    /// in `seen`), and reading stops at the end marker.
    async fn read_body(
        &self,
        response: reqwest::Response,
        mut stream: Option<LiveStream<'_>>,
    ) -> Result<Vec<u8>, LlmError> {
        let mut raw = Vec::new();
        let mut body = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.timeouts.idle, body.next())
                .await
                .map_err(|_| LlmError::IdleTimeout {
                    secs: self.timeouts.idle.as_secs(),
                })?;
            let chunk = match next {
                None => break,
                Some(Err(e)) => return Err(transport(e)),
                Some(Ok(chunk)) => chunk,
            };
            raw.extend_from_slice(&chunk);
            if let Some((parser, decoder, on_event, seen)) = stream.as_mut() {
                let mut sink = |e: StreamEvent| on_event(e);
                for ev in parser.push(&chunk) {
                    let fed = decoder.feed(&ev, &mut sink);
                    **seen = decoder.seen();
                    fed?;
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
            self.timeouts.first_byte,
            self.authorize(http.get(url)).send(),
        )
        .await
        .map_err(|_| LlmError::FirstByteTimeout {
            secs: self.timeouts.first_byte.as_secs(),
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

/// Plays the next recorded answer. Every failure here is final (a replay never retries).
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
    )
    .map_err(|e| {
        LlmError::ReplayDiverged(format!(
            "response {} of {} cannot be parsed: {e}",
            index + 1,
            cassette.source()
        ))
    })?;
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
