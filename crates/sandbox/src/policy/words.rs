//! Words: the value of an argument when it is fixed, and the text checks every word gets.

use brush_parser::word::{WordPiece, WordPieceWithSource};

use super::{deny, PolicyDenial};

/// One argument word: its source text and, when it has no expansions, its value.
#[derive(Debug, Clone)]
pub(crate) struct Arg {
    pub(crate) raw: String,
    /// The value after quote removal, when the word is a fixed string (no `$`, no substitution,
    /// no tilde). Glob characters may remain; see `glob`.
    pub(crate) literal: Option<String>,
    /// Unquoted glob or brace characters are present.
    pub(crate) glob: bool,
}

impl Arg {
    /// The value, when fixed and free of globbing.
    pub(crate) fn plain(&self) -> Option<&str> {
        if self.glob {
            None
        } else {
            self.literal.as_deref()
        }
    }
}

pub(crate) fn parser_options() -> brush_parser::ParserOptions {
    brush_parser::ParserOptions {
        // `bash -c` starts without extglob.
        enable_extended_globbing: false,
        ..brush_parser::ParserOptions::default()
    }
}

/// Arithmetic evaluates array subscripts, and `$(...)` inside them runs; refuse any.
pub(crate) fn arithmetic(expr: &str) -> Result<(), PolicyDenial> {
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

/// Builds the literal value of a word from its pieces. `literal` becomes `None` at the first
/// piece that expands at run time; `cooked` collects the fixed text with `\0` standing for
/// expansions; `glob` records unquoted glob or brace characters.
pub(crate) fn literal_of(
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
pub(crate) fn has_glob(t: &str) -> bool {
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

pub(crate) fn push(literal: &mut Option<String>, cooked: &mut String, text: &str) {
    if let Some(l) = literal {
        l.push_str(text);
    }
    cooked.push_str(text);
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
