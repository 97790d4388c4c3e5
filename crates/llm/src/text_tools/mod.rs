//! The text tool protocol, for models without (good) native tool calling: the tools are
//! described in the system prompt and the calls are read back from the answer's text.
//!
//! It is an adapter at the wire layer. [`TextProtocol::wire_request`] turns a neutral request
//! into one without `tools`: the system prompt gains a tools section (each tool's name,
//! description and JSON schema, the exact call format, one worked example); past calls are
//! rendered back in that same format and tool results as `<tool_result>` text carrying the call's
//! id. [`TextProtocol::parse_response`] finds the calls in the answer ([`scan`] lists the forms
//! it reads) and returns an ordinary response with `ToolUse` parts, so the session, the Governor
//! and the ledger see what a native call would give them. [`CallFilter`] passes streamed text
//! through but holds back call blocks (and anything that may still turn into one).
//!
//! Decisions:
//! - Calls get deterministic ids, `text_call_<turn>_<n>` (turn = assistant messages so far + 1,
//!   n = position in the answer), so a replayed cassette yields the same conversation.
//! - A block meant as a call that cannot be read is not dropped: it becomes a call (named after
//!   the tool it seems to name, else [`UNREADABLE_CALL_NAME`]) whose input is the invalid-JSON
//!   marker, so the tool answers with the same validation error a native call with broken
//!   arguments gets; when the result is rendered back, what was wrong and the format to use are
//!   added to it.
//! - Native tool calls a server returns anyway are kept as they are.
//! - The text around the calls is the answer's text (trimmed when calls were taken out).

mod lenient_json;
mod scan;

use crate::types::{
    tool_input_to_text, ContentPart, Message, Request, Response, Role, StopReason, StreamEvent,
    ToolSpec, INVALID_JSON_KEY,
};
use scan::{Found, Segment, ToolCatalog};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// How tools reach the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolProtocol {
    /// The API's own tool calling (`tools` in the request, tool calls in the response).
    #[default]
    Native,
    /// Tools described in the system prompt; calls read from the answer's text.
    Text,
}

impl ToolProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolProtocol::Native => "native",
            ToolProtocol::Text => "text",
        }
    }

    pub fn is_native(&self) -> bool {
        *self == ToolProtocol::Native
    }
}

impl std::fmt::Display for ToolProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ToolProtocol {
    type Err = String;

    fn from_str(s: &str) -> Result<ToolProtocol, String> {
        match s {
            "native" => Ok(ToolProtocol::Native),
            "text" => Ok(ToolProtocol::Text),
            other => Err(format!(
                "unknown tool protocol {other:?}; use \"native\" or \"text\""
            )),
        }
    }
}

/// The prefix of the ids of calls read from text.
pub const TEXT_CALL_ID_PREFIX: &str = "text_call_";

/// The name given to a call block in which no tool name could be found.
pub const UNREADABLE_CALL_NAME: &str = "unreadable_tool_call";

/// The text protocol for one request: renders it for the wire and reads its answer.
#[derive(Debug, Clone)]
pub struct TextProtocol {
    catalog: ToolCatalog,
    turn: usize,
}

impl TextProtocol {
    pub fn for_request(request: &Request) -> TextProtocol {
        TextProtocol {
            catalog: ToolCatalog::new(&request.tools),
            turn: request
                .messages
                .iter()
                .filter(|m| m.role == Role::Assistant)
                .count()
                + 1,
        }
    }

    /// The request as sent: no `tools`, the tools described in the system prompt, past calls
    /// and results as text.
    pub fn wire_request(&self, request: &Request) -> Request {
        let names: HashMap<&str, &str> = request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|p| match p {
                ContentPart::ToolUse { id, name, .. } => Some((id.as_str(), name.as_str())),
                _ => None,
            })
            .collect();
        let calls: HashMap<&str, &Value> = request
            .messages
            .iter()
            .flat_map(|m| &m.content)
            .filter_map(|p| match p {
                ContentPart::ToolUse { id, input, .. } => Some((id.as_str(), input)),
                _ => None,
            })
            .collect();
        let messages = request
            .messages
            .iter()
            .map(|m| Message {
                role: m.role,
                content: vec![ContentPart::Text {
                    text: self.render_message(m, &names, &calls),
                }],
            })
            .collect();
        Request {
            model: request.model.clone(),
            system: system_prompt(&request.system, &request.tools),
            messages,
            tools: Vec::new(),
            max_tokens: request.max_tokens,
            temperature: request.temperature,
        }
    }

    fn render_message(
        &self,
        m: &Message,
        names: &HashMap<&str, &str>,
        calls: &HashMap<&str, &Value>,
    ) -> String {
        let mut pieces: Vec<String> = Vec::new();
        for part in &m.content {
            match part {
                ContentPart::Text { text } if text.is_empty() => {}
                ContentPart::Text { text } => pieces.push(text.clone()),
                ContentPart::ToolUse { id, name, input } => {
                    pieces.push(render_call(id, name, input));
                }
                ContentPart::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => {
                    let name = names.get(tool_use_id.as_str()).copied().unwrap_or("tool");
                    let mut block = format!(
                        "<tool_result name=\"{name}\" id=\"{tool_use_id}\"{}>\n{content}",
                        if *is_error { " error=\"true\"" } else { "" }
                    );
                    if let Some(problem) = calls
                        .get(tool_use_id.as_str())
                        .and_then(|input| self.unreadable_problem(tool_use_id, input))
                    {
                        let _ = write!(
                            block,
                            "\nloopwright could not read this tool call: {problem}. Write each \
                             call as a ```json block holding one object: {{\"name\": \
                             \"<tool>\", \"arguments\": {{...}}}}, in valid JSON."
                        );
                    }
                    block.push_str("\n</tool_result>");
                    pieces.push(block);
                }
            }
        }
        pieces.join("\n\n")
    }

    /// For a call read from text that could not be read: what was wrong with it.
    fn unreadable_problem(&self, id: &str, input: &Value) -> Option<String> {
        if !id.starts_with(TEXT_CALL_ID_PREFIX) {
            return None;
        }
        let raw = invalid_raw(input)?;
        let problem = match scan::parse_content(raw, scan::Kind::Definite, &self.catalog) {
            Some(found) => found.into_iter().find_map(|f| match f {
                Found::Malformed { problem, .. } => Some(problem),
                Found::Call { .. } => None,
            }),
            None => None,
        };
        Some(problem.unwrap_or_else(|| "the block is not a tool call".to_string()))
    }

    /// The answer with the calls in its text taken out as `ToolUse` parts (ids
    /// `text_call_<turn>_<n>`); unchanged when its text holds none.
    pub fn parse_response(&self, mut response: Response) -> Response {
        let text = response.text();
        if text.is_empty() {
            return response;
        }
        let mut kept = String::new();
        let mut found = Vec::new();
        for segment in scan::scan(&text, true, true, &self.catalog) {
            match segment {
                Segment::Text(r) => kept.push_str(&text[r]),
                Segment::Calls(_, calls) => found.extend(calls),
                Segment::OpenText(p) | Segment::Pending(p) => kept.push_str(&text[p..]),
            }
        }
        if found.is_empty() {
            return response;
        }
        let mut parts = Vec::new();
        let kept = kept.trim();
        if !kept.is_empty() {
            parts.push(ContentPart::Text {
                text: kept.to_string(),
            });
        }
        parts.extend(
            response
                .parts
                .drain(..)
                .filter(|p| !matches!(p, ContentPart::Text { .. })),
        );
        for (n, f) in found.into_iter().enumerate() {
            let id = self.call_id(n);
            parts.push(match f {
                Found::Call { name, input } => ContentPart::ToolUse { id, name, input },
                Found::Malformed { name, raw, .. } => ContentPart::ToolUse {
                    id,
                    name: name.unwrap_or_else(|| UNREADABLE_CALL_NAME.to_string()),
                    input: json!({ INVALID_JSON_KEY: raw }),
                },
            });
        }
        response.parts = parts;
        if matches!(
            response.stop_reason,
            StopReason::EndTurn | StopReason::StopSequence
        ) {
            response.stop_reason = StopReason::ToolUse;
        }
        response
    }

    fn call_id(&self, n: usize) -> String {
        format!("{TEXT_CALL_ID_PREFIX}{}_{n}", self.turn)
    }

    /// A filter for this request's streamed events.
    pub fn stream_filter(&self) -> CallFilter {
        CallFilter {
            protocol: self.clone(),
            buf: String::new(),
            committed: 0,
            shown: 0,
            announced: 0,
        }
    }
}

/// The raw text of an invalid-JSON call input.
fn invalid_raw(input: &Value) -> Option<&str> {
    let obj = input.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.get(INVALID_JSON_KEY)?.as_str()
}

/// A past call in the format the model is asked to use.
fn render_call(id: &str, name: &str, input: &Value) -> String {
    let body = match invalid_raw(input) {
        // A block that could not be read goes back as it was written.
        Some(raw) if id.starts_with(TEXT_CALL_ID_PREFIX) => raw.to_string(),
        Some(_) => format!(
            "{{\"name\": {}, \"arguments\": {}}}",
            json!(name),
            tool_input_to_text(input)
        ),
        None => call_json(name, input),
    };
    format!("```json\n{body}\n```")
}

/// `{"name": NAME, "arguments": ARGS}`, the name first as models write it.
fn call_json(name: &str, arguments: &Value) -> String {
    format!("{{\"name\": {}, \"arguments\": {arguments}}}", json!(name))
}

/// The system prompt with the tools section (unchanged when there are no tools).
pub fn system_prompt(system: &str, tools: &[ToolSpec]) -> String {
    if tools.is_empty() {
        return system.to_string();
    }
    let mut out = String::with_capacity(system.len() + 2048);
    out.push_str(system.trim_end());
    out.push_str(
        "\n\n# Tools\n\nYou act by calling tools. To call a tool, write a ```json code block \
         holding one JSON object with the tool's \"name\" and its \"arguments\", exactly like \
         this example:\n\n```json\n",
    );
    out.push_str(&example_call(tools));
    out.push_str(
        "\n```\n\n- One call per block. You may write several blocks; they run in order.\n\
         - The arguments are valid JSON: keys and strings in double quotes, newlines inside \
         strings written as \\n.\n\
         - After your calls, stop. The results come back in the next message, each in a \
         <tool_result> block. Never write a result yourself.\n\
         - Do not describe a call instead of making it: a call happens only when you write the \
         block.\n\
         - When the task is done, answer with a short summary and no tool call.\n\n\
         The tools:\n",
    );
    for t in tools {
        let _ = write!(
            out,
            "\n## {}\n{}\nArguments (JSON schema): {}\n",
            t.name,
            t.description.trim(),
            t.input_schema
        );
    }
    out
}

/// One worked example: `write_file` with two lines when offered (it shows how a newline is
/// written inside a JSON string, the slip small models make most), else `bash` listing files,
/// else the first tool with its required arguments filled in.
fn example_call(tools: &[ToolSpec]) -> String {
    if tools.iter().any(|t| t.name == "write_file") {
        return r#"{"name": "write_file", "arguments": {"path": "notes.txt", "content": "first line\nsecond line\n"}}"#.to_string();
    }
    if tools.iter().any(|t| t.name == "bash") {
        return r#"{"name": "bash", "arguments": {"command": "ls -la"}}"#.to_string();
    }
    let Some(tool) = tools.first() else {
        return String::new();
    };
    let schema = &tool.input_schema;
    let mut args = serde_json::Map::new();
    for key in schema["required"].as_array().into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        let value = match schema["properties"][key]["type"].as_str() {
            Some("integer" | "number") => json!(1),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!("..."),
        };
        args.insert(key.to_string(), value);
    }
    call_json(&tool.name, &Value::Object(args))
}

/// Passes a response's stream events on while holding back the text of call blocks: text is
/// shown once it is known not to be (the start of) a call; each call is announced with
/// [`StreamEvent::ToolUseStarted`] when its block is complete. A retry starts it afresh.
#[derive(Debug)]
pub struct CallFilter {
    protocol: TextProtocol,
    buf: String,
    /// Bytes of `buf` already split into decided segments.
    committed: usize,
    /// Bytes of `buf` already passed on (or held back for good, as calls).
    shown: usize,
    announced: usize,
}

impl CallFilter {
    /// Handles one event from the wire, passing what may be shown to `out`.
    pub fn feed(&mut self, event: StreamEvent, out: &mut dyn FnMut(StreamEvent)) {
        match event {
            StreamEvent::TextDelta(text) => {
                self.buf.push_str(&text);
                self.advance(false, out);
            }
            retry @ StreamEvent::Retry { .. } => {
                self.buf.clear();
                self.committed = 0;
                self.shown = 0;
                self.announced = 0;
                out(retry);
            }
            other => out(other),
        }
    }

    /// The stream is complete: whatever is still held back is decided and shown or dropped.
    pub fn finish(&mut self, out: &mut dyn FnMut(StreamEvent)) {
        self.advance(true, out);
    }

    fn advance(&mut self, complete: bool, out: &mut dyn FnMut(StreamEvent)) {
        let start = self.committed;
        let at_line_start = scan::line_start(&self.buf, start, true);
        let segments = scan::scan(
            &self.buf[start..],
            at_line_start,
            complete,
            &self.protocol.catalog,
        );
        for segment in segments {
            match segment {
                Segment::Text(r) => {
                    self.show(start + r.end, out);
                    self.committed = start + r.end;
                }
                Segment::Calls(r, calls) => {
                    for call in calls {
                        let name = match call {
                            Found::Call { name, .. } => name,
                            Found::Malformed { name, .. } => {
                                name.unwrap_or_else(|| UNREADABLE_CALL_NAME.to_string())
                            }
                        };
                        out(StreamEvent::ToolUseStarted {
                            id: self.protocol.call_id(self.announced),
                            name,
                        });
                        self.announced += 1;
                    }
                    self.committed = start + r.end;
                    self.shown = self.shown.max(self.committed);
                }
                Segment::OpenText(_) => self.show(self.buf.len(), out),
                Segment::Pending(_) => break,
            }
        }
    }

    fn show(&mut self, end: usize, out: &mut dyn FnMut(StreamEvent)) {
        if end > self.shown {
            out(StreamEvent::TextDelta(
                self.buf[self.shown..end].to_string(),
            ));
            self.shown = end;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
