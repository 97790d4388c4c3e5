//! Starting and resuming a run: the spec, the state-dir lock, and the project brought back to
//! where the state says it is (a git repo, the spec in place, frozen files restored, the work of
//! a cut-off session committed, passing features re-verified).

use super::features::Feature;
use super::project_files;
use super::sessions::session_commit_message;
use super::state::{Phase, SessionEnd, SessionKind, StateError};
use super::{RunContext, RunError, FEATURES_FILE, FROZEN_DIR};
use crate::events::EventKind;
use std::path::Path;
use tools::FrozenFiles;

/// Reads the spec: it must be non-empty UTF-8 text.
pub(super) fn read_spec(project: &Path, path: &Path) -> Result<String, RunError> {
    let err = |message: String| RunError::Spec {
        path: path.to_path_buf(),
        message,
    };
    let bytes = project_files::read_spec_bytes(project, path).map_err(|e| err(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| err("is not UTF-8 text".into()))?;
    if text.trim().is_empty() {
        return Err(err("is empty; describe the application to build".into()));
    }
    Ok(text)
}

/// Whether a process holds the run's lock in `state_dir` now (a run is live, not cut off).
pub fn run_is_live(state_dir: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new()
        .write(true)
        .open(state_dir.join("run.lock"))
    else {
        return false;
    };
    matches!(file.try_lock(), Err(std::fs::TryLockError::WouldBlock))
}

/// One run per state dir at a time: a second process would interleave sessions and ledger
/// entries. The lock is an advisory `flock` on `run.lock`, released when the file is closed
/// (also when the process dies).
pub fn lock_state_dir(state_dir: &Path) -> Result<std::fs::File, RunError> {
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

impl RunContext<'_> {
    /// Prepares the project: its git guarded (rebuilt from the mirror if it was lost), the spec
    /// in place, frozen files restored and work left uncommitted committed on resume.
    pub(super) async fn start(&self, spec: &str) -> Result<(), RunError> {
        let project = &self.cfg.project_dir;
        let phase = self.phase();
        self.check_ledger()?;
        let repair = self.git.guard().await?;
        self.report_git_repair("run", None, &repair);
        self.check_history().await?;
        if phase == Phase::Planning {
            if let Some(message) = project_files::copy_spec(project, spec)? {
                self.emit("run", EventKind::Warning { message });
            }
            // Planning again over a frozen plan (an extension cut off): its files stay frozen.
            if self.cfg.state_dir.join(FEATURES_FILE).exists() {
                let frozen = FrozenFiles::restore_from(
                    self.toolbox.project(),
                    &self.cfg.state_dir.join(FROZEN_DIR),
                )?;
                let check = frozen.verify_and_restore();
                self.toolbox.set_frozen(frozen)?;
                self.report_restored("run", &check.restored);
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
            if self.git.abort_unfinished_merge().await? {
                self.emit(
                    "run",
                    EventKind::Warning {
                        message: "aborted a merge the harness left unfinished when it stopped; \
                                  the worker's branch is merged again"
                            .into(),
                    },
                );
            }
            self.commit_left_over_work().await?;
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

    /// Commits what the last session left uncommitted (it was cut off, or its commit failed),
    /// then records its verified features as passing.
    async fn commit_left_over_work(&self) -> Result<(), RunError> {
        let (last, message) = {
            let s = self.lock();
            let pending: Vec<String> = s
                .features
                .iter()
                .filter(|f| s.status.get(&f.id).is_some_and(|st| st.uncommitted))
                .map(|f| f.id.clone())
                .collect();
            match s.sessions.iter().max_by_key(|r| r.number) {
                Some(r) if r.kind == SessionKind::Building => {
                    let note = if r.end == Some(SessionEnd::CUT_OFF) {
                        " (cut off)"
                    } else {
                        " (left uncommitted)"
                    };
                    let newly = if r.newly_passing.is_empty() {
                        &pending
                    } else {
                        &r.newly_passing
                    };
                    (
                        Some(r.number),
                        session_commit_message(r.number, note, newly),
                    )
                }
                _ => (None, "loopwright: work left uncommitted".to_string()),
            }
        };
        self.commit("run", last, &message).await?;
        self.mark_committed();
        self.save()?;
        Ok(())
    }

    /// `features.json` (written when the plan was frozen) must match the run state.
    pub(super) fn check_canonical_features(&self) -> Result<(), RunError> {
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
}

/// Before the CLI reads `loopwright.toml`: if a session was cut off (the harness was killed) it
/// may have left a changed configuration behind — put the project's `loopwright.toml` back as
/// it was when that session started ([`tools::guarded::undo_cut_off_session`]). Returns true
/// when something was undone.
pub fn undo_config_changes_of_cut_off_session(
    state_dir: &Path,
    project: &Path,
) -> Result<bool, RunError> {
    if !tools::guarded::has_config_record(state_dir) {
        return Ok(false);
    }
    // Only when no run is under way: a live session's snapshot is its own business.
    let _lock = lock_state_dir(state_dir)?;
    tools::guarded::undo_cut_off_session(state_dir, project).map_err(|e| match e {
        // A snapshot that cannot be read is a damaged state dir, as before the fold.
        tools::ToolError::Guarded { path, message } => {
            RunError::State(StateError::Corrupt { path, message })
        }
        e => RunError::from(e),
    })
}
