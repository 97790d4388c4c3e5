//! A cheap picture of the project's files, to tell a turn that brought the project to content it
//! never had before in the session from one that did not (the watchdog's "progress").
//!
//! After each turn the project is walked (without following links, skipping `.git`, caches and
//! dependency directories); a file whose size, modification time and inode did not change keeps
//! its hash, the others are read again (through [`crate::untrusted_file`]: no link followed, no
//! FIFO waited on, size capped). A file's hash is of its *shape*: its bytes with every run of
//! ASCII digits collapsed to one `0`, so a counter, a timestamp or a random number written into
//! a file does not make it new. The project's state is the hash of every path with its shape;
//! the session remembers every state it saw.

use crate::untrusted_file;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Files that are never progress: the agent's notes and the harness's own files.
const IGNORED_FILES: [&str; 3] = ["progress.md", "feature_list.json", "app_spec.txt"];
/// Directories that are never walked: git's, caches and installed dependencies.
const IGNORED_DIRS: [&str; 12] = [
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    "node_modules",
    ".venv",
    "venv",
    ".tox",
    "target",
    ".cache",
    ".npm",
];
/// The walk stops after this many entries (a huge tree is not fingerprinted beyond it).
const MAX_ENTRIES: usize = 20_000;
/// Files bigger than this are known by their size only.
const MAX_HASHED_BYTES: u64 = 8 * 1024 * 1024;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
    ino: u64,
}

/// The states of one project seen in a session.
#[derive(Debug)]
pub struct ProjectStates {
    root: PathBuf,
    cache: HashMap<PathBuf, (Stamp, u64)>,
    seen: HashSet<u64>,
}

impl ProjectStates {
    /// Takes the project's state now as already seen.
    pub fn new(root: &Path) -> ProjectStates {
        let mut states = ProjectStates {
            root: root.to_path_buf(),
            cache: HashMap::new(),
            seen: HashSet::new(),
        };
        let now = states.current();
        states.seen.insert(now);
        states
    }

    /// Looks at the project again: true when it is in a state not seen before in the session.
    pub fn observe(&mut self) -> bool {
        let now = self.current();
        self.seen.insert(now)
    }

    fn current(&mut self) -> u64 {
        let mut entries: Vec<(PathBuf, u64)> = Vec::new();
        let mut fresh = HashMap::new();
        walk(&self.root, |rel, path, meta| {
            if rel.parent() == Some(Path::new(""))
                && IGNORED_FILES.iter().any(|f| rel.as_os_str() == *f)
            {
                return;
            }
            let kind = meta.file_type();
            let shape = if kind.is_symlink() {
                let mut h = DefaultHasher::new();
                "link".hash(&mut h);
                std::fs::read_link(path).ok().hash(&mut h);
                h.finish()
            } else if kind.is_file() {
                let stamp = Stamp {
                    len: meta.len(),
                    mtime: meta.mtime(),
                    mtime_nsec: meta.mtime_nsec(),
                    ino: meta.ino(),
                };
                match self.cache.get(&rel) {
                    Some((old, shape)) if *old == stamp => *shape,
                    _ => {
                        let shape = file_shape(&self.root, &rel, meta.len());
                        fresh.insert(rel.clone(), (stamp, shape));
                        shape
                    }
                }
            } else {
                // FIFOs, sockets, devices: only that they are there.
                "special".len() as u64
            };
            entries.push((rel, shape));
        });
        self.cache.extend(fresh);
        entries.sort();
        let mut h = DefaultHasher::new();
        entries.hash(&mut h);
        h.finish()
    }
}

/// Calls `f(relative path, path, metadata)` for every entry of the project that is not a
/// directory, without following links and without entering `.git`, caches and dependency
/// directories; stops after [`MAX_ENTRIES`] entries.
pub fn walk(root: &Path, mut f: impl FnMut(PathBuf, &Path, &std::fs::Metadata)) {
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut budget = MAX_ENTRIES;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            if budget == 0 {
                return;
            }
            budget -= 1;
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root).map(Path::to_path_buf) else {
                continue;
            };
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                let name = entry.file_name();
                if !IGNORED_DIRS.iter().any(|d| name == *d) && depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            f(rel, &path, &meta);
        }
    }
}

/// The sha256 of every regular file of the project up to `max_bytes` (walked as [`walk`]
/// does), by path relative to the project with `/` separators.
pub fn file_hashes(root: &Path, max_bytes: u64) -> std::collections::BTreeMap<String, String> {
    use sha2::Digest;
    let mut out = std::collections::BTreeMap::new();
    walk(root, |rel, _, meta| {
        if !meta.is_file() || meta.len() > max_bytes {
            return;
        }
        if let Ok(bytes) = untrusted_file::read_regular(root, &rel, max_bytes) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.insert(rel, hex::encode(sha2::Sha256::digest(&bytes)));
        }
    });
    out
}

/// The hash of a file's bytes with digit runs collapsed; of its size when it is too big or
/// cannot be read as a regular file.
fn file_shape(root: &Path, rel: &Path, len: u64) -> u64 {
    let mut h = DefaultHasher::new();
    if len > MAX_HASHED_BYTES {
        ("big", len).hash(&mut h);
        return h.finish();
    }
    match untrusted_file::read_regular(root, rel, MAX_HASHED_BYTES) {
        Ok(bytes) => {
            let mut in_digits = false;
            let mut shaped = Vec::with_capacity(bytes.len());
            for b in bytes {
                if b.is_ascii_digit() {
                    if !in_digits {
                        shaped.push(b'0');
                    }
                    in_digits = true;
                } else {
                    in_digits = false;
                    shaped.push(b);
                }
            }
            shaped.hash(&mut h);
        }
        Err(_) => ("unreadable", len).hash(&mut h),
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_content_is_new_and_counters_or_variants_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("app.py"), "print(1)\n").unwrap();
        let mut states = ProjectStates::new(p);
        assert!(!states.observe(), "nothing changed");
        std::fs::write(p.join("app.py"), "print(2)\n").unwrap();
        assert!(!states.observe(), "only a number changed");
        std::fs::write(p.join("app.py"), "print('hello')\n").unwrap();
        assert!(states.observe(), "new content");
        std::fs::write(p.join("app.py"), "print(1)\n").unwrap();
        assert!(!states.observe(), "back to a state seen before");
        std::fs::write(p.join("progress.md"), "notes\n").unwrap();
        std::fs::create_dir(p.join("__pycache__")).unwrap();
        std::fs::write(p.join("__pycache__/app.pyc"), "x").unwrap();
        assert!(!states.observe(), "notes and caches are not progress");
        std::fs::write(p.join("other.py"), "x = 'y'\n").unwrap();
        assert!(states.observe(), "a new file");
        std::fs::remove_file(p.join("other.py")).unwrap();
        assert!(
            !states.observe(),
            "deleting it goes back to a state seen before"
        );
    }

    #[test]
    fn a_fifo_or_a_link_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let mut states = ProjectStates::new(p);
        let fifo = std::ffi::CString::new(p.join("pipe").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/dev/zero", p.join("zero")).unwrap();
        assert!(states.observe());
        assert!(!states.observe());
    }
}
