//! Brace expansion and glob matching on a word's characters, each marked quoted or not, the way
//! bash does them: so `mkdir -p src/{models,views}` is checked path by path, and
//! `rm -rf .[!.]*` is seen to reach `.git`.

/// One character of a word after quote removal. Quoted characters are never special.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QChar {
    pub(crate) c: char,
    pub(crate) quoted: bool,
}

impl QChar {
    pub(crate) fn unquoted(c: char) -> QChar {
        QChar { c, quoted: false }
    }

    pub(crate) fn quoted(c: char) -> QChar {
        QChar { c, quoted: true }
    }
}

/// The text of `chars`, quoting dropped.
pub(crate) fn text(chars: &[QChar]) -> String {
    chars.iter().map(|q| q.c).collect()
}

/// Whether `chars` holds an unquoted glob character (`*`, `?`, or a `[` closed later).
pub(crate) fn has_glob(chars: &[QChar]) -> bool {
    chars.iter().enumerate().any(|(i, q)| {
        !q.quoted
            && (q.c == '*'
                || q.c == '?'
                || (q.c == '[' && chars[i + 1..].iter().any(|r| !r.quoted && r.c == ']')))
    })
}

/// The most words one brace expansion may produce before the policy stops expanding (and takes
/// the word as unknown).
const MAX_EXPANSIONS: usize = 1024;

/// Expands unquoted braces (`{a,b}`, `{1..3}`, `{a..c}`), as bash does before globbing.
/// `None` when the expansion would produce more than [`MAX_EXPANSIONS`] words.
pub(crate) fn brace_expand(chars: &[QChar]) -> Option<Vec<Vec<QChar>>> {
    let mut out = Vec::new();
    expand_into(chars, &mut out)?;
    Some(out)
}

fn expand_into(chars: &[QChar], out: &mut Vec<Vec<QChar>>) -> Option<()> {
    let mut search_from = 0;
    while let Some(open) = find_unquoted(chars, '{', search_from) {
        let Some(close) = matching_brace(chars, open) else {
            break;
        };
        let inner = &chars[open + 1..close];
        let prefix = &chars[..open];
        let suffix = &chars[close + 1..];
        let alternatives = match split_top_level_commas(inner) {
            Some(parts) => parts,
            None => match sequence(inner) {
                Some(items) => items,
                None => {
                    search_from = open + 1;
                    continue;
                }
            },
        };
        for alternative in alternatives {
            let mut word = prefix.to_vec();
            word.extend_from_slice(&alternative);
            word.extend_from_slice(suffix);
            expand_into(&word, out)?;
            if out.len() > MAX_EXPANSIONS {
                return None;
            }
        }
        return Some(());
    }
    out.push(chars.to_vec());
    (out.len() <= MAX_EXPANSIONS).then_some(())
}

fn find_unquoted(chars: &[QChar], c: char, from: usize) -> Option<usize> {
    (from..chars.len()).find(|&i| chars[i].c == c && !chars[i].quoted)
}

fn matching_brace(chars: &[QChar], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, q) in chars.iter().enumerate().skip(open) {
        if q.quoted {
            continue;
        }
        match q.c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The comma-separated parts of a brace's inside, or `None` without a top-level comma.
fn split_top_level_commas(inner: &[QChar]) -> Option<Vec<Vec<QChar>>> {
    let mut parts = vec![Vec::new()];
    let mut depth = 0usize;
    let mut comma = false;
    for q in inner {
        if !q.quoted {
            match q.c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    comma = true;
                    parts.push(Vec::new());
                    continue;
                }
                _ => {}
            }
        }
        if let Some(last) = parts.last_mut() {
            last.push(*q);
        }
    }
    comma.then_some(parts)
}

/// `a..b` or `a..b..step` over integers or single letters.
fn sequence(inner: &[QChar]) -> Option<Vec<Vec<QChar>>> {
    if inner.iter().any(|q| q.quoted) {
        return None;
    }
    let text = text(inner);
    let parts: Vec<&str> = text.split("..").collect();
    let (from, to, step) = match parts.as_slice() {
        [a, b] => (*a, *b, 1i64),
        [a, b, s] => (*a, *b, s.parse::<i64>().ok()?.checked_abs()?.max(1)),
        _ => return None,
    };
    let as_words = |items: Vec<String>| {
        items
            .into_iter()
            .map(|s| s.chars().map(QChar::unquoted).collect())
            .collect()
    };
    if let (Ok(a), Ok(b)) = (from.parse::<i64>(), to.parse::<i64>()) {
        let count = (a - b).unsigned_abs() / step.unsigned_abs() + 1;
        if count > MAX_EXPANSIONS as u64 {
            return Some(vec![Vec::new(); MAX_EXPANSIONS + 1]);
        }
        let width =
            if from.starts_with('0') && from.len() > 1 || to.starts_with('0') && to.len() > 1 {
                from.len().max(to.len())
            } else {
                0
            };
        let mut items = Vec::new();
        let mut n = a;
        loop {
            items.push(format!("{n:0width$}"));
            if n == b {
                break;
            }
            n += if a < b { step } else { -step };
            if (a < b && n > b) || (a > b && n < b) {
                break;
            }
        }
        return Some(as_words(items));
    }
    let (mut a, mut b) = (from.chars(), to.chars());
    let (Some(x), None, Some(y), None) = (a.next(), a.next(), b.next(), b.next()) else {
        return None;
    };
    if !x.is_ascii_alphabetic() || !y.is_ascii_alphabetic() {
        return None;
    }
    let (lo, hi) = (x.min(y) as u8, x.max(y) as u8);
    let mut items: Vec<String> = (lo..=hi)
        .step_by(usize::try_from(step).ok()?)
        .map(|b| char::from(b).to_string())
        .collect();
    if x > y {
        items.reverse();
    }
    Some(as_words(items))
}

/// Whether the glob `pattern` matches `name` (one path component). With `leading_dot`, a `.` at
/// the start of `name` must be matched by a literal `.` (bash without `dotglob`); `find -name`
/// matches without it. A bracket expression that could match `.` is taken to match a leading
/// dot too, so the answer errs towards "matches".
pub(crate) fn glob_matches(pattern: &[QChar], name: &str, leading_dot: bool) -> bool {
    let name: Vec<char> = name.chars().collect();
    if leading_dot && name.first() == Some(&'.') {
        match pattern.first() {
            Some(q) if q.c == '.' => {}
            Some(q) if !q.quoted && q.c == '[' => {}
            _ => return false,
        }
    }
    matches_from(pattern, &name)
}

fn matches_from(pattern: &[QChar], name: &[char]) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    if first.quoted {
        return name.first() == Some(&first.c) && matches_from(rest, &name[1..]);
    }
    match first.c {
        '*' => (0..=name.len()).any(|k| matches_from(rest, &name[k..])),
        '?' => !name.is_empty() && matches_from(rest, &name[1..]),
        '[' => match bracket(rest) {
            Some((set, after)) => {
                !name.is_empty() && set.matches(name[0]) && matches_from(after, &name[1..])
            }
            None => name.first() == Some(&'[') && matches_from(rest, &name[1..]),
        },
        c => name.first() == Some(&c) && matches_from(rest, &name[1..]),
    }
}

/// A bracket expression: its members, and the rest of the pattern after the `]`.
struct Bracket {
    negated: bool,
    ranges: Vec<(char, char)>,
    /// A character class (`[:alpha:]`): taken to match anything.
    class: bool,
}

impl Bracket {
    fn matches(&self, c: char) -> bool {
        let inside = self.class || self.ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c));
        inside != self.negated
    }
}

fn bracket(after_open: &[QChar]) -> Option<(Bracket, &[QChar])> {
    let mut i = 0;
    let mut negated = false;
    if let Some(q) = after_open.first() {
        if !q.quoted && (q.c == '!' || q.c == '^') {
            negated = true;
            i = 1;
        }
    }
    let mut ranges = Vec::new();
    let mut class = false;
    let start = i;
    while let Some(q) = after_open.get(i) {
        if !q.quoted && q.c == ']' && i > start {
            return Some((
                Bracket {
                    negated,
                    ranges,
                    class,
                },
                &after_open[i + 1..],
            ));
        }
        if !q.quoted && q.c == '[' && after_open.get(i + 1).is_some_and(|n| n.c == ':') {
            class = true;
            let end = (i + 2..after_open.len().saturating_sub(1))
                .find(|&k| after_open[k].c == ':' && after_open[k + 1].c == ']')?;
            i = end + 2;
            continue;
        }
        let lo = q.c;
        if after_open
            .get(i + 1)
            .is_some_and(|d| d.c == '-' && !d.quoted)
            && after_open
                .get(i + 2)
                .is_some_and(|h| h.c != ']' || h.quoted)
        {
            let hi = after_open[i + 2].c;
            ranges.push((lo, hi));
            i += 3;
        } else {
            ranges.push((lo, lo));
            i += 1;
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn unquoted(s: &str) -> Vec<QChar> {
        s.chars().map(QChar::unquoted).collect()
    }

    fn expand(s: &str) -> Vec<String> {
        brace_expand(&unquoted(s))
            .unwrap()
            .iter()
            .map(|w| text(w))
            .collect()
    }

    #[test]
    fn braces_expand_like_bash() {
        assert_eq!(expand("src/{models,views}"), ["src/models", "src/views"]);
        assert_eq!(expand("a{b,c{d,e}}f"), ["abf", "acdf", "acef"]);
        assert_eq!(expand("f{1..3}"), ["f1", "f2", "f3"]);
        assert_eq!(expand("f{3..1}"), ["f3", "f2", "f1"]);
        assert_eq!(expand("{01..03}"), ["01", "02", "03"]);
        assert_eq!(expand("{a..c}"), ["a", "b", "c"]);
        assert_eq!(expand("{.git,src}"), [".git", "src"]);
        assert_eq!(expand("{a}"), ["{a}"]);
        assert_eq!(expand("x{}"), ["x{}"]);
        let quoted: Vec<QChar> = "{a,b}".chars().map(QChar::quoted).collect();
        assert_eq!(brace_expand(&quoted).unwrap().len(), 1);
        assert!(brace_expand(&unquoted("{1..100000}")).is_none());
        assert!(brace_expand(&unquoted(&"{a,b}".repeat(12))).is_none());
    }

    #[test]
    fn globs_match_like_bash() {
        let m = |p: &str, n: &str| glob_matches(&unquoted(p), n, true);
        assert!(m(".[!.]*", ".git"));
        assert!(m(".??*", ".git"));
        assert!(m(".*", ".git"));
        assert!(m(".g*", ".git"));
        assert!(m("[.]git", ".git"));
        assert!(!m("*", ".git"));
        assert!(!m("?git", ".git"));
        assert!(!m("*.py", ".git"));
        assert!(m("*", "src"));
        assert!(m("[a-c]*", "build"));
        assert!(!m("[!a-c]*", "build"));
        assert!(m("[[:alpha:]]*", "x"));
        assert!(glob_matches(&unquoted("*"), ".git", false));
        let quoted_star = vec![QChar::quoted('*')];
        assert!(!glob_matches(&quoted_star, "x", false));
        assert!(glob_matches(&quoted_star, "*", false));
        assert!(has_glob(&unquoted("a*")));
        assert!(!has_glob(&quoted_star));
        assert!(!has_glob(&unquoted("a[b")));
    }
}
