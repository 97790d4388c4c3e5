//! The run's persistent state (`run.json` in the state dir), written atomically after every step
//! so a run stopped at any point — even by `kill -9` — resumes with the same command.

use super::features::{Feature, FeatureStatus};
use crate::outcome::EndReason;
use crate::stop::StopReason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Planning,
    Building,
    Complete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    Planning,
    Building,
}

/// How a session ended, as the run records it: the session's own ending, or the stop that
/// ended it (`budget`, `pin_violation`, `overbilled`, `error` for an error; `interrupted` for a
/// session cut off by the harness dying). Written as the plain name (`"completed"`,
/// `"no_progress"`, `"budget"`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SessionEnd {
    /// The session ended itself (see [`EndReason`]).
    Ended(EndReason),
    /// A stop ended it.
    Stopped(StopReason),
    /// A name this version does not know (written by a newer loopwright); kept as it is.
    Other(String),
}

impl SessionEnd {
    /// The session was cut off: the harness died (or stopped at once) during it.
    pub const CUT_OFF: SessionEnd = SessionEnd::Stopped(StopReason::Interrupted);

    pub fn as_str(&self) -> &str {
        match self {
            SessionEnd::Ended(e) => e.as_str(),
            SessionEnd::Stopped(s) => s.as_str(),
            SessionEnd::Other(o) => o,
        }
    }

    /// Whether the watchdog ended the session because the model misbehaved.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(self, SessionEnd::Ended(e) if e.is_misbehaviour())
    }

    /// How the ending reads in a sentence: "3 sessions ended on {this}".
    pub fn describe(&self) -> String {
        match self {
            SessionEnd::Ended(e) => e.describe().to_string(),
            other => other.as_str().replace('_', " "),
        }
    }
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<EndReason> for SessionEnd {
    fn from(end: EndReason) -> SessionEnd {
        SessionEnd::Ended(end)
    }
}

/// One session as the run remembers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub number: u32,
    pub kind: SessionKind,
    /// The id under which its calls are in the ledger (`session-003`).
    pub id: String,
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Why it ended (`completed`, `turn_limit`, `interrupted`, `budget`...); `None` while running
    /// — or when the process died during it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<SessionEnd>,
    /// The evidence for the ending (the watchdog's line: "5 turns in a row changed no file...").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub end_detail: String,
    #[serde(default)]
    pub turns: u32,
    #[serde(default)]
    pub newly_passing: Vec<String>,
    #[serde(default)]
    pub regressions: Vec<String>,
    /// The end of the model's last message, for the next session's prompt.
    #[serde(default)]
    pub final_text: String,
    /// Features passing when it ended (for the report's chart); `None` in older states and
    /// while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passing_at_end: Option<usize>,
    /// What the harness had to put right during the session (history restored, files left
    /// out of the commit...), for the next session's prompt.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The features the harness assigned to the session when it ran as one of several
    /// parallel workers (`run --workers N`); empty for a session that could work on any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// The id a session's calls carry in the ledger and its transcript's name: `session-003`.
pub fn session_id(number: u32) -> String {
    format!("session-{number:03}")
}

/// Whether `id` is the id of a run's session ([`session_id`]), not of an `exec` task.
pub fn is_session_id(id: &str) -> bool {
    id.strip_prefix("session-")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// What the spend ledger held when the run last saved after a session or a stop. On resume the
/// ledger must still hold at least this: a ledger truncated, emptied or replaced since would
/// forget spend (and with it the budget).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerMark {
    /// Everything spent, as the ledger added it up (settled costs and open reservations).
    pub total: llm::Usd,
    /// Its lines (entries).
    pub entries: u64,
    /// The link (`prev`) of its last line: the start of the hash of the line before it. The
    /// same line must still be there on resume, so a ledger replaced by another is caught too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_link: Option<String>,
}

/// In a state dir whose run was archived (`loopwright reset`, `run --fresh`): the next run
/// starts over knowingly, even on a project that holds the harness's commits. Removed once
/// that run has saved its `run.json`.
pub const START_OVER_FILE: &str = "start-over.json";

/// Leaves [`START_OVER_FILE`] in `state_dir` (created if missing) once its run was archived to
/// `archived`.
pub fn mark_start_over(state_dir: &Path, archived: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(state_dir)?;
    let json = serde_json::json!({
        "archived_to": archived,
        "time": crate::events::rfc3339_now(),
    });
    llm::atomic_write(
        &state_dir.join(START_OVER_FILE),
        json.to_string().as_bytes(),
    )
}

/// Whether `state_dir` holds anything of a run (besides a [`START_OVER_FILE`]).
pub fn holds_a_run(state_dir: &Path) -> bool {
    std::fs::read_dir(state_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name() != START_OVER_FILE && e.file_name() != "run.lock")
    })
}

impl SessionRecord {
    /// A session that has just started.
    pub fn started(number: u32, kind: SessionKind, now: &str) -> SessionRecord {
        SessionRecord {
            number,
            kind,
            id: session_id(number),
            started: now.to_string(),
            ended: None,
            end: None,
            end_detail: String::new(),
            turns: 0,
            newly_passing: vec![],
            regressions: vec![],
            final_text: String::new(),
            passing_at_end: None,
            notes: vec![],
            features: vec![],
        }
    }
}

/// Why the run last stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRecord {
    pub time: String,
    pub reason: StopReason,
    pub exit_code: i32,
    pub detail: String,
    /// For a stall: how the sessions of the stall mostly ended (`cut_off_answers`,
    /// `no_progress`, `completed`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<SessionEnd>,
    /// For an interruption: the signal that asked for it (`SIGINT`, `SIGTERM`, `SIGHUP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<crate::Signal>,
}

/// Sessions in a row that made no progress, and how each ended. Kept in `run.json`, so
/// re-running the same command does not reset it; a session with progress does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stall {
    /// Sessions in a row without progress (build: no new high of passing features; planning:
    /// no plan frozen).
    pub sessions: u32,
    /// What is compared with the stall limit: each such session counts one, and one more when
    /// the watchdog ended it for the same misbehaviour as the one before it.
    pub weight: u32,
    /// How each of those sessions ended, oldest first (`cut_off_answers`, `completed`...).
    pub endings: Vec<SessionEnd>,
}

impl Stall {
    /// A session ended `ending` without progress. A misbehaviour the watchdog ended (cut-off
    /// answers, no progress, cycles...) that repeats the previous session's counts double.
    pub fn add(&mut self, ending: &SessionEnd) {
        let repeated =
            ending.is_misbehaviour() && self.endings.last().is_some_and(|last| last == ending);
        self.sessions += 1;
        self.weight += if repeated { 2 } else { 1 };
        self.endings.push(ending.clone());
    }

    /// The ending most of the sessions had (the latest of equally frequent ones).
    pub fn cause(&self) -> Option<SessionEnd> {
        let mut best: Option<(&SessionEnd, usize)> = None;
        for e in &self.endings {
            let n = self.endings.iter().filter(|x| *x == e).count();
            if best.is_none_or(|(_, m)| n >= m) {
                best = Some((e, n));
            }
        }
        best.map(|(e, _)| e.clone())
    }

    /// "3 sessions ended on repeated cut-off answers", or with mixed endings "3 sessions in a
    /// row made no progress (2 ended on ..., 1 on ...)".
    pub fn describe(&self) -> String {
        let plural = if self.sessions == 1 { "" } else { "s" };
        let mut counts: Vec<(SessionEnd, usize)> = Vec::new();
        for e in &self.endings {
            match counts.iter_mut().find(|(k, _)| k == e) {
                Some((_, n)) => *n += 1,
                None => counts.push((e.clone(), 1)),
            }
        }
        match counts.as_slice() {
            [] => format!(
                "{} session{plural} in a row made no progress",
                self.sessions
            ),
            [(only, _)] => format!(
                "{} session{plural} in a row ended on {} without progress",
                self.sessions,
                only.describe()
            ),
            _ => {
                counts.sort_by_key(|c| std::cmp::Reverse(c.1));
                let parts: Vec<String> = counts
                    .iter()
                    .map(|(e, n)| format!("{n} on {}", e.describe()))
                    .collect();
                format!(
                    "{} sessions in a row made no progress (ended {})",
                    self.sessions,
                    parts.join(", ")
                )
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub version: u32,
    pub project_dir: PathBuf,
    pub model: String,
    /// sha256 of the spec the run was planned from.
    pub spec_sha256: String,
    pub phase: Phase,
    /// Features recorded so far. During planning they grow with each `add_features`; once the
    /// plan is frozen this is a copy of the canonical list.
    pub features: Vec<Feature>,
    pub status: BTreeMap<String, FeatureStatus>,
    pub sessions: Vec<SessionRecord>,
    /// Sessions in a row without progress, with their endings (survives a resume).
    #[serde(default)]
    pub stall: Stall,
    /// The most features that ever passed at a session's end. A build session makes progress
    /// when it beats this: fixing what a session broke earlier is not progress, so a model that
    /// breaks and repairs the same feature over and over still stalls.
    #[serde(default)]
    pub best_passing: usize,
    /// The last planning session ended normally with features recorded: they await freezing.
    /// Saved before freezing starts, so a run killed while freezing freezes on resume instead of
    /// planning again; cleared when freezing finds problems (planning must redo them).
    #[serde(default)]
    pub plan_ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stop: Option<StopRecord>,
    /// What the ledger held at the last save after a session or a stop (checked on resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerMark>,
    /// The harness's last commit (on resume the project's history must contain it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_commit: Option<String>,
    /// Parallel build sessions (`run --workers N`), each in its own copy of the project on its
    /// own branch, oldest first; finished ones stay as a record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerRecord>,
}

/// Where a worker's work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStage {
    /// Its session runs (or was cut off: a resume commits and merges what it left).
    Running,
    /// Its work is merged into the run's branch.
    Merged,
    /// Its branch conflicted with the run's branch; the merge was aborted and its features
    /// wait for a session that resolves the conflict (its branch is kept).
    Conflict,
    /// A later session took over its conflicting work (merged it, or handed it on again).
    TakenOver,
    /// Nothing of it could be merged (its copy of the project was lost); its features went
    /// back to the others.
    Abandoned,
}

/// One parallel build session: its features, where its copy of the project is, and how far
/// its work got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// The session's number (its id is [`session_id`]).
    pub session: u32,
    /// The features the harness assigned to it; no other worker holds them while it runs.
    pub features: Vec<String>,
    /// Its branch (in its copy, and in the project while conflicting).
    pub branch: String,
    /// Its copy of the project.
    pub dir: PathBuf,
    /// The run's commit it started from.
    pub base: String,
    pub stage: WorkerStage,
    /// Its features whose check passed in its copy during its session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<String>,
    /// The merge commit, once merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge_commit: Option<String>,
    /// A conflicting earlier worker whose work this one continues (its session number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continues: Option<u32>,
    /// Files its merge conflicted in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
}

impl RunState {
    /// Whether a worker's work waits for the harness: a worker cut off while running, or a
    /// conflict waiting for a session.
    pub fn workers_pending(&self) -> bool {
        self.workers
            .iter()
            .any(|w| matches!(w.stage, WorkerStage::Running | WorkerStage::Conflict))
    }

    /// Features a running worker holds.
    pub fn held_features(&self) -> std::collections::BTreeSet<String> {
        self.workers
            .iter()
            .filter(|w| w.stage == WorkerStage::Running)
            .flat_map(|w| w.features.iter().cloned())
            .collect()
    }
}

impl RunState {
    pub fn new(project_dir: PathBuf, model: String, spec_sha256: String) -> RunState {
        RunState {
            version: STATE_VERSION,
            project_dir,
            model,
            spec_sha256,
            phase: Phase::Planning,
            features: Vec::new(),
            status: BTreeMap::new(),
            sessions: Vec::new(),
            stall: Stall::default(),
            best_passing: 0,
            plan_ready: false,
            last_stop: None,
            ledger: None,
            last_commit: None,
            workers: Vec::new(),
        }
    }

    pub fn path(state_dir: &Path) -> PathBuf {
        state_dir.join("run.json")
    }

    /// Loads `run.json`; `Ok(None)` when there is none yet.
    pub fn load(state_dir: &Path) -> Result<Option<RunState>, StateError> {
        let path = RunState::path(state_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let state: RunState = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(StateError::Corrupt {
                path,
                message: format!(
                    "state version {} is not supported (expected {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(Some(state))
    }

    pub fn save(&self, state_dir: &Path) -> Result<(), StateError> {
        let path = RunState::path(state_dir);
        let json = serde_json::to_vec_pretty(self).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        llm::atomic_write(&path, &json).map_err(|source| StateError::Io { path, source })
    }

    /// Features recorded as passing: their check passed and the work it passed on is
    /// committed.
    pub fn passing(&self) -> usize {
        self.features
            .iter()
            .filter(|f| {
                self.status
                    .get(&f.id)
                    .is_some_and(FeatureStatus::recorded_passing)
            })
            .count()
    }

    /// Features whose last check passed, committed or not (what the live view shows as the
    /// session goes; [`RunState::passing`] counts only what a commit backs).
    pub fn verified_passing(&self) -> usize {
        self.features
            .iter()
            .filter(|f| self.status.get(&f.id).is_some_and(|st| st.passes))
            .count()
    }

    pub fn all_passing(&self) -> bool {
        !self.features.is_empty() && self.passing() == self.features.len()
    }

    pub fn next_session_number(&self) -> u32 {
        self.sessions.iter().map(|s| s.number).max().unwrap_or(0) + 1
    }

    /// A session that has no end was cut off (the process died); mark it so. A cut-off build
    /// session is credited with the features it verified (saved as each verdict came), so spend
    /// by feature and the next prompt see them.
    pub fn close_interrupted_sessions(&mut self, now: &str) -> Vec<u32> {
        let mut closed = Vec::new();
        for s in self.sessions.iter_mut().filter(|s| s.end.is_none()) {
            s.end = Some(SessionEnd::CUT_OFF);
            s.ended = Some(now.to_string());
            if s.kind == SessionKind::Building {
                s.newly_passing = self
                    .features
                    .iter()
                    .filter(|f| {
                        self.status
                            .get(&f.id)
                            .is_some_and(|st| st.passes && st.verified_in == Some(s.number))
                    })
                    .map(|f| f.id.clone())
                    .collect();
            }
            closed.push(s.number);
        }
        closed
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read or write run state {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("run state {path} is unreadable: {message}; move it away to start the run over")]
    Corrupt { path: PathBuf, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_closes_cut_off_sessions() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = RunState::new(dir.path().to_path_buf(), "anthropic/x".into(), "abc".into());
        s.sessions.push(SessionRecord {
            turns: 3,
            ..SessionRecord::started(1, SessionKind::Planning, "t0")
        });
        s.save(dir.path()).unwrap();
        let mut back = RunState::load(dir.path()).unwrap().unwrap();
        assert_eq!(back, s);
        assert_eq!(back.close_interrupted_sessions("t1"), vec![1]);
        assert_eq!(back.sessions[0].end, Some(SessionEnd::CUT_OFF));
        assert_eq!(back.next_session_number(), 2);
    }

    #[test]
    fn a_cut_off_build_session_is_credited_with_what_it_verified() {
        let mut s = RunState::new(PathBuf::from("/p"), "anthropic/x".into(), "abc".into());
        for id in ["F1", "F2", "F3"] {
            s.features.push(Feature {
                id: id.into(),
                category: String::new(),
                description: "d".into(),
                steps: vec![],
                check: "true".into(),
                test_files: vec![],
            });
        }
        let verified = |n| FeatureStatus {
            passes: true,
            verified_in: Some(n),
            ..FeatureStatus::default()
        };
        s.status.insert("F1".into(), verified(2));
        s.status.insert("F2".into(), verified(3));
        s.status.insert("F3".into(), FeatureStatus::default());
        s.sessions
            .push(SessionRecord::started(3, SessionKind::Building, "t0"));
        assert_eq!(s.close_interrupted_sessions("t1"), vec![3]);
        assert_eq!(s.sessions[0].newly_passing, vec!["F2".to_string()]);
    }

    #[test]
    fn the_same_ending_twice_weighs_more_and_the_cause_is_named() {
        let mut stall = Stall::default();
        stall.add(&EndReason::CutOffAnswers.into());
        assert_eq!(stall.weight, 1);
        stall.add(&EndReason::CutOffAnswers.into());
        assert_eq!((stall.sessions, stall.weight), (2, 3));
        assert_eq!(
            stall.describe(),
            "2 sessions in a row ended on repeated cut-off answers without progress"
        );
        stall.add(&EndReason::NoProgress.into());
        assert_eq!(stall.weight, 4);
        let mut honest = Stall::default();
        honest.add(&EndReason::Completed.into());
        honest.add(&EndReason::Completed.into());
        assert_eq!(
            honest.weight, 2,
            "an honest ending twice is no misbehaviour"
        );
        assert_eq!(stall.cause(), Some(EndReason::CutOffAnswers.into()));
        assert_eq!(
            stall.describe(),
            "3 sessions in a row made no progress (ended 2 on repeated cut-off answers, 1 on \
             turns without progress)"
        );
    }

    #[test]
    fn missing_state_is_none_and_garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(RunState::load(dir.path()).unwrap().is_none());
        std::fs::write(RunState::path(dir.path()), "{not json").unwrap();
        let err = RunState::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("run.json") && err.contains("unreadable"),
            "{err}"
        );
    }
}
