//! JSON as small models write it: where a value ends (string-aware, before it parses), and a
//! conservative repair of the slips that have only one possible meaning.
//!
//! Repaired, because the intent is unambiguous: raw newlines, tabs and other control characters
//! inside strings (the commonest slip when a model writes a file's content), a backslash before
//! a character JSON cannot escape (`"\d+"` in a grep pattern means `\\d+`), trailing commas before
//! `}` or `]`, and single-quoted strings (`{'name': 'bash'}`, Python's dict notation).
//! Not repaired, because a guess could change what runs: unquoted keys, missing commas or
//! brackets, Python's `True`/`None`, comments. Those come back to the model as errors.

/// Where a JSON value that starts at `start` (a `{` or `[`) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// The value ends just before this byte offset.
    Complete(usize),
    /// The text ends inside the value.
    Incomplete,
}

/// Finds the end of the bracketed value starting at `start`, counting brackets outside strings
/// (double- or single-quoted, with backslash escapes). Brackets are not matched by kind: a
/// mismatch is left for the parser to report.
pub(crate) fn extent(text: &str, start: usize) -> Extent {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut i = start;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return Extent::Complete(i + 1);
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    Extent::Incomplete
}

/// Parses `text` as JSON, repairing the slips listed in the module docs when the strict parse
/// fails. The error is the strict parser's, which names the line and column.
pub(crate) fn parse(text: &str) -> Result<serde_json::Value, String> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(strict) => match repair(text) {
            Some(fixed) => serde_json::from_str(&fixed).map_err(|_| strict.to_string()),
            None => Err(strict.to_string()),
        },
    }
}

/// The repaired text, or `None` when there was nothing to repair.
fn repair(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut changed = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => match c {
                '\\' => match chars.next() {
                    Some(e @ ('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't' | 'u')) => {
                        out.push('\\');
                        out.push(e);
                    }
                    Some('\'') if q == '\'' => {
                        out.push('\'');
                        changed = true;
                    }
                    Some(other) => {
                        out.push_str("\\\\");
                        changed = true;
                        push_in_string(&mut out, other, &mut changed);
                    }
                    None => out.push('\\'),
                },
                c if c == q => {
                    out.push('"');
                    quote = None;
                }
                '"' => {
                    // Only reachable inside a single-quoted string.
                    out.push_str("\\\"");
                    changed = true;
                }
                other => push_in_string(&mut out, other, &mut changed),
            },
            None => match c {
                '"' => {
                    out.push('"');
                    quote = Some('"');
                }
                '\'' => {
                    out.push('"');
                    quote = Some('\'');
                    changed = true;
                }
                ',' => {
                    let mut lookahead = chars.clone();
                    let next = lookahead.find(|c| !c.is_whitespace());
                    if matches!(next, Some('}' | ']')) {
                        changed = true;
                    } else {
                        out.push(',');
                    }
                }
                other => out.push(other),
            },
        }
    }
    changed.then_some(out)
}

/// Pushes a character that is inside a string, escaping raw control characters.
fn push_in_string(out: &mut String, c: char, changed: &mut bool) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => {
            out.push(c);
            return;
        }
    }
    *changed = true;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extent_skips_brackets_in_strings() {
        let t = r#"{"a": "}{", "b": ['x]', "y\"}"]} tail"#;
        assert_eq!(extent(t, 0), Extent::Complete(t.len() - 5));
        assert_eq!(extent(r#"{"a": [1, 2"#, 0), Extent::Incomplete);
        assert_eq!(extent("x [1]", 2), Extent::Complete(5));
    }

    #[test]
    fn strict_json_is_kept() {
        assert_eq!(parse(r#"{"a": 1}"#).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn unambiguous_slips_are_repaired() {
        let cases = [
            (
                "{\"content\": \"line 1\nline 2\tend\"}",
                json!({"content": "line 1\nline 2\tend"}),
            ),
            (r#"{"pattern": "\d+\.py"}"#, json!({"pattern": "\\d+\\.py"})),
            (r#"{"a": [1, 2,], "b": 3,}"#, json!({"a": [1, 2], "b": 3})),
            (
                r#"{'name': 'bash', 'arguments': {'command': 'echo "hi" it\'s'}}"#,
                json!({"name": "bash", "arguments": {"command": "echo \"hi\" it's"}}),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn ambiguous_slips_are_errors_with_a_position() {
        for text in [
            r#"{name: "bash"}"#,
            r#"{"a": 1 "b": 2}"#,
            r#"{"a": True}"#,
            r#"{"a": 1"#,
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains("line 1"), "{text}: {err}");
        }
    }

    #[test]
    fn commas_inside_strings_are_untouched() {
        assert_eq!(
            parse("{\"a\": \"x,}\",\n}").unwrap(),
            json!({"a": "x,}"}),
            "a trailing comma is removed, the one in the string kept"
        );
    }
}
