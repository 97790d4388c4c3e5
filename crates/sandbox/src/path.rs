//! Path confinement: every path the agent names is resolved inside the project root.

use std::path::{Component, Path, PathBuf};

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// The path leaves the project, goes through a symlink out of it, or is protected. The
    /// message is written for the model to act on.
    #[error("{0}")]
    Refused(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Whether a path is wanted for reading or for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// How many symlinks one resolution may follow (the kernel's own limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// The project directory the agent may work in, and the paths inside it that it may not change.
///
/// `.git` is protected from the start: the agent changes history through `git` commands, never
/// by writing into `.git` (where `hooks/` would let it run code in the harness's own git calls).
#[derive(Debug, Clone)]
pub struct ProjectRoot {
    root: PathBuf,
    protected: Vec<PathBuf>,
}

impl ProjectRoot {
    /// `dir` must exist; it is canonicalized. `.git` and `.loopwright` (the pointer to the
    /// run's state dir) are protected.
    pub fn new(dir: &Path) -> Result<ProjectRoot, PathError> {
        let root = dir.canonicalize().map_err(|source| PathError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut project = ProjectRoot {
            root,
            protected: Vec::new(),
        };
        project.protect(Path::new(".git"));
        project.protect(Path::new(".loopwright"));
        Ok(project)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Marks a path (relative to the root, or absolute inside it) as not writable by the agent.
    /// Everything under it is protected too.
    pub fn protect(&mut self, path: &Path) {
        let absolute = normalize_lexically(&self.root.join(path));
        // Protect the physical location too, when the path exists and goes through a symlink.
        if let Ok(physical) = absolute.canonicalize() {
            if physical != absolute {
                self.protected.push(physical);
            }
        }
        self.protected.push(absolute);
    }

    /// The protected paths, absolute.
    pub fn protected(&self) -> &[PathBuf] {
        &self.protected
    }

    /// Whether `path` (relative to the root, or absolute) is a protected path or lies under one.
    pub fn is_protected(&self, path: &Path) -> bool {
        let absolute = normalize_lexically(&self.root.join(path));
        self.protected.iter().any(|p| absolute.starts_with(p))
    }

    /// Resolves a path the model gave (relative to the project root, or absolute inside it) to a
    /// confined absolute path, refusing escapes by `..`, absolute paths outside the root,
    /// symlinks leading out (checked component by component), and — for `Access::Write` —
    /// protected paths. The error message is written for the model to act on.
    ///
    /// The returned path has every existing symlink resolved (it is the physical location);
    /// components that do not exist yet are appended as given.
    pub fn resolve(&self, path: &str, access: Access) -> Result<PathBuf, PathError> {
        self.resolve_from(&self.root, path, access)
    }

    /// Like [`ProjectRoot::resolve`], with relative paths taken from `cwd` (itself inside the
    /// root) instead of the root.
    pub fn resolve_from(
        &self,
        cwd: &Path,
        path: &str,
        access: Access,
    ) -> Result<PathBuf, PathError> {
        if path.contains('\0') {
            return Err(PathError::Refused(format!(
                "`{}` contains a NUL byte; give a plain path",
                path.escape_default()
            )));
        }
        let given = Path::new(path);
        let joined = cwd.join(given);
        let lexical = normalize_lexically(&joined);
        if !lexical.starts_with(&self.root) {
            return Err(PathError::Refused(format!(
                "`{path}` is outside the project directory {}; use a path inside it",
                self.root.display()
            )));
        }
        let physical = self.walk(path, &joined)?;
        if !physical.starts_with(&self.root) {
            return Err(PathError::Refused(format!(
                "`{path}` resolves to {}, outside the project directory {}; use a path inside it",
                physical.display(),
                self.root.display()
            )));
        }
        if access == Access::Write {
            for candidate in [&lexical, &physical] {
                if let Some(p) = self.protected.iter().find(|p| candidate.starts_with(p)) {
                    return Err(PathError::Refused(format!(
                        "`{path}` is protected ({} is managed by the harness and may not be changed by the agent); write somewhere else in the project",
                        p.strip_prefix(&self.root).unwrap_or(p).display()
                    )));
                }
            }
        }
        Ok(physical)
    }

    /// Follows `joined` component by component the way the kernel would, resolving symlinks,
    /// and refuses any symlink whose target leaves the root.
    fn walk(&self, given: &str, joined: &Path) -> Result<PathBuf, PathError> {
        let mut current = PathBuf::from("/");
        let mut hops = 0usize;
        let mut exists = true;
        // Component lists still to walk; a symlink's target is pushed on top of the rest.
        let mut stack: Vec<Vec<String>> = vec![components_of(joined)];
        while let Some(top) = stack.last_mut() {
            if top.is_empty() {
                stack.pop();
                continue;
            }
            let part = top.remove(0);
            match part.as_str() {
                "/" => current = PathBuf::from("/"),
                "." => {}
                ".." => {
                    current.pop();
                }
                name => {
                    let next = current.join(name);
                    if !exists {
                        current = next;
                        continue;
                    }
                    match std::fs::symlink_metadata(&next) {
                        Ok(meta) if meta.file_type().is_symlink() => {
                            hops += 1;
                            if hops > MAX_SYMLINK_HOPS {
                                return Err(PathError::Refused(format!(
                                    "`{given}` goes through too many symlinks; use the real path"
                                )));
                            }
                            let target =
                                std::fs::read_link(&next).map_err(|source| PathError::Io {
                                    path: next.clone(),
                                    source,
                                })?;
                            let landing = normalize_lexically(&current.join(&target));
                            if !landing.starts_with(&self.root) {
                                return Err(PathError::Refused(format!(
                                    "`{given}` goes through the symlink {} which points outside the project (to {}); use a path inside the project",
                                    next.strip_prefix(&self.root).unwrap_or(&next).display(),
                                    target.display()
                                )));
                            }
                            stack.push(components_of(&target));
                        }
                        Ok(_) => current = next,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            exists = false;
                            current = next;
                        }
                        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                            exists = false;
                            current = next;
                        }
                        Err(source) => return Err(PathError::Io { path: next, source }),
                    }
                }
            }
        }
        Ok(current)
    }
}

fn components_of(path: &Path) -> Vec<String> {
    path.components()
        .map(|c| match c {
            Component::RootDir | Component::Prefix(_) => "/".to_string(),
            Component::CurDir => ".".to_string(),
            Component::ParentDir => "..".to_string(),
            Component::Normal(s) => s.to_string_lossy().into_owned(),
        })
        .collect()
}

/// Removes `.` and resolves `..` without looking at the file system. `..` at `/` stays at `/`.
pub fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(s) => out.push(s),
        }
    }
    out
}
