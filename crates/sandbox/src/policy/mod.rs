//! The shell-command policy: parse the whole command with a bash parser, find every command it
//! would run (in pipelines, lists, compound commands, functions, command and process
//! substitutions, here-documents, `bash -c` strings, launchers like `env`/`xargs`/`find -exec`),
//! and check each against an allowlist plus per-program argument rules.
//!
//! The policy is the second line behind the kernel's confinement ([`crate::Sandbox`]). It
//! refuses what is dangerous whatever the kernel allows, with a reason the model can act on:
//! programs run under other names, settings that make a shell or a tool run strings, tools
//! that execute by themselves, privilege and isolation tools, signalling processes outside the
//! run, and destroying the history the harness keeps. It does not refuse what it merely cannot
//! evaluate: a path built from `$OUT` or `$(mktemp)` is left to the kernel.
//!
//! Layout: [`allowlist`] (the data: default allowlist per toolchain, fixed refusals, variables
//! and shell options that may not be set), [`limits`] (what is checked before anything is
//! parsed), [`walk`] (the AST walk and the shell state it tracks), [`words`] and [`glob`] (what
//! an argument's value is: fixed, known, or unknown; brace expansion and glob matching),
//! [`paths`] (where a write lands), and `rules/` (one file per family of programs, `git` on its
//! own).
//!
//! Decisions:
//! - Interpreters run inline code like code in a file: `python -c`, `python3 - <<'EOF'`,
//!   `node -e`, `echo … | python3` are allowed (the kernel confines them as it confines a
//!   script). Shells are different: their code is shell code, which the policy can read, so
//!   `bash -c STRING` and `bash <<'EOF'` are checked like the command; code a shell would read
//!   from a pipe, or from a here-document with expansions in it, is refused.
//! - Values the policy can evaluate are evaluated: `$PWD`, `$(pwd)`, `~+` (each directory the
//!   shell may be in), `~`/`$HOME` (the harness's `HOME`, which commands see), `$TMPDIR` (the
//!   context's temp dir, or "the temp dir"), brace expansion (up to 1024 words). Other
//!   expansions are unknown: harmless as arguments, refused as command names.
//! - Writes with a known target must land in the project (not `.git`, not a protected file) or
//!   the temp dir; literal `/tmp/x` is outside unless it is the context's temp dir. Deleting the
//!   project directory or a directory holding it is refused by any spelling (`.`, `./`,
//!   `"$PWD"`, `../project`, its absolute path, `pytest --basetemp=.`), and so is any glob
//!   that can match `.git` (`.[!.]*`, `.??*`) and any `find` that can delete under it (its
//!   expression is evaluated on a sample of `.git`'s paths, `-prune` and depth included).
//! - git: local subcommands; network ones need the network. Settings that name programs are
//!   refused wherever they come from (`-c`, `--config-env`, `git config`, `clone --config`,
//!   `GIT_*` variables); `user.*`, `color.*` and other inert keys are allowed. History the
//!   harness owns is not rewritten: `reset --hard <rev>` (and `--soft/--keep/--merge` or a
//!   revision), `rebase`, `commit --amend`, `checkout -B`, `branch -D/-f/-m`, `push --force`,
//!   `reflog expire`, `gc --prune`, `update-ref`, `replace`, `filter-branch` are refused;
//!   `git reset --hard` alone, `commit`, `checkout -b`, `stash` are allowed (the harness commits
//!   on top, and in the run's world `.git` is read-only anyway).
//! - Options are read as each program reads them ([`rules`]' option reader): bundles
//!   (`-rt/etc`), attached values (`-o/etc/x`), `--opt=value`, and abbreviations of long options
//!   (`--in-pl`, `--target=`, `--checkpoint-a=`), which getopt_long, git and npm accept.
//! - A function is trusted (a call runs its checked body instead of the program of that name)
//!   only when it is defined unconditionally in the current scope; functions may not take the
//!   name of a builtin.
//! - Process tools (`kill`, `pkill`, `ps`, `lsof`, `ss`…) need [`PolicyContext::processes_scoped`];
//!   without it only the command's own jobs may be signalled (`kill %1`, `kill $!`).
//!
//! Known residuals (left to the kernel and to the harness's history mirror):
//! - Values that flow at run time: `for d in .git; do rm -rf "$d"; done`, `xargs rm -rf`, a
//!   function called with a dangerous argument, a script or interpreter deleting `.git`.
//! - brush's reading of a command and bash's can differ on exotic syntax; what brush cannot
//!   parse is refused, what it parses differently may be misjudged (the kernel still holds).
//! - `source FILE` and scripts run unchecked code (as `bash script.sh` does); a sourced file can
//!   change `PATH` for the rest of the command.
//! - Environment variables naming a target (`CARGO_TARGET_DIR=. cargo clean`) are not
//!   evaluated.

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
    /// parsing runs on a thread with a known stack (see the `limits` module).
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
