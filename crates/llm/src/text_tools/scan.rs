//! Finding tool calls in an answer's text: which stretches are calls, which are text, and which
//! cannot be decided yet because the text is still streaming in.
//!
//! Recognised (what small and open models write when tools are described in the prompt):
//! - fenced blocks: ```` ```json ```` (and ```` ``` ````, `jsonc`, `json5`, `xml`) holding a call
//!   object — a call only when it names a tool it was offered or carries arguments, so a
//!   `package.json` in a code block stays text; ```` ```tool_call ```` (and `tool`, `tool_code`,
//!   `tool_use`, `function_call`...) always count as a call attempt;
//! - tags: `<tool_call>…</tool_call>` (Hermes, Qwen), `<tools>`, `<tool>`, `<function_call>`,
//!   `<tool_use>`; `<function=NAME>{…}</function>` (Llama 3.x) and
//!   `<function=NAME><parameter=KEY>value</parameter></function>` (Qwen3-Coder);
//!   `<|python_tag|>{…}` (Llama 3.1) and `[TOOL_CALLS][…]` (Mistral);
//! - a bare JSON call object (or array of them) starting a line, the whole answer included.
//!
//! A call object is `{"name", "arguments"}` with the usual aliases (`tool`, `tool_name`,
//! `function` for the name; `parameters`, `input`, `args`, `params` for the arguments), OpenAI's
//! `{"function": {"name", "arguments"}}` and `{"tool_calls": [...]}`, arguments given as a JSON
//! string, or the arguments flattened next to the name. In a code or call block (not bare), the
//! arguments alone count as a call of the one tool whose schema they fit (every key a property,
//! every required property there) — Qwen2.5-Coder-1.5B wrote `add_features` that way after
//! "call add_features with:" — and as text when no tool or several fit. A block meant as a call that cannot be
//! read becomes [`Found::Malformed`], so the model is told; a closing fence or tag missing at the
//! end of a finished answer is tolerated (models often stop right before it).

use super::lenient_json::{self, Extent};
use serde_json::{Map, Value};
use std::ops::Range;

/// The tools a request offered: their names and input schemas.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolCatalog {
    tools: Vec<(String, Value)>,
}

impl ToolCatalog {
    pub(crate) fn new(tools: &[crate::types::ToolSpec]) -> ToolCatalog {
        ToolCatalog {
            tools: tools
                .iter()
                .map(|t| (t.name.clone(), t.input_schema.clone()))
                .collect(),
        }
    }

    pub(crate) fn knows(&self, name: &str) -> bool {
        self.tools.iter().any(|(n, _)| n == name)
    }

    /// The one offered tool whose arguments `args` can be: every key is one of its properties
    /// and every property it requires is there. `None` when no tool or several fit.
    fn infer(&self, args: &Map<String, Value>) -> Option<&str> {
        if args.is_empty() {
            return None;
        }
        let mut fitting = self.tools.iter().filter(|(_, schema)| {
            let Some(props) = schema["properties"].as_object() else {
                return false;
            };
            let required = schema["required"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            args.keys().all(|k| props.contains_key(k))
                && required
                    .iter()
                    .filter_map(Value::as_str)
                    .all(|r| args.contains_key(r))
        });
        let (name, _) = fitting.next()?;
        fitting.next().is_none().then_some(name.as_str())
    }

    /// Whether the tool's schema types `property` as anything but a string (so a text value of
    /// it should be read as JSON).
    fn is_non_string(&self, tool: &str, property: &str) -> bool {
        self.tools
            .iter()
            .find(|(n, _)| n == tool)
            .and_then(|(_, schema)| schema["properties"][property]["type"].as_str())
            .is_some_and(|t| t != "string")
    }
}

/// How sure it is that a block is meant as a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A call block (`<tool_call>`, ```` ```tool_call ````...): a call, or a malformed one.
    Definite,
    /// A ```` ```json ```` (or unlabelled) code block: a call when it is call-shaped, or when it
    /// holds just the arguments of exactly one offered tool (small models often leave the name
    /// out: ```` ```json {"features": [...]} ```` after "call add_features with").
    Fenced,
    /// A JSON value starting a line: a call only when it names the tool.
    Bare,
}

/// One call found in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Found {
    Call {
        name: String,
        input: Value,
    },
    /// A block meant as a call that could not be read.
    Malformed {
        /// The tool it seems to name, if any.
        name: Option<String>,
        /// The block's content, as written.
        raw: String,
        /// What is wrong, for the model.
        problem: String,
    },
}

/// A stretch of the answer's text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Segment {
    Text(Range<usize>),
    Calls(Range<usize>, Vec<Found>),
    /// From here to the end the text may be shown (it is inside a code block of another
    /// language), but where it ends is not known yet. Only when the text is not complete.
    OpenText(usize),
    /// From here to the end: undecided (a possible call). Only when the text is not complete.
    Pending(usize),
}

/// Fence languages that mark a call block.
const CALL_LANGS: [&str; 11] = [
    "tool_call",
    "tool_calls",
    "toolcall",
    "tool-call",
    "tool",
    "tools",
    "tool_code",
    "tool_use",
    "function_call",
    "function",
    "functions",
];
/// Fence languages whose block is a call when its content is one.
const JSON_LANGS: [&str; 5] = ["json", "jsonc", "json5", "xml", ""];
/// Tags whose content is a call.
const CALL_TAGS: [&str; 7] = [
    "tool_call",
    "tool_calls",
    "tools",
    "tool",
    "function_call",
    "function_calls",
    "tool_use",
];
const NAME_KEYS: [&str; 5] = ["name", "tool", "tool_name", "function", "function_name"];
const ARG_KEYS: [&str; 5] = ["arguments", "parameters", "input", "args", "params"];
const PYTHON_TAG: &str = "<|python_tag|>";
const MISTRAL_MARKER: &str = "[TOOL_CALLS]";
const FUNCTION_OPEN: &str = "<function=";

/// What one opener turned out to be.
enum Step {
    /// Nothing starts here.
    No,
    /// A block that is text, ending at this offset.
    Text(usize),
    Calls(usize, Vec<Found>),
    OpenText,
    Pending,
}

/// Splits `text` into segments. `at_line_start`: whether `text` begins a line (it does unless it
/// continues a line of text before it). With `complete` false the text is a prefix of a longer
/// answer, and the last segment may be [`Segment::OpenText`] or [`Segment::Pending`].
pub(crate) fn scan(
    text: &str,
    at_line_start: bool,
    complete: bool,
    tools: &ToolCatalog,
) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let push_text = |out: &mut Vec<Segment>, r: Range<usize>| {
        if !r.is_empty() {
            out.push(Segment::Text(r));
        }
    };
    while i < text.len() {
        let rest = &text[i..];
        let step = match rest.as_bytes()[0] {
            b'`' => fence(text, i, complete, tools),
            b'<' => tag(text, i, complete, tools),
            b'[' if rest.starts_with(MISTRAL_MARKER) => {
                value_after(text, i + MISTRAL_MARKER.len(), complete, tools)
            }
            b'[' if !complete && MISTRAL_MARKER.starts_with(rest) => Step::Pending,
            b'{' | b'[' if line_start(text, i, at_line_start) => bare(text, i, complete, tools),
            _ => Step::No,
        };
        match step {
            Step::No => i += rest.chars().next().map_or(1, char::len_utf8),
            Step::Text(end) => i = end,
            Step::Calls(end, calls) => {
                push_text(&mut out, text_start..i);
                out.push(Segment::Calls(i..end, calls));
                text_start = end;
                i = end;
            }
            Step::OpenText => {
                push_text(&mut out, text_start..i);
                out.push(Segment::OpenText(i));
                return out;
            }
            Step::Pending => {
                push_text(&mut out, text_start..i);
                out.push(Segment::Pending(i));
                return out;
            }
        }
    }
    push_text(&mut out, text_start..text.len());
    out
}

/// Whether only spaces or tabs stand between the start of the line and `i`.
pub(crate) fn line_start(text: &str, i: usize, at_line_start: bool) -> bool {
    let before = &text[..i];
    match before.rfind('\n') {
        Some(nl) => before[nl + 1..].chars().all(|c| c == ' ' || c == '\t'),
        None => at_line_start && before.chars().all(|c| c == ' ' || c == '\t'),
    }
}

fn skip_ws(text: &str, mut j: usize) -> usize {
    while let Some(c) = text[j..].chars().next() {
        if !c.is_whitespace() {
            break;
        }
        j += c.len_utf8();
    }
    j
}

/// Skips the JSON values (and whitespace) starting at `j`: the offset after the last complete
/// one, or `None` when the text ends inside one.
fn skip_json_values(text: &str, mut j: usize) -> Option<usize> {
    loop {
        let k = skip_ws(text, j);
        match text.as_bytes().get(k) {
            Some(b'{' | b'[') => match lenient_json::extent(text, k) {
                Extent::Complete(e) => j = e,
                Extent::Incomplete => return None,
            },
            _ => return Some(j),
        }
    }
}

fn fence(text: &str, i: usize, complete: bool, tools: &ToolCatalog) -> Step {
    let rest = &text[i..];
    if !rest.starts_with("```") {
        return if !complete && "```".starts_with(rest) {
            Step::Pending
        } else {
            Step::No
        };
    }
    let lang_start = i + 3;
    let lang_len = text[lang_start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.')))
        .unwrap_or(text.len() - lang_start);
    let lang_end = lang_start + lang_len;
    if lang_end == text.len() && !complete {
        return Step::Pending;
    }
    let lang = text[lang_start..lang_end].to_ascii_lowercase();
    let kind = if CALL_LANGS.contains(&lang.as_str()) {
        Kind::Definite
    } else if JSON_LANGS.contains(&lang.as_str()) {
        Kind::Fenced
    } else {
        return code_fence(text, lang_end, complete);
    };
    // The content ends at the closing fence after its JSON values (so a fence inside a JSON
    // string does not end it), or at the next fence when it is not JSON.
    let Some(after_values) = skip_json_values(text, lang_end) else {
        return if complete {
            block(text, lang_end..text.len(), text.len(), kind, tools)
        } else {
            Step::Pending
        };
    };
    match text[after_values..].find("```") {
        Some(k) => {
            let close = after_values + k;
            block(text, lang_end..close, close + 3, kind, tools)
        }
        None if complete => block(text, lang_end..text.len(), text.len(), kind, tools),
        None => Step::Pending,
    }
}

/// A code block of another language: text, up to and including its closing fence line.
fn code_fence(text: &str, from: usize, complete: bool) -> Step {
    let mut pos = from;
    while let Some(nl) = text[pos..].find('\n') {
        let line_start = pos + nl + 1;
        let line = &text[line_start..];
        let indent = line.len() - line.trim_start_matches([' ', '\t']).len();
        if line[indent..].starts_with("```") {
            return Step::Text(line_start + indent + 3);
        }
        pos = line_start;
    }
    if complete {
        Step::Text(text.len())
    } else {
        Step::OpenText
    }
}

/// A block whose content (at `content`) is a call, or text when it is not one (and need not be).
fn block(text: &str, content: Range<usize>, end: usize, kind: Kind, tools: &ToolCatalog) -> Step {
    match parse_content(&text[content], kind, tools) {
        Some(calls) => Step::Calls(end, calls),
        None => Step::Text(end),
    }
}

fn tag(text: &str, i: usize, complete: bool, tools: &ToolCatalog) -> Step {
    let rest = &text[i..];
    for name in CALL_TAGS {
        let open = format!("<{name}>");
        if rest.starts_with(&open) {
            let close = format!("</{name}>");
            return tagged(text, i + open.len(), &close, complete, |content| {
                parse_content(content, Kind::Definite, tools).unwrap_or_default()
            });
        }
    }
    if let Some(after) = rest.strip_prefix(FUNCTION_OPEN) {
        let Some(gt) = after.find('>') else {
            return if complete { Step::No } else { Step::Pending };
        };
        let name = after[..gt].trim().trim_matches(|c| c == '"' || c == '\'');
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Step::No;
        }
        let content_start = i + FUNCTION_OPEN.len() + gt + 1;
        return tagged(text, content_start, "</function>", complete, |content| {
            vec![function_call(name, content, tools)]
        });
    }
    if rest.starts_with(PYTHON_TAG) {
        return value_after(text, i + PYTHON_TAG.len(), complete, tools);
    }
    let partial = !complete
        && (CALL_TAGS.iter().any(|t| format!("<{t}>").starts_with(rest))
            || FUNCTION_OPEN.starts_with(rest)
            || PYTHON_TAG.starts_with(rest));
    if partial {
        Step::Pending
    } else {
        Step::No
    }
}

/// A tagged block from `content_start` to `close`; a missing close tag at the end of a finished
/// answer is tolerated.
fn tagged(
    text: &str,
    content_start: usize,
    close: &str,
    complete: bool,
    read: impl FnOnce(&str) -> Vec<Found>,
) -> Step {
    let search_from = skip_json_values(text, content_start);
    let found = search_from.and_then(|from| text[from..].find(close).map(|k| from + k));
    let (content_end, end) = match found {
        Some(k) => (k, k + close.len()),
        // Without its close tag, a tag is a call only when a call follows it (not when prose
        // merely mentions the tag).
        None if complete => {
            let k = skip_ws(text, content_start);
            let rest = &text[k..];
            if !(rest.starts_with(['{', '[', '<']) || rest.starts_with("```")) {
                return Step::No;
            }
            (text.len(), text.len())
        }
        None => return Step::Pending,
    };
    let content = &text[content_start..content_end];
    let mut calls = read(content);
    if calls.is_empty() {
        calls.push(malformed(
            content,
            "the block holds no tool call; write {\"name\": ..., \"arguments\": {...}}",
        ));
    }
    Step::Calls(end, calls)
}

/// A JSON value after a marker (`<|python_tag|>`, `[TOOL_CALLS]`).
fn value_after(text: &str, after: usize, complete: bool, tools: &ToolCatalog) -> Step {
    let k = skip_ws(text, after);
    let end = match text.as_bytes().get(k) {
        Some(b'{' | b'[') => match lenient_json::extent(text, k) {
            Extent::Complete(e) => e,
            Extent::Incomplete if complete => text.len(),
            Extent::Incomplete => return Step::Pending,
        },
        None if !complete => return Step::Pending,
        _ => text.len(),
    };
    let content = &text[after..end];
    let calls = parse_content(content, Kind::Definite, tools).unwrap_or_default();
    if calls.is_empty() {
        return Step::Calls(
            end,
            vec![malformed(content, "no tool call after the marker")],
        );
    }
    Step::Calls(end, calls)
}

/// A JSON value at the start of a line: a call when it is call-shaped, else text.
fn bare(text: &str, i: usize, complete: bool, tools: &ToolCatalog) -> Step {
    if text.as_bytes()[i] == b'[' {
        let k = skip_ws(text, i + 1);
        match text.as_bytes().get(k) {
            Some(b'{') => {}
            None if !complete => return Step::Pending,
            _ => return Step::No,
        }
    }
    match lenient_json::extent(text, i) {
        Extent::Complete(end) => match parse_content(&text[i..end], Kind::Bare, tools) {
            Some(calls) => Step::Calls(end, calls),
            None => Step::Text(end),
        },
        Extent::Incomplete if !complete => Step::Pending,
        Extent::Incomplete => {
            let content = &text[i..];
            if looks_like_call(content, tools) {
                let problem = lenient_json::parse(content)
                    .err()
                    .unwrap_or_else(|| "the JSON is incomplete".to_string());
                Step::Calls(text.len(), vec![malformed(content, &problem)])
            } else {
                Step::No
            }
        }
    }
}

fn malformed(content: &str, problem: &str) -> Found {
    Found::Malformed {
        name: guess_name(content),
        raw: content.trim().to_string(),
        problem: problem.to_string(),
    }
}

/// The calls in a block's content: JSON call values, or tags. `None` when the content is not a
/// call (never for [`Kind::Definite`]).
pub(crate) fn parse_content(content: &str, kind: Kind, tools: &ToolCatalog) -> Option<Vec<Found>> {
    let definite = kind == Kind::Definite;
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.starts_with('<') || trimmed.starts_with("```") {
        let calls: Vec<Found> = scan(trimmed, true, true, tools)
            .into_iter()
            .filter_map(|s| match s {
                Segment::Calls(_, calls) => Some(calls),
                _ => None,
            })
            .flatten()
            .collect();
        return if calls.is_empty() {
            definite.then(|| vec![malformed(trimmed, "the block holds no tool call")])
        } else {
            Some(calls)
        };
    }
    let mut calls = Vec::new();
    let mut j = 0;
    loop {
        j = skip_ws(trimmed, j);
        if j >= trimmed.len() {
            break;
        }
        let value_text = match trimmed.as_bytes()[j] {
            b'{' | b'[' => match lenient_json::extent(trimmed, j) {
                Extent::Complete(e) => {
                    let v = &trimmed[j..e];
                    j = e;
                    v
                }
                Extent::Incomplete => {
                    let v = &trimmed[j..];
                    j = trimmed.len();
                    v
                }
            },
            // Prose after the calls is ignored; a block that does not start with JSON is not
            // a call object.
            _ if !calls.is_empty() => break,
            _ => {
                return (definite || looks_like_call(trimmed, tools)).then(|| {
                    vec![malformed(
                        trimmed,
                        "a tool call is one JSON object, {\"name\": ..., \"arguments\": {...}}",
                    )]
                })
            }
        };
        match lenient_json::parse(value_text) {
            Ok(v) => match calls_from_value(&v, kind, tools) {
                Some(found) => calls.extend(found),
                None => return None,
            },
            Err(problem) => {
                if definite || looks_like_call(value_text, tools) {
                    calls.push(malformed(value_text, &format!("invalid JSON: {problem}")));
                } else {
                    return None;
                }
            }
        }
    }
    if calls.is_empty() {
        None
    } else {
        Some(calls)
    }
}

/// The calls a parsed JSON value stands for; `None` when it is not call-shaped (never for
/// [`Kind::Definite`]: a definite block that is not call-shaped is a malformed call).
fn calls_from_value(v: &Value, kind: Kind, tools: &ToolCatalog) -> Option<Vec<Found>> {
    let definite = kind == Kind::Definite;
    let not_a_call = |problem: &str| {
        definite.then(|| {
            vec![Found::Malformed {
                name: None,
                raw: v.to_string(),
                problem: problem.to_string(),
            }]
        })
    };
    match v {
        Value::Array(items) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                out.extend(calls_from_value(item, kind, tools)?);
            }
            Some(out)
        }
        Value::Object(obj) => {
            if let Some(Value::Array(_)) = obj.get("tool_calls") {
                return calls_from_value(&obj["tool_calls"], kind, tools);
            }
            match obj.get("function") {
                Some(Value::Object(f)) => call_from_object(f, kind, tools, v),
                _ => call_from_object(obj, kind, tools, v),
            }
        }
        _ => not_a_call("a tool call is a JSON object, {\"name\": ..., \"arguments\": {...}}"),
    }
}

fn call_from_object(
    obj: &Map<String, Value>,
    kind: Kind,
    tools: &ToolCatalog,
    whole: &Value,
) -> Option<Vec<Found>> {
    let definite = kind == Kind::Definite;
    let name = NAME_KEYS
        .iter()
        .find_map(|k| obj.get(*k).and_then(Value::as_str))
        .map(str::trim);
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        if kind != Kind::Bare {
            if let Some(tool) = tools.infer(obj) {
                return Some(vec![Found::Call {
                    name: tool.to_string(),
                    input: Value::Object(obj.clone()),
                }]);
            }
        }
        return definite.then(|| {
            vec![Found::Malformed {
                name: None,
                raw: whole.to_string(),
                problem: "the call has no \"name\" naming the tool".into(),
            }]
        });
    };
    let args_key = ARG_KEYS.iter().find(|k| obj.contains_key(**k)).copied();
    if !definite && args_key.is_none() && !tools.knows(name) {
        return None;
    }
    let bad = |problem: String| {
        Some(vec![Found::Malformed {
            name: Some(name.to_string()),
            raw: whole.to_string(),
            problem,
        }])
    };
    let input = match args_key.map(|k| (k, &obj[k])) {
        Some((_, Value::Object(args))) => Value::Object(args.clone()),
        Some((_, Value::Null)) => Value::Object(Map::new()),
        Some((_, Value::String(s))) if s.trim().is_empty() => Value::Object(Map::new()),
        Some((key, Value::String(s))) => match lenient_json::parse(s) {
            Ok(Value::Object(args)) => Value::Object(args),
            Ok(_) => {
                return bad(format!(
                "\"{key}\" is a string that is not a JSON object; give the arguments as an object"
            ))
            }
            Err(e) => return bad(format!("\"{key}\" is a string that is not valid JSON: {e}")),
        },
        Some((key, _)) => {
            return bad(format!(
                "\"{key}\" must be a JSON object holding the arguments"
            ))
        }
        // The arguments written next to the name.
        None => Value::Object(
            obj.iter()
                .filter(|(k, _)| {
                    !NAME_KEYS.contains(&k.as_str()) && !matches!(k.as_str(), "id" | "type")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    };
    Some(vec![Found::Call {
        name: name.to_string(),
        input,
    }])
}

/// `<function=NAME>` content: a JSON object, `<parameter=KEY>value</parameter>` pairs, or
/// nothing.
fn function_call(name: &str, content: &str, tools: &ToolCatalog) -> Found {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Found::Call {
            name: name.to_string(),
            input: Value::Object(Map::new()),
        };
    }
    if trimmed.starts_with('{') {
        return match lenient_json::parse(trimmed) {
            Ok(Value::Object(args)) => Found::Call {
                name: name.to_string(),
                input: Value::Object(args),
            },
            Ok(_) => Found::Malformed {
                name: Some(name.to_string()),
                raw: trimmed.to_string(),
                problem: "the arguments must be one JSON object".into(),
            },
            Err(e) => Found::Malformed {
                name: Some(name.to_string()),
                raw: trimmed.to_string(),
                problem: format!("invalid JSON: {e}"),
            },
        };
    }
    let mut args = Map::new();
    let mut rest = trimmed;
    while let Some(p) = rest.find("<parameter=") {
        let after = &rest[p + "<parameter=".len()..];
        let Some(gt) = after.find('>') else { break };
        let key = after[..gt].trim().trim_matches(|c| c == '"' || c == '\'');
        let body = &after[gt + 1..];
        let (value, next) = match body.find("</parameter>") {
            Some(e) => (&body[..e], &body[e + "</parameter>".len()..]),
            None => (body, ""),
        };
        let value = value.strip_prefix('\n').unwrap_or(value);
        let value = value.strip_suffix('\n').unwrap_or(value);
        let parsed = if tools.is_non_string(name, key) {
            lenient_json::parse(value.trim()).unwrap_or_else(|_| Value::String(value.to_string()))
        } else {
            Value::String(value.to_string())
        };
        args.insert(key.to_string(), parsed);
        rest = next;
    }
    if args.is_empty() {
        return Found::Malformed {
            name: Some(name.to_string()),
            raw: trimmed.to_string(),
            problem: "the arguments must be one JSON object".into(),
        };
    }
    Found::Call {
        name: name.to_string(),
        input: Value::Object(args),
    }
}

/// Whether text that is not valid JSON was still meant as a call: it names an offered tool, or
/// has an `"arguments"`/`"parameters"` key next to a name.
fn looks_like_call(text: &str, tools: &ToolCatalog) -> bool {
    let named = guess_name(text);
    named.as_deref().is_some_and(|n| tools.knows(n))
        || (named.is_some() && (text.contains("\"arguments\"") || text.contains("\"parameters\"")))
}

/// The tool a broken call block seems to name: the string after the first `"name"` (or
/// `"tool"`, `"tool_name"`, `"function"`) key.
pub(crate) fn guess_name(text: &str) -> Option<String> {
    for key in NAME_KEYS {
        for quote in ['"', '\''] {
            let pattern = format!("{quote}{key}{quote}");
            let Some(p) = text.find(&pattern) else {
                continue;
            };
            let after = text[p + pattern.len()..].trim_start();
            let Some(after) = after.strip_prefix(':') else {
                continue;
            };
            let after = after.trim_start();
            let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let body = &after[1..];
            let end = body.find(q)?;
            let name = &body[..end];
            if !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                return Some(name.to_string());
            }
        }
    }
    None
}
