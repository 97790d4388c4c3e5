//! Errors from building a [`crate::Toolbox`] or handling the guarded files. Errors from a
//! tool *call* never appear here: they go back to the model as a [`crate::ToolOutcome`] with
//! `is_error: true`.

use std::path::PathBuf;

/// What went wrong setting up the tools or the frozen-file snapshot.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("project directory {path}: {message}")]
    Project { path: PathBuf, message: String },
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("frozen file {path}: {message}")]
    Frozen { path: PathBuf, message: String },
    #[error("guarded file {path}: {message}")]
    Guarded { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
