//! Confinement for everything the agent does: the shell-command policy (parse + allowlist),
//! path confinement for file tools, and confined process execution (Landlock, seccomp,
//! scrubbed environment, timeouts, capped output).
//!
//! SKELETON — the public signatures below are what `crates/tools` builds on; the sandbox work
//! fills them in (and may add to them).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether a path is wanted for reading or for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The project directory the agent may work in, and the paths inside it that it may not change.
#[derive(Debug, Clone)]
pub struct ProjectRoot {
    root: PathBuf,
    protected: Vec<PathBuf>,
}

impl ProjectRoot {
    /// `dir` must exist; it is canonicalized.
    pub fn new(dir: &Path) -> Result<ProjectRoot, PathError> {
        let root = dir.canonicalize().map_err(|source| PathError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(ProjectRoot {
            root,
            protected: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Marks a path (relative to the root, or absolute inside it) as not writable by the agent.
    pub fn protect(&mut self, path: &Path) {
        self.protected.push(path.to_path_buf());
    }

    /// Resolves a path the model gave (relative to the project root, or absolute inside it) to a
    /// confined absolute path, refusing escapes by `..`, absolute paths outside the root,
    /// symlinks leading out (checked component by component), and — for `Access::Write` —
    /// protected paths. The error message is written for the model to act on.
    pub fn resolve(&self, path: &str, access: Access) -> Result<PathBuf, PathError> {
        let _ = (path, access);
        todo!("sandbox work")
    }
}

/// What one confined command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// `None` when killed by a signal (see `signal`) or by the timeout.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Captured output, capped: head and tail kept with an elision marker between.
    pub stdout: String,
    pub stderr: String,
    /// True when either stream was cut.
    pub truncated: bool,
    pub duration: Duration,
}
