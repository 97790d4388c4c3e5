//! The spend ledger: append-only JSONL, one `reserve` entry before each attempt at a call and
//! one `settle` entry after it, each line written with a single `write` and fsynced.
//!
//! Spent = settled costs + reservations that were never settled (a process killed mid-call is
//! counted at its reserved worst case), so a kill -9 never under-counts and a re-run resumes the
//! same budget.
//!
//! # Integrity
//! Each line carries `total`, the ledger's spent figure once that line is counted, and `prev`,
//! the start of the SHA-256 of the line before it (`""` on the first line). Reading checks every
//! line: amounts are non-negative and `cost_usd` says what `cost` says, `total` is what the lines
//! up to it add up to, `prev` matches the line before. A failed check names the line
//! ([`GovernorError::LedgerCorrupt`]). A truncated or emptied ledger has nothing left to
//! contradict it, so the run keeps the total it last saw and checks the ledger against it
//! ([`LedgerContents::verify_total_at_least`], exposed as [`Ledger::verify`] and
//! `Governor::verify_ledger`). This catches accidents and careless edits; it is not a
//! signature — whoever can write the file can rewrite the whole chain.
//!
//! Migration: lines written before the chain existed have no `total` and no `prev` (and no
//! `attempt`, read as 1). They are accepted, their amounts checked, and count toward every
//! later `total`; the chain starts at the first line that has them. A line without them after
//! one with them is corruption. A last line cut short by a crash is dropped (and reported), as
//! before: its call still counts by its reservation.

mod backend;
mod contents;
pub mod postgres;

pub use backend::{BoxFuture, BudgetView, FileBackend, LedgerBackend, PlanFn, ReserveRequest};
pub use contents::{LedgerContents, SessionTotals};

use crate::charge::AttemptOutcome;
use crate::error::GovernorError;
use contents::Tally;
use llm::Usd;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// Written before an attempt: `reserved` is its worst-case cost.
    Reserve,
    /// Written after an attempt (or its failure): `cost` is what it cost.
    Settle,
}

fn first_attempt() -> u32 {
    1
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One line of `ledger.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: EntryKind,
    /// RFC 3339, UTC.
    pub time: String,
    /// The call this attempt belongs to; with `attempt`, pairs a `settle` with its `reserve`.
    pub call: String,
    /// 1 for the first attempt at a call, 2 for its first retry... (1 in old ledgers).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
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
    /// Nano-dollars reserved for the attempt.
    pub reserved: Usd,
    #[serde(default)]
    pub request_id: Option<String>,
    /// Token counts are the client's estimate (the server sent none).
    #[serde(default)]
    pub estimated: bool,
    /// How the attempt ended (settle entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<AttemptOutcome>,
    /// The provider billed above what the attempt asked for (see `note`); the run stopped.
    #[serde(default, skip_serializing_if = "is_false")]
    pub overbilled: bool,
    #[serde(default)]
    pub note: Option<String>,
    /// The ledger's spent figure once this line is counted (written by [`Ledger::append`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<Usd>,
    /// The start of the SHA-256 of the previous line, `""` on the first (written by
    /// [`Ledger::append`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

impl LedgerEntry {
    /// A blank entry of `kind` for attempt `attempt` of `call`; the caller fills in the rest.
    pub fn new(
        kind: EntryKind,
        call: &str,
        attempt: u32,
        session: &str,
        model_asked: &str,
    ) -> LedgerEntry {
        LedgerEntry {
            kind,
            time: now_rfc3339(),
            call: call.to_string(),
            attempt,
            session: session.to_string(),
            model_asked: model_asked.to_string(),
            model_served: None,
            input_tokens: 0,
            output_tokens: 0,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost: Usd::ZERO,
            cost_usd: Usd::ZERO.to_string(),
            reserved: Usd::ZERO,
            request_id: None,
            estimated: false,
            outcome: None,
            overbilled: false,
            note: None,
            total: None,
            prev: None,
        }
    }

    /// Sets `cost` and its display form together.
    pub fn set_cost(&mut self, cost: Usd) {
        self.cost = cost;
        self.cost_usd = cost.to_string();
    }
}

/// The chain link of a line: the first 16 bytes of its SHA-256, in hex.
fn line_hash(line: &[u8]) -> String {
    hex::encode(&sha2::Sha256::digest(line)[..16])
}

/// The ledger file, open for appending.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    inner: Mutex<Appender>,
}

/// The file and what the next line must continue: the running total and the last line's hash.
#[derive(Debug)]
struct Appender {
    file: File,
    tally: Tally,
    last_hash: String,
}

impl Ledger {
    /// Opens (creating) the ledger and reads (and verifies) what it holds. A torn last line
    /// left by a crash is cut off so the next entry starts on a line of its own; it is reported
    /// in the returned contents. Corruption before the last line is an error and nothing is
    /// changed.
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
        let (contents, tally, last_hash) = LedgerContents::parse(path, &bytes)?;
        let complete = contents::complete_prefix_len(&bytes);
        if complete < bytes.len() {
            file.set_len(complete as u64).map_err(write_err)?;
            file.seek(SeekFrom::End(0)).map_err(write_err)?;
            file.sync_all().map_err(write_err)?;
        }
        Ok((
            Ledger {
                path: path.to_path_buf(),
                inner: Mutex::new(Appender {
                    file,
                    tally,
                    last_hash,
                }),
            },
            contents,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry, with its running `total` and `prev` link filled in: the whole line in
    /// one `write`, then fsync. If the write fails, a partly written line is cut off again.
    pub fn append(&self, mut entry: LedgerEntry) -> Result<(), GovernorError> {
        let err = |source| GovernorError::LedgerWrite {
            path: self.path.clone(),
            source,
        };
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut tally = inner.tally.clone();
        tally.count(&entry);
        entry.total = Some(tally.total());
        entry.prev = Some(inner.last_hash.clone());
        let mut line = serde_json::to_vec(&entry).map_err(|e| err(std::io::Error::other(e)))?;
        let hash = line_hash(&line);
        line.push(b'\n');
        let before = inner.file.metadata().map_err(err)?.len();
        let written = write_line(&mut inner.file, &line);
        if let Err(e) = written {
            // Leave the file line-aligned and the chain unbroken; the entry was not recorded.
            let _ = inner.file.set_len(before);
            return Err(err(e));
        }
        inner.tally = tally;
        inner.last_hash = hash;
        Ok(())
    }

    /// Re-reads the ledger, checks every line, and checks that it still accounts for at least
    /// `expected` (the total the run last saw). Returns what it accounts for.
    pub fn verify(&self, expected: Usd) -> Result<Usd, GovernorError> {
        let contents = LedgerContents::read(&self.path)?;
        contents.verify_total_at_least(&self.path, expected)?;
        Ok(contents.total_spent())
    }
}

fn write_line(file: &mut File, line: &[u8]) -> std::io::Result<()> {
    let written = file.write(line)?;
    if written != line.len() {
        // A short write on a regular file means the disk is full or similar: finish the
        // line so the file stays line-aligned, or fail.
        file.write_all(&line[written..])?;
    }
    file.sync_data()
}

/// Now, as RFC 3339 UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests;
