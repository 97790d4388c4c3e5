//! The walk over the parsed command: every command bash would run, wherever it sits (pipelines,
//! lists, compound commands, functions, substitutions, here-documents, redirections), is handed
//! to the per-program rules.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use brush_parser::ast;
use brush_parser::word::{WordPiece, WordPieceWithSource};

use super::allowlist::{dangerous_variable, fixed_refusal, NETWORK_TOOLS};
use super::limits::MAX_DEPTH;
use super::words::{
    arithmetic, has_glob, literal_of, parser_options, subscript_injection, unescape_backquoted, Arg,
};
use super::{deny, CommandPolicy, PolicyDenial};
use crate::path::{normalize_lexically, Access, ProjectRoot};

pub(crate) struct Checker<'a> {
    pub(crate) policy: &'a CommandPolicy,
    pub(crate) project: &'a ProjectRoot,
    pub(crate) network: bool,
    /// Every directory the shell may be in at this point (the root plus every `cd` target seen):
    /// relative paths must stay inside the project from each of them.
    pub(crate) cwds: Vec<PathBuf>,
    pub(crate) functions: BTreeSet<String>,
    pub(crate) depth: usize,
}

impl Checker<'_> {
    pub(crate) fn program(&mut self, source: &str) -> Result<(), PolicyDenial> {
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

    pub(crate) fn compound_list(&mut self, list: &ast::CompoundList) -> Result<(), PolicyDenial> {
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

    pub(crate) fn pipeline(&mut self, pipeline: &ast::Pipeline) -> Result<(), PolicyDenial> {
        for command in &pipeline.seq {
            self.command(command)?;
        }
        Ok(())
    }

    pub(crate) fn command(&mut self, command: &ast::Command) -> Result<(), PolicyDenial> {
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

    pub(crate) fn compound(&mut self, compound: &ast::CompoundCommand) -> Result<(), PolicyDenial> {
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

    pub(crate) fn subshell(&mut self, s: &ast::SubshellCommand) -> Result<(), PolicyDenial> {
        self.compound_list(&s.list)
    }

    pub(crate) fn extended_test(
        &mut self,
        expr: &ast::ExtendedTestExpr,
    ) -> Result<(), PolicyDenial> {
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

    pub(crate) fn redirect_list(
        &mut self,
        list: Option<&ast::RedirectList>,
    ) -> Result<(), PolicyDenial> {
        for r in list.iter().flat_map(|l| l.0.iter()) {
            self.redirect(r)?;
        }
        Ok(())
    }

    pub(crate) fn redirect(&mut self, redirect: &ast::IoRedirect) -> Result<(), PolicyDenial> {
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

    pub(crate) fn redirect_target(&self, arg: &Arg) -> Result<(), PolicyDenial> {
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
    pub(crate) fn write_path(&self, path: &str) -> Result<(), String> {
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

    pub(crate) fn simple(&mut self, simple: &ast::SimpleCommand) -> Result<(), PolicyDenial> {
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
    pub(crate) fn word(&mut self, word: &ast::Word) -> Result<Arg, PolicyDenial> {
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

    pub(crate) fn pieces(
        &mut self,
        source: &str,
        pieces: &[WordPieceWithSource],
    ) -> Result<(), PolicyDenial> {
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
    pub(crate) fn argv(&mut self, argv: &[Arg]) -> Result<(), PolicyDenial> {
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
    pub(crate) fn path_command(&mut self, path: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
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

    pub(crate) fn named(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
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

    /// Whether `path` stays inside the project (for reading) from every directory the shell may be
    /// in.
    pub(crate) fn read_inside(&self, path: &str) -> bool {
        self.cwds
            .iter()
            .all(|cwd| self.project.resolve_from(cwd, path, Access::Read).is_ok())
    }
}

/// Marks where the command name sits among prefix and suffix items.
static NAME_MARKER: ast::CommandPrefixOrSuffixItem =
    ast::CommandPrefixOrSuffixItem::Word(ast::Word {
        value: String::new(),
        loc: None,
    });
