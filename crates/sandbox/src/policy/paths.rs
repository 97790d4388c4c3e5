//! Where a command writes: every path a command writes or deletes is checked from every
//! directory the shell may be in.
//!
//! - A path the policy cannot evaluate (`"$OUT/x"`, `$(mktemp)`) is left to the kernel, which
//!   confines writes to the project and the temp dir whatever the policy says.
//! - A known path (fixed, or built from `$PWD`, `~`, `$HOME`, `$TMPDIR`, brace expansion) must be
//!   inside the project (and not protected), in the temp dir, or a sink such as `/dev/null`.
//! - History is kept whatever the kernel allows: nothing may be written into `.git`, no glob
//!   may reach it, and the project directory itself (or a directory holding it) may not be
//!   deleted by any spelling (`.`, `./`, `"$PWD"`, `../project`, its absolute path).

use std::path::{Path, PathBuf};

use super::glob::{self, QChar};
use super::walk::Checker;
use super::words::{Arg, PWD_MARK, TMP_MARK};
use super::{deny, PolicyDenial};
use crate::path::{normalize_lexically, Access};

/// A directory the shell may be in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cwd {
    Known(PathBuf),
    /// After `cd` to a directory the policy cannot evaluate.
    Unknown,
}

/// What a command does to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Creates or changes it.
    Write,
    /// Removes it (or moves it away).
    Delete,
}

/// One spelling of a path after brace expansion.
enum Spelling {
    /// The value is not known.
    Unknown,
    /// In the temp dir (`$TMPDIR/...` with the temp dir's path unknown).
    Temp,
    /// A path without glob characters.
    Fixed(String),
    /// A path with unquoted glob characters.
    Glob(Vec<QChar>),
}

const SINKS: &[&str] = &[
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "/dev/zero",
];

impl Checker<'_> {
    /// Checks a path argument that `program` writes or deletes.
    pub(crate) fn check_target(
        &self,
        program: &str,
        arg: &Arg,
        effect: Effect,
    ) -> Result<(), PolicyDenial> {
        let Some(value) = &arg.value else {
            return Ok(());
        };
        let Some(expanded) = glob::brace_expand(value) else {
            return Ok(());
        };
        for cwd in &self.cwds {
            for alternative in &expanded {
                match spelling(alternative, cwd) {
                    Spelling::Unknown | Spelling::Temp => {}
                    Spelling::Fixed(path) => self.check_fixed(program, arg, cwd, &path, effect)?,
                    Spelling::Glob(pattern) => {
                        self.check_glob(program, arg, cwd, &pattern, effect)?
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks a path given as text inside another program's script (sed `w FILE`, awk
    /// `print > "FILE"`).
    pub(crate) fn check_target_text(
        &self,
        program: &str,
        path: &str,
        effect: Effect,
    ) -> Result<(), PolicyDenial> {
        self.check_target(program, &Arg::fixed(path), effect)
    }

    /// Whether `path` (to read or run) stays inside the project from every directory the shell
    /// may be in. From an unknown directory a relative path is taken to be fine.
    pub(crate) fn read_inside(&self, path: &str) -> bool {
        self.cwds.iter().all(|cwd| match cwd {
            Cwd::Known(dir) => {
                self.project.resolve_from(dir, path, Access::Read).is_ok()
                    || self.in_temp_dir(&normalize_lexically(&dir.join(path)))
            }
            Cwd::Unknown => {
                !Path::new(path).is_absolute() || self.project.resolve(path, Access::Read).is_ok()
            }
        })
    }

    fn check_fixed(
        &self,
        program: &str,
        arg: &Arg,
        cwd: &Cwd,
        path: &str,
        effect: Effect,
    ) -> Result<(), PolicyDenial> {
        if SINKS.contains(&path)
            || path
                .strip_prefix("/dev/fd/")
                .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        {
            return Ok(());
        }
        let dir = match cwd {
            Cwd::Known(dir) => dir.clone(),
            Cwd::Unknown if Path::new(path).is_absolute() => PathBuf::from("/"),
            Cwd::Unknown => return Ok(()),
        };
        let root = self.project.path();
        let lexical = normalize_lexically(&dir.join(path));
        let shown = arg.shown();
        if effect == Effect::Delete && root.starts_with(&lexical) {
            return deny(delete_root_message(program, &shown, &lexical, root));
        }
        if lexical.starts_with(root) {
            if self.in_git(&lexical) {
                return deny(git_message(program, &shown));
            }
            return match self.project.resolve_from(&dir, path, Access::Write) {
                Ok(physical) if effect == Effect::Delete && root.starts_with(&physical) => {
                    deny(delete_root_message(program, &shown, &physical, root))
                }
                Ok(physical) if self.in_git(&physical) => deny(git_message(program, &shown)),
                Ok(_) => Ok(()),
                Err(e) => deny(format!("{}: {e}", subject(program, &shown))),
            };
        }
        if self.in_temp_dir(&lexical) {
            return Ok(());
        }
        deny(self.outside_message(program, &shown, &lexical))
    }

    /// A glob is checked component by component: the fixed directories before its first glob
    /// component as a fixed path, and that component against what it could match there (`.git`
    /// at the project root, the project's own directory in a directory above it).
    fn check_glob(
        &self,
        program: &str,
        arg: &Arg,
        cwd: &Cwd,
        pattern: &[QChar],
        effect: Effect,
    ) -> Result<(), PolicyDenial> {
        let shown = arg.shown();
        let absolute = pattern.first().is_some_and(|q| q.c == '/');
        let mut position = match cwd {
            Cwd::Known(dir) if !absolute => dir.clone(),
            _ if absolute => PathBuf::from("/"),
            _ => return Ok(()),
        };
        let components: Vec<&[QChar]> = pattern
            .split(|q| q.c == '/')
            .filter(|c| !c.is_empty())
            .collect();
        let root = self.project.path();
        let mut after_glob = false;
        for component in components {
            if !glob::has_glob(component) {
                match glob::text(component).as_str() {
                    "." => {}
                    ".." if after_glob => {
                        return deny(format!(
                            "{}: `..` after a glob could climb anywhere; write the paths out",
                            subject(program, &shown)
                        ))
                    }
                    ".." => {
                        position.pop();
                    }
                    name => position.push(name),
                }
                continue;
            }
            if after_glob {
                continue;
            }
            after_glob = true;
            let inside = position.starts_with(root);
            if inside && self.in_git(&position) {
                return deny(git_message(program, &shown));
            }
            if position == root && glob::glob_matches(component, ".git", true) {
                return deny(format!(
                    "{}: the pattern `{}` also matches .git, the project's history, which the harness keeps and which may not be changed or deleted; name the files you mean (for example `.cache .pytest_cache`)",
                    subject(program, &shown),
                    glob::text(component)
                ));
            }
            if root.starts_with(&position) && position != root {
                let next = root
                    .strip_prefix(&position)
                    .ok()
                    .and_then(|rest| rest.components().next())
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .unwrap_or_default();
                if glob::glob_matches(component, &next, true) {
                    return deny(if effect == Effect::Delete {
                        delete_root_message(program, &shown, &position.join(&next), root)
                    } else {
                        self.outside_message(program, &shown, &position)
                    });
                }
            }
            if !inside && !self.in_temp_dir(&position) {
                return deny(self.outside_message(program, &shown, &position));
            }
        }
        if !after_glob {
            // Every component was fixed after all (quoted glob characters).
            return self.check_fixed(program, arg, cwd, &position.to_string_lossy(), effect);
        }
        Ok(())
    }

    fn in_git(&self, path: &Path) -> bool {
        path.starts_with(self.project.path().join(".git"))
    }

    /// Whether `path` is in the commands' temp dir (when its path is known).
    pub(crate) fn in_temp_dir(&self, path: &Path) -> bool {
        self.context
            .temp_dir
            .as_ref()
            .is_some_and(|t| path.starts_with(normalize_lexically(t)))
    }

    fn outside_message(&self, program: &str, shown: &str, path: &Path) -> String {
        format!(
            "{} writes outside the project ({}); only the project directory and $TMPDIR (the run's private temp directory) are writable, so write inside the project or under \"$TMPDIR\"",
            subject(program, shown),
            path.display()
        )
    }
}

/// Resolves the markers of one brace alternative for one working directory.
fn spelling(chars: &[QChar], cwd: &Cwd) -> Spelling {
    if chars.first().is_some_and(|q| q.c == TMP_MARK) {
        return Spelling::Temp;
    }
    let mut out: Vec<QChar> = Vec::with_capacity(chars.len());
    for q in chars {
        match q.c {
            PWD_MARK => match cwd {
                Cwd::Known(dir) => {
                    out.extend(dir.to_string_lossy().chars().map(QChar::quoted));
                }
                Cwd::Unknown => return Spelling::Unknown,
            },
            TMP_MARK => return Spelling::Unknown,
            _ => out.push(*q),
        }
    }
    if glob::has_glob(&out) {
        Spelling::Glob(out)
    } else {
        Spelling::Fixed(glob::text(&out))
    }
}

/// How a message names what was refused: `` `rm -rf x` `` or "output redirection to x".
fn subject(program: &str, shown: &str) -> String {
    if program == ">" {
        format!("output redirection to {shown}")
    } else {
        format!("`{program} {shown}`")
    }
}

fn git_message(program: &str, shown: &str) -> String {
    format!(
        "{} would change .git, which is protected: it holds the project's history, which the harness keeps; it may not be written or deleted directly (use git commands such as `git add`, `git restore`, `git stash`)",
        subject(program, shown)
    )
}

fn delete_root_message(program: &str, shown: &str, path: &Path, root: &Path) -> String {
    let what = if path == root {
        "the project directory itself".to_string()
    } else {
        format!("{}, which holds the project", path.display())
    };
    format!(
        "{} would delete {what}, with its history; delete the files or directories you mean by name (for example `rm -rf build dist`)",
        subject(program, shown)
    )
}
