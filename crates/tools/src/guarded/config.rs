//! The user's configuration (`loopwright.toml`) as guarded files keep it: its bytes (or its
//! absence) when a session started, recorded in the state dir for the length of the session, and
//! put back when the session ends or, after a harness that was killed mid-session, before the
//! configuration is next read.

use std::path::{Path, PathBuf};

use sandbox::untrusted::{self, InTheWay, UntrustedDir, UntrustedError};

use super::USER_CONFIG;
use crate::error::ToolError;

/// A project's `loopwright.toml` may be at most this big (the CLI refuses a bigger one).
pub const PROJECT_CONFIG_MAX_BYTES: u64 = 1024 * 1024;

/// The record of a session's configuration snapshot in the state dir.
pub const CONFIG_RECORD_FILE: &str = "config-guard.json";

/// `loopwright.toml` as it was when a session started, and where that is recorded.
#[derive(Debug)]
pub(super) struct ConfigSnapshot {
    path: PathBuf,
    record: PathBuf,
    before: Option<Vec<u8>>,
}

impl ConfigSnapshot {
    /// Reads the configuration and records it in `state_dir` before the session starts.
    pub(super) fn capture(project: &Path, state_dir: &Path) -> Result<ConfigSnapshot, ToolError> {
        let before = read(project)?;
        let record = state_dir.join(CONFIG_RECORD_FILE);
        let json = serde_json::to_vec(&before).unwrap_or_default();
        llm::atomic_write(&record, &json).map_err(|source| ToolError::Io {
            path: record.clone(),
            source,
        })?;
        Ok(ConfigSnapshot {
            path: project.join(USER_CONFIG),
            record,
            before,
        })
    }

    /// Puts the file back (or removes one the session created); returns what was restored.
    pub(super) fn restore(&self) -> Vec<PathBuf> {
        let restored = put_back(&self.path, self.before.as_deref());
        // Once the file is as it was, the record is no longer needed.
        let _ = std::fs::remove_file(&self.record);
        restored
    }
}

/// Whether a session left a configuration snapshot behind in `state_dir` (it was cut off, or is
/// still running).
pub fn has_config_record(state_dir: &Path) -> bool {
    state_dir.join(CONFIG_RECORD_FILE).exists()
}

/// Puts the project's `loopwright.toml` back as the snapshot a cut-off session left in
/// `state_dir` says it was, and removes the snapshot. The caller makes sure no session is
/// running. Returns true when something was undone.
pub fn undo_cut_off_session(state_dir: &Path, project: &Path) -> Result<bool, ToolError> {
    let record = state_dir.join(CONFIG_RECORD_FILE);
    let text = match std::fs::read(&record) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(ToolError::Io {
                path: record,
                source,
            })
        }
    };
    let before: Option<Vec<u8>> =
        serde_json::from_slice(&text).map_err(|e| ToolError::Guarded {
            path: record.clone(),
            message: format!("not a configuration snapshot ({e}); remove it to go on"),
        })?;
    let undone = !put_back(&project.join(USER_CONFIG), before.as_deref()).is_empty();
    std::fs::remove_file(&record).map_err(|source| ToolError::Io {
        path: record,
        source,
    })?;
    Ok(undone)
}

/// The bytes of the project's `loopwright.toml`, or `None` when there is no regular file there.
fn read(project: &Path) -> Result<Option<Vec<u8>>, ToolError> {
    let path = project.join(USER_CONFIG);
    match untrusted::read(project, Path::new(USER_CONFIG), PROJECT_CONFIG_MAX_BYTES) {
        Ok(c) if c.truncated => Err(ToolError::Guarded {
            path,
            message: format!(
                "{} bytes, more than the {PROJECT_CONFIG_MAX_BYTES} a configuration may have",
                c.size
            ),
        }),
        Ok(c) => Ok(Some(c.bytes)),
        Err(
            UntrustedError::NotFound { .. }
            | UntrustedError::NotRegular { .. }
            | UntrustedError::Symlink { .. },
        ) => Ok(None),
        Err(UntrustedError::Io { path, source }) => Err(ToolError::Io { path, source }),
        Err(e) => Err(ToolError::Guarded {
            path,
            message: e.reason(),
        }),
    }
}

/// Makes `path` (a file directly in the project) hold `before` again, or not exist; returns
/// its name when something was changed. Never writes or removes through a link.
fn put_back(path: &Path, before: Option<&[u8]>) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let Ok(files) = UntrustedDir::open(dir) else {
        return Vec::new();
    };
    let rel = Path::new(name);
    let cap = before.map_or(0, |b| b.len() as u64);
    let unchanged = match (files.read(rel, cap), before) {
        (Ok(now), Some(bytes)) => !now.truncated && now.bytes == bytes,
        (Err(e), None) => e.is_not_found(),
        _ => false,
    };
    if unchanged {
        return Vec::new();
    }
    let result = match before {
        Some(bytes) => files.replace(rel, bytes, InTheWay::MoveAside),
        None => files.remove(rel, InTheWay::MoveAside),
    };
    match result {
        Ok(_) => vec![PathBuf::from(name)],
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a test fails loudly")]
mod tests {
    use super::*;

    #[test]
    fn put_back_replaces_a_link_without_touching_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("t"), "keep").unwrap();
        let path = dir.path().join("loopwright.toml");
        std::os::unix::fs::symlink(outside.path().join("t"), &path).unwrap();
        assert_eq!(
            put_back(&path, Some(b"model = \"x\"\n")),
            vec![PathBuf::from("loopwright.toml")]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "model = \"x\"\n");
        assert_eq!(
            std::fs::read_to_string(outside.path().join("t")).unwrap(),
            "keep"
        );
        assert!(put_back(&path, Some(b"model = \"x\"\n")).is_empty());
        std::os::unix::fs::symlink(outside.path().join("t"), dir.path().join("l")).unwrap();
        assert_eq!(
            put_back(&dir.path().join("l"), None),
            vec![PathBuf::from("l")]
        );
        assert!(outside.path().join("t").exists());
        assert!(put_back(&dir.path().join("l"), None).is_empty());
    }
}
