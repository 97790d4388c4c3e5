//! Confinement for everything the agent does: the shell-command policy (parse + allowlist),
//! path confinement for file tools, and confined process execution (Landlock, seccomp,
//! scrubbed environment, timeouts, capped output). [`untrusted`] is the other direction: how
//! the harness itself reads and writes the files the agent controls.
//!
//! Two layers, on purpose. [`CommandPolicy::check`] parses a command with a real bash parser
//! and refuses what is not on the allowlist, with a reason the model can act on. Whatever it
//! lets through, [`Sandbox::run`] executes under the kernel's confinement, so a command the
//! parser misjudges still cannot write outside the project, open a network socket, or read the
//! harness's API keys.
//!
//! Network egress goes through [`proxy`], an allowlisting HTTP/CONNECT proxy the harness runs
//! outside the commands' network namespace, under the rules of [`egress`] (`network = off |
//! registries | open`, `allow_domains`); [`proxy_env`] is what commands need to find it.
//!
//! The parser is [`brush_parser`], the parser of the brush shell: pure Rust (no C toolchain,
//! unlike tree-sitter-bash), maintained, and written for *bash* (process substitution,
//! `[[ ]]`, `$'..'`, here-strings, arithmetic), not only POSIX sh as yash-syntax is. It gives a
//! typed AST and a separate word parser that exposes command substitutions inside quoted words,
//! which is exactly what the policy has to see. Input it cannot parse is refused.
//!
//! Decisions:
//! - Interpreters may run inline code (`python -c`, `node -e`, `python3 - <<'EOF'`): the kernel
//!   layer confines it as it confines a script. `eval`, `exec`, `trap`, aliases, computed
//!   command names and shells reading code from a pipe are refused; `bash -c` strings and
//!   quoted here-documents given to a shell are checked like the command (see the policy
//!   module's decisions).
//! - `.git` is protected in every [`ProjectRoot`]: file tools and literal shell writes
//!   (`> .git/hooks/x`, `cp x .git/hooks/`) are refused, and so are git settings that run
//!   programs (`git -c`, `git config core.*/alias.*`). Landlock cannot exempt a subdirectory of
//!   the writable project, so a script could still write `.git/hooks`: the harness must run
//!   its own git with `-c core.hooksPath=/dev/null`.
//! - seccomp refuses `setsid`/`setpgid` so nothing leaves the process group the timeout kills
//!   (git is told not to daemonize its gc); `clone3` answers ENOSYS so libc falls back to
//!   `clone`, whose namespace flags are refused.
//! - A root harness does not hand root to commands: every capability but the five that decide
//!   file access is dropped (bounding set included), so the kernel's capability check keeps
//!   commands from reading `/proc/<pid>/environ` of, or changing limits and scheduling of,
//!   the harness and other privileged processes. seccomp refuses `prlimit`, `setpriority`,
//!   `sched_set*` and `ioprio_set` aimed at another process (same-user processes would pass
//!   the capability check). Descriptors above stderr are made close-on-exec in the child, so
//!   a descriptor the harness inherited cannot carry writes past Landlock.
//! - Resource limits are not set: `RLIMIT_NPROC` does not bind root and counts all of a user's
//!   processes otherwise, `RLIMIT_AS` breaks runtimes that reserve address space (JVM, Go,
//!   V8), `RLIMIT_FSIZE` breaks large build outputs. A fork bomb or a disk filler lasts until
//!   the timeout kills the group; bound them from outside (a cgroup: `systemd-run --scope -p
//!   TasksMax=512 -p MemoryMax=8G`, or a container).
//! - Known residuals: Landlock does not govern `connect` on *pathname* Unix sockets, so a
//!   daemon socket on the host (e.g. a Docker socket) is reachable; the seccomp filter does not
//!   reject x32 syscall numbers (this kernel has x32 disabled). Landlock has no access
//!   right for metadata: `chmod`, `chown`, `utime` and `setxattr` on files outside the project
//!   that the command's user owns (every system file, for a root harness) are not refused. Tool caches that must be
//!   writable (`GOCACHE`, npm's cache, `XDG_CACHE_HOME`) point into the private temp dir.

pub mod egress;
mod exec;
mod output;
mod path;
mod policy;
pub mod proxy;
pub mod untrusted;

pub use egress::{EgressPolicy, NetworkMode};
pub use exec::{Sandbox, SandboxConfig, SandboxError, SandboxMode};
pub use output::ExecOutput;
pub use path::{normalize_lexically, Access, PathError, ProjectRoot};
pub use policy::{CommandPolicy, PolicyConfig, PolicyContext, PolicyDenial, DEFAULT_ALLOW};
pub use proxy::{proxy_env, EgressProxy, ProxyEvent, ProxyLimits};
