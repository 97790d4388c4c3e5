//! Confinement for everything the agent does: the shell-command policy (parse + allowlist),
//! path confinement for file tools, and confined process execution (Landlock, seccomp,
//! scrubbed environment, timeouts, capped output).
//!
//! Two layers, on purpose. [`CommandPolicy::check`] parses a command with a real bash parser
//! and refuses what is not on the allowlist, with a reason the model can act on. Whatever it
//! lets through, [`Sandbox::run`] executes under the kernel's confinement, so a command the
//! parser misjudges still cannot write outside the project, open a network socket, or read the
//! harness's API keys.
//!
//! The parser is [`brush_parser`], the parser of the brush shell: pure Rust (no C toolchain,
//! unlike tree-sitter-bash), maintained, and written for *bash* (process substitution,
//! `[[ ]]`, `$'..'`, here-strings, arithmetic), not only POSIX sh as yash-syntax is. It gives a
//! typed AST and a separate word parser that exposes command substitutions inside quoted words,
//! which is exactly what the policy has to see. Input it cannot parse is refused.

mod exec;
mod output;
mod path;
mod policy;

pub use exec::{Sandbox, SandboxConfig, SandboxError, SandboxMode};
pub use output::ExecOutput;
pub use path::{normalize_lexically, Access, PathError, ProjectRoot};
pub use policy::{CommandPolicy, PolicyConfig, PolicyDenial, DEFAULT_ALLOW};
