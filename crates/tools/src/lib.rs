//! The agent's tools — `bash`, `read_file`, `write_file`, `edit_file`, `list_files`, `grep` —
//! built on the sandbox: every path goes through [`sandbox::ProjectRoot::resolve`], every
//! command through [`sandbox::CommandPolicy::check`] and runs confined. A tool call never fails
//! as a Rust error: refusals and mistakes come back to the model as a [`ToolOutcome`] with
//! `is_error: true` and a message that says what to do instead. Guarded files (the feature
//! checks written during planning, the harness's files, the user's configuration) cannot be
//! written, and what a program changed of them is put back ([`guarded`]). Each tool is a [`Tool`] (its spec and its handler); a [`ToolRegistry`]
//! dispatches a session's tools by name, the toolbox's and any its caller adds.

mod args;
mod bash;
mod error;
pub mod guarded;
mod list;
mod outcome;
mod project_files;
mod read;
mod registry;
mod search;
mod specs;
mod toolbox;
mod walk;
mod write;

pub use error::ToolError;
pub use guarded::{
    FrozenCheck, FrozenFiles, FrozenManifest, GuardedKind, SessionGuard, MANIFEST_FILE,
};
pub use list::LIST_MAX_ENTRIES;
pub use llm::atomic_write;
pub use outcome::ToolOutcome;
pub use read::{
    READ_DEFAULT_LIMIT, READ_MAX_LINE_CHARS, READ_MAX_OUTPUT_BYTES, READ_MAX_WHOLE_FILE_BYTES,
};
pub use registry::{BoxFuture, Tool, ToolRegistry};
pub use sandbox::{PolicyConfig, ProjectRoot, SandboxMode};
pub use search::{GREP_MAX_LINE_CHARS, GREP_MAX_MATCHES};
pub use toolbox::{Toolbox, ToolboxConfig, DEFAULT_TIMEOUT, MAX_TIMEOUT};
