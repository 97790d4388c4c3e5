//! [`ProjectFiles`]: the project as the file tools reach it (its root for resolving paths, and
//! the directory held open for reading and writing beneath it without following links), and
//! [`blocking`], how a file tool runs its synchronous work off the async runtime.

use std::sync::Arc;

use sandbox::untrusted::UntrustedDir;
use sandbox::ProjectRoot;

use crate::outcome::ToolOutcome;
use crate::registry::BoxFuture;

/// Shared by the file tools (cheap to clone).
#[derive(Clone)]
pub(crate) struct ProjectFiles {
    root: Arc<ProjectRoot>,
    files: Arc<UntrustedDir>,
}

impl ProjectFiles {
    pub(crate) fn new(root: Arc<ProjectRoot>, files: UntrustedDir) -> ProjectFiles {
        ProjectFiles {
            root,
            files: Arc::new(files),
        }
    }

    pub(crate) fn root(&self) -> &ProjectRoot {
        &self.root
    }

    pub(crate) fn files(&self) -> &UntrustedDir {
        &self.files
    }
}

/// Runs `work` on the blocking pool; its error message (or a panic) comes back as a failed
/// outcome of `tool`.
pub(crate) fn blocking<F>(tool: &'static str, work: F) -> BoxFuture<'static, ToolOutcome>
where
    F: FnOnce() -> Result<ToolOutcome, String> + Send + 'static,
{
    Box::pin(async move {
        match tokio::task::spawn_blocking(work).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(message)) => ToolOutcome::failure(tool, message),
            Err(e) => ToolOutcome::failure(tool, format!("the tool failed internally: {e}")),
        }
    })
}
