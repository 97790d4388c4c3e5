//! The directory walk shared by `list_files` and `grep`: `.gitignore`/`.ignore` respected (in
//! any project, git repository or not), hidden files included, `.git` skipped, sorted by name.

use std::path::Path;

use globset::{Glob, GlobBuilder, GlobMatcher};

/// Entries visited at most by one walk, so a pathological tree cannot stall a tool call.
pub(crate) const WALK_MAX_ENTRIES: usize = 200_000;

pub(crate) fn walk(start: &Path) -> ignore::Walk {
    ignore::WalkBuilder::new(start)
        .hidden(false)
        .require_git(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
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
