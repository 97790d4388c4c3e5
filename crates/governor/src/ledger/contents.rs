//! Reading a ledger: every line checked (amounts, running total, chain), totals per session.

use super::{line_hash, EntryKind, LedgerEntry};
use crate::error::GovernorError;
use llm::Usd;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The running count of a ledger: settled costs, and the reservations not (yet) settled. A
/// `settle` closes the `reserve` of the same call and attempt; the ledger's spent figure is the
/// settled costs plus the open reservations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    settled: Usd,
    open: BTreeMap<(String, u32), Usd>,
    open_sum: Usd,
}

impl Tally {
    pub(crate) fn count(&mut self, entry: &LedgerEntry) {
        let key = (entry.call.clone(), entry.attempt);
        match entry.kind {
            EntryKind::Reserve => {
                if let Some(old) = self.open.insert(key, entry.reserved) {
                    self.open_sum = self.open_sum.saturating_sub(old);
                }
                self.open_sum = self.open_sum.saturating_add(entry.reserved);
            }
            EntryKind::Settle => {
                if let Some(reserved) = self.open.remove(&key) {
                    self.open_sum = self.open_sum.saturating_sub(reserved);
                }
                self.settled = self.settled.saturating_add(entry.cost);
            }
        }
    }

    /// Settled costs plus open reservations.
    pub(crate) fn total(&self) -> Usd {
        self.settled.saturating_add(self.open_sum)
    }
}

/// Per-session figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionTotals {
    /// Settled costs plus unsettled reservations.
    pub spent: Usd,
    /// Calls with at least one settled attempt.
    pub calls: u64,
    /// Settled attempts (a call retried twice has three).
    pub attempts: u64,
    /// Reservations never settled (crashed or killed mid-call).
    pub unsettled: u64,
    /// Attempts the provider billed above what they asked for.
    pub overbilled: u64,
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

/// Length of the part of `bytes` made of complete (newline-terminated) lines.
pub(crate) fn complete_prefix_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
}

impl LedgerContents {
    /// Reads `path` (a missing file is an empty ledger) and checks every line (see the module
    /// docs of [`crate::ledger`]). A torn last line is skipped and reported in `torn_tail`; a
    /// bad line anywhere else is [`GovernorError::LedgerCorrupt`], naming the line.
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
        Ok(Self::parse(path, &bytes)?.0)
    }

    /// Parses and checks; also returns the tally and the last line's hash, which the next
    /// appended line continues.
    pub(crate) fn parse(
        path: &Path,
        bytes: &[u8],
    ) -> Result<(LedgerContents, Tally, String), GovernorError> {
        let mut out = LedgerContents::default();
        let (complete, tail) = bytes.split_at(complete_prefix_len(bytes));
        let mut tally = Tally::default();
        let mut last_hash = String::new();
        let mut chained = false;
        for (i, line) in complete.split(|b| *b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let corrupt = |reason: String| GovernorError::LedgerCorrupt {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            let entry: LedgerEntry =
                serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
            check_amounts(&entry).map_err(corrupt)?;
            match (&entry.prev, entry.total) {
                (Some(prev), Some(_)) => {
                    if *prev != last_hash {
                        return Err(corrupt(if out.entries.is_empty() {
                            "it links to a line before it, but it is the first line: the start of the ledger is missing".into()
                        } else {
                            "its link does not match the line before it: a line before it was changed, removed or inserted".into()
                        }));
                    }
                    chained = true;
                }
                (None, None) if !chained => {} // written before the chain existed
                (None, None) => {
                    return Err(corrupt(
                        "it has no running total and no link, but the lines before it do".into(),
                    ))
                }
                _ => {
                    return Err(corrupt(
                        "it has only one of its running total and its link".into(),
                    ))
                }
            }
            tally.count(&entry);
            if let Some(total) = entry.total {
                if total != tally.total() {
                    return Err(corrupt(format!(
                        "its running total says {total} but the lines up to it add up to {}",
                        tally.total()
                    )));
                }
            }
            last_hash = line_hash(line);
            out.entries.push(entry);
        }
        if !tail.iter().all(u8::is_ascii_whitespace) {
            out.torn_tail = Some(String::from_utf8_lossy(tail).into_owned());
        }
        Ok((out, tally, last_hash))
    }

    /// Everything spent: settled costs plus unsettled reservations.
    pub fn total_spent(&self) -> Usd {
        let mut tally = Tally::default();
        for e in &self.entries {
            tally.count(e);
        }
        tally.total()
    }

    /// Checks that the ledger still accounts for at least `expected`, the total the run last
    /// knew (a truncated or emptied ledger is [`GovernorError::LedgerShort`]). `path` names the
    /// ledger in the error.
    pub fn verify_total_at_least(&self, path: &Path, expected: Usd) -> Result<(), GovernorError> {
        let found = self.total_spent();
        if found < expected {
            return Err(GovernorError::LedgerShort {
                path: path.to_path_buf(),
                found,
                expected,
            });
        }
        Ok(())
    }

    /// Figures per session, sessions in name order.
    pub fn totals_by_session(&self) -> BTreeMap<String, SessionTotals> {
        let mut totals: BTreeMap<String, SessionTotals> = BTreeMap::new();
        let mut open: BTreeMap<(&str, u32), (&str, Usd)> = BTreeMap::new();
        let mut calls: BTreeSet<(&str, &str)> = BTreeSet::new();
        for e in &self.entries {
            let t = totals.entry(e.session.clone()).or_default();
            match e.kind {
                EntryKind::Reserve => {
                    t.spent = t.spent.saturating_add(e.reserved);
                    if let Some((session, old)) =
                        open.insert((&e.call, e.attempt), (&e.session, e.reserved))
                    {
                        let s = totals.entry(session.to_string()).or_default();
                        s.spent = s.spent.saturating_sub(old);
                    }
                }
                EntryKind::Settle => {
                    t.spent = t.spent.saturating_add(e.cost);
                    t.attempts += 1;
                    if calls.insert((&e.session, &e.call)) {
                        t.calls += 1;
                    }
                    t.overbilled += u64::from(e.overbilled);
                    t.input_tokens += e.input_tokens;
                    t.output_tokens += e.output_tokens;
                    t.cache_read_tokens += e.cache_read_tokens;
                    t.cache_write_tokens += e.cache_write_tokens;
                    if let Some((session, reserved)) = open.remove(&(e.call.as_str(), e.attempt)) {
                        let s = totals.entry(session.to_string()).or_default();
                        s.spent = s.spent.saturating_sub(reserved);
                    }
                }
            }
        }
        for (session, _) in open.values() {
            totals.entry(session.to_string()).or_default().unsettled += 1;
        }
        totals
    }
}

/// Money in a line must be non-negative, and `cost_usd` must say what `cost` says.
fn check_amounts(entry: &LedgerEntry) -> Result<(), String> {
    if entry.cost < Usd::ZERO {
        return Err(format!(
            "its cost is negative ({}); a cost is never below zero",
            entry.cost
        ));
    }
    if entry.reserved < Usd::ZERO {
        return Err(format!(
            "its reservation is negative ({}); a reservation is never below zero",
            entry.reserved
        ));
    }
    if entry.cost_usd != entry.cost.to_string() {
        return Err(format!(
            "cost_usd says {:?} but cost is {} ({} nano-dollars)",
            entry.cost_usd,
            entry.cost,
            entry.cost.nanos()
        ));
    }
    if entry.attempt == 0 {
        return Err("attempt 0 (attempts count from 1)".into());
    }
    Ok(())
}
