//! One session's transcript: a JSONL file, one [`TranscriptEntry`] per line, appended and written
//! through to the file as the session goes, so a killed session leaves a readable record.

use crate::EndReason;
use llm::{ContentPart, Message, Usage, Usd};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of a transcript. Each carries `"entry"` (its kind) and `"ts"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum TranscriptEntry {
    /// First line: who, with what prompt and which tools.
    Session {
        ts: String,
        session: String,
        model: String,
        system: String,
        tools: Vec<String>,
    },
    /// A message the harness added to the conversation (the task, tool results, notices).
    Message { ts: String, message: Message },
    /// A model answer (the assistant message) with what it cost.
    Response {
        ts: String,
        turn: u32,
        parts: Vec<ContentPart>,
        stop_reason: String,
        usage: Usage,
        #[serde(with = "crate::events::usd_nanos")]
        cost: Usd,
        served_model: String,
        request_id: Option<String>,
    },
    /// A tool call about to run.
    ToolCall {
        ts: String,
        id: String,
        name: String,
        input: serde_json::Value,
    },
    /// What the tool call produced (as sent back to the model).
    ToolResult {
        ts: String,
        id: String,
        name: String,
        content: String,
        is_error: bool,
        exit_code: Option<i32>,
        duration_ms: u64,
    },
    /// Last line when the session ends by itself.
    End {
        ts: String,
        end: EndReason,
        /// The evidence for the ending (empty for a plain completion).
        #[serde(default)]
        detail: String,
        turns: u32,
        #[serde(with = "crate::events::usd_nanos")]
        cost: Usd,
    },
    /// Last line when the session fails.
    Error { ts: String, message: String },
}

/// An open transcript file.
#[derive(Debug)]
pub struct Transcript {
    path: PathBuf,
    file: File,
}

impl Transcript {
    /// Opens `path` for appending (creating it and its parent directories).
    pub fn create(path: &Path) -> std::io::Result<Transcript> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Transcript {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one line and flushes it to the file (no user-space buffering).
    pub fn append(&mut self, entry: &TranscriptEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()
    }

    /// Reads a transcript back, skipping a torn last line (a session killed mid-write).
    pub fn read(path: &Path) -> std::io::Result<Vec<TranscriptEntry>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_readable_lines_and_survives_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions").join("s1.jsonl");
        let mut t = Transcript::create(&path).unwrap();
        t.append(&TranscriptEntry::Message {
            ts: "t".into(),
            message: Message::user_text("hello"),
        })
        .unwrap();
        // Visible before the transcript is dropped.
        assert_eq!(Transcript::read(&path).unwrap().len(), 1);
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"entry\":\"mess")
            .unwrap();
        let entries = Transcript::read(&path).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(
            matches!(&entries[0], TranscriptEntry::Message { message, .. } if message.content.len() == 1)
        );
    }
}
