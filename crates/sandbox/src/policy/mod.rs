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
mod glob;
mod limits;
mod paths;
mod rules;
mod walk;
mod words;

use std::collections::BTreeSet;
use std::path::PathBuf;

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

/// What the policy knows about the confinement the command will run under.
///
/// The policy refuses what is dangerous whatever the kernel allows, and leaves to the kernel what
/// it can confine: so some answers depend on the confinement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicyContext {
    /// Commands can reach the network (directly, or through the harness's proxy). When false,
    /// commands whose purpose is the network (`pip install`, `git fetch`) are refused with a
    /// reason; tools that also talk to local servers (`curl`, `wget`) stay allowed.
    pub allow_network: bool,
    /// Commands run in the run's own pid namespace, so process tools (`kill`, `pkill`, `ps`,
    /// `lsof`, `ss`) only see and signal the run's own processes. When false they are refused
    /// (except signalling the command's own background jobs, `kill %1` / `kill $!`).
    pub processes_scoped: bool,
    /// The commands' private temp directory (their `$TMPDIR`) as commands see it, writable like
    /// the project. `None`: only `$TMPDIR` itself is taken as the temp directory.
    pub temp_dir: Option<PathBuf>,
}

impl PolicyContext {
    /// A context with the given network access, processes not scoped, no temp directory.
    pub fn new(allow_network: bool) -> PolicyContext {
        PolicyContext {
            allow_network,
            ..PolicyContext::default()
        }
    }
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
        let mut allowed: BTreeSet<String> = DEFAULT_ALLOW
            .iter()
            .flat_map(|(_, names)| names.iter().map(|s| s.to_string()))
            .collect();
        allowed.extend(config.allow.iter().cloned());
        let denied: BTreeSet<String> = config.deny.iter().cloned().collect();
        CommandPolicy { allowed, denied }
    }

    /// Checks a whole `bash -c` command string. Relative paths are taken from the project root
    /// (the command's working directory). Every caller (the `bash` tool, planned feature checks)
    /// goes through here: the size and nesting limits apply before anything is parsed, and the
    /// parsing runs on a thread with a known stack (see [`limits`]).
    pub fn check(
        &self,
        command: &str,
        project: &ProjectRoot,
        context: &PolicyContext,
    ) -> Result<(), PolicyDenial> {
        let mut checker = Checker::new(self, project, context);
        limits::check_size(command)?;
        limits::on_parser_thread(move || checker.program(command))
    }
}
