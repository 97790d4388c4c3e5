//! `git`: local subcommands only (unless the network is allowed), and nothing that makes git
//! run another program (`-c`, aliases, `--exec-path`, `--upload-pack`, hooks through config).

use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};

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
            match v {
                "-c" | "--config-env" => {
                    return deny("`git -c` can make git run arbitrary programs (core.sshCommand, aliases, hooks); run git without it")
                }
                _ if v.starts_with("--exec-path") || v.starts_with("--git-dir") || v.starts_with("--work-tree") || v.starts_with("--config-env") || v.starts_with("--namespace") => {
                    return deny(format!("`git {v}` points git at other programs or repositories; run git in the project as is"))
                }
                "-C" => {
                    let Some(dir) = args.get(i + 1).and_then(Arg::plain) else {
                        return deny("`git -C` needs a plain directory");
                    };
                    if !self.read_inside(dir) {
                        return deny(format!("`git -C {dir}` leaves the project"));
                    }
                    i += 2;
                }
                "--no-pager" | "-P" | "--no-replace-objects" | "--literal-pathspecs" | "--no-optional-locks" | "--version" | "--help" | "-h" => i += 1,
                _ if v.starts_with('-') => return deny(format!("`git {v}` is not supported; use a plain git subcommand")),
                _ => break v,
            }
        };
        let rest = &args[i + 1..];
        let values: Vec<&str> = rest
            .iter()
            .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
            .collect();
        for v in &values {
            if v.starts_with("--upload-pack")
                || v.starts_with("--receive-pack")
                || v.starts_with("--exec=")
                || *v == "--exec"
                || v.contains("ext::")
                || v.starts_with("--template")
            {
                return deny(format!(
                    "`git {sub} {v}` makes git run another program; it is not allowed"
                ));
            }
        }
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
            "rebase",
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
        ];
        const NETWORK: &[&str] = &[
            "push",
            "fetch",
            "pull",
            "clone",
            "ls-remote",
            "remote",
            "submodule",
            "archive",
            "request-pull",
        ];
        match sub {
            "config" => return git_config(rest),
            "rebase" if values.iter().any(|v| *v == "-x" || v.starts_with("--exec")) => {
                return deny("`git rebase --exec` runs commands; rebase without it")
            }
            "bisect" if values.first() == Some(&"run") => return deny(
                "`git bisect run` runs a command for every step; run `git bisect good/bad` by hand",
            ),
            "grep"
                if values
                    .iter()
                    .any(|v| v.starts_with("-O") || v.starts_with("--open-files-in-pager")) =>
            {
                return deny("`git grep -O` runs a pager program; use plain `git grep`")
            }
            "remote" => {
                let listing = values.is_empty()
                    || values.iter().all(|v| matches!(*v, "-v" | "--verbose"))
                    || matches!(values.first(), Some(&"get-url"));
                if listing || self.network {
                    return Ok(());
                }
            }
            "archive" if !values.iter().any(|v| v.starts_with("--remote")) => return Ok(()),
            _ => {}
        }
        if LOCAL.contains(&sub) {
            return Ok(());
        }
        if NETWORK.contains(&sub) {
            if self.network {
                if sub == "submodule" && values.first() == Some(&"foreach") {
                    return deny(
                        "`git submodule foreach` runs a shell string; run the commands directly",
                    );
                }
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
}

pub(crate) fn git_config(rest: &[Arg]) -> Result<(), PolicyDenial> {
    let values: Vec<&str> = rest
        .iter()
        .map(|a| a.literal.as_deref().unwrap_or(&a.raw))
        .collect();
    let reading = values.iter().any(|v| {
        matches!(
            *v,
            "--get" | "--get-all" | "--get-regexp" | "-l" | "--list" | "get" | "list"
        )
    });
    if reading {
        return Ok(());
    }
    if values.iter().any(|v| {
        matches!(
            *v,
            "--global" | "--system" | "-f" | "--file" | "-e" | "--edit" | "edit" | "--blob"
        )
    }) {
        return deny("`git config` may only change the project's own configuration (no --global/--system/--file/--edit)");
    }
    let key = values
        .iter()
        .find(|v| !v.starts_with('-') && *v != &"set" && *v != &"unset")
        .copied()
        .unwrap_or("");
    let key_lower = key.to_ascii_lowercase();
    const SAFE_PREFIXES: &[&str] = &[
        "user.",
        "init.",
        "color.",
        "advice.",
        "commit.gpgsign",
        "tag.gpgsign",
        "pull.rebase",
        "merge.ff",
        "log.",
        "status.",
        "push.default",
        "branch.autosetup",
        "help.autocorrect",
    ];
    if SAFE_PREFIXES.iter().any(|p| key_lower.starts_with(p)) {
        return Ok(());
    }
    deny(format!(
        "`git config {key}` is not allowed: settings such as core.*, alias.*, include.*, hooks and filters can make git run programs; only user.*, init.*, color.* and similar may be set"
    ))
}
