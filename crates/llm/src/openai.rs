//! OpenAI-compatible Chat Completions (OpenAI, OpenRouter, Ollama, llama.cpp, vLLM): the request
//! body and the response parsers (streamed and whole).

use crate::client::WireOptions;
use crate::error::LlmError;
use crate::money::Usd;
use crate::sse::SseEvent;
use crate::types::{
    tool_input_from_text, tool_input_to_text, ContentPart, Message, Request, Response, Role,
    SeenUsage, StopReason, StreamEvent, Usage,
};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Builds the JSON body of `POST {base}/chat/completions`.
///
/// `base_url` only decides the name of the output limit: OpenAI's own API wants
/// `max_completion_tokens` (its newer models reject `max_tokens`); every other compatible server
/// gets `max_tokens`. With `options.openrouter_pin` the body carries
/// `provider: {allow_fallbacks: false}` and `usage: {include: true}`; it never carries a `models`
/// list.
pub fn request_body(request: &Request, options: &WireOptions, base_url: &str) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(request.model));
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    for m in &request.messages {
        push_message(&mut messages, m);
    }
    body.insert("messages".into(), Value::Array(messages));
    let limit_key = if base_url.contains("://api.openai.com") {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    body.insert(limit_key.into(), json!(request.max_tokens));
    if !request.tools.is_empty() {
        let tools: Vec<Value> = request
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.input_schema}})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(t) = request.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if options.stream {
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if options.openrouter_pin {
        body.insert("provider".into(), json!({"allow_fallbacks": false}));
        body.insert("usage".into(), json!({"include": true}));
    }
    Value::Object(body)
}

fn push_message(out: &mut Vec<Value>, m: &Message) {
    let texts: Vec<&str> = m
        .content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text { text } if !text.is_empty() => Some(text.as_str()),
            _ => None,
        })
        .collect();
    match m.role {
        Role::User => {
            // Tool results answer the previous assistant turn, so they come first.
            for p in &m.content {
                if let ContentPart::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } = p
                {
                    // The format has no error flag; say it in the content.
                    let content = if *is_error {
                        format!("Error: {content}")
                    } else {
                        content.clone()
                    };
                    out.push(
                        json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}),
                    );
                }
            }
            if !texts.is_empty() {
                out.push(json!({"role": "user", "content": texts.join("\n\n")}));
            }
        }
        Role::Assistant => {
            let calls: Vec<Value> = m
                .content
                .iter()
                .filter_map(|p| match p {
                    ContentPart::ToolUse { id, name, input } => Some(json!({
                        "id": id, "type": "function",
                        "function": {"name": name, "arguments": tool_input_to_text(input)}})),
                    _ => None,
                })
                .collect();
            let mut msg = json!({"role": "assistant"});
            msg["content"] = if texts.is_empty() {
                Value::Null
            } else {
                json!(texts.join("\n\n"))
            };
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        }
    }
}

/// Reads a Chat Completions `usage` object. `input_tokens` excludes cached reads and cache
/// writes (both are part of `prompt_tokens`), so `Usage::total_input` equals `prompt_tokens`.
pub fn parse_usage(u: &Value) -> Usage {
    let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = get(u, "prompt_tokens");
    let details = &u["prompt_tokens_details"];
    let cache_read = get(details, "cached_tokens");
    let cache_write = get(details, "cache_write_tokens");
    let reported_cost = match &u["cost"] {
        Value::Number(n) => Usd::from_json_number(n).ok(),
        Value::String(s) => Usd::parse_decimal(s).ok(),
        _ => None,
    };
    Usage {
        input_tokens: prompt
            .saturating_sub(cache_read)
            .saturating_sub(cache_write),
        output_tokens: get(u, "completion_tokens"),
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reported_cost,
        estimated: false,
    }
}

fn error_object(v: &Value) -> Option<LlmError> {
    let err = v.get("error")?;
    if err.is_null() {
        return None;
    }
    let kind = match (&err["code"], &err["type"]) {
        (Value::String(s), _) | (_, Value::String(s)) => s.clone(),
        (Value::Number(n), _) => n.to_string(),
        _ => "error".to_string(),
    };
    let message = match err {
        Value::String(s) => s.clone(),
        _ => err["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| err.to_string()),
    };
    Some(LlmError::StreamError { kind, message })
}

/// Decides the stop reason from `finish_reason` and what was actually received: tool calls mean
/// `ToolUse` even when the server said `stop`.
fn decide_stop(finish: Option<&str>, has_tool_calls: bool) -> StopReason {
    match finish {
        Some("length") => StopReason::MaxTokens,
        Some("content_filter") => StopReason::ContentFilter,
        _ if has_tool_calls => StopReason::ToolUse,
        None | Some("stop" | "tool_calls" | "function_call" | "eos" | "end_turn") => {
            StopReason::EndTurn
        }
        Some(other) => StopReason::Other(other.to_string()),
    }
}

#[derive(Debug, Default)]
struct CallAcc {
    id: String,
    name: String,
    args: String,
    announced: bool,
}

/// Decoder of one streamed Chat Completions response, fed event by event.
#[derive(Debug)]
pub struct StreamDecoder {
    prompt_bytes: usize,
    text: String,
    calls: Vec<CallAcc>,
    /// Wire `index` → position in `calls` of the call that index currently feeds.
    slot_of_index: HashMap<u64, usize>,
    finish: Option<String>,
    usage: Option<Usage>,
    model: String,
    id: Option<String>,
    done: bool,
}

impl StreamDecoder {
    /// `prompt_bytes` (the request's size) is used only to estimate usage a server did not send.
    pub fn new(prompt_bytes: usize) -> StreamDecoder {
        StreamDecoder {
            prompt_bytes,
            text: String::new(),
            calls: Vec::new(),
            slot_of_index: HashMap::new(),
            finish: None,
            usage: None,
            model: String::new(),
            id: None,
            done: false,
        }
    }

    /// True once `[DONE]` arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// What the stream reported so far: the usage chunk, once it came (it ends a generation;
    /// nothing reports input earlier on this wire).
    pub fn seen(&self) -> SeenUsage {
        SeenUsage {
            input: None,
            last: self.usage.clone(),
        }
    }

    /// Handles one SSE event; text and tool-call starts go to `on_event` as they arrive.
    pub fn feed(
        &mut self,
        ev: &SseEvent,
        on_event: &mut dyn FnMut(StreamEvent),
    ) -> Result<(), LlmError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            LlmError::Malformed(format!("chat completion chunk is not JSON ({e}): {data}"))
        })?;
        if let Some(err) = error_object(&v) {
            return Err(err);
        }
        if self.model.is_empty() {
            if let Some(m) = v["model"].as_str() {
                self.model = m.to_string();
            }
        }
        if self.id.is_none() {
            self.id = v["id"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
        if v["usage"].is_object() {
            self.usage = Some(parse_usage(&v["usage"]));
        }
        // `choices` may be missing, `[]` or `null` on the usage-only chunk.
        let Some(choice) = v["choices"].as_array().and_then(|c| c.first()) else {
            return Ok(());
        };
        let delta = &choice["delta"];
        if let Some(piece) = delta["content"].as_str() {
            if !piece.is_empty() {
                self.text.push_str(piece);
                on_event(StreamEvent::TextDelta(piece.to_string()));
            }
        }
        if let Some(frags) = delta["tool_calls"].as_array() {
            for frag in frags {
                self.tool_fragment(frag, on_event);
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            if f == "error" {
                return Err(LlmError::StreamError {
                    kind: "error".into(),
                    message: "the server ended the generation with finish_reason \"error\"".into(),
                });
            }
            self.finish = Some(f.to_string());
        }
        Ok(())
    }

    fn tool_fragment(&mut self, frag: &Value, on_event: &mut dyn FnMut(StreamEvent)) {
        let index = frag["index"].as_u64().unwrap_or(0);
        let id = frag["id"].as_str().filter(|s| !s.is_empty());
        let name = frag["function"]["name"].as_str().filter(|s| !s.is_empty());
        let args = match &frag["function"]["arguments"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let slot = match self.slot_of_index.get(&index).copied() {
            Some(slot) => {
                let current = &self.calls[slot];
                // Ollama sends parallel calls all at index 0: a different id starts a new call.
                // Some servers repeat a fresh id on every fragment of one call, so a new id only
                // counts when it brings a name or the current call's arguments are complete.
                let new_call = match id {
                    Some(id) if !current.id.is_empty() && id != current.id => {
                        name.is_some() || serde_json::from_str::<Value>(&current.args).is_ok()
                    }
                    _ => false,
                };
                if new_call {
                    None
                } else {
                    Some(slot)
                }
            }
            None => None,
        };
        let slot = slot.unwrap_or_else(|| {
            self.calls.push(CallAcc::default());
            let slot = self.calls.len() - 1;
            self.slot_of_index.insert(index, slot);
            slot
        });
        let call = &mut self.calls[slot];
        if let Some(id) = id {
            if call.id.is_empty() {
                call.id = id.to_string();
            }
        }
        if let Some(name) = name {
            if call.name.is_empty() {
                call.name = name.to_string();
            }
        }
        call.args.push_str(&args);
        if !call.announced && !call.name.is_empty() {
            call.announced = true;
            if call.id.is_empty() {
                call.id = format!("call_{slot}");
            }
            on_event(StreamEvent::ToolUseStarted {
                id: call.id.clone(),
                name: call.name.clone(),
            });
        }
    }

    /// The complete answer, or `Truncated` when the stream ended with neither a `finish_reason`
    /// nor `[DONE]`. A missing usage is estimated (`usage.estimated = true`).
    pub fn finish(self) -> Result<Response, LlmError> {
        if !self.done && self.finish.is_none() {
            return Err(LlmError::Truncated(
                "the chat completion stream ended without a finish_reason or [DONE]".into(),
            ));
        }
        let mut parts = Vec::new();
        if !self.text.is_empty() {
            parts.push(ContentPart::Text { text: self.text });
        }
        for (n, c) in self.calls.into_iter().enumerate() {
            parts.push(ContentPart::ToolUse {
                id: if c.id.is_empty() {
                    format!("call_{n}")
                } else {
                    c.id
                },
                name: c.name,
                input: tool_input_from_text(&c.args),
            });
        }
        let has_calls = parts
            .iter()
            .any(|p| matches!(p, ContentPart::ToolUse { .. }));
        let usage = self
            .usage
            .unwrap_or_else(|| estimate_usage(self.prompt_bytes, &parts));
        Ok(Response {
            stop_reason: decide_stop(self.finish.as_deref(), has_calls),
            parts,
            usage,
            served_model: self.model,
            request_id: self.id,
            attempts: 1,
        })
    }
}

/// Usage when a server sent none: about four bytes a token, marked as an estimate.
fn estimate_usage(prompt_bytes: usize, parts: &[ContentPart]) -> Usage {
    let out_bytes: usize = parts
        .iter()
        .map(|p| match p {
            ContentPart::Text { text } => text.len(),
            ContentPart::ToolUse { id, name, input } => {
                id.len() + name.len() + input.to_string().len()
            }
            ContentPart::ToolResult { content, .. } => content.len(),
        })
        .sum();
    Usage {
        input_tokens: prompt_bytes.div_ceil(4) as u64,
        output_tokens: out_bytes.div_ceil(4) as u64,
        estimated: true,
        ..Usage::default()
    }
}

/// Parses a whole (non-streamed) chat completion; emits its text and tool calls to `on_event`
/// as if they had streamed.
pub fn parse_json(
    body: &[u8],
    prompt_bytes: usize,
    on_event: &mut dyn FnMut(StreamEvent),
) -> Result<Response, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        LlmError::Malformed(format!(
            "chat completion response is not JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(500)])
        ))
    })?;
    if let Some(err) = error_object(&v) {
        return Err(err);
    }
    let choice = v["choices"]
        .as_array()
        .and_then(|c| c.first())
        .ok_or_else(|| LlmError::Malformed(format!("chat completion has no choices: {v}")))?;
    let msg = &choice["message"];
    let mut parts = Vec::new();
    if let Some(text) = msg["content"].as_str().filter(|s| !s.is_empty()) {
        on_event(StreamEvent::TextDelta(text.to_string()));
        parts.push(ContentPart::Text {
            text: text.to_string(),
        });
    }
    for (n, call) in msg["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let id = call["id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("call_{n}"));
        let name = call["function"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let input = match &call["function"]["arguments"] {
            Value::String(s) => tool_input_from_text(s),
            Value::Null => json!({}),
            other => other.clone(),
        };
        on_event(StreamEvent::ToolUseStarted {
            id: id.clone(),
            name: name.clone(),
        });
        parts.push(ContentPart::ToolUse { id, name, input });
    }
    let has_calls = parts
        .iter()
        .any(|p| matches!(p, ContentPart::ToolUse { .. }));
    let usage = if v["usage"].is_object() {
        parse_usage(&v["usage"])
    } else {
        estimate_usage(prompt_bytes, &parts)
    };
    Ok(Response {
        stop_reason: decide_stop(choice["finish_reason"].as_str(), has_calls),
        parts,
        usage,
        served_model: v["model"].as_str().unwrap_or_default().to_string(),
        request_id: v["id"].as_str().map(str::to_string),
        attempts: 1,
    })
}
