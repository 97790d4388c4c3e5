//! The harness's own git, which the agent can neither hijack nor destroy.
//!
//! - **Never the agent's git.** Harness git runs as a plain child process (not in the agent's
//!   sandbox view) with a cleared environment (no inherited `GIT_*`, `HOME` an empty directory
//!   of the state dir, no system or global config, no terminal prompt), `GIT_DIR` and
//!   `GIT_WORK_TREE` set explicitly (so a missing `.git` never makes git find a repository
//!   above the project), and every setting that runs a program switched off on the command line
//!   (hooks, fsmonitor, pager, external diff, ssh, askpass, editors, gpg, templates,
//!   attributes file). Identity is given on the command line.
//! - **`.git` as the harness left it.** Before each harness git operation, and after every
//!   command and session, [`HarnessGit::guard`] compares `.git` with its baseline — the
//!   configuration and hooks of a repository the harness created (none), or of the user's own
//!   repository as it was when the run first started — and puts back anything else: a changed
//!   `config` (a filter, fsmonitor, pager, alias...), hooks, `info/` (attributes, exclude,
//!   grafts), `objects/info/alternates`, `commondir`, `config.worktree`, `modules/`,
//!   `worktrees/`, `refs/replace/`. Files are read without following links or waiting on
//!   FIFOs. A project handed back therefore holds nothing that runs at the user's next `git`.
//! - **History that survives.** Every harness commit is mirrored into a bare repository in the
//!   state dir (`history.git`, with `history.json` naming the commit and branch). A `.git` that
//!   is missing, a file or a link, or whose `HEAD` no longer descends from the last harness
//!   commit (a `reset --hard` and `gc --prune=now`, a deleted object store) is rebuilt from the
//!   mirror; the working tree is left as the agent made it.
//! - **Commits that cannot be turned against the harness.** A stale `index.lock` (no live git
//!   process in the project) is removed before committing; files over a size cap are not
//!   committed (nor anything `.gitignore` names), and the caller is told which.
//!
//! Known residual: a `[include]` in the user's own pre-existing `.git/config` that points into
//! the working tree is followed (it is part of the baseline the user gave).

use crate::untrusted_file;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const GIT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a `.git/config`, hook or `info/` file of the baseline may be.
const MAX_GUARDED_BYTES: u64 = 1024 * 1024;
/// The branch the mirror keeps the harness's history on.
pub const MIRROR_REF: &str = "refs/heads/loopwright";
/// Where a merge's incoming commits are fetched to, for the length of the merge.
const INCOMING_REF: &str = "refs/loopwright/incoming";

/// Settings on every harness git command line, whatever the repository's config says.
const HARDENED: [&str; 26] = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.pager=cat",
    "core.sshCommand=false",
    "core.askPass=",
    "core.editor=false",
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    "core.gitProxy=",
    "core.untrackedCache=false",
    "sequence.editor=false",
    "diff.external=",
    "credential.helper=",
    "commit.gpgSign=false",
    "tag.gpgSign=false",
    "gpg.program=false",
    "init.templateDir=",
    "init.defaultBranch=main",
    "gc.auto=0",
    "maintenance.auto=false",
    "protocol.allow=never",
    "protocol.file.allow=always",
    "advice.detachedHead=false",
    "user.name=loopwright",
    "user.email=loopwright@localhost",
    "status.showUntrackedFiles=all",
];

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git could not run in the project: {0}")]
    Run(String),
    #[error("`{command}` failed (exit {code:?}): {output}")]
    Failed {
        command: String,
        code: Option<i32>,
        output: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the project's .git is not a directory (a worktree or submodule link?); loopwright needs a repository of its own: run it in a plain clone or an empty directory")]
    NotARepository,
    #[error("a live git process holds {0}; wait for it to finish and run loopwright again")]
    Locked(PathBuf),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> GitError + '_ {
    move |source| GitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Quotes `s` for bash as one word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// What [`HarnessGit::guard`] found and put right.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitRepair {
    /// Paths inside `.git` that were put back as they were, or removed (`.git/config`,
    /// `.git/hooks/pre-commit`...).
    pub restored: Vec<String>,
    /// The history was missing or rewritten and was rebuilt from the mirror: what happened.
    pub history: Option<String>,
}

impl GitRepair {
    pub fn is_empty(&self) -> bool {
        self.restored.is_empty() && self.history.is_none()
    }

    /// The note for the model.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(history) = &self.history {
            parts.push(format!(
                "[{history}. The harness restored the project's git history from its own copy; \
                 your files in the working tree were kept as they are (bring a deleted file back \
                 with `git checkout HEAD -- PATH`). Do not rewrite or delete the git history: \
                 the harness commits your work at the end of the session]"
            ));
        }
        if !self.restored.is_empty() {
            parts.push(format!(
                "[the harness undid changes to git's own files ({}): git settings, hooks and \
                 attributes are the harness's, not the agent's]",
                self.restored.join(", ")
            ));
        }
        (!parts.is_empty()).then(|| parts.join("\n"))
    }
}

/// How merging another branch into the project went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeOutcome {
    /// Merged (or nothing to merge: `commit` is HEAD then).
    Merged { commit: String },
    /// The branches conflict in these files; the merge was aborted and the project is as it
    /// was before it.
    Conflict { files: Vec<String>, detail: String },
}

/// What a commit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// The new commit, or `None` when there was nothing to commit.
    pub id: Option<String>,
    /// Files left out for being bigger than the cap: path and size.
    pub skipped: Vec<(String, u64)>,
    /// Stale lock files removed first.
    pub stale_locks: Vec<String>,
}

/// One file of the baseline: its bytes' hash and its mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BaselineFile {
    sha256: String,
    mode: u32,
}

/// `.git` as the harness accepts it: kept in the state dir (`git-baseline/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Baseline {
    /// Paths relative to `.git` (`config`, `hooks/pre-commit`, `info/exclude`) → file.
    files: BTreeMap<String, BaselineFile>,
}

/// Where the harness's history was at its last commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HistoryRecord {
    commit: String,
    /// `refs/heads/main`.
    branch: String,
}

/// Directories inside `.git` whose every entry must be in the baseline.
const GUARDED_DIRS: [&str; 2] = ["hooks", "info"];
/// Paths inside `.git` that must not exist unless they are in the baseline.
const FORBIDDEN: [&str; 9] = [
    "commondir",
    "gitdir",
    "config.worktree",
    "objects/info/alternates",
    "objects/info/http-alternates",
    "modules",
    "worktrees",
    "refs/replace",
    "info/grafts",
];

/// The harness's git for one project.
#[derive(Debug)]
pub struct HarnessGit {
    project: PathBuf,
    state_dir: PathBuf,
    home: PathBuf,
}

impl HarnessGit {
    /// Prepares the harness's git for `project` (state in `state_dir`): the empty home, and the
    /// baseline of `.git` (captured now from an existing repository the first time, or written
    /// when the harness creates the repository). Makes the project a repository if it is not.
    pub async fn open(project: &Path, state_dir: &Path) -> Result<HarnessGit, GitError> {
        let home = state_dir.join("git-home");
        // Always empty: nothing in it may configure git.
        if home.exists() {
            std::fs::remove_dir_all(&home).map_err(io_err(&home))?;
        }
        std::fs::create_dir_all(&home).map_err(io_err(&home))?;
        let git = HarnessGit {
            project: project.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            home,
        };
        let dot_git = git.dot_git();
        let baseline_exists = git.baseline_path().exists();
        match std::fs::symlink_metadata(&dot_git) {
            Ok(meta) if meta.is_dir() => {
                if !baseline_exists {
                    git.capture_baseline()?;
                }
            }
            Ok(_) if !baseline_exists && !git.history_path().exists() => {
                return Err(GitError::NotARepository)
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !baseline_exists && !git.history_path().exists() {
                    git.init_fresh().await?;
                }
            }
            Err(e) => {
                return Err(GitError::Io {
                    path: dot_git,
                    source: e,
                })
            }
        }
        if !git.history_path().exists() && git.dot_git().is_dir() {
            // A repository with history of its own (the user's): protect it too.
            if let Ok(head) = git
                .git(&["rev-parse", "-q", "--verify", "HEAD^{commit}"])
                .await
            {
                let branch = git
                    .current_branch()
                    .await
                    .unwrap_or_else(|| "refs/heads/main".into());
                git.mirror(head.trim(), &branch).await?;
            }
        }
        Ok(git)
    }

    pub fn project(&self) -> &Path {
        &self.project
    }

    fn dot_git(&self) -> PathBuf {
        self.project.join(".git")
    }

    fn baseline_dir(&self) -> PathBuf {
        self.state_dir.join("git-baseline")
    }

    fn baseline_path(&self) -> PathBuf {
        self.baseline_dir().join("manifest.json")
    }

    fn history_path(&self) -> PathBuf {
        self.state_dir.join("history.json")
    }

    fn mirror_dir(&self) -> PathBuf {
        self.state_dir.join("history.git")
    }

    /// A git command for the project with the hardened environment and settings.
    fn command(&self, git_dir: &Path, work_tree: Option<&Path>) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("git");
        cmd.env_clear();
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        cmd.env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ATTR_NOSYSTEM", "1")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("LC_ALL", "C")
            .env("GIT_DIR", git_dir);
        match work_tree {
            Some(tree) => cmd.env("GIT_WORK_TREE", tree),
            None => cmd.env_remove("GIT_WORK_TREE"),
        };
        for setting in HARDENED {
            cmd.arg("-c").arg(setting);
        }
        cmd.arg("-c")
            .arg(format!("safe.directory={}", self.project.display()))
            .arg("-c")
            .arg(format!("safe.directory={}", self.mirror_dir().display()))
            .arg("-c")
            .arg(format!("safe.directory={}", self.dot_git().display()));
        cmd.current_dir(if self.project.is_dir() {
            &self.project
        } else {
            &self.state_dir
        });
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        cmd
    }

    async fn output(
        &self,
        mut cmd: tokio::process::Command,
        args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<std::process::Output, GitError> {
        cmd.args(args);
        if stdin.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().map_err(|e| GitError::Run(e.to_string()))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes)
                .await
                .map_err(|e| GitError::Run(e.to_string()))?;
            drop(pipe);
        }
        match tokio::time::timeout(GIT_TIMEOUT, child.wait_with_output()).await {
            Ok(out) => out.map_err(|e| GitError::Run(e.to_string())),
            Err(_) => Err(GitError::Run(format!(
                "`git {}` did not finish in {} s",
                args.join(" "),
                GIT_TIMEOUT.as_secs()
            ))),
        }
    }

    fn checked(args: &[&str], out: std::process::Output) -> Result<String, GitError> {
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(GitError::Failed {
                command: format!("git {}", args.join(" ")),
                code: out.status.code(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
                .trim()
                .to_string(),
            })
        }
    }

    /// `git ARGS` on the project; its stdout.
    async fn git(&self, args: &[&str]) -> Result<String, GitError> {
        let cmd = self.command(&self.dot_git(), Some(&self.project));
        let out = self.output(cmd, args, None).await?;
        Self::checked(args, out)
    }

    /// `git ARGS` on the project with `stdin`; its exit code.
    async fn git_status_code(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<i32, GitError> {
        let cmd = self.command(&self.dot_git(), Some(&self.project));
        let out = self.output(cmd, args, stdin).await?;
        match out.status.code() {
            Some(code) if code <= 1 => Ok(code),
            code => Err(GitError::Failed {
                command: format!("git {}", args.join(" ")),
                code,
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            }),
        }
    }

    /// `git ARGS` on the mirror.
    async fn mirror_git(&self, args: &[&str]) -> Result<String, GitError> {
        let cmd = self.command(&self.mirror_dir(), None);
        let out = self.output(cmd, args, None).await?;
        Self::checked(args, out)
    }

    /// `refs/heads/NAME` that HEAD points to, if it points to a branch.
    async fn current_branch(&self) -> Option<String> {
        self.git(&["symbolic-ref", "-q", "HEAD"])
            .await
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| s.starts_with("refs/heads/"))
    }

    /// `git init` with no template (no hooks, no `info/`), and that state as the baseline.
    async fn init_fresh(&self) -> Result<(), GitError> {
        std::fs::create_dir_all(&self.project).map_err(io_err(&self.project))?;
        self.git(&["init", "-q"]).await?;
        self.capture_baseline()
    }

    /// Records `.git/config`, `hooks/*` and `info/*` as the baseline (copies in the state dir).
    fn capture_baseline(&self) -> Result<(), GitError> {
        let dir = self.baseline_dir();
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let mut baseline = Baseline::default();
        let mut rels = vec!["config".to_string()];
        for sub in GUARDED_DIRS.iter().chain(FORBIDDEN.iter()) {
            rels.extend(list_files(&self.dot_git(), sub));
        }
        for rel in rels {
            let path = self.dot_git().join(&rel);
            let Ok(bytes) =
                untrusted_file::read_regular(&self.dot_git(), Path::new(&rel), MAX_GUARDED_BYTES)
            else {
                continue;
            };
            let mode = std::fs::symlink_metadata(&path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0o644);
            let copy = dir.join("files").join(&rel);
            llm::atomic_write(&copy, &bytes).map_err(io_err(&copy))?;
            baseline.files.insert(
                rel,
                BaselineFile {
                    sha256: sha256_hex(&bytes),
                    mode,
                },
            );
        }
        let json = serde_json::to_vec_pretty(&baseline).unwrap_or_default();
        let path = self.baseline_path();
        llm::atomic_write(&path, &json).map_err(io_err(&path))
    }

    fn load_baseline(&self) -> Result<Baseline, GitError> {
        let path = self.baseline_path();
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| GitError::Io {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    fn load_history(&self) -> Option<HistoryRecord> {
        let bytes = std::fs::read(self.history_path()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Puts `.git` back as the harness accepts it and its history back to (a descendant of)
    /// the last harness commit. Run before every harness git operation and after every
    /// command and session.
    pub async fn guard(&self) -> Result<GitRepair, GitError> {
        let mut repair = GitRepair::default();
        if !self.project.is_dir() {
            std::fs::create_dir_all(&self.project).map_err(io_err(&self.project))?;
            repair.history = Some("the project directory had been deleted".into());
        }
        let dot_git = self.dot_git();
        let is_dir = std::fs::symlink_metadata(&dot_git).is_ok_and(|m| m.is_dir());
        if !is_dir {
            let what = match std::fs::symlink_metadata(&dot_git) {
                Err(_) => "the project's .git directory had been deleted",
                Ok(m) if m.file_type().is_symlink() => {
                    "the project's .git had been replaced by a link"
                }
                Ok(_) => {
                    "the project's .git had been replaced by something that is not a directory"
                }
            };
            self.rebuild().await?;
            if repair.history.is_none() {
                repair.history = Some(what.to_string());
            }
            return Ok(repair);
        }
        repair.restored = self.restore_guarded_files()?;
        if let Some(record) = self.load_history() {
            if let Some(what) = self.repair_history(&record).await? {
                repair.history = Some(what);
            }
        }
        Ok(repair)
    }

    /// Compares the guarded files of `.git` with the baseline; puts back or removes what
    /// differs. Returns what was changed.
    fn restore_guarded_files(&self) -> Result<Vec<String>, GitError> {
        let baseline = self.load_baseline()?;
        let dot_git = self.dot_git();
        let mut changed = Vec::new();
        // Files of the baseline: must hold their bytes.
        for (rel, file) in &baseline.files {
            let path = dot_git.join(rel);
            let intact = untrusted_file::read_regular(&dot_git, Path::new(rel), MAX_GUARDED_BYTES)
                .is_ok_and(|bytes| sha256_hex(&bytes) == file.sha256);
            if !intact {
                let copy = self.baseline_dir().join("files").join(rel);
                let bytes = std::fs::read(&copy).map_err(io_err(&copy))?;
                remove_any(&path).map_err(io_err(&path))?;
                make_real_dirs(&dot_git, rel).map_err(io_err(&path))?;
                llm::atomic_write(&path, &bytes).map_err(io_err(&path))?;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(file.mode));
                changed.push(format!(".git/{rel}"));
            }
        }
        // Anything else in the guarded directories, and the forbidden paths: removed.
        for sub in GUARDED_DIRS {
            let dir = dot_git.join(sub);
            match std::fs::symlink_metadata(&dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&dir).map_err(io_err(&dir))?;
                    changed.push(format!(".git/{sub}"));
                    continue;
                }
                Err(_) => continue,
            }
            for rel in list_files(&dot_git, sub) {
                if !baseline.files.contains_key(&rel) {
                    let path = dot_git.join(&rel);
                    remove_any(&path).map_err(io_err(&path))?;
                    changed.push(format!(".git/{rel}"));
                }
            }
        }
        for rel in FORBIDDEN {
            let path = dot_git.join(rel);
            let in_baseline = baseline
                .files
                .keys()
                .any(|k| k == rel || k.starts_with(&format!("{rel}/")));
            if !in_baseline && std::fs::symlink_metadata(&path).is_ok() {
                remove_any(&path).map_err(io_err(&path))?;
                changed.push(format!(".git/{rel}"));
            }
        }
        changed.sort();
        changed.dedup();
        Ok(changed)
    }

    /// Whether HEAD is on the recorded branch at (a descendant of) the recorded commit; if not,
    /// put the branch back (fetching from the mirror what is missing) — or rebuild `.git`
    /// when that fails. Returns what was wrong.
    async fn repair_history(&self, record: &HistoryRecord) -> Result<Option<String>, GitError> {
        let head = self
            .git(&["rev-parse", "-q", "--verify", "HEAD^{commit}"])
            .await
            .map(|s| s.trim().to_string())
            .ok();
        let branch = self.current_branch().await;
        let descends = match &head {
            Some(h) if h == &record.commit => true,
            Some(h) => self
                .git_status_code(&["merge-base", "--is-ancestor", &record.commit, h], None)
                .await
                .is_ok_and(|code| code == 0),
            None => false,
        };
        if descends && branch.as_deref() == Some(record.branch.as_str()) {
            return Ok(None);
        }
        let short = &record.commit[..record.commit.len().min(12)];
        let what = if descends {
            format!(
                "HEAD had been moved off the branch {} the harness commits to",
                record.branch.trim_start_matches("refs/heads/")
            )
        } else {
            format!(
                "the project's git history had been rewritten or damaged (HEAD no longer \
                 contains the harness's last commit {short})"
            )
        };
        let target = match (&head, descends) {
            (Some(h), true) => h.clone(),
            _ => record.commit.clone(),
        };
        if self.reattach(record, &target).await.is_err() {
            self.rebuild().await?;
        }
        Ok(Some(what))
    }

    /// Points the recorded branch at `target` (fetched from the mirror when missing), HEAD at
    /// the branch, and the index at HEAD; the working tree is not touched.
    async fn reattach(&self, record: &HistoryRecord, target: &str) -> Result<(), GitError> {
        if target == record.commit {
            let mirror = self.mirror_dir();
            let mirror = mirror.to_string_lossy();
            self.git(&[
                "fetch",
                "-q",
                "--no-tags",
                "--no-write-fetch-head",
                &mirror,
                &format!("+{MIRROR_REF}:refs/loopwright/restore"),
            ])
            .await?;
            self.git(&["update-ref", "-d", "refs/loopwright/restore"])
                .await?;
        }
        self.git(&["update-ref", &record.branch, target]).await?;
        self.git(&["symbolic-ref", "HEAD", &record.branch]).await?;
        self.git(&["reset", "-q"]).await?;
        Ok(())
    }

    /// Replaces `.git` by a repository rebuilt from the mirror (or a fresh one when there is
    /// no history yet), with the baseline's config and hooks; the working tree is kept.
    async fn rebuild(&self) -> Result<(), GitError> {
        let dot_git = self.dot_git();
        remove_any(&dot_git).map_err(io_err(&dot_git))?;
        self.git(&["init", "-q"]).await?;
        self.restore_guarded_files()?;
        if let Some(record) = self.load_history() {
            self.reattach(&record, &record.commit).await?;
        }
        Ok(())
    }

    /// Removes lock files a dead git process left (`index.lock`, `HEAD.lock`, branch locks)
    /// when no git process is working in the project; returns what was removed.
    fn clear_stale_locks(&self) -> Result<Vec<String>, GitError> {
        let dot_git = self.dot_git();
        let mut locks: Vec<PathBuf> = ["index.lock", "HEAD.lock"]
            .iter()
            .map(|l| dot_git.join(l))
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .collect();
        if let Ok(entries) = std::fs::read_dir(dot_git.join("refs/heads")) {
            locks.extend(
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "lock")),
            );
        }
        if locks.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(lock) = locks.first().filter(|_| git_process_in(&self.project)) {
            return Err(GitError::Locked(lock.clone()));
        }
        let mut removed = Vec::new();
        for lock in locks {
            remove_any(&lock).map_err(io_err(&lock))?;
            removed.push(
                lock.strip_prefix(&self.project)
                    .unwrap_or(&lock)
                    .display()
                    .to_string(),
            );
        }
        Ok(removed)
    }

    /// Commits everything in the working tree but files bigger than `max_file_bytes` and what
    /// `.gitignore` names, then mirrors the commit.
    pub async fn commit_all(
        &self,
        message: &str,
        max_file_bytes: u64,
    ) -> Result<Committed, GitError> {
        let mut committed = Committed {
            stale_locks: self.clear_stale_locks()?,
            ..Committed::default()
        };
        let status = self
            .git(&[
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
                "--no-renames",
            ])
            .await?;
        for entry in status.split('\0').filter(|e| e.len() > 3) {
            let rel = &entry[3..];
            if let Ok(meta) = std::fs::symlink_metadata(self.project.join(rel)) {
                if meta.is_file() && meta.len() > max_file_bytes {
                    committed.skipped.push((rel.to_string(), meta.len()));
                }
            }
        }
        let mut pathspec = b".\0".to_vec();
        for (rel, _) in &committed.skipped {
            pathspec.extend_from_slice(format!(":(exclude,literal){rel}\0").as_bytes());
        }
        let add = ["add", "-A", "--pathspec-from-file=-", "--pathspec-file-nul"];
        if self.git_status_code(&add, Some(&pathspec)).await? != 0 {
            return Err(GitError::Failed {
                command: "git add -A".into(),
                code: Some(1),
                output: "git add failed".into(),
            });
        }
        let staged = self
            .git_status_code(
                &[
                    "diff",
                    "--cached",
                    "--quiet",
                    "--no-ext-diff",
                    "--no-textconv",
                ],
                None,
            )
            .await?;
        if staged == 0 {
            return Ok(committed);
        }
        self.git(&["commit", "-q", "--no-verify", "-m", message])
            .await?;
        let id = self.git(&["rev-parse", "HEAD"]).await?.trim().to_string();
        let branch = self
            .current_branch()
            .await
            .unwrap_or_else(|| "refs/heads/main".into());
        self.mirror(&id, &branch).await?;
        committed.id = Some(id);
        Ok(committed)
    }

    /// Copies `commit` into the mirror and records it as the harness's last.
    async fn mirror(&self, commit: &str, branch: &str) -> Result<(), GitError> {
        let mirror = self.mirror_dir();
        if !mirror.join("HEAD").exists() {
            std::fs::create_dir_all(&mirror).map_err(io_err(&mirror))?;
            self.mirror_git(&["init", "-q", "--bare"]).await?;
        }
        let project_git = self.dot_git();
        let source = project_git.to_string_lossy();
        self.mirror_git(&[
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            &source,
            &format!("+{commit}:{MIRROR_REF}"),
        ])
        .await?;
        let record = HistoryRecord {
            commit: commit.to_string(),
            branch: branch.to_string(),
        };
        let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
        let path = self.history_path();
        llm::atomic_write(&path, &json).map_err(io_err(&path))
    }

    /// The harness's copy of its history (a bare repository in the state dir); its
    /// [`MIRROR_REF`] is the last harness commit.
    pub fn history_dir(&self) -> PathBuf {
        self.mirror_dir()
    }

    /// The commit HEAD points to.
    pub async fn head(&self) -> Result<String, GitError> {
        Ok(self
            .git(&["rev-parse", "HEAD^{commit}"])
            .await?
            .trim()
            .to_string())
    }

    /// Puts the branch `branch` at `source_ref` of the repository `source` (a harness
    /// mirror), checks it out (working tree included) and records it as the harness's last
    /// commit: how a worker's copy of the project starts.
    pub async fn start_branch_from(
        &self,
        source: &Path,
        source_ref: &str,
        branch: &str,
    ) -> Result<String, GitError> {
        let source = source.to_string_lossy();
        let branch_ref = format!("refs/heads/{branch}");
        self.git(&[
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            &source,
            &format!("+{source_ref}:{branch_ref}"),
        ])
        .await?;
        self.git(&["symbolic-ref", "HEAD", &branch_ref]).await?;
        self.git(&["reset", "-q", "--hard"]).await?;
        let head = self.head().await?;
        self.mirror(&head, &branch_ref).await?;
        Ok(head)
    }

    /// Fetches `source_ref` of the repository `source` as the local branch `branch` (kept, for
    /// a person or a later session to see).
    pub async fn fetch_branch(
        &self,
        source: &Path,
        source_ref: &str,
        branch: &str,
    ) -> Result<(), GitError> {
        let source = source.to_string_lossy();
        self.git(&[
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            &source,
            &format!("+{source_ref}:refs/heads/{branch}"),
        ])
        .await?;
        Ok(())
    }

    /// Merges `source_ref` of the repository `source` into the current branch with a merge
    /// commit. A conflict (or any other failure to merge) is aborted: the project is left as
    /// it was, and the conflicting files are named.
    pub async fn merge_from(
        &self,
        source: &Path,
        source_ref: &str,
        message: &str,
    ) -> Result<MergeOutcome, GitError> {
        self.clear_stale_locks()?;
        let source = source.to_string_lossy();
        self.git(&[
            "fetch",
            "-q",
            "--no-tags",
            "--no-write-fetch-head",
            &source,
            &format!("+{source_ref}:{INCOMING_REF}"),
        ])
        .await?;
        let args = [
            "merge",
            "-q",
            "--no-ff",
            "--no-edit",
            "--no-verify",
            "-m",
            message,
            INCOMING_REF,
        ];
        let cmd = self.command(&self.dot_git(), Some(&self.project));
        let out = self.output(cmd, &args, None).await?;
        let outcome = if out.status.success() {
            let commit = self.head().await?;
            let branch = self
                .current_branch()
                .await
                .unwrap_or_else(|| "refs/heads/main".into());
            self.mirror(&commit, &branch).await?;
            MergeOutcome::Merged { commit }
        } else {
            let files = self
                .git(&["diff", "--name-only", "--diff-filter=U", "-z"])
                .await
                .unwrap_or_default()
                .split('\0')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect();
            let detail = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .trim()
            .to_string();
            // Nothing of a failed merge stays: no MERGE_HEAD, no conflict markers.
            let _ = self.git(&["merge", "--abort"]).await;
            let _ = self.git(&["reset", "-q", "--hard", "HEAD"]).await;
            MergeOutcome::Conflict { files, detail }
        };
        let _ = self.git(&["update-ref", "-d", INCOMING_REF]).await;
        Ok(outcome)
    }

    /// Starts merging the local branch `branch` without committing, leaving conflict markers
    /// in the working tree for the agent to resolve (the harness's next commit records the
    /// merge). Returns the files in conflict.
    pub async fn merge_leaving_conflicts(&self, branch: &str) -> Result<Vec<String>, GitError> {
        let args = [
            "merge",
            "-q",
            "--no-ff",
            "--no-commit",
            "--no-verify",
            branch,
        ];
        let cmd = self.command(&self.dot_git(), Some(&self.project));
        self.output(cmd, &args, None).await?;
        Ok(self
            .git(&["diff", "--name-only", "--diff-filter=U", "-z"])
            .await
            .unwrap_or_default()
            .split('\0')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Aborts a merge left unfinished in the project (the harness killed during one: its
    /// conflict markers must not be committed as work). Returns whether there was one.
    pub async fn abort_unfinished_merge(&self) -> Result<bool, GitError> {
        if std::fs::symlink_metadata(self.dot_git().join("MERGE_HEAD")).is_err() {
            return Ok(false);
        }
        self.git(&["merge", "--abort"]).await?;
        Ok(true)
    }

    /// A file as it is in `commit`, or `None` when it is not there.
    pub async fn show_file(&self, commit: &str, path: &str) -> Option<Vec<u8>> {
        let args = ["cat-file", "blob", &format!("{commit}:{path}")];
        let cmd = self.command(&self.dot_git(), Some(&self.project));
        let out = self.output(cmd, &args, None).await.ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// Puts `paths` (top-level files) back as they are in `commit`; a path `commit` does not
    /// have is removed. Links are replaced, never followed.
    pub async fn reset_paths(&self, commit: &str, paths: &[&str]) -> Result<(), GitError> {
        for path in paths {
            let target = self.project.join(path);
            remove_any(&target).map_err(io_err(&target))?;
            if self.show_file(commit, path).await.is_some() {
                self.git(&["checkout", "-q", commit, "--", path]).await?;
            }
        }
        Ok(())
    }

    /// The newest commit the harness made (a `loopwright: ` commit by loopwright), in the
    /// project's history or else in the mirror, as `<id> <subject>`; `None` when neither has one.
    pub async fn last_harness_commit(&self) -> Option<String> {
        let args = [
            "log",
            "-1",
            "--format=%H %s",
            "--author=<loopwright@localhost>",
            "--grep=^loopwright: ",
        ];
        let in_project = self.git(&[&args[..], &["HEAD"]].concat()).await;
        if let Some(found) = in_project.ok().filter(|s| !s.trim().is_empty()) {
            return Some(found.trim().to_string());
        }
        if !self.mirror_dir().join("HEAD").exists() {
            return None;
        }
        self.mirror_git(&[&args[..], &[MIRROR_REF]].concat())
            .await
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Whether the project's history (what HEAD descends from) contains `commit`.
    pub async fn history_contains(&self, commit: &str) -> Result<bool, GitError> {
        let known = self
            .git(&[
                "rev-parse",
                "-q",
                "--verify",
                &format!("{commit}^{{commit}}"),
            ])
            .await
            .is_ok();
        if !known {
            return Ok(false);
        }
        let code = self
            .git_status_code(&["merge-base", "--is-ancestor", commit, "HEAD"], None)
            .await?;
        Ok(code == 0)
    }

    /// The last `n` commits, one line each; empty in a repository without commits.
    pub async fn recent_log(&self, n: u32) -> String {
        self.git(&["log", "--oneline", "--no-decorate", "-n", &n.to_string()])
            .await
            .unwrap_or_default()
    }

    /// Paths (relative to the project) that `.gitignore` and friends name, of `candidates`.
    pub async fn ignored(&self, candidates: &[String]) -> Vec<String> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let mut input = Vec::new();
        for c in candidates {
            input.extend_from_slice(c.as_bytes());
            input.push(0);
        }
        let cmd = self.command(&self.dot_git(), Some(&self.project));
        let args = ["check-ignore", "--stdin", "-z", "--no-index"];
        match self.output(cmd, &args, Some(&input)).await {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

/// Files (relative to `base`) under `base/sub`, recursively, without following links; `sub`
/// itself when it is a file or a link.
fn list_files(base: &Path, sub: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(sub)];
    while let Some(rel) = stack.pop() {
        let path = base.join(&rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                if let Ok(entries) = std::fs::read_dir(&path) {
                    for e in entries.flatten() {
                        stack.push(rel.join(e.file_name()));
                    }
                }
            }
            Ok(_) => out.push(rel.to_string_lossy().into_owned()),
            Err(_) => {}
        }
    }
    out.sort();
    out
}

/// Removes whatever is at `path` without following a link (a directory with its contents).
fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Makes every directory between `base` and `base/rel`'s parent a real directory (a link or
/// file in the way is removed).
fn make_real_dirs(base: &Path, rel: &str) -> std::io::Result<()> {
    let mut dir = base.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                std::fs::remove_file(&dir)?;
                std::fs::create_dir(&dir)?;
            }
            Err(_) => std::fs::create_dir(&dir)?,
        }
    }
    Ok(())
}

/// Whether a process named `git…` has its working directory in `project`.
fn git_process_in(project: &Path) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        let dir = p.path();
        let is_git = std::fs::read_to_string(dir.join("comm"))
            .is_ok_and(|c| c.trim() == "git" || c.trim().starts_with("git-"));
        is_git && std::fs::read_link(dir.join("cwd")).is_ok_and(|cwd| cwd.starts_with(project))
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn repo(dir: &Path, name: &str) -> HarnessGit {
        HarnessGit::open(&dir.join(name), &dir.join(format!("{name}-state")))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_copy_merges_back_and_a_conflict_is_aborted_leaving_the_project_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let main = repo(dir.path(), "main").await;
        std::fs::write(main.project().join("a.txt"), "base\n").unwrap();
        main.commit_all("base", u64::MAX).await.unwrap();

        // A clean merge: a merge commit with both parents, mirrored.
        let copy = repo(dir.path(), "copy").await;
        let base = copy
            .start_branch_from(&main.history_dir(), MIRROR_REF, "worker/one")
            .await
            .unwrap();
        assert_eq!(base, main.head().await.unwrap());
        assert_eq!(
            std::fs::read_to_string(copy.project().join("a.txt")).unwrap(),
            "base\n"
        );
        std::fs::write(copy.project().join("b.txt"), "copy\n").unwrap();
        copy.commit_all("copy", u64::MAX).await.unwrap();
        std::fs::write(main.project().join("c.txt"), "main\n").unwrap();
        main.commit_all("main", u64::MAX).await.unwrap();
        let merged = main
            .merge_from(&copy.history_dir(), MIRROR_REF, "merge one")
            .await
            .unwrap();
        let MergeOutcome::Merged { commit } = merged else {
            panic!("{merged:?}")
        };
        let parents = main
            .git(&["rev-list", "--parents", "-n1", &commit])
            .await
            .unwrap();
        assert_eq!(parents.split_whitespace().count(), 3, "{parents}");
        assert!(main.project().join("b.txt").is_file());
        assert_eq!(main.load_history().unwrap().commit, commit);

        // A conflict: aborted, the project as it was, the files named.
        let other = repo(dir.path(), "other").await;
        other
            .start_branch_from(&main.history_dir(), MIRROR_REF, "worker/two")
            .await
            .unwrap();
        std::fs::write(other.project().join("a.txt"), "other\n").unwrap();
        other.commit_all("other", u64::MAX).await.unwrap();
        std::fs::write(main.project().join("a.txt"), "main\n").unwrap();
        main.commit_all("main 2", u64::MAX).await.unwrap();
        let head = main.head().await.unwrap();
        let outcome = main
            .merge_from(&other.history_dir(), MIRROR_REF, "merge two")
            .await
            .unwrap();
        assert!(
            matches!(&outcome, MergeOutcome::Conflict { files, .. } if files == &vec!["a.txt".to_string()]),
            "{outcome:?}"
        );
        assert_eq!(main.head().await.unwrap(), head);
        assert_eq!(
            std::fs::read_to_string(main.project().join("a.txt")).unwrap(),
            "main\n"
        );
        assert!(!main.dot_git().join("MERGE_HEAD").exists());
        assert!(main
            .git(&["status", "--porcelain"])
            .await
            .unwrap()
            .trim()
            .is_empty());

        // Kept as a branch, it can be merged into a later copy with its markers left in.
        main.fetch_branch(&other.history_dir(), MIRROR_REF, "worker/two")
            .await
            .unwrap();
        let later = repo(dir.path(), "later").await;
        later
            .start_branch_from(&main.history_dir(), MIRROR_REF, "worker/three")
            .await
            .unwrap();
        later
            .fetch_branch(&other.history_dir(), MIRROR_REF, "worker/two")
            .await
            .unwrap();
        let files = later.merge_leaving_conflicts("worker/two").await.unwrap();
        assert_eq!(files, vec!["a.txt".to_string()]);
        assert!(std::fs::read_to_string(later.project().join("a.txt"))
            .unwrap()
            .contains("<<<<<<<"));
        std::fs::write(later.project().join("a.txt"), "both\n").unwrap();
        let committed = later.commit_all("resolved", u64::MAX).await.unwrap();
        let resolved = committed.id.unwrap();
        let parents = later
            .git(&["rev-list", "--parents", "-n1", &resolved])
            .await
            .unwrap();
        assert_eq!(
            parents.split_whitespace().count(),
            3,
            "the merge is recorded"
        );
        assert!(matches!(
            main.merge_from(&later.history_dir(), MIRROR_REF, "merge three")
                .await
                .unwrap(),
            MergeOutcome::Merged { .. }
        ));
        assert_eq!(
            std::fs::read_to_string(main.project().join("a.txt")).unwrap(),
            "both\n"
        );

        // A merge left unfinished in the project (the harness killed in one) is aborted.
        assert!(!main.abort_unfinished_merge().await.unwrap());
        let fourth = repo(dir.path(), "fourth").await;
        fourth
            .start_branch_from(&main.history_dir(), MIRROR_REF, "worker/four")
            .await
            .unwrap();
        std::fs::write(fourth.project().join("a.txt"), "fourth\n").unwrap();
        fourth.commit_all("fourth", u64::MAX).await.unwrap();
        std::fs::write(main.project().join("a.txt"), "main again\n").unwrap();
        main.commit_all("main 3", u64::MAX).await.unwrap();
        main.fetch_branch(&fourth.history_dir(), MIRROR_REF, "worker/four")
            .await
            .unwrap();
        let files = main.merge_leaving_conflicts("worker/four").await.unwrap();
        assert_eq!(files, vec!["a.txt".to_string()]);
        assert!(main.abort_unfinished_merge().await.unwrap());
        assert_eq!(
            std::fs::read_to_string(main.project().join("a.txt")).unwrap(),
            "main again\n"
        );
        assert!(!main.dot_git().join("MERGE_HEAD").exists());
    }

    #[tokio::test]
    async fn harness_files_are_put_back_as_they_were_in_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let git = repo(dir.path(), "p").await;
        std::fs::write(git.project().join("kept.json"), "old").unwrap();
        git.commit_all("base", u64::MAX).await.unwrap();
        let base = git.head().await.unwrap();
        std::fs::write(git.project().join("kept.json"), "changed").unwrap();
        std::fs::write(git.project().join("new.md"), "made in the session").unwrap();
        git.reset_paths(&base, &["kept.json", "new.md"])
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(git.project().join("kept.json")).unwrap(),
            "old"
        );
        assert!(!git.project().join("new.md").exists());
        assert_eq!(git.show_file(&base, "kept.json").await.unwrap(), b"old");
        assert!(git.show_file(&base, "new.md").await.is_none());
    }

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("a; rm -rf /"), "'a; rm -rf /'");
    }
}
