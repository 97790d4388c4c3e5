//! The data of the policy: which programs are allowed by default (per toolchain), which are
//! refused whatever the configuration says, which variables and shell options may not be set.

/// Shell builtins and keywords used as commands.
const SHELL: &[&str] = &[
    ":",
    "true",
    "false",
    "echo",
    "printf",
    "test",
    "[",
    "pwd",
    "cd",
    "pushd",
    "popd",
    "dirs",
    "exit",
    "return",
    "break",
    "continue",
    "shift",
    "set",
    "shopt",
    "unset",
    "export",
    "local",
    "declare",
    "typeset",
    "readonly",
    "read",
    "mapfile",
    "readarray",
    "let",
    "getopts",
    "type",
    "hash",
    "umask",
    "ulimit",
    "wait",
    "jobs",
    "disown",
    "source",
    ".",
    "command",
    "builtin",
];

/// Programs that launch another program, which is checked in turn.
const LAUNCHERS: &[&str] = &["env", "xargs", "nice", "timeout", "time", "nohup", "stdbuf"];

/// Files and text.
const FILES_AND_TEXT: &[&str] = &[
    "ls",
    "cat",
    "head",
    "tail",
    "wc",
    "grep",
    "egrep",
    "fgrep",
    "rg",
    "find",
    "sed",
    "awk",
    "gawk",
    "sort",
    "uniq",
    "diff",
    "cmp",
    "comm",
    "cut",
    "tr",
    "tee",
    "paste",
    "join",
    "column",
    "nl",
    "fold",
    "fmt",
    "rev",
    "tac",
    "od",
    "xxd",
    "hexdump",
    "strings",
    "file",
    "stat",
    "du",
    "df",
    "tree",
    "basename",
    "dirname",
    "realpath",
    "readlink",
    "mkdir",
    "rmdir",
    "touch",
    "cp",
    "mv",
    "rm",
    "ln",
    "chmod",
    "mktemp",
    "patch",
    "md5sum",
    "sha1sum",
    "sha256sum",
    "base64",
    "tar",
    "gzip",
    "gunzip",
    "zcat",
    "zip",
    "unzip",
    "jq",
    "expr",
    "bc",
    "seq",
    "sleep",
    "date",
    "which",
    "whoami",
    "id",
    "uname",
    "nproc",
    "printenv",
    "yes",
];

/// Processes and sockets: allowed when processes are scoped to the run (see
/// [`PROCESS_TOOLS`]).
const PROCESSES: &[&str] = &[
    "ps", "pgrep", "pidof", "kill", "pkill", "killall", "lsof", "ss", "netstat",
];

/// Network clients (they go through the harness's proxy; without network only loopback works).
const NETWORK: &[&str] = &["curl", "wget"];

/// Databases.
const DATA: &[&str] = &["sqlite3"];

const PYTHON: &[&str] = &[
    "python", "python3", "pip", "pip3", "pytest", "py.test", "ruff", "black", "isort", "mypy",
    "flake8", "pylint", "coverage",
];

const NODE: &[&str] = &[
    "node", "npm", "npx", "yarn", "pnpm", "tsc", "jest", "vitest", "eslint", "prettier",
];

const RUST: &[&str] = &["cargo", "rustc", "rustfmt", "rustup"];

const GO: &[&str] = &["go", "gofmt"];

/// C and builds.
const BUILD: &[&str] = &["make", "cc", "gcc", "g++", "c++", "clang"];

/// Version control (subcommands checked) and shells for scripts inside the project
/// (`bash init.sh`) and checked `-c` strings.
const VCS_AND_SHELLS: &[&str] = &["git", "bash", "sh"];

/// The default allowlist: (group, program names), per toolchain.
pub const DEFAULT_ALLOW: &[(&str, &[&str])] = &[
    ("shell builtins", SHELL),
    ("launchers", LAUNCHERS),
    ("files and text", FILES_AND_TEXT),
    ("processes (when scoped to the run)", PROCESSES),
    ("network clients", NETWORK),
    ("databases", DATA),
    ("python", PYTHON),
    ("node", NODE),
    ("rust", RUST),
    ("go", GO),
    ("c and builds", BUILD),
    ("git and shells", VCS_AND_SHELLS),
];

/// Programs that see or signal processes (and sockets) beyond the command's own: allowed only
/// when the run's processes live in a pid namespace of their own.
pub(crate) const PROCESS_TOOLS: &[&str] = PROCESSES;

/// Tools whose purpose is talking to the network, not on the allowlist: named in the refusal.
pub(crate) const NETWORK_TOOLS: &[&str] = &[
    "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "rsync", "ftp", "http",
    "https", "aria2c", "dig", "nslookup", "host", "ping",
];

/// Builtins and tools refused with a specific reason, whatever the allowlist says.
pub(crate) fn fixed_refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "eval" => "`eval` runs a string as code, which cannot be checked; write the command out directly",
        "exec" => "`exec` replaces the shell or rewires its file descriptors; run the command directly",
        "alias" | "unalias" => "aliases are not available (they run other programs under allowed names); write the command out directly",
        "trap" => "`trap` runs a string as code later, which cannot be checked; use `cmd || handle` instead",
        "enable" => "`enable` loads or switches off builtins, which changes what runs under their names; use the ordinary commands",
        "fc" | "history" | "bind" | "complete" | "compgen" => "history and completion builtins re-run or run stored strings as code; write the command out directly",
        "sudo" | "su" | "doas" | "pkexec" | "setcap" | "capsh" | "chown" | "chgrp" | "setpriv" | "runuser" => {
            "changing users, ownership or privileges is not available in this sandbox; run the command directly as you are"
        }
        "coproc" => "coprocesses are not supported; use a pipeline or a background job (`cmd &`)",
        "chroot" | "unshare" | "nsenter" | "mount" | "umount" | "setsid" | "strace" | "ltrace" | "gdb" => {
            "this tool changes process isolation, which the sandbox provides itself; run the command directly"
        }
        _ => return None,
    })
}

/// Bash builtins and keywords: a function may not take their name (the policy's rules for
/// `cd`, `set`, `read`… would no longer describe what runs).
pub(crate) const BUILTINS: &[&str] = &[
    ".",
    ":",
    "[",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "echo",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "getopts",
    "hash",
    "help",
    "history",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "wait",
    "time",
    "coproc",
    "command_not_found_handle",
];

/// Why setting the variable `name` (to `value`, when known) is refused, if it is.
///
/// Refused: variables that change which program runs under a name or how the shell reads
/// commands (`PATH`, `IFS`, `CDPATH`, `BASH_CMDS`), that make a shell, git, a pager or an editor
/// run a string or load code (`BASH_ENV`, `PS4`, `GIT_*`, `PAGER`, `LD_PRELOAD`), and the ones
/// the policy evaluates itself (`HOME`, `TMPDIR`).
pub(crate) fn variable_refusal(name: &str, value: Option<&str>) -> Option<String> {
    const LOOKUP: &[&str] = &[
        "PATH",
        "IFS",
        "CDPATH",
        "GLOBIGNORE",
        "BASH_CMDS",
        "BASH_ALIASES",
        "EXECIGNORE",
        "BASH_LOADABLES_PATH",
        "SHELLOPTS",
        "BASHOPTS",
        "BASH_COMPAT",
        "POSIXLY_CORRECT",
    ];
    const CODE: &[&str] = &[
        "BASH_ENV",
        "ENV",
        "PS0",
        "PS1",
        "PS2",
        "PS3",
        "PS4",
        "PROMPT_COMMAND",
        "BASH_XTRACEFD",
        "HISTFILE",
        "INPUTRC",
        "PAGER",
        "MANPAGER",
        "EDITOR",
        "VISUAL",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "SSH_ASKPASS",
        "SUDO_ASKPASS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC",
        "RUSTDOC",
        "CARGO_BUILD_RUSTC",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "CARGO_BUILD_RUSTDOC",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "PERL5OPT",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
        "GCONV_PATH",
        "GLIBC_TUNABLES",
    ];
    const EVALUATED: &[&str] = &["HOME", "TMPDIR", "PWD", "OLDPWD"];
    const GIT_SAFE: &[&str] = &[
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "GIT_COMMITTER_DATE",
        "GIT_TERMINAL_PROMPT",
        "GIT_MERGE_AUTOEDIT",
        "GIT_OPTIONAL_LOCKS",
        "GIT_FLUSH",
        "GIT_LITERAL_PATHSPECS",
        "GIT_GLOB_PATHSPECS",
        "GIT_NOGLOB_PATHSPECS",
        "GIT_ICASE_PATHSPECS",
        "GIT_DEFAULT_HASH",
    ];
    const NPM_CODE: &[&str] = &[
        "script_shell",
        "shell",
        "git",
        "editor",
        "browser",
        "viewer",
        "userconfig",
        "globalconfig",
        "node_options",
        "onload_script",
        "init_module",
    ];
    if LOOKUP.contains(&name) {
        return Some(format!(
            "setting `{name}` changes which programs run under which names or how the shell reads commands; call programs by name (or by their path in the project) instead"
        ));
    }
    if EVALUATED.contains(&name) {
        return Some(format!(
            "`{name}` is set by the sandbox and may not be changed; use another variable name"
        ));
    }
    if name == "NODE_OPTIONS" {
        const SAFE: &[&str] = &[
            "--max-old-space-size",
            "--max-semi-space-size",
            "--enable-source-maps",
            "--no-warnings",
            "--no-deprecation",
            "--trace-warnings",
            "--trace-deprecation",
            "--trace-uncaught",
            "--experimental-vm-modules",
            "--openssl-legacy-provider",
            "--unhandled-rejections",
            "--stack-trace-limit",
            "--stack-size",
            "--max-http-header-size",
            "--dns-result-order",
            "--use-openssl-ca",
            "--experimental-fetch",
            "--no-experimental-fetch",
            "--experimental-global-webcrypto",
        ];
        let safe = value.is_some_and(|v| {
            v.split_whitespace().all(|o| {
                SAFE.iter()
                    .any(|s| o == *s || o.starts_with(&format!("{s}=")))
            })
        });
        if safe {
            return None;
        }
        return Some("`NODE_OPTIONS` may only hold options such as --max-old-space-size or --enable-source-maps here (--require/--import/--loader load code into every node process); pass other options to `node` directly".to_string());
    }
    let npm_key = name
        .strip_prefix("npm_config_")
        .or_else(|| name.strip_prefix("NPM_CONFIG_"))
        .map(|k| k.to_ascii_lowercase().replace('-', "_"));
    if npm_key.is_some_and(|k| NPM_CODE.contains(&k.as_str())) {
        return Some(format!(
            "setting `{name}` makes npm run another program or read other configuration; use npm's defaults"
        ));
    }
    if name.starts_with("GIT_") && !GIT_SAFE.contains(&name) {
        return Some(format!(
            "setting `{name}` changes how git runs (its configuration, hooks, pagers, ssh or the repository it works on); run git with the project's own configuration"
        ));
    }
    let cargo_runner = name.starts_with("CARGO_TARGET_")
        && (name.ends_with("_RUNNER") || name.ends_with("_LINKER"));
    if CODE.contains(&name)
        || cargo_runner
        || name.starts_with("LD_")
        || name.starts_with("BASH_FUNC_")
        || name.starts_with("DYLD_")
    {
        return Some(format!(
            "setting `{name}` makes a shell or another program run a string or load code that cannot be checked; give the program what it needs on its command line instead"
        ));
    }
    None
}

/// Why changing the shell option `name` (a `set -o` name or a `shopt` name) to `on` is refused.
pub(crate) fn shell_option_refusal(name: &str, on: bool) -> Option<&'static str> {
    Some(match (name, on) {
        ("expand_aliases", true) => "aliases run other programs under allowed names",
        ("dotglob", true) | ("nocaseglob", true) | ("globskipdots", false) => {
            "it changes what globs match (`*` or `.*` could reach .git, the project's history); name hidden files explicitly"
        }
        ("extglob", true) => "it changes how the rest of the command is parsed, which the policy could no longer follow",
        ("extdebug", true) => "it changes how functions and traps run",
        ("cdable_vars", true) => "`cd` would go to directories named by variables, which the policy cannot follow",
        ("keyword", true) => "with it, assignments anywhere on a command line are passed to the command (`git status GIT_CONFIG_PARAMETERS=…`)",
        ("history" | "histexpand", true) => "history expansion re-runs earlier text as commands",
        _ => return None,
    })
}

/// `set` single-letter flags and the `-o` names they stand for.
pub(crate) fn set_flag_name(flag: char) -> Option<&'static str> {
    Some(match flag {
        'a' => "allexport",
        'b' => "notify",
        'e' => "errexit",
        'f' => "noglob",
        'h' => "hashall",
        'k' => "keyword",
        'm' => "monitor",
        'n' => "noexec",
        'p' => "privileged",
        't' => "onecmd",
        'u' => "nounset",
        'v' => "verbose",
        'x' => "xtrace",
        'B' => "braceexpand",
        'C' => "noclobber",
        'E' => "errtrace",
        'H' => "histexpand",
        'P' => "physical",
        'T' => "functrace",
        _ => return None,
    })
}
