//! The shell-command policy: parse the whole command with a bash parser, find every command it
//! would run (in pipelines, lists, compound commands, functions, command and process
//! substitutions, heredocs, `bash -c` strings, launchers like `env`/`xargs`/`find -exec`), and
//! check each against an allowlist plus argument rules.
//!
//! The policy is the first of two layers. It exists to give the model a clear, early refusal; the
//! kernel layer ([`crate::Sandbox`]) is what actually holds. So where bash semantics are too
//! dynamic to judge (a command name built from `$VAR`, `eval`, code read from stdin), the policy
//! denies rather than guesses.

mod allowlist;
mod limits;
mod rules;
mod walk;
mod words;

use std::collections::BTreeSet;

pub use allowlist::DEFAULT_ALLOW;
use walk::Checker;

use crate::path::ProjectRoot;

/// Names added to or removed from the default allowlist (`[policy]` in `loopwright.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// Command names allowed in addition to the defaults.
    pub allow: Vec<String>,
    /// Command names denied even if a default allows them. Deny wins over allow.
    pub deny: Vec<String>,
}

/// Why a command was refused; displays a reason the model can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("command refused: {reason}")]
pub struct PolicyDenial {
    /// What was refused and what to do instead.
    pub reason: String,
}

pub(crate) fn deny<T>(reason: impl Into<String>) -> Result<T, PolicyDenial> {
    Err(PolicyDenial {
        reason: reason.into(),
    })
}

/// The command policy: an allowlist of command names plus argument rules.
#[derive(Debug, Clone)]
pub struct CommandPolicy {
    allowed: BTreeSet<String>,
    denied: BTreeSet<String>,
}

impl Default for CommandPolicy {
    fn default() -> Self {
        CommandPolicy::new(&PolicyConfig::default())
    }
}

impl CommandPolicy {
    /// The default allowlist, plus `config.allow`, minus `config.deny`.
    pub fn new(config: &PolicyConfig) -> CommandPolicy {
        let mut allowed: BTreeSet<String> = DEFAULT_ALLOW.iter().map(|s| s.to_string()).collect();
        allowed.extend(config.allow.iter().cloned());
        let denied: BTreeSet<String> = config.deny.iter().cloned().collect();
        CommandPolicy { allowed, denied }
    }

    /// Checks a whole `bash -c` command string. Relative paths are taken from the project root
    /// (the command's working directory).
    pub fn check(
        &self,
        command: &str,
        project: &ProjectRoot,
        network_allowed: bool,
    ) -> Result<(), PolicyDenial> {
        let mut checker = Checker {
            policy: self,
            project,
            network: network_allowed,
            cwds: vec![project.path().to_path_buf()],
            functions: BTreeSet::new(),
            depth: 0,
        };
        checker.program(command)
    }
}
