//! The walk over the parsed command: every command bash would run, wherever it sits (pipelines,
//! lists, compound commands, functions, substitutions, here-documents, redirections), is handed
//! to the per-program rules, with what the walk knows of the shell's state at that point: the
//! directories it may be in, the functions it surely has, what the command reads on stdin.

use std::collections::BTreeSet;
use std::path::Path;

use brush_parser::ast;
use brush_parser::word::{ParameterExpr, WordPiece, WordPieceWithSource};

use super::allowlist::{fixed_refusal, variable_refusal, BUILTINS, NETWORK_TOOLS, PROCESS_TOOLS};
use super::limits::{
    self, token_nesting, word_nesting, WordMode, MAX_DEPTH, MAX_NESTING, MAX_PARSED_BYTES,
    MAX_PIPELINE, MAX_TOKENS,
};
use super::paths::{Cwd, Effect};
use super::words::{
    arg_of, parser_options, subscript_injection, unescape_backquoted, Arg, KnownValues,
};
use super::{deny, CommandPolicy, PolicyContext, PolicyDenial};
use crate::path::{normalize_lexically, ProjectRoot};

/// What the command being checked reads on its standard input, as far as its own redirections
/// tell.
#[derive(Debug, Clone, Default)]
pub(crate) enum Stdin {
    /// Whatever the shell has: a pipe, the enclosing command's input.
    #[default]
    Inherited,
    /// A here-document or here-string whose text is fixed.
    Text(String),
    /// A here-document or here-string whose text depends on expansions.
    Computed,
    /// `< FILE`
    File(Arg),
}

pub(crate) struct Checker<'a> {
    pub(crate) policy: &'a CommandPolicy,
    pub(crate) project: &'a ProjectRoot,
    pub(crate) context: &'a PolicyContext,
    pub(crate) known: KnownValues,
    /// Every directory the shell may be in at this point (the root plus every `cd` target seen):
    /// relative paths must stay inside the project from each of them.
    pub(crate) cwds: Vec<Cwd>,
    /// Functions surely defined at this point (unconditionally, in this scope): a call runs
    /// their body, which was checked where they were defined.
    pub(crate) functions: BTreeSet<String>,
    /// How many conditions, loops, branches and function bodies enclose the current point; a
    /// function defined inside one may not exist when it is called.
    pub(crate) conditional: usize,
    /// The standard input of the command whose arguments are being checked.
    pub(crate) stdin: Stdin,
    /// How many program texts (substitutions, `bash -c` strings) enclose the current one.
    pub(crate) depth: usize,
    /// The parser nesting of the texts enclosing the current point, summed.
    pub(crate) nesting: usize,
    /// How much text this check has parsed so far.
    pub(crate) parsed_bytes: usize,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        policy: &'a CommandPolicy,
        project: &'a ProjectRoot,
        context: &'a PolicyContext,
    ) -> Checker<'a> {
        let known = KnownValues {
            home: std::env::var("HOME").ok().filter(|h| h.starts_with('/')),
            temp: context
                .temp_dir
                .as_ref()
                .map(|t| normalize_lexically(t).to_string_lossy().into_owned()),
        };
        Checker {
            policy,
            project,
            context,
            known,
            cwds: vec![Cwd::Known(project.path().to_path_buf())],
            functions: BTreeSet::new(),
            conditional: 0,
            stdin: Stdin::Inherited,
            depth: 0,
            nesting: 0,
            parsed_bytes: 0,
        }
    }
}

impl Checker<'_> {
    /// Parses and checks one program text: the command, or a substitution's or `bash -c`
    /// string's code. Runs on the parser thread (see [`super::limits`]).
    pub(crate) fn program(&mut self, source: &str) -> Result<(), PolicyDenial> {
        if source.contains('\0') {
            return deny("the command contains a NUL byte");
        }
        if self.depth >= MAX_DEPTH {
            return deny("commands nested too deeply (shells within substitutions within shells); simplify the command");
        }
        self.parsed_bytes += source.len();
        if self.parsed_bytes > MAX_PARSED_BYTES {
            return deny("the command is too complex to check (its substitutions and shell strings add up to too much text); split it into smaller commands or a script");
        }
        limits::check_expansions(source)?;
        let options = parser_options();
        let unparsable = |e: &dyn std::fmt::Display| {
            PolicyDenial {
            reason: format!(
                "the command could not be parsed as bash ({e}); commands that cannot be parsed cannot be checked, so fix the syntax or split the command"
            ),
        }
        };
        let tokens = brush_parser::uncached_tokenize_str(source, &options.tokenizer_options())
            .map_err(|e| unparsable(&e))?;
        if tokens.len() > MAX_TOKENS {
            return deny(format!(
                "the command has {} words and operators, over the limit of {MAX_TOKENS} the policy checks; split it into smaller commands or a script",
                tokens.len()
            ));
        }
        // A here-document's body is the word right after its tag (`<<`, tag, body, end tag);
        // the parser reads it with quotes as literal characters.
        let words = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                brush_parser::Token::Word(w, _) => {
                    let body = i >= 2
                        && matches!(&tokens[i - 2], brush_parser::Token::Operator(op, _) if op == "<<" || op == "<<-");
                    Some(word_nesting(
                        w,
                        if body {
                            WordMode::HereDoc
                        } else {
                            WordMode::Word
                        },
                    ))
                }
                brush_parser::Token::Operator(..) => None,
            })
            .max()
            .unwrap_or(0);
        let nesting = token_nesting(&tokens) + words;
        if self.nesting + nesting > MAX_NESTING {
            return deny(format!(
                "the command nests too deeply (about {} levels of compound commands, substitutions and quotes, over the limit of {MAX_NESTING}); flatten it or split it into steps",
                self.nesting + nesting
            ));
        }
        let program = brush_parser::parse_tokens(&tokens, &options).map_err(|e| unparsable(&e))?;
        drop(tokens);
        self.nesting += nesting;
        self.depth += 1;
        for complete in &program.complete_commands {
            self.compound_list(complete)?;
        }
        self.depth -= 1;
        self.nesting -= nesting;
        Ok(())
    }

    /// Checks a program text run by another shell (`bash -c`, `bash <<'EOF'`): it starts with
    /// no functions.
    pub(crate) fn child_shell(&mut self, source: &str) -> Result<(), PolicyDenial> {
        let functions = std::mem::take(&mut self.functions);
        let conditional = std::mem::replace(&mut self.conditional, 0);
        let result = self.program(source);
        self.functions = functions;
        self.conditional = conditional;
        result
    }

    /// Runs `f` in a subshell's scope: functions it defines are gone afterwards.
    fn subshell_scope(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), PolicyDenial>,
    ) -> Result<(), PolicyDenial> {
        let functions = self.functions.clone();
        let result = f(self);
        self.functions = functions;
        result
    }

    /// Runs `f` where what it defines may not happen (a branch, a loop, a function body).
    fn conditionally(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), PolicyDenial>,
    ) -> Result<(), PolicyDenial> {
        self.conditional += 1;
        let result = f(self);
        self.conditional -= 1;
        result
    }

    pub(crate) fn compound_list(&mut self, list: &ast::CompoundList) -> Result<(), PolicyDenial> {
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            let background = matches!(separator, ast::SeparatorOperator::Async);
            let definition = match and_or.first.seq.as_slice() {
                [ast::Command::Function(def)]
                    if and_or.additional.is_empty() && !and_or.first.bang && !background =>
                {
                    Some(def)
                }
                _ => None,
            };
            if let Some(def) = definition {
                self.function(def, self.conditional == 0)?;
                continue;
            }
            let item = |this: &mut Self| -> Result<(), PolicyDenial> {
                this.pipeline(&and_or.first)?;
                if !and_or.additional.is_empty() {
                    this.conditionally(|this| {
                        for next in &and_or.additional {
                            match next {
                                ast::AndOr::And(p) | ast::AndOr::Or(p) => this.pipeline(p)?,
                            }
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            };
            if background {
                self.subshell_scope(item)?;
            } else {
                item(self)?;
            }
        }
        Ok(())
    }

    pub(crate) fn pipeline(&mut self, pipeline: &ast::Pipeline) -> Result<(), PolicyDenial> {
        if pipeline.seq.len() > MAX_PIPELINE {
            return deny(format!(
                "a pipeline of {} commands is over the limit of {MAX_PIPELINE}; split it into steps with files in between",
                pipeline.seq.len()
            ));
        }
        if pipeline.seq.len() == 1 {
            return pipeline.seq.iter().try_for_each(|c| self.command(c));
        }
        // Each part of a pipeline runs in a subshell of its own.
        for command in &pipeline.seq {
            self.subshell_scope(|this| this.command(command))?;
        }
        Ok(())
    }

    pub(crate) fn command(&mut self, command: &ast::Command) -> Result<(), PolicyDenial> {
        match command {
            ast::Command::Simple(simple) => self.simple(simple),
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound)?;
                self.redirect_list(redirects.as_ref(), &mut Stdin::Inherited)
            }
            ast::Command::Function(def) => self.function(def, false),
            ast::Command::ExtendedTest(test, redirects) => {
                self.extended_test(&test.expr)?;
                self.redirect_list(redirects.as_ref(), &mut Stdin::Inherited)
            }
        }
    }

    /// A function definition: its body is checked here; with `trusted`, later calls run it.
    fn function(
        &mut self,
        def: &ast::FunctionDefinition,
        trusted: bool,
    ) -> Result<(), PolicyDenial> {
        let name = self.word(&def.fname)?;
        let Some(name) = name.plain().map(str::to_string) else {
            return deny(format!(
                "the function name `{}` is not a plain word",
                def.fname.value
            ));
        };
        if BUILTINS.contains(&name.as_str()) {
            return deny(format!(
                "a function may not be named `{name}`, like the shell builtin, whose behaviour the policy relies on; choose another name"
            ));
        }
        if fixed_refusal(&name).is_some() || name.contains('/') {
            return deny(format!("a function may not be named `{name}`"));
        }
        self.subshell_scope(|this| {
            // The body may call the function itself.
            this.functions.insert(name.clone());
            this.conditionally(|this| {
                this.compound(&def.body.0)?;
                this.redirect_list(def.body.1.as_ref(), &mut Stdin::Inherited)
            })
        })?;
        if trusted {
            self.functions.insert(name);
        } else {
            self.functions.remove(&name);
        }
        Ok(())
    }

    pub(crate) fn compound(&mut self, compound: &ast::CompoundCommand) -> Result<(), PolicyDenial> {
        match compound {
            ast::CompoundCommand::Arithmetic(a) => self.arithmetic(&a.expr.value),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&e.value)?;
                }
                self.conditionally(|this| this.compound_list(&f.body.list))
            }
            ast::CompoundCommand::BraceGroup(b) => self.compound_list(&b.list),
            ast::CompoundCommand::Subshell(s) => self.subshell(s),
            ast::CompoundCommand::ForClause(f) => {
                if let Some(reason) = variable_refusal(&f.variable_name, None) {
                    return deny(format!("`for {} in …`: {reason}", f.variable_name));
                }
                for w in f.values.iter().flatten() {
                    self.word(w)?;
                }
                self.conditionally(|this| this.compound_list(&f.body.list))
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.word(&c.value)?;
                self.conditionally(|this| {
                    for item in &c.cases {
                        for p in &item.patterns {
                            this.word(p)?;
                        }
                        if let Some(cmd) = &item.cmd {
                            this.compound_list(cmd)?;
                        }
                    }
                    Ok(())
                })
            }
            ast::CompoundCommand::IfClause(i) => {
                self.compound_list(&i.condition)?;
                self.conditionally(|this| {
                    this.compound_list(&i.then)?;
                    for e in i.elses.iter().flatten() {
                        if let Some(c) = &e.condition {
                            this.compound_list(c)?;
                        }
                        this.compound_list(&e.body)?;
                    }
                    Ok(())
                })
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => self
                .conditionally(|this| {
                    this.compound_list(&w.0)?;
                    this.compound_list(&w.1.list)
                }),
            ast::CompoundCommand::Coprocess(_) => {
                deny("`coproc` starts a coprocess, which the policy does not support; use a pipeline or a background job (`cmd &`)")
            }
        }
    }

    pub(crate) fn subshell(&mut self, s: &ast::SubshellCommand) -> Result<(), PolicyDenial> {
        self.subshell_scope(|this| this.compound_list(&s.list))
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
        stdin: &mut Stdin,
    ) -> Result<(), PolicyDenial> {
        for r in list.iter().flat_map(|l| l.0.iter()) {
            self.redirect(r, stdin)?;
        }
        Ok(())
    }

    /// Checks one redirection; records what it makes the command read on stdin.
    pub(crate) fn redirect(
        &mut self,
        redirect: &ast::IoRedirect,
        stdin: &mut Stdin,
    ) -> Result<(), PolicyDenial> {
        let is_stdin = |fd: &Option<i32>| fd.is_none_or(|fd| fd == 0);
        match redirect {
            ast::IoRedirect::File(fd, kind, target) => {
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
                            self.check_target(">", &arg, Effect::Write)?;
                        } else if is_stdin(fd) {
                            *stdin = Stdin::File(arg);
                        }
                        Ok(())
                    }
                    ast::IoFileRedirectTarget::Fd(_) => Ok(()),
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, s) => {
                        if !writes && is_stdin(fd) {
                            *stdin = Stdin::Computed;
                        }
                        self.subshell(s)
                    }
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
                            _ if writes => self.check_target(">", &arg, Effect::Write),
                            _ => Ok(()),
                        }
                    }
                }
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                let body = &doc.doc.value;
                let mut computed = false;
                if doc.requires_expansion {
                    // The body's nesting was counted with the command's (it is one of its words).
                    let pieces = brush_parser::word::parse_heredoc(body, &parser_options())
                        .map_err(|e| PolicyDenial {
                            reason: format!("a here-document could not be parsed ({e}); quote its delimiter (<<'EOF') to keep its text literal"),
                        })?;
                    self.pieces(body, &pieces)?;
                    computed = body.contains(['$', '`', '\\']);
                }
                if is_stdin(fd) {
                    *stdin = if computed {
                        Stdin::Computed
                    } else {
                        Stdin::Text(body.clone())
                    };
                }
                Ok(())
            }
            ast::IoRedirect::HereString(fd, w) => {
                let arg = self.word(w)?;
                if is_stdin(fd) {
                    *stdin = match arg.literal {
                        Some(text) => Stdin::Text(format!("{text}\n")),
                        None => Stdin::Computed,
                    };
                }
                Ok(())
            }
            ast::IoRedirect::OutputAndError(w, _append) => {
                let arg = self.word(w)?;
                self.check_target(">", &arg, Effect::Write)
            }
        }
    }

    fn parse_budget(&self, nesting: usize) -> Result<(), PolicyDenial> {
        if self.nesting + nesting > MAX_NESTING {
            return deny(format!(
                "the command nests too deeply (about {} levels, over the limit of {MAX_NESTING}); flatten it or split it into steps",
                self.nesting + nesting
            ));
        }
        Ok(())
    }

    pub(crate) fn simple(&mut self, simple: &ast::SimpleCommand) -> Result<(), PolicyDenial> {
        let mut argv: Vec<Arg> = Vec::new();
        let mut assignments: Vec<(String, Option<String>)> = Vec::new();
        let mut stdin = Stdin::Inherited;
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
                ast::CommandPrefixOrSuffixItem::IoRedirect(r) => self.redirect(r, &mut stdin)?,
                ast::CommandPrefixOrSuffixItem::Word(w) => argv.push(self.word(w)?),
                ast::CommandPrefixOrSuffixItem::AssignmentWord(a, w) => {
                    let name = match &a.name {
                        ast::AssignmentName::VariableName(n) => n.clone(),
                        ast::AssignmentName::ArrayElementName(n, idx) => {
                            self.arithmetic(idx)?;
                            n.clone()
                        }
                    };
                    // After the command name an assignment is an argument (e.g. to `declare`):
                    // the whole word is checked once, as an argument. Before it, the value is.
                    let suffix = !argv.is_empty();
                    let mut value = None;
                    match &a.value {
                        ast::AssignmentValue::Scalar(v) if !suffix => {
                            value = self.word(v)?.literal;
                        }
                        ast::AssignmentValue::Scalar(_) => argv.push(self.word(w)?),
                        ast::AssignmentValue::Array(items) => {
                            for (k, v) in items {
                                if let Some(k) = k {
                                    self.word(k)?;
                                }
                                self.word(v)?;
                            }
                            if suffix {
                                let mut arg = Arg::unknown(w.value.clone());
                                arg.prefix = w
                                    .value
                                    .split_once('(')
                                    .map(|(head, _)| head.to_string())
                                    .unwrap_or_default();
                                argv.push(arg);
                            }
                        }
                    }
                    if !suffix {
                        assignments.push((name, value));
                    }
                }
                ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, s) => {
                    self.subshell(s)?;
                    argv.push(Arg::unknown("<(...)"));
                }
            }
        }
        // `IFS=, read -r a b` sets IFS for `read` alone: the common idiom is fine.
        let splits_input = matches!(
            argv.first().and_then(Arg::plain),
            Some("read" | "mapfile" | "readarray")
        );
        for (name, value) in &assignments {
            if name == "IFS" && splits_input {
                continue;
            }
            if let Some(reason) = variable_refusal(name, value.as_deref()) {
                return deny(reason);
            }
        }
        if argv.is_empty() {
            return Ok(());
        }
        self.stdin = stdin;
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
        let (arg, cooked) = arg_of(&word.value, &pieces, &self.known);
        subscript_injection(&word.value, &cooked)?;
        Ok(arg)
    }

    pub(crate) fn pieces(
        &mut self,
        source: &str,
        pieces: &[WordPieceWithSource],
    ) -> Result<(), PolicyDenial> {
        for p in pieces {
            match &p.piece {
                WordPiece::CommandSubstitution(code) => self.subshell_program(code)?,
                WordPiece::BackquotedCommandSubstitution(code) => {
                    self.subshell_program(&unescape_backquoted(code))?
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => self.pieces(source, inner)?,
                WordPiece::ParameterExpansion(expr) => {
                    let text = source.get(p.start_index..p.end_index).unwrap_or(source);
                    parameter_expansion(expr, text)?;
                }
                WordPiece::ArithmeticExpression(e) => self.arithmetic(&e.value)?,
                WordPiece::Text(_)
                | WordPiece::SingleQuotedText(_)
                | WordPiece::AnsiCQuotedText(_)
                | WordPiece::TildeExpansion(_)
                | WordPiece::EscapeSequence(_) => {}
            }
        }
        Ok(())
    }

    /// A command substitution: checked like the command, in a subshell's scope.
    fn subshell_program(&mut self, code: &str) -> Result<(), PolicyDenial> {
        let stdin = std::mem::take(&mut self.stdin);
        let result = self.subshell_scope(|this| this.program(code));
        self.stdin = stdin;
        result
    }

    /// Arithmetic text: its command substitutions run, so they are checked; array subscripts
    /// holding one would run it again later, so those are refused.
    pub(crate) fn arithmetic(&mut self, expr: &str) -> Result<(), PolicyDenial> {
        if !expr.contains(['$', '`']) {
            return Ok(());
        }
        let nesting = word_nesting(expr, WordMode::HereDoc);
        self.parse_budget(nesting)?;
        let pieces = brush_parser::word::parse_heredoc(expr, &parser_options()).map_err(|e| {
            PolicyDenial {
                reason: format!(
                    "the arithmetic `{expr}` could not be parsed ({e}); compute it in separate steps"
                ),
            }
        })?;
        self.nesting += nesting;
        let checked = self.pieces(expr, &pieces);
        self.nesting -= nesting;
        checked
    }

    /// Checks one command (name and arguments).
    pub(crate) fn argv(&mut self, argv: &[Arg]) -> Result<(), PolicyDenial> {
        let Some(first) = argv.first() else {
            return Ok(());
        };
        let args = &argv[1..];
        let Some(name) = first.literal.as_deref() else {
            // A program in the project or the temp dir named through $PWD or $TMPDIR.
            if let Some(value) = first.value.as_ref().filter(|_| !first.glob) {
                let shown = first.shown();
                let text: String = value.iter().map(|q| q.c).collect();
                if text.starts_with(super::words::TMP_MARK) {
                    return Ok(());
                }
                if text.starts_with(super::words::PWD_MARK) {
                    let relative = format!(".{}", &text[super::words::PWD_MARK.len_utf8()..]);
                    if self.read_inside(&relative) {
                        return Ok(());
                    }
                }
                if self
                    .known
                    .temp
                    .as_deref()
                    .is_some_and(|t| Path::new(&text).starts_with(t))
                {
                    return Ok(());
                }
                return deny(format!(
                    "`{shown}` is neither inside the project nor in $TMPDIR; run programs from the project or by their plain name"
                ));
            }
            return deny(format!(
                "the command name `{}` is computed (variables or substitutions); write the command name out literally",
                first.raw
            ));
        };
        if first.glob {
            return deny(format!(
                "the command name `{}` contains glob or brace characters; write the command name out literally",
                first.raw
            ));
        }
        if name.is_empty() {
            return deny("the command name is empty");
        }
        if name.contains('/') {
            return self.path_command(name, args);
        }
        if self.functions.contains(name) {
            // The body was checked where the function was defined.
            return Ok(());
        }
        self.named(name, args)
    }

    /// A command given as a path: a program or script inside the project (or the temp dir), or
    /// a system tool by its full path (checked under its base name).
    fn path_command(&mut self, path: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        if self.read_inside(path) {
            // A project script or binary: it runs under the kernel confinement.
            return Ok(());
        }
        let normalized = normalize_lexically(Path::new(path));
        if self
            .context
            .temp_dir
            .as_ref()
            .is_some_and(|t| Path::new(path).is_absolute() && normalized.starts_with(t))
        {
            return Ok(());
        }
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
            if NETWORK_TOOLS.contains(&name) {
                return deny(format!(
                    "`{name}` is not on the allowlist; for HTTP use `curl` or `wget` (through the harness's proxy), other network tools are not available"
                ));
            }
            return deny(format!(
                "`{name}` is not on the allowlist; use an allowed tool, or the project owner can add it under [policy] allow in loopwright.toml"
            ));
        }
        if PROCESS_TOOLS.contains(&name) {
            return self.processes(name, args);
        }
        self.arguments(name, args)
    }
}

/// Checks a `${…}` expansion: substitutions inside it, prompt re-evaluation, and assignments
/// (`${NAME:=value}`) to variables that may not be set.
fn parameter_expansion(expr: &ParameterExpr, text: &str) -> Result<(), PolicyDenial> {
    if text.contains("$(") || text.contains('`') || text.contains("<(") || text.contains(">(") {
        return deny(format!(
            "a command substitution inside `{text}` cannot be checked; compute it in a separate step"
        ));
    }
    if text.contains("@P") || text.contains("@E") {
        return deny(format!(
            "the `{text}` expansion re-evaluates text as a prompt; print the variable plainly"
        ));
    }
    if let ParameterExpr::AssignDefaultValues {
        parameter,
        indirect,
        ..
    } = expr
    {
        if *indirect {
            return deny(format!(
                "`{text}` assigns to a variable named by another variable's value, which cannot be checked; assign the variable directly"
            ));
        }
        let name = match parameter {
            brush_parser::word::Parameter::Named(n)
            | brush_parser::word::Parameter::NamedWithIndex { name: n, .. }
            | brush_parser::word::Parameter::NamedWithAllIndices { name: n, .. } => n.as_str(),
            _ => "",
        };
        if let Some(reason) = variable_refusal(name, None) {
            return deny(format!("`{text}`: {reason}"));
        }
    }
    Ok(())
}

/// Marks where the command name sits among prefix and suffix items.
static NAME_MARKER: ast::CommandPrefixOrSuffixItem =
    ast::CommandPrefixOrSuffixItem::Word(ast::Word {
        value: String::new(),
        loc: None,
    });
