//! What one tool call gives back.

use std::path::{Path, PathBuf};

use crate::args::preview;

/// The result of one tool call. Failures are outcomes too (`is_error: true`) with a message
/// the model can act on; a tool call never panics or returns a Rust error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolOutcome {
    /// What goes back to the model.
    pub content: String,
    pub is_error: bool,
    /// One short line for progress displays, e.g. `bash: pytest -q → exit 1`.
    pub summary: String,
    /// The exit code of a `bash` command that exited normally.
    pub exit_code: Option<i32>,
    /// Frozen files a `bash` command changed and that were put back (relative to the project
    /// root), so the caller can record an event.
    pub frozen_restored: Vec<PathBuf>,
}

impl ToolOutcome {
    pub fn success(summary: impl Into<String>, content: impl Into<String>) -> ToolOutcome {
        ToolOutcome {
            content: content.into(),
            is_error: false,
            summary: summary.into(),
            exit_code: None,
            frozen_restored: Vec::new(),
        }
    }

    pub fn failure(tool: &str, content: impl Into<String>) -> ToolOutcome {
        let content = content.into();
        let first_line = content.lines().next().unwrap_or_default();
        ToolOutcome {
            summary: format!("{tool}: error: {}", preview(first_line, 80)),
            content,
            is_error: true,
            exit_code: None,
            frozen_restored: Vec::new(),
        }
    }
}

/// How a path is shown to the model: relative to the project root, `/`-separated, `.` for the
/// root itself.
pub(crate) fn shown_path(root: &Path, abs: &Path) -> String {
    match abs.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
        Err(_) => abs.display().to_string(),
    }
}

/// An I/O error about `shown` in words the model can act on.
pub(crate) fn io_message(shown: &str, err: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::NotFound => format!("{shown} does not exist; check the path with list_files"),
        ErrorKind::PermissionDenied => format!("{shown}: permission denied"),
        _ => format!("{shown}: {err}"),
    }
}
