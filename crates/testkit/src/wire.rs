//! Rendering replies and errors in each wire format: SSE frames for streams, JSON bodies
//! otherwise.

use crate::log::LoggedRequest;
use crate::script::{Quirks, Reply};
use serde_json::{json, Value};

/// Which wire a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Anthropic,
    Openai,
}

/// One piece of an SSE stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// `event: NAME` (Anthropic only) and one `data:` line.
    Event {
        name: Option<&'static str>,
        data: String,
    },
    /// A `: comment` line (keep-alive); not counted as an event.
    Comment(&'static str),
}

impl Frame {
    pub(crate) fn encode(&self) -> String {
        match self {
            Frame::Event {
                name: Some(name),
                data,
            } => format!("event: {name}\ndata: {data}\n\n"),
            Frame::Event { name: None, data } => format!("data: {data}\n\n"),
            Frame::Comment(text) => format!(": {text}\n\n"),
        }
    }

    pub(crate) fn is_event(&self) -> bool {
        matches!(self, Frame::Event { .. })
    }
}

/// A reply with every default filled in for one request.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub wire: Wire,
    pub message_id: String,
    pub model: String,
    pub text: String,
    /// `(id, name, input as JSON text)`.
    pub calls: Vec<(String, String, String)>,
    /// The stop reason spelled for `wire`.
    pub stop_reason: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub cost: Option<f64>,
    pub quirks: Quirks,
    /// OpenAI: whether the request asked for `stream_options.include_usage`.
    pub include_usage: bool,
    pub created: u64,
}

impl Resolved {
    /// Fills in `reply`'s defaults. `next_id` yields fresh numbers for tool-call ids.
    pub(crate) fn new(
        wire: Wire,
        request: &LoggedRequest,
        reply: &Reply,
        server_quirks: Quirks,
        serial: u64,
        next_id: &mut dyn FnMut() -> u64,
        created: u64,
    ) -> Resolved {
        let calls: Vec<(String, String, String)> = reply
            .tool_calls
            .iter()
            .map(|call| {
                let id = call.id.clone().unwrap_or_else(|| match wire {
                    Wire::Anthropic => format!("toolu_testkit_{}", next_id()),
                    Wire::Openai => format!("call_testkit_{}", next_id()),
                });
                let input = if call.input.is_null() {
                    "{}".to_string()
                } else {
                    call.input.to_string()
                };
                (id, call.name.clone(), input)
            })
            .collect();
        let reply_bytes = reply.text.len()
            + calls
                .iter()
                .map(|(_, name, input)| name.len() + input.len())
                .sum::<usize>();
        let quirks = server_quirks.union(reply.quirks);
        let stop_reason = match &reply.stop_reason {
            Some(reason) => translate_stop_reason(wire, reason),
            None => match (wire, calls.is_empty()) {
                (Wire::Anthropic, false) => "tool_use".to_string(),
                (Wire::Anthropic, true) => "end_turn".to_string(),
                (Wire::Openai, false) if quirks.finish_reason_stop_with_tools => "stop".to_string(),
                (Wire::Openai, false) => "tool_calls".to_string(),
                (Wire::Openai, true) => "stop".to_string(),
            },
        };
        let requested_model = request.model.clone().unwrap_or_default();
        Resolved {
            wire,
            message_id: match wire {
                Wire::Anthropic => format!("msg_testkit_{serial}"),
                Wire::Openai => format!("chatcmpl-testkit-{serial}"),
            },
            model: reply.model.clone().unwrap_or(requested_model),
            text: reply.text.clone(),
            calls,
            stop_reason,
            input_tokens: reply
                .usage
                .input_tokens
                .unwrap_or_else(|| estimate_tokens(request.body_len)),
            output_tokens: reply
                .usage
                .output_tokens
                .unwrap_or_else(|| estimate_tokens(reply_bytes)),
            cache_read: reply.usage.cache_read_tokens,
            cache_write: reply.usage.cache_write_tokens,
            cost: reply.cost,
            quirks,
            include_usage: request
                .body
                .get("stream_options")
                .and_then(|o| o.get("include_usage"))
                .and_then(Value::as_bool)
                == Some(true),
            created,
        }
    }

    /// The whole stream, in order.
    pub(crate) fn frames(&self) -> Vec<Frame> {
        match self.wire {
            Wire::Anthropic => self.anthropic_frames(),
            Wire::Openai => self.openai_frames(),
        }
    }

    /// The non-streaming response body.
    pub(crate) fn body(&self) -> Value {
        match self.wire {
            Wire::Anthropic => self.anthropic_body(),
            Wire::Openai => self.openai_body(),
        }
    }

    fn anthropic_usage(&self, output_tokens: u64) -> Value {
        json!({
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": output_tokens,
        })
    }

    fn anthropic_frames(&self) -> Vec<Frame> {
        let event = |name: &'static str, data: Value| Frame::Event {
            name: Some(name),
            data: data.to_string(),
        };
        let mut frames = vec![
            event(
                "message_start",
                json!({
                    "type": "message_start",
                    "message": {
                        "id": self.message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": self.model,
                        "content": [],
                        "stop_reason": null,
                        "stop_sequence": null,
                        "usage": self.anthropic_usage(1),
                    }
                }),
            ),
            event("ping", json!({"type": "ping"})),
        ];
        let mut index = 0;
        if !self.text.is_empty() {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": index,
                       "content_block": {"type": "text", "text": ""}}),
            ));
            for piece in split_pieces(&self.text) {
                frames.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "text_delta", "text": piece}}),
                ));
            }
            frames.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
            index += 1;
        }
        for (id, name, input) in &self.calls {
            frames.push(event(
                "content_block_start",
                json!({"type": "content_block_start", "index": index,
                       "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
            ));
            let mut pieces = vec![String::new()];
            pieces.extend(split_pieces(input));
            for piece in pieces {
                frames.push(event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": piece}}),
                ));
            }
            frames.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
            index += 1;
        }
        frames.push(event(
            "message_delta",
            json!({"type": "message_delta",
                   "delta": {"stop_reason": self.stop_reason, "stop_sequence": null},
                   "usage": self.anthropic_usage(self.output_tokens)}),
        ));
        frames.push(event("message_stop", json!({"type": "message_stop"})));
        frames
    }

    fn anthropic_body(&self) -> Value {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(json!({"type": "text", "text": self.text}));
        }
        for (id, name, input) in &self.calls {
            let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
            content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
        }
        json!({
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason,
            "stop_sequence": null,
            "usage": self.anthropic_usage(self.output_tokens),
        })
    }

    fn openai_usage(&self) -> Value {
        let prompt = self.input_tokens + self.cache_read + self.cache_write;
        let mut details = json!({"cached_tokens": self.cache_read});
        if self.cache_write > 0 {
            details["cache_write_tokens"] = json!(self.cache_write);
        }
        let mut usage = json!({
            "prompt_tokens": prompt,
            "completion_tokens": self.output_tokens,
            "total_tokens": prompt + self.output_tokens,
            "prompt_tokens_details": details,
            "completion_tokens_details": {"reasoning_tokens": 0},
        });
        if let Some(cost) = self.cost {
            usage["cost"] = json!(cost);
        }
        usage
    }

    fn openai_chunk(&self, choices: Value) -> Frame {
        Frame::Event {
            name: None,
            data: json!({
                "id": self.message_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
            })
            .to_string(),
        }
    }

    fn openai_delta(&self, delta: Value) -> Frame {
        self.openai_chunk(json!([{"index": 0, "delta": delta, "finish_reason": null}]))
    }

    fn openai_frames(&self) -> Vec<Frame> {
        let mut frames = vec![self.openai_delta(json!({"role": "assistant", "content": ""}))];
        for piece in split_pieces(&self.text) {
            frames.push(self.openai_delta(json!({"content": piece})));
        }
        for (i, (id, name, input)) in self.calls.iter().enumerate() {
            if self.quirks.ollama_index_zero {
                frames.push(self.openai_delta(json!({"tool_calls": [{
                    "index": 0, "id": id, "type": "function",
                    "function": {"name": name, "arguments": input}}]})));
                continue;
            }
            frames.push(self.openai_delta(json!({"tool_calls": [{
                "index": i, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""}}]})));
            for piece in split_pieces(input) {
                frames.push(self.openai_delta(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                ));
            }
        }
        frames.push(
            self.openai_chunk(
                json!([{"index": 0, "delta": {}, "finish_reason": self.stop_reason}]),
            ),
        );
        if self.include_usage && !self.quirks.omit_usage {
            let choices = if self.quirks.usage_choices_null {
                Value::Null
            } else {
                json!([])
            };
            let chunk = json!({
                "id": self.message_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": choices,
                "usage": self.openai_usage(),
            });
            frames.push(Frame::Event {
                name: None,
                data: chunk.to_string(),
            });
        }
        frames.push(Frame::Event {
            name: None,
            data: "[DONE]".to_string(),
        });
        if self.quirks.keep_alive_comments {
            frames = interleave_keep_alives(frames);
        }
        frames
    }

    fn openai_body(&self) -> Value {
        let tool_calls: Vec<Value> = self
            .calls
            .iter()
            .map(|(id, name, input)| {
                json!({"id": id, "type": "function",
                       "function": {"name": name, "arguments": input}})
            })
            .collect();
        let mut message = json!({
            "role": "assistant",
            "content": if self.text.is_empty() { Value::Null } else { json!(self.text) },
        });
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        let mut body = json!({
            "id": self.message_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": self.stop_reason}],
        });
        if !self.quirks.omit_usage {
            body["usage"] = self.openai_usage();
        }
        body
    }
}

/// OpenRouter's keep-alive comment, before the first event and after every second one.
const KEEP_ALIVE: &str = "OPENROUTER PROCESSING";

fn interleave_keep_alives(frames: Vec<Frame>) -> Vec<Frame> {
    let last = frames.len().saturating_sub(1);
    let mut out = vec![Frame::Comment(KEEP_ALIVE)];
    for (i, frame) in frames.into_iter().enumerate() {
        out.push(frame);
        if i % 2 == 1 && i != last {
            out.push(Frame::Comment(KEEP_ALIVE));
        }
    }
    out
}

/// Tokens estimated from bytes: bytes / 4, at least 1.
fn estimate_tokens(bytes: usize) -> u64 {
    ((bytes / 4) as u64).max(1)
}

/// Splits `s` into several pieces on char boundaries: about three for short strings, 16-char
/// pieces for long ones. Empty input gives no pieces.
pub(crate) fn split_pieces(s: &str) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(3).clamp(1, 16);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Spells a stop reason for `wire`, translating the other wire's names.
fn translate_stop_reason(wire: Wire, reason: &str) -> String {
    let translated = match (wire, reason) {
        (Wire::Openai, "end_turn") | (Wire::Openai, "stop_sequence") => "stop",
        (Wire::Openai, "tool_use") => "tool_calls",
        (Wire::Openai, "max_tokens") => "length",
        (Wire::Openai, "refusal") => "content_filter",
        (Wire::Anthropic, "stop") => "end_turn",
        (Wire::Anthropic, "tool_calls") => "tool_use",
        (Wire::Anthropic, "length") => "max_tokens",
        (Wire::Anthropic, "content_filter") => "refusal",
        (_, other) => other,
    };
    translated.to_string()
}

/// The error type a status implies when the script names none.
pub(crate) fn default_error_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "insufficient_credits",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// A default error message for a status.
pub(crate) fn default_error_message(status: u16) -> String {
    match status {
        402 => "Insufficient credits: this account's balance cannot pay for the request".into(),
        429 => "Rate limited: too many requests (testkit)".into(),
        529 => "Overloaded".into(),
        status => format!("testkit injected HTTP {status}"),
    }
}

/// The error body of `wire`.
pub(crate) fn error_body(
    wire: Wire,
    status: u16,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Value {
    match wire {
        Wire::Anthropic => json!({
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": request_id,
        }),
        Wire::Openai => json!({
            "error": {"code": status, "type": error_type, "message": message},
        }),
    }
}

/// The in-stream error event of `wire` (after HTTP 200).
pub(crate) fn error_frame(wire: Wire, error_type: &str, message: &str) -> Frame {
    match wire {
        Wire::Anthropic => Frame::Event {
            name: Some("error"),
            data: json!({"type": "error", "error": {"type": error_type, "message": message}})
                .to_string(),
        },
        Wire::Openai => Frame::Event {
            name: None,
            data: json!({"error": {"code": 502, "type": error_type, "message": message}})
                .to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_pieces_rejoins_and_splits_short_text() {
        let pieces = split_pieces("Hello");
        assert_eq!(pieces, vec!["He", "ll", "o"]);
        let long = "é".repeat(100);
        let pieces = split_pieces(&long);
        assert!(pieces.iter().all(|p| p.chars().count() <= 16));
        assert_eq!(pieces.concat(), long);
        assert!(split_pieces("").is_empty());
    }

    #[test]
    fn stop_reasons_translate_between_wires() {
        assert_eq!(translate_stop_reason(Wire::Openai, "max_tokens"), "length");
        assert_eq!(
            translate_stop_reason(Wire::Anthropic, "tool_calls"),
            "tool_use"
        );
        assert_eq!(translate_stop_reason(Wire::Anthropic, "weird"), "weird");
    }
}
