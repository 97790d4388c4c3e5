//! Anthropic Messages: the request body and the response parsers (streamed and whole).

use crate::client::WireOptions;
use crate::error::LlmError;
use crate::sse::SseEvent;
use crate::types::{
    tool_input_from_text, tool_input_to_text, ContentPart, Message, Request, Response, Role,
    SeenUsage, StopReason, StreamEvent, Usage,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The `anthropic-version` header value this client speaks.
pub const API_VERSION: &str = "2023-06-01";

/// Most `cache_control` breakpoints one request may carry.
pub const MAX_CACHE_BREAKPOINTS: usize = 4;

/// Builds the JSON body of `POST {base}/v1/messages`.
///
/// User messages put their `tool_result` blocks first (the API rejects them otherwise). With
/// `options.prompt_caching`, `cache_control: {type: "ephemeral"}` goes on the last tool, the
/// system block and the last block of the newest user turn: three breakpoints, within the limit
/// of [`MAX_CACHE_BREAKPOINTS`].
pub fn request_body(request: &Request, options: &WireOptions) -> Value {
    let cache = || json!({"type": "ephemeral"});
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    body.insert("max_tokens".into(), json!(request.max_tokens));
    if !request.system.is_empty() {
        let mut block = json!({"type": "text", "text": request.system});
        if options.prompt_caching {
            block["cache_control"] = cache();
        }
        body.insert("system".into(), json!([block]));
    }
    let mut messages: Vec<Value> = request.messages.iter().map(message_json).collect();
    if options.prompt_caching {
        let newest_user = request.messages.iter().rposition(|m| m.role == Role::User);
        if let Some(last) = newest_user
            .and_then(|i| messages.get_mut(i))
            .and_then(|m| m["content"].as_array_mut())
            .and_then(|blocks| blocks.last_mut())
        {
            last["cache_control"] = cache();
        }
    }
    body.insert("messages".into(), Value::Array(messages));
    if !request.tools.is_empty() {
        let mut tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        if options.prompt_caching {
            if let Some(last) = tools.last_mut() {
                last["cache_control"] = cache();
            }
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if options.stream {
        body.insert("stream".into(), json!(true));
    }
    Value::Object(body)
}

fn message_json(message: &Message) -> Value {
    let role = match message.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    let block = |part: &ContentPart| match part {
        ContentPart::Text { text } => json!({"type": "text", "text": text}),
        ContentPart::ToolUse { id, name, input } => {
            // The API wants an object; an invalid-JSON call goes back as the object we made of it.
            let input = if input.is_object() {
                input.clone()
            } else {
                json!({ "value": tool_input_to_text(input) })
            };
            json!({"type": "tool_use", "id": id, "name": name, "input": input})
        }
        ContentPart::ToolResult {
            tool_use_id,
            content,
            is_error,
        } => {
            let mut b =
                json!({"type": "tool_result", "tool_use_id": tool_use_id, "content": content});
            if *is_error {
                b["is_error"] = json!(true);
            }
            b
        }
    };
    // Empty text blocks are rejected by the API; tool results lead a user turn.
    let keep = |p: &&ContentPart| !matches!(p, ContentPart::Text { text } if text.is_empty());
    let results = message
        .content
        .iter()
        .filter(keep)
        .filter(|p| matches!(p, ContentPart::ToolResult { .. }));
    let others = message
        .content
        .iter()
        .filter(keep)
        .filter(|p| !matches!(p, ContentPart::ToolResult { .. }));
    let blocks: Vec<Value> = results.chain(others).map(block).collect();
    json!({"role": role, "content": blocks})
}

/// Maps an Anthropic `stop_reason`.
pub fn stop_reason(s: &str) -> StopReason {
    match s {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::Refusal,
        other => StopReason::Other(other.to_string()),
    }
}

/// Overwrites `usage` with whatever counts `v` carries (Anthropic's counts are cumulative, so
/// the latest value is the value).
fn apply_usage(usage: &mut Usage, v: &Value) {
    let get = |k: &str| v.get(k).and_then(Value::as_u64);
    if let Some(n) = get("input_tokens") {
        usage.input_tokens = n;
    }
    if let Some(n) = get("output_tokens") {
        usage.output_tokens = n;
    }
    if let Some(n) = get("cache_read_input_tokens") {
        usage.cache_read_tokens = n;
    }
    if let Some(n) = get("cache_creation_input_tokens") {
        usage.cache_write_tokens = n;
    }
}

/// Reads a Messages `usage` object.
pub fn parse_usage(v: &Value) -> Usage {
    let mut usage = Usage::default();
    apply_usage(&mut usage, v);
    usage
}

fn stream_error(v: &Value) -> LlmError {
    let err = &v["error"];
    LlmError::StreamError {
        kind: err["type"].as_str().unwrap_or("error").to_string(),
        message: err["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
    }
}

#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
        initial: Value,
    },
    /// Thinking and other block kinds: not part of the neutral answer.
    Other,
}

/// Decoder of one streamed Messages response, fed event by event.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    blocks: BTreeMap<u64, Block>,
    id: Option<String>,
    model: String,
    usage: Usage,
    stop_reason: Option<String>,
    started: bool,
    /// `message_delta` brought the final usage.
    final_usage: bool,
    done: bool,
}

impl StreamDecoder {
    pub fn new() -> StreamDecoder {
        StreamDecoder::default()
    }

    /// True once `message_stop` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// What the stream reported so far: the input counts of `message_start`, and the final
    /// usage once `message_delta` carried it.
    pub fn seen(&self) -> SeenUsage {
        SeenUsage {
            input: self.started.then(|| Usage {
                output_tokens: 0,
                ..self.usage.clone()
            }),
            last: self.final_usage.then(|| self.usage.clone()),
        }
    }

    /// Handles one SSE event; text and tool-call starts go to `on_event` as they arrive.
    pub fn feed(
        &mut self,
        ev: &SseEvent,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<(), LlmError> {
        let v: Value = serde_json::from_str(&ev.data).map_err(|e| {
            LlmError::Malformed(format!(
                "Anthropic stream event is not JSON ({e}): {}",
                ev.data
            ))
        })?;
        let kind = v["type"].as_str().or(ev.event.as_deref()).unwrap_or("");
        match kind {
            "message_start" => {
                let m = &v["message"];
                self.started = true;
                self.id = m["id"].as_str().map(str::to_string);
                self.model = m["model"].as_str().unwrap_or_default().to_string();
                apply_usage(&mut self.usage, &m["usage"]);
            }
            "content_block_start" => {
                let index = v["index"].as_u64().unwrap_or(0);
                let b = &v["content_block"];
                let block = match b["type"].as_str() {
                    Some("text") => {
                        let text = b["text"].as_str().unwrap_or_default().to_string();
                        if !text.is_empty() {
                            on_event(StreamEvent::TextDelta(text.clone()));
                        }
                        Block::Text(text)
                    }
                    Some("tool_use") => {
                        let id = b["id"].as_str().unwrap_or_default().to_string();
                        let name = b["name"].as_str().unwrap_or_default().to_string();
                        on_event(StreamEvent::ToolUseStarted {
                            id: id.clone(),
                            name: name.clone(),
                        });
                        Block::ToolUse {
                            id,
                            name,
                            json: String::new(),
                            initial: b["input"].clone(),
                        }
                    }
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = v["index"].as_u64().unwrap_or(0);
                let d = &v["delta"];
                match (d["type"].as_str(), self.blocks.get_mut(&index)) {
                    (Some("text_delta"), Some(Block::Text(text))) => {
                        let piece = d["text"].as_str().unwrap_or_default();
                        if !piece.is_empty() {
                            text.push_str(piece);
                            on_event(StreamEvent::TextDelta(piece.to_string()));
                        }
                    }
                    (Some("input_json_delta"), Some(Block::ToolUse { json, .. })) => {
                        json.push_str(d["partial_json"].as_str().unwrap_or_default());
                    }
                    (Some("text_delta" | "input_json_delta"), None) => {
                        return Err(LlmError::Malformed(format!(
                            "Anthropic stream sent a delta for content block {index} before starting it"
                        )));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(s) = v["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(s.to_string());
                }
                if v["usage"].is_object() {
                    apply_usage(&mut self.usage, &v["usage"]);
                    self.final_usage = true;
                }
            }
            "message_stop" => self.done = true,
            "error" => return Err(stream_error(&v)),
            // content_block_stop, ping and event types added after this client was written.
            _ => {}
        }
        Ok(())
    }

    /// The complete answer, or `Truncated` when the stream ended before `message_stop`.
    pub fn finish(self) -> Result<Response, LlmError> {
        if !self.done {
            return Err(LlmError::Truncated(if self.started {
                "the Anthropic stream ended without message_stop".into()
            } else {
                "the Anthropic stream ended before message_start".into()
            }));
        }
        let parts = self
            .blocks
            .into_values()
            .filter_map(|b| match b {
                Block::Text(text) if !text.is_empty() => Some(ContentPart::Text { text }),
                Block::ToolUse {
                    id,
                    name,
                    json,
                    initial,
                } => {
                    let input = if json.is_empty() && initial.is_object() {
                        initial
                    } else {
                        tool_input_from_text(&json)
                    };
                    Some(ContentPart::ToolUse { id, name, input })
                }
                _ => None,
            })
            .collect();
        Ok(Response {
            parts,
            stop_reason: stop_reason(self.stop_reason.as_deref().unwrap_or("end_turn")),
            usage: self.usage,
            served_model: self.model,
            request_id: self.id,
            attempts: 1,
        })
    }
}

/// Parses a whole (non-streamed) Messages response; emits its text and tool calls to
/// `on_event` as if they had streamed.
pub fn parse_json(
    body: &[u8],
    on_event: &mut dyn FnMut(StreamEvent),
) -> Result<Response, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        LlmError::Malformed(format!(
            "Anthropic response is not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        ))
    })?;
    if v["type"] == "error" {
        return Err(stream_error(&v));
    }
    let content = v["content"].as_array().ok_or_else(|| {
        LlmError::Malformed(format!("Anthropic response has no content array: {v}"))
    })?;
    let mut parts = Vec::new();
    for b in content {
        match b["type"].as_str() {
            Some("text") => {
                let text = b["text"].as_str().unwrap_or_default().to_string();
                if !text.is_empty() {
                    on_event(StreamEvent::TextDelta(text.clone()));
                    parts.push(ContentPart::Text { text });
                }
            }
            Some("tool_use") => {
                let id = b["id"].as_str().unwrap_or_default().to_string();
                let name = b["name"].as_str().unwrap_or_default().to_string();
                on_event(StreamEvent::ToolUseStarted {
                    id: id.clone(),
                    name: name.clone(),
                });
                let input = if b["input"].is_null() {
                    json!({})
                } else {
                    b["input"].clone()
                };
                parts.push(ContentPart::ToolUse { id, name, input });
            }
            _ => {}
        }
    }
    let mut usage = Usage::default();
    apply_usage(&mut usage, &v["usage"]);
    Ok(Response {
        parts,
        stop_reason: stop_reason(v["stop_reason"].as_str().unwrap_or("end_turn")),
        usage,
        served_model: v["model"].as_str().unwrap_or_default().to_string(),
        request_id: v["id"].as_str().map(str::to_string),
        attempts: 1,
    })
}
