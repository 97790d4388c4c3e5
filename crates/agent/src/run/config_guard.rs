//! `loopwright.toml` guarded for the length of a session (the file configures the harness, so
//! a change a session's program made to it is undone when the session ends, or before the next
//! start when the harness was killed mid-session).

use super::project_files::{self, put_back};
use super::resume::lock_state_dir;
use super::state::StateError;
use super::RunError;
use std::path::{Path, PathBuf};

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
        let before = project_files::read_config_snapshot(project)?;
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
