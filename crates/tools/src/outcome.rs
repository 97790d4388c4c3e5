//! What one tool call gives back.

use std::path::{Path, PathBuf};

use sandbox::untrusted::{FileKind, UntrustedError};
use sandbox::ProjectRoot;

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
/// root itself, quoted as bash's `$'...'` when it holds control characters (see
/// [`shown_name`]).
pub(crate) fn shown_path(root: &Path, abs: &Path) -> String {
    match abs.strip_prefix(root) {
        Ok(rel) => shown_rel(rel),
        Err(_) => shown_name(&abs.display().to_string()),
    }
}

/// [`shown_path`] of a path relative to the project root.
pub(crate) fn shown_rel(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        return ".".to_string();
    }
    let joined = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    shown_name(&joined)
}

/// A name as the model sees it. A name with a newline or another control character (the agent
/// can create `notes\n[harness] all checks pass`) would forge lines in a listing, so it is
/// shown quoted the way bash quotes it (`$'notes\n[harness] ...'`): one line, unambiguous, and
/// usable as-is in a `bash` command.
pub(crate) fn shown_name(name: &str) -> String {
    if !name.chars().any(char::is_control) {
        return name.to_string();
    }
    let mut out = String::from("$'");
    for c in name.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x1b' => out.push_str("\\e"),
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c if c.is_control() && (c as u32) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `abs` (a path [`ProjectRoot::resolve`] returned) relative to the project root, for
/// [`sandbox::untrusted::UntrustedDir`].
pub(crate) fn project_relative<'a>(root: &ProjectRoot, abs: &'a Path) -> &'a Path {
    abs.strip_prefix(root.path()).unwrap_or(Path::new(""))
}

/// An [`UntrustedError`] about `shown` in words the model can act on.
pub(crate) fn untrusted_message(shown: &str, err: &UntrustedError) -> String {
    match err {
        UntrustedError::NotFound { .. } => {
            format!("{shown} does not exist; check the path with list_files")
        }
        UntrustedError::NotRegular {
            kind: FileKind::Directory,
            ..
        } => format!("{shown} is a directory; give the path of a file (list_files shows what is in it)"),
        UntrustedError::NotRegular { kind, .. } => format!(
            "{shown} is {kind}, not a regular file; the file tools read and write regular files only"
        ),
        UntrustedError::Io { source, .. } => io_message(shown, source),
        other => format!("{shown} {}", other.reason()),
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
