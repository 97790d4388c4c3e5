//! Cross-checks before a run starts or resumes: `run.json`, the spend ledger and the project's
//! git history must agree. A mismatch stops the run (bad input, exit 2) with a message that
//! says what does not add up and how to repair it — never a silent re-plan, never a silent
//! reset of spend.
//!
//! - **No `run.json`, but a run happened here**: the plan frozen in `features.json`, spend of
//!   run sessions in the ledger, or the harness's commits in the project's history (or in the
//!   state dir's mirror of it). Planning again would spend the budget again and duplicate the
//!   work. Passed only when the user started over knowingly (`loopwright reset` or
//!   `run --fresh` archive the old run and leave [`START_OVER_FILE`]).
//! - **The ledger holds less than `run.json` recorded** after its last session or stop
//!   ([`LedgerMark`]): a lower total ([`governor::Governor::verify_ledger`]), fewer lines, or
//!   another line where its last one was — truncated, emptied or replaced.
//! - **A session `run.json` records as having made model calls has no line in the ledger.**
//! - **The project's history does not contain the harness's last commit** that `run.json`
//!   records, after the git guard had its chance to put it back from the mirror.
//!
//! Decisions: the ledger mark in `run.json` only ever rises (a stop recorded after a mismatch
//! keeps the old mark, so re-running cannot launder a short ledger); sessions with no model
//! call (cancelled or refused before the first) need no ledger line; the check of the history
//! runs only on commits the harness made, never on the user's own; a ledger in a database (a
//! budget shared between processes, `--budget-name`) is not cross-checked against the run's
//! mark — other processes add to it, and the database keeps its own totals.

use super::state::{is_session_id, LedgerMark, START_OVER_FILE};
use super::{RunConfig, RunContext, RunError, FEATURES_FILE};
use crate::session::SessionError;
use governor::{Governor, GovernorError, LedgerContents};
use std::collections::BTreeSet;

/// What to do about a ledger that holds less than the run recorded.
const LEDGER_REPAIR: &str = "restore ledger.jsonl from a backup (spend must never be \
forgotten: the budget counts it), or start over knowingly with `loopwright reset` (or `loopwright \
run --fresh`): the old run is archived, nothing is deleted, and a new plan and budget start";

fn ledger_error(e: GovernorError) -> RunError {
    RunError::Session(SessionError::Governor(e))
}

/// The ledger file's contents, every line checked; `None` when the ledger is in a database (a
/// budget shared between processes: its totals are the database's, and other processes add to
/// them, so a run's own mark says nothing about it).
fn file_ledger(governor: &Governor) -> Result<Option<LedgerContents>, RunError> {
    if governor.ledger_backend().file().is_none() {
        return Ok(None);
    }
    governor.ledger().map(Some).map_err(ledger_error)
}

/// The ledger as the mark records it.
pub(super) fn mark_of(contents: &LedgerContents) -> LedgerMark {
    LedgerMark {
        total: contents.total_spent(),
        entries: contents.entries.len() as u64,
        last_link: contents.entries.last().and_then(|e| e.prev.clone()),
    }
}

/// What is missing from `contents` that `mark` recorded, if anything (the total is checked by
/// the Governor).
fn short_of(contents: &LedgerContents, mark: &LedgerMark) -> Option<String> {
    let lines = contents.entries.len() as u64;
    if lines < mark.entries {
        return Some(format!(
            "it has {lines} lines, but had {} when the run last saved: lines were removed",
            mark.entries
        ));
    }
    let Some(want) = &mark.last_link else {
        return None;
    };
    let at = usize::try_from(mark.entries).ok()?.checked_sub(1)?;
    let found = contents.entries.get(at).and_then(|e| e.prev.as_ref());
    (found != Some(want)).then(|| {
        format!(
            "its line {} is not the line the run recorded there: the ledger was replaced or \
             edited",
            at + 1
        )
    })
}

/// Whether `contents` holds everything `mark` recorded.
pub(super) fn holds(contents: &LedgerContents, mark: &LedgerMark) -> bool {
    contents.total_spent() >= mark.total && short_of(contents, mark).is_none()
}

/// There is no `run.json`: refuses to start when a run happened here anyway (see the module
/// docs), unless the user started over knowingly.
pub(super) async fn check_no_lost_run(
    cfg: &RunConfig,
    governor: &Governor,
    git: &super::git::HarnessGit,
) -> Result<(), RunError> {
    if cfg.start_over || cfg.state_dir.join(START_OVER_FILE).exists() {
        return Ok(());
    }
    let mut in_state_dir = Vec::new();
    if cfg.state_dir.join(FEATURES_FILE).exists() {
        in_state_dir.push("the plan frozen in features.json".to_string());
    }
    let ledger = file_ledger(governor)?.unwrap_or_default();
    let sessions: BTreeSet<&str> = ledger
        .entries
        .iter()
        .map(|e| e.session.as_str())
        .filter(|s| is_session_id(s))
        .collect();
    if let (Some(first), Some(last)) = (sessions.first(), sessions.last()) {
        in_state_dir.push(format!(
            "spend of {} run session(s) ({first} to {last}) in the ledger, {} in all",
            sessions.len(),
            ledger.total_spent()
        ));
    }
    let mut evidence = in_state_dir.clone();
    if let Some(commit) = git.last_harness_commit().await {
        evidence.push(format!(
            "the harness's commits in the project's history (the last: {})",
            crate::events::one_line(&commit, 100)
        ));
    }
    if evidence.is_empty() {
        return Ok(());
    }
    let repair = if in_state_dir.is_empty() {
        "if the run's state dir is elsewhere, pass it with --state-dir; or start over knowingly \
         with `loopwright run --fresh` (the project's files and history are kept; a new plan and \
         budget start)"
    } else {
        "restore run.json from a backup; or start over knowingly with `loopwright reset` (or \
         `loopwright run --fresh`): the old run is archived, nothing is deleted, and a new plan \
         and budget start"
    };
    Err(RunError::Inconsistent {
        what: format!(
            "the state dir {} has no run.json, but a run happened here: {}. run.json was \
             deleted or lost, and planning again would spend the budget again and duplicate \
             the work",
            cfg.state_dir.display(),
            evidence.join("; ")
        ),
        repair: repair.into(),
    })
}

impl RunContext<'_> {
    /// The ledger holds at least what `run.json` recorded, and a line for every session that
    /// made a model call.
    pub(super) fn check_ledger(&self) -> Result<(), RunError> {
        let Some(path) = self
            .governor
            .ledger_backend()
            .file()
            .map(|p| p.to_path_buf())
        else {
            return Ok(());
        };
        let (mark, sessions) = {
            let s = self.lock();
            let called: Vec<(u32, String, u32)> = s
                .sessions
                .iter()
                .filter(|r| r.turns > 0)
                .map(|r| (r.number, r.id.clone(), r.turns))
                .collect();
            (s.ledger.clone(), called)
        };
        let inconsistent = |what: String| RunError::Inconsistent {
            what: format!(
                "the spend ledger {} does not hold what run.json recorded: {what}",
                path.display()
            ),
            repair: LEDGER_REPAIR.into(),
        };
        if let Some(mark) = &mark {
            match self.governor.verify_ledger(mark.total) {
                Ok(_) => {}
                Err(GovernorError::LedgerShort {
                    found, expected, ..
                }) => {
                    return Err(inconsistent(format!(
                        "it accounts for {found}, but {expected} had been spent when the run \
                         last saved; it was truncated, emptied or replaced"
                    )))
                }
                Err(e) => return Err(ledger_error(e)),
            }
        }
        let contents = self.governor.ledger().map_err(ledger_error)?;
        if let Some(why) = mark.as_ref().and_then(|m| short_of(&contents, m)) {
            return Err(inconsistent(why));
        }
        let in_ledger: BTreeSet<&str> = contents
            .entries
            .iter()
            .map(|e| e.session.as_str())
            .collect();
        for (number, id, turns) in sessions {
            if !in_ledger.contains(id.as_str()) {
                return Err(inconsistent(format!(
                    "session {number} made {turns} model call(s), but the ledger has no line \
                     of {id}; it was emptied, replaced or edited"
                )));
            }
        }
        Ok(())
    }

    /// The project's history contains the harness's last commit (run after the git guard,
    /// which puts back from the mirror what it can).
    pub(super) async fn check_history(&self) -> Result<(), RunError> {
        let Some(commit) = self.lock().last_commit.clone() else {
            return Ok(());
        };
        if self.git.history_contains(&commit).await? {
            return Ok(());
        }
        let short = &commit[..commit.len().min(12)];
        Err(RunError::Inconsistent {
            what: format!(
                "the project {} does not contain the harness's last commit {short}, which \
                 run.json records, and the history mirror in the state dir could not put it back: \
                 the project's .git was replaced or rewritten, or run.json belongs to another \
                 copy of the project",
                self.cfg.project_dir.display()
            ),
            repair: "restore the project (with its .git) or the state dir from a backup; or \
                     start over knowingly with `loopwright reset` (or `loopwright run --fresh`): \
                     the old run is archived, nothing is deleted, and a new plan and budget start"
                .into(),
        })
    }

    /// Records what the ledger holds now in the run state (saved with it). The mark only
    /// rises: a ledger that no longer holds the old mark leaves it as it was.
    pub(super) fn note_ledger(&self) {
        let Ok(Some(contents)) = file_ledger(self.governor) else {
            return;
        };
        let mut s = self.lock();
        if s.ledger.as_ref().is_none_or(|old| holds(&contents, old)) {
            s.ledger = Some(mark_of(&contents));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::{EntryKind, LedgerEntry};
    use llm::Usd;

    fn entry(n: u32, prev: &str) -> LedgerEntry {
        let mut e = LedgerEntry::new(EntryKind::Settle, &format!("c{n}"), 1, "session-001", "m");
        e.set_cost(Usd::from_nanos(10_000_000));
        e.prev = Some(prev.to_string());
        e.total = Some(Usd::ZERO);
        e
    }

    #[test]
    fn a_ledger_is_short_of_its_mark_when_lines_are_gone_or_replaced() {
        let full = LedgerContents {
            entries: vec![entry(1, ""), entry(2, "aa"), entry(3, "bb")],
            torn_tail: None,
        };
        let mark = mark_of(&full);
        assert_eq!(mark.entries, 3);
        assert_eq!(mark.last_link.as_deref(), Some("bb"));
        assert!(holds(&full, &mark));
        let mut longer = full.clone();
        longer.entries.push(entry(4, "cc"));
        assert!(holds(&longer, &mark), "a ledger that grew holds its mark");
        let mut cut = full.clone();
        cut.entries.pop();
        assert!(short_of(&cut, &mark)
            .unwrap()
            .contains("lines were removed"));
        assert!(!holds(&cut, &mark));
        let mut replaced = longer.clone();
        replaced.entries[2].prev = Some("zz".into());
        assert!(short_of(&replaced, &mark).unwrap().contains("line 3"));
        assert!(!holds(&LedgerContents::default(), &mark));
    }
}
