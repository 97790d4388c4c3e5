//! The shell-command policy: parse the whole command with a bash parser, find every command it
//! would run (in pipelines, lists, compound commands, functions, command and process
//! substitutions, heredocs, `bash -c` strings, launchers like `env`/`xargs`/`find -exec`), and
//! check each against an allowlist plus argument rules.
//!
//! The policy is the first of two layers. It exists to give the model a clear, early refusal; the
//! kernel layer ([`crate::Sandbox`]) is what actually holds. So where bash semantics are too
//! dynamic to judge (a command name built from `$VAR`, `eval`, code read from stdin), the policy
//! denies rather than guesses.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use brush_parser::ast;
use brush_parser::word::{WordPiece, WordPieceWithSource};

use crate::path::{normalize_lexically, Access, ProjectRoot};

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

fn deny<T>(reason: impl Into<String>) -> Result<T, PolicyDenial> {
    Err(PolicyDenial {
        reason: reason.into(),
    })
}

/// Commands allowed by default: what Python, Node, Rust and Go projects need day to day.
pub const DEFAULT_ALLOW: &[&str] = &[
    // shell builtins and keywords-as-commands
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
    "unset",
    "export",
    "local",
    "declare",
    "typeset",
    "readonly",
    "read",
    "wait",
    "getopts",
    "type",
    "hash",
    "umask",
    "ulimit",
    "jobs",
    "source",
    ".",
    "command",
    "builtin",
    // launchers (the launched command is checked in turn)
    "env",
    "xargs",
    "nice",
    "timeout",
    "time",
    "nohup",
    // files and text
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
    "ps",
    "printenv",
    "yes",
    // Python
    "python",
    "python3",
    "pip",
    "pip3",
    "pytest",
    "py.test",
    "ruff",
    "black",
    "isort",
    "mypy",
    "flake8",
    "pylint",
    "coverage",
    // Node
    "node",
    "npm",
    "npx",
    "yarn",
    "pnpm",
    "tsc",
    "jest",
    "vitest",
    "eslint",
    "prettier",
    // Rust
    "cargo",
    "rustc",
    "rustfmt",
    "rustup",
    // Go
    "go",
    "gofmt",
    // C and builds
    "make",
    "cc",
    "gcc",
    "g++",
    "c++",
    "clang",
    // version control (subcommands checked)
    "git",
    // shells, for scripts inside the project (`bash init.sh`) and checked `-c` strings
    "bash",
    "sh",
];

/// Tools whose purpose is talking to the network: named in the refusal.
const NETWORK_TOOLS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "rsync",
    "ftp", "http", "https", "aria2c", "dig", "nslookup", "host", "ping",
];

/// Builtins and tools refused with a specific reason, whatever the allowlist says.
fn fixed_refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "eval" => "`eval` runs a string as code, which cannot be checked; write the command out directly",
        "exec" => "`exec` replaces the shell or rewires its file descriptors; run the command directly",
        "alias" | "unalias" => "aliases are not available; write the command out directly",
        "trap" => "`trap` runs a string as code later, which cannot be checked; use `cmd || handle` instead",
        "enable" => "`enable` loads builtins from shared libraries; use the ordinary commands",
        "sudo" | "su" | "doas" | "pkexec" => "privilege escalation is not available in this sandbox; run the command directly",
        "coproc" => "coprocesses are not supported; use a pipeline",
        "kill" | "pkill" | "killall" => "sending signals is not allowed; long commands are stopped by the timeout",
        "chroot" | "unshare" | "nsenter" | "mount" | "umount" | "setsid" | "strace" | "ltrace" | "gdb" => {
            "this tool changes process isolation and is not available in the sandbox"
        }
        _ => return None,
    })
}

/// Variables that change which program runs or what a shell/interpreter loads; assigning them is
/// refused.
fn dangerous_variable(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "PATH",
        "IFS",
        "BASH_ENV",
        "ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "NODE_OPTIONS",
        "PYTHONSTARTUP",
        "PYTHONINSPECT",
        "GIT_SSH",
        "GIT_SSH_COMMAND",
        "GIT_EXEC_PATH",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_CONFIG",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
        "GIT_CONFIG_COUNT",
        "GIT_ASKPASS",
        "GIT_PROXY_COMMAND",
        "GIT_EXTERNAL_DIFF",
        "GIT_EDITOR",
        "GIT_SEQUENCE_EDITOR",
        "GIT_PAGER",
        "PAGER",
        "EDITOR",
        "VISUAL",
        "RUSTC_WRAPPER",
        "RUSTC",
        "CARGO_BUILD_RUSTC_WRAPPER",
        "TMPDIR",
        "HOME",
    ];
    EXACT.contains(&name)
        || name.starts_with("LD_")
        || name.starts_with("GIT_CONFIG_KEY_")
        || name.starts_with("GIT_CONFIG_VALUE_")
        || name.starts_with("BASH_FUNC_")
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

/// How deep `bash -c` strings and substitutions may nest before the command is refused.
const MAX_DEPTH: usize = 8;

impl CommandPolicy {
    /// The default allowlist, plus `config.allow`, minus `config.deny`.
    pub fn new(config: &PolicyConfig) -> CommandPolicy {
        let mut allowed: BTreeSet<String> = DEFAULT_ALLOW.iter().map(|s| s.to_string()).collect();
        allowed.extend(config.allow.iter().cloned());
        let denied: BTreeSet<String> = config.deny.iter().cloned().collect();
        CommandPolicy { allowed, denied }
    }

    /// Whether `name` (a bare command name) is on the allowlist.
    pub fn allows_name(&self, name: &str) -> bool {
        self.allowed.contains(name) && !self.denied.contains(name)
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

/// One argument word: its source text and, when it has no expansions, its value.
#[derive(Debug, Clone)]
struct Arg {
    raw: String,
    /// The value after quote removal, when the word is a fixed string (no `$`, no substitution,
    /// no tilde). Glob characters may remain; see `glob`.
    literal: Option<String>,
    /// Unquoted glob or brace characters are present.
    glob: bool,
}

impl Arg {
    /// The value, when fixed and free of globbing.
    fn plain(&self) -> Option<&str> {
        if self.glob {
            None
        } else {
            self.literal.as_deref()
        }
    }
}

struct Checker<'a> {
    policy: &'a CommandPolicy,
    project: &'a ProjectRoot,
    network: bool,
    /// Every directory the shell may be in at this point (the root plus every `cd` target seen):
    /// relative paths must stay inside the project from each of them.
    cwds: Vec<PathBuf>,
    functions: BTreeSet<String>,
    depth: usize,
}

fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions {
        // `bash -c` starts without extglob.
        enable_extended_globbing: false,
        ..brush_parser::ParserOptions::default()
    }
}

impl Checker<'_> {
    fn program(&mut self, source: &str) -> Result<(), PolicyDenial> {
        if source.contains('\0') {
            return deny("the command contains a NUL byte");
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return deny("commands nested too deeply (shells within substitutions within shells); simplify the command");
        }
        let options = parser_options();
        let mut parser =
            brush_parser::Parser::new(std::io::Cursor::new(source.as_bytes()), &options);
        let program = match parser.parse_program() {
            Ok(p) => p,
            Err(e) => {
                return deny(format!(
                    "the command could not be parsed as bash ({e}); commands that cannot be parsed cannot be checked, so fix the syntax or split the command"
                ))
            }
        };
        for complete in &program.complete_commands {
            self.compound_list(complete)?;
        }
        self.depth -= 1;
        Ok(())
    }

    fn compound_list(&mut self, list: &ast::CompoundList) -> Result<(), PolicyDenial> {
        for ast::CompoundListItem(and_or, _separator) in &list.0 {
            self.pipeline(&and_or.first)?;
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p)?,
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline) -> Result<(), PolicyDenial> {
        for command in &pipeline.seq {
            self.command(command)?;
        }
        Ok(())
    }

    fn command(&mut self, command: &ast::Command) -> Result<(), PolicyDenial> {
        match command {
            ast::Command::Simple(simple) => self.simple(simple),
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound)?;
                self.redirect_list(redirects.as_ref())
            }
            ast::Command::Function(def) => {
                let name = self.word(&def.fname)?;
                let Some(name) = name.plain().map(str::to_string) else {
                    return deny(format!(
                        "the function name `{}` is not a plain word",
                        def.fname.value
                    ));
                };
                if fixed_refusal(&name).is_some() || name.contains('/') {
                    return deny(format!("a function may not be named `{name}`"));
                }
                self.functions.insert(name);
                self.compound(&def.body.0)?;
                self.redirect_list(def.body.1.as_ref())
            }
            ast::Command::ExtendedTest(test, redirects) => {
                self.extended_test(&test.expr)?;
                self.redirect_list(redirects.as_ref())
            }
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand) -> Result<(), PolicyDenial> {
        match compound {
            ast::CompoundCommand::Arithmetic(a) => arithmetic(&a.expr.value),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    arithmetic(&e.value)?;
                }
                self.compound_list(&f.body.list)
            }
            ast::CompoundCommand::BraceGroup(b) => self.compound_list(&b.list),
            ast::CompoundCommand::Subshell(s) => self.subshell(s),
            ast::CompoundCommand::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word(w)?;
                }
                self.compound_list(&f.body.list)
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.word(&c.value)?;
                for item in &c.cases {
                    for p in &item.patterns {
                        self.word(p)?;
                    }
                    if let Some(cmd) = &item.cmd {
                        self.compound_list(cmd)?;
                    }
                }
                Ok(())
            }
            ast::CompoundCommand::IfClause(i) => {
                self.compound_list(&i.condition)?;
                self.compound_list(&i.then)?;
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.compound_list(c)?;
                    }
                    self.compound_list(&e.body)?;
                }
                Ok(())
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.compound_list(&w.0)?;
                self.compound_list(&w.1.list)
            }
            ast::CompoundCommand::Coprocess(_) => {
                deny("coprocesses are not supported; use a pipeline")
            }
        }
    }

    fn subshell(&mut self, s: &ast::SubshellCommand) -> Result<(), PolicyDenial> {
        self.compound_list(&s.list)
    }

    fn extended_test(&mut self, expr: &ast::ExtendedTestExpr) -> Result<(), PolicyDenial> {
        match expr {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.extended_test(a)?;
                self.extended_test(b)
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => {
                self.extended_test(a)
            }
            ast::ExtendedTestExpr::UnaryTest(_, w) => self.word(w).map(drop),
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.word(a)?;
                self.word(b).map(drop)
            }
        }
    }

    fn redirect_list(&mut self, list: Option<&ast::RedirectList>) -> Result<(), PolicyDenial> {
        for r in list.iter().flat_map(|l| l.0.iter()) {
            self.redirect(r)?;
        }
        Ok(())
    }

    fn redirect(&mut self, redirect: &ast::IoRedirect) -> Result<(), PolicyDenial> {
        match redirect {
            ast::IoRedirect::File(_fd, kind, target) => {
                let writes = matches!(
                    kind,
                    ast::IoFileRedirectKind::Write
                        | ast::IoFileRedirectKind::Append
                        | ast::IoFileRedirectKind::Clobber
                        | ast::IoFileRedirectKind::ReadAndWrite
                        | ast::IoFileRedirectKind::DuplicateOutput
                );
                match target {
                    ast::IoFileRedirectTarget::Filename(w) => {
                        let arg = self.word(w)?;
                        if writes {
                            self.redirect_target(&arg)?;
                        }
                        Ok(())
                    }
                    ast::IoFileRedirectTarget::Fd(_) => Ok(()),
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, s) => self.subshell(s),
                    ast::IoFileRedirectTarget::Duplicate(w) => {
                        let arg = self.word(w)?;
                        match arg.plain() {
                            Some(v)
                                if v == "-"
                                    || v.trim_end_matches('-')
                                        .chars()
                                        .all(|c| c.is_ascii_digit()) =>
                            {
                                Ok(())
                            }
                            _ if writes => self.redirect_target(&arg),
                            _ => Ok(()),
                        }
                    }
                }
            }
            ast::IoRedirect::HereDocument(_fd, doc) => {
                if doc.requires_expansion {
                    let pieces = brush_parser::word::parse_heredoc(&doc.doc.value, &parser_options())
                        .map_err(|e| PolicyDenial {
                            reason: format!("a here-document could not be parsed ({e}); quote its delimiter (<<'EOF') to keep its text literal"),
                        })?;
                    self.pieces(&doc.doc.value, &pieces)?;
                }
                Ok(())
            }
            ast::IoRedirect::HereString(_fd, w) => self.word(w).map(drop),
            ast::IoRedirect::OutputAndError(w, _append) => {
                let arg = self.word(w)?;
                self.redirect_target(&arg)
            }
        }
    }

    fn redirect_target(&self, arg: &Arg) -> Result<(), PolicyDenial> {
        let Some(target) = arg.plain() else {
            return deny(format!(
                "the output redirection target `{}` is not a plain path (it has expansions or globs); write the path out",
                arg.raw
            ));
        };
        if matches!(target, "/dev/null" | "/dev/stdout" | "/dev/stderr")
            || target
                .strip_prefix("/dev/fd/")
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        {
            return Ok(());
        }
        self.write_path(target).map_err(|reason| PolicyDenial {
            reason: format!("output redirection to {target} {reason}"),
        })
    }

    /// Checks that a path written by a command stays inside the project from every directory the
    /// shell may be in. The error completes a sentence about the path.
    fn write_path(&self, path: &str) -> Result<(), String> {
        for cwd in &self.cwds {
            if let Err(e) = self.project.resolve_from(cwd, path, Access::Write) {
                let lexical = normalize_lexically(&cwd.join(path));
                if !lexical.starts_with(self.project.path()) {
                    return Err(format!(
                        "writes outside the project ({}); only the project directory is writable",
                        lexical.display()
                    ));
                }
                return Err(format!("is refused: {e}"));
            }
        }
        Ok(())
    }

    fn simple(&mut self, simple: &ast::SimpleCommand) -> Result<(), PolicyDenial> {
        let mut argv: Vec<Arg> = Vec::new();
        let mut assignments: Vec<String> = Vec::new();
        let items = simple
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .chain(simple.word_or_name.iter().map(|_| &NAME_MARKER))
            .chain(simple.suffix.iter().flat_map(|s| s.0.iter()));
        for item in items {
            if std::ptr::eq(item, &NAME_MARKER) {
                if let Some(w) = &simple.word_or_name {
                    argv.push(self.word(w)?);
                }
                continue;
            }
            match item {
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => self.redirect(r)?,
                ast::CommandPrefixOrSuffixItem::Word(w) => argv.push(self.word(w)?),
                ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                    let name = match &a.name {
                        ast::AssignmentName::VariableName(n) => n.clone(),
                        ast::AssignmentName::ArrayElementName(n, idx) => {
                            arithmetic(idx)?;
                            n.clone()
                        }
                    };
                    match &a.value {
                        ast::AssignmentValue::Scalar(v) => {
                            self.word(v)?;
                        }
                        ast::AssignmentValue::Array(items) => {
                            for (k, v) in items {
                                if let Some(k) = k {
                                    self.word(k)?;
                                }
                                self.word(v)?;
                            }
                        }
                    }
                    // An assignment after the command name is an argument (e.g. to `declare`).
                    if argv.is_empty() {
                        assignments.push(name);
                    } else {
                        argv.push(self.word(w)?);
                    }
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, s) => {
                    self.subshell(s)?;
                    argv.push(Arg {
                        raw: "<(...)".into(),
                        literal: None,
                        glob: false,
                    });
                }
            }
        }
        for name in &assignments {
            if dangerous_variable(name) {
                return deny(format!(
                    "setting `{name}` changes which programs run or what they load; it is not allowed"
                ));
            }
        }
        if argv.is_empty() {
            return Ok(());
        }
        self.argv(&argv)
    }

    /// Parses one word, checks every substitution inside it, and returns it as an argument.
    fn word(&mut self, word: &ast::Word) -> Result<Arg, PolicyDenial> {
        let pieces = brush_parser::word::parse(&word.value, &parser_options()).map_err(|e| {
            PolicyDenial {
                reason: format!(
                    "the word `{}` could not be parsed ({e}); simplify its quoting",
                    word.value
                ),
            }
        })?;
        self.pieces(&word.value, &pieces)?;
        let mut literal = Some(String::new());
        let mut cooked = String::new();
        let mut glob = false;
        literal_of(&pieces, false, &mut literal, &mut cooked, &mut glob);
        if glob {
            glob = has_glob(&cooked);
        }
        subscript_injection(&word.value, &cooked)?;
        Ok(Arg {
            raw: word.value.clone(),
            literal,
            glob,
        })
    }

    fn pieces(&mut self, source: &str, pieces: &[WordPieceWithSource]) -> Result<(), PolicyDenial> {
        for p in pieces {
            match &p.piece {
                WordPiece::CommandSubstitution(code) => self.program(code)?,
                WordPiece::BackquotedCommandSubstitution(code) => {
                    self.program(&unescape_backquoted(code))?
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => self.pieces(source, inner)?,
                WordPiece::ParameterExpansion(_) => {
                    let text = source.get(p.start_index..p.end_index).unwrap_or(source);
                    if text.contains("$(")
                        || text.contains('`')
                        || text.contains("<(")
                        || text.contains(">(")
                    {
                        return deny(format!(
                            "a command substitution inside `{text}` cannot be checked; compute it in a separate step"
                        ));
                    }
                    if text.contains("@P") || text.contains("@E") {
                        return deny(format!("the `{text}` expansion re-evaluates text as a prompt; print the variable plainly"));
                    }
                }
                WordPiece::ArithmeticExpression(e) => arithmetic(&e.value)?,
                WordPiece::Text(_)
                | WordPiece::SingleQuotedText(_)
                | WordPiece::AnsiCQuotedText(_)
                | WordPiece::TildeExpansion(_)
                | WordPiece::EscapeSequence(_) => {}
            }
        }
        Ok(())
    }

    /// Checks one command (name and arguments).
    fn argv(&mut self, argv: &[Arg]) -> Result<(), PolicyDenial> {
        let Some(first) = argv.first() else {
            return Ok(());
        };
        let Some(name_value) = first.literal.as_deref() else {
            return deny(format!(
                "the command name `{}` is computed (variables, substitutions or tildes); write the command name out literally",
                first.raw
            ));
        };
        if first.glob {
            return deny(format!(
                "the command name `{}` contains glob or brace characters; write the command name out literally",
                first.raw
            ));
        }
        if name_value.is_empty() {
            return deny("the command name is empty");
        }
        let args = &argv[1..];
        if name_value.contains('/') {
            return self.path_command(name_value, args);
        }
        let name = name_value;
        if self.functions.contains(name) {
            // The body was checked where the function was defined.
            return Ok(());
        }
        self.named(name, args)
    }

    /// A command given as a path: a program or script inside the project, or a system tool by its
    /// full path (checked under its base name).
    fn path_command(&mut self, path: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let inside = self
            .cwds
            .iter()
            .all(|cwd| self.project.resolve_from(cwd, path, Access::Read).is_ok());
        if inside {
            // A project script or binary: it runs under the kernel confinement.
            return Ok(());
        }
        let normalized = normalize_lexically(Path::new(path));
        let parent = normalized
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let system_bin = Path::new(path).is_absolute()
            && !path.split('/').any(|c| c == "..")
            && matches!(
                parent.as_str(),
                "/bin" | "/usr/bin" | "/usr/local/bin" | "/sbin" | "/usr/sbin" | "/usr/local/sbin"
            );
        let base = normalized
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !system_bin {
            return deny(format!(
                "`{path}` is neither inside the project nor a system tool in /usr/bin or /bin; run programs from the project or by their plain name"
            ));
        }
        self.named(&base, args)
    }

    fn named(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        if let Some(reason) = fixed_refusal(name) {
            return deny(format!("`{name}`: {reason}"));
        }
        if self.policy.denied.contains(name) {
            return deny(format!(
                "`{name}` is denied by the project's policy ([policy] deny in loopwright.toml)"
            ));
        }
        if !self.policy.allowed.contains(name) {
            if NETWORK_TOOLS.contains(&name) && !self.network {
                return deny(format!(
                    "`{name}` is not on the allowlist; network access is not available in this sandbox"
                ));
            }
            return deny(format!(
                "`{name}` is not on the allowlist; use an allowed tool, or the project owner can add it under [policy] allow in loopwright.toml"
            ));
        }
        self.arguments(name, args)
    }

    /// Argument rules for commands that launch others, write files, or reach the network.
    fn arguments(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        match name {
            "cd" | "pushd" => self.cd(name, args),
            "source" | "." => {
                let Some(file) = args.first() else {
                    return deny(format!("`{name}` needs a file"));
                };
                match file.plain() {
                    Some(f) if self.read_inside(f) => Ok(()),
                    _ => deny(format!(
                        "`{name} {}`: only files inside the project may be sourced",
                        file.raw
                    )),
                }
            }
            "export" | "declare" | "typeset" | "local" | "readonly" => {
                for a in args {
                    let text = a.literal.as_deref().unwrap_or(&a.raw);
                    if text.starts_with('-') && text.contains('f') && name != "local" {
                        return deny(format!("`{name} {text}` defines or exports functions; define functions directly"));
                    }
                    let var = text.split(['=', '+', '[']).next().unwrap_or("");
                    if dangerous_variable(var) {
                        return deny(format!(
                            "setting `{var}` changes which programs run or what they load; it is not allowed"
                        ));
                    }
                }
                Ok(())
            }
            "command" => {
                let mut rest = args;
                while let Some(first) = rest.first() {
                    match first.plain() {
                        Some("-v") | Some("-V") => return Ok(()),
                        Some("-p") | Some("--") => rest = &rest[1..],
                        _ => break,
                    }
                }
                self.argv(rest)
            }
            "builtin" => self.argv(args),
            "env" => self.env(args),
            "nice" => self.after_options(name, args, &["-n", "--adjustment"]),
            "nohup" => self.after_options(name, args, &[]),
            "time" => self.after_options(name, args, &["-f", "--format", "-o", "--output"]),
            "timeout" => {
                let start = skip_options(args, &["-s", "--signal", "-k", "--kill-after"]);
                // The duration, then the command.
                let rest = args.get(start + 1..).unwrap_or(&[]);
                self.launch(name, rest)
            }
            "xargs" => {
                let start = skip_options(
                    args,
                    &[
                        "-a",
                        "--arg-file",
                        "-d",
                        "--delimiter",
                        "-E",
                        "-e",
                        "--eof",
                        "-I",
                        "-i",
                        "--replace",
                        "-L",
                        "--max-lines",
                        "-n",
                        "--max-args",
                        "-P",
                        "--max-procs",
                        "-s",
                        "--max-chars",
                    ],
                );
                let rest = &args[start.min(args.len())..];
                if rest.is_empty() {
                    return Ok(()); // xargs runs echo
                }
                self.launch(name, rest)
            }
            "find" => self.find(args),
            "bash" | "sh" => self.shell(name, args),
            "rm" | "rmdir" | "mkdir" | "touch" | "chmod" | "tee" | "mv" | "cp" | "ln" => {
                self.file_writer(name, args)
            }
            "sed" => {
                if args.iter().any(|a| {
                    a.plain().is_some_and(|v| {
                        v == "-i"
                            || v.starts_with("-i")
                            || v.starts_with("--in-place")
                            || (v.starts_with('-')
                                && !v.starts_with("--")
                                && v.contains('i')
                                && !v.contains('e'))
                    })
                }) {
                    self.path_args(name, args, true)
                } else {
                    Ok(())
                }
            }
            "git" => self.git(args),
            "node" => self.node(args),
            "python" | "python3" => self.python(name, args),
            "pip" | "pip3" => self.pip(name, args),
            "npm" | "yarn" | "pnpm" => self.npm(name, args),
            "npx" => {
                if args
                    .iter()
                    .any(|a| matches!(a.plain(), Some("-c") | Some("--call")))
                {
                    return deny("`npx -c` runs a shell string that cannot be checked; run the command directly");
                }
                Ok(())
            }
            "cargo" => self.cargo(args),
            "rustup" => {
                let sub = first_positional(args, &["--toolchain"]);
                match sub.as_deref() {
                    Some("show") | Some("which") | Some("--version") | None => Ok(()),
                    Some("component") | Some("target") | Some("toolchain") if args.iter().any(|a| matches!(a.plain(), Some("list"))) => Ok(()),
                    _ if self.network => Ok(()),
                    _ => deny("`rustup` may only show toolchains here; installing needs network access, which is not available in this sandbox"),
                }
            }
            "go" => self.go(args),
            _ => Ok(()),
        }
    }

    fn read_inside(&self, path: &str) -> bool {
        self.cwds
            .iter()
            .all(|cwd| self.project.resolve_from(cwd, path, Access::Read).is_ok())
    }

    fn cd(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let dirs: Vec<&Arg> = args
            .iter()
            .filter(|a| !(a.plain().is_some_and(|v| v.starts_with('-') && v.len() > 1)))
            .collect();
        let Some(dir) = dirs.first() else {
            return deny(format!("`{name}` without a directory goes to $HOME, outside the project; give a directory inside it"));
        };
        let Some(dir) = dir.plain() else {
            return deny(format!(
                "`{name} {}`: the directory must be a plain path inside the project",
                dir.raw
            ));
        };
        if dir == "-" {
            return deny(format!(
                "`{name} -` is not supported; give a directory inside the project"
            ));
        }
        let mut next = Vec::new();
        for cwd in &self.cwds {
            match self.project.resolve_from(cwd, dir, Access::Read) {
                Ok(p) => next.push(p),
                Err(e) => {
                    return deny(format!(
                        "`{name} {dir}` leaves the project ({e}); commands run inside the project directory"
                    ))
                }
            }
        }
        for p in next {
            if !self.cwds.contains(&p) {
                self.cwds.push(p);
            }
        }
        Ok(())
    }

    fn env(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let Some(v) = a.plain() else {
                return deny(format!(
                    "`env` argument `{}` is computed; write it out",
                    a.raw
                ));
            };
            match v {
                "-i" | "--ignore-environment" | "-0" | "--null" | "-" | "--" | "-v" | "--debug" => i += 1,
                "-u" | "--unset" => i += 2,
                _ if v.starts_with("--unset=") => i += 1,
                _ if v.starts_with("-S") || v.starts_with("--split-string") => {
                    return deny("`env -S` splits a string into a command that cannot be checked; write the command out")
                }
                _ if v.starts_with("-C") || v.starts_with("--chdir") => {
                    return deny("`env -C` changes directory; use `cd` inside the project")
                }
                _ if v.starts_with('-') => return deny(format!("`env {v}` is not supported")),
                _ if v.contains('=') => {
                    let var = v.split('=').next().unwrap_or("");
                    if dangerous_variable(var) {
                        return deny(format!(
                            "setting `{var}` changes which programs run or what they load; it is not allowed"
                        ));
                    }
                    i += 1;
                }
                _ => break,
            }
        }
        let rest = args.get(i..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(());
        }
        self.launch("env", rest)
    }

    fn after_options(
        &mut self,
        name: &str,
        args: &[Arg],
        with_value: &[&str],
    ) -> Result<(), PolicyDenial> {
        let start = skip_options(args, with_value);
        let rest = args.get(start..).unwrap_or(&[]);
        if name == "time" {
            // `time -o FILE` writes FILE.
            for pair in args.windows(2) {
                if matches!(pair[0].plain(), Some("-o") | Some("--output")) {
                    self.arg_write_path("time", &pair[1])?;
                }
            }
        }
        if rest.is_empty() {
            return Ok(());
        }
        self.launch(name, rest)
    }

    fn launch(&mut self, launcher: &str, argv: &[Arg]) -> Result<(), PolicyDenial> {
        let Some(first) = argv.first() else {
            return deny(format!("`{launcher}` needs a command to run"));
        };
        if first.plain().is_none() {
            return deny(format!(
                "`{launcher}` launches `{}`, which is computed; write the command name out literally",
                first.raw
            ));
        }
        self.argv(argv).map_err(|d| PolicyDenial {
            reason: format!("(launched by `{launcher}`) {}", d.reason),
        })
    }

    fn find(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut starts: Vec<&Arg> = Vec::new();
        let mut i = 0;
        // Start points come before the first expression.
        while let Some(a) = args.get(i) {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if v.starts_with('-') || v == "(" || v == "!" || v == "\\(" {
                break;
            }
            starts.push(a);
            i += 1;
        }
        while let Some(a) = args.get(i) {
            let v = a.plain().unwrap_or("");
            match v {
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    // The launched command gets paths found under the start points, so those
                    // must be inside the project.
                    for s in &starts {
                        match s.plain() {
                            Some(p) if self.read_inside(p) => {}
                            _ => {
                                return deny(format!(
                                    "`find {} {v} ...`: commands run by find may only get paths inside the project; start the search inside it",
                                    s.raw
                                ))
                            }
                        }
                    }
                    let mut end = i + 1;
                    while let Some(b) = args.get(end) {
                        if matches!(b.plain(), Some(";") | Some("+")) {
                            break;
                        }
                        end += 1;
                    }
                    let launched = args.get(i + 1..end).unwrap_or(&[]);
                    self.launch(&format!("find {v}"), launched)?;
                    i = end + 1;
                }
                "-delete" => {
                    if starts.is_empty() {
                        // `find -delete` starts at `.`, which is inside the project.
                    }
                    for s in &starts {
                        self.arg_write_path("find -delete", s)?;
                    }
                    i += 1;
                }
                "-fprint" | "-fprint0" | "-fprintf" | "-fls" => {
                    if let Some(f) = args.get(i + 1) {
                        self.arg_write_path(&format!("find {v}"), f)?;
                    }
                    i += 2;
                }
                _ => i += 1,
            }
        }
        Ok(())
    }

    fn shell(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let Some(v) = a.plain() else {
                return deny(format!(
                    "`{name}` argument `{}` is computed; write it out",
                    a.raw
                ));
            };
            if v == "-c" || (v.starts_with('-') && !v.starts_with("--") && v.contains('c')) {
                let Some(code) = args.get(i + 1) else {
                    return deny(format!("`{name} -c` needs a command string"));
                };
                let Some(code) = code.literal.as_deref() else {
                    return deny(format!(
                        "`{name} -c {}`: the command string is computed and cannot be checked; write it out",
                        code.raw
                    ));
                };
                return self.program(code).map_err(|d| PolicyDenial {
                    reason: format!("(inside `{name} -c`) {}", d.reason),
                });
            }
            if v == "-o" || v == "+o" || v == "-O" || v == "+O" {
                i += 2;
                continue;
            }
            if v == "--" {
                i += 1;
                break;
            }
            if v.starts_with("--") {
                if matches!(v, "--norc" | "--noprofile" | "--posix" | "--noediting") {
                    i += 1;
                    continue;
                }
                return deny(format!("`{name} {v}` is not supported; run `{name} script.sh` with a script in the project"));
            }
            if let Some(flags) = v.strip_prefix('-').or_else(|| v.strip_prefix('+')) {
                if flags.chars().all(|c| "euxvnEThBCfahkmpPt".contains(c)) && !flags.is_empty() {
                    i += 1;
                    continue;
                }
                return deny(format!("`{name} {v}` is not supported (reading code from stdin or interactive shells cannot be checked); run `{name} script.sh` with a script in the project"));
            }
            break;
        }
        let Some(script) = args.get(i) else {
            return deny(format!(
                "`{name}` without a script reads code from its input, which cannot be checked; save the code in a script inside the project and run `{name} script.sh`"
            ));
        };
        match script.plain() {
            Some(s) if self.read_inside(s) => Ok(()),
            _ => deny(format!(
                "`{name} {}`: only scripts inside the project may be run",
                script.raw
            )),
        }
    }

    fn file_writer(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        self.path_args(name, args, true)
    }

    /// Checks every non-option argument as a path the command writes.
    fn path_args(&mut self, name: &str, args: &[Arg], _writes: bool) -> Result<(), PolicyDenial> {
        let mut options_done = false;
        for a in args {
            let text = a.literal.as_deref().unwrap_or(&a.raw);
            if !options_done && text == "--" {
                options_done = true;
                continue;
            }
            if !options_done && text.starts_with('-') && text.len() > 1 {
                continue;
            }
            self.arg_write_path(name, a)?;
        }
        Ok(())
    }

    fn arg_write_path(&self, name: &str, a: &Arg) -> Result<(), PolicyDenial> {
        let Some(value) = a.literal.as_deref() else {
            return deny(format!(
                "`{name}` argument `{}` is computed (variables or substitutions); write the path out so it can be checked",
                a.raw
            ));
        };
        if a.glob && (value.contains('{') || value.contains("..")) {
            return deny(format!(
                "`{name}` argument `{value}` uses brace expansion or `..` with globs; write the paths out"
            ));
        }
        // A glob stays below its fixed prefix; check that prefix.
        let checked = if a.glob {
            let cut = value.find(['*', '?', '[']).unwrap_or(value.len());
            let prefix = &value[..cut];
            match prefix.rfind('/') {
                Some(0) => "/",
                Some(slash) => &value[..slash],
                None => ".",
            }
        } else {
            value
        };
        self.write_path(checked).map_err(|reason| PolicyDenial {
            reason: format!("`{name} {value}`: {value} {reason}"),
        })
    }

    fn git(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        let sub = loop {
            let Some(a) = args.get(i) else {
                return Ok(()); // `git` alone prints help
            };
            let Some(v) = a.plain() else {
                return deny(format!(
                    "`git` argument `{}` is computed; write it out",
                    a.raw
                ));
            };
            match v {
                "-c" | "--config-env" => {
                    return deny("`git -c` can make git run arbitrary programs (core.sshCommand, aliases, hooks); run git without it")
                }
                _ if v.starts_with("--exec-path") || v.starts_with("--git-dir") || v.starts_with("--work-tree") || v.starts_with("--config-env") || v.starts_with("--namespace") => {
                    return deny(format!("`git {v}` points git at other programs or repositories; run git in the project as is"))
                }
                "-C" => {
                    let Some(dir) = args.get(i + 1).and_then(Arg::plain) else {
                        return deny("`git -C` needs a plain directory");
                    };
                    if !self.read_inside(dir) {
                        return deny(format!("`git -C {dir}` leaves the project"));
                    }
                    i += 2;
                }
                "--no-pager" | "-P" | "--no-replace-objects" | "--literal-pathspecs" | "--no-optional-locks" | "--version" | "--help" | "-h" => i += 1,
                _ if v.starts_with('-') => return deny(format!("`git {v}` is not supported; use a plain git subcommand")),
                _ => break v,
            }
        };
        let rest = &args[i + 1..];
        let values: Vec<&str> = rest
            .iter()
            .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
            .collect();
        for v in &values {
            if v.starts_with("--upload-pack")
                || v.starts_with("--receive-pack")
                || v.starts_with("--exec=")
                || *v == "--exec"
                || v.contains("ext::")
                || v.starts_with("--template")
            {
                return deny(format!(
                    "`git {sub} {v}` makes git run another program; it is not allowed"
                ));
            }
        }
        const LOCAL: &[&str] = &[
            "status",
            "add",
            "commit",
            "diff",
            "log",
            "show",
            "branch",
            "checkout",
            "switch",
            "restore",
            "reset",
            "rm",
            "mv",
            "init",
            "tag",
            "stash",
            "merge",
            "rebase",
            "cherry-pick",
            "revert",
            "blame",
            "grep",
            "ls-files",
            "ls-tree",
            "rev-parse",
            "rev-list",
            "describe",
            "shortlog",
            "clean",
            "config",
            "bisect",
            "apply",
            "am",
            "format-patch",
            "cat-file",
            "check-ignore",
            "reflog",
            "worktree",
            "notes",
            "whatchanged",
            "version",
            "help",
            "count-objects",
            "fsck",
            "gc",
            "diff-tree",
            "diff-files",
            "diff-index",
            "merge-base",
            "name-rev",
            "show-ref",
            "symbolic-ref",
            "update-index",
            "write-tree",
            "hash-object",
            "var",
            "mktree",
            "range-diff",
            "sparse-checkout",
        ];
        const NETWORK: &[&str] = &[
            "push",
            "fetch",
            "pull",
            "clone",
            "ls-remote",
            "remote",
            "submodule",
            "archive",
            "request-pull",
        ];
        match sub {
            "config" => return git_config(rest),
            "rebase" if values.iter().any(|v| *v == "-x" || v.starts_with("--exec")) => {
                return deny("`git rebase --exec` runs commands; rebase without it")
            }
            "bisect" if values.first() == Some(&"run") => return deny(
                "`git bisect run` runs a command for every step; run `git bisect good/bad` by hand",
            ),
            "grep"
                if values
                    .iter()
                    .any(|v| v.starts_with("-O") || v.starts_with("--open-files-in-pager")) =>
            {
                return deny("`git grep -O` runs a pager program; use plain `git grep`")
            }
            "remote" => {
                let listing = values.is_empty()
                    || values.iter().all(|v| matches!(*v, "-v" | "--verbose"))
                    || matches!(values.first(), Some(&"get-url"));
                if listing || self.network {
                    return Ok(());
                }
            }
            "archive" if !values.iter().any(|v| v.starts_with("--remote")) => return Ok(()),
            _ => {}
        }
        if LOCAL.contains(&sub) {
            return Ok(());
        }
        if NETWORK.contains(&sub) {
            if self.network {
                if sub == "submodule" && values.first() == Some(&"foreach") {
                    return deny(
                        "`git submodule foreach` runs a shell string; run the commands directly",
                    );
                }
                return Ok(());
            }
            return deny(format!(
                "`git {sub}` reaches the network; network access is not available in this sandbox, so work with the local repository"
            ));
        }
        deny(format!(
            "`git {sub}` is not an allowed git subcommand here; use local subcommands such as status, add, commit, diff, log"
        ))
    }

    fn node(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if matches!(
                v,
                "-e" | "--eval" | "-p" | "--print" | "-i" | "--interactive" | "-"
            ) || v.starts_with("--eval=")
                || v.starts_with("--print=")
                || (v.starts_with('-')
                    && !v.starts_with("--")
                    && (v.contains('e') || v.contains('p')))
            {
                return deny("`node -e`/`-p` (or reading code from stdin) runs code given inline; write it to a file in the project and run `node file.js`");
            }
            if matches!(
                v,
                "-r" | "--require"
                    | "--import"
                    | "--loader"
                    | "--experimental-loader"
                    | "--env-file"
                    | "--input-type"
                    | "--stack-size"
                    | "--max-old-space-size"
            ) {
                i += 2;
                continue;
            }
            if v.starts_with('-') {
                if matches!(v, "--version" | "-v" | "--help" | "-h") {
                    return Ok(());
                }
                i += 1;
                continue;
            }
            return Ok(()); // a script
        }
        deny("`node` without a script reads code from its input; write the code to a file in the project and run `node file.js`")
    }

    fn python(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if v == "-c" || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('c')) {
                // Allowed: equivalent to writing a file and running it; the kernel layer confines it.
                return Ok(());
            }
            if v == "-m" || (v.starts_with('-') && !v.starts_with("--") && v.ends_with('m')) {
                let module = args
                    .get(i + 1)
                    .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
                    .unwrap_or("");
                let rest = args.get(i + 2..).unwrap_or(&[]);
                return match module {
                    "pip" => self.pip(&format!("{name} -m pip"), rest),
                    _ => Ok(()),
                };
            }
            if matches!(v, "-W" | "-X" | "--check-hash-based-pycs") {
                i += 2;
                continue;
            }
            if v == "-" || v == "-i" {
                break;
            }
            if v.starts_with('-') {
                if matches!(v, "--version" | "-V" | "--help" | "-h") {
                    return Ok(());
                }
                i += 1;
                continue;
            }
            return Ok(()); // a script
        }
        deny(format!(
            "`{name}` without a script reads code from its input (or is interactive); write the code to a file in the project and run `{name} file.py`"
        ))
    }

    fn pip(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let sub = first_positional(args, &[]);
        match sub.as_deref() {
            Some("install") | Some("download") | Some("wheel") | Some("index") | Some("search") => {
                if self.network {
                    Ok(())
                } else {
                    deny(format!(
                        "`{name} {}` needs network access, which is not available in this sandbox; use the packages already installed",
                        sub.unwrap_or_default()
                    ))
                }
            }
            Some("config") if !self.network => deny(format!(
                "`{name} config` is not allowed; use pip's defaults"
            )),
            _ => Ok(()),
        }
    }

    fn npm(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let sub = first_positional(args, &["--prefix", "-C", "-w", "--workspace"]);
        let values: Vec<&str> = args
            .iter()
            .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
            .collect();
        if matches!(sub.as_deref(), Some("exec") | Some("x"))
            && values.iter().any(|v| matches!(*v, "-c" | "--call"))
        {
            return deny(format!("`{name} exec -c` runs a shell string that cannot be checked; run the command directly"));
        }
        const NETWORK: &[&str] = &[
            "install",
            "i",
            "ci",
            "add",
            "update",
            "up",
            "upgrade",
            "publish",
            "unpublish",
            "audit",
            "outdated",
            "login",
            "logout",
            "adduser",
            "dist-tag",
            "deprecate",
            "owner",
            "search",
            "view",
            "info",
            "dlx",
            "create",
            "init",
            "link",
            "install-test",
            "it",
            "pack",
            "token",
            "whoami",
            "ping",
            "doctor",
        ];
        match sub.as_deref() {
            Some(s) if NETWORK.contains(&s) && !self.network => deny(format!(
                "`{name} {s}` needs network access, which is not available in this sandbox; use the dependencies already in node_modules"
            )),
            None if name == "yarn" && !self.network => deny("`yarn` alone installs dependencies, which needs network access; it is not available in this sandbox"),
            _ => Ok(()),
        }
    }

    fn cargo(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let sub = first_positional(args, &["--config", "-Z", "--color", "-C"]);
        for a in args {
            let v = a.literal.as_deref().unwrap_or(&a.raw);
            if v == "--config" || v.starts_with("--config=") {
                return deny("`cargo --config` can replace the compiler or linker; put settings in the project's .cargo/config.toml");
            }
        }
        match sub.as_deref() {
            Some("install") | Some("uninstall") | Some("publish") | Some("login") | Some("logout") | Some("owner") | Some("yank") | Some("search") | Some("fetch") | Some("update") | Some("add") | Some("generate-lockfile")
                if !self.network =>
            {
                deny(format!(
                    "`cargo {}` needs network access (or changes the global toolchain); network access is not available in this sandbox",
                    sub.unwrap_or_default()
                ))
            }
            Some("install") | Some("uninstall") | Some("publish") | Some("login") | Some("logout") | Some("owner") | Some("yank") => deny(format!(
                "`cargo {}` changes state outside the project; it is not allowed",
                sub.unwrap_or_default()
            )),
            _ => Ok(()),
        }
    }

    fn go(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let positional: Vec<&str> = args
            .iter()
            .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
            .filter(|v| !v.starts_with('-'))
            .collect();
        let network_needed = match positional.as_slice() {
            ["get", ..] => true,
            ["install", rest @ ..] => rest.iter().any(|p| p.contains('@')),
            ["mod", "download" | "tidy" | "vendor", ..] => true,
            _ => false,
        };
        if network_needed && !self.network {
            return deny(format!(
                "`go {}` needs network access, which is not available in this sandbox; use the modules already downloaded",
                positional.join(" ")
            ));
        }
        if positional.first() == Some(&"env") && args.iter().any(|a| a.plain() == Some("-w")) {
            return deny("`go env -w` changes the global Go configuration; it is not allowed");
        }
        Ok(())
    }
}

fn git_config(rest: &[Arg]) -> Result<(), PolicyDenial> {
    let values: Vec<&str> = rest
        .iter()
        .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
        .collect();
    let reading = values.iter().any(|v| {
        matches!(
            *v,
            "--get" | "--get-all" | "--get-regexp" | "-l" | "--list" | "get" | "list"
        )
    });
    if reading {
        return Ok(());
    }
    if values.iter().any(|v| {
        matches!(
            *v,
            "--global" | "--system" | "-f" | "--file" | "-e" | "--edit" | "edit" | "--blob"
        )
    }) {
        return deny("`git config` may only change the project's own configuration (no --global/--system/--file/--edit)");
    }
    let key = values
        .iter()
        .find(|v| !v.starts_with('-') && *v != &"set" && *v != &"unset")
        .copied()
        .unwrap_or("");
    let key_lower = key.to_ascii_lowercase();
    const SAFE_PREFIXES: &[&str] = &[
        "user.",
        "init.",
        "color.",
        "advice.",
        "commit.gpgsign",
        "tag.gpgsign",
        "pull.rebase",
        "merge.ff",
        "log.",
        "status.",
        "push.default",
        "branch.autosetup",
        "help.autocorrect",
    ];
    if SAFE_PREFIXES.iter().any(|p| key_lower.starts_with(p)) {
        return Ok(());
    }
    deny(format!(
        "`git config {key}` is not allowed: settings such as core.*, alias.*, include.*, hooks and filters can make git run programs; only user.*, init.*, color.* and similar may be set"
    ))
}

/// Index of the first argument after options; `with_value` options consume the next argument.
fn skip_options(args: &[Arg], with_value: &[&str]) -> usize {
    let mut i = 0;
    while let Some(a) = args.get(i) {
        let v = a.literal.as_deref().unwrap_or(&a.raw);
        if v == "--" {
            return i + 1;
        }
        if !v.starts_with('-') || v == "-" {
            return i;
        }
        if with_value.contains(&v) {
            i += 2;
        } else {
            i += 1;
        }
    }
    i
}

/// The first argument that is not an option (nor an option's value from `with_value`).
fn first_positional(args: &[Arg], with_value: &[&str]) -> Option<String> {
    let i = skip_options(args, with_value);
    args.get(i)
        .map(|a| a.literal.clone().unwrap_or_else(|| a.raw.clone()))
}

/// Arithmetic evaluates array subscripts, and `$(...)` inside them runs; refuse any.
fn arithmetic(expr: &str) -> Result<(), PolicyDenial> {
    if expr.contains("$(") || expr.contains('`') || expr.contains("<(") || expr.contains(">(") {
        return deny(format!(
            "a command substitution inside the arithmetic `{expr}` cannot be checked; compute it in a separate step"
        ));
    }
    Ok(())
}

/// Text kept literally (single quotes, escapes) that looks like `name[$(cmd)]` would run `cmd`
/// if bash later evaluates it as an arithmetic or variable name (`(( x ))`, `[[ -v ]]`,
/// `printf -v`, `read`). Refuse it rather than track where each value flows.
fn subscript_injection(raw: &str, cooked: &str) -> Result<(), PolicyDenial> {
    if let Some(open) = cooked.find('[') {
        let after = &cooked[open..];
        if after.contains("$(") || after.contains('`') {
            return deny(format!(
                "`{raw}` looks like an array subscript holding a command substitution, which bash would run when the text is evaluated; avoid `[$(...)]` in literal text"
            ));
        }
    }
    Ok(())
}

/// Builds the literal value of a word from its pieces. `literal` becomes `None` at the first
/// piece that expands at run time; `cooked` collects the fixed text with `\0` standing for
/// expansions; `glob` records unquoted glob or brace characters.
fn literal_of(
    pieces: &[WordPieceWithSource],
    quoted: bool,
    literal: &mut Option<String>,
    cooked: &mut String,
    glob: &mut bool,
) {
    for p in pieces {
        match &p.piece {
            WordPiece::Text(t) => {
                // Braces and brackets may pair up across quoted pieces (`{"/etc",x}`), so any
                // unquoted one makes the whole word suspect; `word` re-checks the full text.
                if !quoted && (has_glob(t) || t.contains(['{', '['])) {
                    *glob = true;
                }
                push(literal, cooked, t);
            }
            WordPiece::SingleQuotedText(t) => push(literal, cooked, t),
            WordPiece::EscapeSequence(e) => {
                let c = e.strip_prefix('\\').unwrap_or(e);
                let value = if quoted && !matches!(c, "$" | "`" | "\"" | "\\" | "\n") {
                    e.as_str()
                } else {
                    c
                };
                push(literal, cooked, value);
            }
            WordPiece::DoubleQuotedSequence(inner)
            | WordPiece::GettextDoubleQuotedSequence(inner) => {
                literal_of(inner, true, literal, cooked, glob)
            }
            WordPiece::AnsiCQuotedText(t) => {
                *literal = None;
                cooked.push_str(t);
            }
            _ => {
                *literal = None;
                cooked.push('\0');
            }
        }
    }
}

/// Unquoted text that bash would expand as a glob or a brace expansion.
fn has_glob(t: &str) -> bool {
    if t.contains(['*', '?']) {
        return true;
    }
    if let Some(open) = t.find('[') {
        if t[open + 1..].contains(']') {
            return true;
        }
    }
    if let Some(open) = t.find('{') {
        let after = &t[open + 1..];
        if let Some(close) = after.find('}') {
            let inner = &after[..close];
            if inner.contains(',') || inner.contains("..") {
                return true;
            }
        }
    }
    false
}

fn push(literal: &mut Option<String>, cooked: &mut String, text: &str) {
    if let Some(l) = literal {
        l.push_str(text);
    }
    cooked.push_str(text);
}

/// Undoes the backslash escaping bash applies inside backquotes.
fn unescape_backquoted(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if matches!(n, '$' | '`' | '\\') {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// Marks where the command name sits among prefix and suffix items.
static NAME_MARKER: ast::CommandPrefixOrSuffixItem =
    ast::CommandPrefixOrSuffixItem::Word(ast::Word {
        value: String::new(),
        loc: None,
    });
