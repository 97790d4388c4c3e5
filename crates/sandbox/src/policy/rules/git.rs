//! `git`: local subcommands (network ones need the network), nothing that makes git run another
//! program (configuration that names programs through `-c`, `--config-env`, `git config`,
//! `clone --config`; `--exec-path`, `--upload-pack`, `ext::` URLs; `difftool`, `mergetool`,
//! `filter-branch`, `submodule foreach`, `bisect run`, `rebase --exec`), and nothing that
//! destroys or rewrites the history the harness keeps (`reset --hard <rev>`, `rebase`,
//! `commit --amend`, `branch -D/-f`, `checkout -B`, `push --force`, `reflog expire`,
//! `gc --prune`, `update-ref`, `replace`).
//!
//! Options are matched as prefixes wherever git's parse-options accepts abbreviations
//! (`git rebase --exe`).

use super::super::paths::Effect;
use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};
use super::options::abbreviates;

/// Subcommands that only work on the local repository.
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
    "check-attr",
    "for-each-ref",
    "verify-commit",
    "verify-tag",
    "archive",
];

/// Subcommands that reach another repository.
const NETWORK: &[&str] = &[
    "push",
    "fetch",
    "pull",
    "clone",
    "ls-remote",
    "remote",
    "submodule",
    "request-pull",
];

/// Configuration keys that only change how git behaves, never which program it runs.
fn safe_config_key(key: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "user.", "color.", "advice.", "log.", "status.", "i18n.", "blame.", "grep.", "format.",
        "rerere.", "column.",
    ];
    const EXACT: &[&str] = &[
        "init.defaultbranch",
        "commit.gpgsign",
        "tag.gpgsign",
        "pull.rebase",
        "pull.ff",
        "merge.ff",
        "merge.conflictstyle",
        "push.default",
        "push.autosetupremote",
        "branch.autosetupmerge",
        "branch.autosetuprebase",
        "branch.sort",
        "help.autocorrect",
        "core.autocrlf",
        "core.safecrlf",
        "core.quotepath",
        "core.filemode",
        "core.ignorecase",
        "core.eol",
        "core.abbrev",
        "core.whitespace",
        "core.precomposeunicode",
        "diff.renames",
        "diff.algorithm",
        "diff.noprefix",
        "diff.mnemonicprefix",
        "diff.colormoved",
        "diff.context",
        "diff.statgraphwidth",
        "fetch.prune",
        "safe.directory",
        "gc.auto",
        "commit.verbose",
        "commit.cleanup",
        "tag.sort",
        "rebase.autosquash",
        "rebase.autostash",
        "apply.whitespace",
        "feature.experimental",
        "index.version",
    ];
    let key = key.to_ascii_lowercase();
    PREFIXES.iter().any(|p| key.starts_with(p)) || EXACT.contains(&key.as_str())
}

fn config_refusal(how: &str, key: &str) -> PolicyDenial {
    PolicyDenial {
        reason: format!(
            "`git {how}` setting `{key}` is not allowed: settings such as core.*, alias.*, include.*, hooks, filters, pagers and editors can make git run programs; only settings like user.*, color.*, init.defaultBranch may be set"
        ),
    }
}

/// The harness's history may not be rewritten or thrown away.
fn history(what: &str, instead: &str) -> PolicyDenial {
    PolicyDenial {
        reason: format!(
            "`git {what}` rewrites or discards history, which the harness owns (it commits your work itself after each session); {instead}"
        ),
    }
}

impl Checker<'_> {
    pub(crate) fn git(&mut self, args: &[Arg]) -> Result<(), PolicyDenial> {
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
            i += 1;
            match v {
                "-c" => {
                    let setting = args.get(i).and_then(Arg::plain).unwrap_or("");
                    i += 1;
                    let key = setting.split('=').next().unwrap_or("");
                    if !safe_config_key(key) {
                        return Err(config_refusal("-c", setting));
                    }
                }
                _ if v.starts_with("--config-env") => {
                    return deny("`git --config-env` takes a setting from a variable, which cannot be checked; settings that run programs are not allowed, and others can be given with `git -c user.name=…`")
                }
                "--exec-path" | "--html-path" | "--man-path" | "--info-path" => {} // print a path
                _ if v.starts_with("--exec-path=")
                    || v.starts_with("--git-dir")
                    || v.starts_with("--work-tree")
                    || v.starts_with("--namespace")
                    || v.starts_with("--super-prefix")
                    || v.starts_with("--attr-source")
                    || v == "--bare" =>
                {
                    return deny(format!("`git {v}` points git at other programs or repositories; run git in the project as is"))
                }
                "-C" => {
                    let Some(dir) = args.get(i).and_then(Arg::plain) else {
                        return deny("`git -C` needs a plain directory");
                    };
                    if !self.read_inside(dir) {
                        return deny(format!("`git -C {dir}` runs git in a directory outside the project; run git in the project, or `git -C` a directory inside it"));
                    }
                    i += 1;
                }
                "--no-pager" | "-P" | "-p" | "--paginate" | "--no-replace-objects"
                | "--literal-pathspecs" | "--glob-pathspecs" | "--noglob-pathspecs"
                | "--icase-pathspecs" | "--no-optional-locks" | "--no-advice" | "--version"
                | "--help" | "-h" => {}
                _ if v.starts_with("--list-cmds=") => {}
                _ if v.starts_with('-') => {
                    return deny(format!(
                        "`git {v}` is not supported; use a plain git subcommand"
                    ))
                }
                _ => break v,
            }
        };
        let rest = &args[i..];
        let values: Vec<&str> = rest.iter().map(Arg::option_text).collect();
        fn long(v: &str) -> Option<&str> {
            v.strip_prefix("--")
                .map(|l| l.split('=').next().unwrap_or(""))
        }
        let has_long = |full: &str| {
            values
                .iter()
                .any(|v| long(v).is_some_and(|l| abbreviates(l, full)))
        };
        for v in &values {
            let runs = long(v).is_some_and(|l| {
                [
                    "upload-pack",
                    "receive-pack",
                    "exec",
                    "template",
                    "separate-git-dir",
                    "extcmd",
                ]
                .iter()
                .any(|d| abbreviates(l, d) && l.len() >= 2)
            });
            if runs || v.contains("ext::") || v.contains("fd::") {
                return deny(format!(
                    "`git {sub} {v}` makes git run another program or move the repository; it is not allowed"
                ));
            }
        }
        // Settings given to a new repository (`clone -c`, `--config`) follow the `-c` rules.
        if sub == "clone" {
            for (k, v) in values.iter().enumerate() {
                let config =
                    *v == "-c" || long(v).is_some_and(|l| abbreviates(l, "config") && l.len() >= 3);
                if !config {
                    continue;
                }
                let setting = match v.split_once('=') {
                    Some((_, s)) if v.starts_with("--") => Some(s),
                    _ => values.get(k + 1).copied(),
                };
                if let Some(setting) = setting {
                    let key = setting.split('=').next().unwrap_or("");
                    if !safe_config_key(key) {
                        return Err(config_refusal("clone --config", setting));
                    }
                }
            }
        }
        // Files written by `--output` (`diff`, `log`, `format-patch -o`, `archive -o`).
        for (k, v) in values.iter().enumerate() {
            let output = long(v).is_some_and(|l| {
                l.len() >= 3 && (abbreviates(l, "output") || abbreviates(l, "output-directory"))
            }) || (*v == "-o" && matches!(sub, "format-patch" | "archive"));
            if output {
                let file = match v.split_once('=') {
                    Some((_, f)) => Some(Arg::fixed(f)),
                    None => rest.get(k + 1).cloned(),
                };
                if let Some(file) = file {
                    self.check_target(&format!("git {sub} --output"), &file, Effect::Write)?;
                }
            }
        }
        self.git_history(sub, &values, has_long)?;
        // Directories git creates: `worktree add PATH`, `clone URL DIR`.
        let operands: Vec<&Arg> = rest
            .iter()
            .filter(|a| !a.option_text().starts_with('-'))
            .collect();
        let created = match (sub, operands.as_slice()) {
            ("worktree", [add, path, ..]) if add.plain() == Some("add") => Some(*path),
            ("clone", [_, dir, ..]) => Some(*dir),
            _ => None,
        };
        if let Some(dir) = created {
            self.check_target(&format!("git {sub}"), dir, Effect::Write)?;
        }
        match sub {
            "config" => return git_config(&values),
            "difftool" | "mergetool" => {
                return deny(format!("`git {sub}` runs external diff or merge programs; use `git diff` and edit the files"))
            }
            "filter-branch" | "filter-repo" | "replace" | "update-ref" | "prune" | "repack"
            | "commit-tree" | "read-tree" => {
                return Err(history(sub, "leave the history to the harness and change the files instead"))
            }
            "bisect" if values.first() == Some(&"run") => return deny(
                "`git bisect run` runs a command for every step; run `git bisect good/bad` by hand",
            ),
            "grep" if values.iter().any(|v| {
                v.starts_with("-O") || long(v).is_some_and(|l| abbreviates(l, "open-files-in-pager") && l.len() >= 2)
            }) => {
                return deny("`git grep -O` opens the matches in a pager program, which the policy cannot check; use plain `git grep -n` and read the files")
            }
            "submodule" if values.first() == Some(&"foreach") => {
                return deny("`git submodule foreach` runs a shell string; run the commands directly")
            }
            "remote" => {
                let listing = values.is_empty()
                    || values.iter().all(|v| matches!(*v, "-v" | "--verbose"))
                    || matches!(values.first(), Some(&"get-url" | &"show"));
                if listing || self.context.allow_network {
                    return Ok(());
                }
            }
            "archive" if has_long("remote") => {
                if !self.context.allow_network {
                    return deny("`git archive --remote` reaches the network; network access is not available in this sandbox");
                }
                return Ok(());
            }
            _ => {}
        }
        if LOCAL.contains(&sub) {
            return Ok(());
        }
        if NETWORK.contains(&sub) {
            if self.context.allow_network {
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

    /// Forms that move the branch back past the harness's commits or throw history away.
    fn git_history(
        &self,
        sub: &str,
        values: &[&str],
        has_long: impl Fn(&str) -> bool,
    ) -> Result<(), PolicyDenial> {
        let short = |letter: char| {
            values
                .iter()
                .any(|v| v.starts_with('-') && !v.starts_with("--") && v[1..].contains(letter))
        };
        let operands: Vec<&str> = values
            .iter()
            .copied()
            .filter(|v| !v.starts_with('-'))
            .collect();
        match sub {
            "reset" => {
                let mode = ["hard", "soft", "keep", "merge", "mixed"]
                    .into_iter()
                    .find(|m| has_long(m));
                let target = operands.first().copied();
                let moves = match (mode, target) {
                    (_, None) | (_, Some("HEAD")) | (_, Some("@")) => false,
                    (Some(_), Some(_)) => true,
                    (None, Some(t)) => looks_like_revision(t) && !values.contains(&"--"),
                };
                if moves {
                    return Err(history(
                        &format!("reset {}", values.join(" ")),
                        "to discard changes to files use `git restore FILE` (or `git reset --hard` alone for everything); to undo a change, edit the files",
                    ));
                }
            }
            "rebase" => {
                return Err(history(
                    "rebase",
                    "leave the history as it is; to change code, edit the files",
                ))
            }
            "commit" if has_long("amend") => {
                return Err(history(
                    "commit --amend",
                    "make a new commit instead (or none: the harness commits your work)",
                ))
            }
            "checkout" | "switch"
                if short('B') || short('C') || has_long("force-create") || has_long("orphan") =>
            {
                return Err(history(
                    &format!("{sub} {}", values.join(" ")),
                    "create a new branch with `-b`/`-c` if you need one",
                ))
            }
            "branch"
                if short('D')
                    || short('f')
                    || short('M')
                    || short('m')
                    || has_long("force")
                    || has_long("move") =>
            {
                return Err(history(
                    &format!("branch {}", values.join(" ")),
                    "create new branches, do not move or delete existing ones",
                ))
            }
            "push"
                if short('f')
                    || short('d')
                    || has_long("force")
                    || has_long("force-with-lease")
                    || has_long("force-if-includes")
                    || has_long("mirror")
                    || has_long("delete")
                    || has_long("prune")
                    || operands
                        .iter()
                        .any(|o| o.starts_with('+') || o.starts_with(':')) =>
            {
                return Err(history(
                    &format!("push {}", values.join(" ")),
                    "push without forcing or deleting",
                ))
            }
            "pull" if short('r') || has_long("rebase") => {
                return Err(history("pull --rebase", "pull with a merge, or not at all"))
            }
            "reflog" if matches!(operands.first(), Some(&"expire" | &"delete")) => {
                return Err(history(
                    &format!("reflog {}", operands.first().copied().unwrap_or("")),
                    "`git reflog` alone shows it",
                ))
            }
            "gc" if has_long("prune") => {
                return Err(history(
                    "gc --prune",
                    "run `git gc` without --prune if you must (it keeps recent objects)",
                ))
            }
            "symbolic-ref" if operands.len() >= 2 || short('d') || has_long("delete") => {
                return Err(history(
                    "symbolic-ref",
                    "switch branches with `git switch` if you need to",
                ))
            }
            "init" | "clone" if has_long("separate-git-dir") => {
                return Err(history(
                    &format!("{sub} --separate-git-dir"),
                    "keep the repository where it is",
                ))
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether a `git reset` operand names a commit rather than a path.
fn looks_like_revision(t: &str) -> bool {
    t.contains('~')
        || t.contains('^')
        || t.contains("@{")
        || matches!(t, "ORIG_HEAD" | "FETCH_HEAD" | "MERGE_HEAD")
        || t.starts_with("origin/")
        || t.starts_with("refs/")
        || (t.len() >= 7 && t.chars().all(|c| c.is_ascii_hexdigit()))
}

fn git_config(values: &[&str]) -> Result<(), PolicyDenial> {
    let long = |v: &str| -> Option<String> {
        v.strip_prefix("--")
            .map(|l| l.split('=').next().unwrap_or("").to_string())
    };
    let has = |full: &str| {
        values
            .iter()
            .any(|v| long(v).is_some_and(|l| abbreviates(&l, full) && l.len() >= 2))
    };
    let reading = values.iter().any(|v| matches!(*v, "-l" | "get" | "list"))
        || [
            "get",
            "get-all",
            "get-regexp",
            "list",
            "get-urlmatch",
            "get-color",
            "get-colorbool",
        ]
        .iter()
        .any(|o| values.iter().any(|v| long(v).is_some_and(|l| l == *o)));
    let unsetting = values.iter().any(|v| matches!(*v, "unset"))
        || has("unset")
        || has("unset-all")
        || has("remove-section");
    if reading {
        return Ok(());
    }
    if has("global")
        || has("system")
        || has("file")
        || has("edit")
        || has("blob")
        || values.iter().any(|v| matches!(*v, "-f" | "-e" | "edit"))
    {
        return deny("`git config --global` (or --system, --file, --edit, --blob) changes configuration outside the project's own, which git reads for every repository; set only the project's configuration (`git config user.name …`)");
    }
    if unsetting {
        return Ok(());
    }
    let key = values
        .iter()
        .find(|v| !v.starts_with('-') && !matches!(**v, "set" | "unset"))
        .copied()
        .unwrap_or("");
    if safe_config_key(key) {
        return Ok(());
    }
    Err(config_refusal("config", key))
}
