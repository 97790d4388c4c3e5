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
//!   programs (`git -c`, `git config core.*/alias.*`). In a world the paths the harness names
//!   in [`SandboxConfig::read_only`] (`.git`, the frozen files) are read-only mounts, so no
//!   script writes them either; in fallback mode Landlock cannot exempt a subdirectory of the
//!   writable project, and the harness's own git must not trust anything in `.git`.
//! - In fallback mode seccomp refuses `setsid`/`setpgid` so nothing leaves the process group
//!   the timeout kills (git is told not to daemonize its gc); in a world they are allowed (the
//!   pid namespace bounds every process). `clone3` answers ENOSYS so libc falls back to
//!   `clone`, whose namespace flags are refused.
//! - Commands run in a *world* per session (see [`Confinement`]): their own
//!   user, mount, pid, network, ipc and uts namespaces, held by a small init process. The mount
//!   view shows the system's toolchains read-only, the project read-write, the run's temp dir
//!   at `/tmp` and an empty home with toolchain directories only, so credentials, other
//!   projects, the state dir and host sockets are simply absent; `/proc` shows only the run's
//!   processes; the network is loopback only (egress through the harness's proxy when one is
//!   configured). Background processes live until [`Sandbox::end_session`], the sandbox is
//!   dropped, or the harness dies (SIGKILL included). Written on `libc` rather than on
//!   bubblewrap or a container crate because commands must *join* one persistent world; the
//!   reasons are in `namespaces.rs`. Where the kernel refuses namespaces
//!   ([`NamespaceMode::Auto`]) the sandbox says so ([`Sandbox::fallback_reason`], and a note on
//!   the first command's output) and falls back to Landlock and the seccomp socket filter alone.
//! - A root harness does not hand root to commands. In a world uid 0 is mapped to 0 only and
//!   every capability is dropped (bounding set included, securebits locked), so root in the
//!   world reads only by the owner bits of files in the view: the view holds no root-only file
//!   of `/etc`, `/proc` (masked) and no device but null/zero/full/random/urandom/tty. What a
//!   root harness's commands can still read that an ordinary user could not: root-only files
//!   under the read-only `/usr`, `/opt` and the home toolchain directories (not walked: on
//!   the reference machine that is `/usr/share/polkit-1/rules.d`), and root-only files in the
//!   project. In fallback mode the five file-access capabilities are kept (a root harness may
//!   work in a project owned by another user) and Landlock governs where they apply; the
//!   other capabilities are dropped. seccomp refuses `prlimit`, `setpriority`, `sched_set*`
//!   and `ioprio_set` aimed at another process. Descriptors above stderr are made
//!   close-on-exec in the child, so a descriptor the harness inherited cannot carry writes
//!   past Landlock.
//! - Metadata: in a world every file outside the project, `/tmp` and `$HOME` is on a
//!   read-only mount, so `chmod`, `chown`, `utime` and `setxattr` on it fail with EROFS. In
//!   fallback mode Landlock has no access right for metadata and they are not refused on
//!   files the command's user owns.
//! - Resource limits ([`ResourceLimits`]): memory and processes per command and per run in
//!   cgroups where writable (v2, or v1 as root), rlimits otherwise; file size by rlimit. Hits
//!   are reported to the model (see `limits.rs`).
//! - A kernel denial (EPERM, EACCES, EROFS in the output) gets a one-line `[sandbox]` note
//!   appended to the command's stderr saying the sandbox may have refused it and what it
//!   allows.
//! - Known residuals: the seccomp filter does not reject x32 syscall numbers (this kernel has
//!   x32 disabled). In fallback mode, Landlock does not govern `connect` on pathname Unix
//!   sockets, so a daemon socket on the host is reachable. Disk use is bounded per file, not
//!   in total (no quota): a command can fill the file system the project or `/tmp` lives on.

mod child;
pub mod egress;
mod env;
mod exec;
mod landlock;
mod limits;
mod namespaces;
mod output;
mod path;
mod policy;
pub mod proxy;
mod seccomp;
pub mod untrusted;
mod view;

pub use egress::{EgressPolicy, NetworkMode};
pub use exec::{ListenerHandler, Sandbox, SandboxConfig, SandboxError, SandboxMode};
pub use limits::ResourceLimits;
pub use namespaces::{Confinement, NamespaceMode, WorldEnded};
pub use output::ExecOutput;
pub use path::{normalize_lexically, Access, PathError, ProjectRoot};
pub use policy::{CommandPolicy, PolicyConfig, PolicyContext, PolicyDenial, DEFAULT_ALLOW};
pub use proxy::{proxy_env, EgressProxy, ProxyEvent, ProxyLimits, PROXY_PORT};
