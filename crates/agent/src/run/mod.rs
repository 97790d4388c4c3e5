//! The long-running build (`loopwright run`): a planning session records the features and their
//! checks, the harness freezes them, then build sessions — each with a fresh conversation —
//! implement features and ask the harness to verify them, until every check passes, the budget
//! is spent, the session limit is reached or progress stalls.
//!
//! Everything the run knows is in its state dir (`run.json`, `features.json`, `frozen/`, the
//! ledger, transcripts, `events.jsonl`), written atomically after every step, so re-running the
//! same command resumes after any stop, `kill -9` included.

mod building;
mod consistency;
mod extra;
pub mod features;
pub mod git;
mod planning;
pub mod project_files;
pub mod prompts;
mod resume;
mod sessions;
pub mod state;
mod verify;
mod workers;

pub use resume::{lock_state_dir, run_is_live, undo_config_changes_of_cut_off_session};
pub use verify::CheckResult;

use crate::events::{rfc3339_now, Event, EventKind, EventSink};
use crate::interrupt::{Interrupt, Signal};
use crate::outcome::EndReason;
use crate::session::SessionError;
use crate::stop::StopReason;
use crate::watchdog::WatchdogConfig;
use features::Feature;
use governor::Governor;
use prompts::{PromptError, Prompts};
use resume::read_spec;
use serde::Serialize;
use state::{Phase, RunState, StateError, StopRecord};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tools::Toolbox;

/// Where the frozen copies live in the state dir.
const FROZEN_DIR: &str = "frozen";
const FEATURES_FILE: &str = "features.json";
/// Characters of a check's output given back to the model.
const CHECK_OUTPUT_CHARS: usize = 6000;
/// Default of [`RunConfig::planning_attempts`].
pub const DEFAULT_PLANNING_ATTEMPTS: u32 = 3;
/// Default of [`RunConfig::max_features`].
pub const DEFAULT_MAX_FEATURES: usize = 200;
/// Default of [`RunConfig::commit_max_file_bytes`]: 5 MB.
pub const DEFAULT_COMMIT_MAX_FILE_BYTES: u64 = 5 * 1024 * 1024;

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
    /// Sessions in a row without progress before the run stops, each counting one and one more
    /// when it ended like the one before. Kept across re-runs of the same command.
    pub stall_limit: u32,
    /// Planning sessions in a row that end without a plan that can be frozen before the run
    /// stops.
    pub planning_attempts: u32,
    /// The most features a plan may have.
    pub max_features: usize,
    /// Files bigger than this are not committed by the harness.
    pub commit_max_file_bytes: u64,
    /// When a session ends because the model misbehaves.
    pub watchdog: WatchdogConfig,
    /// Characters of one tool result the model gets (head and tail).
    pub max_tool_result_chars: usize,
    pub prompts: Prompts,
    pub check_timeout: Duration,
    pub context_window: Option<u64>,
    /// How many features planning should aim for (said in the planning prompt); `None`: the
    /// model decides.
    pub feature_count: Option<u32>,
    /// A feature list to start from instead of a planning session (`run --import`): validated
    /// and frozen like a planned one.
    pub import: Option<Vec<Feature>>,
    /// The spec changed after planning: run a planning session that adds features for what is
    /// new, the frozen ones untouched (`run --extend-plan`).
    pub extend_plan: bool,
    /// Build sessions run at once (`run --workers N`), each in its own copy of the project on
    /// its own branch with features of its own, merged into the project when it ends. 1: one
    /// session at a time in the project itself.
    pub workers: u32,
    /// How the tools of a worker's copy are made: this configuration with the copy as its
    /// project (needed when `workers` > 1).
    pub worker_toolbox: Option<tools::ToolboxConfig>,
    /// The user started over knowingly (`run --fresh`): a project that holds the harness's
    /// commits of an earlier run but has no run state is planned anew.
    pub start_over: bool,
    /// The exit code of each stop, recorded in the stop record and the `run.completed` event
    /// (the CLI's table: exit codes are numbers only there).
    pub exit_code: fn(StopReason) -> i32,
}

impl RunConfig {
    pub fn new(
        project_dir: PathBuf,
        spec_path: PathBuf,
        state_dir: PathBuf,
        model: String,
        exit_code: fn(StopReason) -> i32,
    ) -> RunConfig {
        RunConfig {
            project_dir,
            spec_path,
            state_dir,
            model,
            max_sessions: None,
            max_turns: 80,
            stall_limit: 3,
            planning_attempts: DEFAULT_PLANNING_ATTEMPTS,
            max_features: DEFAULT_MAX_FEATURES,
            commit_max_file_bytes: DEFAULT_COMMIT_MAX_FILE_BYTES,
            watchdog: WatchdogConfig::default(),
            max_tool_result_chars: crate::session::DEFAULT_MAX_TOOL_RESULT_CHARS,
            prompts: Prompts::default(),
            check_timeout: Duration::from_secs(300),
            context_window: None,
            feature_count: None,
            import: None,
            extend_plan: false,
            workers: 1,
            worker_toolbox: None,
            start_over: false,
            exit_code,
        }
    }
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// `Complete`, `SessionLimit`, `Stalled` or `Interrupted` (errors are [`RunError`]s).
    pub end: StopReason,
    pub state: RunState,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the spec {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("the state dir {state_dir} belongs to the project {other}, not {project}; give this project its own state dir (or leave --state-dir out)")]
    OtherProject {
        state_dir: PathBuf,
        other: PathBuf,
        project: PathBuf,
    },
    #[error("the run in {state_dir} was planned in {project}, but that directory has no git repository any more (deleted or replaced?); restore it, or start over with `loopwright run --fresh` (the old run is archived)")]
    ProjectLost {
        project: PathBuf,
        state_dir: PathBuf,
    },
    #[error("another loopwright run is using the state dir {state_dir}; wait for it to stop (`loopwright status --watch` follows it)")]
    Busy { state_dir: PathBuf },
    #[error("the spec changed since it was planned (the run in {state_dir} was planned from another app_spec.txt); restore the spec, plan features for what is new with `loopwright run --extend-plan`, or start over with `loopwright run --fresh` (the old run is archived)")]
    SpecChanged { state_dir: PathBuf },
    #[error("--extend-plan: the spec has not changed since the run in {state_dir} was planned; change app_spec.txt (or --spec) to say what is new")]
    NothingToExtend { state_dir: PathBuf },
    #[error("the imported feature list cannot be used:\n- {}", .0.join("\n- "))]
    Import(Vec<String>),
    #[error("the run in {state_dir} already has a plan; --import starts a run, so add --fresh to archive this one first")]
    ImportOverPlan { state_dir: PathBuf },
    /// The run's files do not add up (see [`consistency`]): what, and how to repair it.
    #[error("{what}. To repair: {repair}")]
    Inconsistent { what: String, repair: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(transparent)]
    Git(#[from] git::GitError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("guarded files: {0}")]
    Frozen(#[from] tools::ToolError),
    #[error("cannot set up a worker's copy of the project: {0}")]
    Worker(String),
    #[error("the harness could not run a check in the sandbox: {0}")]
    Sandbox(#[from] sandbox::SandboxError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file in the project could not be read or written safely.
    #[error(transparent)]
    Project(#[from] sandbox::untrusted::UntrustedError),
}

impl RunError {
    /// Why this error stops the run (the CLI maps it to the exit code, DESIGN.md): bad input
    /// for the spec, the state dir, prompts; the session's for model errors (budget, pin...);
    /// an error otherwise.
    pub fn stop_reason(&self) -> StopReason {
        match self {
            RunError::Spec { .. }
            | RunError::OtherProject { .. }
            | RunError::ProjectLost { .. }
            | RunError::Busy { .. }
            | RunError::SpecChanged { .. }
            | RunError::Import(_)
            | RunError::ImportOverPlan { .. }
            | RunError::NothingToExtend { .. }
            | RunError::Git(git::GitError::NotARepository)
            | RunError::Prompt(_)
            | RunError::Inconsistent { .. }
            | RunError::State(StateError::Corrupt { .. }) => StopReason::BadInput,
            RunError::Session(e) => e.stop_reason(),
            _ => StopReason::Error,
        }
    }
}

/// What one run shares with its sessions' tools.
pub(crate) struct RunContext<'a> {
    cfg: &'a RunConfig,
    governor: &'a Governor,
    toolbox: &'a Toolbox,
    git: git::HarnessGit,
    events: RunEvents<'a>,
    /// Shared with the hard-stop hook (a second signal saves a stop record of it).
    state: Arc<Mutex<RunState>>,
    interrupt: &'a Interrupt,
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

    fn text_delta(&self, session: &str, text: &str) {
        self.inner.text_delta(session, text);
    }
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

/// Runs (or resumes) the build until it ends. Governor errors (budget, pin) stop the run with
/// the state saved and come back as [`RunError::Session`]. A first signal on `interrupt` ends
/// the step under way and stops the run ([`StopReason::Interrupted`]); for a second one the
/// run registers a hook that saves a stop record at once ([`Interrupt::on_hard_stop`]).
pub async fn run(
    cfg: &RunConfig,
    governor: &Governor,
    toolbox: &Toolbox,
    events: &dyn EventSink,
    interrupt: &Interrupt,
) -> Result<RunReport, RunError> {
    let spec = read_spec(&cfg.project_dir, &cfg.spec_path)?;
    let spec_hash = sha256_hex(spec.as_bytes());
    std::fs::create_dir_all(cfg.state_dir.join("transcripts")).map_err(|source| RunError::Io {
        path: cfg.state_dir.clone(),
        source,
    })?;
    // Held until the run returns.
    let _lock = lock_state_dir(&cfg.state_dir)?;
    let mut extending = false;
    let loaded = RunState::load(&cfg.state_dir)?;
    let resuming = loaded.is_some();
    let mut state = match loaded {
        Some(mut s) => {
            if s.project_dir != cfg.project_dir {
                return Err(RunError::OtherProject {
                    state_dir: cfg.state_dir.clone(),
                    other: s.project_dir,
                    project: cfg.project_dir.clone(),
                });
            }
            if s.spec_sha256 != spec_hash && s.phase != Phase::Planning && !cfg.extend_plan {
                return Err(RunError::SpecChanged {
                    state_dir: cfg.state_dir.clone(),
                });
            }
            if cfg.extend_plan && s.phase != Phase::Planning {
                if s.spec_sha256 == spec_hash {
                    return Err(RunError::NothingToExtend {
                        state_dir: cfg.state_dir.clone(),
                    });
                }
                extending = true;
            }
            s.spec_sha256 = spec_hash;
            s.close_interrupted_sessions(&rfc3339_now());
            s
        }
        None => RunState::new(cfg.project_dir.clone(), cfg.model.clone(), spec_hash),
    };
    state.model = cfg.model.clone();
    let has_history = cfg.state_dir.join("history.json").exists();
    if state.phase != Phase::Planning && !has_history && !cfg.project_dir.join(".git").is_dir() {
        return Err(RunError::ProjectLost {
            project: cfg.project_dir.clone(),
            state_dir: cfg.state_dir.clone(),
        });
    }
    let harness_git = git::HarnessGit::open(&cfg.project_dir, &cfg.state_dir).await?;
    if !resuming {
        consistency::check_no_lost_run(cfg, governor, &harness_git).await?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cfg.state_dir.join("events.jsonl"))
        .ok();
    let ctx = RunContext {
        cfg,
        governor,
        toolbox,
        git: harness_git,
        events: RunEvents {
            inner: events,
            log: Mutex::new(log),
        },
        state: Arc::new(Mutex::new(state)),
        interrupt,
    };
    ctx.save()?;
    interrupt.on_hard_stop(hard_stop_hook(
        Arc::clone(&ctx.state),
        cfg.state_dir.clone(),
        cfg.exit_code,
    ));
    // The run state exists now: a later loss of it is caught again.
    let _ = std::fs::remove_file(cfg.state_dir.join(state::START_OVER_FILE));
    let result = ctx.drive(&spec, extending, interrupt.token()).await;
    // The project is handed back with nothing in `.git` that the harness did not write.
    ctx.guard_git("run", None).await;
    interrupt.clear_hard_stop();
    result
}

/// What a second signal does before the process leaves at once: a stop record saved with the
/// run state as it is (a session under way stays open: the next start closes it as cut off and
/// commits its work). Any later save of the run carries the record too.
fn hard_stop_hook(
    state: Arc<Mutex<RunState>>,
    state_dir: PathBuf,
    exit_code: fn(StopReason) -> i32,
) -> impl FnOnce(Signal) + Send + 'static {
    move |signal| {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        let during = match s.sessions.iter().find(|r| r.end.is_none()) {
            Some(r) => format!("during session {}", r.number),
            None => "between sessions".to_string(),
        };
        s.last_stop = Some(StopRecord {
            time: rfc3339_now(),
            reason: StopReason::Interrupted,
            exit_code: exit_code(StopReason::Interrupted),
            detail: format!(
                "stopped at once by a second signal ({}) {during}; re-running closes the session, \
                 commits its work and goes on",
                signal.name()
            ),
            cause: None,
            signal: Some(signal),
        });
        // Best effort: the process is leaving.
        let _ = s.save(&state_dir);
    }
}

impl<'a> RunContext<'a> {
    /// Starts (or resumes), then runs sessions until a stop.
    async fn drive(
        &self,
        spec: &str,
        extending: bool,
        cancel: CancellationToken,
    ) -> Result<RunReport, RunError> {
        if let Err(e) = self.start(spec).await {
            // `status` shows why the run could not start (a lost project, tampered state...).
            self.record_stop(e.stop_reason(), e.to_string());
            return Err(e);
        }
        if extending {
            if let Err(e) = self.open_extension(spec) {
                self.record_stop(e.stop_reason(), e.to_string());
                return Err(e);
            }
        }
        if let Some(features) = &self.cfg.import {
            if let Err(e) = self.import_plan(features.clone()).await {
                self.record_stop(e.stop_reason(), e.to_string());
                return Err(e);
            }
        }
        loop {
            if let Some(end) = self.stop_condition() {
                return self.finish(end, String::new());
            }
            if cancel.is_cancelled() {
                return self.finish(
                    StopReason::Interrupted,
                    format!("{} before the next session", self.interrupted_by()),
                );
            }
            // Workers a stopped run left (cut off, or a conflict waiting) are seen to even
            // when this run has one worker.
            let parallel = self.cfg.workers > 1 || self.lock().workers_pending();
            let result = match self.phase() {
                Phase::Planning => self.planning_session(spec, cancel.clone()).await,
                _ if parallel => self.build_with_workers(spec, cancel.clone()).await,
                _ => self.build_session(spec, cancel.clone()).await,
            };
            match result {
                Ok(EndReason::Cancelled) => {
                    return self.finish(
                        StopReason::Interrupted,
                        format!(
                            "{} during a session; its work was committed",
                            self.interrupted_by()
                        ),
                    )
                }
                Ok(_) => {}
                Err(e) => {
                    self.record_stop(e.stop_reason(), e.to_string());
                    return Err(e);
                }
            }
        }
    }
}

impl<'a> RunContext<'a> {
    fn lock(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves under the lock, so a save never overwrites a newer one (the hard-stop hook's
    /// included).
    fn save(&self) -> Result<(), StateError> {
        self.lock().save(&self.cfg.state_dir)
    }

    /// "interrupted by SIGTERM" (or just "interrupted").
    fn interrupted_by(&self) -> String {
        match self.interrupt.signal() {
            Some(signal) => format!("interrupted by {signal}"),
            None => "interrupted".into(),
        }
    }

    fn phase(&self) -> Phase {
        self.lock().phase
    }

    /// Features passing, and in all.
    pub(super) fn tally(&self) -> (usize, usize) {
        let s = self.lock();
        (s.passing(), s.features.len())
    }

    /// The work is committed: every verdict of the session is recorded as passing.
    fn mark_committed(&self) {
        let mut s = self.lock();
        for st in s.status.values_mut() {
            st.uncommitted = false;
        }
    }

    /// Every feature's check passed when last run (committed or not yet).
    pub(crate) fn every_feature_verified(&self) -> bool {
        let s = self.lock();
        !s.features.is_empty()
            && s.features
                .iter()
                .all(|f| s.status.get(&f.id).is_some_and(|st| st.passes))
    }

    pub(crate) fn features(&self) -> Vec<Feature> {
        self.lock().features.clone()
    }

    fn emit(&self, session: &str, kind: EventKind) {
        self.events.emit(&Event::now(session, kind));
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

    /// Events for what the git guard put right, and a note for the session's record (the next
    /// prompt shows it); returns the note for the model.
    fn report_git_repair(
        &self,
        session: &str,
        number: Option<u32>,
        repair: &git::GitRepair,
    ) -> Option<String> {
        if repair.is_empty() {
            return None;
        }
        self.emit(
            session,
            EventKind::GitRestored {
                restored: repair.restored.clone(),
                history: repair.history.clone(),
            },
        );
        let note = repair.note();
        if let (Some(n), Some(note)) = (number, &note) {
            self.note_session(n, note.clone());
        }
        note
    }

    /// Adds a harness note to a session's record (shown in the next build prompt).
    fn note_session(&self, number: u32, note: String) {
        let mut s = self.lock();
        if let Some(rec) = s.sessions.iter_mut().find(|r| r.number == number) {
            if !rec.notes.contains(&note) {
                rec.notes.push(note);
            }
        }
    }

    /// Checks `.git` and the history (see [`git::HarnessGit::guard`]) and reports what was put
    /// right; returns the note for the model. A failure is reported, not fatal: the next
    /// harness commit fails loudly if git is really broken.
    pub(crate) async fn guard_git(&self, session: &str, number: Option<u32>) -> Option<String> {
        self.guard_git_of(&self.git, session, number).await
    }

    /// [`Self::guard_git`] for a repository of the run (the project's, or a worker's copy).
    pub(crate) async fn guard_git_of(
        &self,
        git: &git::HarnessGit,
        session: &str,
        number: Option<u32>,
    ) -> Option<String> {
        match git.guard().await {
            Ok(repair) => self.report_git_repair(session, number, &repair),
            Err(e) => {
                let message = format!("the harness could not check the project's git: {e}");
                self.emit(
                    session,
                    EventKind::Warning {
                        message: message.clone(),
                    },
                );
                Some(format!("[{message}]"))
            }
        }
    }

    /// Commits the working tree (guarding `.git` first); reports stale locks removed and files
    /// left out for their size.
    async fn commit(
        &self,
        session: &str,
        number: Option<u32>,
        message: &str,
    ) -> Result<Option<String>, RunError> {
        self.commit_in(&self.git, session, number, message).await
    }

    /// [`Self::commit`] in a repository of the run (the project's, or a worker's copy).
    async fn commit_in(
        &self,
        git: &git::HarnessGit,
        session: &str,
        number: Option<u32>,
        message: &str,
    ) -> Result<Option<String>, RunError> {
        let repair = git.guard().await?;
        self.report_git_repair(session, number, &repair);
        let committed = git
            .commit_all(message, self.cfg.commit_max_file_bytes)
            .await?;
        if let Some(id) = &committed.id {
            self.lock().last_commit = Some(id.clone());
        }
        for lock in &committed.stale_locks {
            self.emit(
                session,
                EventKind::Warning {
                    message: format!(
                        "removed a stale {lock} left by a git process that is no longer running"
                    ),
                },
            );
        }
        if !committed.skipped.is_empty() {
            self.emit(
                session,
                EventKind::CommitSkipped {
                    paths: committed.skipped.iter().map(|(p, _)| p.clone()).collect(),
                    max_bytes: self.cfg.commit_max_file_bytes,
                },
            );
            if let Some(n) = number {
                let list: Vec<String> = committed
                    .skipped
                    .iter()
                    .map(|(p, size)| format!("{p} ({size} bytes)"))
                    .collect();
                self.note_session(
                    n,
                    format!(
                        "[not committed, bigger than {} bytes: {}; keep big generated files out \
                         of the project or list them in .gitignore]",
                        self.cfg.commit_max_file_bytes,
                        list.join(", ")
                    ),
                );
            }
        }
        Ok(committed.id)
    }

    fn stop_condition(&self) -> Option<StopReason> {
        let s = self.lock();
        if s.phase != Phase::Planning && s.all_passing() {
            return Some(StopReason::Complete);
        }
        if let Some(max) = self.cfg.max_sessions {
            if s.sessions.len() as u64 >= u64::from(max) {
                return Some(StopReason::SessionLimit);
            }
        }
        if s.stall.weight >= self.cfg.stall_limit.max(1) {
            return Some(StopReason::Stalled);
        }
        if s.phase == Phase::Planning && s.stall.sessions >= self.cfg.planning_attempts.max(1) {
            return Some(StopReason::Stalled);
        }
        None
    }

    fn record_stop(&self, reason: StopReason, detail: String) {
        let exit_code = (self.cfg.exit_code)(reason);
        self.note_ledger();
        {
            let mut s = self.lock();
            let cause = (reason == StopReason::Stalled)
                .then(|| s.stall.cause())
                .flatten();
            s.last_stop = Some(StopRecord {
                time: rfc3339_now(),
                reason,
                exit_code,
                detail: detail.clone(),
                cause,
                signal: (reason == StopReason::Interrupted)
                    .then(|| self.interrupt.signal())
                    .flatten(),
            });
        }
        // Saving is best effort here: the error that stopped the run is the one to report.
        let _ = self.save();
        let (passing, total) = self.tally();
        self.emit(
            "run",
            EventKind::RunCompleted {
                reason,
                exit_code,
                passing,
                total,
                spent: self.governor.spent(),
                detail,
            },
        );
    }

    fn finish(&self, end: StopReason, detail: String) -> Result<RunReport, RunError> {
        if end == StopReason::Complete {
            self.lock().phase = Phase::Complete;
        }
        let detail = if detail.is_empty() {
            let s = self.lock();
            match end {
                StopReason::Complete => format!("all {} features pass", s.features.len()),
                StopReason::SessionLimit => format!(
                    "reached the session limit (--max-sessions; {} sessions in all)",
                    s.sessions.len()
                ),
                StopReason::Stalled if s.phase == Phase::Planning => format!(
                    "planning produced no plan that could be frozen in {} sessions in a row: {} \
                     ({} features recorded so far); see the last planning session's end in \
                     its transcript, or adjust the spec or --prompts",
                    s.stall.sessions,
                    s.stall.describe(),
                    s.features.len()
                ),
                StopReason::Stalled => format!(
                    "{}; {} of {} features pass (re-running continues only with a higher \
                     --stall-sessions: the count is kept)",
                    s.stall.describe(),
                    s.passing(),
                    s.features.len()
                ),
                StopReason::Interrupted => self.interrupted_by(),
                other => other.to_string(),
            }
        } else {
            detail
        };
        self.record_stop(end, detail);
        self.save()?;
        Ok(RunReport {
            end,
            state: self.lock().clone(),
        })
    }

    /// `feature_list.json` in the project, always from the canonical list and the harness's
    /// status.
    fn write_feature_list(&self) -> Result<(), RunError> {
        self.write_feature_list_in(&self.cfg.project_dir)
    }

    /// `feature_list.json` in `dir` (the project, or a worker's copy of it).
    fn write_feature_list_in(&self, dir: &std::path::Path) -> Result<(), RunError> {
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
        let written = project_files::write_project_file(dir, "feature_list.json", &bytes)?;
        if let Some(message) = written {
            self.emit("run", EventKind::Warning { message });
        }
        Ok(())
    }
}
