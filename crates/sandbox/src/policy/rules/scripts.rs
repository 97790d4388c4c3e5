//! Programs with a script language of their own that can run commands or write files:
//! `sed` (`e`, `s///e`, `w`, `s///w`), `awk` (`system()`, pipes, `print > FILE`), `sqlite3`
//! (`.shell`, `.system`, `.load`, `.output`). Their scripts are read for those features; a
//! script in a file (`sed -f`, `awk -f`, `sqlite3 -init`) runs like a script in the project.

use super::super::paths::Effect;
use super::super::walk::{Checker, Stdin};
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::means;
use super::options::{self, Item, Spec};

/// What a script does beyond editing text.
#[derive(Debug, PartialEq, Eq)]
enum Effectful {
    /// Runs a shell command (the text says which feature).
    Runs(&'static str),
    /// Writes a file.
    Writes(String),
}

impl Checker<'_> {
    pub(crate) fn sed(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "efl",
            short_optional: "i",
            long_values: &["expression", "file", "line-length"],
            long_optional: &["in-place"],
            long_flags: &[
                "quiet",
                "silent",
                "debug",
                "posix",
                "regexp-extended",
                "separate",
                "sandbox",
                "unbuffered",
                "null-data",
                "zero-terminated",
                "follow-symlinks",
                "binary",
                "help",
                "version",
            ],
            permute: true,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        let in_place = items
            .iter()
            .any(|i| i.is(Some('i'), None) || means(i, "in-place", &SPEC));
        let sandboxed = items.iter().any(|i| means(i, "sandbox", &SPEC));
        let mut scripts: Vec<String> = Vec::new();
        let mut script_given = false;
        for item in &items {
            if item.is(Some('e'), None) || means(item, "expression", &SPEC) {
                script_given = true;
                if let Some(v) = item.value_arg() {
                    scripts.push(v.literal.clone().unwrap_or(v.raw.clone()));
                }
            } else if item.is(Some('f'), None) || means(item, "file", &SPEC) {
                script_given = true;
            }
        }
        let mut files = options::operands(&items);
        if !script_given && !files.is_empty() {
            let script = files.remove(0);
            scripts.push(script.literal.clone().unwrap_or(script.raw.clone()));
        }
        if !sandboxed {
            for script in &scripts {
                for effect in sed_effects(script) {
                    match effect {
                        Effectful::Runs(feature) => {
                            return deny(format!(
                                "the sed script `{script}` uses {feature}, which runs shell commands; use sed only to edit text (or add --sandbox) and run commands directly"
                            ))
                        }
                        Effectful::Writes(path) => self.check_target_text("sed w", &path, Effect::Write)?,
                    }
                }
            }
        }
        if in_place {
            for file in files {
                self.check_target("sed -i", file, Effect::Write)?;
            }
        }
        Ok(())
    }

    pub(crate) fn awk(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "fvFEiel",
            short_optional: "dDLoOpM",
            long_values: &[
                "file",
                "assign",
                "field-separator",
                "exec",
                "include",
                "load",
                "source",
            ],
            long_optional: &["dump-variables", "debug", "lint", "pretty-print", "profile"],
            long_flags: &[
                "characters-as-bytes",
                "traditional",
                "copyright",
                "gen-pot",
                "help",
                "bignum",
                "use-lc-numeric",
                "non-decimal-data",
                "optimize",
                "no-optimize",
                "posix",
                "re-interval",
                "sandbox",
                "version",
                "csv",
            ],
            permute: false,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        if items
            .iter()
            .any(|i| i.is(Some('l'), None) || means(i, "load", &SPEC))
        {
            return deny(format!(
                "`{name} -l`/`--load` loads a shared library into awk; use plain awk"
            ));
        }
        let sandboxed = items.iter().any(|i| means(i, "sandbox", &SPEC));
        for (letter, long) in [
            ('d', "dump-variables"),
            ('o', "pretty-print"),
            ('p', "profile"),
        ] {
            self.option_values_are(name, &items, Some(letter), Some(long), Effect::Write)?;
        }
        let mut programs: Vec<String> = Vec::new();
        let mut from_file = false;
        for item in &items {
            if item.is(Some('e'), None) || means(item, "source", &SPEC) {
                if let Some(v) = item.value_arg() {
                    programs.push(v.literal.clone().unwrap_or(v.raw.clone()));
                }
            } else if item.is(Some('f'), None)
                || item.is(Some('E'), None)
                || means(item, "file", &SPEC)
                || means(item, "exec", &SPEC)
            {
                from_file = true;
            }
        }
        if programs.is_empty() && !from_file {
            if let Some(Item::Operand(p)) = items.iter().find(|i| matches!(i, Item::Operand(_))) {
                programs.push(p.literal.clone().unwrap_or(p.raw.clone()));
            }
        }
        if sandboxed {
            return Ok(());
        }
        for program in &programs {
            for effect in awk_effects(program) {
                match effect {
                    Effectful::Runs(feature) => {
                        return deny(format!(
                            "the awk program uses {feature}, which runs programs or loads code that cannot be checked; use awk only to process text (pipe its output to other commands in the shell)"
                        ))
                    }
                    Effectful::Writes(path) => {
                        self.check_target_text(&format!("{name} print >"), &path, Effect::Write)?
                    }
                }
            }
        }
        Ok(())
    }

    pub(crate) fn sqlite3(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "",
            short_optional: "",
            long_values: &[
                "cmd",
                "init",
                "lookaside",
                "maxsize",
                "mmap",
                "newline",
                "nonce",
                "nullvalue",
                "pagecache",
                "separator",
                "vfs",
                "A",
            ],
            long_optional: &[],
            long_flags: &[],
            permute: true,
            single_dash_long: true,
        };
        let stdin = std::mem::take(&mut self.stdin);
        let items = options::parse(args, &SPEC);
        let given = |item: &Item<'_>| match item {
            Item::Long { given, .. } => given.clone(),
            _ => String::new(),
        };
        if items.iter().any(|i| given(i) == "safe") {
            return Ok(());
        }
        if items.iter().any(|i| given(i) == "unsafe-testing") {
            return deny("`sqlite3 -unsafe-testing` enables functions that can harm the database files and the process; use sqlite3 without it");
        }
        let mut texts: Vec<String> = Vec::new();
        for item in &items {
            if given(item) == "cmd" {
                if let Some(v) = item.value_arg() {
                    texts.push(v.literal.clone().unwrap_or(v.raw.clone()));
                }
            }
        }
        let operands = options::operands(&items);
        if let Some(database) = operands.first() {
            if database.plain() != Some(":memory:") && database.plain() != Some("") {
                self.check_target("sqlite3", database, Effect::Write)?;
            }
        }
        for sql in operands.iter().skip(1) {
            texts.push(sql.literal.clone().unwrap_or(sql.raw.clone()));
        }
        match stdin {
            Stdin::Text(t) => texts.push(t),
            Stdin::Computed => {}
            Stdin::File(_) | Stdin::Inherited => {}
        }
        for text in &texts {
            for effect in sqlite_effects(text) {
                match effect {
                    Effectful::Runs(feature) => {
                        return deny(format!(
                            "the sqlite3 input uses {feature}, which runs programs or loads code; use SQL and plain dot-commands (or add -safe)"
                        ))
                    }
                    Effectful::Writes(path) => {
                        self.check_target_text("sqlite3", &path, Effect::Write)?
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a sed script does beyond editing text: `e` and `s///e` run commands, `w`, `W` and
/// `s///w` write files. Anything it cannot read is taken as text, never skipped over code.
fn sed_effects(script: &str) -> Vec<Effectful> {
    let chars: Vec<char> = script.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let rest_of_line = |from: usize| -> (String, usize) {
        let mut k = from;
        while chars.get(k).is_some_and(|c| *c == ' ' || *c == '\t') {
            k += 1;
        }
        let start = k;
        while chars.get(k).is_some_and(|c| *c != '\n') {
            k += 1;
        }
        (chars[start..k].iter().collect(), k)
    };
    // Skips a delimited part (`/re/`, the parts of `s`), honouring backslashes.
    let delimited = |from: usize, delim: char| -> usize {
        let mut k = from;
        while let Some(&c) = chars.get(k) {
            if c == '\\' {
                k += 2;
                continue;
            }
            if c == delim {
                return k + 1;
            }
            k += 1;
        }
        k
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ';' || c == '}' {
            i += 1;
            continue;
        }
        // Addresses: numbers, `$`, `/re/`, `\cREc`, ranges, steps, `!`.
        loop {
            match chars.get(i) {
                Some(d)
                    if d.is_ascii_digit()
                        || matches!(d, '$' | ',' | '~' | '+' | '!' | ' ' | '\t') =>
                {
                    i += 1
                }
                Some('/') => i = delimited(i + 1, '/'),
                Some('\\') => match chars.get(i + 1) {
                    Some(&d) => i = delimited(i + 2, d),
                    None => i += 1,
                },
                Some('I' | 'M') if i > 0 && chars[i - 1] == '/' => i += 1,
                _ => break,
            }
        }
        let Some(&command) = chars.get(i) else { break };
        i += 1;
        match command {
            '{' | '=' | 'd' | 'D' | 'g' | 'G' | 'h' | 'H' | 'n' | 'N' | 'p' | 'P' | 'x' | 'z'
            | 'F' | 'l' | 'L' | 'q' | 'Q' => {
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_digit() || *d == ' ')
                {
                    i += 1;
                }
            }
            '#' | ':' | 'a' | 'i' | 'c' | 'r' | 'R' | 'b' | 't' | 'T' | 'v' => {
                // Text, a label or a file name to the end of the line (with `\` continuing
                // `a`, `i`, `c`). Labels may also end at `;`.
                let label = matches!(command, 'b' | 't' | 'T' | ':' | 'v');
                while let Some(&d) = chars.get(i) {
                    if d == '\n' || (label && d == ';') {
                        break;
                    }
                    if d == '\\' && matches!(command, 'a' | 'i' | 'c') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                }
            }
            'e' => {
                out.push(Effectful::Runs("the `e` command"));
                i = rest_of_line(i).1;
            }
            'w' | 'W' => {
                let (file, end) = rest_of_line(i);
                out.push(Effectful::Writes(file));
                i = end;
            }
            's' | 'y' => {
                let Some(&delim) = chars.get(i) else { break };
                i = delimited(i + 1, delim);
                i = delimited(i, delim);
                if command == 'y' {
                    continue;
                }
                // Flags, up to the end of the command.
                while let Some(&f) = chars.get(i) {
                    match f {
                        'e' => {
                            out.push(Effectful::Runs("the `e` flag of `s`"));
                            i += 1;
                        }
                        'w' => {
                            let (file, end) = rest_of_line(i + 1);
                            out.push(Effectful::Writes(file));
                            i = end;
                            break;
                        }
                        ';' | '\n' | '}' | '#' => break,
                        _ => i += 1,
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// What an awk program does beyond processing text: `system()`, pipes to and from commands
/// (`print | "cmd"`, `"cmd" | getline`, `|&`) and `@load` run code; `print > "file"` writes.
fn awk_effects(program: &str) -> Vec<Effectful> {
    let tokens = awk_tokens(program);
    let mut out = Vec::new();
    let mut in_print = false;
    let mut depth = 0usize;
    for (k, token) in tokens.iter().enumerate() {
        let next = tokens.get(k + 1);
        match token {
            AwkToken::Word(w) if w == "system" && next == Some(&AwkToken::Punct("(".into())) => {
                out.push(Effectful::Runs("`system()`"));
            }
            AwkToken::Word(w) if w == "print" || w == "printf" => {
                in_print = true;
                depth = 0;
            }
            AwkToken::Word(w) if w == "@load" => {
                out.push(Effectful::Runs("`@load` (it loads a shared library)"))
            }
            AwkToken::Punct(p) => match p.as_str() {
                "(" => depth += 1,
                ")" => depth = depth.saturating_sub(1),
                ";" | "\n" | "{" | "}" => in_print = false,
                "|&" => out.push(Effectful::Runs("a two-way pipe `|&`")),
                "|" if next == Some(&AwkToken::Word("getline".into())) => {
                    out.push(Effectful::Runs("`command | getline`"));
                }
                "|" if in_print && depth == 0 => {
                    out.push(Effectful::Runs("a pipe from `print` to a command"));
                }
                // A computed file name is left to the kernel.
                ">" | ">>" if in_print && depth == 0 => {
                    if let Some(AwkToken::Str(file)) = next {
                        out.push(Effectful::Writes(file.clone()));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AwkToken {
    Word(String),
    Str(String),
    Number,
    Regex,
    Punct(String),
}

/// Splits an awk program into tokens: strings, regular expressions (where an operand may
/// start), comments dropped.
fn awk_tokens(program: &str) -> Vec<AwkToken> {
    let chars: Vec<char> = program.chars().collect();
    let mut tokens: Vec<AwkToken> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
            '#' => {
                while chars.get(i).is_some_and(|d| *d != '\n') {
                    i += 1;
                }
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while let Some(&d) = chars.get(i) {
                    if d == '\\' {
                        if let Some(&e) = chars.get(i + 1) {
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                        i += 2;
                        continue;
                    }
                    i += 1;
                    if d == '"' {
                        break;
                    }
                    s.push(d);
                }
                tokens.push(AwkToken::Str(s));
            }
            '/' if regex_may_start(tokens.last()) => {
                i += 1;
                let mut in_class = false;
                while let Some(&d) = chars.get(i) {
                    i += 1;
                    match d {
                        '\\' => i += 1,
                        '[' => in_class = true,
                        ']' => in_class = false,
                        '/' if !in_class => break,
                        '\n' => break,
                        _ => {}
                    }
                }
                tokens.push(AwkToken::Regex);
            }
            _ if c.is_ascii_alphabetic() || c == '_' || c == '@' => {
                let start = i;
                i += 1;
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '_')
                {
                    i += 1;
                }
                tokens.push(AwkToken::Word(chars[start..i].iter().collect()));
            }
            _ if c.is_ascii_digit() || c == '.' => {
                while chars
                    .get(i)
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    i += 1;
                }
                tokens.push(AwkToken::Number);
            }
            _ => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = if matches!(
                    two.as_str(),
                    "|&" | ">>"
                        | "||"
                        | "&&"
                        | "=="
                        | "!="
                        | "<="
                        | ">="
                        | "++"
                        | "--"
                        | "+="
                        | "-="
                        | "*="
                        | "/="
                        | "%="
                        | "^="
                        | "!~"
                ) {
                    two
                } else {
                    c.to_string()
                };
                i += op.chars().count();
                tokens.push(AwkToken::Punct(op));
            }
        }
    }
    tokens
}

/// A `/` starts a regular expression unless it follows an operand (then it divides).
fn regex_may_start(previous: Option<&AwkToken>) -> bool {
    match previous {
        None | Some(AwkToken::Regex) => true,
        Some(AwkToken::Word(w)) => matches!(
            w.as_str(),
            "print" | "printf" | "return" | "in" | "case" | "getline" | "if" | "while"
        ),
        Some(AwkToken::Str(_)) | Some(AwkToken::Number) => false,
        Some(AwkToken::Punct(p)) => !matches!(p.as_str(), ")" | "]" | "$" | "++" | "--"),
    }
}

/// What sqlite3 input (SQL and dot-commands) does beyond querying the database.
fn sqlite_effects(text: &str) -> Vec<Effectful> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some(command) = line.strip_prefix('.') {
            let mut words = command.split_whitespace();
            let name = words.next().unwrap_or("");
            let argument = words.next().unwrap_or("").trim_matches(['"', '\'']);
            match name {
                "shell" | "system" => out.push(Effectful::Runs("`.shell`/`.system`")),
                "load" => out.push(Effectful::Runs("`.load`")),
                "excel" => out.push(Effectful::Runs("`.excel`")),
                "output" | "once" | "log" | "trace" | "save" | "backup" | "clone" | "open"
                | "import" | "read" => {
                    if argument.starts_with('|') {
                        out.push(Effectful::Runs("a `|command` file name"));
                    } else if matches!(argument, "-e" | "-x" | "--bom" | "-w") && name == "once" {
                        out.push(Effectful::Runs(
                            "`.once -e`/`-x` (it opens another program)",
                        ));
                    } else if !matches!(name, "import" | "read")
                        && !argument.is_empty()
                        && !argument.starts_with('-')
                        && !matches!(argument, "stdout" | "stderr" | "off" | ":memory:")
                    {
                        out.push(Effectful::Writes(argument.to_string()));
                    }
                }
                _ => {}
            }
            continue;
        }
        let lower = line.to_ascii_lowercase();
        if lower.contains("load_extension") {
            out.push(Effectful::Runs("`load_extension()`"));
        }
        if lower
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| w == "edit")
            && lower.contains("edit(")
        {
            out.push(Effectful::Runs("`edit()` (it opens an editor)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(effects: &[Effectful]) -> bool {
        effects.iter().any(|e| matches!(e, Effectful::Runs(_)))
    }

    #[test]
    fn sed_scripts() {
        assert!(sed_effects("s/a/b/g").is_empty());
        assert!(sed_effects("1,20p").is_empty());
        assert!(sed_effects("/^#/d; s|x|y|").is_empty());
        assert!(sed_effects("$a\\\nexec e rm").is_empty());
        assert!(sed_effects("s/e/E/g").is_empty());
        assert!(runs(&sed_effects("1e rm -f x")));
        assert!(runs(&sed_effects("e")));
        assert!(runs(&sed_effects("s/x/rm y/e")));
        assert!(runs(&sed_effects("/x/{s/a/b/;e\n}")));
        assert_eq!(
            sed_effects("s/a/b/w out.txt"),
            [Effectful::Writes("out.txt".into())]
        );
        assert_eq!(
            sed_effects("/x/w /etc/passwd"),
            [Effectful::Writes("/etc/passwd".into())]
        );
        assert!(runs(&sed_effects("s/a/b/gpe")));
    }

    #[test]
    fn awk_programs() {
        assert!(awk_effects("{ print $1 }").is_empty());
        assert!(awk_effects("$3 > 5 { print $1 > \"/dev/stderr\" }")
            .iter()
            .all(|e| matches!(e, Effectful::Writes(p) if p == "/dev/stderr")));
        assert!(awk_effects("/a|b/ { n++ } END { print n }").is_empty());
        assert!(awk_effects("{ print ($1 > $2) }").is_empty());
        assert!(awk_effects("{ x = a / b / c }").is_empty());
        assert!(runs(&awk_effects("BEGIN { system(\"rm -f x\") }")));
        assert!(runs(&awk_effects("{ print | \"sh\" }")));
        assert!(runs(&awk_effects("BEGIN { \"date\" | getline d }")));
        assert!(runs(&awk_effects("BEGIN { cmd |& getline }")));
        assert_eq!(
            awk_effects("{ print > \"out.txt\" }"),
            [Effectful::Writes("out.txt".into())]
        );
    }

    #[test]
    fn sqlite_input() {
        assert!(sqlite_effects("select 1;").is_empty());
        assert!(sqlite_effects(".tables\n.schema").is_empty());
        assert!(runs(&sqlite_effects(".shell rm -f x")));
        assert!(runs(&sqlite_effects("  .system ls")));
        assert!(runs(&sqlite_effects(".load ./x.so")));
        assert!(runs(&sqlite_effects("select load_extension('x');")));
        assert!(runs(&sqlite_effects(".output |sh")));
        assert_eq!(
            sqlite_effects(".output /etc/x"),
            [Effectful::Writes("/etc/x".into())]
        );
    }
}
