//! The record of every request the server received.

use serde::Serialize;

/// Which endpoint a request hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST …/v1/messages`
    AnthropicMessages,
    /// `POST …/chat/completions`
    ChatCompletions,
    /// `GET …/models`
    Models,
    /// Anything else (answered 404).
    Unknown,
}

impl Route {
    /// Whether this route asks a model (and so consumes a script turn).
    pub fn is_model_call(self) -> bool {
        matches!(self, Route::AnthropicMessages | Route::ChatCompletions)
    }
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// 0-based position among all requests the server received.
    pub seq: usize,
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub route: Route,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when empty or not JSON).
    pub body: serde_json::Value,
    /// The raw body length in bytes.
    pub body_len: usize,
    /// The body's `model` field.
    pub model: Option<String>,
}

impl LoggedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the body asks for a stream (`"stream": true`).
    pub fn is_stream(&self) -> bool {
        self.body.get("stream").and_then(|v| v.as_bool()) == Some(true)
    }

    /// The `messages` array (empty when absent).
    pub fn messages(&self) -> &[serde_json::Value] {
        self.body
            .get("messages")
            .and_then(|m| m.as_array())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The content of the newest tool result, on either wire: an Anthropic `tool_result` block
    /// (string content, or its text blocks joined) or an OpenAI `role: "tool"` message.
    pub fn last_tool_result(&self) -> Option<String> {
        self.messages().iter().rev().find_map(|message| {
            if message.get("role").and_then(|r| r.as_str()) == Some("tool") {
                return message.get("content").map(content_text);
            }
            message
                .get("content")
                .and_then(|c| c.as_array())?
                .iter()
                .rev()
                .find(|block| block.get("type").and_then(|t| t.as_str()) == Some("tool_result"))
                .map(|block| block.get("content").map(content_text).unwrap_or_default())
        })
    }

    /// The system prompt, on either wire: Anthropic's `system` (a string or text blocks) or
    /// the OpenAI wire's leading `role: "system"` message.
    pub fn system_text(&self) -> String {
        if let Some(system) = self.body.get("system") {
            return content_text(system);
        }
        self.messages()
            .iter()
            .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("system"))
            .and_then(|m| m.get("content"))
            .map(content_text)
            .unwrap_or_default()
    }

    /// The text of the conversation's first user message (a session's task): what a script
    /// answering several conversations at once tells them apart by.
    pub fn first_user_text(&self) -> Option<String> {
        self.messages()
            .iter()
            .find(|m| m.get("role").and_then(|r| r.as_str()) == Some("user"))
            .and_then(|m| m.get("content"))
            .map(content_text)
    }

    /// The rest of the line after `marker` in the first user message (`"Your features: "` →
    /// `"F1, F2."`), or `None` when the conversation has no such line.
    pub fn marked_line(&self, marker: &str) -> Option<String> {
        let text = self.first_user_text()?;
        let start = text.find(marker)? + marker.len();
        Some(text[start..].lines().next().unwrap_or_default().to_string())
    }

    /// The names of the tools the request offers, on either wire.
    pub fn tool_names(&self) -> Vec<String> {
        self.body
            .get("tools")
            .and_then(|t| t.as_array())
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| {
                        t.get("name")
                            .or_else(|| t.get("function").and_then(|f| f.get("name")))
                            .and_then(|n| n.as_str())
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Text of a content value: a string, or the `text` of an array of blocks, joined.
fn content_text(content: &serde_json::Value) -> String {
    match content {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        other => other.to_string(),
    }
}
