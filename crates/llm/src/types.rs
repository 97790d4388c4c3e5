//! The neutral model of a conversation, shared by both wire formats.

use crate::money::Usd;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: serde_json::Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(default)]
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Message {
        Message {
            role: Role::User,
            content: vec![ContentPart::Text { text: text.into() }],
        }
    }

    pub fn assistant(content: Vec<ContentPart>) -> Message {
        Message {
            role: Role::Assistant,
            content,
        }
    }

    /// Bytes of text this message adds to a prompt (used for token upper bounds).
    pub fn approx_bytes(&self) -> usize {
        self.content
            .iter()
            .map(|p| match p {
                ContentPart::Text { text } => text.len(),
                ContentPart::ToolUse { id, name, input } => {
                    id.len() + name.len() + input.to_string().len()
                }
                ContentPart::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } => tool_use_id.len() + content.len(),
            })
            .sum::<usize>()
            + 16
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the input object.
    pub input_schema: serde_json::Value,
}

/// What a caller asks the model: everything of a request but the model and the output limit,
/// which the Governor decides (it pins the one model and lowers `max_tokens` to the budget).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// A lower output limit for this prompt (a one-word connectivity check); the Governor's
    /// `max_tokens` and the budget still apply on top. `None`: the Governor's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_cap: Option<u32>,
}

impl Prompt {
    /// Bytes of text in the whole prompt (system, tools, messages).
    pub fn approx_bytes(&self) -> usize {
        prompt_bytes(&self.system, &self.tools, &self.messages)
    }
}

fn prompt_bytes(system: &str, tools: &[ToolSpec], messages: &[Message]) -> usize {
    system.len()
        + tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.input_schema.to_string().len())
            .sum::<usize>()
        + messages.iter().map(Message::approx_bytes).sum::<usize>()
}

/// A request in neutral form, as it goes on the wire. The Governor builds it from a [`Prompt`]
/// (with the pinned model and its `max_tokens`); the wire clients translate it. Nothing else
/// builds model requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The provider's model id exactly as it goes on the wire (no `provider/` prefix).
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

impl Request {
    /// The request for `prompt` to `model`, answering in at most `max_tokens`.
    pub fn new(model: impl Into<String>, max_tokens: u32, prompt: &Prompt) -> Request {
        Request {
            model: model.into(),
            system: prompt.system.clone(),
            messages: prompt.messages.clone(),
            tools: prompt.tools.clone(),
            max_tokens,
            temperature: prompt.temperature,
        }
    }

    /// Bytes of text in the whole prompt (system, tools, messages).
    pub fn approx_bytes(&self) -> usize {
        prompt_bytes(&self.system, &self.tools, &self.messages)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    Refusal,
    ContentFilter,
    Other(String),
}

/// Token counts and cost of one call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uncached input tokens (for OpenAI-compatible servers: prompt tokens minus cached ones).
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Cost the provider itself reported for the call (OpenRouter's `usage.cost`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported_cost: Option<Usd>,
    /// True when the server sent no usage and these figures are the client's estimate.
    #[serde(default)]
    pub estimated: bool,
}

impl Usage {
    /// All input tokens, cached or not.
    pub fn total_input(&self) -> u64 {
        self.input_tokens + self.cache_read_tokens + self.cache_write_tokens
    }
}

/// A complete model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub parts: Vec<ContentPart>,
    pub stop_reason: StopReason,
    pub usage: Usage,
    /// The model the server says answered (checked against the pin by the Governor).
    pub served_model: String,
    pub request_id: Option<String>,
    /// Attempts this answer took (1 = no retry); set by the Governor, which does the retrying.
    pub attempts: u32,
}

impl Response {
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }

    pub fn tool_uses(&self) -> impl Iterator<Item = (&str, &str, &serde_json::Value)> {
        self.parts.iter().filter_map(|p| match p {
            ContentPart::ToolUse { id, name, input } => Some((id.as_str(), name.as_str(), input)),
            _ => None,
        })
    }
}

/// What a caller sees while a response streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    ToolUseStarted {
        id: String,
        name: String,
    },
    /// A failed attempt that the Governor retries after `wait_ms`. `attempt` is the 1-based
    /// number of the attempt that failed; `reason` is its error and what it was charged. Text
    /// already streamed by the failed attempt was shown but is not part of the final answer.
    Retry {
        attempt: u32,
        wait_ms: u64,
        reason: String,
    },
}

/// What a broken answer (cut stream, timeout, malformed event, error event after HTTP 200,
/// cancellation) had reported before it broke: the Governor charges it by its torn-attempt rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenUsage {
    /// Input counts reported when the stream began (Anthropic's `message_start`), output zero.
    pub input: Option<Usage>,
    /// The provider's final usage (Anthropic's `message_delta`, the OpenAI usage chunk): the
    /// generation had ended and this is what it cost, whatever broke afterwards.
    pub last: Option<Usage>,
}

/// Key under which a tool call's arguments are kept when they were not valid JSON, so the agent
/// can answer the call with a tool error instead of the whole response failing.
pub const INVALID_JSON_KEY: &str = "__invalid_json";

/// Reads a tool call's argument text as sent by a model: empty means `{}`, valid JSON is kept
/// as is, anything else becomes `{"__invalid_json": "<raw>"}`.
pub fn tool_input_from_text(raw: &str) -> serde_json::Value {
    if raw.trim().is_empty() {
        return serde_json::Value::Object(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) => v,
        Err(_) => {
            let mut m = serde_json::Map::new();
            m.insert(
                INVALID_JSON_KEY.to_string(),
                serde_json::Value::String(raw.to_string()),
            );
            serde_json::Value::Object(m)
        }
    }
}

/// The argument text to send back for a tool call already in the conversation: the model's raw
/// text when it was invalid JSON, else the JSON itself.
pub fn tool_input_to_text(input: &serde_json::Value) -> String {
    if let Some(obj) = input.as_object() {
        if obj.len() == 1 {
            if let Some(serde_json::Value::String(raw)) = obj.get(INVALID_JSON_KEY) {
                return raw.clone();
            }
        }
    }
    input.to_string()
}
