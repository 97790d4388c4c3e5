//! The long-running build (`loopwright run`): a planning session records the features and their
//! checks, the harness freezes them, then build sessions — each with a fresh conversation —
//! implement features and ask the harness to verify them, until every check passes, the budget
//! is spent, the session limit is reached or progress stalls.
//!
//! Everything the run knows is in its state dir (`run.json`, `features.json`, `frozen/`, the
//! ledger, transcripts, `events.jsonl`), written atomically after every step, so re-running the
//! same command resumes after any stop, `kill -9` included.

mod extra;
pub mod features;
pub mod git;
pub mod prompts;
pub mod state;

use crate::events::{one_line, rfc3339_now, Event, EventKind, EventSink};
use crate::outcome::EndReason;
use crate::session::{Session, SessionConfig, SessionError};
use extra::{BuildTools, PlanningTools};
use features::{duplicate_ids, feature_table, field_problems, Feature, FeatureStatus};
use governor::Governor;
use prompts::{PromptError, PromptKind, Prompts};
use sandbox::Access;
use serde::Serialize;
use state::{Phase, RunState, SessionKind, SessionRecord, StateError, StopRecord};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tools::{FrozenFiles, Toolbox};

/// Files in the project that the agent's file tools may not write: the harness writes
/// `feature_list.json` and `app_spec.txt`; `loopwright.toml` configures the harness itself.
pub const PROTECTED_FILES: [&str; 3] = ["feature_list.json", "app_spec.txt", "loopwright.toml"];

/// Where the frozen copies live in the state dir.
const FROZEN_DIR: &str = "frozen";
const FEATURES_FILE: &str = "features.json";
/// Characters of a check's output given back to the model.
const CHECK_OUTPUT_CHARS: usize = 6000;

/// How a run is set up (built by the CLI from flags and config).
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The project directory (canonical; the agent's workspace).
    pub project_dir: PathBuf,
    /// The spec file given on the command line.
    pub spec_path: PathBuf,
    pub state_dir: PathBuf,
    /// The model string, recorded in the run state.
    pub model: String,
    /// Stop after this many sessions in all (planning included); `None`: no limit.
    pub max_sessions: Option<u32>,
    pub max_turns: u32,
    /// Build sessions in a row without a newly passing feature before the run stops (per
    /// invocation: a re-run gets a fresh allowance).
    pub stall_limit: u32,
    pub prompts: Prompts,
    pub check_timeout: Duration,
    pub context_window: Option<u64>,
    pub max_tokens: u32,
}

impl RunConfig {
    pub fn new(
        project_dir: PathBuf,
        spec_path: PathBuf,
        state_dir: PathBuf,
        model: String,
    ) -> RunConfig {
        RunConfig {
            project_dir,
            spec_path,
            state_dir,
            model,
            max_sessions: None,
            max_turns: 80,
            stall_limit: 3,
            prompts: Prompts::default(),
            check_timeout: Duration::from_secs(300),
            context_window: None,
            max_tokens: 8192,
        }
    }
}

/// How a run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every feature's check passes.
    Complete,
    /// `--max-sessions` reached.
    SessionLimit,
    /// No newly passing feature for `stall_limit` sessions.
    Stalled,
    /// Ctrl-C: the current step finished and the state was saved.
    Interrupted,
}

impl RunEnd {
    pub fn exit_code(self) -> i32 {
        match self {
            RunEnd::Complete => 0,
            RunEnd::SessionLimit | RunEnd::Stalled => 5,
            RunEnd::Interrupted => 130,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunEnd::Complete => "complete",
            RunEnd::SessionLimit => "session_limit",
            RunEnd::Stalled => "stalled",
            RunEnd::Interrupted => "interrupted",
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub end: RunEnd,
    pub state: RunState,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the spec {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("the state dir {state_dir} belongs to the project {other}, not {project}; pass another --state-dir")]
    OtherProject {
        state_dir: PathBuf,
        other: PathBuf,
        project: PathBuf,
    },
    #[error("the run in {state_dir} was planned in {project}, but that directory has no git repository any more (deleted or replaced?); restore it, or start a new run with another --state-dir")]
    ProjectLost {
        project: PathBuf,
        state_dir: PathBuf,
    },
    #[error("another loopwright run is using the state dir {state_dir}; wait for it to stop, or pass another --state-dir")]
    Busy { state_dir: PathBuf },
    #[error("the spec changed since it was planned (the run in {state_dir} was planned from another app_spec.txt); restore the spec or start a new run with another --state-dir")]
    SpecChanged { state_dir: PathBuf },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("frozen files: {0}")]
    Frozen(#[from] tools::ToolError),
    #[error("the harness could not run a check in the sandbox: {0}")]
    Sandbox(#[from] sandbox::SandboxError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunError {
    /// The exit code (DESIGN.md): 2 for bad input (spec, state dir, prompts), the session's for
    /// model errors (3 budget, 4 pin...), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Spec { .. }
            | RunError::OtherProject { .. }
            | RunError::ProjectLost { .. }
            | RunError::Busy { .. }
            | RunError::SpecChanged { .. }
            | RunError::Prompt(_) => 2,
            RunError::State(StateError::Corrupt { .. }) => 2,
            RunError::Session(e) => e.exit_code(),
            _ => 1,
        }
    }

    fn stop_reason(&self) -> &'static str {
        match self.exit_code() {
            3 => "budget",
            4 => "pin_violation",
            2 => "bad_input",
            _ => "error",
        }
    }
}

/// `loopwright.toml` as it was when a session started. The agent's file tools refuse it and the
/// command policy refuses redirections into it, but a program the agent runs could still write
/// it (the kernel lets commands write anywhere in the project); since the harness reads it at
/// start-up, any change is undone when the session ends. The snapshot is also kept in the state
/// dir (`config-guard.json`) for the whole session, so that a harness killed mid-session undoes
/// the change before it next reads its configuration ([`undo_config_changes_of_cut_off_session`]).
pub struct ConfigGuard {
    path: PathBuf,
    record: PathBuf,
    before: Option<Vec<u8>>,
}

const CONFIG_GUARD_FILE: &str = "config-guard.json";

impl ConfigGuard {
    pub fn capture(project: &Path, state_dir: &Path) -> Result<ConfigGuard, RunError> {
        let path = project.join("loopwright.toml");
        let before = std::fs::read(&path).ok();
        let record = state_dir.join(CONFIG_GUARD_FILE);
        let json = serde_json::to_vec(&before).unwrap_or_default();
        llm::atomic_write(&record, &json).map_err(|source| RunError::Io {
            path: record.clone(),
            source,
        })?;
        Ok(ConfigGuard {
            path,
            record,
            before,
        })
    }

    /// Puts the file back (or removes one the session created); returns what was restored.
    pub fn restore(&self) -> Vec<PathBuf> {
        let restored = put_back(&self.path, self.before.as_deref());
        // Once the file is as it was, the snapshot is no longer needed.
        let _ = std::fs::remove_file(&self.record);
        restored
    }
}

/// Makes `path` hold `before` again (or not exist); returns it when something was changed.
fn put_back(path: &Path, before: Option<&[u8]>) -> Vec<PathBuf> {
    let now = std::fs::read(path).ok();
    if now.as_deref() == before && !path.is_symlink() {
        return Vec::new();
    }
    let result = match before {
        Some(bytes) => llm::atomic_write(path, bytes),
        None => std::fs::remove_file(path),
    };
    match result {
        Ok(()) => vec![PathBuf::from("loopwright.toml")],
        Err(_) => Vec::new(),
    }
}

/// Before the CLI reads `loopwright.toml`: if a session was cut off (the harness was killed) it
/// may have left a changed configuration behind — put the project's `loopwright.toml` back as
/// it was when that session started. Returns true when something was undone.
pub fn undo_config_changes_of_cut_off_session(
    state_dir: &Path,
    project: &Path,
) -> Result<bool, RunError> {
    let record = state_dir.join(CONFIG_GUARD_FILE);
    if !record.exists() {
        return Ok(false);
    }
    // Only when no run is under way: a live session's snapshot is its own business.
    let _lock = lock_state_dir(state_dir)?;
    let text = match std::fs::read(&record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(RunError::Io {
                path: record,
                source,
            })
        }
    };
    let before: Option<Vec<u8>> = serde_json::from_slice(&text).map_err(|e| {
        RunError::State(StateError::Corrupt {
            path: record.clone(),
            message: e.to_string(),
        })
    })?;
    let undone = !put_back(&project.join("loopwright.toml"), before.as_deref()).is_empty();
    std::fs::remove_file(&record).map_err(|source| RunError::Io {
        path: record,
        source,
    })?;
    Ok(undone)
}

/// The result of running one feature's check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// The end of the check's stdout and stderr.
    pub output: String,
}

impl CheckResult {
    fn describe_exit(&self) -> String {
        match (self.timed_out, self.exit_code) {
            (true, _) => "timed out".into(),
            (false, Some(c)) => format!("exited {c}"),
            (false, None) => "was killed by a signal".into(),
        }
    }
}

/// What one run shares with its sessions' tools.
pub(crate) struct RunContext<'a> {
    cfg: &'a RunConfig,
    governor: &'a Governor,
    toolbox: &'a Toolbox,
    events: RunEvents<'a>,
    state: Mutex<RunState>,
}

/// The caller's event sink, plus a copy of every event in the state dir's `events.jsonl`.
struct RunEvents<'a> {
    inner: &'a dyn EventSink,
    log: Mutex<Option<std::fs::File>>,
}

impl EventSink for RunEvents<'_> {
    fn emit(&self, event: &Event) {
        if let Some(file) = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            if let Ok(mut line) = serde_json::to_vec(event) {
                line.push(b'\n');
                // The event log is a convenience; a failed write must not stop the run.
                let _ = file.write_all(&line);
            }
        }
        self.inner.emit(event);
    }
}

/// What a planner who named a missing test file needs to know: the files that do exist in the
/// directory it named (names only, links not followed), or that the directory does not exist.
fn files_beside(missing: &Path) -> String {
    let Some(dir) = missing.parent() else {
        return String::new();
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return format!(
            "The directory {} does not exist yet (write_file creates it).",
            dir.file_name()
                .map(|n| format!("{:?}", n.to_string_lossy()))
                .unwrap_or_else(|| "of the file".to_string())
        );
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    if names.is_empty() {
        return "Its directory holds no file yet.".to_string();
    }
    let more = names.len().saturating_sub(8);
    names.truncate(8);
    format!(
        "Files that do exist in its directory: {}{}.",
        names.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn tail_chars(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_string();
    }
    let skip = count - max;
    let tail: String = text.chars().skip(skip).collect();
    format!("[... {skip} characters cut ...]\n{tail}")
}

/// Reads the spec: it must be non-empty UTF-8 text.
fn read_spec(path: &Path) -> Result<String, RunError> {
    let err = |message: String| RunError::Spec {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| err(format!("cannot be read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| err("is not UTF-8 text".into()))?;
    if text.trim().is_empty() {
        return Err(err("is empty; describe the application to build".into()));
    }
    Ok(text)
}

/// One run per state dir at a time: a second process would interleave sessions and ledger
/// entries. The lock is an advisory `flock` on `run.lock`, released when the file is closed
/// (also when the process dies).
fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, RunError> {
    let path = state_dir.join("run.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| RunError::Io {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RunError::Busy {
            state_dir: state_dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(RunError::Io { path, source }),
    }
}

/// Runs (or resumes) the build until it ends. Governor errors (budget, pin) stop the run with
/// the state saved and come back as [`RunError::Session`].
pub async fn run(
    cfg: &RunConfig,
    governor: &Governor,
    toolbox: &Toolbox,
    events: &dyn EventSink,
    cancel: CancellationToken,
) -> Result<RunReport, RunError> {
    let spec = read_spec(&cfg.spec_path)?;
    let spec_hash = sha256_hex(spec.as_bytes());
    std::fs::create_dir_all(cfg.state_dir.join("transcripts")).map_err(|source| RunError::Io {
        path: cfg.state_dir.clone(),
        source,
    })?;
    // Held until the run returns.
    let _lock = lock_state_dir(&cfg.state_dir)?;
    let mut state = match RunState::load(&cfg.state_dir)? {
        Some(mut s) => {
            if s.project_dir != cfg.project_dir {
                return Err(RunError::OtherProject {
                    state_dir: cfg.state_dir.clone(),
                    other: s.project_dir,
                    project: cfg.project_dir.clone(),
                });
            }
            if s.spec_sha256 != spec_hash && s.phase != Phase::Planning {
                return Err(RunError::SpecChanged {
                    state_dir: cfg.state_dir.clone(),
                });
            }
            s.spec_sha256 = spec_hash;
            s.close_interrupted_sessions(&rfc3339_now());
            s
        }
        None => RunState::new(cfg.project_dir.clone(), cfg.model.clone(), spec_hash),
    };
    state.sessions_without_progress = 0;
    state.model = cfg.model.clone();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.state_dir.join("events.jsonl"))
        .ok();
    let ctx = RunContext {
        cfg,
        governor,
        toolbox,
        events: RunEvents {
            inner: events,
            log: Mutex::new(log),
        },
        state: Mutex::new(state),
    };
    ctx.save()?;
    if let Err(e) = ctx.start(&spec).await {
        // `status` shows why the run could not start (a lost project, tampered state...).
        ctx.record_stop(e.stop_reason(), e.exit_code(), e.to_string());
        return Err(e);
    }
    loop {
        if let Some(end) = ctx.stop_condition() {
            return ctx.finish(end, String::new());
        }
        if cancel.is_cancelled() {
            return ctx.finish(
                RunEnd::Interrupted,
                "interrupted before the next session".into(),
            );
        }
        let result = match ctx.phase() {
            Phase::Planning => ctx.planning_session(&spec, cancel.clone()).await,
            _ => ctx.build_session(&spec, cancel.clone()).await,
        };
        match result {
            Ok(EndReason::Cancelled) => {
                return ctx.finish(
                    RunEnd::Interrupted,
                    "interrupted during a session; its work was committed".into(),
                )
            }
            Ok(_) => {}
            Err(e) => {
                ctx.record_stop(e.stop_reason(), e.exit_code(), e.to_string());
                return Err(e);
            }
        }
    }
}

impl<'a> RunContext<'a> {
    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn save(&self) -> Result<(), StateError> {
        let state = self.lock().clone();
        state.save(&self.cfg.state_dir)
    }

    fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Features passing, and in all.
    fn tally(&self) -> (usize, usize) {
        let s = self.lock();
        (s.passing(), s.features.len())
    }

    pub(crate) fn features(&self) -> Vec<Feature> {
        self.lock().features.clone()
    }

    fn emit(&self, session: &str, kind: EventKind) {
        self.events.emit(&Event::now(session, kind));
    }

    /// Prepares the project: a git repo, the spec in place, frozen files restored on resume.
    async fn start(&self, spec: &str) -> Result<(), RunError> {
        let project = &self.cfg.project_dir;
        let phase = self.phase();
        if phase != Phase::Planning && !project.join(".git").exists() {
            return Err(RunError::ProjectLost {
                project: project.clone(),
                state_dir: self.cfg.state_dir.clone(),
            });
        }
        git::ensure_repo(self.toolbox.sandbox(), project).await?;
        if phase == Phase::Planning {
            let target = project.join("app_spec.txt");
            if std::fs::read_to_string(&target).ok().as_deref() != Some(spec) {
                llm::atomic_write(&target, spec.as_bytes()).map_err(|source| RunError::Io {
                    path: target,
                    source,
                })?;
            }
        } else {
            let frozen = FrozenFiles::restore_from(
                self.toolbox.project(),
                &self.cfg.state_dir.join(FROZEN_DIR),
            )?;
            let check = frozen.verify_and_restore();
            self.toolbox.set_frozen(frozen)?;
            self.report_restored("run", &check.restored);
            self.check_canonical_features()?;
            self.write_feature_list()?;
            // The work of a build session cut off by the process dying is committed now.
            let cut_off = {
                let s = self.lock();
                s.sessions
                    .iter()
                    .max_by_key(|r| r.number)
                    .filter(|r| {
                        r.kind == SessionKind::Building && r.end.as_deref() == Some("interrupted")
                    })
                    .map(|r| (r.number, r.newly_passing.clone()))
            };
            if let Some((number, newly)) = cut_off {
                git::commit_all(
                    self.toolbox.sandbox(),
                    &session_commit_message(number, " (cut off)", &newly),
                )
                .await?;
            }
            // Passing features are re-verified, not taken on trust: the last session may have
            // stopped before its end-of-session re-check (an error, Ctrl-C, kill -9), or the
            // project changed since. Regressions go to the last build session's record, so the
            // next prompt reports them.
            let last = self
                .lock()
                .sessions
                .iter()
                .map(|r| r.number)
                .max()
                .unwrap_or(0);
            let regressed = self.recheck_passing(last).await?;
            if !regressed.is_empty() {
                {
                    let mut s = self.lock();
                    s.phase = Phase::Building;
                    if let Some(rec) = s
                        .sessions
                        .iter_mut()
                        .rev()
                        .find(|r| r.kind == SessionKind::Building)
                    {
                        for id in regressed {
                            if !rec.regressions.contains(&id) {
                                rec.regressions.push(id);
                            }
                        }
                    }
                }
                self.save()?;
            }
        }
        let (passing, total) = self.tally();
        self.emit(
            "run",
            EventKind::RunStarted {
                model: self.cfg.model.clone(),
                project: project.display().to_string(),
                phase: format!("{phase:?}").to_lowercase(),
                passing,
                total,
            },
        );
        Ok(())
    }

    /// `features.json` (written when the plan was frozen) must match the run state.
    fn check_canonical_features(&self) -> Result<(), RunError> {
        let path = self.cfg.state_dir.join(FEATURES_FILE);
        let text = std::fs::read_to_string(&path).map_err(|source| RunError::Io {
            path: path.clone(),
            source,
        })?;
        let canonical: Vec<Feature> = serde_json::from_str(&text).map_err(|e| {
            RunError::State(StateError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })
        })?;
        if canonical != self.lock().features {
            return Err(RunError::State(StateError::Corrupt {
                path,
                message: "the frozen feature list differs from the run state".into(),
            }));
        }
        Ok(())
    }

    fn report_restored(&self, session: &str, restored: &[PathBuf]) {
        if !restored.is_empty() {
            self.emit(
                session,
                EventKind::FrozenRestored {
                    paths: restored.iter().map(|p| p.display().to_string()).collect(),
                },
            );
        }
    }

    fn stop_condition(&self) -> Option<RunEnd> {
        let s = self.lock();
        if s.phase != Phase::Planning && s.all_passing() {
            return Some(RunEnd::Complete);
        }
        if let Some(max) = self.cfg.max_sessions {
            if s.sessions.len() as u64 >= u64::from(max) {
                return Some(RunEnd::SessionLimit);
            }
        }
        if s.sessions_without_progress >= self.cfg.stall_limit.max(1) {
            return Some(RunEnd::Stalled);
        }
        None
    }

    fn record_stop(&self, reason: &str, exit_code: i32, detail: String) {
        {
            let mut s = self.lock();
            s.last_stop = Some(StopRecord {
                time: rfc3339_now(),
                reason: reason.to_string(),
                exit_code,
                detail: detail.clone(),
            });
        }
        // Saving is best effort here: the error that stopped the run is the one to report.
        let _ = self.save();
        let (passing, total) = self.tally();
        self.emit(
            "run",
            EventKind::RunCompleted {
                reason: reason.to_string(),
                exit_code,
                passing,
                total,
                spent: self.governor.spent(),
                detail,
            },
        );
    }

    fn finish(&self, end: RunEnd, detail: String) -> Result<RunReport, RunError> {
        if end == RunEnd::Complete {
            self.lock().phase = Phase::Complete;
        }
        let detail = if detail.is_empty() {
            let s = self.lock();
            match end {
                RunEnd::Complete => format!("all {} features pass", s.features.len()),
                RunEnd::SessionLimit => format!(
                    "reached --max-sessions {}",
                    self.cfg.max_sessions.unwrap_or(0)
                ),
                RunEnd::Stalled if s.phase == Phase::Planning => format!(
                    "planning produced no plan that could be frozen in {} sessions in a row \
                     ({} features recorded so far); see the last planning session's end in \
                     its transcript, or adjust the spec or --prompts",
                    s.sessions_without_progress,
                    s.features.len()
                ),
                RunEnd::Stalled => format!(
                    "no feature newly passed in {} sessions in a row; {} of {} pass",
                    s.sessions_without_progress,
                    s.passing(),
                    s.features.len()
                ),
                RunEnd::Interrupted => "interrupted".into(),
            }
        } else {
            detail
        };
        self.record_stop(end.as_str(), end.exit_code(), detail);
        self.save()?;
        Ok(RunReport {
            end,
            state: self.lock().clone(),
        })
    }

    /// Starts a session record and returns its number and id.
    fn begin_session(&self, kind: SessionKind) -> Result<(u32, String), RunError> {
        let (number, id) = {
            let mut s = self.lock();
            let number = s.next_session_number();
            let record = SessionRecord::started(number, kind, &rfc3339_now());
            let id = record.id.clone();
            s.sessions.push(record);
            (number, id)
        };
        self.save()?;
        Ok((number, id))
    }

    fn end_session(
        &self,
        number: u32,
        end: &str,
        turns: u32,
        final_text: &str,
        newly: Vec<String>,
        regressions: Vec<String>,
    ) {
        let mut s = self.lock();
        if let Some(rec) = s.sessions.iter_mut().find(|r| r.number == number) {
            rec.ended = Some(rfc3339_now());
            rec.end = Some(end.to_string());
            rec.turns = turns;
            rec.final_text = tail_chars(final_text.trim(), 1500);
            rec.newly_passing = newly;
            rec.regressions = regressions;
        }
    }

    fn session_config(
        &self,
        id: &str,
        system_prompt: String,
        task: &str,
    ) -> Result<SessionConfig, RunError> {
        let mut config = SessionConfig::new(id, system_prompt, task);
        config.max_turns = self.cfg.max_turns;
        config.max_tokens = self.cfg.max_tokens;
        config.context_window = self.cfg.context_window;
        config.transcript = Some(
            self.cfg
                .state_dir
                .join("transcripts")
                .join(format!("{id}.jsonl")),
        );
        config.wrap_up_message = self.cfg.prompts.render(
            PromptKind::WrapUp,
            &[(
                "reason",
                "the conversation is near the model's context window",
            )],
        )?;
        Ok(config)
    }

    /// Runs one agent session with the run's tools. Whatever happens in it, frozen files and
    /// `loopwright.toml` are put back afterwards. The outer error is the harness's own (the
    /// config snapshot could not be saved); the inner one is the session's.
    async fn run_agent(
        &self,
        id: &str,
        config: SessionConfig,
        tools: &dyn crate::session::ExtraTools,
        cancel: CancellationToken,
    ) -> Result<Result<crate::outcome::SessionOutcome, SessionError>, RunError> {
        let guard = ConfigGuard::capture(&self.cfg.project_dir, &self.cfg.state_dir)?;
        let result = Session::new(self.governor, self.toolbox, config)
            .extra_tools(tools)
            .events(&self.events)
            .cancel_token(cancel)
            .run()
            .await;
        self.report_restored(id, &self.toolbox.frozen().verify_and_restore().restored);
        self.report_restored(id, &guard.restore());
        Ok(result)
    }

    async fn planning_session(
        &self,
        spec: &str,
        cancel: CancellationToken,
    ) -> Result<EndReason, RunError> {
        let ready = {
            let s = self.lock();
            s.plan_ready && !s.features.is_empty()
        };
        if ready {
            // The last planning session finished, but the run stopped before its plan was
            // frozen: freeze it now rather than pay for planning again.
            let problems = self.try_freeze().await?;
            if problems.is_empty() {
                return Ok(EndReason::Completed);
            }
            self.note_planning_problems(&problems);
            self.save()?;
        }
        let (number, id) = self.begin_session(SessionKind::Planning)?;
        let previous = self.planning_notes();
        let prompt = self.cfg.prompts.render(
            PromptKind::Planning,
            &[("spec", spec), ("previous", &previous)],
        )?;
        let config = self.session_config(&id, prompt, "Plan the application described in app_spec.txt: write the tests, then record every feature with add_features.")?;
        let tools = PlanningTools { ctx: self };
        let result = self.run_agent(&id, config, &tools, cancel).await?;
        let (end, turns, text) = match &result {
            Ok(o) => (o.end.as_str().to_string(), o.turns, o.final_text.clone()),
            Err(e) => (stop_reason_of(e).to_string(), 0, e.to_string()),
        };
        let cancelled = matches!(&result, Ok(o) if o.end == EndReason::Cancelled);
        let finished = result.is_ok() && !cancelled;
        let recorded = !self.features().is_empty();
        let final_text = if finished && !recorded {
            format!("{text}\n\n[harness] the planning session recorded no features")
        } else {
            text
        };
        // The session's end is saved before freezing starts: a run killed while freezing
        // resumes by freezing, not by planning again. A session that stopped early (an error,
        // Ctrl-C) leaves its features for the next planning session to complete.
        self.end_session(number, &end, turns, &final_text, vec![], vec![]);
        self.lock().plan_ready = finished && recorded;
        self.save()?;
        if finished && recorded {
            let problems = self.try_freeze().await?;
            if !problems.is_empty() {
                self.note_planning_problems(&problems);
            }
        }
        {
            let mut s = self.lock();
            if s.phase == Phase::Building {
                s.sessions_without_progress = 0;
            } else if !cancelled {
                s.sessions_without_progress += 1;
            }
        }
        self.save()?;
        result.map(|o| o.end).map_err(RunError::Session)
    }

    /// Freezing found problems: the plan goes back to planning, and the last planning session's
    /// record says why (the next planning prompt shows it).
    fn note_planning_problems(&self, problems: &[String]) {
        let mut s = self.lock();
        s.plan_ready = false;
        if let Some(rec) = s
            .sessions
            .iter_mut()
            .rev()
            .find(|r| r.kind == SessionKind::Planning)
        {
            let note = format!(
                "[harness] planning ended with problems, the plan was not frozen; the features \
                 with problems were dropped, record them again once fixed:\n- {}",
                problems.join("\n- ")
            );
            rec.final_text = if rec.final_text.is_empty() {
                note
            } else {
                format!("{}\n\n{note}", rec.final_text)
            };
        }
    }

    /// What an earlier planning session left, for the next one's prompt.
    fn planning_notes(&self) -> String {
        let s = self.lock();
        let mut out = String::new();
        if !s.features.is_empty() {
            out.push_str("\n# Features already recorded by an earlier planning session\n");
            out.push_str(&feature_table(&s.features, &s.status));
            out.push_str(
                "Do not add them again; check their test files exist, then add the rest.\n",
            );
        }
        // The session being started has no end yet; the one before it is the last.
        if let Some(last) = s
            .sessions
            .iter()
            .rev()
            .find(|r| r.kind == SessionKind::Planning && r.end.is_some())
        {
            out.push_str("\n# How the last planning session ended\n");
            let end = last.end.as_deref().unwrap_or("unknown");
            if end == EndReason::NoAction.as_str() {
                out.push_str(
                    "It answered without using any tool: it wrote no test file and recorded no \
                     feature. Describing tests or features in prose does nothing. Use the tools: \
                     write each test file with write_file, then call add_features.\n",
                );
            } else if end != "completed" {
                out.push_str(&format!(
                    "It stopped before it finished ({end}); what it recorded is listed above, \
                     the rest of the plan is still to be recorded.\n"
                ));
            }
            out.push_str(&last.final_text);
            out.push('\n');
        }
        out
    }

    /// Problems of a batch of features: fields, duplicate ids, checks the policy refuses, test
    /// files that do not exist.
    pub(crate) fn batch_problems(&self, existing: &[Feature], batch: &[Feature]) -> Vec<String> {
        let mut problems: Vec<String> = batch.iter().flat_map(field_problems).collect();
        for dup in duplicate_ids(existing, batch) {
            problems.push(format!(
                "feature id {dup:?} is used twice; ids must be unique"
            ));
        }
        let root = self.toolbox.project();
        for f in batch {
            if !f.check.trim().is_empty() {
                if let Err(denial) =
                    self.toolbox
                        .policy()
                        .check(&f.check, root, self.toolbox.allow_network())
                {
                    problems.push(format!(
                        "feature {:?}: its check `{}` is not allowed: {denial}",
                        f.id, f.check
                    ));
                }
            }
            for t in f.test_files.iter().filter(|t| !t.trim().is_empty()) {
                match root.resolve(t, Access::Read) {
                    Ok(abs) if abs.is_file() => {}
                    Ok(abs) => problems.push(format!(
                        "feature {:?}: test file {t:?} does not exist yet. First write it with \
                         write_file (a test that imports the code it tests), then call \
                         add_features again with this feature. {}",
                        f.id,
                        files_beside(&abs)
                    )),
                    Err(e) => problems.push(format!("feature {:?}: test file {t:?}: {e}", f.id)),
                }
            }
        }
        problems
    }

    /// Records a validated batch and saves the state; returns the number of features in all.
    pub(crate) fn add_planned(&self, batch: Vec<Feature>) -> Result<usize, StateError> {
        let total = {
            let mut s = self.lock();
            for f in &batch {
                s.status.insert(f.id.clone(), FeatureStatus::default());
            }
            s.features.extend(batch);
            s.features.len()
        };
        self.save()?;
        Ok(total)
    }

    /// Validates the whole plan again and freezes it: canonical copies and hashes in the state
    /// dir, `feature_list.json` in the project, a commit, phase Building. Returns the problems
    /// that prevented freezing (then invalid features are dropped so planning can redo them).
    async fn try_freeze(&self) -> Result<Vec<String>, RunError> {
        let features = self.features();
        let mut problems = Vec::new();
        let mut valid = Vec::new();
        for f in &features {
            let p = self.batch_problems(&valid, std::slice::from_ref(f));
            if p.is_empty() {
                valid.push(f.clone());
            } else {
                problems.extend(p);
            }
        }
        if !problems.is_empty() {
            {
                let mut s = self.lock();
                s.features = valid;
                s.plan_ready = false;
                let ids: BTreeSet<String> = s.features.iter().map(|f| f.id.clone()).collect();
                s.status.retain(|k, _| ids.contains(k));
            }
            self.save()?;
            return Ok(problems);
        }
        let mut paths: Vec<PathBuf> = vec![PathBuf::from("app_spec.txt")];
        for f in &features {
            for t in &f.test_files {
                let p = PathBuf::from(t);
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        let frozen = FrozenFiles::snapshot(self.toolbox.project(), &paths)?;
        frozen.write_copies(&self.cfg.state_dir.join(FROZEN_DIR))?;
        let canonical = serde_json::to_vec_pretty(&features).map_err(|e| StateError::Corrupt {
            path: self.cfg.state_dir.join(FEATURES_FILE),
            message: e.to_string(),
        })?;
        let features_path = self.cfg.state_dir.join(FEATURES_FILE);
        llm::atomic_write(&features_path, &canonical).map_err(|source| RunError::Io {
            path: features_path,
            source,
        })?;
        let frozen_count = frozen.len();
        self.toolbox.set_frozen(frozen)?;
        self.write_feature_list()?;
        // The commit comes before the phase is saved: a run stopped in between is still
        // planning with its plan ready, and freezes again (every step above is idempotent).
        git::commit_all(
            self.toolbox.sandbox(),
            &format!(
                "loopwright: plan — {} features, {} files frozen",
                features.len(),
                frozen_count
            ),
        )
        .await?;
        {
            let mut s = self.lock();
            s.phase = Phase::Building;
            s.plan_ready = false;
            s.sessions_without_progress = 0;
        }
        self.save()?;
        self.emit(
            "run",
            EventKind::PlanFrozen {
                features: features.len(),
                frozen_files: frozen_count,
            },
        );
        Ok(Vec::new())
    }

    /// `feature_list.json` in the project, always from the canonical list and the harness's
    /// status.
    fn write_feature_list(&self) -> Result<(), RunError> {
        #[derive(Serialize)]
        struct Listed<'f> {
            #[serde(flatten)]
            feature: &'f Feature,
            passes: bool,
        }
        let bytes = {
            let s = self.lock();
            let listed: Vec<Listed<'_>> = s
                .features
                .iter()
                .map(|f| Listed {
                    feature: f,
                    passes: s.status.get(&f.id).is_some_and(|st| st.passes),
                })
                .collect();
            serde_json::to_vec_pretty(&listed).unwrap_or_default()
        };
        let path = self.cfg.project_dir.join("feature_list.json");
        llm::atomic_write(&path, &bytes).map_err(|source| RunError::Io { path, source })
    }

    /// Runs a feature's check in the sandbox, frozen files restored before and after.
    async fn run_check(&self, session: &str, feature: &Feature) -> Result<CheckResult, RunError> {
        let frozen = self.toolbox.frozen();
        self.report_restored(session, &frozen.verify_and_restore().restored);
        let out = self
            .toolbox
            .sandbox()
            .run(&feature.check, self.cfg.check_timeout)
            .await?;
        self.report_restored(session, &frozen.verify_and_restore().restored);
        let passed = out.exit_code == Some(0) && !out.timed_out;
        let mut output = String::new();
        if !out.stdout.trim().is_empty() {
            output.push_str("stdout:\n");
            output.push_str(&tail_chars(&out.stdout, CHECK_OUTPUT_CHARS / 2));
            output.push('\n');
        }
        if !out.stderr.trim().is_empty() {
            output.push_str("stderr:\n");
            output.push_str(&tail_chars(&out.stderr, CHECK_OUTPUT_CHARS / 2));
            output.push('\n');
        }
        Ok(CheckResult {
            passed,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            output,
        })
    }

    /// `verify_feature`: runs the check and records the verdict.
    pub(crate) async fn verify(
        &self,
        feature: &Feature,
        session: u32,
    ) -> Result<CheckResult, RunError> {
        let session_id = state::session_id(session);
        let result = self.run_check(&session_id, feature).await?;
        {
            let mut s = self.lock();
            let st = s.status.entry(feature.id.clone()).or_default();
            st.last_checked_in = Some(session);
            if result.passed {
                st.passes = true;
                st.verified_in.get_or_insert(session);
            } else {
                st.passes = false;
            }
        }
        self.save()?;
        self.write_feature_list()?;
        self.emit(
            &session_id,
            EventKind::FeatureVerified {
                id: feature.id.clone(),
                passed: result.passed,
                exit_code: result.exit_code,
            },
        );
        Ok(result)
    }

    /// Re-runs every passing check; a failure flips the feature back. Returns the regressions.
    async fn recheck_passing(&self, session: u32) -> Result<Vec<String>, RunError> {
        let session_id = state::session_id(session);
        let passing: Vec<Feature> = {
            let s = self.lock();
            s.features
                .iter()
                .filter(|f| s.status.get(&f.id).is_some_and(|st| st.passes))
                .cloned()
                .collect()
        };
        let mut regressions = Vec::new();
        for f in passing {
            let result = self.run_check(&session_id, &f).await?;
            let mut s = self.lock();
            let st = s.status.entry(f.id.clone()).or_default();
            st.last_checked_in = Some(session);
            if !result.passed {
                st.passes = false;
                st.regressions += 1;
                regressions.push(f.id.clone());
                drop(s);
                self.emit(
                    &session_id,
                    EventKind::FeatureRegressed {
                        id: f.id.clone(),
                        exit_code: result.exit_code,
                        output: tail_chars(&result.output, 1000),
                    },
                );
            }
        }
        self.save()?;
        self.write_feature_list()?;
        Ok(regressions)
    }

    fn passing_ids(&self) -> BTreeSet<String> {
        let s = self.lock();
        s.status
            .iter()
            .filter(|(_, st)| st.passes)
            .map(|(k, _)| k.clone())
            .collect()
    }

    async fn build_session(
        &self,
        spec: &str,
        cancel: CancellationToken,
    ) -> Result<EndReason, RunError> {
        let (number, id) = self.begin_session(SessionKind::Building)?;
        self.write_feature_list()?;
        let before = self.passing_ids();
        let prompt = self.building_prompt(spec, number).await?;
        let config = self.session_config(&id, prompt, "Continue building the application: pick the next features that are not passing, implement them, and verify them with verify_feature.")?;
        let tools = BuildTools {
            ctx: self,
            session_number: number,
        };
        let result = self.run_agent(&id, config, &tools, cancel).await?;
        self.write_feature_list()?;
        let cancelled = matches!(&result, Ok(o) if o.end == EndReason::Cancelled);
        let regressions = if result.is_ok() && !cancelled {
            self.recheck_passing(number).await?
        } else {
            Vec::new()
        };
        let after = self.passing_ids();
        let newly: Vec<String> = after.difference(&before).cloned().collect();
        let committed = git::commit_all(
            self.toolbox.sandbox(),
            &session_commit_message(number, "", &newly),
        )
        .await;
        let (end, turns, text) = match &result {
            Ok(o) => (o.end.as_str().to_string(), o.turns, o.final_text.clone()),
            Err(e) => (stop_reason_of(e).to_string(), 0, e.to_string()),
        };
        self.end_session(number, &end, turns, &text, newly.clone(), regressions);
        {
            let mut s = self.lock();
            let passing = s.passing();
            if passing > s.best_passing {
                s.best_passing = passing;
                s.sessions_without_progress = 0;
            } else if !cancelled && result.is_ok() {
                s.sessions_without_progress += 1;
            }
        }
        self.save()?;
        committed?;
        result.map(|o| o.end).map_err(RunError::Session)
    }

    async fn building_prompt(&self, spec: &str, number: u32) -> Result<String, RunError> {
        let (table, passing, total, last) = {
            let s = self.lock();
            let last = s
                .sessions
                .iter()
                .rev()
                .find(|r| r.number < number)
                .map(|r| {
                    let mut t = format!(
                        "Session {} ({:?}) ended: {}. Newly passing: {}.",
                        r.number,
                        r.kind,
                        r.end.as_deref().unwrap_or("unknown"),
                        if r.newly_passing.is_empty() {
                            "none".to_string()
                        } else {
                            r.newly_passing.join(", ")
                        }
                    );
                    if !r.regressions.is_empty() {
                        t.push_str(&format!(
                            " Regressed (passing before, failing at the end): {}.",
                            r.regressions.join(", ")
                        ));
                    }
                    if !r.final_text.is_empty() {
                        t.push_str(&format!("\nIts last words:\n{}", r.final_text));
                    }
                    t
                })
                .unwrap_or_else(|| "This is the first build session.".to_string());
            (
                feature_table(&s.features, &s.status),
                s.passing(),
                s.features.len(),
                last,
            )
        };
        let progress = std::fs::read_to_string(self.cfg.project_dir.join("progress.md"))
            .map(|p| tail_chars(&p, 8000))
            .unwrap_or_else(|_| "(no progress.md yet)".to_string());
        let log = git::recent_log(self.toolbox.sandbox(), 15).await;
        let log = if log.trim().is_empty() {
            "(no commits yet)".to_string()
        } else {
            log
        };
        Ok(self.cfg.prompts.render(
            PromptKind::Building,
            &[
                ("spec", spec),
                ("feature_table", &table),
                ("passing", &passing.to_string()),
                ("total", &total.to_string()),
                ("progress", &progress),
                ("git_log", &log),
                ("last_session", &last),
            ],
        )?)
    }
}

/// `loopwright: session 3 — verified F2, F4`.
fn session_commit_message(number: u32, note: &str, newly: &[String]) -> String {
    if newly.is_empty() {
        format!("loopwright: session {number}{note} — no feature newly verified")
    } else {
        format!(
            "loopwright: session {number}{note} — verified {}",
            newly.join(", ")
        )
    }
}

fn stop_reason_of(e: &SessionError) -> &'static str {
    match e.exit_code() {
        3 => "budget",
        4 => "pin_violation",
        _ => "error",
    }
}

/// One line for logs: `F3 passed`.
pub fn describe_check(id: &str, result: &CheckResult) -> String {
    one_line(
        &format!("{id} {}", if result.passed { "passed" } else { "failed" }),
        80,
    )
}
