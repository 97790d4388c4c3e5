//! The directory walk shared by `list_files` and `grep`: `.gitignore`/`.ignore` respected (in
//! any project, git repository or not), hidden files included, `.git` skipped, sorted by name.
//!
//! The walk is [`UntrustedDir::walk`] (no link followed, nothing but directories opened), and
//! the ignore files are read here through [`UntrustedDir::read`], not by the `ignore` crate's
//! walker: that one opens each `.gitignore` with a plain `File::open` — a FIFO there blocks the
//! tool call forever, a link is followed (to `/dev/zero`: one endless line, read into memory),
//! and a `.git` *file* sends it to read `gitdir:`/`commondir` wherever they point. Only the
//! `ignore` crate's pattern matcher is used. An ignore file that is not a regular file (or is
//! a link) is skipped, and the tool output says so.
//!
//! Precedence is the `ignore` crate's (and so ripgrep's): for an entry, the deepest matching
//! `.ignore` pattern decides; failing that, the deepest `.gitignore` one; then
//! `.git/info/exclude`; then the user's global gitignore. Ignore files are read from the
//! project root down, never from above it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobMatcher};
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sandbox::untrusted::{FileKind, UntrustedDir, UntrustedError, Walk, WalkEntry};

use crate::outcome::shown_rel;

/// Entries visited at most by one walk, so a pathological tree cannot stall a tool call.
pub(crate) const WALK_MAX_ENTRIES: usize = 200_000;
/// Bytes of one ignore file read at most (the rest is not applied, and the output says so).
pub(crate) const IGNORE_FILE_MAX_BYTES: u64 = 1024 * 1024;

/// The ignore rules of a project, read lazily as the walk reaches each directory.
pub(crate) struct IgnoreRules<'a> {
    files: &'a UntrustedDir,
    dirs: HashMap<PathBuf, DirRules>,
    exclude: Option<Gitignore>,
    global: Gitignore,
    /// Notes for the output: ignore files that were not read, or read only in part.
    pub(crate) notes: Vec<String>,
}

#[derive(Default)]
struct DirRules {
    ignore: Option<Gitignore>,
    gitignore: Option<Gitignore>,
}

impl<'a> IgnoreRules<'a> {
    pub(crate) fn new(files: &'a UntrustedDir) -> IgnoreRules<'a> {
        let mut rules = IgnoreRules {
            files,
            dirs: HashMap::new(),
            exclude: None,
            // The user's own global excludes (outside the project, not the agent's).
            global: Gitignore::global().0,
            notes: Vec::new(),
        };
        rules.exclude = rules.load(Path::new(".git"), Path::new(".git/info/exclude"));
        rules
    }

    /// Whether the entry `rel` (relative to the project root) is ignored.
    pub(crate) fn is_ignored(&mut self, rel: &Path, is_dir: bool) -> bool {
        let parents: Vec<PathBuf> = rel.ancestors().skip(1).map(Path::to_path_buf).collect();
        for dir in &parents {
            if !self.dirs.contains_key(dir) {
                let rules = DirRules {
                    ignore: self.load(dir, &dir.join(".ignore")),
                    gitignore: self.load(dir, &dir.join(".gitignore")),
                };
                self.dirs.insert(dir.clone(), rules);
            }
        }
        let abs = self.files.path().join(rel);
        let kinds: [fn(&DirRules) -> Option<&Gitignore>; 2] =
            [|r| r.ignore.as_ref(), |r| r.gitignore.as_ref()];
        for kind in kinds {
            for dir in &parents {
                if let Some(gi) = self.dirs.get(dir).and_then(kind) {
                    let m = gi.matched(&abs, is_dir);
                    if !m.is_none() {
                        return m.is_ignore();
                    }
                }
            }
        }
        for gi in self.exclude.iter().chain(std::iter::once(&self.global)) {
            let m = gi.matched(&abs, is_dir);
            if !m.is_none() {
                return m.is_ignore();
            }
        }
        false
    }

    /// The patterns of the ignore file `file`, which apply beneath `dir`.
    fn load(&mut self, dir: &Path, file: &Path) -> Option<Gitignore> {
        let contents = match self.files.read(file, IGNORE_FILE_MAX_BYTES) {
            Ok(c) => c,
            Err(UntrustedError::NotFound { .. }) => return None,
            Err(UntrustedError::NotDirectory { .. }) if file.starts_with(".git") => return None,
            Err(e) => {
                self.notes.push(format!(
                    "{} {}; it was not read, so its patterns were not applied",
                    shown_rel(file),
                    e.reason()
                ));
                return None;
            }
        };
        if contents.truncated {
            self.notes.push(format!(
                "{} is {} bytes; only its first {IGNORE_FILE_MAX_BYTES} were applied",
                shown_rel(file),
                contents.size
            ));
        }
        let text = String::from_utf8_lossy(&contents.bytes);
        let mut builder = GitignoreBuilder::new(self.files.path().join(dir));
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            // A bad pattern is skipped, as git does.
            let _ = builder.add_line(None, line);
        }
        builder.build().ok()
    }
}

/// Walks `start` (relative to the project root) with `.git` and ignored entries left out.
pub(crate) fn walk<'w, 'a>(
    rules: &'w mut IgnoreRules<'a>,
    start: &Path,
) -> Result<Walk<'a, impl FnMut(&WalkEntry) -> bool + use<'w, 'a>>, UntrustedError>
where
    'a: 'w,
{
    let files = rules.files;
    files.walk(start, move |entry: &WalkEntry| {
        entry.file_name() != ".git"
            && !rules.is_ignored(&entry.rel, entry.kind == FileKind::Directory)
    })
}

/// A glob given by the model, matched against a path relative to the project root, relative
/// to the searched directory, or the bare file name (so `*.py`, `src/**/*.rs` and `test_*`
/// all do what one expects).
pub(crate) struct PathGlob {
    matcher: GlobMatcher,
}

impl PathGlob {
    pub(crate) fn new(argument: &str, pattern: &str) -> Result<PathGlob, String> {
        let glob: Result<Glob, _> = GlobBuilder::new(pattern)
            .literal_separator(false)
            .backslash_escape(true)
            .build();
        match glob {
            Ok(glob) => Ok(PathGlob {
                matcher: glob.compile_matcher(),
            }),
            Err(e) => Err(format!(
                "`{argument}` is not a valid glob ({e}); examples: `*.py`, `src/**/*.rs`, \
                 `tests/test_*.py`"
            )),
        }
    }

    pub(crate) fn is_match(&self, from_root: &Path, from_start: &Path) -> bool {
        self.matcher.is_match(from_root)
            || self.matcher.is_match(from_start)
            || from_root
                .file_name()
                .is_some_and(|name| self.matcher.is_match(name))
    }
}
