//! Programs that launch other programs (`env`, `nice`, `nohup`, `time`, `timeout`, `stdbuf`,
//! `xargs`, `find -exec`): the launched command is checked in turn. `find` also deletes and
//! writes by itself, so its expression is evaluated against the paths of `.git`.

use super::super::allowlist::variable_refusal;
use super::super::glob::{self, QChar};
use super::super::paths::{Cwd, Effect};
use super::super::walk::Checker;
use super::super::words::{Arg, PWD_MARK};
use super::super::{deny, PolicyDenial};
use super::means;
use super::options::{self, Spec};
use crate::path::normalize_lexically;

impl Checker<'_> {
    pub(crate) fn env(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "uCS",
            short_optional: "",
            long_values: &["unset", "chdir", "split-string"],
            long_optional: &["block-signal", "default-signal", "ignore-signal"],
            long_flags: &[
                "ignore-environment",
                "null",
                "debug",
                "list-signal-handling",
                "help",
                "version",
            ],
            permute: false,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        for item in &items {
            if item.is(Some('S'), None) || means(item, "split-string", &SPEC) {
                return deny("`env -S` splits a string into a command that cannot be checked; write the command out");
            }
            if item.is(Some('C'), None) || means(item, "chdir", &SPEC) {
                return deny("`env -C DIR` runs the command in another directory, which the policy cannot follow; use `cd DIR && command` inside the project");
            }
        }
        let operands = options::operands(&items);
        let mut rest = operands.as_slice();
        while let Some(first) = rest.first() {
            let text = first.option_text();
            let Some((name, value)) = text.split_once('=') else {
                break;
            };
            let value = first.literal.as_ref().map(|_| value);
            if let Some(reason) = variable_refusal(name, value) {
                return deny(format!("`env {}`: {reason}", first.shown()));
            }
            rest = &rest[1..];
        }
        if rest.is_empty() {
            return Ok(());
        }
        let launched: Vec<Arg> = rest.iter().map(|a| (*a).clone()).collect();
        self.launch("env", &launched)
    }

    /// `nice`, `nohup`, `time`, `timeout`, `stdbuf`: options, then the launched command.
    pub(crate) fn launcher(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        let spec = match name {
            "nice" => Spec {
                short_values: "n",
                long_values: &["adjustment"],
                ..Spec::default()
            },
            "time" => Spec {
                short_values: "fo",
                long_values: &["format", "output"],
                long_flags: &[
                    "append",
                    "portability",
                    "verbose",
                    "quiet",
                    "help",
                    "version",
                ],
                ..Spec::default()
            },
            "timeout" => Spec {
                short_values: "sk",
                long_values: &["signal", "kill-after"],
                long_flags: &[
                    "preserve-status",
                    "foreground",
                    "verbose",
                    "help",
                    "version",
                ],
                ..Spec::default()
            },
            "stdbuf" => Spec {
                short_values: "ioe",
                long_values: &["input", "output", "error"],
                ..Spec::default()
            },
            _ => Spec::default(),
        };
        let items = options::parse(args, &spec);
        if name == "time" {
            self.option_values_are("time", &items, Some('o'), Some("output"), Effect::Write)?;
        }
        let mut launched: Vec<Arg> = options::operands(&items).into_iter().cloned().collect();
        if name == "timeout" && !launched.is_empty() {
            launched.remove(0); // the duration
        }
        if launched.is_empty() {
            return Ok(());
        }
        self.launch(name, &launched)
    }

    pub(crate) fn xargs(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        const SPEC: Spec = Spec {
            short_values: "adEILnPs",
            short_optional: "eil",
            long_values: &[
                "arg-file",
                "delimiter",
                "max-args",
                "max-procs",
                "max-chars",
                "process-slot-var",
            ],
            long_optional: &["eof", "replace", "max-lines"],
            long_flags: &[
                "null",
                "interactive",
                "no-run-if-empty",
                "show-limits",
                "verbose",
                "exit",
                "open-tty",
                "help",
                "version",
            ],
            permute: false,
            single_dash_long: false,
        };
        let items = options::parse(args, &SPEC);
        for item in &items {
            if means(item, "process-slot-var", &SPEC) {
                if let Some(v) = item.value_arg() {
                    let name = v.option_text().to_string();
                    if let Some(reason) = variable_refusal(&name, None) {
                        return deny(format!("`xargs --process-slot-var={name}`: {reason}"));
                    }
                }
            }
        }
        let launched: Vec<Arg> = options::operands(&items).into_iter().cloned().collect();
        if launched.is_empty() {
            return Ok(()); // xargs runs echo
        }
        self.launch("xargs", &launched)
    }

    /// Checks a command another program launches.
    pub(crate) fn launch(&mut self, launcher: &str, argv: &[Arg]) -> Result<(), PolicyDenial> {
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

    pub(crate) fn find(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
        let mut i = 0;
        // Options before the start points.
        while let Some(a) = args.get(i) {
            match a.plain() {
                Some("-H" | "-L" | "-P") => i += 1,
                Some("-D") => i += 2,
                Some(o) if o.starts_with("-O") => i += 1,
                _ => break,
            }
        }
        let mut starts: Vec<&Arg> = Vec::new();
        while let Some(a) = args.get(i) {
            let v = a.option_text();
            if (v.starts_with('-') && v.len() > 1) || matches!(v, "(" | "!" | ")" | ",") {
                break;
            }
            starts.push(a);
            i += 1;
        }
        let mut parser = FindParser {
            args: &args[i..],
            at: 0,
            facts: FindFacts::default(),
        };
        let expr = if parser.args.is_empty() {
            Expr::Action(Action::Other)
        } else {
            parser.expression()?
        };
        if parser.at < parser.args.len() {
            return deny(format!(
                "`find`: could not read the expression at `{}`; check the parentheses and predicates",
                parser.args[parser.at].raw
            ));
        }
        let facts = parser.facts;
        for (predicate, file) in &facts.writes {
            self.check_target(&format!("find {predicate}"), file, Effect::Write)?;
        }
        for (command, launched) in &facts.launches {
            self.launch(&format!("find {command}"), launched)?;
        }
        let destructive = facts.deletes || facts.destructive_exec;
        if facts.files_from && (destructive || !facts.launches.is_empty()) {
            return deny("`find -files0-from` reads its start points from a file, which cannot be checked, while deleting or running commands; give the start points on the command line");
        }
        if !destructive && facts.launches.is_empty() {
            return Ok(());
        }
        let starts: Vec<Arg> = if starts.is_empty() {
            vec![Arg::fixed(".")]
        } else {
            starts.into_iter().cloned().collect()
        };
        for start in &starts {
            self.find_start(start, &expr, &facts, destructive)?;
        }
        Ok(())
    }

    /// Checks one start point of a `find` that deletes or runs commands.
    fn find_start(
        &self,
        start: &Arg,
        expr: &Expr,
        facts: &FindFacts,
        destructive: bool,
    ) -> Result<(), PolicyDenial> {
        let Some(value) = &start.value else {
            return Ok(());
        };
        let root = self.project.path();
        let Some(expanded) = glob::brace_expand(value) else {
            return Ok(());
        };
        for alternative in expanded {
            for cwd in &self.cwds {
                let Cwd::Known(dir) = cwd else { continue };
                let text: String = alternative
                    .iter()
                    .map(|q| q.c)
                    .collect::<String>()
                    .replace(PWD_MARK, &dir.to_string_lossy());
                if glob::has_glob(&alternative) {
                    // `find .* -delete`: a start point that may be .git.
                    let last: Vec<QChar> = alternative
                        .rsplit(|q| q.c == '/')
                        .next()
                        .unwrap_or(&[])
                        .to_vec();
                    if destructive && glob::glob_matches(&last, ".git", true) {
                        return deny(format!(
                            "`find {} …` may start at .git, the project's history, and delete it; give the start points you mean",
                            start.shown()
                        ));
                    }
                    continue;
                }
                let path = normalize_lexically(&dir.join(&text));
                let inside = path.starts_with(root);
                if !inside && !self.in_temp_dir(&path) {
                    if !destructive {
                        continue; // reading outside is the kernel's to confine
                    }
                    return deny(format!(
                        "`find {} …` deletes or runs commands on paths outside the project ({}); start the search inside the project",
                        start.shown(),
                        path.display()
                    ));
                }
                if path.starts_with(root.join(".git")) {
                    if destructive {
                        return deny(format!(
                            "`find {} …` would delete inside .git, the project's history, which the harness keeps; leave .git alone",
                            start.shown()
                        ));
                    }
                    continue;
                }
                if destructive && path == root {
                    if let Some(candidate) = reaches_git(expr, facts, &text) {
                        return deny(format!(
                            "`find {} …` would also delete {candidate} (.git holds the project's history, which the harness keeps); exclude it with `-path ./.git -prune -o … -delete` or narrow the search with -name",
                            start.shown()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a `find` expression does, besides its tests.
#[derive(Debug, Default)]
struct FindFacts {
    deletes: bool,
    destructive_exec: bool,
    files_from: bool,
    /// `-exec`-like predicates and the commands they run.
    launches: Vec<(String, Vec<Arg>)>,
    /// `-fprint`-like predicates and the files they write.
    writes: Vec<(String, Arg)>,
    min_depth: usize,
    max_depth: Option<usize>,
}

#[derive(Debug)]
enum Test {
    Name {
        pattern: Vec<QChar>,
        fold: bool,
    },
    Path {
        pattern: Vec<QChar>,
        fold: bool,
    },
    /// A test the policy does not evaluate: it may be true or false.
    Unknown,
    True,
    False,
}

#[derive(Debug)]
enum Action {
    /// `-delete`, or `-exec` of a program that deletes or moves.
    Destroys,
    Prune,
    Other,
}

#[derive(Debug)]
enum Expr {
    Test(Test),
    Action(Action),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
}

struct FindParser<'a> {
    args: &'a [Arg],
    at: usize,
    facts: FindFacts,
}

/// Programs that, given found paths, delete or move them (or may: shells and launchers).
const DESTROYERS: &[&str] = &[
    "rm", "rmdir", "unlink", "shred", "mv", "truncate", "bash", "sh", "xargs", "env", "nice",
    "timeout", "nohup", "git", "find",
];

impl FindParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.args.get(self.at).map(Arg::option_text)
    }

    fn expression(&mut self) -> Result<Expr, PolicyDenial> {
        let mut left = self.or()?;
        while self.peek() == Some(",") {
            self.at += 1;
            let right = self.or()?;
            left = Expr::Comma(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn or(&mut self) -> Result<Expr, PolicyDenial> {
        let mut left = self.and()?;
        while matches!(self.peek(), Some("-o" | "-or")) {
            self.at += 1;
            let right = self.and()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, PolicyDenial> {
        let mut left = self.unary()?;
        loop {
            match self.peek() {
                Some("-a" | "-and") => self.at += 1,
                Some(")" | "," | "-o" | "-or") | None => return Ok(left),
                Some(_) => {}
            }
            let right = self.unary()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Expr, PolicyDenial> {
        match self.peek() {
            Some("!" | "-not") => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some("(") => {
                self.at += 1;
                let inner = self.expression()?;
                if self.peek() != Some(")") {
                    return deny("`find`: a `(` is not closed; check the parentheses");
                }
                self.at += 1;
                Ok(inner)
            }
            _ => self.primary(),
        }
    }

    fn value(&mut self, predicate: &str) -> Result<&Arg, PolicyDenial> {
        let arg = self.args.get(self.at).ok_or_else(|| PolicyDenial {
            reason: format!("`find {predicate}` needs a value"),
        })?;
        self.at += 1;
        Ok(arg)
    }

    fn pattern(&mut self, predicate: &str) -> Result<Vec<QChar>, PolicyDenial> {
        let arg = self.value(predicate)?;
        // find matches the pattern itself, whatever the shell's quoting was; an unknown
        // pattern may match anything: a lone `*`.
        Ok(arg
            .value
            .as_ref()
            .map(|v| v.iter().map(|q| QChar::unquoted(q.c)).collect())
            .unwrap_or_else(|| vec![QChar::unquoted('*')]))
    }

    fn primary(&mut self) -> Result<Expr, PolicyDenial> {
        let Some(arg) = self.args.get(self.at) else {
            return deny("`find`: the expression ends too early");
        };
        let Some(predicate) = arg.plain().map(str::to_string) else {
            return deny(format!(
                "`find` predicate `{}` is computed; write it out",
                arg.raw
            ));
        };
        self.at += 1;
        let p = predicate.as_str();
        Ok(match p {
            "-name" | "-iname" => Expr::Test(Test::Name {
                pattern: self.pattern(p)?,
                fold: p == "-iname",
            }),
            "-path" | "-ipath" | "-wholename" | "-iwholename" => Expr::Test(Test::Path {
                pattern: self.pattern(p)?,
                fold: p.starts_with("-i"),
            }),
            "-maxdepth" | "-mindepth" => {
                let n = self
                    .value(p)?
                    .plain()
                    .and_then(|v| v.parse::<usize>().ok());
                if p == "-maxdepth" {
                    self.facts.max_depth = n;
                } else {
                    self.facts.min_depth = n.unwrap_or(0);
                }
                Expr::Test(Test::True)
            }
            "-regex" | "-iregex" | "-lname" | "-ilname" | "-type" | "-xtype" | "-user"
            | "-group" | "-uid" | "-gid" | "-perm" | "-size" | "-newer" | "-anewer"
            | "-cnewer" | "-samefile" | "-inum" | "-links" | "-mtime" | "-atime" | "-ctime"
            | "-mmin" | "-amin" | "-cmin" | "-used" | "-fstype" | "-context" => {
                self.value(p)?;
                Expr::Test(Test::Unknown)
            }
            _ if p.starts_with("-newer") && p.len() == 8 => {
                self.value(p)?;
                Expr::Test(Test::Unknown)
            }
            "-regextype" | "-printf" => {
                self.value(p)?;
                Expr::Test(Test::True)
            }
            "-empty" | "-readable" | "-writable" | "-executable" | "-nouser" | "-nogroup" => {
                Expr::Test(Test::Unknown)
            }
            "-true" => Expr::Test(Test::True),
            "-false" => Expr::Test(Test::False),
            "-depth" | "-d" | "-xdev" | "-mount" | "-noleaf" | "-ignore_readdir_race"
            | "-noignore_readdir_race" | "-daystart" | "-follow" | "-print" | "-print0"
            | "-ls" | "-quit" => Expr::Test(Test::True),
            "-files0-from" => {
                self.value(p)?;
                self.facts.files_from = true;
                Expr::Test(Test::True)
            }
            "-fprint" | "-fprint0" | "-fls" | "-fprintf" => {
                let file = self.value(p)?.clone();
                self.facts.writes.push((p.to_string(), file));
                if p == "-fprintf" {
                    self.value(p)?;
                }
                Expr::Test(Test::True)
            }
            "-delete" => {
                self.facts.deletes = true;
                Expr::Action(Action::Destroys)
            }
            "-prune" => Expr::Action(Action::Prune),
            "-exec" | "-execdir" | "-ok" | "-okdir" => {
                let start = self.at;
                while let Some(a) = self.args.get(self.at) {
                    if matches!(a.plain(), Some(";" | "+")) {
                        break;
                    }
                    self.at += 1;
                }
                if self.at >= self.args.len() {
                    return deny(format!("`find {p}` needs a command ended by `;` or `+`"));
                }
                let launched: Vec<Arg> = self.args[start..self.at].to_vec();
                self.at += 1;
                let program = launched
                    .first()
                    .and_then(Arg::plain)
                    .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
                    .unwrap_or_default();
                let destroys = DESTROYERS.contains(&program.as_str());
                self.facts.launches.push((p.to_string(), launched));
                if destroys {
                    self.facts.destructive_exec = true;
                    Expr::Action(Action::Destroys)
                } else {
                    Expr::Action(Action::Other)
                }
            }
            _ => {
                return deny(format!(
                    "`find {p}` is not a find predicate the policy knows; use the common ones (-name, -path, -type, -exec …)"
                ))
            }
        })
    }
}

/// What evaluating an expression on one path may do.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    can_be_true: bool,
    can_be_false: bool,
    destroys: bool,
    /// `-prune` runs on every way through the expression.
    surely_prunes: bool,
}

fn eval(expr: &Expr, name: &str, path: &str) -> Outcome {
    let known = |v: bool| Outcome {
        can_be_true: v,
        can_be_false: !v,
        destroys: false,
        surely_prunes: false,
    };
    match expr {
        Expr::Test(Test::Name { pattern, fold }) => known(matches(pattern, name, *fold)),
        Expr::Test(Test::Path { pattern, fold }) => known(matches(pattern, path, *fold)),
        Expr::Test(Test::True) => known(true),
        Expr::Test(Test::False) => known(false),
        Expr::Test(Test::Unknown) => Outcome {
            can_be_true: true,
            can_be_false: true,
            destroys: false,
            surely_prunes: false,
        },
        Expr::Action(Action::Destroys) => Outcome {
            can_be_true: true,
            can_be_false: true,
            destroys: true,
            surely_prunes: false,
        },
        Expr::Action(Action::Prune) => Outcome {
            surely_prunes: true,
            ..known(true)
        },
        Expr::Action(Action::Other) => Outcome {
            can_be_true: true,
            can_be_false: true,
            destroys: false,
            surely_prunes: false,
        },
        Expr::Not(e) => {
            let o = eval(e, name, path);
            Outcome {
                can_be_true: o.can_be_false,
                can_be_false: o.can_be_true,
                ..o
            }
        }
        Expr::And(a, b) => {
            let oa = eval(a, name, path);
            if !oa.can_be_true {
                return oa;
            }
            let ob = eval(b, name, path);
            Outcome {
                can_be_true: ob.can_be_true,
                can_be_false: oa.can_be_false || ob.can_be_false,
                destroys: oa.destroys || ob.destroys,
                surely_prunes: oa.surely_prunes || (!oa.can_be_false && ob.surely_prunes),
            }
        }
        Expr::Or(a, b) => {
            let oa = eval(a, name, path);
            if !oa.can_be_false {
                return oa;
            }
            let ob = eval(b, name, path);
            Outcome {
                can_be_true: oa.can_be_true || ob.can_be_true,
                can_be_false: ob.can_be_false,
                destroys: oa.destroys || ob.destroys,
                surely_prunes: oa.surely_prunes || (!oa.can_be_true && ob.surely_prunes),
            }
        }
        Expr::Comma(a, b) => {
            let oa = eval(a, name, path);
            let ob = eval(b, name, path);
            Outcome {
                destroys: oa.destroys || ob.destroys,
                surely_prunes: oa.surely_prunes || ob.surely_prunes,
                ..ob
            }
        }
    }
}

/// `find -name` and `-path` match without special leading dots (`*` matches `.git`).
fn matches(pattern: &[QChar], text: &str, fold: bool) -> bool {
    if fold {
        let lower: Vec<QChar> = pattern
            .iter()
            .map(|q| QChar {
                c: q.c.to_ascii_lowercase(),
                quoted: q.quoted,
            })
            .collect();
        glob::glob_matches(&lower, &text.to_ascii_lowercase(), false)
    } else {
        glob::glob_matches(pattern, text, false)
    }
}

/// Paths in a repository's `.git` (relative to `.git`), a sample of every kind of file in it.
const GIT_SAMPLE: &[&str] = &[
    "HEAD",
    "config",
    "index",
    "description",
    "packed-refs",
    "ORIG_HEAD",
    "FETCH_HEAD",
    "COMMIT_EDITMSG",
    "hooks",
    "hooks/pre-commit.sample",
    "info",
    "info/exclude",
    "logs",
    "logs/HEAD",
    "logs/refs/heads/main",
    "objects",
    "objects/4b",
    "objects/4b/825dc642cb6eb9a060e54bf8d69288fbee4904",
    "objects/pack",
    "objects/pack/pack-0123456789abcdef0123456789abcdef01234567.pack",
    "objects/pack/pack-0123456789abcdef0123456789abcdef01234567.idx",
    "objects/info",
    "refs",
    "refs/heads",
    "refs/heads/main",
    "refs/heads/master",
    "refs/tags",
];

/// The first path of `.git` (under a start point at the project root) that a destroying
/// action of `expr` may reach, honouring depth limits and `-prune`.
fn reaches_git(expr: &Expr, facts: &FindFacts, start: &str) -> Option<String> {
    let start = start.trim_end_matches('/');
    let start = if start.is_empty() { "/" } else { start };
    let join = |rest: &str| {
        if start == "/" {
            format!("/{rest}")
        } else {
            format!("{start}/{rest}")
        }
    };
    let in_depth =
        |depth: usize| depth >= facts.min_depth && facts.max_depth.is_none_or(|max| depth <= max);
    let git_path = join(".git");
    let at_git = eval(expr, ".git", &git_path);
    if in_depth(1) && at_git.destroys {
        return Some(git_path);
    }
    if at_git.surely_prunes {
        return None;
    }
    for rest in GIT_SAMPLE {
        let depth = 2 + rest.matches('/').count();
        if !in_depth(depth) {
            continue;
        }
        let name = rest.rsplit('/').next().unwrap_or(rest);
        let path = join(&format!(".git/{rest}"));
        if eval(expr, name, &path).destroys {
            return Some(path);
        }
    }
    None
}
