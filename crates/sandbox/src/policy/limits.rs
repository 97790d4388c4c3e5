//! Limits on what the policy will parse, so that no command can crash or stall the harness.
//!
//! brush's tokenizer, its program parser and its word parser are recursive descent parsers: a
//! `{ { … } }` nest 2000 deep (14 KB) or a 10 000-deep `$( $( … ) )` overflows any ordinary
//! stack, and a stack overflow aborts the whole process. So before anything is handed to brush:
//!
//! - the command's size is capped ([`MAX_COMMAND_BYTES`]);
//! - the tokenizer's recursion is bounded by counting every `$(`, `$[` and `${` in the text,
//!   quoted or not ([`MAX_EXPANSIONS`]): the tokenizer recurses only into those, so their count
//!   bounds its depth whatever the quoting;
//! - the program parser's recursion is bounded from brush's own tokens ([`token_nesting`]), so
//!   quoting, comments and here-documents are seen exactly as the parser will see them;
//! - the word parser's recursion is bounded by a scan that follows its grammar
//!   ([`word_nesting`]); where the scan cannot tell, it counts a level rather than skip one;
//! - the nesting of everything parsed along one path (a `bash -c` string inside a command
//!   substitution inside a command) is summed and capped ([`MAX_NESTING`]), and the total text
//!   parsed for one check is capped ([`MAX_PARSED_BYTES`]);
//! - all of it runs on a thread of its own with a [`PARSER_STACK_BYTES`] stack, about twenty
//!   times what the deepest accepted command needs in a debug build.

use brush_parser::Token;

use super::{deny, PolicyDenial};

/// The longest command the policy parses. Long file contents belong in `write_file`.
pub(crate) const MAX_COMMAND_BYTES: usize = 128 * 1024;

/// How deep compound commands, substitutions and quotes may nest, summed along one path
/// through the command (an overestimate: where the count cannot tell, it counts).
pub(crate) const MAX_NESTING: usize = 100;

/// How many `$(`, `$[` and `${` one parsed text may hold.
pub(crate) const MAX_EXPANSIONS: usize = 1000;

/// How many words and operators one parsed text may hold.
pub(crate) const MAX_TOKENS: usize = 20_000;

/// How many commands one pipeline may hold.
pub(crate) const MAX_PIPELINE: usize = 100;

/// How deep `bash -c` strings and substitutions may nest before the command is refused.
pub(crate) const MAX_DEPTH: usize = 8;

/// How much text one check may parse in all (substitutions and `bash -c` strings are parsed
/// again on their own).
pub(crate) const MAX_PARSED_BYTES: usize = 16 * MAX_COMMAND_BYTES;

/// The parser thread's stack. Pages are only committed as they are touched.
pub(crate) const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Refuses a command too long to parse.
pub(crate) fn check_size(command: &str) -> Result<(), PolicyDenial> {
    if command.len() > MAX_COMMAND_BYTES {
        return deny(format!(
            "the command is {} bytes long, over the {MAX_COMMAND_BYTES}-byte limit of what the policy parses; write long file contents with write_file and run a script, or split the command",
            command.len()
        ));
    }
    if command.contains('\0') {
        return deny("the command contains a NUL byte");
    }
    Ok(())
}

/// Refuses a text whose `$(`, `$[` and `${` are too many for the tokenizer to be sure to cope.
pub(crate) fn check_expansions(text: &str) -> Result<(), PolicyDenial> {
    let count = text
        .as_bytes()
        .windows(2)
        .filter(|w| w[0] == b'$' && matches!(w[1], b'(' | b'[' | b'{'))
        .count();
    if count > MAX_EXPANSIONS {
        return deny(format!(
            "the command holds {count} substitutions and expansions (`$(`, `${{`, `$[`), over the limit of {MAX_EXPANSIONS}; split it into smaller commands or a script"
        ));
    }
    Ok(())
}

/// Runs `f` on a thread with a [`PARSER_STACK_BYTES`] stack and waits for it. A thread that
/// cannot be started, or a panic inside the parser, is a refusal, never a crash.
pub(crate) fn on_parser_thread<F>(f: F) -> Result<(), PolicyDenial>
where
    F: FnOnce() -> Result<(), PolicyDenial> + Send,
{
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("policy-parser".into())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, f);
        match handle {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                deny("the policy's parser failed on this command (an internal error); simplify the command or split it")
            }),
            Err(e) => deny(format!(
                "the policy could not start its parser thread ({e}); try the command again"
            )),
        }
    })
}

/// What the program parser may recurse into, as seen in brush's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    /// `(`: a subshell, a function's parentheses, an arithmetic command, a case pattern.
    Paren,
    /// `{`
    Brace,
    /// `if`
    If,
    /// `while`, `until`, `for`, `select`
    Loop,
    /// `case`
    Case,
    /// `[[`
    Test,
    /// `!`, `&&` and `||` inside `[[ ]]`
    TestOperator,
}

/// An upper bound of how deep brush's program parser recurses on `tokens`.
///
/// Openers are counted wherever they appear (an `if` given as an argument counts too);
/// closers only where the parser must take them as closers (after `;`, `&` or a newline, where
/// a reserved word cannot be a command name), and a closer closes everything opened after its
/// opener. So the count can be too high, never too low.
pub(crate) fn token_nesting(tokens: &[Token]) -> usize {
    let mut open: Vec<Open> = Vec::new();
    let mut extra = 0usize; // `coproc`: one more level around the next command
    let mut max = 0usize;
    let mut after_separator = false;
    let mut previous_in = false;
    let mut previous_close_paren = false;
    for token in tokens {
        match token {
            Token::Operator(op, _) => {
                match op.as_str() {
                    "(" => open.push(Open::Paren),
                    ")" => {
                        // A `)` inside `case` ends a pattern unless a `(` is open inside it.
                        if let Some(i) = open
                            .iter()
                            .rposition(|o| matches!(o, Open::Paren | Open::Case))
                        {
                            if open[i] == Open::Paren {
                                open.truncate(i);
                            }
                        }
                    }
                    "&&" | "||" if in_test(&open) => open.push(Open::TestOperator),
                    _ => {}
                }
                after_separator = matches!(op.as_str(), ";" | "&" | "\n" | ";;" | ";&" | ";;&");
                previous_in = false;
                previous_close_paren = op == ")";
            }
            Token::Word(word, _) => {
                let closer = match word.as_str() {
                    "}" if after_separator => Some(Open::Brace),
                    "fi" if after_separator => Some(Open::If),
                    "done" if after_separator => Some(Open::Loop),
                    "esac" if after_separator || previous_in || previous_close_paren => {
                        Some(Open::Case)
                    }
                    "]]" => Some(Open::Test),
                    _ => None,
                };
                match (closer, word.as_str()) {
                    (Some(kind), _) => {
                        if let Some(i) = open.iter().rposition(|o| *o == kind) {
                            open.truncate(i);
                        }
                    }
                    (None, "{") => open.push(Open::Brace),
                    (None, "if") => open.push(Open::If),
                    (None, "while" | "until" | "for" | "select") => open.push(Open::Loop),
                    (None, "case") => open.push(Open::Case),
                    (None, "[[") => open.push(Open::Test),
                    (None, "!") if in_test(&open) => open.push(Open::TestOperator),
                    (None, "coproc") => extra += 1,
                    _ => {}
                }
                after_separator = false;
                previous_in = word == "in";
                previous_close_paren = false;
            }
        }
        max = max.max(open.len() + extra);
    }
    max
}

fn in_test(open: &[Open]) -> bool {
    open.iter()
        .rev()
        .find(|o| !matches!(o, Open::TestOperator | Open::Paren))
        .is_some_and(|o| *o == Open::Test)
}

/// How a word's text is read: as a shell word, or as a here-document body (quotes literal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WordMode {
    Word,
    HereDoc,
}

/// What brush's word parser may recurse into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nest {
    /// `"…"` (also `$"…"`)
    Quote,
    /// `$(…)`: command text, where parentheses nest
    Command,
    /// The outer level of `$((…))`, which the parser may also read as `$( (…) )`.
    ArithmeticOuter,
    /// The inner level of `$((…))`.
    ArithmeticInner,
    /// `$[…]`
    ArithmeticBracket,
    /// `${…}`
    Parameter,
    /// A parenthesis inside any of the above, or an array index or extended glob.
    Paren,
}

/// An upper bound of how deep brush's word parser recurses on `text` (a word, or a
/// here-document body). Closers close only what they must close; quotes that do not close are
/// taken as literal characters and the scan goes on, so a level is counted rather than skipped.
pub(crate) fn word_nesting(text: &str, mode: WordMode) -> usize {
    let chars: Vec<char> = text.chars().collect();
    let mut stack: Vec<Nest> = Vec::new();
    let mut max = 0usize;
    let mut i = 0usize;
    let at = |k: usize| chars.get(k).copied();
    while let Some(c) = at(i) {
        let top = stack.last().copied();
        let in_quote = top == Some(Nest::Quote);
        let heredoc_top = top.is_none() && mode == WordMode::HereDoc;
        match c {
            '\\' => {
                i += 2;
                continue;
            }
            '`' => {
                i = skip_backquoted(&chars, i + 1);
                continue;
            }
            '$' => match at(i + 1) {
                Some('(') if at(i + 2) == Some('(') => {
                    stack.push(Nest::ArithmeticOuter);
                    stack.push(Nest::ArithmeticInner);
                    i += 3;
                }
                Some('(') => {
                    stack.push(Nest::Command);
                    i += 2;
                }
                Some('[') => {
                    stack.push(Nest::ArithmeticBracket);
                    i += 2;
                }
                Some('{') => {
                    stack.push(Nest::Parameter);
                    i += 2;
                }
                Some('\'') if !in_quote && !heredoc_top => {
                    i = skip_single_quoted(&chars, i + 2, true);
                }
                Some('"') if !in_quote && !heredoc_top => {
                    stack.push(Nest::Quote);
                    i += 2;
                }
                _ => i += 1,
            },
            '"' if in_quote => {
                stack.pop();
                i += 1;
            }
            _ if in_quote || heredoc_top => i += 1,
            '\'' => i = skip_single_quoted(&chars, i + 1, false),
            '"' => {
                stack.push(Nest::Quote);
                i += 1;
            }
            '(' => {
                stack.push(Nest::Paren);
                i += 1;
            }
            ')' => {
                match top {
                    Some(Nest::Paren | Nest::Command | Nest::ArithmeticOuter) => {
                        stack.pop();
                    }
                    Some(Nest::ArithmeticInner) => {
                        stack.pop();
                        if at(i + 1) == Some(')') {
                            stack.pop();
                            i += 1;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            '}' if top == Some(Nest::Parameter) => {
                stack.pop();
                i += 1;
            }
            ']' if top == Some(Nest::ArithmeticBracket) => {
                stack.pop();
                i += 1;
            }
            _ => i += 1,
        }
        max = max.max(stack.len());
    }
    max
}

/// The index after a single-quoted text starting at `from` (just after the opening quote). An
/// unclosed quote is a literal character: the scan goes on right after it.
fn skip_single_quoted(chars: &[char], from: usize, ansi_c: bool) -> usize {
    let mut k = from;
    while let Some(&c) = chars.get(k) {
        if ansi_c && c == '\\' {
            k += 2;
            continue;
        }
        if c == '\'' {
            return k + 1;
        }
        k += 1;
    }
    from
}

/// The index after a backquoted command starting at `from` (just after the opening
/// backquote); an unclosed one is a literal character.
fn skip_backquoted(chars: &[char], from: usize) -> usize {
    let mut k = from;
    while let Some(&c) = chars.get(k) {
        if c == '\\' {
            k += 2;
            continue;
        }
        if c == '`' {
            return k + 1;
        }
        k += 1;
    }
    from
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(text: &str) -> Vec<Token> {
        let options = super::super::words::parser_options();
        brush_parser::uncached_tokenize_str(text, &options.tokenizer_options()).unwrap_or_default()
    }

    #[test]
    fn token_nesting_counts_compound_commands() {
        assert_eq!(token_nesting(&tokens("echo hi")), 0);
        assert_eq!(token_nesting(&tokens("{ { echo; }; }")), 2);
        assert_eq!(token_nesting(&tokens("( ( echo ) )")), 2);
        assert_eq!(token_nesting(&tokens("if a; then if b; then c; fi; fi")), 2);
        assert_eq!(
            token_nesting(&tokens("if a; then b; fi; if c; then d; fi")),
            1
        );
        assert_eq!(
            token_nesting(&tokens("case x in a) echo;; (b) echo;; esac")),
            2
        );
        assert_eq!(token_nesting(&tokens("[[ ! ( a && b ) ]]")), 4);
        // Quoted and commented closers do not close anything.
        assert_eq!(token_nesting(&tokens("( ( echo ')))' ( (")), 4);
        assert_eq!(token_nesting(&tokens("{ echo }; { echo }; {")), 3);
        assert_eq!(token_nesting(&tokens("( echo # )\n(")), 2);
    }

    #[test]
    fn word_nesting_follows_the_word_grammar() {
        assert_eq!(word_nesting("plain", WordMode::Word), 0);
        assert_eq!(word_nesting("\"$(echo \"$(date)\")\"", WordMode::Word), 4);
        assert_eq!(word_nesting("'$( $( $('", WordMode::Word), 0);
        assert_eq!(word_nesting("'$( $( $('", WordMode::HereDoc), 3);
        assert_eq!(word_nesting("$(( (1 + 2) * 3 ))", WordMode::Word), 3);
        assert_eq!(word_nesting("${a:-${b:-x}}", WordMode::Word), 2);
        // A quoted `)` does not close the substitution.
        assert_eq!(word_nesting("$(echo ')' $(x))", WordMode::Word), 2);
        // An unclosed quote is literal and the scan goes on.
        assert_eq!(word_nesting("$(echo ' $( $(", WordMode::Word), 3);
    }
}
