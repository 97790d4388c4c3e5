//! What the fake server answers: a [`Script`] of [`Turn`]s, each a [`Reply`] or a [`Fault`].

use crate::catalog::CatalogModel;
use crate::log::LoggedRequest;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// One model request's answer: a reply, or a fault to inject.
///
/// JSON: `{"reply": {...}}` or `{"fault": {"kind": ..., ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Turn {
    Reply(Reply),
    Fault(Fault),
}

impl Turn {
    /// A plain text answer.
    pub fn text(text: impl Into<String>) -> Turn {
        Turn::Reply(Reply::text(text))
    }

    /// An answer made of one tool call (id generated).
    pub fn tool_call(name: impl Into<String>, input: serde_json::Value) -> Turn {
        Turn::Reply(Reply::default().with_tool_call(name, input))
    }

    /// An HTTP error status with the wire's error body.
    pub fn http_error(status: u16) -> Turn {
        Turn::Fault(Fault::Http(HttpFault::new(status)))
    }

    /// An HTTP error status with a `retry-after` header.
    pub fn http_error_retry_after(status: u16, retry_after: impl Into<String>) -> Turn {
        Turn::Fault(Fault::Http(
            HttpFault::new(status).with_retry_after(retry_after),
        ))
    }

    /// A stream whose connection is closed after `after_events` events, without the terminal
    /// event (for non-streaming requests: half the body, then the connection is closed).
    pub fn cut_stream(after_events: usize) -> Turn {
        Turn::Fault(Fault::Cut(StreamFault::after(after_events)))
    }

    /// A garbage `data:` line after `after_events` events, then the body ends.
    pub fn malformed_sse(after_events: usize) -> Turn {
        Turn::Fault(Fault::MalformedSse(StreamFault::after(after_events)))
    }

    /// HTTP 200, `after_events` events, then the wire's error event (`overloaded_error`).
    pub fn stream_error(after_events: usize) -> Turn {
        Turn::Fault(Fault::StreamError(ErrorEventFault {
            after_events,
            reply: None,
            error_type: None,
            message: None,
        }))
    }

    /// HTTP 200, `after_events` events, then silence for `ms` milliseconds, then the rest of
    /// the reply (if the client is still listening).
    pub fn stall(after_events: usize, ms: u64) -> Turn {
        Turn::Fault(Fault::Stall(StallFault {
            after_events,
            reply: None,
            ms,
        }))
    }
}

impl Turn {
    /// HTTP 200, `after_events` events, then only keep-alive comments (`: keep-alive`) every
    /// `interval_ms`, for as long as the client listens: the answer never completes.
    pub fn drip(after_events: usize, interval_ms: u64) -> Turn {
        Turn::Fault(Fault::Drip(DripFault {
            after_events,
            interval_ms,
        }))
    }

    /// Nothing at all — not even the response head — for `ms` milliseconds, then the reply (a
    /// server reading a long prompt before it answers).
    pub fn delay(ms: u64, reply: Reply) -> Turn {
        Turn::Fault(Fault::Delay(DelayFault {
            ms,
            reply: Some(reply),
        }))
    }
}

impl From<Reply> for Turn {
    fn from(reply: Reply) -> Turn {
        Turn::Reply(reply)
    }
}

impl From<Fault> for Turn {
    fn from(fault: Fault) -> Turn {
        Turn::Fault(fault)
    }
}

/// A successful model answer. Every field is optional in JSON; `{}` is an empty `end_turn`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// Assistant text (may be empty when the reply only calls tools).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Stop reason as either wire spells it (`end_turn`, `tool_use`, `max_tokens`, `stop`,
    /// `tool_calls`, `length`, ...); translated to the serving wire's spelling where a
    /// counterpart exists, sent verbatim otherwise. Default: tool calls → `tool_use` /
    /// `tool_calls`, else `end_turn` / `stop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Token counts; missing figures are estimated (input ≈ request body bytes / 4, output ≈
    /// reply bytes / 4).
    #[serde(skip_serializing_if = "Usage::is_default")]
    pub usage: Usage,
    /// Cost in USD reported as OpenRouter's `usage.cost` (a JSON number) on the OpenAI wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// The model the response claims answered. Default: the requested model, echoed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Server quirks for this turn only, added to the server-wide ones.
    #[serde(skip_serializing_if = "Quirks::is_none")]
    pub quirks: Quirks,
}

impl Reply {
    pub fn text(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            ..Reply::default()
        }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Reply {
        self.text = text.into();
        self
    }

    /// Adds a tool call whose id the server generates.
    pub fn with_tool_call(mut self, name: impl Into<String>, input: serde_json::Value) -> Reply {
        self.tool_calls.push(ToolCall {
            id: None,
            name: name.into(),
            input,
        });
        self
    }

    /// Adds a tool call with a fixed id.
    pub fn with_tool_call_id(
        mut self,
        id: impl Into<String>,
        name: impl Into<String>,
        input: serde_json::Value,
    ) -> Reply {
        self.tool_calls.push(ToolCall {
            id: Some(id.into()),
            name: name.into(),
            input,
        });
        self
    }

    pub fn with_stop_reason(mut self, stop_reason: impl Into<String>) -> Reply {
        self.stop_reason = Some(stop_reason.into());
        self
    }

    pub fn with_usage(mut self, usage: Usage) -> Reply {
        self.usage = usage;
        self
    }

    pub fn with_cost(mut self, cost_usd: f64) -> Reply {
        self.cost = Some(cost_usd);
        self
    }

    /// Claims another model answered (to provoke a pin violation).
    pub fn with_model(mut self, model: impl Into<String>) -> Reply {
        self.model = Some(model.into());
        self
    }

    pub fn with_quirks(mut self, quirks: Quirks) -> Reply {
        self.quirks = quirks;
        self
    }
}

/// A tool call in a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// Generated (`toolu_testkit_N` / `call_testkit_N`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub input: serde_json::Value,
}

/// Token counts of a reply. `input_tokens` is *uncached* input, as Anthropic counts it; on the
/// OpenAI wire `prompt_tokens` = input + cache read + cache write and `cached_tokens` = cache read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Usage {
    /// Default: request body bytes / 4 (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Default: reply bytes (text, tool names and inputs) / 4 (at least 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_tokens: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_write_tokens: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Usage {
    pub fn new(input_tokens: u64, output_tokens: u64) -> Usage {
        Usage {
            input_tokens: Some(input_tokens),
            output_tokens: Some(output_tokens),
            ..Usage::default()
        }
    }

    pub fn with_cache(mut self, read: u64, write: u64) -> Usage {
        self.cache_read_tokens = read;
        self.cache_write_tokens = write;
        self
    }

    fn is_default(&self) -> bool {
        *self == Usage::default()
    }
}

/// Deviations of real OpenAI-compatible servers from the reference wire. Set server-wide on the
/// [`Script`] or per [`Reply`]; a quirk is on when either turns it on. They only affect the
/// OpenAI wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// Ollama: every parallel tool call streams at `index: 0`, whole in one chunk, distinct ids.
    #[serde(skip_serializing_if = "is_false")]
    pub ollama_index_zero: bool,
    /// Ollama/Gemini/vLLM: `finish_reason: "stop"` even though tools were called.
    #[serde(skip_serializing_if = "is_false")]
    pub finish_reason_stop_with_tools: bool,
    /// vLLM: the usage-only chunk has `choices: null` instead of `[]`.
    #[serde(skip_serializing_if = "is_false")]
    pub usage_choices_null: bool,
    /// No usage at all (no usage chunk in streams, no `usage` field otherwise).
    #[serde(skip_serializing_if = "is_false")]
    pub omit_usage: bool,
    /// OpenRouter: `: OPENROUTER PROCESSING` comment lines interleaved in the stream.
    #[serde(skip_serializing_if = "is_false")]
    pub keep_alive_comments: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Quirks {
    pub fn none() -> Quirks {
        Quirks::default()
    }

    fn is_none(&self) -> bool {
        *self == Quirks::default()
    }

    /// The quirks on in either `self` or `other`.
    pub fn union(self, other: Quirks) -> Quirks {
        Quirks {
            ollama_index_zero: self.ollama_index_zero || other.ollama_index_zero,
            finish_reason_stop_with_tools: self.finish_reason_stop_with_tools
                || other.finish_reason_stop_with_tools,
            usage_choices_null: self.usage_choices_null || other.usage_choices_null,
            omit_usage: self.omit_usage || other.omit_usage,
            keep_alive_comments: self.keep_alive_comments || other.keep_alive_comments,
        }
    }
}

/// A failure to inject instead of (or in the middle of) a reply.
///
/// JSON: `{"kind": "http", "status": 429, "retry_after": "0"}`, `{"kind": "cut",
/// "after_events": 3}`, `{"kind": "malformed_sse", "after_events": 2}`, `{"kind":
/// "stream_error", "after_events": 1}`, `{"kind": "stall", "after_events": 1, "ms": 500}`,
/// `{"kind": "drip", "after_events": 1, "interval_ms": 50}`, `{"kind": "delay", "ms": 500}`.
/// Stream faults take an optional `reply` (the answer whose events are sent before the fault;
/// default: a short text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// An HTTP error status with the wire's error body.
    Http(HttpFault),
    /// The connection is closed after `after_events` events, without the terminal event or the
    /// terminating HTTP chunk.
    Cut(StreamFault),
    /// After `after_events` events, one `data:` line that is not JSON; then the body ends.
    MalformedSse(StreamFault),
    /// HTTP 200 and `after_events` events, then an error event (Anthropic `event: error`,
    /// OpenAI-style `data: {"error": {...}}`); then the body ends.
    StreamError(ErrorEventFault),
    /// HTTP 200 and `after_events` events, then nothing for `ms` milliseconds, then the rest.
    Stall(StallFault),
    /// HTTP 200 and `after_events` events, then keep-alive comments every `interval_ms`,
    /// forever (for non-streaming requests: the head, then nothing).
    Drip(DripFault),
    /// No response head for `ms` milliseconds, then the whole reply.
    Delay(DelayFault),
}

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpFault {
    pub status: u16,
    /// Value of the `retry-after` header (seconds or an HTTP date), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<String>,
    /// Error type (Anthropic `error.type`, OpenAI `error.type`). Default from the status:
    /// 400 `invalid_request_error`, 401 `authentication_error`, 402 `insufficient_credits`,
    /// 403 `permission_error`, 404 `not_found_error`, 413 `request_too_large`,
    /// 429 `rate_limit_error`, 529 `overloaded_error`, else `api_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Default: a message naming the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl HttpFault {
    pub fn new(status: u16) -> HttpFault {
        HttpFault {
            status,
            retry_after: None,
            error_type: None,
            message: None,
        }
    }

    pub fn with_retry_after(mut self, retry_after: impl Into<String>) -> HttpFault {
        self.retry_after = Some(retry_after.into());
        self
    }

    pub fn with_error_type(mut self, error_type: impl Into<String>) -> HttpFault {
        self.error_type = Some(error_type.into());
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> HttpFault {
        self.message = Some(message.into());
        self
    }
}

/// Where a stream fault strikes, and what is streamed before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamFault {
    /// SSE events (`data:` chunks on the OpenAI wire, `[DONE]` included; comments excluded)
    /// sent before the fault.
    pub after_events: usize,
    /// The answer being streamed. Default: a short text reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

impl StreamFault {
    pub fn after(after_events: usize) -> StreamFault {
        StreamFault {
            after_events,
            reply: None,
        }
    }
}

/// An error event after HTTP 200.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorEventFault {
    pub after_events: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Default `overloaded_error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A silent stretch in the middle of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StallFault {
    pub after_events: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    pub ms: u64,
}

/// A stream that keeps the connection alive and never answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DripFault {
    pub after_events: usize,
    pub interval_ms: u64,
}

/// A silence before the response head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayFault {
    pub ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
}

/// A function that picks the answer from the request.
pub type TurnHandler = dyn Fn(&LoggedRequest) -> Turn + Send + Sync;

/// What the server answers, in order, plus server-wide settings.
///
/// JSON (the sequence form): `{"turns": [Turn...], "quirks": {...}?, "catalog": [...]?}`, or just
/// `[Turn...]`.
#[derive(Clone)]
pub struct Script {
    pub(crate) source: ScriptSource,
    pub(crate) quirks: Quirks,
    pub(crate) catalog: Option<Vec<CatalogModel>>,
}

#[derive(Clone)]
pub(crate) enum ScriptSource {
    Turns(VecDeque<Turn>),
    Handler(Arc<TurnHandler>),
}

impl Script {
    /// Turns served in order, one per model request, across both wires. When they run out,
    /// every further model request gets HTTP 400 "testkit script exhausted".
    pub fn turns(turns: Vec<Turn>) -> Script {
        Script {
            source: ScriptSource::Turns(turns.into()),
            quirks: Quirks::default(),
            catalog: None,
        }
    }

    /// Every model request is answered by `handler` (which never runs out).
    pub fn handler<F>(handler: F) -> Script
    where
        F: Fn(&LoggedRequest) -> Turn + Send + Sync + 'static,
    {
        Script {
            source: ScriptSource::Handler(Arc::new(handler)),
            quirks: Quirks::default(),
            catalog: None,
        }
    }

    /// Server-wide quirks (added to each reply's own).
    pub fn with_quirks(mut self, quirks: Quirks) -> Script {
        self.quirks = quirks;
        self
    }

    /// The model catalog served at `GET …/models` (default: [`crate::default_catalog`]).
    pub fn with_catalog(mut self, catalog: Vec<CatalogModel>) -> Script {
        self.catalog = Some(catalog);
        self
    }

    /// Reads the JSON sequence form.
    pub fn from_json(json: &str) -> Result<Script, serde_json::Error> {
        serde_json::from_str(json)
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Script");
        match &self.source {
            ScriptSource::Turns(turns) => s.field("turns", turns),
            ScriptSource::Handler(_) => s.field("handler", &"<fn>"),
        };
        s.field("quirks", &self.quirks)
            .field("catalog", &self.catalog)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptFile {
    turns: Vec<Turn>,
    #[serde(default, skip_serializing_if = "Quirks::is_none")]
    quirks: Quirks,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    catalog: Option<Vec<CatalogModel>>,
}

enum ScriptForm {
    File(ScriptFile),
    Turns(Vec<Turn>),
}

impl Serialize for Script {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.source {
            ScriptSource::Turns(turns) => ScriptFile {
                turns: turns.iter().cloned().collect(),
                quirks: self.quirks,
                catalog: self.catalog.clone(),
            }
            .serialize(serializer),
            ScriptSource::Handler(_) => Err(serde::ser::Error::custom(
                "a handler script cannot be serialized; only Script::turns can",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Script {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Script, D::Error> {
        // Untagged errors are vague; try the object form first for a precise message.
        let value = serde_json::Value::deserialize(deserializer)?;
        let form = if value.is_array() {
            ScriptForm::Turns(serde_json::from_value(value).map_err(serde::de::Error::custom)?)
        } else {
            ScriptForm::File(serde_json::from_value(value).map_err(serde::de::Error::custom)?)
        };
        Ok(match form {
            ScriptForm::Turns(turns) => Script::turns(turns),
            ScriptForm::File(file) => Script {
                source: ScriptSource::Turns(file.turns.into()),
                quirks: file.quirks,
                catalog: file.catalog,
            },
        })
    }
}
