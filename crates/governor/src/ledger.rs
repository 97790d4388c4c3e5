//! The spend ledger: append-only JSONL, one `reserve` entry before each call and one `settle`
//! entry after it, each line written with a single `write` and fsynced.
//!
//! Spent = settled costs + reservations that were never settled (a process killed mid-call is
//! counted at its reserved worst case), so a kill -9 never under-counts and a re-run resumes the
//! same budget.

use crate::error::GovernorError;
use llm::Usd;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Written before a call: `reserved` is its worst-case cost.
    Reserve,
    /// Written after a call (or its failure): `cost` is what it cost.
    Settle,
}

/// One line of `ledger.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: EntryKind,
    /// RFC 3339, UTC.
    pub time: String,
    /// Pairs a `settle` with its `reserve`.
    pub call: String,
    pub session: String,
    /// `provider/model` as configured.
    pub model_asked: String,
    /// The model the provider said answered (settle entries).
    #[serde(default)]
    pub model_served: Option<String>,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Nano-dollars (settle entries; 0 in reserve entries).
    pub cost: Usd,
    /// `cost` for people: `$0.012345`.
    pub cost_usd: String,
    /// Nano-dollars reserved for the call.
    pub reserved: Usd,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Token counts are the client's estimate (the server sent none).
    #[serde(default)]
    pub estimated: bool,
    #[serde(default)]
    pub note: Option<String>,
}

/// Per-session figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionTotals {
    /// Settled costs plus unsettled reservations.
    pub spent: Usd,
    /// Settled calls.
    pub calls: u64,
    /// Reservations never settled (crashed or killed mid-call).
    pub unsettled: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
}

/// A ledger as read from disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerContents {
    pub entries: Vec<LedgerEntry>,
    /// A last line cut short by a crash while it was written (skipped; the call it described
    /// had not started, or is still counted by its reservation).
    pub torn_tail: Option<String>,
}

impl LedgerContents {
    /// Reads `path` (a missing file is an empty ledger). A torn last line is skipped and
    /// reported in `torn_tail`; a bad line anywhere else is [`GovernorError::LedgerCorrupt`].
    pub fn read(path: &Path) -> Result<LedgerContents, GovernorError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(LedgerContents::default())
            }
            Err(source) => {
                return Err(GovernorError::LedgerRead {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::parse(path, &bytes)
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<LedgerContents, GovernorError> {
        let mut out = LedgerContents::default();
        let complete_len = complete_prefix_len(bytes);
        let (complete, tail) = bytes.split_at(complete_len);
        for (i, line) in complete.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let entry: LedgerEntry =
                serde_json::from_slice(line).map_err(|e| GovernorError::LedgerCorrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    reason: e.to_string(),
                })?;
            out.entries.push(entry);
        }
        if !tail.iter().all(u8::is_ascii_whitespace) {
            out.torn_tail = Some(String::from_utf8_lossy(tail).into_owned());
        }
        Ok(out)
    }

    /// Everything spent: settled costs plus unsettled reservations.
    pub fn total_spent(&self) -> Usd {
        self.totals_by_session()
            .values()
            .fold(Usd::ZERO, |acc, t| acc.saturating_add(t.spent))
    }

    /// Figures per session, sessions in name order.
    pub fn totals_by_session(&self) -> BTreeMap<String, SessionTotals> {
        let settled: BTreeSet<&str> = self
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Settle)
            .map(|e| e.call.as_str())
            .collect();
        let mut totals: BTreeMap<String, SessionTotals> = BTreeMap::new();
        for e in &self.entries {
            let t = totals.entry(e.session.clone()).or_default();
            match e.kind {
                EntryKind::Settle => {
                    t.spent = t.spent.saturating_add(e.cost);
                    t.calls += 1;
                    t.input_tokens += e.input_tokens;
                    t.output_tokens += e.output_tokens;
                    t.cache_read_tokens += e.cache_read_tokens;
                    t.cache_write_tokens += e.cache_write_tokens;
                }
                EntryKind::Reserve if !settled.contains(e.call.as_str()) => {
                    t.spent = t.spent.saturating_add(e.reserved);
                    t.unsettled += 1;
                }
                EntryKind::Reserve => {}
            }
        }
        totals
    }
}

/// Length of the part of `bytes` made of complete (newline-terminated) lines.
fn complete_prefix_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

/// The ledger file, open for appending.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: Mutex<File>,
}

impl Ledger {
    /// Opens (creating) the ledger and reads what it holds. A torn last line left by a crash is
    /// cut off so the next entry starts on a line of its own; it is reported in the returned
    /// contents. Corruption before the last line is an error and nothing is changed.
    pub fn open(path: &Path) -> Result<(Ledger, LedgerContents), GovernorError> {
        let write_err = |source| GovernorError::LedgerWrite {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_err)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(write_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|source| GovernorError::LedgerRead {
                path: path.to_path_buf(),
                source,
            })?;
        let contents = LedgerContents::parse(path, &bytes)?;
        let complete = complete_prefix_len(&bytes);
        if complete < bytes.len() {
            file.set_len(complete as u64).map_err(write_err)?;
            file.seek(SeekFrom::End(0)).map_err(write_err)?;
            file.sync_all().map_err(write_err)?;
        }
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            },
            contents,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry: the whole line in one `write`, then fsync.
    pub fn append(&self, entry: &LedgerEntry) -> Result<(), GovernorError> {
        let err = |source| GovernorError::LedgerWrite {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_vec(entry).map_err(|e| err(std::io::Error::other(e)))?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let written = file.write(&line).map_err(err)?;
        if written != line.len() {
            // A short write on a regular file means the disk is full or similar: finish the
            // line so the file stays line-aligned, then report.
            file.write_all(&line[written..]).map_err(err)?;
        }
        file.sync_data().map_err(err)?;
        Ok(())
    }
}

/// Now, as RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: EntryKind, call: &str, session: &str, cost: i64, reserved: i64) -> LedgerEntry {
        LedgerEntry {
            kind,
            time: now_rfc3339(),
            call: call.into(),
            session: session.into(),
            model_asked: "anthropic/claude-sonnet-4-5".into(),
            model_served: None,
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost: Usd::from_nanos(cost),
            cost_usd: Usd::from_nanos(cost).to_string(),
            reserved: Usd::from_nanos(reserved),
            request_id: None,
            estimated: false,
            note: None,
        }
    }

    #[test]
    fn appends_and_totals_by_session() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/ledger.jsonl");
        let (ledger, contents) = Ledger::open(&path).unwrap();
        assert!(contents.entries.is_empty());
        ledger
            .append(&entry(EntryKind::Reserve, "c1", "s1", 0, 900))
            .unwrap();
        ledger
            .append(&entry(EntryKind::Settle, "c1", "s1", 300, 900))
            .unwrap();
        ledger
            .append(&entry(EntryKind::Reserve, "c2", "s2", 0, 700))
            .unwrap();
        ledger
            .append(&entry(EntryKind::Settle, "c2", "s2", 100, 700))
            .unwrap();
        ledger
            .append(&entry(EntryKind::Reserve, "c3", "s2", 0, 500))
            .unwrap(); // killed mid-call
        drop(ledger);

        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 5);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["kind"], "reserve");
        assert_eq!(first["reserved"], 900);
        assert!(first["time"].as_str().unwrap().ends_with('Z'));

        let c = LedgerContents::read(&path).unwrap();
        assert_eq!(c.entries.len(), 5);
        let t = c.totals_by_session();
        assert_eq!(t["s1"].spent.nanos(), 300);
        assert_eq!(t["s1"].calls, 1);
        assert_eq!(
            t["s2"].spent.nanos(),
            600,
            "the unsettled reservation counts at its reserved value"
        );
        assert_eq!(t["s2"].unsettled, 1);
        assert_eq!(c.total_spent().nanos(), 900);
    }

    #[test]
    fn torn_last_line_is_skipped_reported_and_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let (ledger, _) = Ledger::open(&path).unwrap();
        ledger
            .append(&entry(EntryKind::Reserve, "c1", "s", 0, 50))
            .unwrap();
        ledger
            .append(&entry(EntryKind::Settle, "c1", "s", 20, 50))
            .unwrap();
        drop(ledger);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"kind":"reserve","time":"2026-"#).unwrap();
        drop(f);

        let c = LedgerContents::read(&path).unwrap();
        assert_eq!(c.entries.len(), 2);
        assert!(c.torn_tail.as_deref().unwrap().starts_with("{\"kind\""));
        assert_eq!(c.total_spent().nanos(), 20);

        let (ledger, c) = Ledger::open(&path).unwrap();
        assert!(c.torn_tail.is_some(), "open reports the torn line");
        ledger
            .append(&entry(EntryKind::Reserve, "c2", "s", 0, 70))
            .unwrap();
        drop(ledger);
        let c = LedgerContents::read(&path).unwrap();
        assert_eq!(c.entries.len(), 3, "the next entry is on its own line");
        assert_eq!(c.torn_tail, None);
        assert_eq!(c.total_spent().nanos(), 90);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error_and_nothing_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.jsonl");
        let good = serde_json::to_string(&entry(EntryKind::Settle, "c1", "s", 20, 50)).unwrap();
        let body = format!("{good}\nthis is not json\n{good}\n");
        std::fs::write(&path, &body).unwrap();
        let err = LedgerContents::read(&path).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("ledger.jsonl"), "{msg}");
        assert_eq!(err.exit_code(), 2);
        assert!(Ledger::open(&path).is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            body,
            "a corrupt ledger is left as it was"
        );
    }

    #[test]
    fn missing_ledger_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let c = LedgerContents::read(&dir.path().join("none.jsonl")).unwrap();
        assert_eq!(c.total_spent(), Usd::ZERO);
    }
}
