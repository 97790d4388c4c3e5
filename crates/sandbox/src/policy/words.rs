//! Words: what the policy knows of an argument's value.
//!
//! A word is fixed (`'a b'`, `src/x.py`), or built from expansions whose value the policy knows
//! (`$PWD`, `$(pwd)`, `~`, `$HOME`, `$TMPDIR`), or from expansions it does not (`$1`,
//! `$(git ls-files)`). Fixed and known words are checked; unknown ones are left to the kernel
//! (except where a computed value could change which program runs).

use brush_parser::word::{Parameter, ParameterExpr, TildeExpr, WordPiece, WordPieceWithSource};

use super::glob::{self, QChar};
use super::{deny, PolicyDenial};

/// Stands for the shell's working directory (`$PWD`, `$(pwd)`, `~+`) in a word's value; it is
/// replaced by each directory the shell may be in when a path is checked.
pub(crate) const PWD_MARK: char = '\u{F8FE}';
/// Stands for the commands' temp directory (`$TMPDIR`) when its path is not known.
pub(crate) const TMP_MARK: char = '\u{F8FF}';

/// One argument word.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    /// The source text.
    pub(crate) raw: String,
    /// The value after quote removal, when the word has no expansion at all. Glob characters may
    /// remain; see `glob`.
    pub(crate) literal: Option<String>,
    /// Unquoted glob or brace characters are present in `literal`.
    pub(crate) glob: bool,
    /// The value with known expansions (as [`PWD_MARK`] / [`TMP_MARK`] or their text), each
    /// character marked quoted or not; `None` when an expansion's value is unknown.
    pub(crate) value: Option<Vec<QChar>>,
    /// The fixed text before the first expansion, quotes removed (`--output=` of
    /// `--output=$F`).
    pub(crate) prefix: String,
}

impl Arg {
    /// An argument the policy knows nothing of (a process substitution, an array literal).
    pub(crate) fn unknown(raw: impl Into<String>) -> Arg {
        Arg {
            raw: raw.into(),
            literal: None,
            glob: false,
            value: None,
            prefix: String::new(),
        }
    }

    /// A fixed argument (a path inside a sed or awk script, an attached option value).
    pub(crate) fn fixed(text: &str) -> Arg {
        Arg {
            raw: text.to_string(),
            literal: Some(text.to_string()),
            glob: false,
            value: Some(text.chars().map(QChar::quoted).collect()),
            prefix: text.to_string(),
        }
    }

    /// The value, when fixed and free of globbing.
    pub(crate) fn plain(&self) -> Option<&str> {
        if self.glob {
            None
        } else {
            self.literal.as_deref()
        }
    }

    /// The text to match options against: the fixed value, or else the fixed text before the
    /// first expansion (enough to recognise `--output=$F`).
    pub(crate) fn option_text(&self) -> &str {
        self.literal.as_deref().unwrap_or(&self.prefix)
    }

    /// The value as far as it is known, for messages.
    pub(crate) fn shown(&self) -> String {
        match &self.value {
            Some(v) => glob::text(v)
                .replace(PWD_MARK, "$PWD")
                .replace(TMP_MARK, "$TMPDIR"),
            None => self.raw.clone(),
        }
    }
}

/// Values of expansions the policy can evaluate.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownValues {
    /// `$HOME` and `~`.
    pub(crate) home: Option<String>,
    /// `$TMPDIR`.
    pub(crate) temp: Option<String>,
}

pub(crate) fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions {
        // `bash -c` starts without extglob.
        enable_extended_globbing: false,
        ..brush_parser::ParserOptions::default()
    }
}

/// Text kept literally (single quotes, escapes) that looks like `name[$(cmd)]` would run `cmd`
/// if bash later evaluates it as an arithmetic or variable name (`(( x ))`, `[[ -v ]]`,
/// `printf -v`, `read`). Refuse it rather than track where each value flows.
pub(crate) fn subscript_injection(raw: &str, cooked: &str) -> Result<(), PolicyDenial> {
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

/// Builds an [`Arg`] from a word's parsed pieces. `cooked` (returned) is the fixed text with
/// `\0` standing for expansions, for [`subscript_injection`].
pub(crate) fn arg_of(
    raw: &str,
    pieces: &[WordPieceWithSource],
    known: &KnownValues,
) -> (Arg, String) {
    let mut builder = Builder {
        literal: Some(String::new()),
        value: Some(Vec::new()),
        prefix: Some(String::new()),
        done_prefix: String::new(),
        cooked: String::new(),
        known,
    };
    builder.pieces(pieces, false);
    let glob = builder.literal.is_some()
        && builder.value.as_ref().is_some_and(|v| {
            glob::has_glob(v)
                || glob::brace_expand(v).is_none_or(|words| words.len() != 1 || words[0] != *v)
        });
    let prefix = builder.prefix.take().unwrap_or(builder.done_prefix);
    (
        Arg {
            raw: raw.to_string(),
            literal: builder.literal,
            glob,
            value: builder.value,
            prefix,
        },
        builder.cooked,
    )
}

struct Builder<'a> {
    literal: Option<String>,
    value: Option<Vec<QChar>>,
    /// The fixed text so far, until the first expansion; then `None` and `done_prefix` holds it.
    prefix: Option<String>,
    done_prefix: String,
    cooked: String,
    known: &'a KnownValues,
}

impl Builder<'_> {
    fn fixed(&mut self, text: &str, quoted: bool) {
        if let Some(l) = &mut self.literal {
            l.push_str(text);
        }
        if let Some(v) = &mut self.value {
            v.extend(text.chars().map(|c| QChar { c, quoted }));
        }
        if let Some(p) = &mut self.prefix {
            p.push_str(text);
        }
        self.cooked.push_str(text);
    }

    /// An expansion: `Some(text)` when its value is known (inserted quoted).
    fn expansion(&mut self, known: Option<String>) {
        self.literal = None;
        if let Some(p) = self.prefix.take() {
            self.done_prefix = p;
        }
        self.cooked.push('\0');
        match (known, &mut self.value) {
            (Some(text), Some(v)) => v.extend(text.chars().map(QChar::quoted)),
            _ => self.value = None,
        }
    }

    fn pieces(&mut self, pieces: &[WordPieceWithSource], quoted: bool) {
        for p in pieces {
            match &p.piece {
                WordPiece::Text(t) => self.fixed(t, quoted),
                WordPiece::SingleQuotedText(t) => self.fixed(t, true),
                WordPiece::EscapeSequence(e) => {
                    let c = e.strip_prefix('\\').unwrap_or(e);
                    if quoted && !matches!(c, "$" | "`" | "\"" | "\\" | "\n") {
                        self.fixed(e, true);
                    } else {
                        self.fixed(c, true);
                    }
                }
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => self.pieces(inner, true),
                WordPiece::AnsiCQuotedText(t) => {
                    // Escapes such as `\x72` are not decoded: the value is unknown.
                    if t.contains('\\') {
                        self.expansion(None);
                    } else {
                        self.fixed(t, true);
                    }
                }
                WordPiece::TildeExpansion(tilde) => {
                    let value = match tilde {
                        TildeExpr::Home => self.known.home.clone(),
                        TildeExpr::WorkingDir => Some(PWD_MARK.to_string()),
                        _ => None,
                    };
                    self.expansion(value);
                }
                WordPiece::ParameterExpansion(expr) => {
                    let value = match expr {
                        ParameterExpr::Parameter {
                            parameter: Parameter::Named(name),
                            indirect: false,
                        } => match name.as_str() {
                            "PWD" => Some(PWD_MARK.to_string()),
                            "HOME" => self.known.home.clone(),
                            "TMPDIR" => Some(
                                self.known
                                    .temp
                                    .clone()
                                    .unwrap_or_else(|| TMP_MARK.to_string()),
                            ),
                            _ => None,
                        },
                        _ => None,
                    };
                    self.expansion(value);
                }
                WordPiece::CommandSubstitution(code)
                | WordPiece::BackquotedCommandSubstitution(code) => {
                    let value = matches!(code.trim(), "pwd" | "pwd -L" | "pwd -P")
                        .then(|| PWD_MARK.to_string());
                    self.expansion(value);
                }
                WordPiece::ArithmeticExpression(_) => self.expansion(None),
            }
        }
    }
}

/// Undoes the backslash escaping bash applies inside backquotes.
pub(crate) fn unescape_backquoted(code: &str) -> String {
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

/// Whether `name` is a plain shell variable name (what `declare`, `read` and `printf -v` may be
/// given), optionally with an array subscript.
pub(crate) fn variable_name(text: &str) -> Option<&str> {
    let name = text.split('[').next().unwrap_or("");
    let mut chars = name.chars();
    let first = chars.next()?;
    ((first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_'))
    .then_some(name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn arg(word: &str) -> Arg {
        let known = KnownValues {
            home: Some("/home/u".into()),
            temp: None,
        };
        let pieces = brush_parser::word::parse(word, &parser_options()).unwrap();
        arg_of(word, &pieces, &known).0
    }

    #[test]
    fn known_expansions_have_values() {
        let a = arg("\"$PWD/copy.md\"");
        assert_eq!(a.literal, None);
        assert_eq!(a.shown(), "$PWD/copy.md");
        assert_eq!(arg("$(pwd)").shown(), "$PWD");
        assert_eq!(arg("~/x").shown(), "/home/u/x");
        assert_eq!(arg("\"$HOME\"").shown(), "/home/u");
        assert_eq!(arg("$TMPDIR/scratch").shown(), "$TMPDIR/scratch");
        assert!(arg("$X/y").value.is_none());
        assert!(arg("$(ls)").value.is_none());
        assert_eq!(arg("--output=$F").option_text(), "--output=");
        assert_eq!(arg("'a b'").plain(), Some("a b"));
        assert!(arg("src/{a,b}").glob);
        assert!(!arg("'src/{a,b}'").glob);
        assert!(arg("*.py").glob);
        assert_eq!(arg("$'\\x72m'").value, None);
    }

    #[test]
    fn variable_names() {
        assert_eq!(variable_name("PATH"), Some("PATH"));
        assert_eq!(variable_name("BASH_CMDS[ls]"), Some("BASH_CMDS"));
        assert_eq!(variable_name("_x1"), Some("_x1"));
        assert_eq!(variable_name("1x"), None);
        assert_eq!(variable_name("$X"), None);
        assert_eq!(variable_name(""), None);
    }
}
