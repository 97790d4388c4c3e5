//! Record/replay: a JSONL cassette with one line per model response, as received.
//!
//! Each line is a [`CassetteEntry`]: the wire format, whether the body was a stream, the HTTP
//! status, the raw body text (SSE or JSON) and a structural summary of the request that produced
//! it ([`RequestShape`]: per message the role and the kinds of its parts, with tool names — never
//! the text, which varies from run to run). Replay runs each body through the same parsers as
//! live traffic and checks that the run asks structurally the same questions.

use crate::client::WireFormat;
use crate::error::LlmError;
use crate::text_tools::ToolProtocol;
use crate::types::{ContentPart, Request, Role};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The structure of one request message: role and part kinds (`text`, `tool_use:NAME`,
/// `tool_result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageShape {
    pub role: Role,
    pub parts: Vec<String>,
}

/// The structure of a request, compared on replay.
pub type RequestShape = Vec<MessageShape>;

/// Summarizes `request` structurally.
pub fn request_shape(request: &Request) -> RequestShape {
    request
        .messages
        .iter()
        .map(|m| MessageShape {
            role: m.role,
            parts: m
                .content
                .iter()
                .map(|p| match p {
                    ContentPart::Text { .. } => "text".to_string(),
                    ContentPart::ToolUse { name, .. } => format!("tool_use:{name}"),
                    ContentPart::ToolResult { .. } => "tool_result".to_string(),
                })
                .collect(),
        })
        .collect()
}

fn describe(m: &MessageShape) -> String {
    let role = match m.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    format!("{role}[{}]", m.parts.join(", "))
}

/// Explains how `actual` differs from `recorded`, or `None` when they match.
pub fn shape_difference(recorded: &RequestShape, actual: &RequestShape) -> Option<String> {
    for (i, (r, a)) in recorded.iter().zip(actual.iter()).enumerate() {
        if r != a {
            return Some(format!(
                "message {i} was {} in the recording but this run sent {}",
                describe(r),
                describe(a)
            ));
        }
    }
    if recorded.len() != actual.len() {
        return Some(format!(
            "the recording's request had {} messages but this run sent {}",
            recorded.len(),
            actual.len()
        ));
    }
    None
}

/// One recorded response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CassetteEntry {
    pub wire: WireFormat,
    pub streamed: bool,
    pub status: u16,
    /// The raw response text exactly as received.
    pub body: String,
    pub request_shape: RequestShape,
    /// How tools were offered: with `text`, replay reads the calls from the body's text again.
    #[serde(default, skip_serializing_if = "ToolProtocol::is_native")]
    pub tool_protocol: ToolProtocol,
}

fn cassette_error(path: &Path, what: impl std::fmt::Display) -> LlmError {
    LlmError::Cassette {
        path: path.display().to_string(),
        message: what.to_string(),
    }
}

/// Appends entries to a cassette file, one fsynced line each. Shared between clients.
#[derive(Debug)]
pub struct CassetteWriter {
    path: PathBuf,
    file: Mutex<File>,
}

impl CassetteWriter {
    /// Opens `path` for appending (creating it), so a resumed run extends its recording.
    pub fn open(path: impl AsRef<Path>) -> Result<CassetteWriter, LlmError> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| cassette_error(&path, format!("cannot open for recording: {e}")))?;
        Ok(CassetteWriter {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry as a JSON line and fsyncs it.
    pub fn append(&self, entry: &CassetteEntry) -> Result<(), LlmError> {
        let mut line = serde_json::to_string(entry).map_err(|e| cassette_error(&self.path, e))?;
        line.push('\n');
        let mut file = self.file.lock().map_err(|_| {
            cassette_error(
                &self.path,
                "a previous write panicked; the recording may be incomplete",
            )
        })?;
        file.write_all(line.as_bytes())
            .and_then(|_| file.sync_data())
            .map_err(|e| cassette_error(&self.path, format!("cannot append: {e}")))
    }
}

/// A loaded cassette, handed out entry by entry in order.
#[derive(Debug)]
pub struct CassetteReader {
    source: String,
    entries: Vec<CassetteEntry>,
    next: Mutex<usize>,
}

impl CassetteReader {
    /// Loads every entry of the JSONL file at `path` (blank lines are skipped).
    pub fn open(path: impl AsRef<Path>) -> Result<CassetteReader, LlmError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| cassette_error(path, format!("cannot read the recording: {e}")))?;
        let mut entries = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: CassetteEntry = serde_json::from_str(line).map_err(|e| {
                cassette_error(
                    path,
                    format!(
                        "line {} is not a cassette entry ({e}); was it written by `--record`?",
                        n + 1
                    ),
                )
            })?;
            entries.push(entry);
        }
        Ok(CassetteReader {
            source: path.display().to_string(),
            entries,
            next: Mutex::new(0),
        })
    }

    /// A reader over entries already in memory.
    pub fn from_entries(entries: Vec<CassetteEntry>) -> CassetteReader {
        CassetteReader {
            source: "(memory)".into(),
            entries,
            next: Mutex::new(0),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Entries in the cassette, used or not.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The wire format of the first entry, if any.
    pub fn first_wire(&self) -> Option<WireFormat> {
        self.entries.first().map(|e| e.wire)
    }

    /// Takes the next entry: `(its position, the entry)`, or `ReplayExhausted`.
    pub fn take_next(&self) -> Result<(usize, CassetteEntry), LlmError> {
        let mut next = self
            .next
            .lock()
            .map_err(|_| LlmError::ReplayDiverged("the cassette lock was poisoned".into()))?;
        let i = *next;
        let entry = self
            .entries
            .get(i)
            .cloned()
            .ok_or(LlmError::ReplayExhausted { used: i })?;
        *next += 1;
        Ok((i, entry))
    }
}
